//! `memlink call --timeout`: a call's deadline from the command line, in this process
//! and through a daemon, run as a user would.

mod common;

use std::ffi::OsStr;

use common::cli::{memlink, memlink_os, serve, stdout, stop};
use common::stderr;

fn async_echo() -> String {
    common::module_path("async_echo")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The deadline reaches the method (`time_left` returns the milliseconds its context
/// reports, `null` with none), and a method that would run a minute is cancelled at it:
/// the command fails with the runtime's timeout error rather than waiting.
#[test]
fn a_timeout_is_the_calls_deadline_here_and_through_a_daemon() {
    let module = async_echo();
    let left = |out: &std::process::Output| -> Option<u64> {
        assert!(out.status.success(), "{}", stderr(out));
        serde_json::from_str(stdout(out).trim()).unwrap()
    };
    assert_eq!(left(&memlink(&["call", &module, "time_left"])), None);
    let given = left(&memlink(&["call", &module, "time_left", "--timeout", "1m"]));
    assert!(given.is_some_and(|ms| ms <= 60_000), "{given:?}");
    // A fraction of a unit: half a minute. Before, `0.5m` was "a timeout of 0".
    let given = left(&memlink(&[
        "call",
        &module,
        "time_left",
        "--timeout",
        "0.5m",
    ]));
    assert!(
        given.is_some_and(|ms| ms > 1_000 && ms <= 30_000),
        "{given:?}"
    );
    let out = memlink_os(&[
        OsStr::new("call"),
        OsStr::new(&module),
        OsStr::new("echo_after"),
        OsStr::new("[600000, [1]]"),
        OsStr::new("--timeout"),
        OsStr::new("50ms"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("async_echo::echo_after failed: timed out (it was given "),
        "{err}"
    );

    let dir = common::scratch("cli-timeout-daemon");
    let socket = dir.join("memlink.sock");
    let daemon = serve(&socket, &module);
    let through = |args: &[&str]| {
        let mut all = vec!["call", "--daemon", socket.to_str().unwrap(), "async_echo"];
        all.extend_from_slice(args);
        let all: Vec<&OsStr> = all.iter().map(OsStr::new).collect();
        memlink_os(&all)
    };
    let none = through(&["time_left"]);
    let given = through(&["time_left", "--timeout", "1m"]);
    let late = through(&["echo_after", "[600000, [1]]", "--timeout", "50ms"]);
    // A sync method runs to its end: the wait for it ends at the deadline all the same.
    let sync = through(&["slow_sync", "[5000]", "--timeout", "50ms"]);
    stop(daemon);
    assert_eq!(left(&none), None);
    let given = left(&given);
    assert!(given.is_some_and(|ms| ms <= 60_000), "{given:?}");
    for (out, method) in [(&late, "echo_after"), (&sync, "slow_sync")] {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "async_echo::{method} failed: timed out (it was given "
            )),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A timeout that is no time, has no unit or is no duration is a usage error naming
/// the option and what is wrong with it, before any module is loaded.
#[test]
fn a_timeout_of_zero_or_no_duration_is_refused_naming_the_option() {
    let module = async_echo();
    for (value, says) in [
        ("0", "no unit"),
        ("0ms", "is no time at all"),
        // Less than a nanosecond: no time either.
        ("0.0000000001s", "is no time at all"),
        ("5", "no unit"),
        ("soon", "not a duration"),
        ("1.s", "not a duration"),
        (".5s", "not a duration"),
        ("1.2.3s", "not a duration"),
        ("5 days", "unknown unit"),
        // Before, clap took it for an unknown flag, and its tip made it the arguments.
        ("-1s", "is negative"),
        // Before, the leading 0 was read first: "a timeout of 0".
        ("0x10s", "unknown unit `x10s`"),
        ("99999999999999999999s", "longer than a duration can be"),
        // The whole part just fits 128 bits of nanoseconds, its fraction does not.
        (
            "340282366920938463463374607431.999999999s",
            "longer than a duration can be",
        ),
    ] {
        let out = memlink(&["call", &module, "time_left", "--timeout", value]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(
            err.contains("--timeout") && err.contains(says),
            "{value}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{value}: no call");
    }
}

/// `call --daemon` without `--timeout`, to a daemon whose worker does not answer (stopped
/// here; a worker whose loader's lock a library that never finishes loading holds is the
/// same), ends 10 s on saying so, as `inspect --daemon` does. Before, the request for the
/// module's method list, made before the call, waited for good.
#[test]
fn a_daemon_call_whose_worker_never_answers_ends_saying_so() {
    let dir = common::scratch("cli-timeout-stopped");
    let socket = dir.join("memlink.sock");
    let daemon = serve(&socket, &async_echo());
    // Its one child, started by one of its threads (each thread has its children).
    let worker: i32 = std::fs::read_dir(format!("/proc/{}/task", daemon.id()))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.unwrap().path().join("children")).ok())
        .find_map(|children| children.split_whitespace().next()?.parse().ok())
        .expect("the daemon's worker");
    let worker = rustix::process::Pid::from_raw(worker).unwrap();
    rustix::process::kill_process(worker, rustix::process::Signal::STOP).unwrap();
    // Continued however the test ends, so the daemon can stop.
    struct Continue(rustix::process::Pid);
    impl Drop for Continue {
        fn drop(&mut self) {
            let _ = rustix::process::kill_process(self.0, rustix::process::Signal::CONT);
        }
    }
    let continued = Continue(worker);
    // Run with a minute's bound, past which the test fails.
    let args = [
        "call",
        "--daemon",
        socket.to_str().unwrap(),
        "async_echo",
        "time_left",
    ];
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let out = memlink_os(&args);
    drop(continued);
    stop(daemon);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the daemon did not describe module `async_echo` within 10s"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
