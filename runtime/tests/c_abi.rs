//! The ABI is C: a module written in C against `include/memlink.h` loads and runs
//! through the runtime and the `memlink` command, and a host written in C against the
//! same header loads and calls a Rust module. Both are built by the system C compiler.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{compile_c, module_path, mp};
use memlink_runtime::{Format, ModuleError, ModuleRef, Runtime, RuntimeConfig};

fn c_module() -> std::path::PathBuf {
    compile_c(&["examples/c/module.c"], "libc_module.so", true)
}

#[test]
fn a_module_written_in_c_is_called_through_the_runtime() {
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(c_module())).unwrap();
    let info = rt.module_info(h).unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("c_module", "0.1.0")
    );
    let methods = rt.methods(h).unwrap();
    let names: Vec<(&str, Format, Format)> = methods
        .iter()
        .map(|m| (m.name.as_str(), m.args_format, m.result_format))
        .collect();
    assert_eq!(
        names,
        [
            ("fail", Format::Raw, Format::Raw),
            ("add", Format::MessagePack, Format::MessagePack),
            ("echo", Format::Raw, Format::Raw),
        ]
    );
    // Raw echo.
    assert_eq!(
        rt.call(h, "echo", b"bytes from Rust").unwrap(),
        b"bytes from Rust"
    );
    // MessagePack add, positional and named, through the untyped and typed calls.
    assert_eq!(rt.call(h, "add", &mp(&(2u32, 3u32))).unwrap(), [5]);
    let add = rt.typed::<(u32, u32), u32>(h, "add").unwrap();
    assert_eq!(add.call(&(40_000, 2)).unwrap(), 40_002);
    assert_eq!(add.call(&(70_000, 70_000)).unwrap(), 140_000);
    let named = mp(&std::collections::BTreeMap::from([
        ("a", 7u32),
        ("b", 8u32),
    ]));
    assert_eq!(rt.call(h, "add", &named).unwrap(), [15]);
    // Errors with payloads.
    let err = rt.call(h, "fail", b"no reason").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::Failed(
            "asked to fail with `no reason`".into()
        ))
    );
    let err = rt.call(h, "add", b"\xc1").unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Serialize(m)) if m.starts_with("bad arguments")),
        "{err}"
    );
    let err = add.call(&(u32::MAX, 1)).unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::Failed("the sum overflows u32".into()))
    );
    // Still serving after each.
    assert_eq!(rt.call(h, "echo", b"ok").unwrap(), b"ok");
}

/// The header gives the entry points C linkage in C++ too: a module written in C++
/// against it alone exports them under their own names, and loads and answers
/// (`tests/fixtures/cpp_module.cpp`).
/// A module built with `-fvisibility=hidden`, as many C projects build everything,
/// still exports the entry points: memlink.h declares them with default visibility,
/// which their definitions take. Before, the example module built so was refused as
/// "not a memlink module: it does not export `memlink_abi_version`", which it defines.
#[test]
fn a_module_built_with_hidden_visibility_still_exports_its_entry_points() {
    let fixture = common::compile_c_with(
        &["examples/c/module.c"],
        "libc_module_hidden.so",
        true,
        &["-fvisibility=hidden"],
    );
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load(ModuleRef::from_path(fixture))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rt.call(h, "echo", b"hidden").unwrap(), b"hidden");
}

