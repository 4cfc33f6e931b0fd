//! What a C author meets who writes a module from `include/memlink.h` and `docs/abi.md`
//! alone: each fixture is built by the system C compiler and loaded by the runtime.

mod common;

use common::compile_c;
use memlink_runtime::{ModuleError, ModuleRef, Runtime};

/// Why the module at `fixture` does not load.
fn load_error(fixture: std::path::PathBuf) -> String {
    Runtime::with_local_resolver()
        .load(ModuleRef::from_path(fixture))
        .unwrap_err()
        .to_string()
}

/// `CallFrame::out` may point "into" a buffer from `alloc_output`, as into the arena
/// (memlink.h, docs/abi.md): a result or an error's message that starts past the
/// buffer's start, behind a header the module keeps there, is read where it lies, by a
/// caller and by a nested call's sink. Before, only a result at the buffer's very start
/// was taken, and anything else was refused as lying "outside the output buffer".
#[test]
fn an_output_past_the_start_of_the_hosts_buffer_is_read_there() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/buffer_offset.c"],
        "libbuffer_offset.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    // Short and long results alike (the runtime copies results of up to 32 bytes).
    let long = [b'x'; 100];
    for text in [&b"short"[..], &long[..]] {
        assert_eq!(rt.call(h, "after_header", text).unwrap(), text);
    }
    let err = rt.call(h, "fail_after_header", b"the reason").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::Failed("the reason".into()))
    );
    // Through a nested call: the sink gets the result, or the error's message.
    let ok = memlink_abi::Status::Ok as u8;
    let failed = memlink_abi::Status::Failed as u8;
    assert_eq!(
        &rt.call(h, "relay", b"after_header").unwrap()[..],
        &[&[ok][..], b"nested"].concat()[..]
    );
    assert_eq!(
        &rt.call(h, "relay", b"fail_after_header").unwrap()[..],
        &[&[failed][..], b"nested"].concat()[..]
    );
}

/// A method table is written by hand in C, and a load refused for one of its strings
/// says which row to fix: its place in the table for a name that cannot be read, else
/// the method's name and the field. Before, the message said "a signature is not
/// UTF-8" (or "an archive type name", "a method name") of a table of any length.
#[test]
fn a_table_row_that_cannot_be_read_is_refused_naming_it() {
    for (bad, expected) in [
        (1, "the name of method 1 of the table is not UTF-8"),
        (2, "method `echo`: its signature is not UTF-8"),
        (3, "method `echo`: its args_type is not UTF-8"),
        (
            4,
            "method 1 of the table has no name (its name is empty or null)",
        ),
        (
            5,
            "method 1 of the table: its name \"echo\\0\" holds a control character (in C, a \
             length that counts the terminating NUL?)",
        ),
    ] {
        let fixture = common::compile_c_with(
            &["runtime/tests/fixtures/bad_row.c"],
            &format!("libbad_row_{bad}.so"),
            true,
            &[&format!("-DBAD={bad}")],
        );
        let err = load_error(fixture);
        assert!(err.contains(expected), "BAD={bad}: {err}");
    }
}

/// A module in C built against another version's memlink.h is refused with what to
/// rebuild it against in C too. Before, the message named only memlink-msdk, which a C
/// module does not use.
#[test]
fn a_module_in_c_for_another_abi_version_is_told_to_rebuild_against_the_header() {
    let fixture = compile_c(&["runtime/tests/fixtures/old_abi.c"], "libold_abi.so", true);
    let err = load_error(fixture);
    let version = memlink_abi::ABI_VERSION;
    assert!(
        err.contains(&format!(
            "was built for memlink ABI {}, this runtime speaks ABI {version}",
            version - 1
        )) && err.contains("include/memlink.h"),
        "{err}"
    );
    // An older module: rebuilding it is the way; a runtime of its version is not offered.
    assert!(!err.contains("or run it with"), "{err}");
}

