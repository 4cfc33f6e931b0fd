//! A MessagePack reader for the values calls return and take most: numbers, booleans,
//! nil, strings, bytes, and arrays of them (tuples, sequences, structs given by
//! position), nested a few levels at most. It hands serde what `rmp_serde` would, read
//! straight from the slice, and gives up with `None` on anything else (maps,
//! extensions, deep nesting, trailing bytes) and on any error, so that the caller then
//! decodes with `rmp_serde` and reports that decoder's error: a value this reader
//! accepts is the value `rmp_serde` gives, and everything else is `rmp_serde`'s.

use serde::de::{self, DeserializeOwned, Visitor};

use super::scalar::GaveUp;

/// Arrays and options nested deeper than this are left to `rmp_serde`. Options count:
/// `Some` reads no byte, so a type that is an option of itself
/// (`#[serde(transparent)] struct Chain(Option<Box<Chain>>)`) would otherwise recurse on
/// one byte forever.
const MAX_DEPTH: u32 = 16;

/// Levels a value may take before the reader looks at the stack (see `Reader::deeper`).
const UNCHECKED_LEVELS: u32 = 2;

/// `bytes` as one `T`, or `None` to leave it to `rmp_serde`.
#[inline]
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let mut reader = Reader {
        rest: bytes,
        depth: 0,
    };
    let value = T::deserialize(&mut reader).ok()?;
    reader.rest.is_empty().then_some(value)
}

struct Reader<'de> {
    rest: &'de [u8],
    depth: u32,
}

