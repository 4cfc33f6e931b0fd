//! A call through the runtime's interceptors, its result cache and the module's breaker:
//! the path a call takes when any of them is configured, kept out of the plain path.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use memlink_abi::ModuleError;

use crate::args::CallInput;
use crate::cache::ResultCache;
use crate::health::{BreakerConfig, Pass, Told};
use crate::host_call::{CallMeta, HostCall};
use crate::intercept::{CallInfo, Failed, Outcome};
use crate::invoke::{run_call, Failure};
use crate::module::Module;
use crate::output::{CallOutput, Keep};
use crate::registry::Registry;
use crate::thread::ThreadState;

thread_local! {
    /// For each call behind a breaker running on this thread, innermost last: the last
    /// panic or timeout one of its nested calls ended with, the callee's own or one it
    /// passed on in turn.
    static PASSED_UP: RefCell<Vec<Option<ModuleError>>> = const { RefCell::new(Vec::new()) };
}

/// A call's place in [`PASSED_UP`], for the time its module runs: given back as it ends,
/// unwinding or not.
struct Watch;

impl Watch {
    fn start() -> Watch {
        // `try_with`: a call made as the thread's locals are torn down finds the list
        // gone, and its breaker counts what it returns as it would without one.
        let _ = PASSED_UP.try_with(|s| s.borrow_mut().push(None));
        Watch
    }

    /// Whether `error` is the very panic or timeout a nested call of this call ended
    /// with: its module passing its callee's failure on, which says nothing of itself.
    fn passed_on(&self, error: &ModuleError) -> bool {
        PASSED_UP
            .try_with(|s| s.borrow().last().is_some_and(|e| e.as_ref() == Some(error)))
            .unwrap_or(false)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = PASSED_UP.try_with(|s| s.borrow_mut().pop());
    }
}

/// Tells the call that made this nested one (whose [`Watch`] is now the innermost) the
/// panic or timeout it ended with.
fn tell_caller(error: ModuleError) {
    let _ = PASSED_UP.try_with(|s| {
        if let Some(last) = s.borrow_mut().last_mut() {
            *last = Some(error);
        }
    });
}

/// [`run_call`] with the runtime's interceptors around it (`crate::intercept`), answered
/// from its result cache for a pure method (`crate::cache`), and behind the module's
/// breaker (`crate::health`). The interceptors run as the call's host code
/// (`crate::chain::hooked_by`): a call they make is part of its chain, one level deeper,
/// so the depth limit ends a loop of them; `before`'s spends the call's time (its
/// deadline), `after`'s comes once the call is over and is not bound by it; and an
/// unload or reload of the module from them is refused (it would wait for this call).
#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)] // the call path's own parts, passed down once
pub(crate) fn guarded<E>(
    thread: &ThreadState,
    registry: &Registry,
    module: &Module,
    index: u32,
    args: impl CallInput,
    meta: &CallMeta,
    parent: Option<&HostCall<'_>>,
    fail: impl FnOnce(Failure) -> E,
) -> Result<CallOutput, E> {
    let around = Around {
        registry,
        module,
        index,
        info: CallInfo {
            module: &module.name,
            method: &module.methods[index as usize].name,
            trace_id: meta.trace_id,
            span_id: meta.span_id,
            depth: meta.depth,
        },
        meta,
    };
    let within = |tell: &mut dyn FnMut()| around.hooked(false, tell);
    let told = Told {
        module: &module.name,
        within: &within,
    };
    let (cached, pass) = match around.admit(thread, args.bytes(), &told) {
        Ok(admitted) => admitted,
        Err(Early::Answered(output)) => return Ok(output),
        Err(Early::Refused(error)) => return Err(fail(Failure::Module(error))),
    };
    // The runtime's clock (the time-stamp counter where it is invariant) costs less than
    // half of `Instant::now` a read.
    let clock = &registry.clock;
    let start = clock.raw();
    let elapsed = || Duration::from_nanos(clock.delta_as_nanos(start, clock.raw()));
    // A panic or timeout the module returns that is the one a nested call of its own
    // ended with is its callee's, counted toward the callee's breaker: the caller only
    // passed it on.
    let breaker = registry.config.breaker.as_ref();
    let watch = breaker.map(|_| Watch::start());
    let ended_with = Cell::new(None);
    let result = run_call(
        thread,
        registry,
        module,
        index,
        args,
        meta,
        parent,
        Keep,
        |failure| {
            if let Some(config) = breaker {
                let passed_on = |e: &ModuleError| watch.as_ref().is_some_and(|w| w.passed_on(e));
                if let Some(ended) = around.breaker_failed(config, &told, pass, &failure, passed_on)
                {
                    ended_with.set(Some(ended));
                }
            }
            around.after(elapsed(), Err(failed(&failure)));
            fail(failure)
        },
    );
    drop(watch);
    if let (Some(error), Some(_)) = (ended_with.take(), parent) {
        tell_caller(error);
    }
    if let Ok(output) = &result {
        if let Some(config) = breaker {
            module.breaker.record(config, &told, pass, None);
        }
        if let Some(ToKeep { cache, key }) = cached {
            cache.put(module.id, index, &key, output);
        }
        around.after(elapsed(), Ok(output));
    }
    result
}

