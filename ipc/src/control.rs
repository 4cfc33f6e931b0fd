//! The messages on the sockets: a client and the daemon, the daemon and its worker.
//!
//! Each message is a frame: a 4-byte little-endian length, then that many bytes of
//! MessagePack. A descriptor (a segment) travels attached to its frame's first bytes. A
//! frame over [`MAX_FRAME`] bytes, or bytes that do not decode, end the conversation
//! with an error that says so.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::fdpass;
use crate::segment::Geometry;

/// Largest frame accepted.
pub const MAX_FRAME: u32 = 1 << 20;

/// Largest frame a worker sends its supervisor ([`send_up_to`], [`recv_up_to`]): its
/// metrics grow with its modules' (100 000 counters of a module are 20 MB of text), and a
/// module's log record may be megabytes, where [`MAX_FRAME`] would cut either off. Still
/// bounded: the supervisor, which holds every client's connection, holds a frame whole.
pub const MAX_WORKER_FRAME: u32 = 1 << 26;

/// Largest hello a daemon reads ([`recv_hello_by`]): a hello is a few dozen bytes, and
/// the daemon holds each connection's until it is whole, for every connection still to
/// say hello at once.
pub const MAX_HELLO: u32 = 4096;

/// A client's first message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION) of the client.
    pub version: u32,
    /// The segment the client asks for.
    pub geometry: Geometry,
}

/// The daemon's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    /// Accepted: the segment's descriptor is attached to this frame.
    Welcome(Welcome),
    /// Refused, and why.
    Refused(String),
}

/// What a client learns when it is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The daemon's protocol version.
    pub version: u32,
    /// The connection's number (in the daemon's logs and metrics).
    pub connection: u64,
    /// The segment's geometry (what was asked, or less).
    pub geometry: Geometry,
    /// Whether the daemon reads this client's arguments in place (see `docs/daemon.md`).
    pub in_place: bool,
    /// The most shared memory the daemon gives one connection, in bytes: how far a
    /// client may grow its segment by connecting again with larger slots.
    pub max_shm: u64,
    /// The modules the daemon serves.
    pub modules: Vec<String>,
    /// Which calls each worker process claims, by number, the main worker's first: a
    /// client rings the doorbell of the worker its call goes to ([`route`]).
    pub workers: Vec<Claims>,
}

/// A method as the daemon describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodInfo {
    /// Its name.
    pub name: String,
    /// Its arguments' format, as the ABI's format tag.
    pub args: u8,
    /// Its result's format, as the ABI's format tag.
    pub result: u8,
    /// How many parameters it takes.
    pub arg_count: u16,
    /// The archived type of its arguments, for archive methods.
    pub args_type: Option<String>,
    /// The archived type of its result, for archive methods.
    pub result_type: Option<String>,
    /// The fingerprint of its arguments' archived type (`memlink_abi::archive`).
    pub args_fingerprint: Option<u64>,
    /// The fingerprint of its result's archived type.
    pub result_fingerprint: Option<u64>,
    /// Its signature as the module records it (`add(a: u32, b: u32) -> u32`).
    pub signature: Option<String>,
}

impl MethodInfo {
    /// The digest a typed handle made from this description sends with its calls
    /// ([`method_digest`] of its formats, archive fingerprints and signature).
    pub fn digest(&self) -> u64 {
        method_digest(
            self.args,
            self.result,
            self.args_fingerprint,
            self.result_fingerprint,
            self.signature.as_deref(),
        )
    }
}

/// What a typed handle checked of a method, in one word: FNV-1a of its arguments' and
/// result's format tags and archive fingerprints (absent ones told from any present
/// one) and of the signature the module records, never 0 (which a call that checked
/// nothing sends). The signature counts because MessagePack has no type of its own: a
/// method whose `div(num: u32, den: u32)` became `div(den: u32, num: u32)`, or whose
/// `u32` became a `u64`, takes the same bytes and means something else by them.
///
/// A client computes it from the method's [`MethodInfo`] when it makes a handle; the
/// worker, once per method per load, from the method it runs. A call whose digest is not
/// the method's now (a reload, an unload and a new load under the name, or another
/// daemon changed it) is refused, where otherwise the handle would send arguments the
/// method no longer reads, or read its result as what it no longer is.
pub fn method_digest(
    args: u8,
    result: u8,
    args_type: Option<u64>,
    result_type: Option<u64>,
    signature: Option<&str>,
) -> u64 {
    let mut bytes = [0u8; 21];
    bytes[0] = args;
    bytes[1] = result;
    bytes[2] = u8::from(args_type.is_some());
    bytes[3] = u8::from(result_type.is_some());
    bytes[4..12].copy_from_slice(&args_type.unwrap_or(0).to_le_bytes());
    bytes[12..20].copy_from_slice(&result_type.unwrap_or(0).to_le_bytes());
    bytes[20] = u8::from(signature.is_some());
    let signature = signature.unwrap_or("").as_bytes();
    let hash = bytes
        .iter()
        .chain(signature)
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    // 0 means "checked nothing": a digest that happens to be 0 must not mean that.
    hash.max(1)
}

