//! Version resolution and naming through the real runtime: which version a name, a
//! `name@requirement` and a nested call pick, what a `DirectoryResolver` makes of the
//! files beside a module's, and what may share a name. `greeter_v1` (1.4.2) and
//! `greeter_v2` (2.0.1) are real builds of one module; `tests/fixtures/versioned.c` is
//! a C module built under any name and version (a prerelease, build metadata).

mod common;

use std::path::{Path, PathBuf};

use common::{install, module_path};
use memlink_runtime::resolver::DirectoryResolver;
use memlink_runtime::{ModuleHandle, ModuleRef, Runtime, RuntimeConfig, RuntimeError};

fn lib(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.{}", std::env::consts::DLL_EXTENSION))
}

/// `tests/fixtures/versioned.c` built as the module `name` of `version`.
fn versioned(name: &str, version: &str) -> PathBuf {
    let tag: String = format!("{name}_{version}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    common::compile_c_with(
        &["runtime/tests/fixtures/versioned.c"],
        &format!("libversioned_{tag}.{}", std::env::consts::DLL_EXTENSION),
        true,
        &[
            &format!("-DMODULE_NAME=\"{name}\""),
            &format!("-DMODULE_VERSION=\"{version}\""),
        ],
    )
}

/// The version the module behind `h` says it is.
fn version_of(rt: &Runtime, h: ModuleHandle) -> String {
    rt.module_info(h).unwrap().version
}