/// A module in C that uses a function nothing defines (built without the library that
/// has it: a shared library links so by default) is refused at load, naming the symbol,
/// and the runtime loads and calls a module after it (`tests/fixtures/undefined_symbol.c`).
/// Before, it loaded (symbols were bound at their first use), and the first call that
/// reached the function ended the host with the loader's "symbol lookup error".
#[test]
fn a_module_in_c_using_a_symbol_nothing_defines_is_refused_at_load() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/undefined_symbol.c"],
        "libundefined_symbol.so",
        true,
    );
    let err = load_error(fixture);
    assert!(
        err.contains("missing_helper") && err.contains("undefined symbol"),
        "{err}"
    );
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load(ModuleRef::from_path(compile_c(
            &["runtime/tests/fixtures/empty_result.c"],
            "libempty_result.so",
            true,
        )))
        .unwrap();
    rt.call(h, "nothing", &[0xc0]).unwrap();
}

/// A health check that breaks the ABI (a status no module may return) makes the module
/// `Failing`, as a check that panics does, naming what was wrong
/// (`tests/fixtures/health_abi.c`). Before, it was `Live`, as a check that returns an
/// ordinary error is.
#[test]
fn a_health_check_that_breaks_the_abi_is_failing() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/health_abi.c"],
        "libhealth_abi.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    match rt.health(h).unwrap() {
        memlink_runtime::health::Health::Failing { reason } => {
            assert!(reason.contains("unknown status code 99"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// An entry point that is data (`const uint32_t memlink_abi_version = 6;`) is refused
/// at load, naming it, and the runtime loads and calls a module after it
/// (`tests/fixtures/data_symbol.c`). Before, the host called into the constant and died
/// of `SIGSEGV`.
#[test]
fn an_entry_point_that_is_data_is_refused_not_called() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/data_symbol.c"],
        "libdata_symbol.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let err = rt
        .load(ModuleRef::from_path(fixture))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "is not a valid memlink module: its `memlink_abi_version` is data, not a \
             function (in C, define it as the function include/memlink.h declares)"
        ),
        "{err}"
    );
    let echo = compile_c(
        &["runtime/tests/fixtures/msgpack_echo.c"],
        "libmsgpack_echo.so",
        true,
    );
    let h = rt.load(ModuleRef::from_path(echo)).unwrap();
    assert!(rt.call(h, "echo", &[0xc0]).is_ok());
}

/// `ModuleInfo::abi_version` is "the module's ABI_VERSION" (memlink.h): a description
/// that says another version than `memlink_abi_version` did is refused, naming both.
/// Before, the field was never read, and such a module loaded.
#[test]
fn a_description_of_another_abi_version_is_refused() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/info_version.c"],
        "libinfo_version.so",
        true,
    );
    let err = load_error(fixture);
    let version = memlink_abi::ABI_VERSION;
    assert!(
        err.contains(&format!(
            "module info has abi_version {}, expected {version}",
            version - 1
        )),
        "{err}"
    );
}

/// `MEMLINK_STATUS_FAILED` is shown as its message alone: one returned with no payload
/// still says that the module failed. Before, it was shown as nothing at all
/// (`silent_failure::fail failed: `).
#[test]
fn a_failure_without_a_message_says_so() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/silent_failure.c"],
        "libsilent_failure.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    let err = rt.call(h, "fail", b"").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::Failed(String::new()))
    );
    assert!(
        err.to_string()
            .ends_with("fail failed: the module failed and gave no message"),
        "{err}"
    );
}

/// A `memlink_init` that refuses without a readable message is reported with its
/// status's name and why no message was read. Before, the error was `status 6` alone,
/// a number to look up in the header, the same for an empty message and one that is
/// not UTF-8.
#[test]
fn an_init_refused_without_a_message_names_its_status() {
    for (flags, why) in [
        (&[][..], "no message in InitFrame::error"),
        (&["-DNOT_UTF8"][..], "InitFrame::error is not UTF-8"),
    ] {
        let out = format!("libinit_silent{}.so", flags.len());
        let fixture =
            common::compile_c_with(&["runtime/tests/fixtures/init_silent.c"], &out, true, flags);
        let err = load_error(fixture);
        let expected = format!(
            "module `init_silent` failed to initialize: status 6 (ServiceUnavailable), {why}"
        );
        assert!(err.starts_with(&expected), "{err}");
    }
}

