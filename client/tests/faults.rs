//! Bad input and faults against a real daemon and real client processes: each ends in a
//! named error or a clean recovery, nothing hangs past its deadline, and other clients
//! keep being served.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{memlink, raw_welcome, signal, submit_hold, Daemon, Setup};
use memlink_client::{CallOptions, Client, ClientConfig, ModuleError, RemoteModule, RuntimeError};
use memlink_ipc::control::{self, Answer, Hello};
use memlink_ipc::slot::{Op, SlotState, Submit, Waited};
use memlink_ipc::{Failure, Geometry, Segment};
use rustix::process::Signal;

/// The daemon still serves: a call with a one-second deadline succeeds.
fn still_serving(daemon: &Daemon) {
    let client = Client::connect(&daemon.socket).unwrap();
    let name = client.modules().unwrap()[0].clone();
    let m = client.module(&name).unwrap();
    let options = CallOptions::default().timeout(Duration::from_secs(1));
    match name.as_str() {
        "zero_copy" => {
            let sum = client
                .typed::<(Vec<u8>, u64), u64>(m, "checksum_msgpack")
                .unwrap();
            sum.call_with(&(vec![1, 2, 3], 0), &options).unwrap();
        }
        "hazards" => drop(client.call_with(m, "count", b"", &options).unwrap()),
        _ => drop(client.call_with(m, "noop", b"", &options).unwrap()),
    }
}

/// A hand-made connection: the handshake done with the protocol's own messages, the
/// segment mapped, nothing of the client library in the way.
fn raw_connection(daemon: &Daemon) -> (UnixStream, Segment, bool) {
    let (stream, segment, welcome) = raw_welcome(daemon);
    (stream, segment, welcome.in_place)
}

fn ring(segment: &Segment) {
    segment.header().ring_all();
}

#[test]
fn garbage_on_the_socket_is_refused_and_others_are_served() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &u32::MAX.to_le_bytes()[..],
        &[5, 0, 0, 0, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1][..],
    ] {
        let mut stream = UnixStream::connect(&daemon.socket).unwrap();
        stream.write_all(garbage).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        // The daemon answers with a refusal and hangs up (a reset, when our garbage is
        // still unread): the read ends either way, before its timeout.
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
    daemon.wait_log("connection refused: bad hello");
    still_serving(&daemon);
    // A hello of another protocol version is refused with a reason, and what to do.
    let stream = UnixStream::connect(&daemon.socket).unwrap();
    let geometry = Geometry::new(1, 4096).unwrap();
    control::send(
        &stream,
        &Hello {
            version: 999,
            geometry,
        },
        None,
    )
    .unwrap();
    let (answer, _) = control::recv::<Answer>(&stream).unwrap();
    assert!(
        matches!(answer, Answer::Refused(ref why) if why.contains("protocol 999")
            && why.contains("use a client of the daemon's memlink version")),
        "{answer:?}"
    );
    // A hello that hands the daemon a descriptor (here, the client's own socket) is
    // refused: a client gives the daemon bytes only.
    let stream = UnixStream::connect(&daemon.socket).unwrap();
    let hello = Hello {
        version: memlink_ipc::PROTOCOL_VERSION,
        geometry,
    };
    control::send(&stream, &hello, Some(std::os::fd::AsFd::as_fd(&stream))).unwrap();
    let (answer, fd) = control::recv::<Answer>(&stream).unwrap();
    assert!(
        matches!(answer, Answer::Refused(ref why) if why.contains("a hello with a descriptor")),
        "{answer:?}"
    );
    assert!(fd.is_none(), "no segment for a refused client");
    still_serving(&daemon);
}

#[test]
fn a_slot_pointing_outside_the_segment_gets_an_error_that_says_so() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let (_stream, segment, _) = raw_connection(&daemon);
    let slot = segment.slot(0).unwrap();
    let submit = Submit {
        op: Op::Call,
        module: "basic",
        method: "echo",
        args_len: 4,
        deadline_ns: 0,
        trace_id: 0,
        span_id: 0,
        checked: 0,
    };
    // Arguments past the slot's end, then names longer than a name may be or not UTF-8,
    // then an op that does not exist: each refused, and the slot completed.
    let scribbles: [(&str, &dyn Fn()); 5] = [
        ("arguments of 18446744073709551615 bytes", &|| {
            slot.fields().args_len.store(u64::MAX, Ordering::SeqCst)
        }),
        ("module name: 4096 bytes", &|| {
            slot.fields().module_len.store(4096, Ordering::SeqCst)
        }),
        // 0xff starts no UTF-8 sequence.
        ("module name: not UTF-8", &|| {
            slot.fields().names[0].store(0xff, Ordering::SeqCst)
        }),
        ("method name: not UTF-8", &|| {
            let words = &slot.fields().names;
            words[words.len() / 2].store(0xff, Ordering::SeqCst)
        }),
        ("unknown op 9", &|| {
            slot.fields().op.store(9, Ordering::SeqCst)
        }),
    ];
    for (said, scribble) in scribbles {
        // Written without being published: the worker, still spinning after the last
        // reply, must not take the request before it is scribbled on.
        slot.prepare(&submit);
        scribble();
        slot.fields()
            .state
            .store(SlotState::Submitted as u32, Ordering::SeqCst);
        ring(&segment);
        let d = Some(Instant::now() + Duration::from_secs(10));
        let waited = slot.wait_done(d, Duration::ZERO, Duration::from_millis(20), || true);
        assert_eq!(waited, Waited::Done);
        let failure = slot.reply().unwrap_err();
        assert!(matches!(failure, Failure::BadRequest(_)), "{failure:?}");
        assert!(failure.to_string().contains(said), "{failure}");
    }
    // A state no side writes is left alone; the other slot is still served.
    slot.fields().state.store(99, Ordering::SeqCst);
    let other = segment.slot(1).unwrap();
    other.write_data(0, b"fine");
    other.submit(&submit);
    ring(&segment);
    let d = Some(Instant::now() + Duration::from_secs(10));
    assert_eq!(
        other.wait_done(d, Duration::ZERO, Duration::from_millis(20), || true),
        Waited::Done
    );
    let range = other.reply().unwrap();
    // SAFETY: the slot is done and this test is the only one touching it.
    assert_eq!(unsafe { other.data_at(range) }, b"fine");
    still_serving(&daemon);
}

