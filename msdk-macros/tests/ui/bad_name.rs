use memlink_msdk::prelude::*;

#[memlink_export(name = 42)]
pub fn number(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = other)]
pub fn ident(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = "")]
pub fn empty(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name)]
pub fn bare(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = "a", name = "b")]
pub fn twice(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export(name = "add\n")]
pub fn control(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

fn main() {}
