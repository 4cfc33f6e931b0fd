//! [`Lease`]: a slot this process holds for one call, from filling its arguments to
//! reading its [`Reply`] in place.

use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{shown, CallError, Connection};
use crate::clock;
use crate::slot::{Op, Slot, SlotState, Submit, Waited, MAX_NAME};

/// A slot this process holds: fill its data area, submit, wait for the reply.
#[derive(Debug)]
pub struct Lease {
    pub(super) conn: Arc<Connection>,
    pub(super) index: u32,
    pub(super) submitted: bool,
    /// The method digest its requests carry (see [`Lease::checking`]).
    pub(super) checked: u64,
}

impl Lease {
    /// Whether this process inherited the lease's connection (see
    /// [`Connection::inherited`]): its slot is the parent's.
    pub fn inherited(&self) -> bool {
        self.conn.inherited()
    }

    fn slot(&self) -> Slot<'_> {
        self.conn
            .segment
            .slot(self.index)
            .expect("a leased index is below the slot count")
    }

    /// The connection the slot belongs to.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// Bytes the data area holds.
    pub fn capacity(&self) -> usize {
        self.slot().capacity()
    }

    /// The data area, to write arguments into in place.
    pub fn data_mut(&mut self) -> &mut [u8] {
        assert!(!self.submitted, "a submitted slot belongs to the daemon");
        // SAFETY: the slot is not submitted (`Free`, or `Done` from its last call) and
        // leased to this value alone (the book hands an
        // index to one lease at a time), so no thread of this process touches it; the
        // daemon touches a slot's data only after it is submitted, which needs
        // `&mut self` and ends this borrow first.
        unsafe { self.slot().data_mut() }
    }

    /// The data area, to read back what was written in it.
    pub fn data(&self) -> &[u8] {
        assert!(!self.submitted, "a submitted slot belongs to the daemon");
        let len = self.capacity();
        // SAFETY: as for `data_mut`: the slot is leased to this value alone and not
        // submitted, so nothing writes it while `&self` lives (writes through
        // `data_mut` need `&mut self`).
        unsafe { self.slot().data(len) }
    }

    /// Copies `args` to the start of the data area, or says they do not fit.
    pub fn write_args(&mut self, args: &[u8]) -> Result<(), CallError> {
        self.fits(args.len())?;
        self.data_mut()[..args.len()].copy_from_slice(args);
        Ok(())
    }

    /// Whether `len` bytes of arguments fit the data area, as an error that says so.
    pub fn fits(&self, len: usize) -> Result<(), CallError> {
        if len > self.capacity() {
            return Err(CallError::Invalid(format!(
                "arguments of {len} bytes do not fit the connection's slots of {} bytes: connect with larger slots",
                self.capacity()
            )));
        }
        Ok(())
    }

    /// Makes the requests this lease submits carry `digest`, what a typed handle checked
    /// of its method ([`method_digest`](crate::control::method_digest)): the worker
    /// refuses the call if the method is no longer that ([`Failure::MethodChanged`](crate::Failure::MethodChanged)).
    /// A lease carries 0, which checks nothing, until told otherwise.
    pub fn checking(&mut self, digest: u64) {
        self.checked = digest;
    }

    /// Submits the request; its arguments are the first `args_len` bytes of the data
    /// area. Call [`Connection::ring`] after submitting one or many.
    pub fn submit(
        &mut self,
        op: Op,
        module: &str,
        method: &str,
        args_len: usize,
        deadline: Option<Instant>,
        trace: (u64, u64),
    ) -> Result<(), CallError> {
        for (what, name) in [("module", module), ("method", method)] {
            if name.len() > MAX_NAME {
                return Err(CallError::Invalid(format!(
                    "the {what} name {} ({} bytes) is longer than {MAX_NAME} bytes",
                    shown(name),
                    name.len()
                )));
            }
        }
        self.fits(args_len)?;
        self.slot().submit(&Submit {
            op,
            module,
            method,
            args_len,
            deadline_ns: clock::to_ns(deadline),
            trace_id: trace.0,
            span_id: trace.1,
            checked: self.checked,
        });
        self.submitted = true;
        Ok(())
    }

    /// Waits for the reply of the submitted request.
    pub fn wait(self, deadline: Option<Instant>) -> Result<Reply, CallError> {
        self.wait_beside(deadline, [])
    }

    /// [`wait`](Lease::wait), for a request submitted with `others` of the same
    /// connection (a batch, waited for in order): any of them still queued when this
    /// wait stops spinning gets a helper of its worker too, as this one would, so that
    /// a short call is not held up behind a long one the batch waits for first.
    pub fn wait_beside<'o>(
        self,
        deadline: Option<Instant>,
        others: impl IntoIterator<Item = &'o Lease>,
    ) -> Result<Reply, CallError> {
        let range = self.wait_ref(deadline, others)?;
        Ok(Reply { lease: self, range })
    }

    fn wait_ref<'o>(
        &self,
        deadline: Option<Instant>,
        others: impl IntoIterator<Item = &'o Lease>,
    ) -> Result<std::ops::Range<usize>, CallError> {
        let conn = &self.conn;
        let slot = self.slot();
        let queued = |state| {
            if conn.leased.load(Ordering::Relaxed) <= 1 {
                return;
            }
            // A call still not taken after the spin while another call of this process
            // is in flight: the connection's thread is busy with that one, and a helper
            // takes this one (calls served within the spin never pay for it). This call
            // and the others on this connection still queued: each worker serving one
            // of them has its helpers woken once (they look at every slot); other
            // workers' helpers sleep on.
            let others = others
                .into_iter()
                .filter(|o| Arc::ptr_eq(&o.conn, conn))
                .map(|o| (o.slot(), o.slot().state()));
            let mut workers: Vec<usize> = std::iter::once((slot, state))
                .chain(others)
                .filter(|(_, state)| *state == Some(SlotState::Submitted))
                .map(|(slot, _)| {
                    // The name the lease wrote; one it could not is routed as the workers
                    // route a name they cannot read.
                    let module = slot.module_name();
                    conn.worker_of(module.as_ref().map_or("", |n| n.as_str()))
                })
                .collect();
            workers.sort_unstable();
            workers.dedup();
            for worker in workers {
                conn.segment.header().call_helpers(worker);
            }
        };
        match slot.wait_done_then(
            deadline,
            conn.waiting.spin,
            conn.waiting.poll,
            || conn.alive(),
            queued,
        ) {
            Waited::Done => {}
            Waited::TimedOut => return Err(CallError::TimedOut),
            Waited::Gone if slot.state() == Some(SlotState::Submitted) => {
                return Err(CallError::NotTaken(
                    "its socket closed before it took the call".into(),
                ))
            }
            Waited::Gone => {
                return Err(CallError::Gone(
                    "its socket closed while a call was running".into(),
                ))
            }
        }
        slot.reply().map_err(CallError::Failed)
    }

    /// Submits the request, rings, waits, and keeps the slot: the arguments stay in the
    /// data area (the reply goes after them when it fits), so the same arguments can be
    /// sent again without being written again. The reply is read with
    /// [`reply`](Lease::reply) until the next call.
    pub fn round_trip(
        &mut self,
        op: Op,
        module: &str,
        method: &str,
        args_len: usize,
        deadline: Option<Instant>,
        trace: (u64, u64),
    ) -> Result<std::ops::Range<usize>, CallError> {
        self.submit(op, module, method, args_len, deadline, trace)?;
        self.conn.ring(module);
        let waited = self.wait_ref(deadline, []);
        // Done, with a reply or a failure: the slot is this lease's again. Otherwise the
        // daemon may still hold it: see `take_back`.
        if matches!(waited, Ok(_) | Err(CallError::Failed(_))) {
            self.submitted = false;
        }
        waited
    }

    /// Takes the slot back after a [`round_trip`](Lease::round_trip) that did not end
    /// with the daemon's answer (a timeout, the daemon gone): `true` if the slot is this
    /// lease's again, its call withdrawn before any worker took it (it never runs) or
    /// done meanwhile; `false` while a worker still runs it (the slot is the daemon's
    /// until it is done, and its data must not be touched).
    pub fn take_back(&mut self) -> bool {
        if !self.submitted {
            return true;
        }
        let slot = self.slot();
        // A worker that claims a call not its own gives it back at once (`unclaim`): a
        // slot seen running is looked at again, for up to a millisecond, before it is left
        // to the daemon, so a call no worker runs is withdrawn, not taken for running.
        let until = Instant::now() + Duration::from_millis(1);
        loop {
            if slot.withdraw() || slot.state() == Some(SlotState::Done) {
                self.submitted = false;
                break;
            }
            if Instant::now() >= until {
                break;
            }
            std::thread::yield_now();
        }
        !self.submitted
    }

    /// Whether the slot is the daemon's now: submitted, and not taken back.
    pub fn is_submitted(&self) -> bool {
        self.submitted
    }

    /// Whether the last reply in the slot (a result or a failure) was written over the
    /// first `args_len` bytes of the data area, where the arguments were: a reply that
    /// does not fit after the arguments goes at the start.
    pub fn reply_over_args(&self, args_len: usize) -> bool {
        let slot = self.slot();
        // A slot withdrawn (free again) holds no reply of this call: the arguments stay.
        if self.submitted || slot.state() != Some(SlotState::Done) {
            return false;
        }
        let f = slot.fields();
        let at = f.out_at.load(Ordering::Acquire);
        let len = f.out_len.load(Ordering::Acquire);
        len > 0 && at < args_len as u64
    }

    /// The reply [`round_trip`](Lease::round_trip) returned the range of, kept with the
    /// slot until it drops.
    pub fn into_reply(self, range: std::ops::Range<usize>) -> Reply {
        assert!(!self.submitted, "a submitted slot belongs to the daemon");
        assert!(
            range.start <= range.end && range.end <= self.capacity(),
            "out of the slot"
        );
        Reply { lease: self, range }
    }

    /// The bytes of a reply [`round_trip`](Lease::round_trip) returned the range of.
    pub fn reply(&self, range: std::ops::Range<usize>) -> &[u8] {
        assert!(!self.submitted, "a submitted slot belongs to the daemon");
        // SAFETY: the slot is not submitted (its last call is done) and leased to this
        // value alone; writes through `data_mut` need `&mut self`, so nothing changes
        // the bytes while `&self` lives.
        unsafe { self.slot().data_at(range) }
    }

    /// The backpressure the daemon reported with the reply.
    pub fn backpressure(&self) -> f32 {
        self.slot().backpressure()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Inherited from the parent of this process: the slot and the book are the
        // parent's, which goes on using them (a withdrawal here would take back the
        // parent's call; the book's lock may be held by a thread that does not exist
        // here). Nothing is touched.
        if self.inherited() {
            return;
        }
        let slot = self.slot();
        let mut book = self.conn.book();
        match slot.state() {
            // A call no worker took yet (it timed out queued, its caller dropped it, or a
            // batch was dropped before it ran) is withdrawn: it never runs, and the slot
            // is free at once rather than when a worker next looks.
            Some(SlotState::Submitted) if self.submitted && slot.withdraw() => {
                book.free.push(self.index)
            }
            // A call still running (it timed out here) is the daemon's until it is done.
            Some(SlotState::Submitted | SlotState::Running) => book.abandoned.push(self.index),
            // Left as it is (`Done`, after a reply): the book says it is free, and the
            // worker looks only for `Submitted`. Writing `Free` would take the line
            // from the worker, which looks at it while it spins, only for the next
            // request to take it back.
            _ => book.free.push(self.index),
        }
        self.conn.count_leased(&book);
        let waiters = book.waiters;
        drop(book);
        if waiters > 0 {
            self.conn.freed.notify_one();
        }
    }
}

/// A reply, read in place in the slot until it drops.
#[derive(Debug)]
pub struct Reply {
    lease: Lease,
    range: std::ops::Range<usize>,
}

impl Reply {
    /// Whether this process inherited the reply's connection (see
    /// [`Connection::inherited`]): its bytes lie in the parent's slot, which the parent
    /// may write over.
    pub fn inherited(&self) -> bool {
        self.lease.inherited()
    }

    /// The backpressure the daemon reported with the reply, in [0, 1].
    pub fn backpressure(&self) -> f32 {
        self.lease.backpressure()
    }
}

impl Deref for Reply {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the slot is `Done` and leased to this reply: the daemon writes a slot
        // only between `Submitted` and `Done`, and this process hands the slot to no one
        // else until the reply drops; the range was checked against the data area.
        unsafe { self.lease.slot().data_at(self.range.clone()) }
    }
}
