//! MessagePack for plain values without serde: what `#[memlink_export]` uses when every
//! argument is `()`, `bool`, an integer, a float, a `String` or a `Vec<u8>`, or the
//! result is one of the scalars among them.
//!
//! A small call's cost is mostly bookkeeping around the user's function, and serde's
//! MessagePack path (a serializer, a writer, a visitor per value) is a large part of it
//! for `add(a: u32, b: u32) -> u32`. These read and write the same bytes directly. They
//! are an optimization only: the encoder writes exactly what `rmp-serde` writes (the
//! smallest representation; tests compare the two), and the decoder accepts only the
//! plain positional form (`[a, b]` with integers, booleans or floats in their own
//! formats) and says `None` for anything else (a map keyed by name, a float for an
//! integer, trailing bytes...), for the wrapper to decode it with serde, which gives the
//! same value, or the same error, as it always did.

/// A scalar that crosses as one MessagePack value.
pub trait Scalar: Sized + Copy {
    /// Writes the value as `rmp-serde` would, into `out`; returns the length (at most 9).
    fn write(self, out: &mut [u8; 9]) -> usize;

    /// Reads one value of exactly this type from the front of `input`, advancing it;
    /// `None` when the next value is not one this reader takes (without advancing).
    fn read(input: &mut &[u8]) -> Option<Self>;
}

/// The smallest MessagePack encoding of an unsigned integer, as `rmp::encode::write_uint`.
fn write_uint(v: u64, out: &mut [u8; 9]) -> usize {
    if v < 128 {
        out[0] = v as u8;
        1
    } else if v < 256 {
        out[..2].copy_from_slice(&[0xcc, v as u8]);
        2
    } else if v < 65_536 {
        out[0] = 0xcd;
        out[1..3].copy_from_slice(&(v as u16).to_be_bytes());
        3
    } else if v < 1 << 32 {
        out[0] = 0xce;
        out[1..5].copy_from_slice(&(v as u32).to_be_bytes());
        5
    } else {
        out[0] = 0xcf;
        out[1..9].copy_from_slice(&v.to_be_bytes());
        9
    }
}

/// The smallest MessagePack encoding of a signed integer, as `rmp::encode::write_sint`:
/// non-negative values as unsigned ones.
fn write_sint(v: i64, out: &mut [u8; 9]) -> usize {
    if v >= 0 {
        write_uint(v as u64, out)
    } else if v >= -32 {
        out[0] = v as u8;
        1
    } else if v >= -128 {
        out[..2].copy_from_slice(&[0xd0, v as u8]);
        2
    } else if v >= -32_768 {
        out[0] = 0xd1;
        out[1..3].copy_from_slice(&(v as i16).to_be_bytes());
        3
    } else if v >= -(1 << 31) {
        out[0] = 0xd2;
        out[1..5].copy_from_slice(&(v as i32).to_be_bytes());
        5
    } else {
        out[0] = 0xd3;
        out[1..9].copy_from_slice(&v.to_be_bytes());
        9
    }
}

/// The `N` bytes after a one-byte marker, if there are that many.
fn after_marker<const N: usize>(input: &[u8]) -> Option<[u8; N]> {
    input.get(1..1 + N)?.try_into().ok()
}

/// Any MessagePack integer at the front of `input`, as an `i128` (every integer format
/// fits), with its length.
fn read_integer(input: &[u8]) -> Option<(i128, usize)> {
    let marker = *input.first()?;
    Some(match marker {
        0x00..=0x7f => (i128::from(marker), 1),
        0xe0..=0xff => (i128::from(marker as i8), 1),
        0xcc => (i128::from(u8::from_be_bytes(after_marker(input)?)), 2),
        0xcd => (i128::from(u16::from_be_bytes(after_marker(input)?)), 3),
        0xce => (i128::from(u32::from_be_bytes(after_marker(input)?)), 5),
        0xcf => (i128::from(u64::from_be_bytes(after_marker(input)?)), 9),
        0xd0 => (i128::from(i8::from_be_bytes(after_marker(input)?)), 2),
        0xd1 => (i128::from(i16::from_be_bytes(after_marker(input)?)), 3),
        0xd2 => (i128::from(i32::from_be_bytes(after_marker(input)?)), 5),
        0xd3 => (i128::from(i64::from_be_bytes(after_marker(input)?)), 9),
        _ => return None,
    })
}

macro_rules! integers {
    ($($ty:ty => $write:ident as $wide:ty),* $(,)?) => {$(
        impl Scalar for $ty {
            #[inline]
            fn write(self, out: &mut [u8; 9]) -> usize {
                $write(self as $wide, out)
            }

            #[inline]
            fn read(input: &mut &[u8]) -> Option<$ty> {
                // A positive fixint, the usual small number, fits every integer type.
                if let Some(&small @ 0x00..=0x7f) = input.first() {
                    *input = &input[1..];
                    return Some(small as $ty);
                }
                let (value, len) = read_integer(input)?;
                // A value that does not fit is serde's to refuse, with its own words.
                let value = <$ty>::try_from(value).ok()?;
                *input = &input[len..];
                Some(value)
            }
        }
    )*};
}

