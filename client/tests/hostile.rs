//! A host using the client carelessly: a buffer called through after its call failed,
//! timed out, had its arguments overwritten by the reply, or outlived its daemon; a batch
//! dropped after a push failed; a socket path that holds no memlink daemon; a daemon that
//! broke the protocol before it went away. Each ends with an error that says what was
//! wrong, or is served as documented; none panics, hangs, returns another call's reply,
//! or runs a call its caller dropped.

mod common;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use common::{Daemon, Setup};
use memlink_client::{CallOptions, Client, ClientConfig, ModuleError, RuntimeError};

/// `value`'s MessagePack, as a method of one parameter takes it.
fn encoded<T: serde::Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).unwrap()
}

fn decoded<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    rmp_serde::from_slice(bytes).unwrap()
}

/// A call through an [`ArgSlot`](memlink_client::ArgSlot) that the daemon answered with a
/// failure (a method that is not there) leaves the buffer as it was: readable, its
/// arguments in place, and good for the next call. Before, the buffer still counted as
/// the daemon's, and reading it panicked ("a submitted slot belongs to the daemon").
#[test]
fn a_call_slot_the_daemon_refused_leaves_the_buffer_readable_and_reusable() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let args = encoded(&(2u32, 3u32));
    let mut buffer = client.arg_buffer(args.len()).unwrap();
    buffer.copy_from_slice(&args);
    let none = CallOptions::default();
    let err = client
        .call_slot(basic, "ad", &mut buffer, &none)
        .map(|r| r.to_vec())
        .unwrap_err();
    assert!(matches!(err, RuntimeError::UnknownMethod { .. }), "{err}");
    assert_eq!(&buffer[..], &args[..], "the arguments stay in the buffer");
    let sum: u32 = decoded(&client.call_slot(basic, "add", &mut buffer, &none).unwrap());
    assert_eq!(sum, 5);
    // And a buffer handed over whole after the same failure.
    let err = client
        .call_slot(basic, "ad", &mut buffer, &none)
        .map(|r| r.to_vec())
        .unwrap_err();
    assert!(matches!(err, RuntimeError::UnknownMethod { .. }), "{err}");
    let sum: u32 = decoded(&client.call_buffer(basic, "add", buffer, &none).unwrap());
    assert_eq!(sum, 5);
}