#[test]
fn a_module_written_in_cpp_against_the_header_loads_and_answers() {
    let module = compile_c(
        &["runtime/tests/fixtures/cpp_module.cpp"],
        "libcpp_module.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(module)).unwrap();
    assert_eq!(rt.module_info(h).unwrap().name, "cpp_module");
    assert_eq!(rt.call(h, "echo", b"from C++").unwrap(), b"from C++");
}

#[test]
fn the_memlink_command_calls_a_module_written_in_c() {
    let module = c_module();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_memlink"))
            .arg("call")
            .arg(&module)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["add", "[2, 3]"]), (true, "5".into(), String::new()));
    assert_eq!(run(&["add", r#"{"a": 20, "b": 22}"#]).1, "42");
    assert_eq!(
        run(&["echo", "from the command line"]).1,
        "from the command line"
    );
    let (ok, _, stderr) = run(&["fail", "on purpose"]);
    assert!(!ok);
    assert!(
        stderr.contains("asked to fail with `on purpose`"),
        "{stderr}"
    );
}

#[test]
fn a_host_written_in_c_calls_a_rust_module() {
    let host = compile_c(&["examples/c/host.c"], "memlink_c_host", false);
    for (module, name) in [(module_path("basic"), "basic"), (c_module(), "c_module")] {
        let out = Command::new(&host).arg(&module).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines[0].starts_with(&format!("module {name} ")), "{stdout}");
        assert_eq!(&lines[1..], ["echo = hello from C", "add = 5"], "{name}");
    }
}

/// `alloc_output` answers null when the host cannot allocate (docs/abi.md), and a
/// host written from the example does: a module that asks examples/c/host.c for
/// `SIZE_MAX - 8` bytes gets null, as it does from the runtime. Before, the example
/// rounded the length up to 16 with no check, wrapped around and handed out a 16-byte
/// buffer for it, which a module then writes past (`tests/fixtures/greedy_output.c`
/// says when it is given one).
#[test]
fn a_length_no_buffer_can_have_gets_null_from_the_c_host_too() {
    let host = compile_c(&["examples/c/host.c"], "memlink_c_host", false);
    let module = compile_c(
        &["runtime/tests/fixtures/greedy_output.c"],
        "libgreedy_output.so",
        true,
    );
    let out = Command::new(&host).arg(&module).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(&lines[1..], ["echo = hello from C", "add = 5"], "{stdout}");
    // The runtime's own alloc_output, for the same module.
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(module)).unwrap();
    assert_eq!(rt.call(h, "echo", b"hello").unwrap(), b"hello");
}

/// examples/c/host.c reads an output only where the ABI lets a module put it (its
/// arena, the frame's `small_out` or the buffer its `alloc_output` gave), as the runtime
/// does: a module whose `echo` points `out` at an address no memory is at is refused,
/// saying so, and the host goes on to call `add` (`tests/fixtures/wild_echo.c`).
/// Before, the example printed whatever `out` pointed at and died of SIGSEGV.
#[test]
fn the_c_host_refuses_an_output_outside_the_memory_it_gave() {
    let host = compile_c(&["examples/c/host.c"], "memlink_c_host", false);
    let module = compile_c(
        &["runtime/tests/fixtures/wild_echo.c"],
        "libwild_echo.so",
        true,
    );
    let out = Command::new(&host).arg(&module).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        &lines[1..],
        [
            "echo refused: its output of 5 bytes lies outside the arena, small_out and \
             the buffer it was given",
            "add = 5"
        ],
        "{stdout}"
    );
}

/// A default runtime's configuration, and the same with one interceptor that does
/// nothing: each call then takes the path a runtime with interceptors takes.
fn plain_and_intercepted() -> [RuntimeConfig; 2] {
    #[derive(Debug)]
    struct Nothing;
    impl memlink_runtime::intercept::Interceptor for Nothing {}
    [
        RuntimeConfig::default(),
        RuntimeConfig::default().interceptor(std::sync::Arc::new(Nothing)),
    ]
}

/// The host keeps the ABI's promises about a nested call's sink, seen by a module in C
/// (`tests/fixtures/nested_sink.c`): the sink runs once, before `call_module` returns,
/// whatever the output (empty, small, larger than a `CallOutput` holds, or a failure's
/// payload); on success the callee's result format is in the request by the time it
/// runs, and on a failure the format is left as the module set it. The same holds
/// through the path a runtime with interceptors takes.
#[test]
fn a_nested_calls_sink_runs_once_with_the_result_format_set() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/nested_sink.c"],
        "libnested_sink.so",
        true,
    );
    for config in plain_and_intercepted() {
        let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
        let h = rt.load(ModuleRef::from_path(fixture.clone())).unwrap();
        rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
        // [sink calls, the format the sink saw, call_module's status, the length it
        // received, its first 200 bytes].
        let relay = |method: &str, args: &[u8]| {
            let request = [method.as_bytes(), &[0], args].concat();
            let out = rt.call(h, "relay", &request).unwrap().to_vec();
            let len = u32::from_le_bytes(out[3..7].try_into().unwrap());
            (out[0], out[1], out[2], len, out[7..].to_vec())
        };
        let (ok, raw, msgpack) = (
            memlink_abi::Status::Ok as u8,
            Format::Raw as u8,
            Format::MessagePack as u8,
        );
        assert_eq!(relay("echo", b"hi"), (1, raw, ok, 2, b"hi".to_vec()));
        assert_eq!(
            relay("echo", b""),
            (1, raw, ok, 0, vec![]),
            "an empty output"
        );
        assert_eq!(
            relay("add", &mp(&(2u32, 3u32))),
            (1, msgpack, ok, 1, vec![5])
        );
        assert_eq!(relay("noop", b""), (1, msgpack, ok, 1, vec![0xc0]), "nil");
        // Larger than a `CallOutput` holds inline, and than the arena: the slow path.
        assert_eq!(
            relay("fill", &mp(&(7u8, 200_000u32))),
            (1, raw, ok, 200_000, vec![7; 200])
        );
        // Failures: the payload goes to the sink once; the format is not written.
        use memlink_abi::Status;
        for (method, args, want, what) in [
            ("fail", &b"why"[..], Status::Failed, "the callee's error"),
            ("boom", b"bang", Status::Panic, "the callee's panic"),
            (
                "no_such_method",
                b"",
                Status::InvalidMethod,
                "an unknown method",
            ),
        ] {
            let (calls, format, status, ..) = relay(method, args);
            assert_eq!((calls, format, status), (1, 0xff, want as u8), "{what}");
        }
        // Arguments null with a length are refused, as a name is, not taken for none.
        let (calls, format, status, _, said) = relay("!echo", b"ten bytes!");
        assert_eq!((calls, format, status), (1, 0xff, Status::Abi as u8));
        let said = String::from_utf8_lossy(&said);
        assert!(said.contains("null with a length (10 bytes)"), "{said}");
        // Still serving.
        assert_eq!(relay("echo", b"ok"), (1, raw, ok, 2, b"ok".to_vec()));
    }
}

