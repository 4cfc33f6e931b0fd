//! The daemon's HTTP endpoint: `/metrics` (the Prometheus text `metrics` renders) and
//! `/health` (200 while `healthy` says so, else 503). What they report is the
//! supervisor's; this module only serves it.

/// Listens on `addr`; [`spawn`] serves it. Apart, so a bad address is refused before the
/// daemon creates anything it would have to clean up.
pub(super) fn bind(addr: &str) -> Result<tiny_http::Server, String> {
    tiny_http::Server::http(addr).map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}

/// Serves the endpoint `server` listens on (at `addr`) from a thread of its own.
pub(super) fn spawn(
    server: tiny_http::Server,
    addr: &str,
    metrics: impl Fn() -> String + Send + 'static,
    healthy: impl Fn() -> bool + Send + 'static,
) {
    tracing::info!(addr, "metrics on http://{addr}/metrics");
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let (status, body, kind) = match request.url() {
                "/metrics" => (200, metrics(), "text/plain; version=0.0.4"),
                "/health" if healthy() => (200, "ok\n".to_owned(), "text/plain"),
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
}
