use memlink_msdk::prelude::*;

#[memlink_export]
pub fn __memlink_invoke(_ctx: &CallContext<'_>) -> Result<u32> {
    Ok(1)
}

mod raw {
    use memlink_msdk::prelude::*;

    #[memlink_export]
    pub fn r#__memlink_invoke(_ctx: &CallContext<'_>) -> Result<u32> {
        Ok(1)
    }
}

fn main() {}
