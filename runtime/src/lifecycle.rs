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
    // The whole result: a list followed by more bytes is a result that is not a list
    // (rmp-serde alone read the list and let the rest go unseen).
    memlink_abi::msgpack::from_msgpack(&bytes).map_err(|e| {
        format!("`{DEPENDENCIES}` returned something other than a list of strings: {e}")
    })
}

/// The first of `module`'s dependencies that `is_loaded` says is not loaded, or why a
/// dependency can never be (a requirement that is not semver: no load would answer it).
pub(crate) fn missing_dependency(
    module: &Module,
    call: CallExport<'_>,
    is_loaded: impl Fn(&str) -> bool,
) -> Result<Option<String>, String> {
    let dependencies = dependencies(module, call)?;
    if let Some((d, why)) = dependencies
        .iter()
        .find_map(|d| crate::names::malformed(d).map(|why| (d, why)))
    {
        return Err(format!("`{DEPENDENCIES}` names `{d}`: {why}"));
    }
    Ok(dependencies.into_iter().find(|d| !is_loaded(d)))
}

/// A module's state, taken by its `memlink_save_state` for a reload: the bytes, in the
/// export's result format.
pub(crate) struct SavedState {
    format: Format,
    bytes: Vec<u8>,
}

/// Takes `old`'s state for a reload: its `memlink_save_state`, or why it could not.
pub(crate) fn save_state(old: &Module, call: CallExport<'_>) -> Result<SavedState, String> {
    let (save, method) = old
        .method(SAVE_STATE)
        .ok_or_else(|| missing(old, SAVE_STATE, "old"))?;
    let format = method.result_format;
    let bytes = call(old, save, &[])?;
    Ok(SavedState { format, bytes })
}

/// Hands `state` to `new`, the next version: its `memlink_restore_state` with the bytes
/// (a MessagePack value as its one argument, when it takes one).
/// Returns how many bytes crossed, or why they could not.
pub(crate) fn restore_state(
    new: &Module,
    state: &SavedState,
    call: CallExport<'_>,
) -> Result<usize, String> {
    let (restore, method) = new
        .method(RESTORE_STATE)
        .ok_or_else(|| missing(new, RESTORE_STATE, "new"))?;
    if method.args_format != state.format {
        return Err(format!(
            "`{SAVE_STATE}` returns {} but `{RESTORE_STATE}` takes {}",
            state.format.name(),
            method.args_format.name()
        ));
    }
    // A MessagePack state is one value, and arguments are a list of them: a restore
    // that takes one parameter gets the value as that parameter (`[value]`), as a raw
    // restore gets the bytes. Handed over as they are, a struct's fields would be read
    // as parameter names, and a number as no argument list at all.
    if state.format == Format::MessagePack && method.arg_count == 1 {
        let mut args = Vec::with_capacity(state.bytes.len() + 1);
        args.push(ONE_ELEMENT_ARRAY);
        args.extend_from_slice(&state.bytes);
        call(new, restore, &args)?;
    } else {
        call(new, restore, &state.bytes)?;
    }
    Ok(state.bytes.len())
}

/// MessagePack's marker of an array of one element (a fixarray of length 1).
const ONE_ELEMENT_ARRAY: u8 = 0x91;

/// Why a state carry cannot be made: `module`, the `which` version, exports no `name`.
fn missing(module: &Module, name: &str, which: &str) -> String {
    format!(
        "state carry asked, but the {which} version ({}) exports no `{name}`",
        module.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::MethodChange;

    /// The exports the host calls for a module's lifecycle break no caller when a new
    /// version drops or changes them: a version that takes the old one's state but
    /// keeps no `memlink_save_state` of its own was refused as an export removed.
    #[test]
    fn a_lifecycle_export_dropped_or_changed_breaks_no_caller() {
        for name in [
            DEPENDENCIES,
            SAVE_STATE,
            RESTORE_STATE,
            crate::health::HEALTH_CHECK,
        ] {
            let removed = MethodChange::Removed {
                method: name.into(),
            };
            assert!(!removed.breaks_callers(), "{name}");
        }
        let removed = MethodChange::Removed {
            method: "add".into(),
        };
        assert!(removed.breaks_callers());
    }
}
