use memlink_msdk::prelude::*;

#[memlink_export("shout")]
pub fn bare_string(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name: "other")]
pub fn colon(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = "other" pure)]
pub fn no_comma(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

fn main() {}
