//! A connection's serving thread in a worker: it claims the calls to this worker's
//! modules from the connection's slots, runs them, and writes their replies; helper
//! threads take what it cannot while it runs a long call.
//!
//! It trusts no client: every field of a slot is read once and checked, and arguments
//! are copied into private memory first unless the supervisor said the client is
//! trusted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use memlink_ipc::control::{Claims, MethodInfo};
use memlink_ipc::figures::{Figures, Row, NO_DEADLINE};
use memlink_ipc::segment::MAX_SLOTS;
use memlink_ipc::slot::{Name, Op, Request, Slot, Spinner};
use memlink_ipc::{clock, Failure, Segment};

use super::config::WorkerLimits;
use crate::{CallOptions, MethodRef, ModuleError, ModuleHandle, Runtime, RuntimeError};

/// How long a connection's thread spins on its doorbell after a call before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// The stack of a thread that runs a connection's calls (its own, and its helpers), for
/// a worker with `limits`: a main thread's on Linux, 8 MiB (of address space until it
/// is used), so that a call through the daemon has the stack it has in-process from
/// `memlink call`, where a module's decoding of a deeply nested argument, or a chain of
/// nested calls, runs on it (with Rust's default for a spawned thread, 2 MiB, a value
/// `memlink call` took was too deep for the daemon). A worker with a `memory_bytes`
/// limit (`RLIMIT_AS`, which counts a stack whole, used or not) keeps the default, so
/// that the connections its limit was sized for still get their threads.
pub(crate) fn call_stack(limits: &WorkerLimits) -> usize {
    if limits.memory_bytes.is_some() {
        2 * 1024 * 1024
    } else {
        8 * 1024 * 1024
    }
}

/// The private copy of arguments a connection's thread keeps between calls, in 16-byte
/// words (64 KiB): a larger one goes to the worker's [`Spare`] after its call, so
/// between calls an untrusted connection costs a worker at most this per thread, beside
/// its segment, and the worker one large copy more.
const KEEP_SCRATCH_WORDS: usize = 4096;

/// The largest private copy of arguments given back by a call, kept by the worker for
/// the next large one (whichever connection makes it): the memory of one such copy
/// instead of one per connection, and a large copy that does not allocate and fault
/// in its pages again on each call.
pub(super) type Spare = Mutex<Vec<u128>>;
/// Module names a connection's thread keeps the lookup of (see [`Server::module`]).
const KEEP_MODULES: usize = 64;
/// How long a sleeping connection thread sleeps at most. Stopping rings the doorbell, so
/// this only bounds the cost of a wakeup lost some other way; idle connections stay
/// asleep (1,000 of them wake 1,000 times a second, not more).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// How often a draining connection's thread looks whether its helpers have ended.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// How often a helper that refuses calls while its connection's thread finishes its
/// last one looks at the slots unwoken: a client whose call waits rings it, so this only
/// bounds a wakeup lost (a helper whose sleeper bit another cleared).
const REFUSE_POLL: Duration = Duration::from_millis(100);

/// Serves one connection's slots.
pub(super) struct Server {
    pub(super) runtime: Arc<Runtime>,
    pub(super) figures: Arc<Figures>,
    /// Which calls are this worker's.
    pub(super) claims: Arc<Claims>,
    pub(super) row: u32,
    pub(super) segment: Arc<Segment>,
    pub(super) in_place: bool,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) draining: Arc<AtomicBool>,
    /// Set by the connection's thread once the worker drains and no call of the
    /// connection runs in it any more (its helpers have ended): what the worker waits
    /// for before its modules' shutdown.
    pub(super) drained: Arc<AtomicBool>,
    /// Set by the connection's thread as it begins to refuse calls ([`Server::drain`]):
    /// until then its helpers refuse them, while it finishes its last call.
    pub(super) refusing: Arc<AtomicBool>,
    /// Each module's handle and deadlines, looked up once.
    pub(super) modules: HashMap<String, (ModuleHandle, Deadlines)>,
    /// The last call's target, for the next call naming the same (most do).
    pub(super) last: Option<Target>,
    /// The registry's epoch when `modules` and `last` were last known good: any load,
    /// reload or unload since may have made a name lead elsewhere.
    pub(super) epoch: u64,
    /// Private memory arguments are copied into (16-aligned, for archives).
    pub(super) scratch: Vec<u128>,
    /// The worker's large copy, shared by its connections.
    pub(super) spare: Arc<Spare>,
    /// Helper threads to start with the connection's first call (see [`Server::help`]).
    pub(super) helpers: usize,
    /// The stack of each thread that runs its calls, in bytes ([`call_stack`]).
    pub(super) call_stack: usize,
    pub(super) helper_threads: Vec<JoinHandle<()>>,
    /// This worker's number: its doorbell and its bit in the header's sleeper words.
    pub(super) index: usize,
    /// Per slot, set while one of this connection's threads in this worker serves it
    /// (see [`Server::take`]); shared by the thread and its helpers.
    pub(super) serving: Arc<Serving>,
}