/// A method table that says a method exchanges an archive names the archive's type by
/// its fingerprint, and one that names a type exchanges an archive (docs/abi.md, the
/// header's `MethodInfo`): a row that breaks either is refused at load, naming the
/// method and the field. Before, such a module loaded, and a typed handle for the
/// method said its arguments "are archived, which this handle does not speak: call it
/// through `Runtime::typed`", which refuses archives; or took archives for MessagePack.
#[test]
fn an_archive_without_its_type_or_a_type_without_an_archive_is_refused() {
    let format = memlink_abi::archive::format();
    for (bad, expected) in [
        (1, "method `sum` takes archived arguments but gives their type no fingerprint (args_fingerprint is 0)"),
        (2, "method `sum` returns an archive but gives its type no fingerprint (result_fingerprint is 0)"),
        (3, "method `sum` has args_fingerprint 0x1234, but its arguments are msgpack, not archived: set it to 0"),
    ] {
        let fixture = common::compile_c_with(
            &["runtime/tests/fixtures/untyped_archive.c"],
            &format!("libuntyped_archive_{bad}.so"),
            true,
            &[&format!("-DBAD={bad}"), &format!("-DRKYV_FORMAT={format}u")],
        );
        let err = load_error(fixture);
        assert!(err.ends_with(expected), "BAD={bad}: {err}");
    }
}

/// An archived result a module put off a 16-byte boundary is refused saying that the
/// module must align it (before: the advice was a host's for its arguments, "let the
/// runtime place it (typed archived calls do), or copy it into an
/// rkyv::util::AlignedVec", neither of which a host can do for a module's result).
#[test]
fn a_misaligned_archived_result_is_refused_saying_the_module_must_align_it() {
    let fixture = common::compile_c_with(
        &["runtime/tests/fixtures/misaligned_archive.c"],
        "libmisaligned_archive.so",
        true,
        &[
            &format!("-DRKYV_FORMAT={}u", memlink_abi::archive::format()),
            &format!(
                "-DFINGERPRINT={}ull",
                memlink_abi::archive::fingerprint::<u32>()
            ),
        ],
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    let seven = rt
        .typed::<(), memlink_runtime::Rkyv<u32>>(h, "seven")
        .unwrap();
    let err = seven.call(&()).unwrap_err().to_string();
    assert!(
        err.contains("the archive starts 4 bytes past a 16-byte boundary")
            && err.contains("a module returns its archive on one")
            && !err.contains("let the runtime place it"),
        "{err}"
    );
}

/// A C module's table of its methods' own entry points is `const`, as its method table
/// is: memlink.h types `method_calls` as `const MemlinkMethodCall *`, so the array
/// converts without a cast and the module loads and answers through it. Before, the
/// field was `int32_t (**)(MemlinkCallFrame *)`, and a `const` array of entry points
/// was refused under -Werror (a discarded qualifier).
#[test]
fn a_const_table_of_own_entry_points_builds_and_answers() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/const_calls.c"],
        "libconst_calls.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    assert_eq!(
        rt.call(h, "echo", b"from a const table").unwrap(),
        b"from a const table"
    );
}

/// The host's services tell a call handle by the running calls the host keeps beside
/// their frames, never by the frame's `host_call`, which the module can write: a module
/// that writes over that input (null, or an address no call has) while it asks
/// `alloc_output` with the value it kept gets its buffer, and the host neither refuses
/// the handle nor follows the address (`tests/fixtures/scribbled_frame.c`). Before,
/// null had the handle refused and an address crashed the host. Nor does it read the
/// frame's `method_index` while the module runs: a record that names no method, logged
/// while the frame names another, is named after the method called (before, the host
/// read the index from the frame, and such a record was named after the other method,
/// or after none).
#[test]
fn a_module_that_writes_over_its_frames_inputs_still_gets_its_services() {
    use memlink_runtime::{resolver::LocalResolver, LogEvent, LogSink, RuntimeConfig};
    struct Methods(std::sync::Mutex<Vec<String>>);
    impl LogSink for Methods {
        fn record(&self, e: &LogEvent<'_>) {
            self.0.lock().unwrap().push(e.method.to_owned());
        }
    }
    let fixture = compile_c(
        &["runtime/tests/fixtures/scribbled_frame.c"],
        "libscribbled_frame.so",
        true,
    );
    let sink = std::sync::Arc::new(Methods(Default::default()));
    let config = RuntimeConfig::default()
        .log_sink(sink.clone())
        .log_level(tracing::Level::INFO);
    let rt = Runtime::new(config, LocalResolver);
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    // Request [0]: null written over `host_call`; [1], an address; [2], `method_index`.
    assert_eq!(rt.call(h, "scribble", &[0]).unwrap(), b"hello");
    assert_eq!(rt.call(h, "scribble", &[1]).unwrap(), b"hello");
    assert_eq!(rt.call(h, "scribble", &[2]).unwrap(), b"hello");
    assert_eq!(*sink.0.lock().unwrap(), ["scribble"]);
}

