//! Loading: every way a file can fail to be a module gets its own clear error.

mod common;

use common::{fixture, module_path};
use memlink_runtime::{ModuleRef, ModuleSettings, Runtime, RuntimeConfig, RuntimeError};

fn load(
    path: impl Into<std::path::PathBuf>,
) -> Result<memlink_runtime::ModuleHandle, RuntimeError> {
    Runtime::with_local_resolver().load(ModuleRef::from_path(path))
}

#[test]
fn a_missing_file() {
    let err = load("/no/such/libmodule.so").unwrap_err();
    assert!(matches!(err, RuntimeError::FileNotFound { .. }));
    assert_eq!(err.to_string(), "no module file at /no/such/libmodule.so");
    // The name a reader writes for the module, where cargo wrote `lib` before it.
    let err = load("./my_module.so").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no module file at ./my_module.so (cargo names a module's library `libmy_module.so`)"
    );
}

/// A bare word is a path, which a reader may have meant as a module's name: the error
/// says how a module is named. A resolver's or a watch's missing directory is named as
/// a directory, not as a missing module file.
#[test]
fn a_missing_name_or_directory_says_what_was_looked_for() {
    let err = Runtime::with_local_resolver()
        .load(ModuleRef::parse("greeter").unwrap())
        .unwrap_err();
    assert!(matches!(err, RuntimeError::FileNotFound { .. }), "{err}");
    assert!(
        err.to_string().ends_with(
            "no module file at greeter (a bare word is a file in this directory: give the \
                 library's path, as `./libgreeter.so`; a module by name, `greeter@*`, needs a \
                 resolver that keeps modules by name)"
        ),
        "{err}"
    );
    let rt = Runtime::new(
        RuntimeConfig::default(),
        memlink_runtime::resolver::DirectoryResolver::new("/no/such/modules"),
    );
    let err = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("DirectoryResolver::new(\"/no/such/modules\")")
            && err.to_string().contains("its directory cannot be read"),
        "{err}"
    );
    let err = rt
        .watch("/no/such/modules", Default::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a watch needs a directory, and there is none there"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_shared_library() {
    let path = common::workspace().join("target/test-fixtures/not-elf.so");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"this is text, not ELF").unwrap();
    let err = load(&path).unwrap_err();
    assert!(matches!(err, RuntimeError::NotALibrary { .. }), "{err}");
    assert!(
        err.to_string().contains("is not a loadable shared library"),
        "{err}"
    );
    assert!(
        err.to_string().contains("file too short") || err.to_string().contains("invalid ELF"),
        "the loader's reason is in the message: {err}"
    );
    assert!(
        std::error::Error::source(&err).is_none(),
        "and is not returned again as a source, which a reporter would print twice"
    );
}

/// A module built for another machine: said so, naming both. Before, the loader's own
/// words came through: "cannot open shared object file: No such file or directory", of
/// a file that is there.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_module_built_for_another_machine_says_so() {
    let mut bytes = std::fs::read(module_path("basic")).unwrap();
    // `e_machine`: AArch64.
    bytes[0x12..0x14].copy_from_slice(&183u16.to_le_bytes());
    let path = common::workspace().join("target/test-fixtures/libbasic-aarch64.so");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let err = load(&path).unwrap_err();
    assert!(matches!(err, RuntimeError::NotALibrary { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "it is built for AArch64, and this process runs on x86-64: build the module for this machine"
        ),
        "{err}"
    );
}

