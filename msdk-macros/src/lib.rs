//! Procedural macros of memlink-msdk: `#[memlink_export]`.
//!
//! Use them through `memlink_msdk` (`use memlink_msdk::prelude::*;`), never directly:
//! the generated code refers to `::memlink_msdk::__private`.

// The work is split as in serde_derive and tokio-macros: `parse` reads the input into
// the model of `export`, `check` enforces the rules on the way, `types` classifies the
// types of the signature, `signature` writes it as text, and `generate` writes the
// registration from the model.

mod check;
mod export;
mod generate;
mod parse;
mod signature;
mod types;

use proc_macro::TokenStream;
use quote::quote;

/// Exports a function from a memlink module.
///
/// ```
/// use memlink_msdk::prelude::*;
///
/// #[memlink_export]
/// pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
///     Ok(a + b)
/// }
///
/// #[memlink_export(name = "shout")]
/// pub fn upper(_ctx: &CallContext, text: &str) -> Result<String> {
///     Ok(text.to_uppercase())
/// }
/// ```
///
/// The function stays as it is; the macro adds an entry to the module's method table.
/// It must be a free function, not a method or an associated function in an `impl`
/// block (a method is refused at its `self`; an associated function without one gets
/// rustc's errors about the generated code, which cannot live in an `impl`). The first
/// parameter must be the context (`&CallContext` or `CallContext`), and only the first,
/// and the return type a `Result<T>` or `Result<T, E>` with `E: Into<ModuleError>`. The
/// other parameters arrive as MessagePack (an array, or a map keyed by parameter name:
/// `arg{i}` for a `_` or a pattern) and must be owned and `Deserialize`, except
/// that a single `String`, `&str`, `Vec<u8>` or `&[u8]` argument receives the raw bytes;
/// a `String`, `Vec<u8>`, `&str` or `&[u8]` result (`&mut` too, as the arena lends
/// bytes) leaves as raw bytes, any other `T: Serialize` as MessagePack. A borrowed argument borrows from the call, never `'static`; a `#[cfg]`
/// goes on the whole function, not on a parameter. An `async fn` runs on the module's
/// executor.
///
/// `name = "..."` exports the function under another name. `pure` marks a function whose
/// result depends on its arguments alone (no state, no clock, no calls to other
/// modules): a host with a result cache may answer a call from an earlier result for
/// the same argument bytes.
#[proc_macro_attribute]
pub fn memlink_export(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into()).into()
}

/// The function, unchanged (see [`generate::function`] for the one exception), followed
/// by its registration or by every error found in it. On error the function is still
/// emitted, so its callers do not get "cannot find function" errors on top of the real
/// ones.
fn expand(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let func = match syn::parse2::<parse::Function>(item.clone()) {
        Ok(func) => func,
        Err(unread) => {
            let error = parse::not_a_function(&item, unread).into_compile_error();
            return quote!(#item #error);
        }
    };
    let attr = parse::attr_args(attr);
    let export = parse::export(attr, &func);
    let function = generate::function(item, &func);
    match export {
        Ok(export) => {
            let registration = generate::registration(&export);
            quote!(#function #registration)
        }
        Err(errors) => {
            let errors = errors.into_compile_error();
            quote!(#function #errors)
        }
    }
}
