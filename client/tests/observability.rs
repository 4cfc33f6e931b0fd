//! What the daemon shows: Prometheus text and health over HTTP (scraped for real), with
//! per-client figures beside the runtime's, and module logs from the worker aggregated
//! in the daemon's own log.

mod common;
#[path = "../../runtime/tests/common/promtool.rs"]
mod promtool;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{memlink, Daemon, Setup};
use memlink_client::Client;
use promtool::promtool_accepts;

#[test]
fn metrics_and_health_are_served_over_http() {
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["basic"])
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    for _ in 0..3 {
        client.call(basic, "echo", b"hello").unwrap();
    }
    client
        .call_typed::<_, ()>(basic, "fail", &("failed",))
        .unwrap_err();
    let (status, health) = daemon.http_get("/health");
    assert_eq!((status, health.as_str()), (200, "ok\n"));
    let (status, body) = daemon.http_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("memlink_calls_total{module=\"basic\",method=\"echo\"} 3\n"),
        "{body}"
    );
    assert!(body.contains("memlink_daemon_connections 1\n"), "{body}");
    assert!(
        body.contains("memlink_daemon_worker_up{worker=\"main\"} 1\n"),
        "{body}"
    );
    let client_line = |family: &str| {
        body.lines()
            .find(|l| l.starts_with(&format!("memlink_daemon_client_{family}_total{{")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {family} figure:\n{body}"))
    };
    // The method list the typed call asked for is a call of the connection too.
    assert!(client_line("calls") >= 4);
    assert_eq!(client_line("errors"), 1);
    assert!(client_line("bytes_in") >= 15);
    assert!(client_line("bytes_out") >= 15);
    let pid = format!("pid=\"{}\"", std::process::id());
    assert!(
        body.contains(&pid),
        "the client's pid labels its figures:\n{body}"
    );
    let (status, _) = daemon.http_get("/nothing");
    assert_eq!(status, 404);
    promtool_accepts(&body);
}

/// A request to the metrics endpoint as it is written: the answer's head and body.
fn http_raw(addr: &str, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

/// A method the endpoint does not serve is answered 405 with the `Allow` header such an
/// answer must carry, and a request in the absolute form (as a proxy sends it) is served
/// like its path; before, the first had no `Allow` and the second was a 404.
#[test]
fn the_endpoint_says_which_methods_it_serves_and_takes_absolute_targets() {
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["basic"])
    });
    let addr = daemon.metrics_addr.clone().unwrap();
    let (head, _) = http_raw(
        &addr,
        "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    assert!(head.contains("\r\nAllow: GET, HEAD"), "{head}");
    let absolute = format!("GET http://{addr}/metrics?x=1 HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (head, body) = http_raw(&addr, &absolute);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    promtool_accepts(&body);
    let (head, _) = http_raw(&addr, &format!("GET http://{addr} HTTP/1.1\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
}

/// A metrics address whose port is 0 is served on the port the system chose, and the log
/// says which: before, it said port 0 ("metrics on http://127.0.0.1:0/metrics"), where
/// nothing listens.
#[test]
fn the_log_names_the_port_chosen_for_a_metrics_address_of_port_0() {
    let daemon = Daemon::start(Setup {
        extra: vec!["--metrics-addr".into(), "127.0.0.1:0".into()],
        ..Setup::modules(&["basic"])
    });
    let log = daemon.log_text();
    let addr = log
        .split_once("metrics on http://")
        .and_then(|(_, rest)| rest.split_once("/metrics"))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"));
    assert!(!addr.ends_with(":0"), "{log}");
    let answer = get_within(&addr, "/health", Duration::from_secs(10));
    assert_eq!(answer, Ok((200, "ok\n".to_owned())), "{log}");
}

/// A worker whose metrics are megabytes of text (a module's metric per user, 20 000 of
/// them) has them all scraped, as a runtime in process exposes them. Before, the worker's
/// answer was past the largest frame of the control protocol (1 MiB) and never sent:
/// every scrape waited 2 s for it and went without any of that worker's metrics, its
/// modules' calls and errors too, and the log said nothing.
#[test]
fn a_worker_whose_metrics_are_megabytes_is_scraped_whole() {
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["hazards"])
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let made: u32 = client
        .call_typed(hazards, "many_counters", &(20_000u32,))
        .unwrap();
    assert_eq!(made, 20_000);
    let addr = daemon.metrics_addr.clone().unwrap();
    let (status, body) = get_within(&addr, "/metrics", Duration::from_secs(30)).unwrap();
    assert_eq!(status, 200);
    assert!(body.len() > 1 << 20, "{} bytes", body.len());
    for wanted in [
        "memlink_module_per_user_19999_total{",
        "memlink_calls_total{module=\"hazards\",method=\"many_counters\"",
    ] {
        assert!(
            body.contains(wanted),
            "no `{wanted}` in {} bytes",
            body.len()
        );
    }
}

/// `GET path` on `addr` from a connection of its own, waiting at most `within` for each
/// read and write: the status and body, or what went wrong.
fn get_within(addr: &str, path: &str, within: Duration) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(within)).unwrap();
    stream.set_write_timeout(Some(within)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| format!("{e} after {text:?}"))?;
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    status
        .zip(body)
        .ok_or_else(|| format!("not an answer: {text:?}"))
}

