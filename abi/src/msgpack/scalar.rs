//! A MessagePack writer for the values typed calls pass most: numbers, booleans, `()`,
//! options, strings, bytes, and tuples and sequences of them. It writes the bytes
//! `rmp_serde` writes for the same value, straight into a slice, without `rmp_serde`'s
//! writer layers (about a tenth of the instructions for `(2u32, 3u32)`), and gives up
//! with `None` on anything else (structs, maps, enums, a full slice), which the caller
//! then encodes with `rmp_serde`.

use core::fmt;
use core::mem::MaybeUninit;

use serde::ser::{self, Impossible, Serialize};

/// Writes `value` at the start of `buf` and returns its length (the first `len` bytes
/// of `buf` are then initialized), or `None` when the value holds something this writer
/// leaves to `rmp_serde` or `buf` is too small.
pub(crate) fn encode_uninit<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut [MaybeUninit<u8>],
) -> Option<usize> {
    let mut w = Writer { buf, len: 0 };
    value.serialize(&mut w).ok()?;
    Some(w.len)
}

/// Why the writer (or the reader, `scalar_read`) gave up; never shown to anyone (the
/// caller falls back to `rmp_serde`).
#[derive(Debug)]
pub(crate) struct GaveUp;

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to rmp_serde")
    }
}

impl std::error::Error for GaveUp {}

impl ser::Error for GaveUp {
    fn custom<M: fmt::Display>(_: M) -> GaveUp {
        GaveUp
    }
}

impl serde::de::Error for GaveUp {
    fn custom<M: fmt::Display>(_: M) -> GaveUp {
        GaveUp
    }
}

type Done = Result<(), GaveUp>;

