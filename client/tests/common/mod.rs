//! Builds the `memlink` command and the example modules once per test binary, and runs
//! real daemons on sockets of their own.
#![allow(dead_code)] // each test binary uses its own part of this harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Paths of what the workspace builds: cdylibs by target name, and the `memlink` binary.
struct Built {
    modules: Vec<(String, PathBuf)>,
    memlink: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .current_dir(workspace())
            .args([
                "build",
                "--quiet",
                "--message-format=json-render-diagnostics",
            ])
            .args(["-p", "memlink-examples", "--examples"])
            .args([
                "-p",
                "memlink-greeter-v1",
                "-p",
                "memlink-greeter-v2",
                "-p",
                "memlink-greeter-v3",
                "--lib",
            ])
            .args(["-p", "memlink-runtime", "--bin", "memlink"])
            .output()
            .expect("run cargo to build the modules and the memlink command");
        assert!(
            out.status.success(),
            "building failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut modules = Vec::new();
        let mut memlink = None;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let name = msg["target"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if name == "memlink" {
                if let Some(exe) = msg["executable"].as_str() {
                    memlink = Some(PathBuf::from(exe));
                }
            }
            for file in msg["filenames"].as_array().into_iter().flatten() {
                let file = PathBuf::from(file.as_str().unwrap_or_default());
                if file.extension().is_some_and(|e| e == "so") {
                    modules.push((name.clone(), file));
                }
            }
        }
        Built {
            modules,
            memlink: memlink.expect("the memlink binary was built"),
        }
    })
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The built cdylib of the example `name`.
pub fn module_path(name: &str) -> PathBuf {
    built()
        .modules
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("no cdylib named `{name}` was built"))
}

/// The `memlink` command.
pub fn memlink() -> PathBuf {
    built().memlink.clone()
}

/// A directory of this test's own, in the temporary directory (a socket's path must be
/// short), removed when the test binary exits (unless `MEMLINK_KEEP_SCRATCH` is set, to
/// look at what a failed test left): a run of the tests left some thirty directories,
/// half a gigabyte of module copies, behind each time.
pub fn scratch_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    let dir = std::env::temp_dir().join(format!(
        "memlink-client-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if std::env::var_os("MEMLINK_KEEP_SCRATCH").is_none() {
        SCRATCH
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(dir.clone());
        // SAFETY: `atexit` takes any `extern "C" fn()`; `remove_scratch_dirs` never
        // unwinds out of it (nothing in it panics: every error is ignored).
        AT_EXIT.call_once(|| unsafe {
            libc::atexit(remove_scratch_dirs);
        });
    }
    dir
}

/// The directories [`scratch_dir`] made.
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the directories [`scratch_dir`] made, as the test binary exits: every test has
/// ended and every daemon it started has been stopped by then (a `Daemon` stops its
/// process when dropped).
extern "C" fn remove_scratch_dirs() {
    // A lock some thread still holds is not waited for at exit: the directories stay.
    if let Ok(dirs) = SCRATCH.try_lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A daemon serving a copy of `basic` (`libbasic.so` in a directory of its own, returned)
/// in a worker of its own, beside `hazards` in the main one: a test can break the copy
/// ([`break_library`]) so that its worker cannot be started again.
pub fn basic_in_its_own_worker(metrics: bool) -> (PathBuf, Daemon) {
    let dir = scratch_dir();
    let file = dir.join("libbasic.so");
    std::fs::copy(module_path("basic"), &file).unwrap();
    let toml = format!(
        "[[modules]]\nname = \"basic\"\npath = {file:?}\nlimits = {{ open_files = 256 }}\n\
         [[modules]]\nname = \"hazards\"\npath = {:?}\n",
        module_path("hazards"),
    );
    let daemon = Daemon::start(Setup {
        toml,
        metrics,
        ..Setup::default()
    });
    (file, daemon)
}

/// Replaces `file` by one that is no library, renamed over it as a build would.
pub fn break_library(file: &std::path::Path) {
    let broken = file.with_extension("so.new");
    std::fs::write(&broken, b"not a library").unwrap();
    std::fs::rename(&broken, file).unwrap();
}

/// A running `memlink serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: PathBuf,
    /// Everything the daemon wrote to stderr so far.
    pub log: Arc<Mutex<String>>,
    pub metrics_addr: Option<String>,
}