integers!(
    u8 => write_uint as u64,
    u16 => write_uint as u64,
    u32 => write_uint as u64,
    u64 => write_uint as u64,
    usize => write_uint as u64,
    i8 => write_sint as i64,
    i16 => write_sint as i64,
    i32 => write_sint as i64,
    i64 => write_sint as i64,
    isize => write_sint as i64,
);

impl Scalar for bool {
    #[inline]
    fn write(self, out: &mut [u8; 9]) -> usize {
        out[0] = if self { 0xc3 } else { 0xc2 };
        1
    }

    #[inline]
    fn read(input: &mut &[u8]) -> Option<bool> {
        let value = match input.first()? {
            0xc2 => false,
            0xc3 => true,
            _ => return None,
        };
        *input = &input[1..];
        Some(value)
    }
}

impl Scalar for f32 {
    #[inline]
    fn write(self, out: &mut [u8; 9]) -> usize {
        out[0] = 0xca;
        out[1..5].copy_from_slice(&self.to_be_bytes());
        5
    }

    #[inline]
    fn read(input: &mut &[u8]) -> Option<f32> {
        if *input.first()? != 0xca {
            return None;
        }
        let value = f32::from_be_bytes(after_marker(input)?);
        *input = &input[5..];
        Some(value)
    }
}

impl Scalar for f64 {
    #[inline]
    fn write(self, out: &mut [u8; 9]) -> usize {
        out[0] = 0xcb;
        out[1..9].copy_from_slice(&self.to_be_bytes());
        9
    }

    #[inline]
    fn read(input: &mut &[u8]) -> Option<f64> {
        if *input.first()? != 0xcb {
            return None;
        }
        let value = f64::from_be_bytes(after_marker(input)?);
        *input = &input[9..];
        Some(value)
    }
}

impl Scalar for () {
    #[inline]
    fn write(self, out: &mut [u8; 9]) -> usize {
        out[0] = 0xc0;
        1
    }

    #[inline]
    fn read(input: &mut &[u8]) -> Option<()> {
        if *input.first()? != 0xc0 {
            return None;
        }
        *input = &input[1..];
        Some(())
    }
}

/// A value an argument list can hold that is read without serde: every [`Scalar`], a
/// `String` (from a MessagePack string) and a `Vec<u8>` (from an array of small
/// integers, as serde writes one).
pub trait Plain: Sized {
    /// Reads one value from the front of `input`, advancing it; `None` when the next
    /// value is not one this reader takes (without advancing).
    fn read_plain(input: &mut &[u8]) -> Option<Self>;
}

impl<T: Scalar> Plain for T {
    #[inline]
    fn read_plain(input: &mut &[u8]) -> Option<T> {
        T::read(input)
    }
}

/// The length and header size of the MessagePack string at the front of `input`.
fn str_header(input: &[u8]) -> Option<(usize, usize)> {
    let marker = *input.first()?;
    Some(match marker {
        0xa0..=0xbf => (usize::from(marker & 0x1f), 1),
        0xd9 => (usize::from(u8::from_be_bytes(after_marker(input)?)), 2),
        0xda => (usize::from(u16::from_be_bytes(after_marker(input)?)), 3),
        0xdb => (
            usize::try_from(u32::from_be_bytes(after_marker(input)?)).ok()?,
            5,
        ),
        _ => return None,
    })
}

impl Plain for String {
    #[inline]
    fn read_plain(input: &mut &[u8]) -> Option<String> {
        let (len, header) = str_header(input)?;
        let bytes = input.get(header..header.checked_add(len)?)?;
        // Not UTF-8: serde's to refuse (or take as bytes), with its own words.
        let text = memlink_abi::text::utf8(bytes).ok()?;
        *input = &input[header + len..];
        Some(text.to_owned())
    }
}

impl Plain for Vec<u8> {
    #[inline]
    fn read_plain(input: &mut &[u8]) -> Option<Vec<u8>> {
        let marker = *input.first()?;
        let (len, header) = match marker {
            0x90..=0x9f => (usize::from(marker & 0x0f), 1),
            0xdc => (usize::from(u16::from_be_bytes(after_marker(input)?)), 3),
            0xdd => (
                usize::try_from(u32::from_be_bytes(after_marker(input)?)).ok()?,
                5,
            ),
            _ => return None,
        };
        let mut rest = input.get(header..)?;
        // Each item takes at least a byte: a longer count is not this reader's to trust.
        if len > rest.len() {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(u8::read(&mut rest)?);
        }
        *input = rest;
        Some(out)
    }
}

/// The arguments of an export whose parameters are all [`Plain`], read from the
/// positional form `[a, b, ...]` with nothing after it.
pub trait ScalarArgs: Sized {
    /// The arguments, or `None` for any other encoding (see the module's docs).
    fn read_args(input: &[u8]) -> Option<Self>;
}

macro_rules! tuples {
    ($($n:literal: ($($t:ident),+)),* $(,)?) => {$(
        impl<$($t: Plain),+> ScalarArgs for ($($t,)+) {
            #[inline]
            fn read_args(input: &[u8]) -> Option<Self> {
                // A fixarray of exactly this many items.
                let (&header, mut rest) = input.split_first()?;
                if header != 0x90 | $n {
                    return None;
                }
                let args = ($($t::read_plain(&mut rest)?,)+);
                rest.is_empty().then_some(args)
            }
        }
    )*};
}