#[test]
fn a_stalled_request_does_not_hold_up_metrics_or_health() {
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["basic"])
    });
    let addr = daemon.metrics_addr.clone().unwrap();
    // A request whose body never comes.
    let mut no_body = TcpStream::connect(&addr).unwrap();
    no_body
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    // Pipelined requests whose answers are never read, written from a thread: the
    // server need not read them all.
    let pipelined = TcpStream::connect(&addr).unwrap();
    let writer = pipelined.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        let mut writer = writer;
        writer
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let requests = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
        let _ = writer.write_all(&requests);
    });
    // The stalled requests reach the server first.
    std::thread::sleep(Duration::from_millis(300));
    // Less than any time the server gives a stalled client: before the fix, each timed
    // out until the stalled clients hung up.
    for path in ["/health", "/metrics", "/health"] {
        let answer = get_within(&addr, path, Duration::from_secs(3));
        let (status, body) = answer.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(status, 200, "{path}: {body}");
    }
    drop((no_body, pipelined));
    writing.join().unwrap();
}

#[test]
fn past_its_bound_of_clients_the_endpoint_refuses_at_once_and_serves_again_after() {
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["basic"])
    });
    let addr = daemon.metrics_addr.clone().unwrap();
    // Clients that never finish their request, more than the endpoint answers at once.
    let stalled: Vec<TcpStream> = (0..80)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    // Connected after them, it is refused without waiting for them; it sends nothing,
    // so the server closes it with nothing unread.
    let mut late = TcpStream::connect(&addr).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut text = String::new();
    late.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    assert!(
        text.contains("busy: 64 requests are being answered"),
        "{text}"
    );
    // Told apart from `/health`'s own 503, which says a worker is down.
    assert!(text.contains("\r\nRetry-After: 1\r\n"), "{text}");
    drop(stalled);
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        match get_within(&addr, "/health", Duration::from_secs(3)) {
            Ok((200, _)) => break,
            other => assert!(Instant::now() < until, "{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A module's records go to the daemon's log, not to the caller's stderr, even with
/// `-v`, as `memlink call --daemon`'s help says.
#[test]
fn module_logs_from_the_worker_reach_the_daemons_log() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let out = Command::new(memlink())
        .args(["call", "-v", "--daemon"])
        .arg(&daemon.socket)
        .args(["basic", "chatty", "7"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("an error"), "{stderr}");
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let log = daemon.log_text();
        let records = ["an error", "a warning", "some information"];
        if records.iter().all(|r| log.contains(r)) {
            let line = log
                .lines()
                .find(|l| l.contains("some information"))
                .unwrap();
            assert!(
                line.contains("module=basic") && line.contains("method=chatty"),
                "{line}"
            );
            assert!(
                line.contains("user=alice") && line.contains("n=7"),
                "{line}"
            );
            // The daemon logs at info: debug records are not forwarded.
            assert!(!log.contains("a detail"), "{log}");
            break;
        }
        assert!(
            Instant::now() < until,
            "the module's records are missing:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A module's record cannot forge a line of the daemon's log: a newline (or another
/// control character) in its message or a field's value, which the module may have from
/// its caller, is written escaped, on the record's own line.
#[test]
fn a_module_record_with_a_newline_stays_on_its_own_line_of_the_daemons_log() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let message = "asked for\n2026-01-01T00:00:00Z ERROR forged: the daemon is compromised";
    let fields = vec![("user".to_owned(), "eve\rINFO forged field".to_owned())];
    let logged: u32 = client
        .call_typed(hazards, "log_as_given", &(message, fields))
        .unwrap();
    assert_eq!(logged, 1);
    daemon.wait_log("asked for");
    let log = daemon.log_text();
    let line = log.lines().find(|l| l.contains("asked for")).unwrap();
    assert!(
        line.contains("asked for\\n2026-01-01T00:00:00Z ERROR forged")
            && line.contains("user=eve\\rINFO forged field"),
        "{line}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line:\n{log}"
    );
    assert!(!log.contains('\r'), "{log:?}");
}

/// A module's record longer than a worker's frame to its supervisor (64 MiB) cannot be
/// forwarded whole: a warning in its place says so, with how it began, and the records
/// after it come as before. Before, it was dropped without a word.
#[test]
fn a_module_record_too_long_to_forward_is_replaced_by_a_warning_saying_so() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let () = client
        .call_typed(hazards, "log_long", &("too long to forward: ", 70u64 << 20))
        .unwrap();
    let () = client
        .call_typed(hazards, "log_long", &("short and after it", 0u64))
        .unwrap();
    daemon.wait_log("short and after it");
    let log = daemon.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("could not be forwarded"))
        .unwrap_or_else(|| panic!("no warning of the dropped record in:\n{log}"));
    assert!(
        line.contains("WARN")
            && line.contains(&format!(
                "a record (INFO) of {} bytes of message",
                21 + (70 << 20)
            ))
            && line.contains("its message began: too long to forward: xxx"),
        "{line}"
    );
    assert!(
        line.len() < 2000,
        "the warning is short: {} bytes",
        line.len()
    );
}

/// A module's own histogram `x`, recorded by a module of each of two workers, goes under
/// one family, whichever worker's runtime named it apart from a gauge `x` beside it, as
/// docs/daemon.md says ("every worker's samples of that name and kind go under it").
/// Before, the main worker's runtime named its histogram `x` apart (its gauge `x` came
/// first) and the other worker's kept `memlink_module_x`, which the merge then named
/// apart again under a hash of its own: two histogram families for the one metric.
#[test]
fn a_module_metric_of_one_name_and_kind_is_one_family_across_workers() {
    let dir = common::scratch_dir();
    let mut toml = String::new();
    for (name, worker) in [("a", None), ("b", None), ("c", Some("other"))] {
        let path = dir.join(format!("{name}.so"));
        std::fs::copy(common::module_path("hazards"), &path).unwrap();
        toml += &format!("[[modules]]\nname = \"{name}\"\npath = {path:?}\n");
        if let Some(worker) = worker {
            toml += &format!("worker = \"{worker}\"\n");
        }
    }
    let daemon = Daemon::start(Setup {
        toml,
        metrics: true,
        ..Setup::default()
    });
    let client = Client::connect(&daemon.socket).unwrap();
    for (module, kind) in [("a", 1u8), ("b", 2), ("c", 2)] {
        let m = client.module(module).unwrap();
        let n: u32 = client
            .call_typed(m, "record_metrics", &(vec![("x".to_owned(), kind, 1.0)],))
            .unwrap();
        assert_eq!(n, 1);
    }
    let (status, body) = daemon.http_get("/metrics");
    assert_eq!(status, 200, "{body}");
    promtool_accepts(&body);
    let histograms: Vec<&str> = body
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# TYPE memlink_module_x")?
                .strip_suffix(" histogram")
        })
        .collect();
    assert_eq!(histograms.len(), 1, "{body}");
    let family = format!("memlink_module_x{}", histograms[0]);
    for module in ["b", "c"] {
        let count = format!("{family}_count{{module=\"{module}\"}} 1\n");
        assert!(body.contains(&count), "no {count} in:\n{body}");
    }
}