/// A result of at most 16 bytes may be put in the frame's `small_out` (ABI 6), and the
/// host reads exactly its bytes there, for a call from the host and for a nested call,
/// with or without interceptors; a longer output, one not at the field's start, or an
/// error's payload claimed there is refused as an ABI error, and nothing is read from it
/// (`tests/fixtures/small_out.c`).
#[test]
fn a_result_in_the_frame_is_read_there_and_nothing_else_is() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/small_out.c"],
        "libsmall_out.so",
        true,
    );
    let written = |len: usize| {
        (0..len.min(16))
            .map(|i| 0xa0 + i as u8)
            .collect::<Vec<u8>>()
    };
    for config in plain_and_intercepted() {
        let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
        let h = rt.load(ModuleRef::from_path(fixture.clone())).unwrap();
        let relay = rt
            .load(ModuleRef::from_path(module_path("nested_calls")))
            .unwrap();
        let relay = rt
            .archived::<(String, String, Vec<u8>), Vec<u8>>(relay, "relay_in_arena")
            .unwrap();
        let ok = memlink_abi::Status::Ok as u8;
        for len in 0..=16u8 {
            let out = rt.call(h, "put", &[ok, len]).unwrap();
            assert_eq!(out, &written(len.into())[..], "{len} bytes");
            // The same bytes through a module's nested call, read where they lie.
            let nested = relay
                .call(&("small_out".into(), "put".into(), vec![ok, len]))
                .unwrap();
            assert_eq!(nested, written(len.into()), "{len} bytes, nested");
        }
        for (request, what) in [
            (&[ok, 17][..], "a result one byte longer than the field"),
            (&[ok, 255], "a result far longer than the field"),
            (
                &[ok, 4, 1],
                "a result inside the field but not at its start",
            ),
            (
                &[memlink_abi::Status::Failed as u8, 5],
                "an error's payload",
            ),
            (&[memlink_abi::Status::Panic as u8, 16], "a panic's payload"),
        ] {
            let err = rt.call(h, "put", request).unwrap_err();
            assert!(
                matches!(err.module_error(), Some(ModuleError::Abi(m)) if m.contains("small_out (a result of status OK of at most 16 bytes, from its first byte)")),
                "{what}: {err}"
            );
        }
        // Still serving.
        assert_eq!(
            rt.call(h, "put", &[ok, 3]).unwrap(),
            &[0xa0, 0xa1, 0xa2][..]
        );
    }
}

/// A log record as a module sent it: level, module, method, message and fields.
type Record = (
    tracing::Level,
    String,
    String,
    String,
    Vec<(String, String)>,
);

/// Collects every log record modules send.
#[derive(Default)]
struct Records(std::sync::Mutex<Vec<Record>>);