/// The daemon to its worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// The first message: the daemon's settings (opaque to this crate) and the number of
    /// rows of the figures table, whose descriptor is attached.
    Init {
        /// The settings, encoded by the daemon.
        config: Vec<u8>,
        /// Rows of the figures table.
        rows: u32,
        /// The worker's name (its group of modules).
        name: String,
        /// The worker's number, 0 to 31: its bit in the segment header's sleeper words.
        index: u32,
        /// Which calls this worker claims.
        claims: Claims,
        /// Files of the watched directory the worker leaves alone while they are what
        /// they were: each took a worker down as it was opened.
        skip: Vec<Skipped>,
    },
    /// Serve a connection; its segment's descriptor is attached.
    Attach {
        /// The connection's number.
        connection: u64,
        /// The segment's geometry.
        geometry: Geometry,
        /// Whether arguments are read in place (else copied first).
        in_place: bool,
        /// Where its figures go: the index of its row in the figures segment.
        row: u32,
    },
    /// Stop serving a connection (the client is gone).
    Detach {
        /// The connection's number.
        connection: u64,
    },
    /// Send the runtime's metrics as Prometheus text.
    Metrics {
        /// The scrape asking, echoed in the answer: an answer that comes after its scrape
        /// gave up waiting is told from the next scrape's.
        scrape: u64,
    },
    /// Finish the calls in flight, refuse new ones, and exit.
    Shutdown,
}

/// Which submitted calls a worker claims, by the module they name. A daemon with one
/// worker per group of modules tells each group's worker its modules, and the main worker
/// every other name (a name no worker serves gets its `UnknownModule` there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Claims {
    /// Every call: the only worker.
    All,
    /// Calls to the modules this worker loads (a group's worker, which turns this into
    /// [`Claims::Only`] once its modules are loaded; until then it takes nothing).
    Own,
    /// Calls to these modules.
    Only(Vec<String>),
    /// Calls to any module but these (served by other workers).
    AllBut(Vec<String>),
}

impl Claims {
    /// Whether a call naming `module` (`name` or `name@requirement`) is this worker's.
    pub fn takes(&self, module: &str) -> bool {
        let name = base_name(module);
        match self {
            Claims::All => true,
            Claims::Own => false,
            Claims::Only(names) => names.iter().any(|n| n == name),
            Claims::AllBut(names) => !names.iter().any(|n| n == name),
        }
    }
}

/// The worker, of `workers` numbered from the main one (0), that serves calls naming
/// `module`, where `takes(i, module)` says whether worker `i`'s claims take it: the first
/// other worker that does, else the main one (which answers `UnknownModule` for a name
/// nobody serves). The rule the workers claim calls by, and the one clients ring by.
pub fn route(workers: usize, takes: impl Fn(usize) -> bool) -> usize {
    (1..workers).find(|&i| takes(i)).unwrap_or(0)
}

/// The module name in a reference that may carry a version requirement (`greeter@^1`).
pub fn base_name(module: &str) -> &str {
    module.split_once('@').map_or(module, |(name, _)| name)
}

