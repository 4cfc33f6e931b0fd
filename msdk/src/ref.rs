//! Persistent arena references: [`Ref`], a checked handle to a value a module stored in
//! its persistent region, and [`Persistent`], the region as a call sees it. They are
//! defined in [`crate::persist`], which explains the region and the checks a `Ref` goes
//! through.

pub use crate::persist::{Persistent, Ref};
