//! The method table: every `#[memlink_export]` of the module, found at link time.
//!
//! Each export adds one [`MethodEntry`] to the distributed slice [`METHODS`]; no list is
//! kept by hand and no registration code runs. The first time the module is asked about
//! its methods, the entries are sorted by id into a table that never changes again,
//! so a call reads it with no lock.
//!
//! The table holds the exports of what is linked into the module: an export in a
//! dependency that the module's code never names is not, as rustc leaves such a crate
//! out (`use that_crate as _;` links it in).

use std::sync::OnceLock;

use crate::abi::{self, Format, MethodInfo, ModuleInfo, StrRef};
use crate::archive::ArchiveType;
use crate::error::ModuleError;
use crate::request::Invocation;

/// One export, as `#[memlink_export]` registers it.
#[derive(Debug)]
pub struct MethodEntry {
    /// The exported name (the function's, or the one given with `name = "..."`).
    pub name: &'static str,
    /// How the arguments arrive.
    pub args_format: Format,
    /// How the result leaves.
    pub result_format: Format,
    /// Number of arguments after the context.
    pub arg_count: u16,
    /// Whether the export is an `async fn`.
    pub is_async: bool,
    /// Whether its author marked it `pure` (`#[memlink_export(pure)]`): its result
    /// depends on its arguments alone, so a host may cache it.
    pub pure: bool,
    /// The module's name: `MEMLINK_MODULE_NAME` when the crate that defines the export
    /// was built with it set (a build script's `cargo:rustc-env`), else the crate's
    /// `CARGO_CRATE_NAME`.
    pub crate_name: &'static str,
    /// Whether `crate_name` is `MEMLINK_MODULE_NAME` (set in the build of the crate that
    /// defines the export), not the crate's own name: a module whose exports come from
    /// several crates is named by that one (see `Table::build`).
    pub named: bool,
    /// `CARGO_PKG_VERSION` of the crate that defines the export.
    pub crate_version: &'static str,
    /// Where the export is defined, for error messages.
    pub location: &'static str,
    /// Whether the crate that defines the export was built to unwind
    /// (`cfg!(panic = "unwind")` there): a module crate built with `-C panic=abort` on
    /// its own (`cargo rustc`) links this crate built to unwind, and it is the module's
    /// build that decides whether a panic can be caught (see `memlink_panic_strategy`).
    pub unwinds: bool,
    /// For archived arguments, the type the archive holds (the parameters' tuple).
    pub args_type: Option<fn() -> ArchiveType>,
    /// For an archived result, the type the archive holds.
    pub result_type: Option<fn() -> ArchiveType>,
    /// The signature without the context: `add(a: u32, b: u32) -> u32`.
    pub signature: &'static str,
    /// For MessagePack arguments, which argument (by name) and where in it the bytes fail
    /// to decode (`argument `b`: `), or nothing: asked only once a call's arguments were
    /// refused, for the error's message.
    pub which_argument: Option<fn(&[u8]) -> String>,
    /// Decodes the arguments, runs the function and encodes its result.
    pub invoke: fn(&Invocation<'_>) -> Result<(), ModuleError>,
    /// The export's own entry point (`ModuleInfo::method_calls`): the call boundary with
    /// this export's `invoke` compiled into it. `None` for an entry with none (the
    /// boundary's tests make such entries); the host then calls `memlink_call`.
    pub call: Option<abi::MethodCallFn>,
}

/// Every export linked into this binary.
#[linkme::distributed_slice]
pub static METHODS: [MethodEntry];

/// The sorted, immutable method table, and the [`ModuleInfo`] that describes it.
pub(crate) struct Table {
    entries: Vec<&'static MethodEntry>,
    infos: Vec<MethodInfo>,
    /// Each entry's own entry point, for `ModuleInfo::method_calls`.
    #[allow(dead_code)] // read by the host, through `info`'s pointer into it
    calls: Vec<Option<abi::MethodCallFn>>,
    info: ModuleInfo,
    refusal: Option<String>,
    name: &'static str,
    /// Whether every crate an export comes from was built to unwind.
    unwinds: bool,
}

// SAFETY: the raw pointers inside `ModuleInfo`, `MethodInfo` and `StrRef` point into
// `'static` strings and into `infos` and `calls`, never changed after construction, so
// sharing the table between threads only ever reads immutable memory.
unsafe impl Sync for Table {}
// SAFETY: as above; nothing in the table is tied to the thread that built it.
unsafe impl Send for Table {}

static TABLE: OnceLock<Table> = OnceLock::new();

/// The module's crate name, as the method table knows it.
pub(crate) fn module_name() -> &'static str {
    table().name
}

