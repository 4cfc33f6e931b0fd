//! [`ClientConfig`]: how a [`Client`] connects, checked before it does.

use std::time::Duration;

use memlink_ipc::segment::MAX_SLOTS;
use memlink_ipc::Geometry;
use memlink_runtime::RuntimeError;

#[cfg(doc)]
use crate::{ArgSlot, Client, RemoteOutput};

/// How a [`Client`] connects.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Calls this client can have in flight at once (default 8; 1 to 64, another number
    /// is refused when connecting).
    pub slots: u32,
    /// Bytes each call's arguments, and result, may take at first (default 1 MiB). A
    /// call with larger arguments grows the connection's segment: the client connects
    /// again with slots that hold them (fewer slots if the daemon's per-client limit
    /// needs it), and a result too large for its slot grows them for the calls after.
    /// 1 byte to 1 GiB (rounded up to a page); another size is refused when connecting.
    pub slot_size: u64,
    /// How long a caller spins on its reply before sleeping (default 20 µs; at most
    /// 50 ms, the interval at which a sleeping caller checks that the daemon is there).
    pub spin: Duration,
    /// How long to keep trying to (re)connect while the daemon is not there (default 2 s).
    /// A timeout too long to add to the current instant (`Duration::MAX`) is no limit:
    /// the client keeps trying for as long as the daemon is not there. It bounds the
    /// tries, not each one: a daemon that accepts the connection and never welcomes it
    /// (stopped, say) is waited for 10 s, or to the call's deadline when the try is a
    /// call's; a call whose deadline comes first fails with `DaemonGone` once a try found
    /// nothing listening, else with its `Timeout`.
    pub reconnect_timeout: Duration,
    /// How long a call, a batch's call or [`arg_buffer`](Client::arg_buffer) waits for a
    /// free slot while every slot of the connection is held by an output
    /// ([`RemoteOutput`]) or an argument buffer ([`ArgSlot`]) not yet dropped, and no call
    /// is in flight whose end would free one (default 5 s). Past it, it fails with
    /// [`RuntimeError::SlotsHeld`]: only a drop frees a slot then, and a thread that
    /// holds them all itself would wait for ever. A call in flight restarts the count,
    /// and a call's deadline, when it comes first, ends the wait as a timeout.
    /// `Duration::MAX` waits for as long as it takes.
    pub slot_wait: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            slots: 8,
            slot_size: 1 << 20,
            spin: Duration::from_micros(20),
            reconnect_timeout: Duration::from_secs(2),
            slot_wait: Duration::from_secs(5),
        }
    }
}

impl ClientConfig {
    /// Sets [`slots`](ClientConfig::slots): 1 to 64, or connecting fails naming the
    /// setting.
    pub fn slots(mut self, slots: u32) -> Self {
        self.slots = slots;
        self
    }

    /// Sets [`slot_size`](ClientConfig::slot_size): 1 byte to 1 GiB, or connecting fails
    /// naming the setting.
    pub fn slot_size(mut self, bytes: u64) -> Self {
        self.slot_size = bytes;
        self
    }

    /// Sets [`spin`](ClientConfig::spin).
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// Sets [`reconnect_timeout`](ClientConfig::reconnect_timeout). `Duration::MAX` (or
    /// any timeout too long to add to the current instant) means no limit: the client
    /// keeps trying to connect for as long as the daemon is not there.
    pub fn reconnect_timeout(mut self, timeout: Duration) -> Self {
        self.reconnect_timeout = timeout;
        self
    }

    /// Sets [`slot_wait`](ClientConfig::slot_wait).
    pub fn slot_wait(mut self, wait: Duration) -> Self {
        self.slot_wait = wait;
        self
    }

    /// The geometry the settings ask for, or the error naming the setting that no
    /// connection can have. The client refuses it itself: the daemon never saw it.
    pub(super) fn geometry(&self) -> Result<Geometry, RuntimeError> {
        let refused = |setting: &str, reason: String| RuntimeError::BadSetting {
            setting: format!("ClientConfig::{setting}"),
            reason,
        };
        if !(1..=MAX_SLOTS).contains(&self.slots) {
            return Err(refused(
                "slots",
                format!(
                    "{} slots: a client has 1 to {MAX_SLOTS} (the calls it can have in flight at once)",
                    self.slots
                ),
            ));
        }
        // With the slots within bounds, the segment's own check refuses only the slot
        // size, in its own words.
        Geometry::new(self.slots, self.slot_size).map_err(|reason| refused("slot_size", reason))
    }
}
