//! A depth limit that holds whatever the decoder does.
//!
//! rmp-serde counts arrays and maps against its depth limit, but not enums, options or
//! newtypes: a recursive enum 100,000 levels deep, or `struct Chain(Option<Box<Chain>>)`
//! (whose decoding can recurse without consuming a byte), overflows the stack, which no
//! one can catch. This adapter counts every nested `deserialize_*` call of any kind and
//! fails past the limit, so the limit is a property of the data model, not of one
//! decoder's bookkeeping.
//!
//! Each level also looks at the thread's stack, and fails while too little of it is left
//! for the levels to come (`super::stack`): levels are not bytes.

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// What a decode has left: levels; the stack is measured from the budget's own address,
/// a local of the function that decodes.
pub(crate) struct Budget {
    left: Cell<usize>,
    /// The levels it started with.
    levels: usize,
}

impl Budget {
    /// `levels` levels.
    pub(crate) fn new(levels: usize) -> Budget {
        Budget {
            left: Cell::new(levels),
            levels,
        }
    }
}

/// Wraps `inner` so that nesting deeper than `*left` levels is an error.
pub(crate) struct Depth<'c, D> {
    inner: D,
    left: &'c Budget,
}

impl<'c, D> Depth<'c, D> {
    pub(crate) fn new(inner: D, left: &'c Budget) -> Self {
        Depth { inner, left }
    }
}

/// One level taken; given back when dropped.
struct Level<'c>(&'c Budget);

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.0.left.set(self.0.left.get() + 1);
    }
}

fn enter<E: de::Error>(budget: &Budget) -> Result<Level<'_>, E> {
    match budget.left.get() {
        0 => Err(E::custom(format_args!(
            "values nest deeper than the {} levels a decoder accepts (`MAX_NESTING`: an \
             enum, an option or a newtype is a level too)",
            super::MAX_NESTING
        ))),
        n => {
            match super::stack::too_short(core::ptr::from_ref(budget).addr(), budget.levels - n + 1)
            {
                Some((left, per_level)) => Err(E::custom(format_args!(
                    "values nest deeper than this thread's stack can decode: at level {}, {} KiB \
                 of it was left, and a level of this value took {} KiB",
                    budget.levels - n,
                    left / 1024,
                    per_level.div_ceil(1024)
                ))),
                None => {
                    budget.left.set(n - 1);
                    Ok(Level(budget))
                }
            }
        }
    }
}

macro_rules! forward {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let _level = enter::<D::Error>(self.left)?;
            self.inner.$method(Wrap { inner: visitor, left: self.left })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Depth<'_, D> {
    type Error = D::Error;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    /// Read as what is there, not through the decoder's `u128`, which casts a negative
    /// integer to a huge value (`super::wide`). Asked for as a sequence, so that a binary
    /// comes as its bytes one by one, as an array does: rmp-serde hands a string that is
    /// not UTF-8 to `visit_bytes`, which `U128` then refuses, where under
    /// `deserialize_any` a binary and such a string both came there and could not be
    /// told apart.
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let _level = enter::<D::Error>(self.left)?;
        self.inner.deserialize_seq(super::wide::U128(Wrap {
            inner: visitor,
            left: self.left,
        }))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = enter::<D::Error>(self.left)?;
        self.inner.deserialize_unit_struct(
            name,
            Wrap {
                inner: visitor,
                left: self.left,
            },
        )
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = enter::<D::Error>(self.left)?;
        self.inner.deserialize_newtype_struct(
            name,
            Wrap {
                inner: visitor,
                left: self.left,
            },
        )
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = enter::<D::Error>(self.left)?;
        self.inner.deserialize_tuple(
            len,
            Wrap {
                inner: visitor,
                left: self.left,
            },
        )
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = enter::<D::Error>(self.left)?;
        self.inner.deserialize_tuple_struct(
            name,
            len,
            Wrap {
                inner: visitor,
                left: self.left,
            },
        )
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = enter::<D::Error>(self.left)?;
        self.inner.deserialize_struct(
            name,
            fields,
            Wrap {
                inner: visitor,
                left: self.left,
            },
        )
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let _level = enter::<D::Error>(self.left)?;
        self.inner.deserialize_enum(
            name,
            variants,
            Wrap {
                inner: visitor,
                left: self.left,
            },
        )
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor, seed or access object whose nested deserializers are wrapped too.
struct Wrap<'c, T> {
    inner: T,
    left: &'c Budget,
}

