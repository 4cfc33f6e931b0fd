//! `memlink new`: the workspace it makes builds, passes its own tests (which build the
//! module and call it through the runtime), and its module answers `memlink call`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn memlink(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run memlink")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where the scaffolds' cargo builds: one directory, kept between runs.
fn scaffold_target() -> PathBuf {
    common::workspace().join("target/scaffold")
}

/// How a scaffold's cargo is told to build in `scaffold_target()`: the two ways a
/// newcomer may have set it, both of which the generated host must follow.
enum TargetDir {
    Variable,
    Config,
}

/// Runs `cargo ARGS --quiet` in the workspace `root`, with this workspace's lock file
/// (the same dependency versions: nothing new to download), building in
/// `scaffold_target()` as `how` says.
fn cargo(root: &Path, args: &[&str], how: TargetDir) -> Output {
    std::fs::copy(
        common::workspace().join("Cargo.lock"),
        root.join("Cargo.lock"),
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args(args).arg("--quiet").current_dir(root);
    match how {
        TargetDir::Variable => {
            command.env("CARGO_TARGET_DIR", scaffold_target());
        }
        TargetDir::Config => {
            let config = format!("[build]\ntarget-dir = {:?}\n", scaffold_target());
            std::fs::create_dir_all(root.join(".cargo")).unwrap();
            std::fs::write(root.join(".cargo/config.toml"), config).unwrap();
            // Either variable would win over the config.
            command
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_BUILD_TARGET_DIR");
        }
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("run cargo {args:?}: {e}"))
}

/// The scaffold as a newcomer gets it: from a `memlink` that is not in the checkout it
/// was built in (installed, or built into another target directory), with the target
/// directory set in `.cargo/config.toml`. Its name is also a crate's in its dependency
/// graph (`serde`): its own test once built it with `cargo build -p serde`, which
/// Cargo refuses as ambiguous.
#[test]
fn a_new_workspace_builds_passes_its_tests_and_answers_memlink_call() {
    let dir = common::scratch("memlink-new");
    // The real binary, copied outside the checkout: it still finds the checkout.
    let elsewhere = std::env::temp_dir().join(format!("memlink-new-bin-{}", std::process::id()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    let installed = elsewhere.join("memlink");
    std::fs::copy(env!("CARGO_BIN_EXE_memlink"), &installed).unwrap();
    let out = Command::new(&installed)
        .args(["new", "serde"])
        .current_dir(&dir)
        .output()
        .expect("run the copied memlink");
    let _ = std::fs::remove_dir_all(&elsewhere);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let root = dir.join("serde");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let checkout = common::workspace().canonicalize().unwrap();
    assert!(
        manifest.contains(&format!(
            "memlink-msdk = {{ path = {:?} }}",
            checkout.join("msdk").to_string_lossy()
        )),
        "{manifest}"
    );
    assert!(
        text(&out.stdout).contains(&format!(
            "(memlink from the memlink checkout at {})",
            checkout.display()
        )),
        "{}",
        text(&out.stdout)
    );

    let test = cargo(&root, &["test"], TargetDir::Config);
    assert!(
        test.status.success(),
        "the new workspace's tests pass:\n{}\n{}",
        text(&test.stdout),
        text(&test.stderr)
    );
    assert_eq!(
        text(&test.stdout).matches("1 passed").count(),
        2,
        "its module test (through the testing harness) and host test ran: {}",
        text(&test.stdout)
    );
    // The host finds the module its test built, beside it.
    let run = cargo(&root, &["run", "-p", "serde-host"], TargetDir::Config);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("add(2, 3) = 5"),
        "{}",
        text(&run.stdout)
    );
    // Given a module that is not there, the host says so in a sentence, not its `Debug`
    // (`FileNotFound { path: ... }`).
    let run = cargo(
        &root,
        &["run", "-p", "serde-host", "--", "/no/such/libserde.so"],
        TargetDir::Config,
    );
    assert!(!run.status.success());
    assert!(
        text(&run.stderr).contains("error: no module file at /no/such/libserde.so"),
        "{}",
        text(&run.stderr)
    );
    let library = scaffold_target().join("debug").join(format!(
        "{}serde.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    let call = memlink(&dir, &["call", library.to_str().unwrap(), "add", "[2, 3]"]);
    assert!(call.status.success(), "{}", text(&call.stderr));
    assert_eq!(text(&call.stdout).trim(), "5");
    let call = memlink(&dir, &["call", library.to_str().unwrap(), "echo", "hi"]);
    assert_eq!(text(&call.stdout).trim(), "hi");
    // Its own failure is the module's, not a nested call's.
    let call = memlink(
        &dir,
        &["call", library.to_str().unwrap(), "add", "[4294967295, 1]"],
    );
    assert_eq!(
        text(&call.stderr).trim(),
        "error: serde::add failed: the sum overflows"
    );

    // It does not write over what is there.
    let again = memlink(&dir, &["new", "serde"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_source_of_the_memlink_crates_can_be_chosen_and_bad_names_are_refused() {
    let dir = common::scratch("memlink-new-sources");
    let url = "https://example.invalid/memlink.git";
    let out = memlink(&dir, &["new", "from_git", "--git", url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = std::fs::read_to_string(dir.join("from_git/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("memlink-msdk = {{ git = {url:?} }}"))
            && manifest.contains(&format!(
                "memlink-runtime = {{ git = {url:?}, default-features = false }}"
            )),
        "{manifest}"
    );

    let not_a_checkout = memlink(&dir, &["new", "x", "--path", "/"]);
    assert!(!not_a_checkout.status.success());
    assert!(
        text(&not_a_checkout.stderr).contains("not a memlink checkout"),
        "{}",
        text(&not_a_checkout.stderr)
    );
    for bad in ["Demo", "1st", "my-module", "", "self", "std", "test"] {
        let out = memlink(&dir, &["new", bad]);
        assert!(!out.status.success(), "{bad:?}");
        assert!(
            text(&out.stderr).contains("is not a module name"),
            "{bad:?}: {}",
            text(&out.stderr)
        );
        assert!(!dir.join(bad).join("Cargo.toml").exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fenced blocks of `lang` in the part of README.md between the headings `from`
/// and `to`, in order.
fn readme_blocks(from: &str, to: &str, lang: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(common::workspace().join("README.md")).unwrap();
    let start = readme
        .find(from)
        .unwrap_or_else(|| panic!("README has {from}"));
    let end = readme[start..].find(to).map_or(readme.len(), |e| start + e);
    let fence = format!("```{lang}\n");
    readme[start..end]
        .split(&fence)
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect()
}

/// README.md's "Writing a module" snippets (the module's Cargo.toml and exports, the
/// shared types crate, the zero-copy export) and "Hosting modules" snippet, unchanged
/// but for the SDK's git line made a path, built in a workspace `memlink new` made; the
/// host snippet then loads the module and calls it, and `memlink call` answers.
#[test]
fn the_readmes_snippets_build_in_a_new_workspace_and_answer() {
    let dir = common::scratch("memlink-readme");
    let checkout = common::workspace().canonicalize().unwrap();
    let out = memlink(&dir, &["new", "my_module"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let root = dir.join("my_module");
    let write = |file: &str, body: String| std::fs::write(root.join(file), body).unwrap();
    let package = |name: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n")
    };

    let tomls = readme_blocks("## Writing a module", "## Hosting modules", "toml");
    let rusts = readme_blocks("## Writing a module", "## Hosting modules", "rust");
    assert_eq!(
        (tomls.len(), rusts.len()),
        (2, 4),
        "the blocks this test knows"
    );
    let git = "memlink-msdk = { git = \"https://github.com/memlink/memlink\" }";
    assert!(tomls[0].contains(git), "{}", tomls[0]);
    let path = format!(
        "memlink-msdk = {{ path = {:?} }}",
        checkout.join("msdk").to_string_lossy()
    );
    write(
        "module/Cargo.toml",
        package("my_module") + &tomls[0].replace(git, &path),
    );
    write("types/Cargo.toml", package("my_module_types") + &tomls[1]);
    // The exports, their tests, the shared type, the zero-copy export.
    write(
        "module/src/lib.rs",
        format!("{}\n{}\nmod zero_copy;\n", rusts[0], rusts[1]),
    );
    write("types/src/lib.rs", rusts[2].clone());
    write("module/src/zero_copy.rs", rusts[3].clone());
    let host = readme_blocks("## Hosting modules", "## Serving modules", "rust");
    assert_eq!(host.len(), 2, "the host's blocks this test knows");
    // The lifecycle snippet needs a directory of versioned modules: it is compiled, in a
    // function the host does not call.
    write(
        "host/src/main.rs",
        format!(
            "fn main() -> Result<(), Box<dyn std::error::Error>> {{\n{}\nOk(())\n}}\n\n\
             #[allow(dead_code)] // compiled, not run: see the test\n\
             fn lifecycle() -> Result<(), Box<dyn std::error::Error>> {{\n{}\nOk(())\n}}\n",
            host[0], host[1]
        ),
    );

    // `cargo test` builds everything, and runs the README's module test (through the
    // testing harness) and the generated host's test (through the runtime).
    // The target directory as a variable here (the other scaffold sets it in a config).
    let test = cargo(&root, &["test"], TargetDir::Variable);
    assert!(
        test.status.success(),
        "the README's snippets build and their tests pass:\n{}\n{}",
        text(&test.stdout),
        text(&test.stderr)
    );
    assert_eq!(
        text(&test.stdout).matches("1 passed").count(),
        2,
        "the README's module test and the host's test ran: {}",
        text(&test.stdout)
    );
    let target = scaffold_target();
    let library = target.join("debug").join(format!(
        "{}my_module.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    // The host snippet loads `target/debug/libmy_module.so` (where cargo leaves the
    // module, from the workspace's root) and asserts what the calls return.
    let run = dir.join("run");
    std::fs::create_dir_all(run.join("target/debug")).unwrap();
    std::fs::copy(&library, run.join("target/debug/libmy_module.so")).unwrap();
    let host = Command::new(target.join("debug/my_module-host"))
        .current_dir(&run)
        .output()
        .expect("run the host snippet");
    assert!(host.status.success(), "{}", text(&host.stderr));
    let module = "target/debug/libmy_module.so";
    let call = memlink(&run, &["call", module, "add", "[2, 3]"]);
    assert_eq!(text(&call.stdout).trim(), "5", "{}", text(&call.stderr));
    let inspect = memlink(&run, &["inspect", module]);
    let listing = text(&inspect.stdout);
    for export in ["echo", "add", "async_process", "use_arena", "centroid"] {
        assert!(
            listing.lines().any(|l| l.trim_start().starts_with(export)),
            "{export}: {listing}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
