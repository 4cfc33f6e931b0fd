use memlink_msdk::prelude::*;
use std::borrow::Cow;

#[memlink_export]
pub fn two_strs(_ctx: &CallContext<'_>, a: &str, b: &str) -> Result<usize> {
    Ok(a.len() + b.len())
}

#[memlink_export]
pub fn by_ref(_ctx: &CallContext<'_>, n: &u32) -> Result<u32> {
    Ok(*n)
}

#[memlink_export]
pub fn nested(_ctx: &CallContext<'_>, names: Vec<&'static str>) -> Result<usize> {
    Ok(names.len())
}

#[memlink_export]
pub fn cow<'a>(_ctx: &CallContext<'a>, text: Cow<'a, str>, n: u8) -> Result<usize> {
    Ok(text.len() + n as usize)
}

#[memlink_export]
pub fn cow_elided(_ctx: &CallContext<'_>, text: Cow<str>, n: u8) -> Result<usize> {
    Ok(text.len() + n as usize)
}

fn main() {}
