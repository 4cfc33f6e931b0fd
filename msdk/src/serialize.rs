//! MessagePack, the encoding of arguments and results that are plain serde types.
//!
//! Arguments are the argument tuple as an array (`add(2, 3)` is `[2, 3]`) or a map keyed
//! by parameter name; results are encoded with structs as maps, so a generic reader (the
//! `memlink` CLI's JSON output) sees field names. Both sides use these functions, so
//! module and host always agree.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ModuleError, Result};

/// Deepest nesting a decoder accepts: deeper input is an error, not a stack overflow.
pub const MAX_DEPTH: usize = 128;

/// Encodes `value`, structs as maps, appending to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    value.serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())?;
    Ok(())
}

/// Encodes `value`, structs as maps.
///
/// ```
/// let bytes = memlink_msdk::serialize::to_msgpack(&(2u32, 3u32))?;
/// assert_eq!(bytes, [0x92, 2, 3]);
/// # Ok::<(), memlink_msdk::ModuleError>(())
/// ```
pub fn to_msgpack<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes a whole buffer: nesting is limited to [`MAX_DEPTH`] and trailing bytes are an
/// error.
pub fn from_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let mut rest = bytes;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    de.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut de)?;
    if !rest.is_empty() {
        return Err(ModuleError::Serialize(format!(
            "{} trailing bytes after the MessagePack value",
            rest.len()
        )));
    }
    Ok(value)
}

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

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct User {
        id: u32,
        name: String,
    }

    #[test]
    fn structs_round_trip_as_maps() {
        let u = User {
            id: 1,
            name: "ada".into(),
        };
        let bytes = to_msgpack(&u).unwrap();
        assert_eq!(bytes[0], 0x82, "a two-entry map");
        assert_eq!(from_msgpack::<User>(&bytes).unwrap(), u);
    }

    #[test]
    fn structs_decode_from_arrays_too() {
        let bytes = rmp_serde::to_vec(&(1u32, "ada")).unwrap();
        assert_eq!(from_msgpack::<User>(&bytes).unwrap().name, "ada");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let err = from_msgpack::<u32>(&[0x05, 0x06]).unwrap_err();
        assert_eq!(
            err,
            ModuleError::Serialize("1 trailing bytes after the MessagePack value".into())
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut bytes = vec![0x91; 100_000];
        bytes.push(0xc0);
        let err = from_msgpack::<serde_json::Value>(&bytes).unwrap_err();
        assert!(
            matches!(err, ModuleError::Serialize(m) if m.contains("depth")),
            "limit reached"
        );
    }

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
