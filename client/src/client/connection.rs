//! The client's connection to the daemon: kept while the daemon holds it, checked after
//! an idle spell, made again when the daemon went away, and grown when a call's bytes
//! need larger slots.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlink_ipc::client::{CallError, Connection, Waiting};
use memlink_ipc::{clock, Failure, Geometry};
use memlink_runtime::{CallOptions, RuntimeError};

use super::locks::{lock, read, write};
use super::Client;
use crate::error::runtime_error;

/// How long a connection may go without a reply before it is checked before use (ns of
/// `CLOCK_MONOTONIC_COARSE`).
pub(super) const IDLE_CHECK: u64 = 100_000_000;

/// The pause between two tries to reach a daemon that went away.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

impl Client {
    /// The connection, made again if the daemon went away.
    pub(crate) fn connection(&self) -> Result<Arc<Connection>, RuntimeError> {
        self.connection_until(None)
            .map_err(|e| runtime_error(e, "", "", None))
    }

    /// The connection for a call of `module::method` with `options`, made again if the
    /// daemon went away (trying until the call's deadline at the latest, when it fails
    /// with the call's `Timeout` of `given`, the time the call had when it was made: read
    /// after the reconnect ran the deadline out, it would be none), whose slots hold
    /// `len` bytes.
    pub(crate) fn connection_for_call(
        &self,
        len: usize,
        module: &str,
        method: &str,
        options: &CallOptions,
        given: Option<Duration>,
    ) -> Result<Arc<Connection>, RuntimeError> {
        self.connection_until(options.deadline)
            .and_then(|conn| self.fitting(conn, len, options.deadline))
            .map_err(|e| runtime_error(e, module, method, given))
    }

