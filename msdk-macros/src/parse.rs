//! From the macro's input tokens to a model of the export.
//!
//! The attribute arguments and the function are read into an [`Export`](crate::export::Export) that says
//! everything code generation needs and nothing else: generation never looks at the
//! signature again. Every rule is checked here (through [`crate::check`]) and every
//! broken rule is reported, not only the first, so one build shows the user all there
//! is to fix.

use proc_macro2::{Delimiter, Group, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Meta, ReturnType, Signature, Token, Visibility};

use crate::check::{self, Errors};
use crate::export::Export;
use crate::types;

/// The annotated function. The body is kept as tokens, not parsed: the macro only needs
/// the signature, and a body syn cannot parse (new syntax, a typo) is then reported by
/// rustc itself instead of by the macro.
#[derive(Clone)]
pub(crate) struct Function {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: Group,
}

impl Parse for Function {
    fn parse(input: ParseStream<'_>) -> syn::Result<Function> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body: Group = input.parse()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected the function body"));
        }
        Ok(Function {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

impl ToTokens for Function {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.extend(self.attrs.iter().map(ToTokens::to_token_stream));
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
    }
}

/// The arguments of `#[memlink_export(...)]`.
#[derive(Default)]
pub(crate) struct AttrArgs {
    /// `name = "..."`: the exported name, when it is not the function's.
    pub(crate) name: Option<LitStr>,
    /// `pure`: the result depends on the arguments alone (the host may cache it).
    pub(crate) pure: bool,
}

/// Reads the attribute arguments: a comma-separated list of `name = "..."` and `pure`.
/// Every bad entry is reported.
pub(crate) fn attr_args(tokens: TokenStream) -> syn::Result<AttrArgs> {
    if let Ok(lit) = syn::parse2::<LitStr>(tokens.clone()) {
        let message = format!(
            "the exported name goes after `name =`: write `#[memlink_export(name = {})]`",
            lit.token()
        );
        return Err(syn::Error::new_spanned(lit, message));
    }
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated
        .parse2(tokens)
        .map_err(unreadable)?;
    let mut args = AttrArgs::default();
    let mut errors = Errors::default();
    for meta in metas {
        if meta.path().is_ident("pure") {
            match &meta {
                Meta::Path(_) if args.pure => {
                    errors.push(syn::Error::new_spanned(&meta, "duplicate `pure` attribute"));
                }
                Meta::Path(_) => args.pure = true,
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "`pure` takes no value: write `#[memlink_export(pure)]`",
                )),
            }
            continue;
        }
        if !meta.path().is_ident("name") {
            let key = meta.path();
            let shown = quote::quote!(#key).to_string().replace(' ', "");
            errors.push(syn::Error::new_spanned(
                key,
                format!("unknown attribute `{shown}`, expected `name` or `pure`"),
            ));
            continue;
        }
        match name_value(&meta) {
            Ok(_) if args.name.is_some() => {
                errors.push(syn::Error::new_spanned(&meta, "duplicate `name` attribute"));
            }
            Ok(lit) => args.name = Some(lit),
            Err(e) => errors.push(e),
        }
    }
    errors.finish(args)
}

/// The error for arguments that do not read as a list of `key = value` and flags: syn's
/// own words ("expected `,`") say what it looked for next, not what the attribute takes.
fn unreadable(error: syn::Error) -> syn::Error {
    let message = format!(
        "{error}: #[memlink_export] takes `name = \"...\"` and `pure`, separated by commas"
    );
    syn::Error::new(error.span(), message)
}

/// The string literal of `name = "..."`, which must be neither missing nor empty, and
/// hold no control character: a host refuses to load a module whose method table has
/// such a name, all of its methods with it.
fn name_value(meta: &Meta) -> syn::Result<LitStr> {
    let Meta::NameValue(nv) = meta else {
        return Err(syn::Error::new_spanned(meta, "expected `name = \"...\"`"));
    };
    match &nv.value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().is_empty() => {
            Err(syn::Error::new_spanned(lit, "`name` must not be empty"))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().chars().any(char::is_control) => Err(syn::Error::new_spanned(
            lit,
            "`name` must not hold a control character: a host refuses to load a module \
             whose method names hold one",
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            "`name` must be a string literal, as in `name = \"my_method\"`",
        )),
    }
}

/// Reads the function into an [`Export`], or reports everything wrong with it together
/// with the errors already found in the attribute (`attr`).
pub(crate) fn export(attr: syn::Result<AttrArgs>, func: &Function) -> syn::Result<Export> {
    let mut errors = Errors::default();
    let attr = errors.take(attr);
    let sig = &func.sig;
    check::signature(sig, &mut errors);
    check::attributes(&func.attrs, &mut errors);
    let context = check::context(sig, &mut errors);
    let args = check::args(sig, &mut errors);
    let result = check::result(sig, &mut errors);
    let (Some(attr), Some(context), Some(args), Some(result)) = (attr, context, args, result)
    else {
        return Err(errors.into_error());
    };
    let name = match attr.name {
        Some(lit) => lit.value(),
        None => sig.ident.unraw().to_string(),
    };
    for attr in &func.attrs {
        if again(attr, sig).is_some_and(|other| other == name) {
            let message = format!(
                "#[memlink_export] is applied twice, both exporting `{name}`: remove one, \
                 or give each its own `name = \"...\"`"
            );
            errors.push(syn::Error::new_spanned(attr, message));
        }
    }
    let (ok_span, error_span) = match &sig.output {
        ReturnType::Type(_, ty) => (
            types::result_ok_type(ty).map_or_else(|| ty.span(), |t| t.span()),
            // With no `E` written (an alias such as `io::Result<T>`), at `Result`.
            types::result_error_type(ty)
                .map(Spanned::span)
                .or_else(|| types::name_span(ty))
                .unwrap_or_else(|| ty.span()),
        ),
        ReturnType::Default => (sig.ident.span(), sig.ident.span()),
    };
    let export = Export {
        ok_span,
        error_span,
        ident: sig.ident.clone(),
        signature: crate::signature::text(&name, sig),
        name,
        is_async: sig.asyncness.is_some(),
        pure: attr.pure,
        context,
        args,
        result,
    };
    errors.finish(export)
}

/// The name another `#[memlink_export]` on the same function exports it under, if
/// `attr` is one (spelled with any path ending in `memlink_export`) and its arguments
/// read; broken arguments are reported by its own expansion.
fn again(attr: &Attribute, sig: &Signature) -> Option<String> {
    let last = attr.path().segments.last()?;
    if last.ident != "memlink_export" {
        return None;
    }
    let args = match &attr.meta {
        Meta::Path(_) => AttrArgs::default(),
        Meta::List(list) => attr_args(list.tokens.clone()).ok()?,
        Meta::NameValue(_) => return None,
    };
    Some(match args.name {
        Some(lit) => lit.value(),
        None => sig.ident.unraw().to_string(),
    })
}

/// The error for an item that does not read as a function with a body: a declaration (a
/// trait's or an extern block's, which ends in `;`) has nothing to export; a function
/// syn could not read is told at the token it stopped at (`unread`); anything else (a
/// struct, a `mod`) is no function.
pub(crate) fn not_a_function(item: &proc_macro2::TokenStream, unread: syn::Error) -> syn::Error {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    // What the item is: its first word past its visibility and qualifiers (`static F:
    // fn() = f;` is a static, whatever its type holds).
    const QUALIFIERS: &[&str] = &[
        "pub", "crate", "const", "async", "unsafe", "extern", "default",
    ];
    let is_fn = tokens
        .iter()
        .filter_map(|t| match t {
            TokenTree::Ident(i) => Some(i.to_string()),
            _ => None,
        })
        .find(|word| !QUALIFIERS.contains(&word.as_str()))
        .is_some_and(|word| word == "fn");
    let declared = matches!(tokens.last(), Some(TokenTree::Punct(p)) if p.as_char() == ';');
    match (is_fn, declared) {
        (true, true) => syn::Error::new_spanned(
            item,
            "#[memlink_export] goes on a free function with a body, not on a declaration \
             (a trait's or an extern block's): the export calls the function",
        ),
        (true, false) => unread,
        (false, _) => syn::Error::new_spanned(item, "#[memlink_export] goes on a function"),
    }
}
