//! Concurrency mixes against a real daemon: many threads on shared and separate clients,
//! calls of every kind (by name, typed, batches, reused `ArgSlot`s, short deadlines),
//! while workers crash, clients vanish mid-call and `/metrics` is scraped. Every call's
//! outcome is checked (its right result, or an error the docs allow for what happened to
//! it), no call is lost or run twice, nothing hangs, and the daemon serves a fresh client
//! afterwards with no panic of its own in its log.
//!
//! Each scenario is bounded by its number of calls, never by time: a hang is turned into
//! a failure by a generous watchdog ([`HANG`]), which is not an assertion on speed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use common::{memlink, raw_welcome, signal, submit_hold, Daemon, Setup};
use memlink_client::{ArgSlot, CallOptions, Client, ClientConfig, ModuleError, RuntimeError};
use rustix::process::Signal;

/// How long a scenario may run before it counts as hung: far past what any of them
/// takes, only to turn a hang into a failure.
const HANG: Duration = Duration::from_secs(90);

/// Runs `scenario` on a thread of its own and waits for it at most [`HANG`]: a scenario
/// that does not end fails the test, naming `what`, with the daemon's log (and the
/// daemon is killed, so that it does not outlive the test).
fn bounded<T: Send + 'static>(
    daemon: &Arc<Daemon>,
    what: &str,
    scenario: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, ended) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        let out = scenario();
        let _ = done.send(());
        out
    });
    match ended.recv_timeout(HANG) {
        Ok(()) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => match runner.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let log = daemon.log_text();
            for pid in common::children(daemon.pid()) {
                signal(pid, Signal::KILL);
            }
            signal(daemon.pid(), Signal::KILL);
            panic!("{what}: hung (not done in {HANG:?}); the daemon's log:\n{log}");
        }
    }
}

/// Sets its flag when dropped: a scenario that panics still stops its helper threads,
/// so the failure is reported rather than waited on forever.
struct Raise<'a>(&'a AtomicBool);

impl Drop for Raise<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `body` in a thread scope while another thread of it scrapes `daemon` until
/// `stop` (set once `body` returns, or panics); the scraper must have scraped.
fn scraped<'env, R>(
    daemon: &'env Daemon,
    stop: &'env AtomicBool,
    body: impl for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
) -> R {
    std::thread::scope(|s| {
        let _raise = Raise(stop);
        let scraper = s.spawn(|| scrape_until(daemon, stop));
        let out = body(s);
        stop.store(true, Ordering::Relaxed);
        assert!(scraper.join().unwrap() > 0);
        out
    })
}

/// Joins `threads`, in order, failing on the first that panicked.
fn join_all<T>(threads: Vec<ScopedJoinHandle<'_, T>>) -> Vec<T> {
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Waits until `progress` reads `target`, or until one of `callers` has ended (a caller
/// that ends early panicked: joining it says why).
fn await_progress<T>(progress: &AtomicU64, target: u64, callers: &[ScopedJoinHandle<'_, T>]) {
    while progress.load(Ordering::Relaxed) < target && !callers.iter().any(|c| c.is_finished()) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The client a caller thread calls on: one it shares with others, or one of its own.
enum Caller<'a> {
    Shared(&'a Client),
    Own(Box<Client>),
}

impl Caller<'_> {
    /// A client of its own, connected to `daemon`.
    fn own(daemon: &Daemon) -> Self {
        Caller::Own(Box::new(Client::connect(&daemon.socket).unwrap()))
    }

    /// Thread `t`'s client: `shared` for threads 0 and 1, one of its own for the others.
    fn shared_by_two<'a>(t: u32, shared: &'a Client, daemon: &Daemon) -> Caller<'a> {
        if t < 2 {
            Caller::Shared(shared)
        } else {
            Caller::own(daemon)
        }
    }
}

impl std::ops::Deref for Caller<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        match self {
            Caller::Shared(client) => client,
            Caller::Own(client) => client,
        }
    }
}

/// Taken to start a process, and held (for writing) by a test whose clients must be
/// seen to hang up at once: a child forked meanwhile holds a copy of every descriptor
/// of this process until it executes its program, the sockets of clients just dropped
/// included, and the daemon cannot see those clients hang up until then.
static SPAWNING: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn spawning() -> std::sync::RwLockReadGuard<'static, ()> {
    SPAWNING.read().unwrap_or_else(|p| p.into_inner())
}

fn start(modules: &[&str]) -> Arc<Daemon> {
    start_with(Setup {
        metrics: true,
        ..Setup::modules(modules)
    })
}

fn start_with(setup: Setup) -> Arc<Daemon> {
    let _spawning = spawning();
    Arc::new(Daemon::start(setup))
}

/// The lines of the daemon's log that tell of a panic of the daemon itself, in the
/// standard hook's words (a module's panics are reported by its worker as `panicked:
/// MESSAGE (at FILE)` lines, and are allowed).
fn daemon_panics(daemon: &Daemon) -> Vec<String> {
    daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("panicked at") && !l.contains("examples/"))
        .map(str::to_owned)
        .collect()
}

