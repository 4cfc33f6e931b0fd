//! The SDK README's promises, end to end: its snippets (compiled unchanged in
//! `examples/seed-readme`) loaded and called through the README's runtime snippet.

mod common;

use memlink_runtime::resolver::ModuleRef;
// The README's snippet imports the trait, as hosts written against it do; the runtime's
// methods are inherent, so the import is unused here, and must still compile.
#[allow(unused_imports)]
use memlink_runtime::runtime::{ModuleRuntime, Runtime};

#[test]
fn the_runtime_snippet_returns_hello() -> Result<(), Box<dyn std::error::Error>> {
    let path = common::module_path("seed_readme");
    let path = path.to_str().unwrap();
    // The README's snippet, with its path pointed at the built module.
    let runtime = Runtime::with_local_resolver();
    let handle = runtime.load(ModuleRef::parse(path)?)?;
    let result = runtime.call(handle, "echo", b"hello")?;
    assert_eq!(result, b"hello");
    Ok(())
}

#[test]
fn every_snippet_export_answers() {
    let (rt, h) = common::load("seed_readme");
    let sum: u32 = rt.call_typed(h, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
    let data: Vec<u8> = rt.call_typed(h, "async_process", &(vec![1u8, 2],)).unwrap();
    assert_eq!(data, [1, 2]);
    let slot: u64 = rt.call_typed(h, "use_arena", &()).unwrap();
    assert_eq!(slot, 42);
    let pressure: f32 = rt.call_typed(h, "check_pressure", &()).unwrap();
    assert_eq!(pressure, 0.0);
    let deadline: Option<u64> = rt.call_typed(h, "check_deadline", &()).unwrap();
    assert_eq!(deadline, None);
    let (): () = rt.call_typed(h, "log_and_measure", &()).unwrap();
    let doubled: u32 = rt.call_typed(h, "may_fail", &(50u32,)).unwrap();
    assert_eq!(doubled, 100);
    let err = rt.call(h, "may_fail", &common::mp(&(101u32,))).unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&memlink_runtime::ModuleError::QuotaExceeded)
    );
    // The nested-call snippet reaches the host; no module named `nobody` is loaded.
    let err = rt.call(h, "call_other", b"nobody").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&memlink_runtime::ModuleError::ModuleNotFound(
            "nobody".into()
        ))
    );
}
