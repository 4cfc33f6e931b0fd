// A lifetime bound that makes the context's or a borrowed argument's lifetime `'static`
// is refused at the parameter, as a `'static` written there is, and not by rustc's
// "borrowed data escapes" in the wrapper, pointing at the attribute.

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn bounded_ctx<'a: 'static>(ctx: &CallContext<'a>) -> Result<usize> {
    Ok(ctx.arena().capacity())
}

#[memlink_export]
pub fn where_arg<'a>(_ctx: &CallContext<'_>, s: &'a str) -> Result<usize>
where
    'a: 'static,
{
    Ok(s.len())
}

#[memlink_export]
pub fn through_another<'a, 'b>(_ctx: &CallContext<'_>, s: &'a str, b: &'b [u8]) -> Result<usize>
where
    'a: 'b,
    'b: 'static,
{
    Ok(s.len() + b.len())
}

#[memlink_export]
pub async fn type_bound<'a>(_ctx: &CallContext<'_>, s: &'a str) -> Result<usize>
where
    &'a str: 'static,
{
    Ok(s.len())
}

#[memlink_export]
pub fn twice<'a: 'static>(ctx: &'a CallContext<'a>) -> Result<usize> {
    Ok(ctx.arena().capacity())
}

fn main() {}