/// A call through a buffer that times out while the module still runs it leaves the slot
/// to the daemon; the buffer goes on in private memory (zeros), and the next call through
/// it gets its own reply. Before, reading the buffer panicked, and calling again
/// resubmitted the slot under the running call: the second call returned the first
/// call's reply and never ran.
#[test]
fn a_call_slot_that_timed_out_mid_call_never_hands_its_reply_to_the_next_call() {
    // Grace enough that the watchdog leaves the first call to end on its own.
    let daemon = Daemon::start(Setup {
        toml: "watchdog_grace_ms = 10000".into(),
        ..Setup::modules(&["async_echo"])
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let echo = client.module("async_echo").unwrap();
    let worker = daemon.worker_pid();
    // Two durations of the same encoded length, so one buffer holds either.
    let first = encoded(&(600u64,));
    let second = encoded(&(257u64,));
    assert_eq!(first.len(), second.len());
    let mut buffer = client.arg_buffer(first.len()).unwrap();
    buffer.copy_from_slice(&first);
    let short = CallOptions::default().timeout(Duration::from_millis(100));
    let err = client
        .call_slot(echo, "slow_sync", &mut buffer, &short)
        .map(|r| r.to_vec())
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "{err}"
    );
    assert!(
        buffer.iter().all(|&b| b == 0),
        "a buffer whose slot the daemon still holds reads as zeros: {:?}",
        &buffer[..]
    );
    buffer.copy_from_slice(&second);
    let long = CallOptions::default().timeout(Duration::from_secs(10));
    let ms: u64 = decoded(
        &client
            .call_slot(echo, "slow_sync", &mut buffer, &long)
            .unwrap(),
    );
    assert_eq!(ms, 257, "the second call's own reply");
    // Both calls ran, the first to its end, and nothing was ended by the watchdog.
    let started: u64 = decoded(&client.call(echo, "slow_sync_started", &[0x90]).unwrap());
    assert_eq!(started, 2);
    let ms: u64 = decoded(
        &client
            .call_slot(echo, "slow_sync", &mut buffer, &long)
            .unwrap(),
    );
    assert_eq!(ms, 257, "the buffer serves again, arguments in place");
    assert_eq!(daemon.worker_pid(), worker, "{}", daemon.log_text());
}

/// A reply too large to follow the arguments in their slot is written over them. The
/// next call through the buffer, unless it was written since, is refused saying so.
/// Before, the reply's bytes went out as the next call's arguments.
#[test]
fn a_buffer_whose_arguments_a_reply_overwrote_is_not_sent_again_unwritten() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client =
        Client::with_config(&daemon.socket, ClientConfig::default().slot_size(4096)).unwrap();
    let basic = client.module("basic").unwrap();
    let none = CallOptions::default();
    // A reply of 4,050 bytes cannot follow 5 bytes of arguments (at 64) in 4,096.
    let args = encoded(&(7u8, 4050u32));
    let mut buffer = client.arg_buffer(args.len()).unwrap();
    buffer.copy_from_slice(&args);
    let filled = client
        .call_slot(basic, "fill", &mut buffer, &none)
        .unwrap()
        .to_vec();
    assert!(filled.ends_with(&[7; 4050]), "{} bytes", filled.len());
    assert_ne!(
        &buffer[..],
        &args[..],
        "the reply lies where the arguments were"
    );
    let err = client
        .call_slot(basic, "fill", &mut buffer, &none)
        .map(|r| r.to_vec())
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Daemon { reason } if reason.contains("overwritten by the last reply")),
        "{err}"
    );
    // Written again, the buffer serves; a reply that fits after the arguments leaves
    // them be.
    let small = encoded(&(7u8, 3000u32));
    buffer.copy_from_slice(&small);
    for _ in 0..2 {
        let filled = client
            .call_slot(basic, "fill", &mut buffer, &none)
            .unwrap()
            .to_vec();
        assert!(filled.ends_with(&[7; 3000]), "{} bytes", filled.len());
        assert_eq!(&buffer[..], &small[..]);
    }
}

/// A buffer made before its daemon was restarted is called through on the new daemon,
/// as every other call of the client is. Before, every call through it failed with
/// `DaemonGone`, for as long as the buffer lived.
#[test]
fn a_buffer_made_before_the_daemon_restarted_serves_on_the_new_daemon() {
    let mut daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let none = CallOptions::default();
    let args = encoded(&(2u32, 3u32));
    let mut buffer = client.arg_buffer(args.len()).unwrap();
    buffer.copy_from_slice(&args);
    let sum: u32 = decoded(&client.call_slot(basic, "add", &mut buffer, &none).unwrap());
    assert_eq!(sum, 5);
    assert!(daemon.terminate().success());
    let dir = std::mem::replace(&mut daemon.dir, common::scratch_dir());
    let _again = Daemon::start_in(dir, Setup::modules(&["basic"]));
    for _ in 0..2 {
        let sum: u32 = decoded(&client.call_slot(basic, "add", &mut buffer, &none).unwrap());
        assert_eq!(sum, 5);
    }
    let sum: u32 = decoded(&client.call_buffer(basic, "add", buffer, &none).unwrap());
    assert_eq!(sum, 5);
}

