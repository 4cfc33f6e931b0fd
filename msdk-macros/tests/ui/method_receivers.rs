// Every form of receiver is refused, at the receiver, with the one error: the methods
// stay in their `impl` as written, so rustc has nothing to add.

use std::sync::Arc;

use memlink_msdk::prelude::*;

pub struct Service;

impl Service {
    #[memlink_export]
    pub fn by_value(self, _ctx: &CallContext<'_>) -> Result<u32> {
        Ok(1)
    }

    #[memlink_export]
    pub fn by_mut(&mut self, _ctx: &CallContext<'_>, n: u32) -> Result<u32> {
        Ok(n)
    }

    #[memlink_export]
    pub fn boxed(self: Box<Self>, _ctx: &CallContext<'_>) -> Result<u32> {
        Ok(1)
    }

    #[memlink_export]
    pub fn shared<'a>(self: &'a Arc<Self>, _ctx: &CallContext<'_>) -> Result<()> {
        Ok(())
    }
}

pub trait Counter {
    fn count(&self, ctx: &CallContext<'_>) -> Result<u32>;
}

impl Counter for Service {
    #[memlink_export]
    fn count(&self, _ctx: &CallContext<'_>) -> Result<u32> {
        Ok(1)
    }
}

fn main() {}
