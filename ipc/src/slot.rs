//! One slot: a call's request and reply, and the state word both sides wait on.
//!
//! A slot moves `Free -> Submitted` (client), `Submitted -> Running` (worker, by
//! compare-and-swap), `Running -> Done` (worker, or the supervisor when the worker
//! died) and `Done -> Submitted` (client, for its next call). Every field is an atomic
//! and the data area is reached only through raw copies or the `unsafe` views below,
//! because the other process can write any of it at any moment: the worker copies each
//! field once, checks it, and never reads it again.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::failure::Failure;
use crate::futex;

/// Longest module or method name a slot carries, in bytes.
pub const MAX_NAME: usize = 64;

/// Where a slot is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotState {
    /// Never used. A slot whose reply was read stays `Done` until its client submits it
    /// again: which slots a client may lease is the client's own book, not the state.
    Free = 0,
    /// The client wrote a request; the worker has not claimed it yet.
    Submitted = 1,
    /// The worker is running the call.
    Running = 2,
    /// The reply is written.
    Done = 3,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// Call `method` of `module` with the arguments in the data area.
    Call = 1,
    /// List `module`'s methods (the reply is a MessagePack list of
    /// [`MethodInfo`](crate::control::MethodInfo)).
    Methods = 2,
    /// The backpressure of `module` (the reply is an `f32`, little-endian).
    Backpressure = 3,
}

const STATUS_OK: u32 = 0;
const STATUS_FAILED: u32 = 1;

/// A slot's fields as they lie in the segment (the protocol's layout: any process that
/// maps the segment can write any of them, which is why the worker reads each once).
///
/// The first cache line holds what changes with every call: the state, the request's
/// sizes and the reply, so the worker's reply and its `Done` travel to the client as one
/// line. The trace ids, the checked method's digest and the names follow; a client writes
/// them only when they change
/// (see `Slot::submit`), so a worker reading them again finds them in its cache.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct SlotFields {
    /// [`SlotState`] as a number; the client's futex word.
    pub state: AtomicU32,
    /// 1 while the client sleeps (or is about to) on `state`.
    pub client_waiting: AtomicU32,
    /// [`Op`] as a number.
    pub op: AtomicU32,
    /// The reply's status: 0 ok, 1 failed (a MessagePack [`Failure`] in the data area).
    pub status: AtomicU32,
    /// Bytes of the module's name in `names`.
    pub module_len: AtomicU32,
    /// Bytes of the method's name in `names`.
    pub method_len: AtomicU32,
    /// The module's backpressure with the reply, `f32` bits.
    pub backpressure: AtomicU32,
    /// Unused; zero.
    pub reserved: AtomicU32,
    /// Where the reply starts in the data area: after the arguments (64-aligned) when it
    /// fits there, so a client can call again with the same arguments in place; else 0.
    pub out_at: AtomicU64,
    /// Bytes of arguments at the start of the data area.
    pub args_len: AtomicU64,
    /// Bytes of the reply at the start of the data area.
    pub out_len: AtomicU64,
    /// The deadline on `CLOCK_MONOTONIC` in nanoseconds (0: none).
    pub deadline_ns: AtomicU64,
    /// Trace id.
    pub trace_id: AtomicU64,
    /// Span id.
    pub span_id: AtomicU64,
    /// What the caller checked of the method ([`method_digest`](crate::control::method_digest)
    /// of its formats and archive types, when its typed handle was made); 0 for a call
    /// that checked nothing. The worker refuses a call whose method is no longer that
    /// ([`Failure::MethodChanged`]) rather than run it with arguments it does not read.
    pub checked: AtomicU64,
    /// The module's name, then the method's, [`MAX_NAME`] bytes each, little-endian words;
    /// the bytes past a name's length are not part of it and may be anything.
    pub names: [AtomicU64; 2 * MAX_NAME / 8],
}

impl SlotFields {
    /// Bytes one entry of the slot table takes.
    pub const SIZE: u64 = 256;
}

