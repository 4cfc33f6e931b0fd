//! Code generation: the registration that goes after the user's function.
//!
//! Everything generated lives in one `const _: () = { ... };` block, so none of its
//! names can clash with the module's items or with another export's, and it refers to
//! the SDK only through absolute `::memlink_msdk::__private` paths, so a module crate
//! needs no other dependency and no particular `use`s. The wrapper's own locals get
//! [`Span::mixed_site`] hygiene and never reuse the user's parameter names, so nothing
//! the user writes can shadow them (but for `__memlink_error`, which must carry the
//! user's span: see [`invoke_fn`]).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, LitStr, PatType};

use crate::export::{Args, Export, Field, ResultKind};
use crate::parse::Function;
use crate::types::{self, ArchivedArg, ContextKind, RawArg};

/// Names the generated code uses; the locals are hygienic.
struct Names {
    /// The wrapper's `&Invocation` parameter.
    inv: Ident,
    /// The `Ok` value of the export.
    value: Ident,
    /// The argument struct.
    args_struct: Ident,
}

impl Names {
    fn new() -> Names {
        let local = |name: &str| Ident::new(name, Span::mixed_site());
        Names {
            inv: local("__inv"),
            value: local("__value"),
            args_struct: Ident::new("__MemlinkArgs", Span::call_site()),
        }
    }

    /// The local holding argument `i`.
    fn arg(i: usize) -> Ident {
        format_ident!("__memlink_arg{}", i, span = Span::mixed_site())
    }
}

