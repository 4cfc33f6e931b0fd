//! A client used in ways it cannot serve: another client's handles and buffers, settings
//! no connection can have, durations too long to add to an instant. Each is refused
//! with an error that says so, or served as documented; none panics or reaches another
//! module.

mod common;

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Daemon, Setup};
use memlink_client::{CallOptions, Client, ClientConfig, ModuleError, RuntimeError};
use memlink_ipc::control::{self, Answer, Hello};
use memlink_ipc::slot::{Op, Submit, Waited};
use memlink_ipc::{Failure, Geometry, Segment, PROTOCOL_VERSION};

/// A hand-made connection of `slots` slots of `slot_size` bytes: the handshake done with
/// the protocol's own messages, nothing of the client library in the way.
fn raw_connection(daemon: &Daemon, slots: u32, slot_size: u64) -> (UnixStream, Segment) {
    let stream = UnixStream::connect(&daemon.socket).unwrap();
    let geometry = Geometry::new(slots, slot_size).unwrap();
    let hello = Hello {
        version: PROTOCOL_VERSION,
        geometry,
    };
    control::send(&stream, &hello, None).unwrap();
    let (answer, fd) = control::recv::<Answer>(&stream).unwrap();
    let Answer::Welcome(welcome) = answer else {
        panic!("refused: {answer:?}")
    };
    let segment = Segment::map(&fd.unwrap(), welcome.geometry).unwrap();
    (stream, segment)
}

/// Submits `op` on `module`'s `method` in slot 0 with the slot's first `args_len` bytes
/// as arguments, and waits (at most 30 s) for the reply: its length, or the failure.
fn raw_request(
    segment: &Segment,
    op: Op,
    module: &str,
    method: &str,
    args_len: usize,
) -> Result<usize, Failure> {
    raw_request_by(segment, op, module, method, args_len, 0)
}

/// [`raw_request`] with a deadline (`CLOCK_MONOTONIC` nanoseconds, 0 for none).
fn raw_request_by(
    segment: &Segment,
    op: Op,
    module: &str,
    method: &str,
    args_len: usize,
    deadline_ns: u64,
) -> Result<usize, Failure> {
    let slot = segment.slot(0).unwrap();
    slot.submit(&Submit {
        op,
        module,
        method,
        args_len,
        deadline_ns,
        trace_id: 0,
        span_id: 0,
        checked: 0,
    });
    segment.header().ring_all();
    let until = Instant::now() + Duration::from_secs(30);
    let waited = slot.wait_done(
        Some(until),
        Duration::ZERO,
        Duration::from_millis(10),
        || true,
    );
    assert_eq!(
        waited,
        Waited::Done,
        "no reply to {op:?} {module}::{method}"
    );
    slot.reply().map(|range| range.len())
}

fn refused_as_foreign(result: Result<impl std::fmt::Debug, RuntimeError>) -> String {
    match result {
        Err(e @ RuntimeError::ForeignHandle { .. }) => e.to_string(),
        other => panic!("a foreign handle was not refused: {other:?}"),
    }
}