/// The worker reads a request's fields once: a client that rewrites the length of its
/// arguments while its call runs does not move where the reply goes, which the worker
/// decides by the length it read (after the arguments, 64-aligned). Before, the worker
/// read the length again to place the reply.
#[test]
fn a_length_rewritten_mid_call_does_not_move_the_reply() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let (_stream, segment, _) = raw_connection(&daemon);
    submit_hold(&segment, 1000, Duration::from_secs(10));
    daemon.wait_log("holding");
    let slot = segment.slot(0).unwrap();
    // A length after which no reply fits: placed by it, the reply would go to 0.
    slot.fields()
        .args_len
        .store(slot.capacity() as u64, Ordering::SeqCst);
    let d = Some(Instant::now() + Duration::from_secs(10));
    let waited = slot.wait_done(d, Duration::ZERO, Duration::from_millis(20), || true);
    assert_eq!(waited, Waited::Done);
    let range = slot.reply().unwrap();
    assert_eq!(range.start, 64, "after the arguments the worker read");
    // SAFETY: the slot is done and this test is the only one touching it.
    let held: u64 = rmp_serde::from_slice(unsafe { slot.data_at(range) }).unwrap();
    assert_eq!(held, 1000);
}

#[test]
fn a_client_that_dies_mid_call_costs_nobody_else() {
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["hazards"])
    });
    let other = Client::connect(&daemon.socket).unwrap();
    let hazards = other.module("hazards").unwrap();
    let mut doomed = Command::new(memlink())
        .args(["call", "--daemon"])
        .arg(&daemon.socket)
        .args(["hazards", "hold", "1500"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The module's log record, aggregated by the daemon, says the call is running.
    daemon.wait_log("holding");
    signal(doomed.id() as i32, Signal::KILL);
    let _ = doomed.wait();
    let options = CallOptions::default().timeout(Duration::from_secs(5));
    let count = other.call_with(hazards, "count", b"", &options).unwrap();
    assert!(!count.is_empty());
    // The dead client's connection is let go.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = daemon.http_get("/metrics");
        if body.contains("memlink_daemon_connections 1\n") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the dead client's connection stays:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_that_rewrites_its_arguments_during_calls_cannot_harm_the_daemon() {
    let daemon = Daemon::start(Setup {
        extra: vec!["--trust".into(), "nobody".into()],
        ..Setup::modules(&["zero_copy"])
    });
    let worker = daemon.worker_pid();
    let (_stream, segment, in_place) = raw_connection(&daemon);
    assert!(!in_place, "--trust nobody: arguments are copied");
    let segment = Arc::new(segment);
    let a = rkyv::to_bytes::<rkyv::rancor::Error>(&(vec![1u8; 1000],)).unwrap();
    let b = rkyv::to_bytes::<rkyv::rancor::Error>(&(vec![2u8; 1000],)).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scribbler = {
        let (segment, stop, b) = (Arc::clone(&segment), Arc::clone(&stop), b.to_vec());
        std::thread::spawn(move || {
            let slot = segment.slot(0).unwrap();
            let mut flip = 0u8;
            while !stop.load(Ordering::Relaxed) {
                // The other archive, then bytes that are no archive at all.
                slot.write_data(0, &b);
                flip = flip.wrapping_add(37);
                slot.write_data(flip as usize % 900, &[flip; 64]);
            }
        })
    };
    let slot = segment.slot(0).unwrap();
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..300 {
        slot.write_data(0, &a);
        slot.submit(&Submit {
            op: Op::Call,
            module: "zero_copy",
            method: "checksum",
            args_len: a.len(),
            deadline_ns: 0,
            trace_id: 0,
            span_id: 0,
            checked: 0,
        });
        ring(&segment);
        let d = Some(Instant::now() + Duration::from_secs(10));
        assert_eq!(
            slot.wait_done(d, Duration::ZERO, Duration::from_millis(20), || true),
            Waited::Done
        );
        match slot.reply() {
            Ok(_) => ok += 1,
            Err(Failure::Module { code, payload, .. }) => {
                let e = ModuleError::from_status(code, &payload);
                assert!(matches!(e, ModuleError::Serialize(_)), "{e}");
                refused += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().unwrap();
    assert_eq!(ok + refused, 300);
    assert_eq!(daemon.worker_pid(), worker, "the worker never died");
    still_serving(&daemon);
}

#[test]
fn a_worker_killed_mid_call_fails_the_call_with_the_signal_and_is_replaced() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let worker = daemon.worker_pid();
    let caller = std::thread::scope(|s| {
        let call = s.spawn(|| client.call_typed::<_, u64>(hazards, "hold", &(10_000u64,)));
        daemon.wait_log("holding");
        signal(worker, Signal::KILL);
        call.join().unwrap()
    });
    let err = caller.unwrap_err();
    assert!(
        matches!(err, RuntimeError::WorkerDied { ref reason } if reason.contains("signal 9 (SIGKILL)")),
        "{err}"
    );
    // The next call succeeds within a second, on a new worker, on the same connection.
    let options = CallOptions::default().timeout(Duration::from_secs(1));
    client.call_with(hazards, "count", b"", &options).unwrap();
    assert_ne!(daemon.worker_pid(), worker);
}

#[test]
fn a_module_that_aborts_costs_its_worker_and_the_message_is_kept() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let err = client.call(hazards, "abort_in_drop", b"").unwrap_err();
    assert!(
        matches!(err, RuntimeError::WorkerDied { ref reason } if reason.contains("SIGABRT")),
        "{err}"
    );
    daemon.wait_log("the first panic of abort_in_drop");
    let options = CallOptions::default().timeout(Duration::from_secs(1));
    client.call_with(hazards, "count", b"", &options).unwrap();
}

#[test]
fn a_call_that_never_returns_is_ended_by_the_watchdog() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let worker = daemon.worker_pid();
    let options = CallOptions::default().timeout(Duration::from_millis(100));
    let hold = client.typed::<(u64,), u64>(hazards, "hold").unwrap();
    let err = hold.call_with(&(60_000,), &options).unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "{err}"
    );
    daemon.wait_log("past its deadline");
    let options = CallOptions::default().timeout(Duration::from_secs(1));
    client.call_with(hazards, "count", b"", &options).unwrap();
    assert_ne!(daemon.worker_pid(), worker, "the stuck worker was replaced");
}

