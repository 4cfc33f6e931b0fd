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

    /// The bytes [`write`](Scalar::write) writes, as the little-endian `u128` whose
    /// first bytes they are (the rest zero), with their length. The SDK's own scalars
    /// compute it in registers, so that the result goes into the frame as one block
    /// (`Invocation::encode_scalar_result`); the default writes the bytes first.
    #[inline]
    fn encode(self) -> (u128, usize) {
        let mut out = [0; 9];
        let len = self.write(&mut out);
        let mut block = [0; 16];
        block[..9].copy_from_slice(&out);
        (u128::from_le_bytes(block), len)
    }

    /// Reads one value of exactly this type from the front of `input`, advancing it;
    /// `None` when the next value is not one this reader takes (without advancing).
    fn read(input: &mut &[u8]) -> Option<Self>;
}

/// `marker` followed by `payload`, the big-endian bytes of a number of `N` bytes (the
/// number's own bytes, `to_be_bytes`), as the little-endian word of
/// [`Scalar::encode`], with its length.
#[inline(always)]
fn marked<const N: usize>(marker: u8, payload: [u8; N]) -> (u128, usize) {
    let mut block = [0; 16];
    block[0] = marker;
    block[1..=N].copy_from_slice(&payload);
    (u128::from_le_bytes(block), N + 1)
}

/// The smallest MessagePack encoding of an unsigned integer, as `rmp::encode::write_uint`.
#[inline]
fn encode_uint(v: u64) -> (u128, usize) {
    if v < 128 {
        (u128::from(v), 1)
    } else if v < 256 {
        marked(0xcc, [v as u8])
    } else if v < 65_536 {
        marked(0xcd, (v as u16).to_be_bytes())
    } else if v < 1 << 32 {
        marked(0xce, (v as u32).to_be_bytes())
    } else {
        marked(0xcf, v.to_be_bytes())
    }
}

/// The smallest MessagePack encoding of a signed integer, as `rmp::encode::write_sint`:
/// non-negative values as unsigned ones.
#[inline]
fn encode_sint(v: i64) -> (u128, usize) {
    if v >= 0 {
        encode_uint(v as u64)
    } else if v >= -32 {
        (u128::from(v as u8), 1)
    } else if v >= -128 {
        marked(0xd0, [v as u8])
    } else if v >= -32_768 {
        marked(0xd1, (v as i16).to_be_bytes())
    } else if v >= -(1 << 31) {
        marked(0xd2, (v as i32).to_be_bytes())
    } else {
        marked(0xd3, v.to_be_bytes())
    }
}

/// `encoded` written into `out` (the first 9 bytes of its word), for [`Scalar::write`].
#[inline(always)]
fn write_encoded((word, len): (u128, usize), out: &mut [u8; 9]) -> usize {
    out.copy_from_slice(&word.to_le_bytes()[..9]);
    len
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
    ($($ty:ty => $encode:ident as $wide:ty),* $(,)?) => {$(
        impl Scalar for $ty {
            #[inline]
            fn write(self, out: &mut [u8; 9]) -> usize {
                write_encoded(self.encode(), out)
            }

            #[inline]
            fn encode(self) -> (u128, usize) {
                $encode(self as $wide)
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
    u8 => encode_uint as u64,
    u16 => encode_uint as u64,
    u32 => encode_uint as u64,
    u64 => encode_uint as u64,
    usize => encode_uint as u64,
    i8 => encode_sint as i64,
    i16 => encode_sint as i64,
    i32 => encode_sint as i64,
    i64 => encode_sint as i64,
    isize => encode_sint as i64,
);

impl Scalar for bool {
    #[inline]
    fn write(self, out: &mut [u8; 9]) -> usize {
        write_encoded(self.encode(), out)
    }

    #[inline]
    fn encode(self) -> (u128, usize) {
        (if self { 0xc3 } else { 0xc2 }, 1)
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
        write_encoded(self.encode(), out)
    }

    #[inline]
    fn encode(self) -> (u128, usize) {
        marked(0xca, self.to_be_bytes())
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
        write_encoded(self.encode(), out)
    }

    #[inline]
    fn encode(self) -> (u128, usize) {
        marked(0xcb, self.to_be_bytes())
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
        write_encoded(self.encode(), out)
    }

    #[inline]
    fn encode(self) -> (u128, usize) {
        (0xc0, 1)
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
        let (bytes, after) = input.get(header..)?.split_at_checked(len)?;
        // Not UTF-8: serde's to refuse (or take as bytes), with its own words.
        let text = memlink_abi::text::utf8(bytes).ok()?;
        *input = after;
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
        let (items, after) = rest.split_at_checked(len)?;
        // The usual bytes, all below 0x80: each item is a positive fixint, one byte that
        // is its own value, so the items are the input's next `len` bytes as they are.
        // `is_ascii` tests them a word at a time; a byte at a time, the loop below costs
        // about ten instructions an item.
        if items.is_ascii() {
            *input = after;
            return Some(items.to_vec());
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

    /// The bytes `v` writes, checked to be the bytes it encodes into a word too.
    fn ours<T: Scalar>(v: T) -> Vec<u8> {
        let mut out = [0; 9];
        let n = v.write(&mut out);
        let (word, len) = v.encode();
        assert_eq!(len, n, "`encode` says the length `write` does");
        assert_eq!(
            &word.to_le_bytes()[..n],
            &out[..n],
            "`encode`'s bytes are `write`'s"
        );
        assert_eq!(word >> (8 * n), 0, "nothing after the bytes");
        out[..n].to_vec()
    }

    /// A scalar of another crate, which implements `write` only.
    #[derive(Clone, Copy)]
    struct Written;

    impl Scalar for Written {
        fn write(self, out: &mut [u8; 9]) -> usize {
            out[..3].copy_from_slice(&[0xcd, 1, 2]);
            3
        }

        fn read(_: &mut &[u8]) -> Option<Written> {
            None
        }
    }

    #[test]
    fn a_scalar_that_only_writes_encodes_what_it_writes() {
        let mut expected = [0; 16];
        expected[..3].copy_from_slice(&[0xcd, 1, 2]);
        assert_eq!(Written.encode(), (u128::from_le_bytes(expected), 3));
    }

    /// What `rmp_serde` itself writes for `v`, structs as maps.
    fn serdes<T: serde::Serialize>(v: T) -> Vec<u8> {
        let mut out = Vec::new();
        v.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
            .unwrap();
        out
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
            // Below 0x80 but one item (the first, the last, one in the middle).
            ("m", "x", [vec![200], vec![1; 20]].concat()),
            ("m", "x", [vec![1; 20], vec![255]].concat()),
            ("m", "x", [vec![1; 9], vec![128], vec![2; 9]].concat()),
            ("m", "x", (0..=255).collect()),
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
