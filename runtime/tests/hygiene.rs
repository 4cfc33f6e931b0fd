//! Checks on the repository itself: rules of the project that a reviewer would otherwise
//! have to remember.
//!
//! - No test asserts how fast the machine was. A timed upper bound fails on a loaded CI
//!   machine with nothing wrong; tests assert outcomes (the error, its payload, that a
//!   call ended after its deadline, that a future was cancelled). Waits bounded only to
//!   turn a hang into a failure use `common::HANG` and are not assertions.
//! - `docs/security.md` and `docs/daemon.md` name only tests that exist and run, and
//!   `docs/security.md` lists as a known gap no behaviour whose test passes: a fixed gap
//!   moves out of that section with its fix.

mod common;

use std::path::{Path, PathBuf};

/// Every `.rs` file of the workspace's crates and the fuzz package.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | "corpus" | "regressions" | ".git") {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&common::workspace(), &mut files);
    files
}

/// The text between the parentheses opened at `open` (balanced), or the rest.
fn balanced(text: &str, open: usize) -> &str {
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    &text[open..]
}

/// Names bound to an elapsed time in `text`: `let took = start.elapsed();`.
fn elapsed_names(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(".elapsed()"))
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("let ")?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// The assertions in `text` that bound an elapsed time from above, as `line: text`.
fn timed_upper_bounds(text: &str) -> Vec<String> {
    let mut measured: Vec<String> = elapsed_names(text);
    measured.push("elapsed()".into());
    let mut found = Vec::new();
    for (at, _) in text.match_indices("assert") {
        let Some(open) = text[at..].find('(').map(|o| at + o) else {
            continue;
        };
        let head = &text[at..open];
        if !matches!(
            head,
            "assert!" | "assert_eq!" | "assert_ne!" | "debug_assert!"
        ) {
            continue;
        }
        let body = balanced(text, open);
        let bounded = measured.iter().any(|m| {
            [" <", " <="]
                .iter()
                .any(|op| body.contains(&format!("{m}{op} ")))
        });
        if bounded {
            let line = text[..at].lines().count() + 1;
            found.push(format!(
                "{line}: {}",
                body.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    found
}

#[test]
fn the_timing_check_finds_what_it_looks_for() {
    let sample = "let took = start.elapsed();\nassert!(\n    took < Duration::from_millis(90),\n    \"fast\"\n);\nassert!(start.elapsed() >= d);\nassert!(x.elapsed() <= Duration::ZERO);\n";
    let found = timed_upper_bounds(sample);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("2: took <"), "{found:?}");
}

#[test]
fn no_test_asserts_how_fast_the_machine_was() {
    let mut offenders = Vec::new();
    for file in rust_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        // This file quotes the pattern it looks for.
        if file.ends_with("runtime/tests/hygiene.rs") {
            continue;
        }
        for hit in timed_upper_bounds(&text) {
            offenders.push(format!("{}:{hit}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "assertions that bound a time from above (assert the outcome instead):\n{}",
        offenders.join("\n")
    );
}

/// `name` is a test function (`fn name(`) somewhere in the workspace, and not ignored.
fn live_test(name: &str, files: &[(PathBuf, String)]) -> Option<PathBuf> {
    files.iter().find_map(|(path, text)| {
        let at = text.find(&format!("fn {name}("))?;
        let before = &text[..at];
        let attrs = before.rsplit("\n\n").next().unwrap_or(before);
        (attrs.contains("#[test]") && !attrs.contains("#[ignore")).then(|| path.clone())
    })
}

/// The backticked words of `text` that look like test names (snake case, with `_`).
fn test_names(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.contains('_')
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

/// The tests the docs cite as "`name` in `path`" or "`path::name`".
fn cited_tests(doc: &str) -> Vec<(&str, &str)> {
    // Backticked words sit at odd positions of the split.
    let words: Vec<&str> = doc.split('`').collect();
    let in_path = words
        .windows(3)
        .skip(1)
        .step_by(2)
        .filter(|w| w[1].trim() == "in" && w[2].ends_with(".rs"))
        .map(|w| (w[0], w[2]));
    let qualified = words.iter().skip(1).step_by(2).filter_map(|w| {
        let at = w.find(".rs::")?;
        Some((&w[at + ".rs::".len()..], &w[..at + ".rs".len()]))
    });
    in_path.chain(qualified).collect()
}

/// Every test `doc` cites, as "`name` in `path`" or "`path::name`", runs in that file.
fn cites_live_tests(doc: &str) {
    let root = common::workspace();
    let text = std::fs::read_to_string(root.join(doc)).unwrap();
    let cited = cited_tests(&text);
    assert!(!cited.is_empty(), "{doc} cites the tests that hold it");
    for (name, path) in cited {
        let text = std::fs::read_to_string(root.join(path))
            .unwrap_or_else(|_| panic!("{doc} cites `{path}`, which does not exist"));
        assert!(
            live_test(name, &[(root.join(path), text)]).is_some(),
            "{doc} cites `{name}` in `{path}`: no such test runs there"
        );
    }
}

/// docs/daemon.md cites its tests as `path::name`; a renamed or ignored test would leave
/// a promise there that nothing holds.
#[test]
fn the_daemon_docs_name_real_tests() {
    cites_live_tests("docs/daemon.md");
}

#[test]
fn the_security_docs_name_real_tests_and_no_fixed_gap() {
    let root = common::workspace();
    let doc = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let files: Vec<(PathBuf, String)> = rust_files()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    cites_live_tests("docs/security.md");
    let (protections, gaps) = doc
        .split_once("## Known gaps")
        .expect("docs/security.md has a Known gaps section");
    // A test named without its file ("`name`, both in `file`", or alone in parentheses)
    // escapes `cites_live_tests`: each must still run somewhere. One that did not (a name
    // the test had before it was renamed) was cited as what holds a promise.
    for name in test_names(protections)
        .into_iter()
        .filter(|w| w.matches('_').count() >= 4 && !w.starts_with("memlink_"))
    {
        assert!(
            live_test(name, &files).is_some(),
            "docs/security.md cites `{name}`: no such test runs"
        );
    }
    let gaps = gaps.split("\n## ").next().unwrap_or(gaps);
    for name in test_names(gaps) {
        if let Some(path) = live_test(name, &files) {
            panic!(
                "docs/security.md lists `{name}` as a known gap, but that test runs and passes \
                 ({}): the gap is fixed; say so where the docs list what memlink protects",
                path.display()
            );
        }
    }
}
