//! Target `msgpack_differential`: any bytes, decoded as one type by
//! `memlink_abi::msgpack::from_msgpack` (its direct reader first, `rmp_serde` for what
//! that reader leaves) and by `rmp_serde` alone, the oracle.
//!
//! The direct reader is a shortcut: it must give the value `rmp_serde` gives, or give up
//! so that `rmp_serde` decides. So for every input and every type here, both decoders
//! accept it as the same value (compared by `Debug`, so a NaN is a NaN and -0.0 is not
//! 0.0), or both refuse it. The types are those calls take and return most (numbers,
//! strings, bytes, options, tuples, sequences, structs given by position), and
//! [`Probe`]s, which record which `visit_*` a decoder called and with what: a reader
//! that hands an integer at another width, or bytes as a string, is told apart even
//! where a plain type would take either.
//!
//! The first byte chooses the type, the rest is the document, so each input is decoded
//! once and libFuzzer's coverage follows the type's path.

use std::fmt::{self, Debug};

use memlink_msdk::abi::msgpack::{encode_as, encode_as_into, from_msgpack, is_argument_list};
use memlink_msdk::abi::Format;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::depth::depth;

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&which, doc)) = data.split_first() else {
        return;
    };
    // The oracle reads with `rmp_serde`'s own depth limit (1024), `from_msgpack` with
    // `MAX_DEPTH` (128): only documents both limits admit are compared. Malformed ones
    // (`depth` is `None`) are compared too, both must refuse them.
    if depth(doc).is_some_and(|d| d > 100) {
        return;
    }
    match which % 32 {
        0 => both::<u8>(doc),
        1 => both::<u16>(doc),
        2 => both::<u32>(doc),
        3 => both::<u64>(doc),
        4 => both::<i8>(doc),
        5 => both::<i16>(doc),
        6 => both::<i32>(doc),
        7 => both::<i64>(doc),
        8 => both::<f32>(doc),
        9 => both::<f64>(doc),
        10 => both::<bool>(doc),
        11 => both::<char>(doc),
        12 => both::<String>(doc),
        13 => both::<()>(doc),
        14 => both::<Vec<u8>>(doc),
        15 => both::<Option<u32>>(doc),
        16 => both::<Option<Option<i16>>>(doc),
        17 => both::<(u32, u32)>(doc),
        18 => both::<(String, Vec<u8>)>(doc),
        19 => both::<[u16; 3]>(doc),
        20 => both::<Vec<Option<bool>>>(doc),
        21 => both::<Vec<String>>(doc),
        22 => both::<Args>(doc),
        23 => both::<(Option<Vec<f32>>, (i64, (u8,)))>(doc),
        24 => both::<Box<str>>(doc),
        25 => same_u128(doc),
        26 => both::<i128>(doc),
        27 => drop(same::<Probe<Any>>(doc)),
        28 => drop(same::<Probe<Number>>(doc)),
        29 => drop(same::<Probe<Sequence>>(doc)),
        30 => drop(same::<Probe<Text>>(doc)),
        _ => drop(same::<Vec<Probe<Optional>>>(doc)),
    }
}

/// `doc` as a `T` by `from_msgpack` and by `rmp_serde` alone: the same value, or both
/// refused. The value, if any.
///
/// But for one difference `from_msgpack` makes on purpose (`abi/src/msgpack/depth.rs`):
/// a binary read as a tuple or array shorter than it is refused, in rmp-serde's words
/// for such an array, where rmp-serde alone reads its first bytes and drops the others.
fn same<T: DeserializeOwned + Debug>(doc: &[u8]) -> Option<T> {
    let ours = from_msgpack::<T>(doc);
    let oracle = by_rmp::<T>(doc);
    if let (Err(e), Some(_)) = (&ours, &oracle) {
        let binary = doc.iter().any(|b| (0xc4..=0xc6).contains(b));
        if binary && e.to_string().contains("array had incorrect length") {
            return None;
        }
    }
    let ours = ours.ok();
    assert_eq!(
        ours.as_ref().map(|v| format!("{v:?}")),
        oracle.as_ref().map(|v| format!("{v:?}")),
        "from_msgpack::<{}> and rmp_serde disagree on {doc:02x?}",
        std::any::type_name::<T>()
    );
    ours
}

