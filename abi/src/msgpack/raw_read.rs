//! A raw result offered to a typed reader as it lies: as text (a string), or as its bytes
//! (a sequence of `u8`), the way its MessagePack encoding as either would read, with no
//! encoding made. A `Vec<u8>` of many megabytes was encoded one byte at a time and then
//! decoded the same way.

use serde::de::value::{Error, SeqDeserializer, StrDeserializer};
use serde::de::{DeserializeOwned, Deserializer, Visitor};

/// `bytes` read as an `R` from the form `form` gives them.
pub(crate) fn read<R: DeserializeOwned>(bytes: &[u8], form: Form<'_>) -> Result<R, Error> {
    R::deserialize(Raw { bytes, form })
}

/// How a raw result is offered.
#[derive(Clone, Copy)]
pub(crate) enum Form<'a> {
    /// As this string (the result's bytes, which are UTF-8).
    Text(&'a str),
    /// As a sequence of its bytes.
    Bytes,
}

struct Raw<'a> {
    bytes: &'a [u8],
    form: Form<'a>,
}

impl Raw<'_> {
    fn seq(&self) -> SeqDeserializer<core::iter::Copied<core::slice::Iter<'_, u8>>, Error> {
        SeqDeserializer::new(self.bytes.iter().copied())
    }
}

impl<'de> Deserializer<'de> for Raw<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.form {
            Form::Text(text) => visitor.visit_str(text),
            Form::Bytes => self.seq().deserialize_any(visitor),
        }
    }

    // As MessagePack reads a value that is not nil: the value, present.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    // Text names a unit variant, as a string does in MessagePack.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.form {
            Form::Text(text) => {
                StrDeserializer::<Error>::new(text).deserialize_enum(name, variants, visitor)
            }
            Form::Bytes => self.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.form {
            Form::Text(text) => visitor.visit_str(text),
            Form::Bytes => visitor.visit_bytes(self.bytes),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::{read, Form};
    use crate::msgpack::{from_msgpack, to_msgpack};
    use serde::de::DeserializeOwned;
    use serde::Deserialize;
    use std::fmt::Debug;

    /// What decoding the MessagePack of the result as text, then as its bytes, gave: the
    /// reading [`read`] replaces.
    fn encoded_and_decoded<R: DeserializeOwned>(bytes: &[u8]) -> Option<R> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            if let Ok(v) = from_msgpack(&to_msgpack(text).unwrap()) {
                return Some(v);
            }
        }
        from_msgpack(&to_msgpack(bytes).unwrap()).ok()
    }

    fn offered<R: DeserializeOwned>(bytes: &[u8]) -> Option<R> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            if let Ok(v) = read(bytes, Form::Text(text)) {
                return Some(v);
            }
        }
        read(bytes, Form::Bytes).ok()
    }

    fn agree<R: DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) {
        assert_eq!(
            offered::<R>(bytes),
            encoded_and_decoded::<R>(bytes),
            "{bytes:?} as {}",
            std::any::type_name::<R>()
        );
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Status {
        Ok,
        Failed,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Name(String);

    #[derive(Debug, PartialEq, Deserialize)]
    struct Pair(u8, u8);

    fn every_type(bytes: &[u8]) {
        agree::<String>(bytes);
        agree::<Box<str>>(bytes);
        agree::<Vec<u8>>(bytes);
        agree::<Vec<u32>>(bytes);
        agree::<Vec<bool>>(bytes);
        agree::<Option<String>>(bytes);
        agree::<Option<Vec<u8>>>(bytes);
        agree::<(u8, u8)>(bytes);
        agree::<[u8; 2]>(bytes);
        agree::<Pair>(bytes);
        agree::<Name>(bytes);
        agree::<Status>(bytes);
        agree::<char>(bytes);
        agree::<u64>(bytes);
        agree::<u8>(bytes);
        agree::<bool>(bytes);
        agree::<()>(bytes);
        agree::<serde_json::Value>(bytes);
    }

    #[test]
    fn a_raw_result_reads_as_its_encoding_did() {
        for bytes in [
            &b""[..],
            b"hello",
            b"Ok",
            b"Failed",
            b"x",
            b"12",
            b"\xc3\xa9",
            b"\xff\xfe",
            b"\x01\x02",
            b"\x00",
        ] {
            every_type(bytes);
        }
    }
}