const _: () = assert!(std::mem::size_of::<SlotFields>() as u64 == SlotFields::SIZE);

/// A module or method name copied out of a slot: UTF-8, checked once when read.
#[derive(Clone, Copy)]
pub struct Name {
    /// Private: only `read_name` makes a `Name`, and only of bytes it checked.
    bytes: [u8; MAX_NAME],
    len: u8,
}

impl Name {
    /// The name.
    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..usize::from(self.len)];
        // SAFETY: `read_name`, the only constructor, checked these bytes as UTF-8; they
        // are this value's private copy (its fields are private and it hands out no
        // mutable access), so they still are.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// A request as the worker read it: private copies, checked against the slot's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// What is asked.
    pub op: Op,
    /// The module's name.
    pub module: Name,
    /// The method's name (empty for ops that need none).
    pub method: Name,
    /// Bytes of arguments at the start of the data area (at most its size).
    pub args_len: usize,
    /// The deadline on `CLOCK_MONOTONIC` (0: none).
    pub deadline_ns: u64,
    /// The caller's trace id (0: none).
    pub trace_id: u64,
    /// The caller's span id (0: none).
    pub span_id: u64,
    /// The digest of the method the caller checked (0: it checked nothing).
    pub checked: u64,
}

/// What a client puts in a slot.
#[derive(Debug, Clone, Copy)]
pub struct Submit<'r> {
    /// What is asked.
    pub op: Op,
    /// The module's name, at most [`MAX_NAME`] bytes.
    pub module: &'r str,
    /// The method's name, at most [`MAX_NAME`] bytes.
    pub method: &'r str,
    /// Bytes of arguments already in the data area.
    pub args_len: usize,
    /// The deadline on `CLOCK_MONOTONIC` (0: none).
    pub deadline_ns: u64,
    /// Trace id (0: none).
    pub trace_id: u64,
    /// Span id (0: none).
    pub span_id: u64,
    /// The digest of the method the caller checked (0: it checked nothing; see
    /// [`SlotFields::checked`]).
    pub checked: u64,
}

#[cfg(test)]
impl<'r> Submit<'r> {
    /// A call of `method` of `module` with no arguments, deadline or trace.
    pub(crate) fn call(module: &'r str, method: &'r str) -> Submit<'r> {
        Submit {
            op: Op::Call,
            module,
            method,
            args_len: 0,
            deadline_ns: 0,
            trace_id: 0,
            span_id: 0,
            checked: 0,
        }
    }
}

/// How waiting for a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The reply is there.
    Done,
    /// The deadline passed first.
    TimedOut,
    /// The liveness check said the daemon is gone.
    Gone,
}

/// One slot of a mapped [`Segment`](crate::Segment).
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    fields: &'a SlotFields,
    data: *mut u8,
    cap: usize,
    _segment: PhantomData<&'a [u8]>,
}

impl<'a> Slot<'a> {
    /// # Safety
    /// `data` is valid for reads and writes of `cap` bytes for `'a`, in a mapping that
    /// only ever changes through raw copies or the `unsafe` views of this type.
    pub(crate) unsafe fn new(fields: &'a SlotFields, data: *mut u8, cap: usize) -> Slot<'a> {
        Slot {
            fields,
            data,
            cap,
            _segment: PhantomData,
        }
    }

    /// The slot's fields, as they lie in the segment.
    pub fn fields(&self) -> &'a SlotFields {
        self.fields
    }

    /// Bytes of the data area.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The slot's state, or `None` for a value no side writes (a client scribbled).
    pub fn state(&self) -> Option<SlotState> {
        match self.fields.state.load(Ordering::Acquire) {
            0 => Some(SlotState::Free),
            1 => Some(SlotState::Submitted),
            2 => Some(SlotState::Running),
            3 => Some(SlotState::Done),
            _ => None,
        }
    }

