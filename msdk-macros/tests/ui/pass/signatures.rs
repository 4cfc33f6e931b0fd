//! MessagePack exports: several arguments, none, the context by value or by full path,
//! `_` and destructuring parameters, a `const fn` and a renamed export.
#![deny(warnings)]

use memlink_msdk::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Config {
    pub factor: u32,
}

#[memlink_export]
pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    Ok(a + b)
}

#[memlink_export]
pub fn zero(_ctx: &CallContext) -> Result<u32> {
    Ok(0)
}

#[memlink_export]
pub fn by_value(ctx: CallContext<'_>, config: Config, values: Vec<u32>) -> Result<Vec<u32>> {
    let _ = ctx.trace_id();
    Ok(values.into_iter().map(|v| v * config.factor).collect())
}

#[memlink_export]
pub fn full_path<'a>(_ctx: &'a memlink_msdk::CallContext<'a>, mut x: i64) -> memlink_msdk::Result<i64> {
    x += 1;
    Ok(x)
}

#[memlink_export]
pub fn patterns(_ctx: &CallContext, _: u8, (a, b): (u8, u8), arg1: u8) -> Result<u8> {
    Ok(a + b + arg1)
}

#[memlink_export]
pub const fn constant(_ctx: &CallContext, x: u8) -> Result<u8> {
    Ok(x)
}

#[memlink_export(name = "renamed")]
pub fn original(_ctx: &CallContext, r#type: String, other: Option<String>) -> Result<bool> {
    Ok(other.is_some() && !r#type.is_empty())
}

fn main() {
    let arena = Arena::empty();
    let ctx = CallContext::new(&arena, 0.0, 0, 0, None, None);
    assert_eq!(add(&ctx, 2, 3), Ok(5));
    assert_eq!(zero(&ctx), Ok(0));
    assert_eq!(by_value(ctx.clone(), Config { factor: 2 }, vec![1, 2]), Ok(vec![2, 4]));
    assert_eq!(full_path(&ctx, 1), Ok(2));
    assert_eq!(patterns(&ctx, 0, (1, 2), 3), Ok(6));
    assert_eq!(constant(&ctx, 4), Ok(4));
    assert_eq!(original(&ctx, "t".into(), None), Ok(false));
}
