//! The daemon's HTTP endpoint: `/metrics` (Prometheus text: the worker runtime's
//! figures, the daemon's own and each connection's) and `/health`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::supervisor::{figures_of, worker_metrics, worker_up, Shared};

/// Serves the endpoint on `addr` from a thread of its own.
pub(super) fn spawn(addr: &str, shared: Arc<Shared>) -> Result<(), String> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    tracing::info!(addr, "metrics on http://{addr}/metrics");
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let (status, body, kind) = match request.url() {
                "/metrics" => (200, render(&shared), "text/plain; version=0.0.4"),
                "/health" if worker_up(&shared) => (200, "ok\n".to_owned(), "text/plain"),
                "/health" => (503, "no worker\n".to_owned(), "text/plain"),
                _ => (404, "not found\n".to_owned(), "text/plain"),
            };
            let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes())
                .expect("a valid header");
            let response = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(header);
            let _ = request.respond(response);
        }
    });
    Ok(())
}

/// The whole exposition: the worker's runtime, then the daemon's own figures.
pub(super) fn render(shared: &Shared) -> String {
    let mut out = worker_metrics(shared).unwrap_or_default();
    let conns = shared.conns.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(
        out,
        "# HELP memlink_daemon_connections Client connections open."
    );
    let _ = writeln!(out, "# TYPE memlink_daemon_connections gauge");
    let _ = writeln!(out, "memlink_daemon_connections {}", conns.len());
    let _ = writeln!(
        out,
        "# HELP memlink_daemon_worker_restarts_total Workers started again after one died."
    );
    let _ = writeln!(out, "# TYPE memlink_daemon_worker_restarts_total counter");
    let _ = writeln!(
        out,
        "memlink_daemon_worker_restarts_total {}",
        shared.restarts.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP memlink_daemon_worker_up Whether a worker is serving."
    );
    let _ = writeln!(out, "# TYPE memlink_daemon_worker_up gauge");
    let _ = writeln!(
        out,
        "memlink_daemon_worker_up {}",
        u8::from(worker_up(shared))
    );
    let families = [
        ("calls", "Calls a client made."),
        ("errors", "Calls of a client that ended in an error."),
        ("bytes_in", "Bytes of arguments a client sent."),
        ("bytes_out", "Bytes of results a client received."),
    ];
    for (name, help) in families {
        let _ = writeln!(out, "# HELP memlink_daemon_client_{name}_total {help}");
        let _ = writeln!(out, "# TYPE memlink_daemon_client_{name}_total counter");
        let mut ids: Vec<_> = conns.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let conn = &conns[&id];
            let Some(row) = figures_of(shared, conn) else {
                continue;
            };
            let value = match name {
                "calls" => &row.calls,
                "errors" => &row.errors,
                "bytes_in" => &row.bytes_in,
                _ => &row.bytes_out,
            };
            let _ = writeln!(
                out,
                "memlink_daemon_client_{name}_total{{connection=\"{id}\",pid=\"{}\",uid=\"{}\"}} {}",
                conn.pid,
                conn.uid,
                value.load(Ordering::Relaxed)
            );
        }
    }
    out
}