    /// Copies `bytes` into the data area at `offset`; panics if they do not fit.
    pub fn write_data(&self, offset: usize, bytes: &[u8]) {
        assert!(
            offset <= self.cap && bytes.len() <= self.cap - offset,
            "out of the slot"
        );
        // SAFETY: the range is inside the data area (checked above); the copy goes
        // through raw pointers, so no reference to the shared bytes exists in this
        // process while another process may write them, and `bytes` cannot overlap the
        // data area unless it came from one of the `unsafe` views, whose contract
        // forbids writes while they live (`copy` tolerates the overlap regardless).
        unsafe { std::ptr::copy(bytes.as_ptr(), self.data.add(offset), bytes.len()) };
    }

    /// Copies `out.len()` bytes of the data area from `offset` into `out`, as they are at
    /// this moment; panics if the range is outside the data area.
    pub fn copy_data(&self, offset: usize, out: &mut [u8]) {
        assert!(
            offset <= self.cap && out.len() <= self.cap - offset,
            "out of the slot"
        );
        // SAFETY: the range is inside the data area (checked above) and `out` is private
        // memory of this process, so they do not overlap; the bytes are `u8`, for which
        // every value is valid, so a copy racing another process's writes yields some
        // byte string, which the reader then checks like any other.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.add(offset), out.as_mut_ptr(), out.len())
        };
    }

    /// The first `len` bytes of the data area, read in place.
    ///
    /// # Safety
    /// No process writes those bytes while the slice lives: the caller owns the slot in
    /// the protocol's sense (a client from `Done` until it submits the slot again; a
    /// worker between `Running` and `Done` serving a client it trusts not to write a
    /// submitted slot).
    pub unsafe fn data(&self, len: usize) -> &'a [u8] {
        // SAFETY: the same contract.
        unsafe { self.data_at(0..len) }
    }

    /// The bytes of `range` in the data area, read in place.
    ///
    /// # Safety
    /// As for [`data`](Slot::data).
    pub unsafe fn data_at(&self, range: std::ops::Range<usize>) -> &'a [u8] {
        assert!(
            range.start <= range.end && range.end <= self.cap,
            "out of the slot"
        );
        // SAFETY: in bounds (checked), valid for `'a` (the constructor's contract), and
        // unchanging while the slice lives (this function's contract).
        unsafe { std::slice::from_raw_parts(self.data.add(range.start), range.len()) }
    }

    /// The whole data area, to fill in place.
    ///
    /// # Safety
    /// No other access to the data area, from any process, while the slice lives: the
    /// caller is the client and holds the slot unsubmitted (`Free`, or `Done` from its
    /// last call).
    #[allow(clippy::mut_from_ref)] // the exclusivity is the caller's contract, as for `data`
    pub unsafe fn data_mut(&self) -> &'a mut [u8] {
        // SAFETY: in bounds and valid for `'a` (the constructor's contract), and not
        // accessed by anyone else while the slice lives (this function's contract).
        unsafe { std::slice::from_raw_parts_mut(self.data, self.cap) }
    }

    // ---- the client's side ----

    /// Writes a request and marks the slot submitted. The arguments are already in the
    /// data area. Panics if a name is longer than [`MAX_NAME`] or `args_len` exceeds the
    /// data area (the client checks both first).
    pub fn submit(&self, request: &Submit<'_>) {
        self.prepare(request);
        // Sequentially consistent: a worker about to sleep looks at the state after it
        // says so, and the client reads whether it does after this (see
        // `Header::ring_if_sleeping`).
        self.fields
            .state
            .store(SlotState::Submitted as u32, Ordering::SeqCst);
    }

    /// Writes a request, as [`submit`](Slot::submit) does, but leaves the slot's state
    /// alone: the worker does not take it until the state says submitted (a test that
    /// rewrites a field before publishing the request uses it).
    pub fn prepare(&self, request: &Submit<'_>) {
        assert!(request.module.len() <= MAX_NAME && request.method.len() <= MAX_NAME);
        assert!(request.args_len <= self.cap);
        let f = self.fields;
        f.op.store(request.op as u32, Ordering::Relaxed);
        f.module_len
            .store(request.module.len() as u32, Ordering::Relaxed);
        f.method_len
            .store(request.method.len() as u32, Ordering::Relaxed);
        write_name(&f.names[..MAX_NAME / 8], request.module.as_bytes());
        write_name(&f.names[MAX_NAME / 8..], request.method.as_bytes());
        f.args_len.store(request.args_len as u64, Ordering::Relaxed);
        f.deadline_ns.store(request.deadline_ns, Ordering::Relaxed);
        store_changed(&f.trace_id, request.trace_id);
        store_changed(&f.span_id, request.span_id);
        // The same for every call of a handle: written only when it changes, as above.
        store_changed(&f.checked, request.checked);
        f.status.store(u32::MAX, Ordering::Relaxed);
        f.client_waiting.store(0, Ordering::Relaxed);
    }

    /// Waits for the reply: spins `spin` first, then sleeps on the slot's futex, waking
    /// every `poll` to ask `alive` whether the daemon is still there.
    pub fn wait_done(
        &self,
        deadline: Option<Instant>,
        spin: Duration,
        poll: Duration,
        alive: impl FnMut() -> bool,
    ) -> Waited {
        self.wait_done_then(deadline, spin, poll, alive, |_| {})
    }

    /// [`wait_done`](Slot::wait_done), calling `sleeping` once, with the slot's state,
    /// when the spin ends without the reply: before the first sleep. A client learns
    /// there that its call is still `Submitted`, queued behind others.
    pub fn wait_done_then(
        &self,
        deadline: Option<Instant>,
        spin: Duration,
        poll: Duration,
        mut alive: impl FnMut() -> bool,
        sleeping: impl FnOnce(Option<SlotState>),
    ) -> Waited {
        let f = self.fields;
        let done = SlotState::Done as u32;
        let mut spinner = Spinner::new();
        loop {
            let state = f.state.load(Ordering::Acquire);
            if state == done {
                return Waited::Done;
            }
            if !spinner.spin_within(spin) {
                break;
            }
        }
        sleeping(self.state());
        loop {
            f.client_waiting.store(1, Ordering::SeqCst);
            let state = f.state.load(Ordering::SeqCst);
            if state == done {
                return Waited::Done;
            }
            let now = Instant::now();
            let mut timeout = poll;
            if let Some(d) = deadline {
                if now >= d {
                    return Waited::TimedOut;
                }
                timeout = timeout.min(d - now);
            }
            futex::wait(&f.state, state, Some(timeout));
            if f.state.load(Ordering::Acquire) == done {
                return Waited::Done;
            }
            if !alive() {
                return Waited::Gone;
            }
        }
    }

    /// The reply of a `Done` slot: where the output lies in the data area, or the
    /// failure. The output is read with [`data_at`](Slot::data_at).
    pub fn reply(&self) -> Result<std::ops::Range<usize>, Failure> {
        let f = self.fields;
        let len = f.out_len.load(Ordering::Acquire);
        let at = f.out_at.load(Ordering::Acquire);
        let range = usize::try_from(at)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(at, len)| Some(at..at.checked_add(len)?))
            .filter(|r| r.end <= self.cap);
        let Some(range) = range else {
            return Err(Failure::BadReply(format!("a reply of {len} bytes at {at}")));
        };
        match f.status.load(Ordering::Acquire) {
            STATUS_OK => Ok(range),
            STATUS_FAILED => {
                let mut bytes = vec![0; range.len()];
                self.copy_data(range.start, &mut bytes);
                Err(Failure::decode(&bytes))
            }
            other => Err(Failure::BadReply(format!("status {other}"))),
        }
    }

    /// Where a reply of `len` bytes goes, by the arguments' length as the slot holds it
    /// now: for a finisher that has not read the request (the supervisor failing a dead
    /// worker's calls, a stand-in) or could not. A worker that read it places the reply
    /// by what it read ([`reply_after`](Slot::reply_after)): the client may have written
    /// another length since.
    pub fn reply_at(&self, len: usize) -> usize {
        let args = self.fields.args_len.load(Ordering::Relaxed);
        self.reply_after(usize::try_from(args).unwrap_or(usize::MAX), len)
    }

    /// Where a reply of `len` bytes goes after `args_len` bytes of arguments: after
    /// them, 64-aligned, when it fits there (so the arguments stay for another call),
    /// else at the start.
    pub fn reply_after(&self, args_len: usize, len: usize) -> usize {
        match args_len.checked_next_multiple_of(64) {
            Some(at) if at.checked_add(len).is_some_and(|end| end <= self.cap) => at,
            _ => 0,
        }
    }

    /// The backpressure the worker reported with the reply, in [0, 1].
    pub fn backpressure(&self) -> f32 {
        let v = f32::from_bits(self.fields.backpressure.load(Ordering::Relaxed));
        if v.is_nan() {
            0.0
        } else {
            v.clamp(0.0, 1.0)
        }
    }

    // ---- the worker's side ----

    /// Claims a submitted slot for running; `false` if it is not submitted.
    pub fn claim(&self) -> bool {
        let state = &self.fields.state;
        // Looked at before the compare-and-swap, which takes the line for writing even
        // when it fails: a worker that swapped at every slot it passes would pull each
        // line from the client that writes it, and the client would pull it back.
        if state.load(Ordering::Relaxed) != SlotState::Submitted as u32 {
            return false;
        }
        state
            .compare_exchange(
                SlotState::Submitted as u32,
                SlotState::Running as u32,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Takes back a request no worker has claimed yet: `true` if the slot was still
    /// submitted, and is now free again (the request never runs); `false` if a worker
    /// claimed it first (or it is not submitted).
    pub fn withdraw(&self) -> bool {
        self.fields
            .state
            .compare_exchange(
                SlotState::Submitted as u32,
                SlotState::Free as u32,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Gives a claimed slot back, submitted, for another worker to claim: the claimer
    /// found, reading the name again after its claim, that the call is not its own (the
    /// client reused the slot between the look and the claim).
    pub fn unclaim(&self) {
        let _ = self.fields.state.compare_exchange(
            SlotState::Running as u32,
            SlotState::Submitted as u32,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }

    /// The module name of a request not claimed yet, read so a worker can tell whether
    /// the call is its own before it claims it (a daemon may run one worker per group of
    /// modules). `None` unless the slot is submitted; `Err` for a name no client writes.
    ///
    /// The client may change the name until the slot is claimed, so the name decides
    /// only who claims: the claimer reads the request again, once, after its claim.
    pub fn submitted_module(&self) -> Option<Result<Name, String>> {
        // Sequentially consistent for a worker's last look before it sleeps (see
        // `Header::ring_if_sleeping`).
        if self.fields.state.load(Ordering::SeqCst) != SlotState::Submitted as u32 {
            return None;
        }
        Some(self.module_name())
    }

    /// The module name in the slot now (the supervisor reads it to tell which worker a
    /// call it must fail belonged to).
    pub fn module_name(&self) -> Result<Name, String> {
        let f = self.fields;
        read_name(
            &f.names[..MAX_NAME / 8],
            f.module_len.load(Ordering::Relaxed),
        )
    }

    /// Reads and checks the request of a claimed slot: each field is read once.
    pub fn read_request(&self) -> Result<Request, Failure> {
        let f = self.fields;
        let op = match f.op.load(Ordering::Relaxed) {
            1 => Op::Call,
            2 => Op::Methods,
            3 => Op::Backpressure,
            other => return Err(Failure::BadRequest(format!("unknown op {other}"))),
        };
        let module = self
            .module_name()
            .map_err(|e| Failure::BadRequest(format!("module name: {e}")))?;
        let method = read_name(
            &f.names[MAX_NAME / 8..],
            f.method_len.load(Ordering::Relaxed),
        )
        .map_err(|e| Failure::BadRequest(format!("method name: {e}")))?;
        let args_len = f.args_len.load(Ordering::Relaxed);
        let args_len = usize::try_from(args_len)
            .ok()
            .filter(|&l| l <= self.cap)
            .ok_or_else(|| {
                Failure::BadRequest(format!(
                    "arguments of {args_len} bytes in a slot of {} bytes",
                    self.cap
                ))
            })?;
        Ok(Request {
            op,
            module,
            method,
            args_len,
            deadline_ns: f.deadline_ns.load(Ordering::Relaxed),
            trace_id: f.trace_id.load(Ordering::Relaxed),
            span_id: f.span_id.load(Ordering::Relaxed),
            // Any value is one: the worker compares it, and only 0 checks nothing.
            checked: f.checked.load(Ordering::Relaxed),
        })
    }

    /// Writes a successful reply and completes the slot; a reply larger than the data
    /// area completes it with [`Failure::TooLarge`] instead.
    pub fn finish_ok(&self, output: &[u8], backpressure: f32) {
        if output.len() > self.cap {
            return self.finish_failure(
                &Failure::TooLarge {
                    len: output.len() as u64,
                    capacity: self.cap as u64,
                },
                backpressure,
            );
        }
        let at = self.reply_at(output.len());
        self.write_data(at, output);
        self.complete(STATUS_OK, at, output.len(), backpressure);
    }

    /// Completes the slot with the `len` bytes of reply already written at `at` in its
    /// data area; panics if they are not inside it.
    pub fn complete_ok(&self, at: usize, len: usize, backpressure: f32) {
        assert!(
            at.checked_add(len).is_some_and(|end| end <= self.cap),
            "out of the slot"
        );
        self.complete(STATUS_OK, at, len, backpressure);
    }

    /// Writes a failure and completes the slot (placed by the arguments' length as the
    /// slot holds it now, as [`reply_at`](Slot::reply_at) says).
    pub fn finish_failure(&self, failure: &Failure, backpressure: f32) {
        let args = self.fields.args_len.load(Ordering::Relaxed);
        let args = usize::try_from(args).unwrap_or(usize::MAX);
        self.finish_failure_after(args, failure, backpressure);
    }

    /// Writes a failure after `args_len` bytes of arguments (the length a worker read
    /// with the request) and completes the slot.
    pub fn finish_failure_after(&self, args_len: usize, failure: &Failure, backpressure: f32) {
        let bytes = failure.encode_within(self.cap);
        let at = self.reply_after(args_len, bytes.len());
        self.write_data(at, &bytes);
        self.complete(STATUS_FAILED, at, bytes.len(), backpressure);
    }

    fn complete(&self, status: u32, at: usize, len: usize, backpressure: f32) {
        let f = self.fields;
        f.status.store(status, Ordering::Relaxed);
        f.out_at.store(at as u64, Ordering::Relaxed);
        f.out_len.store(len as u64, Ordering::Relaxed);
        f.backpressure
            .store(backpressure.to_bits(), Ordering::Relaxed);
        f.state.store(SlotState::Done as u32, Ordering::SeqCst);
        // Read, not swapped: the client clears it with its next request, and a swap
        // would take the line the client spins on for writing once more. Both sides
        // store, then load, sequentially consistent: either the client sees done before
        // it sleeps, or this sees it waiting.
        if f.client_waiting.load(Ordering::SeqCst) != 0 {
            futex::wake_all(&f.state);
        }
    }
}

/// A spin wait's steps and the time they took. The clock is read every
/// [`Spinner::LOOKS_PER_READ`] steps, not at each: a read costs more than a look at a
/// word, and would delay seeing the word change by as much.
#[derive(Debug, Default)]
pub struct Spinner {
    looks: u32,
    start: Option<Instant>,
    spun: Duration,
}

impl Spinner {
    /// Steps between two reads of the clock.
    pub const LOOKS_PER_READ: u32 = 8;

    /// A spin that has not begun.
    pub fn new() -> Spinner {
        Spinner::default()
    }

    /// One step ([`relax`]), unless the spin has lasted `limit` (from its first clock
    /// read): then `false`, and no step.
    pub fn spin_within(&mut self, limit: Duration) -> bool {
        self.looks = self.looks.wrapping_add(1);
        if self.looks.is_multiple_of(Self::LOOKS_PER_READ) {
            let now = Instant::now();
            self.spun = now - *self.start.get_or_insert(now);
            if self.spun >= limit {
                return false;
            }
        }
        relax(self.spun);
        true
    }
}

/// One step of a spin wait: a pause while the wait is young, then a yield, so a spinner
/// on a machine with more runnable threads than cores hands its core to the thread it
/// waits for instead of burning the time slice that thread needs.
pub fn relax(spun: Duration) {
    if spun < Duration::from_micros(2) {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Writes `name` into the words that carry it: only the words its bytes reach (the
/// length says where it ends), and only those that differ. A client calling the same
/// names through a slot again writes nothing, so the lines stay shared with the worker
/// that read them, and neither side pays to move them.
fn write_name(words: &[AtomicU64], name: &[u8]) {
    for (word, chunk) in words.iter().zip(name.chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        store_changed(word, u64::from_le_bytes(bytes));
    }
}

/// Stores `value` in a word off the slot's first line unless it is there already: a
/// store would take the line from the worker that read it, for nothing.
fn store_changed(word: &AtomicU64, value: u64) {
    if word.load(Ordering::Relaxed) != value {
        word.store(value, Ordering::Relaxed);
    }
}

fn read_name(words: &[AtomicU64], len: u32) -> Result<Name, String> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_NAME {
        return Err(format!("{len} bytes, at most {MAX_NAME}"));
    }
    let mut bytes = [0u8; MAX_NAME];
    // Only the words the length reaches: the rest may hold a longer name of an earlier
    // call (see `write_name`).
    for (i, word) in words.iter().take(len.div_ceil(8)).enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
    }
    std::str::from_utf8(&bytes[..len]).map_err(|_| "not UTF-8".to_owned())?;
    Ok(Name {
        bytes,
        len: len as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{Geometry, Segment};

    fn segment() -> Segment {
        Segment::create(Geometry::new(2, 4096).unwrap()).unwrap().0
    }

    #[test]
    fn a_request_and_its_reply_go_round() {
        let seg = segment();
        let slot = seg.slot(0).unwrap();
        assert_eq!(slot.state(), Some(SlotState::Free));
        slot.write_data(0, b"args");
        slot.submit(&Submit {
            op: Op::Call,
            module: "basic",
            method: "echo",
            args_len: 4,
            deadline_ns: 9,
            trace_id: 1,
            span_id: 2,
            checked: 7,
        });
        assert_eq!(
            slot.submitted_module().unwrap().unwrap().as_str(),
            "basic",
            "the name is read before the claim"
        );
        assert!(slot.claim());
        assert!(!slot.claim(), "claimed once");
        assert!(slot.submitted_module().is_none(), "running, not submitted");
        slot.unclaim();
        assert_eq!(slot.state(), Some(SlotState::Submitted), "given back");
        assert!(slot.claim(), "and claimed again");
        let r = slot.read_request().unwrap();
        assert_eq!((r.module.as_str(), r.method.as_str()), ("basic", "echo"));
        assert_eq!(
            (r.args_len, r.deadline_ns, r.trace_id, r.span_id, r.checked),
            (4, 9, 1, 2, 7)
        );
        slot.finish_ok(b"result", 0.25);
        let waited = slot.wait_done(None, Duration::ZERO, Duration::from_millis(1), || true);
        assert_eq!(waited, Waited::Done);
        let range = slot.reply().unwrap();
        assert_eq!(range.start, 64, "after the arguments");
        // SAFETY: the slot is done and nobody else touches it in this test.
        assert_eq!(unsafe { slot.data_at(range) }, b"result");
        // SAFETY: as above.
        assert_eq!(unsafe { slot.data(4) }, b"args", "the arguments stay");
        assert_eq!(slot.backpressure(), 0.25);
    }

    #[test]
    fn a_spin_reads_the_clock_every_few_steps_and_ends_at_its_limit() {
        let mut spinner = Spinner::new();
        let steps = (0..100)
            .take_while(|_| spinner.spin_within(Duration::ZERO))
            .count();
        assert_eq!(
            steps as u32,
            Spinner::LOOKS_PER_READ - 1,
            "ends at its first read"
        );
        let mut spinner = Spinner::new();
        assert!((0..100).all(|_| spinner.spin_within(Duration::from_secs(3600))));
    }

    #[test]
    fn names_are_written_where_their_length_reaches_and_compared_as_read() {
        let seg = segment();
        let slot = seg.slot(0).unwrap();
        let request = |module| Submit {
            op: Op::Call,
            module,
            method: "f",
            args_len: 0,
            deadline_ns: 0,
            trace_id: 0,
            span_id: 0,
            checked: 0,
        };
        slot.submit(&request("a-long-module-name"));
        slot.submit(&request("short"));
        let read = slot.read_request().unwrap();
        assert_eq!(
            read.module.as_str(),
            "short",
            "the longer name's tail is not read"
        );
        slot.submit(&request("short"));
        assert_eq!(slot.read_request().unwrap().module, read.module);
        slot.submit(&request("other"));
        assert_ne!(slot.read_request().unwrap().module, read.module);
    }

    #[test]
    fn scribbled_fields_are_refused_with_what_was_wrong() {
        let seg = segment();
        let slot = seg.slot(1).unwrap();
        slot.submit(&Submit::call("m", "f"));
        slot.fields.args_len.store(u64::MAX, Ordering::Relaxed);
        let err = slot.read_request().unwrap_err();
        assert!(
            err.to_string()
                .contains("arguments of 18446744073709551615 bytes"),
            "{err}"
        );
        slot.fields.args_len.store(0, Ordering::Relaxed);
        slot.fields.module_len.store(1000, Ordering::Relaxed);
        assert!(slot
            .read_request()
            .unwrap_err()
            .to_string()
            .contains("module name"));
        slot.fields.module_len.store(1, Ordering::Relaxed);
        slot.fields.op.store(77, Ordering::Relaxed);
        assert!(slot
            .read_request()
            .unwrap_err()
            .to_string()
            .contains("unknown op 77"));
        slot.fields.state.store(99, Ordering::Relaxed);
        assert_eq!(slot.state(), None);
        assert!(!slot.claim());
    }

    #[test]
    fn a_sleeping_client_is_woken_and_a_deadline_ends_the_wait() {
        let seg = std::sync::Arc::new(segment());
        let slot = seg.slot(0).unwrap();
        slot.submit(&Submit::call("m", "f"));
        let d = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            slot.wait_done(Some(d), Duration::ZERO, Duration::from_secs(1), || true),
            Waited::TimedOut
        );
        let s2 = seg.clone();
        let worker = std::thread::spawn(move || {
            let slot = s2.slot(0).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            assert!(slot.claim());
            slot.finish_failure(&Failure::ShuttingDown, 1.0);
        });
        let waited = slot.wait_done(None, Duration::ZERO, Duration::from_secs(5), || true);
        worker.join().unwrap();
        assert_eq!(waited, Waited::Done);
        assert_eq!(slot.reply().unwrap_err(), Failure::ShuttingDown);
    }
}
