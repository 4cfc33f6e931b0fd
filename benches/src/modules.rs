//! Building what the benchmarks load: the example modules (in release, like the code
//! measuring them) and the plain `extern "C"` baseline library.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The example modules the benchmarks load.
const EXAMPLES: &[&str] = &["basic", "nested_calls", "datasets"];

/// The workspace root (the parent of this package).
pub fn workspace() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_owned()
}

/// The cargo that runs us (`cargo bench` and `cargo run` set `CARGO`), else the one that
/// built us.
fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from(env!("CARGO")), PathBuf::from)
}

/// Path of the release cdylib of the example module `name` (`basic`, `nested_calls`, `datasets`).
///
/// The first call runs `cargo build --release` for every example the benchmarks use, so
/// the modules are never stale nor built in debug while the host is optimized.
pub fn example(name: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<HashMap<String, PathBuf>, String>> = OnceLock::new();
    let built = BUILT.get_or_init(build_examples).as_ref()?;
    built
        .get(name)
        .cloned()
        .ok_or_else(|| format!("cargo built no cdylib for the example `{name}`"))
}

fn build_examples() -> Result<HashMap<String, PathBuf>, String> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(workspace())
        .args(["build", "--release", "--quiet"])
        .args(["--message-format=json-render-diagnostics"])
        .args(["-p", "memlink-examples"]);
    for name in EXAMPLES {
        cmd.args(["--example", name]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo to build the example modules: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the example modules failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut found = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let name = msg["target"]["name"].as_str().unwrap_or_default();
        for file in msg["filenames"].as_array().into_iter().flatten() {
            let file = PathBuf::from(file.as_str().unwrap_or_default());
            if file
                .extension()
                .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
            {
                found.insert(name.to_owned(), file);
            }
        }
    }
    Ok(found)
}

/// Path of the baseline library, compiled from `fixtures/baseline.rs` with plain rustc at
/// `-C opt-level=3` (it uses nothing of memlink, so it needs no cargo).
pub fn baseline() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(build_baseline).clone()
}

fn build_baseline() -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/baseline.rs");
    let dir = workspace().join("target/bench-fixtures");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = format!(
        "libmemlink_bench_baseline.{}",
        std::env::consts::DLL_EXTENSION
    );
    let out = dir.join(&file);
    // Written under another name and renamed: a process that still has the old file
    // mapped keeps its copy instead of seeing it change under it.
    let tmp = dir.join(format!("{file}.{}", std::process::id()));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let status = Command::new(rustc)
        .args(["--crate-type", "cdylib", "--edition", "2021"])
        .args(["-C", "opt-level=3", "-o"])
        .arg(&tmp)
        .arg(&src)
        .status()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    if !status.success() {
        return Err(format!("compiling {} failed", src.display()));
    }
    std::fs::rename(&tmp, &out).map_err(|e| format!("cannot rename to {}: {e}", out.display()))?;
    Ok(out)
}
