use memlink_msdk::prelude::*;

pub struct Service;

impl Service {
    #[memlink_export]
    pub fn method(&self, _ctx: &CallContext<'_>) -> Result<u32> {
        Ok(1)
    }
}

fn main() {}
