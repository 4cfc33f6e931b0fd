//! A client's end of a connection: the handshake, the slots this process leases, and a
//! call's round trip. `memlink-client` builds the runtime's call surface on it; the
//! `memlink` command calls through it directly.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crate::control::{self, Answer, Hello, Welcome};
use crate::segment::{Geometry, Segment};
use crate::slot::{Op, SlotState, MAX_NAME};
use crate::{Failure, PROTOCOL_VERSION};

mod lease;

pub use lease::{Lease, Reply};

/// How a call through a connection ended, when it did not end with a reply.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CallError {
    /// The daemon answered with a failure.
    Failed(Failure),
    /// The deadline passed before the reply came.
    TimedOut,
    /// The daemon is gone (what was seen), and the call may have run.
    Gone(String),
    /// The daemon went away before it took the call: it never ran, and can be sent again.
    NotTaken(String),
    /// The request cannot be made (a name too long, arguments larger than a slot).
    Invalid(String),
    /// No slot came free while every one of the connection's `slots` was held at rest
    /// (by a lease not submitted, or a reply kept) and none was in flight, for as long as
    /// [`Waiting::held`] allows: only a drop by a holder could free one, which on the
    /// waiting thread itself never comes.
    SlotsHeld {
        /// The connection's slots.
        slots: u32,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Failed(failure) => failure.fmt(f),
            CallError::TimedOut => f.write_str("the deadline passed before the reply came"),
            CallError::Gone(why) | CallError::NotTaken(why) => {
                write!(f, "the daemon cannot be reached: {why}")
            }
            CallError::Invalid(why) => f.write_str(why),
            CallError::SlotsHeld { slots } => write!(
                f,
                "every one of the connection's {slots} slots is held, and no call in flight \
                 would free one"
            ),
        }
    }
}

impl std::error::Error for CallError {}

/// Tuning of the client's side of the wait.
#[derive(Debug, Clone, Copy)]
pub struct Waiting {
    /// How long to spin on a reply before sleeping on its futex.
    pub spin: Duration,
    /// How often a sleeping caller wakes to check that the daemon is still there.
    pub poll: Duration,
    /// How long a wait for a slot goes on while every slot is held and none is in flight
    /// ([`CallError::SlotsHeld`] past it); `Duration::MAX` is no limit.
    pub held: Duration,
}

impl Default for Waiting {
    fn default() -> Waiting {
        Waiting {
            spin: Duration::from_micros(20),
            poll: Duration::from_millis(50),
            held: Duration::from_secs(5),
        }
    }
}

/// How many times this process's ancestors forked on the way to it, since the first
/// connection was made: bumped in a child by the handler [`watch_forks`] registers.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked() {
    // Async-signal-safe, as a child's fork handler of a threaded process must be.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Whether this process was forked from one that had made a connection (a child that
/// inherited what its parent's client held).
pub fn forked_child() -> bool {
    FORKS.load(Ordering::Relaxed) != 0
}

/// Registers [`forked`] to run in every child forked from now on (once per process).
fn watch_forks() {
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        // SAFETY: `forked` is a plain function that only bumps an atomic; it stays
        // valid for the life of the process. A registration that fails (no memory)
        // leaves forks unnoticed, as before.
        unsafe { libc::pthread_atfork(None, None, Some(forked)) };
    });
}

/// One connection to a daemon, shared by any number of threads.
#[derive(Debug)]
pub struct Connection {
    /// [`FORKS`] when it was made: a child of this process inherits the connection (its
    /// socket and its segment, slots the parent goes on using), but must not use it.
    forks: u64,
    // Its closing tells the daemon the client left; under Miri it is only held (see
    // `peer_open`).
    #[cfg_attr(miri, allow(dead_code))]
    stream: UnixStream,
    segment: Segment,
    welcome: Welcome,
    waiting: Waiting,
    slots: Mutex<SlotBook>,
    freed: Condvar,
    /// Slots leased now (busy or about to be), kept with the book: more than one means
    /// a call is submitted while another is in flight.
    leased: AtomicU32,
}

