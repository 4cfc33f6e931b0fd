//! Modules linked into the host's own binary rather than loaded from a file: the fuzz
//! targets drive the runtime's host side with a module whose entry points are functions
//! of the fuzzer itself. Not a public API (a binary can hold only one memlink-msdk
//! module: its entry points are `#[no_mangle]`).

use std::path::Path;

use memlink_abi as abi;

use crate::config::ModuleSettings;
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::module::{EntryPoints, Module};
use crate::runtime::Runtime;

/// The entry points of a module linked into this binary.
#[derive(Debug, Clone, Copy)]
pub struct LinkedModule {
    /// `memlink_module_info`.
    pub info: abi::ModuleInfoFn,
    /// `memlink_init`.
    pub init: abi::InitFn,
    /// `memlink_call`: every call goes through it, whatever entry points of its own the
    /// module's methods have (a linked module's caller chooses what a call enters).
    pub call: abi::CallFn,
    /// `memlink_shutdown`.
    pub shutdown: abi::ShutdownFn,
}

impl Runtime {
    /// Loads the module `module` under `name`, as `load` loads one from a file: the same
    /// checks of its description, `memlink_init`, and the same call path afterwards.
    ///
    /// # Safety
    ///
    /// The functions must be one module's entry points with the signatures and contracts
    /// of `memlink_msdk::abi`, valid (with everything `info` returns) for the life of the
    /// process.
    #[doc(hidden)]
    pub unsafe fn load_linked(
        &self,
        name: &str,
        module: LinkedModule,
    ) -> Result<ModuleHandle, RuntimeError> {
        let entry = EntryPoints {
            init: module.init,
            call: module.call,
            shutdown: module.shutdown,
            metrics: None,
        };
        let concurrency = self.registry.config.max_concurrency;
        let label = Path::new("<linked>");
        let settings = ModuleSettings::default().name(name);
        self.registry.install(&settings, || {
            // SAFETY: the caller's contract.
            unsafe {
                Module::from_entry_points(label, None, module.info, entry, false, concurrency)
            }
        })
    }
}
