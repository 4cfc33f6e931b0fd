//! The locks a load or a reload holds while it runs a module's code, and the waits for
//! them.
//!
//! A load holds its runtime's lock of loads while the module's `memlink_init` and
//! dependency list run; a reload holds the lock of reloads of the module's slot while
//! the new version starts and the state is carried. That code may log, and a log sink
//! (or an interceptor) may ask for a load, unload or reload: of the same runtime, which
//! would wait for the lock its own thread holds ([`refuse`]), or of another,
//! whose thread may be waiting, in turn, for a lock this one holds. Every thread in such
//! a loop would wait for ever; the wait that would close it is refused instead
//! ([`Waiting::enter`]), saying why, and the others go on.

use std::cell::RefCell;
use std::sync::Mutex;

use crate::error::RuntimeError;

/// A lock a thread may hold while it runs module code, or wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// The lock of loads of the runtime whose id it holds: loads, the switch of a
    /// reload, unloads.
    Loads(u32),
    /// The lock of reloads of one slot (the runtime's id, the slot): one reload of a
    /// module at a time.
    Reload(u32, u32),
    /// The calls of the module of this lineage (`Module::lineage`, its versions alike),
    /// which an unload or a reload waits for, as for a lock with a holder in each thread
    /// that runs one (the module's code, or host code of a call to it). A thread holds it
    /// only while it asks for a load, unload or reload from inside such a call
    /// ([`hold_calls`]), where that can close a loop.
    Calls(u64),
}

/// A lock held while module code runs, and the module whose load or reload holds it.
#[derive(Clone, Debug)]
struct Held {
    lock: Lock,
    module: String,
}

impl Held {
    /// The refusal of `action` asked from code this hold runs.
    fn refusal(&self, action: &'static str) -> RuntimeError {
        match self.lock {
            Lock::Loads(_) => RuntimeError::InsideLoad {
                loading: self.module.clone(),
                action,
            },
            Lock::Reload(..) => RuntimeError::InsideReload {
                reloading: self.module.clone(),
                action,
            },
            Lock::Calls(_) => RuntimeError::InsideAwaitedCall {
                module: self.module.clone(),
                action,
            },
        }
    }
}

