//! [`Client`]: a connection to a daemon, kept alive and re-made when the daemon comes
//! back, and calls by name through it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use memlink_abi::Format;
use memlink_ipc::client::{CallError, Connection, Lease};
use memlink_ipc::control::MethodInfo;
use memlink_ipc::slot::Op;
use memlink_ipc::{clock, Failure, Geometry};
use memlink_runtime::{CallOptions, Caller, RuntimeError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{not_taken, runtime_error};
use crate::output::{decode_private, ArgSlot, RemoteOutput, SlotReply};

mod config;
mod connection;
mod locks;

pub use config::ClientConfig;
use locks::{lock, read, write};

/// A module the daemon serves, resolved by name once ([`Client::module`]). It is valid
/// only with the client that resolved it: another client refuses it
/// ([`RuntimeError::ForeignHandle`]), as a runtime refuses another runtime's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteModule {
    /// The id of the client that resolved it.
    client: u64,
    /// Where its name is in that client's list.
    index: u32,
}

impl fmt::Display for RemoteModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.client, self.index)
    }
}

/// The id of the next client made in this process: a handle carries its client's id, so
/// that no client takes another's handle for one of its own.
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

/// A connection to a memlink daemon, shared by any number of threads.
///
/// A daemon restarted under the client is reconnected to by the next call; a call that
/// was running when the daemon or its worker died fails with
/// [`RuntimeError::DaemonGone`] or [`RuntimeError::WorkerDied`], within its deadline.
///
/// Across `fork()`: a child's first call through a client its parent made connects on its
/// own, and the parent's connection stays the parent's. What the parent's client lent
/// out before the fork is the parent's: in the child, an [`ArgSlot`] is refused
/// ([`RuntimeError::ForeignHandle`]) and panics if read or written, a
/// [`RemoteOutput`] panics if read, and a [`Batch`](crate::Batch)
/// answers each call with the refusal (so parent and child never share a slot). As with
/// any library that locks, a program that forks while another of its threads is using
/// the client may leave the child a lock no thread will release: the child's call then
/// panics, saying so, after 2 s, rather than wait for ever; a child should make a client
/// of its own then.
#[derive(Debug)]
pub struct Client {
    /// Unique in the process; carried by the handles this client issues.
    id: u64,
    socket: PathBuf,
    config: ClientConfig,
    /// The segment the next connection asks for: the configured one, or what it grew to.
    geometry: Mutex<Geometry>,
    conn: RwLock<Option<Arc<Connection>>>,
    /// Held by the one thread that connects again once the daemon went away; the others
    /// wait for its connection, each no longer than its call's deadline.
    reconnecting: Mutex<()>,
    /// Resolved module names, by `RemoteModule::index`; shared, so a call takes its
    /// name without a copy.
    names: RwLock<Vec<Arc<str>>>,
    methods: Mutex<HashMap<String, Arc<Vec<MethodInfo>>>>,
    /// When a call last completed (`CLOCK_MONOTONIC_COARSE` ns, a clock cheap to read
    /// and as fine as this needs): a connection idle longer than [`IDLE_CHECK`](connection::IDLE_CHECK) is
    /// checked before use, so a daemon restarted meanwhile is noticed before a call is
    /// lost to it.
    last_reply: AtomicU64,
}

impl Client {
    /// Connects to the daemon serving on `socket`, with the default [`ClientConfig`]: a
    /// daemon that accepts the connection and sends no welcome (stopped, or not a memlink
    /// daemon) fails it after 10 s with `DaemonGone`.
    pub fn connect(socket: impl AsRef<Path>) -> Result<Client, RuntimeError> {
        Client::with_config(socket, ClientConfig::default())
    }

    /// Connects to the daemon serving on `socket`.
    pub fn with_config(
        socket: impl AsRef<Path>,
        config: ClientConfig,
    ) -> Result<Client, RuntimeError> {
        let geometry = config.geometry()?;
        let client = Client {
            id: NEXT_CLIENT.fetch_add(1, Ordering::Relaxed),
            socket: socket.as_ref().to_owned(),
            config,
            geometry: Mutex::new(geometry),
            conn: RwLock::new(None),
            reconnecting: Mutex::new(()),
            names: RwLock::default(),
            methods: Mutex::default(),
            last_reply: AtomicU64::new(0),
        };
        client.connection()?;
        Ok(client)
    }

    /// The modules the daemon serves.
    pub fn modules(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(self.connection()?.welcome().modules.clone())
    }

    /// Whether the daemon reads this client's arguments in place (it trusts this
    /// client's user), rather than copying them first.
    pub fn in_place(&self) -> Result<bool, RuntimeError> {
        Ok(self.connection()?.welcome().in_place)
    }

