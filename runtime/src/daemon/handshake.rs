//! A client's handshake with the supervisor: its hello read and checked, who it is
//! learnt from the socket, a row and a segment given, and the welcome sent.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlink_ipc::control::{self, Answer, Hello, Welcome};
use memlink_ipc::{Geometry, Segment, PROTOCOL_VERSION};

use super::config::Trust;
use super::state::{lock, Conn, Shared};
use super::workers;

/// How long the row of a client that hung up is waited for, by its own connection's
/// thread and by a hello that finds no other row free: the workers' threads for the
/// connection end at once unless a call of it still runs (a client killed mid-call),
/// whose row stays the watchdog's until the call ends.
pub(super) const LEAVE_WAIT: Duration = Duration::from_millis(500);

/// How long a client has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// What a client's hello settles: the segment it gets, who it is, and whether its
/// arguments are read in place.
struct Greeted {
    geometry: Geometry,
    uid: u32,
    pid: i32,
    in_place: bool,
}

/// Reads and checks a client's hello, and learns who the client is.
fn greet(shared: &Shared, stream: &UnixStream) -> Result<Greeted, String> {
    let hello = read_hello(stream)?;
    if hello.version != PROTOCOL_VERSION {
        return Err(format!(
            "the client speaks protocol {}, the daemon {PROTOCOL_VERSION}: use a client of the daemon's memlink version (memlink-client, or the `memlink` command, built from the same memlink as `memlink serve`)",
            hello.version
        ));
    }
    let asked = hello.geometry.checked()?;
    // A segment larger than the limit is cut down to it (the welcome says what the client
    // got, and a client grows its slots later within the limit it is told), rather than
    // refused: a client asks before it knows the limit.
    let limit = shared.config.max_shm_per_client;
    let geometry = asked.within(limit).ok_or_else(|| {
        format!(
            "the client asks for {} bytes of shared memory, and not even one slot fits the limit per client, {limit}",
            asked.len()
        )
    })?;
    let peer = memlink_ipc::peer::peer(stream)
        .map_err(|e| format!("cannot learn the client's credentials: {e}"))?;
    let uid = peer.uid;
    Ok(Greeted {
        geometry,
        uid,
        // 0 for a client with no process id in the daemon's pid namespace.
        pid: peer.pid.unwrap_or(0),
        in_place: shared.config.trust == Trust::SameUser
            && uid == rustix::process::getuid().as_raw(),
    })
}

