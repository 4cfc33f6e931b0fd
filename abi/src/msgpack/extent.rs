//! How many bytes the first MessagePack value of a buffer takes, found by reading the
//! values' heads only (a string's or byte string's payload is skipped, not read): how a
//! decoder that reads the buffer in place, with no reader of its own to ask, tells a
//! whole buffer from one with bytes after the value.

/// The length of the MessagePack value at the start of `bytes`, or `None` when `bytes`
/// does not start with a whole value.
pub(crate) fn value_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    // Values still to read: every array or map adds its items. Each takes at least a
    // byte, so more than there are bytes left is a truncated (or lying) buffer.
    let mut pending = 1usize;
    while pending > 0 {
        if pending > bytes.len() - at {
            return None;
        }
        pending -= 1;
        let head = *bytes.get(at)?;
        at += 1;
        let be = |at: usize, n: usize| -> Option<usize> {
            let b = bytes.get(at..at.checked_add(n)?)?;
            Some(b.iter().fold(0usize, |v, &x| (v << 8) | usize::from(x)))
        };
        // (bytes of the head after the marker, bytes of payload, items that follow)
        let (head_len, payload, items) = match head {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0, 0),
            0x80..=0x8f => (0, 0, 2 * usize::from(head & 0x0f)),
            0x90..=0x9f => (0, 0, usize::from(head & 0x0f)),
            0xa0..=0xbf => (0, usize::from(head & 0x1f), 0),
            0xc4 | 0xd9 => (1, be(at, 1)?, 0),
            0xc5 | 0xda => (2, be(at, 2)?, 0),
            0xc6 | 0xdb => (4, be(at, 4)?, 0),
            // ext 8/16/32: a length, a type byte, the payload.
            0xc7 => (2, be(at, 1)?, 0),
            0xc8 => (3, be(at, 2)?, 0),
            0xc9 => (5, be(at, 4)?, 0),
            0xca => (4, 0, 0),
            0xcb => (8, 0, 0),
            0xcc | 0xd0 => (1, 0, 0),
            0xcd | 0xd1 => (2, 0, 0),
            0xce | 0xd2 => (4, 0, 0),
            0xcf | 0xd3 => (8, 0, 0),
            // fixext 1/2/4/8/16: a type byte, the payload.
            0xd4 => (1, 1, 0),
            0xd5 => (1, 2, 0),
            0xd6 => (1, 4, 0),
            0xd7 => (1, 8, 0),
            0xd8 => (1, 16, 0),
            0xdc => (2, 0, be(at, 2)?),
            0xdd => (4, 0, be(at, 4)?),
            0xde => (2, 0, 2usize.checked_mul(be(at, 2)?)?),
            0xdf => (4, 0, 2usize.checked_mul(be(at, 4)?)?),
            // 0xc1 is never used.
            _ => return None,
        };
        at = at.checked_add(head_len)?.checked_add(payload)?;
        if at > bytes.len() {
            return None;
        }
        pending = pending.checked_add(items)?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    fn len_of<T: Serialize>(value: &T) -> usize {
        let bytes = rmp_serde::to_vec(value).unwrap();
        let mut with_more = bytes.clone();
        with_more.extend_from_slice(&[0xc0, 1, 2]);
        assert_eq!(value_len(&with_more), Some(bytes.len()));
        // Every proper prefix is short of a value (checked for values of a few hundred
        // bytes; for larger ones, a sample of prefixes).
        let step = (bytes.len() / 256).max(1);
        for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
            assert_eq!(value_len(&bytes[..cut]), None, "cut at {cut} of {bytes:?}");
        }
        bytes.len()
    }

    #[test]
    fn every_kind_of_value_is_measured() {
        len_of(&());
        len_of(&true);
        len_of(&(0u8, 200u8, 60_000u16, 70_000u32, u64::MAX));
        len_of(&(-1i8, -100i8, -30_000i16, -70_000i32, i64::MIN));
        len_of(&(1.5f32, 2.5f64));
        len_of(&"a".repeat(31));
        len_of(&"b".repeat(300));
        len_of(&"c".repeat(70_000));
        len_of(&vec![7u32; 20]);
        len_of(&vec![vec![1u8; 3]; 70_000]);
        len_of(&std::collections::BTreeMap::from([(1u8, "x"), (2, "y")]));
        len_of(&(Some(3u8), None::<u8>, vec![(1u8, "two")]));
        // Byte strings (bin 8, 16, 32), as serde_bytes writes them.
        for (n, head) in [
            (3usize, vec![0xc4, 3]),
            (300, vec![0xc5, 1, 44]),
            (70_000, vec![0xc6, 0, 1, 0x11, 0x70]),
        ] {
            let mut bytes = head;
            bytes.resize(bytes.len() + n, 9);
            assert_eq!(value_len(&bytes), Some(bytes.len()));
            assert_eq!(value_len(&bytes[..bytes.len() - 1]), None);
        }
    }

    #[test]
    fn lies_and_garbage_are_refused() {
        assert_eq!(value_len(&[]), None);
        assert_eq!(value_len(&[0xc1]), None);
        // An array claiming four billion items in five bytes.
        assert_eq!(value_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]), None);
        // A string claiming more bytes than follow.
        assert_eq!(value_len(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']), None);
    }
}
