//! Health: a module's circuit breaker, and what [`Runtime::health`](crate::Runtime::health)
//! says of a module.
//!
//! **The breaker** ([`BreakerConfig`], off by default) watches the calls a module fails
//! in ways that say the module itself is in trouble: panics and timeouts. After
//! `failures` of them in a row it **opens**: calls to the module fail at once with
//! `ModuleError::ServiceUnavailable`, without reaching it. After `cool_down` it lets one
//! trial call through (**half-open**): a call that succeeds (or fails in the ordinary
//! way, by returning an error) closes it, another panic or timeout opens it again.
//! A panic or timeout a module returns as a nested call gave it to it (passing its
//! callee's failure on) is the callee's: it counts toward the callee's breaker, and
//! toward its caller's as an ordinary error.
//! A reload gives the new version a closed breaker. Each change is logged (`tracing`,
//! target `memlink::health`) and counted (`memlink_breaker_state`,
//! `memlink_breaker_opened_total`).
//!
//! **Health** ([`Health`]): a module that exports `memlink_health` (no arguments; an
//! `Ok` result means ready) is asked; one without it is ready while it is loaded and
//! its breaker is closed. An open breaker makes a module failing until its cool-down is
//! over; it is live from then until its trial call has closed it.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use memlink_abi::ModuleError;

/// The export a module offers for [`Runtime::health`](crate::Runtime::health): no
/// arguments, `Ok` when the module is ready to serve, an error saying why when not.
pub const HEALTH_CHECK: &str = "memlink_health";

/// When a module's breaker opens and for how long (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Panics or timeouts in a row that open the breaker (at least 1).
    pub failures: u32,
    /// How long it stays open before a trial call goes through.
    pub cool_down: Duration,
}

impl BreakerConfig {
    /// A breaker that opens after `failures` panics or timeouts in a row and stays open
    /// for `cool_down`.
    pub fn new(failures: u32, cool_down: Duration) -> BreakerConfig {
        BreakerConfig {
            failures: failures.max(1),
            cool_down,
        }
    }
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until the cool-down is over.
    Open,
    /// One trial call is going through; the others fail fast.
    HalfOpen,
}

