//! The executor behind async exports.
//!
//! An async export's future runs to completion on the thread that made the call, under a
//! small waker that parks and unparks that thread. Timers and I/O come from a tokio
//! runtime the module owns: started at `memlink_init`, entered for each call (and left
//! after it: outside a `block_on` no thread is in its context), shut down at
//! `memlink_shutdown`. Polling on the calling thread (rather than spawning) lets
//! the future borrow the call's context and arguments, and nests: a module that calls
//! itself through the host simply runs another `block_on` on the same thread, which
//! tokio's own `block_on` refuses to do.

use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::pin::{pin, Pin};
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
    // Pinned here and lent from here on: the future (its arguments, its state) is not
    // moved again, however many steps the poll is down. It is dropped in place inside
    // the module's runtime, as it is polled (`Polled`).
    let mut slot = pin!(Some(future));
    match LOCAL.try_with(|local| drive(Some(local), slot.as_mut(), deadline)) {
        Ok(value) => value,
        // The thread is tearing down its locals: a `block_on` of its own.
        Err(_) => drive(None, slot, deadline),
    }
}

/// [`block_on_until`] with the thread's `block_on` state (`None` while the thread tears
/// its locals down), on the future in `slot`.
#[inline]
fn drive<F: Future>(
    local: Option<&Local>,
    slot: Pin<&mut Option<F>>,
    deadline: Option<Instant>,
) -> Option<F::Output> {
    let run = move || {
        let mut polled = Polled(slot);
        let future = polled.0.as_mut().as_pin_mut()?;
        poll_until(local, future, deadline)
    };
    // On the module's runtime thread, inside a task the module spawned: the wait hands
    // that thread's work (the timers, the other tasks) to another thread first, as
    // tokio's `block_in_place` does. Waited for here, every timer of the module stopped,
    // the one the future waited for too, until the module was unloaded. (On a thread of
    // the runtime's blocking pool it runs the closure as it is.)
    #[cfg(feature = "async")]
    if local.is_some_and(|l| l.runtime_thread.get()) {
        return tokio::task::block_in_place(move || runtime::entered(run));
    }
    #[cfg(feature = "async")]
    return runtime::entered(run);
    #[cfg(not(feature = "async"))]
    run()
}

/// Drops the future in its slot when the poll ends, however it ends (done, cancelled at
/// the deadline, unwinding): still inside the module's runtime, so what its drop does
/// (a task it spawns, a timer it cancels) happens there, as when it ran.
struct Polled<'s, F>(Pin<&'s mut Option<F>>);

impl<F> Drop for Polled<'_, F> {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

/// A `block_on`'s signal and the waker made of it.
struct Wakeup {
    signal: Arc<Signal>,
    waker: Waker,
}

impl Wakeup {
    /// A wakeup for the calling thread.
    fn new() -> Wakeup {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(false),
            thread: thread::current(),
        });
        let waker = Waker::from(Arc::clone(&signal));
        Wakeup { signal, waker }
    }
}

/// One level of nested `block_on`s on a thread: its wakeup, made at the level's first
/// `block_on`, and the next level down, made when a `block_on` first nests this deep.
///
/// Each is made once and then stays where it is for the thread's life, so a `block_on`
/// lends its level's wakeup from the thread-local, with no borrow flag to set and no
/// count to bump: a call to an async export that completes at once allocates nothing
/// here (entering the module's runtime is [`runtime::entered`]'s).
struct Nest {
    wakeup: OnceCell<Wakeup>,
    deeper: OnceCell<Box<Nest>>,
}

impl Nest {
    const fn new() -> Nest {
        Nest {
            wakeup: OnceCell::new(),
            deeper: OnceCell::new(),
        }
    }

    /// The wakeup of the level `depth` below this one.
    fn wakeup(&self, depth: usize) -> &Wakeup {
        let mut nest = self;
        for _ in 0..depth {
            nest = nest.deeper.get_or_init(|| Box::new(Nest::new()));
        }
        nest.wakeup.get_or_init(Wakeup::new)
    }
}

