//! MessagePack (feature `msgpack`), the encoding of arguments and results that are
//! plain serde types, as both Rust sides write and read it.
//!
//! Arguments are the argument tuple as an array (`add(2, 3)` is `[2, 3]`) or a map keyed
//! by parameter name; results are encoded with structs as maps, so a generic reader (the
//! `memlink` CLI's JSON output) sees field names. Decoding is bounded in depth whatever
//! the types do. A typed call (from a host, or a module's nested call) converts between
//! MessagePack and the formats the callee's method table names: [`encode_as`],
//! [`convert_args`], [`decode_as`].

use core::mem::MaybeUninit;
use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ModuleError;
use crate::format::Format;

type Result<T, E = ModuleError> = core::result::Result<T, E>;

mod depth;
mod direct;
mod extent;
mod raw;
mod raw_read;
mod raw_shape;
mod raw_write;
mod scalar;
mod scalar_read;
mod stack;
mod wide;

/// Deepest nesting of arrays and maps a decoder accepts: deeper input is an error, not a
/// stack overflow.
pub const MAX_DEPTH: usize = 128;

/// Most nested decoding calls of any kind (enums, options and newtypes included; one
/// level of data can take two or three).
pub const MAX_NESTING: usize = 384;

/// Encodes `value`, structs as maps, appending to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    direct::encode_onto(value, out).map_err(direct::Error::into_module_error)
}

/// Encodes `value`, structs as maps, into any writer.
///
/// Every encoder of this module writes the bytes `rmp_serde` writes, but for a value it
/// could not read back as it was: `Some` of a value written as nil (`Some(None)` of an
/// `Option<Option<T>>`, `Some(())`), which reads back as `None`, is refused.
///
/// ```
/// use memlink_abi::msgpack::to_msgpack;
/// assert_eq!(to_msgpack(&Some(Some(7u8)))?, [7]);
/// assert!(to_msgpack(&Some(None::<u8>)).is_err());
/// # Ok::<(), memlink_abi::ModuleError>(())
/// ```
pub fn encode_to<T: Serialize + ?Sized, W: std::io::Write>(value: &T, mut out: W) -> Result<()> {
    let mut bytes = Vec::new();
    encode_into(value, &mut bytes)?;
    out.write_all(&bytes)
        .map_err(|e| ModuleError::Serialize(format!("cannot write MessagePack: {e}")))
}

/// Encodes `value`, structs as maps, into the start of `buf`, memory not yet
/// initialized, and returns the length written (those bytes are initialized); `None`
/// when it does not fit or cannot be encoded ([`encode_spilling`] keeps what does not
/// fit, and says why a value cannot be encoded). The bytes are `rmp_serde`'s (see
/// [`encode_to`]), written by the crate's own writer in one run of the value's
/// `Serialize`.
///
/// ```
/// use core::mem::MaybeUninit;
/// let mut buf = [MaybeUninit::<u8>::uninit(); 16];
/// let len = memlink_abi::msgpack::encode_to_uninit(&("hi", 7u8), &mut buf).unwrap();
/// // SAFETY: the first `len` bytes were written.
/// let written = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
/// assert_eq!(written, [0x92, 0xa2, b'h', b'i', 7]);
/// ```
#[inline]
pub fn encode_to_uninit<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut [MaybeUninit<u8>],
) -> Option<usize> {
    match direct::encode(value, buf) {
        Ok(Encoded::Within(bytes)) => Some(bytes.len()),
        _ => None,
    }
}

pub use crate::spill::Encoded;

/// Encodes `value`, structs as maps, into the start of `buf` (memory not yet
/// initialized), or, once it does not fit there, all of it into a vector: its
/// `Serialize` runs once either way, so a value that can be serialized only once (one
/// draining an iterator through a `RefCell`) is written whole. The bytes are
/// `rmp_serde`'s ([`encode_to`] says where they are not).
///
/// ```
/// use core::mem::MaybeUninit;
/// use memlink_abi::msgpack::{encode_spilling, Encoded};
///
/// let mut buf = [MaybeUninit::<u8>::uninit(); 4];
/// let small = encode_spilling(&(2u32, 3u32), &mut buf).unwrap();
/// assert!(matches!(small, Encoded::Within(_)));
/// assert_eq!(&*small, [0x92, 2, 3]);
/// let large = encode_spilling(&vec![7u8; 10], &mut buf).unwrap();
/// assert!(matches!(large, Encoded::Spilled(_)));
/// assert_eq!(large.len(), 11);
/// ```
#[inline]
pub fn encode_spilling<'b, T: Serialize + ?Sized>(
    value: &T,
    buf: &'b mut [MaybeUninit<u8>],
) -> Result<Encoded<'b>> {
    direct::encode(value, buf).map_err(direct::Error::into_module_error)
}

