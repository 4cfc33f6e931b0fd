//! Classification of the types in an export's signature.
//!
//! A proc macro sees tokens, not resolved types, so everything here is syntactic: a
//! type is recognised by the shape of its path. For the context and `Result` only the
//! last segment counts (`memlink_msdk::CallContext`, `std::result::Result` and a
//! `Result` alias all work). For the raw bytes-like types the whole path must be one
//! of the std spellings, because mistaking a user's own `String` for the std one would
//! change the wire format silently.

use syn::{GenericArgument, Lifetime, PathArguments, PathSegment, Type, TypePath};

use crate::signature::tidy;

/// How the export takes its context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContextKind {
    /// `&CallContext`: the wrapper lends the invocation's context.
    Ref,
    /// `CallContext`: the wrapper passes a clone.
    Value,
}

/// A bytes-like argument, received as the raw argument bytes instead of MessagePack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawArg {
    /// `String`: the bytes, checked as UTF-8 and copied.
    String,
    /// `&str`: the bytes, checked as UTF-8 and borrowed.
    Str,
    /// `Vec<u8>`: the bytes, copied.
    Bytes,
    /// `&[u8]`: the bytes, borrowed.
    ByteSlice,
}

/// Something in a MessagePack parameter's type that borrows, which the owned argument
/// struct cannot hold.
pub(crate) enum Borrowed<'a> {
    /// A reference type, such as `&u32` or the `&str` inside `Vec<&str>`.
    Reference(&'a Type),
    /// A lifetime other than `'static`, such as the one in `Cow<'a, str>`.
    Lifetime(&'a Lifetime),
    /// `impl Trait` in argument position, which is a hidden generic parameter.
    ImplTrait(&'a Type),
    /// A type that borrows with its lifetime left out: `Cow<str>`.
    Elided(&'a Type),
}

/// Strips the invisible groups that `macro_rules!` puts around a `$t:ty`, and parens.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => peel(&g.elem),
        Type::Paren(p) => peel(&p.elem),
        other => other,
    }
}

/// The path of a plain path type (no `<T as Trait>::` qualified self).
fn plain_path(ty: &Type) -> Option<&TypePath> {
    match peel(ty) {
        Type::Path(p) if p.qself.is_none() => Some(p),
        _ => None,
    }
}

/// The last segment of a path type: what the type is called, whatever module it is in.
fn last_segment(ty: &Type) -> Option<&PathSegment> {
    plain_path(ty)?.path.segments.last()
}

/// Whether `ty` is `name` or one of its std paths (`std::string::String` and the like),
/// with no generic arguments except on the last segment. `modules` lists the allowed
/// `crate::module` pairs (`("std", "string")`).
fn is_std_path<'a>(ty: &'a Type, name: &str, modules: &[(&str, &str)]) -> Option<&'a PathSegment> {
    let path = &plain_path(ty)?.path;
    let segs: Vec<&PathSegment> = path.segments.iter().collect();
    let (last, prefix) = segs.split_last()?;
    if last.ident != name || prefix.iter().any(|s| !s.arguments.is_none()) {
        return None;
    }
    let ok = match prefix {
        [] => path.leading_colon.is_none(),
        [krate, module] => modules
            .iter()
            .any(|(k, m)| krate.ident == k && module.ident == m),
        _ => false,
    };
    ok.then_some(*last)
}

/// `u8`, `core::primitive::u8` or `std::primitive::u8`.
fn is_u8(ty: &Type) -> bool {
    const PRIMITIVE: &[(&str, &str)] = &[("core", "primitive"), ("std", "primitive")];
    is_std_path(ty, "u8", PRIMITIVE).is_some_and(|s| s.arguments.is_none())
}

/// `str`, `core::primitive::str` or `std::primitive::str`.
fn is_str(ty: &Type) -> bool {
    const PRIMITIVE: &[(&str, &str)] = &[("core", "primitive"), ("std", "primitive")];
    is_std_path(ty, "str", PRIMITIVE).is_some_and(|s| s.arguments.is_none())
}

/// `String`, `std::string::String` or `alloc::string::String`.
fn is_string(ty: &Type) -> bool {
    const MODULES: &[(&str, &str)] = &[("std", "string"), ("alloc", "string")];
    is_std_path(ty, "String", MODULES).is_some_and(|s| s.arguments.is_none())
}

