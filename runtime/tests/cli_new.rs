//! `memlink new` run as a user would: where it takes memlink from, written into the new
//! workspace's Cargo.toml.

mod common;

use std::ffi::OsStr;
use std::process::Command;

use common::{memlink_to, stderr};

/// `memlink new` writes where memlink comes from into the new workspace's Cargo.toml as
/// TOML strings that read back as given, whatever characters they hold; an empty
/// `--git` URL, or a checkout whose path is not UTF-8 (which a Cargo.toml cannot name),
/// is refused and makes nothing.
#[test]
fn new_writes_memlinks_source_as_toml_that_reads_back_or_refuses_it() {
    use std::os::unix::ffi::OsStrExt;
    let dir = common::scratch("new-sources");
    let piped = std::process::Stdio::piped;
    let dependency = |name: &str, key: &str| -> String {
        let text = std::fs::read_to_string(dir.join(name).join("Cargo.toml")).unwrap();
        let manifest: toml::Table = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{name}'s Cargo.toml is not TOML: {e}\n{text}"));
        manifest["workspace"]["dependencies"]["memlink-msdk"][key]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let out = memlink_to(&["new", "empty_git", "--git", ""], &dir, piped());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--git"), "{err}");
    assert!(!dir.join("empty_git").exists(), "{err}");

    let url = "https://example.com/a\"b\\c\u{7f}d\te\u{1}";
    let out = memlink_to(&["new", "odd_git", "--git", url], &dir, piped());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dependency("odd_git", "git"), url);

    // A checkout (as `memlink new` recognizes one) at a path TOML must escape.
    let make_checkout = |root: &std::path::Path| {
        for (sub, name) in [("msdk", "memlink-msdk"), ("runtime", "memlink-runtime")] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
            std::fs::write(
                root.join(sub).join("Cargo.toml"),
                format!("[package]\nname = \"{name}\"\n"),
            )
            .unwrap();
        }
    };
    let odd = dir.join("check\"out\\\u{7f}");
    make_checkout(&odd);
    let out = memlink_to(
        &["new", "odd_path", "--path", odd.to_str().unwrap()],
        &dir,
        piped(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        dependency("odd_path", "path"),
        odd.join("msdk").to_str().unwrap()
    );

    let mut bytes = dir.as_os_str().as_bytes().to_vec();
    bytes.extend_from_slice(b"/check\xffout");
    let not_utf8 = std::path::PathBuf::from(OsStr::from_bytes(&bytes));
    make_checkout(&not_utf8);
    let out = Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(["new", "lossy_path", "--path"])
        .arg(&not_utf8)
        .current_dir(&dir)
        .output()
        .expect("run memlink");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("UTF-8"), "{err}");
    assert!(!dir.join("lossy_path").exists(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A name already taken, by anything at all, is refused saying so: a symbolic link to
/// nothing too (`Path::exists` follows it, and the error was "cannot create NAME: File
/// exists"). Nothing is written through the link.
#[test]
fn new_refuses_a_name_taken_by_a_dangling_symbolic_link() {
    let dir = common::scratch("new-dangling-link");
    let target = dir.join("nowhere");
    std::os::unix::fs::symlink(&target, dir.join("taken")).unwrap();
    let out = memlink_to(&["new", "taken"], &dir, std::process::Stdio::piped());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: taken already exists"), "{err}");
    assert!(!target.exists(), "nothing made through the link");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A name taken by a directory is refused with the way out: another name, or the
/// directory moved (before: "probe already exists", and no word of what to do). What
/// is there is left as it was.
#[test]
fn new_refuses_an_existing_directory_and_says_what_to_do() {
    let dir = common::scratch("new-existing-dir");
    std::fs::create_dir_all(dir.join("taken")).unwrap();
    std::fs::write(dir.join("taken/mine.txt"), "mine").unwrap();
    let out = memlink_to(&["new", "taken"], &dir, std::process::Stdio::piped());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("taken already exists")
            && err.contains("choose another name, or move taken away"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.join("taken")).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing written beside mine.txt");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--path` to a directory that is not there, or is no checkout, is refused naming the
/// option and what it wants (before: "/nowhere: No such file or directory (os error
/// 2)", with no word of which path or what to give), and makes nothing.
#[test]
fn new_refuses_a_path_that_is_no_checkout_and_says_what_to_give() {
    let dir = common::scratch("new-bad-path");
    let missing = dir.join("nowhere");
    let missing = missing.to_str().unwrap();
    let out = memlink_to(
        &["new", "x", "--path", missing],
        &dir,
        std::process::Stdio::piped(),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!("error: --path {missing}: "))
            && err.contains("give the directory of a memlink checkout"),
        "{err}"
    );
    let out = memlink_to(
        &["new", "x", "--path", "/"],
        &dir,
        std::process::Stdio::piped(),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not a memlink checkout") && err.contains("--git URL"),
        "{err}"
    );
    assert!(!dir.join("x").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The workspace `new` makes is as rustfmt leaves it, whichever side of `memlink_*` its
/// name sorts on (the `NAME_types` import is sorted among the others): an author's
/// first `cargo fmt --check` passes (before: every Rust file it made was rewritten).
#[test]
fn new_makes_files_rustfmt_leaves_as_they_are() {
    let dir = common::scratch("new-rustfmt");
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into());
    for name in ["alpha", "zeta"] {
        let out = memlink_to(&["new", name], &dir, std::process::Stdio::piped());
        assert!(out.status.success(), "{}", stderr(&out));
        for file in [
            "types/src/lib.rs",
            "module/src/lib.rs",
            "host/src/main.rs",
            "host/tests/calls.rs",
        ] {
            let path = dir.join(name).join(file);
            let check = Command::new(&rustfmt)
                .args([OsStr::new("--edition=2021"), OsStr::new("--check")])
                .arg(&path)
                .output()
                .unwrap_or_else(|e| panic!("run {rustfmt}: {e}"));
            assert!(
                check.status.success(),
                "{}: rustfmt would change it:\n{}{}",
                path.display(),
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