#[test]
fn a_handle_of_another_client_is_refused_by_every_method_that_takes_one() {
    let daemon = Daemon::start(Setup::modules(&["basic", "async_echo"]));
    let a = Client::connect(&daemon.socket).unwrap();
    let b = Client::connect(&daemon.socket).unwrap();
    // `a` resolves two modules, `b` one: `a`'s first handle is at the place of `b`'s
    // only module, and its second at a place `b` has none.
    let a_basic = a.module("basic").unwrap();
    let a_echo = a.module("async_echo").unwrap();
    let b_echo = b.module("async_echo").unwrap();
    assert_ne!(a_basic, b_echo);
    assert_ne!(a_echo, b_echo, "handles of two clients never compare equal");

    for foreign in [a_basic, a_echo] {
        let text = refused_as_foreign(b.call(foreign, "echo", b"hi"));
        assert!(text.contains("another client"), "{text}");
        assert!(text.contains(&foreign.to_string()), "{text}");
        refused_as_foreign(b.call_with(foreign, "echo", b"hi", &CallOptions::default()));
        refused_as_foreign(b.call_typed::<_, String>(foreign, "echo", &("hi",)));
        refused_as_foreign(b.typed::<(String,), String>(foreign, "echo"));
        refused_as_foreign(b.archived::<u32, u32>(foreign, "echo"));
        refused_as_foreign(b.methods(foreign));
        refused_as_foreign(b.backpressure(foreign));
        let buffer = b.arg_buffer(3).unwrap();
        refused_as_foreign(b.call_buffer(foreign, "echo", buffer, &CallOptions::default()));
        let mut buffer = b.arg_buffer(3).unwrap();
        refused_as_foreign(
            b.call_slot(foreign, "echo", &mut buffer, &CallOptions::default())
                .map(|r| r.to_vec()),
        );
        let mut batch = b.batch();
        refused_as_foreign(batch.push(foreign, "echo", b"hi"));
        assert!(batch.is_empty());
        // Through the trait the runtime shares, too.
        refused_as_foreign(memlink_client::Caller::call_with(
            &b,
            foreign,
            "echo",
            b"hi",
            &CallOptions::default(),
        ));
    }

    // Each client's own handles still serve, and reach their own modules.
    assert_eq!(&*a.call(a_basic, "echo", b"hi").unwrap(), b"hi");
    let sum: u32 = a.call_typed(a_basic, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
    assert!(b
        .methods(b_echo)
        .unwrap()
        .iter()
        .any(|m| m.name == "time_left"));
    let typed = a.typed::<(u32, u32), u32>(a_basic, "add").unwrap();
    assert_eq!(typed.module(), a_basic);
    assert_eq!(typed.call(&(1, 1)).unwrap(), 2);
}

#[test]
fn an_argument_buffer_of_another_client_is_refused() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let a = Client::connect(&daemon.socket).unwrap();
    let b = Client::connect(&daemon.socket).unwrap();
    let b_basic = b.module("basic").unwrap();
    let mut buffer = a.arg_buffer(3).unwrap();
    buffer.copy_from_slice(b"abc");
    let text = refused_as_foreign(
        b.call_slot(b_basic, "echo", &mut buffer, &CallOptions::default())
            .map(|r| r.to_vec()),
    );
    assert!(text.contains("argument buffer"), "{text}");
    refused_as_foreign(b.call_buffer(b_basic, "echo", buffer, &CallOptions::default()));
    // Its own client's buffer serves.
    let mut own = b.arg_buffer(3).unwrap();
    own.copy_from_slice(b"abc");
    let reply = b
        .call_slot(b_basic, "echo", &mut own, &CallOptions::default())
        .unwrap();
    assert_eq!(&*reply, b"abc");
}

/// A reconnect timeout of zero still connects once: it is how long to keep trying, not
/// whether to try. Before, the client gave up before its first try.
#[test]
fn a_reconnect_timeout_of_zero_still_connects_once() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let config = ClientConfig::default().reconnect_timeout(Duration::ZERO);
    let client = Client::with_config(&daemon.socket, config).unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"once").unwrap(), b"once");
}

#[test]
fn a_reconnect_timeout_too_long_for_an_instant_is_no_limit() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let config = ClientConfig::default().reconnect_timeout(Duration::MAX);
    let client = Client::with_config(&daemon.socket, config.clone()).unwrap();
    let basic = client.module("basic").unwrap();
    let sum: u32 = client.call_typed(basic, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);

    // With no daemon yet, connecting waits for as long as it takes one to start.
    let dir = common::scratch_dir();
    let socket = dir.join("memlink.sock");
    let waiting = std::thread::spawn(move || Client::with_config(&socket, config));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "connecting gave up without a limit");
    let _late = Daemon::start_in(dir, Setup::modules(&["basic"]));
    let client = waiting.join().unwrap().unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"x").unwrap(), b"x");
}

