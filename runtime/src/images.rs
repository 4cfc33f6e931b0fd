//! What mapping a module image takes from the process for good.
//!
//! A module's image is never unmapped (see `docs/security.md`), and with it stays every
//! thread-local key its own standard library took from the C library (glibc has 1,024
//! for a process, `PTHREAD_KEYS_MAX`, and a Rust cdylib takes one as its first thread
//! starts). A host that reloads all day maps a new image each time: at about the
//! 1,020th, a module's thread found no key left and its standard library aborted the
//! whole process ("out of TLS keys"). A load is refused instead while fewer than
//! [`KEYS_KEPT_FREE`] keys are left.

/// Thread-local keys a load leaves free: one image's (one or two), and the host's own.
pub(crate) const KEYS_KEPT_FREE: usize = 16;

/// Why no further image should be mapped: fewer than [`KEYS_KEPT_FREE`] thread-local keys
/// are left. `None` when there are enough, or where the keys cannot be counted.
pub(crate) fn too_few_keys() -> Option<String> {
    short_of(KEYS_KEPT_FREE)
}

/// Why fewer than `needed` thread-local keys are left, if they are.
fn short_of(needed: usize) -> Option<String> {
    let free = free_keys(needed);
    (free < needed).then(|| refusal(free, needed))
}

/// The refusal of a load with `free` keys left, `needed` kept free.
fn refusal(free: usize, needed: usize) -> String {
    format!(
        "this process has {free} thread-local keys left, fewer than the {needed} a load \
         keeps free: each module image mapped keeps some for good (glibc has 1,024 for a \
         process; an image is never unmapped, and every reload or private copy maps a \
         new one), so no more can be loaded until the process starts again"
    )
}

/// How many thread-local keys can still be made, counted up to `up_to`: that many are
/// made, then deleted.
#[cfg(target_os = "linux")]
fn free_keys(up_to: usize) -> usize {
    let mut made = Vec::with_capacity(up_to);
    while made.len() < up_to {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid place for the new key; no destructor is given.
        if unsafe { libc::pthread_key_create(&raw mut key, None) } != 0 {
            break;
        }
        made.push(key);
    }
    let free = made.len();
    for key in made {
        // SAFETY: a key made above, not yet deleted, with no value set in any thread.
        unsafe { libc::pthread_key_delete(key) };
    }
    free
}

/// Elsewhere the keys are not counted.
#[cfg(not(target_os = "linux"))]
fn free_keys(up_to: usize) -> usize {
    up_to
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process with keys to spare is not refused, and a refusal says how many keys are
    /// left (the refusal of a real load, the keys all but used up, is
    /// `runtime/tests/images.rs`, a process of its own: using them up here would starve
    /// the other tests' threads).
    #[test]
    #[cfg_attr(miri, ignore)] // foreign calls
    fn a_process_with_keys_to_spare_loads() {
        assert!(too_few_keys().is_none(), "a test process has keys to spare");
        assert!(refusal(3, 16).starts_with(
            "this process has 3 thread-local keys left, fewer than the 16 a load keeps free"
        ));
    }
}
