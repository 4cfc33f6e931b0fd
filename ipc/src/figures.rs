//! What the daemon and its worker share and no client sees: per connection, the calls
//! running in each slot (with their deadlines, for the watchdog) and the connection's
//! figures (calls, errors, bytes).
//!
//! It lives in a memfd of its own, created by the daemon and passed to each worker it
//! starts, so the figures outlive a worker that dies and a client cannot forge them.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::segment::{map_sealed, sealed_memfd, Shared, MAX_SLOTS};

/// `Row::running` of a slot whose call has no deadline.
pub const NO_DEADLINE: u64 = u64::MAX;

/// One connection's row.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Row {
    /// Per slot: 0 when idle, else the running call's deadline on `CLOCK_MONOTONIC`
    /// ([`NO_DEADLINE`] for none).
    pub running: [AtomicU64; MAX_SLOTS as usize],
    /// Calls served.
    pub calls: AtomicU64,
    /// Calls that ended in an error.
    pub errors: AtomicU64,
    /// Bytes of arguments received.
    pub bytes_in: AtomicU64,
    /// Bytes of results sent.
    pub bytes_out: AtomicU64,
    /// 1 while the connection may have a thread in the worker whose table this is: set
    /// by the supervisor before it hands the connection over, cleared by that thread
    /// when it ends (after its last call's entry), by the worker when it cannot take the
    /// connection, and by the supervisor when the worker process is gone. A row is free
    /// for another connection only once it is 0 in every worker's table: a thread still
    /// serving the old connection would list its calls under the new one.
    pub attached: AtomicU64,
}

impl Row {
    /// Counts a request answered with an error without being served (one that does not
    /// read as a request, or one the daemon answers for a worker that is down), with
    /// `args_len` bytes of arguments: a call and an error, so a client's errors never
    /// outnumber its requests.
    pub fn count_refused(&self, args_len: u64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(args_len, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// The table of rows, one per connection the daemon may hold.
#[derive(Debug)]
pub struct Figures {
    map: Shared,
    rows: u32,
}

// Every bit pattern (the zeroes of a fresh memfd included) is a valid `Row` of atomics.
const ROW: u64 = std::mem::size_of::<Row>() as u64;

impl Figures {
    /// A zeroed table of `rows` rows, and its descriptor for the worker.
    pub fn create(rows: u32) -> io::Result<(Figures, OwnedFd)> {
        let fd = sealed_memfd("memlink-figures", u64::from(rows.max(1)) * ROW)?;
        Ok((Figures::map(&fd, rows)?, fd))
    }

    /// Maps the table `fd` refers to (checked to be sealed and large enough).
    pub fn map(fd: &OwnedFd, rows: u32) -> io::Result<Figures> {
        let map = map_sealed(fd, u64::from(rows.max(1)) * ROW)?;
        Ok(Figures { map, rows })
    }

    /// Row `index`, or `None` past the last.
    pub fn row(&self, index: u32) -> Option<&Row> {
        if index >= self.rows {
            return None;
        }
        // SAFETY: `index < rows`, so the row lies inside the mapping, which is page
        // aligned (rows are 64-aligned multiples); every bit pattern is a valid `Row` of
        // atomics, and the mapping lives as long as `self`, which the reference borrows.
        Some(unsafe {
            &*self
                .map
                .as_mut_ptr()
                .add(index as usize * ROW as usize)
                .cast::<Row>()
        })
    }

    /// How many rows there are.
    pub fn rows(&self) -> u32 {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn both_mappings_see_the_figures() {
        let (a, fd) = Figures::create(3).unwrap();
        let b = Figures::map(&fd, 3).unwrap();
        a.row(2).unwrap().calls.fetch_add(5, Ordering::Relaxed);
        a.row(2).unwrap().running[63].store(NO_DEADLINE, Ordering::Relaxed);
        assert_eq!(b.row(2).unwrap().calls.load(Ordering::Relaxed), 5);
        assert_eq!(
            b.row(2).unwrap().running[63].load(Ordering::Relaxed),
            NO_DEADLINE
        );
        assert!(b.row(3).is_none());
    }
}
