//! Finding a module's method by its name, for the calls made by name.
//!
//! The method id on the wire is an FNV-1a hash of the name, one multiply per byte, and
//! the table is sorted by it; finding a name that way was a hash, a binary search and a
//! `memcmp` call, about 130 instructions for `"echo"` (callgrind). This index is built
//! once per load and finds a name in one probe of an open-addressed table: it reads the
//! name's length and its first and last eight bytes (two loads), which for a name of at
//! most 16 bytes is the whole name, so such a name is compared without `memcmp`.

/// A name reduced to its length and its first and last eight bytes
/// (`memlink_abi::text::ends`). Two names of at most 16 bytes are equal exactly when
/// their prints are; longer names with equal prints are compared in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Print {
    len: usize,
    head: u64,
    tail: u64,
}

/// The longest name whose print is the whole name.
const WHOLE: usize = 16;

impl Print {
    #[inline]
    fn of(name: &[u8]) -> Print {
        let (head, tail) = memlink_abi::text::ends(name);
        Print {
            len: name.len(),
            head,
            tail,
        }
    }

    /// The print's slot in a table of `64 - shift` bits of index (Fibonacci hashing).
    #[inline]
    fn slot(&self, shift: u32) -> usize {
        let mixed = self.head ^ self.tail.rotate_left(32) ^ self.len as u64;
        (mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> shift) as usize
    }
}

/// Whether two names are the same bytes: for names of at most 16 bytes, their prints
/// compared inline, which costs less than a call to `memcmp` for names this short.
#[inline]
pub(crate) fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && if a.len() <= WHOLE {
            Print::of(a) == Print::of(b)
        } else {
            a == b
        }
}

/// A slot of the table: a name's print and its method's index, or [`EMPTY`].
#[derive(Debug, Clone, Copy)]
struct Slot {
    print: Print,
    index: u32,
}

const EMPTY: u32 = u32::MAX;

/// The methods of one module by name (see the module's documentation).
#[derive(Debug)]
pub(crate) struct MethodIndex {
    /// A power of two of at least four times the names: a probe meets an empty slot, and
    /// seldom another name first.
    slots: Box<[Slot]>,
    /// 64 minus the bits of a slot's index.
    shift: u32,
}

impl MethodIndex {
    /// An index of `names`, each found at its position. Of two equal names (a table the
    /// runtime checked has none) the first is found.
    pub(crate) fn new(names: &[&str]) -> MethodIndex {
        let len = (names.len() * 4).next_power_of_two().max(2);
        let shift = 64 - len.trailing_zeros();
        let empty = Slot {
            print: Print::of(b""),
            index: EMPTY,
        };
        let mut slots = vec![empty; len].into_boxed_slice();
        for (index, name) in names.iter().enumerate() {
            let print = Print::of(name.as_bytes());
            let mut at = print.slot(shift);
            while slots[at].index != EMPTY {
                at = (at + 1) & (len - 1);
            }
            slots[at] = Slot {
                print,
                // A table of `u32::MAX` methods or more would have no room in memory.
                index: u32::try_from(index)
                    .ok()
                    .filter(|&i| i != EMPTY)
                    .expect("a method table's length fits a u32"),
            };
        }
        MethodIndex { slots, shift }
    }

    /// The index of the method named `name`. `same(index)` compares `name` with that
    /// method's name in full; it is asked only of a name longer than 16 bytes whose
    /// length and first and last eight bytes matched.
    #[inline]
    pub(crate) fn find(&self, name: &str, same: impl Fn(u32) -> bool) -> Option<u32> {
        let print = Print::of(name.as_bytes());
        let mask = self.slots.len() - 1;
        let mut at = print.slot(self.shift);
        loop {
            let slot = self.slots[at & mask];
            if slot.index == EMPTY {
                return None;
            }
            if slot.print == print && (print.len <= WHOLE || same(slot.index)) {
                return Some(slot.index);
            }
            at = (at & mask) + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> MethodIndex {
        MethodIndex::new(names)
    }

    fn find(index: &MethodIndex, names: &[&str], name: &str) -> Option<u32> {
        index.find(name, |i| names[i as usize] == name)
    }

    #[test]
    fn a_print_is_the_whole_name_up_to_16_bytes() {
        // Every pair of distinct names of up to 16 bytes over a small alphabet, including
        // those that differ only in a middle byte, has distinct prints.
        let mut names = vec![String::new()];
        for len in 1..=16 {
            for at in 0..len {
                for b in [b'a', b'b'] {
                    let mut name = vec![b'a'; len];
                    name[at] = b;
                    names.push(String::from_utf8(name).unwrap());
                }
            }
        }
        names.sort();
        names.dedup();
        for a in &names {
            for b in &names {
                assert_eq!(
                    Print::of(a.as_bytes()) == Print::of(b.as_bytes()),
                    a == b,
                    "{a:?} and {b:?}"
                );
            }
        }
    }

    #[test]
    fn same_name_is_byte_equality() {
        let names = [
            "", "a", "ab", "abc", "abcd", "abce", "abcdefgh", "abcdefgi", "basic",
        ];
        let long = [
            "x".repeat(20),
            format!("{}y", "x".repeat(19)),
            "x".repeat(21),
        ];
        let all: Vec<&[u8]> = names
            .iter()
            .map(|n| n.as_bytes())
            .chain(long.iter().map(|n| n.as_bytes()))
            .collect();
        for a in &all {
            for b in &all {
                assert_eq!(same_name(a, b), a == b, "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn every_name_is_found_at_its_position_and_no_other_is() {
        let long = "a_method_name_longer_than_sixteen_bytes";
        let names = [
            "echo",
            "add",
            "",
            "x",
            "noop",
            "echo_msgpack",
            long,
            "a_method_name_longer_than_sixteen_bytez",
            "a_method_name_lXnger_than_sixteen_bytes",
        ];
        let idx = index(&names);
        for (i, name) in names.iter().enumerate() {
            assert_eq!(find(&idx, &names, name), Some(i as u32), "{name:?}");
        }
        // Same print as `long` (same length, first and last eight bytes), other middle.
        let same_print = "a_method_name_lYnger_than_sixteen_bytes";
        for missing in ["ech", "echo ", "Echo", "ad", "noo", same_print, "y"] {
            assert_eq!(find(&idx, &names, missing), None, "{missing:?}");
        }
    }

    #[test]
    fn full_tables_and_empty_ones_end_their_probes() {
        let names: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let idx = index(&refs);
        for (i, name) in refs.iter().enumerate() {
            assert_eq!(find(&idx, &refs, name), Some(i as u32));
        }
        assert_eq!(find(&idx, &refs, "m300"), None);
        assert_eq!(find(&index(&[]), &[], "anything"), None);
        assert_eq!(find(&index(&[]), &[], ""), None);
    }
}
