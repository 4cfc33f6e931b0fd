//! Zero-copy calls into the real `zero_copy` module: arguments read where the host wrote
//! them, results read where the module wrote them, and every malformed archive refused.

mod common;

use common::{de, load_all, mp};
use memlink_example_types::zero_copy_types::{Chain, Point};
use memlink_runtime::{CallOptions, ModuleError, Rkyv, Runtime, RuntimeConfig, RuntimeError};
use rkyv::{rancor, util::AlignedVec, Archived};

/// What `centroid` returns: the mean point and where it read the points.
type Centroid = (f32, f32, f32, u64);

fn points(n: usize) -> Vec<Point> {
    (0..n)
        .map(|i| Point {
            x: i as f32,
            y: 2.0 * i as f32,
            z: 1.0,
        })
        .collect()
}

fn module() -> (Runtime, memlink_runtime::ModuleHandle) {
    let (rt, h) = load_all(RuntimeConfig::default(), &["zero_copy"]);
    (rt, h[0])
}

fn serialize_error(r: Result<memlink_runtime::CallOutput, RuntimeError>) -> String {
    match r.map_err(|e| e.module_error().cloned()) {
        Err(Some(ModuleError::Serialize(m))) => m,
        other => panic!(
            "expected a serialize error, got {:?}",
            other.map(|o| o.to_vec())
        ),
    }
}

#[test]
fn raw_bytes_are_read_at_the_address_the_host_wrote_them() {
    let (rt, h) = module();
    let address_of = rt.method(h, "address_of").unwrap();
    for len in [64, 4096, 64 << 20] {
        // Lent for the call...
        let buf = vec![7u8; len];
        let out = rt
            .call_method(address_of, &buf, &CallOptions::default())
            .unwrap();
        assert_eq!(
            de::<u64>(&out),
            buf.as_ptr() as u64,
            "{len} bytes, not copied"
        );
        // ...or written in place into a buffer of the runtime's.
        let mut buf = rt.arg_buffer(len);
        buf.fill(7);
        let written_at = buf.as_ptr() as u64;
        let out = rt
            .call_method(address_of, buf, &CallOptions::default())
            .unwrap();
        assert_eq!(de::<u64>(&out), written_at, "{len} bytes, not copied");
    }
    let err = rt.archived::<(Vec<u8>,), u64>(h, "address_of").unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::WrongFormat {
                part: "arguments",
                ..
            }
        ),
        "raw bytes are not an archive: {err}"
    );
}

#[test]
fn archived_arguments_are_read_where_they_lie() {
    let (rt, h) = module();
    let centroid = rt
        .archived::<(Vec<Point>,), Centroid>(h, "centroid")
        .unwrap();
    let pts = points(100);
    let bytes = rkyv::to_bytes::<rancor::Error>(&(pts.clone(),)).unwrap();
    let mut buf = rt.arg_buffer(bytes.len());
    buf.copy_from_slice(&bytes);
    let root = rkyv::access::<Archived<(Vec<Point>,)>, rancor::Error>(&buf).unwrap();
    let vec_at = root.0.as_ptr() as u64;
    let (x, y, z, seen_at) = centroid.call_buffer(buf, &CallOptions::default()).unwrap();
    assert_eq!((x, y, z), (49.5, 99.0, 1.0));
    assert_eq!(
        seen_at, vec_at,
        "the module read the points at the host's address"
    );
}

