//! A module's next version: a reload made ready outside the registry's lock (opened,
//! started, the old version's state taken), then switched in under it, the old version
//! retired once its calls end (see `crate::reload` for what a reload carries over).

use std::path::Path;
use std::sync::Arc;

use super::loading::{answers, init, open_copy};
use super::retiring::shutdown;
use super::{Live, Registry, Retiring};
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::lifecycle;
use crate::locks::{self, Holding, Lock};
use crate::module::{Module, PersistentRegion};
use crate::names::Taken;
use crate::reload::{MethodChange, ReloadPolicy, Reloaded};
use crate::resolver::ModuleRef;

impl Registry {
    /// Replaces the module behind `handle` with the one `reference` names (see
    /// `crate::reload`): the handle, name and settings stay; calls running finish on the
    /// old version, which is shut down once they have.
    pub(crate) fn reload(
        &self,
        handle: ModuleHandle,
        reference: &ModuleRef,
        policy: &ReloadPolicy,
    ) -> Result<Reloaded, RuntimeError> {
        self.this_process()?;
        // Calls that took the old version before the switch run on; it is shut down, and
        // its memory freed, once the last of them lets it go.
        self.switch(handle, reference, policy, |old| self.retire(old))
    }

    /// [`reload`](Registry::reload) with the old version, which calls may still run on,
    /// handed to `retire` once the new one serves: [`Registry::retire`] waits for its
    /// calls (a watch hands it to a thread of its own instead, so that a long call on
    /// one module's old version holds up none of the other files' changes). `retire`
    /// runs with what the reload records held (the calls of the thread that asked, its
    /// wait for the module's calls), so that a loop through that wait is refused as any
    /// other is.
    pub(crate) fn switch(
        &self,
        handle: ModuleHandle,
        reference: &ModuleRef,
        policy: &ReloadPolicy,
        retire: impl FnOnce(Retiring),
    ) -> Result<Reloaded, RuntimeError> {
        let _calls = (self.hold_running_calls)();
        locks::refuse(Lock::Loads(self.id), "reload")?;
        // Asked from inside another runtime's load, it will wait for this runtime's lock
        // of loads (for its switch, below): refused now, before anything is done, if that
        // wait would close a loop; and recorded until it has the lock, so that no other
        // closes one with it. Every reload records it first, so a loop through the wait
        // of a reload's switch is refused here, in whichever reload closes it.
        let waiting_for_loads = locks::Waiting::enter(Lock::Loads(self.id), "reload")?;
        // It waits for the old version's calls at its end, holding what the code that
        // asked for it holds: recorded for the whole reload, as an unload's is.
        let lineage = self.module(handle)?.lineage;
        let _waiting_for_calls = locks::Waiting::enter(Lock::Calls(lineage), "reload")?;
        let path = self.resolver.resolve(reference)?;
        // A reload asked from code a reload runs (a sink or an interceptor of the state's
        // save) would wait for that reload, or for another that waits for it.
        let Some(_on_this_thread) = ReloadOnThread::enter() else {
            return Err(RuntimeError::ReloadRefused {
                module: self.module(handle)?.name.clone(),
                reason: "it was asked from inside another reload, on the thread running it"
                    .to_owned(),
            });
        };
        let reloads = self
            .reloading
            .get(handle.index as usize)
            .ok_or(RuntimeError::UnknownHandle(handle))?;
        // Asked from inside a load or another reload (a sink's), the wait for the slot's
        // reload must not close a loop either: that reload's code may be waiting, in
        // turn, for the lock the asking code's runs under.
        let waiting = locks::Waiting::enter(Lock::Reload(self.id, handle.index), "reload")?;
        let one_at_a_time = reloads.lock().unwrap_or_else(|p| p.into_inner());
        drop(waiting);
        // The module code the reload runs from here (the new version's start, the state's
        // carry) holds the slot's lock: what it asks for waits as its holder.
        let holding = Holding::enter(
            Lock::Reload(self.id, handle.index),
            &self.module(handle)?.name,
        );
        let Ready {
            old,
            new,
            changes,
            state_carried,
        } = self.make_ready(handle, &path, reference, policy)?;
        let slots = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        drop(waiting_for_loads);
        // The handle still names the module made ready against (reloads of it wait their
        // turn above; an unload ends the handle). The new version's shutdown is module
        // code, run once the locks are let go: host code it leads to (a sink given its
        // records) may load.
        if let Err(e) = self.module(handle).map(drop) {
            drop(slots);
            shutdown(&new);
            return Err(e);
        }
        let reloaded = Reloaded {
            from_version: old.version.clone(),
            to_version: new.version.clone(),
            changes,
            state_carried,
        };
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        let new = Arc::new(new);
        let switched = self.changing(|| {
            names.replace(&new.name, handle.index, &new.own_name, new.semver.clone())?;
            Ok(self.put(handle.index, Some(Arc::clone(&new))))
        });
        let replaced = match switched {
            Ok(replaced) => replaced,
            Err(Taken(name)) => {
                drop(names);
                drop(slots);
                shutdown(&new);
                // As a load is refused: the name and version another module holds.
                return Err(RuntimeError::NameTaken { name });
            }
        };
        drop(new);
        drop(names);
        drop(slots);
        drop(old);
        // The next reload of the module may go on: it replaces the version this one put
        // in, and does not wait for the calls still on the one it took out.
        drop(holding);
        drop(one_at_a_time);
        if let Some(replaced) = replaced {
            retire(replaced);
        }
        Ok(reloaded)
    }

