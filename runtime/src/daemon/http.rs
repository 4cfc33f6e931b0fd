//! The daemon's HTTP endpoint: `/metrics` (the Prometheus text `metrics` renders) and
//! `/health` (200 while `healthy` says so, else 503 with what it says is wrong). What
//! they report is the supervisor's; this module only serves it.
//!
//! A server of its own on `std::net` rather than `tiny_http`'s, which answers its
//! requests from one queue and sets no time limit on a socket: there one request whose
//! body never comes, or pipelined requests whose answers are never read, held every
//! other request until its client hung up. Here each connection is answered on a thread
//! of its own, at most [`MAX_CLIENTS`] at once (past that, a 503 at once, without
//! waiting), one request per connection, within [`READ_WITHIN`] to read its request line
//! and headers and [`WRITE_WITHIN`] to write the answer. A stalled client holds one
//! thread for seconds, never the endpoint.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::flight::Flight;

/// Connections answered at once; past it a connection gets a 503 and is closed.
/// Scrapers and health checks make one request at a time each; the bound is what it
/// takes clients that stall (each holding a place for at most `READ_WITHIN` plus
/// `WRITE_WITHIN` plus `LINGER`) to keep everyone else out: as many connections, held
/// open without end. A thread waiting on a client costs little (`STACK`).
const MAX_CLIENTS: usize = 64;
/// The stack of a thread answering a connection: it parses a request line and writes an
/// exposition the supervisor renders, far within this.
const STACK: usize = 256 * 1024;
/// How long a client has to send its request line and headers.
const READ_WITHIN: Duration = Duration::from_secs(5);
/// How long a client has to take the answer.
const WRITE_WITHIN: Duration = Duration::from_secs(5);
/// The longest request line and headers read; a `GET` needs a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// After the answer, how long bytes the client sent and the server did not read (a
/// body, pipelined requests) are read and dropped: closing a socket with unread bytes
/// resets the connection, which can discard the answer before the client reads it.
const LINGER: Duration = Duration::from_millis(500);
/// The most bytes read and dropped that way.
const LINGER_BYTES: usize = 256 * 1024;

/// Listens on `addr`; [`spawn`] serves it. Apart, so a bad address is refused before the
/// daemon creates anything it would have to clean up.
pub(super) fn bind(addr: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}

/// What the endpoint serves, shared by the threads answering its connections.
struct Endpoint {
    metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// The exposition being rendered, which the scrapes that come meanwhile share.
    rendering: Flight<Arc<str>>,
    /// `Ok` while the daemon is healthy, else what is wrong, for the 503's body.
    healthy: Box<dyn Fn() -> Result<(), String> + Send + Sync>,
    /// Connections being answered.
    clients: AtomicUsize,
}

