//! Return types: `Result<()>`, `Result<Option<_>>`, a custom error that converts into
//! `ModuleError`, and `Result` by its full path.
#![deny(warnings)]

use memlink_msdk::prelude::*;

#[memlink_export]
pub fn log_and_measure(_ctx: &CallContext) -> Result<()> {
    Ok(())
}

#[memlink_export]
pub fn check_deadline(ctx: &CallContext) -> Result<Option<u64>> {
    Ok(ctx.remaining_time().map(|d| d.as_millis() as u64))
}

#[derive(Debug, PartialEq)]
pub enum MyError {
    TooBig,
}

impl From<MyError> for ModuleError {
    fn from(e: MyError) -> ModuleError {
        ModuleError::Failed(format!("{e:?}"))
    }
}

#[memlink_export]
pub fn custom_error(_ctx: &CallContext, n: u32) -> Result<u32, MyError> {
    if n > 10 {
        Err(MyError::TooBig)
    } else {
        Ok(n)
    }
}

#[memlink_export]
pub fn std_result(_ctx: &CallContext) -> std::result::Result<String, ModuleError> {
    Ok(String::new())
}

fn main() {
    let arena = Arena::empty();
    let ctx = CallContext::new(&arena, 0.0, 0, 0, None, None);
    assert_eq!(log_and_measure(&ctx), Ok(()));
    assert_eq!(check_deadline(&ctx), Ok(None));
    assert_eq!(custom_error(&ctx, 11), Err(MyError::TooBig));
    assert_eq!(std_result(&ctx), Ok(String::new()));
}
