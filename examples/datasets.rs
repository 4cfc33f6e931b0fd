//! The exports memlink-benches measures: the same work on the same data taken as an
//! archive read in place and as MessagePack, a MessagePack string echo, and loops over
//! metrics and log calls whose per-operation cost the host derives.
//!
//! Build: `cargo build --release -p memlink-examples --example datasets`. The data types
//! and checksums are `memlink_examples::datasets`, shared with the host.

use std::hint::black_box;

use memlink_examples::datasets::{
    self, mesh_sum, mesh_sum_archived, Bytes, Checksum, Log, Player, Triangle,
};
use memlink_msdk::metrics::{Counter, Gauge, Histogram};
use memlink_msdk::prelude::*;
use memlink_msdk::rkyv::Archived;
use serde::{Deserialize, Serialize};

/// A string that travels as MessagePack: a newtype, so the argument is not passed raw.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(transparent)]
pub struct Text(pub String);

/// Returns its input through MessagePack (`["hello"]` in, `"hello"` out).
#[memlink_export]
pub fn echo_msgpack(_ctx: &CallContext, input: Text) -> Result<Text> {
    Ok(input)
}

/// Length, first, middle and last byte of a buffer read in place (raw argument).
#[memlink_export]
pub fn bytes_peek(_ctx: &CallContext, data: &[u8]) -> Result<(u64, u8, u8, u8)> {
    Ok(datasets::peek(data))
}

/// [`bytes_peek`] of the same bytes sent as one MessagePack `bin`, decoded first.
#[memlink_export]
pub fn bytes_peek_msgpack(_ctx: &CallContext, data: Bytes) -> Result<(u64, u8, u8, u8)> {
    Ok(datasets::peek(&data.0))
}

/// The sum of every byte of a buffer read in place.
#[memlink_export]
pub fn bytes_sum(_ctx: &CallContext, data: &[u8]) -> Result<u64> {
    Ok(datasets::byte_sum(data))
}

/// [`bytes_sum`] of the same bytes sent as MessagePack.
#[memlink_export]
pub fn bytes_sum_msgpack(_ctx: &CallContext, data: Bytes) -> Result<u64> {
    Ok(datasets::byte_sum(&data.0))
}

/// The checksum of every log record, read in place.
#[memlink_export]
pub fn log_checksum(_ctx: &CallContext, logs: &Archived<Vec<Log>>) -> Result<u64> {
    Ok(logs.as_slice().checksum())
}

/// The checksum of every log record, decoded from MessagePack.
#[memlink_export]
pub fn log_checksum_msgpack(_ctx: &CallContext, logs: Vec<Log>) -> Result<u64> {
    Ok(logs.checksum())
}

/// The sum of every coordinate of a mesh, read in place.
#[memlink_export]
pub fn mesh_checksum(_ctx: &CallContext, mesh: &Archived<Vec<Triangle>>) -> Result<f64> {
    Ok(mesh_sum_archived(mesh))
}

/// The sum of every coordinate of a mesh, decoded from MessagePack.
#[memlink_export]
pub fn mesh_checksum_msgpack(_ctx: &CallContext, mesh: Vec<Triangle>) -> Result<f64> {
    Ok(mesh_sum(&mesh))
}

/// The checksum of every player (inventories, options, enums), read in place.
#[memlink_export]
pub fn minecraft_checksum(_ctx: &CallContext, players: &Archived<Vec<Player>>) -> Result<u64> {
    Ok(players.as_slice().checksum())
}

/// The checksum of every player, decoded from MessagePack.
#[memlink_export]
pub fn minecraft_checksum_msgpack(_ctx: &CallContext, players: Vec<Player>) -> Result<u64> {
    Ok(players.checksum())
}

// The loops below `black_box` names and values so that every iteration makes its call
// in full: nothing is hoisted out of the loop or folded into one update.

/// Adds 1 to the counter `bench_hits` `n` times, by name.
#[memlink_export]
pub fn count(_ctx: &CallContext, n: u32) -> Result<()> {
    for _ in 0..n {
        increment_counter(black_box("bench_hits"), black_box(1));
    }
    Ok(())
}

static HITS: Counter = Counter::new("bench_hits_handle");
static LEVEL: Gauge = Gauge::new("bench_level_handle");
static LATENCY: Histogram = Histogram::new("bench_latency_handle");

/// Adds 1 to the counter `bench_hits_handle` `n` times, through a static handle.
#[memlink_export]
pub fn count_handle(_ctx: &CallContext, n: u32) -> Result<()> {
    for _ in 0..n {
        black_box(&HITS).increment(black_box(1));
    }
    Ok(())
}

/// Sets the gauge `bench_level` `n` times, by name (to 0, 1, ... n - 1).
#[memlink_export]
pub fn gauge(_ctx: &CallContext, n: u32) -> Result<()> {
    for i in 0..n {
        set_gauge(black_box("bench_level"), f64::from(i));
    }
    Ok(())
}

/// Sets the gauge `bench_level_handle` `n` times, through a static handle.
#[memlink_export]
pub fn gauge_handle(_ctx: &CallContext, n: u32) -> Result<()> {
    for i in 0..n {
        black_box(&LEVEL).set(f64::from(i));
    }
    Ok(())
}

/// Observes 42.0 in the histogram `bench_latency` `n` times, by name (42 lands in the
/// 15th of its 31 buckets, found by a linear search).
#[memlink_export]
pub fn observe(_ctx: &CallContext, n: u32) -> Result<()> {
    for _ in 0..n {
        observe_histogram(black_box("bench_latency"), black_box(42.0));
    }
    Ok(())
}

/// Observes 42.0 in `bench_latency_handle` `n` times, through a static handle.
#[memlink_export]
pub fn observe_handle(_ctx: &CallContext, n: u32) -> Result<()> {
    for _ in 0..n {
        black_box(&LATENCY).observe(black_box(42.0));
    }
    Ok(())
}

/// Logs `n` records at debug level with one field: dropped in the module when the
/// host's level is coarser.
#[memlink_export]
pub fn quiet_logs(_ctx: &CallContext, n: u32) -> Result<()> {
    for _ in 0..n {
        debug(black_box("bench record"), black_box(&[("key", "value")]));
    }
    Ok(())
}

/// Logs `n` records at debug level through the formatting macro, whose arguments are
/// not formatted when the level is disabled.
#[memlink_export]
pub fn quiet_log_macros(_ctx: &CallContext, n: u32) -> Result<()> {
    for i in 0..n {
        memlink_msdk::debug!("bench record {}", black_box(i));
    }
    Ok(())
}

/// Logs `n` records at info level with one field: delivered to the host.
#[memlink_export]
pub fn logs(_ctx: &CallContext, n: u32) -> Result<()> {
    for _ in 0..n {
        info(black_box("bench record"), black_box(&[("key", "value")]));
    }
    Ok(())
}
