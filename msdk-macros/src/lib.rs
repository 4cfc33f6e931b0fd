//! Procedural macros of memlink-msdk.
use proc_macro::TokenStream;

/// Exports a function from a memlink module.
#[proc_macro_attribute]
pub fn memlink_export(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