impl memlink_runtime::LogSink for Records {
    fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
        self.0.lock().unwrap().push((
            event.level,
            event.module.into(),
            event.method.into(),
            event.message.into(),
            event
                .fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
    }
}

/// A module in C reaches the host's services as docs/abi.md and memlink.h describe them
/// (`tests/fixtures/services.c`): a record it hands to `log` arrives with its level,
/// names, message and fields, and none is sent above the `max_log_level` its
/// `memlink_init` got; the `memlink_metrics` it defines (declared by the header) is
/// found and read, a counter, a gauge and a 31-bucket histogram becoming its custom
/// metrics while a histogram of another bucket count is skipped.
#[test]
fn a_module_in_c_logs_through_the_host_and_reports_metrics_of_its_own() {
    use memlink_runtime::MetricValue;
    // A file of its own: the module keeps the log level its last `memlink_init` gave it,
    // and another test's runtime loading the same image (with no level) may init it
    // meanwhile, turning this test's records off.
    let fixture = compile_c(
        &["runtime/tests/fixtures/services.c"],
        "libservices_logs.so",
        true,
    );
    let records = std::sync::Arc::new(Records::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(records.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt.load(ModuleRef::from_path(fixture.clone())).unwrap();
    for text in ["hello", "a somewhat longer note"] {
        assert_eq!(rt.call(h, "note", text.as_bytes()).unwrap(), b"");
    }
    let got = std::mem::take(&mut *records.0.lock().unwrap());
    let want = |text: &str| {
        (
            tracing::Level::INFO,
            "services".to_owned(),
            "note".to_owned(),
            text.to_owned(),
            vec![("len".to_owned(), text.len().to_string())],
        )
    };
    assert_eq!(got, [want("hello"), want("a somewhat longer note")]);

    let all = rt.metrics();
    let custom = &all.iter().find(|m| m.module == "services").unwrap().custom;
    let names: Vec<&str> = custom.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["c_notes", "c_last_len", "c_len"],
        "c_short_hist is skipped"
    );
    assert_eq!(custom[0].1, MetricValue::Counter(2));
    assert_eq!(custom[1].1, MetricValue::Gauge(22.0));
    let MetricValue::Histogram {
        count,
        sum,
        ref buckets,
    } = custom[2].1
    else {
        panic!("{:?}", custom[2]);
    };
    assert_eq!((count, sum), (2, 27.0));
    // 5 falls in the ≤5 bucket, 22 in ≤25.
    let mut expected = vec![0u64; memlink_abi::BUCKETS.len() + 1];
    expected[11] = 1;
    expected[13] = 1;
    assert_eq!(buckets, &expected);

    // A host that wants warnings at most gets no INFO record.
    let records = std::sync::Arc::new(Records::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::WARN)
        .log_sink(records.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    rt.call(h, "note", b"quiet").unwrap();
    assert!(records.0.lock().unwrap().is_empty());
}

/// The persistent region a C module gets is as docs/abi.md says: 64-aligned, its header's
/// generation set and `used` left at 0 by the host, so a module allocates from past the
/// header; allocations persist from call to call (`tests/fixtures/services.c`).
#[test]
fn a_module_in_c_allocates_from_its_persistent_region_past_the_header() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/services.c"],
        "libservices.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    let persist = || {
        let out = rt.call(h, "persist", b"").unwrap();
        let word = |i: usize| u64::from_le_bytes(out[8 * i..8 * i + 8].try_into().unwrap());
        (word(0), word(1), word(2))
    };
    let (generation, used, at) = persist();
    assert_ne!(generation, 0);
    assert_eq!((used, at), (0, 64), "the host leaves `used` at 0");
    assert_eq!(persist(), (generation, 80, 80));
    assert_eq!(persist(), (generation, 96, 96));
}

/// A module whose own name holds `@` (built that way: here in C,
/// `tests/fixtures/at_name.c`, named `greeter@^1`) would be found by references meant
/// as a version requirement of another module: it is refused at load, saying why.
#[test]
fn a_module_whose_own_name_holds_an_at_sign_is_refused() {
    let fixture = compile_c(&["runtime/tests/fixtures/at_name.c"], "libat_name.so", true);
    let rt = memlink_runtime::Runtime::with_local_resolver();
    let err = rt
        .load(memlink_runtime::ModuleRef::from_path(&fixture))
        .unwrap_err();
    assert!(
        matches!(err, memlink_runtime::RuntimeError::InvalidModule { .. })
            && err
                .to_string()
                .contains("its name \"greeter@^1\" cannot be used")
            && err.to_string().contains("cannot hold `@`"),
        "{err}"
    );
    // Under a name of the host's choosing it is still refused: its own name is kept too
    // (a versioned reference finds a module by it).
    let err = rt
        .load_as(memlink_runtime::ModuleRef::from_path(&fixture), "fine")
        .unwrap_err();
    assert!(err.to_string().contains("cannot hold `@`"), "{err}");
}

/// A C module's table written in its author's order rather than by id
/// (`tests/fixtures/unsorted_table.c`: `echo`, then `add`) is refused, naming the two
/// methods out of order and their ids, so the author knows which entry to move. Before,
/// the error said only that the table was not sorted.
#[test]
fn a_method_table_out_of_id_order_is_refused_naming_the_methods() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/unsorted_table.c"],
        "libunsorted_table.so",
        true,
    );
    let err = Runtime::with_local_resolver()
        .load(ModuleRef::from_path(&fixture))
        .unwrap_err();
    assert!(
        matches!(err, memlink_runtime::RuntimeError::InvalidModule { .. }),
        "{err}"
    );
    assert!(
        err.to_string().ends_with(
            "method table is not sorted by id: `echo` (0xd49dd484) comes before `add` \
             (0x3b391274); list the methods in ascending order of id"
        ),
        "{err}"
    );
}

