use memlink_msdk::prelude::*;

#[memlink_export]
pub fn no_params() -> Result<u32> {
    Ok(1)
}

fn main() {}