/// Encodes `value`, structs as maps.
///
/// ```
/// let bytes = memlink_abi::msgpack::to_msgpack(&(2u32, 3u32))?;
/// assert_eq!(bytes, [0x92, 2, 3]);
/// # Ok::<(), memlink_abi::ModuleError>(())
/// ```
pub fn to_msgpack<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes a whole buffer: nesting is limited to [`MAX_DEPTH`] and trailing bytes are an
/// error.
///
/// The buffer is read in place: nothing is allocated but what `T` itself holds.
#[inline]
pub fn from_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    // Numbers, strings and arrays of them, the usual results and arguments, read without
    // `rmp_serde`'s layers; anything else, and every error, is `rmp_serde`'s.
    match scalar_read::decode(bytes) {
        Some(value) => Ok(value),
        None => from_msgpack_by_rmp(bytes),
    }
}

/// One step of the way to a value that did not decode ([`failure_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathStep {
    /// The element at this index of an array (or of arguments given as an array).
    Index(usize),
    /// The value under this key of a map (or a struct's field).
    Key(String),
    /// This variant of an enum.
    Variant(String),
}

/// Where decoding `bytes` as a `T` fails, from the outermost value in: what to tell a
/// caller beside the decoder's own words, which name no field (`wrong msgpack marker
/// FixStr(1)`). Empty when the failure is at the top, or when `bytes` decode.
///
/// It decodes `bytes` again, with the same limits as [`from_msgpack`], keeping track of
/// where it is: for a call's error path, not its way to success.
///
/// ```
/// use memlink_abi::msgpack::{failure_path, to_msgpack, PathStep};
///
/// let bytes = to_msgpack(&(1u32, "two")).unwrap();
/// assert_eq!(failure_path::<(u32, u32)>(&bytes), [PathStep::Index(1)]);
/// ```
#[cold]
pub fn failure_path<T: DeserializeOwned>(bytes: &[u8]) -> Vec<PathStep> {
    use serde_path_to_error::Segment;
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    let budget = depth::Budget::new(MAX_NESTING);
    match serde_path_to_error::deserialize::<_, T>(depth::Depth::new(&mut de, &budget)) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .path()
            .iter()
            .filter_map(|step| match step {
                Segment::Seq { index } => Some(PathStep::Index(*index)),
                Segment::Map { key } => Some(PathStep::Key(key.clone())),
                Segment::Enum { variant } => Some(PathStep::Variant(variant.clone())),
                Segment::Unknown => None,
            })
            .collect(),
    }
}

/// [`from_msgpack`] through `rmp_serde` alone.
fn from_msgpack_by_rmp<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    // No value is written as no bytes (nothing is nil), so this is always an error, and
    // the decoder's words for it ("failed to fill whole buffer") say nothing of what was
    // wrong: a C module that writes nothing for a method that returns nothing gets this.
    if bytes.is_empty() {
        return Err(ModuleError::Serialize(
            "no bytes, which hold no MessagePack value (nothing, `()`, is nil: 0xc0)".to_owned(),
        ));
    }
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    let budget = depth::Budget::new(MAX_NESTING);
    let value = T::deserialize(depth::Depth::new(&mut de, &budget))?;
    // The decoder read one value (and no further); what follows it is an error.
    match extent::value_len(bytes) {
        Some(len) if len == bytes.len() => Ok(value),
        Some(len) => Err(ModuleError::Serialize(format!(
            "{} trailing bytes after the MessagePack value",
            bytes.len() - len
        ))),
        // The decoder accepted what the measure does not: trust neither.
        None => Err(ModuleError::Serialize(
            "cannot decode MessagePack: the value is malformed".to_owned(),
        )),
    }
}

/// Encodes `args` for a method whose arguments are in `format`, as typed calls do.
///
/// MessagePack: the value as it is (a tuple becomes an array, a struct a map), which
/// must be a list of arguments ([`check_argument_list`]: one argument is a tuple of one).
/// Raw: the
/// value must be one string or byte string (a `&str`, `String`, `&[u8]`, `Vec<u8>` or
/// `[u8; N]`), alone or in a one-element tuple. A sequence of integers wider than `u8`
/// is refused, whatever their values: encoded, `(2u32, 3u32)` would read as the bytes
/// `[2, 3]`, so its type is asked of its `Serialize` first.
///
/// ```
/// use memlink_abi::{msgpack::encode_as, Format};
///
/// assert_eq!(encode_as(Format::Raw, &("hello",)).unwrap(), b"hello");
/// assert_eq!(encode_as(Format::Raw, &vec![2u8, 3]).unwrap(), [2, 3]);
/// assert!(encode_as(Format::Raw, &(2u32, 3u32)).is_err());
/// ```
pub fn encode_as<A: Serialize + ?Sized>(format: Format, args: &A) -> Result<Vec<u8>> {
    if format == Format::Raw {
        // Written straight from the value: encoded first, a `&[u8]` of many megabytes
        // took a pass per byte through the encoder, and one through the encoding.
        return raw_write::write(args).ok_or_else(not_raw);
    }
    let packed = to_msgpack(args)?;
    check_argument_list::<A>(format, &packed)?;
    convert_args(format, packed)
}