/// A module that logs at levels the host did not ask for, or at numbers that are no
/// level (`OFF`, 99), has those records dropped by the host; the records at levels it
/// asked for arrive (`tests/fixtures/log_levels.c`). Before, `OFF` and 99 arrived as
/// TRACE, and records past the host's level reached its sink.
#[test]
fn log_records_at_no_level_or_past_the_hosts_are_dropped() {
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Levels(Mutex<Vec<tracing::Level>>);
    impl memlink_runtime::LogSink for Levels {
        fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
            self.0.lock().unwrap().push(event.level);
        }
    }

    let fixture = compile_c(
        &["runtime/tests/fixtures/log_levels.c"],
        "liblog_levels.so",
        true,
    );
    let sink = Arc::new(Levels::default());
    let config = memlink_runtime::RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = memlink_runtime::Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(memlink_runtime::ModuleRef::from_path(&fixture))
        .unwrap();
    for level in [0u8, 1, 2, 3, 4, 5, 6, 99] {
        rt.call(h, "say", &[level]).unwrap();
    }
    assert_eq!(
        *sink.0.lock().unwrap(),
        [
            tracing::Level::ERROR,
            tracing::Level::WARN,
            tracing::Level::INFO
        ]
    );
}

/// A record logged in a call that names no method and carries no trace (a module written
/// to the ABI alone may leave them out) is delivered with the call's method and trace,
/// as the SDK's records are; one that names them keeps its own
/// (`tests/fixtures/log_levels.c`). Before, such a record reached the sink with an
/// empty method and no trace.
#[test]
fn a_record_that_names_no_method_or_trace_gets_the_calls() {
    use memlink_runtime::CallOptions;
    use std::sync::Arc;

    let fixture = compile_c(
        &["runtime/tests/fixtures/log_levels.c"],
        "liblog_levels.so",
        true,
    );
    let sink = Arc::new(common::records::Collect::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt.load(ModuleRef::from_path(&fixture)).unwrap();
    let traced = CallOptions::default().trace(0xabc, 0xdef);
    // Bare: no method, no trace in the record.
    rt.call_with(h, "say", &[1, 1], &traced).unwrap();
    // Bare, in a call with no trace of its own.
    rt.call(h, "say", &[1, 1]).unwrap();
    // The record's own method and trace (the frame's, 0xabc/0xdef).
    rt.call_with(h, "say", &[1, 0], &traced).unwrap();
    let got: Vec<(String, u64, u64)> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.2.clone(), r.5, r.6))
        .collect();
    assert_eq!(
        got,
        [
            ("say".to_owned(), 0xabc, 0xdef),
            ("say".to_owned(), 0, 0),
            ("say".to_owned(), 0xabc, 0xdef),
        ]
    );
}

/// A record's strings that cannot be read are told apart from text that is not UTF-8:
/// a message that is a null pointer with a length was shown as `<not UTF-8>`.
#[test]
fn a_record_s_unreadable_strings_are_told_as_such() {
    use std::sync::Arc;

    let fixture = compile_c(
        &["runtime/tests/fixtures/log_levels.c"],
        "liblog_levels.so",
        true,
    );
    let sink = Arc::new(Records::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt.load(ModuleRef::from_path(&fixture)).unwrap();
    rt.call(h, "say", &[1, 2]).unwrap();
    let got = sink.0.lock().unwrap();
    let [(_, _, method, message, fields)] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(method, "say");
    assert_eq!(message, "<unreadable: null or too long for its length>");
    assert_eq!(fields, &[("bytes".to_owned(), "<not UTF-8>".to_owned())]);
}

/// During a call, a record above the runtime's level is dropped, and a runtime with no
/// `log_level` takes its level from its `tracing` subscriber: with none (this test
/// binary installs none), a log sink alone receives nothing, whatever the level
/// (docs/abi.md, `log`).
#[test]
fn a_runtime_without_a_log_level_or_a_subscriber_delivers_no_record() {
    use std::sync::Arc;

    let fixture = compile_c(
        &["runtime/tests/fixtures/log_levels.c"],
        "liblog_levels.so",
        true,
    );
    let sink = Arc::new(common::records::Collect::default());
    let config = RuntimeConfig::default().log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt.load(ModuleRef::from_path(&fixture)).unwrap();
    for level in [1u8, 2, 3, 4, 5] {
        rt.call(h, "say", &[level]).unwrap();
    }
    assert!(sink.0.lock().unwrap().is_empty());
    // The same module, with a level set, is heard up to it.
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::ERROR)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt.load(ModuleRef::from_path(&fixture)).unwrap();
    for level in [1u8, 2, 3, 4, 5] {
        rt.call(h, "say", &[level]).unwrap();
    }
    let levels: Vec<_> = sink.0.lock().unwrap().iter().map(|r| r.0).collect();
    assert_eq!(levels, [tracing::Level::ERROR]);
}

