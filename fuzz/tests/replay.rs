//! Replays the fuzz targets' seeds, corpus and regressions with `cargo test` (stable,
//! unwinding panics), and holds the regression tests for what fuzzing found.
//!
//! A stack overflow aborts the whole process, so every input that once crashed runs in a
//! child process (this test binary, re-run on one test): a crash fails that one test
//! with the child's stderr instead of killing the run. Seeds and corpus replay like the
//! fuzzer does, stepping around the open bugs of `memlink_fuzz::known`; regressions
//! replay strictly, so an open bug fails here until it is fixed.

use std::path::{Path, PathBuf};
use std::process::Command;

use memlink_fuzz::archive_mutation::{self, Mutation, Value};
use memlink_fuzz::archives::{archive, chain};
use memlink_fuzz::call_frames::{self, FrameSpec};
use memlink_fuzz::host;
use memlink_fuzz::types::{Chain, Tree};
use memlink_fuzz::{
    archive_access, archived_call, arena_ops, daemon_requests, host_side, known, msgpack_args,
    msgpack_differential, seeds,
};
use memlink_msdk::abi::Status;
use memlink_msdk::archive::{check, Limits};
use memlink_msdk::serialize::{from_msgpack, MAX_DEPTH, MAX_NESTING};
use memlink_msdk::ModuleError;

const TARGETS: [&str; 9] = [
    "msgpack_args",
    "msgpack_differential",
    "call_frames",
    "arena_ops",
    "archive_access",
    "archive_mutation",
    "archived_call",
    "host_side",
    "daemon_requests",
];

fn run_target(target: &str, data: &[u8]) {
    match target {
        "msgpack_args" => msgpack_args::run(data),
        "msgpack_differential" => msgpack_differential::run(data),
        "call_frames" => call_frames::run(data),
        "arena_ops" => arena_ops::run(data),
        "archive_access" => archive_access::run(data),
        "archive_mutation" => archive_mutation::run(data),
        "archived_call" => archived_call::run(data),
        "host_side" => host_side::run(data),
        "daemon_requests" => daemon_requests::run(data),
        other => panic!("no target `{other}`"),
    }
}

fn seeds_of(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    match target {
        "msgpack_args" => seeds::msgpack_args(),
        "msgpack_differential" => seeds::msgpack_differential(),
        "call_frames" => seeds::call_frames(),
        "arena_ops" => seeds::arena_ops(),
        "archive_access" => seeds::archive_access(),
        "archive_mutation" => seeds::archive_mutation(),
        "archived_call" => seeds::archived_call(),
        "host_side" => seeds::host_side(),
        "daemon_requests" => seeds::daemon_requests(),
        other => panic!("no target `{other}`"),
    }
}

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target)
}

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir(kind, target)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    found.sort();
    found
}

/// Runs `body` in a child process running only the test `test`, and fails if the child
/// does (a panic, an abort, a stack overflow).
fn in_child(test: &str, env: &[(&str, &str)], body: impl FnOnce()) {
    if std::env::var("MEMLINK_FUZZ_CHILD").as_deref() == Ok(test) {
        body();
        return;
    }
    if let Err(failure) = child(test, env) {
        panic!("{failure}");
    }
}