/// A batch dropped before it ran (a later push failed and `?` returned, say) withdraws
/// the calls it pushed: they never run, and their slots are free at once. Before, they
/// stayed submitted without a wakeup: the worker ran them when it next looked (within a
/// second), and until then they held their slots, so the client's next call waited.
#[test]
fn a_batch_dropped_after_a_push_failed_runs_none_of_its_calls() {
    let daemon = Daemon::start(Setup::modules(&["async_echo"]));
    let client = Client::with_config(&daemon.socket, ClientConfig::default().slots(2)).unwrap();
    let echo = client.module("async_echo").unwrap();
    // The worker goes to sleep: nothing but a wakeup (or its next look) takes a call.
    std::thread::sleep(Duration::from_millis(200));
    let pushed = || -> Result<(), RuntimeError> {
        let mut batch = client.batch();
        batch.push(echo, "slow_sync", &encoded(&(0u64,)))?;
        batch.push(echo, &"x".repeat(65), b"")?;
        Ok(())
    };
    let err = pushed().unwrap_err();
    assert!(err.to_string().contains("longer than 64 bytes"), "{err}");
    // Both slots are free: two calls in flight at once need both, and a call waits for a
    // free slot only until its deadline (500 ms, against the worker's next look, within a
    // second, that freed the slots before).
    let options = CallOptions::default().timeout(Duration::from_millis(500));
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    client
                        .call_with(echo, "slow_sync", &encoded(&(100u64,)), &options)
                        .map(|out| decoded::<u64>(&out))
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.join().unwrap().unwrap(), 100);
        }
    });
    // Past the worker's next look: the dropped call never ran.
    std::thread::sleep(Duration::from_millis(1500));
    let started: u64 = decoded(&client.call(echo, "slow_sync_started", &[0x90]).unwrap());
    assert_eq!(started, 2, "only the two calls made ran");
}

