//! Data sets shared by the `datasets` example module and the benchmarks that call it:
//! shaped like the `log`, `mesh` and `minecraft_savedata` sets of
//! rust_serialization_benchmark, plus byte buffers.
//!
//! Every type derives both serde (for MessagePack) and rkyv (for archives read in place),
//! so one value can travel either way and the two can be compared. The generators are
//! deterministic (a fixed-seed xorshift), so the host knows the right answer of every
//! call before it times one. Each set has a checksum that reads every record, computed
//! by the same code on the owned values and on their archives.

mod log;
mod mesh;
mod minecraft;

pub use self::log::{generate_logs, Address, ArchivedAddress, ArchivedLog, Log, LOG_RECORDS};
pub use self::mesh::{
    generate_mesh, mesh_sum, mesh_sum_archived, ArchivedTriangle, ArchivedVector3, Triangle,
    Vector3, MESH_TRIANGLES,
};
pub use self::minecraft::{
    generate_players, Abilities, ArchivedAbilities, ArchivedDimension, ArchivedEntity,
    ArchivedGameType, ArchivedItem, ArchivedPlayer, ArchivedRecipeBook, ArchivedVec3d,
    ArchivedVehicle, Dimension, Entity, GameType, Item, Player, RecipeBook, Vec3d, Vehicle,
    MINECRAFT_PLAYERS,
};

/// A checksum that reads every field of a record (lengths of strings, every number),
/// implemented alike for a type and its archive so both give the same value.
pub trait Checksum {
    /// The checksum, wrapping on overflow.
    fn checksum(&self) -> u64;
}

impl<T: Checksum> Checksum for [T] {
    fn checksum(&self) -> u64 {
        self.iter()
            .fold(0u64, |sum, item| sum.wrapping_add(item.checksum()))
    }
}

/// Implements [`Checksum`] for a type and its archived form with one body, so the two
/// cannot drift apart: the body only uses what both forms offer (`len`, `iter`,
/// `as_ref` on options, [`Num`] on numbers).
macro_rules! checksum {
    ($native:ty, $archived:ty, |$x:ident| $body:expr) => {
        impl $crate::datasets::Checksum for $native {
            fn checksum(&self) -> u64 {
                let $x = self;
                $body
            }
        }
        impl $crate::datasets::Checksum for $archived {
            fn checksum(&self) -> u64 {
                let $x = self;
                $body
            }
        }
    };
}
pub(crate) use checksum;

/// A number as `u64` bits (integers) or `f64` (floats), whether native or archived
/// (rkyv archives multi-byte numbers as fixed-endian wrappers).
pub trait Num {
    /// The value as `u64`: sign-extended integers wrap, floats give their bits.
    fn u(&self) -> u64;
}

macro_rules! num_int {
    ($($t:ty, $archived:ident);*) => {$(
        impl Num for $t {
            fn u(&self) -> u64 {
                *self as u64
            }
        }
        // The alias, not `Archived<$t>`: coherence does not see through the projection.
        impl Num for rkyv::primitive::$archived {
            fn u(&self) -> u64 {
                self.to_native() as u64
            }
        }
    )*};
}
num_int!(u16, ArchivedU16; u32, ArchivedU32; u64, ArchivedU64; i32, ArchivedI32; i64, ArchivedI64);

impl Num for u8 {
    fn u(&self) -> u64 {
        u64::from(*self)
    }
}

impl Num for i8 {
    fn u(&self) -> u64 {
        *self as u64
    }
}

impl Num for bool {
    fn u(&self) -> u64 {
        u64::from(*self)
    }
}

impl Num for f32 {
    fn u(&self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Num for rkyv::primitive::ArchivedF32 {
    fn u(&self) -> u64 {
        u64::from(self.to_native().to_bits())
    }
}

impl Num for f64 {
    fn u(&self) -> u64 {
        self.to_bits()
    }
}

impl Num for rkyv::primitive::ArchivedF64 {
    fn u(&self) -> u64 {
        self.to_native().to_bits()
    }
}

/// A xorshift64* generator: reproducible data without a `rand` dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced: xorshift's state must not be 0).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`; the modulo bias is irrelevant for test data).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A float in `[0, 1)`.
    pub fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A float in `[0, 1)`.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// One of `items` (not empty).
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// `Some(make(self))` half of the time.
    pub fn maybe<T>(&mut self, make: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        self.coin().then(|| make(self))
    }

    /// A vector of `0..max` items made by `make`.
    pub fn vec_of<T>(&mut self, max: u64, mut make: impl FnMut(&mut Rng) -> T) -> Vec<T> {
        let n = self.below(max);
        (0..n).map(|_| make(self)).collect()
    }
}

/// Bytes that travel as one MessagePack `bin` value. (serde's `Vec<u8>` is a sequence of
/// integers, one MessagePack value per byte; a single `Vec<u8>` argument would be passed
/// raw.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

/// Borrowed [`Bytes`], for encoding without a copy first.
#[derive(Debug, Clone, Copy)]
pub struct BytesRef<'a>(pub &'a [u8]);

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl serde::Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(Visit)
    }
}

/// What a reader of a byte buffer sees without reading all of it: its length and its
/// first, middle and last bytes (zeros when empty). The cost of passing the buffer, not
/// of reading it.
pub fn peek(data: &[u8]) -> (u64, u8, u8, u8) {
    match (data.first(), data.last()) {
        (Some(&first), Some(&last)) => (data.len() as u64, first, data[data.len() / 2], last),
        _ => (0, 0, 0, 0),
    }
}

/// The sum of every byte: a reader that touches all of the buffer.
pub fn byte_sum(data: &[u8]) -> u64 {
    // Summed in u32 lanes of bounded chunks so the compiler can vectorize without
    // overflow: 2^16 bytes of at most 255 fit in a u32.
    data.chunks(1 << 16)
        .map(|chunk| u64::from(chunk.iter().map(|&b| u32::from(b)).sum::<u32>()))
        .sum()
}

/// `len` bytes of a fixed pattern, for byte-buffer benchmarks.
pub fn fill_bytes(buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
}

#[cfg(test)]
mod tests;