/// Options of a daemon under test.
#[derive(Default, Clone)]
pub struct Setup {
    /// `NAME=EXAMPLE` or `EXAMPLE`: served by the example's cdylib path.
    pub modules: Vec<String>,
    pub extra: Vec<String>,
    /// TOML lines added to a config file (besides socket and modules).
    pub toml: String,
    pub metrics: bool,
    /// Environment variables the daemon is started with, besides the tests' own.
    pub env: Vec<(String, PathBuf)>,
}

impl Setup {
    pub fn modules(names: &[&str]) -> Setup {
        Setup {
            modules: names.iter().map(|s| s.to_string()).collect(),
            ..Setup::default()
        }
    }
}

impl Daemon {
    pub fn start(setup: Setup) -> Daemon {
        let dir = scratch_dir();
        Daemon::start_in(dir, setup)
    }

    /// Starts a daemon on `dir/memlink.sock` (a restarted daemon reuses a directory).
    pub fn start_in(dir: PathBuf, setup: Setup) -> Daemon {
        let socket = dir.join("memlink.sock");
        let mut cmd = Command::new(memlink());
        cmd.arg("serve").arg("--socket").arg(&socket);
        let mut metrics_addr = None;
        if setup.metrics {
            let addr = format!("127.0.0.1:{}", free_port());
            cmd.arg("--metrics-addr").arg(&addr);
            metrics_addr = Some(addr);
        }
        if !setup.toml.is_empty() {
            let file = dir.join("memlink.toml");
            let text = format!("socket = {:?}\n{}\n", socket.to_str().unwrap(), setup.toml);
            std::fs::write(&file, text).unwrap();
            cmd.arg("--config").arg(&file);
        }
        cmd.args(&setup.extra);
        // What the daemon leaves in its temporary directory (killed when dropped, it
        // removes nothing) goes with the test's directory.
        cmd.env("TMPDIR", &dir);
        cmd.envs(setup.env.iter().map(|(k, v)| (k, v)));
        for m in &setup.modules {
            match m.split_once('=') {
                Some((name, example)) => {
                    cmd.arg(format!("{name}={}", module_path(example).display()))
                }
                None => cmd.arg(module_path(m)),
            };
        }
        // A process group of its own (it and its workers), as a service manager or a
        // shell job gives it: a signal to the group reaches none of the tests.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // `SIGHUP` as a daemon started from a terminal has it, whatever the tests were
        // started with (under `nohup` it is ignored, which the daemon keeps).
        // SAFETY: `signal` is async-signal-safe, as what runs between `fork` and `exec`
        // must be.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
                Ok(())
            });
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start memlink serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let daemon = Daemon {
            child,
            socket,
            dir,
            log,
            metrics_addr,
        };
        daemon.wait_serving();
        daemon
    }

    fn wait_serving(&self) {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if self.log.lock().unwrap().contains("serving") {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "the daemon did not start serving:\n{}",
            self.log.lock().unwrap()
        );
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The worker process's pid (the daemon's child that is not a zombie).
    pub fn worker_pid(&self) -> i32 {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = children(self.pid()).into_iter().next() {
                return pid;
            }
            assert!(Instant::now() < until, "no worker process");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The pid of the worker named `name` (`--worker NAME` on its command line).
    pub fn worker_pid_named(&self, name: &str) -> i32 {
        let until = Instant::now() + Duration::from_secs(10);
        let wanted = format!("\0--worker\0{name}\0");
        loop {
            let found = children(self.pid()).into_iter().find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&wanted))
            });
            if let Some(pid) = found {
                return pid;
            }
            assert!(Instant::now() < until, "no worker process named {name}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the daemon's log holds `text` (its own lines, and its modules' log
    /// records, forwarded).
    pub fn wait_log(&self, text: &str) {
        let until = Instant::now() + Duration::from_secs(20);
        while !self.log_text().contains(text) {
            assert!(
                Instant::now() < until,
                "no `{text}` in the daemon's log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `GET path` on the metrics endpoint: status and body.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        let addr = self.metrics_addr.as_ref().expect("started with metrics");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Sends SIGTERM and waits for the daemon to exit; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(self.pid(), rustix::process::Signal::TERM);
        self.wait_exit()
    }

    /// Sends SIGTERM to the daemon's whole process group, its workers too (as
    /// `kill -- -PGID`, `timeout` and systemd's default stop do), and waits for the daemon
    /// to exit; its exit status.
    pub fn terminate_group(&mut self) -> std::process::ExitStatus {
        self.signal_group(rustix::process::Signal::TERM)
    }

    /// Sends `sig` to the daemon's whole process group and waits for the daemon to exit;
    /// its exit status.
    pub fn signal_group(&mut self, sig: rustix::process::Signal) -> std::process::ExitStatus {
        if let Some(group) = rustix::process::Pid::from_raw(self.pid()) {
            let _ = rustix::process::kill_process_group(group, sig);
        }
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < until, "the daemon did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let workers = children(self.pid());
            signal(self.pid(), rustix::process::Signal::KILL);
            for w in workers {
                signal(w, rustix::process::Signal::KILL);
            }
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn signal(pid: i32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// A hand-made connection to `daemon`: the handshake done with the protocol's own
/// messages (a hello for two slots of 4 KiB), the segment mapped, nothing of the client
/// library in the way. The stream, the segment and all the welcome said.
pub fn raw_welcome(
    daemon: &Daemon,
) -> (
    std::os::unix::net::UnixStream,
    memlink_ipc::Segment,
    memlink_ipc::control::Welcome,
) {
    use memlink_ipc::control::{self, Answer, Hello};
    let stream = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    let geometry = memlink_ipc::Geometry::new(2, 4096).unwrap();
    control::send(
        &stream,
        &Hello {
            version: memlink_ipc::PROTOCOL_VERSION,
            geometry,
        },
        None,
    )
    .unwrap();
    let (answer, fd) = control::recv::<Answer>(&stream).unwrap();
    let Answer::Welcome(welcome) = answer else {
        panic!("refused: {answer:?}")
    };
    let segment = memlink_ipc::Segment::map(&fd.unwrap(), welcome.geometry).unwrap();
    (stream, segment, welcome)
}

/// Submits a call of `hazards`' `hold` for `ms` ms, with a deadline `deadline` from now,
/// in slot 0 of the `segment` of a [`raw_welcome`] connection, and rings.
pub fn submit_hold(segment: &memlink_ipc::Segment, ms: u64, deadline: impl Into<Option<Duration>>) {
    let slot = segment.slot(0).unwrap();
    let args = rmp_serde::to_vec(&(ms,)).unwrap();
    slot.write_data(0, &args);
    slot.submit(&memlink_ipc::slot::Submit {
        op: memlink_ipc::slot::Op::Call,
        module: "hazards",
        method: "hold",
        args_len: args.len(),
        deadline_ns: deadline
            .into()
            .map_or(0, |d| memlink_ipc::clock::now_ns() + d.as_nanos() as u64),
        trace_id: 0,
        span_id: 0,
        checked: 0,
    });
    segment.header().ring_all();
}

/// Live (not zombie) children of `pid`, from /proc.
pub fn children(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: the fields after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 1 && fields[1] == pid.to_string() && fields[0] != "Z" {
            found.push(child);
        }
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
