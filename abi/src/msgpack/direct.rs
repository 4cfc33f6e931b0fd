//! The direct MessagePack writer: every value written in one pass of its `Serialize`,
//! into a caller's buffer while it fits and onto the heap past that ([`Spilling`]).
//!
//! It writes the bytes `rmp_serde` writes for the same value (structs as maps, enums as
//! `rmp_serde` writes them), straight into the output, without `rmp_serde`'s writer
//! layers: about a tenth of the instructions for `(2u32, 3u32)`. A sequence or map of no
//! known length is written to the heap first and counted, as `rmp_serde` does; only a
//! MessagePack extension (`rmp_serde`'s `_ExtStruct`) is `rmp_serde`'s own, written
//! apart and copied in. The value's `Serialize` runs once: an earlier writer gave up
//! on structs, maps and enums part of the way, and the value was serialized again from
//! the start, so a `Serialize` that can run only once (one draining an iterator through
//! a `RefCell`) wrote an empty list the second time.

use core::fmt;
use core::mem::MaybeUninit;

use serde::ser::{self, Serialize};

use crate::spill::{Encoded, Spilling};

/// Encodes `value`, structs as maps, into the start of `buf`, or all of it into a vector
/// once it does not fit there; its `Serialize` runs once.
#[inline]
pub(crate) fn encode<'b, T: Serialize + ?Sized>(
    value: &T,
    buf: &'b mut [MaybeUninit<u8>],
) -> Result<Encoded<'b>, Error> {
    let mut w = Writer {
        out: Spilling::new(buf),
    };
    value.serialize(&mut w)?;
    Ok(w.out.finish())
}

/// Encodes `value`, structs as maps, onto the end of `out`; on an error, `out` is as it
/// was.
pub(crate) fn encode_onto<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let before = out.len();
    let mut w = Writer {
        out: core::mem::take(out),
    };
    let result = value.serialize(&mut w);
    *out = w.out;
    if result.is_err() {
        out.truncate(before);
    }
    result
}

/// Why a value could not be encoded: its `Serialize`'s own error, or a length past
/// what MessagePack can write. Two words, so a call's `Result` stays in registers.
pub(crate) struct Error(Box<str>);

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    #[cold]
    fn custom<M: fmt::Display>(msg: M) -> Error {
        Error(msg.to_string().into_boxed_str())
    }
}

impl Error {
    /// The error a caller gets (a method, not `From`: the type is this module's own,
    /// and a `From` impl would be listed in users' compiler errors about `ModuleError`).
    #[cold]
    pub(crate) fn into_module_error(self) -> crate::ModuleError {
        crate::ModuleError::Serialize(format!("cannot encode MessagePack: {self}"))
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

/// The error of a `Some` whose value is written as nil.
#[cold]
fn some_nil() -> Error {
    <Error as ser::Error>::custom(
        "`Some` of a value written as nil (`Some(None)`, `Some(())`) would read back as \
         `None`: MessagePack writes `Some(x)` as `x` (use an enum, or the archive format)",
    )
}

type Done = Result<(), Error>;

/// Where the writer puts its bytes: a caller's buffer that spills to the heap
/// ([`Spilling`]), or a vector (each its own writer, compiled apart: a vector's writes
/// are no branch of the buffer's).
trait Output {
    fn put(&mut self, bytes: &[u8]);
    /// Bytes written so far.
    fn pos(&self) -> usize;
    /// The last byte written, if any.
    fn last(&self) -> Option<u8>;
}

impl Output for Spilling<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        Spilling::put(self, bytes);
    }
    #[inline]
    fn pos(&self) -> usize {
        Spilling::pos(self)
    }
    #[inline]
    fn last(&self) -> Option<u8> {
        Spilling::last(self)
    }
}

impl Output for Vec<u8> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn pos(&self) -> usize {
        self.len()
    }
    #[inline]
    fn last(&self) -> Option<u8> {
        <[u8]>::last(self).copied()
    }
}

/// The writer: every value straight into `out`.
struct Writer<O> {
    out: O,
}

