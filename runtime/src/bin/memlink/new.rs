//! `memlink new NAME`: a workspace with a module, the types it shares with its hosts,
//! and a host, which builds and passes its tests as made.

use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

/// Where the memlink crates are taken from when no checkout is found or given.
const DEFAULT_GIT: &str = "https://github.com/memlink/memlink";

/// `memlink new`'s arguments.
#[derive(ClapArgs)]
pub(crate) struct Args {
    /// The module's name: lowercase letters, digits and `_`, starting with a letter (the
    /// library is then `libNAME.so`).
    name: String,
    /// Take the memlink crates from this checkout (default: the checkout this `memlink`
    /// was built in, if it is still there).
    #[arg(long, value_name = "DIR", conflicts_with = "git")]
    path: Option<PathBuf>,
    /// Take the memlink crates from this git repository instead.
    #[arg(long, value_name = "URL", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    git: Option<String>,
}

/// Where the generated workspace's memlink dependencies come from.
enum Source {
    /// A checkout, at a path that is UTF-8 (a Cargo.toml names no other).
    Path(String),
    Git(String),
}

impl Source {
    /// A checkout's source: its path must be UTF-8, as a Cargo.toml holds only text.
    fn path(root: PathBuf) -> Result<Source, String> {
        root.into_os_string()
            .into_string()
            .map(Source::Path)
            .map_err(|root| {
                format!(
                    "the memlink checkout at {} has a path that is not UTF-8, which a Cargo.toml \
                 cannot name: pass --path DIR with one that is, or --git URL",
                    root.to_string_lossy()
                )
            })
    }

    /// The dependency's TOML for the crate in directory `dir` of the checkout.
    fn dependency(&self, dir: &str, extra: &str) -> String {
        match self {
            Source::Path(root) => {
                // Lossless: both are UTF-8.
                let path = Path::new(root).join(dir);
                format!(
                    "{{ path = {}{extra} }}",
                    toml_string(&path.to_string_lossy())
                )
            }
            Source::Git(url) => format!("{{ git = {}{extra} }}", toml_string(url)),
        }
    }
}