/// Whether `bytes` can be the arguments of a method that takes MessagePack: an array of
/// its parameters, a map keyed by their names, or nothing (no bytes, or nil: `()`).
///
/// ```
/// use memlink_abi::msgpack::{is_argument_list, to_msgpack};
///
/// assert!(is_argument_list(&to_msgpack(&(5u64,)).unwrap()));
/// assert!(!is_argument_list(&to_msgpack(&5u64).unwrap()));
/// ```
#[inline]
pub fn is_argument_list(bytes: &[u8]) -> bool {
    // fixmap, fixarray, nil, array 16/32, map 16/32.
    bytes
        .first()
        .is_none_or(|b| matches!(b, 0x80..=0x9f | 0xc0 | 0xdc..=0xdf))
}

/// Refuses the typed arguments `bytes`, the encoding of an `A`, when the method takes
/// MessagePack and they are no list of arguments ([`is_argument_list`]): one value alone
/// (`5` for a method of one parameter, which reads `[5]`) is told to be passed as a
/// tuple of one, where the module would say only that `5` is not its arguments.
///
/// ```
/// use memlink_abi::{msgpack::{check_argument_list, to_msgpack}, Format};
///
/// assert!(check_argument_list::<(u64,)>(Format::MessagePack, &[0x91, 5]).is_ok());
/// let e = check_argument_list::<u64>(Format::MessagePack, &[5]).unwrap_err();
/// assert!(e.to_string().contains("`(x,)`"), "{e}");
/// ```
#[inline]
pub fn check_argument_list<A: ?Sized>(format: Format, bytes: &[u8]) -> Result<()> {
    if format != Format::MessagePack || is_argument_list(bytes) {
        return Ok(());
    }
    Err(not_an_argument_list(core::any::type_name::<A>()))
}

/// The error of [`check_argument_list`] for a type that encodes as one value.
#[cold]
fn not_an_argument_list(type_name: &str) -> ModuleError {
    ModuleError::Serialize(format!(
        "typed arguments are the tuple of the method's parameters, written as one MessagePack \
         array, and `{type_name}` is written as a single value: pass one argument as a tuple \
         of one, `(x,)`"
    ))
}

/// Encodes `args` as [`encode_as`] does, into `buf`: the arguments are
/// `buf[range]`. `None` when they do not fit, or cannot be encoded for `format`
/// ([`encode_as`] then says why). Nothing is allocated: a typed call encodes its
/// arguments on the stack this way.
///
/// A caller that falls back to [`encode_as`] when this returns `None` serializes the
/// value again: [`encode_as_spilling`] does not, for MessagePack.
///
/// ```
/// use memlink_abi::{msgpack::encode_as_into, Format};
///
/// let mut buf = [0; 64];
/// let range = encode_as_into(Format::MessagePack, &(2u32, 3u32), &mut buf).unwrap();
/// assert_eq!(&buf[range], [0x92, 2, 3]);
/// let range = encode_as_into(Format::Raw, &("hello",), &mut buf).unwrap();
/// assert_eq!(&buf[range], b"hello");
/// ```
pub fn encode_as_into<A: Serialize + ?Sized>(
    format: Format,
    args: &A,
    buf: &mut [u8],
) -> Option<core::ops::Range<usize>> {
    let start = buf.as_ptr().addr();
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and the encoders only
    // ever store initialized bytes through the view, so `buf` stays initialized.
    let uninit = unsafe { &mut *(core::ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) };
    let written = encode_as_into_uninit(format, args, uninit)?;
    let at = written.as_ptr().addr() - start;
    Some(at..at + written.len())
}

/// [`encode_as_into`] into memory not yet initialized (a buffer on the stack need not
/// be zeroed first): the arguments are the bytes returned, within `buf`.
///
/// ```
/// use core::mem::MaybeUninit;
/// use memlink_abi::{msgpack::encode_as_into_uninit, Format};
///
/// let mut buf = [MaybeUninit::uninit(); 64];
/// let args = encode_as_into_uninit(Format::MessagePack, &(2u32, 3u32), &mut buf).unwrap();
/// assert_eq!(args, [0x92, 2, 3]);
/// let args = encode_as_into_uninit(Format::Raw, &("hello",), &mut buf).unwrap();
/// assert_eq!(args, b"hello");
/// ```
#[inline]
pub fn encode_as_into_uninit<'b, A: Serialize + ?Sized>(
    format: Format,
    args: &A,
    buf: &'b mut [MaybeUninit<u8>],
) -> Option<&'b [u8]> {
    // The crate's own writer, without `rmp_serde`'s layers: the same bytes.
    let len = encode_to_uninit(args, buf)?;
    // SAFETY: `encode_to_uninit` initialized the first `len` bytes of `buf`, and `len`
    // is within it (its writers never write past the end); `[MaybeUninit<u8>]` and
    // `[u8]` have the same layout.
    let written = unsafe { &mut *(core::ptr::from_mut(&mut buf[..len]) as *mut [u8]) };
    match format {
        Format::Raw => {
            if !raw_shape::fits(args) {
                return None;
            }
            let range = raw::in_place(written)?;
            Some(&written[range])
        }
        // One value alone is no list of arguments (`encode_as` says so).
        Format::MessagePack => is_argument_list(written).then_some(&*written),
        // Typed values are no archive (`convert_args` says so).
        Format::Archived => None,
    }
}

