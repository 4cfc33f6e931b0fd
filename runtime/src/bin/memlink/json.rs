//! A MessagePack result as JSON, whatever it holds: JSON has no place for some of what
//! MessagePack carries, so each such value is written the nearest way JSON can:
//!
//! - a map key that is not a string (`HashMap<u32, _>`) is the key's JSON text (`"1"`);
//! - bytes (`bin`, as `serde_bytes` writes them) are an array of numbers;
//! - an extension type is `[type, [bytes]]`;
//! - a float that is not finite is the string `"NaN"`, `"inf"` or `"-inf"`.
//!
//! The other way, arguments given as JSON: an integer wider than MessagePack carries is
//! found ([`too_wide_integer`]) rather than made a float.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A value read from any self-describing format, as JSON.
pub(crate) struct Json(pub(crate) Value);

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer
            .deserialize_any(JsonVisitor { strict: false })
            .map(Json)
    }
}

/// Why arguments given as JSON were refused.
pub(crate) enum ArgumentsError {
    /// They are not JSON.
    Json(serde_json::Error),
    /// They are, but a map in them gives a key twice (JSON allows it; a call does not).
    KeyTwice(serde_json::Error),
}

/// What a map that gives one key twice says, which [`arguments`] tells apart.
const KEY_TWICE: &str = "is given twice";

/// Arguments given as JSON `text`: a map that gives one key twice is refused (as a
/// module refuses such MessagePack), not read as its last value.
pub(crate) fn arguments(text: &str) -> Result<Value, ArgumentsError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let read = de
        .deserialize_any(JsonVisitor { strict: true })
        .and_then(|value| de.end().map(|()| value));
    read.map_err(|e| match e.is_data() && e.to_string().contains(KEY_TWICE) {
        true => ArgumentsError::KeyTwice(e),
        false => ArgumentsError::Json(e),
    })
}

/// Reads any value as JSON; `strict`, a map's key given twice is an error.
#[derive(Clone, Copy)]
struct JsonVisitor {
    strict: bool,
}

impl<'de> DeserializeSeed<'de> for JsonVisitor {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any MessagePack value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(match Number::from_f64(v) {
            Some(n) => Value::Number(n),
            None if v.is_nan() => Value::from("NaN"),
            None if v > 0.0 => Value::from("inf"),
            None => Value::from("-inf"),
        })
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Array(v.iter().map(|&b| Value::from(b)).collect()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    // rmp-serde hands an extension type over as a newtype holding `(type, bytes)`.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            let key = match key {
                Value::String(s) => s,
                other => serde_json::to_string(&other).map_err(de::Error::custom)?,
            };
            if let Some(earlier) = object.get(&key).filter(|_| self.strict) {
                return Err(de::Error::custom(format_args!(
                    "the key `{key}` {KEY_TWICE} (first as {earlier}, then as {value})"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The first integer in the JSON `text` (valid JSON) that fits in no 64-bit integer.
/// serde_json reads one as the nearest float, which would make `18446744073709551616`
/// a float `18446744073709552000.0` silently (MessagePack has no wider integer).
pub(crate) fn too_wide_integer(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Past the string: its escapes (`\"`) do not end it.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let number = &text[start..i];
                let integer = !number.contains(['.', 'e', 'E']);
                if integer && number.parse::<i64>().is_err() && number.parse::<u64>().is_err() {
                    return Some(number);
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn arguments_that_give_a_key_twice_are_refused_at_any_depth() {
        let text = |e: ArgumentsError| match e {
            ArgumentsError::KeyTwice(e) => e.to_string(),
            ArgumentsError::Json(e) => panic!("not told apart: {e}"),
        };
        let e = text(arguments(r#"{"a": 1, "a": 2, "b": 3}"#).unwrap_err());
        assert!(
            e.starts_with("the key `a` is given twice (first as 1, then as 2)"),
            "{e}"
        );
        let e = text(arguments(r#"[{"x": {"k": "v", "k": "w"}}]"#).unwrap_err());
        assert!(
            e.contains(r#"the key `k` is given twice (first as "v", then as "w")"#),
            "{e}"
        );
        // Otherwise the value serde_json reads.
        let json = r#"{"a": [1, -2, 3.5, null, true, "s", {"b": {}}], "c": 18446744073709551615}"#;
        assert!(
            matches!(arguments(json), Ok(v) if v == serde_json::from_str::<Value>(json).unwrap())
        );
        assert!(
            matches!(arguments("[1] 2"), Err(ArgumentsError::Json(_))),
            "trailing text"
        );
        // A string that says it is no key given twice.
        assert!(arguments(r#"["a key is given twice"]"#).is_ok());
    }

    fn json_of<T: serde::Serialize>(value: &T) -> String {
        let bytes = rmp_serde::to_vec(value).unwrap();
        let Json(v) = memlink_abi::msgpack::from_msgpack(&bytes).unwrap();
        v.to_string()
    }

    #[test]
    fn what_json_has_no_place_for_is_written_the_nearest_way() {
        let by_number: BTreeMap<u32, &str> = [(1, "one"), (20, "twenty")].into();
        assert_eq!(json_of(&by_number), r#"{"1":"one","20":"twenty"}"#);
        let by_pair: BTreeMap<(u8, bool), u8> = [((1, true), 2)].into();
        assert_eq!(json_of(&by_pair), r#"{"[1,true]":2}"#);
        let bin = rmp_serde::to_vec(&serde_bytes_like(b"\x00\xff")).unwrap();
        let Json(v) = memlink_abi::msgpack::from_msgpack(&bin).unwrap();
        assert_eq!(v.to_string(), "[0,255]");
        assert_eq!(
            json_of(&(f64::NAN, f64::INFINITY, -f64::INFINITY, 1.5)),
            r#"["NaN","inf","-inf",1.5]"#
        );
        assert_eq!(
            json_of(&(Some(3u8), None::<u8>, (), "s")),
            r#"[3,null,null,"s"]"#
        );
        // An extension type: fixext1 of type 5 holding 0x2a.
        let Json(v) = memlink_abi::msgpack::from_msgpack(&[0xd4, 0x05, 0x2a]).unwrap();
        assert_eq!(v.to_string(), "[5,[42]]");
    }

    #[test]
    fn integers_wider_than_64_bits_are_found_outside_strings() {
        assert_eq!(
            too_wide_integer("[18446744073709551615, -9223372036854775808]"),
            None
        );
        assert_eq!(
            too_wide_integer("[1, 18446744073709551616]"),
            Some("18446744073709551616")
        );
        assert_eq!(
            too_wide_integer("-9223372036854775809"),
            Some("-9223372036854775809")
        );
        assert_eq!(
            too_wide_integer(r#"{"a\"99999999999999999999": 1e400, "b": 1.5}"#),
            None
        );
        assert_eq!(
            too_wide_integer(r#"["\\", 99999999999999999999]"#),
            Some("99999999999999999999")
        );
    }

    /// Bytes serialized as MessagePack `bin`, as `serde_bytes` does.
    fn serde_bytes_like(bytes: &[u8]) -> impl serde::Serialize + '_ {
        struct Bin<'a>(&'a [u8]);
        impl serde::Serialize for Bin<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bin(bytes)
    }
}