/// A module's record of no call (from a thread of its own, or its `memlink_init`) reaches
/// the daemon's log too, as the same module's records under `memlink call -v` reach
/// stderr. Before, the worker's log sink got only the records of its calls, and the
/// worker's own log leaves module records to the daemon: such a record was lost.
#[test]
fn a_module_s_record_of_no_call_reaches_the_daemons_log() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let joined: bool = client
        .call_typed(
            hazards,
            "log_from_own_thread",
            &("logged off the call's thread",),
        )
        .unwrap();
    assert!(joined);
    daemon.wait_log("logged off the call's thread");
    let log = daemon.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("logged off the call's thread"))
        .unwrap();
    assert!(line.contains("from=own thread"), "{line}");
}

/// A module served under a name of the operator's (`name = "odd"`) is named so in the
/// records it makes outside its calls, as in those of its calls. Before, those carried
/// its own name (`hazards`): a log filtered by module missed them.
#[test]
fn a_record_of_no_call_names_the_module_as_it_is_served() {
    let dir = common::scratch_dir();
    let path = dir.join("libhazards.so");
    std::fs::copy(common::module_path("hazards"), &path).unwrap();
    let daemon = Daemon::start(Setup {
        toml: format!("[[modules]]\nname = \"odd\"\npath = {path:?}\n"),
        ..Setup::default()
    });
    let client = Client::connect(&daemon.socket).unwrap();
    let odd = client.module("odd").unwrap();
    let joined: bool = client
        .call_typed(
            odd,
            "log_from_own_thread",
            &("served as odd, off the call",),
        )
        .unwrap();
    assert!(joined);
    let () = client
        .call_typed(odd, "log_long", &("served as odd, in the call", 0u64))
        .unwrap();
    daemon.wait_log("served as odd, in the call");
    daemon.wait_log("served as odd, off the call");
    let log = daemon.log_text();
    for said in ["served as odd, off the call", "served as odd, in the call"] {
        let line = log.lines().find(|l| l.contains(said)).unwrap();
        assert!(
            line.contains("module=\"odd\"") || line.contains("module=odd"),
            "{line}"
        );
        assert!(!line.contains("hazards"), "{line}");
    }
}

