//! The `daemon` group: calls through `memlink serve` from this (another) process, beside
//! the in-process call and the baseline a user would otherwise write: the same calls as
//! MessagePack frames over a Unix socket, to a server process that calls the same module
//! in its own runtime.
//!
//! The daemon, its worker, the socket server and the extra client processes are this
//! executable started again in a role ([`role`]): the report's `main` hands them over
//! before anything else.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use memlink_client::{ArgSlot, CallOptions, Client, ClientConfig, RemoteModule};
use memlink_example_types::datasets::{Bytes, BytesRef};
use memlink_runtime::daemon::{self, DaemonConfig, ModuleEntry, Trust};
use memlink_runtime::{ModuleRef, Runtime};

use crate::figures::Report;
use crate::measure::{self, Config, Sample};
use crate::modules::example;

const SERVE: &str = "__bench_serve";
const SOCKET_SERVER: &str = "__bench_socket_server";
const FLOOD: &str = "__bench_flood";

/// Runs this process as a daemon, a worker, the socket server or a flooding client when
/// `args` (without the executable) ask for one; `None` otherwise.
pub fn role(args: &[String]) -> Option<ExitCode> {
    let code = |r: Result<(), String>| match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    };
    match args.first().map(String::as_str)? {
        daemon::WORKER_SUBCOMMAND => {
            let fd = daemon::worker_control_fd(args)?;
            // SAFETY: `role` runs first thing in `main`, before anything else could take
            // `fd`, which the supervisor handed to this process alone.
            let control = unsafe { daemon::take_worker_control(fd) };
            Some(code(control.and_then(daemon::run_worker)))
        }
        SERVE => {
            let mut config = DaemonConfig::new(args.get(1)?);
            if args.get(2).map(String::as_str) == Some("nobody") {
                config.trust = Trust::Nobody;
            }
            for path in &args[3..] {
                config.modules.push(ModuleEntry::new(None, path));
            }
            Some(code(daemon::serve(config)))
        }
        SOCKET_SERVER => Some(code(socket_server(Path::new(args.get(1)?), args.get(2..)?))),
        FLOOD => Some(code(flood(
            Path::new(args.get(1)?),
            args.get(2)?.parse().ok()?,
        ))),
        _ => None,
    }
}

/// A child process of this executable, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        // SIGTERM lets a daemon take its worker down with it.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Result<Process, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map(Process)
        .map_err(|e| format!("cannot start a helper process: {e}"))
}

