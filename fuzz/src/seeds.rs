//! The seed corpus: a handful of meaningful inputs per target. `cargo test -- --ignored
//! write_seed_corpus` writes them to `corpus/<target>/`; `tests/replay.rs` replays them.

use memlink_examples::zero_copy_types::Point;
use memlink_msdk::serialize::to_msgpack;
use serde_json::json;

use crate::archive_mutation::{self, Mutation, Value};
use crate::archived_call;
use crate::archives::{archive, chain};
use crate::arena_ops::{self, HugeKind, Op};
use crate::call_frames::{
    self, AllocSpec, ArenaSpec, ArgsSpec, DepthSpec, FrameSpec, HostSpec, PersistentSpec, Size,
    Target, TimeoutSpec,
};
use crate::types::{Friend, Profile, Role, Tree};

/// MessagePack of `value` as a host sends it (structs as arrays, rmp-serde's default).
fn mp<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("encodable")
}

/// A record that uses every field kind.
pub fn profile() -> Profile {
    Profile {
        id: 7,
        name: "ada".into(),
        tags: vec!["x".into(), "yz".into()],
        email: Some("ada@example.org".into()),
        avatar: vec![1, 2, 3],
        role: Role::Owner {
            since: -3,
            delegates: vec![
                Role::Guest,
                Role::Member(4),
                Role::Admin("root".into(), vec![1]),
            ],
        },
        friends: vec![
            Friend { id: 1, nick: None },
            Friend {
                id: 2,
                nick: Some("b".into()),
            },
        ],
        balance: (-5, 2.5),
    }
}

/// Seeds for `msgpack_args`: documents each decoder accepts, and near misses.
pub fn msgpack_args() -> Vec<(&'static str, Vec<u8>)> {
    let mut deep_array = vec![0x91; 129];
    deep_array.push(0x01);
    vec![
        ("pair", mp(&(2u32, 3u32))),
        ("named_pair", to_msgpack(&json!({"a": 40, "b": 2})).unwrap()),
        ("profile_as_map", to_msgpack(&(profile(),)).unwrap()),
        ("profile_as_array", mp(&(profile(),))),
        ("options", mp(&vec![Some("a"), None, Some("")])),
        ("relay_args", mp(&("self", "echo", vec![104u8, 105]))),
        (
            "json",
            mp(&json!({"k": [1, [2, [3, {"x": null}]]], "f": 1.5, "s": "t", "b": true, "n": -9})),
        ),
        ("tree_100_deep", Tree::chain_bytes(100)),
        (
            "tree_wide",
            to_msgpack(&Tree::List(vec![
                Tree::Leaf(1),
                Tree::Add(Box::new(Tree::Leaf(2)), Box::new(Tree::Leaf(3))),
            ]))
            .unwrap(),
        ),
        ("array_129_deep", deep_array),
        ("ext", vec![0xd4, 0x01, 0x02]),
        ("nil", vec![0xc0]),
    ]
}

