//! The direct MessagePack writer: every value written in one pass of its `Serialize`,
//! into a caller's buffer while it fits and onto the heap past that.
//!
//! The values typed calls pass most (numbers, booleans, `()`, options, strings, bytes,
//! and tuples and sequences of them) are written straight into the output, without
//! `rmp_serde`'s writer layers (about a tenth of the instructions for `(2u32, 3u32)`).
//! Everything else (structs, maps, enums, chars, 128-bit integers, a sequence of no
//! known length) is handed to an `rmp_serde` serializer over the same output, from
//! where it is met: the bytes are `rmp_serde`'s either way, and the value's
//! `Serialize` runs once. (An earlier writer gave up on those part of the way, and the
//! value was serialized again from the start: a `Serialize` that can run only once,
//! one draining an iterator through a `RefCell`, wrote an empty list the second time.)

use core::mem::MaybeUninit;

use rmp_serde::config::{DefaultConfig, StructMapConfig};
use rmp_serde::encode::Error;
use serde::ser::{self, Serialize};

use crate::spill::{Encoded, Spilling};

/// Encodes `value`, structs as maps, into the start of `buf`, or all of it into a vector
/// once it does not fit there; its `Serialize` runs once.
pub(crate) fn encode<'b, T: Serialize + ?Sized>(
    value: &T,
    buf: &'b mut [MaybeUninit<u8>],
) -> Result<Encoded<'b>, Error> {
    let mut w = Writer {
        rmp: rmp_serde::Serializer::new(Spilling::new(buf)).with_struct_map(),
    };
    value.serialize(&mut w)?;
    Ok(w.rmp.into_inner().finish())
}

/// `rmp_serde`'s serializer over the output, configured as the crate's encoder is.
type Rmp<'b> = rmp_serde::Serializer<Spilling<'b>, StructMapConfig<DefaultConfig>>;

/// The writer: the common values straight into the output, the rest through `rmp`,
/// which owns the output.
struct Writer<'b> {
    rmp: Rmp<'b>,
}

type Done = Result<(), Error>;

impl Writer<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.rmp.get_mut().put(bytes);
    }

    /// A marker, then a big-endian length or value in `N` bytes.
    #[inline]
    fn marked<const N: usize>(&mut self, marker: u8, be: [u8; N]) {
        self.put(&[marker]);
        self.put(&be);
    }

    /// A positive fixint (the usual small number) where the caller is; wider ones out of
    /// line.
    #[inline]
    fn uint(&mut self, v: u64) {
        if v <= 0x7f {
            return self.put(&[v as u8]);
        }
        self.wide_uint(v);
    }

    fn wide_uint(&mut self, v: u64) {
        match v {
            0..=0x7f => self.put(&[v as u8]),
            0x80..=0xff => self.put(&[0xcc, v as u8]),
            0x100..=0xffff => self.marked(0xcd, (v as u16).to_be_bytes()),
            0x1_0000..=0xffff_ffff => self.marked(0xce, (v as u32).to_be_bytes()),
            _ => self.marked(0xcf, v.to_be_bytes()),
        }
    }

    fn sint(&mut self, v: i64) {
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
    fn len_marked(&mut self, len: usize, markers: [u8; 3], what: &str) -> Done {
        match u32::try_from(len).map_err(|_| too_long(what, len))? {
            n @ 0..=0xff => self.put(&[markers[0], n as u8]),
            n @ 0x100..=0xffff => self.marked(markers[1], (n as u16).to_be_bytes()),
            n => self.marked(markers[2], n.to_be_bytes()),
        }
        Ok(())
    }

    #[inline]
    fn array(&mut self, len: usize) -> Done {
        match len {
            0..=15 => self.put(&[0x90 | len as u8]),
            16..=0xffff => self.marked(0xdc, (len as u16).to_be_bytes()),
            _ => {
                let n = u32::try_from(len).map_err(|_| too_long("an array", len))?;
                self.marked(0xdd, n.to_be_bytes());
            }
        }
        Ok(())
    }
}

/// The error of a length MessagePack cannot write (more than `u32::MAX`).
#[cold]
fn too_long(what: &str, len: usize) -> Error {
    <Error as ser::Error>::custom(format!(
        "{what} of {len} is longer than MessagePack can write (at most {})",
        u32::MAX
    ))
}

/// A sequence: written here when its length is known, else by `rmp_serde` (which holds
/// its elements until it knows how many there are).
enum Seq<'a, 'b> {
    Direct(&'a mut Writer<'b>),
    Rmp(<&'a mut Rmp<'b> as ser::Serializer>::SerializeSeq),
}

