//! What the supervisor's threads share: the settings, the connections and their
//! segments, and each worker process's link, figures and modules.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use memlink_ipc::control::{self, Claims, ToWorker};
use memlink_ipc::figures::Figures;
use memlink_ipc::Segment;
use rustix::process::Pid;

use super::config::{DaemonConfig, WorkerPlan};
use super::opening::Openings;
use super::stand_in::StandIn;

/// One client's connection.
pub(super) struct Conn {
    pub(super) segment: Arc<Segment>,
    pub(super) fd: OwnedFd,
    pub(super) in_place: bool,
    pub(super) row: u32,
    pub(super) pid: i32,
    pub(super) uid: u32,
    /// The client's socket (shared with the connection's thread, which reads it to learn
    /// that the client hung up): a hello short of a row looks at it too.
    pub(super) client: Arc<UnixStream>,
}

/// A running worker process, as the supervisor reaches it.
pub(super) struct WorkerLink {
    pub(super) pid: Pid,
    pub(super) control: UnixStream,
}

/// The scrape a worker's metrics are awaited for, if any. A worker that answers after its
/// scrape gave up waiting (`METRICS_TIMEOUT`) answers a scrape nobody waits for: that
/// answer is dropped, not handed to the next scrape as if it were its own.
#[derive(Default)]
pub(super) struct MetricsWait(Mutex<Option<(u64, mpsc::Sender<String>)>>);

impl MetricsWait {
    /// Waits for the answer to `scrape` from now on (an earlier scrape's no longer counts):
    /// it comes on the receiver.
    pub(super) fn expect(&self, scrape: u64) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        *lock(&self.0) = Some((scrape, tx));
        rx
    }

    /// Hands the answer to `scrape` to whoever waits for it; dropped if that is nobody.
    pub(super) fn answer(&self, scrape: u64, text: String) {
        let mut waiting = lock(&self.0);
        match waiting.take() {
            Some((awaited, tx)) if awaited == scrape => drop(tx.send(text)),
            other => {
                tracing::debug!(scrape, "a worker's metrics came after their scrape ended");
                *waiting = other;
            }
        }
    }
}

/// One worker process of the daemon, across its restarts.
pub(super) struct Worker {
    pub(super) plan: WorkerPlan,
    /// Which calls it claims (set before it first starts).
    pub(super) claims: Mutex<Claims>,
    /// The running calls and per-connection figures of the calls it serves: shared with
    /// the worker alone, so the supervisor knows which worker runs which call.
    pub(super) figures: Figures,
    pub(super) figures_fd: OwnedFd,
    /// The running process, if any.
    pub(super) link: Mutex<Option<WorkerLink>>,
    /// The modules it serves, as it last said.
    pub(super) serves: Mutex<Vec<String>>,
    /// Why the supervisor ended it, when it did.
    pub(super) kill_reason: Mutex<Option<String>>,
    pub(super) restarts: AtomicU64,
    /// When its process said `Drained` after the daemon began to stop: only its
    /// modules' own shutdown was left (see `supervisor::bound_idle_drain`).
    pub(super) drained: Mutex<Option<std::time::Instant>>,
    /// Who waits for its metrics.
    pub(super) metrics: MetricsWait,
    /// The connections it could not take, by number, each answered by a stand-in.
    pub(super) stand_ins: Mutex<HashMap<u64, StandIn>>,
    /// Why no process runs it, while one could not be started again after the last
    /// died: every connection's calls to it are answered with that by stand-ins, until
    /// a start succeeds.
    pub(super) down: Mutex<Option<String>>,
    /// The watched file its process says it is opening, and those that took one of its
    /// processes down as they were opened.
    pub(super) openings: Openings,
}

impl Worker {
    pub(super) fn new(plan: WorkerPlan, rows: u32) -> Result<Worker, String> {
        let (figures, figures_fd) =
            Figures::create(rows).map_err(|e| format!("figures table: {e}"))?;
        Ok(Worker {
            plan,
            claims: Mutex::new(Claims::All),
            figures,
            figures_fd,
            link: Mutex::default(),
            serves: Mutex::default(),
            kill_reason: Mutex::default(),
            restarts: AtomicU64::new(0),
            drained: Mutex::default(),
            metrics: MetricsWait::default(),
            stand_ins: Mutex::default(),
            down: Mutex::default(),
            openings: Openings::default(),
        })
    }

    /// Sends the running process `message`, if there is one.
    pub(super) fn send(&self, message: &ToWorker) {
        if let Some(w) = &*lock(&self.link) {
            let _ = control::send(&w.control, message, None);
        }
    }