impl<O: Output> Writer<O> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.out.put(bytes);
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

    /// An array's or a map's length: `fix` is the marker of up to 15 (its low bits the
    /// length), `wide` those of 16 and 32 bits.
    #[inline]
    fn container(&mut self, len: usize, fix: u8, wide: [u8; 2], what: &str) -> Done {
        match len {
            0..=15 => self.put(&[fix | len as u8]),
            16..=0xffff => self.marked(wide[0], (len as u16).to_be_bytes()),
            _ => {
                let n = u32::try_from(len).map_err(|_| too_long(what, len))?;
                self.marked(wide[1], n.to_be_bytes());
            }
        }
        Ok(())
    }

    #[inline]
    fn array(&mut self, len: usize) -> Done {
        self.container(len, 0x90, [0xdc, 0xdd], "an array")
    }

    fn map(&mut self, len: usize) -> Done {
        self.container(len, 0x80, [0xde, 0xdf], "a map")
    }

    fn str(&mut self, v: &str) -> Done {
        if v.len() < 32 {
            self.put(&[0xa0 | v.len() as u8]);
        } else {
            self.len_marked(v.len(), [0xd9, 0xda, 0xdb], "a string")?;
        }
        self.put(v.as_bytes());
        Ok(())
    }

    fn bytes(&mut self, v: &[u8]) -> Done {
        self.len_marked(v.len(), [0xc4, 0xc5, 0xc6], "a byte string")?;
        self.put(v);
        Ok(())
    }

    /// The map of one entry, keyed by the variant's name, that an enum variant with
    /// data is written as.
    fn variant(&mut self, variant: &str) -> Done {
        self.put(&[0x81]);
        self.str(variant)
    }
}

/// A sequence, tuple, map or struct being written: straight into the writer, or, for a
/// sequence or map of no known length, apart, its elements counted, and written with
/// its length at its end.
enum Compound<'a, O> {
    Direct(&'a mut Writer<O>),
    Counted {
        into: &'a mut Writer<O>,
        apart: Writer<Vec<u8>>,
        /// Elements (a map's keys and values both) written apart so far.
        count: usize,
        map: bool,
    },
}

impl<O: Output> Compound<'_, O> {
    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        match self {
            Compound::Direct(w) => value.serialize(&mut **w),
            Compound::Counted { apart, count, .. } => {
                *count += 1;
                value.serialize(apart)
            }
        }
    }

    fn end(self) -> Done {
        let Compound::Counted {
            into,
            apart,
            count,
            map,
        } = self
        else {
            return Ok(());
        };
        if map {
            into.map(count / 2)?;
        } else {
            into.array(count)?;
        }
        into.put(&apart.out);
        Ok(())
    }
}

