//! Typed calls: encoding arguments and decoding results the way each method's format
//! wants them.

use memlink_msdk::abi::Format;
use memlink_msdk::serialize;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes `args` for a method whose arguments are in `format`.
///
/// MessagePack: the value as it is (a tuple becomes an array, a struct a map).
/// Raw: the value must be one string or byte string, alone or in a one-element tuple.
/// MessagePack cannot tell a `Vec<u8>` from a tuple of small integers, so a sequence
/// whose items all fit in a byte counts as bytes.
pub(crate) fn encode_args<A: Serialize + ?Sized>(
    format: Format,
    args: &A,
) -> Result<Vec<u8>, String> {
    let packed = serialize::to_msgpack(args).map_err(|e| e.to_string())?;
    match format {
        Format::Raw => raw_payload(&packed).ok_or_else(|| {
            "this method takes one string or byte argument: pass a &str, String, &[u8] or Vec<u8>".to_owned()
        }),
        _ => Ok(packed),
    }
}

/// Pulls the bytes out of a MessagePack str, bin, or array of small integers (how serde
/// encodes `Vec<u8>`), possibly inside a one-element array.
fn raw_payload(packed: &[u8]) -> Option<Vec<u8>> {
    let value: rmpv_lite::Value = serialize::from_msgpack(packed).ok()?;
    value.into_bytes()
}

/// Decodes the result of a method whose result is in `format`.
pub(crate) fn decode_result<R: DeserializeOwned>(
    format: Format,
    bytes: &[u8],
) -> Result<R, String> {
    match format {
        Format::Raw => {
            // Offer the bytes to `R` as a string when they are UTF-8, else as a list.
            if let Ok(text) = std::str::from_utf8(bytes) {
                if let Ok(v) = serialize::from_msgpack::<R>(
                    &serialize::to_msgpack(text).map_err(|e| e.to_string())?,
                ) {
                    return Ok(v);
                }
            }
            serialize::from_msgpack(&serialize::to_msgpack(bytes).map_err(|e| e.to_string())?)
                .map_err(|e| format!("cannot decode the raw result: {e}"))
        }
        _ => serialize::from_msgpack(bytes).map_err(|e| format!("cannot decode the result: {e}")),
    }
}

mod rmpv_lite {
    //! Just enough of a MessagePack value to find a raw argument.
    use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

    pub(super) enum Value {
        Bytes(Vec<u8>),
        Int(u64),
        List(Vec<Value>),
        Other,
    }

    impl Value {
        pub(super) fn into_bytes(self) -> Option<Vec<u8>> {
            match self {
                Value::Bytes(b) => Some(b),
                Value::List(mut items) if items.len() == 1 => match items.pop()? {
                    Value::Bytes(b) => Some(b),
                    Value::List(inner) => ints(inner),
                    _ => None,
                },
                Value::List(items) => ints(items),
                _ => None,
            }
        }
    }

    fn ints(items: Vec<Value>) -> Option<Vec<u8>> {
        items
            .into_iter()
            .map(|v| match v {
                Value::Int(n) => u8::try_from(n).ok(),
                _ => None,
            })
            .collect()
    }

    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(V)
        }
    }

    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a MessagePack value")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
            Ok(Value::Bytes(v.as_bytes().to_vec()))
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
            Ok(Value::Bytes(v.to_vec()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            Ok(Value::Int(v))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
            Ok(Value::Other)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
            Ok(Value::Other)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
            Ok(Value::Other)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            Ok(Value::Other)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(v) = seq.next_element()? {
                items.push(v);
            }
            Ok(Value::List(items))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            while map
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            Ok(Value::Other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_args_are_positional_arrays() {
        assert_eq!(
            encode_args(Format::MessagePack, &(2u32, 3u32)).unwrap(),
            [0x92, 2, 3]
        );
        assert_eq!(
            encode_args(Format::MessagePack, &(7u32,)).unwrap(),
            [0x91, 7]
        );
    }

    #[test]
    fn raw_args_take_the_one_string_or_bytes() {
        assert_eq!(encode_args(Format::Raw, "hello").unwrap(), b"hello");
        assert_eq!(encode_args(Format::Raw, &("hi",)).unwrap(), b"hi");
        assert_eq!(encode_args(Format::Raw, &vec![1u8, 2]).unwrap(), [1, 2]);
        assert_eq!(encode_args(Format::Raw, &(vec![9u8],)).unwrap(), [9]);
        assert!(encode_args(Format::Raw, &(1u32, 300u32))
            .unwrap_err()
            .contains("one string"));
        assert!(encode_args(Format::Raw, &("a", "b")).is_err());
        assert!(encode_args(Format::Raw, &-1i32).is_err());
    }

    #[test]
    fn raw_results_decode_as_strings_or_bytes() {
        assert_eq!(decode_result::<String>(Format::Raw, b"hey").unwrap(), "hey");
        assert_eq!(
            decode_result::<Vec<u8>>(Format::Raw, &[0xff, 0]).unwrap(),
            vec![0xff, 0]
        );
        assert_eq!(
            decode_result::<Vec<u8>>(Format::Raw, b"ok").unwrap(),
            b"ok".to_vec()
        );
    }
}