/// A call made without a deadline gets its module's own default timeout (set per
/// module in the daemon's file), and the watchdog holds it to that.
#[test]
fn a_module_default_timeout_holds_a_call_made_without_a_deadline() {
    let toml = format!(
        "[[modules]]\npath = {:?}\ndefault_timeout_ms = 100\nmax_concurrency = 2\n",
        common::module_path("hazards").to_str().unwrap()
    );
    let daemon = Daemon::start(Setup {
        toml,
        ..Setup::default()
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let worker = daemon.worker_pid();
    let hold = client.typed::<(u64,), u64>(hazards, "hold").unwrap();
    let err = hold.call(&(60_000,)).unwrap_err();
    // The client had no deadline to time out at, so it learns what the watchdog did.
    ended_by_the_watchdog(&daemon, &client, hazards, worker, &err);
}

/// `err` is what a client got of a call the watchdog ended, past its deadline, in the
/// worker `worker`, which the daemon's log says, and a new worker serves `hazards` since.
fn ended_by_the_watchdog(
    daemon: &Daemon,
    client: &Client,
    hazards: RemoteModule,
    worker: i32,
    err: &RuntimeError,
) {
    assert!(
        matches!(err, RuntimeError::WorkerDied { reason } if reason.contains("past its deadline")),
        "{err}"
    );
    daemon.wait_log("past its deadline");
    client.call(hazards, "count", b"").unwrap();
    assert_ne!(daemon.worker_pid(), worker, "the stuck worker was replaced");
}

/// A module's `max_call_ms` holds a call whose client asks for a deadline an hour away:
/// the watchdog ends the worker stuck in it at the limit (plus its grace), as it would a
/// call that asked for that deadline itself, and a replacement serves the next call. A
/// shorter deadline the client asks for is kept.
#[test]
fn a_module_max_call_time_holds_a_call_whose_client_asks_for_more() {
    let toml = format!(
        "[[modules]]\npath = {:?}\nmax_call_ms = 100\nmax_concurrency = 2\n\
         [[modules]]\npath = {:?}\nmax_call_ms = 100\n",
        common::module_path("hazards").to_str().unwrap(),
        common::module_path("async_echo").to_str().unwrap(),
    );
    let daemon = Daemon::start(Setup {
        toml,
        ..Setup::default()
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let hour = CallOptions::default().timeout(Duration::from_secs(3600));
    let echo = client.module("async_echo").unwrap();
    let time_left = client.typed::<(), Option<u64>>(echo, "time_left").unwrap();
    let left = time_left.call_with(&(), &hour).unwrap();
    assert!(left.is_some_and(|ms| ms <= 100), "{left:?}");
    let left = time_left.call(&()).unwrap();
    assert!(left.is_some_and(|ms| ms <= 100), "none asked: {left:?}");
    let soon = CallOptions::default().timeout(Duration::from_millis(20));
    let left = time_left.call_with(&(), &soon).unwrap();
    assert!(left.is_some_and(|ms| ms <= 20), "kept: {left:?}");

    let hazards = client.module("hazards").unwrap();
    let worker = daemon.worker_pid();
    let err = client
        .call_with(
            hazards,
            "hold",
            &rmp_serde::to_vec(&(60_000u64,)).unwrap(),
            &hour,
        )
        .unwrap_err();
    ended_by_the_watchdog(&daemon, &client, hazards, worker, &err);
}

/// `memlink call --daemon --timeout` ends at its timeout when the worker does not answer
/// (stopped here with `SIGSTOP`), saying so. Before, the method list it asks for first
/// was asked with no deadline, and the command waited for as long as the worker was
/// stopped.
#[test]
fn a_cli_call_with_a_timeout_ends_when_the_worker_does_not_answer() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let worker = daemon.worker_pid();
    signal(worker, Signal::STOP);
    let mut cli = Command::new(memlink())
        .args(["call", "--daemon"])
        .arg(&daemon.socket)
        .args(["--timeout", "300ms", "basic", "add", "[1, 2]"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Up to 30 s of 10 ms waits, far past the timeout.
    let status = (0..3000).find_map(|_| match cli.try_wait() {
        Ok(Some(status)) => Some(status),
        _ => {
            std::thread::sleep(Duration::from_millis(10));
            None
        }
    });
    signal(worker, Signal::CONT);
    let Some(status) = status else {
        let _ = cli.kill();
        panic!("the command was still waiting for the stopped worker");
    };
    let out = cli.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("did not describe module `basic` within 300ms"),
        "{stderr}"
    );
}

#[test]
fn a_daemon_restarted_under_a_connected_client_is_reconnected_to() {
    let mut daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(
        client
            .call_typed::<_, u32>(basic, "add", &(1u32, 1u32))
            .unwrap(),
        2
    );
    assert!(
        daemon.terminate().success(),
        "SIGTERM ends the daemon with status 0"
    );
    let dir = std::mem::replace(&mut daemon.dir, common::scratch_dir());
    let _again = Daemon::start_in(dir, Setup::modules(&["basic"]));
    assert_eq!(
        client
            .call_typed::<_, u32>(basic, "add", &(2u32, 2u32))
            .unwrap(),
        4
    );
}

#[test]
fn a_call_in_flight_when_the_daemon_is_killed_gets_daemon_gone() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let worker = daemon.worker_pid();
    let result = std::thread::scope(|s| {
        let call = s.spawn(|| {
            let options = CallOptions::default().timeout(Duration::from_secs(8));
            client
                .typed::<(u64,), u64>(hazards, "hold")
                .unwrap()
                .call_with(&(5_000,), &options)
        });
        daemon.wait_log("holding");
        signal(daemon.pid(), Signal::KILL);
        call.join().unwrap()
    });
    let err = result.unwrap_err();
    assert!(matches!(err, RuntimeError::DaemonGone { .. }), "{err}");
    // The orphaned worker notices its supervisor is gone and exits after its call.
    assert!(
        ended_within(worker, Duration::from_secs(20)),
        "the worker outlived its supervisor"
    );
}

/// Calls made once the daemon is killed: to its worker, which drains as an orphan and
/// refuses them, and, with a deadline shorter than the reconnect timeout, to a path where
/// nothing listens any more. Both are `DaemonGone`. Before, the first was "the daemon is
/// shutting down" (`RuntimeError::Daemon`), as if it had been stopped, and the second
/// the module's own `Timeout`.
#[test]
fn calls_to_a_killed_daemon_get_daemon_gone() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let hold = client.typed::<(u64,), u64>(hazards, "hold").unwrap();
    let worker = daemon.worker_pid();
    let _reaped = KillOnDrop(worker);
    // A deadline half a second from the call.
    let short = || CallOptions::default().timeout(Duration::from_millis(500));
    std::thread::scope(|s| {
        // A call in flight keeps the orphan draining.
        s.spawn(|| {
            hold.call_with(
                &(5_000,),
                &CallOptions::default().timeout(Duration::from_secs(8)),
            )
        });
        daemon.wait_log("holding");
        signal(daemon.pid(), Signal::KILL);
        let until = Instant::now() + Duration::from_secs(10);
        let err = loop {
            // The worker may not have seen its supervisor go yet: then the call runs, or
            // waits for its deadline in a slot nobody refuses.
            match hold.call_with(&(1,), &short()) {
                Ok(_) | Err(RuntimeError::Call { .. }) if Instant::now() < until => {}
                Ok(n) => panic!("the call still ran: {n}"),
                Err(err) => break err,
            }
        };
        assert!(matches!(err, RuntimeError::DaemonGone { .. }), "{err}");
    });
    assert!(ended_within(worker, Duration::from_secs(20)));
    let err = hold.call_with(&(1,), &short()).unwrap_err();
    assert!(matches!(err, RuntimeError::DaemonGone { .. }), "{err}");
    assert!(err.to_string().contains("Connection refused"), "{err}");
}

/// Whether process `pid` ends (is gone, or a zombie) within `within`.
fn ended_within(pid: i32, within: Duration) -> bool {
    let until = Instant::now() + within;
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Kills the process when dropped: a worker orphaned by a test outlives the `Daemon`,
/// which kills only its own children.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        signal(self.0, Signal::KILL);
    }
}

/// The daemon is SIGKILLed while its worker runs a call that never returns, on a
/// connection of each kind of deadline: with none, nothing but the worker itself ends
/// the orphan (its supervisor's watchdog is gone); with one, the orphan holds the call
/// to it as the watchdog did. Before, it waited for the call for good.
#[test]
fn a_worker_orphaned_in_a_call_that_never_returns_still_ends() {
    for deadline in [None, Some(Duration::from_millis(300))] {
        let daemon = Daemon::start(Setup::modules(&["hazards"]));
        let worker = daemon.worker_pid();
        let _reaped = KillOnDrop(worker);
        let (_stream, segment, _) = raw_welcome(&daemon);
        submit_hold(&segment, 3_600_000, deadline);
        daemon.wait_log("holding");
        signal(daemon.pid(), Signal::KILL);
        assert!(
            ended_within(worker, Duration::from_secs(60)),
            "the orphaned worker still runs its call (deadline {deadline:?})"
        );
    }
}

/// A call whose deadline is years away, which a client may send, does not keep an
/// orphaned worker alive any longer than a call without one: both are held to the
/// orphan's drain. Before, only a call without a deadline was, and one with a deadline a
/// century away kept the orphan for that century.
#[test]
fn a_worker_orphaned_in_a_call_whose_deadline_is_years_away_still_ends() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let worker = daemon.worker_pid();
    let _reaped = KillOnDrop(worker);
    let (_stream, segment, _) = raw_welcome(&daemon);
    let century = Duration::from_secs(100 * 365 * 86_400);
    submit_hold(&segment, 3_600_000, century);
    daemon.wait_log("holding");
    signal(daemon.pid(), Signal::KILL);
    assert!(
        ended_within(worker, Duration::from_secs(60)),
        "the orphaned worker still runs its call"
    );
}