/// The module's method table, built on first use.
pub(crate) fn table() -> &'static Table {
    TABLE.get_or_init(|| Table::build(&METHODS))
}

impl Table {
    fn build(methods: &'static [MethodEntry]) -> Table {
        let mut entries: Vec<&'static MethodEntry> = methods.iter().collect();
        entries.sort_by_key(|e| (abi::method_id(e.name), e.name));
        let duplicate = find_duplicate(&entries);
        let unwinds = entries.iter().all(|e| e.unwinds);
        let infos: Vec<MethodInfo> = entries.iter().map(|e| method_info(e)).collect();
        let calls: Vec<Option<abi::MethodCallFn>> = entries.iter().map(|e| e.call).collect();
        let (name, version, unnamed) = match identity(&entries) {
            Ok((name, version)) => (name, version, None),
            Err(unknown) => (unknown.name, "0.0.0", Some(unknown.message)),
        };
        let info = ModuleInfo {
            magic: abi::MODULE_MAGIC,
            abi_version: abi::ABI_VERSION,
            size: size_of::<ModuleInfo>() as u32,
            name: StrRef::new(name),
            version: StrRef::new(version),
            sdk_version: StrRef::new(env!("CARGO_PKG_VERSION")),
            methods: infos.as_ptr(),
            method_count: infos.len(),
            rkyv_format: crate::archive::format(),
            reserved: 0,
            method_calls: calls.as_ptr(),
        };
        Table {
            entries,
            infos,
            calls,
            info,
            // Either makes the module refuse its `memlink_init`.
            refusal: duplicate.or(unnamed),
            name,
            unwinds,
        }
    }

    /// Whether every crate an export comes from was built to unwind.
    pub(crate) fn unwinds(&self) -> bool {
        self.unwinds
    }

    /// The module description handed to the host.
    pub(crate) fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// A message naming two exports that share an id, if there are any, or saying that
    /// the module's name is not known: either refuses the module's `memlink_init`.
    pub(crate) fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }

    /// The entry whose id is `id` (the table is sorted by id, and `memlink_init` refused
    /// a module whose ids are not all different): for a running call whose frame's index
    /// an export's own entry point never read.
    pub(crate) fn entry_by_id(&self, id: u32) -> Option<&'static MethodEntry> {
        let i = self.infos.binary_search_by_key(&id, |info| info.id).ok()?;
        Some(self.entries[i])
    }

    /// The entry at `index`, if its id is `id`: the host resolved the index at load, the
    /// id guards against a host that got it wrong.
    pub(crate) fn entry(&self, index: u32, id: u32) -> Option<&'static MethodEntry> {
        let i = usize::try_from(index).ok()?;
        match self.infos.get(i) {
            Some(info) if info.id == id => Some(self.entries[i]),
            _ => None,
        }
    }
}

fn method_info(e: &'static MethodEntry) -> MethodInfo {
    let args = e.args_type.map(|f| f());
    let result = e.result_type.map(|f| f());
    MethodInfo {
        name: StrRef::new(e.name),
        id: abi::method_id(e.name),
        flags: if e.is_async { abi::METHOD_ASYNC } else { 0 }
            | if e.pure { abi::METHOD_PURE } else { 0 },
        args_format: e.args_format as u8,
        result_format: e.result_format as u8,
        arg_count: e.arg_count,
        reserved: 0,
        args_type: StrRef::new(args.map_or("", |t| t.name)),
        args_fingerprint: args.map_or(0, |t| t.fingerprint),
        result_type: StrRef::new(result.map_or("", |t| t.name)),
        result_fingerprint: result.map_or(0, |t| t.fingerprint),
        signature: StrRef::new(e.signature),
    }
}