/// `Vec<u8>`, `std::vec::Vec<u8>` or `alloc::vec::Vec<u8>`.
fn is_byte_vec(ty: &Type) -> bool {
    const MODULES: &[(&str, &str)] = &[("std", "vec"), ("alloc", "vec")];
    let Some(seg) = is_std_path(ty, "Vec", MODULES) else {
        return false;
    };
    match &seg.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => {
            matches!(&args.args[0], GenericArgument::Type(t) if is_u8(t))
        }
        _ => false,
    }
}

/// `[u8]`.
fn is_byte_slice(ty: &Type) -> bool {
    matches!(peel(ty), Type::Slice(s) if is_u8(&s.elem))
}

/// Whether an argument of type `ty` is read without serde when every argument is one
/// (`memlink_msdk::serialize::primitive::Plain`): a scalar, a `String` or a `Vec<u8>`.
pub(crate) fn is_plain_arg(ty: &Type) -> bool {
    is_scalar(ty) || is_string(peel(ty)) || is_byte_vec(peel(ty))
}

/// Whether `ty` is a scalar that MessagePack carries as one value and the SDK reads and
/// writes without serde: `()`, `bool`, an integer or a float, spelled as the primitive
/// (or its `core::primitive`/`std::primitive` path). Anything else (an alias, a newtype)
/// goes through serde, which encodes scalars the same way.
pub(crate) fn is_scalar(ty: &Type) -> bool {
    const PRIMITIVE: &[(&str, &str)] = &[("core", "primitive"), ("std", "primitive")];
    const SCALARS: &[&str] = &[
        "bool", "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f32",
        "f64",
    ];
    match peel(ty) {
        Type::Tuple(t) => t.elems.is_empty(),
        t => SCALARS
            .iter()
            .any(|name| is_std_path(t, name, PRIMITIVE).is_some_and(|s| s.arguments.is_none())),
    }
}

/// The raw kind of a single argument of type `ty`, if it is bytes-like.
pub(crate) fn raw_arg(ty: &Type) -> Option<RawArg> {
    match peel(ty) {
        Type::Reference(r) if r.mutability.is_none() && is_str(&r.elem) => Some(RawArg::Str),
        Type::Reference(r) if r.mutability.is_none() && is_byte_slice(&r.elem) => {
            Some(RawArg::ByteSlice)
        }
        t if is_string(t) => Some(RawArg::String),
        t if is_byte_vec(t) => Some(RawArg::Bytes),
        _ => None,
    }
}

/// Whether a result of type `ty` goes out as raw bytes: `String`, `Vec<u8>`, or a
/// borrowed `&str` / `&[u8]` (bytes the export built in the call's arena leave without
/// a copy), `&mut` alike: the arena lends its bytes as `&mut [u8]`, and returning them
/// as lent is no reason to send them as a MessagePack array of integers.
pub(crate) fn is_raw_result(ty: &Type) -> bool {
    match peel(ty) {
        Type::Reference(r) => is_str(&r.elem) || is_byte_slice(&r.elem),
        t => is_string(t) || is_byte_vec(t),
    }
}

/// A parameter of an archived export: a borrowed view into the arguments' archive.
#[derive(Clone)]
pub(crate) enum ArchivedArg {
    /// `&Archived<T>`: the archived `T`, in place.
    Archived(Box<Type>),
    /// `&str`: an archived `String`, in place.
    Str,
    /// `&[u8]`: an archived `Vec<u8>`, in place.
    Bytes,
}

/// How a parameter of type `ty` reads from an archive, if it can.
pub(crate) fn archived_arg(ty: &Type) -> Option<ArchivedArg> {
    let Type::Reference(r) = peel(ty) else {
        return None;
    };
    if r.mutability.is_some() {
        return None;
    }
    if is_str(&r.elem) {
        return Some(ArchivedArg::Str);
    }
    if is_byte_slice(&r.elem) {
        return Some(ArchivedArg::Bytes);
    }
    single_type_arg(&r.elem, "Archived").map(|t| ArchivedArg::Archived(Box::new(t.clone())))
}

