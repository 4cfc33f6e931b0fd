//! `memlink serve` started the way hardened machines and service managers start it: with
//! its stop signals blocked, under a file-size limit, with few open files, or with its
//! executable removed while it serves. Each must either serve or refuse to start saying
//! why, and a stop must stop it.

mod common;

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{basic, memlink, memlink_os_with, serve_logging_with, stdout};
use common::stderr;

/// Sends `SIGTERM` to `daemon` and waits up to 20 s for it to end well; kills it and
/// fails the test if it does not, rather than wait for it for good.
fn stop_within(mut daemon: Child, seen: &str) {
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            assert!(status.success(), "{status}:\n{seen}");
            return;
        }
        if Instant::now() > until {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!("the daemon was still running 20 s after SIGTERM:\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `memlink call --daemon SOCKET basic ping`, answered `pong`.
fn assert_pings(socket: &std::path::Path) {
    let out = memlink(&[
        "call",
        "--daemon",
        socket.to_str().unwrap(),
        "basic",
        "ping",
    ]);
    assert_eq!(stdout(&out).trim_end(), "pong", "{}", stderr(&out));
}

/// Has `command`'s process start with `resource` (an `RLIMIT_*`) limited to `value`, its
/// soft and hard limits both.
fn limit(command: &mut Command, resource: libc::__rlimit_resource_t, value: u64) {
    // SAFETY: `setrlimit` is a system call, async-signal-safe, as what runs between `fork`
    // and `exec` must be; the limit lives on this stack.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &raw const limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A daemon started with `SIGTERM` blocked (a mask a wrapper or an init system left,
/// which `exec` keeps) stops on `SIGTERM` all the same. Before, the signal stayed
/// pending for good: the daemon ran on after its service manager asked it to stop.
#[test]
fn a_daemon_started_with_its_stop_signal_blocked_stops_on_it() {
    let dir = common::scratch("sigterm-blocked");
    let socket = dir.join("blocked.sock");
    let basic = basic();
    let (daemon, seen, _log) = serve_logging_with(&socket, &[OsStr::new(&basic)], |command| {
        // SAFETY: `sigemptyset`, `sigaddset` and `sigprocmask` are async-signal-safe, as
        // what runs between `fork` and `exec` must be; the set lives on this stack.
        unsafe {
            command.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&raw mut set);
                libc::sigaddset(&raw mut set, libc::SIGTERM);
                libc::sigprocmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut());
                Ok(())
            });
        }
    });
    assert_pings(&socket);
    stop_within(daemon, &seen);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A daemon under a file-size limit (`ulimit -f`, which also bounds shared memory grown
/// with `ftruncate`) refuses the connection whose segment would pass it, saying so, and
/// serves on. Before, `SIGXFSZ`'s default action killed the daemon, with no word, at the
/// first such connection (and at its start, under a limit smaller than its figures).
#[test]
fn a_daemon_under_a_file_size_limit_refuses_a_segment_past_it_and_serves_on() {
    let dir = common::scratch("fsize");
    let socket = dir.join("fsize.sock");
    let big = dir.join("big.bin");
    std::fs::write(&big, vec![b'a'; 6 << 20]).unwrap();
    let basic = basic();
    let (daemon, seen, _log) = serve_logging_with(&socket, &[OsStr::new(&basic)], |command| {
        limit(command, libc::RLIMIT_FSIZE, 4 << 20);
    });
    assert_pings(&socket);
    // 6 MiB of arguments need a segment past the daemon's 4 MiB.
    let out = memlink(&[
        "call",
        "--daemon",
        socket.to_str().unwrap(),
        "basic",
        "echo",
        "--args-file",
        big.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("file-size limit") && err.contains("RLIMIT_FSIZE"),
        "{err}"
    );
    assert_pings(&socket);
    stop_within(daemon, &seen);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A daemon that may open too few files to accept a connection refuses to start, saying
/// so. Before, it said it was serving, then tried to accept every 50 ms for good while
/// each client waited 10 s for a welcome that never came.
#[test]
fn a_daemon_that_may_open_too_few_files_refuses_to_start() {
    let dir = common::scratch("nofile");
    let socket = dir.join("nofile.sock");
    let basic = basic();
    // Run to its end, or killed and failed after 60 s: one that serves never ends.
    let out = memlink_os_with(
        &[
            OsStr::new("serve"),
            OsStr::new("--socket"),
            socket.as_os_str(),
            OsStr::new(&basic),
        ],
        |command| limit(command, libc::RLIMIT_NOFILE, 12),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("may open 12 files") && err.contains("RLIMIT_NOFILE"),
        "{err}"
    );
    assert!(!socket.exists(), "the socket was left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The worker processes of the daemon whose process id is `daemon`: the children of each
/// of its threads (any of them may start a worker).
fn workers_of(daemon: u32) -> Vec<i32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{daemon}/task")).unwrap() {
        let children = task.unwrap().path().join("children");
        if let Ok(more) = std::fs::read_to_string(children) {
            pids.extend(
                more.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// A daemon whose executable is removed while it serves (a package upgrade, a build
/// directory cleaned) starts its killed worker again, from the executable it runs.
/// Before, it started workers from the executable's path, and from then on every call
/// failed: "cannot start …: No such file or directory", tried again for good.
#[test]
fn a_daemon_whose_executable_was_removed_still_restarts_its_workers() {
    let dir = common::scratch("exe-removed");
    let socket = dir.join("removed.sock");
    let exe = dir.join("memlink-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_memlink"), &exe).unwrap();
    let basic = basic();
    let mut command = Command::new(&exe);
    command
        .args([OsStr::new("serve"), OsStr::new("--socket")])
        .arg(&socket)
        .arg(&basic)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Another test's process forked while the copy was open for writing holds it so
    // until it execs: the copy is busy for that moment.
    let mut tries = 0;
    let daemon = loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            started => break started.unwrap(),
        }
    };
    let until = Instant::now() + Duration::from_secs(60);
    while !socket.exists() || workers_of(daemon.id()).is_empty() {
        assert!(Instant::now() < until, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_pings(&socket);
    std::fs::remove_file(&exe).unwrap();
    let worker = workers_of(daemon.id())[0];
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(worker).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // The calls made while the worker is down fail; one made once it is back answers.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let out = memlink(&[
            "call",
            "--daemon",
            socket.to_str().unwrap(),
            "basic",
            "ping",
        ]);
        if stdout(&out).trim_end() == "pong" {
            break;
        }
        assert!(
            Instant::now() < until,
            "no worker came back: {}",
            stderr(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let workers = workers_of(daemon.id());
    assert!(!workers.contains(&worker));
    // Started through the link to the daemon's own executable, the worker names itself
    // after that executable's file, not after the link (`exe`).
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", workers[0])).unwrap();
    assert_eq!(comm.trim_end(), "memlink-copy");
    stop_within(daemon, "");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client that may open no more files when the daemon's welcome brings the segment's
/// descriptor is told its own limit is why, not that the daemon cannot be reached. Before:
/// "the daemon cannot be reached: the welcome came without a segment".
#[test]
fn a_client_that_may_open_no_more_files_is_told_so() {
    let dir = common::scratch("client-nofile");
    let socket = dir.join("nofile.sock");
    let basic = basic();
    let (daemon, seen, _log) = serve_logging_with(&socket, &[OsStr::new(&basic)], |_| {});
    let args = [
        OsStr::new("call"),
        OsStr::new("--daemon"),
        socket.as_os_str(),
        OsStr::new("basic"),
        OsStr::new("ping"),
    ];
    let out = memlink_os_with(&args, |command| {
        // SAFETY: `close_range` is a system call, async-signal-safe, as what runs
        // between `fork` and `exec` must be.
        unsafe {
            command.pre_exec(|| {
                // Whatever else the test process left open without close-on-exec is
                // closed first (hooks run in the order they were given).
                if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // Its standard streams and the connection's socket: nothing more.
        limit(command, libc::RLIMIT_NOFILE, 4);
    });
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("could not be received") && err.contains("RLIMIT_NOFILE"),
        "{err}"
    );
    assert!(!err.contains("cannot be reached"), "{err}");
    assert_pings(&socket);
    stop_within(daemon, &seen);
    let _ = std::fs::remove_dir_all(&dir);
}