/// Which slots a connection's threads in a worker are serving: private to the worker,
/// where the slot's state word is the client's to rewrite.
pub(super) type Serving = [AtomicBool; MAX_SLOTS as usize];

impl Server {
    /// Serves the connection until it is stopped; once the worker drains, answers every
    /// call submitted after with "the daemon is shutting down" until then ([`drain`]).
    ///
    /// [`drain`]: Server::drain
    pub(super) fn run(mut self) {
        self.serve_connection();
        if !self.stop.load(Ordering::Acquire) {
            self.drain();
        }
        self.segment.header().call_helpers(self.index);
        for helper in self.helper_threads.drain(..) {
            let _ = helper.join();
        }
        // No call of the connection runs in this worker any more: its row may go to
        // another connection once every worker says so (`Row::attached`).
        self.row().attached.store(0, Ordering::Release);
    }

    /// A server of the same connection with caches of its own, for a helper.
    fn sibling(&self) -> Server {
        Server {
            runtime: Arc::clone(&self.runtime),
            figures: Arc::clone(&self.figures),
            claims: Arc::clone(&self.claims),
            row: self.row,
            segment: Arc::clone(&self.segment),
            in_place: self.in_place,
            stop: Arc::clone(&self.stop),
            draining: Arc::clone(&self.draining),
            drained: Arc::clone(&self.drained),
            refusing: Arc::clone(&self.refusing),
            modules: HashMap::new(),
            last: None,
            epoch: 0,
            scratch: Vec::new(),
            spare: Arc::clone(&self.spare),
            helpers: 0,
            call_stack: self.call_stack,
            helper_threads: Vec::new(),
            index: self.index,
            serving: Arc::clone(&self.serving),
        }
    }

    /// Starts the helpers, once: on the connection's first call, so a connection that
    /// never calls costs one thread.
    fn start_helpers(&mut self) {
        if self.helper_threads.len() >= self.helpers {
            return;
        }
        for _ in self.helper_threads.len()..self.helpers {
            let helper = self.sibling();
            match std::thread::Builder::new()
                .name("memlink-conn-helper".to_owned())
                .stack_size(self.call_stack)
                .spawn(move || helper.help())
            {
                Ok(thread) => self.helper_threads.push(thread),
                Err(e) => {
                    tracing::warn!("cannot start a connection helper: {e}");
                    self.helpers = self.helper_threads.len();
                }
            }
        }
    }

    /// A helper: asleep on its worker's `overflow` word of the connection, which a
    /// client bumps when a call of its to this worker is still not taken after its spin
    /// while another of its calls is in flight; it serves what the connection's thread, busy with a call, cannot take. It
    /// never spins, so a client calling one call at a time, or a batch of short calls,
    /// never wakes it.
    fn help(mut self) {
        let segment = Arc::clone(&self.segment);
        let header = segment.header();
        loop {
            let overflow = header.overflow(self.index);
            let seen = overflow.load(Ordering::SeqCst);
            if self.stop.load(Ordering::Acquire) || self.draining.load(Ordering::Acquire) {
                self.refuse_while_busy();
                return;
            }
            let mut served = true;
            while served {
                served = false;
                for i in 0..segment.geometry().slots {
                    if self.stop.load(Ordering::Acquire) || self.draining.load(Ordering::Acquire) {
                        break;
                    }
                    let slot = segment.slot(i).expect("index below the slot count");
                    if self.take(i, &slot) {
                        served = true;
                        self.serve(i, slot);
                    }
                }
            }
            if self.stop.load(Ordering::Acquire) || self.draining.load(Ordering::Acquire) {
                continue;
            }
            header.wait_helpers_call(self.index, seen, IDLE_POLL);
        }
    }

