//! Just enough of a MessagePack value to find a raw argument in a typed value.

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

pub(crate) enum Value {
    Bytes(Vec<u8>),
    Int(u64),
    List(Vec<Value>),
    Other,
}

impl Value {
    pub(crate) fn into_bytes(self) -> Option<Vec<u8>> {
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
