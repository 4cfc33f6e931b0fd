//! A typed value written as the raw argument it stands for, straight from its
//! `Serialize`: the bytes [`super::raw::in_place`] finds in the value's MessagePack
//! encoding, with no encoding made. A large byte argument (a `&[u8]` of many megabytes,
//! which serde writes one `u8` at a time) passes once over its bytes, into one vector.
//!
//! The value is one of (`Some` and newtypes being what they hold, and a `char` a string
//! of one): a string or byte string; a sequence of `u8` (`&[u8]`, `Vec<u8>`, `[u8; N]`);
//! or a sequence of one element that is a string, a byte string or a sequence of `u8`
//! (an argument tuple of one). Anything else is no raw argument.

use serde::ser::{self, Serialize, SerializeSeq, SerializeTuple, SerializeTupleStruct};

use super::raw_shape::refuses_what_no_raw_argument_holds;
use super::scalar::{gives_up_on_maps_structs_and_variants, GaveUp};

/// The raw argument `value` stands for (see the module's docs), or `None`.
pub(crate) fn write<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    value
        .serialize(Part {
            out: &mut out,
            level: Level::Top,
        })
        .ok()?;
    Some(out)
}

/// Where in the value a part stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The value itself: a string, or a sequence.
    Top,
    /// An element of the value's sequence: a byte, or (as the only element) a string or
    /// a sequence of bytes.
    Element,
    /// An element of a sequence inside the value's: a byte.
    Byte,
}

/// What a part was, for the sequence it is an element of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Byte,
    /// A string, byte string or sequence: allowed only as a sequence's one element.
    Whole,
}

type Written = Result<Kind, GaveUp>;

/// The serializer of one part, at `level`.
struct Part<'o> {
    out: &'o mut Vec<u8>,
    level: Level,
}

impl<'o> Part<'o> {
    fn whole(self, bytes: &[u8]) -> Written {
        if self.level == Level::Byte {
            return Err(GaveUp);
        }
        self.out.extend_from_slice(bytes);
        Ok(Kind::Whole)
    }

    fn seq(self) -> Result<Seq<'o>, GaveUp> {
        let child = match self.level {
            Level::Top => Level::Element,
            Level::Element => Level::Byte,
            Level::Byte => return Err(GaveUp),
        };
        Ok(Seq {
            out: self.out,
            child,
            items: 0,
            whole: false,
        })
    }
}

impl<'o> ser::Serializer for Part<'o> {
    type Ok = Kind;
    type Error = GaveUp;
    type SerializeSeq = Seq<'o>;
    type SerializeTuple = Seq<'o>;
    type SerializeTupleStruct = Seq<'o>;
    type SerializeTupleVariant = ser::Impossible<Kind, GaveUp>;
    type SerializeMap = ser::Impossible<Kind, GaveUp>;
    type SerializeStruct = ser::Impossible<Kind, GaveUp>;
    type SerializeStructVariant = ser::Impossible<Kind, GaveUp>;

    fn serialize_u8(self, v: u8) -> Written {
        // A byte alone is no raw argument: only a sequence's elements are bytes.
        if self.level == Level::Top {
            return Err(GaveUp);
        }
        self.out.push(v);
        Ok(Kind::Byte)
    }

    fn serialize_str(self, v: &str) -> Written {
        self.whole(v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Written {
        self.whole(v)
    }

    fn serialize_char(self, v: char) -> Written {
        self.whole(v.encode_utf8(&mut [0; 4]).as_bytes())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Written {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Written {
        value.serialize(self)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'o>, GaveUp> {
        self.seq()
    }

    fn serialize_tuple(self, _: usize) -> Result<Seq<'o>, GaveUp> {
        self.seq()
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'o>, GaveUp> {
        self.seq()
    }

    refuses_what_no_raw_argument_holds!(Kind);
    gives_up_on_maps_structs_and_variants!(Kind);
}

/// A sequence's elements, written at `child`: bytes, or one whole element alone.
struct Seq<'o> {
    out: &'o mut Vec<u8>,
    child: Level,
    items: usize,
    /// Its first element was whole: no other may follow.
    whole: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GaveUp> {
        if self.whole {
            return Err(GaveUp);
        }
        let kind = value.serialize(Part {
            out: self.out,
            level: self.child,
        })?;
        if kind == Kind::Whole && self.items > 0 {
            return Err(GaveUp);
        }
        self.whole = kind == Kind::Whole;
        self.items += 1;
        Ok(())
    }
}

/// Each element of a sequence, a tuple or a tuple struct is written as a part.
macro_rules! elements {
    ($($trait:path, $method:ident;)*) => {
        $(
            impl $trait for Seq<'_> {
                type Ok = Kind;
                type Error = GaveUp;

                fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GaveUp> {
                    self.element(value)
                }

                fn end(self) -> Written {
                    Ok(Kind::Whole)
                }
            }
        )*
    };
}

elements! {
    SerializeSeq, serialize_element;
    SerializeTuple, serialize_element;
    SerializeTupleStruct, serialize_field;
}

#[cfg(test)]
mod tests {
    use super::write;
    use crate::msgpack::{raw, raw_shape, to_msgpack};
    use serde::Serialize;

    /// What the encoding's reading finds: the value's shape asked, then the raw
    /// argument found in its MessagePack encoding.
    fn found<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
        if !raw_shape::fits(value) {
            return None;
        }
        let mut packed = to_msgpack(value).ok()?;
        raw::in_place(&mut packed).map(|range| packed[range].to_vec())
    }

    fn agree<T: Serialize + ?Sized + std::fmt::Debug>(value: &T) {
        assert_eq!(write(value), found(value), "{value:?}");
    }

    #[test]
    fn a_value_written_raw_is_what_its_encoding_holds() {
        agree("hello");
        agree(&String::new());
        agree(&'é');
        agree(&b"bytes"[..]);
        agree(&vec![1u8, 2, 255]);
        agree(&Vec::<u8>::new());
        agree(&[7u8; 3]);
        agree(&("hello",));
        agree(&(vec![1u8, 2],));
        agree(&(5u8,));
        agree(&(5u8, 6u8));
        agree(&(Vec::<u8>::new(),));
        agree(&Some("hello"));
        agree(&(Some(vec![1u8]),));
        agree(&std::borrow::Cow::Borrowed("hello"));
        // No raw argument, each refused alike.
        agree(&5u8);
        agree(&("a", "b"));
        agree(&(1u8, "b"));
        agree(&("a", 1u8));
        agree(&(vec![1u8], 2u8));
        agree(&vec![vec![1u8], vec![2u8]]);
        agree(&((vec![1u8],),));
        agree(&(("a",),));
        agree(&vec!["a"]);
        agree(&vec![Some(1u8)]);
        agree(&(2u32, 3u32));
        agree(&Option::<&str>::None);
        agree(&());
        agree(&1.5f64);
        agree(&std::collections::BTreeMap::from([("a", 1u8)]));
    }

    #[test]
    fn a_large_byte_sequence_is_written_once() {
        let bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(write(&bytes).as_deref(), Some(&bytes[..]));
        assert_eq!(write(&(&bytes[..],)).as_deref(), Some(&bytes[..]));
    }
}