    /// A helper once its worker drains: refuses the connection's calls while the
    /// connection's thread still runs its last one, and ends when that thread refuses
    /// them itself ([`Server::drain`]). Before, the helpers ended at once, and a call
    /// submitted behind the long one waited for it to end.
    fn refuse_while_busy(&self) {
        let header = self.segment.header();
        while !self.stop.load(Ordering::Acquire) && !self.refusing.load(Ordering::Acquire) {
            let seen = header.overflow(self.index).load(Ordering::SeqCst);
            self.refuse_all();
            header.wait_helpers_call(self.index, seen, REFUSE_POLL);
        }
    }

    fn serve_connection(&mut self) {
        let segment = Arc::clone(&self.segment);
        let header = segment.header();
        let slots = segment.geometry().slots;
        // The spin since the last call served.
        let mut spinner = Spinner::new();
        loop {
            let mut served = false;
            for i in 0..slots {
                // A stop that came during the last call: what is left is refused (by
                // `drain`), not served. Looked at only after a sweep, a call submitted
                // behind a long one was served after the stop.
                if self.stop.load(Ordering::Acquire) || self.draining.load(Ordering::Acquire) {
                    return;
                }
                let slot = segment.slot(i).expect("index below the slot count");
                if self.take(i, &slot) {
                    served = true;
                    self.start_helpers();
                    self.serve(i, slot);
                }
            }
            if self.stop.load(Ordering::Acquire) || self.draining.load(Ordering::Acquire) {
                return;
            }
            if served {
                spinner = Spinner::new();
                continue;
            }
            if spinner.spin_within(SPIN) {
                continue;
            }
            // A bit of this worker's, asleep on a doorbell of its own: a client wakes
            // only the worker its call goes to, and only when this bit says it sleeps,
            // so the slots get a last look once the bit is set.
            header.wait_doorbell(self.index, IDLE_POLL, || {
                self.stop.load(Ordering::SeqCst)
                    || self.draining.load(Ordering::SeqCst)
                    || segment.any_submitted(|name| self.takes(name))
            });
            spinner = Spinner::new();
        }
    }

    /// Claims slot `index` if it holds a call this worker serves, for this thread to
    /// serve. A client may submit a slot again while a thread of this worker still runs
    /// its call (the state word is the client's to write): claimed by another thread, the
    /// second request is counted as refused and dropped, and the first runs on alone and
    /// answers in the slot. Served both, the one that ended first cleared the slot's
    /// entry in the figures table, and the other ran on out of the watchdog's sight,
    /// past any deadline. The second is not answered in the slot either: its answer would
    /// go where the length the client wrote again says, over the arguments the running
    /// call may still be reading in place.
    fn take(&self, index: u32, slot: &Slot<'_>) -> bool {
        if !self.claim(slot) {
            return false;
        }
        // Set after the claim: of two threads that claimed the slot, one after the
        // other, the first to set it serves, whichever claimed first.
        if !self.serving[index as usize].swap(true, Ordering::AcqRel) {
            return true;
        }
        self.row().count_refused(0);
        false
    }

    /// Lets another thread serve slot `index` (see [`Server::take`]): after this thread's
    /// entry for it in the figures table is cleared, which only the slot's server writes,
    /// and before the slot is done, after which its client may submit it again at once.
    fn leave(&self, index: u32) {
        self.serving[index as usize].store(false, Ordering::Release);
    }

    /// Claims the slot if it holds a call this worker serves.
    fn claim(&self, slot: &Slot<'_>) -> bool {
        if *self.claims == Claims::All {
            return slot.claim();
        }
        self.segment.claim_if(slot, |name| self.takes(name))
    }

    /// Whether a call naming `module` (as read from its slot) is this worker's. A name
    /// no client writes is answered by whoever takes unknown names.
    fn takes(&self, module: Result<Name, String>) -> bool {
        match module {
            Ok(name) => self.claims.takes(name.as_str()),
            Err(_) => self.claims.takes(""),
        }
    }