/// A module whose own name starts with `lib`, in a file named after it
/// (`library@1.0.0.so`), is found by its name. Before, the resolver took the `lib` off
/// every file name, read the file as the module `rary`, and said no file of `library`
/// was there.
#[test]
fn a_module_named_lib_something_is_found_under_its_name() {
    let dir = common::scratch("versions-lib-prefix");
    install(&versioned("library", "1.0.0"), &lib(&dir, "library@1.0.0"));
    install(&module_path("greeter_v1"), &lib(&dir, "libgreeter@1.4.2"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let library = rt.load(ModuleRef::parse("library@1").unwrap());
    let library = library.unwrap_or_else(|e| panic!("library@1: {e}"));
    assert_eq!(rt.module_info(library).unwrap().name, "library");
    // A `lib` before the name is still a library's prefix.
    let greeter = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    assert_eq!(version_of(&rt, greeter), "1.4.2");
    // The other reading of `library@1.0.0.so` leads to a file holding another module.
    let fresh = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let rary = fresh.load(ModuleRef::parse("rary@1").unwrap()).unwrap_err();
    assert!(matches!(rary, RuntimeError::WrongFile { .. }), "{rary}");
}

/// Builds that differ only by build metadata (`1.0.0+a`, `1.0.0+b`) are one version to
/// semver: every requirement matches both or neither, so they cannot share a name, by
/// a load or by a reload. Before, both loaded, and `m@=1.0.0` (and a nested call to
/// `m`) picked one by the text after the `+`.
#[test]
fn builds_of_one_version_do_not_load_side_by_side() {
    let rt = Runtime::with_local_resolver();
    let a = rt
        .load(ModuleRef::from_path(versioned("m", "1.0.0+a")))
        .unwrap();
    let b = rt
        .load(ModuleRef::from_path(versioned("m", "1.0.0+b")))
        .unwrap_err();
    assert!(
        matches!(&b, RuntimeError::NameTaken { name } if name == "m@1.0.0+a"),
        "{b}"
    );
    assert_eq!(rt.handle_of("m@=1.0.0").unwrap(), a);
    let two = rt
        .load(ModuleRef::from_path(versioned("m", "2.0.0")))
        .unwrap();
    let onto = rt
        .reload(two, ModuleRef::from_path(versioned("m", "1.0.0+b")))
        .unwrap_err();
    assert!(
        matches!(&onto, RuntimeError::NameTaken { name } if name == "m@1.0.0+a"),
        "{onto}"
    );
    assert_eq!(version_of(&rt, two), "2.0.0", "the old version serves on");
}

/// A prerelease loaded beside a release (`2.0.0-rc.1` beside `1.4.2`) takes no caller
/// that did not ask for a prerelease: a bare name leads to the release, as `name@*`
/// does (Cargo's rules), from the resolver, `handle_of` and a nested call alike, and to
/// the prerelease only once no release is there. Before, a bare `greeter` went to the
/// release candidate, while `greeter@*` went to 1.4.2.
#[test]
fn a_bare_name_prefers_a_release_to_a_prerelease() {
    let dir = common::scratch("versions-prerelease");
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.4.2"));
    let rc = versioned("greeter", "2.0.0-rc.1");
    install(&rc, &lib(&dir, "greeter@2.0.0-rc.1"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let one = rt.load(ModuleRef::named("greeter", None)).unwrap();
    assert_eq!(version_of(&rt, one), "1.4.2", "the resolver's choice");
    let next = rt.load(ModuleRef::parse("greeter@2.0.0-rc.1").unwrap());
    let next = next.unwrap();
    assert_eq!(version_of(&rt, next), "2.0.0-rc.1");
    assert_eq!(rt.handle_of("greeter").unwrap(), one);
    assert_eq!(rt.handle_of("greeter@*").unwrap(), one);
    assert!(
        rt.handle_of("greeter@^2").is_err(),
        "^2 matches no 2.0.0-rc.1"
    );
    assert_eq!(rt.handle_of("greeter@>=2.0.0-rc.1").unwrap(), next);

    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    let via = |target: &str| -> Vec<u8> {
        let args = (target, "version", Vec::<u8>::new());
        let out = rt.call_typed::<_, Vec<u8>>(relay, "relay", &args);
        out.unwrap_or_else(|e| panic!("{target}: {e}"))
    };
    assert_eq!(
        common::de::<u32>(&via("greeter")),
        1,
        "greeter_v1's `version`"
    );
    rt.unload(one).unwrap();
    assert_eq!(rt.handle_of("greeter").unwrap(), next, "no release is left");
    assert_eq!(via("greeter"), b"2.0.0-rc.1");

    // A directory with prereleases alone still answers the bare name.
    let only = common::scratch("versions-prerelease-only");
    install(&rc, &lib(&only, "greeter@2.0.0-rc.1"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&only));
    let h = rt.load(ModuleRef::named("greeter", None)).unwrap();
    assert_eq!(version_of(&rt, h), "2.0.0-rc.1");
}

/// What `ModuleRef::parse` accepts after an `@` (whitespace around a requirement: a
/// tab, a line break left from a line read from a file), `handle_of` and a nested call
/// accept too. Before, they took only spaces off (as semver does), and refused
/// `greeter@\t^1` as "not a semver requirement" while `ModuleRef::parse` loaded it.
#[test]
fn a_requirement_reads_alike_wherever_it_is_given() {
    let dir = common::scratch("versions-whitespace");
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.4.2"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    for reference in ["greeter@\t^1", "greeter@^1\n", "greeter@ ^1 "] {
        let one = rt.load(ModuleRef::parse(reference).unwrap()).unwrap();
        assert_eq!(rt.handle_of(reference).unwrap(), one, "{reference:?}");
        let args = (reference, "version", Vec::<u8>::new());
        let out = rt.call_typed::<_, Vec<u8>>(relay, "relay", &args);
        let out = out.unwrap_or_else(|e| panic!("{reference:?}: {e}"));
        assert_eq!(common::de::<u32>(&out), 1, "{reference:?}");
        rt.unload(one).unwrap();
    }
}

/// A reference with no name before its `@` (`@^1`), or none at all, can name no module
/// however the modules change (no module may be loaded under an empty name): a module
/// declaring it as a dependency is refused saying so, and `handle_of` and a nested call
/// say so too. Before, the module was refused as calling "`@^1`, which is not loaded"
/// (a watched directory waited for it for ever), and the lookups said no such module
/// was loaded.
#[test]
fn a_reference_with_no_name_is_refused_as_naming_nothing() {
    let rt = Runtime::with_local_resolver();
    let extra = "-DDEPENDENCY=\"@^1\"";
    let file = format!(
        "libbad_dependency_no_name.{}",
        std::env::consts::DLL_EXTENSION
    );
    let fixture = common::compile_c_with(
        &["runtime/tests/fixtures/bad_dependency.c"],
        &file,
        true,
        &[extra],
    );
    let err = rt.load(ModuleRef::from_path(fixture)).unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidModule { .. }), "{err}");
    let said = err.to_string();
    assert!(
        said.contains("`memlink_dependencies` names `@^1`: a module's name cannot be empty"),
        "{said}"
    );
    for reference in ["@^1", ""] {
        let err = rt.handle_of(reference).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::BadReference { reason, .. } if reason.contains("cannot be empty")),
            "{reference:?}: {err}"
        );
    }
    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    let args = ("@^1", "version", Vec::<u8>::new());
    let err = rt
        .call_typed::<_, Vec<u8>>(relay, "relay", &args)
        .unwrap_err();
    assert!(err.to_string().contains("cannot be empty"), "{err}");
}

