//! A client used in a child forked from the process that connected it: the child's calls
//! go over a connection of its own, never through the slots its parent goes on using.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Daemon, Setup};
use memlink_client::{CallOptions, Client, ClientConfig};

const ROLE: &str = "MEMLINK_TEST_FORK_ROLE";
const SOCKET: &str = "MEMLINK_TEST_FORK_SOCKET";

/// Calls through `client` `rounds` times, each with words of its own (`who`): how many
/// replies were not the call's own words, or were errors.
fn wrong_replies(client: &Client, who: &str, rounds: u32) -> u32 {
    let basic = client.module("basic").unwrap();
    // A deadline turns a call lost to the other process into an error, not a hang.
    let options = CallOptions::default().timeout(Duration::from_secs(10));
    let mut wrong = 0;
    for round in 0..rounds {
        let word = format!("{who}{round}");
        match client.call_with(basic, "echo", word.as_bytes(), &options) {
            Ok(out) if *out == *word.as_bytes() => {}
            _ => wrong += 1,
        }
    }
    wrong
}

/// The parent and its child call through the same client at once, on one slot: each gets
/// its own replies.
#[test]
fn a_client_used_in_a_forked_child_connects_on_its_own() {
    if std::env::var_os(ROLE).is_some() {
        return forking(std::env::var_os(SOCKET).unwrap());
    }
    in_a_process_of_its_own("a_client_used_in_a_forked_child_connects_on_its_own");
}

/// Runs the test `name` again in a process of its own, started for it (a fork from the
/// test harness's many threads could inherit a lock another thread held), against a
/// daemon serving `basic`; the run's role and the socket are told through the
/// environment.
fn in_a_process_of_its_own(name: &str) {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let status = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "fork")
        .env(SOCKET, &daemon.socket)
        .status()
        .unwrap();
    assert!(status.success(), "{status}\n{}", daemon.log_text());
}

fn forking(socket: std::ffi::OsString) {
    let client = Client::with_config(&socket, ClientConfig::default().slots(1)).unwrap();
    assert_eq!(wrong_replies(&client, "before", 1), 0);
    // SAFETY: the process has one thread of its own (the harness runs this test on its
    // main thread); the child uses only the client and exits with `_exit`, running no
    // destructor of the parent's.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let wrong = wrong_replies(&client, "child", 300);
        // SAFETY: ends the child at once, as a forked child should.
        unsafe { libc::_exit(i32::from(wrong != 0)) };
    }
    let wrong = wrong_replies(&client, "parent", 300);
    let mut status = 0;
    // SAFETY: waits for the child forked above, into a local.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert_eq!(wrong, 0, "the parent got replies not its own");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child got replies not its own (wait status {status})"
    );
}

/// What a client made before a fork (an argument buffer in a slot, an output read in
/// place, a batch) is its parent's in the child: the child's call through the buffer is
/// refused, saying so; reading the output panics, saying so; the batch answers each call
/// with the refusal; and the parent's go on as they were. Before, parent and child wrote
/// into one slot and each got the other's replies (27 of 3,000 in a reproducer), and the
/// child read the parent's later results through the output.
#[test]
fn buffers_outputs_and_batches_made_before_a_fork_are_refused_in_the_child() {
    if std::env::var_os(ROLE).is_some() {
        return made_before_the_fork(std::env::var_os(SOCKET).unwrap());
    }
    in_a_process_of_its_own(
        "buffers_outputs_and_batches_made_before_a_fork_are_refused_in_the_child",
    );
}

fn made_before_the_fork(socket: std::ffi::OsString) {
    let client = Client::connect(&socket).unwrap();
    let basic = client.module("basic").unwrap();
    let mut buffer = client.arg_buffer(6).unwrap();
    buffer.copy_from_slice(b"parent");
    let output = client.call(basic, "echo", b"kept").unwrap();
    let mut batch = client.batch();
    batch.push(basic, "echo", b"batched").unwrap();
    let options = CallOptions::default().timeout(Duration::from_secs(10));
    // SAFETY: the process has one thread of its own (see `forking`); the child exits
    // with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let refused = client
            .call_slot(basic, "echo", &mut buffer, &options)
            .is_err_and(|e| e.to_string().contains("made before this process forked"));
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| output.len()));
        let panicked = read.is_err();
        let batch_refused = batch
            .run()
            .into_iter()
            .all(|r| r.is_err_and(|e| e.to_string().contains("made before this process forked")));
        // The child's own calls go on, over a connection of its own.
        let own = client
            .call(basic, "echo", b"child")
            .is_ok_and(|o| *o == *b"child");
        let code = [refused, panicked, batch_refused, own]
            .iter()
            .position(|ok| !ok)
            .map_or(0, |i| i as i32 + 1);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above, into a local.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child's check {} failed (1: the buffer, 2: the output, 3: the batch, 4: its own call; wait status {status})",
        libc::WEXITSTATUS(status)
    );
    // The parent's are as they were.
    assert_eq!(&*output, b"kept");
    let reply = client
        .call_slot(basic, "echo", &mut buffer, &options)
        .unwrap();
    assert_eq!(&*reply, b"parent");
    let answers = batch.run();
    assert!(
        matches!(&answers[..], [Ok(o)] if **o == *b"batched"),
        "{answers:?}"
    );
}