/// The worker to the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The modules are loaded: their names.
    Ready(Vec<String>),
    /// Loading failed: why.
    LoadFailed(String),
    /// A module's log record.
    Log(LogRecord),
    /// The answer to [`ToWorker::Metrics`].
    Metrics {
        /// The scrape it answers.
        scrape: u64,
        /// The runtime's metrics as Prometheus text.
        text: String,
    },
    /// The modules served changed (a watched directory's file came, changed or went):
    /// their names now.
    Modules(Vec<String>),
    /// After [`ToWorker::Shutdown`]: no call runs in the worker any more (its connections'
    /// threads answer later ones "the daemon is shutting down"), and what is left is its
    /// modules' own shutdown.
    Drained,
    /// The worker's watch is about to open a file of the watched directory (load or
    /// reload it): a worker that dies before [`FromWorker::Opened`] died of that file.
    /// Sent before the file is opened, so the supervisor reads it even then.
    Opening(WatchedFile),
    /// The file named by the last [`FromWorker::Opening`] is opened (or refused): the
    /// worker survived it.
    Opened,
    /// The worker cannot serve a connection it was handed (its segment does not fit the
    /// worker's memory limit, say): the supervisor answers that connection's calls to
    /// this worker's modules with the reason.
    AttachFailed {
        /// The connection's number.
        connection: u64,
        /// Why.
        reason: String,
    },
}

/// A file of a watched directory as it was when a worker opened it: its path, and what
/// tells a rewritten file from the same one (a build that writes the file again changes
/// its length, time or inode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedFile {
    /// The path's bytes (a path need not be UTF-8).
    pub path: Vec<u8>,
    /// Its length in bytes.
    pub len: u64,
    /// Its modification time: seconds and nanoseconds since the epoch.
    pub modified: (i64, i64),
    /// Its device and inode numbers.
    pub inode: (u64, u64),
}

/// A watched file a worker leaves alone, and why: it took a worker down as it was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The file as it was then; the same path rewritten is opened again.
    pub file: WatchedFile,
    /// How the worker that opened it ended (`killed by signal 6 (SIGABRT)`).
    pub ended: String,
}

/// A module's log record, forwarded for aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// `tracing::Level` as text (`"INFO"`, ...).
    pub level: String,
    /// The module.
    pub module: String,
    /// The export that was running.
    pub method: String,
    /// The message.
    pub message: String,
    /// Its fields.
    pub fields: Vec<(String, String)>,
    /// The call's trace id.
    pub trace_id: u64,
    /// Whether it is the worker's own line (what its watch did, a warning about its
    /// figures), `module` naming the part of the worker that says it, not a module's
    /// record: the supervisor logs it as its own, not as a module's with an empty method.
    #[serde(default)]
    pub own: bool,
}

/// Writes `message` as one frame, with `fd` attached.
pub fn send<T: Serialize>(
    socket: impl AsFd,
    message: &T,
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    send_up_to(socket, message, fd, MAX_FRAME)
}

/// [`send`] of a frame of up to `max` bytes (a worker to its supervisor: [`MAX_WORKER_FRAME`]).
/// A larger one is refused before a byte is written.
pub fn send_up_to<T: Serialize>(
    socket: impl AsFd,
    message: &T,
    fd: Option<BorrowedFd<'_>>,
    max: u32,
) -> io::Result<()> {
    let body = rmp_serde::to_vec(message).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= max)
        .ok_or_else(|| {
            io::Error::other(format!("a frame of {} bytes (at most {max})", body.len()))
        })?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    fdpass::send(socket, &frame, fd)
}

/// Reads one frame and the descriptor that came with it.
pub fn recv<T: DeserializeOwned>(socket: impl AsFd) -> io::Result<(T, Option<OwnedFd>)> {
    recv_within(socket.as_fd(), None, MAX_FRAME)
}

/// [`recv`] of a frame of up to `max` bytes (a supervisor from its worker:
/// [`MAX_WORKER_FRAME`]).
pub fn recv_up_to<T: DeserializeOwned>(
    socket: impl AsFd,
    max: u32,
) -> io::Result<(T, Option<OwnedFd>)> {
    recv_within(socket.as_fd(), None, max)
}

/// [`recv`] with one deadline for the whole frame (see [`fdpass::recv_exact_by`]): past
/// it, the error is `TimedOut`.
pub fn recv_by<T: DeserializeOwned>(
    socket: impl AsFd,
    deadline: Instant,
) -> io::Result<(T, Option<OwnedFd>)> {
    recv_within(socket.as_fd(), Some(deadline), MAX_FRAME)
}

