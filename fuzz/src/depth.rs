//! The nesting depth of a MessagePack document, measured without recursion.
//!
//! This is the harnesses' oracle for the ABI's promise that "nesting deeper than 128 is
//! an error, not a stack overflow": whatever type a decoder targets, a document it
//! accepts must be at most [`MAX_DEPTH`](memlink_msdk::serialize::MAX_DEPTH) deep.
//! The same walk, run before decoding, is one way to keep that promise for every type
//! (see the report on the `enum-depth` bug in `known.rs`).

/// Depth of the first value in `bytes`: 0 for a scalar, 1 for `[1]`, 2 for `[[1]]`;
/// maps count like arrays. `None` when the value is cut short or uses the reserved
/// marker `0xc1`. Ext values are leaves (their payload is opaque bytes).
pub fn depth(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    // Items still to read in each open container; its length is the current depth.
    let mut open: Vec<u64> = Vec::new();
    let mut deepest = 0usize;
    loop {
        let (children, skip) = item(bytes, &mut pos)?;
        pos = pos.checked_add(skip)?;
        if pos > bytes.len() {
            return None;
        }
        if children > 0 {
            open.push(children);
            deepest = deepest.max(open.len());
        } else {
            // A leaf (or an empty container) completes items up the stack.
            loop {
                match open.last_mut() {
                    None => return Some(deepest),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        open.pop();
                    }
                }
            }
        }
    }
}

/// Reads one marker at `*pos` (advancing past it and its length field) and returns how
/// many child items it opens and how many payload bytes follow it.
fn item(bytes: &[u8], pos: &mut usize) -> Option<(u64, usize)> {
    let marker = *bytes.get(*pos)?;
    *pos += 1;
    let mut be = |n: usize| -> Option<u64> {
        let field = bytes.get(*pos..*pos + n)?;
        *pos += n;
        Some(field.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    };
    Some(match marker {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
        0x80..=0x8f => (2 * u64::from(marker & 0x0f), 0),
        0x90..=0x9f => (u64::from(marker & 0x0f), 0),
        0xa0..=0xbf => (0, usize::from(marker & 0x1f)),
        0xc1 => return None,
        0xc4 | 0xd9 => (0, be(1)? as usize),
        0xc5 | 0xda => (0, be(2)? as usize),
        0xc6 | 0xdb => (0, be(4)? as usize),
        0xc7 => (0, be(1)? as usize + 1),
        0xc8 => (0, be(2)? as usize + 1),
        0xc9 => (0, be(4)? as usize + 1),
        0xca => (0, 4),
        0xcb => (0, 8),
        0xcc | 0xd0 => (0, 1),
        0xcd | 0xd1 => (0, 2),
        0xce | 0xd2 => (0, 4),
        0xcf | 0xd3 => (0, 8),
        0xd4 => (0, 2),
        0xd5 => (0, 3),
        0xd6 => (0, 5),
        0xd7 => (0, 9),
        0xd8 => (0, 17),
        0xdc => (be(2)?, 0),
        0xdd => (be(4)?, 0),
        0xde => (2 * be(2)?, 0),
        0xdf => (2 * be(4)?, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::depth;

    #[test]
    fn scalars_arrays_and_maps() {
        assert_eq!(depth(&[0x05]), Some(0));
        assert_eq!(depth(&[0x90]), Some(0), "an empty array holds nothing");
        assert_eq!(depth(&[0x92, 0x01, 0x02]), Some(1));
        assert_eq!(depth(&[0x92, 0x91, 0x01, 0x02]), Some(2));
        assert_eq!(depth(&[0x81, 0xa1, b'a', 0x91, 0x91, 0xc0]), Some(3));
        assert_eq!(depth(&[0x92, 0x01]), None, "cut short");
        assert_eq!(depth(&[0xc1]), None);
        assert_eq!(depth(&[0xa3, b'a']), None, "a string cut short");
        let mut deep = vec![0x91; 1000];
        deep.push(0xc0);
        assert_eq!(depth(&deep), Some(1000));
    }

    #[test]
    fn agrees_with_rmp_serde_encodings() {
        let value = serde_json::json!({"a": [1, {"b": [true, null, "x"]}], "c": 1.5});
        let bytes = rmp_serde::to_vec(&value).unwrap();
        assert_eq!(depth(&bytes), Some(4));
    }
}
