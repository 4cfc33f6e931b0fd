//! A call through the runtime's interceptors, its result cache and the module's breaker:
//! the path a call takes when any of them is configured, kept out of the plain path.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use memlink_abi::ModuleError;

use crate::args::CallInput;
use crate::health::{Pass, Told};
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
    let hooks = &registry.config.interceptors;
    let info = CallInfo {
        module: &module.name,
        method: &module.methods[index as usize].name,
        trace_id: meta.trace_id,
        span_id: meta.span_id,
        depth: meta.depth,
    };
    let after_meta = CallMeta {
        deadline: None,
        ..*meta
    };
    let after = |outcome: Outcome<'_>| {
        crate::chain::hooked_by(after_meta, module.lineage, &module.name, false, || {
            hooks.iter().for_each(|h| h.after(&info, &outcome))
        })
    };
    let refused = crate::chain::hooked_by(*meta, module.lineage, &module.name, false, || {
        hooks
            .iter()
            .find_map(|h| h.before(&info, args.bytes()).err())
    });
    // A pure method's earlier result for the same bytes is as good as a new one, even
    // while the module's breaker is open.
    let cache = registry
        .cache
        .as_ref()
        .filter(|_| refused.is_none() && module.methods[index as usize].pure);
    let cache_key = match cache {
        Some(cache) => {
            if let Some(hit) = cache.get(module.id, index, args.bytes()) {
                let output = CallOutput::copied(&hit);
                after(Outcome {
                    duration: Duration::ZERO,
                    result: Ok(&output),
                });
                return Ok(output);
            }
            Some(args.bytes().to_vec())
        }
        None => None,
    };
    let breaker = registry.config.breaker.as_ref();
    let within = |tell: &mut dyn FnMut()| {
        crate::chain::hooked_by(after_meta, module.lineage, &module.name, false, tell)
    };
    let told = Told {
        module: &module.name,
        within: &within,
    };
    let pass = match (refused, breaker) {
        (Some(error), _) => Err(error),
        (None, Some(config)) => module
            .breaker
            .admit(config, &told)
            .ok_or(ModuleError::ServiceUnavailable),
        (None, None) => Ok(Pass::Through),
    };
    let pass = match pass {
        Ok(pass) => pass,
        Err(error) => {
            // Refused by an interceptor or the breaker: a call all the same, failed.
            if registry.config.builtin_metrics {
                module.stats[index as usize].refused(thread.shard(), error.code());
            }
            after(Outcome {
                duration: Duration::ZERO,
                result: Err(Failed::Module(&error)),
            });
            return Err(fail(Failure::Module(error)));
        }
    };
    // The runtime's clock (the time-stamp counter where it is invariant) costs less than
    // half of `Instant::now` a read.
    let clock = &registry.clock;
    let start = clock.raw();
    let elapsed = || Duration::from_nanos(clock.delta_as_nanos(start, clock.raw()));
    // A panic or timeout the module returns that is the one a nested call of its own
    // ended with is its callee's, counted toward the callee's breaker: the caller only
    // passed it on.
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
            let failed = match &failure {
                Failure::Retired => Failed::Unavailable,
                Failure::Saturated => Failed::Saturated,
                Failure::Module(error) | Failure::Late(error) => Failed::Module(error),
            };
            if let Some(config) = breaker {
                match &failure {
                    Failure::Module(error) => {
                        let passed_on = watch.as_ref().is_some_and(|w| w.passed_on(error));
                        let own = (!passed_on).then_some(error);
                        module.breaker.record(config, &told, pass, own);
                        // Its own or passed on, it is what its caller may pass on in turn.
                        if matches!(error, ModuleError::Panic(_) | ModuleError::Timeout(_)) {
                            ended_with.set(Some(error.clone()));
                        }
                    }
                    _ if pass == Pass::Trial => module.breaker.trial_not_run(),
                    _ => {}
                }
            }
            after(Outcome {
                duration: elapsed(),
                result: Err(failed),
            });
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
        if let (Some(cache), Some(key)) = (cache, &cache_key) {
            cache.put(module.id, index, key, output);
        }
        after(Outcome {
            duration: elapsed(),
            result: Ok(output),
        });
    }
    result
}