/// A file written over in place with another build and read halfway (an interrupted
/// `rsync --inplace`, or a watch that sees the writer close after its first pass): the
/// first tenth is one module's, headers included, the rest another's, at the length of
/// the file it overwrote. Every size in its headers fits the file, so the size checks
/// pass it; its dynamic section is read where its headers say, among the other build's
/// bytes, and the load is refused saying the file is damaged, and the runtime loads the
/// whole module after. Before, the loader followed those bytes and the host died of
/// `SIGSEGV` inside `dlopen`.
#[test]
fn a_file_of_two_builds_is_refused_as_damaged() {
    let dir = common::scratch("two-builds");
    // The headers from the shorter build, so the file is as long as they say.
    let (mut head, mut body) = (
        std::fs::read(module_path("basic")).unwrap(),
        std::fs::read(module_path("async_author")).unwrap(),
    );
    if head.len() > body.len() {
        std::mem::swap(&mut head, &mut body);
    }
    let cut = head.len() / 10;
    let mut mixed = body.clone();
    mixed[..cut].copy_from_slice(&head[..cut]);
    let path = dir.join("libmixed.so");
    std::fs::write(&path, &mixed).unwrap();
    let rt = Runtime::with_local_resolver();
    let err = rt.load(ModuleRef::from_path(&path)).unwrap_err();
    assert!(matches!(err, RuntimeError::NotALibrary { .. }), "{err}");
    assert!(err.to_string().contains("the file is damaged"), "{err}");
    let h = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    assert_eq!(rt.call(h, "echo", b"whole").unwrap(), b"whole");
}

// A shared library that is not a module, and a module built for another ABI version:
// `bad_input.rs`, which also checks that the runtime keeps serving after refusing them.

#[test]
fn a_module_whose_description_is_garbage() {
    let err = load(fixture("bad_info")).unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidModule { .. }), "{err}");
    assert!(err.to_string().contains("magic 0x1234"), "{err}");
}

#[test]
fn two_exports_with_one_id_are_refused_naming_both() {
    let err = load(module_path("duplicate_ids")).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RuntimeError::InvalidModule { .. }), "{text}");
    assert!(
        text.contains(
            "the export `add` is there twice, `add` (add(a: u32) -> u32) and `add` (add(a: \
             u32) -> u32)"
        ),
        "{text}"
    );
}

/// A module with exports of its own and a library's (`use memlink_example_library as
/// _;`) is named by its build's `MEMLINK_MODULE_NAME`, with its own crate's version, and
/// offers both exports. Before, it was named for whichever export's id sorted first: the
/// library's `library_add`, so `memlink_example_library` 9.1.0.
#[test]
fn a_module_that_exports_a_librarys_functions_is_named_by_its_own_build() {
    let rt = Runtime::with_local_resolver();
    let h = rt
        .load(ModuleRef::from_path(module_path("library_user")))
        .unwrap();
    let info = rt.module_info(h).unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("calculator", "0.3.0")
    );
    assert_eq!(rt.call_typed::<_, u32>(h, "double", &(21u32,)).unwrap(), 42);
    assert_eq!(
        rt.call_typed::<_, u32>(h, "library_add", &(2u32, 3u32))
            .unwrap(),
        5
    );
    assert_eq!(rt.handle_of("calculator").unwrap(), h);
}

/// The same with no `MEMLINK_MODULE_NAME`: which crate is the module is not known, and
/// the module is refused, naming both crates and how to name it. Before, it loaded as
/// the library (`memlink_example_library` 9.1.0), as every module using that library
/// did: two of them could not be loaded together.
#[test]
fn a_module_of_two_crates_with_no_name_is_refused_saying_how_to_name_it() {
    let err = load(module_path("unnamed_library_user")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("the module's exports come from the crates")
            && text.contains("`memlink_example_library` 9.1.0")
            && text.contains("`unnamed_library_user`")
            && text.contains("cargo:rustc-env=MEMLINK_MODULE_NAME=NAME"),
        "{text}"
    );
}

#[test]
fn bare_relative_and_absolute_references() {
    let path = module_path("basic");
    let dir = path.parent().unwrap();
    let file = path.file_name().unwrap().to_str().unwrap();
    let rt = Runtime::with_local_resolver();
    let abs = rt
        .load(ModuleRef::parse(path.to_str().unwrap()).unwrap())
        .unwrap();
    rt.unload(abs).unwrap();
    let cwd = std::env::current_dir().unwrap();
    // The relative forms are resolved against the current directory.
    std::env::set_current_dir(dir).unwrap();
    let bare = rt.load(ModuleRef::parse(file).unwrap());
    let rel = bare.and_then(|h| {
        rt.unload(h)?;
        rt.load(ModuleRef::parse(&format!("./{file}"))?)
    });
    std::env::set_current_dir(cwd).unwrap();
    assert_eq!(rt.call(rel.unwrap(), "echo", b"hi").unwrap(), b"hi");
}

