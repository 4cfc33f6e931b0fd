//! `memlink inspect --daemon`: what a running daemon serves, asked from the command line.

mod common;

use std::ffi::OsStr;

use common::cli::{memlink, stdout};
use common::stderr;

/// A daemon serving `basic` and `zero_copy`, stopped (and its scratch directory removed)
/// when dropped, whatever the test asserted.
struct Daemon {
    child: Option<std::process::Child>,
    dir: std::path::PathBuf,
    socket: String,
}

impl Daemon {
    fn start(name: &str) -> Daemon {
        let dir = common::scratch(name);
        let socket = dir.join("memlink.sock");
        let (basic, zero_copy) = (
            common::module_path("basic"),
            common::module_path("zero_copy"),
        );
        let (child, _) =
            common::cli::serve_all(&socket, &[basic.as_os_str(), zero_copy.as_os_str()]);
        Daemon {
            child: Some(child),
            dir,
            socket: socket.to_str().unwrap().to_owned(),
        }
    }

    /// `memlink inspect --daemon SOCKET` with `args` after it.
    fn inspect(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["inspect", "--daemon", &self.socket];
        all.extend_from_slice(args);
        memlink(&all)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            if std::thread::panicking() {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
            } else {
                common::cli::stop(child);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every module a daemon serves is listed with its methods (formats, parameter counts,
/// signatures); a name lists that module alone.
#[test]
fn inspect_daemon_lists_the_modules_served_and_their_methods() {
    let daemon = Daemon::start("inspect-daemon");
    let out = daemon.inspect(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("daemon {} serves 2 modules\n", daemon.socket)),
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
    let out = daemon.inspect(&["basic"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let one = stdout(&out);
    assert!(one.starts_with("module basic\n"), "{one}");
    assert!(!one.contains("zero_copy"), "{one}");
}

/// `--json` describes the same for tools, archive types with their fingerprints as the
/// in-process `inspect --json` gives them.
#[test]
fn inspect_daemon_json_describes_the_modules_for_tools() {
    let daemon = Daemon::start("inspect-daemon-json");
    let out = daemon.inspect(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["daemon"], daemon.socket.as_str());
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
    assert!(centroid["result_type"].is_null(), "{centroid:#}");
}

/// A module the daemon does not serve is an error that says so; `--with`, which loads
/// modules in this process, is refused beside `--daemon`.
#[test]
fn inspect_daemon_names_a_module_it_does_not_serve() {
    let daemon = Daemon::start("inspect-daemon-errors");
    let out = daemon.inspect(&["nosuch"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the daemon serves no module `nosuch`"),
        "{err}"
    );
    let out = daemon.inspect(&["--with", "x.so"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}

/// A socket where nothing answers ends the listing at `--timeout`, with an error that
/// says so; never a hang.
#[test]
fn inspect_daemon_ends_at_its_timeout_when_no_welcome_comes() {
    let dir = common::scratch("inspect-silent");
    let (_listener, socket) = common::cli::silent_socket(&dir);
    let out = memlink(&["inspect", "--daemon", &socket, "--timeout", "300ms"]);
    common::cli::assert_no_welcome_within_300ms(&out, &socket);
    // No socket at all: the connection's refusal, not a wait for a welcome.
    let none = dir.join("none.sock");
    let out = common::cli::memlink_os(&[
        OsStr::new("inspect"),
        OsStr::new("--daemon"),
        none.as_os_str(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("nothing listens at {}", none.display())),
        "{err}"
    );

    let _ = std::fs::remove_dir_all(&dir);
}
