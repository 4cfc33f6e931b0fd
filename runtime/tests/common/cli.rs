//! Running the `memlink` binary as a user would.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// `memlink` with `args`, run to its end.
pub fn memlink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(args)
        .output()
        .expect("run memlink")
}

/// Its standard output, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The path of the `basic` example module, as text.
pub fn basic() -> String {
    super::module_path("basic").to_str().unwrap().to_owned()
}

/// `memlink call MODULE METHOD --args-file FILE`.
pub fn call_with_args_file(module: &str, method: &str, file: &std::path::Path) -> Output {
    memlink(&[
        "call",
        module,
        method,
        "--args-file",
        file.to_str().unwrap(),
    ])
}

/// Runs `memlink` with `args` (any bytes) to its end, or kills it and fails after 60 s:
/// each use expects it to stop on its own, so a start that goes on serving is a failure
/// rather than a hang.
pub fn memlink_os(args: &[&OsStr]) -> Output {
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run memlink");
    let until = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("memlink {args:?} did not stop:\n{}", super::stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}