#[test]
fn one_file_twice_in_one_runtime_is_refused() {
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    let err = rt
        .load(ModuleRef::from_path(module_path("basic")))
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::AlreadyLoaded { handle, ref name, .. } if handle == h && name == "basic"),
        "{err}"
    );
    // It says under which name.
    let text = err.to_string();
    assert!(text.contains("is already loaded as `basic`"), "{text}");
    // A symbolic link to the file is the file, under another name too: the loader
    // would hand back the same image, to be initialized and shut down twice.
    let dir = common::scratch("one-file-through-a-link");
    let link = dir.join("libanother_name.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(module_path("basic"), &link).unwrap();
    let err = rt
        .load_as(ModuleRef::from_path(&link), "another")
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::AlreadyLoaded { handle, .. } if handle == h),
        "{err}"
    );
    // The file a module was loaded from counts, not where a link leads now: a link
    // pointed elsewhere after its load refuses the file it was loaded from, and only it.
    let rt = Runtime::with_local_resolver();
    let current = dir.join("libcurrent.so");
    let one = common::module_copy("basic", "basic_link_one");
    let two = common::module_copy("basic", "basic_link_two");
    std::os::unix::fs::symlink(&one, &current).unwrap();
    let first = rt
        .load_as(ModuleRef::from_path(&current), "current")
        .unwrap();
    let repointed = dir.join("libcurrent.so.new");
    std::os::unix::fs::symlink(&two, &repointed).unwrap();
    std::fs::rename(&repointed, &current).unwrap();
    rt.load_as(ModuleRef::from_path(&two), "two").unwrap();
    let err = rt.load_as(ModuleRef::from_path(&one), "one").unwrap_err();
    assert!(
        matches!(err, RuntimeError::AlreadyLoaded { handle, .. } if handle == first),
        "{err}"
    );
}

/// A new build renamed over the path a loaded module came from is another file: it
/// loads (from a private copy, as the loader would hand back the old image at that
/// path), beside the module loaded before, which serves on. Before, it was refused as
/// "already loaded", which it was not.
#[test]
fn another_file_renamed_over_a_loaded_module_s_path_loads_beside_it() {
    let dir = common::scratch("renamed-over-a-loaded-path");
    let path = dir.join(format!("libplug.{}", std::env::consts::DLL_EXTENSION));
    common::install(&module_path("basic"), &path);
    let rt = Runtime::with_local_resolver();
    let first = rt.load(ModuleRef::from_path(&path)).unwrap();
    common::install(&module_path("datasets"), &path);
    let second = rt.load(ModuleRef::from_path(&path)).unwrap();
    assert_ne!(first, second);
    assert_eq!(rt.module_info(second).unwrap().name, "datasets");
    assert_eq!(rt.call(first, "echo", b"still").unwrap(), b"still");
    // The same file again is refused: its module's name is taken. (The module loaded
    // from a copy is known by the copy's identity: the original's inode may be another
    // file's once it is removed.)
    let err = rt.load(ModuleRef::from_path(&path)).unwrap_err();
    assert!(
        matches!(err, RuntimeError::NameTaken { .. }) && err.to_string().contains("datasets"),
        "{err}"
    );
}