/// Which slots this process may lease now.
#[derive(Debug)]
struct SlotBook {
    free: Vec<u32>,
    /// Given up on (their call timed out): free again once the daemon completes them.
    abandoned: Vec<u32>,
    /// Threads waiting on `freed` for a slot: a lease given back wakes one only when
    /// there is one, since a wakeup is a system call even with nobody to wake.
    waiters: u32,
}

impl Connection {
    /// Connects to the daemon at `socket` and asks for a segment of `geometry`.
    pub fn connect(
        socket: &Path,
        geometry: Geometry,
        waiting: Waiting,
    ) -> Result<Arc<Connection>, CallError> {
        Connection::connect_by(socket, geometry, waiting, None)
    }

    /// [`connect`](Connection::connect) for a call that must be done by `deadline`:
    /// the wait for the daemon's welcome ends there if it comes first, with
    /// [`CallError::TimedOut`].
    pub fn connect_by(
        socket: &Path,
        geometry: Geometry,
        waiting: Waiting,
        deadline: Option<Instant>,
    ) -> Result<Arc<Connection>, CallError> {
        let gone = |e: io::Error| CallError::Gone(format!("{}: {e}", socket.display()));
        // No daemon can ever listen there: said at once, not tried again as a daemon
        // that is not up yet.
        crate::check_socket_path(socket).map_err(CallError::Invalid)?;
        let stream = connect_now(socket).map_err(|e| not_listening(socket, e))?;
        let refused = |why: String| {
            CallError::Failed(Failure::Other(format!(
                "the daemon refused the connection: {why}"
            )))
        };
        let hello = Hello {
            version: PROTOCOL_VERSION,
            geometry,
        };
        if let Err(e) = control::send(&stream, &hello, None) {
            // A daemon that refuses a connection before it reads the hello (it could not
            // start a thread for it, say) answers and closes it: sending the hello then
            // breaks the pipe, and its answer, already here, says why.
            let answered = control::recv_by::<Answer>(&stream, Instant::now() + REFUSAL_WITHIN);
            if let Ok((Answer::Refused(why), _)) = answered {
                return Err(refused(why));
            }
            return Err(gone(e));
        }
        let welcome_by = Instant::now() + WELCOME_WITHIN;
        let by = deadline.map_or(welcome_by, |d| d.min(welcome_by));
        let (answer, fd) = control::recv_by::<Answer>(&stream, by).map_err(|e| {
            if deadline.is_some_and(|d| d <= welcome_by && Instant::now() >= d) {
                CallError::TimedOut
            } else {
                unwelcome(socket, e)
            }
        })?;
        let welcome = match answer {
            Answer::Welcome(w) => w,
            Answer::Refused(why) => return Err(refused(why)),
        };
        if welcome.version != PROTOCOL_VERSION {
            return Err(CallError::Invalid(format!(
                "the daemon at {} speaks memlink protocol {}, this client {PROTOCOL_VERSION}: use a client of the daemon's memlink version (memlink-client, or the `memlink` command, built from the same memlink as `memlink serve`)",
                socket.display(),
                welcome.version
            )));
        }
        watch_forks();
        let fd = fd.ok_or_else(|| CallError::Gone("the welcome came without a segment".into()))?;
        // The daemon was reached: what it handed over is what is wrong (an error of the
        // `Other` kind, `map`'s own words on the descriptor), or this process could not
        // map it (its own limits: the system's error), which a later try may not meet.
        let segment = Segment::map(&fd, welcome.geometry).map_err(|e| match e.kind() {
            std::io::ErrorKind::Other => CallError::Invalid(format!(
                "the daemon at {} welcomed this client with no segment it can use: {e}",
                socket.display()
            )),
            _ => gone(e),
        })?;
        Ok(Connection::over(stream, segment, welcome, waiting))
    }

    /// The connection the daemon at the end of `stream` welcomed with `welcome`, whose
    /// `segment` is mapped, every slot free.
    fn over(
        stream: UnixStream,
        segment: Segment,
        welcome: Welcome,
        waiting: Waiting,
    ) -> Arc<Connection> {
        let free = (0..welcome.geometry.slots).rev().collect();
        Arc::new(Connection {
            forks: FORKS.load(Ordering::Relaxed),
            stream,
            segment,
            welcome,
            waiting,
            slots: Mutex::new(SlotBook {
                free,
                abandoned: Vec::new(),
                waiters: 0,
            }),
            freed: Condvar::new(),
            leased: AtomicU32::new(0),
        })
    }