    /// The connection's thread while its worker drains: every call submitted is answered
    /// "the daemon is shutting down", until the worker stops the connection (it exits,
    /// after its modules' shutdown), and [`Server::drained`] is set once the helpers, which
    /// end after the call each runs, have ended. Before, the thread refused what it found
    /// once and ended: a call submitted later on a connection of the worker was answered
    /// by no one for as long as the daemon took to stop, for ever with a call that never
    /// returned.
    fn drain(&mut self) {
        let segment = Arc::clone(&self.segment);
        let header = segment.header();
        // Helpers asleep wake to the drain and end: this thread refuses from here.
        self.refusing.store(true, Ordering::Release);
        header.call_helpers(self.index);
        loop {
            self.refuse_all();
            let drained = self.drained.load(Ordering::Acquire);
            if !drained && self.helper_threads.iter().all(JoinHandle::is_finished) {
                self.drained.store(true, Ordering::Release);
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            // A helper that ends rings nothing: looked at again soon while one runs.
            let poll = if drained { IDLE_POLL } else { DRAIN_POLL };
            header.wait_doorbell(self.index, poll, || {
                self.stop.load(Ordering::SeqCst) || segment.any_submitted(|name| self.takes(name))
            });
        }
    }

    /// Answers every call of this worker's submitted after it began to drain.
    fn refuse_all(&self) {
        for i in 0..self.segment.geometry().slots {
            let slot = self.segment.slot(i).expect("index below the slot count");
            // Taken as a call is (`take`): a slot submitted again while its call still
            // runs on another thread is left to that call's answer.
            if self.take(i, &slot) {
                self.leave(i);
                slot.finish_failure(&Failure::ShuttingDown, 1.0);
            }
        }
    }

    fn row(&self) -> &Row {
        self.figures.row(self.row).expect("row checked at attach")
    }

    fn serve(&mut self, index: u32, slot: Slot<'_>) {
        let mut request = match slot.read_request() {
            Ok(r) => r,
            Err(failure) => {
                self.row().count_refused(0);
                self.leave(index);
                return slot.finish_failure(&failure, 0.0);
            }
        };
        let target = self.target(&request);
        if let Ok(target) = &target {
            decide_deadline(&mut request, target);
        }
        // An untrusted client's arguments are copied first: the copy of a large slot
        // takes time the watchdog must not count against a call that has not started.
        let copied = match (&target, request.op) {
            (Ok(t), Op::Call) if t.method.is_some() => self.take_args(&request, slot),
            _ => Ok(()),
        };
        // A copy that failed fails the call as a target that was not found would.
        let target = copied.and(target);
        let row = self.figures.row(self.row).expect("row checked at attach");
        row.calls.fetch_add(1, Ordering::Relaxed);
        row.bytes_in
            .fetch_add(request.args_len as u64, Ordering::Relaxed);
        let (backpressure, result) = match target {
            Err(failure) => (0.0, Err(failure)),
            // A call past its deadline before it starts (sent so, claimed after it waited
            // in its slot, or once its arguments were copied) is refused here, never
            // listed for the watchdog: it would end the worker for a call that never
            // ran, failing other clients'.
            Ok(target) if request.op == Op::Call && is_past(request.deadline_ns) => {
                (0.0, Err(self.too_late(target, &request)))
            }
            Ok(target) => {
                // Listed only now, so the watchdog holds to its deadline a call that
                // had time left when it started (the runtime refuses it at its deadline
                // if it waits for a slot until then). A method list or backpressure
                // runs no module code and has no deadline to hold.
                let deadline = match request.op {
                    Op::Call if request.deadline_ns != 0 => request.deadline_ns,
                    _ => NO_DEADLINE,
                };
                row.running[index as usize].store(deadline, Ordering::Relaxed);
                self.answer(target, &request, slot)
            }
        };
        // Cleared before the slot completes, so the watchdog never blames a finished call.
        let row = self.figures.row(self.row).expect("row checked at attach");
        row.running[index as usize].store(0, Ordering::Relaxed);
        self.leave(index);
        match result {
            Ok((at, len)) => {
                row.bytes_out.fetch_add(len as u64, Ordering::Relaxed);
                slot.complete_ok(at, len, backpressure);
            }
            Err(failure) => {
                row.errors.fetch_add(1, Ordering::Relaxed);
                slot.finish_failure_after(request.args_len, &failure, backpressure);
            }
        }
    }

    /// The failure of a call refused for its deadline before it started: what the
    /// runtime answers such a call (`ModuleError::Timeout` of the zero time it had).
    #[cold]
    fn too_late(&self, target: Target, r: &Request) -> Failure {
        let module = self
            .runtime
            .module_info(target.handle)
            .map_or_else(|_| r.module.as_str().to_owned(), |info| info.name);
        let e = RuntimeError::Call {
            module,
            method: r.method.as_str().to_owned(),
            error: ModuleError::Timeout(Duration::ZERO),
        };
        failure_of(e, r.module.as_str(), r.method.as_str())
    }

    /// Where the request goes: the last call's target when it names the same module and
    /// method, else looked up (and kept, for a call).
    fn target(&mut self, r: &Request) -> Result<Target, Failure> {
        // A name keeps its lookup only while no module came, changed or went: a higher
        // version loaded beside the one it found takes the name, and a reload may leave
        // it a version its requirement no longer accepts. Read before any lookup, so a
        // change made during one is seen by the next request.
        let epoch = self.runtime.registry.epoch();
        if epoch != self.epoch {
            self.modules.clear();
            self.last = None;
            self.epoch = epoch;
        }
        if let Some(last) = self
            .last
            .filter(|t| r.op == Op::Call && t.names == (r.module, r.method))
        {
            return Ok(last);
        }
        let (handle, deadlines) = self.module(r.module.as_str())?;
        let method = match r.op {
            Op::Call => Some(
                self.runtime
                    .method(handle, r.method.as_str())
                    .map_err(|e| failure_of(e, r.module.as_str(), r.method.as_str()))?,
            ),
            Op::Methods | Op::Backpressure => None,
        };
        let target = Target {
            names: (r.module, r.method),
            handle,
            deadlines,
            method,
        };
        if method.is_some() {
            self.last = Some(target);
        }
        Ok(target)
    }

    fn module(&mut self, module: &str) -> Result<(ModuleHandle, Deadlines), Failure> {
        // A module unloaded from a watched directory leaves its handle stale; another
        // module may be loaded under its name since.
        if let Some(found) = self.modules.get(module) {
            if self.runtime.is_loaded(found.0) {
                return Ok(*found);
            }
            self.modules.remove(module);
        }
        let failed = |e| failure_of(e, module, "");
        let h = self
            .runtime
            .handle_of(module)
            .map_err(|e| malformed(module).unwrap_or_else(|| failed(e)))?;
        let info = self.runtime.module_info(h).map_err(failed)?;
        let deadlines = Deadlines {
            default: info.default_timeout,
            max: info.max_call_time,
        };
        // Names are the client's to make up (a module under requirements without end:
        // `basic@<1.0.1`, `basic@<1.0.2`, ...), so only so many are kept: kept all, they
        // grew the worker for as long as the connection lasted.
        if self.modules.len() >= KEEP_MODULES {
            self.modules.clear();
        }
        self.modules.insert(module.to_owned(), (h, deadlines));
        Ok((h, deadlines))
    }

    /// Runs the request; on success the reply is in the slot's data area, where the
    /// returned offset and length say. With it, the module's backpressure as the call
    /// found it.
    fn answer(
        &mut self,
        target: Target,
        r: &Request,
        slot: Slot<'_>,
    ) -> (f32, Result<(usize, usize), Failure>) {
        let h = target.handle;
        let backpressure = || self.runtime.backpressure(h).unwrap_or(0.0);
        match (r.op, target.method) {
            (Op::Call, Some(method)) => self.call(method, r, slot),
            (Op::Backpressure, _) => {
                let b = backpressure();
                (b, put(slot, r, &b.to_le_bytes()))
            }
            _ => (backpressure(), self.methods(h, r, slot)),
        }
    }

    /// The module's methods, described.
    fn methods(
        &self,
        h: ModuleHandle,
        r: &Request,
        slot: Slot<'_>,
    ) -> Result<(usize, usize), Failure> {
        let module = r.module.as_str();
        let methods = self
            .runtime
            .methods(h)
            .map_err(|e| failure_of(e, module, ""))?;
        let infos: Vec<MethodInfo> = methods
            .iter()
            .map(|m| MethodInfo {
                name: m.name.clone(),
                args: m.args_format as u8,
                result: m.result_format as u8,
                arg_count: m.arg_count,
                args_type: m.args_type.as_ref().map(|t| t.name.clone()),
                result_type: m.result_type.as_ref().map(|t| t.name.clone()),
                args_fingerprint: m.args_type.as_ref().map(|t| t.fingerprint),
                result_fingerprint: m.result_type.as_ref().map(|t| t.fingerprint),
                signature: m.signature.clone(),
            })
            .collect();
        let bytes = rmp_serde::to_vec(&infos).map_err(|e| Failure::Other(e.to_string()))?;
        put(slot, r, &bytes)
    }

    /// Calls the method with the arguments in the slot (read in place, or copied first
    /// for a client the daemon does not trust).
    fn call(
        &mut self,
        method: MethodRef,
        r: &Request,
        slot: Slot<'_>,
    ) -> (f32, Result<(usize, usize), Failure>) {
        let (module, name) = (r.module.as_str(), r.method.as_str());
        let options = CallOptions {
            trace_id: r.trace_id,
            span_id: r.span_id,
            deadline: clock::from_ns(r.deadline_ns),
        };
        let args = if self.in_place {
            // SAFETY: the slot is `Running` and the supervisor vouched that this client
            // (running as the daemon's own user) does not write a slot it submitted; the
            // slice lives only for the call, and this worker writes the slot only after
            // it (`put`); `args_len` is within the data area (`read_request`).
            unsafe { slot.data(r.args_len) }
        } else {
            // Copied by `take_args` before the call was listed.
            &scratch_bytes(&mut self.scratch)[..r.args_len]
        };
        let answered = match self
            .runtime
            .call_method_loaded(method, r.checked, args, &options)
        {
            Ok((backpressure, output)) => {
                let output = output.map_err(|e| failure_of(e, module, name));
                (backpressure, output.and_then(|o| put(slot, r, &o)))
            }
            // Unloaded since it was looked up (a watched file removed, or replaced by
            // another module under the name): looked up once more.
            Err(_) => {
                self.last = None;
                match self.target(r) {
                    Ok(Target {
                        method: Some(again),
                        ..
                    }) if again != method => self.call(again, r, slot),
                    Ok(_) => (0.0, Err(Failure::UnknownModule(module.to_owned()))),
                    Err(failure) => (0.0, Err(failure)),
                }
            }
        };
        // A large copy is not kept by the connection: that would cost the worker the
        // client's slot size a second time for as long as the connection lives. The
        // worker keeps the largest for the next large call.
        if self.scratch.capacity() > KEEP_SCRATCH_WORDS {
            let copy = std::mem::take(&mut self.scratch);
            let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            if copy.capacity() > spare.capacity() {
                *spare = copy;
            }
        }
        answered
    }
}

impl Server {
    /// Copies a call's arguments out of the slot of a client the daemon does not trust
    /// (one that trusted is read in place), so the module reads bytes the client can no
    /// longer change.
    fn take_args(&mut self, r: &Request, slot: Slot<'_>) -> Result<(), Failure> {
        if self.in_place {
            return Ok(());
        }
        if r.args_len.div_ceil(16) > self.scratch.len() {
            // The worker's large copy, if it has one and it is larger than this one's.
            let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            if spare.len() > self.scratch.len() {
                self.scratch = std::mem::take(&mut *spare);
            }
        }
        grow(&mut self.scratch, r.args_len)?;
        slot.copy_data(0, &mut scratch_bytes(&mut self.scratch)[..r.args_len]);
        Ok(())
    }
}

/// A call's deadline decided here as the runtime decides it, so that the watchdog holds
/// the call to the deadline the runtime gives it: a call made without one gets its
/// module's default timeout, and one whose deadline is later than the module's most time
/// a call is given, or that has none, gets that (whatever the client asked for).
fn decide_deadline(request: &mut Request, target: &Target) {
    if request.op != Op::Call {
        return;
    }
    let from_now = |t: Duration| {
        let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        clock::now_ns().saturating_add(ns)
    };
    if let (0, Some(timeout)) = (request.deadline_ns, target.deadlines.default) {
        request.deadline_ns = from_now(timeout);
    }
    // A limit too far off for the clock is none, as the runtime reads it.
    let limit = target
        .deadlines
        .max
        .map(from_now)
        .filter(|&l| l != u64::MAX);
    if let Some(limit) = limit {
        if request.deadline_ns == 0 || request.deadline_ns > limit {
            request.deadline_ns = limit;
        }
    }
}

/// `scratch` as bytes.
fn scratch_bytes(scratch: &mut [u128]) -> &mut [u8] {
    let len = size_of_val(scratch);
    // SAFETY: `u128` has no padding and every byte pattern is a valid `u8` (and every
    // `u8` written is a valid part of a `u128`); the view covers exactly the slice's
    // bytes and borrows it mutably for as long as it lives.
    unsafe { std::slice::from_raw_parts_mut(scratch.as_mut_ptr().cast::<u8>(), len) }
}

/// A module's deadlines for its calls.
#[derive(Clone, Copy)]
pub(super) struct Deadlines {
    /// The deadline, from when it comes in, of a call made without one.
    default: Option<Duration>,
    /// The most time any call is given, whatever its client asks for.
    max: Option<Duration>,
}

/// Where a request goes, and the names that led there.
#[derive(Clone, Copy)]
pub(super) struct Target {
    names: (Name, Name),
    handle: ModuleHandle,
    /// The module's deadlines.
    deadlines: Deadlines,
    /// The method, for a call.
    method: Option<MethodRef>,
}

/// Makes `scratch` long enough for `len` bytes without aborting the worker when memory runs
/// out (its `memory_bytes` limit, say): that call fails, saying so, and the worker goes
/// on serving.
fn grow(scratch: &mut Vec<u128>, len: usize) -> Result<(), Failure> {
    let words = len.div_ceil(16);
    if scratch.len() >= words {
        return Ok(());
    }
    scratch
        .try_reserve_exact(words - scratch.len())
        .map_err(|_| {
            Failure::Other(format!(
                "the worker has no memory for a private copy of the call's {len} bytes of arguments"
            ))
        })?;
    scratch.resize(words, 0);
    Ok(())
}

/// Why `module`, a name no module is served by, is malformed (`crate::names::malformed`).
#[cold]
fn malformed(module: &str) -> Option<Failure> {
    let why = crate::names::malformed(module)?;
    Some(Failure::BadRequest(format!("module `{module}`: {why}")))
}

/// Whether a call's deadline (nanoseconds on `CLOCK_MONOTONIC`, 0 for none) has passed.
/// Read on the coarse clock, which costs a call a few nanoseconds and lags by a tick at
/// most: a call past its deadline by less is listed and then refused by the runtime at
/// once, far within the watchdog's grace.
fn is_past(deadline_ns: u64) -> bool {
    deadline_ns != 0 && clock::coarse_ns() >= deadline_ns
}

/// Writes a reply into the slot (after the arguments when it fits there): placed by the
/// arguments' length read with the request `r`, not read again from the slot, which
/// the client may have rewritten since.
fn put(slot: Slot<'_>, r: &Request, bytes: &[u8]) -> Result<(usize, usize), Failure> {
    if bytes.len() > slot.capacity() {
        return Err(Failure::TooLarge {
            len: bytes.len() as u64,
            capacity: slot.capacity() as u64,
        });
    }
    let at = slot.reply_after(r.args_len, bytes.len());
    slot.write_data(at, bytes);
    Ok((at, bytes.len()))
}

/// The wire form of a runtime error.
fn failure_of(e: RuntimeError, module: &str, method: &str) -> Failure {
    match e {
        RuntimeError::Call {
            module,
            method,
            error,
        } => Failure::Module {
            module,
            method,
            code: error.status() as i32,
            payload: error.payload(),
        },
        RuntimeError::UnknownModule { name } => Failure::UnknownModule(name),
        // Unloaded between the lookup and the call (a watched file removed).
        RuntimeError::UnknownHandle(_) => Failure::UnknownModule(module.to_owned()),
        RuntimeError::UnknownMethod { module, method } => Failure::UnknownMethod { module, method },
        // A reload took the method away between the lookup and the call.
        RuntimeError::MethodRemoved {
            module,
            method: name,
            ..
        } => Failure::UnknownMethod {
            module,
            method: name.unwrap_or_else(|| method.to_owned()),
        },
        // A typed handle's method a reload (or a new module under the name) changed.
        RuntimeError::MethodChanged {
            module,
            method,
            version,
            signature,
        } => Failure::MethodChanged {
            module,
            method,
            version,
            signature,
        },
        RuntimeError::Saturated {
            module,
            method,
            limit,
        } => Failure::Saturated {
            module,
            method,
            limit: limit as u64,
        },
        other => Failure::Other(format!("{module}::{method}: {other}")),
    }
}
