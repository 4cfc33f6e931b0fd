//! The rules an exported function must follow, each broken one reported as a
//! [`syn::Error`] on the token at fault.
//!
//! The checks never stop at the first problem: each one records its errors in an
//! [`Errors`] and returns what it could make out (or `None`), so a single build lists
//! everything wrong with the function at once.

use std::collections::HashSet;

use proc_macro2::{Punct, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericParam, Generics, Ident, Lifetime, Meta, Pat, PatType, ReturnType, Signature,
    Token, TypeParamBound, WherePredicate,
};

use crate::export::{Args, Field, ResultKind, RESERVED};
use crate::types::{self, ArchivedArg, Borrowed, ContextKind};

/// The message for a missing or wrong first parameter.
const NOT_CONTEXT: &str = "First parameter must be &CallContext";
/// The message for a missing or wrong return type.
const NOT_RESULT: &str = "Return type must be Result";
/// The message for a `self` parameter: the function is a method, which the wrapper
/// cannot call by name with nothing but the decoded arguments.
const METHOD: &str = "#[memlink_export] exports free functions, not methods: move this \
     function out of the `impl` block";
/// The message for a reference where an owned MessagePack argument is needed.
const REFERENCE_PARAM: &str = "a reference parameter must be a view into archived arguments \
     (&Archived<T>, &str or &[u8]); MessagePack parameters are owned";
/// The message for an owned parameter next to borrowed archive views.
const ARCHIVED_MIX: &str =
    "an export that reads its arguments in place takes only &Archived<T>, &str and &[u8] \
     parameters: pass this one as `&Archived<T>` too, or take every parameter owned (MessagePack: \
     `String` for `&str`, `Vec<u8>` for `&[u8]`)";
/// The message for generic parameters, including `impl Trait` arguments.
const GENERIC: &str = "memlink exports cannot be generic";
/// The message for a context after the first parameter, when the first is another.
const CONTEXT_NOT_FIRST: &str =
    "the context must be the first parameter: move this one before the others";
/// The message for a second context.
const SECOND_CONTEXT: &str =
    "an export takes the context once, as its first parameter: remove this one";
/// The message for a `'static` borrow of the context or of an argument, which the
/// wrapper lends for the call alone.
const STATIC_BORROW: &str = "the context and borrowed arguments live only as long as the \
     call, not `'static`: leave the lifetime out, or use one of the function's own (`'a`)";
/// The message for `#[cfg]` on a parameter: the wrapper passes every parameter it sees.
const CFG_PARAM: &str = "#[cfg] on a parameter of a memlink export is not supported: the \
     host calls it with one fixed list of arguments; put the #[cfg] on the whole function \
     (one definition per configuration)";

/// Errors collected so far; empty until something is pushed.
#[derive(Debug, Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Records `error` after the ones already there.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The value of `result`, recording its error if it has one.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// `value` if nothing was recorded, else every error recorded.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            None => Ok(value),
            Some(error) => Err(error),
        }
    }

    /// Every error recorded. Callers get here only after a check gave up, which it does
    /// only after recording why; the fallback message is for a bug in this crate.
    pub(crate) fn into_error(self) -> syn::Error {
        self.0.unwrap_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "#[memlink_export]: internal error, please report",
            )
        })
    }
}

/// The function's own attributes: `#[target_feature]` makes the function unsafe to call
/// (on a CPU without the feature it is undefined behaviour), and the wrapper calls it
/// with nothing to check first.
pub(crate) fn attributes(attrs: &[syn::Attribute], errors: &mut Errors) {
    for attr in attrs {
        if attr.path().is_ident("target_feature") {
            errors.push(syn::Error::new_spanned(
                attr,
                "memlink exports cannot have #[target_feature]: calling such a function \
                 is unsafe on a CPU without the feature, and the generated wrapper calls \
                 it unchecked; put that code in a function of its own and call it from the \
                 export once the feature is detected (`is_x86_feature_detected!`)",
            ));
        }
    }
}

