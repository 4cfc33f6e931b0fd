//! Triangles of plain `f32`s: rust_serialization_benchmark's `mesh` set.

use rkyv::{Archive, Serialize};

use super::Rng;

/// Triangles in the benchmark's set, as in rust_serialization_benchmark.
pub const MESH_TRIANGLES: usize = 125_000;

/// A point or direction.
#[derive(
    Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq,
)]
pub struct Vector3 {
    /// X.
    pub x: f32,
    /// Y.
    pub y: f32,
    /// Z.
    pub z: f32,
}

/// A triangle: three vertices and its normal.
#[derive(
    Archive, Serialize, serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq,
)]
pub struct Triangle {
    /// First vertex.
    pub v0: Vector3,
    /// Second vertex.
    pub v1: Vector3,
    /// Third vertex.
    pub v2: Vector3,
    /// The normal.
    pub normal: Vector3,
}

/// `n` triangles, the same for the same seed.
pub fn generate_mesh(seed: u64, n: usize) -> Vec<Triangle> {
    let mut rng = Rng::new(seed);
    let v = |rng: &mut Rng| Vector3 {
        x: rng.unit_f32(),
        y: rng.unit_f32(),
        z: rng.unit_f32(),
    };
    (0..n)
        .map(|_| Triangle {
            v0: v(&mut rng),
            v1: v(&mut rng),
            v2: v(&mut rng),
            normal: v(&mut rng),
        })
        .collect()
}

/// One body for the owned and the archived mesh, so they add in the same order and give
/// bit-identical sums.
macro_rules! mesh_sum {
    ($(#[$doc:meta])* $name:ident, $ty:ty, $f:expr) => {
        $(#[$doc])*
        pub fn $name(triangles: &[$ty]) -> f64 {
            let f = $f;
            triangles.iter().fold(0.0, |sum, t| {
                let v = |p: &_| -> f64 {
                    let (x, y, z): (f64, f64, f64) = f(p);
                    x + y + z
                };
                sum + v(&t.v0) + v(&t.v1) + v(&t.v2) + v(&t.normal)
            })
        }
    };
}

mesh_sum!(
    /// The sum of every coordinate of every triangle, in `f64`.
    mesh_sum,
    Triangle,
    |p: &Vector3| (f64::from(p.x), f64::from(p.y), f64::from(p.z))
);

mesh_sum!(
    /// [`mesh_sum`] of the archived triangles, read in place.
    mesh_sum_archived,
    ArchivedTriangle,
    |p: &ArchivedVector3| {
        (
            f64::from(p.x.to_native()),
            f64::from(p.y.to_native()),
            f64::from(p.z.to_native()),
        )
    }
);
