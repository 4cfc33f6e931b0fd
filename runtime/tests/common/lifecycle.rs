//! The lifecycle tests' module and directories: `greeter_v1`, `greeter_v2` (one more
//! export) and `greeter_v3` (a breaking change) are three builds of one module.

use std::path::{Path, PathBuf};

use memlink_runtime::{ModuleHandle, ModuleRef, Runtime};

use super::module_path;

pub fn greeter(version: u32) -> ModuleRef {
    ModuleRef::from_path(module_path(&format!("greeter_v{version}")))
}

/// A runtime with `greeter_v1` loaded as `greeter`.
pub fn with_v1() -> (Runtime, ModuleHandle) {
    let rt = Runtime::with_local_resolver();
    let h = rt.load_as(greeter(1), "greeter").unwrap();
    (rt, h)
}

pub fn version(rt: &Runtime, h: ModuleHandle) -> u32 {
    rt.call_typed(h, "version", &()).unwrap()
}

/// A fresh directory for one test, private to this process (test binaries run at once).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = super::workspace()
        .join("target/lifecycle-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn lib(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION))
}