/// [`same`], then the value read written back by the direct writer (`encode_as_into`,
/// as a typed call encodes its arguments) and by `rmp_serde`: the same bytes, in a
/// buffer just large enough, and `None` from a buffer one byte short (never a write
/// past it); for a raw method, the bytes `encode_as` makes (rmp-serde's encoding read
/// by `convert_args`, behind the same check of the value's shape), or both refuse.
fn both<T: DeserializeOwned + Serialize + Debug>(doc: &[u8]) {
    if let Some(value) = same::<T>(doc) {
        written_alike(&value);
    }
}

fn written_alike<T: Serialize + Debug>(value: &T) {
    let name = std::any::type_name::<T>();
    let encoded = rmp_bytes(value).unwrap_or_else(|e| panic!("{name}: {value:?}: {e}"));
    if is_argument_list(&encoded) {
        direct_as_rmp(value, &encoded);
    } else {
        // One value alone is no typed call's arguments: refused, whatever the room, and
        // written as the tuple of one a typed call passes instead.
        let mut buf = vec![0u8; encoded.len() + 16];
        let alone = encode_as_into(Format::MessagePack, value, &mut buf);
        assert!(
            alone.is_none(),
            "{name}: {value:?} taken alone as arguments"
        );
        let one = (value,);
        let encoded = rmp_bytes(&one).unwrap_or_else(|e| panic!("{name}: {value:?}: {e}"));
        direct_as_rmp(&one, &encoded);
    }
    let mut buf = vec![0u8; encoded.len()];
    let raw = encode_as_into(Format::Raw, value, &mut buf).map(|range| buf[range].to_vec());
    // The typed path asks the value's shape of its `Serialize` before reading its
    // encoding as bytes (`(2u32, 3u32)` is no `Vec<u8>`, though MessagePack writes both
    // alike), so the oracle does too: `encode_as`, rmp-serde's encoding read by
    // `convert_args`, behind the same check.
    let oracle = encode_as(Format::Raw, value).ok();
    assert_eq!(raw, oracle, "{name}: {value:?} as a raw method's arguments");
}

/// The direct writer's `value` as typed arguments (`encode_as_into`) is `encoded`, rmp-serde's
/// bytes, in a buffer just large enough, and `None` from one a byte short (never a write
/// past it).
fn direct_as_rmp<A: Serialize + Debug>(value: &A, encoded: &[u8]) {
    let name = std::any::type_name::<A>();
    let mut buf = vec![0u8; encoded.len()];
    let range = encode_as_into(Format::MessagePack, value, &mut buf)
        .unwrap_or_else(|| panic!("{name}: {value:?} does not fit {} bytes", encoded.len()));
    assert_eq!(&buf[range], encoded, "{name}: {value:?} written otherwise");
    if let Some(short) = encoded.len().checked_sub(1) {
        let mut buf = vec![0u8; short];
        let written = encode_as_into(Format::MessagePack, value, &mut buf);
        assert!(written.is_none(), "{name}: {value:?} in {short} bytes");
    }
}