/// `tests/fixtures/careless.c`, built and loaded in a runtime of its own.
fn careless() -> (Runtime, memlink_runtime::ModuleHandle) {
    let fixture = compile_c(
        &["runtime/tests/fixtures/careless.c"],
        "libcareless.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    (rt, h)
}

/// What a careless C author's exports do (`tests/fixtures/careless.c`), each breaking one
/// rule of docs/abi.md, fails that call with an ABI error saying what was wrong: a status
/// outside the enum (named), a `Timeout` with a payload of another length, an output at
/// the arguments, in the module's own memory, null with a length or `SIZE_MAX` bytes
/// long, a result or an error's payload alike. The host's services, given null or
/// garbage handles and requests, answer null, `Abi` or 0 without reading through them;
/// and the module serves on between each.
#[test]
fn a_careless_modules_broken_calls_fail_saying_why_and_it_serves_on() {
    let (rt, h) = careless();
    let abi_error = |method: &str, args: &[u8]| -> String {
        match rt.call(h, method, args) {
            Err(e) => match e.module_error() {
                Some(ModuleError::Abi(m)) => m.clone(),
                _ => panic!("{method} {args:?}: {e}"),
            },
            Ok(out) => panic!("{method} {args:?} answered {:?}", &out[..]),
        }
    };
    let serving = || assert_eq!(rt.call(h, "echo", b"still here").unwrap(), b"still here");
    for code in [42, -1, i32::MAX, i32::MIN] {
        let m = abi_error("bad_status", &code.to_le_bytes());
        assert_eq!(m, format!("unknown status code {code}"));
        serving();
    }
    let m = abi_error("bad_status", &3i32.to_le_bytes());
    assert_eq!(m, "timeout payload is 2 bytes, expected 8");
    let outside = |len: usize| {
        format!("the module reported {len} output bytes outside the places an output may lie")
    };
    for (method, args, len) in [
        ("out_at_args", &b"hi"[..], 2),
        ("out_at_args", &[7; 100][..], 100),
        ("wild_out", &[0], 39),
        ("wild_out", &[0, 10], 39),
        ("wild_out", &[1], 5),
        ("wild_out", &[1, 10], 5),
        ("huge_out", &[0], usize::MAX),
        ("huge_out", &[1], usize::MAX),
    ] {
        let m = abi_error(method, args);
        assert!(m.starts_with(&outside(len)), "{method} {args:?}: {m}");
        // An error's payload out of place names the status it came with.
        let failed = match method {
            "wild_out" => args.len() > 1,
            "huge_out" => args == [1],
            _ => false,
        };
        assert_eq!(
            m.ends_with("(the payload of the status it returned, Failed 10)"),
            failed,
            "{method} {args:?}: {m}"
        );
        serving();
    }
    // Named by its code whatever its payload: an empty `Timeout` payload is itself an
    // `Abi` error (too short), and the status was named `Abi 3`.
    for args in [&[0, 3], &[1, 3]] {
        let m = abi_error("wild_out", args);
        assert!(
            m.ends_with("(the payload of the status it returned, Timeout 3)"),
            "{args:?}: {m}"
        );
        serving();
    }
    // A status whose payload is empty ignores the output fields, as docs/abi.md says:
    // the module's own status, not an output out of place. Before, both were `Abi`.
    for (args, error) in [
        (&[1, 1], ModuleError::QuotaExceeded),
        (&[0, 6], ModuleError::ServiceUnavailable),
    ] {
        let err = rt.call(h, "wild_out", args).unwrap_err();
        assert_eq!(err.module_error(), Some(&error), "{args:?}: {err}");
        serving();
    }
    assert_eq!(rt.call(h, "huge_used", b"abc").unwrap(), b"abc");
    let abi = memlink_abi::Status::Abi as u8;
    assert_eq!(
        rt.call(h, "host_garbage", b"").unwrap(),
        [
            // alloc_output: null and garbage handles, SIZE_MAX, past isize::MAX.
            1, 1, 1, 1,
            // call_module: a null request, one of size 0 (the status alone), then
            // a null handle, a garbage one, a null module name with a length, null
            // arguments with a length (Abi, and the message to the sink once).
            abi, abi, abi, 1, abi, 1, abi, 1, abi, 1,
            // backpressure: null and garbage handles; log: returned each time.
            1, 1, 1, 1, 1,
        ]
    );
    serving();
}

/// A module's `arena_used` past the arena it was given (`SIZE_MAX` from `huge_used` in
/// `tests/fixtures/careless.c`) is taken as the whole arena for the method's high-water
/// mark. Before, the mark stayed at 2^64 - 1 bytes for the life of the runtime.
#[test]
fn a_modules_arena_used_past_its_arena_does_not_become_the_high_water_mark() {
    let (rt, h) = careless();
    assert_eq!(rt.call(h, "huge_used", b"abc").unwrap(), b"abc");
    let figures = common::figures_of(&rt, "huge_used");
    let arena = memlink_runtime::RuntimeConfig::default().arena_size as u64;
    assert!(
        figures.arena_high_water <= arena,
        "{} bytes",
        figures.arena_high_water
    );
}

/// An output at the arguments is refused whether they are lent (docs/abi.md: "never ...
/// at the arguments") or came in an `ArgBuffer` handed to the call, which lies in the
/// call's buffer ahead of the arena (`out_at_args` in `tests/fixtures/careless.c`):
/// the host looks for an output in the arena it gave. Before, the second was read as
/// the result.
#[test]
fn an_output_at_arguments_handed_over_in_a_buffer_is_refused_as_lent_ones_are() {
    let (rt, h) = careless();
    let method = rt.method(h, "out_at_args").unwrap();
    let options = memlink_runtime::CallOptions::default();
    let mut lent = rt.arg_buffer(100);
    lent[..100].fill(7);
    let err = rt.call_method(method, &lent, &options).unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Abi(_))),
        "{err}"
    );
    let mut owned = rt.arg_buffer(100);
    owned[..100].fill(7);
    let err = rt.call_method(method, owned, &options).unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Abi(_))),
        "{err}"
    );
}

