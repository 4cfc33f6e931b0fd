//! Whom the daemon trusts, through a real daemon and real client processes: a client of
//! the daemon's own user has its arguments read in place; any other (another user, or
//! every client under `trust = "nobody"`) has them copied into the worker's private
//! memory before the module sees them, so rewriting its segment mid-call changes nothing
//! the module reads. The socket keeps other users out unless its mode lets them in, and
//! the daemon learns who a client is from the kernel (`SO_PEERCRED`), not from the client.
//!
//! Where the module finds its arguments is what tells a copy from a read in place: the
//! `zero_copy` module's `address_of` returns the address of the bytes it was given, and
//! the worker's `/proc/PID/maps` says where each connection's segment is mapped.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{Daemon, Setup};
use memlink_client::{Client, ClientConfig};

/// Set in the environment of this test binary run again as another user: what to do
/// there (see [`as_other_user`]).
const ROLE: &str = "MEMLINK_TRUST_TEST_ROLE";
/// The socket the test binary run as another user connects to.
const SOCKET: &str = "MEMLINK_TRUST_TEST_SOCKET";
/// `nobody`: a user that is not the daemon's.
const OTHER_UID: u32 = 65534;

/// The address ranges where `worker` maps connections' segments.
fn segment_mappings(worker: i32) -> Vec<(u64, u64)> {
    let maps = std::fs::read_to_string(format!("/proc/{worker}/maps")).unwrap();
    maps.lines()
        .filter(|l| l.contains("memlink-segment"))
        .map(|l| {
            let range = l.split_whitespace().next().unwrap();
            let (start, end) = range.split_once('-').unwrap();
            let hex = |s| u64::from_str_radix(s, 16).unwrap();
            (hex(start), hex(end))
        })
        .collect()
}

fn inside(mappings: &[(u64, u64)], address: u64) -> bool {
    mappings.iter().any(|&(s, e)| (s..e).contains(&address))
}

/// Where the module found the arguments of a call made through `client`.
fn address_of_arguments(client: &Client) -> u64 {
    let zc = client.module("zero_copy").unwrap();
    let out = client.call(zc, "address_of", &[7u8; 4096]).unwrap();
    rmp_serde::from_slice(&out).unwrap()
}

/// A client of the daemon's own user has its arguments read where it wrote them, in its
/// segment; under `trust = "nobody"` the same client's are read from a copy outside
/// every segment, which the client cannot write.
#[test]
fn a_trusted_clients_arguments_are_read_in_place_and_an_untrusted_ones_from_a_copy() {
    let daemon = Daemon::start(Setup::modules(&["zero_copy"]));
    let client = Client::connect(&daemon.socket).unwrap();
    assert!(client.in_place().unwrap(), "same user: read in place");
    let at = address_of_arguments(&client);
    let mappings = segment_mappings(daemon.worker_pid());
    assert!(
        inside(&mappings, at),
        "read in place: {at:#x} lies in a segment {mappings:x?}"
    );
    drop((client, daemon));

    let daemon = Daemon::start(Setup {
        toml: "trust = \"nobody\"".into(),
        ..Setup::modules(&["zero_copy"])
    });
    let client = Client::connect(&daemon.socket).unwrap();
    assert!(!client.in_place().unwrap(), "trust = nobody: copied");
    let at = address_of_arguments(&client);
    // Read while the client is still connected, so its segment is mapped.
    let mappings = segment_mappings(daemon.worker_pid());
    assert!(!mappings.is_empty(), "the connection's segment is mapped");
    assert!(
        !inside(&mappings, at),
        "copied: {at:#x} lies in no segment {mappings:x?}"
    );
}