/// The user's function as it goes out: its own tokens, untouched, except that a context
/// that hides its lifetime (`&CallContext`) gets it written out (`&CallContext<'_>`).
/// An `async fn` requires that (E0726); for a sync fn it spares the user the
/// `elided_lifetimes_in_paths` lint. Neither changes anything for callers.
pub(crate) fn function(item: TokenStream, func: &Function) -> TokenStream {
    let mut func = func.clone();
    let changed = func
        .sig
        .inputs
        .iter_mut()
        .find_map(typed)
        .is_some_and(|param| types::show_context_lifetime(&mut param.ty));
    if changed {
        quote!(#func)
    } else {
        item
    }
}

/// The typed parameter, not a `self`.
fn typed(input: &mut FnArg) -> Option<&mut PatType> {
    match input {
        FnArg::Typed(param) => Some(param),
        FnArg::Receiver(_) => None,
    }
}

/// The `const _: () = { ... };` block that registers `export`: the arguments' type, the
/// wrapper, the export's own entry point and its row of the method table. The entry point
/// is the SDK's generic `export_call` for a type of the block's own that names the wrapper
/// (`OwnEntry`): the boundary with the wrapper compiled into it, and no `unsafe` in the
/// author's crate, which may forbid it.
pub(crate) fn registration(export: &Export) -> TokenStream {
    let names = Names::new();
    let private = quote!(::memlink_msdk::__private);
    let args_struct = args_struct(export, &names);
    let args_struct_name = &names.args_struct;
    let invoke = invoke_fn(export, &names);
    let name = LitStr::new(&export.name, export.ident.span());
    let args_format = format(match export.args {
        Args::Raw(_) => "Raw",
        Args::MessagePack(_) => "MessagePack",
        Args::Archived(_) => "Archived",
    });
    let result_format = format(match export.result {
        ResultKind::Raw => "Raw",
        ResultKind::MessagePack | ResultKind::Scalar => "MessagePack",
        ResultKind::Archived(_) => "Archived",
    });
    let args_type = match export.args {
        Args::Archived(_) => {
            quote!(::core::option::Option::Some(#private::ArchiveType::of::<#args_struct_name>))
        }
        _ => quote!(::core::option::Option::None),
    };
    let result_type = match &export.result {
        ResultKind::Archived(t) => {
            quote!(::core::option::Option::Some(#private::ArchiveType::of::<#t>))
        }
        _ => quote!(::core::option::Option::None),
    };
    let arg_count = u16::try_from(export.args.count()).expect("checked in check::args");
    let is_async = export.is_async;
    let pure = export.pure;
    let signature = LitStr::new(&export.signature, export.ident.span());
    let which_argument = which_argument(export, &names);
    quote! {
        const _: () = {
            #args_struct
            #invoke
            /// The export as its own entry point knows it. A type and never a value (a
            /// unit struct would be both), so a function of the same name is still the
            /// one the wrapper calls.
            enum __MemlinkOwnEntry {}
            impl #private::OwnEntry for __MemlinkOwnEntry {
                const ID: ::core::primitive::u32 = #private::method_id(#name);
                fn entry() -> &'static #private::MethodEntry {
                    &__MEMLINK_METHOD
                }
                #[inline(always)]
                fn invoke(
                    call: &#private::Invocation<'_>,
                ) -> ::core::result::Result<(), #private::ModuleError> {
                    __memlink_invoke(call)
                }
            }
            #[#private::linkme::distributed_slice(#private::METHODS)]
            #[linkme(crate = #private::linkme)]
            static __MEMLINK_METHOD: #private::MethodEntry = #private::MethodEntry {
                name: #name,
                args_format: #args_format,
                result_format: #result_format,
                arg_count: #arg_count,
                is_async: #is_async,
                pure: #pure,
                crate_name: match ::core::option_env!("MEMLINK_MODULE_NAME") {
                    ::core::option::Option::Some(name) => name,
                    ::core::option::Option::None => ::core::env!("CARGO_CRATE_NAME"),
                },
                named: ::core::option_env!("MEMLINK_MODULE_NAME").is_some(),
                crate_version: ::core::env!("CARGO_PKG_VERSION"),
                location: ::core::concat!(::core::file!(), ":", ::core::line!()),
                unwinds: ::core::cfg!(panic = "unwind"),
                args_type: #args_type,
                result_type: #result_type,
                signature: #signature,
                which_argument: #which_argument,
                invoke: __memlink_invoke,
                call: ::core::option::Option::Some(
                    #private::export_call::<__MemlinkOwnEntry>,
                ),
            };
        };
    }
}

/// The entry's `which_argument`: for parameters decoded from MessagePack, the function
/// that names the one a refused call's bytes fail at (the argument struct's fields, in
/// order); `None` for raw or archived arguments, or none at all.
fn which_argument(export: &Export, names: &Names) -> TokenStream {
    let private = quote!(::memlink_msdk::__private);
    match &export.args {
        Args::MessagePack(fields) if !fields.is_empty() => {
            let args_struct = &names.args_struct;
            let params = fields.iter().map(|f| f.name.unraw().to_string());
            quote! {
                ::core::option::Option::Some(|bytes: &[::core::primitive::u8]| {
                    #private::which_argument::<#args_struct>(bytes, &[#(#params),*])
                })
            }
        }
        _ => quote!(::core::option::Option::None),
    }
}

/// The `Format` variant named `variant`.
fn format(variant: &str) -> TokenStream {
    let variant = Ident::new(variant, Span::call_site());
    quote!(::memlink_msdk::__private::Format::#variant)
}

/// The struct MessagePack arguments decode into. Its field names are the parameter
/// names, so the arguments may come as an array or as a map keyed by name; unknown keys
/// are an error rather than silently dropped, and the struct's serde name says whose
/// arguments failed to decode.
fn args_struct(export: &Export, names: &Names) -> TokenStream {
    if let Args::Archived(params) = &export.args {
        return archived_tuple(params, names);
    }
    let Args::MessagePack(fields) = &export.args else {
        return TokenStream::new();
    };
    let field_names = fields.iter().map(|f| &f.name);
    let field_types = fields.iter().map(|f| &f.ty);
    let serde_name = format!("arguments of `{}`", export.name);
    let args_struct = &names.args_struct;
    quote! {
        // The fields are the parameters' types, written by the author, whose lint it is
        // at their function (an `allow` there does not reach this struct).
        #[allow(clippy::type_complexity)]
        #[derive(::memlink_msdk::__private::serde::Deserialize)]
        #[serde(
            crate = "::memlink_msdk::__private::serde",
            deny_unknown_fields,
            rename = #serde_name,
            expecting = #serde_name
        )]
        struct #args_struct {
            #(#field_names: #field_types,)*
        }
    }
}

