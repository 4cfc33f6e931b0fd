//! The `memlink` command line, run as a user would.

mod common;

use std::ffi::OsStr;
use std::process::{Command, Output};

use common::{memlink_to, stderr};

fn memlink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(args)
        .output()
        .expect("run memlink")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn basic() -> String {
    common::module_path("basic").to_str().unwrap().to_owned()
}

#[test]
fn inspect_lists_methods_ids_and_formats() {
    let out = memlink(&["inspect", &basic()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("module basic 0.1.0"), "{text}");
    let echo = text
        .lines()
        .find(|l| l.trim_start().starts_with("echo "))
        .expect("echo listed");
    assert!(
        echo.contains("0xd49dd484") && echo.contains("raw"),
        "{echo}"
    );
    let add = text
        .lines()
        .find(|l| l.trim_start().starts_with("add "))
        .expect("add listed");
    assert!(
        add.contains("0x3b391274") && add.contains("msgpack"),
        "{add}"
    );
    assert!(text.lines().any(|l| l.contains("async_process")
        && l.contains(" async ")
        && l.ends_with("async async_process(data: Vec<u8>) -> Vec<u8>")));
    assert!(text.ends_with('\n'), "the last line ends: {text:?}");
}

/// Each method's signature, as its source spells it, for every format: raw, MessagePack,
/// archived arguments, an archived result, async.
#[test]
fn inspect_prints_each_methods_signature() {
    let listing = |module: &str| {
        let path = common::module_path(module);
        let out = memlink(&["inspect", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let signature = |text: &str, name: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed: {text}"));
        line.split("  ").last().unwrap().trim().to_owned()
    };
    let basic = listing("basic");
    assert_eq!(signature(&basic, "add"), "add(a: u32, b: u32) -> u32"); // MessagePack
    assert_eq!(signature(&basic, "echo"), "echo(input: String) -> String"); // raw
    assert_eq!(signature(&basic, "noop"), "noop() -> ()");
    let zero_copy = listing("zero_copy");
    assert_eq!(
        signature(&zero_copy, "centroid"),
        "centroid(points: &Archived<Vec<Point>>) -> (f32, f32, f32, u64)"
    );
    assert_eq!(
        signature(&zero_copy, "scale"),
        "scale(points: &Archived<Vec<Point>>, factor: &Archived<f32>) -> Rkyv<Vec<Point>>"
    );
    assert_eq!(
        signature(&zero_copy, "shout"),
        "shout(text: &str, tag: &[u8]) -> &'a [u8]"
    );
    // A module written in C records its own.
    let c = common::compile_c(&["examples/c/module.c"], "libc_module.so", true);
    let out = memlink(&["inspect", c.to_str().unwrap()]);
    assert_eq!(
        signature(&stdout(&out), "add"),
        "add(a: u32, b: u32) -> u32"
    );
}

/// `inspect --json`: the same description as one JSON object, for tools.
#[test]
fn inspect_json_describes_the_module_for_tools() {
    let path = common::module_path("zero_copy");
    let out = memlink(&["inspect", "--json", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["module"], "zero_copy");
    let methods = value["methods"].as_array().unwrap();
    let centroid = methods.iter().find(|m| m["name"] == "centroid").unwrap();
    assert_eq!(
        centroid["signature"],
        "centroid(points: &Archived<Vec<Point>>) -> (f32, f32, f32, u64)"
    );
    assert_eq!(centroid["args"], "archived");
    assert_eq!(centroid["result"], "msgpack");
    assert_eq!(centroid["arg_count"], 1);
    assert_eq!(centroid["async"], false);
    assert!(centroid["args_type"]["type"]
        .as_str()
        .unwrap()
        .contains("Point"));
    assert!(centroid["result_type"].is_null());
    let scale = methods.iter().find(|m| m["name"] == "scale").unwrap();
    assert!(scale["result_type"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("0x"));
}

#[test]
fn call_takes_json_and_prints_json() {
    let cases: &[(&[&str], &str)] = &[
        (&["add", "[2, 3]"], "5"),
        (&["add", r#"{"a": 2, "b": 3}"#], "5"),
        (&["may_fail", "7"], "14"),
        (&["echo", "hello world"], "hello world"),
        (&["ping"], "pong"),
        (
            &["process_user", r#"[{"id": 1, "name": "ada", "score": 2}]"#],
            r#"{"id":1,"name":"ADA","score":4}"#,
        ),
    ];
    let b = basic();
    for (args, expected) in cases {
        let mut full = vec!["call", &b[..]];
        full.extend_from_slice(args);
        let out = memlink(&full);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim_end(), *expected, "{args:?}");
    }
}

#[test]
fn errors_are_one_line_and_exit_non_zero() {
    let b = basic();
    let cases: &[(&[&str], &str)] = &[
        (
            &["call", "/no/such.so", "x"],
            "error: no module file at /no/such.so",
        ),
        (
            &["call", &b, "nope"],
            "error: module `basic` has no method `nope`",
        ),
        (
            &["call", &b, "add", "[1,"],
            "error: arguments are not valid JSON",
        ),
        (
            &["call", &b, "add", "[\"x\", 1]"],
            "error: basic::add failed: serialization error: bad arguments",
        ),
        (
            &["call", &b, "may_fail", "500"],
            "error: basic::may_fail failed: quota exceeded",
        ),
        (
            &["call", &b, "boom", "oops"],
            "error: basic::boom failed: module panicked: oops (at ",
        ),
    ];
    for (args, prefix) in cases {
        let out = memlink(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with(prefix), "{args:?}: {err}");
    }
}

#[test]
fn stats_and_verbose_show_metrics_and_module_logs() {
    let b = basic();
    let out = memlink(&["call", &b, "chatty", "4", "--repeat", "3", "--prometheus"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("memlink_calls_total{module=\"basic\",method=\"chatty\"} 3"),
        "{text}"
    );
    // The runtime's text, with a module's own metrics in it, meets Prometheus' rules.
    let observed = memlink(&["call", &b, "observe", "3", "--prometheus"]);
    let metrics = stdout(&observed);
    assert!(
        metrics.contains("memlink_module_observed_total"),
        "{metrics}"
    );
    common::promtool::promtool_accepts(metrics.split_once('\n').unwrap().1);
    let quiet = stderr(&out);
    assert!(
        quiet.contains("an error") && quiet.contains("a warning"),
        "errors and warnings show: {quiet}"
    );
    assert!(
        !quiet.contains("some information"),
        "info needs -v: {quiet}"
    );
    let loud = stderr(&memlink(&["-vv", "call", &b, "chatty", "4"]));
    assert!(
        loud.contains("some information") && loud.contains("a detail"),
        "{loud}"
    );
    assert!(!loud.contains("a fine detail"), "trace needs -vvv: {loud}");
    assert!(loud.contains("user=alice"), "fields show: {loud}");
}

/// An archive cannot be made from JSON: `memlink call` on a method that takes one says
/// so, names the archive's type and how to call it, instead of sending MessagePack the
/// module would misread.
#[test]
fn call_refuses_json_for_a_method_that_takes_an_archive() {
    let zero_copy = common::module_path("zero_copy");
    let out = memlink(&[
        "call",
        zero_copy.to_str().unwrap(),
        "centroid",
        "[[1, 2, 3]]",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot be made from JSON"), "{err}");
    assert!(
        err.contains("rkyv archive of `") && err.contains("--args-file"),
        "{err}"
    );
    assert!(
        !err.contains("subtree pointer"),
        "the module never saw the bytes: {err}"
    );
}

/// `--stats` prints a short table of the exports called: calls, errors by status,
/// latency quantiles and bytes, one line each; the raw text is `--prometheus`'s.
#[test]
fn stats_print_a_table_of_the_exports_called() {
    let b = basic();
    let out = memlink(&["call", &b, "add", "[2, 3]", "--repeat", "5", "--stats"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("5"), "the result first: {text}");
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["export", "calls", "errors", "p50", "p99", "max", "in", "out"]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["basic::add", "5", "0"], "{text}");
    for quantile in &row[3..6] {
        assert!(quantile.starts_with('≤'), "a bucket bound: {text}");
    }
    // Each call passes 3 bytes of MessagePack ([2, 3]) and gets 1 back (5).
    assert_eq!(&row[6..], ["15", "B", "5", "B"], "{text}");
    assert_eq!(lines.next(), None, "only the export called: {text}");
    assert!(
        !text.contains("memlink_calls_total"),
        "no Prometheus text: {text}"
    );

    // A failed call is counted, by its status, and the table still prints.
    let failing = memlink(&["call", &b, "may_fail", "101", "--stats"]);
    assert!(!failing.status.success());
    let text = stdout(&failing);
    let row = text
        .lines()
        .find(|l| l.starts_with("basic::may_fail"))
        .unwrap_or_else(|| panic!("a row for the failed export: {text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "1", "{text}");
    assert_ne!(cells[2], "0", "the failure is an error: {text}");
    assert_eq!(cells[3], "1", "one error of that status: {text}");
}

/// A method that takes an archive is called with the archive's bytes from a file.
#[test]
fn args_file_passes_an_archive_as_it_is() {
    use memlink_example_types::zero_copy_types::Point;
    let points = vec![
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
    let archive = rkyv::to_bytes::<rkyv::rancor::Error>(&(points,)).unwrap();
    let dir = common::workspace().join("target/test-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("centroid-{}.rkyv", std::process::id()));
    std::fs::write(&file, &archive).unwrap();
    let zero_copy = common::module_path("zero_copy");
    let out = call_with_args_file(zero_copy.to_str().unwrap(), "centroid", &file);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("[2.0,3.0,4.0,"), "the mean point: {text}");
    // Bytes that are not an archive of the method's type are refused by validation.
    std::fs::write(&file, b"not an archive").unwrap();
    let out = call_with_args_file(zero_copy.to_str().unwrap(), "centroid", &file);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("zero_copy::centroid"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_file(&file);
}

/// `memlink call MODULE METHOD --args-file FILE`.
fn call_with_args_file(module: &str, method: &str, file: &std::path::Path) -> Output {
    memlink(&[
        "call",
        module,
        method,
        "--args-file",
        file.to_str().unwrap(),
    ])
}

/// Runs `memlink` with `args` (any bytes) to its end, or kills it and fails after 60 s:
/// each use expects it to stop on its own, so a start that goes on serving is a failure
/// rather than a hang.
fn memlink_os(args: &[&OsStr]) -> Output {
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run memlink");
    let until = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("memlink {args:?} did not stop:\n{}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Only a stale socket is ever replaced: a regular file, a directory, a FIFO or a
/// symbolic link at the socket's path makes `serve` refuse to start, naming the path and
/// what is there, and leaves it as it was.
#[test]
fn serve_refuses_a_socket_path_that_is_not_a_socket_and_leaves_it_alone() {
    use std::os::unix::fs::FileTypeExt;
    let dir = common::scratch("not-a-socket");
    let file = dir.join("notes.txt");
    std::fs::write(&file, "someone's notes\n").unwrap();
    let sub = dir.join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inside"), "kept").unwrap();
    let fifo = dir.join("a-fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let link = dir.join("a-link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let dangling = dir.join("a-dangling-link");
    std::os::unix::fs::symlink(dir.join("nothing-here"), &dangling).unwrap();
    let module = dir.join("libnone.so");
    let cases = [
        (&file, "a regular file"),
        (&sub, "a directory"),
        (&fifo, "a FIFO"),
        (&link, "a symbolic link"),
        (&dangling, "a symbolic link"),
    ];
    for (path, kind) in cases {
        let out = memlink_os(&[
            OsStr::new("serve"),
            OsStr::new("--socket"),
            path.as_os_str(),
            module.as_os_str(),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{path:?}: {err}");
        assert!(
            err.contains(&format!(
                "{} exists and is not a socket (it is {kind})",
                path.display()
            )),
            "{path:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "someone's notes\n");
    assert_eq!(std::fs::read_to_string(sub.join("inside")).unwrap(), "kept");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::read_link(&link).unwrap(), file);
    assert!(std::fs::symlink_metadata(&dangling).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A socket in a directory that does not exist: `serve` fails at once, naming the socket
/// and the missing directory (it named only the lock file it makes beside the socket,
/// which the operator never wrote).
#[test]
fn serve_names_the_missing_directory_of_its_socket() {
    let dir = common::scratch("socket-dir-missing");
    let socket = dir.join("not-made").join("memlink.sock");
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--socket"),
        socket.as_os_str(),
        common::module_path("basic").as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let want = format!(
        "cannot create the socket {}: its directory {} does not exist",
        socket.display(),
        dir.join("not-made").display()
    );
    assert!(err.contains(&want), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bad metrics address fails the start before the socket is made: nothing is left at
/// the socket's path.
#[test]
fn serve_with_a_bad_metrics_address_leaves_no_socket_behind() {
    let dir = common::scratch("bad-metrics");
    let socket = dir.join("memlink.sock");
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--socket"),
        socket.as_os_str(),
        OsStr::new("--metrics-addr"),
        OsStr::new("nonsense"),
        common::module_path("basic").as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot serve metrics on nonsense"), "{err}");
    assert!(
        std::fs::symlink_metadata(&socket).is_err(),
        "the socket is left behind: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[runtime] max_concurrency = 0` would serve nothing (every call refused as saturated):
/// the settings file is refused, naming the key, before anything starts.
#[test]
fn serve_refuses_a_zero_max_concurrency() {
    let dir = common::scratch("zero-concurrency");
    let socket = dir.join("memlink.sock");
    let config = dir.join("memlink.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\n[[modules]]\npath = {:?}\n[runtime]\nmax_concurrency = 0\n",
            socket.to_str().unwrap(),
            basic()
        ),
    )
    .unwrap();
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--config"),
        config.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`[runtime] max_concurrency` is 0") && err.contains("at least 1"),
        "{err}"
    );
    assert!(!err.contains("serving"), "{err}");
    assert!(std::fs::symlink_metadata(&socket).is_err(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

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
    use std::io::{BufRead, BufReader};
    use std::os::unix::ffi::OsStrExt;
    use std::time::{Duration, Instant};
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
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_memlink"))
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .arg(&module)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start memlink serve");
    let (lines, log) = std::sync::mpsc::channel();
    let err = daemon.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let until = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while !seen.contains("serving") {
        let left = until.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) => seen += &(line + "\n"),
            Err(_) => {
                let _ = daemon.kill();
                panic!("the daemon did not start serving:\n{seen}");
            }
        }
    }
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
        stderr(&out).contains("the result is not MessagePack"),
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
