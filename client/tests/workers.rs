//! Modules in worker processes of their own: each group's `setrlimit` limits are its
//! own, and a module that crashes its worker costs the calls to that worker only.

mod common;

#[path = "../../runtime/tests/common/promtool.rs"]
mod promtool;

use std::time::Duration;

use common::{Daemon, Setup};
use memlink_client::{CallOptions, Client, RuntimeError};

/// The soft and hard limit on a line of `/proc/PID/limits`, e.g. `Max open files`.
fn limit(pid: i32, what: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no `{what}` in\n{text}"));
    let mut values = line[what.len()..].split_whitespace();
    (
        values.next().unwrap().to_owned(),
        values.next().unwrap().to_owned(),
    )
}

/// One library served twice: as `steady` in the main worker, and as `hazards` in a
/// worker of its own with a lower open-files limit and a CPU limit.
fn two_workers() -> Daemon {
    let path = common::module_path("hazards");
    let toml = format!(
        "[limits]\nopen_files = 1000\n\
         [[modules]]\nname = \"steady\"\npath = {path:?}\n\
         [[modules]]\nname = \"hazards\"\npath = {path:?}\n\
         limits = {{ open_files = 64, cpu_seconds = 600 }}\n",
    );
    Daemon::start(Setup {
        toml,
        metrics: true,
        ..Setup::default()
    })
}

#[test]
fn a_module_with_limits_of_its_own_runs_in_a_worker_with_those_limits() {
    let daemon = two_workers();
    let main = daemon.worker_pid_named("main");
    let apart = daemon.worker_pid_named("hazards");
    assert_ne!(main, apart);
    assert_eq!(
        limit(main, "Max open files"),
        ("1000".into(), "1000".into())
    );
    assert_eq!(limit(apart, "Max open files"), ("64".into(), "64".into()));
    // `SIGXCPU` at the soft limit ends the worker, as documented; the kernel's
    // `SIGKILL` at the hard one comes first when they are equal.
    assert_eq!(limit(apart, "Max cpu time"), ("600".into(), "605".into()));
    assert_eq!(
        limit(main, "Max cpu time").0,
        "unlimited",
        "the CPU limit is the hazards module's alone"
    );
    let client = Client::connect(&daemon.socket).unwrap();
    assert_eq!(client.modules().unwrap(), ["hazards", "steady"]);
    // Each name is served by its own worker: the two copies count apart.
    let (steady, hazards) = (
        client.module("steady").unwrap(),
        client.module("hazards").unwrap(),
    );
    let count = |m| {
        let out = client.call(m, "count", b"").unwrap();
        rmp_serde::from_slice::<u64>(&out).unwrap()
    };
    assert_eq!((count(steady), count(steady), count(hazards)), (1, 2, 1));
    let err = client.call(steady, "nothing", b"").unwrap_err();
    assert!(err.to_string().contains("nothing"), "{err}");
    let nobody = client.module("nobody");
    assert!(
        matches!(nobody, Err(RuntimeError::UnknownModule { .. })),
        "{nobody:?}"
    );
}

