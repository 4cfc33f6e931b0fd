//! The client's locks, taken so that a poisoned lock still serves (nothing the client
//! keeps is left half-written) and a lock a forked child inherited held does not make
//! it wait for ever.

use std::sync::{
    LockResult, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
    TryLockError,
};
use std::time::{Duration, Instant};

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    take(|| m.try_lock(), || m.lock())
}

/// A read of `lock`, as [`lock`] takes a mutex.
pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    take(|| lock.try_read(), || lock.read())
}

/// A write of `lock`, as [`lock`] takes a mutex.
pub(super) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    take(|| lock.try_write(), || lock.write())
}

/// The guard `try_take` gives, or, when the lock is held, the one `wait` waits for; a
/// poisoned lock's guard all the same (nothing the client keeps is left half-written).
/// In a forked child, a held lock is waited for [`HELD_IN_PARENT`] at most
/// ([`in_child`]).
fn take<G>(
    try_take: impl Fn() -> Result<G, TryLockError<G>>,
    wait: impl FnOnce() -> LockResult<G>,
) -> G {
    match try_take() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) if memlink_ipc::client::forked_child() => {
            in_child(|| match try_take() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            })
        }
        Err(TryLockError::WouldBlock) => wait().unwrap_or_else(PoisonError::into_inner),
    }
}

/// The client's locks are held only for a moment (none while anyone waits for the
/// daemon): one held this long in a forked child is held by a thread of the parent,
/// which does not exist here and will never let it go.
const HELD_IN_PARENT: Duration = Duration::from_secs(2);

/// `take` tried until it gives a guard, in a forked child, for [`HELD_IN_PARENT`] at
/// most.
///
/// # Panics
///
/// When the lock is still held then: the child would wait for it for ever (the call's
/// deadline could not end that wait), and a panic says why instead.
#[cold]
fn in_child<G>(mut take: impl FnMut() -> Option<G>) -> G {
    let until = Instant::now() + HELD_IN_PARENT;
    loop {
        if let Some(guard) = take() {
            return guard;
        }
        assert!(
            Instant::now() < until,
            "memlink-client: this process forked while another thread of its parent was \
             using this Client, and the lock that thread held can never be released here: \
             make a new Client in the child (a Client may cross fork() only when no other \
             thread is using it at that moment)"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