/// A client of another user cannot connect through the default socket mode (`0600`);
/// let in by `socket_mode`, it is known by the uid and pid the kernel gives, and its
/// arguments are copied before the module reads them, though the daemon's trust is
/// `same-user`.
#[test]
fn another_users_client_is_kept_out_by_the_socket_mode_and_copied_when_let_in() {
    if let Ok(role) = std::env::var(ROLE) {
        return as_other_user(&role);
    }
    if !rustix::process::getuid().is_root() {
        eprintln!(
            "skipped: becoming another user (uid {OTHER_UID}) needs root, and this test runs as uid {}",
            rustix::process::getuid().as_raw()
        );
        return;
    }
    let daemon = Daemon::start(Setup::modules(&["zero_copy"]));
    let (line, mut child) = spawn_other_user("connect", &daemon);
    assert_eq!(
        line, "refused PermissionDenied",
        "the socket is the daemon user's"
    );
    assert!(child.wait().unwrap().success());

    // Through the client library, told to keep trying for as long as the daemon is not
    // there: the socket's mode keeps it out for good, and it says so at once. Before, it
    // took the refusal for a daemon not up yet ("nothing listens at ... (Permission
    // denied)") and tried again without end.
    let (line, mut child) = spawn_other_user("client", &daemon);
    assert!(
        line.contains("does not let this user connect") && line.contains("socket_mode"),
        "{line}"
    );
    assert!(child.wait().unwrap().success());
    drop(daemon);

    let daemon = Daemon::start(Setup {
        toml: "socket_mode = 0o666".into(),
        metrics: true,
        ..Setup::modules(&["zero_copy"])
    });
    let (line, mut child) = spawn_other_user("call", &daemon);
    let at = match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["in_place", "false", "address", at] => at.parse::<u64>().unwrap(),
        _ => panic!("the other user's client said `{line}`"),
    };
    // The child still holds its connection: its segment is mapped in the worker.
    let mappings = segment_mappings(daemon.worker_pid());
    assert!(!mappings.is_empty(), "the connection's segment is mapped");
    assert!(
        !inside(&mappings, at),
        "copied: {at:#x} lies in no segment {mappings:x?}"
    );
    let (_, metrics) = daemon.http_get("/metrics");
    let who = format!("pid=\"{}\",uid=\"{OTHER_UID}\"", child.id());
    assert!(
        metrics.contains(&who),
        "the connection is known as {who}:\n{metrics}"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

/// A client whose process has no id in the daemon's pid namespace (a daemon in a
/// container, the client on its host, the socket shared between them) is welcome, and
/// known by its uid. The kernel gives such a peer's pid as 0, which the daemon read as a
/// non-zero process id: the handshake took it for an error, "Success (os error 0)", and
/// refused every such client.
#[test]
fn a_client_outside_the_daemons_pid_namespace_is_welcome() {
    if !rustix::process::getuid().is_root() {
        eprintln!("skipped: a pid namespace of its own for the daemon needs root");
        return;
    }
    let dir = common::scratch_dir();
    let socket = dir.join("memlink.sock");
    // The daemon is pid 1 of a namespace of its own, where this process has no id;
    // `--kill-child` ends it when `unshare` is ended.
    let started = Command::new("unshare")
        .args(["--pid", "--kill-child"])
        .arg(common::memlink())
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .arg(common::module_path("zero_copy"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut unshare) = started else {
        eprintln!("skipped: no `unshare` command to start the daemon in a pid namespace");
        return;
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let connected = loop {
        if let Some(status) = unshare.try_wait().unwrap() {
            eprintln!("skipped: `unshare --pid` did not start the daemon ({status})");
            return;
        }
        match Client::connect(&socket) {
            Ok(client) => break Ok(client),
            Err(e) if std::time::Instant::now() >= until => break Err(e),
            // Not up yet: its socket is made once its worker is ready.
            Err(e) if e.to_string().contains("nothing listens") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => break Err(e),
        }
    };
    let served = connected.and_then(|client| {
        let zc = client.module("zero_copy")?;
        let sum = client.typed::<(Vec<u8>, u64), u64>(zc, "checksum_msgpack")?;
        Ok((client.in_place()?, sum.call(&(vec![1, 2, 3], 0))?))
    });
    let _ = unshare.kill();
    let _ = unshare.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let (in_place, _) = served.unwrap_or_else(|e| panic!("not served: {e}"));
    assert!(in_place, "the daemon's own user: read in place");
}

/// Runs this test again in a process of user [`OTHER_UID`] doing `role` against
/// `daemon`: the first line it prints, and the process (its stdin held open: it keeps
/// its connection until that closes).
fn spawn_other_user(role: &str, daemon: &Daemon) -> (String, std::process::Child) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "another_users_client_is_kept_out_by_the_socket_mode_and_copied_when_let_in",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(SOCKET, &daemon.socket)
        .uid(OTHER_UID)
        .gid(OTHER_UID)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The test harness prints its own words around the test's, on the same line too.
    let line = lines
        .by_ref()
        .map(Result::unwrap)
        .find_map(|l| l.split_once("answer: ").map(|(_, a)| a.to_owned()))
        .unwrap_or_else(|| panic!("the other user's process said nothing: {:?}", child.wait()));
    // Read to its end, so the harness's last words do not meet a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (line, child)
}

/// The other user's side: `connect` says how connecting failed; `call` connects, says
/// whether its arguments are read in place and where the module found them, and holds
/// its connection until its stdin closes.
fn as_other_user(role: &str) {
    assert_eq!(rustix::process::getuid().as_raw(), OTHER_UID);
    let socket = std::env::var_os(SOCKET).unwrap();
    match role {
        "connect" => {
            let err = std::os::unix::net::UnixStream::connect(&socket).unwrap_err();
            println!("answer: refused {:?}", err.kind());
        }
        "client" => {
            let config = ClientConfig::default().reconnect_timeout(std::time::Duration::MAX);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(Client::with_config(&socket, config).map(drop));
            });
            match rx.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(Err(e)) => println!("answer: refused: {e}"),
                Ok(Ok(())) => println!("answer: connected"),
                Err(_) => println!("answer: still trying after 30 s"),
            }
        }
        "call" => {
            let client = Client::connect(&socket).unwrap();
            let in_place = client.in_place().unwrap();
            let at = address_of_arguments(&client);
            println!("answer: in_place {in_place} address {at}");
            let mut rest = String::new();
            let _ = std::io::stdin().read_line(&mut rest);
        }
        other => panic!("no role `{other}`"),
    }
}