/// Seeds for `msgpack_differential`: the type's number (see its `run`), then a
/// document; each type's usual form, and the forms where the direct reader and
/// rmp-serde could part (other integer widths, bytes and strings, maps, nil).
pub fn msgpack_differential() -> Vec<(&'static str, Vec<u8>)> {
    let typed = |t: u8, doc: &[u8]| [&[t][..], doc].concat();
    let mut u128_bin = vec![0xc4, 16];
    u128_bin.extend([0xff; 16]);
    vec![
        ("u8_fix", typed(0, &[0x05])),
        ("u8_from_u16", typed(0, &[0xcd, 0x01, 0x00])),
        ("u32_nil", typed(2, &[0xc0])),
        ("i64_min", typed(7, &mp(&i64::MIN))),
        ("f32_from_f64", typed(8, &mp(&1.5f64))),
        ("f64_from_int", typed(9, &[0x05])),
        ("char", typed(11, &mp(&"\u{e9}"))),
        ("string", typed(12, &mp(&"abc"))),
        ("string_not_utf8", typed(12, &[0xa2, 0xff, 0xfe])),
        ("bytes_bin", typed(14, &[0xc4, 0x02, 0x01, 0x02])),
        ("bytes_array", typed(14, &mp(&[1u8, 2, 200]))),
        ("bytes_not_utf8_string", typed(14, &[0xa2, 0xff, 0xfe])),
        ("option_option_nil", typed(16, &[0xc0])),
        ("option_option_some", typed(16, &mp(&-300i16))),
        ("pair", typed(17, &mp(&(2u32, 3u32)))),
        ("pair_short", typed(17, &[0x91, 0x02])),
        ("pair_bin_long", typed(17, &[0xc4, 3, 1, 2, 3])),
        ("triple_bin", typed(19, &[0xc4, 3, 1, 2, 3])),
        ("args_by_position", typed(22, &mp(&(9u32, "n", ["t"])))),
        (
            "args_by_name",
            typed(
                22,
                &to_msgpack(&json!({"a": 9, "name": "n", "tags": []})).unwrap(),
            ),
        ),
        (
            "nested",
            typed(23, &mp(&(Some(vec![0.5f32]), (-1i64, (7u8,))))),
        ),
        ("u128_bin", typed(25, &u128_bin)),
        ("u128_negative", typed(25, &[0xff])),
        (
            "u128_array16",
            typed(25, &[&[0xdc, 0, 16][..], &[7; 16]].concat()),
        ),
        (
            "u128_bin16",
            typed(25, &[&[0xc5, 0, 16][..], &[7; 16]].concat()),
        ),
        ("i128_bin", typed(26, &u128_bin)),
        (
            "probe_any",
            typed(
                27,
                &[0x94, 0xc0, 0xc4, 0x01, 0x00, 0xcc, 0x80, 0xd1, 0xff, 0x00],
            ),
        ),
        ("probe_any_map", typed(27, &[0x81, 0xa1, b'k', 0x01])),
        ("probe_any_ext", typed(27, &[0xd4, 0x01, 0x02])),
        ("probe_number_string", typed(28, &[0xa1, b'5'])),
        ("probe_sequence_bin", typed(29, &[0xc4, 0x02, 0x01, 0x02])),
        ("probe_text_not_utf8", typed(30, &[0xa2, 0xff, 0xfe])),
        ("probe_options", typed(31, &[0x92, 0xc0, 0x01])),
    ]
}