impl BreakerState {
    fn from_u8(v: u8) -> BreakerState {
        match v {
            OPEN => BreakerState::Open,
            HALF_OPEN => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// Lowercase, for logs.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// The value of the `memlink_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> u8 {
        match self {
            BreakerState::Closed => CLOSED,
            BreakerState::Open => OPEN,
            BreakerState::HalfOpen => HALF_OPEN,
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// What a module's health check and breaker say.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Loaded, its breaker closed, and its health check (if any) passes.
    Ready,
    /// Loaded and answering, but not ready: its health check returned an error, or its
    /// breaker is letting a trial call through.
    Live {
        /// Why it is not ready.
        reason: String,
    },
    /// Not serving: its breaker is open, or its health check panicked, timed out or broke
    /// the ABI (a status no module may return, say).
    Failing {
        /// Why.
        reason: String,
    },
}

/// A module's breaker (one per loaded version).
#[derive(Debug)]
pub(crate) struct Breaker {
    state: AtomicU8,
    /// Panics and timeouts since the last call that went well.
    in_a_row: AtomicU32,
    /// When it last opened, in nanoseconds since `epoch`.
    opened_at: AtomicU64,
    /// Times it opened.
    opened: AtomicU64,
    epoch: Instant,
}

/// Whether the breaker lets a call through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// An ordinary call.
    Through,
    /// The trial call of a half-open breaker.
    Trial,
}

impl Breaker {
    pub(crate) fn new() -> Breaker {
        Breaker {
            state: AtomicU8::new(CLOSED),
            in_a_row: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Whether the breaker is open with its cool-down over: the next call is its trial.
    pub(crate) fn cooled(&self, config: &BreakerConfig) -> bool {
        self.state() == BreakerState::Open && self.cool_down_over(config)
    }

    /// Whether `config.cool_down` has passed since the breaker last opened.
    fn cool_down_over(&self, config: &BreakerConfig) -> bool {
        let open_for = self
            .now()
            .saturating_sub(self.opened_at.load(Ordering::Acquire));
        u128::from(open_for) >= config.cool_down.as_nanos()
    }

    /// Takes over `old`'s count of times it opened: the count of a module's breaker runs
    /// on across its reloads, as its calls' counts do.
    pub(crate) fn carry_count_of(&self, old: &Breaker) {
        self.opened
            .store(old.opened.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Times the breaker opened.
    pub(crate) fn times_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Whether a call may go through now (a closed breaker costs one load).
    #[inline]
    pub(crate) fn admit(&self, config: &BreakerConfig, told: &Told<'_>) -> Option<Pass> {
        match self.state.load(Ordering::Acquire) {
            CLOSED => Some(Pass::Through),
            _ => self.admit_slow(config, told),
        }
    }

    #[cold]
    fn admit_slow(&self, config: &BreakerConfig, told: &Told<'_>) -> Option<Pass> {
        if self.state.load(Ordering::Acquire) != OPEN {
            // Half-open: its trial call is running.
            return None;
        }
        if !self.cool_down_over(config) {
            return None;
        }
        // The first call past the cool-down is the trial; the others keep failing fast.
        self.state
            .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| {
                told.changed(BreakerState::HalfOpen, "cool-down over, one trial call");
                Pass::Trial
            })
    }

    /// Counts how a call that went through ended: `error` is its error, if any.
    #[inline]
    pub(crate) fn record(
        &self,
        config: &BreakerConfig,
        told: &Told<'_>,
        pass: Pass,
        error: Option<&ModuleError>,
    ) {
        let counts = matches!(error, Some(ModuleError::Panic(_) | ModuleError::Timeout(_)));
        if !counts {
            if self.in_a_row.load(Ordering::Relaxed) != 0 {
                self.in_a_row.store(0, Ordering::Relaxed);
            }
            if pass == Pass::Trial {
                self.state.store(CLOSED, Ordering::Release);
                told.changed(BreakerState::Closed, "the trial call went well");
            }
            return;
        }
        let in_a_row = self.in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        let why = || match error {
            Some(e) => format!("{in_a_row} panics or timeouts in a row, the last: {e}"),
            None => String::new(),
        };
        if pass == Pass::Trial {
            self.open(HALF_OPEN, told, &why());
        } else if in_a_row >= config.failures {
            self.open(CLOSED, told, &why());
        }
    }

    /// A trial call that could not run (the module was saturated): the breaker stays
    /// open, and the next call past the cool-down is the trial.
    pub(crate) fn trial_not_run(&self) {
        let _ = self
            .state
            .compare_exchange(HALF_OPEN, OPEN, Ordering::AcqRel, Ordering::Acquire);
    }

    fn open(&self, from: u8, told: &Told<'_>, why: &str) {
        // A failure of a call that started before the breaker opened must not extend the
        // cool-down: only a breaker still in `from` is opened (and stamped).
        if self.state.load(Ordering::Acquire) != from {
            return;
        }
        self.opened_at.store(self.now(), Ordering::Release);
        if self
            .state
            .compare_exchange(from, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.opened.fetch_add(1, Ordering::Relaxed);
            told.changed(BreakerState::Open, why);
        }
    }
}

/// Whom a breaker's change of state is told about, and where: the module's name, and
/// what runs the telling (a `tracing` event under `memlink::health`) as host code of the
/// call that changed it. A subscriber is the host's code and may call into the runtime
/// meanwhile; the call's module is still held then, so an unload or reload of it from
/// there would wait for itself, and is refused as from an interceptor.
pub(crate) struct Told<'a> {
    pub(crate) module: &'a str,
    pub(crate) within: &'a dyn Fn(&mut dyn FnMut()),
}

impl Told<'_> {
    #[cold]
    fn changed(&self, state: BreakerState, why: &str) {
        let (module, state) = (self.module, state.name());
        (self.within)(&mut || match state {
            "open" => {
                tracing::warn!(target: "memlink::health", module, state, "breaker {state}: {why}")
            }
            _ => {
                tracing::info!(target: "memlink::health", module, state, "breaker {state}: {why}")
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a call that went well records.
    const WENT_WELL: Option<&ModuleError> = None;

    fn directly(f: &mut dyn FnMut()) {
        f()
    }

    /// Module `m`, its changes told on the spot.
    const M: Told<'static> = Told {
        module: "m",
        within: &directly,
    };

    fn panic() -> ModuleError {
        ModuleError::Panic("boom".into())
    }

    #[test]
    fn opens_after_a_run_of_failures_and_closes_after_a_good_trial() {
        let config = BreakerConfig::new(3, Duration::ZERO);
        let b = Breaker::new();
        for _ in 0..2 {
            let pass = b.admit(&config, &M).unwrap();
            b.record(&config, &M, pass, Some(&panic()));
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // An ordinary error breaks the run.
        b.record(
            &config,
            &M,
            Pass::Through,
            Some(&ModuleError::QuotaExceeded),
        );
        for _ in 0..3 {
            b.record(&config, &M, Pass::Through, Some(&panic()));
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.times_opened(), 1);
        let trial = b.admit(&config, &M);
        assert_eq!(trial, Some(Pass::Trial));
        assert_eq!(b.admit(&config, &M), None, "one trial at a time");
        b.record(&config, &M, Pass::Trial, WENT_WELL);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_failed_trial_opens_it_again_for_a_whole_cool_down() {
        let config = BreakerConfig::new(1, Duration::from_secs(3600));
        let b = Breaker::new();
        b.record(
            &config,
            &M,
            Pass::Through,
            Some(&ModuleError::Timeout(Duration::ZERO)),
        );
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(&config, &M), None, "still cooling down");
        // Pretend the cool-down passed, then fail the trial.
        b.opened_at.store(0, Ordering::Release);
        let quick = BreakerConfig::new(1, Duration::ZERO);
        assert_eq!(b.admit(&quick, &M), Some(Pass::Trial));
        b.record(&config, &M, Pass::Trial, Some(&panic()));
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.times_opened(), 2);
        assert_eq!(b.admit(&config, &M), None);
    }
}