    /// The module the daemon serves under `name`: one it served when this client
    /// connected, or one it has served since (from a watched directory), which it is
    /// asked about. A name that can name no module (empty, holding a control character,
    /// a requirement after its `@` that is not semver) is refused with
    /// [`RuntimeError::BadReference`], as `Runtime::handle_of` refuses it, without
    /// asking the daemon.
    pub fn module(&self, name: &str) -> Result<RemoteModule, RuntimeError> {
        if let Some(i) = self
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .position(|n| &**n == name)
        {
            return Ok(RemoteModule {
                client: self.id,
                index: i as u32,
            });
        }
        // Refused here as the runtime refuses it: the daemon would answer a malformed
        // request, which reaches the caller as `RuntimeError::Daemon`, where code
        // written against `Caller` matches `BadReference` in process.
        if let Some(error) = memlink_runtime::caller::malformed_module_name(name) {
            return Err(error);
        }
        let welcomed = self
            .connection()?
            .welcome()
            .modules
            .iter()
            .any(|m| m == name);
        if !welcomed {
            // Answers `UnknownModule` for a name the daemon does not serve.
            let reply = self.request(Op::Methods, name, "", &[], &CallOptions::default())?;
            let list: Vec<MethodInfo> =
                decode_private(&reply, |b| rmp_serde::from_slice(b)).map_err(|e| unreadable(&e))?;
            lock(&self.methods).insert(name.to_owned(), Arc::new(list));
        }
        let mut names = write(&self.names);
        let index = match names.iter().position(|n| &**n == name) {
            Some(i) => i,
            None => {
                names.push(name.into());
                names.len() - 1
            }
        };
        Ok(RemoteModule {
            client: self.id,
            index: index as u32,
        })
    }

    /// The name `module` stands for, if this client resolved it: another client's index
    /// would name whatever module this client resolved at that place, or none.
    pub(crate) fn name(&self, module: RemoteModule) -> Result<Arc<str>, RuntimeError> {
        let names = read(&self.names);
        match names.get(module.index as usize) {
            Some(name) if module.client == self.id => Ok(Arc::clone(name)),
            _ => Err(RuntimeError::ForeignHandle {
                handle: format!("module handle {module}"),
                reason: if module.client == self.id {
                    "this client resolved no module under that handle"
                } else {
                    "the handle was resolved by another client: resolve the module with this client's `module`"
                },
            }),
        }
    }

    /// Refuses an [`ArgSlot`] another client made: it lies in that client's segment, so
    /// the call would go over that client's connection, perhaps to another daemon.
    fn own(&self, buffer: &ArgSlot) -> Result<(), RuntimeError> {
        if buffer.inherited() {
            return Err(RuntimeError::ForeignHandle {
                handle: format!("argument buffer of client #{}", buffer.client),
                reason: "it was made before this process forked: its slot belongs to the parent, which goes on using it; make one with `arg_buffer` in this process",
            });
        }
        if buffer.client == self.id {
            return Ok(());
        }
        Err(RuntimeError::ForeignHandle {
            handle: format!("argument buffer of client #{}", buffer.client),
            reason: "it lies in the shared memory of the client that made it: call with that client, or make one with this client's `arg_buffer`",
        })
    }

    /// The module's methods, as the daemon describes them now: asked each time, so that
    /// a module the daemon reloaded since is described as it is. The list is kept for
    /// the client's typed handles and typed calls, which look a method up in it.
    pub fn methods(&self, module: RemoteModule) -> Result<Arc<Vec<MethodInfo>>, RuntimeError> {
        let name = self.name(module)?;
        self.describe(&name)
    }

    /// The methods kept for `module`, asked for if none are (see [`Client::methods`]):
    /// what a typed lookup reads, until a call finds a method changed or the client
    /// connects again.
    fn kept_methods(&self, module: RemoteModule) -> Result<Arc<Vec<MethodInfo>>, RuntimeError> {
        let name = self.name(module)?;
        if let Some(m) = lock(&self.methods).get(&*name) {
            return Ok(Arc::clone(m));
        }
        self.describe(&name)
    }

    /// Asks the daemon for the methods of the module called `name`, and keeps the list.
    fn describe(&self, name: &str) -> Result<Arc<Vec<MethodInfo>>, RuntimeError> {
        let reply = self.request(Op::Methods, name, "", &[], &CallOptions::default())?;
        let list: Vec<MethodInfo> =
            decode_private(&reply, |b| rmp_serde::from_slice(b)).map_err(|e| unreadable(&e))?;
        let list = Arc::new(list);
        lock(&self.methods).insert(name.to_string(), Arc::clone(&list));
        Ok(list)
    }