#[test]
fn memlink_call_through_the_daemon_prints_what_the_local_call_prints() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let run = |args: &[&str]| {
        let out = Command::new(memlink())
            .args(["call", "--daemon"])
            .arg(&daemon.socket)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run(&["basic", "add", "[2, 3]"]),
        (true, "5\n".into(), String::new())
    );
    // A raw result: its bytes, nothing added (stdout is a pipe here).
    assert_eq!(run(&["basic", "echo", "hi"]).1, "hi");
    let (ok, _, err) = run(&["basic", "nope"]);
    assert!(
        !ok && err.contains("module `basic` has no method `nope`"),
        "{err}"
    );
    let (ok, _, err) = run(&["basic", "fail", "\"failed\""]);
    assert!(!ok && err.contains("basic::fail failed"), "{err}");
}

/// A daemon with its metrics endpoint serving the `hazards` module under each name of
/// `modules`, in the worker given (the main one for `None`).
fn hazards_in_workers(modules: &[(&str, Option<&str>)]) -> Daemon {
    let path = common::module_path("hazards");
    let mut toml = String::new();
    for (name, worker) in modules {
        toml += &format!("[[modules]]\nname = {name:?}\npath = {path:?}\n");
        if let Some(worker) = worker {
            toml += &format!("worker = {worker:?}\n");
        }
    }
    Daemon::start(Setup {
        toml,
        metrics: true,
        ..Setup::default()
    })
}