    /// The next version of the module loaded as `handle`, from `path`, made ready to
    /// take its place, outside the lock that orders loads (so loads of other modules go
    /// on meanwhile): opened, its table compared, started, and, when the policy asks,
    /// the old version's state handed to it, last: the save is a call, which may wait
    /// for the module's slot, and what calls do to the old version after it is not
    /// carried.
    fn make_ready(
        &self,
        handle: ModuleHandle,
        path: &Path,
        reference: &ModuleRef,
        policy: &ReloadPolicy,
    ) -> Result<Ready, RuntimeError> {
        let old = self.module(handle)?;
        refuse_linked(&old)?;
        let (new, changes) = self.next_version(&old, path, reference, policy)?;
        self.start_next_version(&new, handle.index)?;
        let state_carried = match policy.carries_state() {
            true => {
                let saved = lifecycle::save_state(&old, &self.export_caller());
                let carried = saved.and_then(|state| {
                    lifecycle::restore_state(&new, &state, &self.export_caller())
                });
                match carried {
                    Ok(len) => Some(len),
                    Err(reason) => {
                        shutdown(&new);
                        // An unload that closed the old version meanwhile failed the save
                        // ("the module was unloaded"): said as the unload, as a reload
                        // that came after it is, so a caller (the watch) loads it anew.
                        self.module(handle)?;
                        return Err(RuntimeError::ReloadRefused {
                            module: old.name.clone(),
                            reason,
                        });
                    }
                }
            }
            false => None,
        };
        Ok(Ready {
            old,
            new,
            changes,
            state_carried,
        })
    }

    /// The module at `path` made ready to stand in for `old`, if it is a version of it
    /// (and what `reference` asked for, see [`answers`]): its name, timeout,
    /// generation and figures carried over, a fresh persistent region of the same size,
    /// and the changes in its method table, refused if they would break callers and the
    /// policy does not allow them.
    fn next_version(
        &self,
        old: &Module,
        path: &Path,
        reference: &ModuleRef,
        policy: &ReloadPolicy,
    ) -> Result<(Module, Vec<MethodChange>), RuntimeError> {
        let mut new = open_copy(path, old.gate.limit(), reference.looked())?;
        if new.own_name != old.own_name {
            return Err(RuntimeError::OtherModule {
                module: old.name.clone(),
                found: new.own_name.clone(),
                expected: old.own_name.clone(),
            });
        }
        answers(reference, path, &new, Some(&old.name))?;
        new.name = old.name.clone();
        new.default_timeout = old.default_timeout;
        new.max_call_time = old.max_call_time;
        new.generation = old.generation;
        // One limit for the module, whichever version a call runs on: with a gate of
        // its own, the new version took `max_concurrency` calls while the old one still
        // ran its own.
        new.gate = Arc::clone(&old.gate);
        new.persistent = match &old.persistent {
            Some(p) => PersistentRegion::asked(p.len(), "the persistent region")?,
            None => None,
        };
        let changes = crate::reload::compare(&old.methods, &new.methods);
        let breaking: Vec<String> = changes
            .iter()
            .filter(|c| c.breaks_callers())
            .map(ToString::to_string)
            .collect();
        if !breaking.is_empty() && !policy.allows_changes() {
            return Err(RuntimeError::ReloadRefused {
                module: old.name.clone(),
                reason: format!(
                    "the new version's method table differs: {} (allow it with `ReloadPolicy::allow_changes`)",
                    breaking.join("; ")
                ),
            });
        }
        new.carry_figures_of(old);
        new.carry_removed_of(old);
        new.lineage = old.lineage;
        Ok((new, changes))
    }

    /// Starts `new`, the next version of the module in slot `slot`: its init and its
    /// dependencies checked. A failure shuts `new` down.
    fn start_next_version(&self, new: &Module, slot: u32) -> Result<(), RuntimeError> {
        init(new, &self.config, self.host)?;
        if let Err(e) = self.check_dependencies(new, Some(slot)) {
            shutdown(new);
            return Err(e);
        }
        new.warn_if_it_aborts();
        Ok(())
    }
}

/// A reload's next version, ready to take the place of `old` ([`Registry::make_ready`]).
struct Ready {
    old: Live,
    new: Module,
    changes: Vec<MethodChange>,
    /// The bytes of the old version's state handed to the new one, when the policy
    /// carries it.
    state_carried: Option<usize>,
}

std::thread_local! {
    /// Whether this thread runs a reload.
    static RELOADING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A reload this thread runs, until dropped.
struct ReloadOnThread;

impl ReloadOnThread {
    /// `None` when this thread already runs a reload.
    fn enter() -> Option<ReloadOnThread> {
        // A thread tearing its locals down runs no reload the state could tell of.
        let already = RELOADING.try_with(|r| r.replace(true)).unwrap_or(false);
        (!already).then_some(ReloadOnThread)
    }
}

impl Drop for ReloadOnThread {
    fn drop(&mut self) {
        let _ = RELOADING.try_with(|r| r.set(false));
    }
}

/// Refuses a reload of `module` when it is linked into the host: there is no file to
/// load its next version from.
fn refuse_linked(module: &Module) -> Result<(), RuntimeError> {
    if module.is_linked() {
        return Err(RuntimeError::ReloadRefused {
            module: module.name.clone(),
            reason: "it is linked into the host, not loaded from a file".to_owned(),
        });
    }
    Ok(())
}
