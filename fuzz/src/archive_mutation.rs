//! Target `archive_mutation`: genuine archives with one byte changed.
//!
//! The input (decoded with `arbitrary`) picks a value of one of the archived argument
//! types (sizes, floats, text, chain length), a position and a byte. The value is
//! archived with rkyv as a host does; the genuine archive must validate and read back
//! as the value. Then the byte at the position (modulo the length) is replaced, and the
//! result is checked as an archive of every type (see [`crate::archives::examine`]):
//! nothing may crash or read outside the buffer, whatever validates must be readable in
//! full.
//!
//! [`sweep`] does the same for every position and every byte value of one archive; the
//! replay tests run it on a few small archives.

use arbitrary::{Arbitrary, Unstructured};
use memlink_examples::zero_copy_types::Point;
use memlink_msdk::rkyv::util::AlignedVec;

use memlink_msdk::archive::Limits;

use crate::archives::{archive, chain, examine_all, read_checked, Probes, Shape};

/// One input: a value to archive and one byte to change in its archive.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub struct Mutation {
    /// Where, modulo the archive's length.
    pub position: u16,
    /// The new byte.
    pub byte: u8,
    /// What to archive.
    pub value: Value,
}

/// A value of one of the archived argument types. Floats come as bit patterns (NaNs,
/// infinities and subnormals included), text as bytes made UTF-8 (lossily).
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum Value {
    /// `(Vec<Point>,)`: `centroid`.
    Points(Vec<[u32; 3]>),
    /// `(Vec<Point>, f32)`: `scale`.
    Scaled(Vec<[u32; 3]>, u32),
    /// `(String, Vec<u8>)`: `shout`.
    Shout(Vec<u8>, Vec<u8>),
    /// `(Chain,)` with this many links: `chain_len`.
    Chain(u8),
    /// `(Vec<Point>, String)`: this crate's `archived_points`.
    Labelled(Vec<[u32; 3]>, Vec<u8>),
}

fn points(bits: &[[u32; 3]]) -> Vec<Point> {
    bits.iter()
        .map(|&[x, y, z]| Point {
            x: f32::from_bits(x),
            y: f32::from_bits(y),
            z: f32::from_bits(z),
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Value {
    /// The genuine archive of the value, checked: it validates and reads back as the
    /// value.
    pub fn archive(&self) -> AlignedVec {
        match self {
            Value::Points(p) => genuine(&(points(p),)),
            Value::Scaled(p, f) => genuine(&(points(p), f32::from_bits(*f))),
            Value::Shout(t, b) => genuine(&(text(t), b.clone())),
            Value::Chain(n) => genuine(&(chain(usize::from(*n)),)),
            Value::Labelled(p, t) => genuine(&(points(p), text(t))),
        }
    }
}

/// Archives `value` and checks the archive reads back as it (with a depth limit above
/// any value here: a chain of more than 126 links is too deep for the default one).
fn genuine<T: Shape>(value: &T) -> AlignedVec {
    let bytes = archive(value);
    let generous = Limits {
        max_depth: 1024,
        max_size: usize::MAX,
    };
    let reading = read_checked::<T>(&bytes, generous)
        .unwrap_or_else(|e| panic!("a genuine archive of {} was refused: {e}", T::NAME));
    assert_eq!(
        (reading.digest, reading.nesting),
        (value.digest(), value.nesting()),
        "a genuine archive of {} reads differently",
        T::NAME
    );
    bytes
}

/// Decodes one input.
pub fn decode(data: &[u8]) -> Option<Mutation> {
    Mutation::arbitrary(&mut Unstructured::new(data)).ok()
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some(m) = decode(data) else {
        return;
    };
    let mut bytes = m.value.archive();
    let at = usize::from(m.position) % bytes.len();
    bytes[at] = m.byte;
    examine_all(&bytes, Probes::All);
}

/// Every one-byte change of `bytes` (every position, every value), checked as an
/// archive of every type.
pub fn sweep(bytes: &[u8]) {
    let mut mutated = bytes.to_vec();
    for at in 0..bytes.len() {
        for byte in 0..=u8::MAX {
            mutated[at] = byte;
            examine_all(&mutated, Probes::Light);
        }
        mutated[at] = bytes[at];
    }
}

/// Writes the bytes [`decode`] turns into `m`: the inverse of `arbitrary`'s decoding
/// (see `call_frames::encode`), for writing seed inputs.
pub fn encode(m: &Mutation) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&m.position.to_le_bytes());
    out.push(m.byte);
    let variant = |out: &mut Vec<u8>, k: u64| {
        out.extend_from_slice(&(((k << 32).div_ceil(5)) as u32).to_le_bytes());
    };
    let points = |out: &mut Vec<u8>, p: &[[u32; 3]]| {
        for xyz in p {
            out.push(1);
            xyz.iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        out.push(0);
    };
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        b.iter().for_each(|&x| out.extend_from_slice(&[1, x]));
        out.push(0);
    };
    match &m.value {
        Value::Points(p) => {
            variant(&mut out, 0);
            points(&mut out, p);
        }
        Value::Scaled(p, f) => {
            variant(&mut out, 1);
            points(&mut out, p);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Shout(t, b) => {
            variant(&mut out, 2);
            bytes(&mut out, t);
            bytes(&mut out, b);
        }
        Value::Chain(n) => {
            variant(&mut out, 3);
            out.push(*n);
        }
        Value::Labelled(p, t) => {
            variant(&mut out, 4);
            points(&mut out, p);
            bytes(&mut out, t);
        }
    }
    out
}