/// The daemon serves a new client correctly, and its log holds no panic of its own.
fn serves_afterwards(daemon: &Daemon) {
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let options = CallOptions::default().timeout(Duration::from_secs(10));
    let out = client
        .call_with(basic, "echo", b"after the storm", &options)
        .unwrap();
    assert_eq!(&*out, b"after the storm");
    drop(out);
    let add = client.typed::<(u32, u32), u32>(basic, "add").unwrap();
    assert_eq!(add.call_with(&(40, 2), &options).unwrap(), 42);
    let panics = daemon_panics(daemon);
    assert!(
        panics.is_empty(),
        "the daemon panicked:\n{}\n\nthe whole log:\n{}",
        panics.join("\n"),
        daemon.log_text()
    );
}

/// Scrapes `/metrics` and `/health` until `stop`: each answers 200, the exposition
/// with the daemon's own figures. How many scrapes it made.
fn scrape_until(daemon: &Daemon, stop: &AtomicBool) -> u32 {
    let mut scrapes = 0;
    while !stop.load(Ordering::Relaxed) {
        let (status, body) = daemon.http_get("/metrics");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("memlink_daemon_connections "), "{body}");
        let (status, _) = daemon.http_get("/health");
        assert!(status == 200 || status == 503, "/health answered {status}");
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    scrapes
}

/// The value of the metric line that starts with `prefix` (name and labels).
fn metric(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
}

/// Waits until the metric `prefix` reads `want`; fails, with the exposition, if it
/// does not within a (generous) while.
fn metric_becomes(daemon: &Daemon, prefix: &str, want: f64) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = daemon.http_get("/metrics");
        if metric(&body, prefix) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < until,
            "{prefix} never became {want}:\n{body}\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the failure of a call may be: `WorkerDied` if workers crash meanwhile, a
/// timeout if the call had a deadline.
fn allowed(e: &RuntimeError, crashes: bool, deadline: bool) -> bool {
    match e {
        RuntimeError::WorkerDied { .. } => crashes,
        _ => deadline && matches!(e.module_error(), Some(ModuleError::Timeout(_))),
    }
}

/// What happened to the calls of a thread.
#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    died: u64,
    timed_out: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.ok += other.ok;
        self.died += other.died;
        self.timed_out += other.timed_out;
    }
}

impl std::iter::Sum for Tally {
    fn sum<I: Iterator<Item = Tally>>(tallies: I) -> Tally {
        let mut sum = Tally::default();
        for t in tallies {
            sum.add(&t);
        }
        sum
    }
}

/// Runs `caller(t)` on `threads` threads at once, and adds up their tallies.
fn tally_of(threads: u32, caller: impl Fn(u32) -> Tally + Sync) -> Tally {
    std::thread::scope(|s| {
        let caller = &caller;
        let callers: Vec<_> = (0..threads).map(|t| s.spawn(move || caller(t))).collect();
        join_all(callers).into_iter().sum()
    })
}

/// One caller's mix of calls on `client`: echo and typed `add` with right answers
/// checked, batches, a reused `ArgSlot` (with and without short deadlines), short
/// holds with shorter deadlines, and hazards' `count` (without a deadline: its values,
/// pushed to `counts`, must come out once each). `rounds` calls, or until `stop` is set
/// if it is given. With `crashes`, any call may fail with `WorkerDied`.
struct Mix<'a> {
    client: &'a Client,
    thread: u32,
    batch: usize,
    crashes: bool,
    counts: Option<&'a Mutex<Vec<u64>>>,
    /// Counts the calls that ended, for a thread that paces itself on them.
    progress: Option<&'a AtomicU64>,
}

