use memlink_msdk::prelude::*;

#[memlink_export]
pub fn type_param<T: Default>(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

#[memlink_export]
pub fn const_param<const N: usize>(_ctx: &CallContext<'_>) -> Result<usize> {
    Ok(N)
}

#[memlink_export]
pub fn impl_arg(_ctx: &CallContext<'_>, n: impl Into<u32>) -> Result<u32> {
    Ok(n.into())
}

#[memlink_export]
pub fn impl_archived(_ctx: &CallContext<'_>, p: &Archived<impl memlink_msdk::rkyv::Archive>) -> Result<()> {
    let _ = p;
    Ok(())
}

fn main() {}
