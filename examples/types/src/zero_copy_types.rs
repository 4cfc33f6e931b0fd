//! Types exchanged as rkyv archives by the `zero_copy` example module and its hosts.

use rkyv::{Archive, Deserialize, Serialize};

/// A point in space: plain floats, which validate in constant time.
#[derive(
    Archive,
    Serialize,
    Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Point {
    /// X.
    pub x: f32,
    /// Y.
    pub y: f32,
    /// Z.
    pub z: f32,
}

/// A linked chain, for showing that nesting is bounded during validation.
#[derive(Archive, Serialize, Debug)]
#[rkyv(serialize_bounds(__S: rkyv::ser::Writer), bytecheck(bounds(__C: rkyv::validation::ArchiveContext)))]
pub enum Chain {
    /// The end.
    End,
    /// One more link.
    Link(#[rkyv(omit_bounds)] Box<Chain>),
}