/// A parameter written as an archive type rather than as `&Archived<T>`: `&ArchivedPoint`,
/// the name rkyv's derive gives `Point`'s archive, or `&<Point as Archive>::Archived`.
/// Returns the archive as written and the `T` it stands for (`Point`). Such a view cannot
/// be taken as it is: the export needs `T`, the type the host archives (the archive is
/// checked and read as `T`'s), and rkyv's name gives it only by convention.
pub(crate) fn archive_spelling(ty: &Type) -> Option<(String, String)> {
    let Type::Reference(r) = peel(ty) else {
        return None;
    };
    let Type::Path(p) = peel(&r.elem) else {
        return None;
    };
    if r.mutability.is_some() {
        return None;
    }
    let source = match &p.qself {
        // `<T as Archive>::Archived`: the trait's path, then `Archived` alone.
        Some(q) => {
            let segments: Vec<&PathSegment> = p.path.segments.iter().collect();
            let is_archive = |seg: &PathSegment| seg.ident == "Archive";
            match segments.as_slice() {
                [.., tr, last]
                    if q.position + 1 == segments.len()
                        && is_archive(tr)
                        && last.ident == "Archived"
                        && last.arguments.is_none() =>
                {
                    tidy(&q.ty)
                }
                _ => return None,
            }
        }
        None => {
            let mut path = p.path.clone();
            if !unarchive(path.segments.last_mut()?) {
                return None;
            }
            tidy(&path)
        }
    };
    Some((tidy(&r.elem), source))
}

/// Renames `ArchivedName` to `Name` in `seg` (and in its type arguments, as in
/// `ArchivedVec<ArchivedPoint>`); false when `seg` is no such name.
fn unarchive(seg: &mut PathSegment) -> bool {
    let name = seg.ident.to_string();
    let Some(rest) = name.strip_prefix("Archived") else {
        return false;
    };
    if !rest.starts_with(|c: char| c.is_ascii_uppercase()) {
        return false;
    }
    seg.ident = syn::Ident::new(rest, seg.ident.span());
    if let PathArguments::AngleBracketed(args) = &mut seg.arguments {
        for arg in &mut args.args {
            if let GenericArgument::Type(Type::Path(p)) = arg {
                if let Some(last) = p.path.segments.last_mut() {
                    unarchive(last);
                }
            }
        }
    }
    true
}

/// The `T` of a `Rkyv<T>` result, which goes out as an archive.
pub(crate) fn rkyv_result(ty: &Type) -> Option<&Type> {
    single_type_arg(ty, "Rkyv")
}