/// The host's services may be called from any thread, a module's own included
/// (docs/abi.md, `HostApi`): from a thread it started inside a call, `running_call`
/// answers null, `backpressure` 0 for a null handle, `alloc_output` null for the call's
/// own handle (valid only on the thread running the call), and `log` takes a record of
/// no call; the call then answers as usual (`tests/fixtures/own_thread.c`).
#[test]
fn a_modules_own_thread_may_call_the_hosts_services() {
    let fixture = common::compile_c_with(
        &["runtime/tests/fixtures/own_thread.c"],
        "libown_thread.so",
        true,
        &["-pthread"],
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    for _ in 0..2 {
        assert_eq!(rt.call(h, "from_thread", b"").unwrap(), [1, 1, 1, 1]);
    }
}

/// A result that comes back after the call's deadline is not taken, from a module that
/// does not look at its deadline itself (`tests/fixtures/late.c`): the caller gets the
/// `Timeout` the deadline promised, counted as one, wherever the module put its result,
/// and the module serves on. Before, a module in C that finished late had its result
/// taken: only the Rust SDK's own check made a late result `Timeout`.
#[test]
fn a_result_after_the_deadline_is_a_timeout_whatever_the_module() {
    use memlink_runtime::CallOptions;
    let fixture = compile_c(&["runtime/tests/fixtures/late.c"], "liblate.so", true);
    let given = Duration::from_millis(5);
    for config in plain_and_intercepted() {
        let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
        let h = rt.load(ModuleRef::from_path(fixture.clone())).unwrap();
        // In the frame, in the arena, in a buffer from `alloc_output`.
        for place in 0..3u8 {
            // A deadline is a moment: options made for each call.
            let hurried = CallOptions::default().timeout(given);
            match rt.call_with(h, "nap", &[40, place], &hurried) {
                Err(e) => assert!(
                    matches!(e.module_error(), Some(ModuleError::Timeout(d)) if *d <= given),
                    "place {place}: {e}"
                ),
                Ok(out) => panic!("place {place}: a late result was taken: {out:?}"),
            }
            // In time, or with no deadline, the result is taken.
            let patient = CallOptions::default().timeout(Duration::from_secs(600));
            let out = rt.call_with(h, "nap", &[0, place], &patient).unwrap();
            assert_eq!(out, &b"rested"[..], "place {place}");
            assert_eq!(rt.call(h, "nap", &[1, place]).unwrap(), &b"rested"[..]);
        }
        let all = rt.metrics();
        let nap = &all[0].methods[0];
        assert_eq!((nap.calls, nap.errors_of("timeout")), (9, 3));
    }
}

/// A module in C may report a histogram whose buckets add up past `u64::MAX`
/// (`tests/fixtures/full_histogram.c`: u64::MAX observations in one bucket, one in the
/// next). The exposition added them up unchecked: the host panicked in `prometheus()`
/// (an overflow, in a build that checks), or wrapped and wrote buckets that fall, which
/// no scraper takes. The cumulative counts now stop at `u64::MAX`: they never fall, and
/// the exposition passes `promtool`.
#[test]
fn a_histogram_whose_buckets_overflow_is_exposed_saturated() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/full_histogram.c"],
        "libfull_histogram.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    rt.call(h, "noop", b"").unwrap();
    let text = rt.prometheus();
    common::promtool::promtool_accepts(&text);
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("memlink_module_c_full_bucket"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), memlink_abi::BUCKETS.len() + 1, "{text}");
    assert!(counts.iter().all(|&n| n == u64::MAX), "{counts:?}");
    // The host keeps serving.
    rt.call(h, "noop", b"").unwrap();
}