/// The crates an export of the table comes from, by name and version, in the table's
/// order, each once.
fn crates(entries: &[&'static MethodEntry]) -> Vec<(&'static str, &'static str, bool)> {
    let mut crates: Vec<(&'static str, &'static str, bool)> = Vec::new();
    for e in entries {
        if !crates
            .iter()
            .any(|&(n, v, _)| n == e.crate_name && v == e.crate_version)
        {
            crates.push((e.crate_name, e.crate_version, e.named));
        }
    }
    crates
}

/// A module whose name is not known: the name it is described with (every candidate
/// joined, so that two such modules do not take each other's name before either is
/// refused), and why it is refused.
struct Unnamed {
    name: &'static str,
    message: String,
}

/// The module's name and version. The exports are linked into the module from its own
/// crate and from library crates it names (`use my_exports as _;`), and each entry knows
/// only the crate that defines it, not the module it ends up in. So:
/// - exports all from one crate: that crate's name (or its `MEMLINK_MODULE_NAME`) and
///   version (a module with no exports is `unnamed` 0.0.0);
/// - from several, of which one was built with `MEMLINK_MODULE_NAME`: that one's, which
///   is how a module names itself when it also exports a library's functions;
/// - from several otherwise: not known, and the module is refused at init, saying so.
///   (Before, the name was whichever entry's id came first: adding an export to a library
///   could rename every module that used it.)
fn identity(entries: &[&'static MethodEntry]) -> Result<(&'static str, &'static str), Unnamed> {
    let crates = crates(entries);
    let named: Vec<_> = crates.iter().filter(|c| c.2).collect();
    match (crates.as_slice(), named.as_slice()) {
        ([], _) => Ok(("unnamed", "0.0.0")),
        ([(name, version, _)], _) | (_, [(name, version, _)]) => Ok((name, version)),
        _ => Err(unnamed(&crates, &named)),
    }
}

/// Why a module whose exports come from the crates `crates` (those built with
/// `MEMLINK_MODULE_NAME` among them: `named`) has no name [`identity`] can tell.
fn unnamed(
    crates: &[(&'static str, &'static str, bool)],
    named: &[&(&str, &str, bool)],
) -> Unnamed {
    let list = |of: &mut dyn Iterator<Item = &(&str, &str, bool)>| {
        of.map(|(n, v, _)| format!("`{n}` {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let message = if named.is_empty() {
        format!(
            "the module's exports come from the crates {}, and none was built with `MEMLINK_MODULE_NAME`, so which is the module is not known: set it in the build of the module's own crate (a build script's `println!(\"cargo:rustc-env=MEMLINK_MODULE_NAME=NAME\")`), which needs an export of its own for the name to reach the module",
            list(&mut crates.iter())
        )
    } else if named.windows(2).all(|w| w[0].0 == w[1].0) {
        format!(
            "the crates {} were each built with `MEMLINK_MODULE_NAME` (set for the whole build, in the environment or in `[env]`?), so which is the module, and its version, is not known: set it in the module's own build script only",
            list(&mut named.iter().copied())
        )
    } else {
        format!(
            "the module's exports come from crates built with different `MEMLINK_MODULE_NAME`s ({}): set it in the build of the module's own crate only",
            list(&mut named.iter().copied())
        )
    };
    // Never longer than a name a daemon serves (64 bytes), so that the refusal told is
    // this one, not the name's length.
    let joined = crates
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join("+");
    let mut end = joined.len().min(64);
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    Unnamed {
        name: Box::leak(joined[..end].to_owned().into_boxed_str()),
        message,
    }
}

/// Two neighbours in the sorted table with one id: same name twice, or an FNV collision.
fn find_duplicate(sorted: &[&'static MethodEntry]) -> Option<String> {
    sorted.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        (abi::method_id(a.name) == abi::method_id(b.name)).then(|| {
            format!(
                "exports `{}` ({}) and `{}` ({}) share method id {:#010x}; rename one with #[memlink_export(name = \"...\")]",
                a.name,
                a.location,
                b.name,
                b.location,
                abi::method_id(a.name)
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &'static str, location: &'static str) -> MethodEntry {
        MethodEntry {
            name,
            args_format: Format::MessagePack,
            result_format: Format::Raw,
            arg_count: 2,
            is_async: true,
            pure: false,
            crate_name: "m",
            named: false,
            crate_version: "1.2.3",
            location,
            unwinds: true,
            args_type: None,
            result_type: None,
            signature: "f(a: u32, b: u32) -> String",
            which_argument: None,
            invoke: |_| Ok(()),
            call: None,
        }
    }

    fn leak(v: Vec<MethodEntry>) -> &'static [MethodEntry] {
        Box::leak(v.into_boxed_slice())
    }

    #[test]
    fn table_is_sorted_by_id_and_indexes_check_the_id() {
        let t = Table::build(leak(vec![entry("echo", "a"), entry("add", "b")]));
        assert!(t.refusal().is_none());
        assert_eq!(t.infos[0].id, 0x3b39_1274, "add sorts first");
        assert_eq!(t.infos[1].id, 0xd49d_d484);
        assert_eq!(t.entry(0, 0x3b39_1274).unwrap().name, "add");
        assert!(t.entry(0, 0xd49d_d484).is_none(), "wrong id at an index");
        assert!(t.entry(2, 0x3b39_1274).is_none(), "index past the end");
        assert_eq!(t.infos[1].flags, abi::METHOD_ASYNC);
        assert_eq!(t.infos[1].result_format, Format::Raw as u8);
    }

    #[test]
    fn module_info_describes_the_table() {
        let t = Table::build(leak(vec![entry("echo", "a")]));
        let info = t.info();
        assert_eq!(info.magic, abi::MODULE_MAGIC);
        assert_eq!(info.method_count, 1);
        // SAFETY: the strings point at 'static literals.
        unsafe {
            assert_eq!(info.name.as_str(), Some("m"));
            assert_eq!(info.version.as_str(), Some("1.2.3"));
        }
    }

    #[test]
    fn duplicate_ids_name_both_exports() {
        let t = Table::build(leak(vec![
            entry("echo", "src/a.rs:1"),
            entry("echo", "src/b.rs:9"),
        ]));
        let msg = t.refusal().unwrap();
        assert!(
            msg.contains("src/a.rs:1") && msg.contains("src/b.rs:9"),
            "{msg}"
        );
        assert!(msg.contains("0xd49dd484"), "{msg}");
    }

    fn from(
        crate_name: &'static str,
        version: &'static str,
        named: bool,
        name: &'static str,
    ) -> MethodEntry {
        MethodEntry {
            crate_name,
            crate_version: version,
            named,
            ..entry(name, "src/lib.rs:1")
        }
    }

    fn name_of(t: &Table) -> (String, String) {
        // SAFETY: the strings point at 'static memory.
        unsafe {
            (
                t.info().name.as_str().unwrap().to_owned(),
                t.info().version.as_str().unwrap().to_owned(),
            )
        }
    }

    /// A module named by the crate of whichever export's id came first was renamed by a
    /// library's new export: "add" (id 0x3b391274) sorts before "own" and named the
    /// module for the library. Exports from several crates name the module only when one
    /// of them was built with `MEMLINK_MODULE_NAME`; else it is refused at init.
    #[test]
    fn a_module_of_several_crates_is_named_by_the_one_built_with_a_name_or_refused() {
        let one = Table::build(leak(vec![from("m", "1.0.0", false, "own")]));
        assert_eq!(name_of(&one), ("m".to_owned(), "1.0.0".to_owned()));
        assert!(one.refusal().is_none());

        let named = Table::build(leak(vec![
            from("mathlib", "9.9.9", false, "add"),
            from("othermod", "2.0.0", true, "own"),
        ]));
        assert_eq!(name_of(&named), ("othermod".to_owned(), "2.0.0".to_owned()));
        assert!(named.refusal().is_none());
        assert_eq!(named.name, "othermod");

        let unknown = Table::build(leak(vec![
            from("mathlib", "9.9.9", false, "add"),
            from("mymod", "1.2.3", false, "own"),
        ]));
        let why = unknown.refusal().unwrap();
        assert!(
            why.contains("come from the crates `mathlib` 9.9.9, `mymod` 1.2.3")
                && why.contains("MEMLINK_MODULE_NAME=NAME"),
            "{why}"
        );
        assert_eq!(name_of(&unknown).0, "mathlib+mymod");

        let two_names = Table::build(leak(vec![
            from("a", "1.0.0", true, "add"),
            from("b", "1.0.0", true, "own"),
        ]));
        let why = two_names.refusal().unwrap();
        assert!(
            why.contains("different `MEMLINK_MODULE_NAME`s (`a` 1.0.0, `b` 1.0.0)"),
            "{why}"
        );

        // One name set for the whole build names every crate alike.
        let everywhere = Table::build(leak(vec![
            from("m", "1.0.0", true, "add"),
            from("m", "9.9.9", true, "own"),
        ]));
        let why = everywhere.refusal().unwrap();
        assert!(why.contains("set for the whole build"), "{why}");

        // The name it is refused under stays within a served name's 64 bytes.
        let long = Table::build(leak(vec![
            from("a_crate_with_a_long_name_one", "1.0.0", false, "add"),
            from("a_crate_with_a_long_name_two", "1.0.0", false, "own"),
            from("a_crate_with_a_long_name_three", "1.0.0", false, "echo"),
        ]));
        assert!(long.name.len() <= 64, "{}", long.name);

        let none = Table::build(leak(vec![]));
        assert_eq!(name_of(&none), ("unnamed".to_owned(), "0.0.0".to_owned()));
    }
}
