//! `u128` as rmp-serde writes it, read without the decoder's cast.
//!
//! rmp-serde writes a `u128` as 16 bytes, big-endian, in a `bin 8`, and reads one from
//! such a binary or any integer, but through an `i128` cast to `u128`: a negative integer
//! (`-1`) arrives as a huge value (`2^128 - 1`) instead of an error. [`U128`] reads what is
//! there with the decoder's `deserialize_seq` (a binary as its bytes, one by one) and
//! converts it itself, taking 16 bytes in any binary or array, as rmp-serde reads a
//! `[u8; 16]` (rmp-serde's own `u128` refuses an array, and a `bin 16` or `bin 32`).

use std::fmt;

use serde::de::{self, SeqAccess, Unexpected, Visitor};

/// Reads a `u128` from an integer that is not negative, or from the 16 big-endian bytes
/// (as a binary or an array) rmp-serde writes, and hands it to the visitor it wraps.
pub(crate) struct U128<V>(pub(crate) V);

impl<'de, V: Visitor<'de>> Visitor<'de> for U128<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a u128 (a non-negative integer, or 16 big-endian bytes)")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.0.visit_u128(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        match u128::try_from(v) {
            Ok(v) => self.0.visit_u128(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V::Value, A::Error> {
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(17, &self));
        }
        self.0.visit_u128(u128::from_be_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use crate::msgpack::{from_msgpack, to_msgpack};

    #[test]
    fn a_negative_integer_is_not_a_u128() {
        for v in [-1i64, i64::MIN] {
            let err = from_msgpack::<u128>(&to_msgpack(&v).unwrap()).unwrap_err();
            assert!(err.to_string().contains(&format!("integer `{v}`")), "{err}");
        }
        // In arguments too: (u128,) is how an export's one argument arrives.
        let err = from_msgpack::<(u128,)>(&to_msgpack(&(-5i32,)).unwrap()).unwrap_err();
        assert!(err.to_string().contains("integer `-5`"), "{err}");
    }

    #[test]
    fn every_u128_rmp_serde_writes_reads_back() {
        for v in [0, 1, 127, u64::MAX as u128, u64::MAX as u128 + 1, u128::MAX] {
            assert_eq!(from_msgpack::<u128>(&to_msgpack(&v).unwrap()).unwrap(), v);
        }
        // Integers as other encoders write them.
        for v in [0u64, 200, u64::MAX] {
            assert_eq!(
                from_msgpack::<u128>(&to_msgpack(&v).unwrap()).unwrap(),
                u128::from(v)
            );
        }
        assert_eq!(from_msgpack::<u128>(&to_msgpack(&7i8).unwrap()).unwrap(), 7);
        // 16 bytes as an array, as rmp-serde reads a `[u8; 16]` (its `u128` does not).
        let mut array = vec![0xdc, 0x00, 0x10];
        array.extend([0u8; 15]);
        array.push(9);
        assert_eq!(from_msgpack::<u128>(&array).unwrap(), 9);
        // Any other length is refused.
        let short = to_msgpack(&serde_bytes_like(&[1, 2, 3])).unwrap();
        assert!(from_msgpack::<u128>(&short).is_err());
        // Neither is a string.
        assert!(from_msgpack::<u128>(&to_msgpack("12").unwrap()).is_err());
    }

    /// Found by fuzzing (`msgpack_differential`): a string of 16 bytes that are not UTF-8,
    /// which rmp-serde hands a visitor as bytes, was read as a `u128`'s 16 bytes.
    #[test]
    fn a_string_of_sixteen_bytes_that_are_not_utf8_is_not_a_u128() {
        let mut text = vec![0xb0];
        text.extend([0xff; 16]);
        assert!(from_msgpack::<u128>(&text).is_err(), "fixstr");
        let mut text = vec![0xd9, 16];
        text.extend([0xb0; 16]);
        assert!(
            from_msgpack::<(u128,)>(&[&[0x91][..], &text].concat()).is_err(),
            "str8"
        );
        // The same 16 bytes as a binary are one.
        let mut bin = vec![0xc4, 16];
        bin.extend([0xff; 16]);
        assert_eq!(from_msgpack::<u128>(&bin).unwrap(), u128::MAX);
    }

    /// Bytes as MessagePack's binary, as `serialize_bytes` writes them.
    fn serde_bytes_like(b: &[u8]) -> impl serde::Serialize + '_ {
        struct Bin<'a>(&'a [u8]);
        impl serde::Serialize for Bin<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bin(b)
    }
}