/// A path with no memlink daemon behind it is named for what it is, at once: a file or a
/// directory is no socket (no daemon ever replaces it, so there is nothing to wait for),
/// and a socket whose answer is no memlink answer is not a memlink daemon. Before, each
/// was tried again for the whole reconnect timeout and reported as "Connection refused"
/// or "a frame of 1347703880 bytes".
#[test]
fn a_path_without_a_memlink_daemon_is_named_for_what_it_is_at_once() {
    let dir = common::scratch_dir();
    let file = dir.join("file");
    std::fs::write(&file, b"not a socket").unwrap();
    for (path, what) in [(&file, "is a regular file"), (&dir, "is a directory")] {
        let err = Client::connect(path).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(what) && text.contains("not a socket"),
            "{text}"
        );
    }

    let http = dir.join("http.sock");
    let listener = UnixListener::bind(&http).unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let config = ClientConfig::default().reconnect_timeout(Duration::from_secs(60));
    let err = Client::with_config(&http, config).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not answer as a memlink daemon"),
        "{text}"
    );
    // Not tried again for the reconnect timeout: one connection, one answer.
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A socket path longer than a Unix socket's path can be is refused at once, saying so,
/// even by a client told to keep trying for as long as the daemon is not there. Before,
/// it was reported as "nothing listens at ... (path must be shorter than SUN_LEN)", a
/// daemon not up yet, and tried again for the whole reconnect timeout: for good, with
/// no limit.
#[test]
fn a_socket_path_too_long_for_a_socket_is_refused_at_once() {
    let dir = common::scratch_dir();
    let socket = dir.join("d".repeat(120)).join("memlink.sock");
    let len = socket.as_os_str().len();
    let config = ClientConfig::default().reconnect_timeout(Duration::MAX);
    let (tx, rx) = std::sync::mpsc::channel();
    let connecting = socket.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Client::with_config(&connecting, config).map(drop));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the client is still trying to connect")
        .unwrap_err();
    let want = format!(
        "the socket path {} is {len} bytes; a Unix socket's path holds at most 107",
        socket.display()
    );
    assert!(err.to_string().contains(&want), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A socket path that names a directory that is not there yet (`dir/`) is refused at
/// once, even by a client told to keep trying for as long as the daemon is not there: no
/// daemon can ever bind it. Before, it was "nothing listens at ...", tried again for good.
#[test]
fn a_socket_path_naming_a_directory_is_refused_at_once() {
    let dir = common::scratch_dir();
    let socket = format!("{}/", dir.join("not-made").display());
    let config = ClientConfig::default().reconnect_timeout(Duration::MAX);
    let (tx, rx) = std::sync::mpsc::channel();
    let connecting = socket.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Client::with_config(&connecting, config).map(drop));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the client is still trying to connect")
        .unwrap_err();
    let want = format!("the socket path {socket} names a directory, not a file");
    assert!(err.to_string().contains(&want), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A name far too long to carry is refused with an error that shows its start and its
/// length, not the whole name (an error of megabytes).
#[test]
fn a_name_megabytes_long_is_refused_with_an_error_of_a_line() {
    let daemon = Daemon::start(Setup::modules(&["async_echo"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let echo = client.module("async_echo").unwrap();
    let long = "é".repeat(1 << 20);
    let err = client.call(echo, &long, b"").unwrap_err().to_string();
    assert!(
        err.contains("(2097152 bytes) is longer than 64 bytes") && err.len() < 300,
        "{}",
        &err[..err.len().min(300)]
    );
    // The client serves on.
    assert_eq!(
        decoded::<u64>(&client.call(echo, "slow_sync", &encoded(&(1u64,))).unwrap()),
        1
    );
}

/// A daemon that wrote bytes after its welcome (the protocol has it send nothing more)
/// and then went away is seen to be gone: a call waiting on it without a deadline ends
/// with `DaemonGone`, as it does when a daemon goes away without a word. Before, the
/// client's look at the socket peeked, found the stray byte, and took the daemon for
/// alive for good: the call waited for ever.
#[test]
fn a_daemon_that_wrote_a_stray_byte_and_went_away_is_seen_to_be_gone() {
    use memlink_ipc::control::{self, Answer, Claims, Hello, Welcome};
    use memlink_ipc::slot::SlotState;
    use std::os::fd::AsFd;
    let dir = common::scratch_dir();
    let socket = dir.join("memlink.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // A daemon in this process speaking the protocol's own messages: it welcomes the
    // client, waits for its call, writes one byte it should not, and goes away.
    let daemon = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let (hello, _) = control::recv::<Hello>(&stream).unwrap();
        let (segment, fd) = memlink_ipc::Segment::create(hello.geometry).unwrap();
        let welcome = Answer::Welcome(Welcome {
            version: memlink_ipc::PROTOCOL_VERSION,
            connection: 1,
            geometry: hello.geometry,
            in_place: true,
            max_shm: hello.geometry.len(),
            modules: vec!["basic".into()],
            workers: vec![Claims::All],
        });
        control::send(&stream, &welcome, Some(fd.as_fd())).unwrap();
        let submitted = || {
            (0..hello.geometry.slots)
                .any(|i| segment.slot(i).unwrap().state() == Some(SlotState::Submitted))
        };
        while !submitted() {
            std::thread::sleep(Duration::from_millis(1));
        }
        stream.write_all(b"x").unwrap();
    });
    let config = ClientConfig::default().reconnect_timeout(Duration::from_millis(100));
    let client = Client::with_config(&socket, config).unwrap();
    let basic = client.module("basic").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // No deadline: only seeing the daemon gone ends the wait.
        let _ = tx.send(client.call(basic, "echo", b"x").map(|reply| reply.to_vec()));
    });
    daemon.join().unwrap();
    // Only a hang reaches this watchdog; it asserts nothing about speed.
    let result = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the call still waits on a daemon that went away");
    assert!(
        matches!(result, Err(RuntimeError::DaemonGone { .. })),
        "{result:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A link of the `hazards` fixture's `FatLink`, as the client writes it.
#[derive(serde::Serialize)]
struct FatLink {
    pad: [[u64; 32]; 4],
    next: Option<Box<FatLink>>,
}

/// A valid argument whose decoding takes a lot of stack (a recursive type 100 levels
/// deep, each level large) is taken through the daemon as it is in-process (from
/// `memlink call`'s main thread): a call's thread has a main thread's stack. Before, the
/// worker's threads had a spawned thread's 2 MiB, the decoding overflowed it, the worker
/// died and the call failed with `WorkerDied`.
#[test]
fn an_argument_deep_on_the_stack_is_taken_as_in_process() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let mut chain = None;
    for depth in (1..=100u64).rev() {
        chain = Some(Box::new(FatLink {
            pad: [[depth; 32]; 4],
            next: chain,
        }));
    }
    let args = encoded(&(chain.unwrap(),));
    let out = client.call(hazards, "fat_chain_len", &args).unwrap();
    assert_eq!(decoded::<u32>(&out), 100);
}