/// Seeds for `call_frames`: a good call of each export, and each malformed frame.
pub fn call_frames() -> Vec<(&'static str, Vec<u8>)> {
    let spec = FrameSpec::for_method;
    let with = |name: &str, f: &dyn Fn(&mut FrameSpec)| {
        let mut s = spec(name);
        f(&mut s);
        s
    };
    let relay = |depth: usize| {
        let mut args = mp(&("self", "echo", b"hi".to_vec()));
        for _ in 0..depth {
            args = mp(&("self", "relay", args));
        }
        args
    };
    let cases: Vec<(&'static str, FrameSpec, Vec<u8>)> = vec![
        ("echo", spec("echo"), b"hello".to_vec()),
        ("echo_not_utf8", spec("echo"), vec![0xff, 0xfe]),
        ("reverse", spec("reverse"), b"abc".to_vec()),
        (
            "count_words",
            spec("count_words"),
            b"one two  three".to_vec(),
        ),
        ("add", spec("add"), mp(&(2u32, 3u32))),
        (
            "add_named",
            spec("add"),
            to_msgpack(&json!({"a": 1, "b": 2})).unwrap(),
        ),
        ("add_overflow", spec("add"), mp(&(u32::MAX, 1u32))),
        ("ping", spec("ping"), Vec::new()),
        ("profile", spec("profile"), mp(&(profile(),))),
        ("tree_depth", spec("tree_depth"), {
            let mut b = vec![0x91];
            b.extend(Tree::chain_bytes(20));
            b
        }),
        ("big", spec("big"), mp(&(100_000u32, 7u8))),
        ("squares", spec("squares"), mp(&(100u32,))),
        ("fail_timeout", spec("fail"), mp(&(2u8, "t"))),
        ("fail_message", spec("fail"), mp(&(9u8, "why"))),
        ("relay", spec("relay"), relay(0)),
        ("relay_nested", spec("relay"), relay(3)),
        (
            "relay_typed_raw",
            spec("relay_typed"),
            mp(&("echo", "typed")),
        ),
        (
            "relay_typed_msgpack",
            spec("relay_typed"),
            mp(&("count_words", "a b")),
        ),
        (
            "relay_unknown_module",
            spec("relay"),
            mp(&("nobody", "echo", Vec::<u8>::new())),
        ),
        (
            "noisy",
            with("noisy", &|s| {
                s.trace_id = 7;
                s.span_id = 9;
                s.timeout = TimeoutSpec::Expired;
                s.backpressure = f32::NAN;
            }),
            b"hello".to_vec(),
        ),
        ("async_len", spec("async_len"), vec![1, 2, 3]),
        (
            "archived_points",
            spec("archived_points"),
            archive(&(points(), "label".to_owned())).to_vec(),
        ),
        (
            "frame_too_small",
            with("echo", &|s| s.size = Size::Smaller(0)),
            b"x".to_vec(),
        ),
        (
            "frame_larger",
            with("echo", &|s| s.size = Size::Larger(8)),
            b"x".to_vec(),
        ),
        (
            "no_host",
            with("echo", &|s| s.host = HostSpec::Null),
            b"x".to_vec(),
        ),
        (
            "null_call_handle",
            with("big", &|s| s.host = HostSpec::NullHandle),
            mp(&(100_000u32, 1u8)),
        ),
        (
            "null_args",
            with("echo", &|s| s.args = ArgsSpec::NullWithLen(2)),
            Vec::new(),
        ),
        (
            "null_empty_args",
            with("ping", &|s| s.args = ArgsSpec::NullEmpty),
            Vec::new(),
        ),
        (
            "dangling_empty_args",
            with("echo", &|s| s.args = ArgsSpec::DanglingEmpty),
            Vec::new(),
        ),
        (
            "null_arena",
            with("echo", &|s| s.arena = ArenaSpec::NullWithLen(15)),
            b"x".to_vec(),
        ),
        (
            "no_arena",
            with("echo", &|s| s.arena = ArenaSpec::Null),
            b"x".to_vec(),
        ),
        (
            "misaligned_arena",
            with("echo", &|s| s.arena = ArenaSpec::Misaligned(2, 64)),
            b"x".to_vec(),
        ),
        (
            "tiny_arena",
            with("add", &|s| s.arena = ArenaSpec::Aligned(1)),
            mp(&(2u32, 3u32)),
        ),
        (
            "index_past_end",
            with("echo", &|s| s.target = Target::PastEnd(0)),
            b"x".to_vec(),
        ),
        (
            "wrong_id",
            with("echo", &|s| s.target = Target::WrongId(0)),
            b"x".to_vec(),
        ),
        (
            "other_index",
            with("echo", &|s| s.target = Target::OtherIndex(1)),
            b"x".to_vec(),
        ),
        (
            "output_refused",
            with("big", &|s| s.alloc = AllocSpec::Refuse),
            mp(&(100_000u32, 1u8)),
        ),
        (
            "output_limited",
            with("fail", &|s| s.alloc = AllocSpec::Limit(2)),
            mp(&(9u8, "long message")),
        ),
        (
            "deep_call",
            with("relay", &|s| s.depth = DepthSpec::Near(6)),
            relay(1),
        ),
        (
            "max_depth",
            with("relay", &|s| s.depth = DepthSpec::Raw(u32::MAX)),
            relay(0),
        ),
        (
            "deadline_max",
            with("noisy", &|s| s.timeout = TimeoutSpec::Raw(u64::MAX - 1)),
            b"x".to_vec(),
        ),
        (
            "args_in_arena",
            with("echo", &|s| s.args = ArgsSpec::InArena(16, 8)),
            b"x".to_vec(),
        ),
        (
            // No argument bytes, pointing inside the arena: not an overlap (fuzzing found
            // this refused once).
            "args_empty_in_arena",
            with("echo", &|s| s.args = ArgsSpec::InArena(548, 0)),
            Vec::new(),
        ),
        (
            "args_oversized",
            with("echo", &|s| s.args = ArgsSpec::Oversized),
            b"x".to_vec(),
        ),
        (
            "args_wrapping",
            with("echo", &|s| s.args = ArgsSpec::Wrapping),
            b"x".to_vec(),
        ),
        (
            "arena_oversized",
            with("echo", &|s| s.arena = ArenaSpec::Oversized),
            b"x".to_vec(),
        ),
        (
            "host_short",
            with("echo", &|s| s.host = HostSpec::Short),
            b"x".to_vec(),
        ),
        (
            "persistent_region",
            with("echo", &|s| s.persistent = PersistentSpec::Region),
            b"hello".to_vec(),
        ),
        (
            "persistent_over_arena",
            with("echo", &|s| s.persistent = PersistentSpec::OverArena),
            b"x".to_vec(),
        ),
        (
            "persistent_misaligned",
            with("echo", &|s| s.persistent = PersistentSpec::Misaligned),
            b"x".to_vec(),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, spec, args)| (name, call_frames::encode(&spec, &args)))
        .collect()
}