std::thread_local! {
    /// The locks this thread holds while it runs module code, innermost last (a sink of
    /// one load may start a load into another runtime, or a reload).
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// The lock `lock` held by this thread while it runs the code of `module` (a load's
/// init and dependency list under its runtime's lock of loads; a reload's new version
/// and state carry under its slot's lock of reloads), until dropped: a wait this thread
/// makes meanwhile is recorded as made by its holder, and what would wait for the lock
/// itself is refused ([`refuse`]). Whether it was recorded: a thread tearing its locals
/// down (a load or reload made from a thread-local's destructor) records nothing, and
/// has nothing to take back.
pub(crate) struct Holding(bool);

impl Holding {
    /// Marks `lock` as held by this thread for the code of `module`.
    pub(crate) fn enter(lock: Lock, module: impl Into<String>) -> Holding {
        let held = Held {
            lock,
            module: module.into(),
        };
        Holding(HELD.try_with(|h| h.borrow_mut().push(held)).is_ok())
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if self.0 {
            let _ = HELD.try_with(|h| h.borrow_mut().pop());
        }
    }
}

/// The calls this thread runs, each given as its module's lineage and name (repeats
/// are held once), held as [`Lock::Calls`] until the holds are dropped: for a load,
/// unload or reload asked from inside them, whose waits would otherwise not say that
/// an unload or reload of one of those modules waits, in turn, for this thread.
pub(crate) fn hold_calls(calls: impl IntoIterator<Item = (u64, String)>) -> Vec<Holding> {
    let mut held: Vec<u64> = Vec::new();
    let mut holds = Vec::new();
    for (lineage, name) in calls {
        if !held.contains(&lineage) {
            held.push(lineage);
            holds.push(Holding::enter(Lock::Calls(lineage), name));
        }
    }
    holds
}

/// Refuses `action` when this thread runs module code holding `lock`: it would wait for
/// that lock (a load, unload or reload of the runtime whose load runs, from a log sink
/// its module's records reach), or for what the hold keeps (an unload of the module
/// whose reload runs, which waits for the old version the reload holds), for ever.
pub(crate) fn refuse(lock: Lock, action: &'static str) -> Result<(), RuntimeError> {
    // A thread tearing its locals down holds nothing.
    let refused = HELD
        .try_with(|h| {
            let held = h.borrow();
            held.iter()
                .find(|h| h.lock == lock)
                .map(|h| h.refusal(action))
        })
        .ok()
        .flatten();
    refused.map_or(Ok(()), Err)
}

/// The waits for a lock made by threads that hold others: `(held, wanted)`. Each lock
/// has one holder, so `(held, wanted)` says the holder of `held` waits for `wanted`.
static WAITS: Mutex<Vec<(Lock, Lock)>> = Mutex::new(Vec::new());

/// A wait for a lock, recorded in [`WAITS`] until dropped (once the lock is had, or the
/// wait is given up).
pub(crate) struct Waiting(Vec<(Lock, Lock)>);

impl Waiting {
    /// Before this thread waits for `lock`, to `action`: when it holds others (a log sink
    /// running in a load or a reload asked for a load, unload or reload), the wait is
    /// recorded, unless it would close a loop (the holder of `lock` waits, in turn, for a
    /// lock this thread holds, or for one whose holder does, and so on): every thread in
    /// the loop would wait for ever, so this one is refused instead, and the others go
    /// on. Two runtimes whose sinks load into each other from inside their loads
    /// deadlocked so, as did a load and a reload whose sinks asked for each other's lock.
    pub(crate) fn enter(lock: Lock, action: &'static str) -> Result<Waiting, RuntimeError> {
        // A thread tearing its locals down holds nothing.
        let held: Vec<Held> = HELD.try_with(|h| h.borrow().clone()).unwrap_or_default();
        if held.is_empty() {
            return Ok(Waiting(Vec::new()));
        }
        let mut waits = WAITS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hold) = closes_loop(&waits, lock, &held) {
            // The hold the loop runs through names the refusal.
            return Err(hold.refusal(action));
        }
        let mine: Vec<(Lock, Lock)> = held.iter().map(|h| (h.lock, lock)).collect();
        waits.extend_from_slice(&mine);
        Ok(Waiting(mine))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let mut waits = WAITS.lock().unwrap_or_else(|p| p.into_inner());
        for wait in self.0.drain(..) {
            if let Some(i) = waits.iter().position(|w| *w == wait) {
                waits.swap_remove(i);
            }
        }
    }
}

