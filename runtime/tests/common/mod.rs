//! Builds the example modules once per test binary and loads them.
#![allow(dead_code)] // each test binary uses its own part of this harness

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use memlink_runtime::{ModuleHandle, ModuleRef, Runtime};

/// Path of every cdylib the workspace's module packages build, by target name.
fn artifacts() -> &'static Vec<(String, PathBuf)> {
    static BUILT: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    BUILT.get_or_init(|| {
        build_cdylibs(
            &[
                "-p",
                "memlink-examples",
                "--examples",
                "-p",
                "memlink-seed-readme",
                "-p",
                "memlink-greeter-v1",
                "-p",
                "memlink-greeter-v2",
                "-p",
                "memlink-greeter-v3",
                "-p",
                "memlink-example-library-user",
                "--lib",
            ],
            "the example modules",
        )
    })
}

/// `cargo build` of the workspace with `args` (packages, targets, a profile), run to its
/// end: every cdylib it built, by target name, read from cargo's own messages (so
/// wherever the target directory is). `what` names the build in its failure.
pub fn build_cdylibs(args: &[&str], what: &str) -> Vec<(String, PathBuf)> {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "build",
            "--quiet",
            "--message-format=json-render-diagnostics",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run cargo to build {what}: {e}"));
    assert!(
        out.status.success(),
        "building {what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let name = msg["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for file in msg["filenames"].as_array().into_iter().flatten() {
            let file = PathBuf::from(file.as_str().unwrap_or_default());
            if file
                .extension()
                .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
            {
                found.push((name.clone(), file));
            }
        }
    }
    found
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The built cdylib of the example (or package library) `name`.
pub fn module_path(name: &str) -> PathBuf {
    artifacts()
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("no cdylib named `{name}` was built"))
}

/// The built-in figures of the export `method` (of whichever loaded module has one).
pub fn figures_of(runtime: &Runtime, method: &str) -> memlink_runtime::MethodMetrics {
    runtime
        .metrics()
        .into_iter()
        .flat_map(|m| m.methods)
        .find(|m| m.method == method)
        .unwrap_or_else(|| panic!("no figures of `{method}`"))
}

/// A fresh runtime with `name` loaded.
pub fn load(name: &str) -> (Runtime, ModuleHandle) {
    let runtime = Runtime::with_local_resolver();
    let handle = runtime
        .load(ModuleRef::from_path(module_path(name)))
        .unwrap_or_else(|e| panic!("load {name}: {e}"));
    (runtime, handle)
}

/// A fresh directory for this test's files, under the workspace's target directory
/// (emptied if a run before left it).
pub fn scratch(name: &str) -> PathBuf {
    let dir = workspace()
        .join("target/test-fixtures")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Puts a copy of `from` at `to` the way a build does: written beside it, then renamed
/// over it.
pub fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("partial");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// Compiles `tests/fixtures/{name}.rs` into a cdylib with plain rustc (no memlink-msdk:
/// these fixtures imitate broken or foreign libraries). Each test binary builds its own
/// copy (test binaries run at once, and one must not load a file another is writing),
/// telling it this runtime's `ModuleInfo` size (`MEMLINK_MODULE_INFO_SIZE`), which the
/// fixtures that describe a valid module read.
pub fn fixture(name: &str) -> PathBuf {
    build_fixture(name, None)
}

/// [`fixture`] `name` built as the module `module` (for a fixture that reads
/// `MEMLINK_FIXTURE_NAME`).
pub fn fixture_named(name: &str, module: &str) -> PathBuf {
    build_fixture(name, Some(module))
}

fn build_fixture(name: &str, module: Option<&str>) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.rs"));
    let dir = workspace()
        .join("target/test-fixtures")
        .join(env!("CARGO_CRATE_NAME"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = match module {
        Some(module) => format!("lib{name}_as_{module}"),
        None => format!("lib{name}"),
    };
    let out = dir.join(format!("{file}.{}", std::env::consts::DLL_EXTENSION));
    let info_size = size_of::<memlink_abi::ModuleInfo>();
    let mut rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    rustc
        .args(["--crate-type", "cdylib", "--edition", "2021", "-o"])
        .arg(&out)
        .arg(&src)
        .env("MEMLINK_MODULE_INFO_SIZE", info_size.to_string());
    if let Some(module) = module {
        rustc.env("MEMLINK_FIXTURE_NAME", module);
    }
    let status = rustc.status().expect("run rustc");
    assert!(status.success(), "compiling fixture {name} failed");
    out
}

/// MessagePack of `value`, as a host would send it.
pub fn mp<T: serde::Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).unwrap()
}

/// Decodes a MessagePack result.
pub fn de<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    rmp_serde::from_slice(bytes).unwrap_or_else(|e| panic!("decode {bytes:?}: {e}"))
}

/// A copy of the module `name` under another file name, so that it can be loaded a
/// second time as a separate image (one file maps to one image and its statics).
///
/// Written under a private name and renamed into place: tests running at once may make
/// the same copy, and a library another test has mapped must never be rewritten under it
/// (a rename leaves the mapped file's contents alone).
pub fn module_copy(name: &str, copy: &str) -> PathBuf {
    module_copy_of(&module_path(name), copy)
}