    /// The method `method` of `module`, or the error naming both. A method missing from
    /// the list kept is asked for again: the module may have been reloaded since.
    pub(crate) fn method(
        &self,
        module: RemoteModule,
        method: &str,
    ) -> Result<MethodInfo, RuntimeError> {
        let find = |list: &[MethodInfo]| list.iter().find(|m| m.name == method).cloned();
        if let Some(found) = find(&self.kept_methods(module)?) {
            return Ok(found);
        }
        let name = self.name(module)?;
        find(&self.describe(&name)?).ok_or_else(|| RuntimeError::UnknownMethod {
            module: name.to_string(),
            method: method.to_owned(),
        })
    }

    /// Calls `method` with encoded `args` and the default options.
    pub fn call(
        &self,
        module: RemoteModule,
        method: &str,
        args: &[u8],
    ) -> Result<RemoteOutput, RuntimeError> {
        self.call_with(module, method, args, &CallOptions::default())
    }

    /// Calls `method` with encoded `args` (copied into the shared segment) and per-call
    /// `options`: the deadline and trace ids travel with the call.
    pub fn call_with(
        &self,
        module: RemoteModule,
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<RemoteOutput, RuntimeError> {
        let name = self.name(module)?;
        self.request(Op::Call, &name, method, args, options)
            .map(|reply| RemoteOutput { reply })
    }

    /// Memory for `len` bytes of arguments in the shared segment, zeroed, to write in
    /// place and pass to [`call_buffer`](Client::call_buffer).
    ///
    /// It takes one of the connection's slots, and holds it until it drops. When every
    /// slot is in use, this waits for one; while they are all held by outputs and
    /// argument buffers with no call in flight, only for
    /// [`ClientConfig::slot_wait`], then it fails with [`RuntimeError::SlotsHeld`].
    pub fn arg_buffer(&self, len: usize) -> Result<ArgSlot, RuntimeError> {
        let conn = self.connection_for(len)?;
        let mut lease = conn
            .lease(None)
            .map_err(|e| runtime_error(e, "", "", None))?;
        lease
            .fits(len)
            .map_err(|e| runtime_error(e, "", "", None))?;
        lease.data_mut()[..len].fill(0);
        Ok(ArgSlot::new(lease, len, self.id))
    }

    /// Calls `method` with the arguments written in `buffer`, read by the daemon where
    /// they lie.
    pub fn call_buffer(
        &self,
        module: RemoteModule,
        method: &str,
        mut buffer: ArgSlot,
        options: &CallOptions,
    ) -> Result<RemoteOutput, RuntimeError> {
        let name = self.name(module)?;
        self.own(&buffer)?;
        let range = self.call_in(&mut buffer, &name, method, options)?;
        let lease = buffer
            .lease
            .take()
            .expect("a buffer whose call was answered lies in its slot");
        Ok(RemoteOutput {
            reply: lease.into_reply(range),
        })
    }

    /// Calls `method` with the arguments written in `buffer`, and keeps the buffer: the
    /// arguments stay where they are (the reply lands after them when it fits), so the
    /// same buffer, rewritten or not, serves the next call with no new slot and no
    /// zeroing. The reply is read in place until it drops.
    ///
    /// A reply that does not fit after the arguments is written over them: the buffer
    /// then reads as the reply, and the next call through it is refused, saying so,
    /// until it is written again (through `DerefMut`). A call that failed, timed out or
    /// lost the daemon leaves the buffer usable as [`ArgSlot`] describes.
    pub fn call_slot<'s>(
        &self,
        module: RemoteModule,
        method: &str,
        buffer: &'s mut ArgSlot,
        options: &CallOptions,
    ) -> Result<SlotReply<'s>, RuntimeError> {
        let name = self.name(module)?;
        self.own(buffer)?;
        let range = self.call_in(buffer, &name, method, options)?;
        let lease = buffer
            .lease
            .as_ref()
            .expect("a buffer whose call was answered lies in its slot");
        Ok(SlotReply {
            bytes: lease.reply(range),
        })
    }

    /// A call with the arguments in `buffer`, where they lie: its reply's range in the
    /// buffer's slot. A buffer without a slot (its last call left it to the daemon) is
    /// put in one first; a call the daemon never took (it went away, and a new one is
    /// there) is sent once more on a new connection, the arguments moved there.
    fn call_in(
        &self,
        buffer: &mut ArgSlot,
        module: &str,
        method: &str,
        options: &CallOptions,
    ) -> Result<std::ops::Range<usize>, RuntimeError> {
        let given = given(options);
        let trace = (options.trace_id, options.span_id);
        let len = buffer.len;
        let mut retried = false;
        loop {
            if buffer.overwritten {
                return Err(RuntimeError::Daemon {
                    reason: format!(
                        "the arguments in the buffer were overwritten by the last reply through it ({module}::{method} or the call before), which did not fit after them: write them again before calling"
                    ),
                });
            }
            if buffer.lease.is_none() {
                let conn = self.connection_for_call(len, module, method, options, given)?;
                let mut lease = conn
                    .lease(options.deadline)
                    .map_err(|e| self.failed(&conn, e, module, method, given))?;
                lease
                    .fits(len)
                    .map_err(|e| self.failed(&conn, e, module, method, given))?;
                lease.data_mut()[..len].copy_from_slice(&buffer.spare);
                buffer.spare = Vec::new();
                buffer.lease = Some(lease);
            }
            let lease = buffer.lease.as_mut().expect("put in a slot above");
            let conn = Arc::clone(lease.connection());
            let e = match lease.round_trip(Op::Call, module, method, len, options.deadline, trace) {
                Ok(range) => {
                    buffer.overwritten = lease.reply_over_args(len);
                    self.replied();
                    return Ok(range);
                }
                Err(e) => e,
            };
            let detached = !lease.take_back();
            if detached {
                // A worker still runs the call in the slot: it is the daemon's until done.
                buffer.detach();
            } else {
                buffer.overwritten = lease.reply_over_args(len);
            }
            let not_taken = matches!(e, CallError::NotTaken(_));
            let too_large = matches!(e, CallError::Failed(Failure::TooLarge { .. }));
            let mut e = self.failed(&conn, e, module, method, given);
            // The slots grew for the calls after this one, but the buffer lies in one of
            // the old ones: through it, every call would fail the same way.
            if let (true, RuntimeError::Daemon { reason }) = (too_large, &mut e) {
                reason.push_str(
                    " (this buffer stays in the old slots: make a new one with `arg_buffer` for a result this large)",
                );
            }
            // A call a worker holds after all is not sent again: its arguments are no
            // longer the caller's to send (and it may run).
            if !not_taken || retried || detached {
                return Err(e);
            }
            // Withdrawn from a daemon that went away: the arguments move to the next
            // connection.
            retried = true;
            if let Some(lease) = buffer.lease.take() {
                buffer.spare = lease.data()[..len].to_vec();
            }
        }
    }

    /// How loaded the module is in the daemon, in `[0, 1]`.
    pub fn backpressure(&self, module: RemoteModule) -> Result<f32, RuntimeError> {
        let name = self.name(module)?;
        let reply = self.request(Op::Backpressure, &name, "", &[], &CallOptions::default())?;
        let bytes: [u8; 4] = reply[..].try_into().map_err(|_| RuntimeError::Daemon {
            reason: format!("a backpressure reply of {} bytes", reply.len()),
        })?;
        Ok(f32::from_le_bytes(bytes))
    }

    /// A request by name; one the daemon never took (it went away, and a new one is
    /// there) is sent once more on a new connection.
    fn request(
        &self,
        op: Op,
        module: &str,
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<memlink_ipc::client::Reply, RuntimeError> {
        // The time the call had when it was made, which a timeout reports: a second try
        // comes after the first ran some of it out.
        let given = given(options);
        let once = || self.request_once(op, module, method, args, options, given);
        match once() {
            Err(e) if not_taken(&e) => once(),
            other => other,
        }
    }

    fn request_once(
        &self,
        op: Op,
        module: &str,
        method: &str,
        args: &[u8],
        options: &CallOptions,
        given: Option<Duration>,
    ) -> Result<memlink_ipc::client::Reply, RuntimeError> {
        let conn = self.connection_for_call(args.len(), module, method, options, given)?;
        let mut lease = conn
            .lease(options.deadline)
            .map_err(|e| self.failed(&conn, e, module, method, given))?;
        lease
            .write_args(args)
            .map_err(|e| self.failed(&conn, e, module, method, given))?;
        self.finish(lease, op, module, method, args.len(), options, given)
    }

    /// Submits a leased slot holding `len` bytes of arguments and waits for its reply.
    /// `given` is the time the call had when it was made, before the connection and the
    /// slot were waited for: what a timeout reports, as in the runtime.
    #[allow(clippy::too_many_arguments)] // the call's own parts, passed down once
    pub(crate) fn finish(
        &self,
        mut lease: Lease,
        op: Op,
        module: &str,
        method: &str,
        len: usize,
        options: &CallOptions,
        given: Option<Duration>,
    ) -> Result<memlink_ipc::client::Reply, RuntimeError> {
        let conn = Arc::clone(lease.connection());
        lease
            .submit(
                op,
                module,
                method,
                len,
                options.deadline,
                (options.trace_id, options.span_id),
            )
            .map_err(|e| self.failed(&conn, e, module, method, given))?;
        conn.ring(module);
        let reply = lease
            .wait(options.deadline)
            .map_err(|e| self.failed(&conn, e, module, method, given))?;
        self.replied();
        Ok(reply)
    }

    /// Notes that the daemon just answered. The coarse clock moves once a tick, so
    /// threads calling at once write the shared word only then.
    fn replied(&self) {
        let now = clock::coarse_ns();
        if self.last_reply.load(Ordering::Relaxed) != now {
            self.last_reply.store(now, Ordering::Relaxed);
        }
    }

    pub(crate) fn failed(
        &self,
        conn: &Arc<Connection>,
        e: CallError,
        module: &str,
        method: &str,
        given: Option<Duration>,
    ) -> RuntimeError {
        match &e {
            CallError::Gone(_) | CallError::NotTaken(_) => self.lost(conn),
            // Refused by a worker that stopped serving because its supervisor is gone
            // (killed): the daemon is gone, not stopping, and the next call reconnects.
            CallError::Failed(Failure::ShuttingDown) if !conn.alive() => {
                self.lost(conn);
                return RuntimeError::DaemonGone {
                    reason: format!(
                        "{}: the daemon is gone (its worker refused {module}::{method} as it \
                         stopped serving)",
                        self.socket.display()
                    ),
                };
            }
            // The module is no longer as described: a handle made again asks anew.
            CallError::Failed(Failure::MethodChanged { .. }) => {
                lock(&self.methods).remove(module);
            }
            // The call ran; its result needs larger slots, which the calls after it get.
            // The error says both, for a runtime returns such a result: a host that
            // switched to a client learns the method ran (calling again runs it again)
            // and whether calling again can work.
            CallError::Failed(Failure::TooLarge { len, .. }) => {
                // As `grow` floors it: the slots the daemon gave.
                let floor = conn.welcome().geometry.slot_size;
                let max_shm = conn.welcome().max_shm;
                let ran = format!("{module}::{method} ran and its result was dropped");
                if let Err(why) = Geometry::to_fit((*len).max(floor), self.config.slots, max_shm) {
                    // No connection this daemon allows can hold it: calling again would
                    // run the method again in vain.
                    return RuntimeError::Daemon {
                        reason: format!("{e}, and no connection can hold it: {why} ({ran})"),
                    };
                }
                let next = match self.grow(conn, *len, None) {
                    Ok(_) => "the slots grew to hold it for the calls after this one".to_owned(),
                    Err(why) => format!("the slots could not grow to hold it: {why}"),
                };
                return RuntimeError::Daemon {
                    reason: format!("{e}: {ran}; {next}"),
                };
            }
            _ => {}
        }
        runtime_error(e, module, method, given)
    }
}

