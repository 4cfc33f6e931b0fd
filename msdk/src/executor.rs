//! The executor behind async exports.
//!
//! An async export's future runs to completion on the thread that made the call, under a
//! small waker that parks and unparks that thread. Timers and I/O come from a tokio
//! runtime the module owns: started at `memlink_init`, entered around every poll, shut
//! down at `memlink_shutdown`. Polling on the calling thread (rather than spawning) lets
//! the future borrow the call's context and arguments, and nests: a module that calls
//! itself through the host simply runs another `block_on` on the same thread, which
//! tokio's own `block_on` refuses to do.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

/// Wakes one `block_on`: a flag, so that no wake is lost to a nested `block_on` parking
/// on the same thread, and the thread to unpark.
struct Signal {
    woken: AtomicBool,
    thread: Thread,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Runs `future` to completion on this thread, inside the module's tokio runtime when
/// the `async` feature is on.
pub fn block_on<F: Future>(future: F) -> F::Output {
    match block_on_until(future, None) {
        Some(value) => value,
        None => unreachable!("without a deadline the future runs to completion"),
    }
}

/// Runs `future` until it completes or `deadline` passes, whichever is first. When the
/// deadline passes, the future is dropped (cancelled at its current `.await`) and the
/// result is `None`. The thread sleeps until the future's waker or the deadline wakes
/// it, so cancellation is prompt however long the future would have taken.
pub fn block_on_until<F: Future>(future: F, deadline: Option<Instant>) -> Option<F::Output> {
    #[cfg(feature = "async")]
    return runtime::entered(|| poll_until(future, deadline));
    #[cfg(not(feature = "async"))]
    poll_until(future, deadline)
}

fn poll_until<F: Future>(future: F, deadline: Option<Instant>) -> Option<F::Output> {
    let mut future = pin!(future);
    let signal = Arc::new(Signal {
        woken: AtomicBool::new(false),
        thread: thread::current(),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return Some(value);
        }
        while !signal.woken.swap(false, Ordering::Acquire) {
            match deadline {
                None => thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    thread::park_timeout(d - now);
                }
            }
        }
    }
}

#[cfg(feature = "async")]
pub(crate) mod runtime {
    //! The module's tokio runtime.

    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::runtime::{Handle, Runtime};

    static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

    fn lock() -> std::sync::MutexGuard<'static, Option<Runtime>> {
        // A panic while holding this lock cannot leave the `Option` half-written.
        RUNTIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the runtime if it is not running: one worker thread drives timers and
    /// I/O; futures themselves are polled on the calling threads.
    pub(crate) fn start() -> std::io::Result<()> {
        let mut slot = lock();
        if slot.is_none() {
            *slot = Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("memlink-module-io")
                    .enable_time()
                    .build()?,
            );
        }
        Ok(())
    }

    /// Stops the runtime and waits (briefly) for its threads to end.
    pub(crate) fn stop() {
        let runtime = lock().take();
        if let Some(rt) = runtime {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }

    /// Runs `f` inside the runtime's context, starting the runtime when a module is used
    /// without `memlink_init` (as in unit tests). Without a runtime (it could not start)
    /// `f` runs anyway; tokio timers then report the missing runtime by panicking, which
    /// the call boundary turns into an error.
    pub(crate) fn entered<R>(f: impl FnOnce() -> R) -> R {
        let handle: Option<Handle> = {
            let mut slot = lock();
            if slot.is_none() {
                drop(slot);
                let _ = start();
                slot = lock();
            }
            slot.as_ref().map(|rt| rt.handle().clone())
        };
        match handle {
            Some(h) => {
                let _guard = h.enter();
                f()
            }
            None => f(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_futures_complete() {
        assert_eq!(block_on(async { 5 }), 5);
    }

    #[cfg(feature = "async")]
    #[test]
    fn a_deadline_cancels_the_future() {
        use std::time::Duration;
        /// Set when the future is dropped before it finishes.
        struct Dropped<'a>(&'a AtomicBool);
        impl Drop for Dropped<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let cancelled = AtomicBool::new(false);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(20);
        let out = block_on_until(
            async {
                let pending = Dropped(&cancelled);
                tokio::time::sleep(Duration::from_secs(10)).await;
                core::mem::forget(pending);
                1
            },
            Some(deadline),
        );
        assert_eq!(out, None);
        assert!(Instant::now() >= deadline, "not before the deadline");
        assert!(
            cancelled.load(Ordering::SeqCst),
            "the future was dropped at its await, not run to the end"
        );
        assert_eq!(
            block_on_until(async { 2 }, Some(start)),
            Some(2),
            "a ready future wins"
        );
    }

    #[cfg(feature = "async")]
    #[test]
    fn nested_block_on_works_and_loses_no_wake() {
        let v = block_on(async {
            let inner = block_on(async {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                1
            });
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            inner + 1
        });
        assert_eq!(v, 2);
    }
}