/// The daemon is told to stop (SIGTERM) while its worker runs a call that never returns,
/// then killed before the drain ends (as a stop script or a service manager may do): the
/// orphan still ends, within its drain's bound. Before, a worker told to stop no longer
/// read its supervisor's socket, never learnt that it was gone, and drained the call for
/// good.
#[test]
fn a_worker_orphaned_while_it_stops_still_ends() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let worker = daemon.worker_pid();
    let _reaped = KillOnDrop(worker);
    let (_stream, segment, _) = raw_welcome(&daemon);
    submit_hold(&segment, 3_600_000, None);
    daemon.wait_log("holding");
    signal(daemon.pid(), Signal::TERM);
    daemon.wait_log("shutting down");
    signal(daemon.pid(), Signal::KILL);
    assert!(
        ended_within(worker, Duration::from_secs(60)),
        "the orphaned worker still drains its call"
    );
}

/// The daemon is killed while its worker loads a watched library whose constructor never
/// returns, found as the worker starts or once it serves: the orphan ends (nothing it
/// loads will ever be called; the second within a few seconds, not the 30 s an orphan
/// that stopped is given), and the last worker out removes the daemon's directory of
/// private copies, which the killed daemon could not. Before, it loaded for good,
/// outliving the daemons started after it, and the directory stayed with the copy.
#[test]
fn a_worker_orphaned_while_it_loads_ends() {
    for at_start in [true, false] {
        let dir = common::scratch_dir();
        let modules = dir.join("modules");
        std::fs::create_dir_all(&modules).unwrap();
        let hang = modules.join(format!("hang.{}", std::env::consts::DLL_EXTENSION));
        if at_start {
            std::fs::copy(common::module_path("hang_on_load"), &hang).unwrap();
        }
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let socket = dir.join("memlink.sock");
        let mut serve = std::process::Command::new(common::memlink())
            .env("TMPDIR", &tmp)
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .arg("--watch")
            .arg(&modules)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let worker = loop {
            if let Some(&pid) = common::children(serve.id() as i32).first() {
                break pid;
            }
            assert!(Instant::now() < until, "no worker started");
            std::thread::sleep(Duration::from_millis(10));
        };
        let _reaped = KillOnDrop(worker);
        if !at_start {
            // It serves (the socket answers), then the library comes.
            while Client::connect(&socket).is_err() {
                assert!(Instant::now() < until, "the daemon never served");
                std::thread::sleep(Duration::from_millis(10));
            }
            std::fs::copy(common::module_path("hang_on_load"), &hang).unwrap();
        }
        std::thread::sleep(Duration::from_millis(500));
        signal(serve.id() as i32, Signal::KILL);
        let _ = serve.wait();
        let within = if at_start { 30 } else { 20 };
        assert!(
            ended_within(worker, Duration::from_secs(within)),
            "the orphaned worker still loads (found at start: {at_start})"
        );
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
        assert!(left.is_empty(), "found at start: {at_start}: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn sigterm_finishes_the_calls_in_flight_then_exits_zero() {
    let mut daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let (result, status) = std::thread::scope(|s| {
        let call = s.spawn(|| client.call_typed::<_, u64>(hazards, "hold", &(400u64,)));
        daemon.wait_log("holding");
        let status = daemon.terminate();
        (call.join().unwrap(), status)
    });
    assert_eq!(result.unwrap(), 400);
    assert!(status.success(), "{status}");
    assert!(!daemon.socket.exists(), "the socket is removed");
}

#[test]
fn limits_refuse_clearly_and_the_socket_is_private() {
    let daemon = Daemon::start(Setup {
        toml: "max_connections = 2\nmax_shm_per_client = 1048576\n[limits]\nopen_files = 64\n"
            .into(),
        ..Setup::modules(&["basic"])
    });
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // A client asking for more than the limit is given what fits it (it was refused,
    // the default client too): its four slots, smaller, which serve what fits them.
    let big = ClientConfig::default().slots(4).slot_size(4 << 20);
    let cut = Client::with_config(&daemon.socket, big).unwrap();
    let basic = cut.module("basic").unwrap();
    assert_eq!(&*cut.call(basic, "echo", b"cut").unwrap(), b"cut");
    // Arguments no segment within the limit holds are refused, naming it.
    let err = cut.call(basic, "echo", &vec![7u8; 2 << 20]).unwrap_err();
    assert!(err.to_string().contains("at most 1048576 bytes"), "{err}");
    drop(cut);
    let default = Client::connect(&daemon.socket).unwrap();
    let basic = default.module("basic").unwrap();
    assert_eq!(
        &*default.call(basic, "echo", b"default").unwrap(),
        b"default"
    );
    drop(default);
    let small = || ClientConfig::default().slots(2).slot_size(64 << 10);
    let first = Client::with_config(&daemon.socket, small()).unwrap();
    let _second = Client::with_config(&daemon.socket, small()).unwrap();
    let err = Client::with_config(&daemon.socket, small()).unwrap_err();
    assert!(err.to_string().contains("limit of 2 connections"), "{err}");
    let basic = first.module("basic").unwrap();
    assert_eq!(&*first.call(basic, "echo", b"still").unwrap(), b"still");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.worker_pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(line.split_whitespace().nth(3), Some("64"), "{line}");
}

/// Connections that never say hello count against `max_connections` while the daemon
/// waits for their hello: past the limit a connection is refused at once, saying why,
/// instead of each taking a thread for the hello's timeout. Once they hang up, clients
/// are welcome again.
#[test]
fn silent_connections_count_against_the_limit_until_they_hang_up() {
    let daemon = Daemon::start(Setup {
        toml: "max_connections = 2\n".into(),
        ..Setup::modules(&["basic"])
    });
    let silent: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(&daemon.socket).unwrap())
        .collect();
    let err = Client::connect(&daemon.socket).unwrap_err();
    assert!(
        err.to_string()
            .contains("2 connections are still to say hello"),
        "{err}"
    );
    drop(silent);
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match Client::connect(&daemon.socket) {
            Ok(client) => break client,
            Err(e) if Instant::now() < deadline => {
                assert!(e.to_string().contains("still to say hello"), "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no client welcome after the silent ones left: {e}"),
        }
    };
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"again").unwrap(), b"again");
}

