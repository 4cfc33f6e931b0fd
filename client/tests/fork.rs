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
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    // In a process of its own, started for it: a fork from the test harness's many
    // threads could inherit a lock another thread held.
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_client_used_in_a_forked_child_connects_on_its_own",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
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
