//! The `memlink` command line, run as a user would.

mod common;

use std::process::{Command, Output};

fn memlink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(args)
        .output()
        .expect("run memlink")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
    assert!(text
        .lines()
        .any(|l| l.contains("async_process") && l.ends_with("async")));
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
    let out = memlink(&["call", &b, "chatty", "4", "--repeat", "3", "--stats"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("memlink_calls_total{module=\"basic\",method=\"chatty\"} 3"),
        "{text}"
    );
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
        err.contains("rkyv archive of `") && err.contains("Runtime::archived"),
        "{err}"
    );
    assert!(
        !err.contains("subtree pointer"),
        "the module never saw the bytes: {err}"
    );
}