    /// The connection, made again if the daemon went away: tried for as long as the
    /// reconnect timeout allows, or until `deadline` (then `CallError::TimedOut`),
    /// whichever comes first. One thread connects at a time; the others wait for its
    /// connection, each until its own deadline, and no lock is held while anyone waits.
    pub(super) fn connection_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Arc<Connection>, CallError> {
        if let Some(conn) = &*read(&self.conn) {
            let idle = clock::coarse_ns().saturating_sub(self.last_reply.load(Ordering::Relaxed));
            // An inherited connection (this process forked from the one that made it)
            // is the parent's: a new one is made, whatever the idle time says.
            if (idle < IDLE_CHECK && !conn.inherited()) || conn.alive() {
                return Ok(Arc::clone(conn));
            }
        }
        // `None`: a timeout past what an instant can hold, which is no limit.
        let until = Instant::now().checked_add(self.config.reconnect_timeout);
        let mut gone = None;
        let mut first = true;
        loop {
            if let Some(conn) = self.live_connection() {
                return Ok(conn);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                // A daemon found gone (nothing listens at the path) is said so, not as
                // the call's timeout: the module never ran, and a deadline shorter than
                // the reconnect timeout made every call to a killed daemon a `Timeout`.
                return Err(gone.unwrap_or(CallError::TimedOut));
            }
            // One round at least, whatever the reconnect timeout (zero: one try).
            if !std::mem::take(&mut first) && until.is_some_and(|u| now >= u) {
                return Err(gone.unwrap_or_else(|| {
                    CallError::Gone(format!(
                        "{}: no daemon answered within the reconnect timeout",
                        self.socket.display()
                    ))
                }));
            }
            let turn = match self.reconnecting.try_lock() {
                Ok(turn) => Some(turn),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                // Another thread is connecting: its connection is looked for next round.
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if turn.is_none() {
                // Another thread's try is under way: what this one found before may be
                // out of date (a daemon started again meanwhile).
                gone = None;
            }
            if let Some(_turn) = turn {
                match self.reconnect(deadline) {
                    Ok(Some(conn)) => return Ok(conn),
                    Ok(None) => continue,
                    Err(CallError::Gone(reason)) => gone = Some(CallError::Gone(reason)),
                    Err(e) => return Err(e),
                }
            }
            let pause = deadline.map_or(RECONNECT_PAUSE, |d| {
                RECONNECT_PAUSE.min(d.saturating_duration_since(Instant::now()))
            });
            std::thread::sleep(pause);
        }
    }

    /// The current connection, if the daemon still holds it.
    pub(super) fn live_connection(&self) -> Option<Arc<Connection>> {
        let slot = read(&self.conn);
        slot.as_ref().filter(|c| c.alive()).cloned()
    }

    /// One try to connect again, by the thread holding `reconnecting`, the lock on the
    /// current connection not held while it waits for the daemon: the new connection,
    /// or `None` when another one is there by now (made while this thread took its turn).
    pub(super) fn reconnect(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Arc<Connection>>, CallError> {
        if self.live_connection().is_some() {
            return Ok(None);
        }
        let geometry = *lock(&self.geometry);
        let conn = Connection::connect_by(&self.socket, geometry, self.waiting(), deadline)?;
        let mut slot = write(&self.conn);
        // One made meanwhile (larger slots, by a call that needed them) serves; this one
        // closes.
        if let Some(live) = slot.as_ref().filter(|c| c.alive()) {
            return Ok(Some(Arc::clone(live)));
        }
        // A new connection may reach a daemon started again meanwhile: describe anew.
        lock(&self.methods).clear();
        self.replied();
        *slot = Some(Arc::clone(&conn));
        Ok(Some(conn))
    }

    /// A connection whose slots hold `len` bytes: the current one, or a new one with
    /// larger slots (the segment grows on demand; the old connection closes when the
    /// calls still using it are done).
    pub(crate) fn connection_for(&self, len: usize) -> Result<Arc<Connection>, RuntimeError> {
        let conn = self.connection()?;
        self.fitting(conn, len, None)
            .map_err(|e| runtime_error(e, "", "", None))
    }

    /// `conn`, or a new connection with larger slots when its own do not hold `len`
    /// bytes, made by `deadline`.
    pub(super) fn fitting(
        &self,
        conn: Arc<Connection>,
        len: usize,
        deadline: Option<Instant>,
    ) -> Result<Arc<Connection>, CallError> {
        let slot_size = conn.welcome().geometry.slot_size;
        if len as u64 <= slot_size {
            return Ok(conn);
        }
        // A refusal of the new connection, said alone ("the daemon refused the
        // connection: … its limit of 2 connections"), read as if this one were refused.
        self.grow(&conn, len as u64, deadline).map_err(|e| match e {
            CallError::Failed(Failure::Other(why)) => CallError::Failed(Failure::Other(format!(
                "{len} bytes need larger slots than this connection's {slot_size}, which a new \
                 connection would have, and {why}"
            ))),
            e => e,
        })
    }

    /// Connects again with slots of at least `len` bytes (and never smaller than they
    /// grew to before), within the daemon's limit. The connection is made before the
    /// lock is taken, so calls that fit the current slots go on meanwhile.
    pub(super) fn grow(
        &self,
        old: &Arc<Connection>,
        len: u64,
        deadline: Option<Instant>,
    ) -> Result<Arc<Connection>, CallError> {
        let fits = |slot: &Option<Arc<Connection>>| {
            slot.as_ref()
                .filter(|c| !Arc::ptr_eq(c, old) && c.welcome().geometry.slot_size >= len)
                .cloned()
        };
        if let Some(conn) = fits(&read(&self.conn)) {
            return Ok(conn);
        }
        // Never smaller than the slots it has: those the daemon gave, which may be
        // smaller than those asked for (cut to its `max_shm_per_client`), and always fit
        // its limit (floored at what was asked, a connection asking for more than the
        // daemon allows could never grow at all).
        let floor = old.welcome().geometry.slot_size;
        let geometry = Geometry::to_fit(len.max(floor), self.config.slots, old.welcome().max_shm)
            .map_err(CallError::Invalid)?;
        let conn = Connection::connect_by(&self.socket, geometry, self.waiting(), deadline)?;
        let mut slot = write(&self.conn);
        // Another thread grew it meanwhile: its connection serves, this one closes.
        if let Some(grown) = fits(&slot) {
            return Ok(grown);
        }
        // A new connection may reach a daemon started again meanwhile: describe anew.
        lock(&self.methods).clear();
        *lock(&self.geometry) = geometry;
        *slot = Some(Arc::clone(&conn));
        Ok(conn)
    }

    pub(super) fn waiting(&self) -> Waiting {
        let waiting = Waiting::default();
        Waiting {
            // A caller checks its deadline and the daemon's life only once it stops
            // spinning: a longer spin would put both off (forever, for `Duration::MAX`).
            spin: self.config.spin.min(waiting.poll),
            held: self.config.slot_wait,
            ..waiting
        }
    }

    /// The shared memory the current connection's segment holds, in bytes (its slots
    /// times their size, and the slot table).
    pub fn segment_size(&self) -> Result<u64, RuntimeError> {
        Ok(self.connection()?.welcome().geometry.len())
    }

    /// Forgets `conn` if it is still the current connection, so the next call makes a
    /// new one.
    pub(crate) fn lost(&self, conn: &Arc<Connection>) {
        let mut slot = write(&self.conn);
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *slot = None;
        }
    }
}
