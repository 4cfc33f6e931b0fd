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
    memlink_os_with(args, |_| {})
}

/// [`memlink_os`], the command made ready by `prepare` before it starts.
pub fn memlink_os_with(args: &[&OsStr], prepare: impl FnOnce(&mut Command)) -> Output {
    use std::time::{Duration, Instant};
    let mut command = Command::new(env!("CARGO_BIN_EXE_memlink"));
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    prepare(&mut command);
    let mut child = command.spawn().expect("run memlink");
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

/// `memlink serve --socket SOCKET MODULE`, once it says it is serving.
pub fn serve(socket: &std::path::Path, module: &str) -> std::process::Child {
    serve_all(socket, &[OsStr::new(module)]).0
}

/// `memlink serve --socket SOCKET MODULE...`, once it says it is serving, with what it
/// logged until then.
pub fn serve_all(socket: &std::path::Path, modules: &[&OsStr]) -> (std::process::Child, String) {
    let (daemon, seen, _rest) = serve_logging(socket, modules);
    (daemon, seen)
}

/// [`serve_all`], with the lines it logs from then on, until it exits.
pub fn serve_logging(
    socket: &std::path::Path,
    modules: &[&OsStr],
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    serve_logging_with(socket, modules, |_| {})
}

/// [`serve_logging`], the command made ready by `prepare` before it starts.
pub fn serve_logging_with(
    socket: &std::path::Path,
    modules: &[&OsStr],
    prepare: impl FnOnce(&mut std::process::Command),
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_memlink"));
    command
        .arg("serve")
        .arg("--socket")
        .arg(socket)
        .args(modules)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    prepare(&mut command);
    let mut daemon = command.spawn().expect("start memlink serve");
    let (lines, log) = std::sync::mpsc::channel();
    let err = daemon.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(err)).map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = String::new();
    while !seen.contains("serving") {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match log.recv_timeout(left) {
            Ok(line) => seen += &(line + "\n"),
            Err(_) => {
                let _ = daemon.kill();
                let _ = daemon.wait();
                panic!("the daemon did not start serving:\n{seen}");
            }
        }
    }
    (daemon, seen, log)
}

/// Stops `daemon` as a user would (SIGTERM), and checks it ended well.
pub fn stop(mut daemon: std::process::Child) {
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(daemon.wait().unwrap().success());
}

/// A socket at `dir/silent.sock` that listens and never accepts: a connection and its
/// hello queue up unanswered, as with a daemon that never welcomes. Silent while the
/// listener is kept.
pub fn silent_socket(dir: &std::path::Path) -> (std::os::unix::net::UnixListener, String) {
    let socket = dir.join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    (listener, socket.to_str().unwrap().to_owned())
}

/// Checks that `out`, a command given `--timeout 300ms` against [`silent_socket`]'s
/// `socket`, failed saying the daemon there did not welcome it in time.
pub fn assert_no_welcome_within_300ms(out: &Output, socket: &str) {
    let err = super::stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the daemon at {socket} did not welcome the connection within 300ms"
        )),
        "{err}"
    );
}