/// [`module_copy`] of the library at `from`.
pub fn module_copy_of(from: &Path, copy: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = workspace().join("target/test-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let to = dir.join(format!("lib{copy}.{}", std::env::consts::DLL_EXTENSION));
    let tmp = dir.join(format!(
        ".lib{copy}.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, &to).unwrap();
    to
}

/// A runtime with `config` and the modules `names` loaded under their own names.
pub fn load_all(
    config: memlink_runtime::RuntimeConfig,
    names: &[&str],
) -> (Runtime, Vec<ModuleHandle>) {
    let runtime = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let handles = names
        .iter()
        .map(|n| {
            runtime
                .load(ModuleRef::from_path(module_path(n)))
                .unwrap_or_else(|e| panic!("load {n}: {e}"))
        })
        .collect();
    (runtime, handles)
}

/// Long enough that only a hang reaches it, on any machine: waits bounded by it turn a
/// hang into a failed test instead of a stopped suite, and assert nothing about speed.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends a message each time a module logs `holding` (the `hazards` module's `hold` and
/// `reenter_after` do, once they run): a test waits for it to know a call holds its slot.
struct Holding(std::sync::Mutex<std::sync::mpsc::Sender<()>>);

impl memlink_runtime::LogSink for Holding {
    fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
        if event.message == "holding" {
            let _ = self.0.lock().unwrap().send(());
        }
    }
}

/// A runtime with `config` whose modules report `holding` on the returned channel.
pub fn runtime_with_holding(
    config: memlink_runtime::RuntimeConfig,
) -> (Runtime, std::sync::mpsc::Receiver<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let config = config
        .log_level(tracing::Level::INFO)
        .log_sink(std::sync::Arc::new(Holding(std::sync::Mutex::new(tx))));
    (
        Runtime::new(config, memlink_runtime::resolver::LocalResolver),
        rx,
    )
}

/// Compiles C sources of the repository (paths relative to the workspace) with the
/// system C compiler (`$CC`, else `cc`; for `.cpp` sources the C++ one, `$CXX`, else
/// `c++`) and `include/` on the include path, into
/// `target/test-fixtures/{out}`; `shared` makes a shared library. Each output is built
/// once per test binary, under a private name renamed into place, so that tests running
/// at once never see a half-written file.
pub fn compile_c(sources: &[&str], out: &str, shared: bool) -> PathBuf {
    compile_c_with(sources, out, shared, &[])
}

/// [`compile_c`] with `extra` arguments after the sources (libraries to link, an rpath),
/// where `{fixtures}` stands for the directory the outputs go to.
pub fn compile_c_with(sources: &[&str], out: &str, shared: bool, extra: &[&str]) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap();
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(out) {
        return path.clone();
    }
    let root = workspace();
    let dir = root.join("target/test-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(out);
    let tmp = dir.join(format!(".{out}.{}", std::process::id()));
    // C++ sources (`.cpp`) go to the C++ compiler (`$CXX`, else `c++`).
    let cpp = sources.iter().any(|s| s.ends_with(".cpp"));
    let (variable, default, std) = if cpp {
        ("CXX", "c++", "-std=c++17")
    } else {
        ("CC", "cc", "-std=c11")
    };
    let compiler = std::env::var(variable).unwrap_or_else(|_| default.into());
    let mut cmd = Command::new(&compiler);
    cmd.args([std, "-Wall", "-Wextra", "-pedantic", "-Werror", "-O1", "-I"])
        .arg(root.join("include"))
        .arg("-o")
        .arg(&tmp);
    if shared {
        cmd.args(["-shared", "-fPIC"]);
    }
    for s in sources {
        cmd.arg(root.join(s));
    }
    for arg in extra {
        cmd.arg(arg.replace("{fixtures}", &dir.to_string_lossy()));
    }
    if !shared {
        cmd.arg("-ldl");
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("run the C compiler `{compiler}`: {e}"));
    assert!(
        output.status.success(),
        "compiling {sources:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::rename(&tmp, &path).unwrap();
    built
        .get_or_insert_with(HashMap::new)
        .insert(out.to_owned(), path.clone());
    path
}

pub mod cli;
pub mod lifecycle;
pub mod promtool;
pub mod records;
pub mod watch;

/// Limits this process's address space (`RLIMIT_AS`) to what it has mapped now and
/// `extra` bytes more, the hard limit kept (only a privileged process may raise it);
/// returns the limit it had, to put back. For a test run in a child process
/// ([`in_child`]): allocations past it fail.
#[cfg(target_os = "linux")]
pub fn limit_address_space(extra: u64) -> rustix::process::Rlimit {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split(' ').next().unwrap().parse().unwrap();
    let limit = pages * 4096 + extra;
    let was = getrlimit(Resource::As);
    let current = was.maximum.map_or(limit, |hard| hard.min(limit));
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(current),
            maximum: was.maximum,
        },
    )
    .unwrap();
    was
}

/// Runs `body` in a child process (this test binary, running only `test`), and fails
/// if the child does: for a test whose failure would take the whole process down (a
/// crash in the dynamic loader), or whose outcome depends on state the process shares
/// with the tests running beside it.
pub fn in_child(test: &str, env: &[(&str, String)], body: impl FnOnce()) {
    if std::env::var("MEMLINK_CHILD_TEST").as_deref() == Ok(test) {
        body();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        // `--include-ignored`: an ignored test run with `--ignored` runs in its child too.
        .args([
            test,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MEMLINK_CHILD_TEST", test)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("re-run the test binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
    assert!(
        out.status.success(),
        "{test} {env:?} failed in a child process ({}):\n{}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

/// The standard error of a process that ran, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `memlink` with `args`, run in `dir`, its standard output `stdout`.
pub fn memlink_to(args: &[&str], dir: &Path, stdout: std::process::Stdio) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_memlink"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run memlink")
}