/// [`same`] for `u128`, whose oracle is `rmp_serde` but for what `from_msgpack` does
/// otherwise on purpose (`abi/src/msgpack/wide.rs`): rmp-serde reads a negative integer
/// as a `u128` through a cast (`-1` is `2^128 - 1`), which `from_msgpack` refuses; and
/// it reads 16 big-endian bytes only as a `bin 8`, where `from_msgpack` reads them from
/// any binary or array of exactly 16 bytes.
fn same_u128(doc: &[u8]) {
    let ours = from_msgpack::<u128>(doc).ok();
    // A negative integer (as an `i64`: a binary's 16 bytes are no `i64`).
    let negative = by_rmp::<i64>(doc).is_some_and(|v| v < 0);
    let oracle = by_rmp::<u128>(doc)
        .filter(|_| !negative)
        // As a `Vec<u8>`, not a `[u8; 16]`, which rmp-serde reads from the first 16 of
        // a longer binary.
        .or_else(|| {
            let bytes = <[u8; 16]>::try_from(by_rmp::<Vec<u8>>(doc)?).ok()?;
            Some(u128::from_be_bytes(bytes))
        });
    assert_eq!(
        ours, oracle,
        "from_msgpack::<u128> and rmp_serde disagree on {doc:02x?}"
    );
    if let Some(value) = ours {
        written_alike(&value);
    }
}

/// What `rmp_serde` alone writes for `value`, structs as maps: the oracle of the direct
/// writer.
fn rmp_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut out = Vec::new();
    value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())?;
    Ok(out)
}

/// `doc` as one `T` by `rmp_serde`, every byte of it, or `None`.
fn by_rmp<T: DeserializeOwned>(doc: &[u8]) -> Option<T> {
    let mut rest = doc;
    // Read from a slice through `io::Read`, which `rmp_serde` reads exactly as far as
    // the value goes: what is left is what follows it.
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    let value = T::deserialize(&mut de).ok()?;
    drop(de);
    rest.is_empty().then_some(value)
}

/// A struct given by position, as callers pass arguments (or by name, as a map).
#[derive(Debug, Deserialize, Serialize)]
struct Args {
    a: u32,
    name: String,
    tags: Vec<String>,
}

/// Which `deserialize_*` a [`Probe`] asks with.
pub trait Hint {
    /// Asks `d` for a value with this hint.
    fn ask<'de, D: Deserializer<'de>, V: Visitor<'de>>(d: D, v: V) -> Result<V::Value, D::Error>;
}

/// `deserialize_any`.
#[derive(Debug)]
pub struct Any;
/// `deserialize_u64`, a number hint.
#[derive(Debug)]
pub struct Number;
/// `deserialize_seq`.
#[derive(Debug)]
pub struct Sequence;
/// `deserialize_str`.
#[derive(Debug)]
pub struct Text;
/// `deserialize_option`.
#[derive(Debug)]
pub struct Optional;

impl Hint for Any {
    fn ask<'de, D: Deserializer<'de>, V: Visitor<'de>>(d: D, v: V) -> Result<V::Value, D::Error> {
        d.deserialize_any(v)
    }
}
impl Hint for Number {
    fn ask<'de, D: Deserializer<'de>, V: Visitor<'de>>(d: D, v: V) -> Result<V::Value, D::Error> {
        d.deserialize_u64(v)
    }
}
impl Hint for Sequence {
    fn ask<'de, D: Deserializer<'de>, V: Visitor<'de>>(d: D, v: V) -> Result<V::Value, D::Error> {
        d.deserialize_seq(v)
    }
}
impl Hint for Text {
    fn ask<'de, D: Deserializer<'de>, V: Visitor<'de>>(d: D, v: V) -> Result<V::Value, D::Error> {
        d.deserialize_str(v)
    }
}
impl Hint for Optional {
    fn ask<'de, D: Deserializer<'de>, V: Visitor<'de>>(d: D, v: V) -> Result<V::Value, D::Error> {
        d.deserialize_option(v)
    }
}

