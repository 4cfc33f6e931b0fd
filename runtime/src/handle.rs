//! Handles: small copyable ids for a loaded module and a resolved method.

use std::fmt;

/// A loaded module, as a small copyable id. Valid only with the runtime that issued it,
/// and only until the module is unloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleHandle {
    pub(crate) runtime: u32,
    pub(crate) index: u32,
}

impl fmt::Display for ModuleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.runtime, self.index)
    }
}

/// A method resolved once by name ([`Runtime::method`](crate::Runtime::method)), to be
/// called many times without looking it up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodRef {
    pub(crate) handle: ModuleHandle,
    pub(crate) index: u32,
}

impl MethodRef {
    /// The module the method belongs to.
    pub fn module(&self) -> ModuleHandle {
        self.handle
    }
}