    /// What the daemon said when it accepted the connection.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Bytes each slot's data area holds: the largest arguments (or result) a call on
    /// this connection can carry.
    pub fn slot_capacity(&self) -> usize {
        // A slot's size is at most `MAX_SLOT_SIZE`, which the segment could map.
        usize::try_from(self.welcome.geometry.slot_size).unwrap_or(usize::MAX)
    }

    fn book(&self) -> MutexGuard<'_, SlotBook> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A free slot, waiting for one until `deadline` when all are in use.
    ///
    /// A wait while every slot is held at rest (leased and not submitted, or done and its
    /// reply kept) and none is in flight ends with [`CallError::SlotsHeld`] once that has
    /// lasted [`Waiting::held`]: then only a drop by a holder frees a slot, and when the
    /// holder is the waiting thread (a caller keeping one output or argument buffer per
    /// slot), that never comes. A call in flight, here or in the daemon, restarts the
    /// count: its end frees a slot.
    pub fn lease(self: &Arc<Self>, deadline: Option<Instant>) -> Result<Lease, CallError> {
        let mut book = self.book();
        // Since when every slot was seen held with none in flight.
        let mut idle_since: Option<Instant> = None;
        loop {
            if book.free.is_empty() {
                // Slots given up on that the daemon has since completed are free again.
                self.recover_abandoned(&mut book);
            }
            if let Some(index) = book.free.pop() {
                self.count_leased(&book);
                return Ok(Lease {
                    conn: Arc::clone(self),
                    index,
                    submitted: false,
                    checked: 0,
                });
            }
            // Every slot is in use. A daemon gone for good never completes the calls it
            // left `Running`, so their slots never come back: a caller without a deadline
            // would wait forever. Checked only here, when no slot is free, off the path
            // of a call that finds one.
            if !self.alive() {
                return Err(CallError::NotTaken(
                    "it went away while the call waited for a free slot".into(),
                ));
            }
            if self.in_flight(&book) {
                idle_since = None;
            } else {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.waiting.held {
                    return Err(CallError::SlotsHeld {
                        slots: self.welcome.geometry.slots,
                    });
                }
            }
            let wait = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(CallError::TimedOut);
                    }
                    (d - now).min(self.waiting.poll)
                }
                None => self.waiting.poll,
            };
            book.waiters += 1;
            book = self
                .freed
                .wait_timeout(book, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            book.waiters -= 1;
        }
    }

    fn count_leased(&self, book: &SlotBook) {
        let leased = self.welcome.geometry.slots - book.free.len() as u32;
        self.leased.store(leased, Ordering::Relaxed);
    }

    /// Whether a call of this connection is in flight: submitted and not yet done (a
    /// call given up on, which the daemon may still run, included). Its end frees a slot.
    fn in_flight(&self, book: &SlotBook) -> bool {
        !book.abandoned.is_empty()
            || (0..self.welcome.geometry.slots).any(|i| {
                matches!(
                    self.segment.slot(i).and_then(|s| s.state()),
                    Some(SlotState::Submitted | SlotState::Running)
                )
            })
    }

    fn recover_abandoned(&self, book: &mut SlotBook) {
        let segment = &self.segment;
        let mut i = 0;
        while i < book.abandoned.len() {
            let index = book.abandoned[i];
            if segment.slot(index).and_then(|s| s.state()) == Some(SlotState::Done) {
                book.abandoned.swap_remove(i);
                book.free.push(index);
            } else {
                i += 1;
            }
        }
    }

    /// The daemon's worker that serves calls naming `module` (see [`control::route`]).
    pub fn worker_of(&self, module: &str) -> usize {
        let workers = &self.welcome.workers;
        control::route(workers.len(), |i| workers[i].takes(module))
    }

    /// Tells the worker serving `module` that calls were submitted (see
    /// [`ring_worker`](Connection::ring_worker)).
    pub fn ring(&self, module: &str) {
        self.ring_worker(self.worker_of(module));
    }

    /// Tells worker `worker` that calls were submitted: one wakeup for any number of
    /// them, and a system call only when it sleeps. Other workers are not woken.
    pub fn ring_worker(&self, worker: usize) {
        self.segment.header().ring_if_sleeping(worker);
    }

    /// Whether this process inherited the connection from the one that made it (it
    /// forked since): the slots are that process's, which goes on using them, and the
    /// socket is shared with it. A child connects on its own instead.
    pub fn inherited(&self) -> bool {
        FORKS.load(Ordering::Relaxed) != self.forks
    }

    /// Whether the daemon is still there: its end of the socket is open and it has not
    /// closed the connection. A connection this process [`inherited`](Self::inherited)
    /// is not this process's to use, and counts as gone.
    pub fn alive(&self) -> bool {
        if self.inherited() {
            return false;
        }
        if self.segment.header().closed.load(Ordering::Acquire) != 0 {
            return false;
        }
        self.peer_open()
    }

    /// Whether the daemon's end of the socket is open (a read finds no end of file).
    ///
    /// The daemon sends nothing after its welcome, so bytes waiting here come from a
    /// daemon that broke the protocol: they are read and dropped, so that the end of file
    /// behind them is seen. A peek saw only the first of them, and a daemon that wrote a
    /// stray byte and went away counted as alive for good.
    #[cfg(not(miri))]
    fn peer_open(&self) -> bool {
        use rustix::net::{recv, RecvFlags};
        /// Reads of stray bytes in one look (64 KiB, about what a socket holds, so a
        /// daemon gone is seen within a look or two): one still writing them is there.
        const STRAY_READS: usize = 16;
        let mut stray = [0u8; 4096];
        for _ in 0..STRAY_READS {
            match recv(&self.stream, &mut stray, RecvFlags::DONTWAIT) {
                Ok((0, _)) => return false,
                Ok(_) => {}
                Err(e) => return e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR,
            }
        }
        true
    }

    /// Under Miri, whose sockets take no `recv` (it fails with `ENOTSOCK`), the daemon's
    /// end counts as open: only the header's `closed` says it left.
    #[cfg(miri)]
    fn peer_open(&self) -> bool {
        true
    }

    /// Calls `method` of `module` with `args`, copied into a slot: the whole round trip.
    pub fn call(
        self: &Arc<Self>,
        op: Op,
        module: &str,
        method: &str,
        args: &[u8],
        deadline: Option<Instant>,
        trace: (u64, u64),
    ) -> Result<Reply, CallError> {
        let mut lease = self.lease(deadline)?;
        lease.write_args(args)?;
        lease.submit(op, module, method, args.len(), deadline, trace)?;
        self.ring(module);
        lease.wait(deadline)
    }
}

