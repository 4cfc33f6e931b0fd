//! Versions of one module side by side: references by requirement, the names and labels
//! they are known by, nested calls by name following what a name finds, and names and
//! files that would make a reference mean two things, refused.

mod common;

use std::path::PathBuf;

use common::lifecycle::{fresh_dir, greeter, lib, version};
use common::{de, install, module_path};
use memlink_runtime::reload::ReloadPolicy;
use memlink_runtime::resolver::DirectoryResolver;
use memlink_runtime::{ModuleRef, Runtime, RuntimeConfig, RuntimeError};

/// A fresh directory `name` holding `greeter` 1.4.2 and 2.0.1, and a runtime that
/// resolves references there.
fn two_versions(name: &str) -> (PathBuf, Runtime) {
    let dir = fresh_dir(name);
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.4.2"));
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@2.0.1"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    (dir, rt)
}

/// A module calling another by name from one thread reaches it without a lookup once
/// it has looked it up (the thread keeps where the name led): every load, reload and
/// unload since must send the next call where a lookup would.
#[test]
fn a_nested_call_by_name_follows_every_change_of_what_the_name_finds() {
    let (_, rt) = two_versions("nested-follows");
    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    // Twice each time: the first call may look the name up, the second goes where the
    // first one's lookup led.
    let twice = |target: &str| -> [Result<u32, String>; 2] {
        [0, 1].map(|_| {
            rt.call_typed::<_, Vec<u8>>(relay, "relay", &(target, "version", Vec::<u8>::new()))
                .map(|out| de::<u32>(&out))
                .map_err(|e| e.to_string())
        })
    };
    let gone = |got: &[Result<u32, String>; 2]| {
        got.iter()
            .all(|r| matches!(r, Err(e) if e.contains("not found") || e.contains("greeter")))
    };
    let one = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    assert_eq!(twice("greeter"), [Ok(1), Ok(1)]);
    let two = rt.load(ModuleRef::parse("greeter@^2").unwrap()).unwrap();
    assert_eq!(
        twice("greeter"),
        [Ok(2), Ok(2)],
        "a higher version loaded beside it takes the name"
    );
    assert_eq!(twice("greeter@^1"), [Ok(1), Ok(1)]);
    rt.unload(two).unwrap();
    assert_eq!(twice("greeter"), [Ok(1), Ok(1)], "back to the one left");
    let back_and_forth = ReloadPolicy::default().allow_changes(true);
    rt.reload_with(one, greeter(2), &back_and_forth).unwrap();
    assert_eq!(twice("greeter"), [Ok(2), Ok(2)], "the reloaded version");
    let missing = twice("greeter@^1");
    assert!(gone(&missing), "nothing meets ^1 any more: {missing:?}");
    rt.unload(one).unwrap();
    let missing = twice("greeter");
    assert!(gone(&missing), "unloaded: {missing:?}");
    let again = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    assert_eq!(
        twice("greeter"),
        [Ok(1), Ok(1)],
        "loaded again, in a reused slot"
    );
    assert_eq!(version(&rt, again), 1);
}