impl<'de> Reader<'de> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'de [u8], GaveUp> {
        if self.rest.len() < n {
            return Err(GaveUp);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], GaveUp> {
        self.take(N)?.try_into().map_err(|_| GaveUp)
    }

    /// A length of `N` big-endian bytes.
    fn len<const N: usize>(&mut self) -> Result<usize, GaveUp> {
        let be = self.be::<N>()?;
        let mut n = 0usize;
        for b in be {
            n = (n << 8) | usize::from(b);
        }
        Ok(n)
    }

    /// Runs `f` one level deeper, or gives up past [`MAX_DEPTH`], or when too little of
    /// the thread's stack is left for the levels to come (`super::stack`: a level of a
    /// struct of arrays took tens of KiB, and 16 of them overflowed a small thread's
    /// stack; `rmp_serde`'s path then refuses the value saying so). The values most calls
    /// take (a tuple of scalars, of a struct, of a struct of a vector: three levels)
    /// never look, which would cost them more than a third of their decoding.
    fn deeper<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R, GaveUp>) -> Result<R, GaveUp> {
        if self.depth == MAX_DEPTH {
            return Err(GaveUp);
        }
        if self.depth >= UNCHECKED_LEVELS {
            self.stack_left()?;
        }
        self.depth += 1;
        let value = f(self)?;
        self.depth -= 1;
        Ok(value)
    }

    /// Whether the stack has room for a level past [`UNCHECKED_LEVELS`], measured from
    /// where the decode began: the reader is a local of [`decode`], which every level
    /// is below.
    #[cold]
    #[inline(never)]
    fn stack_left(&self) -> Result<(), GaveUp> {
        let start = core::ptr::from_ref(self).addr();
        match super::stack::too_short(start, self.depth as usize + 1) {
            Some(_) => Err(GaveUp),
            None => Ok(()),
        }
    }

    fn array<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, GaveUp> {
        self.deeper(|reader| {
            let mut seq = Seq { reader, left: len };
            let value = visitor.visit_seq(&mut seq)?;
            // A visitor that stopped early leaves elements `rmp_serde` would complain of.
            if seq.left != 0 {
                return Err(GaveUp);
            }
            Ok(value)
        })
    }

    /// For a hint `rmp_serde` answers with numbers only (`bool`, the integers, the
    /// floats): nil, a boolean, an integer or a float; anything else is its error.
    fn number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, GaveUp> {
        match self.rest.first() {
            Some(0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 | 0xca..=0xd3) => self.any(visitor),
            _ => Err(GaveUp),
        }
    }

    /// For a hint `rmp_serde` answers with a sequence even for bytes (a sequence, a
    /// tuple, a struct): bytes are left to it.
    fn sequence<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, GaveUp> {
        match self.rest.first() {
            Some(0xc4..=0xc6) | None => Err(GaveUp),
            Some(_) => self.any(visitor),
        }
    }

    /// For a hint of `len` elements given by position (a tuple, a struct): a fixed
    /// array of exactly that many, how every encoder writes a short argument list, is
    /// visited at once, without [`any`](Self::any)'s dispatch on its marker; anything
    /// else as [`sequence`](Self::sequence) reads it. The same value either way.
    #[inline]
    fn fixed<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, GaveUp> {
        match self.rest.split_first() {
            Some((&marker, rest)) if len < 16 && usize::from(marker) == 0x90 | len => {
                self.rest = rest;
                self.array(len, visitor)
            }
            _ => self.sequence(visitor),
        }
    }

    /// For a string hint: a short string (a fixstr) is read at once, without
    /// [`any`](Self::any)'s dispatch on its marker; anything else as `any` reads it. The
    /// same value either way.
    #[inline]
    fn text<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, GaveUp> {
        match self.rest.split_first() {
            Some((&marker @ 0xa0..=0xbf, rest)) => {
                let len = usize::from(marker & 0x1f);
                let bytes = rest.get(..len).ok_or(GaveUp)?;
                let text = crate::text::utf8(bytes).map_err(|_| GaveUp)?;
                self.rest = &rest[len..];
                visitor.visit_borrowed_str(text)
            }
            _ => self.any(visitor),
        }
    }

    /// One value of whatever kind comes, visited as `rmp_serde` visits it (integers at
    /// the width of their marker).
    fn any<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, GaveUp> {
        let marker = self.take(1)?[0];
        match marker {
            0x00..=0x7f => visitor.visit_u8(marker),
            0xe0..=0xff => visitor.visit_i8(marker as i8),
            0xc0 => visitor.visit_unit(),
            0xc2 => visitor.visit_bool(false),
            0xc3 => visitor.visit_bool(true),
            0xcc => visitor.visit_u8(self.be::<1>()?[0]),
            0xcd => visitor.visit_u16(u16::from_be_bytes(self.be()?)),
            0xce => visitor.visit_u32(u32::from_be_bytes(self.be()?)),
            0xcf => visitor.visit_u64(u64::from_be_bytes(self.be()?)),
            0xd0 => visitor.visit_i8(self.be::<1>()?[0] as i8),
            0xd1 => visitor.visit_i16(i16::from_be_bytes(self.be()?)),
            0xd2 => visitor.visit_i32(i32::from_be_bytes(self.be()?)),
            0xd3 => visitor.visit_i64(i64::from_be_bytes(self.be()?)),
            0xca => visitor.visit_f32(f32::from_be_bytes(self.be()?)),
            0xcb => visitor.visit_f64(f64::from_be_bytes(self.be()?)),
            0xa0..=0xbf | 0xd9..=0xdb => {
                let len = match marker {
                    0xd9 => self.len::<1>()?,
                    0xda => self.len::<2>()?,
                    0xdb => self.len::<4>()?,
                    _ => usize::from(marker & 0x1f),
                };
                let text = crate::text::utf8(self.take(len)?).map_err(|_| GaveUp)?;
                visitor.visit_borrowed_str(text)
            }
            0xc4..=0xc6 => {
                let len = match marker {
                    0xc4 => self.len::<1>()?,
                    0xc5 => self.len::<2>()?,
                    _ => self.len::<4>()?,
                };
                visitor.visit_borrowed_bytes(self.take(len)?)
            }
            0x90..=0x9f => self.array(usize::from(marker & 0x0f), visitor),
            0xdc => {
                let len = self.len::<2>()?;
                self.array(len, visitor)
            }
            0xdd => {
                let len = self.len::<4>()?;
                self.array(len, visitor)
            }
            // Maps, extensions and the reserved marker.
            _ => Err(GaveUp),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = GaveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        match self.rest.first() {
            Some(0xc0) => {
                self.rest = &self.rest[1..];
                visitor.visit_none()
            }
            Some(_) => self.deeper(|reader| visitor.visit_some(reader)),
            None => Err(GaveUp),
        }
    }

    // What `rmp_serde` does differently from reading whatever comes (enums, newtypes,
    // unit structs, maps) is left to it.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, GaveUp> {
        Err(GaveUp)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, GaveUp> {
        Err(GaveUp)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, GaveUp> {
        Err(GaveUp)
    }

    // `rmp_serde` has a form of its own for 128-bit integers.
    fn deserialize_i128<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GaveUp> {
        Err(GaveUp)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GaveUp> {
        Err(GaveUp)
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.number(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.sequence(visitor)
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, GaveUp> {
        self.fixed(len, visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, GaveUp> {
        self.fixed(len, visitor)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GaveUp> {
        self.fixed(fields.len(), visitor)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.text(visitor)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GaveUp> {
        self.text(visitor)
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit map identifier ignored_any
    }
}

/// The elements of an array, read one by one.
struct Seq<'a, 'de> {
    reader: &'a mut Reader<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de> {
    type Error = GaveUp;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, GaveUp> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.reader).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        // Bounded by the bytes left (each element takes one at least), so a forged
        // length cannot make a visitor reserve more than the input could hold.
        Some(self.left.min(self.reader.rest.len()))
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use super::decode;
    use crate::msgpack::{from_msgpack_by_rmp, to_msgpack};

    /// Decoded here exactly as `rmp_serde` decodes it.
    fn same<T: DeserializeOwned + PartialEq + core::fmt::Debug>(bytes: &[u8]) {
        let direct = decode::<T>(bytes);
        let rmp = from_msgpack_by_rmp::<T>(bytes).ok();
        assert!(direct.is_some(), "gave up on {bytes:x?}");
        assert_eq!(direct, rmp, "{bytes:x?}");
    }

    fn round<T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug>(value: T) {
        same::<T>(&to_msgpack(&value).unwrap());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Args {
        a: u32,
        name: String,
    }

    #[test]
    fn scalars_strings_and_arrays_read_as_rmp_serde_reads_them() {
        for v in [
            0u64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX.into(),
            u64::MAX,
        ] {
            round(v);
        }
        for v in [
            0i64,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i64::MIN,
            i64::MAX,
        ] {
            round(v);
        }
        round(5u8);
        round(-5i16);
        round(true);
        round(1.5f32);
        round(-2.25f64);
        round(());
        round(Some(3u32));
        round(None::<u32>);
        round("hello".to_owned());
        round("x".repeat(40));
        round((2u32, 3u32));
        round((String::from("a"), (1u8, [true, false])));
        round(vec![7u16; 20]);
        round(Vec::<u8>::new());
        // A struct given by position, as callers pass arguments; in a fixed array of
        // exactly its fields, or in the longer forms of an array.
        same::<Args>(&to_msgpack(&(9u32, "n")).unwrap());
        same::<Args>(&[0xdc, 0, 2, 9, 0xa1, b'n']);
        same::<Args>(&[0xdd, 0, 0, 0, 2, 9, 0xd9, 1, b'n']);
        same::<(u8, u8, u8)>(&[0x93, 1, 2, 3]);
        // Strings in each of their forms, and not ASCII.
        same::<String>(&[0xa0]);
        same::<String>(&[0xd9, 2, b'h', b'i']);
        same::<String>(&to_msgpack(&"grüße").unwrap());
        same::<String>(&to_msgpack(&"y".repeat(31)).unwrap());
        // Integers read as floats, and a double as a float, as `rmp_serde` reads them.
        same::<f64>(&[0x05]);
        same::<f32>(&to_msgpack(&1.5f64).unwrap());
    }

    /// Which `visit_*` a value arrived through, and with what.
    #[derive(Debug, PartialEq)]
    enum Seen {
        U8(u8),
        U16(u16),
        U32(u32),
        U64(u64),
        I8(i8),
        I16(i16),
        I32(i32),
        I64(i64),
        Str(String),
    }

    impl<'de> Deserialize<'de> for Seen {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seen, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Seen;
                fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                    f.write_str("a number or a string")
                }
                fn visit_u8<E>(self, v: u8) -> Result<Seen, E> {
                    Ok(Seen::U8(v))
                }
                fn visit_u16<E>(self, v: u16) -> Result<Seen, E> {
                    Ok(Seen::U16(v))
                }
                fn visit_u32<E>(self, v: u32) -> Result<Seen, E> {
                    Ok(Seen::U32(v))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Seen, E> {
                    Ok(Seen::U64(v))
                }
                fn visit_i8<E>(self, v: i8) -> Result<Seen, E> {
                    Ok(Seen::I8(v))
                }
                fn visit_i16<E>(self, v: i16) -> Result<Seen, E> {
                    Ok(Seen::I16(v))
                }
                fn visit_i32<E>(self, v: i32) -> Result<Seen, E> {
                    Ok(Seen::I32(v))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Seen, E> {
                    Ok(Seen::I64(v))
                }
                fn visit_str<E>(self, v: &str) -> Result<Seen, E> {
                    Ok(Seen::Str(v.to_owned()))
                }
            }
            // A number hint, answered by `rmp_serde` with numbers only.
            d.deserialize_u64(V)
        }
    }

    /// A type that is an option of itself: `Some` reads no byte.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(transparent)]
    struct Chain(Option<Box<Chain>>);

    #[test]
    fn integers_arrive_at_the_width_of_their_marker_and_number_hints_take_numbers_only() {
        for bytes in [
            &[0x05][..],
            &[0xff],
            &[0xcc, 200],
            &[0xcd, 1, 0],
            &[0xce, 0, 1, 0, 0],
            &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0],
            &[0xd0, 0x80],
            &[0xd1, 0x80, 0],
            &[0xd2, 0x80, 0, 0, 0],
            &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ] {
            same::<Seen>(bytes);
        }
        // `rmp_serde` refuses a string for a number hint, whatever the visitor takes.
        assert!(decode::<Seen>(&[0xa1, b'5']).is_none());
        assert!(from_msgpack_by_rmp::<Seen>(&[0xa1, b'5']).is_err());
        // Bytes asked for as a sequence: `rmp_serde` visits them as one; left to it.
        assert!(decode::<Vec<u8>>(&[0xc4, 2, 1, 2]).is_none());
        assert_eq!(
            from_msgpack_by_rmp::<Vec<u8>>(&[0xc4, 2, 1, 2]).unwrap(),
            [1, 2]
        );
    }

    #[test]
    fn an_option_of_itself_is_left_to_rmp_serde_not_recursed_into() {
        assert!(decode::<Chain>(&[0x01]).is_none());
        assert!(crate::msgpack::from_msgpack::<Chain>(&[0x01]).is_err());
        same::<Chain>(&[0xc0]);
    }

    #[test]
    fn everything_else_is_left_to_rmp_serde() {
        // A struct encoded as a map.
        assert!(decode::<Args>(
            &to_msgpack(&Args {
                a: 1,
                name: "n".into()
            })
            .unwrap()
        )
        .is_none());
        // Out of range, the wrong type, trailing bytes, a truncated value, elements left.
        assert!(decode::<u8>(&[0xcd, 1, 0]).is_none());
        assert!(decode::<bool>(&[0x01]).is_none());
        assert!(decode::<u8>(&[0x01, 0x02]).is_none());
        assert!(decode::<u32>(&[0xce, 0, 0]).is_none());
        assert!(decode::<(u8,)>(&[0x92, 1, 2]).is_none());
        assert!(decode::<String>(&[0xa2, 0xff, 0xfe]).is_none(), "not UTF-8");
        assert!(
            decode::<String>(&[0xa3, b'a', b'b']).is_none(),
            "a short string cut"
        );
        assert!(decode::<String>(&[0x05]).is_none(), "a number for a string");
        // A struct given fewer elements than its fields (the short form of a fixed array
        // misses the one-count path; the visitor then finds it short).
        assert!(decode::<Args>(&[0x91, 0x01]).is_none());
        // Nesting past the limit.
        let mut deep = vec![0x91; 40];
        deep.push(0xc0);
        assert!(decode::<serde::de::IgnoredAny>(&deep).is_none());
        // A forged length does not make a visitor reserve it.
        assert!(decode::<Vec<u8>>(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