/// How long a client whose hello could not be sent looks for the refusal the daemon may
/// have sent before it closed the connection: one sent is there already.
const REFUSAL_WITHIN: Duration = Duration::from_millis(100);

/// How long a daemon has to answer a hello.
const WELCOME_WITHIN: Duration = Duration::from_secs(10);

/// A name too long to carry, as an error shows it: its first [`MAX_NAME`] bytes (to a
/// character's end) and an ellipsis, not all of it (a name may be megabytes).
fn shown(name: &str) -> String {
    if name.len() <= MAX_NAME {
        return format!("`{name}`");
    }
    let mut end = MAX_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("`{}…`", &name[..end])
}

/// Connects to `socket` without waiting for room in its queue of connections not yet
/// accepted: `UnixStream::connect` waits for room there for good (a daemon out of
/// descriptors, stopped, or flooded with connections accepts none), past any deadline
/// and reconnect timeout. A full queue is `WouldBlock`, which is tried again as a daemon
/// not up yet is. The stream is blocking once connected.
fn connect_now(socket: &Path) -> io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(socket)?)?;
    rustix::io::ioctl_fionbio(&fd, false)?;
    Ok(UnixStream::from(fd))
}

/// Why nothing could be connected to at `socket`: a path that holds something other
/// than a socket is said to (a daemon never replaces it, so trying again cannot help), as
/// is a socket this user may not connect to; anything else may be a daemon not started
/// yet, and is tried again.
fn not_listening(socket: &Path, e: io::Error) -> CallError {
    use std::os::unix::fs::FileTypeExt;
    // A daemon makes its socket with its mode from the start, so a user kept out now is
    // kept out for good: trying again cannot help.
    if e.kind() == io::ErrorKind::PermissionDenied {
        return CallError::Invalid(format!(
            "{} does not let this user connect ({e}): the daemon's `socket_mode` (0600 by default), or a directory on the path, keeps it out",
            socket.display()
        ));
    }
    let what = match std::fs::metadata(socket).map(|m| m.file_type()) {
        Ok(t) if t.is_socket() => None,
        Ok(t) if t.is_dir() => Some("a directory"),
        Ok(t) if t.is_file() => Some("a regular file"),
        Ok(t) if t.is_fifo() => Some("a FIFO"),
        Ok(t) if t.is_char_device() || t.is_block_device() => Some("a device"),
        Ok(_) => Some("not a socket"),
        Err(_) => None,
    };
    match what {
        Some(what) => CallError::Invalid(format!(
            "{} is {what}, not a socket: no memlink daemon serves there",
            socket.display()
        )),
        None if e.kind() == io::ErrorKind::WouldBlock => CallError::Gone(format!(
            "{} takes no more connections now: its queue of connections not yet accepted is full (is the daemon stopped, or out of descriptors?)",
            socket.display()
        )),
        None => CallError::Gone(format!("nothing listens at {} ({e})", socket.display())),
    }
}

