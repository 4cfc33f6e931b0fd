//! MessagePack, the encoding of arguments and results that are plain serde types.
//!
//! Arguments are the argument tuple as an array (`add(2, 3)` is `[2, 3]`) or a map keyed
//! by parameter name; results are encoded with structs as maps, so a generic reader (the
//! `memlink` CLI's JSON output) sees field names. The codec is the ABI crate's
//! (`memlink_abi::msgpack`), which the host uses too, so module and host always agree;
//! decoding is bounded in depth whatever the types do.

use serde::de::DeserializeOwned;

pub use memlink_abi::msgpack::{encode_into, from_msgpack, to_msgpack, MAX_DEPTH, MAX_NESTING};

use memlink_abi::msgpack::{failure_path, PathStep};

pub mod primitive;

use crate::error::{ModuleError, Result};

/// Decodes the arguments of an export: empty input and nil (how `()` encodes) stand for
/// no arguments (`[]`).
pub(crate) fn decode_args<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    from_msgpack(as_arguments(bytes)).map_err(|e| match e {
        ModuleError::Serialize(m) => ModuleError::Serialize(format!("bad arguments: {m}")),
        other => other,
    })
}

/// The arguments `bytes` stand for: empty input and nil are no arguments (`[]`).
#[inline]
fn as_arguments(bytes: &[u8]) -> &[u8] {
    const EMPTY_ARRAY: &[u8] = &[0x90];
    if bytes.is_empty() || bytes == [0xc0] {
        EMPTY_ARRAY
    } else {
        bytes
    }
}

/// Which of the parameters `params` (the fields of `T`, in order) the arguments `bytes`
/// fail to decode as, and where in it: `argument `b`: `, `argument `user` at `.name`: `,
/// or nothing when the failure is not inside one argument. Decodes `bytes` again,
/// keeping track of where: for an error's message only (an export's
/// `MethodEntry::which_argument`).
#[cold]
pub fn which_argument<T: DeserializeOwned>(bytes: &[u8], params: &[&str]) -> String {
    describe_path(&failure_path::<T>(as_arguments(bytes)), params)
}

/// The most steps of a path into an argument an error names: a value nested deeper is
/// named by where it starts.
const SHOWN_STEPS: usize = 8;

/// `argument `b`: ` for a failure at `path` (`argument `user` at `.name`: ` inside one),
/// or nothing for a failure that is not inside an argument.
fn describe_path(path: &[PathStep], params: &[&str]) -> String {
    let name = match path.first() {
        Some(PathStep::Index(i)) => match params.get(*i) {
            Some(name) => format!("`{name}`"),
            None => format!("{}", i + 1),
        },
        Some(PathStep::Key(key)) => format!("`{key}`"),
        _ => return String::new(),
    };
    let mut within = String::new();
    for step in path.iter().skip(1).take(SHOWN_STEPS) {
        match step {
            PathStep::Index(i) => within.push_str(&format!("[{i}]")),
            PathStep::Key(key) => within.push_str(&format!(".{key}")),
            PathStep::Variant(v) => within.push_str(&format!("::{v}")),
            _ => within.push_str(".?"),
        }
    }
    if path.len() > SHOWN_STEPS + 1 {
        within.push_str("...");
    }
    if within.is_empty() {
        format!("argument {name}: ")
    } else {
        format!("argument {name} at `{within}`: ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn empty_arguments_mean_none() {
        #[derive(Deserialize)]
        struct NoArgs {}
        assert!(decode_args::<NoArgs>(b"").is_ok());
        assert!(decode_args::<NoArgs>(b"\xc0").is_ok());
        let err = decode_args::<u32>(b"\xc1").err().unwrap();
        assert!(matches!(err, ModuleError::Serialize(m) if m.starts_with("bad arguments: ")));
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)] // only decoded, for the errors
    struct User {
        id: u32,
        name: String,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)] // only decoded, for the errors
    struct Args {
        count: u32,
        user: User,
    }

    fn error(bytes: &[u8]) -> String {
        match decode_args::<Args>(bytes) {
            Err(ModuleError::Serialize(m)) => {
                let why = m.strip_prefix("bad arguments: ").unwrap();
                format!("{}{why}", which_argument::<Args>(bytes, &["count", "user"]))
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn an_error_names_the_argument_and_where_in_it() {
        let bytes = to_msgpack(&("seven", (1u32, "ada"))).unwrap();
        let m = error(&bytes);
        assert!(m.starts_with("argument `count`: "), "{m}");
        let bytes = to_msgpack(&(7u32, (1u32, 2u32))).unwrap();
        let m = error(&bytes);
        assert!(m.starts_with("argument `user` at `[1]`: "), "{m}");
        let by_name = std::collections::BTreeMap::from([("count", 1u32), ("user", 2u32)]);
        let m = error(&to_msgpack(&by_name).unwrap());
        assert!(m.starts_with("argument `user`: "), "{m}");
        // Not inside one argument: the count is wrong.
        let m = error(&to_msgpack(&(1u32,)).unwrap());
        assert!(
            m.starts_with("cannot decode MessagePack: invalid length 1"),
            "{m}"
        );
    }
}
