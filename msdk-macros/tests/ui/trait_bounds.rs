// An error type that does not convert into `ModuleError`, an `Ok` type that is not
// `Serialize`, and a `T` of `Rkyv<T>` that cannot be archived, are reported at that type,
// not at the attribute.

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn string_err(_ctx: &CallContext<'_>, n: u32) -> std::result::Result<u32, String> {
    Ok(n)
}

#[memlink_export]
pub fn io_result(_ctx: &CallContext<'_>, n: u32) -> std::io::Result<u32> {
    Ok(n)
}

pub struct NotSerde;

#[memlink_export]
pub fn not_serialize(_ctx: &CallContext<'_>) -> Result<NotSerde> {
    Ok(NotSerde)
}

pub struct NotArchive;

#[memlink_export]
pub fn not_archive(_ctx: &CallContext<'_>) -> Result<Rkyv<NotArchive>> {
    Ok(Rkyv(NotArchive))
}

fn main() {}
