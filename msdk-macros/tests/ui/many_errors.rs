use memlink_msdk::prelude::*;

#[memlink_export(nmae = "x")]
pub unsafe extern "C" fn everything_wrong<T>(count: u32, text: &str, n: &u8) -> Option<T> {
    let _ = (count, text, n);
    None
}

fn main() {}
