//! What a watch tells of each file it looked at ([`WatchEvent`]).

use std::path::PathBuf;

use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::reload::Reloaded;

/// What the watch did to one file.
#[derive(Debug)]
#[non_exhaustive]
pub enum WatchEvent {
    /// A new file was loaded.
    Loaded {
        /// The file.
        path: PathBuf,
        /// Its module.
        handle: ModuleHandle,
    },
    /// A changed file was hot-reloaded.
    Reloaded {
        /// The file.
        path: PathBuf,
        /// Its module (the same handle as before).
        handle: ModuleHandle,
        /// What the reload did.
        reloaded: Reloaded,
    },
    /// A module's file was renamed within the directory (the same file at another
    /// name): its module serves on, known by the new name; nothing was unloaded or
    /// loaded, so no call found it gone.
    Moved {
        /// The file's name before.
        from: PathBuf,
        /// Its name now.
        to: PathBuf,
        /// Its module (the same handle as before).
        handle: ModuleHandle,
    },
    /// A removed file's module was unloaded.
    Unloaded {
        /// The file.
        path: PathBuf,
        /// The module's handle, no longer valid.
        handle: ModuleHandle,
    },
    /// A file could not be loaded or reloaded (a module already loaded from it keeps
    /// serving); it is tried again when it changes, or, for a missing dependency, when
    /// another module loads, or, for a name and version, a file or the last slot another
    /// module holds, when the watch unloads or reloads a module.
    Failed {
        /// The file.
        path: PathBuf,
        /// Why.
        error: RuntimeError,
    },
}