/// The type the arguments' archive holds: the tuple of the parameters' unarchived types.
fn archived_tuple(params: &[ArchivedArg], names: &Names) -> TokenStream {
    let types = params.iter().map(|p| match p {
        ArchivedArg::Archived(t) => quote!(#t),
        ArchivedArg::Str => quote!(::std::string::String),
        ArchivedArg::Bytes => quote!(::std::vec::Vec<::core::primitive::u8>),
    });
    let name = &names.args_struct;
    // The parameters' types, as for the MessagePack arguments' struct.
    quote!(#[allow(clippy::type_complexity)] type #name = (#(#types,)*);)
}

/// The wrapper the method table points at: decode, call, encode.
fn invoke_fn(export: &Export, names: &Names) -> TokenStream {
    let Names { inv, value, .. } = names;
    let decode = decode_args(export, names);
    let call = call(export, names);
    let encode = match &export.result {
        ResultKind::Raw => {
            quote!(#inv.encode_raw_result(::core::convert::AsRef::<[::core::primitive::u8]>::as_ref(&#value)))
        }
        ResultKind::MessagePack => {
            // Located at the `Ok` type (with the wrapper's hygiene): a `T` that is not
            // `Serialize` is reported there, not at the attribute.
            let at = Span::mixed_site().located_at(export.ok_span);
            let value = Ident::new("__value", at);
            quote_spanned!(at=> #inv.encode_result(&#value))
        }
        ResultKind::Scalar => quote!(#inv.encode_scalar_result(#value)),
        ResultKind::Archived(t) => {
            // Located at the `T` of `Rkyv<T>`: one that cannot be archived is reported
            // there, as `ArchiveType::of` reports it, not at the attribute.
            let at = Span::mixed_site().located_at(t.span());
            let value = Ident::new("__value", at);
            quote_spanned!(at=> #inv.encode_archived_result(&#value.0))
        }
    };
    // The error converted by one call spanned at the error type: one that does not
    // convert into `ModuleError` is reported there, once, not at the attribute. rustc
    // reports it at the call's argument, which must have the user's span for that (a
    // mixed-site span located there is reported at the attribute): the one local with
    // call-site hygiene, named so that no item of the user's is likely to shadow it.
    let error = Ident::new("__memlink_error", export.error_span);
    let into_error = quote_spanned! {export.error_span=>
        ::core::convert::Into::<::memlink_msdk::__private::ModuleError>::into(#error)
    };
    quote! {
        #[inline]
        fn __memlink_invoke(
            #inv: &::memlink_msdk::__private::Invocation<'_>,
        ) -> ::core::result::Result<(), ::memlink_msdk::__private::ModuleError> {
            #decode
            // The host calling an export its author marked `#[deprecated]` (kept for the
            // hosts that still call it) is no use of it by the author: rustc would warn at
            // the function, with nothing the author could change but the attribute.
            #[allow(deprecated)]
            let #value = match #call {
                ::core::result::Result::Ok(#value) => #value,
                ::core::result::Result::Err(#error) => {
                    return ::core::result::Result::Err(#into_error);
                }
            };
            #encode
        }
    }
}

/// The statements that bind the arguments to `__memlink_arg{i}`.
fn decode_args(export: &Export, names: &Names) -> TokenStream {
    let inv = &names.inv;
    let arg = Names::arg(0);
    match &export.args {
        Args::Raw(RawArg::Str) => quote!(let #arg = #inv.raw_str()?;),
        Args::Raw(RawArg::String) => {
            quote!(let #arg = ::std::borrow::ToOwned::to_owned(#inv.raw_str()?);)
        }
        Args::Raw(RawArg::ByteSlice) => quote!(let #arg = #inv.raw_bytes();),
        Args::Raw(RawArg::Bytes) => {
            quote!(let #arg = ::std::borrow::ToOwned::to_owned(#inv.raw_bytes());)
        }
        Args::MessagePack(fields) => decode_struct(fields, names),
        Args::Archived(params) => access_archive(params, names),
    }
}

/// Validates the arguments' archive in place and binds a view of each tuple field.
fn access_archive(params: &[ArchivedArg], names: &Names) -> TokenStream {
    let Names {
        inv, args_struct, ..
    } = names;
    let root = Ident::new("__memlink_archive", Span::mixed_site());
    let binds = params.iter().enumerate().map(|(i, p)| {
        let local = Names::arg(i);
        let field = syn::Index::from(i);
        match p {
            ArchivedArg::Archived(_) => quote!(let #local = &#root.#field;),
            ArchivedArg::Str => quote!(let #local = #root.#field.as_str();),
            ArchivedArg::Bytes => quote!(let #local = #root.#field.as_slice();),
        }
    });
    quote! {
        let #root = #inv.access_archived::<#args_struct>()?;
        #(#binds)*
    }
}

/// Decodes the argument struct and destructures it into the argument locals. When every
/// parameter is a scalar, the plain positional form (`[a, b]`) is read without serde
/// first; anything else falls back to the struct, which decodes it (or refuses it) as it
/// always did.
fn decode_struct(fields: &[Field], names: &Names) -> TokenStream {
    let Names {
        inv, args_struct, ..
    } = names;
    if fields.is_empty() {
        // Nothing to decode: the usual encodings of "no arguments" skip the decoder.
        return quote!(#inv.decode_no_args::<#args_struct>()?;);
    }
    let field_names: Vec<&Ident> = fields.iter().map(|f| &f.name).collect();
    let locals: Vec<Ident> = (0..fields.len()).map(Names::arg).collect();
    let by_serde = quote! {
        let #args_struct { #(#field_names: #locals,)* } =
            #inv.decode_args::<#args_struct>()?;
    };
    let scalars = fields.len() <= 8 && fields.iter().all(|f| types::is_plain_arg(&f.ty));
    if !scalars {
        return by_serde;
    }
    let field_types = fields.iter().map(|f| &f.ty);
    quote! {
        let (#(#locals,)*) = match #inv.scalar_args::<(#(#field_types,)*)>() {
            ::core::option::Option::Some(__memlink_scalars) => __memlink_scalars,
            ::core::option::Option::None => {
                #by_serde
                (#(#locals,)*)
            }
        };
    }
}

/// The call of the user's function, under `block_on` when it is async (which fails with
/// `Timeout` when the call's deadline passes first).
fn call(export: &Export, names: &Names) -> TokenStream {
    let inv = &names.inv;
    let ident = &export.ident;
    let context = match export.context {
        ContextKind::Ref => quote!(#inv.context()),
        ContextKind::Value => quote!(::core::clone::Clone::clone(#inv.context())),
    };
    let args = (0..export.args.count()).map(Names::arg);
    let call = quote!(#ident(#context, #(#args),*));
    if export.is_async {
        quote!(#inv.block_on(#call)?)
    } else {
        call
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    /// The registration of `item`, parsed back as Rust to prove it is well formed.
    fn expand(item: TokenStream) -> syn::File {
        let func: Function = syn::parse2(item).unwrap();
        let export = parse::export(Ok(parse::AttrArgs::default()), &func).unwrap();
        syn::parse2(registration(&export)).unwrap()
    }

    #[test]
    fn msgpack_export_decodes_a_struct_named_after_the_parameters() {
        let file = expand(quote! {
            pub fn add(_ctx: &CallContext, a: u32, _: u32) -> Result<u32> { Ok(a) }
        });
        let text = quote!(#file).to_string();
        assert!(
            text.contains("struct __MemlinkArgs { a : u32 , arg1 : u32 , }"),
            "{text}"
        );
        assert!(text.contains("arg_count : 2u16"), "{text}");
        assert!(text.contains("Format :: MessagePack"), "{text}");
        assert!(text.contains("add (__inv . context () , __memlink_arg0 , __memlink_arg1)"));
        assert!(
            text.contains("const ID : :: core :: primitive :: u32 = :: memlink_msdk :: __private :: method_id (\"add\")")
                && text.contains("export_call :: < __MemlinkOwnEntry >"),
            "the export's own entry point, for its id: {text}"
        );
        assert!(
            !text.contains("unsafe"),
            "nothing unsafe in the author's crate: {text}"
        );
    }

    #[test]
    fn raw_async_export_has_no_struct_and_blocks_on_the_future() {
        let file = expand(quote! {
            async fn up(ctx: CallContext<'_>, s: &str) -> Result<String> { Ok(s.into()) }
        });
        let text = quote!(#file).to_string();
        assert!(!text.contains("struct __MemlinkArgs"), "{text}");
        assert!(text.contains("args_format : :: memlink_msdk :: __private :: Format :: Raw"));
        assert!(text.contains("result_format : :: memlink_msdk :: __private :: Format :: Raw"));
        assert!(text.contains("__inv . block_on (up (:: core :: clone :: Clone :: clone"));
        assert!(
            text.contains(")) ?"),
            "block_on's timeout is propagated: {text}"
        );
        assert!(text.contains("encode_raw_result"), "{text}");
        assert!(text.contains("is_async : true"), "{text}");
    }
}