#[test]
fn a_crash_in_one_worker_leaves_the_calls_in_another_running() {
    let daemon = two_workers();
    let main = daemon.worker_pid_named("main");
    let apart = daemon.worker_pid_named("hazards");
    let socket = daemon.socket.clone();
    // A call in the main worker, running while the other worker aborts.
    let long = std::thread::spawn(move || {
        let client = Client::connect(&socket).unwrap();
        let steady = client.module("steady").unwrap();
        let hold = client.typed::<(u64,), u64>(steady, "hold").unwrap();
        let options = CallOptions::default().timeout(Duration::from_secs(10));
        hold.call_with(&(1_500,), &options)
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    // The hold has begun once the module logged it.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !daemon.log_text().contains("holding") {
        assert!(std::time::Instant::now() < until, "{}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = client.call(hazards, "abort_in_drop", b"").unwrap_err();
    assert!(
        matches!(&err, RuntimeError::WorkerDied { reason } if reason.contains("SIGABRT")),
        "{err}"
    );
    assert_eq!(
        long.join().unwrap().unwrap(),
        1_500,
        "the main worker's call ran to its end"
    );
    let options = CallOptions::default().timeout(Duration::from_secs(1));
    client.call_with(hazards, "count", b"", &options).unwrap();
    assert_eq!(
        daemon.worker_pid_named("main"),
        main,
        "the main worker lives on"
    );
    assert_ne!(
        daemon.worker_pid_named("hazards"),
        apart,
        "a new worker serves"
    );
    let (status, body) = daemon.http_get("/metrics");
    assert_eq!(status, 200);
    for line in [
        "memlink_daemon_worker_restarts_total{worker=\"main\"} 0\n",
        "memlink_daemon_worker_restarts_total{worker=\"hazards\"} 1\n",
        "memlink_daemon_worker_up{worker=\"hazards\"} 1\n",
    ] {
        assert!(body.contains(line), "no {line:?} in\n{body}");
    }
    // Both workers' runtime figures, merged into one exposition promtool accepts.
    for module in ["steady", "hazards"] {
        assert!(
            body.contains(&format!("module=\"{module}\"")),
            "no {module} figures in\n{body}"
        );
    }
    promtool::promtool_accepts(&body);
}

#[test]
fn one_module_name_in_two_workers_is_refused_at_start() {
    let path = common::module_path("hazards");
    // Two groups, then a group and the main worker (which leaves only a watched
    // directory's duplicates to the other worker, not its configured modules).
    for (second, other) in [("worker = \"b\"\n", "a"), ("", "a")] {
        let dir = common::scratch_dir();
        let file = dir.join("memlink.toml");
        let toml = format!(
            "socket = {:?}\n\
             [[modules]]\nname = \"hazards\"\npath = {path:?}\nworker = \"a\"\n\
             [[modules]]\nname = \"hazards\"\npath = {path:?}\n{second}",
            dir.join("memlink.sock").to_str().unwrap()
        );
        std::fs::write(&file, toml).unwrap();
        let out = std::process::Command::new(common::memlink())
            .arg("serve")
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "module `hazards` is served by worker `{other}` already"
            )),
            "{stderr}"
        );
        assert!(!dir.join("memlink.sock").exists(), "the socket is removed");
    }
}

/// Runs `await_count` on one thread and `count` on another, over one client (one
/// connection); says whether `count` ran while `await_count` was waiting for it (if the
/// connection runs one call at a time, `await_count` gives up after its 1.5 s first).
fn count_overtakes_a_waiting_call(daemon: &Daemon, module: &str) -> bool {
    let client = std::sync::Arc::new(Client::connect(&daemon.socket).unwrap());
    overtakes_on(daemon, &client, module)
}

/// [`count_overtakes_a_waiting_call`] on `client`'s connection.
fn overtakes_on(daemon: &Daemon, client: &std::sync::Arc<Client>, module: &str) -> bool {
    let hazards = client.module(module).unwrap();
    let waits_before = daemon.log_text().matches("waiting for a count").count();
    let seen = rmp_serde::from_slice::<u64>(&client.call(hazards, "count", b"").unwrap()).unwrap();
    let waiter = {
        let client = std::sync::Arc::clone(client);
        std::thread::spawn(move || {
            let wait = client
                .typed::<(u64, u64), bool>(hazards, "await_count")
                .unwrap();
            wait.call(&(seen, 1_500)).unwrap()
        })
    };
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while daemon.log_text().matches("waiting for a count").count() == waits_before {
        assert!(std::time::Instant::now() < until, "{}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(5));
    }
    client.call(hazards, "count", b"").unwrap();
    waiter.join().unwrap()
}

#[test]
fn a_long_call_does_not_hold_up_the_next_call_on_its_connection() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    assert!(
        count_overtakes_a_waiting_call(&daemon, "hazards"),
        "the second call waited for the first"
    );
    let toml = "threads_per_connection = 1\n".to_owned();
    let one_at_a_time = Daemon::start(Setup {
        toml,
        ..Setup::modules(&["hazards"])
    });
    assert!(
        !count_overtakes_a_waiting_call(&one_at_a_time, "hazards"),
        "threads_per_connection = 1 runs a connection's calls in order"
    );
}

