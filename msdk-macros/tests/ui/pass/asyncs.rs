//! Async exports, with MessagePack and raw arguments and the context both ways; the
//! context's lifetime may stay hidden (`&CallContext`) as in a sync export.
#![deny(warnings)]

use memlink_msdk::prelude::*;

#[memlink_export]
pub async fn async_process(_ctx: &CallContext, data: Vec<u8>) -> Result<Vec<u8>> {
    std::future::ready(()).await;
    Ok(data)
}

#[memlink_export]
pub async fn async_sum(ctx: CallContext<'_>, a: u64, b: u64) -> Result<u64> {
    Ok(a + b + ctx.trace_id())
}

#[memlink_export]
pub async fn async_len(_ctx: &CallContext, text: &str) -> Result<usize> {
    Ok(text.len())
}

fn main() {
    let arena = Arena::empty();
    let ctx = CallContext::new(&arena, 0.0, 0, 0, None, None);
    use memlink_msdk::executor::block_on;
    assert_eq!(block_on(async_process(&ctx, vec![1])), Ok(vec![1]));
    assert_eq!(block_on(async_sum(ctx.clone(), 1, 2)), Ok(3));
    assert_eq!(block_on(async_len(&ctx, "abc")), Ok(3));
}
