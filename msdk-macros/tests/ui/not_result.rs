use memlink_msdk::prelude::*;

#[memlink_export]
pub fn plain(_ctx: &CallContext<'_>) -> u32 {
    1
}

#[memlink_export]
pub fn option(_ctx: &CallContext<'_>) -> Option<u32> {
    None
}

mod alias {
    use memlink_msdk::prelude::*;

    type Result = std::result::Result<u32, ModuleError>;

    #[memlink_export]
    pub fn bare_alias(_ctx: &CallContext<'_>) -> Result {
        Ok(1)
    }
}

fn main() {}
