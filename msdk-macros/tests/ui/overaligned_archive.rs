// An archived type that needs more alignment than any archive is given (16 bytes) does
// not build: neither as a result, which the host could not read where it lies, nor as
// an argument. Reported by `cargo build`, not `cargo check` (a constant evaluated as the
// code is generated).

use memlink_msdk::prelude::*;
use memlink_msdk::rkyv::{self, Archived};

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(crate = memlink_msdk::rkyv, attr(repr(align(32))))]
pub struct Wide {
    pub a: u64,
}

#[memlink_export]
pub fn wide_result(_ctx: &CallContext<'_>) -> Result<Rkyv<Wide>> {
    Ok(Rkyv(Wide { a: 1 }))
}

#[memlink_export]
pub fn wide_argument(_ctx: &CallContext<'_>, w: &Archived<Wide>) -> Result<u64> {
    Ok(w.a.to_native())
}

fn main() {}
