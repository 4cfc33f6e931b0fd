//! The `memlink` command line given odd input (bytes that are not UTF-8, text that
//! looks like a flag, empty or too wide arguments, outputs that cannot be written), run
//! as a user would.

mod common;

use std::ffi::OsStr;
use std::process::{Command, Output};

use common::cli::{basic, call_with_args_file, memlink, memlink_os, stdout};
use common::{memlink_to, stderr};

/// Arguments need not be UTF-8: a module path that is not is taken as the path it is
/// (here one that does not exist, so the error says so); a method's name, a daemon's
/// module name or an address that is not is a usage error (exit code 2). Never a panic.
/// (A call's arguments: `arguments_that_are_not_utf8_reach_a_raw_method`.)
#[test]
fn arguments_that_are_not_utf8_are_handled_or_refused_without_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let dir = common::scratch("not-utf8");
    let mut bytes = dir.as_os_str().as_bytes().to_vec();
    bytes.extend_from_slice(b"/lib\xffnone.so");
    let missing = OsStr::from_bytes(&bytes);
    let no_panic = |out: &Output| {
        let err = stderr(out);
        assert_ne!(out.status.code(), Some(101), "a panic: {err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    };

    for sub in ["call", "inspect"] {
        let mut args: Vec<&OsStr> = vec![sub.as_ref(), missing];
        if sub == "call" {
            args.extend([OsStr::new("add"), OsStr::new("[2, 3]")]);
        }
        let out = memlink_os(&args);
        let err = no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{sub}: {err}");
        assert_eq!(err.lines().count(), 1, "{sub}: one line, got {err:?}");
        assert!(
            err.starts_with(&format!(
                "error: no module file at {}/lib\u{fffd}none.so",
                dir.display()
            )),
            "{sub}: {err}"
        );
    }

    // The daemon serves modules too from a path that is not UTF-8 (here missing).
    let socket = dir.join("memlink.sock");
    let mut named = b"basic=".to_vec();
    named.extend_from_slice(&bytes);
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--socket"),
        socket.as_os_str(),
        OsStr::from_bytes(&named),
    ]);
    let err = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no module file at") && err.contains("lib\u{fffd}none.so"),
        "{err}"
    );

    let module = common::module_path("basic");
    let usage: [&[&OsStr]; 3] = [
        // A method name is text.
        &[
            OsStr::new("call"),
            module.as_os_str(),
            OsStr::from_bytes(b"a\xffd"),
        ],
        // Through a daemon, MODULE is a name, which is text.
        &[
            OsStr::new("call"),
            OsStr::new("--daemon"),
            socket.as_os_str(),
            OsStr::from_bytes(b"b\xffsic"),
            OsStr::new("add"),
        ],
        &[
            OsStr::new("serve"),
            OsStr::new("--metrics-addr"),
            OsStr::from_bytes(b"\xff"),
        ],
    ];
    for args in usage {
        let out = memlink_os(args);
        let err = no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("UTF-8"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--repeat` counts calls, at least one: 0 is a usage error, and nothing is called.
#[test]
fn repeat_zero_is_a_usage_error() {
    let b = basic();
    let out = memlink(&["call", &b, "add", "[2, 3]", "--repeat", "0"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--repeat"), "{err}");
    assert_eq!(stdout(&out), "", "no call made");
    let out = memlink(&["call", &b, "add", "[2, 3]", "--repeat", "2", "--stats"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = text.lines().find(|l| l.starts_with("basic::add")).unwrap();
    assert_eq!(row.split_whitespace().nth(1), Some("2"), "{text}");
}

/// A module at a path that is not UTF-8 is called from it, and served from it by a daemon
/// whose socket's path is not UTF-8 either.
#[test]
fn a_module_at_a_path_that_is_not_utf8_is_called_and_served() {
    use std::os::unix::ffi::OsStrExt;
    let dir = common::scratch("utf8-less");
    let mut name = dir.as_os_str().as_bytes().to_vec();
    name.extend_from_slice(b"/lib\xffbasic.so");
    let module = std::path::PathBuf::from(OsStr::from_bytes(&name));
    std::fs::copy(common::module_path("basic"), &module).unwrap();
    let out = memlink_os(&[
        OsStr::new("call"),
        module.as_os_str(),
        OsStr::new("add"),
        OsStr::new("[2, 3]"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "5\n");

    let mut socket = dir.as_os_str().as_bytes().to_vec();
    socket.extend_from_slice(b"/\xffmemlink.sock");
    let socket = std::path::PathBuf::from(OsStr::from_bytes(&socket));
    let (mut daemon, seen) = common::cli::serve_all(&socket, &[module.as_os_str()]);
    let out = memlink_os(&[
        OsStr::new("call"),
        OsStr::new("--daemon"),
        socket.as_os_str(),
        OsStr::new("basic"),
        OsStr::new("add"),
        OsStr::new("[2, 3]"),
    ]);
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = daemon.wait().unwrap();
    assert!(out.status.success(), "{}\n{seen}", stderr(&out));
    assert_eq!(stdout(&out), "5\n");
    assert!(status.success(), "{status}");
    assert!(
        std::fs::symlink_metadata(&socket).is_err(),
        "the socket is removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Output that cannot be written (a full disk, a reader that went away, as with
/// `| head -1`) is an error that says so, exit code 1: never a panic.
#[test]
fn output_that_cannot_be_written_is_an_error_not_a_panic() {
    let b = basic();
    let dir = common::scratch("unwritable-output");
    let sinks = ["a full disk", "a closed pipe"];
    for sink in sinks {
        let new_name = format!("fresh_{}", sink.len());
        let cases: [&[&str]; 6] = [
            &["inspect", &b],
            &["inspect", "--json", &b],
            &["call", &b, "add", "[2, 3]"],
            &["call", &b, "echo", "hello"],
            &["call", &b, "add", "[2, 3]", "--stats", "--prometheus"],
            &["new", &new_name],
        ];
        for args in cases {
            let stdout = if sink == "a full disk" {
                let full = std::fs::File::options()
                    .write(true)
                    .open("/dev/full")
                    .unwrap();
                std::process::Stdio::from(full)
            } else {
                let (reader, writer) = std::io::pipe().unwrap();
                drop(reader);
                std::process::Stdio::from(writer)
            };
            let out = memlink_to(args, &dir, stdout);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?} to {sink}: {err}");
            assert!(!err.contains("panicked"), "{args:?} to {sink}: {err}");
            assert!(
                err.starts_with("error: cannot write the output: "),
                "{args:?} to {sink}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{args:?} to {sink}: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A raw method's result is written as the bytes it is, UTF-8 or not, and nothing else:
/// not made text with U+FFFD in place of the bytes that are not, nor followed by a
/// newline that is no byte of it (a binary result piped to a file came out one byte
/// longer).
#[test]
fn a_raw_result_that_is_not_utf8_is_written_as_its_bytes() {
    let dir = common::scratch("raw-bytes");
    let file = dir.join("args.bin");
    let bytes = b"\xff\xfe\x00a\x80";
    std::fs::write(&file, bytes).unwrap();
    let out = call_with_args_file(&basic(), "async_process", &file);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, bytes);
    // `--args-file -` reads them from standard input.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(["call", &basic(), "async_process", "--args-file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Arguments larger than a call through a daemon can carry (a slot holds at most 1 GiB)
/// are refused saying so, before the file is read or the daemon is asked.
#[test]
fn arguments_too_large_for_a_daemon_call_are_refused_naming_the_limit() {
    let dir = common::scratch("daemon-args-too-large");
    let file = dir.join("huge.bin");
    let huge = std::fs::File::create(&file).unwrap();
    huge.set_len((1 << 30) + 1).unwrap(); // sparse: no disk used
    drop(huge);
    let socket = dir.join("memlink.sock");
    let out = memlink(&[
        "call",
        "--daemon",
        socket.to_str().unwrap(),
        "basic",
        "echo",
        "--args-file",
        file.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1073741825 bytes")
            && err.contains("at most 1073741824")
            && err.contains("--daemon"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Arguments read from a device without end (`/dev/zero`) stop at 1 GiB, as a daemon
/// call's do, with an error naming the limit, instead of filling the memory (before,
/// a local call read on until the machine ran out; `--timeout` bounds the call, not
/// the read).
#[test]
fn arguments_from_an_endless_device_are_refused_at_the_limit() {
    let out = memlink(&[
        "call",
        &basic(),
        "echo",
        "--args-file",
        "/dev/zero",
        "--timeout",
        "2s",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("more than 1073741824 bytes"),
        "{err}"
    );
}

/// A MessagePack result that JSON has no place for is printed the nearest way JSON can:
/// a map keyed by numbers, `bin`, an extension type, NaN and infinities. Before, the
/// call succeeded and the CLI printed nothing but "cannot decode the result as JSON"
/// (`tests/fixtures/msgpack_echo.c` returns its arguments' bytes as the result).
#[test]
fn any_messagepack_result_is_printed_as_json() {
    let echo = common::compile_c(
        &["runtime/tests/fixtures/msgpack_echo.c"],
        "libmsgpack_echo.so",
        true,
    );
    let dir = common::scratch("cli-msgpack-json");
    let file = dir.join("args.msgpack");
    let cases: [(&[u8], &str); 5] = [
        // {1: "one", 2: "two"}
        (
            &[
                0x82, 0x01, 0xa3, b'o', b'n', b'e', 0x02, 0xa3, b't', b'w', b'o',
            ],
            r#"{"1":"one","2":"two"}"#,
        ),
        // bin 8 of [0, 255]
        (&[0xc4, 0x02, 0x00, 0xff], "[0,255]"),
        // fixext 1 of type 5 holding 42
        (&[0xd4, 0x05, 0x2a], "[5,[42]]"),
        // [NaN, -inf] as float 64
        (
            &[
                0x92, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0,
            ],
            r#"["NaN","-inf"]"#,
        ),
        // {[1, 2]: nil}
        (&[0x81, 0x92, 0x01, 0x02, 0xc0], r#"{"[1,2]":null}"#),
    ];
    for (bytes, printed) in cases {
        std::fs::write(&file, bytes).unwrap();
        let out = call_with_args_file(echo.to_str().unwrap(), "echo", &file);
        assert!(out.status.success(), "{bytes:x?}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim_end(), printed, "{bytes:x?}");
    }
    // Bytes that are not MessagePack at all are named as such.
    std::fs::write(&file, [0xc1]).unwrap();
    let out = call_with_args_file(echo.to_str().unwrap(), "echo", &file);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the result cannot be read as MessagePack"),
        "{}",
        stderr(&out)
    );
}

/// `inspect --json` of a module at a path that is not UTF-8 prints valid JSON, the path
/// written as the text listing shows it (U+FFFD for the bytes that are not UTF-8).
/// Before, serializing the path failed and `memlink` panicked with a backtrace.
#[test]
fn inspect_json_of_a_module_at_a_path_that_is_not_utf8_is_json() {
    use std::os::unix::ffi::OsStrExt;
    let dir = common::scratch("inspect-json-not-utf8");
    let mut name = dir.as_os_str().as_bytes().to_vec();
    name.extend_from_slice(b"/lib\xffbasic.so");
    let module = std::path::PathBuf::from(OsStr::from_bytes(&name));
    std::fs::copy(common::module_path("basic"), &module).unwrap();
    let out = memlink_os(&[
        OsStr::new("inspect"),
        OsStr::new("--json"),
        module.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["module"], "basic");
    let path = value["path"].as_str().unwrap();
    assert!(path.ends_with("/lib\u{fffd}basic.so"), "{path}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Arguments that start with `-` are arguments: raw text (`-hello`, which clap read as
/// `-h`: the help was printed and the exit code was 0, with no call made) and negative
/// numbers (a usage error before). memlink's own flags after them stay flags.
#[test]
fn arguments_that_start_with_a_hyphen_are_passed_to_the_method() {
    let b = basic();
    let out = memlink(&["call", &b, "echo", "-hello"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "-hello");
    let out = memlink(&["call", &b, "may_fail", "-1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("integer `-1`, expected u32"), "{err}");
    let out = memlink(&["call", &b, "add", "[2, 3]", "--repeat", "2", "--stats"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("5\nexport"), "{}", stdout(&out));
}

/// The figures after a raw result that ends without a newline start on a line of their
/// own: the table's header, and Prometheus' `# HELP`, were glued to the result's last
/// line (`pongexport  calls ...`).
#[test]
fn figures_after_a_raw_result_start_on_their_own_line() {
    let b = basic();
    for (flag, first) in [("--stats", "export "), ("--prometheus", "# HELP ")] {
        let out = memlink(&["call", &b, "ping", flag]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("pong"), "{flag}: {text}");
        assert!(lines.next().unwrap().starts_with(first), "{flag}: {text}");
    }
    // Without figures, the raw result is still written as it is.
    assert_eq!(stdout(&memlink(&["call", &b, "ping"])), "pong");
}

/// Arguments given on the command line need not be UTF-8: a raw method that takes bytes
/// gets them as they are; JSON must be UTF-8, and arguments that are not are refused
/// naming the method. Before, both were one usage error (exit code 2) that named no
/// argument: "invalid UTF-8 was detected in one or more arguments".
#[test]
fn arguments_that_are_not_utf8_reach_a_raw_method() {
    use std::os::unix::ffi::OsStrExt;
    let module = common::module_path("basic");
    let call = |method: &str, args: &[u8]| {
        memlink_os(&[
            OsStr::new("call"),
            module.as_os_str(),
            OsStr::new(method),
            OsStr::from_bytes(args),
        ])
    };
    let out = call("async_process", b"a\xffb");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"a\xffb");
    let out = call("add", b"[1, \xff]");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: the arguments are not UTF-8, so not JSON, which `add` takes"),
        "{err}"
    );
}