impl<'a, O: Output> ser::Serializer for &'a mut Writer<O> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, O>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Compound<'a, O>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

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
    /// As `rmp_serde` writes it: its 16 big-endian bytes as a byte string.
    fn serialize_i128(self, v: i128) -> Done {
        self.bytes(&v.to_be_bytes())
    }
    fn serialize_u128(self, v: u128) -> Done {
        self.bytes(&v.to_be_bytes())
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
        self.str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Done {
        self.str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        self.bytes(v)
    }
    fn serialize_none(self) -> Done {
        self.put(&[0xc0]);
        Ok(())
    }
    /// `Some(x)` as `x`, as `rmp_serde` writes it; but an `x` written as nil (`None`,
    /// `()`) would read back as `None`, a wrong answer: refused.
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        let before = self.out.pos();
        value.serialize(&mut *self)?;
        if self.out.pos() == before + 1 && self.out.last() == Some(0xc0) {
            return Err(some_nil());
        }
        Ok(())
    }
    fn serialize_unit(self) -> Done {
        self.put(&[0xc0]);
        Ok(())
    }
    /// As `rmp_serde` writes it: an empty array.
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        self.put(&[0x90]);
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Done {
        self.str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Done {
        if name == rmp_serde::MSGPACK_EXT_STRUCT_NAME {
            return extension(self, name, v);
        }
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        self.variant(variant)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, O>, Error> {
        match len {
            Some(len) => {
                self.array(len)?;
                Ok(Compound::Direct(self))
            }
            None => Ok(counted(self, false)),
        }
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self, Error> {
        self.array(len)?;
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Self, Error> {
        self.array(len)?;
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, Error> {
        self.variant(variant)?;
        self.array(len)?;
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, O>, Error> {
        match len {
            Some(len) => {
                self.map(len)?;
                Ok(Compound::Direct(self))
            }
            None => Ok(counted(self, true)),
        }
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Self, Error> {
        self.map(len)?;
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self, Error> {
        self.variant(variant)?;
        self.map(len)?;
        Ok(self)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// A compound of no known length, written apart (on the heap) and counted.
fn counted<O: Output>(into: &mut Writer<O>, map: bool) -> Compound<'_, O> {
    Compound::Counted {
        into,
        apart: Writer { out: Vec::new() },
        count: 0,
        map,
    }
}

/// A MessagePack extension (`rmp_serde`'s `_ExtStruct` newtype), written by `rmp_serde`
/// apart and copied in.
#[cold]
fn extension<O: Output, T: Serialize + ?Sized>(
    w: &mut Writer<O>,
    name: &'static str,
    value: &T,
) -> Done {
    let mut apart = Vec::new();
    let mut rmp = rmp_serde::Serializer::new(&mut apart).with_struct_map();
    ser::Serializer::serialize_newtype_struct(&mut rmp, name, value)
        .map_err(<Error as ser::Error>::custom)?;
    w.put(&apart);
    Ok(())
}

impl<O: Output> ser::SerializeSeq for Compound<'_, O> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        Compound::end(self)
    }
}

impl<O: Output> ser::SerializeMap for Compound<'_, O> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Done {
        self.element(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
        self.element(value)
    }
    fn end(self) -> Done {
        Compound::end(self)
    }
}

/// The compounds written element after element (field after field, each after its
/// name for a struct) straight into the writer: their lengths were written when they
/// began.
macro_rules! written_in_place {
    ($($compound:ident :: $method:ident),*) => {$(
        impl<O: Output> ser::$compound for &mut Writer<O> {
            type Ok = ();
            type Error = Error;
            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Done {
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
    (named: $($compound:ident),*) => {$(
        impl<O: Output> ser::$compound for &mut Writer<O> {
            type Ok = ();
            type Error = Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Done {
                self.str(key)?;
                value.serialize(&mut **self)
            }
            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
}

written_in_place!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);
written_in_place!(named: SerializeStruct, SerializeStructVariant);

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

    /// What `rmp_serde` writes for `value`, structs as maps.
    fn rmp<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        value
            .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
            .unwrap();
        out
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
    fn encoded_onto_a_vector_it_appends_and_an_error_leaves_it_as_it_was() {
        let mut out = vec![1, 2, 3];
        super::encode_onto(&(7u8, "ab"), &mut out).unwrap();
        let want = [1, 2, 3, 0x92, 7, 0xa2, b'a', b'b'];
        assert_eq!(out, want);
        assert!(super::encode_onto(&(9u8, Some(None::<u8>)), &mut out).is_err());
        assert_eq!(out, want);
        // A large value: every write straight onto the vector, the bytes rmp_serde's.
        let big: Vec<(u32, String)> = (0..1_000).map(|i| (i, i.to_string())).collect();
        let mut out = Vec::new();
        super::encode_onto(&big, &mut out).unwrap();
        assert_eq!(out, rmp(&big));
    }

    #[test]
    fn some_of_a_value_written_as_nil_is_refused_not_read_back_as_none() {
        #[derive(Serialize, Debug)]
        struct Wrapper(Option<u8>);
        #[derive(Serialize, Debug)]
        struct Holder {
            x: Option<Option<u8>>,
        }
        fn refused<T: Serialize + ?Sized + core::fmt::Debug>(value: &T) {
            for room in [0, 1, 64] {
                let mut buf = vec![MaybeUninit::<u8>::uninit(); room];
                let e = encode(value, &mut buf).unwrap_err().to_string();
                assert!(e.contains("would read back as `None`"), "{value:?}: {e}");
            }
        }
        refused(&Some(None::<u8>));
        refused(&Some(()));
        refused(&Some(Wrapper(None)));
        refused(&vec![Some(Some(1u8)), Some(None)]);
        refused(&Holder { x: Some(None) });
        // What reads back as it was is written as `rmp_serde` writes it.
        same(&Some(Some(7u8)));
        same(&None::<Option<u8>>);
        same(&Holder { x: None });
        same(&Some(Wrapper(Some(3))));
        same(&vec![Some(Some(1u8)), None]);
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
