//! README.md's client snippet ("Serving modules to other processes"), compiled and run
//! against a real daemon. The code between the markers below is the README's text, with
//! the socket's path given by the test; the test fails when the two drift apart.

mod common;

use common::{Daemon, Setup};

// README begin
use memlink_client::{Caller, Client, RuntimeError};

fn sum(caller: &impl Caller) -> Result<u32, RuntimeError> {
    let basic = caller.module("basic")?;
    caller.call_typed(basic, "add", &(2u32, 3u32))
}

fn snippet(socket: &str) -> Result<(), RuntimeError> {
    let client = Client::connect(socket)?; // or a memlink_runtime::Runtime
    assert_eq!(sum(&client)?, 5);
    Ok(())
}
// README end

#[test]
fn the_readme_client_snippet_runs_against_a_daemon() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    snippet(daemon.socket.to_str().unwrap()).unwrap();

    // The same code against the in-process runtime, as the snippet's comment says.
    let runtime = memlink_runtime::Runtime::with_local_resolver();
    let path = common::module_path("basic");
    runtime
        .load(memlink_runtime::ModuleRef::from_path(path))
        .unwrap();
    assert_eq!(sum(&runtime).unwrap(), 5);
}

/// The README's block, as the lines of code it holds (doc-hidden lines dropped, spaces
/// collapsed), against the code above (the `snippet` wrapper dropped).
#[test]
fn the_readme_shows_this_code() {
    let readme = std::fs::read_to_string(common::workspace().join("README.md")).unwrap();
    let section = readme
        .split("## Serving modules to other processes")
        .nth(1)
        .expect("the README's daemon section");
    let block = section
        .split("```rust,no_run\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a rust block in the daemon section");
    let normal = |line: &str| line.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown: Vec<String> = block
        .lines()
        .filter(|l| !l.trim_start().starts_with("# ") && !l.trim().is_empty())
        .map(normal)
        .collect();
    let source = include_str!("readme.rs");
    let ours = source
        .split("// README begin\n")
        .nth(1)
        .and_then(|s| s.split("// README end").next())
        .unwrap();
    let ours: Vec<String> = ours
        .lines()
        .filter(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with("fn snippet(") && l != "Ok(())" && l != "}"
        })
        .map(|l| {
            normal(&l.replace(
                "Client::connect(socket)",
                "Client::connect(\"/tmp/memlink.sock\")",
            ))
        })
        .collect();
    let shown: Vec<String> = shown.into_iter().filter(|l| l != "}").collect();
    assert_eq!(
        shown, ours,
        "README.md's client snippet and this test differ"
    );
}