/// The name, qualifiers and generics: the wrapper must be able to call the function by
/// its name (which the generated items must not shadow) with nothing but the decoded
/// arguments, so no `unsafe`, no foreign ABI, no variadics, no type or const parameters
/// (lifetimes are fine, they are inferred) and no `self`.
///
/// A `self` (`self`, `&self`, `&mut self`, `self: Box<Self>`, ...) is reported on the
/// receiver: the function is a method. It still goes out as written, inside its `impl`,
/// and with no registration (which rustc would refuse there), so rustc adds no error of
/// its own to this one. An associated function without `self` cannot be told from a
/// free function: the macro sees the function, not the `impl` around it.
pub(crate) fn signature(sig: &Signature, errors: &mut Errors) {
    // `r#__memlink_invoke` is the same name: compared without its `r#`.
    let ident = sig.ident.unraw();
    if RESERVED.iter().any(|name| ident == name) {
        let message = format!("the name `{ident}` is reserved by #[memlink_export]");
        errors.push(syn::Error::new_spanned(&sig.ident, message));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "memlink exports cannot be unsafe",
        ));
    }
    if let Some(abi) = &sig.abi {
        let message = "memlink exports cannot have an explicit ABI: the generated wrapper \
                       provides the C ABI";
        errors.push(syn::Error::new_spanned(abi, message));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "memlink exports cannot be variadic",
        ));
    }
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            errors.push(syn::Error::new_spanned(param, GENERIC));
        }
    }
    for input in &sig.inputs {
        if let FnArg::Receiver(receiver) = input {
            errors.push(syn::Error::new_spanned(receiver, METHOD));
        }
    }
    static_bounds(sig, errors);
}

/// The typed parameters; a `self` is reported by [`signature`] and otherwise ignored, so
/// that `fn m(&self, ctx: &CallContext)` gets that one error and no confusing others.
fn typed_params(sig: &Signature) -> Vec<&PatType> {
    let typed = sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(param) => Some(param),
        FnArg::Receiver(_) => None,
    });
    typed.collect()
}

/// How the first parameter takes the context, which it must be. A context further on
/// (`fn f(a: u32, ctx: &CallContext)`) is reported there, as misplaced, and not the
/// first parameter as a missing context.
pub(crate) fn context(sig: &Signature, errors: &mut Errors) -> Option<ContextKind> {
    let params = typed_params(sig);
    let error = match params.first() {
        None if sig.receiver().is_some() => return None,
        None => syn::Error::new(sig.paren_token.span.join(), NOT_CONTEXT),
        Some(first) => match types::context_kind(&first.ty) {
            Some(kind) => match types::static_lifetime(&first.ty) {
                None => return Some(kind),
                Some(lifetime) => syn::Error::new_spanned(lifetime, STATIC_BORROW),
            },
            None if types::is_context(&first.ty) => syn::Error::new_spanned(first, NOT_CONTEXT),
            None => match params[1..].iter().find(|p| types::is_context(&p.ty)) {
                Some(later) => syn::Error::new_spanned(later, CONTEXT_NOT_FIRST),
                None => syn::Error::new_spanned(first, NOT_CONTEXT),
            },
        },
    };
    errors.push(error);
    None
}

/// The arguments after the context: one bytes-like argument is raw, anything else is a
/// MessagePack struct whose fields must be owned.
///
/// Every parameter is checked, whatever was wrong with another: a `#[cfg]` on one, or a
/// context out of place, still leaves the others' problems reported in the same build.
pub(crate) fn args(sig: &Signature, errors: &mut Errors) -> Option<Args> {
    let all = typed_params(sig);
    let configured = configured(&all, errors);
    let context_first = all.first().is_some_and(|p| types::is_context(&p.ty));
    // The first parameter is an argument too when it is no context (one missing or out
    // of place is `context`'s to report): its own problem is reported with the others.
    let rest: Vec<&PatType> = all.into_iter().skip(usize::from(context_first)).collect();
    // A context after the first parameter is no argument: a second one is reported
    // here, a misplaced one (the first parameter being something else) by `context`.
    let (contexts, params): (Vec<&PatType>, Vec<&PatType>) =
        rest.into_iter().partition(|p| types::is_context(&p.ty));
    if context_first {
        for param in &contexts {
            errors.push(syn::Error::new_spanned(param, SECOND_CONTEXT));
        }
    }
    let found = arguments(sig, &params, errors);
    found.filter(|_| configured && contexts.is_empty())
}