/// `text` as a TOML basic string: quoted, with `"`, `\` and the control characters TOML
/// refuses in one escaped (Rust's `{:?}` writes some as `\u{7f}`, which TOML does not read).
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == '\u{7f}' || (c < ' ' && c != '\t') => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn run(args: Args) -> Result<(), String> {
    check_name(&args.name)?;
    // Why the default checkout was not used, said with where memlink comes from: a
    // scaffold that needs the network to build should not be a surprise.
    let mut no_checkout = None;
    let source = match (args.path, args.git) {
        (Some(path), _) => Source::path(checkout(&path)?)?,
        (None, Some(url)) => Source::Git(url),
        (None, None) => match own_checkout() {
            Some(root) => Source::path(root)?,
            None => {
                no_checkout = Some(format!(
                    "  no memlink checkout at {}, where this memlink was built: building fetches memlink \
                     from git (`--path DIR` takes a checkout instead)\n",
                    built_in().display()
                ));
                Source::Git(DEFAULT_GIT.to_owned())
            }
        },
    };
    let root = PathBuf::from(&args.name);
    // `symlink_metadata`: a symbolic link whose target is missing is there too (`exists`
    // follows it and says no; creating the directory then failed with "File exists").
    if let Ok(there) = std::fs::symlink_metadata(&root) {
        let what = if there.is_symlink() {
            " (a symbolic link)"
        } else {
            ""
        };
        // Say the way out: `new` never writes into what is there, so the author renames
        // one or the other.
        return Err(format!(
            "{} already exists{what}: `memlink new` makes a new directory; choose another name, or move {} away",
            root.display(),
            root.display()
        ));
    }
    for (file, text) in files(&args.name, &source) {
        let path = root.join(file);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let from = match &source {
        Source::Path(p) => format!("the memlink checkout at {p}"),
        Source::Git(url) => format!("{url} (git)"),
    };
    let summary = format!(
        "created {name}/ (memlink from {from})\n{note}  cd {name} && cargo test         # builds the module and calls it through the runtime\n  cargo build && memlink call target/debug/lib{name}.so add '[2, 3]'\n",
        name = args.name,
        note = no_checkout.unwrap_or_default(),
    );
    crate::write_out(summary.as_bytes())
}

fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let good = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !good {
        return Err(format!(
            "`{name}` is not a module name: use lowercase letters, digits and `_`, starting with a letter"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` is not a module name: it is a Rust keyword or the name of a crate of Rust's own, which Cargo refuses as a package name"
        ));
    }
    Ok(())
}

/// Names of the right letters that Cargo refuses as a package's (keywords, reserved
/// words, and the standard crates a package would shadow).
const RESERVED: [&str; 56] = [
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// `dir` if it is a memlink checkout (it holds the SDK and the runtime), made absolute.
fn checkout(dir: &Path) -> Result<PathBuf, String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| {
            // Name the option: the bare OS error did not say which path it was about.
            format!(
                "--path {}: {e}: give the directory of a memlink checkout (the one holding msdk/ and runtime/)",
                dir.display()
            )
        })?;
    if is_checkout(&dir) {
        Ok(dir)
    } else {
        Err(format!(
            "{} is not a memlink checkout (it has no msdk/ and runtime/): give --path the directory of a clone of memlink, or use --git URL",
            dir.display()
        ))
    }
}

fn is_checkout(dir: &Path) -> bool {
    let holds = |crate_dir: &str, name: &str| {
        std::fs::read_to_string(dir.join(crate_dir).join("Cargo.toml"))
            .is_ok_and(|t| t.contains(&format!("name = \"{name}\"")))
    };
    holds("msdk", "memlink-msdk") && holds("runtime", "memlink-runtime")
}

/// The workspace this binary's crate (the runtime) was compiled in.
fn built_in() -> &'static Path {
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR"));
    runtime.parent().unwrap_or(runtime)
}

/// The checkout this binary was built in. Its path is recorded at compile time, since
/// the binary itself may be anywhere (a `CARGO_TARGET_DIR`, `cargo install --path`); if
/// that checkout has gone, one the binary sits in (moved with its `target/`).
fn own_checkout() -> Option<PathBuf> {
    if let Ok(dir) = built_in().canonicalize() {
        if is_checkout(&dir) {
            return Some(dir);
        }
    }
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    exe.ancestors()
        .skip(1)
        .find(|d| is_checkout(d))
        .map(Path::to_owned)
}

/// The generated files, by path inside the new workspace.
fn files(name: &str, source: &Source) -> Vec<(&'static str, String)> {
    let fill = |t: &str| {
        t.replace("{name}", name)
            .replace("{msdk}", &source.dependency("msdk", ""))
            .replace(
                "{runtime}",
                &source.dependency("runtime", ", default-features = false"),
            )
    };
    vec![
        ("Cargo.toml", fill(WORKSPACE)),
        (".gitignore", "/target\n".to_owned()),
        ("README.md", fill(README)),
        ("types/Cargo.toml", fill(TYPES_TOML)),
        ("types/src/lib.rs", fill(TYPES_RS)),
        ("module/Cargo.toml", fill(MODULE_TOML)),
        ("module/src/lib.rs", fill(MODULE_RS)),
        ("host/Cargo.toml", fill(HOST_TOML)),
        ("host/src/main.rs", fill(HOST_RS)),
        ("host/tests/calls.rs", fill(HOST_TEST)),
    ]
}

const WORKSPACE: &str = r#"[workspace]
members = ["module", "types", "host"]
resolver = "2"

[workspace.dependencies]
{name}_types = { path = "types" }
# memlink's crates come from its repository: the crates.io crates named memlink-* are an
# unrelated project.
memlink-msdk = {msdk}
memlink-runtime = {runtime}
# Exactly the SDK's archive format: module and host must agree on it.
rkyv = { version = "0.8.18", default-features = false, features = ["std", "bytecheck"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
"#;

const README: &str = r#"# {name}

A memlink module (`module/`), the types it shares with its hosts (`types/`), and a host
(`host/`).

```sh
# The module's tests, and the host's through the runtime:
cargo test
# target/debug/lib{name}.so, and the host:
cargo build
# The host: loads it and calls each export:
cargo run -p {name}-host
memlink inspect target/debug/lib{name}.so
memlink call target/debug/lib{name}.so add '[2, 3]'
```
"#;

const TYPES_TOML: &str = r#"[package]
name = "{name}_types"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
rkyv.workspace = true
serde.workspace = true
"#;

// The Rust templates are as rustfmt leaves them, so that the author's first `cargo fmt
// --check` passes on files they did not write; `use {name}_types::...` sits in a group
// of its own, since rustfmt sorts a group's imports and the name decides where it sorts.
const TYPES_RS: &str = r#"//! Types {name}'s module and its hosts share: one definition on both sides of an
//! archived call.

use rkyv::{Archive, Deserialize, Serialize};

/// A point in space.
#[derive(
    Archive,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Point {
    /// X.
    pub x: f32,
    /// Y.
    pub y: f32,
    /// Z.
    pub z: f32,
}
"#;

const MODULE_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
memlink-msdk.workspace = true
{name}_types.workspace = true
"#;

const MODULE_RS: &str = r#"//! The {name} module: its exports, called by name from a host.

use memlink_msdk::prelude::*;
use memlink_msdk::rkyv::Archived;

use {name}_types::Point;

/// Adds two numbers (arguments as MessagePack: `[2, 3]`).
#[memlink_export]
pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    a.checked_add(b)
        .ok_or_else(|| ModuleError::Failed("the sum overflows".into()))
}

/// Returns its input (one string: it travels as raw bytes).
#[memlink_export]
pub fn echo(_ctx: &CallContext, input: String) -> Result<String> {
    Ok(input)
}

/// The mean of the points, read in place where the host archived them.
#[memlink_export]
pub fn centroid(_ctx: &CallContext, points: &Archived<Vec<Point>>) -> Result<(f32, f32, f32)> {
    let n = points.len().max(1) as f32;
    let sum = points.iter().fold((0.0, 0.0, 0.0), |(x, y, z), p| {
        (
            x + p.x.to_native(),
            y + p.y.to_native(),
            z + p.z.to_native(),
        )
    });
    Ok((sum.0 / n, sum.1 / n, sum.2 / n))
}

/// Each export called through the module's own entry point, as a host calls it.
#[cfg(test)]
mod tests {
    use memlink_msdk::rkyv::{self, rancor};
    use memlink_msdk::testing::TestContext;
    use memlink_msdk::ModuleError;

    use {name}_types::Point;

    #[test]
    fn each_export_answers_through_the_entry_point() {
        let host = TestContext::new();
        assert_eq!(host.call_typed::<_, u32>("add", &(2u32, 3u32)), Ok(5));
        assert!(matches!(
            host.call_typed::<_, u32>("add", &(u32::MAX, 1u32)),
            Err(ModuleError::Failed(_))
        ));
        assert_eq!(
            host.call_typed::<_, String>("echo", "hi"),
            Ok("hi".to_owned())
        );
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
        let archive = rkyv::to_bytes::<rancor::Error>(&(points,)).unwrap();
        let mean = host.call("centroid", &archive).unwrap();
        let mean: (f32, f32, f32) = memlink_msdk::abi::msgpack::from_msgpack(&mean).unwrap();
        assert_eq!(mean, (2.0, 3.0, 4.0));
    }
}
"#;

const HOST_TOML: &str = r#"[package]
name = "{name}-host"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
memlink-runtime.workspace = true
{name}_types.workspace = true

[dev-dependencies]
serde_json.workspace = true # to read `cargo metadata`
"#;

const HOST_RS: &str = r#"//! Loads the {name} module and calls each export:
//! `cargo run -p {name}-host -- [PATH]` (default: the module cargo built beside this
//! host, in the same target directory and profile: `cargo build` first).

use std::path::PathBuf;

use memlink_runtime::{ModuleRef, Runtime};

use {name}_types::Point;

fn main() -> std::process::ExitCode {
    // The error as a sentence: `main` returning it would print its `Debug`.
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?.with_file_name(format!(
            "{}{name}.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        )),
    };
    let runtime = Runtime::with_local_resolver();
    let module = runtime.load(ModuleRef::from_path(path))?;

    let add = runtime.typed::<(u32, u32), u32>(module, "add")?;
    println!("add(2, 3) = {}", add.call(&(2, 3))?);
    let echo = runtime.typed::<str, String>(module, "echo")?;
    println!("echo(\"hello\") = {}", echo.call("hello")?);
    let centroid = runtime.archived::<(Vec<Point>,), (f32, f32, f32)>(module, "centroid")?;
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
    println!("centroid = {:?}", centroid.call(&(points,))?);
    Ok(())
}
"#;

const HOST_TEST: &str = r#"//! Builds the module and calls it through the runtime, as a host does.

use std::path::PathBuf;
use std::process::Command;

use memlink_runtime::{ModuleRef, Runtime, RuntimeError};

use {name}_types::Point;

/// The module's library, built by cargo for this test.
fn module() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // By its manifest, not `-p {name}`: a name that is also a crate in the dependency
    // graph (`serde`) would be ambiguous.
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../module/Cargo.toml");
    let status = Command::new(&cargo)
        .args(["build", "--manifest-path", manifest])
        .status()
        .expect("run cargo");
    assert!(status.success(), "the module builds");
    // Cargo knows where it put it: `target/` unless CARGO_TARGET_DIR or a
    // `.cargo/config.toml` says otherwise.
    let metadata = Command::new(&cargo)
        .args(["metadata", "--format-version=1", "--no-deps"])
        .output()
        .expect("run cargo metadata");
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let target = PathBuf::from(metadata["target_directory"].as_str().unwrap());
    target.join("debug").join(format!(
        "{}{name}.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ))
}

#[test]
fn each_export_answers_through_the_runtime() {
    let runtime = Runtime::with_local_resolver();
    let module = runtime.load(ModuleRef::from_path(module())).unwrap();

    let add = runtime.typed::<(u32, u32), u32>(module, "add").unwrap();
    assert_eq!(add.call(&(2, 3)).unwrap(), 5);
    let overflow = add.call(&(u32::MAX, 1)).unwrap_err();
    assert!(matches!(overflow, RuntimeError::Call { .. }), "{overflow}");

    let echo = runtime.typed::<str, String>(module, "echo").unwrap();
    assert_eq!(echo.call("hello").unwrap(), "hello");

    let centroid = runtime
        .archived::<(Vec<Point>,), (f32, f32, f32)>(module, "centroid")
        .unwrap();
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
    assert_eq!(centroid.call(&(points,)).unwrap(), (2.0, 3.0, 4.0));
}
"#;