/// Has `module` (a `hazards`) record a metric `shared` of `kind` (as `record_metrics`
/// takes it) with the value 3.
fn record_shared(client: &Client, module: &str, kind: u8) {
    let m = client.module(module).unwrap();
    let n: u32 = client
        .call_typed(
            m,
            "record_metrics",
            &(vec![("shared".to_owned(), kind, 3.0)],),
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Two workers' modules that use one metric name as two kinds (a gauge in one, a
/// histogram in the other) are merged into an exposition Prometheus takes: each family
/// typed once, the later one named apart, every sample kept. Before, the histogram's
/// samples were written under the gauge's `TYPE`, and the whole scrape was refused.
#[test]
fn one_metric_name_as_two_kinds_in_two_workers_is_exposed_as_two_families() {
    let daemon = hazards_in_workers(&[("steady", None), ("apart", Some("apart"))]);
    let client = Client::connect(&daemon.socket).unwrap();
    let record = |module: &str, kind: u8| record_shared(&client, module, kind);
    record("steady", 1);
    record("apart", 2);
    let (status, body) = daemon.http_get("/metrics");
    assert_eq!(status, 200);
    let types: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("# TYPE memlink_module_shared"))
        .collect();
    assert_eq!(types.len(), 2, "{body}");
    assert!(
        body.contains("memlink_module_shared{module=\"steady\"} 3\n"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("memlink_module_shared_")
                && l.contains("_count{module=\"apart\"} 1")),
        "{body}"
    );
    promtool_accepts(&body);
}

/// A third worker's module that uses the name as the kind the second's was named apart
/// for joins that family, its samples renamed with it. Before, its samples were added
/// to that family under their old name (`memlink_module_shared_bucket` under the
/// renamed family's `TYPE`), samples of no family that `promtool` refused.
#[test]
fn a_family_named_apart_takes_a_third_workers_samples_under_its_new_name() {
    let daemon = hazards_in_workers(&[
        ("steady", None),
        ("apart", Some("apart")),
        ("third", Some("third")),
    ]);
    let client = Client::connect(&daemon.socket).unwrap();
    for (module, kind) in [("steady", 1u8), ("apart", 2), ("third", 2)] {
        record_shared(&client, module, kind);
    }
    let (status, body) = daemon.http_get("/metrics");
    assert_eq!(status, 200);
    let histogram = body
        .lines()
        .find_map(|l| {
            l.strip_prefix("# TYPE memlink_module_shared_")?
                .strip_suffix(" histogram")
        })
        .unwrap_or_else(|| panic!("{body}"));
    for module in ["apart", "third"] {
        let count = format!("memlink_module_shared_{histogram}_count{{module=\"{module}\"}} 1\n");
        assert!(body.contains(&count), "{count} in {body}");
    }
    assert!(!body.contains("memlink_module_shared_bucket"), "{body}");
    promtool_accepts(&body);
}

/// A family keeps its type from one scrape to the next: a histogram of the second
/// worker's module exposed first stays `memlink_module_shared`, and the gauge the main
/// worker's module records under that name later is the one named apart. Before, the
/// merge gave the name to whichever worker came first, so the family turned from a
/// histogram into a gauge between two scrapes, and the histogram took a new name.
#[test]
fn a_family_keeps_its_type_when_an_earlier_worker_uses_its_name_later() {
    let daemon = hazards_in_workers(&[("steady", None), ("apart", Some("apart"))]);
    let client = Client::connect(&daemon.socket).unwrap();
    let record = |module: &str, kind: u8| record_shared(&client, module, kind);
    record("apart", 2);
    let (_, before) = daemon.http_get("/metrics");
    assert!(
        before.contains("# TYPE memlink_module_shared histogram\n"),
        "{before}"
    );
    record("steady", 1);
    let (status, after) = daemon.http_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        after.contains("# TYPE memlink_module_shared histogram\n"),
        "{after}"
    );
    assert!(
        after.contains("memlink_module_shared_count{module=\"apart\"} 1\n"),
        "{after}"
    );
    assert!(
        after.lines().any(
            |l| l.starts_with("memlink_module_shared_") && l.ends_with("{module=\"steady\"} 3")
        ),
        "{after}"
    );
    promtool_accepts(&after);
}

/// `/health`'s 503 names the workers that are down. Before, it said `no worker` while
/// the main worker served on, and a health check's log did not say which was down.
#[test]
fn health_names_the_worker_that_is_down() {
    let (file, daemon) = common::basic_in_its_own_worker(true);
    let (status, body) = daemon.http_get("/health");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // The file is replaced by one that is no library, then the worker dies: it stays
    // down (started again every few seconds, each time refused).
    common::break_library(&file);
    common::signal(
        daemon.worker_pid_named("basic"),
        rustix::process::Signal::KILL,
    );
    let until = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = daemon.http_get("/health");
        if status != 200 || Instant::now() > until {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, "down: worker basic\n");
}

/// Scrapes that come together while a worker does not answer share one wait for it:
/// each is answered (without that worker's figures) within Prometheus's default scrape
/// timeout of 10 s, however many there are. Before, they asked the workers one after
/// another, each waiting 2 s for the silent worker: the eighth waited 16 s.
#[test]
fn scrapes_at_once_share_one_wait_for_a_silent_worker() {
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["basic"])
    });
    let addr = daemon.metrics_addr.clone().unwrap();
    let worker = daemon.worker_pid();
    common::signal(worker, rustix::process::Signal::STOP);
    let scrapes: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || get_within(&addr, "/metrics", Duration::from_secs(10)))
        })
        .collect();
    for scrape in scrapes {
        let (status, body) = scrape.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("memlink_daemon_connections "), "{body}");
        assert!(
            !body.contains("module=\"basic\""),
            "the silent worker's figures: {body}"
        );
    }
    common::signal(worker, rustix::process::Signal::CONT);
    // Answering again, its figures are back.
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    client.call(basic, "echo", b"back").unwrap();
    let (_, body) = daemon.http_get("/metrics");
    assert!(
        body.contains("memlink_calls_total{module=\"basic\",method=\"echo\"} 1\n"),
        "{body}"
    );
}