/// The socket's file removed under a serving daemon (by hand, by a cleaner of `/tmp`)
/// and another file put at its path: SIGTERM still stops the daemon, which leaves that
/// file alone. Before, nothing woke its accept loop: it stopped its worker and never
/// exited.
#[test]
fn sigterm_stops_a_daemon_whose_socket_file_was_removed_and_spares_what_replaced_it() {
    let mut daemon = Daemon::start(Setup::modules(&["hazards"]));
    std::fs::remove_file(&daemon.socket).unwrap();
    std::fs::write(&daemon.socket, "someone's file").unwrap();
    let status = daemon.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(
        std::fs::read_to_string(&daemon.socket).unwrap(),
        "someone's file"
    );
}

/// A socket left by a daemon that died (nothing accepts on it) is replaced by the next
/// daemon; a socket a daemon serves on is not: a second daemon refuses to start and the
/// first keeps serving.
#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_left_to_its_daemon() {
    let dir = common::scratch_dir();
    let stale = dir.join("memlink.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(
        UnixStream::connect(&stale).is_err(),
        "nothing accepts on it"
    );
    let daemon = Daemon::start_in(dir, Setup::modules(&["basic"]));
    still_serving(&daemon);

    let mut second = Command::new(memlink())
        .arg("serve")
        .arg("--socket")
        .arg(&daemon.socket)
        .arg(common::module_path("basic"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A second daemon that served instead of refusing would never exit: it is killed
    // after a minute, and the assertions below then fail.
    let deadline = Instant::now() + Duration::from_secs(60);
    while second.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = second.kill();
    let second = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "a daemon already serves on {}",
            daemon.socket.display()
        )),
        "{err}"
    );
    still_serving(&daemon);
}