/// Names are compared as they are (README, "Versions"): a package `my-mod` builds the
/// module `my_mod`, and a file named after the package is refused as holding another
/// module; a name that is not ASCII is loaded by path and found by name, but no
/// reference can name it, and the error says what a reference's name may hold.
#[test]
fn names_are_compared_as_they_are() {
    let dir = common::scratch("versions-spelling");
    install(&versioned("my_mod", "1.0.0"), &lib(&dir, "my-mod@1.0.0"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let err = rt.load(ModuleRef::parse("my-mod@1").unwrap()).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::WrongFile { found, .. } if found == "`my_mod` 1.0.0"),
        "{err}"
    );
    assert!(
        matches!(
            rt.load(ModuleRef::parse("my_mod@1").unwrap()),
            Err(RuntimeError::NoSuchVersion { .. })
        ),
        "no file is named `my_mod@…`"
    );
    let h = rt
        .load(ModuleRef::from_path(versioned("grüße", "1.0.0")))
        .unwrap();
    assert_eq!(rt.handle_of("grüße").unwrap(), h);
    assert!(rt.handle_of("Grüße").is_err(), "no folding of case");
    let err = ModuleRef::parse("grüße@1").unwrap_err().to_string();
    assert!(err.contains("ASCII letters"), "{err}");
}

/// A requirement that passes a version by only because it is a prerelease (`^2` and
/// `2.0.0-rc.1`, Cargo's rule) is told so, with a requirement that takes it, which
/// does. Before, the error listed 2.0.0-rc.1 as there and left the reader to wonder
/// why `^2` did not match it.
#[test]
fn a_prerelease_a_requirement_passes_by_is_named_as_such() {
    let dir = common::scratch("versions-prerelease-hint");
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.4.2"));
    let rc = versioned("greeter", "2.0.0-rc.1");
    install(&rc, &lib(&dir, "greeter@2.0.0-rc.1"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let err = rt
        .load(ModuleRef::parse("greeter@^2").unwrap())
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::NoSuchVersion { versions, .. } if versions == &["1.4.2", "2.0.0-rc.1"]),
        "{err}"
    );
    let said = err.to_string();
    assert!(
        said.contains("2.0.0-rc.1 is a prerelease") && said.contains("`greeter@=2.0.0-rc.1`"),
        "{said}"
    );
    let taken = rt.load(ModuleRef::parse("greeter@=2.0.0-rc.1").unwrap());
    assert_eq!(
        version_of(&rt, taken.unwrap()),
        "2.0.0-rc.1",
        "as the error said"
    );
    // A requirement that would not match the release either gets no such word.
    let err = rt
        .load(ModuleRef::parse("greeter@^3").unwrap())
        .unwrap_err();
    assert!(!err.to_string().contains("prerelease"), "{err}");
}

/// A file named for a module whose version is no semver version (`greeter@v1.4.2.so`,
/// `greeter@1.4.so`) is passed by, as no version can be read from its name: the error
/// that no version answers names it, and says what a version is. Before, it said only
/// that the module had no file there, beside the file the reader had named for it.
#[test]
fn a_file_whose_version_is_no_semver_is_named_when_it_is_passed_by() {
    let dir = common::scratch("versions-not-semver");
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@v1.4.2"));
    install(&module_path("greeter_v1"), &lib(&dir, "libgreeter@1.4"));
    install(&module_path("basic"), &lib(&dir, "basic@v0.1.0"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let err = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap_err();
    let said = err.to_string();
    assert!(
        matches!(&err, RuntimeError::NoSuchVersion { versions, passed_by, .. }
            if versions.is_empty()
                && *passed_by == [lib(&dir, "greeter@v1.4.2"), lib(&dir, "libgreeter@1.4")]),
        "{said}"
    );
    assert!(
        said.contains("no semver version (MAJOR.MINOR.PATCH")
            && said.contains("greeter@v1.4.2.so")
            && !said.contains("basic@"),
        "{said}"
    );
    // Beside a version that is one, the same.
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@2.0.1"));
    let err = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap_err();
    let said = err.to_string();
    assert!(
        said.starts_with("no version of the module matches `greeter@^1`: there are 2.0.1; ")
            && said.contains("libgreeter@1.4.so"),
        "{said}"
    );
    // The file with a version loads.
    rt.load(ModuleRef::parse("greeter@2").unwrap()).unwrap();
}
