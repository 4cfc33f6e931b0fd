//! The checks after a call: what every call must leave alone, how a refused frame is
//! refused, and what a well-formed frame gets (`InvalidMethod`, or what its export
//! promises).

use std::mem::offset_of;

use memlink_examples::zero_copy_types::Point;
use memlink_msdk::abi::{self, CallFrame, Format, PersistentHeader, Status};
use memlink_msdk::archive;
use memlink_msdk::serialize::MAX_DEPTH;
use memlink_msdk::ModuleError;

use super::frame::{Memory, Sent};
use super::problems::Problem;
use crate::exports::BIG_LIMIT;
use crate::host::{Method, Outcome, Place};
use crate::known;

/// What any call must leave alone: the bytes around the arena, the arguments
/// (`args_before` and `args_after` are copies of their real bytes), the persistent
/// region's generation; and `arena_used` must lie within the arena.
pub(super) fn check_unharmed(
    frame: &CallFrame,
    memory: &Memory,
    args_before: &[u8],
    args_after: &[u8],
) {
    if let Some(a) = &memory.arena {
        a.check_guards();
    }
    assert!(
        frame.arena_used <= frame.arena_len,
        "arena_used {} of an arena of {} bytes",
        frame.arena_used,
        frame.arena_len
    );
    assert_eq!(args_after, args_before, "the module wrote to its arguments");
    if let (Some(r), Some(before)) = (&memory.region, &memory.region_before) {
        let at = offset_of!(PersistentHeader, generation);
        assert_eq!(
            r.bytes()[at..at + 8],
            before[at..at + 8],
            "the module changed its persistent region's generation"
        );
    }
}

/// A frame with `problems` was refused with `Abi` and a message naming one of them,
/// without a byte written to its arena (`arena_after`: a copy of its real bytes after
/// the call), its `small_out` or its persistent region.
pub(super) fn check_refused(
    problems: &[Problem],
    frame: &CallFrame,
    outcome: &Outcome,
    memory: &Memory,
    sent: &Sent,
    arena_after: Option<&[u8]>,
) {
    assert_eq!(
        outcome.status,
        Status::Abi,
        "a frame with {problems:?} got {outcome:?}"
    );
    // The regions of a refused frame were not proven usable: the module neither
    // writes to them nor reports into the arena.
    assert_ne!(
        outcome.place,
        Place::Arena,
        "a frame with {problems:?} was refused in its arena: {outcome:?}"
    );
    assert_eq!(
        frame.arena_used, 0,
        "a frame with {problems:?} used its arena"
    );
    assert_eq!(
        frame.small_out,
        [0xa5; abi::SMALL_OUT_LEN],
        "a frame with {problems:?} had its small_out written"
    );
    if let Some(bytes) = arena_after {
        assert!(
            bytes.iter().all(|&b| b == 0),
            "a frame with {problems:?} had its arena written: {:02x?}",
            &bytes[..bytes.len().min(64)]
        );
    }
    if let (Some(r), Some(before)) = (&memory.region, &memory.region_before) {
        assert!(
            r.bytes() == *before,
            "a frame with {problems:?} had its persistent region written"
        );
    }
    check_refusal_message(problems, outcome, memory, sent);
}

/// A refusal's message names one of the frame's `problems`, unless it could not be
/// delivered.
fn check_refusal_message(problems: &[Problem], outcome: &Outcome, memory: &Memory, sent: &Sent) {
    let (host_call, call_ptr) = (&memory.host_call, sent.call_ptr);
    if outcome.place == Place::Empty {
        // A frame too small for outputs gets the status alone; otherwise, without a
        // host (or a table the module can use, or a buffer from it), the message
        // cannot be delivered.
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Problem::Size | Problem::Host | Problem::HostSize))
                || host_call.refused > 0
                || call_ptr.is_null(),
            "a frame with {problems:?} was refused without a message"
        );
    } else {
        let message = String::from_utf8_lossy(&outcome.output);
        assert!(
            problems.iter().any(|p| p.explains(&message)),
            "a frame with {problems:?} was refused as `{message}`"
        );
    }
}

/// What a well-formed frame gets: `InvalidMethod` when it names no method (`resolved`),
/// and otherwise what the export promises for the argument bytes `args`.
pub(super) fn check_answered(
    resolved: Option<&Method>,
    frame: &CallFrame,
    sent: &Sent,
    args: &[u8],
    outcome: &Outcome,
    output_refused: bool,
) {
    let (index, id) = (sent.index, sent.id);
    let Some(method) = resolved else {
        assert_eq!(
            (outcome.status, outcome.place),
            (Status::InvalidMethod, Place::Empty),
            "index {index} with id {id:#x} got {outcome:?}"
        );
        return;
    };
    let (args_ptr, args_len) = (sent.args_ptr, sent.args_len);
    // The bytes the export saw, where it saw them (an archive is checked in place): of a
    // well-formed frame, none or the argument bytes (any other non-empty arguments
    // overlap the arena or have a length that lies).
    let seen = if args_len == 0 {
        &[][..]
    } else {
        assert_eq!((args_ptr, args_len), (args.as_ptr(), args.len()));
        args
    };
    check_export(
        &method.name,
        method.args_format,
        frame,
        seen,
        outcome,
        output_refused,
    );
}

