//! What the direct readers and the raw writers give up on: [`GaveUp`], their error, and
//! the methods of a `serde::Serializer` that give up on maps, structs and variants.

use core::fmt;

use serde::ser;

/// Why a raw writer (`raw_write`, `raw_shape`) or the direct reader (`scalar_read`) gave
/// up; never shown to anyone (the caller falls back to `rmp_serde`, or refuses).
#[derive(Debug)]
pub(crate) struct GaveUp;

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to rmp_serde")
    }
}

impl std::error::Error for GaveUp {}

impl ser::Error for GaveUp {
    fn custom<M: fmt::Display>(_: M) -> GaveUp {
        GaveUp
    }
}

impl serde::de::Error for GaveUp {
    fn custom<M: fmt::Display>(_: M) -> GaveUp {
        GaveUp
    }
}

/// The methods of a `serde::Serializer` whose error is [`GaveUp`] for the values it
/// leaves to others: maps, structs and enum variants with data. Its `Ok` is `()`, or the
/// type given.
macro_rules! gives_up_on_maps_structs_and_variants {
    () => {
        gives_up_on_maps_structs_and_variants!(());
    };
    ($ok:ty) => {
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<$ok, GaveUp> {
            Err(GaveUp)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, GaveUp> {
            Err(GaveUp)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, GaveUp> {
            Err(GaveUp)
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, GaveUp> {
            Err(GaveUp)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, GaveUp> {
            Err(GaveUp)
        }
    };
}
pub(crate) use gives_up_on_maps_structs_and_variants;
