//! Waiting on and waking a 32-bit word in memory shared between processes.
//!
//! The words live in a [`Segment`](crate::Segment) mapped by several processes, so the
//! futexes are *shared* ones (no `FUTEX_PRIVATE_FLAG`): the kernel keys them by the
//! mapping's page, not by this process's address space.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `word` holds `expected`, at most `timeout` (forever if `None`).
///
/// Returns when woken, when the word no longer holds `expected` (at once), on a signal
/// or at the timeout: callers re-check their condition in a loop.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| futex::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    // EAGAIN (the word changed), ETIMEDOUT and EINTR all mean "look again".
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes every process and thread sleeping on `word`.
pub fn wake_all(word: &AtomicU32) {
    // Waking nobody, or a word in a mapping the kernel no longer knows, is not an error
    // for the waker: the sleepers re-check their condition on their own timeouts.
    let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_waiter_wakes_when_the_word_changes() {
        let word = Arc::new(AtomicU32::new(0));
        let w = word.clone();
        let t = std::thread::spawn(move || {
            while w.load(Ordering::Acquire) == 0 {
                wait(&w, 0, Some(Duration::from_secs(5)));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        word.store(1, Ordering::Release);
        wake_all(&word);
        t.join().unwrap();
    }

    #[test]
    fn a_wait_on_a_changed_word_returns_at_once_and_a_timeout_returns() {
        let word = AtomicU32::new(7);
        wait(&word, 3, None);
        let start = Instant::now();
        wait(&word, 7, Some(Duration::from_millis(10)));
        assert!(start.elapsed() >= Duration::from_millis(5));
    }
}