/// The checks docs/abi.md lists for a description that no other test makes on a module in
/// C: a table counted but null, and archives in another rkyv format than the runtime's
/// (`misaligned_archive.c` built with the big-endian bit flipped), each refused saying so.
#[test]
fn a_null_table_or_another_rkyv_format_is_refused_at_load() {
    let null_table = compile_c(
        &["runtime/tests/fixtures/null_table.c"],
        "libnull_table.so",
        true,
    );
    let err = load_error(null_table);
    assert!(err.contains("method table is null"), "{err}");
    let other_format = memlink_abi::archive::format() ^ 0x100;
    let fixture = common::compile_c_with(
        &["runtime/tests/fixtures/misaligned_archive.c"],
        "libother_rkyv_format.so",
        true,
        &[
            &format!("-DRKYV_FORMAT={other_format}u"),
            &format!(
                "-DFINGERPRINT={}ull",
                memlink_abi::archive::fingerprint::<u32>()
            ),
        ],
    );
    let err = load_error(fixture);
    assert!(
        err.contains("its archives use rkyv with") && err.contains("must match on both sides"),
        "{err}"
    );
}

/// A module's failure whose message is larger than the daemon call's slot still reaches
/// the caller as that module's failure, its message cut to fit and saying so, and the
/// daemon serves on. Before, the caller got "the failure's text does not fit in the
/// slot", which named neither the module nor its status.
#[test]
fn a_failure_longer_than_a_daemon_calls_slot_arrives_cut_to_fit() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/long_failure.c"],
        "liblong_failure.so",
        true,
    );
    let dir = common::scratch("long-failure");
    let socket = dir.join("memlink.sock");
    let (daemon, seen) = common::cli::serve_all(&socket, &[fixture.as_os_str()]);
    let socket = socket.to_str().unwrap();
    let fail = |len: &str| {
        common::cli::memlink(&["call", "--daemon", socket, "long_failure", "fail", len])
    };
    // Two MiB of message, past the call's slot of one.
    let out = fail("2000000");
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}\n{seen}");
    assert!(
        err.starts_with("error: long_failure::fail failed: why:xxx")
            && err.contains("bytes of the message did not fit"),
        "{}",
        &err[..err.len().min(300)]
    );
    let out = fail("10");
    assert_eq!(
        common::stderr(&out).trim_end(),
        "error: long_failure::fail failed: why:xxxxxx"
    );
    common::cli::stop(daemon);
}