/// One buffer, as large as the largest archive, reused for archives of other sizes:
/// each call passes the length set for it. Before `set_len`, the whole buffer went, and
/// a shorter archive written at its start was read through the root the longer one had
/// left at the end (a NaN centroid), or through zeroes (an empty list): wrong, and `Ok`.
#[test]
fn a_reused_argument_buffer_passes_the_length_set_for_each_call() {
    let (rt, h) = module();
    let centroid = rt
        .archived::<(Vec<Point>,), Centroid>(h, "centroid")
        .unwrap();
    let archive = |n| rkyv::to_bytes::<rancor::Error>(&(points(n),)).unwrap();
    // One buffer in an arena, one of its own (larger than an arena), each lent and given.
    for capacity in [archive(1000).len(), archive(20_000).len()] {
        let mut buf = rt.arg_buffer(capacity);
        assert_eq!(buf.capacity(), capacity);
        for n in [1000, 10, 1, 1000, 3] {
            let bytes = archive(n);
            if bytes.len() > capacity {
                continue;
            }
            buf.set_len(bytes.len());
            buf.copy_from_slice(&bytes);
            let (x, _, z, _) = centroid.call_buffer(&buf, &CallOptions::default()).unwrap();
            assert_eq!((x, z), ((n - 1) as f32 / 2.0, 1.0), "{n} points lent");
        }
        let bytes = archive(10);
        buf.set_len(bytes.len());
        buf.copy_from_slice(&bytes);
        assert_eq!(buf.len(), bytes.len());
        let (x, _, _, _) = centroid.call_buffer(buf, &CallOptions::default()).unwrap();
        assert_eq!(x, 4.5, "10 points given");
    }
    let mut buf = rt.arg_buffer(100);
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| buf.set_len(101)));
    let message = *refused.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("101 bytes asked of a buffer of 100"),
        "{message}"
    );
}

#[test]
fn a_typed_archived_call_writes_the_arguments_once_into_the_arena() {
    let (rt, h) = module();
    let centroid = rt
        .archived::<(Vec<Point>,), Centroid>(h, "centroid")
        .unwrap();
    for n in [1, 10, 1000, 100_000] {
        let (x, _, z, _) = centroid.call(&(points(n),)).unwrap();
        let want = (n - 1) as f32 / 2.0;
        // f32 sums of 100,000 values drift a little; the values are what matter.
        assert!(
            (x - want).abs() <= want * 1e-4 && z == 1.0,
            "{n} points: {x} vs {want}"
        );
    }
}

#[test]
fn types_that_differ_are_refused_before_the_call_naming_both() {
    let (rt, h) = module();
    let err = rt
        .archived::<(Vec<u32>,), Centroid>(h, "centroid")
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RuntimeError::TypeMismatch { .. }), "{text}");
    assert!(
        text.contains("Vec<memlink_example_types::zero_copy_types::Point>"),
        "{text}"
    );
    assert!(text.contains("Vec<u32>"), "{text}");
    let err = rt
        .archived::<(Vec<u8>,), u64>(h, "checksum_msgpack")
        .unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::WrongFormat {
                part: "arguments",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Runtime::typed"), "{err}");
    assert!(rt
        .archived::<(Vec<Point>, f32), Rkyv<Vec<Point>>>(h, "scale")
        .is_ok());
    assert!(matches!(
        rt.archived::<(Vec<Point>, f32), Rkyv<Vec<u32>>>(h, "scale"),
        Err(RuntimeError::TypeMismatch { .. })
    ));
    let err = rt
        .archived::<(Vec<Point>, f32), Vec<Point>>(h, "scale")
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::WrongFormat { part: "result", .. }),
        "a serde type for an archived result: {err}"
    );
}

#[test]
fn archived_results_are_read_in_place() {
    let (rt, h) = module();
    let scale = rt
        .archived::<(Vec<Point>, f32), Rkyv<Vec<Point>>>(h, "scale")
        .unwrap();
    let out = scale.call(&(points(3), 2.0)).unwrap();
    let xs: Vec<f32> = out.get().iter().map(|p| p.x.to_native()).collect();
    assert_eq!(xs, [0.0, 2.0, 4.0]);
    let out = out.into_output();
    assert!(out.is_in_arena(), "the archive stayed in the call's arena");
    let big = scale.call(&(points(20_000), 1.0)).unwrap();
    assert_eq!(big.get().len(), 20_000);
    assert!(
        !big.into_output().is_in_arena(),
        "240 KB does not fit a 64 KiB arena"
    );
    // A 20-byte archive is copied out of the arena, still aligned for reading in place.
    let one = scale.call(&(points(1), 3.0)).unwrap();
    assert_eq!(one.get()[0].z.to_native(), 3.0);
    assert!(!one.into_output().is_in_arena());
}

