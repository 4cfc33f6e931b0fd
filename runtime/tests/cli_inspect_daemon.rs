//! `memlink inspect --daemon`: what a running daemon serves, asked from the command line.

mod common;

use std::ffi::OsStr;

use common::cli::{memlink, stdout};
use common::stderr;

/// Every module a daemon serves is listed with its methods (formats, parameter counts,
/// signatures); a name lists that module alone; `--json` describes the same for tools; a
/// module the daemon does not serve is an error that names it.
#[test]
fn inspect_daemon_lists_the_modules_served_and_their_methods() {
    let dir = common::scratch("inspect-daemon");
    let socket = dir.join("memlink.sock");
    let (basic, zero_copy) = (
        common::module_path("basic"),
        common::module_path("zero_copy"),
    );
    let (daemon, seen) =
        common::cli::serve_all(&socket, &[basic.as_os_str(), zero_copy.as_os_str()]);
    let sock = socket.to_str().unwrap();

    let out = memlink(&["inspect", "--daemon", sock]);
    assert!(out.status.success(), "{}\n{seen}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("daemon {sock} serves 2 modules\n")),
        "{text}"
    );
    assert!(
        text.contains("\nmodule basic\n") && text.contains("\nmodule zero_copy\n"),
        "{text}"
    );
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed: {text}"))
            .to_owned()
    };
    let add = line("add");
    assert!(
        add.contains("msgpack") && add.ends_with("add(a: u32, b: u32) -> u32"),
        "{add}"
    );
    assert!(line("echo").contains(" raw "), "{}", line("echo"));
    assert!(
        line("centroid").contains("archived"),
        "{}",
        line("centroid")
    );

    // One module by name: it alone, with no header.
    let out = memlink(&["inspect", "--daemon", sock, "basic"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let one = stdout(&out);
    assert!(one.starts_with("module basic\n"), "{one}");
    assert!(!one.contains("zero_copy"), "{one}");

    let out = memlink(&["inspect", "--daemon", sock, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["daemon"], sock);
    let modules = value["modules"].as_array().unwrap();
    let names: Vec<&str> = modules
        .iter()
        .map(|m| m["module"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{value:#}");
    assert!(
        names.contains(&"basic") && names.contains(&"zero_copy"),
        "{names:?}"
    );
    let zc = modules.iter().find(|m| m["module"] == "zero_copy").unwrap();
    let centroid = zc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "centroid")
        .unwrap();
    assert_eq!(centroid["args"], "archived");
    assert_eq!(centroid["arg_count"], 1);
    assert!(
        centroid["args_type"]["type"]
            .as_str()
            .unwrap()
            .contains("Point"),
        "{centroid:#}"
    );
    assert!(centroid["args_type"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("0x"));

    let out = memlink(&["inspect", "--daemon", sock, "nosuch"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nosuch"), "{err}");

    // `--with` loads modules in this process: no use with a daemon.
    let out = memlink(&["inspect", "--daemon", sock, "--with", "x.so"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    common::cli::stop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A socket where nothing answers ends the listing at `--timeout`, with an error that
/// says so; never a hang.
#[test]
fn inspect_daemon_ends_at_its_timeout_when_no_welcome_comes() {
    let dir = common::scratch("inspect-silent");
    let socket = dir.join("silent.sock");
    // Listens and never accepts: the connection and the hello queue up unanswered.
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let out = memlink(&[
        "inspect",
        "--daemon",
        socket.to_str().unwrap(),
        "--timeout",
        "300ms",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the daemon at {} did not welcome the connection within 300ms",
            socket.display()
        )),
        "{err}"
    );
    // No socket at all: said at once.
    let out = common::cli::memlink_os(&[
        OsStr::new("inspect"),
        OsStr::new("--daemon"),
        dir.join("none.sock").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