/// Encodes `args` as [`encode_as`] does, into the start of `buf` while they fit, else
/// into a vector ([`encode_spilling`]): what a typed call does with a buffer on its
/// stack. For a method that takes MessagePack the value's `Serialize` runs once. Raw
/// arguments are asked their shape by a `Serialize` run of its own first (see
/// [`encode_as`]), and, too long for `buf`, are written again by [`encode_as`].
///
/// ```
/// use core::mem::MaybeUninit;
/// use memlink_abi::{msgpack::encode_as_spilling, Format};
///
/// let mut buf = [MaybeUninit::uninit(); 64];
/// let args = encode_as_spilling(Format::MessagePack, &(2u32, 3u32), &mut buf).unwrap();
/// assert_eq!(&*args, [0x92, 2, 3]);
/// assert!(encode_as_spilling(Format::MessagePack, &5u32, &mut buf).is_err());
/// ```
#[inline]
pub fn encode_as_spilling<'b, A: Serialize + ?Sized>(
    format: Format,
    args: &A,
    buf: &'b mut [MaybeUninit<u8>],
) -> Result<Encoded<'b>> {
    match format {
        Format::MessagePack => {
            let encoded = encode_spilling(args, buf)?;
            check_argument_list::<A>(format, &encoded)?;
            Ok(encoded)
        }
        _ => match encode_as_into_uninit(format, args, buf) {
            Some(bytes) => Ok(Encoded::Within(bytes)),
            None => encode_as(format, args).map(Encoded::Spilled),
        },
    }
}

/// Turns MessagePack-encoded arguments into what a method whose arguments are in
/// `format` expects (see [`encode_as`]).
pub fn convert_args(format: Format, packed: Vec<u8>) -> Result<Vec<u8>> {
    match format {
        // Found in place and moved to the front: decoded into `raw::Value`s, an array of
        // a million small integers took a 32-byte value each.
        Format::Raw => {
            let mut packed = packed;
            let Some(range) = raw::in_place(&mut packed) else {
                // Bytes that are no MessagePack at all (a C module's typed nested call)
                // are told as such, not as a value of the wrong type.
                return Err(match from_msgpack::<serde::de::IgnoredAny>(&packed) {
                    Ok(_) => not_raw(),
                    Err(e) => ModuleError::Serialize(format!(
                        "the typed arguments are not MessagePack: {}",
                        decoders_words(e)
                    )),
                });
            };
            packed.truncate(range.end);
            packed.drain(..range.start);
            Ok(packed)
        }
        Format::Archived => Err(ModuleError::Serialize(
            "this method takes an rkyv archive of its arguments: send the archive's bytes \
             with a plain call, not typed values"
                .to_owned(),
        )),
        Format::MessagePack => Ok(packed),
    }
}

/// The `NestedCall::flags` of a module's typed nested call with `args`:
/// [`NESTED_TYPED`](crate::NESTED_TYPED), and [`NESTED_NOT_RAW`](crate::NESTED_NOT_RAW)
/// when `args` is not made as a raw argument is (its `Serialize` asked, as [`encode_as`]
/// asks it). The module does not know the callee's format; this lets the host refuse
/// `(2u32, 3u32)` for a callee that takes bytes rather than read its encoding as `[2, 3]`.
///
/// ```
/// use memlink_abi::{msgpack::typed_nested_flags, NESTED_NOT_RAW, NESTED_TYPED};
///
/// assert_eq!(typed_nested_flags(&("hello",)), NESTED_TYPED);
/// assert_eq!(typed_nested_flags(&(2u32, 3u32)), NESTED_TYPED | NESTED_NOT_RAW);
/// ```
pub fn typed_nested_flags<A: Serialize + ?Sized>(args: &A) -> u32 {
    if raw_shape::fits(args) {
        crate::NESTED_TYPED
    } else {
        crate::NESTED_TYPED | crate::NESTED_NOT_RAW
    }
}

