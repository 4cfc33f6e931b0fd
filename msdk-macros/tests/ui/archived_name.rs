// A parameter spelled as the type rkyv generates (`ArchivedPoint`), or as the archive
// trait's associated type, is an archived view all the same: the error says how to
// write it, `&Archived<Point>`, which names the type the host archives.

use memlink_msdk::prelude::*;
use memlink_msdk::rkyv::{self, Archive};

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(crate = memlink_msdk::rkyv)]
pub struct Point {
    pub x: f32,
}

mod types {
    pub use super::ArchivedPoint;
}

#[memlink_export]
pub fn by_name(_ctx: &CallContext<'_>, p: &ArchivedPoint) -> Result<f32> {
    Ok(p.x.to_native())
}

#[memlink_export]
pub fn by_path(_ctx: &CallContext<'_>, p: &types::ArchivedPoint) -> Result<f32> {
    Ok(p.x.to_native())
}

#[memlink_export]
pub fn beside_a_view(_ctx: &CallContext<'_>, label: &str, p: &ArchivedPoint) -> Result<usize> {
    Ok(label.len() + p.x.to_native() as usize)
}

#[memlink_export]
pub fn associated(_ctx: &CallContext<'_>, p: &<Point as Archive>::Archived) -> Result<f32> {
    Ok(p.x.to_native())
}

fn main() {}