/// A module in C keeps the host's handle of a call (`frame.host_call`) past that call,
/// on a thread that has ended since, and passes it to every service of the host in a
/// later call (`tests/fixtures/kept_handle.c`). The host took any handle that was not
/// null for a live call and read the call through it: memory of a stack that was gone
/// (output recorded there, a record sent to that call's sink, a nested call made for
/// it). Now a handle that is not one of the calls its thread runs is refused as a null
/// one is: no output buffer, no sink, a nested call refused as `Abi`, saying why.
#[test]
fn a_call_handle_kept_past_its_call_is_refused_by_every_service() {
    // In a child process: before, reading the ended call could crash the process.
    common::in_child(
        "a_call_handle_kept_past_its_call_is_refused_by_every_service",
        &[],
        || {
            let fixture = compile_c(
                &["runtime/tests/fixtures/kept_handle.c"],
                "libkept_handle.so",
                true,
            );
            let records = std::sync::Arc::new(Records::default());
            let config = RuntimeConfig::default()
                .log_level(tracing::Level::INFO)
                .log_sink(records.clone());
            let rt = std::sync::Arc::new(Runtime::new(
                config,
                memlink_runtime::resolver::LocalResolver,
            ));
            let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
            let keeper = rt.clone();
            std::thread::spawn(move || keeper.call(h, "keep", b"").unwrap())
                .join()
                .unwrap();
            let refused = |out: memlink_runtime::CallOutput| {
                let (alloc, status, sink_calls) = (out[0], out[1], out[2]);
                let payload = String::from_utf8_lossy(&out[3..]);
                assert_eq!(alloc, 0, "alloc_output gave a buffer for an ended call");
                assert_eq!(status, memlink_abi::Status::Abi as u8, "{payload}");
                assert_eq!(sink_calls, 1);
                assert!(
                    payload.contains("not a call running on this thread"),
                    "{payload}"
                );
                let got = records.0.lock().unwrap();
                assert!(
                    got.iter().all(|r| r.3 != "kept"),
                    "a record reached the sink of a call that ended: {got:?}"
                );
            };
            refused(rt.call(h, "use_kept", b"").unwrap());
            // The host keeps serving.
            rt.call(h, "keep", b"").unwrap();
            // Kept on this thread, by a call made from the same place as the one that
            // uses it: the two calls' host records share an address on the stack. Taken
            // by that address, the handle was the running call's, and every service
            // acted for it.
            refused(rt.call(h, "use_kept", b"").unwrap());
            rt.call(h, "keep", b"").unwrap();
        },
    );
}

/// A module that keeps its outermost call's handle in a thread-local and passes it to
/// the host while the calls it led to run (`tests/fixtures/outer_handle.c`). Before, the
/// host made a nested call for the call the handle named: each started at that call's
/// depth + 1, so a module calling itself that way never reached the depth limit and
/// overflowed the host thread's stack, killing the process; and `alloc_output` replaced
/// the outer call's buffer, freeing memory its module still held. Now the nested call is
/// made for the innermost call and the depth limit ends the loop, and an outer call's
/// handle gets no buffer.
#[test]
fn an_outer_calls_handle_acts_for_the_innermost_call() {
    // In a child process: before, the loop overflowed the stack and the process died.
    common::in_child(
        "an_outer_calls_handle_acts_for_the_innermost_call",
        &[],
        || {
            let fixture = compile_c(
                &["runtime/tests/fixtures/outer_handle.c"],
                "libouter_handle.so",
                true,
            );
            let rt = Runtime::with_local_resolver();
            let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
            let err = rt.call(h, "loop_outer", b"").unwrap_err();
            assert_eq!(
                err.module_error(),
                Some(&ModuleError::MaxCallDepthExceeded),
                "{err}"
            );
            // Its own call's buffer for the outer call, none for its handle from inside
            // the nested call.
            assert_eq!(rt.call(h, "alloc_outer", b"").unwrap(), [1, 0]);
            // The host keeps serving.
            assert_eq!(rt.call(h, "alloc_outer", b"").unwrap(), [1, 0]);
        },
    );
}