impl Mix<'_> {
    fn run(&self, rounds: u32, stop: Option<&AtomicBool>) -> Tally {
        let client = self.client;
        let t = self.thread;
        let mut tally = Tally::default();
        let basic = client.module("basic").unwrap();
        let hazards = client.module("hazards").unwrap();
        let mut slot: ArgSlot = client.arg_buffer(24).unwrap();
        let crashes = self.crashes;
        let note =
            |tally: &mut Tally, r: Result<(), RuntimeError>, deadline: bool, what: &str| match r {
                Ok(()) => tally.ok += 1,
                Err(e) if allowed(&e, crashes, deadline) => {
                    if matches!(e, RuntimeError::WorkerDied { .. }) {
                        tally.died += 1;
                    } else {
                        tally.timed_out += 1;
                    }
                }
                Err(e) => panic!("thread {t}, {what}: {e} ({e:?})"),
            };
        let mut round = 0;
        loop {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed))
                || (stop.is_none() && round >= rounds)
            {
                break tally;
            }
            let word = format!("t{t:03}r{round:019}");
            let short = CallOptions::default()
                .timeout(Duration::from_micros(50 + u64::from(round % 5) * 300));
            match round % 7 {
                0 => {
                    if let Some(counts) = self.counts {
                        let r = client.call(hazards, "count", b"").map(|out| {
                            let n: u64 = rmp_serde::from_slice(&out).unwrap();
                            counts.lock().unwrap().push(n);
                        });
                        note(&mut tally, r, false, "count");
                    }
                }
                1 => {
                    let r = client.call(basic, "echo", word.as_bytes()).map(|out| {
                        assert_eq!(&*out, word.as_bytes(), "thread {t}: echo of another call");
                    });
                    note(&mut tally, r, false, "echo");
                }
                2 => {
                    let r = client
                        .call_typed::<_, u32>(basic, "add", &(t, round))
                        .map(|sum| assert_eq!(sum, t + round, "thread {t}: add"));
                    note(&mut tally, r, false, "add");
                }
                3 => {
                    let mut batch = client.batch();
                    let mut pushed = Vec::new();
                    let mut refused = None;
                    for i in 0..self.batch {
                        let (method, args) = if i == 1 && self.counts.is_some() {
                            ("count", Vec::new())
                        } else {
                            ("echo", format!("{word}b{i}").into_bytes())
                        };
                        match batch.push(basic_or(hazards, basic, method), method, &args) {
                            Ok(()) => pushed.push((method, args)),
                            Err(e) => {
                                refused = Some(e);
                                break;
                            }
                        }
                    }
                    if let Some(e) = refused {
                        // Pushing fails only if the connection is lost to a crash (it
                        // is not: a worker's death leaves the connection), so not here.
                        drop(batch);
                        note(&mut tally, Err(e), false, "batch push");
                    } else {
                        for (result, (method, args)) in batch.run().into_iter().zip(pushed) {
                            let r = result.map(|out| {
                                if method == "count" {
                                    let n: u64 = rmp_serde::from_slice(&out).unwrap();
                                    self.counts.unwrap().lock().unwrap().push(n);
                                } else {
                                    assert_eq!(&*out, &args[..], "thread {t}: batch echo");
                                }
                            });
                            note(&mut tally, r, false, "batch");
                        }
                    }
                }
                4 | 5 => {
                    // The reused buffer: rewritten for each call (a timed-out call
                    // leaves it zeroed in private memory), its reply checked.
                    let deadline = round % 7 == 5;
                    slot.copy_from_slice(word.as_bytes());
                    let options = if deadline {
                        short
                    } else {
                        CallOptions::default()
                    };
                    let r = client
                        .call_slot(basic, "echo", &mut slot, &options)
                        .map(|out| {
                            assert_eq!(&*out, word.as_bytes(), "thread {t}: call_slot echo")
                        });
                    note(&mut tally, r, deadline, "call_slot");
                }
                _ => {
                    let ms = u64::from(round % 3);
                    let r = client
                        .typed::<(u64,), u64>(hazards, "hold")
                        .and_then(|hold| hold.call_with(&(ms,), &short))
                        .map(|held| assert_eq!(held, ms, "thread {t}: hold"));
                    note(&mut tally, r, true, "hold");
                }
            }
            round += 1;
            if let Some(p) = self.progress {
                p.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn basic_or(
    hazards: memlink_client::RemoteModule,
    basic: memlink_client::RemoteModule,
    method: &str,
) -> memlink_client::RemoteModule {
    if method == "count" {
        hazards
    } else {
        basic
    }
}

/// Six threads: two clients shared by two threads each (one with just enough slots
/// for its threads' buffers and batches, so threads wait for slots), and two clients of
/// their own, all mixing calls, while `/metrics` is scraped. Every answer is right, and
/// every `count` call ran exactly once: their values are 1 to n, each once.
#[test]
fn shared_and_separate_clients_mixing_every_kind_of_call_lose_and_repeat_nothing() {
    let daemon = start(&["basic", "hazards"]);
    let d = Arc::clone(&daemon);
    let (tally, counts) = bounded(&daemon, "six callers mixing calls", move || {
        let config = ClientConfig::default;
        let tight = Client::with_config(&d.socket, config().slots(6)).unwrap();
        let roomy = Client::connect(&d.socket).unwrap();
        let counts = Mutex::new(Vec::new());
        let stop = AtomicBool::new(false);
        let tally = scraped(&d, &stop, |s| {
            let mut callers = Vec::new();
            for t in 0..6u32 {
                let (tight, roomy, counts, d) = (&tight, &roomy, &counts, &d);
                callers.push(s.spawn(move || {
                    let (client, batch) = match t {
                        0 | 1 => (Caller::Shared(tight), 2),
                        2 | 3 => (Caller::Shared(roomy), 3),
                        _ => (Caller::own(d), 4),
                    };
                    let mix = Mix {
                        client: &client,
                        thread: t,
                        batch,
                        crashes: false,
                        counts: Some(counts),
                        progress: None,
                    };
                    mix.run(1000, None)
                }));
            }
            join_all(callers).into_iter().sum::<Tally>()
        });
        (tally, counts.into_inner().unwrap())
    });
    eprintln!("tally: {tally:?}");
    assert!(tally.ok > 0, "{tally:?}");
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let expected: Vec<u64> = (1..=counts.len() as u64).collect();
    assert_eq!(
        sorted, expected,
        "each count call ran once: a value missing was a call lost, one twice a call run twice"
    );
    // The next count follows them all: no call ran that nobody asked for.
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let next: u64 = client.call_typed(hazards, "count", &()).unwrap();
    assert_eq!(next, counts.len() as u64 + 1);
    serves_afterwards(&daemon);
}

/// Four callers (a shared client and two of their own) mix calls while another thread
/// crashes their worker again and again (an abort, a panic that cannot unwind, and
/// `SIGKILL` mid-call), and `/metrics` is scraped. A caller's call ends with its right
/// answer or `WorkerDied` (or its timeout), never another call's answer, never a hang;
/// each crash is one restart.
#[test]
fn calls_of_every_kind_across_a_worker_crashing_again_and_again() {
    let daemon = start(&["basic", "hazards"]);
    let d = Arc::clone(&daemon);
    let crashes = 20u32;
    let tally = bounded(&daemon, "callers across crashes", move || {
        let shared = Client::connect(&d.socket).unwrap();
        let crasher = Client::connect(&d.socket).unwrap();
        let hazards = crasher.module("hazards").unwrap();
        let stop = AtomicBool::new(false);
        let progress = AtomicU64::new(0);
        let scrape_stop = AtomicBool::new(false);
        scraped(&d, &scrape_stop, |s| {
            let _raise = Raise(&stop);
            let newcomers = s.spawn(|| newcomers_until(&d, &stop));
            let mut callers = Vec::new();
            for t in 0..4u32 {
                let (shared, d, stop, progress) = (&shared, &d, &stop, &progress);
                callers.push(s.spawn(move || {
                    let client = Caller::shared_by_two(t, shared, d);
                    let mix = Mix {
                        client: &client,
                        thread: t,
                        batch: 3,
                        crashes: true,
                        counts: None,
                        progress: Some(progress),
                    };
                    mix.run(0, Some(stop))
                }));
            }
            // The crasher: its own client; each crash waits for the new worker to
            // answer before the next.
            let (crasher, hazards) = (&crasher, hazards);
            for i in 0..crashes {
                // The callers made calls since the last crash (and the new worker
                // served some).
                await_progress(&progress, progress.load(Ordering::Relaxed) + 60, &callers);
                let err = match i % 3 {
                    0 => crasher.call(hazards, "abort_in_drop", b"").unwrap_err(),
                    1 => crasher.call(hazards, "panic_in_extern_c", b"").unwrap_err(),
                    _ => {
                        // Traced, so that its record tells it from the callers' holds.
                        let trace = 7_000_000 + u64::from(i);
                        let held = s.spawn(move || {
                            let traced = CallOptions::default().trace(trace, 1);
                            crasher
                                .typed::<(u64,), u64>(hazards, "hold")
                                .and_then(|hold| hold.call_with(&(30_000u64,), &traced))
                        });
                        let worker = d.worker_pid();
                        // The hold is running once the module logged it.
                        let began = format!("holding module=hazards method=hold trace_id={trace}");
                        let until = Instant::now() + Duration::from_secs(20);
                        while !d.log_text().contains(&began) && !held.is_finished() {
                            assert!(Instant::now() < until, "the hold never began");
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        signal(worker, Signal::KILL);
                        held.join().unwrap().unwrap_err()
                    }
                };
                assert!(
                    matches!(err, RuntimeError::WorkerDied { .. }),
                    "crash {i}: {err}"
                );
                let count: Result<u64, _> = crasher.call_typed(hazards, "count", &());
                count.unwrap_or_else(|e| panic!("after crash {i}: {e}"));
            }
            stop.store(true, Ordering::Relaxed);
            scrape_stop.store(true, Ordering::Relaxed);
            let mut tally: Tally = join_all(callers).into_iter().sum();
            tally.add(&newcomers.join().unwrap());
            tally
        })
    });
    eprintln!("tally: {tally:?}");
    assert!(tally.ok > 0, "{tally:?}");
    metric_becomes(
        &daemon,
        "memlink_daemon_worker_restarts_total{worker=\"main\"}",
        f64::from(crashes),
    );
    metric_becomes(&daemon, "memlink_daemon_worker_up{worker=\"main\"}", 1.0);
    serves_afterwards(&daemon);
}

/// Until `stop`: clients connecting (perhaps while the worker restarts) with slots too
/// small for their calls, two threads each growing the segment at once with an echo
/// larger than the slots, then a batch on the grown connection; each answer right or
/// `WorkerDied`.
fn newcomers_until(daemon: &Daemon, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut round = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let config = ClientConfig::default().slots(3).slot_size(4096);
        let client = Client::with_config(&daemon.socket, config).unwrap();
        let basic = client.module("basic").unwrap();
        tally.add(&tally_of(2, |t| {
            let mut tally = Tally::default();
            let big: Vec<u8> = (0..5000 + 3000 * t + round % 100)
                .map(|i| b'a' + ((i + t) % 26) as u8)
                .collect();
            let mut check = |r: Result<(), RuntimeError>| match r {
                Ok(()) => tally.ok += 1,
                Err(RuntimeError::WorkerDied { .. }) => tally.died += 1,
                Err(e) => panic!("newcomer {round}.{t}: {e} ({e:?})"),
            };
            let r = client.call(basic, "echo", &big);
            check(r.map(|out| assert_eq!(&*out, &big[..], "grown echo")));
            let mut batch = client.batch();
            batch.push(basic, "echo", &big).unwrap();
            batch.push(basic, "echo", b"small").unwrap();
            let mut results = batch.run().into_iter();
            let r = results.next().unwrap();
            check(r.map(|out| assert_eq!(&*out, &big[..], "batch echo")));
            let r = results.next().unwrap();
            check(r.map(|out| assert_eq!(&*out, b"small")));
            tally
        }));
        round += 1;
    }
    tally
}

/// A connection made by hand that submits a `hold` and hangs up at once, without
/// waiting for it.
fn hang_up_mid_call(daemon: &Daemon, ms: u64) {
    let (stream, segment, _) = raw_welcome(daemon);
    submit_hold(&segment, ms, Duration::from_secs(5));
    drop((stream, segment));
}

fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits until `what` of `pid` is back to at most `baseline`.
fn back_to(daemon: &Daemon, what: &str, count: fn(i32) -> usize, pid: i32, baseline: usize) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let now = count(pid);
        if now <= baseline {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what} of {pid}: {now}, {baseline} before the clients came and went\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clients come and go mid-call (killed processes, connections hung up by hand, batches
/// and clients dropped before their calls were collected) while two threads sharing a
/// client call on: their calls all succeed, every connection is let go (the connection
/// gauge, the daemon's and the worker's descriptors and threads come back), and the
/// daemon serves on.
#[test]
fn clients_that_vanish_mid_call_cost_the_others_nothing_and_leak_nothing() {
    let daemon = start(&["basic", "hazards"]);
    let steady = Arc::new(Client::connect(&daemon.socket).unwrap());
    let worker = daemon.worker_pid();
    // Warm the worker's thread and helpers for the steady connection.
    let basic = steady.module("basic").unwrap();
    steady.call(basic, "echo", b"warm").unwrap();
    metric_becomes(&daemon, "memlink_daemon_connections", 1.0);
    let (daemon_fds, worker_fds) = (fds(daemon.pid()), fds(worker));
    let (daemon_threads, worker_threads) = (threads(daemon.pid()), threads(worker));
    let d = Arc::clone(&daemon);
    let s2 = Arc::clone(&steady);
    let calls = bounded(&daemon, "clients vanishing mid-call", move || {
        let stop = AtomicBool::new(false);
        let made = AtomicU64::new(0);
        scraped(&d, &stop, |s| {
            let callers: Vec<_> = (0..2u32)
                .map(|t| {
                    let (client, stop, made) = (&s2, &stop, &made);
                    s.spawn(move || {
                        let basic = client.module("basic").unwrap();
                        let mut i = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let word = format!("steady {t} {i}");
                            let out = client.call(basic, "echo", word.as_bytes()).unwrap();
                            assert_eq!(&*out, word.as_bytes());
                            i += 1;
                        }
                        made.fetch_add(i, Ordering::Relaxed);
                    })
                })
                .collect();
            // Processes killed mid-call (or before it: either is a client gone).
            let processes = s.spawn(|| {
                for _ in 0..3 {
                    let mut doomed: Vec<_> = (0..3)
                        .map(|_| {
                            let _spawning = spawning();
                            Command::new(memlink())
                                .args(["call", "--daemon"])
                                .arg(&d.socket)
                                .args(["hazards", "hold", "300"])
                                .stdout(Stdio::null())
                                .stderr(Stdio::piped())
                                .spawn()
                                .unwrap()
                        })
                        .collect();
                    std::thread::sleep(Duration::from_millis(150));
                    for child in &mut doomed {
                        signal(child.id() as i32, Signal::KILL);
                        let _ = child.wait();
                        // What it said before it died is no panic.
                        let said: Vec<String> = BufReader::new(child.stderr.take().unwrap())
                            .lines()
                            .map_while(Result::ok)
                            .collect();
                        assert!(
                            !said.iter().any(|l| l.contains("panicked")),
                            "{}",
                            said.join("\n")
                        );
                    }
                }
            });
            // Connections hung up by hand right after submitting.
            let raw = s.spawn(|| {
                for _ in 0..10 {
                    hang_up_mid_call(&d, 50);
                }
            });
            // Clients dropped with a batch never run, and clients dropped right after
            // a call, over and over.
            let churn = s.spawn(|| {
                for i in 0..30u32 {
                    let client = Client::connect(&d.socket).unwrap();
                    let hazards = client.module("hazards").unwrap();
                    let basic = client.module("basic").unwrap();
                    if i % 2 == 0 {
                        let mut batch = client.batch();
                        let hold = rmp_serde::to_vec(&(20u64,)).unwrap();
                        batch.push(hazards, "hold", &hold).unwrap();
                        batch.push(basic, "echo", b"never collected").unwrap();
                        drop(batch);
                    } else {
                        let out = client.call(basic, "echo", b"once").unwrap();
                        assert_eq!(&*out, b"once");
                    }
                    drop(client);
                }
            });
            processes.join().unwrap();
            raw.join().unwrap();
            churn.join().unwrap();
            stop.store(true, Ordering::Relaxed);
            join_all(callers);
        });
        made.into_inner()
    });
    assert!(calls > 0);
    // Every vanished client's connection is let go, in the daemon and in the worker.
    metric_becomes(&daemon, "memlink_daemon_connections", 1.0);
    assert_eq!(daemon.worker_pid(), worker, "no worker died");
    back_to(&daemon, "descriptors", fds, daemon.pid(), daemon_fds);
    back_to(&daemon, "descriptors", fds, worker, worker_fds);
    back_to(&daemon, "threads", threads, daemon.pid(), daemon_threads);
    back_to(&daemon, "threads", threads, worker, worker_threads);
    let out = steady.call(basic, "echo", b"still mine").unwrap();
    assert_eq!(&*out, b"still mine");
    drop(out);
    serves_afterwards(&daemon);
}

/// Three threads share a client of two slots. Each in turn abandons calls the module
/// holds far past their deadlines (by `call_slot`, in a batch, by name: each times out
/// and leaves its slot to the daemon), so the watchdog ends the worker over and over,
/// and makes calls without a deadline that must wait for those slots: every such call
/// gets its answer or `WorkerDied`, none waits forever for a slot the dead worker held.
#[test]
fn slots_left_to_a_worker_the_watchdog_ends_come_back_to_their_client() {
    let daemon = start(&["basic", "hazards"]);
    let d = Arc::clone(&daemon);
    let tally = bounded(&daemon, "slots left to ended workers", move || {
        let config = ClientConfig::default().slots(2);
        let client = Client::with_config(&d.socket, config).unwrap();
        let basic = client.module("basic").unwrap();
        let hazards = client.module("hazards").unwrap();
        tally_of(3, |t| {
            let mut tally = Tally::default();
            let long = rmp_serde::to_vec(&(5_000u64,)).unwrap();
            for round in 0..6u32 {
                let short = CallOptions::default().timeout(Duration::from_millis(20));
                let abandoned = match (round + t) % 3 {
                    0 => {
                        // Made for the call (a buffer kept would hold one of the two
                        // slots for good).
                        let mut slot = client.arg_buffer(long.len()).unwrap();
                        slot.copy_from_slice(&long);
                        client
                            .call_slot(hazards, "hold", &mut slot, &short)
                            .map(|out| out.len())
                    }
                    1 => {
                        let mut batch = client.batch().options(short);
                        match batch.push(hazards, "hold", &long) {
                            Ok(()) => batch.run().pop().unwrap().map(|out| out.len()),
                            Err(e) => Err(e),
                        }
                    }
                    _ => client
                        .call_with(hazards, "hold", &long, &short)
                        .map(|out| out.len()),
                };
                match abandoned {
                    Err(e) if allowed(&e, true, true) => {}
                    other => panic!("thread {t}: a 5 s hold in 20 ms: {other:?}"),
                }
                let word = format!("t{t}r{round}");
                match client.call(basic, "echo", word.as_bytes()) {
                    Ok(out) => {
                        assert_eq!(&*out, word.as_bytes());
                        tally.ok += 1;
                    }
                    Err(RuntimeError::WorkerDied { .. }) => tally.died += 1,
                    Err(e) => panic!("thread {t}: echo: {e}"),
                }
            }
            tally
        })
    });
    eprintln!("tally: {tally:?}");
    assert!(daemon.log_text().contains("past its deadline"));
    serves_afterwards(&daemon);
}

/// `basic` and `steady` (the hazards library) in the main worker, `hazards` in a worker
/// of its own. Three threads (two sharing a client) submit batches spanning both
/// workers while a fourth crashes the `hazards` worker again and again: the main
/// worker's calls all succeed, each `steady` count once, and only `hazards` calls may
/// fail, with `WorkerDied`.
#[test]
fn batches_spanning_two_workers_lose_nothing_of_the_one_that_never_crashes() {
    let path = common::module_path("hazards");
    let toml = format!(
        "[[modules]]\nname = \"basic\"\npath = {:?}\n\
         [[modules]]\nname = \"steady\"\npath = {path:?}\n\
         [[modules]]\nname = \"hazards\"\npath = {path:?}\n\
         limits = {{ open_files = 256 }}\n",
        common::module_path("basic"),
    );
    let daemon = start_with(Setup {
        toml,
        metrics: true,
        ..Setup::default()
    });
    let main = daemon.worker_pid_named("main");
    let d = Arc::clone(&daemon);
    let crashes = 8u32;
    let (counts, died) = bounded(&daemon, "batches across two workers", move || {
        let shared = Client::connect(&d.socket).unwrap();
        let counts = Mutex::new(Vec::new());
        let died = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let progress = AtomicU64::new(0);
        scraped(&d, &stop, |s| {
            let callers: Vec<_> = (0..3u32)
                .map(|t| {
                    let (shared, d, stop, counts, died, progress) =
                        (&shared, &d, &stop, &counts, &died, &progress);
                    s.spawn(move || {
                        let client = Caller::shared_by_two(t, shared, d);
                        let basic = client.module("basic").unwrap();
                        let steady = client.module("steady").unwrap();
                        let hazards = client.module("hazards").unwrap();
                        let mut round = 0u32;
                        while !stop.load(Ordering::Relaxed) {
                            let word = format!("t{t}r{round}");
                            let mut batch = client.batch();
                            batch.push(hazards, "count", b"").unwrap();
                            batch.push(basic, "echo", word.as_bytes()).unwrap();
                            batch.push(steady, "count", b"").unwrap();
                            batch
                                .push(hazards, "hold", &rmp_serde::to_vec(&(1u64,)).unwrap())
                                .unwrap();
                            let results = batch.run();
                            for at in [0, 3] {
                                match &results[at] {
                                    Ok(_) => {}
                                    Err(RuntimeError::WorkerDied { .. }) => {
                                        died.fetch_add(1, Ordering::Relaxed);
                                    }
                                    Err(e) => panic!("thread {t}: hazards: {e}"),
                                }
                            }
                            // The main worker's calls never fail.
                            let echo = results[1].as_ref().unwrap();
                            assert_eq!(&**echo, word.as_bytes(), "thread {t}: batch echo");
                            let count = results[2].as_ref().unwrap();
                            let n: u64 = rmp_serde::from_slice(count).unwrap();
                            counts.lock().unwrap().push(n);
                            drop(results);
                            let n: u64 = client.call_typed(steady, "count", &()).unwrap();
                            counts.lock().unwrap().push(n);
                            round += 1;
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            let crasher = Client::connect(&d.socket).unwrap();
            let hazards = crasher.module("hazards").unwrap();
            for i in 0..crashes {
                await_progress(&progress, progress.load(Ordering::Relaxed) + 20, &callers);
                let err = crasher.call(hazards, "abort_in_drop", b"").unwrap_err();
                assert!(
                    matches!(err, RuntimeError::WorkerDied { .. }),
                    "crash {i}: {err}"
                );
            }
            stop.store(true, Ordering::Relaxed);
            join_all(callers);
        });
        (counts.into_inner().unwrap(), died.into_inner())
    });
    eprintln!("{} steady counts, {died} hazards calls died", counts.len());
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let expected: Vec<u64> = (1..=counts.len() as u64).collect();
    assert_eq!(sorted, expected, "each steady count ran once");
    assert_eq!(
        daemon.worker_pid_named("main"),
        main,
        "the main worker never died"
    );
    metric_becomes(
        &daemon,
        "memlink_daemon_worker_restarts_total{worker=\"hazards\"}",
        f64::from(crashes),
    );
    metric_becomes(
        &daemon,
        "memlink_daemon_worker_restarts_total{worker=\"main\"}",
        0.0,
    );
    serves_afterwards(&daemon);
}

/// A daemon that serves one connection at most, and clients one after another: once
/// the daemon has seen a client hang up (its connections gauge reads 0), the next one is
/// welcome. Before, the row of a client that hung up went back to the free ones only
/// after the worker's thread for it ended and the watchdog next looked, so the next
/// client was refused for "the daemon holds its limit of 1 connections" with none held.
#[test]
fn a_client_that_hung_up_leaves_its_place_to_the_next_at_once() {
    let daemon = start_with(Setup {
        toml: "max_connections = 1\n".into(),
        metrics: true,
        ..Setup::modules(&["basic"])
    });
    let _alone = SPAWNING.write().unwrap_or_else(|p| p.into_inner());
    for i in 0..30 {
        let client = Client::connect(&daemon.socket)
            .unwrap_or_else(|e| panic!("client {i}, after {i} that hung up: {e}"));
        let basic = client.module("basic").unwrap();
        assert_eq!(&*client.call(basic, "echo", b"x").unwrap(), b"x");
        drop(client);
        metric_becomes(&daemon, "memlink_daemon_connections", 0.0);
    }
}

/// Four threads, each with at most one client at a time, connect, call and hang up
/// over and over against a daemon of four connections at most: every client is welcome.
/// Before, a client was refused now and then, for the daemon's "limit of 4 connections"
/// (the place of a client that hung up went back only once its connection's thread had
/// read the hang-up, and after its workers' threads had ended) or for "4 connections
/// are still to say hello" (a connection counted as one until after its welcome was
/// sent, so its client could be gone and back before).
#[test]
fn clients_coming_and_going_at_the_connection_limit_are_all_welcome() {
    let daemon = start_with(Setup {
        toml: "max_connections = 4\n".into(),
        ..Setup::modules(&["basic"])
    });
    let _alone = SPAWNING.write().unwrap_or_else(|p| p.into_inner());
    std::thread::scope(|s| {
        for t in 0..4 {
            let daemon = &daemon;
            s.spawn(move || {
                for i in 0..100 {
                    let client = Client::connect(&daemon.socket)
                        .unwrap_or_else(|e| panic!("thread {t}, client {i}: {e}"));
                    let basic = client.module("basic").unwrap();
                    assert_eq!(&*client.call(basic, "echo", b"x").unwrap(), b"x");
                }
            });
        }
    });
    serves_afterwards(&daemon);
}

/// Four threads (two sharing a client) call on — echoes, batches, short holds — while
/// the daemon is told to stop: every call ends, with its right answer or an error
/// saying the daemon stops or is gone (never another call's answer, never a hang), and
/// the daemon exits 0 with no panic of its own.
#[test]
fn callers_busy_when_the_daemon_is_told_to_stop_all_get_an_end() {
    let daemon = start(&["basic", "hazards"]);
    let d = Arc::clone(&daemon);
    let (ok, ended) = bounded(&daemon, "callers across SIGTERM", move || {
        let shared = Client::connect(&d.socket).unwrap();
        let progress = AtomicU64::new(0);
        let ended = AtomicU64::new(0);
        let ok = std::thread::scope(|s| {
            let callers: Vec<_> = (0..4u32)
                .map(|t| {
                    let (shared, d, progress, ended) = (&shared, &d, &progress, &ended);
                    s.spawn(move || {
                        let client = Caller::shared_by_two(t, shared, d);
                        let basic = client.module("basic").unwrap();
                        let hazards = client.module("hazards").unwrap();
                        let hold = rmp_serde::to_vec(&(2u64,)).unwrap();
                        let mut ok = 0u64;
                        // Until a call fails: from then on the daemon is stopping.
                        for round in 0u32.. {
                            let word = format!("t{t}r{round}");
                            let mut batch = client.batch();
                            let pushed = batch
                                .push(basic, "echo", word.as_bytes())
                                .and_then(|()| batch.push(hazards, "hold", &hold));
                            let results = match pushed {
                                Ok(()) => batch.run(),
                                Err(e) => vec![Err(e)],
                            };
                            let mut failed = false;
                            for (i, r) in results.iter().enumerate() {
                                match r {
                                    Ok(out) if i == 0 => assert_eq!(&**out, word.as_bytes()),
                                    Ok(out) => {
                                        assert_eq!(rmp_serde::from_slice::<u64>(out).unwrap(), 2)
                                    }
                                    Err(
                                        RuntimeError::DaemonGone { .. }
                                        | RuntimeError::Daemon { .. },
                                    ) => failed = true,
                                    Err(e) => panic!("thread {t}: {e} ({e:?})"),
                                }
                            }
                            if failed {
                                ended.fetch_add(1, Ordering::Relaxed);
                                return ok;
                            }
                            ok += 1;
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                        ok
                    })
                })
                .collect();
            await_progress(&progress, 200, &callers);
            signal(d.pid(), Signal::TERM);
            join_all(callers).into_iter().sum::<u64>()
        });
        (ok, ended.into_inner())
    });
    eprintln!("{ok} batches answered, {ended} callers ended by the stop");
    assert_eq!(ended, 4, "every caller saw the daemon stop");
    // The scenario's share of the daemon is dropped with it. A second SIGTERM to a
    // daemon stopping already changes nothing; this waits for its exit.
    let mut daemon = Arc::try_unwrap(daemon).unwrap_or_else(|_| panic!("the daemon is shared"));
    let status = daemon.terminate();
    assert!(status.success(), "{status}\n{}", daemon.log_text());
    let panics = daemon_panics(&daemon);
    assert!(panics.is_empty(), "{}", daemon.log_text());
}

/// A caller waiting for a free slot when the daemon (with its worker) is killed: the
/// call holding the slot ends with the daemon gone, and leaves its slot to the dead
/// daemon (`Running` for good, never recovered). The waiter must not wait for that slot
/// forever, though it has no deadline: it is told the daemon went away.
#[test]
fn a_caller_waiting_for_a_slot_when_the_daemon_is_killed_is_not_left_waiting() {
    let daemon = start(&["basic", "hazards"]);
    let d = Arc::clone(&daemon);
    let (holder, waiter) = bounded(&daemon, "a caller waiting for a slot", move || {
        // One slot, and a reconnect timeout too short to find a new daemon: the
        // waiter's call fails rather than being served by the next daemon.
        let config = ClientConfig::default()
            .slots(1)
            .reconnect_timeout(Duration::ZERO);
        let client = Client::with_config(&d.socket, config).unwrap();
        let basic = client.module("basic").unwrap();
        let hazards = client.module("hazards").unwrap();
        let worker = d.worker_pid();
        let waiting = AtomicBool::new(false);
        std::thread::scope(|s| {
            let holder = s.spawn(|| {
                client
                    .typed::<(u64,), u64>(hazards, "hold")
                    .unwrap()
                    .call_with(&(60_000,), &CallOptions::default())
            });
            while !d.log_text().contains("holding") {
                std::thread::sleep(Duration::from_millis(5));
            }
            let waiter = s.spawn(|| {
                waiting.store(true, Ordering::Relaxed);
                client.call_typed::<_, u32>(basic, "add", &(1u32, 2u32))
            });
            while !waiting.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            // Gives the waiter the time to reach the wait for the slot; were it not
            // there yet, it would find the daemon gone on its way and the test would
            // pass without testing the wait.
            std::thread::sleep(Duration::from_millis(200));
            signal(worker, Signal::KILL);
            signal(d.pid(), Signal::KILL);
            (holder.join().unwrap(), waiter.join().unwrap())
        })
    });
    let holder = holder.unwrap_err();
    // Killed just after its worker, the supervisor may yet end the call as the worker's.
    assert!(
        matches!(
            holder,
            RuntimeError::DaemonGone { .. } | RuntimeError::WorkerDied { .. }
        ),
        "{holder}"
    );
    let waiter = waiter.unwrap_err();
    assert!(
        matches!(waiter, RuntimeError::DaemonGone { .. }),
        "{waiter}"
    );
}
