//! How a typed or archived handle's call reaches the daemon: its arguments written
//! straight into a leased slot of the shared segment, or, when they do not fit there,
//! made apart and written to a slot that holds them (the segment grows); the call
//! checked against the method the handle was made for; and sent once more, on a new
//! connection, when the daemon never took it.

use std::time::Duration;

use memlink_ipc::client::Lease;
use memlink_ipc::slot::Op;
use memlink_runtime::{CallOptions, RuntimeError};

use crate::client::Client;
use crate::output::RemoteOutput;

/// The method a handle calls.
pub(crate) struct Target<'c> {
    pub(crate) client: &'c Client,
    /// The module's name.
    pub(crate) name: String,
    pub(crate) method: String,
    /// What the handle checked of the method (`MethodInfo::digest`), sent with each
    /// call: the worker refuses the call if the method it would run is no longer that.
    pub(crate) digest: u64,
}

/// Where a handle's arguments were written: into the slot (their length), or, too long
/// for it, apart (a `Vec`, an archive's buffer), all of them, in the same one run of
/// their `Serialize`.
pub(crate) enum Filled<B> {
    InSlot(usize),
    Apart(B),
}

impl Target<'_> {
    /// Calls the method with the arguments `fill` writes into a slot's bytes, or, when
    /// they do not fit there, makes apart: those are written to a slot that holds them
    /// once the first is given back. A call the daemon never took (it went away, and a
    /// new one is there) is sent once more on a new connection, the arguments written
    /// again.
    pub(crate) fn send<B: AsRef<[u8]>>(
        &self,
        options: &CallOptions,
        fill: impl Fn(&mut [u8]) -> Result<Filled<B>, RuntimeError>,
    ) -> Result<RemoteOutput, RuntimeError> {
        // The time the call had when it was made, which a timeout reports: a second try
        // comes after the first ran some of it out.
        let given = crate::client::given(options);
        // Arguments made apart are kept for the second try: written once, whatever their
        // `Serialize` would do a second time. (Written into a slot, they are written
        // again into the new connection's.)
        let mut apart = None;
        match self.send_once(options, given, &fill, &mut apart) {
            Err(e) if crate::error::not_taken(&e) => {
                self.send_once(options, given, &fill, &mut apart)
            }
            other => other,
        }
    }

    fn send_once<B: AsRef<[u8]>>(
        &self,
        options: &CallOptions,
        given: Option<Duration>,
        fill: &impl Fn(&mut [u8]) -> Result<Filled<B>, RuntimeError>,
        apart: &mut Option<B>,
    ) -> Result<RemoteOutput, RuntimeError> {
        if let Some(bytes) = apart {
            return self.send_apart(bytes.as_ref(), options, given);
        }
        let conn = self
            .client
            .connection_for_call(0, &self.name, &self.method, options, given)?;
        let mut lease = conn.lease(options.deadline).map_err(|e| {
            self.client
                .failed(&conn, e, &self.name, &self.method, given)
        })?;
        match fill(lease.data_mut())? {
            Filled::InSlot(len) => self.finish(lease, len, options, given),
            Filled::Apart(bytes) => {
                // The slot is given back before another that holds them is leased:
                // another call may have it meanwhile.
                drop(lease);
                let bytes = apart.insert(bytes);
                self.send_apart(bytes.as_ref(), options, given)
            }
        }
    }

    /// Calls with arguments made apart, on a connection whose slots hold them.
    fn send_apart(
        &self,
        bytes: &[u8],
        options: &CallOptions,
        given: Option<Duration>,
    ) -> Result<RemoteOutput, RuntimeError> {
        let conn = self.client.connection_for_call(
            bytes.len(),
            &self.name,
            &self.method,
            options,
            given,
        )?;
        let failed = |e| {
            self.client
                .failed(&conn, e, &self.name, &self.method, given)
        };
        let mut lease = conn.lease(options.deadline).map_err(failed)?;
        lease.write_args(bytes).map_err(failed)?;
        self.finish(lease, bytes.len(), options, given)
    }

    /// Submits the call whose `len` bytes of arguments `lease` holds, checked against
    /// the method's digest, and waits for its reply.
    fn finish(
        &self,
        mut lease: Lease,
        len: usize,
        options: &CallOptions,
        given: Option<Duration>,
    ) -> Result<RemoteOutput, RuntimeError> {
        lease.checking(self.digest);
        let reply = self.client.finish(
            lease,
            Op::Call,
            &self.name,
            &self.method,
            len,
            options,
            given,
        )?;
        Ok(RemoteOutput { reply })
    }
}
