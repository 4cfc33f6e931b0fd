//! Raw exports: a single bytes-like argument in any spelling, and raw results.
#![deny(warnings)]

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn echo(_ctx: &CallContext, input: String) -> Result<String> {
    Ok(input)
}

#[memlink_export]
pub fn upper(_ctx: &CallContext, input: &str) -> Result<std::string::String> {
    Ok(input.to_uppercase())
}

#[memlink_export]
pub fn borrowed<'a>(_ctx: &CallContext<'a>, input: &'a str) -> Result<usize> {
    Ok(input.len())
}

/// Bounds between the call's lifetimes, and `'static` on one that only the result names
/// (static data), are no `'static` borrow of the call.
#[memlink_export]
pub fn bounded<'a, 'b: 'a, 'r: 'static>(_ctx: &CallContext<'a>, input: &'b str) -> Result<&'r str>
where
    'b: 'a,
{
    Ok(if input.is_empty() { "empty" } else { "some" })
}

#[memlink_export]
pub fn bytes(_ctx: &CallContext, data: std::vec::Vec<u8>) -> Result<Vec<u8>> {
    Ok(data)
}

#[memlink_export]
pub fn slice(_ctx: &CallContext, data: &[u8]) -> Result<alloc::vec::Vec<u8>> {
    Ok(data.to_vec())
}

extern crate alloc;

fn main() {
    let arena = Arena::empty();
    let ctx = CallContext::new(&arena, 0.0, 0, 0, None, None);
    assert_eq!(echo(&ctx, "hello".to_string()), Ok("hello".to_string()));
    assert_eq!(upper(&ctx, "a"), Ok("A".to_string()));
    assert_eq!(borrowed(&ctx, "ab"), Ok(2));
    assert_eq!(bytes(&ctx, vec![1]), Ok(vec![1]));
    assert_eq!(slice(&ctx, &[2]), Ok(vec![2]));
}