#[test]
fn calls_with_timeouts_and_deadlines_too_far_to_reach_run_as_calls_without_one() {
    let daemon = Daemon::start(Setup::modules(&["async_echo"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let echo = client.module("async_echo").unwrap();
    let time_left = client.typed::<(), Option<u64>>(echo, "time_left").unwrap();

    // The latest deadline an instant can hold (a runtime's default timeout does not
    // replace it): the module sees centuries left.
    let unbounded = CallOptions::default().timeout(Duration::MAX);
    let left = time_left.call_with(&(), &unbounded).unwrap();
    assert!(
        left.is_some_and(|ms| ms > 1000 * 86_400 * 365),
        "{left:?} ms left"
    );
    let reply = client
        .call_with(echo, "echo_after", b"\x92\x00\xc4\x01z", &unbounded)
        .unwrap();
    assert_eq!(&*reply, b"z");

    // An instant centuries ahead: the call runs, and sees a long time left.
    let far = Instant::now()
        .checked_add(Duration::from_secs(u64::MAX >> 2))
        .expect("an instant far ahead");
    let options = CallOptions::default().deadline(far);
    let left = time_left.call_with(&(), &options).unwrap();
    assert!(
        left.is_none_or(|ms| ms > 1000 * 86_400 * 365),
        "{left:?} ms left"
    );
    let reply = client
        .call_with(echo, "echo_after", b"\x92\x00\xc4\x01z", &options)
        .unwrap();
    assert_eq!(&*reply, b"z");
    let mut batch = client.batch().options(options);
    batch
        .push(echo, "echo_after", b"\x92\x00\xc4\x01z")
        .unwrap();
    for result in batch.run() {
        assert_eq!(&*result.unwrap(), b"z");
    }
}

#[test]
fn a_spin_too_long_still_notices_a_daemon_that_died() {
    let daemon = Daemon::start(Setup::modules(&["async_echo"]));
    let config = ClientConfig::default()
        .spin(Duration::MAX)
        .reconnect_timeout(Duration::from_millis(100));
    let client = Client::with_config(&daemon.socket, config).unwrap();
    let echo = client.module("async_echo").unwrap();
    let calling = std::thread::spawn(move || {
        let started = Instant::now();
        // Sleeps a minute: only the daemon's death ends it sooner.
        let result = client.call(echo, "echo_after", b"\x92\xcd\xea\x60\xc4\x00");
        (result.map(|r| r.to_vec()), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(daemon);
    let (result, took) = calling.join().unwrap();
    assert!(
        matches!(result, Err(RuntimeError::DaemonGone { .. })),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(10), "noticed after {took:?}");
}

#[test]
fn settings_no_connection_can_have_are_refused_naming_the_setting() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let cases = [
        (
            ClientConfig::default().slots(0),
            "ClientConfig::slots",
            "0 slots",
        ),
        (
            ClientConfig::default().slots(65),
            "ClientConfig::slots",
            "65 slots",
        ),
        (
            ClientConfig::default().slot_size(0),
            "ClientConfig::slot_size",
            "0 bytes",
        ),
        (
            ClientConfig::default().slot_size(u64::MAX),
            "ClientConfig::slot_size",
            "18446744073709551615 bytes",
        ),
    ];
    for (config, setting, value) in cases {
        let e = Client::with_config(&daemon.socket, config).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, RuntimeError::BadSetting { .. }), "{text}");
        assert!(text.contains(setting), "{text}");
        assert!(text.contains(value), "{text}");
        assert!(!text.contains("daemon"), "no daemon saw it: {text}");
    }
    // The bounds themselves serve.
    for config in [
        ClientConfig::default().slots(1).slot_size(1),
        ClientConfig::default().slots(64),
    ] {
        let client = Client::with_config(&daemon.socket, config).unwrap();
        let basic = client.module("basic").unwrap();
        let sum: u32 = client.call_typed(basic, "add", &(2u32, 3u32)).unwrap();
        assert_eq!(sum, 5);
    }
}

/// The worker is still the process `worker`, and the watchdog ended none for a call
/// past its deadline.
fn assert_the_worker_lived(daemon: &Daemon, worker: i32) {
    assert_eq!(daemon.worker_pid(), worker, "{}", daemon.log_text());
    assert!(
        !daemon.log_text().contains("past its deadline"),
        "{}",
        daemon.log_text()
    );
}

/// A client the daemon does not trust has its arguments copied before its call starts:
/// a copy that outlasts the call's deadline (four slots of 250 MiB at once, and 2 ms)
/// refuses the call, and is never counted against it by the watchdog. Before, the call
/// was listed first, and the watchdog ended the worker for calls that never ran, failing
/// the innocent call running meanwhile.
#[test]
fn untrusted_copies_that_outlast_their_deadline_never_end_the_worker() {
    let daemon = Daemon::start(Setup {
        toml: "trust = \"nobody\"".into(),
        ..Setup::modules(&["basic", "hazards"])
    });
    let worker = daemon.worker_pid();
    let conns: Vec<_> = (0..4)
        .map(|_| raw_connection(&daemon, 1, 250 << 20))
        .collect();
    let innocent = Client::connect(&daemon.socket).unwrap();
    let hazards = innocent.module("hazards").unwrap();
    std::thread::scope(|s| {
        let held = s.spawn(|| innocent.call_typed::<_, u64>(hazards, "hold", &(1500u64,)));
        let deadline = memlink_ipc::clock::now_ns() + 2_000_000;
        let copies: Vec<_> = conns
            .iter()
            .map(|(_, segment)| {
                s.spawn(move || {
                    let all = segment.slot(0).unwrap().capacity();
                    raw_request_by(segment, Op::Call, "basic", "echo", all, deadline)
                })
            })
            .collect();
        for copy in copies {
            let failure = copy.join().unwrap().unwrap_err();
            let timeout = memlink_abi::Status::Timeout as i32;
            assert!(
                matches!(failure, Failure::Module { code, .. } if code == timeout),
                "{failure}"
            );
        }
        let held = held.join().unwrap();
        assert_eq!(held.ok(), Some(1500), "{}", daemon.log_text());
    });
    assert_the_worker_lived(&daemon, worker);
}

#[test]
fn calls_already_past_their_deadline_are_refused_without_ending_the_worker() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let worker = daemon.worker_pid();
    let innocent = Client::connect(&daemon.socket).unwrap();
    let careless = Client::connect(&daemon.socket).unwrap();
    let hazards = careless.module("hazards").unwrap();
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            innocent.call_typed::<_, u64>(innocent.module("hazards")?, "hold", &(1500u64,))
        });
        // Calls whose deadline passed a second ago, back to back while the innocent
        // client's call runs: before the fix the watchdog, seeing them listed with that
        // deadline, ended the worker and failed the innocent call too.
        let until = Instant::now() + Duration::from_secs(20);
        let mut refused = 0;
        while !held.is_finished() && Instant::now() < until {
            let late = CallOptions::default().deadline(Instant::now() - Duration::from_secs(1));
            let e = careless
                .call_with(hazards, "count", b"", &late)
                .unwrap_err();
            assert!(
                matches!(e.module_error(), Some(ModuleError::Timeout(_))),
                "{e}"
            );
            refused += 1;
        }
        assert!(refused > 0);
        let held = held.join().unwrap();
        assert!(
            held.is_ok(),
            "the innocent call: {held:?}\n{}",
            daemon.log_text()
        );
    });
    assert_the_worker_lived(&daemon, worker);
    // A raw deadline 1 ns after boot, long past: refused, and the worker lives on.
    let (_stream, segment) = raw_connection(&daemon, 1, 4096);
    for _ in 0..200 {
        let failure = raw_request_by(&segment, Op::Call, "hazards", "count", 0, 1).unwrap_err();
        assert!(matches!(failure, Failure::Module { .. }), "{failure}");
    }
    assert_the_worker_lived(&daemon, worker);
}