/// A module in C has no crate to take its version from, and one written as "1.0" is no
/// semver version, which no requirement admits: `memlink call --with` of it for a
/// module that calls `greeter@^1` says that, not that `^1` does not admit 1.0 (which it
/// would, as 1.0.0). Before, the message said only the latter.
#[test]
fn a_version_that_is_no_semver_version_is_named_so_when_a_call_passes_it_by() {
    let greeter = common::compile_c_with(
        &["runtime/tests/fixtures/versioned.c"],
        "libversioned_greeter_1_0.so",
        true,
        &["-DMODULE_NAME=\"greeter\"", "-DMODULE_VERSION=\"1.0\""],
    );
    let caller = common::compile_c_with(
        &["runtime/tests/fixtures/bad_dependency.c"],
        "libbad_dependency_greeter_1.so",
        true,
        &["-DDEPENDENCY=\"greeter@^1\""],
    );
    let out = common::cli::memlink(&[
        "call",
        caller.to_str().unwrap(),
        "memlink_dependencies",
        "--with",
        greeter.to_str().unwrap(),
    ]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("calls `greeter@^1`")
            && err.contains("`greeter` 1.0 is loaded, which is no semver version")
            && !err.contains("does not admit"),
        "{err}"
    );
}

/// A MessagePack result of no bytes (a C module that writes nothing for "returns
/// nothing") is refused saying it is empty and what nothing is in MessagePack, by the
/// CLI and by a typed call. Before: "cannot decode MessagePack: IO error while reading
/// marker: failed to fill whole buffer".
#[test]
fn an_empty_messagepack_result_is_refused_saying_it_is_empty() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/empty_result.c"],
        "libempty_result.so",
        true,
    );
    let expected = "no bytes, which hold no MessagePack value (nothing, `()`, is nil: 0xc0)";
    let out = common::cli::memlink(&["call", fixture.to_str().unwrap(), "nothing"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(expected), "{err}");
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    let err = rt.call_typed::<(), ()>(h, "nothing", &()).unwrap_err();
    assert!(err.to_string().contains(expected), "{err}");
}