/// Results are shared read-only across threads: one kept in the call's arena, one that
/// keeps its arguments' buffer alive, and an archived one.
#[test]
fn results_are_read_from_other_threads_by_reference() {
    fn shared<T: Sync>(_: &T) {}
    let (rt, h) = module();
    let shout = rt
        .archived::<(String, Vec<u8>), memlink_runtime::CallOutput>(h, "shout")
        .unwrap();
    let text = "a result long enough to stay in the call's arena";
    let in_arena = shout.call(&(text.to_owned(), Vec::new())).unwrap();
    assert!(in_arena.is_in_arena());
    let centroid = rt.method(h, "centroid").unwrap();
    let bytes = rkyv::to_bytes::<rancor::Error>(&(points(20_000),)).unwrap();
    let mut buf = rt.arg_buffer(bytes.len());
    buf.copy_from_slice(&bytes);
    let with_args = rt
        .call_method(centroid, buf, &CallOptions::default())
        .unwrap();
    let scale = rt
        .archived::<(Vec<Point>, f32), Rkyv<Vec<Point>>>(h, "scale")
        .unwrap();
    let archived = scale.call(&(points(3), 2.0)).unwrap();
    shared(&in_arena);
    shared(&with_args);
    shared(&archived);
    let expected = text.to_uppercase();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                assert_eq!(&in_arena[..], expected.as_bytes());
                // The centroid of 20,000 points, read through the other thread's
                // reference (its f32 sum drifts a little).
                let (x, _, z, _): Centroid = de(&with_args);
                assert!((x - 9999.5).abs() < 1.0 && z == 1.0, "{x} {z}");
                assert_eq!(archived.get()[2].x.to_native(), 4.0);
            });
        }
    });
}

#[test]
fn an_arena_reference_result_is_not_copied() {
    let (rt, h) = module();
    let shout = rt
        .archived::<(String, Vec<u8>), Vec<u8>>(h, "shout")
        .unwrap();
    let text = "an arena reference longer than the inline limit";
    let out = shout.call(&(text.to_owned(), b"!!".to_vec())).unwrap();
    assert_eq!(out, format!("{}!!", text.to_uppercase()).as_bytes());
    // Read as bytes, the result is the output itself: in place, in the arena.
    let method = shout.method();
    let archive = rkyv::to_bytes::<rancor::Error>(&(text.to_owned(), b"!!".to_vec())).unwrap();
    let raw = rt
        .call_method(method, &archive[..], &CallOptions::default())
        .unwrap();
    assert!(raw.is_in_arena());
    // Up to 32 bytes are copied out and the arena goes back at once.
    let archive = rkyv::to_bytes::<rancor::Error>(&("hey".to_owned(), b"!!".to_vec())).unwrap();
    let small = rt
        .call_method(method, &archive[..], &CallOptions::default())
        .unwrap();
    assert_eq!(small, b"HEY!!");
    assert!(!small.is_in_arena());
}

#[test]
fn large_inputs_through_the_buffer_are_checked_end_to_end() {
    let (rt, h) = module();
    let centroid = rt
        .archived::<(Vec<Point>,), Centroid>(h, "centroid")
        .unwrap();
    // 4 million points (48 MiB) archived by the caller into a buffer of its own.
    let pts = points(4 << 20);
    let bytes = rkyv::to_bytes::<rancor::Error>(&(pts,)).unwrap();
    let mut buf = rt.arg_buffer(bytes.len());
    assert!(buf.len() > RuntimeConfig::default().arena_size);
    buf.copy_from_slice(&bytes);
    let (_, _, z, _) = centroid.call_buffer(buf, &CallOptions::default()).unwrap();
    assert_eq!(z, 1.0);
    let checksum = rt.method(h, "checksum").unwrap();
    let data: Vec<u8> = (0..64 << 20).map(|i| (i % 251) as u8).collect();
    let expected = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let out = rt
        .call_method(checksum, &data, &CallOptions::default())
        .unwrap();
    assert_eq!(de::<u64>(&out), expected);
}