#[test]
fn each_worker_s_helpers_take_the_calls_its_busy_thread_cannot() {
    // Every worker's helpers wake when a client's call waits; only the worker that
    // serves its module may take it, in a worker of its own and in the main one alike.
    let daemon = two_workers();
    let pids = ["main", "hazards"].map(|w| daemon.worker_pid_named(w));
    assert!(
        count_overtakes_a_waiting_call(&daemon, "hazards"),
        "a call to the worker of its own waited for that worker's first call"
    );
    assert!(
        count_overtakes_a_waiting_call(&daemon, "steady"),
        "a call to the main worker waited for that worker's first call"
    );
    assert_eq!(
        ["main", "hazards"].map(|w| daemon.worker_pid_named(w)),
        pids,
        "no worker was lost on the way"
    );
    let client = Client::connect(&daemon.socket).unwrap();
    for module in ["steady", "hazards"] {
        let handle = client.module(module).unwrap();
        client.call(handle, "count", b"").unwrap();
    }
}

#[test]
fn a_drain_finishes_the_calls_a_connection_s_helpers_run() {
    let mut daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let holding = |daemon: &Daemon, n: usize| {
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while daemon.log_text().matches("holding").count() < n {
            assert!(std::time::Instant::now() < until, "{}", daemon.log_text());
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let (first, second, status) = std::thread::scope(|s| {
        let hold = || client.call_typed::<_, u64>(hazards, "hold", &(700u64,));
        let first = s.spawn(hold);
        holding(&daemon, 1);
        // The connection's thread is busy with the first: a helper takes this one.
        let second = s.spawn(hold);
        holding(&daemon, 2);
        let status = daemon.terminate();
        (first.join().unwrap(), second.join().unwrap(), status)
    });
    assert_eq!(first.unwrap(), 700);
    assert_eq!(second.unwrap(), 700, "the helper's call ran to its end");
    assert!(status.success(), "{status}");
}

#[test]
fn a_worker_that_cannot_map_a_connection_fails_its_calls_clearly() {
    // 1.5 GiB of address space hold the worker, its modules and its threads' malloc
    // arenas (64 MiB reserved each), not a 3 GiB segment: the `hazards` worker cannot
    // serve this client's connection; the main one, without limits, can.
    let path = common::module_path("hazards");
    let toml = format!(
        "max_shm_per_client = 8589934592\n\
         [[modules]]\nname = \"steady\"\npath = {path:?}\n\
         [[modules]]\nname = \"hazards\"\npath = {path:?}\n\
         limits = {{ memory_bytes = 1610612736 }}\n",
    );
    let daemon = Daemon::start(Setup {
        toml,
        ..Setup::default()
    });
    let big = memlink_client::ClientConfig::default()
        .slots(3)
        .slot_size(1 << 30);
    let client = std::sync::Arc::new(Client::with_config(&daemon.socket, big).unwrap());
    let steady = client.module("steady").unwrap();
    assert_eq!(
        rmp_serde::from_slice::<u64>(&client.call(steady, "count", b"").unwrap()).unwrap(),
        1
    );
    // No deadline: a call nobody takes would wait for ever.
    let (tx, rx) = std::sync::mpsc::channel();
    let caller = std::sync::Arc::clone(&client);
    std::thread::spawn(move || {
        let hazards = caller.module("hazards").unwrap();
        tx.send(caller.call(hazards, "count", b"").map(|o| o.to_vec()))
            .unwrap();
    });
    let err = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the call hangs")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("worker `hazards` cannot serve this connection"),
        "{text}"
    );
    assert!(text.contains("memory"), "the reason is named: {text}");
    // The worker lives on, and a client whose segment fits is served by it.
    let small = Client::connect(&daemon.socket).unwrap();
    let hazards = small.module("hazards").unwrap();
    small.call(hazards, "count", b"").unwrap();
    // The main worker still serves the big client.
    client.call(steady, "count", b"").unwrap();
}

#[test]
fn a_watched_module_named_like_another_worker_s_is_left_to_that_worker() {
    // `hazards` runs in a worker of its own; the watched directory, which the main
    // worker serves, holds another copy named `hazards` and `basic`.
    let dir = common::scratch_dir();
    let watched = dir.join("modules");
    std::fs::create_dir_all(&watched).unwrap();
    let ext = std::env::consts::DLL_EXTENSION;
    for name in ["hazards", "basic"] {
        let to = watched.join(format!("lib{name}.{ext}"));
        std::fs::copy(common::module_path(name), to).unwrap();
    }
    let path = common::module_path("hazards");
    let toml = format!(
        "watch = {:?}\n\
         [[modules]]\nname = \"hazards\"\npath = {path:?}\nworker = \"apart\"\n",
        watched.to_str().unwrap()
    );
    std::fs::create_dir_all(dir.join("daemon")).unwrap();
    let daemon = Daemon::start_in(
        dir.join("daemon"),
        Setup {
            toml,
            metrics: true,
            ..Setup::default()
        },
    );
    let client = Client::connect(&daemon.socket).unwrap();
    assert_eq!(client.modules().unwrap(), ["basic", "hazards"]);
    let hazards = client.module("hazards").unwrap();
    client.call(hazards, "count", b"").unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"hi").unwrap(), b"hi");
    assert!(
        daemon
            .log_text()
            .contains("module `hazards` is served by another worker, so this one unloaded it"),
        "{}",
        daemon.log_text()
    );
    // A copy that comes later is unloaded as it loads.
    let shed = "is served by another worker, so this one unloaded it";
    let later = watched.join(format!("libhazards_again.{ext}"));
    std::fs::copy(common::module_path("hazards"), later).unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while daemon.log_text().matches(shed).count() < 2 {
        assert!(std::time::Instant::now() < until, "{}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(client.modules().unwrap(), ["basic", "hazards"]);
    client.call(hazards, "count", b"").unwrap();
    // One series per module: the main worker keeps no figures of its own `hazards`.
    let (status, body) = daemon.http_get("/metrics");
    assert_eq!(status, 200);
    let calls = body
        .lines()
        .filter(|l| l.starts_with("memlink_calls_total{"))
        .filter(|l| l.contains("module=\"hazards\"") && l.contains("method=\"count\""))
        .count();
    assert_eq!(calls, 1, "{body}");
    promtool::promtool_accepts(&body);
}

/// The voluntary context switches of `pid`'s threads named `memlink-conn-*`: how often
/// its connection threads went to sleep.
fn connection_thread_sleeps(pid: i32) -> u64 {
    thread_sleeps(pid, "memlink-conn")
}

/// The voluntary context switches of `pid`'s threads whose name starts with `prefix`
/// (names are cut to 15 bytes: helpers are `memlink-conn-he`).
fn thread_sleeps(pid: i32, prefix: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

#[test]
fn a_call_wakes_only_the_worker_that_serves_it() {
    let daemon = two_workers();
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let steady = client.module("steady").unwrap();
    // Both workers' threads for this connection exist once each has served a call.
    client.call(steady, "count", b"").unwrap();
    client.call(hazards, "count", b"").unwrap();
    let main = daemon.worker_pid_named("main");
    let apart = daemon.worker_pid_named("hazards");
    std::thread::sleep(Duration::from_millis(20));
    let (main_before, apart_before) = (
        connection_thread_sleeps(main),
        connection_thread_sleeps(apart),
    );
    // Each call after a pause long enough for both workers to fall asleep: the worker
    // that serves it wakes for each, the other sleeps through them.
    let calls = 100;
    for _ in 0..calls {
        std::thread::sleep(Duration::from_millis(2));
        client.call(hazards, "count", b"").unwrap();
    }
    let main_slept = connection_thread_sleeps(main) - main_before;
    let apart_slept = connection_thread_sleeps(apart) - apart_before;
    assert!(
        apart_slept >= calls / 2,
        "the serving worker slept between calls ({apart_slept} times), as this test needs"
    );
    assert!(
        main_slept < calls / 4,
        "the other worker woke {main_slept} times for {calls} calls that were not its"
    );
}

#[test]
fn a_held_up_call_wakes_only_its_worker_s_helpers() {
    let daemon = two_workers();
    let client = std::sync::Arc::new(Client::connect(&daemon.socket).unwrap());
    // Each worker starts its helpers for a connection with its first call there.
    for module in ["steady", "hazards"] {
        let handle = client.module(module).unwrap();
        client.call(handle, "count", b"").unwrap();
    }
    let main = daemon.worker_pid_named("main");
    let apart = daemon.worker_pid_named("hazards");
    std::thread::sleep(Duration::from_millis(20));
    let helpers = |pid| thread_sleeps(pid, "memlink-conn-he");
    let (main_before, apart_before) = (helpers(main), helpers(apart));
    // Each round holds `hazards`'s connection thread in `await_count` until a `count`
    // call, which waits past the client's spin and calls that worker's helpers.
    let rounds = 10;
    for _ in 0..rounds {
        assert!(
            overtakes_on(&daemon, &client, "hazards"),
            "a helper took the count"
        );
    }
    let main_woke = helpers(main) - main_before;
    let apart_woke = helpers(apart) - apart_before;
    assert!(
        apart_woke >= rounds,
        "the serving worker's helpers woke {apart_woke} times for {rounds} held-up calls"
    );
    assert!(
        main_woke < rounds / 2,
        "the other worker's helpers woke {main_woke} times for {rounds} calls not theirs"
    );
}

/// A client that sends its hello and hangs up at once, before the welcome, costs the
/// worker no thread and no mapping of its segment: the connection it never learned of
/// is not handed to the worker, or is taken back.
#[test]
fn a_client_gone_before_its_welcome_leaves_the_worker_nothing() {
    use memlink_ipc::control::{self, Hello};
    use memlink_ipc::{Geometry, PROTOCOL_VERSION};
    const GONE: usize = 20;
    let daemon = Daemon::start(Setup {
        // Debug: each connection welcomed says so, as each refused one does.
        extra: vec!["-vv".into()],
        ..Setup::modules(&["basic"])
    });
    let worker = daemon.worker_pid();
    let held = || {
        let threads = std::fs::read_dir(format!("/proc/{worker}/task"))
            .unwrap()
            .count();
        let maps = std::fs::read_to_string(format!("/proc/{worker}/maps")).unwrap();
        let segments = maps
            .lines()
            .filter(|l| l.contains("memlink-segment"))
            .count();
        (threads, segments)
    };
    let (threads, _) = held();
    for _ in 0..GONE {
        let stream = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
        let hello = Hello {
            version: PROTOCOL_VERSION,
            // A segment that takes the daemon a while to make: the client is gone
            // before the welcome is sent.
            geometry: Geometry::new(64, 1 << 20).unwrap(),
        };
        control::send(&stream, &hello, None).unwrap();
    }
    let until = std::time::Instant::now() + Duration::from_secs(20);
    let answered = || {
        let log = daemon.log_text();
        log.matches("connection refused").count() + log.matches("client connected").count()
    };
    while answered() < GONE {
        assert!(
            std::time::Instant::now() < until,
            "not every hello was answered:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The worker reads its messages in order: once it served this client, it has read
    // whatever it was told of the others.
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(&*client.call(basic, "echo", b"still").unwrap(), b"still");
    drop(client);
    while held() != (threads, 0) {
        assert!(
            std::time::Instant::now() < until,
            "the worker holds (threads, segments) {:?}, not ({threads}, 0)",
            held()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A library that crashes as it loads (its constructor aborts) takes down the worker that
/// loads it before it is ready: the daemon's error names the file and how the worker
/// ended. Before, it said only "the worker did not get ready: unexpected end of file".
#[test]
fn a_library_that_crashes_as_it_loads_is_named_with_how_its_worker_ended() {
    let crash = common::module_path("crash_on_load");
    let socket = common::scratch_dir().join("crash_on_load.sock");
    let err = serve_fails(&[
        "--socket".to_owned(),
        socket.display().to_string(),
        format!("crash={}", crash.display()),
    ]);
    assert!(
        err.contains("died while it loaded")
            && err.contains(&crash.display().to_string())
            && err.contains("SIGABRT"),
        "{err}"
    );
}

/// A worker with a memory limit keeps the C allocator's pools to two (each reserves
/// 64 MiB of the address space the limit counts), and its control socket is not passed
/// on to programs its modules start.
#[test]
fn a_limited_worker_keeps_few_allocator_pools_and_no_control_socket_across_exec() {
    let path = common::module_path("hazards");
    let toml = format!(
        "[[modules]]\nname = \"steady\"\npath = {path:?}\n\
         [[modules]]\nname = \"hazards\"\npath = {path:?}\n\
         limits = {{ memory_bytes = 4294967296 }}\n",
    );
    let daemon = Daemon::start(Setup {
        toml,
        ..Setup::default()
    });
    let env = |pid: i32| {
        let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        raw.split(|b| *b == 0).any(|kv| kv == b"MALLOC_ARENA_MAX=2")
    };
    let (main, apart) = (
        daemon.worker_pid_named("main"),
        daemon.worker_pid_named("hazards"),
    );
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        assert!(env(apart), "the limited worker's pools are capped");
        assert!(
            !env(main),
            "a worker without a memory limit keeps the default"
        );
    }
    // Every socket the worker holds is close-on-exec: the control socket to the
    // supervisor, and the connections' and the daemon's own. (Descriptors a worker
    // inherits beside them are whatever the daemon's starter left open.)
    for pid in [main, apart] {
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
            let fd = fd.unwrap().file_name().into_string().unwrap();
            let what = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap_or_default();
            if !what.to_string_lossy().starts_with("socket:") {
                continue;
            }
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
                .unwrap();
            const O_CLOEXEC: u32 = 0o2000000;
            assert!(
                flags & O_CLOEXEC != 0,
                "worker {pid}'s fd {fd} ({}) passes on exec: {info}",
                what.display()
            );
        }
    }
}

/// `memlink serve` with `args`, which must fail to start: what it printed.
fn serve_fails(args: &[String]) -> String {
    let mut serve = std::process::Command::new(common::memlink())
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("the daemon neither served nor gave up");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    err
}

/// A module in a worker of its own that calls one the main worker serves cannot load
/// there: the error says which worker serves it and what to do, not only "load it
/// first", which read as if it were loaded nowhere.
#[test]
fn a_module_whose_dependency_another_worker_serves_is_told_to_share_its_worker() {
    let dir = common::scratch_dir();
    let config = dir.join("apart.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\n[[modules]]\nname = \"greeter\"\npath = {:?}\n\
             [[modules]]\npath = {:?}\nlimits = {{ open_files = 256 }}\n",
            dir.join("apart.sock"),
            common::module_path("greeter_v1"),
            common::module_path("uses_greeter"),
        ),
    )
    .unwrap();
    let err = serve_fails(&["--config".to_owned(), config.display().to_string()]);
    assert!(
        err.contains("calls `greeter@^1`") && err.contains("served by worker `main`"),
        "{err}"
    );
}

/// A worker ended by its `cpu_seconds` (the kernel's `SIGXCPU`) is named for the limit,
/// as one past its `memory_bytes` is. Before, only "killed by signal 24 (SIGXCPU)".
#[test]
fn a_worker_that_runs_out_of_its_cpu_time_is_named_for_it() {
    let daemon = Daemon::start(Setup {
        toml: "[limits]\ncpu_seconds = 1\n".into(),
        ..Setup::modules(&["hazards"])
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let err = client
        // Two minutes of the clock: however little of a core the worker gets under the
        // tests' load, its one second of CPU ends it first.
        .call_typed::<_, u64>(hazards, "spin", &(120_000u64,))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RuntimeError::WorkerDied { .. })
            && text.contains("SIGXCPU")
            && text.contains("limited to 1 s (`cpu_seconds`)"),
        "{text}"
    );
}

/// A call that needs more memory than its worker's `memory_bytes` ends the worker (Rust
/// aborts a process whose allocation fails): its client is told so, naming the limit,
/// where it read only "killed by signal 6 (SIGABRT)". The next worker serves.
#[test]
fn a_worker_that_runs_out_of_its_memory_limit_is_named_for_it() {
    let daemon = Daemon::start(Setup {
        toml: "[limits]\nmemory_bytes = 1073741824\n".into(),
        ..Setup::modules(&["basic"])
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let err = client
        .call_typed::<_, Vec<u8>>(basic, "fill", &(7u8, 1_500_000_000u32))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RuntimeError::WorkerDied { .. })
            && text.contains("SIGABRT")
            && text.contains("memory_bytes")
            && text.contains("1073741824"),
        "{text}"
    );
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match client.call(basic, "echo", b"again") {
            Ok(out) => break assert_eq!(&*out, b"again"),
            Err(e) => assert!(std::time::Instant::now() < until, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
