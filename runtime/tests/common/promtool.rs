//! `promtool check metrics`, shared by the runtime's tests and the client's (which
//! include this file by path).

use std::io::Write;
use std::process::{Command, Stdio};

/// `promtool check metrics` on `text`, when promtool is installed (`.ci/run` installs
/// Debian's `prometheus` package and sets `MEMLINK_REQUIRE_PROMTOOL=1`, so there it must
/// be; elsewhere a missing promtool skips the check, saying so).
pub fn promtool_accepts(text: &str) {
    let required = std::env::var("MEMLINK_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) if !required => {
            eprintln!("promtool not run ({e}); install Debian's `prometheus` package");
            return;
        }
        Err(e) => panic!("promtool is required here: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