/// Why the answer to a hello was not a welcome or a refusal: bytes that are no answer
/// of this protocol come from something other than a memlink daemon of this version
/// (trying again cannot help); silence or a hang-up may be a daemon busy or going away.
fn unwelcome(socket: &Path, e: io::Error) -> CallError {
    let socket = socket.display();
    match e.kind() {
        io::ErrorKind::InvalidData => CallError::Invalid(format!(
            "{socket} does not answer as a memlink daemon of protocol {PROTOCOL_VERSION}: {e}"
        )),
        io::ErrorKind::TimedOut => CallError::Gone(format!(
            "{socket} accepted the connection but sent no welcome within {} s (is a memlink daemon serving there?)",
            WELCOME_WITHIN.as_secs()
        )),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => CallError::Gone(format!(
            "{socket} closed the connection before it answered the hello"
        )),
        // The welcome came, and this process could not take it whole (the segment's
        // descriptor, past its open-file limit): the daemon is there, and not at fault.
        io::ErrorKind::QuotaExceeded => CallError::Failed(Failure::Other(format!(
            "the welcome of the daemon at {socket} could not be received: {e}"
        ))),
        _ => CallError::Gone(format!("{socket}: no answer to the hello: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Claims;
    use std::sync::atomic::AtomicBool;
    use std::thread::JoinHandle;

    /// A stand-in daemon in this process: one worker thread serving every slot of a
    /// segment ("reverse" answers the arguments reversed, read in place; "fail" fails),
    /// and the daemon's end of the socket, held so the connection stays alive.
    struct Daemon {
        conn: Arc<Connection>,
        stop: Arc<AtomicBool>,
        worker: Option<JoinHandle<()>>,
        _socket: UnixStream,
    }

    impl Daemon {
        fn start(serving: bool) -> Daemon {
            let geometry = Geometry::new(2, 4096).unwrap();
            let (segment, fd) = Segment::create(geometry).unwrap();
            let (stream, socket) = UnixStream::pair().unwrap();
            let welcome = Welcome {
                version: PROTOCOL_VERSION,
                connection: 1,
                geometry,
                in_place: true,
                max_shm: geometry.len(),
                modules: vec!["m".into()],
                workers: vec![Claims::All],
            };
            let daemon = Segment::map(&fd, geometry).unwrap();
            let conn = Connection::over(stream, segment, welcome, Waiting::default());
            let stop = Arc::new(AtomicBool::new(false));
            let worker = serving.then(|| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || serve(&daemon, &stop))
            });
            Daemon {
                conn,
                stop,
                worker,
                _socket: socket,
            }
        }
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            self.conn.segment.header().ring(0);
            if let Some(worker) = self.worker.take() {
                worker.join().unwrap();
            }
        }
    }

    /// The worker: claims every submitted slot and answers it, then sleeps on its
    /// doorbell, until `stop`.
    fn serve(segment: &Segment, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            for slot in (0..segment.geometry().slots).filter_map(|i| segment.slot(i)) {
                if !slot.claim() {
                    continue;
                }
                let request = slot.read_request().unwrap();
                if request.method.as_str() != "reverse" {
                    slot.finish_failure_after(request.args_len, &Failure::Other("no".into()), 0.0);
                    continue;
                }
                // SAFETY: the slot is `Running`, claimed by this thread, and the tests'
                // client writes no submitted slot: the arguments stay as they are.
                let args = unsafe { slot.data(request.args_len) };
                let reply: Vec<u8> = args.iter().rev().copied().collect();
                slot.finish_ok(&reply, 0.5);
            }
            segment
                .header()
                .wait_doorbell(0, Duration::from_secs(60), || {
                    stop.load(Ordering::SeqCst) || segment.any_submitted(|_| true)
                });
        }
    }

    #[test]
    fn a_call_goes_round_a_leased_slot_and_its_reply_is_read_in_place() {
        let daemon = Daemon::start(true);
        let conn = &daemon.conn;
        let reply = conn
            .call(Op::Call, "m", "reverse", b"abc", None, (1, 2))
            .unwrap();
        assert_eq!(&*reply, b"cba");
        assert_eq!(reply.backpressure(), 0.5);
        drop(reply);
        let mut lease = conn.lease(None).unwrap();
        lease.data_mut()[..3].copy_from_slice(b"xyz");
        for _ in 0..2 {
            let range = lease
                .round_trip(Op::Call, "m", "reverse", 3, None, (0, 0))
                .unwrap();
            assert_eq!(lease.reply(range.clone()), b"zyx");
            assert!(
                !lease.reply_over_args(3),
                "the reply goes after the arguments"
            );
            assert_eq!(&lease.data()[..3], b"xyz", "which stay for the next call");
        }
        let failed = lease.round_trip(Op::Call, "m", "fail", 3, None, (0, 0));
        assert_eq!(failed, Err(CallError::Failed(Failure::Other("no".into()))));
        let range = lease
            .round_trip(Op::Call, "m", "reverse", 2, None, (0, 0))
            .unwrap();
        assert_eq!(&*lease.into_reply(range), b"yx");
    }

    #[test]
    fn calls_in_flight_at_once_each_get_their_own_reply() {
        let daemon = Daemon::start(true);
        let conn = &daemon.conn;
        let mut a = conn.lease(None).unwrap();
        let mut b = conn.lease(None).unwrap();
        a.write_args(b"first").unwrap();
        b.write_args(b"second").unwrap();
        a.submit(Op::Call, "m", "reverse", 5, None, (0, 0)).unwrap();
        b.submit(Op::Call, "m", "reverse", 6, None, (0, 0)).unwrap();
        conn.ring("m");
        let second = b.wait_beside(None, [&a]).unwrap();
        let first = a.wait(None).unwrap();
        assert_eq!((&*first, &*second), (&b"tsrif"[..], &b"dnoces"[..]));
        assert!(
            conn.book().free.is_empty(),
            "both slots are held by the replies"
        );
        drop((first, second));
        assert!(conn.lease(None).is_ok(), "and free again once they drop");
    }

    #[test]
    fn a_call_no_worker_took_is_withdrawn_and_its_slot_comes_back() {
        let daemon = Daemon::start(false);
        let conn = &daemon.conn;
        let mut lease = conn.lease(None).unwrap();
        lease.write_args(b"never").unwrap();
        lease
            .submit(Op::Call, "m", "reverse", 5, None, (0, 0))
            .unwrap();
        assert!(lease.is_submitted());
        assert!(lease.take_back(), "no worker took it");
        assert_eq!(&lease.data()[..5], b"never");
        lease
            .submit(Op::Call, "m", "reverse", 5, None, (0, 0))
            .unwrap();
        let index = lease.index;
        drop(lease);
        let slot = conn.segment.slot(index).unwrap();
        assert_eq!(
            slot.state(),
            Some(SlotState::Free),
            "withdrawn as it dropped"
        );
        let (a, b) = (conn.lease(None).unwrap(), conn.lease(None).unwrap());
        assert_ne!(a.index, b.index, "both slots are free");
        assert!(conn.book().free.is_empty(), "and no third is free");
    }
}