#[test]
fn a_malformed_version_requirement_is_named_as_such() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let (_stream, segment) = raw_connection(&daemon, 1, 4096);
    for op in [Op::Call, Op::Methods, Op::Backpressure] {
        for name in ["basic@>>1", "basic@@", "a@b@c"] {
            let failure = raw_request(&segment, op, name, "noop", 0).unwrap_err();
            let text = failure.to_string();
            assert!(
                matches!(failure, Failure::BadRequest(_)),
                "{op:?} {name}: {text}"
            );
            assert!(text.contains(&format!("`{name}`")), "{text}");
            assert!(text.contains("not a semver requirement"), "{text}");
        }
        // A requirement that is well formed but matches nothing names the module as unknown.
        let failure = raw_request(&segment, op, "basic@99", "noop", 0).unwrap_err();
        assert_eq!(failure, Failure::UnknownModule("basic@99".into()));
    }
    let client = Client::connect(&daemon.socket).unwrap();
    let e = client.module("basic@>>1").unwrap_err();
    assert!(e.to_string().contains("not a semver requirement"), "{e}");
    let basic = client.module("basic").unwrap();
    client.call(basic, "noop", b"").unwrap();
}

/// Kibibytes of `field` (`RssAnon`, `VmSize`) in `/proc/PID/status`.
fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Between calls, the worker keeps one large copy for the next large call, whichever
/// connection makes it, not one per connection.
#[test]
fn an_untrusted_clients_large_arguments_cost_the_worker_one_copy_not_one_per_connection() {
    let daemon = Daemon::start(Setup {
        toml: "trust = \"nobody\"".into(),
        ..Setup::modules(&["basic"])
    });
    let worker = daemon.worker_pid();
    let conns: Vec<_> = (0..3)
        .map(|_| raw_connection(&daemon, 1, 64 << 20))
        .collect();
    // A first small call each, so the connections' threads exist before the measure.
    for (_, segment) in &conns {
        raw_request(segment, Op::Call, "basic", "noop", 0).unwrap();
    }
    let before = status_kib(worker, "RssAnon");
    for (_, segment) in &conns {
        // Arguments the whole slot long (zeros, never written: they cost the client
        // nothing), copied into the worker's memory: not a valid argument list.
        let capacity = segment.slot(0).unwrap().capacity();
        let failure = raw_request(segment, Op::Call, "basic", "echo", capacity).unwrap_err();
        assert!(matches!(failure, Failure::Module { .. }), "{failure}");
    }
    let after = status_kib(worker, "RssAnon");
    // Before, each connection kept its copy: 192 MiB more for as long as they lived.
    assert!(
        after < before + (64 << 10) + (16 << 10),
        "the worker kept {} KiB after the calls",
        after.saturating_sub(before)
    );
    for (_, segment) in &conns {
        raw_request(segment, Op::Call, "basic", "noop", 0).unwrap();
    }
}