/// Seeds for `arena_ops`.
pub fn arena_ops() -> Vec<(&'static str, Vec<u8>)> {
    let mixed = vec![
        Op::U8(1),
        Op::U64(2),
        Op::Bytes3([1, 2, 3]),
        Op::U128(3),
        Op::Unit,
        Op::WithU32(4),
        Op::WithTriple([5, 6, 7]),
        Op::AllocBytes(10, 0xee),
        Op::AllocBytesAligned(3, 6),
        Op::AllocBytesAligned(3, 201),
        Op::CopyBytes(vec![9, 8, 7]),
        Op::CopyU32(vec![1, 2]),
        Op::FillWith(5, 0xabc),
        Op::Reset,
        Op::U64(9),
    ];
    let exhaust = vec![
        Op::AllocBytes(60, 1),
        Op::U64(1),
        Op::U128(2),
        Op::AllocBytes(1, 2),
        Op::Reset,
        Op::AllocBytes(64, 3),
        Op::U8(4),
    ];
    let huge = vec![
        Op::Huge(HugeKind::MaxLen),
        Op::Huge(HugeKind::IsizeLen),
        Op::Huge(HugeKind::HugeAlign),
        Op::Huge(HugeKind::TopBitAlign),
        Op::U8(1),
    ];
    vec![
        ("mixed_aligned", arena_ops::encode(4096, 0, &mixed)),
        ("mixed_misaligned", arena_ops::encode(4096, 3, &mixed)),
        ("exhaust_64", arena_ops::encode(64, 0, &exhaust)),
        ("exhaust_odd", arena_ops::encode(63, 9, &exhaust)),
        ("empty_arena", arena_ops::encode(0, 5, &mixed)),
        ("huge_requests", arena_ops::encode(128, 1, &huge)),
    ]
}

/// Three points, with every kind of float.
pub fn points() -> Vec<Point> {
    vec![
        Point {
            x: 1.0,
            y: -2.5,
            z: 3.25,
        },
        Point {
            x: f32::NAN,
            y: f32::INFINITY,
            z: -0.0,
        },
        Point {
            x: f32::MIN_POSITIVE / 2.0,
            y: f32::MAX,
            z: 0.1,
        },
    ]
}

/// Text longer than an inline string (8 bytes), not all ASCII.
pub const LONG_TEXT: &str = "a string longer than eight bytes, ünïcödé";