/// What a decoder handed a visitor asked with hint `H`: which `visit_*` and with what.
/// Elements of a sequence, and the value in a `Some`, are probed with `deserialize_any`.
pub enum Probe<H> {
    /// `visit_bool`.
    Bool(bool),
    /// `visit_u8` ... `visit_u64`: the width, and the value.
    Unsigned(u8, u64),
    /// `visit_i8` ... `visit_i64`.
    Signed(u8, i64),
    /// `visit_f32`, by its bits.
    F32(u32),
    /// `visit_f64`, by its bits.
    F64(u64),
    /// `visit_str` (borrowed or not: the borrow is no part of the value).
    Str(String),
    /// `visit_bytes`.
    Bytes(Vec<u8>),
    /// `visit_unit`.
    Unit,
    /// `visit_none`.
    None,
    /// `visit_some`.
    Some(Box<Probe<Any>>),
    /// `visit_seq`.
    Seq(Vec<Probe<Any>>),
    /// `visit_map`.
    Map(Vec<(Probe<Any>, Probe<Any>)>),
    /// Never made: ties the hint to the type.
    #[doc(hidden)]
    _Hint(std::marker::PhantomData<H>),
}

impl<H> Debug for Probe<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Bool(b) => write!(f, "bool {b}"),
            Probe::Unsigned(w, v) => write!(f, "u{w} {v}"),
            Probe::Signed(w, v) => write!(f, "i{w} {v}"),
            Probe::F32(bits) => write!(f, "f32 {bits:#x}"),
            Probe::F64(bits) => write!(f, "f64 {bits:#x}"),
            Probe::Str(s) => write!(f, "str {s:?}"),
            Probe::Bytes(b) => write!(f, "bytes {b:02x?}"),
            Probe::Unit => f.write_str("unit"),
            Probe::None => f.write_str("none"),
            Probe::Some(p) => write!(f, "some({p:?})"),
            Probe::Seq(items) => f.debug_list().entries(items).finish(),
            Probe::Map(entries) => f
                .debug_map()
                .entries(entries.iter().map(|(k, v)| (k, v)))
                .finish(),
            Probe::_Hint(_) => unreachable!("never made"),
        }
    }
}

impl<'de, H: Hint> Deserialize<'de> for Probe<H> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        H::ask(d, ProbeVisitor(std::marker::PhantomData))
    }
}

struct ProbeVisitor<H>(std::marker::PhantomData<H>);

macro_rules! visit_int {
    ($($name:ident $ty:ty => $variant:ident $width:literal $as:ty;)*) => {
        $(fn $name<E>(self, v: $ty) -> Result<Probe<H>, E> {
            Ok(Probe::$variant($width, <$as>::from(v)))
        })*
    };
}

impl<'de, H> Visitor<'de> for ProbeVisitor<H> {
    type Value = Probe<H>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Probe<H>, E> {
        Ok(Probe::Bool(v))
    }

    visit_int! {
        visit_u8 u8 => Unsigned 8 u64;
        visit_u16 u16 => Unsigned 16 u64;
        visit_u32 u32 => Unsigned 32 u64;
        visit_u64 u64 => Unsigned 64 u64;
        visit_i8 i8 => Signed 8 i64;
        visit_i16 i16 => Signed 16 i64;
        visit_i32 i32 => Signed 32 i64;
        visit_i64 i64 => Signed 64 i64;
    }

    fn visit_f32<E>(self, v: f32) -> Result<Probe<H>, E> {
        Ok(Probe::F32(v.to_bits()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Probe<H>, E> {
        Ok(Probe::F64(v.to_bits()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Probe<H>, E> {
        Ok(Probe::Str(v.to_owned()))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Probe<H>, E> {
        Ok(Probe::Bytes(v.to_vec()))
    }

    fn visit_unit<E>(self) -> Result<Probe<H>, E> {
        Ok(Probe::Unit)
    }

    fn visit_none<E>(self) -> Result<Probe<H>, E> {
        Ok(Probe::None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Probe<H>, D::Error> {
        Probe::<Any>::deserialize(d).map(|p| Probe::Some(Box::new(p)))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Probe<H>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Probe::Seq(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Probe<H>, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Probe::Map(entries))
    }
}