/// A client that hangs up (or is killed) while its call runs takes nothing from the
/// watchdog: the call is still ended at its deadline and grace, blamed on that client's
/// connection, and a client connecting meanwhile is neither blamed nor kept waiting for
/// the module (one call at a time) longer than that.
#[test]
fn a_call_whose_client_hung_up_is_still_ended_by_the_watchdog_and_blamed_on_it() {
    let toml = format!(
        "[[modules]]\npath = {:?}\nmax_concurrency = 1\n",
        common::module_path("hazards").to_str().unwrap()
    );
    let daemon = Daemon::start(Setup {
        toml,
        metrics: true,
        ..Setup::default()
    });
    let worker = daemon.worker_pid();
    let (stream, segment, welcome) = raw_welcome(&daemon);
    submit_hold(&segment, 600_000, Duration::from_millis(300));
    daemon.wait_log("holding");
    drop((stream, segment));
    // Once the daemon let the connection go, another client connects and calls nothing.
    let until = Instant::now() + Duration::from_secs(10);
    while !daemon
        .http_get("/metrics")
        .1
        .contains("memlink_daemon_connections 0\n")
    {
        assert!(
            Instant::now() < until,
            "the connection stays after its hang-up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let innocent = Client::connect(&daemon.socket).unwrap();
    daemon.wait_log("past its deadline");
    let log = daemon.log_text();
    let blamed = format!("a call (connection {}, slot 0)", welcome.connection);
    assert!(log.contains(&blamed), "{log}");
    let hazards = innocent.module("hazards").unwrap();
    let options = CallOptions::default().timeout(Duration::from_secs(5));
    innocent.call_with(hazards, "count", b"", &options).unwrap();
    assert_ne!(daemon.worker_pid(), worker, "the stuck worker was replaced");
}

/// Arguments larger than the connection's slots need a new connection; one the daemon
/// refuses (at its limit of connections) is told as that growth's refusal, not as if this
/// client, connected and served, were refused. Before: "the daemon refused the
/// connection: the daemon holds its limit of 1 connections".
#[test]
fn arguments_past_the_slots_at_the_connection_limit_are_told_as_a_refused_growth() {
    let daemon = Daemon::start(Setup {
        toml: "max_connections = 1\n".into(),
        ..Setup::modules(&["basic"])
    });
    let client =
        Client::with_config(&daemon.socket, ClientConfig::default().slot_size(4096)).unwrap();
    let basic = client.module("basic").unwrap();
    let big = vec![7u8; 64 << 10];
    let err = client.call(basic, "echo", &big).unwrap_err().to_string();
    assert!(
        err.contains("65536 bytes need larger slots than this connection's 4096, which a new connection would have, and the daemon refused the connection"),
        "{err}"
    );
    let small = client.call(basic, "echo", b"small").unwrap();
    assert_eq!(&*small, b"small", "it serves on");
}

/// A hello trickled a byte at a time, each well within the hello's time, is cut off when
/// the whole hello's time is up: its place among the connections still to say hello
/// (here the only one) goes to the next client.
#[test]
fn a_hello_trickled_byte_by_byte_is_cut_off_when_its_time_is_up() {
    let daemon = Daemon::start(Setup {
        toml: "max_connections = 1\n".into(),
        ..Setup::modules(&["basic"])
    });
    let mut stream = UnixStream::connect(&daemon.socket).unwrap();
    stream.write_all(&1000u32.to_le_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    // A byte a second: 60 of them would hold the connection for a minute. The daemon
    // hangs up (after its refusal) well before.
    let mut buf = [0u8; 256];
    for _ in 0..60 {
        if stream.write_all(&[0x90]).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock) => continue,
            _ => break,
        }
    }
    daemon.wait_log("connection refused: bad hello: none complete within 5 s");
    still_serving(&daemon);
}

/// A connection the daemon cannot start a thread for (its address space limited here;
/// `RLIMIT_NPROC` or a pids cgroup do the same) is refused with the reason, and the
/// daemon serves on.
#[test]
fn a_connection_without_a_thread_is_refused_and_the_daemon_serves_on() {
    use rustix::process::{prlimit, Pid, Resource, Rlimit};
    let mut daemon = Daemon::start(Setup::modules(&["basic"]));
    still_serving(&daemon);
    let pid = Pid::from_raw(daemon.pid()).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    // Room for a few more threads' stacks (2 MiB each), not for 64.
    let limited = Rlimit {
        current: Some(vm_kib * 1024 + (16 << 20)),
        maximum: None,
    };
    prlimit(Some(pid), Resource::As, limited).unwrap();
    let mut silent = Vec::new();
    let refusal = loop {
        assert!(silent.len() < 64, "every connection got a thread");
        let stream = UnixStream::connect(&daemon.socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match control::recv::<Answer>(&stream) {
            Ok((Answer::Refused(why), _)) => break why,
            Ok((other, _)) => panic!("an answer to no hello: {other:?}"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => silent.push(stream),
            Err(e) => panic!("the daemon hung up without a reason: {e}"),
        }
    };
    assert!(
        refusal.contains("cannot start a thread for the connection"),
        "{refusal}"
    );
    daemon.wait_log("connection refused: the daemon cannot start a thread");
    let unlimited = Rlimit {
        current: None,
        maximum: None,
    };
    prlimit(Some(pid), Resource::As, unlimited).unwrap();
    drop(silent);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon ended"
    );
    still_serving(&daemon);
}

/// SIGTERM sent to the daemon's whole process group (`kill -- -PGID`, `timeout`, Ctrl-C,
/// systemd's default stop) reaches its workers too. Before, it killed a worker in the
/// middle of its calls, which failed with `WorkerDied`, and now and then the daemon,
/// having started a new worker as it began to stop, waited for that one for good. Now the
/// call in flight finishes and the daemon stops, exit status 0.
///
/// SIGHUP (the terminal the daemon was started from hanging up: an ssh session that
/// drops) does the same. Before, its default action ended the daemon and its workers at
/// once: the call in flight lost, exit status 129, the socket file left behind.
#[test]
fn sigterm_to_the_whole_process_group_finishes_the_calls_and_stops() {
    for sig in [Signal::TERM, Signal::HUP] {
        let mut daemon = Daemon::start(Setup::modules(&["hazards"]));
        let client = Client::connect(&daemon.socket).unwrap();
        let hazards = client.module("hazards").unwrap();
        let held = std::thread::scope(|s| {
            let call = s.spawn(|| client.call_typed::<_, u64>(hazards, "hold", &(300u64,)));
            daemon.wait_log("holding");
            let status = daemon.signal_group(sig);
            assert!(
                status.success(),
                "{sig:?}: {status:?}:\n{}",
                daemon.log_text()
            );
            call.join().unwrap()
        });
        held.unwrap_or_else(|e| panic!("{sig:?}: the call in flight: {e}\n{}", daemon.log_text()));
        assert!(
            !daemon.socket.exists(),
            "{sig:?}: the socket file is removed"
        );
    }
}

/// Calls submitted while the daemon stops, on connections it welcomed before, are
/// answered "the daemon is shutting down": to a module of the worker that runs the call
/// in flight (its connection's thread refuses them until the worker exits), and to a
/// module of another worker, which has no call and exits first (a stand-in refuses them
/// until the daemon exits); the call in flight finishes. Before, the worker's threads
/// refused once and ended: both calls waited, unanswered, until the daemon was gone.
#[test]
fn calls_made_while_the_daemon_stops_are_told_it_is_shutting_down() {
    let (_file, mut daemon) = common::basic_in_its_own_worker(false);
    let client = Client::connect(&daemon.socket).unwrap();
    let late = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let (late_hazards, late_basic) = (
        late.module("hazards").unwrap(),
        late.module("basic").unwrap(),
    );
    std::thread::scope(|s| {
        let call = s.spawn(|| client.call_typed::<_, u64>(hazards, "hold", &(3_000u64,)));
        daemon.wait_log("holding");
        signal(daemon.pid(), Signal::TERM);
        daemon.wait_log("shutting down: finishing the calls in flight");
        for (module, method, what) in [
            (late_hazards, "count", "the running call's worker"),
            (late_basic, "echo", "the other"),
        ] {
            // The other worker may still be draining: refused by it or by its stand-in,
            // the answer is the same. A worker handles the supervisor's word to stop a
            // little after the log line: a call that comes first is served, and the next
            // one is tried.
            let err = loop {
                match late.call(module, method, b"") {
                    Ok(_) => std::thread::sleep(Duration::from_millis(10)),
                    Err(e) => break e,
                }
            };
            assert!(
                err.to_string().contains("the daemon is shutting down"),
                "{what}: {err}\n{}",
                daemon.log_text()
            );
        }
        assert_eq!(call.join().unwrap().unwrap(), 3_000);
    });
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}:\n{}", daemon.log_text());
}

/// A call made after the stop on the connection whose thread runs a long call (a second
/// call of the same client) is told the daemon is shutting down, at once. Before, it
/// waited for the long call to end and was then run: the connection's thread looked
/// whether to stop only after a sweep of every slot.
#[test]
fn a_call_behind_a_long_one_on_its_connection_is_refused_after_the_stop() {
    let (_file, mut daemon) = common::basic_in_its_own_worker(false);
    let client = Client::connect(&daemon.socket).unwrap();
    let other = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let other_hazards = other.module("hazards").unwrap();
    std::thread::scope(|s| {
        let call = s.spawn(|| client.call_typed::<_, u64>(hazards, "hold", &(3_000u64,)));
        daemon.wait_log("holding");
        signal(daemon.pid(), Signal::TERM);
        daemon.wait_log("shutting down: finishing the calls in flight");
        // The worker drains once another connection of it is refused (a call that
        // comes before it handles the word to stop is served).
        while other.call(other_hazards, "count", b"").is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = std::time::Instant::now();
        let err = client
            .call(hazards, "echo", b"behind the long call")
            .expect_err("a call after the stop is refused, not run");
        assert!(
            err.to_string().contains("the daemon is shutting down"),
            "{err}\n{}",
            daemon.log_text()
        );
        assert!(
            !call.is_finished(),
            "refused while the long call ran, not after it ({:?})",
            started.elapsed()
        );
        assert_eq!(call.join().unwrap().unwrap(), 3_000);
    });
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}:\n{}", daemon.log_text());
}