/// What a thread's `block_on`s keep, in one thread-local: a module is a shared library,
/// where each thread-local costs a call to reach, so a `block_on` reaches this once.
struct Local {
    /// This thread's wakeups, one per level of nested `block_on`: a nested `block_on`
    /// has its own, so no wake meant for one is taken by another.
    nests: Nest,
    /// How many `block_on`s are running on this thread.
    depth: Cell<usize>,
    /// Whether this is a thread of the module's runtime (its worker, which drives every
    /// timer of the module and runs the tasks it spawns, or a thread of its blocking pool).
    #[cfg(feature = "async")]
    runtime_thread: Cell<bool>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            nests: Nest::new(),
            depth: Cell::new(0),
            #[cfg(feature = "async")]
            runtime_thread: Cell::new(false),
        }
    };
}

/// Counts a `block_on` as running on this thread until dropped.
struct Level<'l> {
    local: Option<&'l Local>,
    depth: usize,
}

impl<'l> Level<'l> {
    fn enter(local: Option<&'l Local>) -> Level<'l> {
        let depth = local.map_or(0, |l| l.depth.replace(l.depth.get() + 1));
        Level { local, depth }
    }
}

impl Drop for Level<'_> {
    fn drop(&mut self) {
        if let Some(local) = self.local {
            local.depth.set(self.depth);
        }
    }
}

fn poll_until<F: Future>(
    local: Option<&Local>,
    mut future: Pin<&mut F>,
    deadline: Option<Instant>,
) -> Option<F::Output> {
    let level = Level::enter(local);
    // On a thread tearing its locals down, a wakeup of its own.
    let own;
    let wakeup = match local {
        Some(local) => local.nests.wakeup(level.depth),
        None => {
            own = Wakeup::new();
            &own
        }
    };
    // A wake left over from a future that kept the waker after its `block_on` ended
    // costs at most one extra poll; clear it before this one starts.
    wakeup.signal.woken.store(false, Ordering::Relaxed);
    let mut cx = Context::from_waker(&wakeup.waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return Some(value);
        }
        while !wakeup.signal.woken.swap(false, Ordering::Acquire) {
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
        // A future that woke itself before it returned (`yield_now`, a busy loop of
        // them) is polled again without a wait, so the wait above never reads the clock:
        // the deadline is read here too, or such a future would never be cancelled.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
    }
}

