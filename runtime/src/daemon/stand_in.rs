//! A stand-in for a worker that cannot serve a connection.
//!
//! A worker may fail to take a connection it is handed: its segment does not fit the
//! worker's memory limit, or its thread cannot start. No other worker claims calls to
//! that worker's modules, so they would sit in their slots for ever, and a client
//! waiting without a deadline would hang. The supervisor, which maps every segment,
//! runs a thread for each such pair that answers those calls at once with the reason;
//! and, once a worker has exited at shutdown, with "the daemon is shutting down" until
//! the daemon has stopped.
//! It stops when the client goes, when the worker is started again (and handed the
//! connection anew), and at shutdown (each drops its [`StandIn`]). Each call it answers
//! is counted in the connection's figures, as the worker would have counted it: the
//! client made the request and got an error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use memlink_ipc::slot::Name;
use memlink_ipc::{Failure, Segment};

/// How long the stand-in sleeps at most between looks: stopping rings the doorbell, so
/// this only bounds a wakeup lost some other way.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// A running stand-in; dropping it stops it (without waiting for its thread, which
/// ends at its next look).
pub(super) struct StandIn {
    /// The worker it stands in for: its doorbell is the one to ring.
    worker: usize,
    stop: Arc<AtomicBool>,
    segment: Arc<Segment>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Starts answering the calls on the connection whose segment is `segment` that
    /// worker `index`, named `name`, would claim (`ours` says which: the rule the
    /// workers claim by, given a slot's module name), failing each with `failure`;
    /// `count` is told of each, with its arguments' length (`None`: a request that does
    /// not read as one).
    pub(super) fn start(
        segment: Arc<Segment>,
        index: usize,
        name: &str,
        failure: Failure,
        ours: impl Fn(Result<Name, String>) -> bool + Send + 'static,
        count: impl Fn(Option<usize>) + Send + 'static,
    ) -> std::io::Result<StandIn> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let segment = Arc::clone(&segment);
            std::thread::Builder::new()
                .name(format!("memlink-stand-in-{name}"))
                .spawn(move || answer(&segment, index, &ours, &count, &failure, &stop))?
        };
        Ok(StandIn {
            worker: index,
            stop,
            segment,
            thread: Some(thread),
        })
    }
}

impl StandIn {
    /// Stops every one of `stand_ins` and waits for their threads to end: no call is
    /// claimed by them afterwards. All are told before any is waited for: a stand-in
    /// whose client cleared its doorbell's sleeper bit sleeps until its next look
    /// (`IDLE_POLL`), and told one after another, N such stand-ins would keep a worker's
    /// restart waiting N times that.
    pub(super) fn finish_all(stand_ins: impl IntoIterator<Item = StandIn>) {
        let mut told: Vec<StandIn> = stand_ins.into_iter().collect();
        told.iter().for_each(StandIn::tell_stop);
        for stand_in in &mut told {
            if let Some(thread) = stand_in.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Tells its thread to stop, waking it from its doorbell.
    fn tell_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.segment.header().ring(self.worker);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.tell_stop();
        // Detached: it ends at its next look, and waiting here would hold the lock its
        // owner drops it under.
        drop(self.thread.take());
    }
}

/// The stand-in's loop: fail every call submitted that `ours` says is the worker's
/// (telling `count` first, so a scrape after the client has its error counts it), then
/// sleep on worker `worker`'s doorbell with its bit set, as the worker would.
fn answer(
    segment: &Segment,
    worker: usize,
    ours: &dyn Fn(Result<Name, String>) -> bool,
    count: &dyn Fn(Option<usize>),
    failure: &Failure,
    stop: &AtomicBool,
) {
    let header = segment.header();
    loop {
        for i in 0..segment.geometry().slots {
            // Stopped: the worker's next process may be serving these slots already.
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let slot = segment.slot(i).expect("index below the slot count");
            if segment.claim_if(&slot, ours) {
                count(slot.read_request().ok().map(|r| r.args_len));
                slot.finish_failure(failure, 1.0);
            }
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        // A client rings only a worker whose bit says it sleeps: the slots get a last
        // look once the bit is set.
        header.wait_doorbell(worker, IDLE_POLL, || {
            stop.load(Ordering::SeqCst) || segment.any_submitted(ours)
        });
    }
}
