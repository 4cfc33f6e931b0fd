//! Target `msgpack_args`: any bytes, decoded as the arguments of example-like
//! signatures through `memlink_msdk::serialize::from_msgpack`.
//!
//! Checked for every input and every type:
//! - decoding never crashes (no panic, no stack overflow, no huge allocation);
//! - a failure is `ModuleError::Serialize`, never another variant;
//! - an accepted document is at most `MAX_DEPTH` deep (the ABI's promise), and so is
//!   the value decoded from it;
//! - an accepted value re-encodes, and its encoding decodes back to the same bytes;
//! - what the plain reader (`serialize::primitive`, the path of exports whose arguments
//!   are all scalars, strings and byte vectors) accepts, serde decodes to the same value:
//!   the reader is only a shortcut.

use memlink_msdk::abi::msgpack::{convert_args, decode_as};
use memlink_msdk::abi::Format;
use memlink_msdk::serialize::primitive::ScalarArgs;
use memlink_msdk::serialize::{from_msgpack, to_msgpack, MAX_DEPTH, MAX_NESTING};
use memlink_msdk::ModuleError;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::depth::depth;
use crate::known;
use crate::types::{AddArgs, Chain, Profile, Tree};

/// Decodes `data` as each type.
pub fn run(data: &[u8]) {
    check::<(u32, u32)>(data, |_| 1);
    check::<AddArgs>(data, |_| 1);
    check::<(Profile,)>(data, |_| 0);
    check::<Vec<Option<String>>>(data, |_| 1);
    check::<(String, String, Vec<u8>)>(data, |_| 1);
    check::<serde_json::Value>(data, json_depth);
    if !known::tolerated(known::ENUM_DEPTH) || depth(data).is_some_and(|d| d <= MAX_DEPTH) {
        check::<Tree>(data, Tree::depth);
    }
    if !known::tolerated(known::OPTION_RECURSION) {
        check::<Chain>(data, |_| 0);
    }
    conversions(data);
    plain::<(u32, u32)>(data);
    plain::<(String, String, Vec<u8>)>(data);
    plain::<(i64, bool, f64, Vec<u8>)>(data);
}

/// The plain reader's answer for `data`, if it has one, is serde's: compared by their
/// encodings, so that a NaN read by both is the same answer.
fn plain<T>(data: &[u8])
where
    T: ScalarArgs + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let Some(value) = T::read_args(data) else {
        return;
    };
    let name = std::any::type_name::<T>();
    let decoded = from_msgpack::<T>(data)
        .unwrap_or_else(|e| panic!("the plain reader read {name} that serde refuses: {e:?}"));
    let (ours, serdes) = (to_msgpack(&value), to_msgpack(&decoded));
    assert_eq!(
        ours.ok(),
        serdes.ok(),
        "the plain reader and serde differ on {name}: {value:?} against {decoded:?}"
    );
}

/// What typed calls do with MessagePack: turn it into a raw method's bytes, and read a
/// raw result back as a typed value. Errors are fine; they must be `Serialize`.
fn conversions(data: &[u8]) {
    for format in [Format::Raw, Format::MessagePack] {
        match convert_args(format, data.to_vec()) {
            Ok(bytes) if format == Format::MessagePack => assert_eq!(bytes, data),
            Ok(_) | Err(ModuleError::Serialize(_)) => {}
            Err(other) => panic!("convert_args({format:?}) failed with {other:?}"),
        }
        let decoded = [
            decode_as::<String>(format, data).err(),
            decode_as::<Vec<u8>>(format, data).err(),
            decode_as::<(u32, u32)>(format, data).err(),
            decode_as::<serde_json::Value>(format, data).err(),
        ];
        for e in decoded.into_iter().flatten() {
            assert!(
                matches!(e, ModuleError::Serialize(_)),
                "decode_as({format:?}): {e:?}"
            );
        }
    }
}

/// Decodes `data` as `T` and checks the outcome; `value_depth` measures a decoded value
/// (0 where the type bounds it).
fn check<T>(data: &[u8], value_depth: impl Fn(&T) -> usize)
where
    T: DeserializeOwned + Serialize + std::fmt::Debug,
{
    let value = match from_msgpack::<T>(data) {
        Ok(value) => value,
        Err(ModuleError::Serialize(_)) => return,
        Err(other) => panic!(
            "decoding {} failed with {other:?}, not a Serialize error",
            std::any::type_name::<T>()
        ),
    };
    let input_depth = depth(data).unwrap_or_else(|| {
        panic!(
            "{} was decoded from bytes that are not one MessagePack value",
            std::any::type_name::<T>()
        )
    });
    // Arrays and maps stop at MAX_DEPTH; nesting through enums, options and newtypes at
    // MAX_NESTING decoding calls, which bounds the value's depth by the same number.
    assert!(
        input_depth <= MAX_NESTING && value_depth(&value) <= MAX_NESTING,
        "{} decoded from a document {input_depth} deep (value {} deep): deeper than MAX_NESTING = {MAX_NESTING}",
        std::any::type_name::<T>(),
        value_depth(&value)
    );
    let encoded = to_msgpack(&value).unwrap_or_else(|e| panic!("re-encoding {value:?}: {e}"));
    let again: T = from_msgpack(&encoded)
        .unwrap_or_else(|e| panic!("decoding our own encoding of {value:?} ({encoded:02x?}): {e}"));
    assert_eq!(
        to_msgpack(&again).ok().as_deref(),
        Some(&encoded[..]),
        "encoding is not stable for {value:?}"
    );
}

fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|c| (c, d + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    deepest
}