/// A module whose `memlink_metrics` keeps the host's `visit` and `ctx` and calls them from
/// a call (`tests/fixtures/kept_visit.c`): on another thread while the read they belong
/// to waits, and after that read returned. Before, the host wrote the record through
/// `ctx` wherever it pointed: into a read running on another thread (a data race, the
/// record showing up in that read's figures) or into the stack of a read that had
/// returned. Now a record given with any `ctx` but the one of the read running on its
/// thread is dropped.
#[test]
fn a_metrics_visitor_kept_past_its_read_writes_nothing() {
    use memlink_runtime::MetricValue;
    // In a child process: before, a write into a returned read's stack could crash it.
    common::in_child(
        "a_metrics_visitor_kept_past_its_read_writes_nothing",
        &[],
        || {
            let fixture = compile_c(
                &["runtime/tests/fixtures/kept_visit.c"],
                "libkept_visit.so",
                true,
            );
            let rt = Runtime::with_local_resolver();
            let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
            let custom = |rt: &Runtime| {
                rt.metrics()
                    .into_iter()
                    .find(|m| m.module == "kept_visit")
                    .unwrap()
                    .custom
            };
            assert_eq!(rt.call(h, "replay", b"a").unwrap(), [0]);
            let waiting_read = std::thread::scope(|s| {
                let read = s.spawn(|| custom(&rt));
                // Up to 10 s in steps of 1 ms for the read to reach its wait.
                for _ in 0..10_000 {
                    if rt.call(h, "replay", b"w").unwrap() == [1] {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert_eq!(rt.call(h, "replay", b"w").unwrap(), [1], "no read waits");
                // The visitor of the read waiting on the other thread, from this one.
                assert_eq!(rt.call(h, "replay", b"r").unwrap(), [1]);
                read.join().unwrap()
            });
            assert_eq!(
                waiting_read,
                [("reads".to_owned(), MetricValue::Counter(1))]
            );
            // The visitor of a read that returned, on the thread that made it.
            assert_eq!(custom(&rt), [("reads".to_owned(), MetricValue::Counter(2))]);
            assert_eq!(rt.call(h, "replay", b"r").unwrap(), [1]);
            assert_eq!(custom(&rt), [("reads".to_owned(), MetricValue::Counter(3))]);
        },
    );
}

/// examples/c/host.c serves one module, so every nested call gets `ModuleNotFound`; as
/// memlink.h says of a host's reason, its payload (the module's name) goes to the sink,
/// as the runtime sends it (`tests/fixtures/nested_echo.c` fails with what it got).
/// Before, the example returned the status and never called the sink.
#[test]
fn the_c_host_hands_a_nested_calls_module_name_to_its_sink() {
    let host = compile_c(&["examples/c/host.c"], "memlink_c_host", false);
    let module = compile_c(
        &["runtime/tests/fixtures/nested_echo.c"],
        "libnested_echo.so",
        true,
    );
    let out = Command::new(&host).arg(&module).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let not_found = memlink_abi::Status::ModuleNotFound as i32;
    assert_eq!(
        &lines[1..],
        [
            format!("echo failed with status 10: status {not_found}: absent").as_str(),
            "add = 5"
        ],
        "{stdout}"
    );
    // The runtime, for the same module.
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(module)).unwrap();
    let err = rt.call(h, "echo", b"hello").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::Failed(format!("status {not_found}: absent")))
    );
}

/// A module whose nested call's sink makes the next nested call, whatever it was given
/// (`tests/fixtures/sink_pager.c`, a pager fetching the next page from the callback that
/// got the last one). Before, the sink ran with its caller as the innermost call, so
/// each call was one level below it however many the sinks had stacked on the host's
/// stack, and the host thread's stack overflowed (the process aborted). Now a call made
/// from a sink is one level deeper than the call whose output the sink is given: the
/// depth limit ends the run, and a call made from the sink given that refusal is
/// refused with nothing given to its sink.
#[test]
fn a_sink_that_calls_again_meets_the_depth_limit() {
    // In a child process: before, the stack overflowed and the process died.
    common::in_child("a_sink_that_calls_again_meets_the_depth_limit", &[], || {
        let fixture = compile_c(
            &["runtime/tests/fixtures/sink_pager.c"],
            "libsink_pager.so",
            true,
        );
        let rt = Runtime::with_local_resolver();
        let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
        let pager = |pages: u32| {
            let out = rt.call(h, "pager", &pages.to_le_bytes()).unwrap().to_vec();
            (u32::from_le_bytes(out[..4].try_into().unwrap()), out[4])
        };
        // Within the limit (8): every page fetched, each sink called once.
        assert_eq!(pager(3), (3, 0));
        // Past it: the calls at depths 1 to 8 are made, the ninth is refused and its
        // sink given the refusal; the call that sink makes is refused unseen.
        let refused = memlink_abi::Status::MaxCallDepthExceeded as u8;
        assert_eq!(pager(1_000_000), (9, refused));
        assert_eq!(pager(2), (2, 0), "the module keeps serving");
    });
}