/// [`args`] of the parameters after the context (contexts left out).
fn arguments(sig: &Signature, params: &[&PatType], errors: &mut Errors) -> Option<Args> {
    if let [param] = params {
        if let Some(raw) = types::raw_arg(&param.ty) {
            return not_static(params, errors).then_some(Args::Raw(raw));
        }
    }
    if u16::try_from(params.len()).is_err() {
        let message = "memlink exports take at most 65535 arguments";
        errors.push(syn::Error::new(sig.paren_token.span.join(), message));
        return None;
    }
    if params.iter().any(|p| types::archived_arg(&p.ty).is_some()) {
        let views = archived(params, errors);
        // Both are checked, and both reported: a `'static` view and a parameter that is
        // no view are two changes to make.
        let statics = not_static(params, errors);
        return views.filter(|_| statics);
    }
    let mut owned = true;
    for param in params {
        if let Some(borrowed) = types::find_borrowed(&param.ty) {
            let error = archive_spelled(&param.ty).unwrap_or_else(|| borrowed_error(&borrowed));
            errors.push(error);
            owned = false;
        }
    }
    owned.then(|| Args::MessagePack(fields(params)))
}

/// Whether no parameter has a `#[cfg]`, itself or inside a `#[cfg_attr]` (reported if
/// one does): the argument struct and the call list every parameter, whichever of them
/// the configuration leaves.
fn configured(params: &[&PatType], errors: &mut Errors) -> bool {
    let mut ok = true;
    for param in params {
        for attr in &param.attrs {
            if may_remove(&attr.meta) {
                errors.push(syn::Error::new_spanned(attr, CFG_PARAM));
                ok = false;
            }
        }
    }
    ok
}

/// Whether an attribute may remove what it is on: a `cfg`, or a `cfg_attr` that may
/// apply one. rustc expands a parameter's `cfg_attr` only after the macro has run, so
/// `#[cfg_attr(feature = "x", cfg(any()))]` would remove the parameter behind its back;
/// one that only adds lint levels (`#[cfg_attr(test, allow(unused))]`) is fine.
fn may_remove(meta: &Meta) -> bool {
    if meta.path().is_ident("cfg") {
        return true;
    }
    if !meta.path().is_ident("cfg_attr") {
        return false;
    }
    let Meta::List(list) = meta else {
        return false;
    };
    // The predicate, then the attributes; one that does not read as such is rustc's
    // to report.
    let Ok(parts) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) else {
        return false;
    };
    parts.iter().skip(1).any(may_remove)
}