/// Loaded again from a private copy, a file loaded already is an image of its own
/// beside itself, under another name, with statics of its own: as the refusal of the
/// plain load says. Before, the private copy was refused as the file itself.
#[test]
fn one_file_loads_twice_from_a_private_copy_under_another_name() {
    use memlink_runtime::ModuleSettings;

    let path = common::module_copy("basic", "basic_copied_twice");
    let rt = Runtime::with_local_resolver();
    let first = rt.load(ModuleRef::from_path(&path)).unwrap();
    let copy = ModuleSettings::default().private_copy(true);
    let second = rt
        .load_with(ModuleRef::from_path(&path), &copy.clone().name("second"))
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(rt.call(second, "echo", b"two").unwrap(), b"two");
    assert_eq!(rt.call(first, "echo", b"one").unwrap(), b"one");
    // Under the same name it is refused as the name's.
    let err = rt
        .load_with(ModuleRef::from_path(&path), &copy)
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NameTaken { .. }), "{err}");
}

#[test]
fn names_are_unique_and_can_be_overridden() {
    let rt = Runtime::with_local_resolver();
    rt.load_as(ModuleRef::from_path(module_path("basic")), "first")
        .unwrap();
    let h = rt
        .load_as(ModuleRef::from_path(module_path("arena_usage")), "second")
        .unwrap();
    assert_eq!(rt.module_info(h).unwrap().name, "second");
    let err = rt
        .load_as(ModuleRef::from_path(module_path("seed_readme")), "first")
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::NameTaken { ref name } if name == "first"),
        "{err}"
    );
}

