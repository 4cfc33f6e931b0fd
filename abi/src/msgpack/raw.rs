//! Just enough of a MessagePack value to find a raw argument in a typed value, found in
//! place in the encoded bytes ([`in_place`]), without an allocation.

/// The raw argument in `packed` (one MessagePack value), found in place: a string or
/// byte string's payload where it lies, or the small integers of an array written over
/// the array's start. The argument is a string or byte string; an array of integers in
/// `0..=255` (how serde writes a `&[u8]` or a `Vec<u8>`); or either inside an array of
/// one (an argument tuple of one). An array of one integer is that one byte: a tuple of
/// one integer is no raw argument, so nothing else could be meant. `None` when there is
/// none, or `packed` is not exactly one value.
pub(crate) fn in_place(packed: &mut [u8]) -> Option<core::ops::Range<usize>> {
    match item(packed, 0)? {
        (Item::Bytes(range), end) if end == packed.len() => Some(range),
        (Item::Array(1), start) => match item(packed, start)? {
            (Item::Bytes(range), end) if end == packed.len() => Some(range),
            (Item::Array(n), items) => ints_in_place(packed, items, n),
            // An array of one byte: that byte.
            (Item::Byte(_), _) => ints_in_place(packed, start, 1),
            _ => None,
        },
        (Item::Array(n), items) => ints_in_place(packed, items, n),
        _ => None,
    }
}

/// One MessagePack item's head.
enum Item {
    /// A string or byte string, with its payload's place.
    Bytes(core::ops::Range<usize>),
    /// An array of this many items, which follow.
    Array(usize),
    /// An integer in `0..=255`.
    Byte(u8),
    /// Anything else.
    Other,
}

/// The item at `at` and where what follows it starts (for an array: its first item).
fn item(packed: &[u8], at: usize) -> Option<(Item, usize)> {
    let head = *packed.get(at)?;
    let be = |from: usize, n: usize| -> Option<usize> {
        let bytes = packed.get(from..from + n)?;
        Some(bytes.iter().fold(0usize, |v, b| (v << 8) | usize::from(*b)))
    };
    let bytes = |len_at: usize, len_size: usize| -> Option<(Item, usize)> {
        let len = be(len_at, len_size)?;
        let start = len_at + len_size;
        let end = start.checked_add(len).filter(|&e| e <= packed.len())?;
        Some((Item::Bytes(start..end), end))
    };
    match head {
        0x00..=0x7f => Some((Item::Byte(head), at + 1)),
        0xcc => Some((Item::Byte(*packed.get(at + 1)?), at + 2)),
        // A wider unsigned integer is a byte when its value is one, as `Value` reads it
        // (an encoder may write a small `u16` in two bytes).
        0xcd..=0xcf => {
            let size = 2 << (head - 0xcd);
            let item = match u8::try_from(be(at + 1, size)?) {
                Ok(b) => Item::Byte(b),
                Err(_) => Item::Other,
            };
            Some((item, at + 1 + size))
        }
        0xa0..=0xbf => {
            let start = at + 1;
            let end = start + usize::from(head & 0x1f);
            (end <= packed.len()).then_some((Item::Bytes(start..end), end))
        }
        0xd9 | 0xc4 => bytes(at + 1, 1),
        0xda | 0xc5 => bytes(at + 1, 2),
        0xdb | 0xc6 => bytes(at + 1, 4),
        0x90..=0x9f => Some((Item::Array(usize::from(head & 0x0f)), at + 1)),
        0xdc => Some((Item::Array(be(at + 1, 2)?), at + 3)),
        0xdd => Some((Item::Array(be(at + 1, 4)?), at + 5)),
        _ => Some((Item::Other, at)),
    }
}

/// The `n` items from `at` as bytes, each an integer in `0..=255`, written from `at`
/// on (each item takes at least the byte it becomes, so nothing unread is overwritten);
/// they must end `packed`.
fn ints_in_place(packed: &mut [u8], at: usize, n: usize) -> Option<core::ops::Range<usize>> {
    let mut read = at;
    for i in 0..n {
        match item(packed, read)? {
            (Item::Byte(b), next) => {
                packed[at + i] = b;
                read = next;
            }
            _ => return None,
        }
    }
    (read == packed.len()).then_some(at..at + n)
}

#[cfg(test)]
mod tests {
    use super::in_place;
    use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

    /// A MessagePack value decoded, and the raw argument it holds: the plain reading
    /// `in_place` is checked against (`convert_args` used it, at 32 bytes a value).
    enum Value {
        Bytes(Vec<u8>),
        Int(u64),
        List(Vec<Value>),
        Other,
    }

    impl Value {
        /// The raw argument `self` holds: a string or byte string; an array of integers in
        /// `0..=255` (how serde writes a `&[u8]` or a `Vec<u8>`); or either inside an array
        /// of one (an argument tuple of one). An array of one integer is that one byte: a
        /// tuple of one integer is no raw argument, so nothing else could be meant.
        fn into_bytes(self) -> Option<Vec<u8>> {
            match self {
                Value::Bytes(b) => Some(b),
                Value::List(mut items) if items.len() == 1 => match items.pop()? {
                    Value::Bytes(b) => Some(b),
                    Value::List(inner) => ints(inner),
                    Value::Int(n) => Some(vec![u8::try_from(n).ok()?]),
                    Value::Other => None,
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

    fn decoded(packed: &[u8]) -> Option<Vec<u8>> {
        crate::msgpack::from_msgpack::<Value>(packed)
            .ok()
            .and_then(Value::into_bytes)
    }

    fn found(packed: &[u8]) -> Option<Vec<u8>> {
        let mut copy = packed.to_vec();
        in_place(&mut copy).map(|range| copy[range].to_vec())
    }

    #[test]
    fn the_argument_found_in_place_is_the_one_a_decoded_value_holds() {
        let cases: &[&[u8]] = &[
            b"\xa5hello",
            b"\xc4\x02\x01\x02",
            b"\x91\xa2hi",
            b"\x92\x01\x02",
            b"\x92\xcc\xff\x00",
            b"\x91\x05",
            b"\x91\x92\x01\x02",
            // Small values in wider encodings, as an encoder may write them.
            b"\x92\xcd\x00\x05\xce\x00\x00\x00\x06",
            b"\x91\xcf\x00\x00\x00\x00\x00\x00\x00\xff",
            b"\x92\xcd\x01\x00\x01",
            b"\x92\xd0\x05\x01",
            b"\x05",
            b"\x92\x01",
            b"\x92\x01\x02\x03",
            b"\xa5hel",
            b"\x80",
            b"\x91\x91\x91\x01",
            b"\xdc\x00\x02\x01\x02",
            b"",
        ];
        for case in cases {
            assert_eq!(found(case), decoded(case), "{case:x?}");
        }
        // Every sequence of up to three bytes over the markers that matter, and some
        // payload bytes.
        let alphabet = [
            0x00, 0x01, 0x7f, 0x80, 0x91, 0x92, 0xa1, 0xc4, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xdc,
            0xff,
        ];
        let mut case = Vec::new();
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for len in 1..=3 {
                        case.clear();
                        case.extend_from_slice(&[a, b, c][..len]);
                        assert_eq!(found(&case), decoded(&case), "{case:x?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_large_byte_argument_is_converted_at_its_own_size() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
        let packed = crate::msgpack::to_msgpack(&bytes).unwrap();
        let raw = crate::msgpack::convert_args(crate::Format::Raw, packed).unwrap();
        assert_eq!(raw, bytes);
    }
}
