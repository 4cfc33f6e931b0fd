//! What the daemon shows: Prometheus text and health over HTTP (scraped for real), with
//! per-client figures beside the runtime's, and module logs from the worker aggregated
//! in the daemon's own log.

mod common;
#[path = "../../runtime/tests/common/promtool.rs"]
mod promtool;

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

#[test]
fn module_logs_from_the_worker_reach_the_daemons_log() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let out = Command::new(memlink())
        .args(["call", "--daemon"])
        .arg(&daemon.socket)
        .args(["basic", "chatty", "7"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert_eq!(run(&["basic", "echo", "hi"]).1, "hi\n");
    let (ok, _, err) = run(&["basic", "nope"]);
    assert!(
        !ok && err.contains("module `basic` has no method `nope`"),
        "{err}"
    );
    let (ok, _, err) = run(&["basic", "fail", "\"failed\""]);
    assert!(!ok && err.contains("basic::fail failed"), "{err}");
}
