//! Zero-copy arguments and results: the module reads its arguments where the host wrote
//! them, and leaves its result in the call's arena for the host to read in place.
//!
//! Build: `cargo build -p memlink-examples --example zero_copy`; the host side is
//! `cargo run -p memlink-runtime --example zero_copy_host`.

use memlink_examples::zero_copy_types::{Chain, Point};
use memlink_msdk::prelude::*;
use memlink_msdk::rkyv::Archived;

/// A checksum of the bytes, read in place (raw format: the host's buffer itself).
#[memlink_export]
pub fn checksum(_ctx: &CallContext, data: &[u8]) -> Result<u64> {
    Ok(fnv1a(data))
}

/// The same checksum with the bytes sent as MessagePack, to compare against.
#[memlink_export]
pub fn checksum_msgpack(_ctx: &CallContext, data: Vec<u8>, seed: u64) -> Result<u64> {
    Ok(fnv1a(&data) ^ seed)
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where the argument bytes are: a host can check they were not copied.
#[memlink_export]
pub fn address_of(_ctx: &CallContext, data: &[u8]) -> Result<u64> {
    Ok(data.as_ptr() as u64)
}

/// The centroid of archived points, read in place; and where they were read.
#[memlink_export]
pub fn centroid(_ctx: &CallContext, points: &Archived<Vec<Point>>) -> Result<(f32, f32, f32, u64)> {
    let n = points.len().max(1) as f32;
    let (mut x, mut y, mut z) = (0.0, 0.0, 0.0);
    for p in points.iter() {
        x += p.x.to_native();
        y += p.y.to_native();
        z += p.z.to_native();
    }
    Ok((x / n, y / n, z / n, points.as_ptr() as u64))
}

/// Scales archived points and returns them as an archive in the call's arena.
#[memlink_export]
pub fn scale(
    _ctx: &CallContext,
    points: &Archived<Vec<Point>>,
    factor: &Archived<f32>,
) -> Result<Rkyv<Vec<Point>>> {
    let f = factor.to_native();
    let scaled = points
        .iter()
        .map(|p| Point {
            x: p.x.to_native() * f,
            y: p.y.to_native() * f,
            z: p.z.to_native() * f,
        })
        .collect();
    Ok(Rkyv(scaled))
}

/// Builds `text`, upper-cased, followed by `tag`, in the call's arena and returns a
/// reference to it: the host reads the result where the module wrote it.
#[memlink_export]
pub fn shout<'a>(ctx: &CallContext<'a>, text: &str, tag: &[u8]) -> Result<&'a [u8]> {
    let out = ctx
        .arena()
        .alloc_bytes(text.len() + tag.len())
        .ok_or(ModuleError::QuotaExceeded)?;
    out[..text.len()].copy_from_slice(text.to_uppercase().as_bytes());
    out[text.len()..].copy_from_slice(tag);
    Ok(out)
}

/// The number of links in an archived chain.
#[memlink_export]
pub fn chain_len(_ctx: &CallContext, chain: &Archived<Chain>) -> Result<u32> {
    let mut n = 0;
    let mut at = chain;
    while let memlink_examples::zero_copy_types::ArchivedChain::Link(next) = at {
        n += 1;
        at = next.get();
    }
    Ok(n)
}

/// Sets the limits this module's archived exports check (see
/// `memlink_msdk::archive::set_limits`); a module would do this once, from its own
/// configuration.
#[memlink_export]
pub fn limit_archives(_ctx: &CallContext, max_depth: u32, max_size: u64) -> Result<()> {
    memlink_msdk::archive::set_limits(memlink_msdk::archive::Limits {
        max_depth: max_depth as usize,
        max_size: usize::try_from(max_size).unwrap_or(usize::MAX),
    });
    Ok(())
}

/// The module's persistent memory, or an error that says the host gives it none: a
/// bare `ServiceUnavailable` would not say which service.
fn persistent<'a>(ctx: &CallContext<'a>) -> Result<Persistent<'a>> {
    ctx.persistent().ok_or_else(|| {
        ModuleError::Failed(
            "the host gives this module no persistent memory, or too little to use (a \
             runtime's `RuntimeConfig::persistent_size` of 0, or under 96 bytes)"
                .into(),
        )
    })
}

/// Keeps `text` in the module's persistent memory and returns a handle to it, which the
/// host may hold and pass back to `recall`.
#[memlink_export]
pub fn remember(ctx: &CallContext, text: String) -> Result<Ref<[u8]>> {
    persistent(ctx)?.store_slice(text.as_bytes())
}

/// The bytes behind a handle from `remember`; a stale or forged handle is an error.
#[memlink_export]
pub fn recall(ctx: &CallContext, handle: Ref<[u8]>) -> Result<Vec<u8>> {
    Ok(persistent(ctx)?.get_slice(handle)?.to_vec())
}

/// A table built once per load and kept in persistent memory: the handle lives in a
/// static, and is rebuilt when it has gone stale (after a reload of this image).
static SQUARES: std::sync::Mutex<Option<Ref<[u64]>>> = std::sync::Mutex::new(None);

/// The sum of the first `n` squares (n ≤ 1024), from the table built once.
#[memlink_export]
pub fn sum_squares(ctx: &CallContext, n: u32) -> Result<u64> {
    let region = persistent(ctx)?;
    let mut cached = SQUARES.lock().unwrap_or_else(|p| p.into_inner());
    let table = match cached.and_then(|r| region.get_slice(r).ok()) {
        Some(table) => table,
        None => {
            let squares: Vec<u64> = (0..1024u64).map(|i| i * i).collect();
            let r = region.store_slice(&squares)?;
            *cached = Some(r);
            region.get_slice(r)?
        }
    };
    let n = (n as usize).min(table.len());
    Ok(table[..n].iter().sum())
}

/// Bytes of persistent memory in use.
#[memlink_export]
pub fn persistent_used(ctx: &CallContext) -> Result<usize> {
    Ok(ctx.persistent().map_or(0, |p| p.used()))
}
