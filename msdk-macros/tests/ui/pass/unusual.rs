//! Unusual but valid signatures: patterns, raw identifiers, twelve parameters, borrowed
//! views with named lifetimes (async too), `impl Trait` and `io::Result`-like aliases
//! in the return type, private and local functions, SDK-like function names, a name
//! with spaces, and one function under two names. The runtime's `signatures` test
//! calls the same shapes through a real host.
#![deny(warnings)]

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn tuple_pat(_ctx: &CallContext, (a, b): (u32, u32), mut x: u32, _: u32) -> Result<u32> {
    x += 1;
    Ok(a + b + x)
}

#[memlink_export]
pub fn r#type(_ctx: &CallContext, r#fn: u32, r#match: String) -> Result<String> {
    Ok(format!("{}{}", r#fn, r#match))
}

#[memlink_export]
#[allow(clippy::too_many_arguments)]
pub fn twelve(
    _ctx: &CallContext,
    a: u8,
    b: u16,
    c: u32,
    d: u64,
    e: i8,
    f: i16,
    g: i32,
    h: i64,
    i: f32,
    j: f64,
    k: bool,
    l: String,
) -> Result<String> {
    Ok(format!("{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}"))
}

#[memlink_export]
pub fn borrowed<'a>(_ctx: &'a CallContext<'a>, s: &'a str) -> Result<&'a str> {
    Ok(s)
}

#[memlink_export]
pub async fn async_views(_ctx: &CallContext, s: &str, b: &[u8]) -> Result<usize> {
    Ok(s.len() + b.len())
}

#[memlink_export]
pub fn impl_ret(_ctx: &CallContext, n: u32) -> Result<impl serde::Serialize> {
    Ok(vec![n])
}

/// Documented.
#[memlink_export]
#[doc = "more"]
pub(crate) fn crate_vis(_ctx: &CallContext, #[allow(unused_mut)] mut n: u32) -> Result<u32> {
    n += 1;
    Ok(n)
}

#[memlink_export]
fn private(_ctx: &CallContext) -> Result<u32> {
    Ok(1)
}

#[memlink_export]
pub fn memlink_call(_ctx: &CallContext) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = "with spaces")]
pub fn spaced(_ctx: &CallContext) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = "alias_a")]
#[memlink_export(name = "alias_b")]
pub fn aliased(_ctx: &CallContext) -> Result<u32> {
    Ok(1)
}

pub fn outer() -> u32 {
    #[memlink_export]
    fn inner(_ctx: &CallContext) -> Result<u32> {
        Ok(7)
    }
    7
}

fn main() {
    let arena = Arena::empty();
    let ctx = CallContext::new(&arena, 0.0, 0, 0, None, None);
    assert_eq!(tuple_pat(&ctx, (1, 2), 3, 0), Ok(7));
    assert_eq!(r#type(&ctx, 1, "x".into()), Ok("1x".to_string()));
    assert_eq!(borrowed(&ctx, "b"), Ok("b"));
    assert_eq!(crate_vis(&ctx, 1), Ok(2));
    assert_eq!(private(&ctx), Ok(1));
    assert_eq!(outer(), 7);
    let _ = (twelve, impl_ret, memlink_call, spaced, aliased, async_views);
}
