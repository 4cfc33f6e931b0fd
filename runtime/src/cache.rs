//! The result cache: results of methods their authors mark pure
//! (`#[memlink_export(pure)]`), kept by the host and keyed by the argument bytes. Off by
//! default ([`RuntimeConfig::result_cache`](crate::RuntimeConfig::result_cache)).
//!
//! A call to a pure method first looks for an earlier result of the same loaded module
//! version, method and argument bytes; a hit is answered without entering the module
//! (interceptors still see it, and may refuse it, before the lookup). Only successes are
//! kept. The cache is bounded by entries and by bytes, and forgets the least recently
//! used first; a reload or an unload makes the module's results unreachable at once
//! (they belong to its old version) and frees them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How large the result cache may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Most results kept.
    pub max_entries: usize,
    /// Most bytes kept, arguments and results together.
    pub max_bytes: usize,
    /// Largest result kept; a larger one is returned and not cached.
    pub max_result_bytes: usize,
}

impl CacheConfig {
    /// A cache of at most `max_entries` results and `max_bytes` bytes (results of at
    /// most a sixteenth of that each).
    pub fn new(max_entries: usize, max_bytes: usize) -> CacheConfig {
        CacheConfig {
            max_entries,
            max_bytes,
            max_result_bytes: max_bytes / 16,
        }
    }
}

/// What the cache has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls to pure methods the cache could not answer: looked up and not found, whether
    /// they then ran or not (refused by the module's open breaker, say), so that hits
    /// and misses together are the lookups.
    pub misses: u64,
    /// Results kept now.
    pub entries: usize,
    /// Bytes kept now.
    pub bytes: usize,
}

/// One result's key: the loaded module (`Module::id`, new for each version), the method
/// and the argument bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    module: u64,
    method: u32,
    args: Box<[u8]>,
}

#[derive(Debug)]
struct Entry {
    result: Arc<[u8]>,
    used: u64,
}

impl Key {
    fn new(module: u64, method: u32, args: &[u8]) -> Key {
        Key {
            module,
            method,
            args: args.into(),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Entries by last use, oldest first.
    by_use: BTreeMap<u64, Key>,
    bytes: usize,
    clock: u64,
}

/// The cache itself (one per runtime that has one).
#[derive(Debug)]
pub(crate) struct ResultCache {
    config: CacheConfig,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ResultCache {
    pub(crate) fn new(config: CacheConfig) -> ResultCache {
        ResultCache {
            config,
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cache, locked, and the tick of this use.
    fn lock(&self) -> (std::sync::MutexGuard<'_, Inner>, u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        (inner, now)
    }

    /// The result kept for `args` of `method` of module `module`, if any.
    pub(crate) fn get(&self, module: u64, method: u32, args: &[u8]) -> Option<Arc<[u8]>> {
        let key = Key::new(module, method, args);
        let (mut inner, now) = self.lock();
        let found = inner.entries.get_mut(&key).map(|e| {
            let before = std::mem::replace(&mut e.used, now);
            (Arc::clone(&e.result), before)
        });
        match found {
            Some((result, before)) => {
                inner.by_use.remove(&before);
                inner.by_use.insert(now, key);
                drop(inner);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(result)
            }
            None => {
                drop(inner);
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps `result` for `args` of `method` of module `module`, forgetting the least
    /// recently used results as the bounds require.
    pub(crate) fn put(&self, module: u64, method: u32, args: &[u8], result: &[u8]) {
        let size = args.len() + result.len();
        if result.len() > self.config.max_result_bytes
            || size > self.config.max_bytes
            || self.config.max_entries == 0
        {
            return;
        }
        let key = Key::new(module, method, args);
        let (mut inner, now) = self.lock();
        if let Some(old) = inner.entries.remove(&key) {
            inner.by_use.remove(&old.used);
            inner.bytes -= key.args.len() + old.result.len();
        }
        while inner.entries.len() >= self.config.max_entries
            || inner.bytes + size > self.config.max_bytes
        {
            let Some((_, oldest)) = inner.by_use.pop_first() else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= oldest.args.len() + gone.result.len();
            }
        }
        inner.bytes += size;
        inner.by_use.insert(now, key.clone());
        inner.entries.insert(
            key,
            Entry {
                result: result.into(),
                used: now,
            },
        );
    }

    /// Frees every result of module `module` (reloaded or unloaded).
    pub(crate) fn forget(&self, module: u64) {
        let (mut inner, _) = self.lock();
        let Inner {
            entries,
            by_use,
            bytes,
            ..
        } = &mut *inner;
        entries.retain(|key, entry| {
            let keep = key.module != module;
            if !keep {
                by_use.remove(&entry.used);
                *bytes -= key.args.len() + entry.result.len();
            }
            keep
        });
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let (inner, _) = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: inner.entries.len(),
            bytes: inner.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_is_found_for_the_same_module_method_and_bytes_only() {
        let cache = ResultCache::new(CacheConfig::new(8, 1 << 20));
        cache.put(1, 0, b"args", b"result");
        assert_eq!(cache.get(1, 0, b"args").as_deref(), Some(&b"result"[..]));
        assert!(cache.get(1, 0, b"other").is_none());
        assert!(cache.get(1, 1, b"args").is_none());
        assert!(
            cache.get(2, 0, b"args").is_none(),
            "another version of the module"
        );
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 3, 1));
        assert_eq!(stats.bytes, 10);
        cache.forget(1);
        assert!(cache.get(1, 0, b"args").is_none());
        assert_eq!(cache.stats().bytes, 0);
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_bounds_hold() {
        let cache = ResultCache::new(CacheConfig::new(3, 1 << 20));
        for i in 0u8..3 {
            cache.put(1, 0, &[i], b"r");
        }
        assert!(cache.get(1, 0, &[0]).is_some(), "0 is now the most recent");
        cache.put(1, 0, &[3], b"r");
        assert!(cache.get(1, 0, &[1]).is_none(), "1 was the least recent");
        assert!(cache.get(1, 0, &[0]).is_some());
        assert_eq!(cache.stats().entries, 3);

        let small = ResultCache::new(CacheConfig {
            max_entries: 100,
            max_bytes: 10,
            max_result_bytes: 8,
        });
        small.put(1, 0, b"a", b"123456789");
        assert_eq!(small.stats().entries, 0, "a result over max_result_bytes");
        for i in 0u8..5 {
            small.put(1, 0, &[i], b"1234");
        }
        let stats = small.stats();
        assert!(stats.bytes <= 10, "{stats:?}");
        assert_eq!(stats.entries, 2);
    }
}