tuples!(
    1: (A),
    2: (A, B),
    3: (A, B, C),
    4: (A, B, C, D),
    5: (A, B, C, D, E),
    6: (A, B, C, D, E, F),
    7: (A, B, C, D, E, F, G),
    8: (A, B, C, D, E, F, G, H),
);

#[cfg(test)]
mod tests {
    use super::*;

    fn ours<T: Scalar>(v: T) -> Vec<u8> {
        let mut out = [0; 9];
        let n = v.write(&mut out);
        out[..n].to_vec()
    }

    fn serdes<T: serde::Serialize>(v: T) -> Vec<u8> {
        crate::serialize::to_msgpack(&v).unwrap()
    }

    /// Values around every boundary of every integer format.
    fn edges() -> Vec<i128> {
        let mut v = Vec::new();
        for b in [
            0i128, 31, 32, 127, 128, 255, 256, 32_767, 32_768, 65_535, 65_536,
        ] {
            v.extend([b - 1, b, b + 1, -b - 1, -b, -b + 1]);
        }
        for b in [1i128 << 31, 1 << 32, 1 << 63, 1 << 64] {
            v.extend([b - 1, b, b + 1, -b - 1, -b, -b + 1]);
        }
        v
    }

    macro_rules! agree {
        ($($ty:ty),*) => {$(
            for wide in edges() {
                if let Ok(v) = <$ty>::try_from(wide) {
                    assert_eq!(ours(v), serdes(v), "{} {v}", stringify!($ty));
                    let bytes = serdes(v);
                    let mut input = &bytes[..];
                    assert_eq!(<$ty as Scalar>::read(&mut input), Some(v));
                    assert!(input.is_empty());
                }
            }
        )*};
    }

    #[test]
    fn every_integer_is_written_as_rmp_serde_writes_it_and_read_back() {
        agree!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);
    }

    #[test]
    fn other_scalars_are_written_as_rmp_serde_writes_them() {
        for b in [false, true] {
            assert_eq!(ours(b), serdes(b));
        }
        for f in [0.0f32, -1.5, f32::MAX, f32::INFINITY] {
            assert_eq!(ours(f), serdes(f));
        }
        for f in [0.0f64, 2.25, f64::MIN_POSITIVE] {
            assert_eq!(ours(f), serdes(f));
        }
        assert_eq!(ours(()), serdes(()));
    }

    #[test]
    fn strings_and_byte_vectors_are_read_as_serde_reads_them() {
        type Relay = (String, String, Vec<u8>);
        for (module, method, args) in [
            ("basic", "echo", b"hello".to_vec()),
            ("", "x".repeat(40).as_str(), vec![0, 127, 128, 255]),
            ("m", &"long".repeat(100), vec![7; 70_000]),
            ("ü", "✓", vec![]),
        ] {
            let value: Relay = (module.to_owned(), method.to_owned(), args);
            let bytes = serdes(&value);
            assert_eq!(Relay::read_args(&bytes), Some(value));
        }
        // Left to serde: bytes that are not UTF-8, a byte string for a `Vec<u8>`, an
        // item past 255, a count longer than the input.
        assert_eq!(<(String,)>::read_args(&[0x91, 0xa1, 0xff]), None);
        assert_eq!(<(Vec<u8>,)>::read_args(&[0x91, 0xc4, 1, 5]), None);
        assert_eq!(<(Vec<u8>,)>::read_args(&[0x91, 0x91, 0xcd, 1, 0]), None);
        assert_eq!(
            <(Vec<u8>,)>::read_args(&[0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 1]),
            None
        );
    }

    #[test]
    fn only_the_plain_positional_form_is_read() {
        let args = |bytes: &[u8]| <(u32, u32)>::read_args(bytes);
        assert_eq!(args(&serdes((2u32, 3u32))), Some((2, 3)));
        assert_eq!(args(&[0x92, 0xcd, 0x01, 0x2c, 0x03]), Some((300, 3)));
        // Left to serde: a map by name, a value too large, a float, extra or missing
        // items, trailing bytes.
        assert_eq!(args(&[0x82, 0xa1, b'a', 2, 0xa1, b'b', 3]), None);
        assert_eq!(args(&[0x92, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 3]), None);
        assert_eq!(args(&[0x92, 0xca, 0, 0, 0, 0, 3]), None);
        assert_eq!(args(&[0x93, 2, 3, 4]), None);
        assert_eq!(args(&[0x91, 2]), None);
        assert_eq!(args(&[0x92, 2, 3, 0]), None);
        assert_eq!(<(i8,)>::read_args(&[0x91, 0xff]), Some((-1,)));
        assert_eq!(<(u8,)>::read_args(&[0x91, 0xff]), None, "-1 is no u8");
        assert_eq!(
            <(bool, f64)>::read_args(&serdes((true, 0.5f64))),
            Some((true, 0.5))
        );
    }
}