/// A nested call's arguments as its callee takes them, given the request's `flags` and
/// the callee's argument `format`: the bytes as they are for an untyped request or a
/// callee that takes MessagePack (nothing copied), else converted as [`convert_args`]
/// converts them. A request marked [`NESTED_NOT_RAW`](crate::NESTED_NOT_RAW) is refused
/// for a callee that takes raw arguments. The runtime and the fuzz host read every
/// request through this, so they read it alike.
///
/// ```
/// use memlink_abi::{msgpack::{nested_args, to_msgpack, typed_nested_flags}, Format};
///
/// let text = to_msgpack(&("hello",)).unwrap();
/// let flags = typed_nested_flags(&("hello",));
/// assert_eq!(&*nested_args(flags, Format::Raw, &text).unwrap(), b"hello");
/// let pair = to_msgpack(&(2u32, 3u32)).unwrap();
/// let flags = typed_nested_flags(&(2u32, 3u32));
/// assert!(nested_args(flags, Format::Raw, &pair).is_err());
/// assert_eq!(&*nested_args(flags, Format::MessagePack, &pair).unwrap(), &pair[..]);
/// ```
#[inline]
pub fn nested_args(flags: u32, format: Format, args: &[u8]) -> Result<Cow<'_, [u8]>> {
    // Inlined into the host's nested call: most requests lend their bytes as they are,
    // and pay for no call here.
    // A MessagePack callee takes them as they are, as docs/abi.md says (one that reads a
    // value alone, a C module's, may; a Rust export's own refusal says what it takes).
    if flags & crate::NESTED_TYPED == 0 || format == Format::MessagePack {
        return Ok(Cow::Borrowed(args));
    }
    converted_nested_args(flags, format, args).map(Cow::Owned)
}

/// [`nested_args`] for a typed request whose callee does not take MessagePack.
#[inline(never)]
fn converted_nested_args(flags: u32, format: Format, args: &[u8]) -> Result<Vec<u8>> {
    if format == Format::Raw && flags & crate::NESTED_NOT_RAW != 0 {
        return Err(not_raw());
    }
    convert_args(format, args.to_vec())
}

/// The error of typed arguments given to a method that takes raw ones which are not one
/// string or byte string.
fn not_raw() -> ModuleError {
    ModuleError::Serialize(
        "this method takes one string or byte argument: pass a &str, String, &[u8] or Vec<u8>"
            .to_owned(),
    )
}

/// A decoding error's own words: `ModuleError`'s prefix ("serialization error: ") is the
/// caller's to add, once.
fn decoders_words(e: ModuleError) -> String {
    match e {
        ModuleError::Serialize(m) => m,
        other => other.to_string(),
    }
}

/// Why a typed call could not read its result as `type_name`: the decoder's error `e`
/// alone (`wrong msgpack marker FixMap(3)`) says neither that it is the result nor what
/// it was read as, so this names the type and, when the module records it, the export's
/// `signature`. The runtime's typed handles and a daemon client's say the same.
pub fn unreadable_result(type_name: &str, e: ModuleError, signature: Option<&str>) -> String {
    let why = decoders_words(e);
    let mut reason = format!("cannot read its result as `{type_name}`: {why}");
    if let Some(signature) = signature {
        reason.push_str(&format!(" (the export is `{signature}`)"));
    }
    reason
}

/// Decodes the result of a method whose result is in `format`, as typed calls do: a raw
/// result is offered to `R` as a string when it is UTF-8, else as a list of bytes. An
/// archived result is refused: its bytes are no MessagePack, and read as such they could
/// decode to a value they do not hold.
#[inline]
pub fn decode_as<R: DeserializeOwned>(format: Format, bytes: &[u8]) -> Result<R> {
    match format {
        Format::Archived => Err(archived_result()),
        Format::Raw => {
            // Text is offered as text first; when `R` takes neither, the error is the
            // one for the form the result has (text, when it is UTF-8), not for the list
            // of byte values it was offered as last.
            // Offered as they lie, not encoded as MessagePack first to be decoded again
            // (one pass per byte each way for a `Vec<u8>`).
            let as_text = match crate::text::utf8(bytes) {
                Ok(text) => match raw_read::read::<R>(bytes, raw_read::Form::Text(text)) {
                    Ok(v) => return Ok(v),
                    Err(e) => Some(e),
                },
                Err(_) => None,
            };
            raw_read::read(bytes, raw_read::Form::Bytes).map_err(|as_bytes| {
                let (form, e) = match as_text {
                    Some(e) => ("UTF-8 text", e),
                    None => ("bytes", as_bytes),
                };
                ModuleError::Serialize(format!("the result is raw {form}: {e}"))
            })
        }
        Format::MessagePack => from_msgpack(bytes),
    }
}

/// The error of an archived result read as a typed value.
#[cold]
fn archived_result() -> ModuleError {
    ModuleError::Serialize(
        "the result is an rkyv archive, not MessagePack: take its bytes with a plain call \
         and validate them in place as the archive of its type"
            .to_owned(),
    )
}