/// The connection's figure `family` (`calls`, `errors`, `bytes_in`, `bytes_out`) in a
/// scrape of a daemon with one client.
fn client_figure(body: &str, family: &str) -> u64 {
    let prefix = format!("memlink_daemon_client_{family}_total{{");
    let values: Vec<u64> = body
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(values.len(), 1, "one connection's {family}:\n{body}");
    values[0]
}

/// Calls to a worker that is down and cannot be started again are answered at once by
/// the daemon, standing in for it: each is still a request the client made that ended in
/// an error, and counts in its figures as the worker would count it.
#[test]
fn calls_answered_for_a_worker_that_is_down_count_in_the_clients_figures() {
    let (file, daemon) = common::basic_in_its_own_worker(true);
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    client.call(basic, "echo", b"hi").unwrap();
    // The file is replaced by one that is no library, then the worker dies: it cannot be
    // started again, and the daemon answers its calls.
    common::break_library(&file);
    common::signal(
        daemon.worker_pid_named("basic"),
        rustix::process::Signal::KILL,
    );
    let until = Instant::now() + Duration::from_secs(20);
    while !daemon
        .log_text()
        .contains("calls to the worker's modules fail at once")
    {
        assert!(Instant::now() < until, "{}", daemon.log_text());
        std::thread::sleep(Duration::from_millis(5));
    }
    let (_, before) = daemon.http_get("/metrics");
    assert!(
        before.contains("memlink_daemon_worker_up{worker=\"basic\"} 0\n"),
        "{before}"
    );
    for _ in 0..2 {
        let err = client.call(basic, "echo", b"hey").unwrap_err();
        assert!(
            err.to_string().contains("could not be started again"),
            "{err}"
        );
    }
    let (status, after) = daemon.http_get("/metrics");
    assert_eq!(status, 200);
    let delta = |family: &str| client_figure(&after, family) - client_figure(&before, family);
    assert_eq!(
        (
            delta("calls"),
            delta("errors"),
            delta("bytes_in"),
            delta("bytes_out")
        ),
        (2, 2, 6, 0),
        "before:\n{before}\nafter:\n{after}"
    );
    promtool_accepts(&after);
}

/// A request the worker cannot read (an op that does not exist) is one the client made
/// and that failed: it counts as a request and an error, so a client's errors never
/// outnumber its requests (it counted as an error alone).
#[test]
fn a_request_that_does_not_read_as_one_counts_as_a_request_and_an_error() {
    use memlink_ipc::slot::{Op, SlotState, Submit, Waited};
    use std::sync::atomic::Ordering;
    let daemon = Daemon::start(Setup {
        metrics: true,
        ..Setup::modules(&["basic"])
    });
    // A hand-made connection: no request but this test's own.
    let (_stream, segment, _) = common::raw_welcome(&daemon);
    let slot = segment.slot(0).unwrap();
    let submit = Submit {
        op: Op::Call,
        module: "basic",
        method: "echo",
        args_len: 4,
        deadline_ns: 0,
        trace_id: 0,
        span_id: 0,
        checked: 0,
    };
    slot.write_data(0, b"fine");
    let run = |op: Option<u32>| {
        slot.prepare(&submit);
        if let Some(op) = op {
            slot.fields().op.store(op, Ordering::SeqCst);
        }
        slot.fields()
            .state
            .store(SlotState::Submitted as u32, Ordering::SeqCst);
        segment.header().ring_all();
        let d = Some(Instant::now() + Duration::from_secs(10));
        let waited = slot.wait_done(d, Duration::ZERO, Duration::from_millis(20), || true);
        assert_eq!(waited, Waited::Done);
        slot.reply().is_ok()
    };
    assert!(!run(Some(9)), "an op that does not exist is refused");
    assert!(run(None), "a call is served");
    let (_, body) = daemon.http_get("/metrics");
    assert_eq!(
        (
            client_figure(&body, "calls"),
            client_figure(&body, "errors")
        ),
        (2, 1),
        "{body}"
    );
    promtool_accepts(&body);
}