#[test]
fn versions_load_side_by_side_and_callers_choose_by_requirement() {
    let (dir, rt) = two_versions("versions");
    let one = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    // A module loaded as a version is labelled so from the start: its series keep their
    // labels when another version loads beside it (they were renamed then), and when it
    // goes.
    let labels =
        |rt: &Runtime| -> Vec<String> { rt.metrics().into_iter().map(|m| m.module).collect() };
    assert_eq!(labels(&rt), ["greeter@1.4.2"]);
    let two = rt.load(ModuleRef::parse("greeter@^2").unwrap()).unwrap();
    assert_eq!((version(&rt, one), version(&rt, two)), (1, 2));
    let info = rt.module_info(one).unwrap();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("greeter", "1.4.2")
    );
    assert_eq!(rt.handle_of("greeter").unwrap(), two, "the highest version");
    assert_eq!(rt.handle_of("greeter@1.4").unwrap(), one);
    assert!(matches!(
        rt.handle_of("greeter@3"),
        Err(RuntimeError::UnknownModule { .. })
    ));

    // Nested calls choose by requirement too.
    let relay = rt
        .load(ModuleRef::from_path(module_path("nested_calls")))
        .unwrap();
    let via = |target: &str| -> Result<u32, RuntimeError> {
        let out =
            rt.call_typed::<_, Vec<u8>>(relay, "relay", &(target, "version", Vec::<u8>::new()))?;
        Ok(de(&out))
    };
    assert_eq!(via("greeter@^1").unwrap(), 1);
    assert_eq!(via("greeter@>=2").unwrap(), 2);
    assert_eq!(via("greeter").unwrap(), 2);
    let missing = via("greeter@^3").unwrap_err();
    assert!(
        missing.to_string().contains("greeter@^3"),
        "the error names what was asked for: {missing}"
    );

    // The same version twice under one name is refused; a requirement nothing meets is
    // a missing file naming it.
    install(&module_path("greeter_v1"), &lib(&dir, "copy"));
    let twice = rt
        .load(ModuleRef::from_path(lib(&dir, "copy")))
        .unwrap_err();
    assert!(
        matches!(&twice, RuntimeError::NameTaken { name } if name == "greeter@1.4.2"),
        "{twice}"
    );
    let none = rt.load(ModuleRef::parse("greeter@5").unwrap()).unwrap_err();
    assert!(
        matches!(&none, RuntimeError::NoSuchVersion { versions, .. } if versions == &["1.4.2", "2.0.1"])
            && none.to_string().contains("greeter@^5")
            && none.to_string().contains("there are 1.4.2, 2.0.1"),
        "{none}"
    );
    assert!(matches!(
        Runtime::with_local_resolver().load(ModuleRef::parse("greeter@1").unwrap()),
        Err(RuntimeError::BadReference { .. })
    ));
    // Each version's figures are its own series.
    let figures: Vec<String> = rt.metrics().into_iter().map(|m| m.module).collect();
    assert!(
        figures.contains(&"greeter@1.4.2".to_owned())
            && figures.contains(&"greeter@2.0.1".to_owned()),
        "{figures:?}"
    );
    common::promtool::promtool_accepts(&rt.prometheus());
    // Unloading one version leaves the other serving under the name, and its series
    // under their labels.
    rt.unload(two).unwrap();
    assert_eq!(rt.handle_of("greeter").unwrap(), one);
    assert_eq!(via("greeter").unwrap(), 1);
    assert!(
        labels(&rt).contains(&"greeter@1.4.2".to_owned()),
        "{:?}",
        labels(&rt)
    );
}

/// Version files that are symbolic links (`greeter@1.4.2.so -> libgreeter_v1.so`) are
/// versions by their own names: labelled so from the start and while others come and
/// go, and named in `module_info`. Before, the link was resolved first, and its target's
/// name (no version in it) was what the runtime saw.
#[test]
fn version_files_that_are_links_keep_their_names() {
    let dir = fresh_dir("version-links");
    for (version, example) in [("1.4.2", "greeter_v1"), ("2.0.1", "greeter_v2")] {
        std::os::unix::fs::symlink(
            module_path(example),
            lib(&dir, &format!("greeter@{version}")),
        )
        .unwrap();
    }
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let labels =
        |rt: &Runtime| -> Vec<String> { rt.metrics().into_iter().map(|m| m.module).collect() };
    let one = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap();
    assert_eq!(labels(&rt), ["greeter@1.4.2"]);
    assert!(rt
        .module_info(one)
        .unwrap()
        .path
        .ends_with(lib(&dir, "greeter@1.4.2").file_name().unwrap()));
    let two = rt.load(ModuleRef::parse("greeter@2").unwrap()).unwrap();
    assert_eq!(labels(&rt), ["greeter@1.4.2", "greeter@2.0.1"]);
    rt.unload(two).unwrap();
    assert_eq!(labels(&rt), ["greeter@1.4.2"]);
}

/// A name given at load holding an `@` took the calls and met the dependencies meant
/// for versions of another module: `basic` loaded as `greeter@^1` let `uses_greeter`
/// load with no greeter at all, and its calls to `greeter@^1` ran `basic`.
#[test]
fn a_name_holding_an_at_sign_is_refused_at_load() {
    let rt = Runtime::with_local_resolver();
    let basic = ModuleRef::from_path(module_path("basic"));
    let err = rt.load_as(basic.clone(), "greeter@^1").unwrap_err();
    assert!(
        matches!(&err, RuntimeError::BadSetting { .. }) && err.to_string().contains("`@`"),
        "{err}"
    );
    let uses = ModuleRef::from_path(module_path("uses_greeter"));
    let err = rt.load(uses).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MissingDependency { dependency, .. } if dependency == "greeter@^1"),
        "{err}"
    );
    assert!(rt.handle_of("greeter@^1").is_err());
    // The runtime serves on: the same module loads under a usable name.
    let h = rt.load_as(basic, "greeter_like").unwrap();
    assert_eq!(&*rt.call(h, "echo", b"on").unwrap(), b"on");
}

