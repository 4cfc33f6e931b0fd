//! A module leaving the registry: an unload closes its gate and waits for its calls,
//! and a retired module (unloaded, or replaced by a reload) is shut down and freed once
//! no call can see it.

use std::mem::ManuallyDrop;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use memlink_abi::Status;

use super::{Registry, Retiring};
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::hazard;
use crate::locks::{self, Lock};
use crate::module::Module;

impl Registry {
    /// Retires the module: closes its gate, waits for its calls, frees its name and slot,
    /// shuts it down and frees what it owned.
    pub(crate) fn unload(&self, handle: ModuleHandle) -> Result<(), RuntimeError> {
        self.this_process()?;
        let _calls = (self.hold_running_calls)();
        locks::refuse(Lock::Loads(self.id), "unload")?;
        locks::refuse(Lock::Reload(self.id, handle.index), "unload")?;
        // As for a reload: the unload waits for this runtime's lock of loads three times.
        let _waiting = locks::Waiting::enter(Lock::Loads(self.id), "unload")?;
        // And for the module's calls: asked from host code that holds a lock (a sink of
        // another runtime's load), it must not close a loop through a call whose host
        // code waits, in turn, for that lock. Recorded before the gate closes, so that a
        // refusal leaves the module serving.
        let lineage = self.module(handle)?.lineage;
        let _waiting_for_calls = locks::Waiting::enter(Lock::Calls(lineage), "unload")?;
        // Closing the gate under the loading lock decides which of two racing unloads (or
        // an unload and a reload) gets the module; the wait for its calls happens outside
        // the lock, so loads and unloads of other modules go on meanwhile.
        let module = {
            let _slots = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            let module = self.module(handle)?;
            module.gate.close();
            module
        };
        // Calls in flight finish; a call of theirs that re-enters the module runs within
        // their slot (see `Saturation`), so nothing they do waits on this.
        if !module.gate.drain() {
            // The barrier it needs failed: calls may still run. `retire` below waits for
            // every call still holding the module, and leaks it if it cannot tell.
            tracing::error!(
                target: "memlink::registry",
                module = %module.name,
                "unloading without knowing that every call has left: the memory barrier \
                 it needs failed"
            );
        }
        drop(module);
        let taken = {
            let _slots = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            self.changing(|| {
                let taken = self.put(handle.index, None);
                // The name stays taken until the calls are done: nested calls by name
                // into a module being retired are told it is gone, but only once nothing
                // of it runs can another module take the name.
                let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
                if let Some(m) = &taken {
                    names.remove(&m.name, handle.index);
                }
                taken
            })
        };
        if let Some(m) = taken {
            self.retire(m);
        }
        // Only now, with the module shut down, may another load take the slot (the slot
        // was empty, and in no free list, meanwhile).
        self.loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .give_back(handle.index);
        Ok(())
    }

    /// Waits until `module` is no call's any more, then shuts it down and frees it (its
    /// cached results too).
    pub(crate) fn retire(&self, module: Retiring) {
        let id = module.id;
        // Out of its slot, both where the locked path and where hazard pointers read it:
        // a call from the host that pinned it before runs on, one that pins it from now
        // on finds the slot changed.
        let ptr: *const Module = &*module;
        if !hazard::wait_unpinned(ptr, self.barriers) {
            // Calls may still hold it, and nothing can say when they stop: it is never
            // shut down or freed (`Retiring` leaks it), the one safe course.
            tracing::error!(
                target: "memlink::registry",
                module = %module.name,
                "the memory barrier retiring a module needs failed: the module is leaked"
            );
            return;
        }
        retire(ManuallyDrop::into_inner(module.0));
        // After the wait: a call that ran on the old version until then may have kept
        // a result under its id.
        if let Some(cache) = &self.cache {
            cache.forget(id);
        }
    }
}

/// Waits until `module` is no call's any more, then shuts it down and frees it.
fn retire(module: Arc<Module>) {
    // A call holds the module from before it enters until it returns; the calls that
    // took it before it left its slot are few and finish on their own. Poll, backing
    // off to a millisecond: this is a reload's or an unload's tail, never a call's.
    let mut pause = std::time::Duration::from_micros(10);
    while Arc::strong_count(&module) > 1 {
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(1));
    }
    // The count is read relaxed; each call let its guard go with a release: this pairs
    // with it, so everything the last call did happens before the shutdown and the free.
    std::sync::atomic::fence(Ordering::Acquire);
    shutdown(&module);
}

pub(super) fn shutdown(module: &Module) {
    // SAFETY: the module's entry point, called once, after its last call finished.
    let status = unsafe { (module.entry.shutdown)() };
    // The module is retired whatever it answers (nothing of it may run again), but a
    // failure is its only word on what it could not finish: told, not dropped.
    if status != Status::Ok as i32 {
        let name =
            Status::from_code(status).map_or_else(|| "unknown".to_owned(), |s| format!("{s:?}"));
        tracing::warn!(
            target: "memlink::registry",
            module = %module.name,
            status,
            "memlink_shutdown failed with status {status} ({name}); the module is retired all the same"
        );
    }
}