/// One connection's place among the [`MAX_CLIENTS`], given back when dropped (the
/// answering thread ends, or could not be started).
struct Place(Arc<Endpoint>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves the endpoint `listener` listens on (at `addr`) from a thread of its own, each
/// connection on a thread of its own.
pub(super) fn spawn(
    listener: TcpListener,
    addr: &str,
    metrics: impl Fn() -> String + Send + Sync + 'static,
    healthy: impl Fn() -> Result<(), String> + Send + Sync + 'static,
) {
    // Where it listens: the port the system chose for one given as 0, which the address
    // given does not say.
    let bound = listener
        .local_addr()
        .map_or_else(|_| addr.to_owned(), |a| a.to_string());
    tracing::info!(addr, "metrics on http://{bound}/metrics");
    let endpoint = Arc::new(Endpoint {
        metrics: Box::new(metrics),
        rendering: Flight::default(),
        healthy: Box::new(healthy),
        clients: AtomicUsize::new(0),
    });
    let accepting = std::thread::Builder::new()
        .name("memlink-http".to_owned())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => accept(&endpoint, stream),
                    Err(e) => {
                        tracing::warn!("metrics endpoint: cannot accept a connection: {e}");
                        // Out of descriptors, say: not a loop that spins meanwhile.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        });
    if let Err(e) = accepting {
        tracing::error!("cannot serve metrics on {addr}: cannot start its thread: {e}");
    }
}

/// Answers `stream` on a thread of its own, or refuses it when [`MAX_CLIENTS`] are being
/// answered already.
fn accept(endpoint: &Arc<Endpoint>, stream: TcpStream) {
    if endpoint.clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
        endpoint.clients.fetch_sub(1, Ordering::AcqRel);
        return refuse(stream);
    }
    let place = Place(Arc::clone(endpoint));
    let answering = std::thread::Builder::new()
        .name("memlink-http-client".to_owned())
        .stack_size(STACK)
        .spawn(move || answer(&place.0, stream));
    // The closure, its place and its stream are dropped with the error: the place is
    // given back and the connection closed.
    if let Err(e) = answering {
        tracing::warn!("metrics endpoint: cannot start a thread for a connection: {e}");
    }
}

/// A 503 for a connection past [`MAX_CLIENTS`], written without waiting (the accepting
/// thread must never block on a client): what the socket's buffer takes, then closed.
fn refuse(mut stream: TcpStream) {
    let busy = format!("busy: {MAX_CLIENTS} requests are being answered; try again\n");
    let mut text = head(503, "text/plain", busy.len());
    // Told apart from `/health`'s own 503 by the header (and the body).
    text.insert_str(text.len() - 2, "Retry-After: 1\r\n");
    text.push_str(&busy);
    if stream.set_nonblocking(true).is_ok() {
        // What the request sent so far, read so the close does not reset the connection
        // under the answer (see `LINGER`).
        let _ = stream.read(&mut [0; 4096]);
        let _ = stream.write(text.as_bytes());
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads one request from `stream` and answers it, then closes the connection.
fn answer(endpoint: &Endpoint, mut stream: TcpStream) {
    let (status, body, kind, head_only) = match read_request(&mut stream) {
        Request::Get { path, head_only } => {
            let (status, body, kind): (_, Arc<str>, _) = match path.as_str() {
                "/metrics" => (200, endpoint.exposition(), "text/plain; version=0.0.4"),
                "/health" => match (endpoint.healthy)() {
                    Ok(()) => (200, "ok\n".into(), "text/plain"),
                    Err(why) => (503, format!("{why}\n").into(), "text/plain"),
                },
                _ => (404, "not found\n".into(), "text/plain"),
            };
            (status, body, kind, head_only)
        }
        Request::Refused(status, why) => (status, format!("{why}\n").into(), "text/plain", false),
        Request::Gone => return,
    };
    let mut text = head(status, kind, body.len());
    if status == 405 {
        // What a 405 must say (RFC 9110, 15.5.6): the methods that are served.
        text.insert_str(text.len() - 2, "Allow: GET, HEAD\r\n");
    }
    // The head and the body written apart, the body from the exposition the scrapes
    // share (no copy of it per connection); without Nagle's delay, which would hold the
    // body's last segment back until the client acknowledged the head.
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + WRITE_WITHIN;
    let body = if head_only { "" } else { &body[..] };
    let written = write_within(&mut stream, text.as_bytes(), deadline)
        .and_then(|()| write_within(&mut stream, body.as_bytes(), deadline));
    if written.is_ok() {
        linger(&mut stream);
    }
}

impl Endpoint {
    /// The exposition for a scrape: the one being rendered when the scrape comes, else
    /// one rendered for it. Scrapes that come together share one rendering, and one copy
    /// of it: each would otherwise ask every worker for its figures and hold a copy of
    /// the whole text (60 scrapes at once of an exposition of 3.8 MB took 270 MB).
    fn exposition(&self) -> Arc<str> {
        self.rendering.join(|| (self.metrics)().into())
    }
}

/// What a connection asked for.
enum Request {
    /// `GET` (or `HEAD`, answered without the body) of a path, the query left out.
    Get { path: String, head_only: bool },
    /// A request answered with this status and reason.
    Refused(u16, &'static str),
    /// The client closed the connection or failed before a request: nothing to answer.
    Gone,
}

/// Reads the request line and headers, within [`READ_WITHIN`] and [`MAX_HEAD`]; a body
/// is never read.
fn read_request(stream: &mut TcpStream) -> Request {
    let deadline = Instant::now() + READ_WITHIN;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = end_of_head(&buf) {
            return parse(&buf[..end]);
        }
        if buf.len() >= MAX_HEAD {
            return Request::Refused(431, "the request's headers are too long");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Request::Refused(408, "the request did not arrive in time");
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Request::Gone,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Request::Refused(408, "the request did not arrive in time")
            }
            Err(_) => return Request::Gone,
        }
    }
}

/// Where the request line and headers end (the blank line), if they are all in `buf`.
fn end_of_head(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    crlf.into_iter().chain(lf).min()
}

/// The request line of `head`: `METHOD TARGET HTTP/x.y`.
fn parse(head: &[u8]) -> Request {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Refused(400, "the request line is not text");
    };
    let mut words = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Request::Refused(400, "the request line is not `METHOD PATH HTTP/1.1`");
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Refused(505, "only HTTP/1.0 and HTTP/1.1 are served");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::Refused(405, "only GET and HEAD are served"),
    };
    // The absolute form (`http://host:port/metrics`), which a server must take too
    // (RFC 9112, 3.2.2) and proxies send: its path is what follows the authority.
    let target = match target.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => {
            rest.find('/').map_or("/", |at| &rest[at..])
        }
        _ => target,
    };
    let path = target.split('?').next().unwrap_or_default().to_owned();
    Request::Get { path, head_only }
}

/// The status line and headers of an answer whose body is `len` bytes of `kind`.
fn head(status: u16, kind: &str, len: usize) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n"
    )
}

/// Writes all of `bytes` unless `deadline` passes first.
fn write_within(stream: &mut TcpStream, bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(&bytes[at..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ends the answer, then reads and drops what the client still sends, for at most
/// [`LINGER`] and [`LINGER_BYTES`], so the close does not reset the connection under an
/// answer the client has yet to read.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut chunk = [0u8; 4096];
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => dropped += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
