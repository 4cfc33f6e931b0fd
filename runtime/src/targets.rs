//! Where a thread's nested calls went: the last few modules and methods its running
//! modules called by name, so that calling the same one again skips the name lookup
//! (a lock, a hash, a version match), the method search and the names' UTF-8 checks.
//!
//! An entry is only a hint. It holds the names as the calling module passed them, the
//! slot and method index they led to, and the registry's epoch then
//! (`Registry::epoch`), which every load, reload and unload changes. A hit is used only
//! if the registry is still at that epoch once the slot is read, so it finds what the
//! lookup would find now (`Registry::hinted`). Names are compared as bytes: bytes equal
//! to a name checked once are that name, valid UTF-8.
//!
//! Names are kept inline (no allocation, on a hit or a miss); a call whose names are
//! longer than [`NAMES`] bytes together is looked up each time.

use std::cell::{Cell, RefCell};

use crate::method_index::same_name;

/// Targets a thread keeps, replaced in turn.
const TARGETS: usize = 4;

/// Bytes of the module and method names an entry holds, together.
const NAMES: usize = 96;

/// Where a nested call went, by the names it was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hint {
    /// The registry slot the module name led to.
    pub(crate) slot: u32,
    /// The method's index in that module's table.
    pub(crate) method: u32,
    /// The registry's epoch when the names led there.
    pub(crate) epoch: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    /// The registry, by its id; 0 for an entry not in use (ids start at 1).
    registry: u32,
    hint: Hint,
    module_len: u8,
    method_len: u8,
    /// The module name, then the method name.
    names: [u8; NAMES],
}

impl Entry {
    const EMPTY: Entry = Entry {
        registry: 0,
        hint: Hint {
            slot: 0,
            method: 0,
            epoch: 0,
        },
        module_len: 0,
        method_len: 0,
        names: [0; NAMES],
    };

    #[inline]
    fn is(&self, registry: u32, module: &[u8], method: &[u8]) -> bool {
        let (m, rest) = self.names.split_at(usize::from(self.module_len));
        self.registry == registry
            && same_name(m, module)
            && same_name(&rest[..usize::from(self.method_len)], method)
    }
}

/// A thread's targets (part of its state, the `thread` module).
pub(crate) struct TargetCache {
    entries: RefCell<[Entry; TARGETS]>,
    /// The entry the next new target replaces.
    next: Cell<usize>,
}

impl TargetCache {
    /// A cache holding nothing.
    pub(crate) const fn new() -> TargetCache {
        TargetCache {
            entries: RefCell::new([Entry::EMPTY; TARGETS]),
            next: Cell::new(0),
        }
    }

    /// Where the call to `method` of `module` went last from this thread, in registry
    /// `registry`, if the cache holds it.
    #[inline]
    pub(crate) fn find(&self, registry: u32, module: &[u8], method: &[u8]) -> Option<Hint> {
        // Nothing else borrows the entries while a lookup runs (no code runs in between);
        // a failed borrow would only be a miss.
        let entries = self.entries.try_borrow().ok()?;
        entries
            .iter()
            .find(|e| e.is(registry, module, method))
            .map(|e| e.hint)
    }

    /// Keeps `hint` for calls to `method` of `module` in registry `registry`, in place
    /// of the oldest target; names too long to keep are not kept.
    pub(crate) fn keep(&self, registry: u32, module: &str, method: &str, hint: Hint) {
        let (module, method) = (module.as_bytes(), method.as_bytes());
        let (Ok(module_len), Ok(method_len)) =
            (u8::try_from(module.len()), u8::try_from(method.len()))
        else {
            return;
        };
        if module.len() + method.len() > NAMES {
            return;
        }
        let Ok(mut entries) = self.entries.try_borrow_mut() else {
            return;
        };
        // The same names again (the registry moved on): the entry is renewed in place.
        let at = match entries.iter().position(|e| e.is(registry, module, method)) {
            Some(at) => at,
            None => {
                let at = self.next.get();
                self.next.set((at + 1) % TARGETS);
                at
            }
        };
        let entry = &mut entries[at];
        *entry = Entry {
            registry,
            hint,
            module_len,
            method_len,
            names: [0; NAMES],
        };
        entry.names[..module.len()].copy_from_slice(module);
        entry.names[module.len()..module.len() + method.len()].copy_from_slice(method);
    }
}

impl std::fmt::Debug for TargetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetCache").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(slot: u32) -> Hint {
        Hint {
            slot,
            method: slot + 10,
            epoch: 2,
        }
    }

    #[test]
    fn a_target_is_found_by_its_registry_and_both_names() {
        let cache = TargetCache::new();
        cache.keep(1, "basic", "echo", hint(3));
        assert_eq!(cache.find(1, b"basic", b"echo"), Some(hint(3)));
        assert_eq!(cache.find(2, b"basic", b"echo"), None, "another registry");
        assert_eq!(cache.find(1, b"basic", b"ech"), None);
        assert_eq!(cache.find(1, b"basi", b"cecho"), None, "the split counts");
        assert_eq!(cache.find(1, b"basic", b"echo2"), None);
        assert_eq!(cache.find(1, b"", b""), None, "an empty entry is no target");
    }

    #[test]
    fn the_oldest_target_gives_way_and_the_same_names_are_renewed_in_place() {
        let cache = TargetCache::new();
        let names: Vec<String> = (0..=TARGETS).map(|i| format!("m{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            cache.keep(1, name, "f", hint(i as u32));
        }
        assert_eq!(cache.find(1, b"m0", b"f"), None, "the oldest gave way");
        for (i, name) in names.iter().enumerate().skip(1) {
            assert_eq!(cache.find(1, name.as_bytes(), b"f"), Some(hint(i as u32)));
        }
        let renewed = Hint {
            epoch: 4,
            ..hint(1)
        };
        cache.keep(1, "m1", "f", renewed);
        assert_eq!(cache.find(1, b"m1", b"f"), Some(renewed));
        assert!(
            names[2..]
                .iter()
                .all(|n| cache.find(1, n.as_bytes(), b"f").is_some()),
            "a renewal replaces no other target"
        );
    }

    #[test]
    fn names_too_long_to_keep_are_looked_up_each_time() {
        let cache = TargetCache::new();
        let long = "m".repeat(NAMES);
        cache.keep(1, &long, "f", hint(0));
        assert_eq!(cache.find(1, long.as_bytes(), b"f"), None);
        let longest = "m".repeat(NAMES - 1);
        cache.keep(1, &longest, "f", hint(0));
        assert_eq!(cache.find(1, longest.as_bytes(), b"f"), Some(hint(0)));
    }
}
