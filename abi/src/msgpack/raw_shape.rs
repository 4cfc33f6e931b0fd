//! Whether a typed value has the shape of a raw argument, asked of its `Serialize`
//! before it is encoded: a string, a byte string, a sequence of `u8` (how serde writes a
//! `&[u8]`, a `Vec<u8>` or a `[u8; N]`), or one of those in a tuple of one (a `char` is
//! a string of one).
//!
//! Once encoded, MessagePack cannot tell a `Vec<u8>` from a tuple of small integers: a
//! caller who passed `(2u32, 3u32)` to a method that takes bytes would have it called
//! with the bytes `[2, 3]`. The serializer still says which it was, so that is asked
//! here, and such a value is refused as the wrong type. What the value holds (a tuple of
//! one, or of more) is left to the encoded bytes' reading (`super::raw`).

use serde::ser::{self, Impossible, Serialize, SerializeSeq, SerializeTuple};

use super::scalar::{gives_up_on_maps_structs_and_variants, GaveUp};

/// Whether `value` is made only of what a raw argument is made of (see the module's
/// docs): no integer but `u8`, and no float, boolean, map, struct or enum.
///
/// Out of line: inlined into a typed call's encoding, it cost a MessagePack call, which
/// never asks it, 18 instructions (callgrind, `add_typed`).
#[inline(never)]
pub(crate) fn fits<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(Shape).is_ok()
}

/// The checking serializer: each method a raw argument's parts call is `Ok`, the rest
/// `Err`.
struct Shape;

type Fits = Result<(), GaveUp>;

/// The methods of a serializer of a raw argument's parts (this module's, and
/// `super::raw_write`'s) for the values no raw argument is made of: each gives up. The
/// serializer's `Ok` is the type given.
macro_rules! refuses_what_no_raw_argument_holds {
    ($ok:ty) => {
        refuses_what_no_raw_argument_holds! {
            $ok;
            serialize_bool(bool);
            serialize_i8(i8);
            serialize_i16(i16);
            serialize_i32(i32);
            serialize_i64(i64);
            serialize_i128(i128);
            serialize_u16(u16);
            serialize_u32(u32);
            serialize_u64(u64);
            serialize_u128(u128);
            serialize_f32(f32);
            serialize_f64(f64);
            serialize_none();
            serialize_unit();
            serialize_unit_struct(&'static str);
            serialize_unit_variant(&'static str, u32, &'static str);
        }
    };
    ($ok:ty; $($name:ident($($arg:ty),*);)*) => {
        $(
            fn $name(self, $(_: $arg),*) -> Result<$ok, GaveUp> {
                Err(GaveUp)
            }
        )*
    };
}
pub(crate) use refuses_what_no_raw_argument_holds;

impl ser::Serializer for Shape {
    type Ok = ();
    type Error = GaveUp;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Impossible<(), GaveUp>;
    type SerializeMap = Impossible<(), GaveUp>;
    type SerializeStruct = Impossible<(), GaveUp>;
    type SerializeStructVariant = Impossible<(), GaveUp>;

    fn serialize_u8(self, _: u8) -> Fits {
        Ok(())
    }

    fn serialize_str(self, _: &str) -> Fits {
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Fits {
        Ok(())
    }

    fn serialize_char(self, _: char) -> Fits {
        // Written as a string of one character.
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Fits {
        // `Some(x)` is written as `x`.
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Fits {
        // A newtype is written as what it wraps.
        value.serialize(self)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self, GaveUp> {
        Ok(self)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self, GaveUp> {
        Ok(self)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, GaveUp> {
        Ok(self)
    }

    refuses_what_no_raw_argument_holds!(());
    gives_up_on_maps_structs_and_variants!();
}

/// Each element of a sequence, a tuple or a tuple struct is checked as a value of its
/// own.
macro_rules! elements {
    ($($trait:path, $method:ident;)*) => {
        $(
            impl $trait for Shape {
                type Ok = ();
                type Error = GaveUp;

                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Fits {
                    value.serialize(Shape)
                }

                fn end(self) -> Fits {
                    Ok(())
                }
            }
        )*
    };
}

elements! {
    SerializeSeq, serialize_element;
    SerializeTuple, serialize_element;
    ser::SerializeTupleStruct, serialize_field;
}

#[cfg(test)]
mod tests {
    use super::fits;

    #[test]
    fn strings_bytes_and_sequences_of_u8_fit_alone_or_in_a_tuple_of_one() {
        assert!(fits("hello"));
        assert!(fits(&String::from("hello")));
        assert!(fits(&b"hello"[..]));
        assert!(fits(&vec![1u8, 2, 3]));
        assert!(fits(&[1u8, 2, 3]));
        assert!(fits(&("hello",)));
        assert!(fits(&(vec![1u8, 2],)));
        assert!(fits(&Some("hello")));
        assert!(fits(&std::borrow::Cow::Borrowed("hello")));
        assert!(fits(&'c'));
    }

    /// Integers wider than a byte are no bytes, whatever their values: MessagePack
    /// would have written `(2u32, 3u32)` as `vec![2u8, 3]` is.
    #[test]
    fn wider_integers_and_other_values_do_not_fit() {
        assert!(!fits(&(2u32, 3u32)));
        assert!(!fits(&vec![1u32, 2]));
        assert!(!fits(&(1i8,)));
        assert!(!fits(&(true,)));
        assert!(!fits(&1.5f64));
        assert!(!fits(&Option::<&str>::None));
        assert!(!fits(&()));
        assert!(!fits(&std::collections::BTreeMap::from([("a", 1u8)])));
    }
}