/// The methods of a `serde::Serializer` whose error is [`GaveUp`] for the values it
/// leaves to others: maps, structs and enum variants with data. Its `Ok` is `()`, or the
/// type given.
macro_rules! gives_up_on_maps_structs_and_variants {
    () => {
        gives_up_on_maps_structs_and_variants!(());
    };
    ($ok:ty) => {
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<$ok, GaveUp> {
            Err(GaveUp)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, GaveUp> {
            Err(GaveUp)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, GaveUp> {
            Err(GaveUp)
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, GaveUp> {
            Err(GaveUp)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, GaveUp> {
            Err(GaveUp)
        }
    };
}
pub(crate) use gives_up_on_maps_structs_and_variants;

/// Writes into `buf`, whose first `len` bytes it has initialized.
struct Writer<'b> {
    buf: &'b mut [MaybeUninit<u8>],
    len: usize,
}

impl Writer<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Done {
        let end = self.len.checked_add(bytes.len()).ok_or(GaveUp)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(GaveUp)?;
        for (d, s) in dst.iter_mut().zip(bytes) {
            d.write(*s);
        }
        self.len = end;
        Ok(())
    }

    /// A marker, then a big-endian length or value in `N` bytes.
    #[inline]
    fn marked<const N: usize>(&mut self, marker: u8, be: [u8; N]) -> Done {
        self.put(&[marker])?;
        self.put(&be)
    }

    /// A positive fixint (the usual small number) where the caller is; wider ones out of
    /// line.
    #[inline]
    fn uint(&mut self, v: u64) -> Done {
        if v <= 0x7f {
            return self.put(&[v as u8]);
        }
        self.wide_uint(v)
    }

    fn wide_uint(&mut self, v: u64) -> Done {
        match v {
            0..=0x7f => self.put(&[v as u8]),
            0x80..=0xff => self.put(&[0xcc, v as u8]),
            0x100..=0xffff => self.marked(0xcd, (v as u16).to_be_bytes()),
            0x1_0000..=0xffff_ffff => self.marked(0xce, (v as u32).to_be_bytes()),
            _ => self.marked(0xcf, v.to_be_bytes()),
        }
    }

    fn sint(&mut self, v: i64) -> Done {
        match v {
            0.. => self.uint(v as u64),
            -32..=-1 => self.put(&[v as u8]),
            -128..=-33 => self.put(&[0xd0, v as u8]),
            -32768..=-129 => self.marked(0xd1, (v as i16).to_be_bytes()),
            -2_147_483_648..=-32769 => self.marked(0xd2, (v as i32).to_be_bytes()),
            _ => self.marked(0xd3, v.to_be_bytes()),
        }
    }

    /// A length after one of three markers: for up to 8, 16 and 32 bits.
    fn len_marked(&mut self, len: usize, markers: [u8; 3]) -> Done {
        match u32::try_from(len).map_err(|_| GaveUp)? {
            n @ 0..=0xff => self.put(&[markers[0], n as u8]),
            n @ 0x100..=0xffff => self.marked(markers[1], (n as u16).to_be_bytes()),
            n => self.marked(markers[2], n.to_be_bytes()),
        }
    }

    #[inline]
    fn array(&mut self, len: usize) -> Done {
        match len {
            0..=15 => self.put(&[0x90 | len as u8]),
            16..=0xffff => self.marked(0xdc, (len as u16).to_be_bytes()),
            _ => self.marked(0xdd, u32::try_from(len).map_err(|_| GaveUp)?.to_be_bytes()),
        }
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Writer<'b> {
    type Ok = ();
    type Error = GaveUp;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Impossible<(), GaveUp>;
    type SerializeTupleVariant = Impossible<(), GaveUp>;
    type SerializeMap = Impossible<(), GaveUp>;
    type SerializeStruct = Impossible<(), GaveUp>;
    type SerializeStructVariant = Impossible<(), GaveUp>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Done {
        self.put(&[if v { 0xc3 } else { 0xc2 }])
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Done {
        self.sint(v.into())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Done {
        self.sint(v.into())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Done {
        self.sint(v.into())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Done {
        self.sint(v)
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Done {
        self.uint(v.into())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Done {
        self.uint(v.into())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Done {
        self.uint(v.into())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Done {
        self.uint(v)
    }
    fn serialize_f32(self, v: f32) -> Done {
        self.marked(0xca, v.to_be_bytes())
    }
    fn serialize_f64(self, v: f64) -> Done {
        self.marked(0xcb, v.to_be_bytes())
    }
    fn serialize_char(self, _: char) -> Done {
        Err(GaveUp)
    }
    fn serialize_str(self, v: &str) -> Done {
        if v.len() < 32 {
            self.put(&[0xa0 | v.len() as u8])?;
        } else {
            self.len_marked(v.len(), [0xd9, 0xda, 0xdb])?;
        }
        self.put(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.len_marked(v.len(), [0xc4, 0xc5, 0xc6])?;
        self.put(v)
    }
    fn serialize_none(self) -> Done {
        self.put(&[0xc0])
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.put(&[0xc0])
    }
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        Err(GaveUp)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Done {
        Err(GaveUp)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, _: &T) -> Done {
        Err(GaveUp)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, GaveUp> {
        self.array(len.ok_or(GaveUp)?)?;
        Ok(self)
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self, GaveUp> {
        self.array(len)?;
        Ok(self)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, GaveUp> {
        Err(GaveUp)
    }
    gives_up_on_maps_structs_and_variants!();
    fn is_human_readable(&self) -> bool {
        false
    }
}

impl ser::SerializeSeq for &mut Writer<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeTuple for &mut Writer<'_> {
    type Ok = ();
    type Error = GaveUp;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use core::mem::MaybeUninit;

    use serde::Serialize;

    use super::encode_uninit;
    use crate::msgpack::tests::serde_bytes_like;

    /// [`encode_uninit`] into initialized memory.
    fn encode<T: Serialize + ?Sized>(value: &T, buf: &mut [u8]) -> Option<usize> {
        // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the writer
        // only ever stores initialized bytes through the view, so `buf` stays
        // initialized.
        let uninit = unsafe { &mut *(core::ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) };
        encode_uninit(value, uninit)
    }

    /// What `rmp_serde` writes for `value`, as the crate's encoder does it.
    fn rmp<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        crate::msgpack::to_msgpack(value).unwrap()
    }

    fn same<T: Serialize + ?Sized + core::fmt::Debug>(value: &T) {
        let mut buf = [0u8; 512];
        let len = encode(value, &mut buf).unwrap_or_else(|| panic!("gave up on {value:?}"));
        assert_eq!(&buf[..len], &rmp(value)[..], "{value:?}");
    }

    #[test]
    fn integers_at_every_edge_are_written_as_rmp_serde_writes_them() {
        let edges: [i128; 24] = [
            0,
            1,
            0x7f,
            0x80,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX as i128,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i128,
            i32::MIN as i128 - 1,
            i64::MIN as i128,
            i64::MAX as i128,
            i16::MAX as i128,
            i8::MIN as i128,
        ];
        // Each edge in every integer type that holds it.
        macro_rules! in_every_type {
            ($v:expr, $($t:ty),*) => {
                $(if let Ok(x) = <$t>::try_from($v) {
                    same(&x);
                })*
            };
        }
        for v in edges {
            in_every_type!(v, u8, u16, u32, u64, i8, i16, i32, i64);
        }
    }

    #[test]
    fn other_scalars_tuples_and_sequences_match_rmp_serde() {
        same(&(2u32, 3u32));
        same(&(true, false, ()));
        same(&(1.5f32, -2.25f64));
        same(&(Some(7u8), None::<u8>));
        same(&("hello",));
        same(&"a string of more than thirty-one bytes, to need a length byte");
        same(&"x".repeat(300));
        same(&serde_bytes_like(&[1, 2, 3]));
        same(&vec![1u16; 20]);
        same(&((1u8, -1i8), [5u32, 6, 7]));
        same(&());
    }

    #[test]
    fn it_gives_up_on_what_it_leaves_to_rmp_serde_and_on_a_full_buffer() {
        #[derive(Serialize)]
        struct Point {
            x: u32,
        }
        let mut buf = [0u8; 8];
        assert_eq!(encode(&Point { x: 1 }, &mut buf), None, "a struct");
        assert_eq!(encode(&'c', &mut buf), None, "a char");
        let map: std::collections::BTreeMap<u8, u8> = [(1, 2)].into();
        assert_eq!(encode(&map, &mut buf), None, "a map");
        assert_eq!(encode(&(1u64 << 40, 1u8), &mut buf), None, "does not fit");
        assert_eq!(encode(&(1u32, 2u32), &mut buf), Some(3));
    }
}