/// A C module that points `out` into `small_out` but not at its first byte, or puts an
/// error's message there, is told what the ABI asks instead: a result there starts at
/// the field's first byte, and only a result (status OK) goes there. Before, both got
/// "the module reported N output bytes outside the arena and the output buffer (the
/// frame's small_out holds only a result of at most 16 bytes)", which for 4 bytes of a
/// result names a limit they are within.
#[test]
fn an_output_in_small_out_that_the_abi_refuses_is_told_why() {
    let fixture = compile_c(
        &["runtime/tests/fixtures/small_out.c"],
        "libsmall_out.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(fixture)).unwrap();
    let ok = memlink_abi::Status::Ok as u8;
    let err = rt.call(h, "put", &[ok, 4, 1]).unwrap_err().to_string();
    assert!(err.contains("first byte"), "{err}");
    let failed = memlink_abi::Status::Failed as u8;
    let err = rt.call(h, "put", &[failed, 5]).unwrap_err().to_string();
    assert!(err.contains("status OK"), "{err}");
}

/// A module whose `memlink_shutdown` fails (a C module that could not flush what it
/// kept) is retired all the same, and the failure is told: `memlink call`, which shows
/// warnings, names the module and the status. Before, the status was dropped unread.
#[test]
fn a_failed_shutdown_is_told() {
    let fixture = common::compile_c_with(
        &["runtime/tests/fixtures/versioned.c"],
        "libversioned_shutdown_fails.so",
        true,
        &[
            "-DMODULE_NAME=\"shutdown_fails\"",
            "-DMODULE_VERSION=\"1.0.0\"",
            "-DFIXTURE_SHUTDOWN_STATUS=MEMLINK_STATUS_FAILED",
        ],
    );
    let out = common::cli::memlink(&["call", fixture.to_str().unwrap(), "version"]);
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(out.stdout, b"1.0.0");
    assert!(
        err.contains("memlink_shutdown failed with status 10 (Failed)")
            && err.contains("shutdown_fails"),
        "{err}"
    );
}

/// A version written in C with a length that counts its terminating NUL (or holding any
/// other control character) is refused at load, saying so, as such a name is. Before, it
/// loaded: "1.0.0\0" is no semver version, so no requirement (`name@^1`) admitted it,
/// and `memlink inspect` printed the NUL (or a terminal's escape sequence) as it was.
#[test]
fn a_version_holding_a_control_character_is_refused_at_load() {
    for (tag, version) in [("nul", "1.0.0\\0"), ("escape", "1.0.0\\x1b[2J")] {
        let fixture = common::compile_c_with(
            &["runtime/tests/fixtures/versioned.c"],
            &format!("libversioned_control_{tag}.so"),
            true,
            &[
                "-DMODULE_NAME=\"greeter\"",
                &format!("-DMODULE_VERSION=\"{version}\""),
            ],
        );
        let err = load_error(fixture.clone());
        assert!(
            err.contains("its version") && err.contains("holds a control character"),
            "{tag}: {err}"
        );
        let out = common::cli::memlink(&["inspect", fixture.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{tag}");
        assert!(
            common::stderr(&out).contains("holds a control character"),
            "{tag}"
        );
    }
}

/// A method signature holding a control character (a NUL its length counted, a newline,
/// a terminal's escape) is refused at load, as such a version is. Before, it loaded, and
/// `memlink inspect` printed it as it was: a NUL, a line of its own, or the escape.
#[test]
fn a_signature_holding_a_control_character_is_refused_at_load() {
    for (tag, signature) in [
        ("nul", "version() -> bytes\\0"),
        ("newline", "version() -> bytes\\nforged line"),
        ("escape", "version() -> bytes\\x1b[2J"),
    ] {
        let fixture = common::compile_c_with(
            &["runtime/tests/fixtures/versioned.c"],
            &format!("libversioned_signature_{tag}.so"),
            true,
            &[
                "-DMODULE_NAME=\"greeter\"",
                "-DMODULE_VERSION=\"1.0.0\"",
                &format!("-DSIGNATURE=\"{signature}\""),
            ],
        );
        let err = load_error(fixture.clone());
        assert!(
            err.contains("method `version`: its signature")
                && err.contains("holds a control character"),
            "{tag}: {err}"
        );
        let out = common::cli::memlink(&["inspect", fixture.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{tag}");
    }
}

/// A C module's `echo` that points `out` at its arguments, the likeliest way to write
/// it, is told an output may not lie at the arguments and that a module returning its input
/// copies it (docs/abi.md). Before, it got "the module reported 100 output bytes
/// outside the arena and the output buffer (the frame's small_out holds only a result
/// of at most 16 bytes)", which said neither.
#[test]
fn an_output_at_the_arguments_is_told_to_copy_them() {
    let (rt, h) = careless();
    let err = rt
        .call(h, "out_at_args", &[7u8; 100])
        .unwrap_err()
        .to_string();
    assert!(err.contains("arguments") && err.contains("copy"), "{err}");
}

/// A log record at no level, and metric records the runtime cannot read, are skipped,
/// as docs/abi.md says, and the host says so, once for the module and kind, naming why
/// (`tests/fixtures/log_levels.c` logging at level 6, `tests/fixtures/services.c`
/// reporting a null record and a histogram with a bucket too few). Before, they
/// vanished with no word at any verbosity.
#[test]
fn records_a_module_writes_wrong_are_skipped_saying_so_once() {
    let levels = compile_c(
        &["runtime/tests/fixtures/log_levels.c"],
        "liblog_levels.so",
        true,
    );
    let out = common::cli::memlink(&[
        "call",
        levels.to_str().unwrap(),
        "say",
        "\u{6}",
        "--repeat",
        "3",
    ]);
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    let told =
        "a log record of the module was skipped: its level 6 is none of 1 (error) to 5 (trace)";
    assert_eq!(err.matches(told).count(), 1, "{err}");

    let services = compile_c(
        &["runtime/tests/fixtures/services.c"],
        "libservices.so",
        true,
    );
    let out = common::cli::memlink(&[
        "call",
        services.to_str().unwrap(),
        "note",
        "hi",
        "--prometheus",
    ]);
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("a metric record of the module was skipped")
            .count(),
        1,
        "{err}"
    );
    assert!(
        common::cli::stdout(&out).contains("c_notes"),
        "the others are read"
    );
}