impl From<rmp_serde::decode::Error> for ModuleError {
    fn from(e: rmp_serde::decode::Error) -> Self {
        use rmp_serde::decode::Error as E;
        // The reader's words for bytes that end too soon ("IO error while reading
        // marker: failed to fill whole buffer") say nothing of the bytes.
        let cut_short = matches!(&e, E::InvalidMarkerRead(io) | E::InvalidDataRead(io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof);
        if matches!(e, E::DepthLimitExceeded) {
            return ModuleError::Serialize(format!(
                "cannot decode MessagePack: arrays and maps nest deeper than the {MAX_DEPTH} \
                 levels a decoder accepts (`MAX_DEPTH`)"
            ));
        }
        if cut_short {
            return ModuleError::Serialize(
                "cannot decode MessagePack: the bytes end before the value does (cut short, \
                 or a length in them that runs past their end)"
                    .to_owned(),
            );
        }
        // The reader's words name the marker it found ("wrong msgpack marker FixStr(1)"),
        // which says nothing to one who wrote `"1"` for a number: say what it is.
        if let E::TypeMismatch(marker) = &e {
            return ModuleError::Serialize(format!(
                "cannot decode MessagePack: found {} where the type takes another kind of value \
                 (MessagePack {marker:?})",
                kind_of(*marker)
            ));
        }
        ModuleError::Serialize(format!("cannot decode MessagePack: {e}"))
    }
}

/// What a MessagePack marker starts, in words.
fn kind_of(marker: rmp::Marker) -> &'static str {
    use rmp::Marker as M;
    match marker {
        M::Null => "nil",
        M::True | M::False => "a boolean",
        M::FixPos(_) | M::FixNeg(_) | M::U8 | M::U16 | M::U32 | M::U64 => "an integer",
        M::I8 | M::I16 | M::I32 | M::I64 => "an integer",
        M::F32 | M::F64 => "a float",
        M::FixStr(_) | M::Str8 | M::Str16 | M::Str32 => "a string",
        M::Bin8 | M::Bin16 | M::Bin32 => "bytes",
        M::FixArray(_) | M::Array16 | M::Array32 => "an array",
        M::FixMap(_) | M::Map16 | M::Map32 => "a map",
        M::FixExt1 | M::FixExt2 | M::FixExt4 | M::FixExt8 | M::FixExt16 => "an extension value",
        M::Ext8 | M::Ext16 | M::Ext32 => "an extension value",
        M::Reserved => "a reserved marker",
    }
}