/// Two files giving one version (`greeter@1.4.2.so` and `libgreeter@1.4.2.so`, here of
/// different builds): the reference chose whichever the directory listed last.
#[test]
fn two_files_of_one_version_are_refused_as_ambiguous() {
    use memlink_runtime::resolver::DirectoryResolver;
    use memlink_runtime::RuntimeConfig;
    let dir = fresh_dir("ambiguous");
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.4.2"));
    install(&module_path("greeter_v1"), &lib(&dir, "libgreeter@1.4.2"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    let references = [
        ModuleRef::parse("greeter@1").unwrap(),
        ModuleRef::parse("greeter@=1.4.2").unwrap(),
        ModuleRef::named("greeter", None),
    ];
    for reference in references {
        let err = rt.load(reference.clone()).unwrap_err();
        let said = err.to_string();
        assert!(said.contains("ambiguous"), "{reference:?}: {said}");
        assert!(
            said.contains("greeter@1.4.2.so") && said.contains("libgreeter@1.4.2.so"),
            "{reference:?}: names both files: {said}"
        );
    }
    // A higher version beside them is no ambiguity: it is the one meant.
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@2.0.1"));
    let h = rt.load(ModuleRef::named("greeter", None)).unwrap();
    assert_eq!(rt.module_info(h).unwrap().path, lib(&dir, "greeter@2.0.1"));
    let err = rt
        .load(ModuleRef::parse("greeter@=1.4.2").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, memlink_runtime::RuntimeError::Ambiguous { .. })
            && err.to_string().contains("ambiguous"),
        "{err}"
    );
    // Versions that differ in build metadata alone are one version.
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@1.6.0+a"));
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@1.6.0+b"));
    let err = rt.load(ModuleRef::parse("greeter@1").unwrap()).unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains("ambiguous") && said.contains("1.6.0+a") && said.contains("1.6.0+b"),
        "{said}"
    );
}

/// A file's name gives its module's name and version, and a reference by name is
/// answered by the file's: a file whose module is another, or of another version, was
/// loaded all the same, and the name it was asked for then led nowhere
/// (`handle_of("basic@2")` said no such module was loaded). It is now refused, naming
/// what the file holds; a module loaded under the name asked for is that module.
#[test]
fn a_file_named_for_another_module_or_version_is_refused() {
    use memlink_runtime::resolver::DirectoryResolver;
    use memlink_runtime::{ModuleSettings, RuntimeConfig};
    let dir = fresh_dir("misnamed");
    install(&module_path("basic"), &lib(&dir, "basic@2.0.0"));
    install(&module_path("greeter_v1"), &lib(&dir, "hello@1.4.2"));
    install(&module_path("greeter_v2"), &lib(&dir, "greeter@2.0.1"));
    let rt = Runtime::new(RuntimeConfig::default(), DirectoryResolver::new(&dir));
    for (reference, holds) in [
        ("basic@2", "holds `basic` 0.1.0"),
        ("hello@1", "holds `greeter` 1.4.2"),
    ] {
        let err = rt.load(ModuleRef::parse(reference).unwrap()).unwrap_err();
        assert!(
            matches!(err, RuntimeError::WrongFile { .. }) && err.to_string().contains(holds),
            "{reference}: {err}"
        );
    }
    assert!(rt.modules().is_empty(), "nothing was loaded");
    // Loaded under the name asked for, the module answers to it.
    let hello = rt
        .load_with(
            ModuleRef::parse("hello@1").unwrap(),
            &ModuleSettings::default().name("hello"),
        )
        .unwrap();
    assert_eq!(rt.handle_of("hello@1").unwrap(), hello);
    // A file that holds what its name says loads, and answers to that name.
    let greeter = rt.load(ModuleRef::parse("greeter@2").unwrap()).unwrap();
    assert_eq!(rt.handle_of("greeter@2").unwrap(), greeter);
    // A reload by name is held to the same, and the old version serves on.
    install(&module_path("greeter_v1"), &lib(&dir, "greeter@3.0.0"));
    let err = rt
        .reload(greeter, ModuleRef::parse("greeter@3").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::WrongFile { .. }) && err.to_string().contains("1.4.2"),
        "{err}"
    );
    assert_eq!(rt.handle_of("greeter@2").unwrap(), greeter);
}