/// A client's [`Hello`], as [`recv_by`] reads a frame, in a frame of at most
/// [`MAX_HELLO`] bytes: a larger one is refused before its body is read. Held to
/// [`MAX_FRAME`], connections each claiming a frame of a megabyte, and sending it, had
/// the daemon hold a megabyte for each.
pub fn recv_hello_by(socket: impl AsFd, deadline: Instant) -> io::Result<(Hello, Option<OwnedFd>)> {
    recv_within(socket.as_fd(), Some(deadline), MAX_HELLO)
}

fn recv_within<T: DeserializeOwned>(
    socket: BorrowedFd<'_>,
    deadline: Option<Instant>,
    max: u32,
) -> io::Result<(T, Option<OwnedFd>)> {
    let read = |buf: &mut [u8]| match deadline {
        Some(deadline) => fdpass::recv_exact_by(socket, buf, deadline),
        None => fdpass::recv_exact(socket, buf),
    };
    let mut len = [0u8; 4];
    let fd = read(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes (at most {max})"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    let more = read(&mut body)?;
    if more.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a descriptor mid-frame",
        ));
    }
    let message = rmp_serde::from_slice(&body).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("undecodable frame: {e}"),
        )
    })?;
    Ok((message, fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn claims_route_by_the_module_name_without_its_requirement() {
        let group = Claims::Only(vec!["resize".into()]);
        let main = Claims::AllBut(vec!["resize".into()]);
        for (module, ours) in [("resize", true), ("resize@^1", true), ("basic", false)] {
            assert_eq!(group.takes(module), ours, "{module}");
            assert_eq!(main.takes(module), !ours, "{module}");
        }
        assert!(Claims::All.takes("anything@2"));
        assert!(main.takes(""), "a name nobody serves is the main worker's");
    }

    #[test]
    fn a_method_digest_tells_each_checked_part_apart_and_is_never_zero() {
        let base = method_digest(1, 2, None, None, None);
        let others = [
            method_digest(2, 2, None, None, None),
            method_digest(1, 1, None, None, None),
            method_digest(1, 2, Some(0), None, None),
            method_digest(1, 2, None, Some(0), None),
            method_digest(1, 2, Some(5), Some(6), None),
            method_digest(1, 2, Some(6), Some(5), None),
            method_digest(1, 2, None, None, Some("")),
            method_digest(1, 2, None, None, Some("div(num: u32, den: u32) -> u32")),
            method_digest(1, 2, None, None, Some("div(den: u32, num: u32) -> u32")),
        ];
        assert_ne!(others[7], others[8], "two signatures told apart");
        for (i, d) in others.iter().enumerate() {
            assert_ne!(*d, base, "{i}");
            assert_ne!(*d, 0, "{i}");
        }
        assert_eq!(
            method_digest(1, 2, None, None, None),
            base,
            "the same in every process"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "frames go by sendmsg and recvmsg, which Miri lacks")]
    fn frames_round_trip_and_garbage_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let hello = Hello {
            version: 1,
            geometry: Geometry::new(2, 4096).unwrap(),
        };
        send(&a, &hello, None).unwrap();
        let (got, fd) = recv::<Hello>(&b).unwrap();
        assert_eq!(got, hello);
        assert!(fd.is_none());
        (&a).write_all(&u32::MAX.to_le_bytes()).unwrap();
        let err = recv::<Hello>(&b).unwrap_err();
        assert!(
            err.to_string().contains("a frame of 4294967295 bytes"),
            "{err}"
        );
        (&a).write_all(&3u32.to_le_bytes()).unwrap();
        (&a).write_all(b"\xc1\xc1\xc1").unwrap();
        assert!(recv::<Hello>(&b)
            .unwrap_err()
            .to_string()
            .contains("undecodable"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "frames go by sendmsg and recvmsg, which Miri lacks")]
    fn a_hello_is_read_whole_and_one_past_its_bound_is_refused_unread() {
        let (a, b) = UnixStream::pair().unwrap();
        let by = Instant::now() + std::time::Duration::from_secs(5);
        let hello = Hello {
            version: 1,
            geometry: Geometry::new(2, 4096).unwrap(),
        };
        send(&a, &hello, None).unwrap();
        assert_eq!(recv_hello_by(&b, by).unwrap().0, hello);
        (&a).write_all(&(MAX_HELLO + 1).to_le_bytes()).unwrap();
        let err = recv_hello_by(&b, by).unwrap_err();
        assert!(
            err.to_string()
                .contains("a frame of 4097 bytes (at most 4096)"),
            "{err}"
        );
    }
}
