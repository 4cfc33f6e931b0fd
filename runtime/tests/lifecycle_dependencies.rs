//! Modules that call others: refused until what they call is loaded, and for good when
//! what they declare could never be.

mod common;

use common::lifecycle::greeter;
use common::module_path;
use memlink_runtime::{ModuleRef, Runtime, RuntimeError};

#[test]
fn a_module_is_refused_until_what_it_calls_is_loaded() {
    let rt = Runtime::with_local_resolver();
    let uses = ModuleRef::from_path(module_path("uses_greeter"));
    let err = rt.load(uses.clone()).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MissingDependency { module, dependency }
            if module == "uses_greeter" && dependency == "greeter@^1"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("calls `greeter@^1`, which is not loaded"),
        "{err}"
    );
    rt.load(greeter(2)).unwrap();
    assert!(
        matches!(
            rt.load(uses.clone()),
            Err(RuntimeError::MissingDependency { .. })
        ),
        "2.0.1 does not meet ^1"
    );
    rt.load(greeter(1)).unwrap();
    let h = rt.load(uses).unwrap();
    let sum: u32 = rt.call_typed(h, "add_through", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
}

/// A dependency whose version requirement is not semver can never be loaded: the module
/// is refused saying so, not told to wait for it (`tests/fixtures/bad_dependency.c`).
/// Before, it was a `MissingDependency`, "load it first", which no load could answer.
#[test]
fn a_dependency_no_load_can_answer_is_refused_as_such() {
    let fixture = common::compile_c(
        &["runtime/tests/fixtures/bad_dependency.c"],
        "libbad_dependency.so",
        true,
    );
    let rt = Runtime::with_local_resolver();
    rt.load(ModuleRef::from_path(module_path("basic"))).unwrap();
    let err = rt.load(ModuleRef::from_path(fixture)).unwrap_err();
    assert!(matches!(err, RuntimeError::InitFailed { .. }), "{err}");
    assert!(
        err.to_string().contains(
            "`memlink_dependencies` names `basic@>>1`: what follows `@` is not a semver requirement"
        ),
        "{err}"
    );
}