/// A module that passes an archive on to another module's archive export (a relay
/// lending a slice of its own arguments, whose bytes have no alignment) gets the call it
/// would get from a host: the runtime copies bytes lent off a 16-byte boundary to one,
/// as it places a host's archived arguments. Before, the callee refused them ("the
/// archive starts 9 bytes past a 16-byte boundary"), so the example relays could not
/// reach an archive export.
#[test]
fn an_archive_lent_off_its_boundary_by_a_module_reaches_its_callee() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["nested_calls", "zero_copy"]);
    let archive = rkyv::to_bytes::<rancor::Error>(&(points(4),)).unwrap();
    // The centroid (the fourth figure is where the points were read, which differs).
    let centroid = |out: &[u8]| {
        let (x, y, z, _) = de::<(f32, f32, f32, u64)>(out);
        (x, y, z)
    };
    let direct = centroid(&rt.call(h[1], "centroid", &archive).unwrap());
    for relay in ["relay_borrowed", "relay_in_arena"] {
        let relay = rt
            .archived::<(String, String, Vec<u8>), Vec<u8>>(h[0], relay)
            .unwrap();
        let args = (
            "zero_copy".to_owned(),
            "centroid".to_owned(),
            archive.to_vec(),
        );
        assert_eq!(centroid(&relay.call(&args).unwrap()), direct);
    }
}

#[test]
fn malformed_archives_are_errors_that_say_what_was_wrong() {
    let (rt, h) = module();
    let good = rkyv::to_bytes::<rancor::Error>(&(points(4),)).unwrap();
    // Empty.
    assert!(serialize_error(rt.call(h, "centroid", b"")).contains("the archive is empty"));
    // Misaligned: the same bytes one past a 16-byte boundary.
    let mut shifted = AlignedVec::<16>::new();
    shifted.extend_from_slice(&[0]);
    shifted.extend_from_slice(&good);
    let text = serialize_error(rt.call(h, "centroid", &shifted[1..]));
    assert!(text.contains("16-byte boundary"), "{text}");
    // Truncated.
    let mut cut = AlignedVec::<16>::new();
    cut.extend_from_slice(&good[..good.len() - 4]);
    assert!(serialize_error(rt.call(h, "centroid", &cut)).contains("validation failed"));
    // Invalid: the vector's length pushed past the end of the archive.
    let mut bad = AlignedVec::<16>::new();
    bad.extend_from_slice(&good);
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&1_000_000u32.to_le_bytes());
    assert!(serialize_error(rt.call(h, "centroid", &bad)).contains("validation failed"));
    // MessagePack sent to it: the error says what the export takes, beside the
    // validator's words.
    let text = serialize_error(rt.call(h, "centroid", &mp(&(vec![(1.0f32, 2.0f32, 3.0f32)],))));
    assert!(
        text.contains("which takes the rkyv archive of its arguments' tuple)"),
        "{text}"
    );
    // The module keeps serving.
    let ok = rt.call(h, "centroid", &good).unwrap();
    assert_eq!(de::<(f32, f32, f32, u64)>(&ok).0, 1.5);
}

/// The archive of a chain `depth` links long (see msdk's archive tests for the layout).
fn deep_chain(depth: usize) -> AlignedVec {
    let mut out = AlignedVec::<16>::new();
    out.extend_from_slice(&[0u8; 8]);
    for _ in 0..depth {
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&(-12i32).to_le_bytes());
    }
    out
}