/// Reads a client's hello frame, all of it within [`HELLO_TIMEOUT`]: a read timeout would start afresh with each read, and a client
/// trickling a byte at a time would hold its thread, and its place among the
/// connections still to say hello, for as long as it liked.
fn read_hello(stream: &UnixStream) -> Result<Hello, String> {
    match control::recv_hello_by(stream, Instant::now() + HELLO_TIMEOUT) {
        Ok((hello, None)) => Ok(hello),
        Ok((_, Some(_))) => Err("a hello with a descriptor".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(format!(
            "bad hello: none complete within {} s",
            HELLO_TIMEOUT.as_secs()
        )),
        Err(e) => Err(format!("bad hello: {e}")),
    }
}

/// A free row of the figures tables, waiting a little for one while a client that hung
/// up still holds its row (see [`LEAVE_WAIT`]), its connection's thread perhaps not yet
/// told; `None` when every row is held.
fn take_row(shared: &Shared) -> Option<u32> {
    // A row free now needs no look at the connections (a syscall each).
    if let Some(row) = lock(&shared.free_rows).pop_front() {
        return Some(row);
    }
    let until = Instant::now() + LEAVE_WAIT;
    loop {
        // Looked at before the free rows, so that a row freed after the look is found
        // below; and the connections before the count, which a connection whose
        // client hung up joins before it leaves them.
        let leaving = lock(&shared.conns).values().any(|c| hung_up(&c.client))
            || shared.leaving.load(Ordering::SeqCst) > 0;
        if let Some(row) = lock(&shared.free_rows).pop_front() {
            return Some(row);
        }
        if !leaving || Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether the client on `stream` hung up: it sends nothing after its hello, so a
/// socket with its end of file (or reset) waiting is one whose client is gone.
fn hung_up(stream: &UnixStream) -> bool {
    use rustix::net::{recv, RecvFlags};
    let mut byte = [0u8; 1];
    match recv(stream, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((0, _)) => true,
        Ok(_) => false,
        Err(e) => e == rustix::io::Errno::CONNRESET,
    }
}

/// Checks a client's hello, makes its segment and hands it to the client, then to the
/// workers: only a connection the client was told of is attached, so a client that
/// hangs up before its welcome costs no worker a thread or a mapping.
pub(super) fn welcome(
    shared: &Arc<Shared>,
    stream: &Arc<UnixStream>,
) -> Result<(u64, u32), String> {
    // A connection accepted before the daemon began to stop, whose hello came after:
    // its workers take no connection any more, and nothing would answer its calls.
    let greeted = greet(shared, stream).and_then(|greeted| {
        if shared.shutting_down.load(Ordering::SeqCst) {
            return Err("the daemon is shutting down".to_owned());
        }
        Ok(greeted)
    });
    let row = greeted.as_ref().ok().and_then(|_| take_row(shared));
    // No longer a connection still to say hello, before its welcome is sent: a client
    // welcome that hangs up and connects again finds its place among those free.
    shared.greeting.fetch_sub(1, Ordering::SeqCst);
    let greeted = greeted?;
    let row = row.ok_or_else(|| {
        format!(
            "the daemon holds its limit of {} connections",
            shared.config.max_connections
        )
    })?;
    // Every way out below that does not keep the connection gives the row back.
    let give_back = |why: String| {
        lock(&shared.free_rows).push_back(row);
        why
    };
    let (segment, fd) = Segment::create(greeted.geometry)
        .map_err(|e| give_back(format!("cannot make the segment: {e}")))?;
    for r in shared.workers.iter().filter_map(|w| w.figures.row(row)) {
        for v in [&r.calls, &r.errors, &r.bytes_in, &r.bytes_out] {
            v.store(0, Ordering::Relaxed);
        }
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Conn {
        segment: Arc::new(segment),
        fd,
        in_place: greeted.in_place,
        row,
        pid: greeted.pid,
        uid: greeted.uid,
        client: Arc::clone(stream),
    };
    let welcome = Answer::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        connection: id,
        geometry: greeted.geometry,
        in_place: greeted.in_place,
        max_shm: shared.config.max_shm_per_client,
        modules: shared.served(),
        workers: shared
            .workers
            .iter()
            .map(|w| lock(&w.claims).clone())
            .collect(),
    });
    control::send(stream, &welcome, Some(conn.fd.as_fd()))
        .map_err(|e| give_back(format!("cannot answer the client: {e}")))?;
    // Under the lock a worker starting meanwhile is handed this connection once: by
    // `workers::start`, or here once it has its link.
    let mut conns = lock(&shared.conns);
    // Begun to stop since the look above: no worker reads an `Attach` any more.
    if shared.shutting_down.load(Ordering::SeqCst) {
        workers::refuse_stopping(shared, id, &conn);
        conns.insert(id, conn);
        return Ok((id, row));
    }
    for (index, w) in shared.workers.iter().enumerate() {
        if let Some(link) = &*lock(&w.link) {
            workers::attach(&link.control, &w.figures, id, &conn);
        } else {
            // No process runs it, and none could be started: its calls are answered so.
            workers::stand_in_if_down(shared, index, id, &conn);
        }
    }
    conns.insert(id, conn);
    drop(conns);
    tracing::debug!(
        connection = id,
        uid = greeted.uid,
        in_place = greeted.in_place,
        "client connected"
    );
    Ok((id, row))
}
