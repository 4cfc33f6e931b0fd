use memlink_msdk::prelude::*;

// A declaration has no body to export: the error says so, rather than that this is
// no function.
pub trait Service {
    #[memlink_export]
    fn status(ctx: &CallContext) -> Result<u32>;
}

extern "C" {
    #[memlink_export]
    fn outside(ctx: &CallContext) -> Result<u32>;
}

fn main() {}