impl From<rmp_serde::encode::Error> for ModuleError {
    fn from(e: rmp_serde::encode::Error) -> Self {
        ModuleError::Serialize(format!("cannot encode MessagePack: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct User {
        id: u32,
        name: String,
    }

    #[test]
    fn structs_round_trip_as_maps() {
        let u = User {
            id: 1,
            name: "ada".into(),
        };
        let bytes = to_msgpack(&u).unwrap();
        assert_eq!(bytes[0], 0x82, "a two-entry map");
        assert_eq!(from_msgpack::<User>(&bytes).unwrap(), u);
    }

    /// A request's flags decide alone whether its bytes are converted: untyped bytes and a
    /// MessagePack callee's are lent as they are, `NESTED_NOT_RAW` matters only to a raw
    /// callee of a typed request, and bits the ABI does not define change nothing.
    #[test]
    fn nested_args_follow_the_requests_flags() {
        use crate::{NESTED_NOT_RAW, NESTED_TYPED};
        let pair = to_msgpack(&(2u32, 3u32)).unwrap();
        let borrowed = |c: &Cow<'_, [u8]>| matches!(c, Cow::Borrowed(b) if *b == &pair[..]);
        assert!(borrowed(&nested_args(0, Format::Raw, &pair).unwrap()));
        assert!(borrowed(
            &nested_args(NESTED_NOT_RAW, Format::Raw, &pair).unwrap()
        ));
        let both = NESTED_TYPED | NESTED_NOT_RAW;
        assert!(borrowed(
            &nested_args(both, Format::MessagePack, &pair).unwrap()
        ));
        // Without the bit the bytes alone are read: the old reading, kept for modules
        // that do not set it.
        assert_eq!(
            &*nested_args(NESTED_TYPED, Format::Raw, &pair).unwrap(),
            [2, 3]
        );
        assert_eq!(
            nested_args(both | 0x8000, Format::Raw, &pair).unwrap_err(),
            not_raw()
        );
        assert!(matches!(
            nested_args(NESTED_TYPED, Format::Archived, &pair),
            Err(ModuleError::Serialize(m)) if m.contains("rkyv archive")
        ));
        let text = to_msgpack(&("hi",)).unwrap();
        let flags = typed_nested_flags(&("hi",));
        assert_eq!(
            &*nested_args(flags | 0x8000, Format::Raw, &text).unwrap(),
            b"hi"
        );
    }

    #[test]
    fn structs_decode_from_arrays_too() {
        let bytes = rmp_serde::to_vec(&(1u32, "ada")).unwrap();
        assert_eq!(from_msgpack::<User>(&bytes).unwrap().name, "ada");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let err = from_msgpack::<u32>(&[0x05, 0x06]).unwrap_err();
        assert_eq!(
            err,
            ModuleError::Serialize("1 trailing bytes after the MessagePack value".into())
        );
    }

    /// Bytes that end before their value does (an array that claims 4 billion
    /// elements, a string cut off) are said to, not as "failed to fill whole buffer".
    #[test]
    fn bytes_cut_short_are_said_to_be() {
        for bytes in [
            &[0xddu8, 0xff, 0xff, 0xff, 0xff][..],
            &[0xa5, b'h', b'i'],
            &[0x92, 1],
        ] {
            let err = from_msgpack::<Vec<serde_json::Value>>(bytes).unwrap_err();
            assert!(
                matches!(&err, ModuleError::Serialize(m) if m.contains("end before the value does")),
                "{bytes:?}: {err}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut bytes = vec![0x91; 100_000];
        bytes.push(0xc0);
        let err = from_msgpack::<serde_json::Value>(&bytes).unwrap_err();
        assert!(
            matches!(&err, ModuleError::Serialize(m)
                if m.contains("arrays and maps nest deeper than the 128 levels a decoder accepts")),
            "{err}"
        );
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)] // only decoded, to show the decoder stops
    struct Chain(Option<Box<Chain>>);

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)] // only decoded, to show the decoder stops
    enum Tree {
        Leaf,
        Node(Box<Tree>),
    }

    #[test]
    fn a_recursive_newtype_cannot_recurse_forever() {
        // rmp-serde hands the same deserializer back for `Option` and newtypes without
        // consuming a byte: without the nesting limit this never ends but in a crash.
        let err = from_msgpack::<Chain>(&[0x01]).unwrap_err();
        assert!(
            err.to_string()
                .contains("values nest deeper than the 384 levels a decoder accepts"),
            "{err}"
        );
    }

    #[test]
    fn deep_enums_stop_at_the_nesting_limit() {
        // `Node(Node(…(Leaf)))`, encoded as nested single-entry maps.
        let mut bytes = Vec::new();
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[0x81, 0xa4]);
            bytes.extend_from_slice(b"Node");
        }
        bytes.extend_from_slice(&[0xa4]);
        bytes.extend_from_slice(b"Leaf");
        let err = from_msgpack::<Tree>(&bytes).unwrap_err();
        assert!(err.to_string().contains("deeper"), "{err}");
        let shallow = [
            0x81, 0xa4, b'N', b'o', b'd', b'e', 0xa4, b'L', b'e', b'a', b'f',
        ];
        assert!(from_msgpack::<Tree>(&shallow).is_ok());
    }

    #[test]
    fn msgpack_args_are_positional_arrays() {
        assert_eq!(
            encode_as(Format::MessagePack, &(2u32, 3u32)).unwrap(),
            [0x92, 2, 3]
        );
        assert_eq!(encode_as(Format::MessagePack, &(7u32,)).unwrap(), [0x91, 7]);
    }

    #[test]
    fn raw_args_take_the_one_string_or_bytes() {
        assert_eq!(encode_as(Format::Raw, "hello").unwrap(), b"hello");
        assert_eq!(encode_as(Format::Raw, &("hi",)).unwrap(), b"hi");
        assert_eq!(encode_as(Format::Raw, &vec![1u8, 2]).unwrap(), [1, 2]);
        assert_eq!(encode_as(Format::Raw, &(vec![9u8],)).unwrap(), [9]);
        // One byte is an array of one integer, as a tuple of one integer is.
        assert_eq!(encode_as(Format::Raw, &vec![7u8]).unwrap(), [7]);
        assert_eq!(encode_as(Format::Raw, &[0u8][..]).unwrap(), [0]);
        assert_eq!(encode_as(Format::Raw, &(255u8,)).unwrap(), [255]);
        assert!(encode_as(Format::Raw, &(256u32,)).is_err());
        // Integers wider than a byte are no bytes, even when their values would fit:
        // their type is asked first (encoded, `(2u32, 3u32)` reads as `[2, 3]`).
        assert!(encode_as(Format::Raw, &(255u32,)).is_err());
        assert!(encode_as(Format::Raw, &(2u32, 3u32))
            .unwrap_err()
            .to_string()
            .contains("one string"));
        let mut buf = [0; 64];
        assert_eq!(encode_as_into(Format::Raw, &(2u32, 3u32), &mut buf), None);
        // What a module sends for a nested call carries no type: there, MessagePack's
        // array of small integers is bytes.
        assert_eq!(convert_args(Format::Raw, vec![0x92, 2, 3]).unwrap(), [2, 3]);
        // Bytes that are no MessagePack are told as such; a value of the wrong type as
        // one.
        let garbage = convert_args(Format::Raw, vec![0xc1])
            .unwrap_err()
            .to_string();
        assert!(garbage.contains("not MessagePack"), "{garbage}");
        let pair = convert_args(Format::Raw, vec![0x92, 0xa1, b'a', 0xa1, b'b']);
        assert!(pair.unwrap_err().to_string().contains("one string"));
        assert!(encode_as(Format::Raw, &(vec![vec![1u8]],)).is_err());
        assert!(encode_as(Format::Raw, &(1u32, 300u32))
            .unwrap_err()
            .to_string()
            .contains("one string"));
        assert!(encode_as(Format::Raw, &("a", "b")).is_err());
        assert!(encode_as(Format::Archived, &(1u32,))
            .unwrap_err()
            .to_string()
            .contains("takes an rkyv archive"));
        assert!(encode_as(Format::Raw, &-1i32).is_err());
    }

    #[test]
    fn encoding_in_place_agrees_with_encoding_into_a_vec() {
        fn agree<A: Serialize + ?Sized>(args: &A) {
            for format in [Format::MessagePack, Format::Raw] {
                let mut buf = [0; 1024];
                let in_place = encode_as_into(format, args, &mut buf).map(|r| buf[r].to_vec());
                assert_eq!(in_place, encode_as(format, args).ok(), "{format:?}");
                let mut uninit = [MaybeUninit::uninit(); 1024];
                let written = encode_as_into_uninit(format, args, &mut uninit).map(<[u8]>::to_vec);
                assert_eq!(written, in_place, "{format:?}, into uninitialized memory");
            }
        }
        agree("hello");
        agree(&("hi",));
        agree(&vec![1u8, 2]);
        agree(&vec![200u8; 40]);
        agree(&(vec![9u8],));
        agree(&vec![5u8]);
        agree(&vec![200u8]);
        agree(&(5u8,));
        agree(&(256u32,));
        agree(&(vec![5u8],));
        agree(&(1u32, 300u32));
        agree(&(1u32, 255u32));
        agree(&("a", "b"));
        agree(&-1i32);
        agree(&((),));
        agree(&(("x",),));
        agree(&(vec![vec![1u8]],));
        agree(&"long string ".repeat(10));
        agree(&(serde_bytes_like(&[7u8; 300]),));
        agree(&User {
            id: 1,
            name: "n".into(),
        });
        let mut small = [0; 4];
        assert_eq!(
            encode_as_into(Format::MessagePack, "too long", &mut small),
            None
        );
        let mut small = [MaybeUninit::uninit(); 4];
        assert_eq!(
            encode_as_into_uninit(Format::MessagePack, "too long", &mut small),
            None
        );
    }

    /// A byte string (MessagePack `bin`), as `serde_bytes` would write it.
    pub(super) fn serde_bytes_like(bytes: &[u8]) -> impl Serialize + core::fmt::Debug + '_ {
        #[derive(Debug)]
        struct Bin<'a>(&'a [u8]);
        impl Serialize for Bin<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bin(bytes)
    }

    #[test]
    fn a_raw_result_that_decodes_as_neither_says_what_it_is() {
        let err = decode_as::<u64>(Format::Raw, b"12")
            .unwrap_err()
            .to_string();
        assert!(err.contains("the result is raw UTF-8 text: "), "{err}");
        assert!(!err.contains("FixArray"), "not the list of bytes: {err}");
        assert!(!err.contains("error: serialization error"), "{err}");
        let err = decode_as::<String>(Format::Raw, &[0xff]).unwrap_err();
        assert!(
            err.to_string().contains("the result is raw bytes: "),
            "{err}"
        );
    }

    #[test]
    fn an_archived_result_is_not_read_as_messagepack() {
        // The archive of a `u8` is the byte itself, which is also the MessagePack of it:
        // read as MessagePack, it decoded to a value by accident of its bytes.
        let err = decode_as::<u8>(Format::Archived, &[7]).unwrap_err();
        assert!(
            err.to_string().contains("the result is an rkyv archive"),
            "{err}"
        );
        let err = decode_as::<Vec<u8>>(Format::Archived, &[0x91, 5]).unwrap_err();
        assert!(matches!(err, ModuleError::Serialize(_)), "{err}");
    }

    #[test]
    fn raw_results_decode_as_strings_or_bytes() {
        assert_eq!(decode_as::<String>(Format::Raw, b"hey").unwrap(), "hey");
        assert_eq!(
            decode_as::<Vec<u8>>(Format::Raw, &[0xff, 0]).unwrap(),
            vec![0xff, 0]
        );
        assert_eq!(
            decode_as::<Vec<u8>>(Format::Raw, b"ok").unwrap(),
            b"ok".to_vec()
        );
    }
}