#[test]
fn deep_nesting_and_oversized_archives_hit_the_limits() {
    // A private copy of the module: the limits are module-wide.
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load(memlink_runtime::ModuleRef::from_path(common::module_copy(
            "zero_copy",
            "zero_copy_limits",
        )))
        .unwrap();
    let shallow = rkyv::to_bytes::<rancor::Error>(&(Chain::Link(Box::new(Chain::End)),)).unwrap();
    assert_eq!(de::<u32>(&rt.call(h, "chain_len", &shallow).unwrap()), 1);
    let mut deep = AlignedVec::<16>::new();
    let chain = deep_chain(200_000);
    deep.extend_from_slice(&chain);
    let text = serialize_error(rt.call(h, "chain_len", &deep));
    assert!(
        text.contains("validation failed"),
        "200,000 levels: an error, not a crash: {text}"
    );
    rt.call(h, "limit_archives", &mp(&(16u32, 1024u64)))
        .unwrap();
    let big = rkyv::to_bytes::<rancor::Error>(&(points(200),)).unwrap();
    let text = serialize_error(rt.call(h, "centroid", &big));
    assert!(text.contains("over the limit of 1024 bytes"), "{text}");
    assert_eq!(
        de::<u32>(&rt.call(h, "chain_len", &shallow).unwrap()),
        1,
        "still serving"
    );
}

#[test]
fn msgpack_and_zero_copy_agree() {
    let (rt, h) = module();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 256) as u8).collect();
    let raw: u64 = de(&rt.call(h, "checksum", &data).unwrap());
    let packed: u64 = de(&rt.call(h, "checksum_msgpack", &mp(&(&data, 0u64))).unwrap());
    assert_eq!(raw, packed);
}

#[test]
fn persistent_refs_are_checked_for_staleness_and_forgery() {
    // A private copy: the module keeps a static across loads, which this test reloads.
    let path = common::module_copy("zero_copy", "zero_copy_persist");
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load(memlink_runtime::ModuleRef::from_path(&path))
        .unwrap();
    let (offset, generation, len): (u64, u64, u64) =
        de(&rt.call(h, "remember", b"kept across calls").unwrap());
    // `recall` takes one argument: the handle, in a one-element array.
    let handle = mp(&((offset, generation, len),));
    for _ in 0..3 {
        assert_eq!(rt.call(h, "recall", &handle).unwrap(), b"kept across calls");
    }
    let forged = [
        mp(&((offset + 16, generation, len),)),
        mp(&((offset, generation, len + 1),)),
        mp(&((1u64 << 40, generation, len),)),
        mp(&((offset, generation + 1_000, len),)),
    ];
    for bad in &forged {
        let err = rt.call(h, "recall", bad).unwrap_err();
        let Some(ModuleError::Failed(m)) = err.module_error() else {
            panic!("{err}")
        };
        assert!(m.starts_with("invalid persistent reference"), "{m}");
    }
    // State built once: the table's second use allocates nothing.
    let first: u64 = rt.call_typed(h, "sum_squares", &(10u32,)).unwrap();
    let used: usize = rt.call_typed(h, "persistent_used", &()).unwrap();
    let again: u64 = rt.call_typed(h, "sum_squares", &(10u32,)).unwrap();
    assert_eq!((first, again), (285, 285));
    assert_eq!(
        rt.call_typed::<_, usize>(h, "persistent_used", &())
            .unwrap(),
        used
    );
    // After a reload the old handle is stale, and the table is rebuilt.
    rt.unload(h).unwrap();
    let h = rt
        .load(memlink_runtime::ModuleRef::from_path(&path))
        .unwrap();
    let err = rt.call(h, "recall", &handle).unwrap_err();
    assert!(err.to_string().contains("generation"), "{err}");
    assert_eq!(
        rt.call_typed::<_, u64>(h, "sum_squares", &(10u32,))
            .unwrap(),
        285
    );
}

/// A runtime that gives modules no persistent memory (`persistent_size(0)`, which its
/// docs allow) makes the example's exports that keep state fail saying so. Before, the
/// error was a bare "service unavailable", which names no service.
#[test]
fn without_persistent_memory_the_state_keeping_exports_say_what_is_missing() {
    let (rt, h) = load_all(RuntimeConfig::default().persistent_size(0), &["zero_copy"]);
    // `remember` takes its one string raw.
    for (method, args) in [
        ("remember", b"text".to_vec()),
        ("sum_squares", mp(&(3u32,))),
    ] {
        let err = rt.call(h[0], method, &args).unwrap_err();
        let Some(ModuleError::Failed(m)) = err.module_error() else {
            panic!("{method}: {err}")
        };
        assert!(m.contains("no persistent memory"), "{method}: {m}");
    }
}

