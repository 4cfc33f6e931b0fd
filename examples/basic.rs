//! Basic exports: strings and numbers, a struct, errors, a panic, an async export.
//!
//! Build: `cargo build -p memlink-examples --example basic`, then
//! `memlink call target/debug/examples/libbasic.so add '[2, 3]'`.

// A module needs no `unsafe` of its own, and what `#[memlink_export]` generates has none:
// this keeps both true.
#![forbid(unsafe_code)]

use memlink_msdk::prelude::*;
use serde::{Deserialize, Serialize};

/// Returns its input (raw bytes in, raw bytes out).
#[memlink_export]
pub fn echo(_ctx: &CallContext, input: String) -> Result<String> {
    Ok(input)
}

/// Adds two numbers (MessagePack `[a, b]` in, a number out).
#[memlink_export]
pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    a.checked_add(b)
        .ok_or_else(|| ModuleError::Failed(format!("{a} + {b} overflows u32")))
}

/// Does nothing: the cost of a call itself.
#[memlink_export]
pub fn noop(_ctx: &CallContext) -> Result<()> {
    Ok(())
}

/// No arguments at all.
#[memlink_export]
pub fn ping(_ctx: &CallContext) -> Result<String> {
    Ok("pong".to_owned())
}

/// A user record, as in the SDK's README.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct UserData {
    /// Id.
    pub id: u32,
    /// Display name.
    pub name: String,
    /// Score.
    pub score: u64,
}

/// Upper-cases the name and doubles the score.
#[memlink_export]
pub fn process_user(_ctx: &CallContext, user: UserData) -> Result<UserData> {
    Ok(UserData {
        id: user.id,
        name: user.name.to_uppercase(),
        score: user.score * 2,
    })
}

/// Doubles values up to 100 and refuses larger ones.
#[memlink_export]
pub fn may_fail(_ctx: &CallContext, value: u32) -> Result<u32> {
    if value > 100 {
        return Err(ModuleError::QuotaExceeded);
    }
    Ok(value * 2)
}

/// Returns the error named by `kind`, so a host can see each one cross the boundary.
#[memlink_export]
pub fn fail(_ctx: &CallContext, kind: String) -> Result<()> {
    Err(match kind.as_str() {
        "quota" => ModuleError::QuotaExceeded,
        "call_failed" => ModuleError::CallFailed("downstream refused".into()),
        "timeout" => ModuleError::Timeout(std::time::Duration::from_millis(250)),
        "serialize" => ModuleError::Serialize("bad shape".into()),
        "unavailable" => ModuleError::ServiceUnavailable,
        "invalid_method" => ModuleError::InvalidMethod,
        "module_not_found" => ModuleError::ModuleNotFound("ghost".into()),
        "depth" => ModuleError::MaxCallDepthExceeded,
        other => ModuleError::Failed(format!("asked to fail with `{other}`")),
    })
}

/// Panics with `message`; the host gets `ModuleError::Panic` and the module keeps serving.
#[memlink_export]
pub fn boom(_ctx: &CallContext, message: String) -> Result<u32> {
    panic!("{message}");
}

/// `n` bytes of `byte`: results of any size, larger than the arena too.
#[memlink_export]
pub fn fill(_ctx: &CallContext, byte: u8, n: u32) -> Result<Vec<u8>> {
    Ok(vec![byte; n as usize])
}

/// The call's context, as the module sees it.
#[memlink_export]
pub fn context_info(ctx: &CallContext) -> Result<(f32, u64, u64, Option<u64>, u32, bool)> {
    let remaining = ctx.remaining_time().map(|d| d.as_millis() as u64);
    Ok((
        ctx.backpressure(),
        ctx.trace_id(),
        ctx.span_id(),
        remaining,
        ctx.call_depth(),
        ctx.module_caller().is_some(),
    ))
}

/// Sleeps on the module's async runtime, then returns its input.
#[memlink_export]
pub async fn async_process(_ctx: &CallContext, data: Vec<u8>) -> Result<Vec<u8>> {
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    Ok(data)
}

/// Takes its context by value.
#[memlink_export]
pub fn owned_context(ctx: CallContext, tag: u8) -> Result<(u8, u64)> {
    Ok((tag, ctx.trace_id()))
}

/// Deserializing this panics on 13: a panic while the arguments are decoded.
#[derive(Debug, Serialize)]
pub struct Touchy(pub u32);

impl<'de> Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        assert_ne!(v, 13, "unlucky argument");
        Ok(Touchy(v))
    }
}

/// Serializing this panics: a panic while the result is encoded.
#[derive(Debug, Deserialize)]
pub struct Explosive;

impl Serialize for Explosive {
    fn serialize<S: serde::Serializer>(&self, _: S) -> std::result::Result<S::Ok, S::Error> {
        panic!("cannot encode this")
    }
}

/// Panics in decode when given 13.
#[memlink_export]
pub fn touchy(_ctx: &CallContext, value: Touchy) -> Result<u32> {
    Ok(value.0)
}

/// Always panics in encode.
#[memlink_export]
pub fn explosive(_ctx: &CallContext) -> Result<Explosive> {
    Ok(Explosive)
}

/// Logs one record at every level, with fields.
#[memlink_export]
pub fn chatty(_ctx: &CallContext, n: u32) -> Result<()> {
    let n = n.to_string();
    let fields = [("user", "alice"), ("n", n.as_str())];
    error("an error", &fields);
    warn("a warning", &fields);
    info("some information", &fields);
    debug("a detail", &fields);
    trace("a fine detail", &fields);
    Ok(())
}

/// Records `n` in a counter, a gauge and a histogram of the module's own.
#[memlink_export]
pub fn observe(_ctx: &CallContext, n: u32) -> Result<()> {
    increment_counter("observed_total", u64::from(n));
    set_gauge("last_batch", 7.5);
    observe_histogram("batch_size", f64::from(n));
    Ok(())
}

/// Exported under another name.
#[memlink_export(name = "sum")]
pub fn add_all(_ctx: &CallContext, values: Vec<i64>) -> Result<i64> {
    Ok(values.iter().sum())
}