/// What each export promises for a well-formed frame.
fn check_export(
    name: &str,
    args_format: Format,
    frame: &CallFrame,
    args: &[u8],
    outcome: &Outcome,
    output_refused: bool,
) {
    // The bytes the export saw: none when the frame said so.
    let args = if frame.args_len == 0 { &[][..] } else { args };
    let error = outcome.error();
    if excused(name, frame, error.as_ref(), outcome, output_refused) {
        return;
    }
    if let Some(ModuleError::Serialize(m)) = &error {
        check_bad_args(name, args_format, args, m);
        return;
    }
    check_result(name, args, error.as_ref(), outcome);
}

/// Whether the export's `error` is one its promises leave out: one the host or the
/// frame caused, or one it passes on.
fn excused(
    name: &str,
    frame: &CallFrame,
    error: Option<&ModuleError>,
    outcome: &Outcome,
    output_refused: bool,
) -> bool {
    // The host refused the buffer for the error's payload: the status arrives without
    // its message (and a `Timeout` without its duration reads as `Abi`). The module
    // reports errors only through `alloc_output`, even when the arena has room.
    if error.is_some() && output_refused && outcome.output.is_empty() {
        return true;
    }
    match error {
        // Output that fits neither the arena nor a buffer the host granted.
        Some(ModuleError::QuotaExceeded) if output_refused => return true,
        // The deadline passed before the call started or before it finished.
        Some(ModuleError::Timeout(_)) if frame.timeout_ns != abi::NO_DEADLINE => return true,
        _ => {}
    }
    // These pass on errors of their own or of the calls they make.
    matches!(name, "relay" | "relay_typed" | "fail")
}

/// The export refused its arguments `args` with the message `m`: for a reason its
/// format allows.
fn check_bad_args(name: &str, args_format: Format, args: &[u8], m: &str) {
    match args_format {
        Format::MessagePack => assert!(m.starts_with("bad arguments: "), "{name}: {m}"),
        Format::Archived => {
            assert!(m.starts_with("bad archived arguments: "), "{name}: {m}");
            assert!(
                archived_args(name, args).is_none(),
                "{name} refused an archive that `archive::check` accepts: {m}"
            );
        }
        _ => {
            assert!(
                std::str::from_utf8(args).is_err(),
                "{name} refused UTF-8: {m}"
            );
            assert!(m.contains("UTF-8"), "{name}: {m}");
        }
    }
}

/// What the export `name` promises for the argument bytes `args`, given its `error`.
fn check_result(name: &str, args: &[u8], error: Option<&ModuleError>, outcome: &Outcome) {
    match (name, error) {
        ("echo", None) => assert_eq!(outcome.output, args, "echo"),
        ("reverse", None) => {
            let reversed: Vec<u8> = args.iter().rev().copied().collect();
            assert_eq!(outcome.output, reversed, "reverse");
        }
        ("count_words", None) => {
            let text = std::str::from_utf8(args).expect("count_words accepted non-UTF-8");
            assert_eq!(decode::<usize>(outcome), text.split_whitespace().count());
        }
        ("ping", None) => assert_eq!(outcome.output, b"pong", "a String result is raw"),
        ("add", None) => {
            let _: u32 = decode(outcome);
        }
        ("add", Some(ModuleError::Failed(m))) => assert!(m.contains("overflows"), "{m}"),
        ("profile", None) => {
            let _: crate::types::Profile = decode(outcome);
        }
        ("tree_depth", None) => {
            let depth: usize = decode(outcome);
            assert!(
                depth <= MAX_DEPTH || known::tolerated(known::ENUM_DEPTH),
                "tree_depth accepted a tree {depth} deep, deeper than MAX_DEPTH = {MAX_DEPTH}"
            );
        }
        ("big", None) => {
            assert!(outcome.output.len() <= BIG_LIMIT as usize);
            let first = outcome.output.first().copied();
            assert!(outcome.output.iter().all(|&b| Some(b) == first), "big");
        }
        ("squares", None) => {
            let _: u64 = decode(outcome);
        }
        ("squares", Some(ModuleError::QuotaExceeded)) => {}
        ("noisy", None) => {
            let (_, _, _, load, _): (u64, u64, u32, f32, bool) = decode(outcome);
            assert!(
                (0.0..=1.0).contains(&load),
                "backpressure {load} outside [0, 1]"
            );
        }
        ("async_len", None) => assert_eq!(decode::<u64>(outcome), args.len() as u64),
        ("boom", Some(ModuleError::Panic(_))) => {}
        ("archived_points", None) => {
            let digest = archived_args(name, args)
                .unwrap_or_else(|| panic!("{name} accepted an archive `archive::check` refuses"));
            assert_eq!(
                decode::<u64>(outcome),
                digest,
                "{name}: the digest of its fields"
            );
        }
        _ => panic!("{name} gave {outcome:?} for {} argument bytes", args.len()),
    }
}

/// The harness's own check of an archived export's arguments, with the module's limits,
/// and the digest the export should return; `None` when `check` refuses them.
fn archived_args(name: &str, args: &[u8]) -> Option<u64> {
    match name {
        "archived_points" => {
            let root =
                archive::check::<(Vec<Point>, String)>(args, archive::limits(), "archive").ok()?;
            Some(crate::archives::points_and_label(&root.0, root.1.as_str()))
        }
        other => panic!("no archived export `{other}`"),
    }
}

fn decode<T: serde::de::DeserializeOwned>(outcome: &Outcome) -> T {
    memlink_msdk::serialize::from_msgpack(&outcome.output).unwrap_or_else(|e| {
        panic!(
            "cannot decode a result of {} bytes ({:?}): {e}",
            outcome.output.len(),
            outcome.place
        )
    })
}
