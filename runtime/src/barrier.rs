//! Asymmetric barriers: a full barrier split between a side that runs often and one that
//! runs rarely, with the cost on the rare side.
//!
//! Two protocols need a full barrier between a store and a load on each side: hazard
//! pointers (`crate::hazard`: a call announces its module, a reload looks for it) and
//! admission's plain leases (`crate::admission`: a call marks its lease in use, a thief
//! looks for the mark). Calls are many and the other side is rare, so on Linux the rare
//! side runs `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, a full barrier on every CPU
//! running a thread of this process, and the frequent side's barrier is a compiler
//! fence only (the scheme folly's hazard pointers and Linux's RCU use). Where the system
//! call is missing or refused, and under Miri, both sides run `fence(SeqCst)`. The choice
//! is made once per process, before either protocol runs, so both sides always agree.

use std::sync::atomic::{compiler_fence, fence, Ordering};
use std::sync::OnceLock;

/// The barriers both sides use, decided once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Barriers {
    /// The rare side runs `membarrier`; the frequent side's fence is the compiler's only.
    Asymmetric,
    /// Both run `fence(SeqCst)`.
    Symmetric,
    /// For tests of what the rare side does when its barrier cannot be run: as
    /// `Symmetric`, but the rare side's barrier always fails.
    #[cfg(test)]
    Failing,
}

impl Barriers {
    /// This process's barriers: asymmetric when the kernel registers it for expedited
    /// private `membarrier` (Linux 4.14 and later), else symmetric. Call it before either
    /// side can run (a registry does when it is made, an admission gate too), so that
    /// both sides see the same answer.
    pub(crate) fn of_process() -> Barriers {
        static CHOSEN: OnceLock<Barriers> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            if membarrier(Command::Register) {
                Barriers::Asymmetric
            } else {
                Barriers::Symmetric
            }
        })
    }

    /// The frequent side's barrier, between its store and its load (a hazard pointer's
    /// reader between announcing a pointer and reading its slot again).
    #[inline(always)]
    pub(crate) fn light(self) {
        match self {
            // The other side's `membarrier` orders this thread's accesses on its behalf;
            // only the compiler must not move the load above the store.
            Barriers::Asymmetric => compiler_fence(Ordering::SeqCst),
            Barriers::Symmetric => fence(Ordering::SeqCst),
            #[cfg(test)]
            Barriers::Failing => fence(Ordering::SeqCst),
        }
    }

    /// The rare side's barrier, between its store and its load (a hazard pointer's writer
    /// between emptying a slot and reading the cells): `false` if it could not be run,
    /// and then the rare side must not act on what it reads.
    #[must_use]
    pub(crate) fn heavy(self) -> bool {
        match self {
            // Registered, so it fails only for want of memory in the kernel (it may
            // allocate a CPU mask) or a filter installed since: tried a few times.
            Barriers::Asymmetric => (0..3).any(|_| membarrier(Command::Barrier)),
            Barriers::Symmetric => {
                fence(Ordering::SeqCst);
                true
            }
            #[cfg(test)]
            Barriers::Failing => false,
        }
    }
}

/// What to ask of `membarrier`.
#[derive(Clone, Copy)]
enum Command {
    /// Register the process for expedited private barriers (once).
    Register,
    /// Run one: a full barrier on every CPU running a thread of the process.
    Barrier,
}

/// Runs `membarrier(command)`: whether it succeeded; `false` where there is none (off
/// Linux, and under Miri).
#[cfg(all(target_os = "linux", not(miri)))]
fn membarrier(command: Command) -> bool {
    use rustix::thread::MembarrierCommand;
    let command = match command {
        Command::Register => MembarrierCommand::RegisterPrivateExpedited,
        Command::Barrier => MembarrierCommand::PrivateExpedited,
    };
    rustix::thread::membarrier(command).is_ok()
}

#[cfg(not(all(target_os = "linux", not(miri))))]
fn membarrier(_: Command) -> bool {
    false
}
