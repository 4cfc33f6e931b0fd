//! The model of one export: what parsing and checking find in the user's function, and
//! all code generation needs. `check` and `generate` both build on it, and neither on
//! the other.

use proc_macro2::Span;
use syn::{Ident, Type};

use crate::types::{ArchivedArg, ContextKind, RawArg};

/// The generated items that share the value namespace with the user's function, which
/// the wrapper calls by name: a function with one of these names would be shadowed.
pub(crate) const RESERVED: &[&str] = &["__memlink_invoke", "__MEMLINK_METHOD"];

/// Everything code generation needs to know about one export.
pub(crate) struct Export {
    /// The function, called by this name.
    pub(crate) ident: Ident,
    /// The name the host calls it by.
    pub(crate) name: String,
    /// Whether it is an `async fn`, run with `block_on`.
    pub(crate) is_async: bool,
    /// Whether its author marked it `pure`: its result depends on its arguments alone.
    pub(crate) pure: bool,
    /// How it takes its context.
    pub(crate) context: ContextKind,
    /// How its arguments arrive.
    pub(crate) args: Args,
    /// How its `Ok` value leaves.
    pub(crate) result: ResultKind,
    /// Where a `T` that cannot be encoded is reported: the `Ok` type.
    pub(crate) ok_span: Span,
    /// Where an error type that does not convert into `ModuleError` is reported: the
    /// `E` of `Result<T, E>`, or the whole return type of a `Result` alias.
    pub(crate) error_span: Span,
    /// Its signature as text (`add(a: u32, b: u32) -> u32`), for the method table.
    pub(crate) signature: String,
}

/// How an export's `Ok` value is encoded.
pub(crate) enum ResultKind {
    /// MessagePack.
    MessagePack,
    /// MessagePack of a scalar (`()`, `bool`, an integer, a float), written without serde.
    Scalar,
    /// The bytes as they are (`String`, `Vec<u8>`, `&str`, `&[u8]`).
    Raw,
    /// An rkyv archive of the `T` in `Rkyv<T>`.
    Archived(Box<Type>),
}

/// The arguments after the context.
pub(crate) enum Args {
    /// One bytes-like argument, passed the raw argument bytes.
    Raw(RawArg),
    /// Any number of owned arguments, decoded from MessagePack into a struct.
    MessagePack(Vec<Field>),
    /// Borrowed views into one rkyv archive of the parameters' tuple.
    Archived(Vec<ArchivedArg>),
}

impl Args {
    /// How many arguments there are after the context.
    pub(crate) fn count(&self) -> usize {
        match self {
            Args::Raw(_) => 1,
            Args::MessagePack(fields) => fields.len(),
            Args::Archived(params) => params.len(),
        }
    }
}

/// One MessagePack argument: a field of the argument struct.
pub(crate) struct Field {
    /// The field name, which is the key of a map-encoded argument: the parameter's name,
    /// or `arg{i}` for a `_` or destructuring parameter.
    pub(crate) name: Ident,
    /// The parameter's type.
    pub(crate) ty: Type,
}