    pub(super) fn is_up(&self) -> bool {
        lock(&self.link).is_some()
    }
}

/// What the supervisor's threads share.
pub(super) struct Shared {
    pub(super) config: DaemonConfig,
    pub(super) worker_exe: PathBuf,
    /// Where the workers make their private copies of modules (`None`: in the
    /// temporary directory).
    pub(super) copies: Option<super::copies::CopiesDir>,
    /// The main worker first.
    pub(super) workers: Vec<Worker>,
    pub(super) conns: Mutex<HashMap<u64, Conn>>,
    /// Connections whose client hung up, kept until no worker runs a call of theirs: the
    /// watchdog still holds those calls to their deadlines, and their figures rows are
    /// not handed to another connection meanwhile (`workers::release_rows`).
    pub(super) retired: Mutex<HashMap<u64, Conn>>,
    /// Rows of the figures tables no connection holds, the longest free first.
    pub(super) free_rows: Mutex<VecDeque<u32>>,
    pub(super) next_id: AtomicU64,
    pub(super) shutting_down: AtomicBool,
    /// Connections accepted that have not yet said hello (or been refused), each on a
    /// thread of its own: bounded by `max_connections` too, so silent connections cannot
    /// pile threads up for the hello's timeout.
    pub(super) greeting: AtomicUsize,
    /// Connections whose client hung up and whose row is not free yet: a hello that
    /// finds no free row waits for theirs a little (`supervisor::take_row`) rather than
    /// be refused for a limit no client holds.
    pub(super) leaving: AtomicUsize,
    /// The metrics scrape asking the workers now, which scrapes that come meanwhile
    /// wait for and share (`exposition`).
    pub(super) scrapes: Scrapes,
}

/// The metrics scrapes of one daemon: one asks the workers at a time (each worker has
/// one place for its answer), and the scrapes that come meanwhile take its answers.
#[derive(Default)]
pub(super) struct Scrapes {
    pub(super) flight: Mutex<Flight>,
    /// Woken when a scrape has its answers.
    pub(super) answered: std::sync::Condvar,
    /// The names the merges of the workers' figures gave their families.
    pub(super) names: Mutex<super::families::Names>,
}

/// The scrape asking the workers now, and the answers of the last one.
#[derive(Default)]
pub(super) struct Flight {
    /// Whether a scrape is asking the workers now.
    pub(super) asking: bool,
    /// How many scrapes have had their answers.
    pub(super) done: u64,
    /// The answers of the last.
    pub(super) answers: Vec<String>,
}

impl Shared {
    /// The state of a daemon of `config`, whose workers are `workers` (not started),
    /// started from `worker_exe`, making their private copies in `copies`: no connection
    /// yet, every figures row free.
    pub(super) fn new(
        config: DaemonConfig,
        worker_exe: PathBuf,
        workers: Vec<Worker>,
        copies: Option<super::copies::CopiesDir>,
    ) -> Shared {
        Shared {
            free_rows: Mutex::new((0..config.max_connections).collect()),
            config,
            worker_exe,
            copies,
            workers,
            conns: Mutex::default(),
            retired: Mutex::default(),
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            greeting: AtomicUsize::new(0),
            leaving: AtomicUsize::new(0),
            scrapes: Scrapes::default(),
        }
    }

    /// The worker serving calls to `module`: the group's worker whose claims take it,
    /// else the main worker (which answers `UnknownModule` for a name nobody serves):
    /// the rule the workers claim calls by.
    pub(super) fn route(&self, module: &str) -> usize {
        control::route(self.workers.len(), |i| {
            lock(&self.workers[i].claims).takes(module)
        })
    }

    /// Every module served, sorted.
    pub(super) fn served(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .workers
            .iter()
            .flat_map(|w| lock(&w.serves).clone())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::MetricsWait;

    #[test]
    fn an_answer_to_an_earlier_scrape_is_not_handed_to_the_next() {
        let wait = MetricsWait::default();
        // Scrape 1 gave up waiting; scrape 2 asks; scrape 1's answer comes late.
        let first = wait.expect(1);
        drop(first);
        let second = wait.expect(2);
        wait.answer(1, "stale".to_owned());
        assert!(second.try_recv().is_err(), "scrape 2 got scrape 1's answer");
        // Its own answer still reaches it.
        wait.answer(2, "fresh".to_owned());
        assert_eq!(second.try_recv().as_deref(), Ok("fresh"));
        // And once answered, a repeat of it goes nowhere.
        wait.answer(2, "again".to_owned());
        assert!(second.try_recv().is_err());
    }
}