/// `bytes` with the first occurrence of `find` changed to `to`.
fn patched(bytes: &[u8], find: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(find.len())
        .position(|w| w == find)
        .expect("the bytes to patch");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

/// Seeds for `archive_access`: genuine archives of each type, and near misses.
pub fn archive_access() -> Vec<(&'static str, Vec<u8>)> {
    let long = archive(&(LONG_TEXT.to_owned(), vec![0xffu8; 20])).to_vec();
    let pts = archive(&(points(),)).to_vec();
    vec![
        ("points", pts.clone()),
        ("points_empty", archive(&(Vec::<Point>::new(),)).to_vec()),
        ("points_truncated", pts[..pts.len() - 4].to_vec()),
        (
            "scaled_nan",
            archive(&(points()[..1].to_vec(), f32::NAN)).to_vec(),
        ),
        (
            "shout_inline",
            archive(&("hi".to_owned(), vec![1u8, 2, 3])).to_vec(),
        ),
        ("shout_long", long.clone()),
        ("shout_not_utf8", patched(&long, b"string", &[0xff])),
        ("chain_5", archive(&(chain(5),)).to_vec()),
        ("chain_130", archive(&(chain(130),)).to_vec()),
        // A link whose pointer points at itself.
        ("chain_self", vec![1, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff]),
        (
            "labelled",
            archive(&(points(), "label".to_owned())).to_vec(),
        ),
        ("empty", Vec::new()),
    ]
}

/// Seeds for `archive_mutation`: one value of each type, changed at a few places.
pub fn archive_mutation() -> Vec<(&'static str, Vec<u8>)> {
    let bits = |p: &[Point]| {
        p.iter()
            .map(|p| [p.x.to_bits(), p.y.to_bits(), p.z.to_bits()])
            .collect::<Vec<_>>()
    };
    let m = |position: u16, byte: u8, value: Value| {
        archive_mutation::encode(&Mutation {
            position,
            byte,
            value,
        })
    };
    vec![
        (
            "points_len",
            m(u16::MAX, 0xff, Value::Points(bits(&points()))),
        ),
        ("points_first", m(0, 0x7f, Value::Points(bits(&points())))),
        (
            "scaled",
            m(36, 0x80, Value::Scaled(bits(&points()), 2.0f32.to_bits())),
        ),
        (
            "shout_text",
            m(
                3,
                0xc3,
                Value::Shout(LONG_TEXT.as_bytes().to_vec(), vec![1, 2, 3]),
            ),
        ),
        (
            "shout_inline",
            m(0, 0xff, Value::Shout(b"hi".to_vec(), Vec::new())),
        ),
        ("chain_tag", m(8, 2, Value::Chain(4))),
        ("chain_pointer", m(12, 0xf0, Value::Chain(4))),
        // Too deep for the default depth limit.
        ("chain_200", m(804, 0, Value::Chain(200))),
        (
            "labelled",
            m(
                40,
                0xff,
                Value::Labelled(bits(&points()), LONG_TEXT.as_bytes().to_vec()),
            ),
        ),
    ]
}

/// Seeds for `archived_call`: good calls, misaligned and broken archives.
pub fn archived_call() -> Vec<(&'static str, Vec<u8>)> {
    let good = archive(&(points(), LONG_TEXT.to_owned())).to_vec();
    let e = archived_call::encode;
    vec![
        ("good", e(0, 4096, &good)),
        ("good_no_arena", e(0, 0, &good)),
        ("good_tiny_arena", e(0, 16, &good)),
        ("misaligned_3", e(3, 4096, &good)),
        ("misaligned_15", e(15, 4096, &good)),
        ("empty", e(0, 4096, &[])),
        ("truncated", e(0, 4096, &good[..good.len() - 1])),
        ("not_utf8", e(0, 4096, &patched(&good, b"string", &[0xff]))),
        ("other_type", e(0, 4096, &archive(&(chain(3),)))),
    ]
}

/// Seeds for `host_side`: for each way a module can hand its output back (and a nested
/// call, a log record, an unknown status), the first input of a fixed pseudo-random
/// sequence that decodes to it. The spec has byte strings inside it, which `arbitrary`
/// reads from both ends of the input, so searching is simpler than encoding by hand.
pub fn host_side() -> Vec<(&'static str, Vec<u8>)> {
    use crate::host_side::{AllocLen, Hostile, NameSpec, OutSpec, StatusSpec};
    type Want = fn(&Hostile) -> bool;
    let wanted: [(&'static str, Want); 14] = [
        ("ok_in_arena", |h| {
            matches!((h.status, h.out), (StatusSpec::Ok, OutSpec::Arena(_, 1..)))
        }),
        // `Known(n)` is the status `n % 12`: a multiple of 12 is `Ok`.
        ("error_in_arena", |h| {
            matches!(
                (h.status, h.out),
                (StatusSpec::Known(n), OutSpec::Arena(_, 1..)) if n % 12 != 0
            )
        }),
        ("past_arena", |h| matches!(h.out, OutSpec::PastArena(..))),
        ("alloc_whole", |h| {
            matches!(
                (h.alloc, h.out),
                (Some(AllocLen::Small(1..)), OutSpec::Alloc)
            )
        }),
        ("alloc_offset", |h| {
            matches!(
                (h.alloc, h.out),
                (Some(AllocLen::Small(2..)), OutSpec::AllocOffset(_))
            )
        }),
        ("alloc_too_long", |h| {
            matches!(
                (h.alloc, h.out),
                (Some(AllocLen::Small(_)), OutSpec::AllocTooLong(_))
            )
        }),
        ("alloc_past_isize", |h| {
            matches!(h.alloc, Some(AllocLen::PastIsize))
        }),
        ("own_memory", |h| matches!(h.out, OutSpec::Own(1..))),
        ("ok_in_frame", |h| {
            matches!((h.status, h.out), (StatusSpec::Ok, OutSpec::Frame(1..=16)))
        }),
        ("error_in_frame", |h| {
            matches!(
                (h.status, h.out),
                (StatusSpec::Known(n), OutSpec::Frame(1..=16)) if n % 12 != 0
            )
        }),
        ("null_with_length", |h| matches!(h.out, OutSpec::Null(1..))),
        (
            "unknown_status",
            |h| matches!(h.status, StatusSpec::Raw(c) if !(0..=11).contains(&c)),
        ),
        ("nested_into_itself", |h| {
            h.nested
                .as_ref()
                .is_some_and(|n| matches!(n.module, NameSpec::Itself))
        }),
        ("log_record", |h| h.log.is_some()),
    ];
    let mut state: u64 = 0x243f_6a88_85a3_08d3;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut found = Vec::new();
    for (name, want) in wanted {
        let seed = (0..200_000)
            .map(|_| {
                let len = 16 + (next() % 112) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
            })
            .find(|bytes| {
                let mut u = arbitrary::Unstructured::new(bytes);
                <Hostile as arbitrary::Arbitrary>::arbitrary(&mut u).is_ok_and(|h| want(&h))
            })
            .unwrap_or_else(|| panic!("no input decodes to a `{name}` spec"));
        found.push((name, seed));
    }
    found
}

/// Seeds of `daemon_requests`: a good hello and bad ones, slots good and scribbled, and
/// failure bytes good and bad.
pub fn daemon_requests() -> Vec<(&'static str, Vec<u8>)> {
    use memlink_ipc::control::Hello;
    use memlink_ipc::{Failure, Geometry, PROTOCOL_VERSION};
    let hello = Hello {
        version: PROTOCOL_VERSION,
        geometry: Geometry::new(2, 4096).unwrap(),
    };
    let body = rmp_serde::to_vec(&hello).unwrap();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    let mut truncated = frame.clone();
    truncated.truncate(frame.len() - 2);
    let slot = |op: u32, module: &[u8], method: &[u8], args: u64, state: u32| {
        let mut b = vec![1u8];
        let mut fields = vec![0u8; 160];
        fields[0..4].copy_from_slice(&op.to_le_bytes());
        fields[4..8].copy_from_slice(&(module.len() as u32).to_le_bytes());
        fields[8..12].copy_from_slice(&(method.len() as u32).to_le_bytes());
        fields[12..20].copy_from_slice(&args.to_le_bytes());
        fields[28..28 + module.len()].copy_from_slice(module);
        fields[92..92 + method.len()].copy_from_slice(method);
        fields[156..160].copy_from_slice(&state.to_le_bytes());
        b.extend_from_slice(&fields);
        b
    };
    let mut failure = vec![2u8];
    failure.extend(Failure::WorkerDied("killed by signal 9 (SIGKILL)".into()).encode());
    vec![
        ("hello", frame),
        ("hello_truncated", truncated),
        ("hello_huge_length", vec![0, 0xff, 0xff, 0xff, 0xff, 1, 2]),
        ("hello_garbage", vec![0, 4, 0, 0, 0, 0xc1, 0xc1, 0xc1, 0xc1]),
        ("slot_call", slot(1, b"basic", b"echo", 5, 1)),
        (
            "slot_args_past_end",
            slot(1, b"basic", b"echo", u64::MAX, 1),
        ),
        ("slot_long_name", slot(1, &[b'm'; 64], b"f", 0, 1)),
        ("slot_bad_utf8", slot(2, &[0xff, 0xfe], b"", 0, 1)),
        ("slot_bad_op", slot(77, b"basic", b"echo", 0, 1)),
        ("slot_not_submitted", slot(1, b"basic", b"echo", 0, 2)),
        ("failure", failure),
        ("failure_garbage", vec![2, 0xc1, 0x00]),
    ]
}