/// Empty arguments are no arguments, for a MessagePack method as for a raw one (a
/// script's `"$ARGS"` with nothing in it). Before, they were refused as JSON that ends
/// before its value ("EOF while parsing a value at line 1 column 0").
#[test]
fn empty_arguments_are_no_arguments() {
    let b = basic();
    for args in ["", "  \n"] {
        let out = memlink(&["call", &b, "noop", args]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "null\n", "{args:?}");
    }
    let omitted = stderr(&memlink(&["call", &b, "add"]));
    assert!(omitted.contains("invalid length 0"), "{omitted}");
    assert_eq!(stderr(&memlink(&["call", &b, "add", ""])), omitted);
}

/// An integer no 64-bit integer holds (MessagePack has none wider) is refused naming it.
/// Before, JSON made it the nearest float: the module saw `18446744073709552000.0`, a
/// number the user did not write, and a method taking any value got it silently.
#[test]
fn an_integer_wider_than_64_bits_is_refused_naming_it() {
    let b = basic();
    for (method, args, number) in [
        ("may_fail", "18446744073709551616", "18446744073709551616"),
        (
            "sum",
            "[[1, -99999999999999999999]]",
            "-99999999999999999999",
        ),
    ] {
        let out = memlink(&["call", &b, method, args]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args}: {err}");
        assert!(
            err.starts_with(&format!("error: the integer {number} in the arguments")),
            "{args}: {err}"
        );
    }
    // The widest that fit, and a wide number inside a string, are passed.
    let out = memlink(&["call", &b, "sum", "[[9223372036854775807, -1]]"]);
    assert_eq!(stdout(&out), "9223372036854775806\n", "{}", stderr(&out));
    let user = r#"[{"id": 1, "name": "99999999999999999999", "score": 1}]"#;
    let out = memlink(&["call", &b, "process_user", user]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `--args-file -` through a daemon: standard input is read (within the daemon's limit
/// of a call's arguments, past which the read stops) and passed as it is.
#[test]
fn arguments_from_standard_input_reach_a_daemons_method() {
    use std::io::Write;
    let dir = common::scratch("daemon-args-stdin");
    let socket = dir.join("memlink.sock");
    let daemon = common::cli::serve(&socket, &basic());
    let mut child = Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args([
            "call",
            "--daemon",
            socket.to_str().unwrap(),
            "basic",
            "echo",
        ])
        .args(["--args-file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run memlink");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    common::cli::stop(daemon);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"from stdin");
    let _ = std::fs::remove_dir_all(&dir);
}

/// JSON arguments that give a key twice are refused, as the module refuses such
/// MessagePack. Before, the last one was taken: `{"a": 1, "a": 2, "b": 3}` made 5.
#[test]
fn json_arguments_that_give_a_key_twice_are_refused() {
    let out = memlink(&["call", &basic(), "add", r#"{"a": 1, "a": 2, "b": 3}"#]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "the arguments give a key twice: the key `a` is given twice (first as 1, then as 2)"
        ),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    let out = memlink(&["call", &basic(), "add", r#"{"a": 1, "b": 3}"#]);
    assert_eq!(stdout(&out).trim(), "4", "{}", stderr(&out));
}