/// Reports a parameter whose lifetime the function's bounds make `'static` (`'a:
/// 'static`, in the generics or the `where` clause, directly or through another
/// lifetime): the wrapper lends the context and the arguments for the call alone, and
/// such a bound would otherwise surface as rustc's "borrowed data escapes" in the
/// generated wrapper, pointing at the attribute.
fn static_bounds(sig: &Signature, errors: &mut Errors) {
    let forced = static_lifetimes(&sig.generics);
    if forced.is_empty() {
        return;
    }
    for param in typed_params(sig) {
        // One error a parameter: `&'a CallContext<'a>` has one bound to remove.
        let found = lifetimes_in(param.ty.to_token_stream())
            .into_iter()
            .find(|(_, ident)| forced.contains(&ident.to_string()));
        if let Some((quote, ident)) = found {
            let message = format!(
                "the context and borrowed arguments live only as long as the call, and a \
                 bound makes `'{ident}` outlive `'static`: remove that bound"
            );
            errors.push(syn::Error::new_spanned(quote!(#quote #ident), message));
        }
    }
}

/// The names of the lifetimes (without the `'`) that `generics` requires to outlive
/// `'static`: bounded by it, or by one that is.
fn static_lifetimes(generics: &Generics) -> HashSet<String> {
    // Each bound as (the bounded lifetimes, the lifetimes they outlive).
    let mut bounds: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for param in &generics.params {
        if let GenericParam::Lifetime(p) = param {
            bounds.push((vec![p.lifetime.ident.to_string()], names(&p.bounds)));
        }
    }
    for predicate in generics.where_clause.iter().flat_map(|w| &w.predicates) {
        match predicate {
            WherePredicate::Lifetime(p) => {
                bounds.push((vec![p.lifetime.ident.to_string()], names(&p.bounds)));
            }
            // `&'a str: 'static` binds every lifetime the type names.
            WherePredicate::Type(p) => {
                let bounded = lifetimes_in(p.bounded_ty.to_token_stream())
                    .into_iter()
                    .map(|(_, ident)| ident.to_string())
                    .collect();
                let outlived = p.bounds.iter().filter_map(|b| match b {
                    TypeParamBound::Lifetime(l) => Some(l),
                    _ => None,
                });
                bounds.push((bounded, names(outlived)));
            }
            _ => {}
        }
    }
    let mut forced: HashSet<String> = HashSet::new();
    loop {
        let before = forced.len();
        for (bounded, outlived) in &bounds {
            if outlived.iter().any(|l| l == "static" || forced.contains(l)) {
                forced.extend(bounded.iter().cloned());
            }
        }
        if forced.len() == before {
            return forced;
        }
    }
}

/// The names of `lifetimes`, without the `'`.
fn names<'l>(lifetimes: impl IntoIterator<Item = &'l Lifetime>) -> Vec<String> {
    lifetimes.into_iter().map(|l| l.ident.to_string()).collect()
}

/// The lifetimes written in `tokens` (a `'` joined to the name that follows it), each as
/// its two tokens, for an error that points at both; `'_` and `'static` are left out.
fn lifetimes_in(tokens: TokenStream) -> Vec<(Punct, Ident)> {
    let mut found = Vec::new();
    let mut quote: Option<Punct> = None;
    for token in tokens {
        match token {
            TokenTree::Punct(p) if p.as_char() == '\'' => {
                quote = Some(p);
                continue;
            }
            TokenTree::Ident(ident) => {
                if let Some(q) = quote.take() {
                    if ident != "_" && ident != "static" {
                        found.push((q, ident));
                    }
                }
            }
            TokenTree::Group(g) => found.extend(lifetimes_in(g.stream())),
            _ => {}
        }
        quote = None;
    }
    found
}

/// Whether no borrowed parameter is declared `'static` (reported if one is): the wrapper
/// lends the argument bytes for the call alone.
fn not_static(params: &[&PatType], errors: &mut Errors) -> bool {
    let mut ok = true;
    for param in params {
        if let Some(lifetime) = types::static_reference(&param.ty) {
            errors.push(syn::Error::new_spanned(lifetime, STATIC_BORROW));
            ok = false;
        }
    }
    ok
}

/// The parameters of an archived export: every one must be a view into the archive.
fn archived(params: &[&PatType], errors: &mut Errors) -> Option<Args> {
    let views: Vec<Option<ArchivedArg>> =
        params.iter().map(|p| types::archived_arg(&p.ty)).collect();
    for (param, view) in params.iter().zip(&views) {
        match view {
            // An `impl Trait` is no owned value either: passing it as an archive would
            // not help.
            None => match types::find_borrowed(&param.ty) {
                Some(Borrowed::ImplTrait(ty)) => {
                    errors.push(syn::Error::new_spanned(ty, GENERIC));
                }
                _ => errors.push(
                    archive_spelled(&param.ty)
                        .unwrap_or_else(|| syn::Error::new_spanned(&param.ty, ARCHIVED_MIX)),
                ),
            },
            // The `T` of `&Archived<T>` is archived by the host as it is: generic or
            // borrowing, it names no one archive (and rustc would say so inside the
            // generated items, not here).
            Some(ArchivedArg::Archived(t)) => match types::find_borrowed(t) {
                Some(Borrowed::ImplTrait(ty)) => {
                    errors.push(syn::Error::new_spanned(ty, GENERIC));
                }
                Some(_) => errors.push(syn::Error::new_spanned(
                    &**t,
                    "the type of an archived parameter must be owned: `&Archived<T>` is \
                     the borrow, and `T` itself may not borrow",
                )),
                None => {}
            },
            Some(_) => {}
        }
    }
    views
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(Args::Archived)
}

/// The error for a view written as an archive type (`&ArchivedPoint`): it is one, but
/// the generic words (a view must be `&Archived<T>`) do not say what to change.
fn archive_spelled(ty: &syn::Type) -> Option<syn::Error> {
    let (archive, source) = types::archive_spelling(ty)?;
    let message = format!(
        "an archived parameter names the type the host archives: write \
         `&Archived<{source}>` (memlink_msdk::rkyv::Archived), not its archive `&{archive}`"
    );
    Some(syn::Error::new_spanned(ty, message))
}

/// The error for a borrowing MessagePack parameter type.
fn borrowed_error(borrowed: &Borrowed<'_>) -> syn::Error {
    match borrowed {
        Borrowed::Reference(ty) => syn::Error::new_spanned(ty, REFERENCE_PARAM),
        Borrowed::ImplTrait(ty) => syn::Error::new_spanned(ty, GENERIC),
        Borrowed::Elided(ty) => syn::Error::new_spanned(
            ty,
            "MessagePack parameters must be owned types, and this one borrows (its \
             lifetime is left out): take `String` for `Cow<str>`, `Vec<T>` for `Cow<[T]>`",
        ),
        Borrowed::Lifetime(lifetime) => syn::Error::new_spanned(
            lifetime,
            format!(
                "MessagePack parameters must be owned types, `{lifetime}` borrows \
                 (only the single raw argument &str or &[u8] may borrow)"
            ),
        ),
    }
}

/// The argument struct's fields: each parameter's name, or `arg{i}` when it has none,
/// never the same name twice. A name the function binds twice (`a: u32, a: u32`) is
/// rustc's to report (E0415) on the function; its second field gets a name of its own,
/// so the struct and its destructuring add no errors of theirs to that one.
fn fields(params: &[&PatType]) -> Vec<Field> {
    let mut taken: Vec<String> = Vec::new();
    let named: Vec<Option<Ident>> = params
        .iter()
        .map(|p| {
            let name = binding_name(&p.pat)?;
            let key = name.unraw().to_string();
            if taken.contains(&key) {
                return None;
            }
            taken.push(key);
            Some(name)
        })
        .collect();
    params
        .iter()
        .zip(named)
        .enumerate()
        .map(|(i, (param, name))| {
            let name = name.unwrap_or_else(|| {
                let mut fresh = format!("arg{i}");
                while taken.contains(&fresh) {
                    fresh.push('_');
                }
                taken.push(fresh.clone());
                Ident::new(&fresh, param.pat.span())
            });
            Field {
                name,
                ty: (*param.ty).clone(),
            }
        })
        .collect()
}

/// The name a parameter pattern binds, if it is a plain (possibly `mut`) identifier.
fn binding_name(pat: &Pat) -> Option<Ident> {
    match pat {
        Pat::Ident(p) => Some(p.ident.clone()),
        _ => None,
    }
}

/// How the `Ok` type of the `Result` the function must return is encoded.
pub(crate) fn result(sig: &Signature, errors: &mut Errors) -> Option<ResultKind> {
    let error = match &sig.output {
        ReturnType::Default => syn::Error::new_spanned(&sig.ident, NOT_RESULT),
        ReturnType::Type(_, ty) => match types::result_ok_type(ty) {
            Some(ok) if types::is_raw_result(ok) => return Some(ResultKind::Raw),
            Some(ok) => {
                return Some(match types::rkyv_result(ok) {
                    Some(t) => ResultKind::Archived(Box::new(t.clone())),
                    None if types::is_scalar(ok) => ResultKind::Scalar,
                    None => ResultKind::MessagePack,
                })
            }
            None if types::is_bare_result(ty) => syn::Error::new_spanned(
                ty.to_token_stream(),
                "Return type must be Result<T> or Result<T, E>: write the `Ok` type out \
                 (the macro reads it from the signature, not from a `Result` alias)",
            ),
            None => syn::Error::new_spanned(ty.to_token_stream(), NOT_RESULT),
        },
    };
    errors.push(error);
    None
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use crate::export::Args;
    use crate::parse::{self, AttrArgs, Function};

    /// Every error message for `item`, in order.
    fn errors(item: proc_macro2::TokenStream) -> Vec<String> {
        let func: Function = syn::parse2(item).unwrap();
        match parse::export(Ok(AttrArgs::default()), &func) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn variadic_and_abi_are_rejected() {
        let got = errors(quote! {
            unsafe extern "C" fn f(ctx: &CallContext, n: u32, ...) -> Result<u32> {}
        });
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[2].contains("cannot be variadic"), "{got:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let got = errors(quote! {
            fn f<T>(&self, a: &u8, b: Cow<'a, str>) -> Option<T> {}
        });
        let want = [
            "memlink exports cannot be generic",
            "#[memlink_export] exports free functions, not methods",
            "First parameter must be &CallContext",
            // The first parameter, no context, is an argument with its own problem.
            "a reference parameter must be a view",
            "MessagePack parameters must be owned types",
            "Return type must be Result",
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (got, want) in got.iter().zip(want) {
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
    }

    /// A build reported one of these at a time: the `&u32` hid the `'static`, and a
    /// misplaced context or a `#[cfg]` parameter hid every other parameter's problem.
    #[test]
    fn every_parameters_problem_is_reported_whatever_else_is_wrong() {
        let got = errors(quote! {
            fn lookup(_ctx: &CallContext, key: &'static str, limit: &u32) -> Result<u32> {}
        });
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("an export that reads its arguments in place"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("the context and borrowed arguments live only"),
            "{got:?}"
        );

        let got = errors(quote! {
            fn many(n: u32, _ctx: &CallContext, #[cfg(test)] t: u32, v: &Vec<u8>) -> Result<u32> {}
        });
        let want = [
            "#[cfg] on a parameter",
            "the context must be the first parameter",
            "a reference parameter must be a view",
        ];
        for want in want {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "{want:?} not in {got:?}"
            );
        }

        let got = errors(quote! {
            fn shown(_ctx: &CallContext, c: impl Display, s: &str) -> Result<u32> {}
        });
        assert_eq!(got, ["memlink exports cannot be generic"], "{got:?}");
    }

    #[test]
    fn a_method_is_refused_for_its_receiver_alone() {
        let receivers = [
            quote!(self),
            quote!(mut self),
            quote!(&self),
            quote!(&'a mut self),
            quote!(self: Box<Self>),
            quote!(self: &Arc<Self>),
        ];
        for receiver in receivers {
            let func: Function = syn::parse2(quote! {
                fn m(#receiver, ctx: &CallContext, a: u32) -> Result<u32> {}
            })
            .unwrap();
            let got: Vec<syn::Error> = match parse::export(Ok(AttrArgs::default()), &func) {
                Ok(_) => panic!("`{receiver}` was accepted"),
                Err(e) => e.into_iter().collect(),
            };
            assert_eq!(got.len(), 1, "{receiver}: {got:?}");
            assert_eq!(
                got[0].to_string(),
                "#[memlink_export] exports free functions, not methods: move this function \
                 out of the `impl` block"
            );
        }
    }

    #[test]
    fn synthesized_field_names_do_not_collide() {
        let func: Function = syn::parse2(quote! {
            fn f(ctx: &CallContext, _: u8, arg1: u8, (x, y): (u8, u8), arg2: u8) -> Result<()> {}
        })
        .unwrap();
        let export = parse::export(Ok(AttrArgs::default()), &func).unwrap();
        let Args::MessagePack(fields) = export.args else {
            panic!("not MessagePack");
        };
        let names: Vec<String> = fields.iter().map(|f| f.name.to_string()).collect();
        assert_eq!(names, ["arg0", "arg1", "arg2_", "arg2"]);
    }

    #[test]
    fn pure_is_a_flag_beside_the_name() {
        let args = parse::attr_args(quote!(name = "sq", pure)).unwrap();
        assert!(args.pure);
        assert_eq!(args.name.unwrap().value(), "sq");
        assert!(!parse::attr_args(quote!()).unwrap().pure);
    }

    #[test]
    fn attribute_errors_are_all_reported() {
        let got = parse::attr_args(quote!(nmae = "x", name = 1, name = ""))
            .err()
            .unwrap();
        let got: Vec<String> = got.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(
            got,
            [
                "unknown attribute `nmae`, expected `name` or `pure`",
                "`name` must be a string literal, as in `name = \"my_method\"`",
                "`name` must not be empty",
            ]
        );
    }
}