/// A call whose client was killed mid-call still runs to its end when the daemon stops:
/// the worker waits for the threads of connections whose clients went, as for the others.
/// Before, those threads were forgotten, and the worker exited under the call.
#[test]
fn sigterm_lets_the_call_of_a_client_that_went_finish() {
    let mut daemon = Daemon::start(Setup::modules(&["hazards"]));
    let (stream, segment, _) = raw_welcome(&daemon);
    submit_hold(&segment, 1_500, Duration::from_secs(60));
    daemon.wait_log("holding");
    drop(stream);
    drop(segment);
    // The worker is told the client went before it is told to stop.
    std::thread::sleep(Duration::from_millis(200));
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}:\n{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("held after 1500 ms"),
        "the call was cut off:\n{}",
        daemon.log_text()
    );
}

/// A worker that dies just before the daemon is told to stop is started again while the
/// daemon stops; the shutdown found no worker to tell then, and the daemon waited for
/// the new one for good. Now the new one is told too, and the daemon stops.
#[test]
fn a_worker_started_again_as_the_daemon_stops_is_stopped_too() {
    for delay_ms in [0, 2, 10, 30] {
        let mut daemon = Daemon::start(Setup::modules(&["basic"]));
        signal(daemon.worker_pid(), Signal::KILL);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let status = daemon.terminate();
        assert!(
            status.success(),
            "{delay_ms} ms: {status:?}:\n{}",
            daemon.log_text()
        );
    }
}