#[test]
fn an_untrusted_copy_the_worker_has_no_memory_for_fails_its_call_alone() {
    // The worker's address space holds a segment of one 1 GiB slot, with 768 MiB to spare
    // (its code, threads and heap need far less), not a copy of that slot besides.
    let limit: u64 = (1 << 30) + (768 << 20);
    let daemon = Daemon::start(Setup {
        toml: format!(
            "trust = \"nobody\"\nmax_shm_per_client = {}\n[limits]\nmemory_bytes = {limit}",
            2u64 << 30
        ),
        ..Setup::modules(&["basic"])
    });
    let worker = daemon.worker_pid();
    let (_stream, segment) = raw_connection(&daemon, 1, 1 << 30);
    let capacity = segment.slot(0).unwrap().capacity();
    // Before the fix the worker aborted ("memory allocation ... failed") and the call
    // failed with `WorkerDied`, with every other call the worker ran.
    let failure = raw_request(&segment, Op::Call, "basic", "echo", capacity).unwrap_err();
    let text = failure.to_string();
    assert!(matches!(failure, Failure::Other(_)), "{text}");
    assert!(
        text.contains(&format!(
            "no memory for a private copy of the call's {capacity} bytes"
        )),
        "{text}"
    );
    // The worker serves on: the same connection, and another.
    raw_request(&segment, Op::Call, "basic", "noop", 0).unwrap();
    let client = Client::with_config(&daemon.socket, ClientConfig::default().slots(2)).unwrap();
    let basic = client.module("basic").unwrap();
    let sum: u32 = client.call_typed(basic, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
    assert_eq!(daemon.worker_pid(), worker, "{}", daemon.log_text());
}

/// A call's deadline bounds its wait for a daemon that went away, however long the
/// client may try to reconnect: when what listens at the path now never welcomes it (a
/// daemon starting, or stopped), it fails with its `Timeout`, and so does a typed call
/// (with nothing listening it is `DaemonGone`:
/// `faults.rs::calls_to_a_killed_daemon_get_daemon_gone`). Before, the reconnect loop
/// never looked at the deadline: with no reconnect limit such a call waited for good,
/// and every other call queued behind its lock.
#[test]
fn a_calls_deadline_bounds_its_wait_for_a_daemon_that_went_away() {
    let mut daemon = Daemon::start(Setup::modules(&["basic"]));
    let config = ClientConfig::default().reconnect_timeout(Duration::MAX);
    let client = std::sync::Arc::new(Client::with_config(&daemon.socket, config).unwrap());
    let basic = client.module("basic").unwrap();
    let sum: u32 = client.call_typed(basic, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);

    let (tx, rx) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let calls = {
        let client = std::sync::Arc::clone(&client);
        std::thread::spawn(move || {
            // Resolved while the daemon serves, called once it is gone.
            let add = client.typed::<(u32, u32), u32>(basic, "add").unwrap();
            let _ = ready_tx.send(());
            let _ = go_rx.recv();
            // A timeout is a deadline from when it is set: each call has its own.
            let options = || CallOptions::default().timeout(Duration::from_millis(200));
            let by_name = client
                .call_with(basic, "echo", b"x", &options())
                .map(|_| ());
            let typed = add.call_with(&(2, 3), &options()).map(|_| ());
            let _ = tx.send((by_name, typed));
        })
    };
    ready_rx.recv().unwrap();
    daemon.terminate();
    // Something listens at the path again, and never answers.
    let _silent = std::os::unix::net::UnixListener::bind(&daemon.socket).unwrap();
    go_tx.send(()).unwrap();
    // Only a hang reaches this watchdog; it asserts nothing about speed.
    let (by_name, typed) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the calls ended at their deadline");
    calls.join().unwrap();
    // Each says the time it had when it was made. Before, that was read once the
    // reconnect had run the deadline out: none, which reads as a deadline passed before
    // the call was made.
    for (what, result) in [("by name", by_name), ("typed", typed)] {
        let err = result.unwrap_err();
        assert!(
            matches!(err.module_error(), Some(ModuleError::Timeout(t)) if *t <= Duration::from_millis(200) && !t.is_zero()),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains("timed out (it was given "),
            "{what}: {err}"
        );
    }
}

/// A client that names a module differently in each request (the same module, under
/// version requirements without end) costs the worker no memory that grows with the
/// names. Before, the connection's thread kept each name it had looked up for as long as
/// the connection lasted: 200 000 such requests grew the worker by tens of MiB, and a
/// client going on took every worker process's memory.
#[test]
fn module_names_a_client_makes_up_cost_the_worker_no_memory_that_grows_with_them() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let worker = daemon.worker_pid();
    let (_stream, segment) = raw_connection(&daemon, 1, 4096);
    raw_request(&segment, Op::Backpressure, "basic@>=0.0.0", "", 0).unwrap();
    let before = status_kib(worker, "RssAnon");
    for n in 0..200_000u64 {
        let name = format!("basic@<1000000.0.{n}");
        raw_request(&segment, Op::Backpressure, &name, "", 0).unwrap();
    }
    let grown = status_kib(worker, "RssAnon").saturating_sub(before);
    assert!(grown < 8 * 1024, "the worker grew by {grown} KiB");
    raw_request(&segment, Op::Backpressure, "basic", "", 0).unwrap();
}
