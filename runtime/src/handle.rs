//! Handles: small copyable ids for a loaded module and a resolved method.

use std::fmt;

/// A loaded module, as a small copyable id. Valid only with the runtime that issued it
/// (another refuses it, `RuntimeError::OtherRuntimesHandle`), and only until the module
/// is unloaded; a reload keeps it valid.
///
/// A runtime reuses the slot of an unloaded module for a later load, with a new
/// generation: a handle kept past its module's unload is refused
/// (`RuntimeError::UnknownHandle`), never taken for the module loaded after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleHandle {
    pub(crate) runtime: u32,
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for ModuleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}.{}", self.runtime, self.index, self.generation)
    }
}

/// A method resolved once by name ([`Runtime::method`](crate::Runtime::method)), to be
/// called many times without looking it up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodRef {
    pub(crate) handle: ModuleHandle,
    /// Where the method is in the module's table when it was resolved.
    pub(crate) index: u32,
    /// The method's id: a reload may move it in the table, and the id finds it again.
    pub(crate) id: u32,
}

impl MethodRef {
    /// The module the method belongs to.
    pub fn module(&self) -> ModuleHandle {
        self.handle
    }
}