/// The one type argument of a path type whose last segment is `name`.
fn single_type_arg<'t>(ty: &'t Type, name: &str) -> Option<&'t Type> {
    let seg = last_segment(ty)?;
    if seg.ident != name {
        return None;
    }
    match &seg.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match args.args.first()? {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// The `T` of a `Result<T>` or `Result<T, E>` return type (any path ending in `Result`).
pub(crate) fn result_ok_type(ty: &Type) -> Option<&Type> {
    let seg = last_segment(ty)?;
    if seg.ident != "Result" {
        return None;
    }
    match &seg.arguments {
        PathArguments::AngleBracketed(args) => match args.args.first()? {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// The span of the name of a path type (`Result` in `io::Result<u32>`).
pub(crate) fn name_span(ty: &Type) -> Option<proc_macro2::Span> {
    last_segment(ty).map(|seg| seg.ident.span())
}

/// Whether `ty` is a path ending in `Result` with no generic arguments (an alias).
pub(crate) fn is_bare_result(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|seg| seg.ident == "Result" && seg.arguments.is_none())
}

/// The `E` of a `Result<T, E>` return type, when it is written out.
pub(crate) fn result_error_type(ty: &Type) -> Option<&Type> {
    let seg = last_segment(ty)?;
    match &seg.arguments {
        PathArguments::AngleBracketed(args) => {
            let mut types = args.args.iter().filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            });
            types.nth(1)
        }
        _ => None,
    }
}

/// How a first parameter of type `ty` takes the context, if it is a `CallContext` by
/// shared reference or by value (`&mut` cannot be lent from a shared invocation).
pub(crate) fn context_kind(ty: &Type) -> Option<ContextKind> {
    let (kind, inner) = match peel(ty) {
        Type::Reference(r) if r.mutability.is_none() => (ContextKind::Ref, &*r.elem),
        Type::Reference(_) => return None,
        other => (ContextKind::Value, other),
    };
    let seg = last_segment(inner)?;
    (seg.ident == "CallContext").then_some(kind)
}

/// Whether `ty` is a `CallContext` in any form (by value, `&` or `&mut`): a parameter
/// that is one but cannot be taken as the context is a misplaced or repeated context,
/// not an argument.
pub(crate) fn is_context(ty: &Type) -> bool {
    let inner = match peel(ty) {
        Type::Reference(r) => &*r.elem,
        other => other,
    };
    last_segment(inner).is_some_and(|seg| seg.ident == "CallContext")
}

/// The first `'static` lifetime written in `ty`. A borrowed argument or context lives
/// only as long as the call, so one declared `'static` cannot be passed.
pub(crate) fn static_lifetime(ty: &Type) -> Option<&Lifetime> {
    match peel(ty) {
        Type::Reference(r) => r
            .lifetime
            .as_ref()
            .filter(|l| l.ident == "static")
            .or_else(|| static_lifetime(&r.elem)),
        Type::Slice(s) => static_lifetime(&s.elem),
        Type::Array(a) => static_lifetime(&a.elem),
        Type::Tuple(t) => t.elems.iter().find_map(static_lifetime),
        Type::Path(p) => p.path.segments.iter().find_map(|s| {
            let PathArguments::AngleBracketed(args) = &s.arguments else {
                return None;
            };
            args.args.iter().find_map(|arg| match arg {
                GenericArgument::Lifetime(l) if l.ident == "static" => Some(l),
                GenericArgument::Type(t) => static_lifetime(t),
                _ => None,
            })
        }),
        _ => None,
    }
}

/// The lifetime of a reference type `&'static T` (the reference's own, not one inside
/// `T`).
pub(crate) fn static_reference(ty: &Type) -> Option<&Lifetime> {
    match peel(ty) {
        Type::Reference(r) => r.lifetime.as_ref().filter(|l| l.ident == "static"),
        _ => None,
    }
}

/// Writes out the lifetime of a context type that leaves it hidden (`&CallContext` becomes
/// `&CallContext<'_>`, by value alike), and says whether it did. The two mean the same,
/// but an `async fn` must not hide the lifetime (error E0726), and `&CallContext` is how
/// the SDK documents an export, async or not.
pub(crate) fn show_context_lifetime(ty: &mut Type) -> bool {
    let inner = match ty {
        Type::Group(g) => return show_context_lifetime(&mut g.elem),
        Type::Paren(p) => return show_context_lifetime(&mut p.elem),
        Type::Reference(r) => &mut *r.elem,
        other => other,
    };
    let segment = match inner {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last_mut(),
        _ => None,
    };
    match segment {
        Some(seg) if seg.ident == "CallContext" && seg.arguments.is_none() => {
            let span = seg.ident.span();
            seg.arguments = PathArguments::AngleBracketed(syn::parse_quote_spanned!(span=> <'_>));
            true
        }
        _ => false,
    }
}

/// The first thing in `ty` that borrows, if any; a MessagePack parameter must be owned
/// because the argument struct is decoded with `DeserializeOwned` and has no lifetimes.
pub(crate) fn find_borrowed(ty: &Type) -> Option<Borrowed<'_>> {
    match peel(ty) {
        Type::Reference(_) => Some(Borrowed::Reference(ty)),
        Type::ImplTrait(_) => Some(Borrowed::ImplTrait(ty)),
        Type::Slice(s) => find_borrowed(&s.elem),
        Type::Array(a) => find_borrowed(&a.elem),
        Type::Tuple(t) => t.elems.iter().find_map(find_borrowed),
        Type::Path(p) if elided_cow(p) => Some(Borrowed::Elided(ty)),
        Type::Path(p) => {
            let qself = p.qself.as_ref().and_then(|q| find_borrowed(&q.ty));
            qself.or_else(|| {
                p.path
                    .segments
                    .iter()
                    .find_map(|s| borrowed_in_args(&s.arguments))
            })
        }
        _ => None,
    }
}

/// Whether `path` is a `Cow` written without its lifetime (`Cow<str>`, which borrows
/// all the same): the lifetime is not there to be found among its arguments.
fn elided_cow(path: &syn::TypePath) -> bool {
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    last.ident == "Cow"
        && !args
            .args
            .iter()
            .any(|a| matches!(a, GenericArgument::Lifetime(_)))
}

/// The first borrow among a path segment's generic arguments.
fn borrowed_in_args(args: &PathArguments) -> Option<Borrowed<'_>> {
    let PathArguments::AngleBracketed(args) = args else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Lifetime(l) if l.ident != "static" => Some(Borrowed::Lifetime(l)),
        GenericArgument::Type(t) => find_borrowed(t),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
