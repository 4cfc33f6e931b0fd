//! The exports a module offers the runtime for its own lifecycle, and what the runtime
//! does with them:
//!
//! - [`DEPENDENCIES`] (`memlink_dependencies`, no arguments, a MessagePack list of
//!   strings): the modules it calls, each a name or `name@requirement` (`"greeter@^1"`).
//!   A module whose dependencies are not all loaded is refused at load (and at reload),
//!   naming the first missing; a watched directory loads its modules in an order that
//!   satisfies them.
//! - `memlink_save_state` and `memlink_restore_state` ([`crate::reload`]): state handed
//!   across a reload.
//! - `memlink_health` ([`crate::health`]): whether the module is ready.
//!
//! Each is an ordinary export, called as a call from the host would be.

use memlink_abi::Format;

use crate::module::Module;
use crate::reload::{RESTORE_STATE, SAVE_STATE};

/// The export through which a module declares the modules it calls.
pub const DEPENDENCIES: &str = "memlink_dependencies";

/// How the runtime calls one of a module's exports: `(module, method index, args)` to
/// the result's bytes, or what went wrong.
pub(crate) type CallExport<'a> = &'a dyn Fn(&Module, u32, &[u8]) -> Result<Vec<u8>, String>;

/// The modules `module` says it calls (none when it exports no [`DEPENDENCIES`]).
pub(crate) fn dependencies(module: &Module, call: CallExport<'_>) -> Result<Vec<String>, String> {
    let Some((index, method)) = module.method(DEPENDENCIES) else {
        return Ok(Vec::new());
    };
    if method.result_format != Format::MessagePack {
        return Err(format!(
            "`{DEPENDENCIES}` must return a list of strings (MessagePack), it returns {}",
            method.result_format.name()
        ));
    }
    let bytes = call(module, index, &[])?;
    rmp_serde::from_slice(&bytes).map_err(|e| {
        format!("`{DEPENDENCIES}` returned something other than a list of strings: {e}")
    })
}

/// The first of `module`'s dependencies that `is_loaded` says is not loaded.
pub(crate) fn missing_dependency(
    module: &Module,
    call: CallExport<'_>,
    is_loaded: impl Fn(&str) -> bool,
) -> Result<Option<String>, String> {
    Ok(dependencies(module, call)?
        .into_iter()
        .find(|d| !is_loaded(d)))
}

/// Hands `old`'s state to `new` for a reload: `old`'s `memlink_save_state`, then `new`'s
/// `memlink_restore_state` with its bytes. Returns how many bytes crossed, or why they
/// could not.
pub(crate) fn carry_state(
    old: &Module,
    new: &Module,
    call: CallExport<'_>,
) -> Result<usize, String> {
    let find = |m: &Module, name: &str, which: &str| {
        m.method(name)
            .map(|(i, method)| (i, method.result_format, method.args_format))
            .ok_or_else(|| {
                format!(
                    "state carry asked, but the {which} version ({}) exports no `{name}`",
                    m.version
                )
            })
    };
    let (save, saved_as, _) = find(old, SAVE_STATE, "old")?;
    let (restore, _, restored_as) = find(new, RESTORE_STATE, "new")?;
    if saved_as != restored_as {
        return Err(format!(
            "`{SAVE_STATE}` returns {} but `{RESTORE_STATE}` takes {}",
            saved_as.name(),
            restored_as.name()
        ));
    }
    let state = call(old, save, &[])?;
    call(new, restore, &state)?;
    Ok(state.len())
}