#[test]
fn a_lookup_with_a_requirement_that_is_not_semver_says_so() {
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    assert_eq!(rt.handle_of("basic").unwrap(), h);
    let err = rt.handle_of("basic@>>1").unwrap_err();
    assert!(matches!(err, RuntimeError::BadReference { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "bad module reference `basic@>>1`: what follows `@` is not a semver requirement (say `1.2`, `^2`, `=1.4.2`)"
    );
    // A requirement no loaded version meets is a module that is not loaded.
    assert!(matches!(
        rt.handle_of("basic@99"),
        Err(RuntimeError::UnknownModule { .. })
    ));
}

#[test]
fn a_name_no_call_could_use_is_refused_before_the_module_is_opened() {
    let rt = Runtime::with_local_resolver();
    for (name, why) in [
        ("", "cannot be empty"),
        ("a\0b", "control character"),
        ("two\nlines", "control character"),
    ] {
        let err = rt
            .load_as(ModuleRef::from_path(module_path("basic")), name)
            .unwrap_err();
        assert!(matches!(err, RuntimeError::BadSetting { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(why) && text.contains(&format!("{name:?}")),
            "{text}"
        );
    }
    // Nothing was loaded: the file loads under a good name, and is called by it.
    let h = rt
        .load_as(ModuleRef::from_path(module_path("basic")), "basic two")
        .unwrap();
    assert_eq!(rt.module_info(h).unwrap().name, "basic two");
    assert_eq!(rt.call_typed::<_, u32>(h, "add", &(2u32, 3u32)).unwrap(), 5);
}

/// Sizes no allocation can give are errors of the load that would use them, not a panic
/// inside `load` (a persistent region) or an abort at the first call (an arena).
#[test]
fn memory_sizes_that_cannot_be_allocated_are_refused_at_load() {
    let basic = || ModuleRef::from_path(module_path("basic"));
    let rt = Runtime::with_local_resolver();
    for size in [usize::MAX, 1 << 50] {
        let settings = ModuleSettings::default().persistent_size(size);
        let err = rt.load_with(basic(), &settings).unwrap_err();
        assert_cannot_allocate(err, &format!("ModuleSettings::persistent_size = {size}"));
    }
    // Nothing was loaded: the same file loads after, and serves.
    let h = rt.load(basic()).unwrap();
    assert_eq!(rt.call_typed::<_, u32>(h, "add", &(2u32, 3u32)).unwrap(), 5);

    for size in [usize::MAX / 2, 1 << 50] {
        let config = RuntimeConfig::default().arena_size(size);
        let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
        let err = rt.load(basic()).unwrap_err();
        assert_cannot_allocate(err, &format!("RuntimeConfig::arena_size = {size}"));
    }
}

/// A limit on modules meant as none (`usize::MAX`) is taken as the most a runtime holds:
/// the runtime is made, loads, serves and unloads. Before, `Runtime::new` panicked
/// making a slot for each of them.
#[test]
fn a_module_limit_meant_as_none_is_taken_as_the_most_a_runtime_holds() {
    let config = RuntimeConfig::default().max_modules(usize::MAX);
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    assert_eq!(rt.call_typed::<_, u32>(h, "add", &(2u32, 3u32)).unwrap(), 5);
    rt.unload(h).unwrap();
    assert!(!rt.is_loaded(h));
}

/// Idle arenas kept without limit (`usize::MAX`) are taken as the most a runtime keeps:
/// the runtime is made, and its calls take and give back arenas. Before, `Runtime::new`
/// panicked making room for each of them.
#[test]
fn an_arena_pool_meant_as_unbounded_is_taken_as_the_most_a_runtime_keeps() {
    let config = RuntimeConfig::default().arena_pool(usize::MAX);
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    // Outputs held at once: arenas on loan past the calling thread's own, given back to
    // the pool as they are dropped.
    let held: Vec<_> = (0..8u32)
        .map(|i| rt.call(h, "echo", &[i as u8; 64]).unwrap())
        .collect();
    for (i, out) in held.iter().enumerate() {
        assert_eq!(**out, [i as u8; 64]);
    }
    drop(held);
    assert_eq!(rt.call_typed::<_, u32>(h, "add", &(2u32, 3u32)).unwrap(), 5);
}

/// `err` is the setting `setting` (with its value) refused for its size.
fn assert_cannot_allocate(err: RuntimeError, setting: &str) {
    assert!(matches!(err, RuntimeError::BadSetting { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(setting) && text.contains("cannot allocate"),
        "{text}"
    );
}

/// A module reached through a symbolic link in another directory is opened at the file
/// the link leads to: a library it needs beside itself (linked with an rpath of
/// `$ORIGIN`) is found there. Before, the loader was given the link, and `$ORIGIN` was
/// the link's directory, where the library is not.
#[test]
fn a_module_through_a_link_finds_the_libraries_beside_its_file() {
    let helper = common::compile_c(
        &["runtime/tests/fixtures/origin_helper.c"],
        "liborigin_helper.so",
        true,
    );
    assert!(helper.exists());
    let module = common::compile_c_with(
        &["runtime/tests/fixtures/msgpack_echo.c"],
        "libneeds_origin_helper.so",
        true,
        &[
            "-L{fixtures}",
            "-Wl,--no-as-needed",
            "-lorigin_helper",
            "-Wl,-rpath,$ORIGIN",
        ],
    );
    let elsewhere = common::scratch("module-through-a-link");
    let link = elsewhere.join("libmsgpack_echo.so");
    std::os::unix::fs::symlink(&module, &link).unwrap();
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(&link)).unwrap();
    // nil, echoed.
    assert_eq!(rt.call(h, "echo", &[0xc0]).unwrap(), [0xc0]);
    assert_eq!(rt.module_info(h).unwrap().path, link);
}

/// The loader hands back the image it mapped for a path, whatever file is at the path
/// by then. A new build renamed over a module's file (as docs/security.md says to
/// install one) and loaded again after an unload ran the old build; loaded by a second
/// runtime while the first held the old one, it ran the old build too; and a file that
/// was no module when first tried was refused as such again once a module was put there.
/// Each loads as the file it is now.
#[test]
fn a_new_file_at_a_path_loaded_before_loads_as_itself() {
    let dir = common::scratch("new-file-at-an-old-path");
    let file = dir.join("libplugin.so");
    let version = |rt: &Runtime, h| rt.call_typed::<_, u32>(h, "version", &()).unwrap();
    common::install(&module_path("greeter_v1"), &file);
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(&file)).unwrap();
    assert_eq!(version(&rt, h), 1);
    rt.unload(h).unwrap();
    common::install(&module_path("greeter_v2"), &file);
    let h = rt.load(ModuleRef::from_path(&file)).unwrap();
    assert_eq!(version(&rt, h), 2, "the file's build, not the one unloaded");
    assert_eq!(rt.module_info(h).unwrap().path, file);

    // Another runtime, while this one holds version 2: the file's module.
    common::install(&module_path("basic"), &file);
    let other = Runtime::with_local_resolver();
    let basic = other.load(ModuleRef::from_path(&file)).unwrap();
    assert_eq!(other.module_info(basic).unwrap().name, "basic");
    assert_eq!(&*other.call(basic, "echo", b"hi").unwrap(), b"hi");
    assert_eq!(version(&rt, h), 2, "the first runtime's module serves on");
    // The same file again is the same image, as before.
    other.unload(basic).unwrap();
    let again = other.load(ModuleRef::from_path(&file)).unwrap();
    assert_eq!(other.module_info(again).unwrap().name, "basic");

    // A library that was no module, then a module at its path.
    let late = dir.join("liblate.so");
    common::install(&fixture("not_a_module"), &late);
    let err = rt.load(ModuleRef::from_path(&late)).unwrap_err();
    assert!(matches!(err, RuntimeError::NotAModule { .. }), "{err}");
    common::install(&module_path("arena_usage"), &late);
    let h = rt.load(ModuleRef::from_path(&late)).unwrap();
    assert_eq!(rt.module_info(h).unwrap().name, "arena_usage");
}

/// greeter v1 built with `panic = "abort"`, in a profile of its own (its own directory of
/// the target directory), so that no other test's build of it is replaced.
fn greeter_built_to_abort() -> std::path::PathBuf {
    let args = [
        "-p",
        "memlink-greeter-v1",
        "--profile",
        "panic-abort",
        "--config",
        "profile.panic-abort.inherits=\"dev\"",
        "--config",
        "profile.panic-abort.panic=\"abort\"",
    ];
    common::build_cdylibs(&args, "greeter with panic = \"abort\"")
        .into_iter()
        .find(|(name, _)| name == "greeter_v1")
        .map(|(_, path)| path)
        .expect("cargo built greeter's library")
}

/// A module built with `panic = "abort"` loads, and says so: a panic in it ends the
/// process, which the README's "a panic becomes an error" does not hold for. The host
/// is warned when it loads (the CLI's log), `ModuleInfo::aborts_on_panic` and `memlink
/// inspect` tell it; a module built to unwind, and a C module (no panics, no word of
/// them), do not.
#[test]
fn a_module_built_to_abort_on_panic_is_told_at_load() {
    let aborting = greeter_built_to_abort();
    let runtime = Runtime::with_local_resolver();
    let handle = runtime.load(ModuleRef::from_path(&aborting)).unwrap();
    assert!(runtime.module_info(handle).unwrap().aborts_on_panic);
    assert_eq!(
        runtime
            .call_typed::<_, u32>(handle, "version", &())
            .unwrap(),
        1,
        "it serves as any other"
    );
    let c_module = common::compile_c(&["examples/c/module.c"], "libc_module.so", true);
    for other in [module_path("greeter_v1"), c_module] {
        let runtime = Runtime::with_local_resolver();
        let handle = runtime.load(ModuleRef::from_path(&other)).unwrap();
        assert!(
            !runtime.module_info(handle).unwrap().aborts_on_panic,
            "{other:?}"
        );
    }

    let path = aborting.to_str().unwrap();
    let out = common::cli::memlink(&["inspect", path]);
    let (stdout, stderr) = (common::cli::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("panics end the process: built with panic = \"abort\"\n"),
        "{stdout}"
    );
    assert!(
        stderr.contains("was built with panic = \"abort\": a panic in it ends this process"),
        "{stderr}"
    );
    let out = common::cli::memlink(&["inspect", "--json", path]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["aborts_on_panic"], true);
    let out = common::cli::memlink(&["inspect", &common::cli::basic()]);
    let (stdout, stderr) = (common::cli::stdout(&out), common::stderr(&out));
    assert!(
        !stdout.contains("panics end") && !stderr.contains("was built with panic"),
        "{stdout}{stderr}"
    );
}