impl<'a, 'b> ser::Serializer for &'a mut Writer<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a, 'b>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = <&'a mut Rmp<'b> as ser::Serializer>::SerializeTupleStruct;
    type SerializeTupleVariant = <&'a mut Rmp<'b> as ser::Serializer>::SerializeTupleVariant;
    type SerializeMap = <&'a mut Rmp<'b> as ser::Serializer>::SerializeMap;
    type SerializeStruct = <&'a mut Rmp<'b> as ser::Serializer>::SerializeStruct;
    type SerializeStructVariant = <&'a mut Rmp<'b> as ser::Serializer>::SerializeStructVariant;

    #[inline]
    fn serialize_bool(self, v: bool) -> Done {
        self.put(&[if v { 0xc3 } else { 0xc2 }]);
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Done {
        self.sint(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Done {
        self.sint(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Done {
        self.sint(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Done {
        self.sint(v);
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Done {
        self.uint(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Done {
        self.uint(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Done {
        self.uint(v.into());
        Ok(())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Done {
        self.uint(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Done {
        ser::Serializer::serialize_i128(&mut self.rmp, v)
    }
    fn serialize_u128(self, v: u128) -> Done {
        ser::Serializer::serialize_u128(&mut self.rmp, v)
    }
    fn serialize_f32(self, v: f32) -> Done {
        self.marked(0xca, v.to_be_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Done {
        self.marked(0xcb, v.to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Done {
        ser::Serializer::serialize_char(&mut self.rmp, v)
    }
    fn serialize_str(self, v: &str) -> Done {
        if v.len() < 32 {
            self.put(&[0xa0 | v.len() as u8]);
        } else {
            self.len_marked(v.len(), [0xd9, 0xda, 0xdb], "a string")?;
        }
        self.put(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.len_marked(v.len(), [0xc4, 0xc5, 0xc6], "a byte string")?;
        self.put(v);
        Ok(())
    }
    fn serialize_none(self) -> Done {
        self.put(&[0xc0]);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.put(&[0xc0]);
        Ok(())
    }
    fn serialize_unit_struct(self, name: &'static str) -> Done {
        ser::Serializer::serialize_unit_struct(&mut self.rmp, name)
    }
    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> Done {
        ser::Serializer::serialize_unit_variant(&mut self.rmp, name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Done {
        ser::Serializer::serialize_newtype_struct(&mut self.rmp, name, v)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        ser::Serializer::serialize_newtype_variant(&mut self.rmp, name, index, variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'a, 'b>, Error> {
        match len {
            Some(len) => {
                self.array(len)?;
                Ok(Seq::Direct(self))
            }
            None => ser::Serializer::serialize_seq(&mut self.rmp, None).map(Seq::Rmp),
        }
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self, Error> {
        self.array(len)?;
        Ok(self)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        ser::Serializer::serialize_tuple_struct(&mut self.rmp, name, len)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        ser::Serializer::serialize_tuple_variant(&mut self.rmp, name, index, variant, len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        ser::Serializer::serialize_map(&mut self.rmp, len)
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        ser::Serializer::serialize_struct(&mut self.rmp, name, len)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        ser::Serializer::serialize_struct_variant(&mut self.rmp, name, index, variant, len)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

impl ser::SerializeSeq for Seq<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        match self {
            Seq::Direct(w) => value.serialize(&mut **w),
            Seq::Rmp(seq) => seq.serialize_element(value),
        }
    }
    fn end(self) -> Done {
        match self {
            Seq::Direct(_) => Ok(()),
            Seq::Rmp(seq) => seq.end(),
        }
    }
}

impl ser::SerializeTuple for &mut Writer<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use core::cell::RefCell;
    use core::mem::MaybeUninit;
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::encode;
    use crate::msgpack::tests::serde_bytes_like;
    use crate::spill::Encoded;

    /// [`encode`] into a buffer of `room` bytes: the bytes, and whether they spilled.
    fn encoded<T: Serialize + ?Sized>(value: &T, room: usize) -> (Vec<u8>, bool) {
        let mut buf = vec![MaybeUninit::<u8>::uninit(); room];
        match encode(value, &mut buf).unwrap() {
            Encoded::Within(bytes) => (bytes.to_vec(), false),
            Encoded::Spilled(heap) => (heap, true),
        }
    }

    /// What `rmp_serde` writes for `value`, as the crate's encoder does it.
    fn rmp<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        crate::msgpack::to_msgpack(value).unwrap()
    }

    /// The same bytes as `rmp_serde` writes, in a buffer with room and in one without,
    /// and in one cut anywhere in between.
    fn same<T: Serialize + ?Sized + core::fmt::Debug>(value: &T) {
        let want = rmp(value);
        for room in [
            512,
            0,
            want.len() / 2,
            want.len(),
            want.len().saturating_sub(1),
        ] {
            let (got, spilled) = encoded(value, room);
            assert_eq!(got, want, "{value:?} in {room} bytes");
            assert_eq!(spilled, want.len() > room, "{value:?} in {room} bytes");
        }
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
            in_every_type!(v, u8, u16, u32, u64, i8, i16, i32, i64, u128);
            same(&v);
        }
    }

    /// A length past 16 bits (a 32-bit length marker), but for Miri, which takes too
    /// long over it: past 8 bits there.
    const LONG: usize = if cfg!(miri) { 300 } else { 70_000 };

    #[test]
    fn scalars_tuples_and_sequences_match_rmp_serde() {
        same(&(2u32, 3u32));
        same(&(true, false, ()));
        same(&(1.5f32, -2.25f64));
        same(&(Some(7u8), None::<u8>));
        same(&("hello",));
        same(&"a string of more than thirty-one bytes, to need a length byte");
        same(&"x".repeat(300));
        same(&"y".repeat(LONG));
        same(&serde_bytes_like(&[1, 2, 3]));
        same(&serde_bytes_like(&vec![9; LONG]));
        same(&vec![1u16; 20]);
        same(&vec![3u8; LONG]);
        same(&((1u8, -1i8), [5u32, 6, 7]));
        same(&());
    }

    /// What the writer hands to `rmp_serde`, wherever it is met (alone, inside a tuple,
    /// inside a sequence), gives `rmp_serde`'s bytes too.
    #[test]
    fn structs_maps_enums_and_the_rest_match_rmp_serde_wherever_they_are() {
        #[derive(Serialize, Debug)]
        struct Point {
            x: u32,
            label: String,
        }
        #[derive(Serialize, Debug)]
        struct Unit;
        #[derive(Serialize, Debug)]
        struct Pair(u8, i64);
        #[derive(Serialize, Debug)]
        struct Wrapped(Vec<u8>);
        #[derive(Serialize, Debug)]
        enum Shape {
            Empty,
            Circle(f64),
            Rect(u32, u32),
            Named { name: String, sides: u8 },
        }
        let point = Point {
            x: 7,
            label: "p".repeat(40),
        };
        let map: BTreeMap<String, Vec<u32>> =
            [("a".to_owned(), vec![1, 2]), ("b".into(), vec![])].into();
        let shapes = vec![
            Shape::Empty,
            Shape::Circle(1.5),
            Shape::Rect(2, 3),
            Shape::Named {
                name: "tri".into(),
                sides: 3,
            },
        ];
        same(&point);
        same(&Unit);
        same(&Pair(1, -70_000));
        same(&Wrapped(vec![1, 2, 3]));
        same(&map);
        same(&shapes);
        same(&'c');
        same(&'\u{1F600}');
        same(&(1u8, &point, 'x', &map, Unit, &shapes));
        same(&vec![(Some(&point), 5u8); 3]);
        same(&Some(Pair(3, 4)));
    }

    /// A sequence whose length its `Serialize` does not say (`collect_seq` over a filter)
    /// is `rmp_serde`'s, which holds the elements until it knows how many there are.
    #[test]
    fn a_sequence_of_no_known_length_matches_rmp_serde() {
        struct Evens(u32);
        impl Serialize for Evens {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq((0..self.0).filter(|n| n % 2 == 0))
            }
        }
        impl core::fmt::Debug for Evens {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "Evens({})", self.0)
            }
        }
        same(&Evens(10));
        same(&(1u8, Evens(LONG as u32)));
    }

    /// A value whose `Serialize` can run only once (it drains an iterator) is written
    /// whole however little room there is: it is serialized once. Before, a value that
    /// did not fit was serialized again, and wrote an empty list.
    #[test]
    fn a_value_is_serialized_once_whether_it_fits_or_not() {
        struct Drained(RefCell<Option<core::ops::Range<u64>>>, RefCell<u32>);
        impl Serialize for Drained {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                *self.1.borrow_mut() += 1;
                let items = self.0.borrow_mut().take().unwrap_or(0..0);
                s.collect_seq(items)
            }
        }
        for (n, room) in [(10u64, 512), (LONG as u64, 512), (LONG as u64, 0), (3, 2)] {
            let value = (Drained(RefCell::new(Some(0..n)), RefCell::new(0)),);
            let (got, _) = encoded(&value, room);
            let want = rmp(&(((0..n).collect::<Vec<u64>>()),));
            assert_eq!(got, want, "{n} items in {room} bytes");
            assert_eq!(*value.0 .1.borrow(), 1, "serialized once");
        }
    }

    #[test]
    fn a_serialize_error_is_returned() {
        struct Refuses;
        impl Serialize for Refuses {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("not today"))
            }
        }
        let mut buf = [MaybeUninit::uninit(); 8];
        let e = encode(&(1u8, Refuses), &mut buf).err().unwrap();
        assert!(e.to_string().contains("not today"), "{e}");
    }
}