#[cfg(feature = "async")]
pub(crate) mod runtime {
    //! The module's tokio runtime.

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, RwLock};
    use std::time::Duration;

    use tokio::runtime::{Handle, Runtime};

    static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

    /// The running runtime's handle, for the calls to enter: read-mostly, so that calls
    /// on many threads take it at once (a read lock and a clone) instead of each other's
    /// turn at `RUNTIME`'s lock.
    static HANDLE: RwLock<Option<Handle>> = RwLock::new(None);

    /// Whether `memlink_shutdown` stopped the runtime (and no `memlink_init` started it
    /// again since): a `block_on` then starts none, as one on a thread of the module's
    /// own after the shutdown would, which nothing would ever stop.
    static STOPPED: AtomicBool = AtomicBool::new(false);

    fn lock() -> std::sync::MutexGuard<'static, Option<Runtime>> {
        // A panic while holding this lock cannot leave the `Option` half-written.
        RUNTIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the runtime if it is not running: one worker thread drives timers and
    /// I/O; futures themselves are polled on the calling threads.
    ///
    /// Every driver the module's tokio is built with is enabled, not only the timer:
    /// the SDK asks tokio for no I/O, but the module's tokio is one crate with the
    /// features of all its users, so a module that enables `net` (or `process`,
    /// `signal`) for its own exports gets sockets that work, rather than a panic that
    /// "IO is disabled".
    pub(crate) fn start() -> std::io::Result<()> {
        let mut slot = lock();
        if slot.is_none() {
            *slot = Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("memlink-module-io")
                    .on_thread_start(|| {
                        let _ = super::LOCAL.try_with(|l| l.runtime_thread.set(true));
                    })
                    .enable_all()
                    .build()?,
            );
            *write_handle() = slot.as_ref().map(|rt| rt.handle().clone());
            STOPPED.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Stops the runtime and waits (briefly) for its threads to end.
    pub(crate) fn stop() {
        let runtime = {
            let mut slot = lock();
            *write_handle() = None;
            STOPPED.store(true, Ordering::Release);
            slot.take()
        };
        if let Some(rt) = runtime {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }

    /// Runs `f` inside the runtime's context, starting the runtime when a module is used
    /// without `memlink_init` (as in unit tests). Without a runtime (it could not start,
    /// or the thread's tokio context is already torn down) `f` runs anyway; tokio timers
    /// then report the missing runtime by panicking, which the call boundary turns into
    /// an error.
    ///
    /// The context is entered for the call and left after it, never kept on the thread:
    /// a thread that kept it (it once did, to spare a call the lock below) kept the
    /// runtime's handle, and with it the runtime's I/O driver (three files: two epolls
    /// and an eventfd) and its state, after the runtime stopped, for as long as the
    /// thread lived, whenever the thread never called this image again, as for every
    /// image a reload replaced or an unload retired: a host thread that called an async
    /// export across 340 reloads ran out of files. A thread in a tokio context of its own
    /// (a module linked into a program that runs tokio itself, as its unit tests may) has
    /// it back after the call.
    pub(super) fn entered<R>(f: impl FnOnce() -> R) -> R {
        match handle() {
            Some(handle) => {
                let _guard = handle.enter();
                f()
            }
            None => f(),
        }
    }

    /// The running runtime's handle, the runtime started if it never was; `None` when it
    /// cannot start, once `memlink_shutdown` stopped it, or on a thread whose tokio
    /// context is torn down.
    fn handle() -> Option<Handle> {
        // A thread-local destructor running after tokio's own thread-local context was
        // torn down: `Handle::enter` panics there, and a panic in a thread-local
        // destructor aborts the process, the host with it. Nothing can be entered; the
        // future runs outside any runtime, as without one (a timer it makes panics, as
        // tokio's do on such a thread anyway).
        if Handle::try_current().is_err_and(|e| e.is_thread_local_destroyed()) {
            return None;
        }
        if let Some(handle) = read_handle().as_ref() {
            return Some(handle.clone());
        }
        // Never started: a module used without `memlink_init` (its unit tests).
        if !STOPPED.load(Ordering::Acquire) {
            let _ = start();
        }
        read_handle().clone()
    }

    fn read_handle() -> std::sync::RwLockReadGuard<'static, Option<Handle>> {
        // A panic while holding this lock cannot leave the `Option` half-written.
        HANDLE
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_handle() -> std::sync::RwLockWriteGuard<'static, Option<Handle>> {
        HANDLE
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_futures_complete() {
        assert_eq!(block_on(async { 5 }), 5);
    }

    /// Ready once another thread, started at its first poll, has woken it `delay` later.
    struct WokenLater {
        delay: std::time::Duration,
        woken: Option<Arc<AtomicBool>>,
    }

    impl WokenLater {
        fn after(delay: std::time::Duration) -> WokenLater {
            WokenLater { delay, woken: None }
        }

        fn in_1_ms() -> WokenLater {
            WokenLater::after(std::time::Duration::from_millis(1))
        }
    }

    impl Future for WokenLater {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if let Some(woken) = &self.woken {
                return match woken.load(Ordering::Acquire) {
                    true => Poll::Ready(()),
                    false => Poll::Pending,
                };
            }
            let woken = Arc::new(AtomicBool::new(false));
            self.woken = Some(Arc::clone(&woken));
            let (waker, delay) = (cx.waker().clone(), self.delay);
            thread::spawn(move || {
                thread::sleep(delay);
                woken.store(true, Ordering::Release);
                waker.wake();
            });
            Poll::Pending
        }
    }

    #[test]
    fn a_wake_for_an_outer_level_is_not_taken_by_an_inner_one() {
        /// Polls `first` (woken 1 ms later), then, within the same poll, runs a nested
        /// `block_on` that parks for 50 ms: the outer wake arrives while the inner level
        /// parks, and must still be there for the outer level afterwards.
        struct FirstThenNested {
            first: WokenLater,
            nested: bool,
        }
        impl Future for FirstThenNested {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                let first = Pin::new(&mut self.first).poll(cx);
                if !self.nested {
                    self.nested = true;
                    block_on(WokenLater::after(std::time::Duration::from_millis(50)));
                }
                first
            }
        }
        let future = FirstThenNested {
            first: WokenLater::in_1_ms(),
            nested: false,
        };
        // A lost wake would park the outer level until the deadline.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        assert_eq!(block_on_until(future, Some(deadline)), Some(()));
    }

    #[test]
    fn each_level_of_nested_block_ons_is_woken_by_its_own_waker() {
        /// A `block_on` that parks before and after running one `depth` levels deeper.
        fn nest(depth: usize) -> usize {
            block_on(async move {
                WokenLater::in_1_ms().await;
                let below = if depth == 0 { 0 } else { nest(depth - 1) };
                WokenLater::in_1_ms().await;
                below + 1
            })
        }
        assert_eq!(nest(4), 5);
        // Again, on the levels made by the first run.
        assert_eq!(nest(5), 6);
        // Each level's wakeup is made once and kept.
        LOCAL.with(|local| {
            assert_eq!(local.depth.get(), 0, "every level was left");
            let first: *const Wakeup = local.nests.wakeup(3);
            assert!(core::ptr::eq(first, local.nests.wakeup(3)));
            assert!(!core::ptr::eq(first, local.nests.wakeup(2)));
        });
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
    fn a_call_leaves_the_thread_in_the_context_it_had() {
        use tokio::runtime::{Handle, RuntimeFlavor};
        std::thread::spawn(|| {
            // A thread with no context is in the module's runtime for the call alone: it
            // keeps no handle to it afterwards (which would keep the runtime alive after
            // it stopped).
            let inside = block_on(async { Handle::current().runtime_flavor() });
            assert_eq!(inside, RuntimeFlavor::MultiThread);
            assert!(Handle::try_current().is_err(), "the context was kept");
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            let own = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let _in_own = own.enter();
            // Inside a call, the module's runtime; afterwards, the thread's own again.
            let inside = block_on(async { Handle::current().runtime_flavor() });
            assert_eq!(inside, RuntimeFlavor::MultiThread);
            assert_eq!(
                Handle::current().runtime_flavor(),
                RuntimeFlavor::CurrentThread
            );
        })
        .join()
        .unwrap();
    }

    #[cfg(feature = "async")]
    #[test]
    fn a_future_is_dropped_inside_the_modules_runtime() {
        use std::sync::Mutex;
        use tokio::runtime::{Handle, RuntimeFlavor};

        /// Records the runtime current when it is dropped.
        struct Witness<'a>(&'a Mutex<Vec<Option<RuntimeFlavor>>>);
        impl Drop for Witness<'_> {
            fn drop(&mut self) {
                let flavor = Handle::try_current().ok().map(|h| h.runtime_flavor());
                self.0.lock().unwrap().push(flavor);
            }
        }

        let seen = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            s.spawn(|| {
                // A thread in a tokio context of its own: the module's runtime is entered
                // for each call only, so a drop after the call would see the thread's.
                let own = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let _in_own = own.enter();
                // Finished: it still holds its witness after its last poll.
                struct Holding<'a>(#[allow(dead_code)] Witness<'a>); // held for its drop
                impl Future for Holding<'_> {
                    type Output = ();
                    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                        Poll::Ready(())
                    }
                }
                block_on(Holding(Witness(&seen)));
                let witness = Witness(&seen);
                let cancelled = block_on_until(
                    async move {
                        let _kept = witness;
                        std::future::pending::<()>().await;
                    },
                    Some(Instant::now() + std::time::Duration::from_millis(10)),
                );
                assert!(cancelled.is_none());
            });
        });
        assert_eq!(
            *seen.lock().unwrap(),
            [
                Some(RuntimeFlavor::MultiThread),
                Some(RuntimeFlavor::MultiThread)
            ],
            "a finished and a cancelled future are both dropped in the module's runtime"
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