/// Re-runs this test binary on the one test `test` with `env`; `Err` says how it failed.
fn child(test: &str, env: &[(&str, &str)]) -> Result<(), String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("MEMLINK_FUZZ_CHILD", test)
        // The panic message, not a backtrace, in the lines the failure quotes.
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied())
        .output()
        .expect("re-run the test binary");
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
    Err(format!(
        "{test} {env:?} failed in a child process ({}):\n{}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

#[test]
fn seeds_run_clean() {
    for target in TARGETS {
        for (name, data) in seeds_of(target) {
            eprintln!("{target}/{name}");
            run_target(target, &data);
        }
    }
}

#[test]
fn committed_corpus_matches_the_seeds_and_runs_clean() {
    for target in TARGETS {
        // `MEMLINK_WRITE_SEEDS=1 cargo test committed_corpus` rewrites the corpus from
        // `memlink_fuzz::seeds` (as `TRYBUILD=overwrite` does for UI tests).
        let rewrite = std::env::var_os("MEMLINK_WRITE_SEEDS").is_some_and(|v| v == "1");
        for (name, data) in seeds_of(target) {
            let path = dir("corpus", target).join(name);
            if rewrite {
                std::fs::create_dir_all(dir("corpus", target)).unwrap();
                std::fs::write(&path, &data).unwrap();
                continue;
            }
            let on_disk = std::fs::read(&path).unwrap_or_default();
            assert!(
                on_disk == data,
                "{} is stale: run `MEMLINK_WRITE_SEEDS=1 cargo test committed_corpus`",
                path.display()
            );
        }
        let on_disk = files("corpus", target);
        assert!(!on_disk.is_empty(), "no seed corpus for {target}");
        for path in on_disk {
            let data = std::fs::read(&path).unwrap();
            run_target(target, &data);
        }
    }
}

#[test]
fn frame_seeds_decode_to_the_specs_they_were_written_from() {
    use call_frames::{ArenaSpec, ArgsSpec, HostSpec, PersistentSpec};
    let spec = FrameSpec {
        method: 3,
        target: call_frames::Target::OtherIndex(9),
        size: call_frames::Size::Smaller(2),
        host: HostSpec::NullHandle,
        args: ArgsSpec::NullWithLen(300),
        arena: ArenaSpec::Misaligned(4, 1000),
        alloc: call_frames::AllocSpec::Limit(77),
        depth: call_frames::DepthSpec::Raw(u32::MAX),
        timeout: call_frames::TimeoutSpec::Raw(5),
        backpressure: -0.5,
        trace_id: 1,
        span_id: u64::MAX,
        persistent: PersistentSpec::Misaligned,
    };
    // The last variant of each field, and every variant of the newer fields.
    let variants = [
        FrameSpec {
            host: HostSpec::Short,
            args: ArgsSpec::Wrapping,
            arena: ArenaSpec::Oversized,
            ..spec.clone()
        },
        FrameSpec {
            args: ArgsSpec::InArena(0xfffe, 3),
            persistent: PersistentSpec::OverArena,
            ..spec.clone()
        },
        FrameSpec {
            args: ArgsSpec::Oversized,
            persistent: PersistentSpec::Region,
            ..spec.clone()
        },
        FrameSpec {
            persistent: PersistentSpec::None,
            ..spec.clone()
        },
    ];
    for spec in std::iter::once(spec).chain(variants) {
        let bytes = call_frames::encode(&spec, b"tail");
        let mut u = arbitrary::Unstructured::new(&bytes);
        let back: FrameSpec = arbitrary::Arbitrary::arbitrary(&mut u).unwrap();
        assert_eq!(back, spec);
        assert_eq!(u.take_rest(), b"tail");
    }
    for (name, data) in seeds::arena_ops() {
        let (_, _, ops) = arena_ops::decode(&data).unwrap();
        assert!(ops.len() >= 5, "{name} decodes to {ops:?}");
    }
    let values = [
        Value::Points(vec![[1, 2, 3], [u32::MAX, 0, 7]]),
        Value::Scaled(Vec::new(), f32::NAN.to_bits()),
        Value::Shout(b"text".to_vec(), vec![0, 255]),
        Value::Chain(200),
        Value::Labelled(vec![[9, 9, 9]], "é".as_bytes().to_vec()),
    ];
    for value in values {
        let m = Mutation {
            position: 0x1234,
            byte: 0xab,
            value,
        };
        let bytes = archive_mutation::encode(&m);
        assert_eq!(archive_mutation::decode(&bytes), Some(m));
    }
}

/// The replay half of the mutation sweep: every position and every byte value of a few
/// small archives, checked as an archive of every type (and read in full when valid).
#[test]
fn every_one_byte_change_of_small_archives_is_refused_or_readable() {
    let one = seeds::points()[..1].to_vec();
    let archives = [
        archive(&(one.clone(),)).to_vec(),
        archive(&(one.clone(), 2.0f32)).to_vec(),
        archive(&("hi".to_owned(), vec![7u8])).to_vec(),
        archive(&(seeds::LONG_TEXT[..12].to_owned(), Vec::<u8>::new())).to_vec(),
        archive(&(chain(2),)).to_vec(),
        archive(&(one, "label".to_owned())).to_vec(),
    ];
    for bytes in archives {
        eprintln!("sweeping {} bytes", bytes.len());
        archive_mutation::sweep(&bytes);
    }
}

/// Archived exports called through `memlink_call` with every misalignment.
#[test]
fn archived_arguments_at_every_misalignment() {
    let args = archive(&(seeds::points(), "label".to_owned()));
    assert_eq!(archived_call::call(0, 4096, &args), Status::Ok);
    for off in 1..16 {
        assert_eq!(archived_call::call(off, 4096, &args), Status::Serialize);
    }
    assert_eq!(archived_call::call(0, 4096, &[]), Status::Serialize);
}

/// Every file under `regressions/<target>/` (minimized crash inputs), each in its own
/// child process, strictly (see `memlink_fuzz::known`): a file named after an open bug
/// (`<id>-...`) hunts that bug only, so it fails until that bug is fixed and then passes
/// whatever else is still open; any other file hunts every bug.
#[test]
fn regressions_do_not_crash() {
    let mut failures = Vec::new();
    for target in TARGETS {
        for path in files("regressions", target) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let strict = known::OPEN
                .iter()
                .find(|id| name.starts_with(&format!("{id}-")))
                .copied()
                .unwrap_or("1");
            let path = path.to_string_lossy().into_owned();
            let env = [
                ("MEMLINK_REPLAY_TARGET", target),
                ("MEMLINK_REPLAY_FILE", path.as_str()),
                ("MEMLINK_FUZZ_STRICT", strict),
            ];
            if let Err(failure) = child("replay_one_file", &env) {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The child half of `regressions_do_not_crash` (does nothing when run on its own).
#[test]
fn replay_one_file() {
    let (Ok(target), Ok(file)) = (
        std::env::var("MEMLINK_REPLAY_TARGET"),
        std::env::var("MEMLINK_REPLAY_FILE"),
    ) else {
        return;
    };
    run_target(&target, &std::fs::read(file).unwrap());
}

// Found by fuzzing `msgpack_args` (bug `enum-depth`): rmp-serde counts arrays, maps and
// ext values against `set_max_depth`, not enum variants, so recursive data through an
// enum was not limited and deep enough it overflowed the stack, which aborts the module's
// host: no `catch_unwind` can stop it. Fixed by counting every nested decoding call
// against `MAX_NESTING`.

#[test]
fn enum_nesting_past_the_nesting_limit_is_an_error() {
    let ok = from_msgpack::<Tree>(&Tree::chain_bytes(MAX_DEPTH / 2)).unwrap();
    assert_eq!(ok.depth(), MAX_DEPTH / 2);
    for deep in [MAX_NESTING + 1, 100_000] {
        let err = from_msgpack::<Tree>(&Tree::chain_bytes(deep)).map(|t| t.depth());
        assert!(
            matches!(&err, Err(ModuleError::Serialize(m)) if m.contains("levels a decoder accepts")),
            "a tree {deep} deep: {err:?}"
        );
    }
}

#[test]
fn enum_nested_100_000_deep_is_an_error_not_a_stack_overflow() {
    in_child(
        "enum_nested_100_000_deep_is_an_error_not_a_stack_overflow",
        &[],
        || {
            let err = from_msgpack::<Tree>(&Tree::chain_bytes(100_000)).map(|t| t.depth());
            assert!(matches!(err, Err(ModuleError::Serialize(_))), "{err:?}");
        },
    );
}

#[test]
fn an_export_given_a_100_000_deep_enum_answers_serialize() {
    in_child(
        "an_export_given_a_100_000_deep_enum_answers_serialize",
        &[],
        || {
            let mut args = vec![0x91];
            args.extend(Tree::chain_bytes(100_000));
            let outcome = call_frames::call(&FrameSpec::for_method("tree_depth"), &args);
            assert_eq!(outcome.status, Status::Serialize, "{:?}", outcome.error());
        },
    );
}

// Found by fuzzing `msgpack_args` (bug `option-recursion`): for a newtype around
// `Option<Box<Self>>`, rmp-serde's `deserialize_option` keeps the marker it read and
// hands the same deserializer to the inner value, which asks for an option again: one
// non-nil byte recurses until the stack overflows.

#[test]
fn a_recursive_option_newtype_from_one_byte_is_an_error_not_a_stack_overflow() {
    in_child(
        "a_recursive_option_newtype_from_one_byte_is_an_error_not_a_stack_overflow",
        &[],
        || {
            assert_eq!(from_msgpack::<Chain>(&[0xc0]).unwrap(), Chain(None));
            let err = from_msgpack::<Chain>(&[0x01]);
            assert!(matches!(err, Err(ModuleError::Serialize(_))), "{err:?}");
        },
    );
}

#[test]
fn a_panicking_export_is_an_error_and_the_module_keeps_serving() {
    let boom = host::index_of("boom").unwrap();
    for round in 0..20 {
        let outcome = host::call_valid(boom, format!("boom {round}").as_bytes(), 0);
        let Some(ModuleError::Panic(m)) = outcome.error() else {
            panic!("{outcome:?}")
        };
        assert!(m.starts_with(&format!("boom {round} (at ")), "{m}");
        let echo = call_frames::call(&FrameSpec::for_method("echo"), b"after");
        assert_eq!((echo.status, &echo.output[..]), (Status::Ok, &b"after"[..]));
    }
}

#[test]
fn nested_calls_stop_at_the_hosts_depth_limit() {
    let relay = host::index_of("relay").unwrap();
    let mut args = rmp_serde::to_vec(&("self", "echo", b"hi".to_vec())).unwrap();
    let ok = host::call_valid(relay, &args, 0);
    assert_eq!(ok.output, b"hi", "a Vec<u8> result comes back raw");
    for _ in 0..host::MAX_NESTED_DEPTH + 1 {
        args = rmp_serde::to_vec(&("self", "relay", args)).unwrap();
    }
    let deep = host::call_valid(relay, &args, 0);
    assert_eq!(deep.error(), Some(ModuleError::MaxCallDepthExceeded));
}

// Found while writing `archive_access` (bugs `archive-depth-*`): the depth limit of
// `memlink_msdk::archive::check` is handed to rkyv as `NonZeroUsize::new(max_depth)`.

/// `archive-depth-zero`: `max_depth: 0` is `None`, no limit at all, and validating a
/// 10,000-link chain (`regressions/archive_access/archive-depth-zero-chain-10000`)
/// overflows the stack.
#[test]
fn a_depth_limit_of_zero_is_a_limit_not_a_stack_overflow() {
    in_child(
        "a_depth_limit_of_zero_is_a_limit_not_a_stack_overflow",
        &[],
        || {
            let deep = deep_chain(10_000);
            let zero = Limits {
                max_depth: 0,
                max_size: usize::MAX,
            };
            let r = check::<(memlink_examples::zero_copy_types::Chain,)>(&deep, zero, "archive");
            assert!(
                matches!(r, Err(ModuleError::Serialize(_))),
                "max_depth 0 accepted a 10,000-link chain"
            );
        },
    );
}

/// `archive-depth-count`: `max_depth` counts rkyv's subtree levels, the root's included,
/// and rkyv refuses the one that brings the count to 0: `d` admits pointers nested
/// `d - 2` deep, not `d`.
#[test]
fn max_depth_is_the_deepest_nesting_of_pointers() {
    let limit = |max_depth| Limits {
        max_depth,
        max_size: 1 << 20,
    };
    let one = archive(&(seeds::points(),));
    let r = check::<(Vec<memlink_examples::zero_copy_types::Point>,)>(&one, limit(1), "archive");
    assert!(
        r.is_ok(),
        "a vector (nesting 1) with max_depth 1: {:?}",
        r.err()
    );
    let three = archive(&(chain(3),));
    type C = (memlink_examples::zero_copy_types::Chain,);
    assert!(
        check::<C>(&three, limit(3), "archive").is_ok(),
        "3 links, max_depth 3"
    );
    assert!(
        check::<C>(&three, limit(2), "archive").is_err(),
        "3 links, max_depth 2"
    );
}

/// `archive-depth-message`: an archive refused for its depth must say so.
#[test]
fn an_archive_too_deep_is_refused_naming_the_depth_limit() {
    let deep = archive(&(chain(200),));
    type C = (memlink_examples::zero_copy_types::Chain,);
    match check::<C>(&deep, Limits::default(), "archive") {
        Err(ModuleError::Serialize(m)) => {
            assert!(m.contains("depth"), "a 200-link chain was refused as `{m}`")
        }
        other => panic!("a 200-link chain: {:?}", other.map(|_| ())),
    }
}

/// A validation failure says which check failed. In a build without debug assertions
/// (any `--release` host or module) `rancor::Error` is `Failure` in disguise, and every
/// refusal reads "validation failed: failed without error information; enable debug
/// assertions and the `alloc` feature in rancor for error information". This passes
/// under `cargo test` and fails under `cargo test --release`.
#[test]
fn validation_failures_say_what_failed_in_release_builds_too() {
    let good = archive(&("text".to_owned(), vec![1u8]));
    let mut bad = memlink_msdk::rkyv::util::AlignedVec::<16>::new();
    bad.extend_from_slice(&good);
    // "t\xc3xt": a lead byte without its continuation, not UTF-8.
    let at = bad.windows(4).position(|w| w == b"text").unwrap();
    bad[at + 1] = 0xc3;
    match check::<(String, Vec<u8>)>(&bad, Limits::default(), "archive") {
        Err(ModuleError::Serialize(m)) => assert!(
            !m.contains("without error information"),
            "a refusal that does not say why: {m}"
        ),
        other => panic!("a string that is not UTF-8: {:?}", other.map(|_| ())),
    }
}

/// The archive of `(Chain,)` with `links` links, built without recursion: the end, then
/// each link pointing at the one before, the last one the root.
fn deep_chain(links: usize) -> memlink_msdk::rkyv::util::AlignedVec {
    let mut bytes = memlink_msdk::rkyv::util::AlignedVec::<16>::with_capacity(8 * (links + 1));
    bytes.extend_from_slice(&[0; 8]);
    for _ in 0..links {
        // Tag 1 (`Link`), padding, then a relative pointer 8 bytes back from the link's
        // start: -12 from the pointer's own position.
        bytes.extend_from_slice(&[1, 0, 0, 0]);
        bytes.extend_from_slice(&(-12i32).to_le_bytes());
    }
    bytes
}

/// [`deep_chain`] is what rkyv writes.
#[test]
fn deep_chains_are_built_like_rkyv_builds_them() {
    for links in [0, 1, 5] {
        assert_eq!(&deep_chain(links)[..], &archive(&(chain(links),))[..]);
    }
}