/// A worker that died and cannot be started again (its module's file was replaced by
/// something that does not load) leaves its modules' calls answered at once with why,
/// while the other worker serves on; once the file is whole again, the worker comes back
/// and its calls succeed. Before, a call to it waited in its slot for good (a client
/// without a deadline hung until the file was restored).
#[test]
fn calls_to_a_worker_that_cannot_be_started_again_fail_at_once_saying_why() {
    let (file, daemon) = common::basic_in_its_own_worker(false);
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let hazards = client.module("hazards").unwrap();
    assert_eq!(
        client
            .call_typed::<_, u32>(basic, "add", &(1u32, 2u32))
            .unwrap(),
        3
    );
    // The file is replaced (renamed over, as a build would), then the worker dies.
    common::break_library(&file);
    signal(daemon.worker_pid_named("basic"), Signal::KILL);
    daemon.wait_log("calls to the worker's modules fail at once");
    // No deadline: the call must not wait for a worker that is not coming.
    let err = client
        .call_typed::<_, u32>(basic, "add", &(1u32, 2u32))
        .unwrap_err();
    assert!(
        err.to_string().contains("could not be started again"),
        "{err}\n{}",
        daemon.log_text()
    );
    // The other worker serves on.
    client.call(hazards, "count", b"").unwrap();
    // A client that connects meanwhile is told the same at once.
    let late = Client::connect(&daemon.socket).unwrap();
    let late_basic = late.module("basic").unwrap();
    let err = late.call(late_basic, "echo", b"hi").unwrap_err();
    assert!(
        err.to_string().contains("could not be started again"),
        "{err}"
    );
    // Whole again: the worker is started again (tries are seconds apart), and serves.
    let whole = file.with_extension("so.new");
    std::fs::copy(common::module_path("basic"), &whole).unwrap();
    std::fs::rename(&whole, &file).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        match client.call_typed::<_, u32>(basic, "add", &(1u32, 2u32)) {
            Ok(sum) => {
                assert_eq!(sum, 3);
                break;
            }
            Err(e) => assert!(Instant::now() < until, "never came back: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(&*late.call(late_basic, "echo", b"hi").unwrap(), b"hi");
}

/// A signal a worker catches with a handler that does not restart system calls (Rust's
/// own for SIGSEGV and SIGBUS; one a module installs, for SIGCHLD or a profiler's
/// SIGPROF, say) interrupts its wait for the supervisor's next message. The worker reads
/// on and serves on (before: it took the interruption for its supervisor gone, finished
/// its calls, exited with status 0, and the supervisor started another).
#[test]
fn a_signal_that_interrupts_a_worker_s_wait_for_its_supervisor_does_not_end_it() {
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["basic"])
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(
        client
            .call_typed::<_, u32>(basic, "add", &(2u32, 3u32))
            .unwrap(),
        5
    );
    let worker = daemon.worker_pid();
    signal(worker, Signal::SEGV);
    // Rust's handler puts SIGSEGV back to its default once it has run: the bit of signal
    // 11 leaves the caught set, so the handler ran, and the wait was interrupted.
    let caught = |pid: i32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
        Some(u64::from_str_radix(mask.trim(), 16).ok()? & (1 << 10) != 0)
    };
    let until = Instant::now() + Duration::from_secs(30);
    while caught(worker) == Some(true) {
        assert!(
            Instant::now() < until,
            "the worker's SIGSEGV handler never ran"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Room for a worker that took the interruption for its supervisor gone to end (not
    // an assertion: the one that serves on does so however long this takes).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        client
            .call_typed::<_, u32>(basic, "add", &(2u32, 3u32))
            .unwrap(),
        5
    );
    assert_eq!(daemon.worker_pid(), worker, "the worker was started again");
    let (_, metrics) = daemon.http_get("/metrics");
    assert!(
        metrics.contains("memlink_daemon_worker_restarts_total{worker=\"main\"} 0"),
        "{metrics}"
    );
}

/// A client that submits a slot again while its call runs there, for a call that ends at
/// once, cannot take the running call out of the watchdog's sight, nor have the worker
/// write over the arguments the running call reads in place: the second request is
/// dropped (counted as refused), and the slot gets the running call's answer, here its
/// end by the watchdog past its deadline. Before, a helper thread ran the second request
/// in the same slot and, done, cleared the slot's entry in the figures table, so the first
/// call ran on unwatched; and then, refused instead, the refusal was written where the
/// length the client wrote again (0) said, over the running call's arguments.
#[test]
fn a_slot_submitted_again_mid_call_does_not_hide_the_call_from_the_watchdog() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let worker = daemon.worker_pid();
    let (_stream, segment, _) = raw_connection(&daemon);
    submit_hold(&segment, 600_000, Duration::from_millis(300));
    daemon.wait_log("holding");
    let slot = segment.slot(0).unwrap();
    assert_eq!(slot.state(), Some(SlotState::Running));
    // The same slot, submitted again for a call that returns at once, and the worker's
    // helpers called to it as a client does for a call held up behind another.
    slot.submit(&Submit {
        op: Op::Call,
        module: "hazards",
        method: "count",
        args_len: 0,
        deadline_ns: 0,
        trace_id: 0,
        span_id: 0,
        checked: 0,
    });
    segment.header().call_helpers(0);
    let d = Some(Instant::now() + Duration::from_secs(10));
    assert_eq!(
        slot.wait_done(d, Duration::ZERO, Duration::from_millis(20), || true),
        Waited::Done
    );
    let failure = slot.reply().unwrap_err();
    assert!(
        matches!(&failure, Failure::WorkerDied(reason) if reason.contains("past its deadline")),
        "{failure}"
    );
    daemon.wait_log("past its deadline");
    still_serving(&daemon);
    assert_ne!(daemon.worker_pid(), worker, "the stuck worker was replaced");
}