fn wait_for(socket: &Path) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(socket).is_err() {
        if Instant::now() > until {
            return Err(format!("nothing serves on {}", socket.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn start_daemon(
    dir: &Path,
    name: &str,
    trust: &str,
    modules: &[PathBuf],
) -> Result<(Process, PathBuf), String> {
    let socket = dir.join(name);
    let mut args = vec![
        SERVE.to_owned(),
        socket.display().to_string(),
        trust.to_owned(),
    ];
    args.extend(modules.iter().map(|m| m.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let process = spawn(&args)?;
    wait_for(&socket)?;
    Ok((process, socket))
}

/// Measures the group (skipped with a note if the daemon cannot start here).
pub fn figures(report: &mut Report, cfg: &Config) {
    if let Err(e) = measure_all(report, cfg) {
        eprintln!("  daemon group skipped: {e}");
    }
}

fn measure_all(report: &mut Report, cfg: &Config) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("memlink-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let modules = [example("basic")?, example("datasets")?];
    let (daemon, socket) = start_daemon(&dir, "trusted.sock", "same-user", &modules)?;
    let base_socket = dir.join("baseline.sock");
    let _server = spawn(&[
        SOCKET_SERVER,
        &base_socket.display().to_string(),
        &modules[0].display().to_string(),
        &modules[1].display().to_string(),
    ])?;
    wait_for(&base_socket)?;
    let err = |e: memlink_client::RuntimeError| e.to_string();

    // Small calls.
    let client = Client::connect(&socket).map_err(err)?;
    let basic = client.module("basic").map_err(err)?;
    let datasets = client.module("datasets").map_err(err)?;
    // Every operation answers as it should before it is timed, and a failure in the
    // timed loops stops the report: an error's path is never what a figure times.
    let noop = || client.call(basic, "noop", b"").expect("noop answers").len();
    if client.call(basic, "noop", b"").map_err(err)?.as_ref() != [0xc0] {
        return Err("the daemon's noop did not answer nil".to_owned());
    }
    report.ns(
        "daemon_noargs_ns",
        measure::run(cfg, noop),
        "noop by name through the daemon, from this process, calls back to back (both sides spinning)",
    );
    report.ns(
        "daemon_noargs_sleeping_ns",
        one_at_a_time(cfg, Duration::from_millis(3), noop),
        "noop by name through the daemon after 3 ms idle (the worker and this caller asleep on futexes), each call timed alone",
    );
    report.ns(
        "futex_wake_sleeping_ns",
        Sample::of(
            crate::wake::sleeping_round_trip(Duration::from_millis(3), 301),
            1,
        ),
        "control: a thread asleep 3 ms on a futex woken by this one, which spins 20 µs for its answer and then sleeps too; no memlink (each round trip timed alone)",
    );
    let mut baseline = SocketClient::connect(&base_socket)?;
    if baseline.call("basic", "noop", &[])? != 1 {
        return Err("the baseline's noop did not answer nil".to_owned());
    }
    report.ns(
        "socket_msgpack_noargs_ns",
        measure::run(cfg, || baseline.call("basic", "noop", &[]).expect("noop answers")),
        "baseline: [method, args] as a MessagePack frame over a Unix socket to a server process calling the module in its runtime, reply framed back",
    );
    report.ns(
        "socket_msgpack_noargs_sleeping_ns",
        one_at_a_time(cfg, Duration::from_millis(3), || {
            baseline.call("basic", "noop", &[]).expect("noop answers")
        }),
        "the baseline after 3 ms idle (its server asleep in read), each call timed alone",
    );
    let mut batch_op = || {
        let mut batch = client.batch();
        for _ in 0..8 {
            batch.push(basic, "noop", b"").expect("room for 8 calls");
        }
        let outputs = batch.run();
        assert!(outputs.iter().all(Result::is_ok), "every noop answers");
        outputs.len()
    };
    let batch = measure::run(cfg, &mut batch_op);
    report.ns(
        "daemon_batch8_per_call_ns",
        Sample {
            median_ns: batch.median_ns / 8.0,
            min_ns: batch.min_ns / 8.0,
            q1_ns: batch.q1_ns / 8.0,
            q3_ns: batch.q3_ns / 8.0,
            ..batch
        },
        "8 noop calls submitted with one wakeup and collected, per call",
    );

    growth(report, &socket, datasets_args(64 << 10))?;

    // Large arguments, trusted (read in place) and not (copied first).
    let big = ClientConfig::default()
        .slots(1)
        .slot_size((64 << 20) + (1 << 20));
    let big_client = Client::with_config(&socket, big.clone()).map_err(err)?;
    let big_datasets = big_client.module("datasets").map_err(err)?;
    for (label, len) in [("1kib", 1 << 10), ("1mib", 1 << 20), ("64mib", 64 << 20)] {
        let ns = in_place(cfg, &big_client, big_datasets, len)?;
        report.ns(&format!("daemon_zero_copy_{label}_ns"), ns, &format!("bytes_peek of {label} written once in an argument slot, called again and again (read in place, nothing copied)"));
    }
    let data = vec![7u8; 1 << 20];
    baseline.call("datasets", "bytes_peek", &data)?;
    report.ns(
        "socket_msgpack_1mib_ns",
        measure::run(cfg, || {
            baseline.call("datasets", "bytes_peek", &data).expect("bytes_peek answers")
        }),
        "baseline: bytes_peek of 1 MiB as a MessagePack bin over the Unix socket (encode, send, decode, call, reply)",
    );
    drop(big_client);
    let (untrusted, untrusted_socket) = start_daemon(&dir, "untrusted.sock", "nobody", &modules)?;
    let copying = Client::with_config(&untrusted_socket, big).map_err(err)?;
    let copying_datasets = copying.module("datasets").map_err(err)?;
    let ns = in_place(cfg, &copying, copying_datasets, 64 << 20)?;
    report.ns("daemon_untrusted_64mib_ns", ns, "bytes_peek of 64 MiB from a client the daemon does not trust: copied into the worker's memory before the call");
    let src = vec![1u8; 64 << 20];
    let mut dst = vec![0u8; 64 << 20];
    report.ns(
        "memcpy_64mib_ns",
        measure::run(cfg, || {
            dst.copy_from_slice(&src);
            dst[12345]
        }),
        "control: one copy of 64 MiB in this process",
    );
    drop(copying);
    drop(untrusted);

    // Scale: two client processes, a flooding neighbour, idle connections.
    let one = calls_per_sec(&socket, 1)?;
    report.value("daemon_clients_1_calls_per_sec", one);
    let two = calls_per_sec(&socket, 2)?;
    report.value("daemon_clients_2_calls_per_sec", two);
    // The same shape without memlink: client and server threads bouncing a word, one
    // pair, then two at once (each the median of three runs of 0.5 s).
    report.value(
        "pingpong_pairs_1_per_sec",
        crate::wake::pairs_per_sec(1, Duration::from_millis(500), 3),
    );
    report.value(
        "pingpong_pairs_2_per_sec",
        crate::wake::pairs_per_sec(2, Duration::from_millis(500), 3),
    );
    let quiet = one_at_a_time(cfg, Duration::ZERO, noop);
    report.ns(
        "daemon_latency_quiet_ns",
        quiet,
        "noop calls timed one by one, nothing else calling",
    );
    let flooder = spawn(&[FLOOD, &socket.display().to_string(), "60"])?;
    std::thread::sleep(Duration::from_millis(300));
    let mut flooder = flooder;
    let flooding = |f: &mut Process| matches!(f.0.try_wait(), Ok(None));
    if !flooding(&mut flooder) {
        return Err("the flooding client did not start calling".to_owned());
    }
    let flooded = one_at_a_time(cfg, Duration::ZERO, noop);
    // Still calling as fast as it can (it stops at its first failed call).
    if !flooding(&mut flooder) {
        return Err("the flooding client stopped while it was to flood".to_owned());
    }
    report.ns(
        "daemon_latency_flooded_ns",
        flooded,
        "the same while another client process calls as fast as it can",
    );
    drop(flooder);
    let before = tree_rss_kib(daemon.0.id());
    let idle: Vec<Client> = (0..1000)
        .filter_map(|_| Client::connect(&socket).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let after = tree_rss_kib(daemon.0.id());
    report.value("daemon_idle_connections", idle.len() as f64);
    report.value(
        "daemon_1000_idle_connections_mib",
        (after - before) / 1024.0,
    );
    drop(idle);
    let _ = datasets;
    drop(client);
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `bytes_peek`'s arguments: `len` raw bytes.
fn datasets_args(len: usize) -> Vec<u8> {
    vec![3u8; len]
}

/// What growing a connection's segment costs a call: a fresh client with 4 KiB slots
/// calls `bytes_peek` with `args` that do not fit, which connects again with slots that
/// do; beside it, the same call on a client already grown. Connecting the fresh client
/// is not timed.
fn growth(report: &mut Report, socket: &Path, args: Vec<u8>) -> Result<(), String> {
    let err = |e: memlink_client::RuntimeError| e.to_string();
    let small = ClientConfig::default().slot_size(4 << 10);
    let (mut growing, mut grown) = (Vec::new(), Vec::new());
    for _ in 0..31 {
        let client = Client::with_config(socket, small.clone()).map_err(err)?;
        let datasets = client.module("datasets").map_err(err)?;
        let t = Instant::now();
        client.call(datasets, "bytes_peek", &args).map_err(err)?;
        growing.push(t.elapsed().as_nanos() as f64);
        let t = Instant::now();
        client.call(datasets, "bytes_peek", &args).map_err(err)?;
        grown.push(t.elapsed().as_nanos() as f64);
    }
    let (growing, grown) = (Sample::of(growing, 1), Sample::of(grown, 1));
    let added = growing.median_ns - grown.median_ns;
    let kib = args.len() >> 10;
    report.ns(
        &format!("daemon_grow_{kib}kib_ns"),
        growing,
        &format!("bytes_peek of {kib} KiB from a client whose 4 KiB slots it outgrows: the call connects again with larger slots (31 fresh clients, each call timed alone)"),
    );
    report.ns(
        &format!("daemon_grown_{kib}kib_ns"),
        grown,
        "the same call again on each of those clients, grown",
    );
    report.value("daemon_grow_added_ns", added);
    Ok(())
}

/// Times `bytes_peek` of `len` bytes written once into a kept argument slot.
fn in_place(
    cfg: &Config,
    client: &Client,
    datasets: RemoteModule,
    len: usize,
) -> Result<Sample, String> {
    let mut slot: ArgSlot = client.arg_buffer(len).map_err(|e| e.to_string())?;
    slot.fill(3);
    let options = CallOptions::default();
    client
        .call_slot(datasets, "bytes_peek", &mut slot, &options)
        .map_err(|e| e.to_string())?;
    Ok(measure::run(cfg, || {
        client
            .call_slot(datasets, "bytes_peek", &mut slot, &options)
            .expect("bytes_peek answers")
            .len()
    }))
}

/// Each call timed alone after `gap`, as a sample of batches of one.
fn one_at_a_time<T>(cfg: &Config, gap: Duration, mut op: impl FnMut() -> T) -> Sample {
    let mut times = Vec::new();
    let start = Instant::now();
    let budget = if gap.is_zero() {
        cfg.budget
    } else {
        cfg.budget * 2
    };
    while times.len() < 31 || (start.elapsed() < budget && times.len() < 20_000) {
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        let t = Instant::now();
        std::hint::black_box(op());
        times.push(t.elapsed().as_nanos() as f64);
    }
    Sample::of(times, 1)
}

/// Calls per second of `n` client processes calling noop for a second each, at once.
fn calls_per_sec(socket: &Path, n: usize) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let children: Vec<Child> = (0..n)
        .map(|_| {
            Command::new(&exe)
                .args([FLOOD, &socket.display().to_string(), "1"])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let mut total = 0.0;
    for child in children {
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        total += text
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("a client said `{text}`"))?;
    }
    Ok(total)
}

/// The flooding client: noop calls for `secs` seconds; prints calls per second.
fn flood(socket: &Path, secs: u64) -> Result<(), String> {
    let client = Client::connect(socket).map_err(|e| e.to_string())?;
    let basic = client.module("basic").map_err(|e| e.to_string())?;
    let until = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut calls = 0u64;
    while Instant::now() < until {
        for _ in 0..64 {
            client.call(basic, "noop", b"").map_err(|e| e.to_string())?;
        }
        calls += 64;
    }
    println!("{:.0}", calls as f64 / start.elapsed().as_secs_f64());
    Ok(())
}

/// Resident memory of `pid` and its children, KiB.
fn tree_rss_kib(pid: u32) -> f64 {
    let rss = |p: u32| -> f64 {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0.0)
    };
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    rss(pid)
        + children
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .map(rss)
            .sum::<f64>()
}

/// The baseline's client: `[module, method, args]` as MessagePack, length-prefixed; the
/// reply is a byte (0: the result follows; 1: an error's words follow), length-prefixed.
struct SocketClient {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl SocketClient {
    fn connect(socket: &Path) -> Result<SocketClient, String> {
        let stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
        Ok(SocketClient {
            stream,
            buf: Vec::new(),
        })
    }

    /// Calls `method` of `module` with `args`: the result's length, or the server's
    /// error (its reply's first byte says which).
    fn call(&mut self, module: &str, method: &str, args: &[u8]) -> Result<usize, String> {
        let frame = rmp_serde::to_vec(&(module, method, BytesRef(args))).expect("encodable");
        write_frame(&mut self.stream, &frame).map_err(|e| e.to_string())?;
        read_frame(&mut self.stream, &mut self.buf).map_err(|e| e.to_string())?;
        match self.buf.split_first() {
            Some((0, out)) => Ok(out.len()),
            Some((_, why)) => Err(String::from_utf8_lossy(why).into_owned()),
            None => Err("an empty reply".to_owned()),
        }
    }
}

fn write_frame(stream: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    stream.write_all(&(body.len() as u32).to_le_bytes())?;
    stream.write_all(body)
}

fn read_frame(stream: &mut UnixStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    stream.read_exact(buf)
}

/// The baseline's server: one thread per connection, each call decoded and made through
/// this process's runtime (with the modules at `modules` loaded), the result framed back.
fn socket_server(socket: &Path, modules: &[String]) -> Result<(), String> {
    let runtime = std::sync::Arc::new(Runtime::with_local_resolver());
    for module in modules {
        runtime
            .load(ModuleRef::parse(module).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let listener = UnixListener::bind(socket).map_err(|e| e.to_string())?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let runtime = std::sync::Arc::clone(&runtime);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut reply = Vec::new();
            while read_frame(&mut stream, &mut buf).is_ok() {
                let (module, method, args): (String, String, Bytes) =
                    match rmp_serde::from_slice(&buf) {
                        Ok(v) => v,
                        Err(_) => return,
                    };
                reply.clear();
                let called = runtime
                    .handle_of(&module)
                    .and_then(|h| runtime.call(h, &method, &args.0));
                match called {
                    Ok(out) => {
                        reply.push(0);
                        reply.extend_from_slice(&out);
                    }
                    Err(e) => {
                        reply.push(1);
                        reply.extend_from_slice(e.to_string().as_bytes());
                    }
                }
                if write_frame(&mut stream, &reply).is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}