/// Calls made from a thread-local's destructor, after the thread's other locals (the
/// runtime's, the archiving scratch) are gone: each answers. Archiving arguments used to
/// reach rkyv's thread-local scratch there, which panics once destroyed, and a panic in
/// a thread-local's destructor aborts the process.
#[test]
fn archived_calls_work_from_a_thread_local_destructor() {
    common::in_child(
        "archived_calls_work_from_a_thread_local_destructor",
        &[],
        || {
            type Centroid3 = memlink_runtime::ArchivedMethod<(Vec<Point>,), Centroid>;
            struct CallsOnDrop(
                Arc<Mutex<Option<(Runtime, Centroid3)>>>,
                Arc<Mutex<Vec<f32>>>,
            );
            impl Drop for CallsOnDrop {
                fn drop(&mut self) {
                    let held = self.0.lock().unwrap();
                    let (_rt, centroid) = held.as_ref().unwrap();
                    for n in [3, 20_000] {
                        let (x, ..) = centroid.call(&(points(n),)).unwrap();
                        self.1.lock().unwrap().push(x);
                    }
                }
            }
            thread_local! {
                static GUARD: std::cell::RefCell<Option<CallsOnDrop>> = const { std::cell::RefCell::new(None) };
            }
            use std::sync::{Arc, Mutex};
            let held = Arc::new(Mutex::new(None));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let (h_held, h_seen) = (Arc::clone(&held), Arc::clone(&seen));
            std::thread::spawn(move || {
                // Registered first, so destroyed last: after every local the calls
                // below set up on this thread.
                GUARD.with(|g| *g.borrow_mut() = Some(CallsOnDrop(h_held.clone(), h_seen)));
                let (rt, h) = module();
                let centroid = rt
                    .archived::<(Vec<Point>,), Centroid>(h, "centroid")
                    .unwrap();
                assert_eq!(centroid.call(&(points(3),)).unwrap().0, 1.0);
                *h_held.lock().unwrap() = Some((rt, centroid));
            })
            .join()
            .unwrap();
            // 20,000 points (240 KB) are archived apart from the arena; their f32 sum
            // drifts a little.
            let seen = seen.lock().unwrap();
            assert!(
                seen.len() == 2 && seen[0] == 1.0 && (seen[1] - 9999.5).abs() < 1.0,
                "{seen:?}"
            );
        },
    );
}

/// README's CLI part writes `points.rkyv` by hand, with `printf`: those bytes are what
/// rkyv archives for its two points, and `memlink call ... centroid --args-file` reads
/// them to the centroid it says.
#[test]
fn the_readmes_hand_written_points_are_rkyvs_archive_and_the_cli_reads_them() {
    let readme = std::fs::read_to_string(common::workspace().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("printf '") && l.ends_with("' > points.rkyv"))
        .expect("README writes points.rkyv with printf");
    let escaped = &line["printf '".len()..line.len() - "' > points.rkyv".len()];
    // printf's octal escapes, `\` and one to three digits: the only ones the line uses.
    let bytes: Vec<u8> = escaped
        .split('\\')
        .skip(1)
        .map(|octal| u8::from_str_radix(octal, 8).unwrap())
        .collect();
    let two = vec![
        Point {
            x: 1.0,
            y: 2.0,
            z: 3.0,
        },
        Point {
            x: 3.0,
            y: 4.0,
            z: 5.0,
        },
    ];
    let archived = rkyv::to_bytes::<rancor::Error>(&(two,)).unwrap();
    assert_eq!(bytes, archived.as_slice());

    let dir = common::scratch("readme-points");
    let file = dir.join("points.rkyv");
    std::fs::write(&file, &bytes).unwrap();
    let module = common::module_path("zero_copy");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memlink"))
        .arg("call")
        .arg(&module)
        .args(["centroid", "--args-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("[2.0,3.0,4.0,"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
