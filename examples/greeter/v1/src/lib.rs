//! Version 1 of a module a host reloads (with `greeter/v2`, its next version, and
//! `greeter/v3`, one that breaks its callers): `version` says which one runs.
//!
//! Its state (a count of `hit` calls) crosses a reload when the host asks for it, through
//! `memlink_save_state` and `memlink_restore_state`; its health check says what
//! `set_ready` last told it. `square` is marked pure, and counts the times it really
//! ran (`squared`), so a host can see its result cache at work.

include!("../../shared.rs");

/// Which build this is.
#[memlink_export]
pub fn version(_ctx: &CallContext) -> Result<u32> {
    Ok(1)
}
