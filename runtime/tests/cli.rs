//! The `memlink` command line, run as a user would.

mod common;

use std::ffi::OsStr;
use std::process::Command;

use common::cli::{basic, call_with_args_file, memlink, memlink_os, stdout};
use common::stderr;

/// What `memlink serve --config CONFIG` says as it refuses to start (exit status 1).
fn serve_refused(config: &std::path::Path) -> String {
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--config"),
        config.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
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

/// A module file whose name holds a newline and a terminal's escape is listed on its one
/// line, the two escaped: printed as they were, the newline forged a line of the listing
/// and the escape ran on the reader's terminal.
#[test]
fn inspect_prints_a_path_on_one_line_escaped() {
    let dir = common::scratch("inspect-odd-path");
    let odd = dir.join("lib\nmethods: 0\u{1b}[2J.so");
    std::fs::copy(common::module_path("basic"), &odd).unwrap();
    let out = memlink(&["inspect", odd.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("path "))
        .unwrap_or_else(|| panic!("no path line: {text}"));
    assert!(line.ends_with("lib\\nmethods: 0\\u{1b}[2J.so"), "{line:?}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(!text.lines().any(|l| l.starts_with("methods: 0")), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
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
        // `null` is no arguments, as nil is on the wire.
        (&["ping", "null"], "pong"),
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
        // A module's text with a line break and a terminal's escape in it, on one line,
        // escaped: before, the terminal ran the escape and showed a line of its own.
        (
            &["call", &b, "boom", "oops\nforged\u{1b}[2J"],
            "error: basic::boom failed: module panicked: oops\\nforged\\u{1b}[2J (at ",
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

/// A worker's invocation by hand, with a descriptor the process does not hold (or a
/// standard stream), is refused with why, the descriptor untouched. Before, the worker
/// took whatever number it was given as its own, to close when it ended.
#[test]
fn a_worker_started_by_hand_with_a_descriptor_it_lacks_is_refused() {
    for (fd, why) in [
        (
            "417",
            "error: memlink worker: control descriptor 417 is not open",
        ),
        (
            "1",
            "error: memlink worker: control descriptor 1 is a standard stream",
        ),
    ] {
        let out = memlink(&["__worker", "--control-fd", fd]);
        assert!(!out.status.success(), "--control-fd {fd} should fail");
        let err = stderr(&out);
        assert!(err.starts_with(why), "--control-fd {fd}: {err}");
    }
}

/// The record of a module's panic keeps to its line of the log, its control characters
/// escaped, as a module's own records do: before, a line break in the message (which
/// `boom` takes from its caller) wrote a line of its own into the log.
#[test]
fn a_panic_record_stays_on_its_line_of_the_log() {
    let b = basic();
    let out = memlink(&["-v", "call", &b, "boom", "oops\nforged: a line\u{1b}[2J"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("panicked: oops\\nforged: a line\\u{1b}[2J"),
        "{err}"
    );
    assert!(!err.lines().any(|l| l.starts_with("forged")), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
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

/// An archived result is not shown; the placeholder names the handle that reads it,
/// which depends on the method's arguments: `Runtime::typed` (with an `Rkyv<T>` result)
/// for MessagePack ones. Before, it named `Runtime::archived`, which refuses them.
#[test]
fn an_archived_result_names_the_handle_that_reads_it() {
    let shapes = common::module_path("shapes");
    let out = memlink(&["call", shapes.to_str().unwrap(), "points_rkyv", "[2]"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rkyv archive of `")
            && text.contains("`Runtime::typed` with an `Rkyv<T>` result")
            && text.contains("`Client::typed_archived`"),
        "{text}"
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

/// A socket path longer than a Unix socket's can be: `serve` fails at once, naming its
/// length and the limit, and makes nothing beside it. Before, it failed only at `bind`,
/// after its lock file was made, with "path must be shorter than SUN_LEN".
#[test]
fn serve_refuses_a_socket_path_too_long_for_a_socket_and_makes_nothing() {
    let dir = common::scratch("socket-path-long");
    let deep = dir.join("d".repeat(120));
    std::fs::create_dir_all(&deep).unwrap();
    let socket = deep.join("memlink.sock");
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--socket"),
        socket.as_os_str(),
        common::module_path("basic").as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let want = format!(
        "the socket path {} is {} bytes; a Unix socket's path holds at most 107",
        socket.display(),
        socket.as_os_str().len()
    );
    assert!(err.contains(&want), "{err}");
    let left: Vec<_> = std::fs::read_dir(&deep).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A socket path that names a directory (`dir/`, `..`): `serve` fails at once, saying
/// so, and makes nothing. Before, `dir/` of a directory that exists got a stray `.lock`
/// file inside it, and of one that does not, an error naming its parent as the missing
/// directory.
#[test]
fn serve_refuses_a_socket_path_that_names_a_directory_and_makes_nothing() {
    let dir = common::scratch("socket-path-dir");
    let missing = format!("{}/", dir.join("not-made").display());
    let there = format!("{}/", dir.display());
    let up = format!("{}/..", dir.display());
    for socket in [&missing, &there, &up] {
        let out = memlink_os(&[
            OsStr::new("serve"),
            OsStr::new("--socket"),
            OsStr::new(socket),
            common::module_path("basic").as_os_str(),
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let want = format!("the socket path {socket} names a directory, not a file");
        assert!(err.contains(&want), "{err}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
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
    let err = serve_refused(&config);
    assert!(
        err.contains("`[runtime] max_concurrency` is 0") && err.contains("at least 1"),
        "{err}"
    );
    assert!(!err.contains("serving"), "{err}");
    assert!(std::fs::symlink_metadata(&socket).is_err(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two files the settings name alike: the daemon does not start, and its error names the
/// file whose name was taken (it said only "a module named `twice` is already loaded",
/// which left the operator to find which entry of many).
#[test]
fn serve_names_the_file_whose_module_name_is_taken() {
    let dir = common::scratch("name-taken");
    let socket = dir.join("memlink.sock");
    let config = dir.join("memlink.toml");
    let other = common::module_path("nested_calls");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\n[[modules]]\npath = {:?}\nname = \"twice\"\n[[modules]]\npath = {:?}\nname = \"twice\"\n",
            socket.to_str().unwrap(),
            basic(),
            other.to_str().unwrap()
        ),
    )
    .unwrap();
    let err = serve_refused(&config);
    let want = format!(
        "{}: a module named `twice` is already loaded",
        other.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(std::fs::symlink_metadata(&socket).is_err(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A module whose own name is longer than a call can name (64 bytes): the daemon does
/// not start, saying so. Before, it served the module, and every client's call of it was
/// refused as a name "longer than 64 bytes".
#[test]
fn serve_refuses_a_module_whose_own_name_no_call_can_carry() {
    let name = "n".repeat(65);
    let module = common::compile_c_with(
        &["examples/c/module.c"],
        "libc_module_long_name.so",
        true,
        &[&format!("-DMODULE_NAME=\"{name}\"")],
    );
    let dir = common::scratch("own-name-too-long");
    let socket = dir.join("memlink.sock");
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--socket"),
        socket.as_os_str(),
        module.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("its name `{}…` is 65 bytes", &name[..64]))
            && err.contains("serves names of at most 64"),
        "{err}"
    );
    assert!(std::fs::symlink_metadata(&socket).is_err(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `max_connections` past what a daemon can serve is refused when the settings are
/// read, naming the key. Before, the daemon made a row of figures for each in every
/// worker's table and started: 10^8 took 24 GB, and the OOM killer ended it when a
/// worker's death (or a stop) wrote every row.
#[test]
fn serve_refuses_more_connections_than_it_can_serve() {
    use std::os::unix::process::CommandExt;
    let dir = common::scratch("too-many-connections");
    let socket = dir.join("memlink.sock");
    let config = dir.join("memlink.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\nmax_connections = 65537\n[[modules]]\npath = {:?}\n",
            socket.to_str().unwrap(),
            basic()
        ),
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_memlink"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        // A group of its own, so that a daemon that started is ended with its worker.
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while daemon.try_wait().unwrap().is_none() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let started = daemon.try_wait().unwrap().is_none();
    if started {
        let group = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let out = daemon.wait_with_output().unwrap();
    let err = stderr(&out);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!started, "the daemon started: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`max_connections` is 65537: it is at most 65536"),
        "{err}"
    );
}

/// A module that calls another is called with that one's file given by `--with`; the
/// modules of `--with` load in the order their calls need, whichever order they are
/// given in; and without `--with`, the error says which module is missing and how to give
/// it.
#[test]
fn with_loads_the_modules_a_module_calls_in_the_order_they_need() {
    let path = |name: &str| common::module_path(name).to_str().unwrap().to_owned();
    let (uses, greeter) = (path("uses_greeter"), path("greeter_v1"));
    let out = memlink(&["call", &uses, "add_through", "[2, 3]", "--with", &greeter]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "5");

    // `--stats` lists the export asked for and the one it called, not the runtime's own
    // call of `memlink_dependencies` at load; asked for, that one is listed.
    let args = [
        "call",
        &uses,
        "add_through",
        "[2, 3]",
        "--with",
        &greeter,
        "--stats",
    ];
    let text = stdout(&memlink(&args));
    let mut exports: Vec<&str> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    exports.sort_unstable();
    assert_eq!(
        exports,
        ["greeter::add", "uses_greeter::add_through"],
        "{text}"
    );
    let args = [
        "call",
        &uses,
        "memlink_dependencies",
        "--with",
        &greeter,
        "--stats",
    ];
    let text = stdout(&memlink(&args));
    assert!(
        text.contains("uses_greeter::memlink_dependencies"),
        "{text}"
    );

    // `uses_greeter` is given before the module it calls.
    let b = basic();
    let args = ["inspect", &b, "--with", &uses, "--with", &greeter];
    let out = memlink(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("module basic "),
        "{}",
        stdout(&out)
    );

    let out = memlink(&["call", &uses, "add_through", "[2, 3]"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("calls `greeter@^1`, which is not loaded") && err.contains("--with PATH"),
        "{err}"
    );

    // A module no file given answers is named, not waited for.
    let out = memlink(&["inspect", &b, "--with", &uses]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`greeter@^1`"), "{}", stderr(&out));
    // A module of `--with` that calls the module called is loaded after it. Before, every
    // module of `--with` loaded first, and this one was refused, told to give with
    // `--with` the file given as the module called.
    let calls_greeter = common::compile_c_with(
        &["runtime/tests/fixtures/depends_on.c"],
        "libdepends_on_greeter.so",
        true,
        &["-DDEPENDS_ON_GREETER"],
    );
    let calls_greeter = calls_greeter.to_str().unwrap();
    let out = memlink(&["call", &greeter, "version", "--with", calls_greeter]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "1");
    // What built a module: a C module's own text is not called an SDK version.
    let out = memlink(&["inspect", calls_greeter, "--with", &greeter]);
    assert!(
        stdout(&out).starts_with("module depends_on 0.1.0 (sdk: none (C))"),
        "{}",
        stdout(&out)
    );
    let out = memlink(&["inspect", &greeter]);
    assert!(
        stdout(&out).starts_with("module greeter 1.4.2 (memlink-msdk "),
        "{}",
        stdout(&out)
    );
}

/// A module that calls `greeter@^1`, given greeter 3.0.0 by `--with`, is told that the
/// version loaded is not one its call admits. Before, the error said `greeter@^1` was not
/// loaded and to give its file with `--with`: the file the user had just given.
#[test]
fn with_a_version_the_call_does_not_admit_names_the_version_loaded() {
    let path = |name: &str| common::module_path(name).to_str().unwrap().to_owned();
    let (uses, v3) = (path("uses_greeter"), path("greeter_v3"));
    let b = basic();
    for args in [
        &["call", &uses, "add_through", "[2, 3]", "--with", &v3][..],
        &["inspect", &b, "--with", &uses, "--with", &v3],
    ] {
        let out = memlink(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("calls `greeter@^1`")
                && err.contains("`greeter` 3.0.0 is loaded, which `^1` does not admit"),
            "{args:?}: {err}"
        );
    }
}

/// `memlink serve` given a module before the module it calls (`uses_greeter`, then
/// greeter) loads them in the order the calls need and serves both, as `--with` does.
/// Before, the worker loaded them in the order given, and refused `uses_greeter`: its
/// greeter "not loaded: load it first", from a command line that listed it.
#[test]
fn serve_loads_the_modules_a_module_calls_first_whatever_their_order() {
    let path = |name: &str| common::module_path(name).to_str().unwrap().to_owned();
    let dir = common::scratch("serve-order");
    let socket = dir.join("memlink.sock");
    let (uses_greeter, greeter) = (path("uses_greeter"), path("greeter_v1"));
    let (mut daemon, seen) =
        common::cli::serve_all(&socket, &[OsStr::new(&uses_greeter), OsStr::new(&greeter)]);
    let socket = socket.to_str().unwrap();
    let out = memlink(&[
        "call",
        "--daemon",
        socket,
        "uses_greeter",
        "add_through",
        "[2, 3]",
    ]);
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = daemon.wait().unwrap();
    assert!(out.status.success(), "{}\n{seen}", stderr(&out));
    assert_eq!(stdout(&out), "5\n");
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `memlink call --daemon` of a method whose result is larger than the call's slot (1
/// MiB unless its arguments are larger) says so, that the method ran, and what to pass:
/// `--result-bytes` sized as the error says gives a slot that holds it, and the result
/// is printed. A `--repeat` run makes its calls on one connection. Before, the result
/// could not be had at all: the slot was sized by the arguments alone.
#[test]
fn a_result_larger_than_a_daemon_calls_slot_is_had_with_result_bytes() {
    let dir = common::scratch("result-bytes");
    let socket = dir.join("memlink.sock");
    let basic = common::module_path("basic");
    let (mut daemon, seen) = common::cli::serve_all(&socket, &[basic.as_os_str()]);
    let socket = socket.to_str().unwrap();
    let fill = |extra: &[&str]| {
        let mut args = vec!["call", "--daemon", socket];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["basic", "fill", "[7, 1100000]"]);
        memlink(&args)
    };
    let out = fill(&[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}\n{seen}");
    // `fill`'s bytes leave raw: the result is the bytes themselves.
    assert!(
        err.contains("the result of 1100000 bytes does not fit")
            && err.contains("basic::fill ran and its result was dropped")
            && err.contains("--result-bytes 1100000 gives the call a slot that holds it"),
        "{err}"
    );
    let out = fill(&["--result-bytes", "1100000", "--repeat", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout.len() == 1_100_000 && out.stdout.iter().all(|&b| b == 7),
        "{} bytes printed",
        out.stdout.len()
    );
    // Past what a slot can hold, refused before anything is sent.
    let out = fill(&["--result-bytes", "2000000000"]);
    assert!(
        stderr(&out)
            .contains("--result-bytes 2000000000: a call through a daemon has a slot of at most"),
        "{}",
        stderr(&out)
    );
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(daemon.wait().unwrap().success());

    // A daemon whose `max_shm_per_client` cuts the slot asked for: the advice names
    // the setting, not the flag just given. Before, it repeated the flag.
    let small = dir.join("small.sock");
    let config = dir.join("small.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {:?}\nmax_shm_per_client = 1048576\n[[modules]]\npath = {:?}\n",
            small.to_str().unwrap(),
            basic.to_str().unwrap()
        ),
    )
    .unwrap();
    let (mut daemon, seen) =
        common::cli::serve_all(&small, &[OsStr::new("--config"), config.as_os_str()]);
    let out = memlink(&[
        "call",
        "--daemon",
        small.to_str().unwrap(),
        "--result-bytes",
        "1100000",
        "basic",
        "fill",
        "[7, 1100000]",
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("max_shm_per_client") && !err.contains("gives the call a slot"),
        "{err}\n{seen}"
    );
    // Arguments larger than the slot the daemon gives: the same setting is named. Before,
    // "connect with larger slots", which the command cannot.
    let args = dir.join("large.bin");
    std::fs::write(&args, vec![b'x'; 1_100_000]).unwrap();
    let out = memlink(&[
        "call",
        "--daemon",
        small.to_str().unwrap(),
        "basic",
        "echo",
        "--args-file",
        args.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("arguments of 1100000 bytes do not fit the connection's slot")
            && err.contains("max_shm_per_client"),
        "{err}\n{seen}"
    );
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(daemon.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A worker whose module's `memlink_metrics` waits (on a lock one of its calls holds,
/// say) keeps serving its clients, a new one too: the scrape goes without its figures.
/// Before, the worker read its figures on the thread that attaches connections: a client
/// that connected meanwhile was never served, and its call, even with `--timeout`, never
/// returned.
#[test]
fn a_module_whose_metrics_wait_holds_up_no_client() {
    /// The daemon's process group, killed whatever the test's outcome: a worker held in
    /// the module outlives a daemon that is only asked to stop.
    struct Group(std::process::Child);
    impl Drop for Group {
        fn drop(&mut self) {
            let group = rustix::process::Pid::from_raw(self.0.id() as i32).unwrap();
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            let _ = self.0.wait();
        }
    }
    let module = common::compile_c(
        &["runtime/tests/fixtures/slow_metrics.c"],
        "libslow_metrics.so",
        true,
    );
    let dir = common::scratch("slow-metrics");
    let socket = dir.join("memlink.sock");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_memlink"));
    serve
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .args(["--metrics-addr", "127.0.0.1:0"])
        .arg(&module)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut serve, 0);
    let mut daemon = Group(serve.spawn().unwrap());
    let err = daemon.0.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(err));
    let mut addr = None;
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(at) = line.split("http://").nth(1) {
            addr = at.split('/').next().map(str::to_owned);
        }
        if line.contains("serving") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let addr = addr.expect("the daemon says where its metrics are");
    let socket = socket.to_str().unwrap();
    let gate = |byte: &str| {
        Command::new(env!("CARGO_BIN_EXE_memlink"))
            .args(["call", "--daemon", socket, "--timeout", "10s"])
            .args(["slow_metrics", "gate", byte])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    assert!(gate("1").wait_with_output().unwrap().status.success());
    let scrape = || {
        use std::io::{Read, Write};
        let mut http = std::net::TcpStream::connect(&addr).unwrap();
        http.write_all(b"GET /metrics HTTP/1.1\r\nHost: memlink\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        http.read_to_string(&mut text).unwrap();
        text
    };
    // The module's figures wait for the gate: the scrape goes without them.
    let text = scrape();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.contains("memlink_module_gate_reads_total"), "{text}");
    // A client that connects now is served: its call opens the gate. (Bounded, so that
    // a call that never returns fails here rather than holding the test.)
    let mut release = gate("0");
    let mut waited = 0;
    let status = loop {
        if let Some(status) = release.try_wait().unwrap() {
            break Some(status);
        }
        if waited == 600 {
            let _ = release.kill();
            break None;
        }
        waited += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = release.wait_with_output().unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "the call did not return: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The gate open, the module's figures come again.
    while !scrape().contains("memlink_module_gate_reads_total{module=\"slow_metrics\"} 1") {}
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A daemon started with `SIGHUP` ignored (`nohup memlink serve &`, whose session then
/// ends) keeps ignoring it and serves on; without `nohup` a hang-up stops it as `SIGTERM`
/// does (`client/tests/faults.rs`). A handler for it would have overridden the ignoring.
#[test]
fn a_daemon_started_under_nohup_ignores_a_hang_up() {
    use std::os::unix::process::CommandExt;
    let dir = common::scratch("nohup");
    let socket = dir.join("nohup.sock");
    let basic = basic();
    let (mut daemon, seen, _log) =
        common::cli::serve_logging_with(&socket, &[OsStr::new(&basic)], |command| {
            // SAFETY: `signal` is async-signal-safe, as what runs between `fork` and
            // `exec` must be; it sets what `nohup` sets.
            unsafe {
                command.pre_exec(|| {
                    libc::signal(libc::SIGHUP, libc::SIG_IGN);
                    Ok(())
                });
            }
        });
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "stopped by SIGHUP:\n{seen}"
    );
    let out = memlink(&[
        "call",
        "--daemon",
        socket.to_str().unwrap(),
        "basic",
        "ping",
    ]);
    assert_eq!(stdout(&out).trim_end(), "pong", "{}", stderr(&out));
    common::cli::stop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A library asked for where cargo left only a Rust library (`libmylib.rlib`: the crate
/// has no `crate-type = ["cdylib"]`) is told so, not only that no module file is there.
#[test]
fn a_module_built_as_a_rust_library_only_is_told_to_be_a_cdylib() {
    let dir = common::scratch("rlib-only");
    std::fs::write(dir.join("libmylib.rlib"), b"!<arch>\n").unwrap();
    let module = dir.join("libmylib.so");
    let out = memlink_os(&[
        OsStr::new("call"),
        module.as_os_str(),
        OsStr::new("mul"),
        OsStr::new("[2, 3]"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("libmylib.rlib is there")
            && err.contains("`crate-type = [\"cdylib\"]` under `[lib]`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A nested call to a module the run did not load, one its caller does not declare, is
/// told how to give it (it said only "module not found: basic").
#[test]
fn a_nested_call_to_a_module_not_given_says_to_give_it_with_with() {
    let relay = common::module_path("nested_calls");
    let out = memlink_os(&[
        OsStr::new("call"),
        relay.as_os_str(),
        OsStr::new("relay"),
        OsStr::new(r#"["basic", "echo", [1]]"#),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("module not found: basic (a module this one calls is loaded with --with PATH: `basic` was not)"),
        "{err}"
    );
}

/// A nested call to a method its callee lacks is told as such: the error alone, with no
/// payload, read "nested_calls::relay failed: invalid method", as if `relay` were the
/// method missing.
#[test]
fn a_nested_call_to_a_missing_method_says_it_was_the_nested_call() {
    let relay = common::module_path("nested_calls");
    let out = memlink_os(&[
        OsStr::new("call"),
        relay.as_os_str(),
        OsStr::new("relay"),
        OsStr::new(r#"["basic", "no_such_method", []]"#),
        OsStr::new("--with"),
        common::module_path("basic").as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "invalid method (the method is there: most likely a module-to-module call it made named a method its callee lacks)"
        ),
        "{err}"
    );
}

/// A stop asked while the daemon starts (its module's init takes 1.5 s) is kept and acted
/// on once the workers have started: exit 0, the socket file removed. Before, the stop
/// signals were caught only once the workers had started: `SIGTERM` ended the daemon
/// outright (exit status 143), its socket file left, its workers told by a broken pipe.
#[test]
fn a_stop_asked_while_the_daemon_starts_is_a_clean_stop() {
    let module = common::compile_c_with(
        &["runtime/tests/fixtures/wild_echo.c"],
        "libwild_echo_slow_init.so",
        true,
        &["-D_POSIX_C_SOURCE=200809L", "-DFIXTURE_INIT_SLEEP_MS=1500"],
    );
    let dir = common::scratch("stop-while-starting");
    let socket = dir.join("memlink.sock");
    let daemon = std::process::Command::new(env!("CARGO_BIN_EXE_memlink"))
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .arg(&module)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Well inside the module's init (the file is built, the daemon's own start is quick).
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = daemon.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stopped"), "{err}");
    assert!(std::fs::symlink_metadata(&socket).is_err(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second stop asked while the daemon starts stops it at once (a module's init that
/// never returns leaves no other way), its socket file removed; the first alone waits
/// for the start, as above.
#[test]
fn a_second_stop_while_the_daemon_starts_stops_it_at_once() {
    let module = common::compile_c_with(
        &["runtime/tests/fixtures/wild_echo.c"],
        "libwild_echo_slower_init.so",
        true,
        &["-D_POSIX_C_SOURCE=200809L", "-DFIXTURE_INIT_SLEEP_MS=10000"],
    );
    let dir = common::scratch("stop-twice-while-starting");
    let socket = dir.join("memlink.sock");
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_memlink"))
        .arg("serve")
        .arg("--socket")
        .arg(&socket)
        .arg(&module)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "one stop waits for the start"
    );
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let asked = std::time::Instant::now();
    let ended = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break Some(status);
        }
        if asked.elapsed() > std::time::Duration::from_secs(3) {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    if ended.is_none() {
        let _ = daemon.kill();
    }
    assert!(
        ended.is_some(),
        "a second stop ended the daemon while its module's init ran"
    );
    assert!(
        std::fs::symlink_metadata(&socket).is_err(),
        "the socket file is removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A daemon that stops shuts its modules down: each worker unloads its modules, running
/// their `memlink_shutdown`, before it exits (a module whose shutdown fails is told in
/// the log, which is how this test sees it ran, a shutdown that takes a while). Before, the last reference to a worker's
/// runtime was dropped on its thread answering scrapes while the process exited: no
/// module's shutdown ran.
#[test]
fn a_daemon_that_stops_shuts_its_modules_down() {
    let module = common::compile_c_with(
        &["runtime/tests/fixtures/versioned.c"],
        "libversioned_shutdown_told.so",
        true,
        &[
            "-DMODULE_NAME=\"shutdown_told\"",
            "-DMODULE_VERSION=\"1.0.0\"",
            "-DFIXTURE_SHUTDOWN_STATUS=MEMLINK_STATUS_FAILED",
            // A shutdown that takes a while (some tens of milliseconds).
            "-DFIXTURE_SHUTDOWN_SPINS=100000000",
        ],
    );
    let dir = common::scratch("stop-shuts-down");
    let socket = dir.join("memlink.sock");
    let (mut daemon, mut log, rest) = common::cli::serve_logging(&socket, &[module.as_os_str()]);
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    // Until the daemon's stderr closes, with its exit.
    for line in rest {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(daemon.wait().unwrap().success(), "{log}");
    assert!(
        log.contains("memlink_shutdown failed with status 10 (Failed)"),
        "the module's shutdown did not run:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A settings file that leaves the socket to `--socket`: the flag overrides the file,
/// as the docs say, so the file need not name one. Before, the file was refused for
/// its missing `socket` before the flag was read.
#[test]
fn serve_takes_the_socket_from_the_flag_when_the_settings_leave_it_out() {
    let dir = common::scratch("socket-from-flag");
    let socket = dir.join("memlink.sock");
    let config = dir.join("memlink.toml");
    std::fs::write(
        &config,
        format!(
            "[[modules]]\npath = {:?}\n[runtime]\nlog_level = \"info\"\n",
            basic()
        ),
    )
    .unwrap();
    let (mut daemon, seen) =
        common::cli::serve_all(&socket, &[OsStr::new("--config"), config.as_os_str()]);
    let out = memlink(&[
        "call",
        "--daemon",
        socket.to_str().unwrap(),
        "basic",
        "add",
        "[2, 3]",
    ]);
    assert_eq!(stdout(&out).trim(), "5", "{}\n{seen}", stderr(&out));
    let pid = rustix::process::Pid::from_raw(daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(daemon.wait().unwrap().success());
    // Neither names one: said so.
    let err = serve_refused(&config);
    assert!(err.contains("no socket: pass --socket PATH"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A settings file TOML cannot read is named with the line and column of the fault and
/// what it is, on one line. Before, TOML's caret drawing came through escaped
/// (`error at line 1, column 10\n  |\n1 | socket = 5\n  |          ^\n...`).
#[test]
fn serve_says_where_a_settings_file_is_wrong_on_one_line() {
    let dir = common::scratch("toml-error");
    let config = dir.join("memlink.toml");
    std::fs::write(&config, "# settings\nsocket = 5\n").unwrap();
    let err = serve_refused(&config);
    let want = format!(
        "{}: line 2, column 10: invalid type: integer `5`, expected a path",
        config.display()
    );
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("\\n"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A socket in a directory that exists but where nothing can be made (`/proc`): the
/// error says what the system said, not that the directory does not exist.
#[test]
fn serve_does_not_call_a_directory_that_exists_missing() {
    let socket = std::path::Path::new("/proc/memlink-test.sock");
    let out = memlink_os(&[
        OsStr::new("serve"),
        OsStr::new("--socket"),
        socket.as_os_str(),
        common::module_path("basic").as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot create the socket /proc/memlink-test.sock: cannot open /proc/memlink-test.sock.lock beside it"),
        "{err}"
    );
    assert!(!err.contains("does not exist"), "{err}");
}

/// `memlink call --daemon --timeout` to a socket that takes the connection and never
/// answers the hello ends at the timeout, saying so. Before, it waited the 10 s a client
/// gives any daemon's welcome, whatever `--timeout` said.
#[test]
fn a_daemon_call_with_a_timeout_ends_there_when_no_welcome_comes() {
    let dir = common::scratch("silent-socket");
    let (_listener, socket) = common::cli::silent_socket(&dir);
    let out = memlink(&[
        "call",
        "--daemon",
        &socket,
        "--timeout",
        "300ms",
        "basic",
        "add",
        "[1, 2]",
    ]);
    common::cli::assert_no_welcome_within_300ms(&out, &socket);
    let _ = std::fs::remove_dir_all(&dir);
}