macro_rules! visit {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    visit!(
        visit_bool: bool, visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64,
        visit_i128: i128, visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64,
        visit_u128: u128, visit_f32: f32, visit_f64: f64, visit_char: char, visit_str: &str,
        visit_borrowed_str: &'de str, visit_string: String, visit_bytes: &[u8],
        visit_borrowed_bytes: &'de [u8], visit_byte_buf: Vec<u8>,
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Depth::new(d, self.left))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Depth::new(d, self.left))
    }

    /// A visitor that stops before the sequence's end (a tuple or array of `N`) leaves
    /// elements that are then an error, in rmp-serde's words for an array: rmp-serde
    /// hands a binary asked for as a sequence through serde's `SeqDeserializer` without
    /// its end check, and a longer binary read as `[u8; 3]` or `(u8, u8)` had its other
    /// bytes dropped. What is left is read from the size hint (rmp-serde's and serde's
    /// are exact), so nothing more is read.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let mut seq = Items {
            seq: Wrap {
                inner: seq,
                left: self.left,
            },
            taken: 0,
        };
        let value = self.inner.visit_seq(&mut seq)?;
        if seq.size_hint().is_some_and(|left| left > 0) {
            return Err(de::Error::custom(format_args!(
                "array had incorrect length, expected {}",
                seq.taken
            )));
        }
        Ok(value)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Wrap {
            inner: map,
            left: self.left,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Wrap {
            inner: data,
            left: self.left,
        })
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Depth::new(d, self.left))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Wrap {
            inner: seed,
            left: self.left,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// A sequence's elements, counted as they are taken.
struct Items<'c, A> {
    seq: Wrap<'c, A>,
    taken: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Items<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let item = self.seq.next_element_seed(seed)?;
        self.taken += usize::from(item.is_some());
        Ok(item)
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Wrap {
            inner: seed,
            left: self.left,
        })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Wrap {
            inner: seed,
            left: self.left,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'c, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<'c, A> {
    type Error = A::Error;
    type Variant = Wrap<'c, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let left = self.left;
        let (value, variant) = self.inner.variant_seed(Wrap { inner: seed, left })?;
        Ok((
            value,
            Wrap {
                inner: variant,
                left,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let _level = enter::<A::Error>(self.left)?;
        self.inner.newtype_variant_seed(Wrap {
            inner: seed,
            left: self.left,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let _level = enter::<A::Error>(self.left)?;
        self.inner.tuple_variant(
            len,
            Wrap {
                inner: visitor,
                left: self.left,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let _level = enter::<A::Error>(self.left)?;
        self.inner.struct_variant(
            fields,
            Wrap {
                inner: visitor,
                left: self.left,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::msgpack::from_msgpack;

    /// Found by reading rmp-serde while fuzzing `msgpack_differential` (which agrees
    /// with rmp-serde here, so could not flag it): a binary longer than the tuple or
    /// array it was read as decoded, its other bytes dropped, where an array is refused.
    #[test]
    fn a_binary_longer_than_its_tuple_or_array_is_refused_as_an_array_is() {
        let long = [0xc4, 5, 1, 2, 3, 4, 5];
        assert!(from_msgpack::<[u8; 3]>(&long).is_err());
        let err = from_msgpack::<(u8, u8)>(&long).unwrap_err().to_string();
        // In the words rmp-serde has for an array.
        let array = from_msgpack::<(u8, u8)>(&[0x95, 1, 2, 3, 4, 5]).unwrap_err();
        assert_eq!(err, array.to_string());
        assert!(
            err.contains("array had incorrect length, expected 2"),
            "{err}"
        );
        // Exactly as long, it is read, as a sequence of any length is.
        assert_eq!(from_msgpack::<[u8; 5]>(&long).unwrap(), [1, 2, 3, 4, 5]);
        assert_eq!(from_msgpack::<Vec<u8>>(&long).unwrap(), [1, 2, 3, 4, 5]);
    }
}
