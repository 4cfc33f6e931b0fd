//! [`Batch`]: many calls submitted with one wakeup of the daemon, their results
//! collected together.

use memlink_ipc::client::{Connection, Lease};
use memlink_ipc::slot::Op;
use memlink_runtime::{CallOptions, RuntimeError};
use std::sync::Arc;

use crate::client::{Client, RemoteModule};
use crate::error::runtime_error;
use crate::output::RemoteOutput;

/// Calls gathered to be submitted at once: each [`push`](Batch::push) fills a slot, and
/// [`run`](Batch::run) wakes the daemon once (if it sleeps) and collects every result, in order. A
/// batch holds at most as many calls as the connection has slots, and its calls share
/// one connection: the first call grows the slots if it needs to, and a later call
/// larger than them is refused (send it in a batch of its own, or first).
///
/// A pushed call holds its slot until [`run`](Batch::run) collects it (or the batch is
/// dropped). So do not push into a second batch while a first one on the same client holds
/// every slot: that push waits for a slot the first batch frees only when it runs.
/// Dropping a batch without running it (a later push failed, say) withdraws its calls
/// that no worker has taken yet: they never run, and their slots are free at once (a
/// worker still spinning after an earlier call may have taken one already: that one
/// runs, and its slot is free once it is done).
///
/// ```no_run
/// # use memlink_client::Client;
/// # let client = Client::connect("/run/memlink.sock")?;
/// # let basic = client.module("basic")?;
/// let mut batch = client.batch();
/// for word in ["a", "b", "c"] {
///     batch.push(basic, "echo", word.as_bytes())?;
/// }
/// for (result, word) in batch.run().into_iter().zip(["a", "b", "c"]) {
///     assert_eq!(&*result?, word.as_bytes());
/// }
/// # Ok::<(), memlink_client::RuntimeError>(())
/// ```
#[derive(Debug)]
pub struct Batch<'c> {
    client: &'c Client,
    conn: Option<Arc<Connection>>,
    calls: Vec<(Lease, Arc<str>, String)>,
    options: CallOptions,
}

impl Client {
    /// Many calls submitted with one wakeup of the daemon (see [`Batch`]).
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self)
    }
}

impl<'c> Batch<'c> {
    fn new(client: &'c Client) -> Batch<'c> {
        Batch {
            client,
            conn: None,
            calls: Vec::new(),
            options: CallOptions::default(),
        }
    }

    /// Options (deadline, trace ids) for every call of the batch.
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds a call of `method` with encoded `args`, submitted but not yet announced.
    pub fn push(
        &mut self,
        module: RemoteModule,
        method: &str,
        args: &[u8],
    ) -> Result<(), RuntimeError> {
        let name = self.client.name(module)?;
        if self.conn.as_ref().is_some_and(|c| c.inherited()) {
            return Err(inherited_batch());
        }
        // The time the call has as it is pushed, before a reconnect or a slot is waited
        // for: what a timeout reports.
        let given = crate::client::given(&self.options);
        // A batch's calls share one connection; the first call's size may grow it (a
        // connection kept from a first push that failed is chosen again).
        if self.calls.is_empty() {
            self.conn = None;
        }
        let conn = match &self.conn {
            Some(c) => Arc::clone(c),
            None => {
                let c = self.client.connection_for_call(
                    args.len(),
                    &name,
                    method,
                    &self.options,
                    given,
                )?;
                self.conn = Some(Arc::clone(&c));
                c
            }
        };
        if self.calls.len() >= conn.welcome().geometry.slots as usize {
            return Err(RuntimeError::Daemon {
                reason: format!(
                    "a batch holds at most {} calls (the connection's slots)",
                    conn.welcome().geometry.slots
                ),
            });
        }
        // The batch's connection grows no more once a call is in it: a later call larger
        // than its slots goes alone (or first), which the refusal says.
        let capacity = conn.slot_capacity();
        if args.len() > capacity && !self.calls.is_empty() {
            return Err(RuntimeError::Daemon {
                reason: format!(
                    "{name}::{method}: arguments of {} bytes do not fit the batch's slots of {capacity} bytes (sized by its first call): send this call in a batch of its own, or first",
                    args.len()
                ),
            });
        }
        let failed = |e| runtime_error(e, &name, method, given);
        let mut lease = conn.lease(self.options.deadline).map_err(failed)?;
        lease.write_args(args).map_err(failed)?;
        let trace = (self.options.trace_id, self.options.span_id);
        lease
            .submit(
                Op::Call,
                &name,
                method,
                args.len(),
                self.options.deadline,
                trace,
            )
            .map_err(failed)?;
        self.calls.push((lease, name, method.to_owned()));
        Ok(())
    }

    /// How many calls the batch holds.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether the batch holds no call.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Wakes the daemon once for every call and collects their results, in order.
    pub fn run(self) -> Vec<Result<RemoteOutput, RuntimeError>> {
        let Some(conn) = &self.conn else {
            return Vec::new();
        };
        // Pushed before this process forked: the slots are the parent's, which goes on
        // using them; nothing is sent from here.
        if conn.inherited() {
            return self.calls.iter().map(|_| Err(inherited_batch())).collect();
        }
        // One wakeup for each worker the batch's calls go to.
        let mut workers: Vec<usize> = self
            .calls
            .iter()
            .map(|(_, module, _)| conn.worker_of(module))
            .collect();
        workers.sort_unstable();
        workers.dedup();
        for worker in workers {
            conn.ring_worker(worker);
        }
        let given = crate::client::given(&self.options);
        // Waited for in order; a call still queued when an earlier one's wait stops
        // spinning gets a helper of its worker.
        let mut left = self.calls;
        left.reverse();
        let mut results = Vec::with_capacity(left.len());
        while let Some((lease, module, method)) = left.pop() {
            let later = left.iter().map(|(lease, ..)| lease);
            results.push(
                lease
                    .wait_beside(self.options.deadline, later)
                    .map(|reply| RemoteOutput { reply })
                    .map_err(|e| self.client.failed(conn, e, &module, &method, given)),
            );
        }
        results
    }
}

/// The error of a batch made before this process forked, used in the child.
fn inherited_batch() -> RuntimeError {
    RuntimeError::ForeignHandle {
        handle: "batch".to_owned(),
        reason: "it was made before this process forked: its slots belong to the parent, which goes on using them; make a new batch in this process",
    }
}