/// How a guarded call ended before its module ran.
enum Early {
    /// From the result cache.
    Answered(CallOutput),
    /// By an interceptor or the breaker.
    Refused(ModuleError),
}

/// Where a pure method's result is to be kept: the cache, and the arguments it goes
/// under.
struct ToKeep<'a> {
    cache: &'a ResultCache,
    key: Vec<u8>,
}

/// A guarded call, as its interceptors and its breaker see it.
struct Around<'a> {
    registry: &'a Registry,
    module: &'a Module,
    index: u32,
    info: CallInfo<'a>,
    meta: &'a CallMeta,
}

impl<'a> Around<'a> {
    /// Runs `f` as the call's host code: within its deadline when `timed` (an
    /// interceptor's `before`), else after it (what comes once the call is over).
    fn hooked<R>(&self, timed: bool, f: impl FnOnce() -> R) -> R {
        let meta = match timed {
            true => *self.meta,
            false => CallMeta {
                deadline: None,
                ..*self.meta
            },
        };
        let module = self.module;
        crate::chain::hooked_by(meta, module.lineage, &module.name, false, f)
    }

    /// Tells every interceptor's `after` how the call ended.
    fn after(&self, duration: Duration, result: Result<&[u8], Failed<'_>>) {
        let hooks = &self.registry.config.interceptors;
        let outcome = Outcome { duration, result };
        self.hooked(false, || {
            hooks.iter().for_each(|h| h.after(&self.info, &outcome))
        });
    }

    /// Whether the call is to run, and how the breaker lets it through: refused by an
    /// interceptor's `before` or the breaker (counted as a call, failed, and told to
    /// `after`), or answered from the cache (a pure method's earlier result for the same
    /// bytes is as good as a new one, even while the breaker is open). Where its result
    /// is to be kept, if it is.
    fn admit(
        &self,
        thread: &ThreadState,
        args: &[u8],
        told: &Told<'_>,
    ) -> Result<(Option<ToKeep<'a>>, Pass), Early> {
        let (registry, module, index) = (self.registry, self.module, self.index);
        let hooks = &registry.config.interceptors;
        let refused = self.hooked(true, || {
            hooks.iter().find_map(|h| h.before(&self.info, args).err())
        });
        let cache = registry
            .cache
            .as_ref()
            .filter(|_| refused.is_none() && module.methods[index as usize].pure);
        if let Some(hit) = cache.and_then(|c| c.get(module.id, index, args)) {
            let output = CallOutput::copied(&hit);
            self.after(Duration::ZERO, Ok(&output));
            return Err(Early::Answered(output));
        }
        let pass = match (refused, registry.config.breaker.as_ref()) {
            (Some(error), _) => Err(error),
            (None, Some(config)) => module
                .breaker
                .admit(config, told)
                .ok_or(ModuleError::ServiceUnavailable),
            (None, None) => Ok(Pass::Through),
        };
        match pass {
            Ok(pass) => Ok((
                cache.map(|cache| ToKeep {
                    cache,
                    key: args.to_vec(),
                }),
                pass,
            )),
            Err(error) => {
                if registry.config.builtin_metrics {
                    module.stats[index as usize].refused(thread.shard(), error.code());
                }
                self.after(Duration::ZERO, Err(Failed::Module(&error)));
                Err(Early::Refused(error))
            }
        }
    }

    /// Records `failure` with the breaker, which let the call through as `pass`; a
    /// module error that `passed_on` says is its callee's counts as no failure of its
    /// own. The panic or timeout it ended with, its own or passed on: what its caller may
    /// pass on in turn.
    fn breaker_failed(
        &self,
        config: &BreakerConfig,
        told: &Told<'_>,
        pass: Pass,
        failure: &Failure,
        passed_on: impl Fn(&ModuleError) -> bool,
    ) -> Option<ModuleError> {
        let breaker = &self.module.breaker;
        match failure {
            Failure::Module(error) => {
                let own = (!passed_on(error)).then_some(error);
                breaker.record(config, told, pass, own);
                matches!(error, ModuleError::Panic(_) | ModuleError::Timeout(_))
                    .then(|| error.clone())
            }
            _ if pass == Pass::Trial => {
                breaker.trial_not_run();
                None
            }
            _ => None,
        }
    }
}

/// What the interceptors' `after` is told of `failure`.
fn failed(failure: &Failure) -> Failed<'_> {
    match failure {
        Failure::Retired => Failed::Unavailable,
        Failure::Saturated => Failed::Saturated,
        Failure::Module(error) | Failure::NotRun(error) => Failed::Module(error),
    }
}