/// The time a call has when it is made (what a timeout reports, as in the runtime).
pub(crate) fn given(options: &CallOptions) -> Option<Duration> {
    options
        .deadline
        .map(|d| d.saturating_duration_since(Instant::now()))
}

fn unreadable(e: &rmp_serde::decode::Error) -> RuntimeError {
    RuntimeError::Daemon {
        reason: format!("the daemon's method list is unreadable: {e}"),
    }
}

/// The format a method's tag names, or the error saying the daemon sent an unknown one.
pub(crate) fn format(tag: u8) -> Result<Format, RuntimeError> {
    Format::from_u8(tag).ok_or_else(|| RuntimeError::Daemon {
        reason: format!("unknown format tag {tag}"),
    })
}

impl Caller for Client {
    type Module = RemoteModule;
    type Output<'c> = RemoteOutput;

    fn module(&self, name: &str) -> Result<RemoteModule, RuntimeError> {
        Client::module(self, name)
    }

    fn call_with(
        &self,
        module: RemoteModule,
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<RemoteOutput, RuntimeError> {
        Client::call_with(self, module, method, args, options)
    }

    fn call_typed<A, R>(
        &self,
        module: RemoteModule,
        method: &str,
        args: &A,
    ) -> Result<R, RuntimeError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        Client::call_typed(self, module, method, args)
    }

    fn backpressure(&self, module: RemoteModule) -> Result<f32, RuntimeError> {
        Client::backpressure(self, module)
    }
}