/// Whether a wait for `wanted` by the holder of `held` closes a loop of `waits`: the
/// hold whose lock is reached from `wanted`, through the locks each holder waits for,
/// if one is. Of several, a lock's (the innermost) names the loop rather than a call's:
/// "inside the load of" says more than "inside a call to" of what holds the others up.
/// A holder may have more than one wait recorded (a reload records its wait for its
/// runtime's lock of loads before it takes the lock of its slot), so every path is
/// followed, each lock once.
fn closes_loop<'h>(waits: &[(Lock, Lock)], wanted: Lock, held: &'h [Held]) -> Option<&'h Held> {
    let mut seen = vec![wanted];
    let mut next = 0;
    while let Some(&at) = seen.get(next) {
        next += 1;
        for &(_, then) in waits.iter().filter(|(h, _)| *h == at) {
            if !seen.contains(&then) {
                seen.push(then);
            }
        }
    }
    held.iter()
        .rev()
        .filter(|h| seen.contains(&h.lock))
        .min_by_key(|h| matches!(h.lock, Lock::Calls(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(locks: &[Lock]) -> Vec<Held> {
        locks
            .iter()
            .map(|&lock| Held {
                lock,
                module: "m".to_owned(),
            })
            .collect()
    }

    /// A loop is found through a holder with two waits recorded, whichever of them is
    /// listed first (the walk used to follow only the first).
    #[test]
    fn a_loop_is_found_through_any_of_a_holders_waits() {
        let (a, b, r) = (Lock::Loads(1), Lock::Loads(2), Lock::Reload(2, 0));
        // The holder of `a` waits for `b` (recorded first) and for `r`.
        let waits = [(a, b), (a, r)];
        assert_eq!(
            closes_loop(&waits, a, &held(&[r])).map(|h| h.lock),
            Some(r),
            "r's holder wants a"
        );
        assert_eq!(
            closes_loop(&waits, a, &held(&[Lock::Loads(3)])).map(|h| h.lock),
            None
        );
        assert_eq!(
            closes_loop(&[], a, &held(&[r])).map(|h| h.lock),
            None,
            "nobody waits"
        );
        // A longer loop: 3 waits for 1, whose holder waits for r.
        let waits = [(Lock::Loads(3), a), (a, r)];
        assert_eq!(
            closes_loop(&waits, Lock::Loads(3), &held(&[r])).map(|h| h.lock),
            Some(r)
        );
        // A loop the walk meets that does not pass through this thread's locks ends.
        let waits = [(a, b), (b, a)];
        assert_eq!(closes_loop(&waits, a, &held(&[r])).map(|h| h.lock), None);
    }

    /// Of the holds a loop runs through, a lock's names it rather than a call's; a call
    /// names it when it is the only one.
    #[test]
    fn a_loop_through_a_lock_and_a_call_is_named_by_the_lock() {
        let (a, c, r) = (Lock::Loads(1), Lock::Calls(7), Lock::Reload(2, 0));
        let holds = held(&[r, c]);
        let named = |waits: &[(Lock, Lock)]| closes_loop(waits, a, &holds).map(|h| h.lock);
        assert_eq!(named(&[(a, c), (a, r)]), Some(r));
        assert_eq!(named(&[(a, r), (a, c)]), Some(r));
        assert_eq!(named(&[(a, c)]), Some(c));
        assert_eq!(
            named(&[(a, Lock::Calls(8))]),
            None,
            "another module's calls"
        );
        let call = Held {
            lock: c,
            module: "basic".to_owned(),
        };
        assert_eq!(
            call.refusal("load").to_string(),
            "cannot load a module from inside a call to `basic`: it would wait, through \
             other threads, for an unload or reload of `basic` that waits for this call"
        );
    }

    /// An id no runtime of the tests takes (ids count up from 1).
    const RUNTIME: u32 = u32::MAX - 1;

    /// The error names the innermost load or reload the thread runs.
    #[test]
    fn a_refused_wait_names_the_innermost_load_or_reload() {
        let reload = Holding::enter(Lock::Reload(RUNTIME, 0), "inner");
        // This thread now holds slot 0's lock of reloads of the runtime; a wait for it, by
        // this very thread, is the shortest loop.
        let refused = Waiting::enter(Lock::Reload(RUNTIME, 0), "load").map(drop);
        assert_eq!(
            refused.unwrap_err().to_string(),
            "cannot load a module from inside the reload of `inner`"
        );
        let waiting = Waiting::enter(Lock::Loads(RUNTIME), "load").expect("no loop");
        drop(waiting);
        assert_eq!(
            refuse(Lock::Reload(RUNTIME, 0), "unload")
                .unwrap_err()
                .to_string(),
            "cannot unload a module from inside the reload of `inner`"
        );
        assert!(
            refuse(Lock::Reload(RUNTIME, 1), "unload").is_ok(),
            "another slot"
        );
        drop(reload);
        assert!(
            refuse(Lock::Reload(RUNTIME, 0), "unload").is_ok(),
            "held no more"
        );
        assert!(
            Waiting::enter(Lock::Reload(RUNTIME, 0), "load").is_ok(),
            "held no more"
        );
    }
}
