//! Exports defined in this test crate land in the link-time method table with the right
//! metadata, and stay ordinary functions that tests can call directly.

// `&CallContext` without `<'_>` is how the docs spell an export; the workspace's
// rust_2018_idioms lints would flag it on the (unchanged) user functions.
#![allow(elided_lifetimes_in_paths)]

use memlink_msdk::__private::{Format, MethodEntry, METHODS};
use memlink_msdk::prelude::*;
use serde::{Deserialize, Serialize};

#[memlink_export]
pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    Ok(a + b)
}

#[memlink_export]
pub fn echo(_ctx: &CallContext, input: String) -> Result<String> {
    Ok(input)
}

#[memlink_export]
pub fn count_bytes(_ctx: &CallContext<'_>, data: &[u8]) -> Result<usize> {
    Ok(data.len())
}

#[memlink_export(name = "reverse")]
pub async fn reverse_bytes(_ctx: CallContext<'_>, mut data: Vec<u8>) -> Result<Vec<u8>> {
    data.reverse();
    Ok(data)
}

#[memlink_export]
pub fn nothing(_ctx: &CallContext) -> Result<()> {
    Ok(())
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    x: i32,
    y: i32,
}

/// The error of an export that is not `ModuleError` but converts into it.
#[derive(Debug, PartialEq)]
pub struct Negative;

impl From<Negative> for ModuleError {
    fn from(_: Negative) -> ModuleError {
        ModuleError::Failed("negative".into())
    }
}

#[memlink_export]
pub fn scale(_ctx: &CallContext, p: Point, _: (), r#type: i32) -> Result<Point, Negative> {
    if r#type < 0 {
        return Err(Negative);
    }
    Ok(Point {
        x: p.x * r#type,
        y: p.y * r#type,
    })
}

fn entry(name: &str) -> &'static MethodEntry {
    let mut found = METHODS.iter().filter(|e| e.name == name);
    let entry = found
        .next()
        .unwrap_or_else(|| panic!("`{name}` is not registered"));
    assert!(found.next().is_none(), "`{name}` is registered twice");
    entry
}

#[track_caller]
fn assert_entry(name: &str, args: Format, result: Format, arg_count: u16, is_async: bool) {
    let e = entry(name);
    assert_eq!(
        (e.args_format, e.result_format),
        (args, result),
        "{name}: formats"
    );
    assert_eq!(e.arg_count, arg_count, "{name}: arg_count");
    assert_eq!(e.is_async, is_async, "{name}: is_async");
    assert_eq!(e.crate_name, "expand", "{name}: crate_name");
    assert_eq!(
        e.crate_version,
        env!("CARGO_PKG_VERSION"),
        "{name}: crate_version"
    );
    assert!(
        e.location.starts_with("msdk-macros/tests/expand.rs:"),
        "{}",
        e.location
    );
    // How this crate, which defines the export, was built: what the module tells the
    // host of its panics (`memlink_panic_strategy`).
    assert_eq!(e.unwinds, cfg!(panic = "unwind"), "{name}: unwinds");
}

#[test]
fn every_export_is_registered_with_its_metadata() {
    use Format::{MessagePack, Raw};
    assert_entry("add", MessagePack, MessagePack, 2, false);
    assert_entry("echo", Raw, Raw, 1, false);
    assert_entry("count_bytes", Raw, MessagePack, 1, false);
    assert_entry("reverse", Raw, Raw, 1, true);
    assert_entry("nothing", MessagePack, MessagePack, 0, false);
    assert_entry("scale", MessagePack, MessagePack, 3, false);
    assert!(
        METHODS.iter().all(|e| e.name != "reverse_bytes"),
        "renamed export kept its name"
    );
    assert_eq!(METHODS.len(), 6);
}

#[test]
fn exports_stay_plain_functions() {
    let arena = Arena::empty();
    let ctx = CallContext::new(&arena, 0.0, 0, 0, None, None);
    assert_eq!(add(&ctx, 2, 3), Ok(5));
    assert_eq!(echo(&ctx, "hello".to_string()), Ok("hello".to_string()));
    assert_eq!(count_bytes(&ctx, b"abc"), Ok(3));
    assert_eq!(nothing(&ctx), Ok(()));
    assert_eq!(
        scale(&ctx, Point { x: 1, y: -2 }, (), 3),
        Ok(Point { x: 3, y: -6 })
    );
    assert_eq!(scale(&ctx, Point { x: 1, y: 2 }, (), -1), Err(Negative));
    let future = reverse_bytes(ctx.clone(), vec![1, 2, 3]);
    assert_eq!(memlink_msdk::executor::block_on(future), Ok(vec![3, 2, 1]));
}
