//! A daemon short of what its peers can use up: open files, the memory their hellos
//! take, room in its queue of connections. Each shortage costs the clients that caused
//! it, is said (in the log, or to the client waiting), and ends with the daemon serving
//! as before.

mod common;

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{Daemon, Setup};
use memlink_client::{CallOptions, Client, ClientConfig};

/// A call through a new client, with a deadline.
fn still_serving(daemon: &Daemon) {
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let options = CallOptions::default().timeout(Duration::from_secs(5));
    let out = client.call_with(basic, "echo", b"still", &options).unwrap();
    assert_eq!(&*out, b"still");
}

/// CPU time `pid` has used, in clock ticks (`USER_HZ`: 100 a second on Linux).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // `pid (comm) state ...`: utime and stime are the 12th and 13th fields after `)`.
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Connections queued while the daemon has no descriptor left to accept them with: it
/// says so once and tries again after a pause, and serves them once descriptors are
/// free. Before, `accept` failed at once for as long as the shortage lasted, and the
/// loop tried again at once, keeping a core busy (1.25 s of CPU in 2 s) and saying nothing.
#[test]
fn connections_the_daemon_has_no_descriptor_for_wait_without_a_busy_loop() {
    use rustix::process::{prlimit, Pid, Resource, Rlimit};
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    still_serving(&daemon);
    let pid = Pid::from_raw(daemon.pid()).unwrap();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    // No descriptor past those open now (but the few a closed one left free below); the
    // call gives back the limit it replaced.
    let hard = open_files_hard_limit(daemon.pid());
    let before = prlimit(
        Some(pid),
        Resource::Nofile,
        Rlimit {
            current: Some(open),
            maximum: hard,
        },
    )
    .unwrap();
    // Each holds a descriptor of the daemon's while it has time to say hello (5 s); the
    // ones past the limit wait to be accepted.
    let silent: Vec<UnixStream> = (0..16)
        .map(|_| UnixStream::connect(&daemon.socket).unwrap())
        .collect();
    // Time to accept what it can and meet the limit.
    std::thread::sleep(Duration::from_millis(300));
    let window = Duration::from_secs(2);
    let (ticks, start) = (cpu_ticks(daemon.pid()), Instant::now());
    std::thread::sleep(window);
    let (used, took) = (cpu_ticks(daemon.pid()) - ticks, start.elapsed());
    // Half of one core over the window, in ticks: a loop calling `accept` takes it all.
    let half = took.as_millis() as u64 / 20;
    assert!(
        used < half,
        "the daemon used {used} ticks of CPU in {took:?} with connections it cannot accept"
    );
    daemon.wait_log("cannot accept a connection");
    prlimit(Some(pid), Resource::Nofile, before).unwrap();
    drop(silent);
    still_serving(&daemon);
    let said = daemon
        .log_text()
        .matches("cannot accept a connection")
        .count();
    assert!(
        said <= 3,
        "said once per shortage, not per failure: {said} times"
    );
}

/// The hard limit on open files of `pid` (`None`: unlimited), from `/proc/PID/limits`.
fn open_files_hard_limit(pid: i32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .unwrap();
    let hard = line.split_whitespace().nth(1).unwrap();
    hard.parse().ok()
}

/// The daemon's resident memory, in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Connections whose hellos claim a frame of a megabyte are refused once the length is
/// read, saying so, and cost the daemon none of the megabytes they send. Before, a hello
/// was read as any frame, up to a megabyte, and held until whole or until its 5 s were up:
/// 64 such connections, each one byte short, held 64 MiB of the daemon's memory (and the
/// connection limit, 1024 by default, a gigabyte).
#[test]
fn a_hello_claiming_a_megabyte_is_refused_before_its_body_is_read() {
    use memlink_ipc::control::{self, Answer};
    use std::io::Write;
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    still_serving(&daemon);
    let before = rss_kib(daemon.pid());
    let len: u32 = 1 << 20;
    let streams: Vec<UnixStream> = (0..64)
        .map(|_| {
            let mut stream = UnixStream::connect(&daemon.socket).unwrap();
            let _ = stream.write_all(&len.to_le_bytes());
            // All but the last byte: the frame is never whole. A daemon that refused it
            // closed the connection under the write, which then fails.
            let _ = stream.write_all(&vec![0; len as usize - 1]);
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let grown = rss_kib(daemon.pid()).saturating_sub(before);
    assert!(
        grown < 16 << 10,
        "the daemon holds {grown} KiB more with 64 hellos of a megabyte under way"
    );
    for stream in &streams {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (answer, _) = control::recv::<Answer>(stream).unwrap();
        assert!(
            matches!(&answer, Answer::Refused(why) if why.contains("a frame of 1048576 bytes (at most 4096)")),
            "{answer:?}"
        );
    }
    drop(streams);
    still_serving(&daemon);
}

/// A daemon whose queue of connections not yet accepted is full (stopped, out of
/// descriptors, or flooded with connections) is tried again until the reconnect timeout,
/// then said to be so. Before, the client's `connect` waited for room in the queue for
/// good, past the reconnect timeout and any call's deadline. Here the daemon is a socket
/// that listens with room for one connection and accepts none.
#[test]
fn a_daemon_whose_queue_of_connections_is_full_is_waited_for_no_longer_than_the_reconnect_timeout()
{
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let dir = common::scratch_dir();
    let path = dir.join("full.sock");
    let listener = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
    let addr = SocketAddrUnix::new(&path).unwrap();
    rustix::net::bind(&listener, &addr).unwrap();
    rustix::net::listen(&listener, 1).unwrap();
    // Connections until the queue takes no more.
    let mut queued = Vec::new();
    loop {
        let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
        let fd =
            rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None).unwrap();
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => queued.push(fd),
            Err(e) if e == rustix::io::Errno::AGAIN => break,
            Err(e) => panic!("{e}"),
        }
        assert!(queued.len() < 64, "the queue takes every connection");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let connecting = path.clone();
    std::thread::spawn(move || {
        let config = ClientConfig::default().reconnect_timeout(Duration::from_millis(500));
        let _ = tx.send(Client::with_config(&connecting, config).map(drop));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the client still waits for room in the queue")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("its queue of connections not yet accepted is full"),
        "{err}"
    );
    drop((queued, listener));
    let _ = std::fs::remove_dir_all(&dir);
}
