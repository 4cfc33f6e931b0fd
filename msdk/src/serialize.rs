//! MessagePack, the encoding of arguments and results that are plain serde types.
//!
//! Arguments are the argument tuple as an array (`add(2, 3)` is `[2, 3]`) or a map keyed
//! by parameter name; results are encoded with structs as maps, so a generic reader (the
//! `memlink` CLI's JSON output) sees field names. The codec is the ABI crate's
//! (`memlink_abi::msgpack`), which the host uses too, so module and host always agree;
//! decoding is bounded in depth whatever the types do.

use serde::de::DeserializeOwned;

pub use memlink_abi::msgpack::{encode_into, from_msgpack, to_msgpack, MAX_DEPTH, MAX_NESTING};

pub mod primitive;

use crate::error::{ModuleError, Result};

/// Decodes the arguments of an export: empty input and nil (how `()` encodes) stand for
/// no arguments (`[]`).
pub(crate) fn decode_args<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    const EMPTY_ARRAY: &[u8] = &[0x90];
    let bytes = if bytes.is_empty() || bytes == [0xc0] {
        EMPTY_ARRAY
    } else {
        bytes
    };
    from_msgpack(bytes).map_err(|e| match e {
        ModuleError::Serialize(m) => ModuleError::Serialize(format!("bad arguments: {m}")),
        other => other,
    })
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
}
