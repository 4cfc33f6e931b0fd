//! Archived values (feature `rkyv`): the rkyv format record, type fingerprints, and
//! validation of an archive in place.
//!
//! Both sides of a call read archives where they lie: the module its archived
//! arguments in the call's arena, the host an archived result. [`check`] checks size,
//! alignment, `bytecheck` validity and a depth limit before a reference into the bytes
//! exists. Two things an archive cannot say for itself are recorded in the method table
//! instead: the rkyv [`format()`] (endianness, alignment and pointer width are Cargo
//! features of rkyv, unified across each side's dependency graph), compared when a
//! module is loaded, and a [`fingerprint`] of each archived type, which a typed call
//! must match.
//!
//! Validated bytes stay valid only while nobody writes them: whoever hands out the
//! reference must keep the bytes frozen for as long as it lives.

use core::num::NonZeroUsize;

use rkyv::api::high::{HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::{self, BoxedError, Failure};
use rkyv::ser::allocator::{Arena, ArenaHandle};
use rkyv::util::AlignedVec;
use rkyv::validation::archive::ArchiveValidator;
use rkyv::validation::shared::SharedValidator;
use rkyv::validation::Validator;
use rkyv::{Archive, Portable};

use crate::error::ModuleError;

type Result<T, E = ModuleError> = core::result::Result<T, E>;

/// Archives `value` into `writer` (`rkyv::api::high::to_bytes_in`), with scratch space
/// of this thread's that is there whenever the thread can run code: rkyv's own is a
/// thread-local that panics once the thread has begun to destroy its locals, so
/// archiving from a thread-local's destructor would abort the process. There, a fresh
/// arena is used.
pub fn to_bytes_in<T, W>(value: &T, writer: W) -> Result<W, rancor::Error>
where
    T: for<'a> rkyv::Serialize<HighSerializer<W, ArenaHandle<'a>, rancor::Error>>,
    W: rkyv::ser::Writer<rancor::Error>,
{
    let () = Fits::<T>::ALIGNED;
    with_scratch(|arena| rkyv::api::high::to_bytes_in_with_alloc(value, writer, arena.acquire()))
}

/// [`to_bytes_in`] into the start of `buf` while the archive fits, else all of it into
/// a vector: the value is serialized once either way. Positions are counted from the
/// start, so the archive is valid where its bytes are put at an address aligned to
/// [`ARCHIVE_ALIGN`] (`buf`'s start should be).
///
/// ```
/// use core::mem::MaybeUninit;
/// use memlink_abi::{archive::to_bytes_spilling, Encoded};
///
/// let mut buf = [MaybeUninit::uninit(); 64];
/// let small = to_bytes_spilling(&7u32, &mut buf).unwrap();
/// assert!(matches!(small, Encoded::Within(b) if b.len() == 4));
/// let large = to_bytes_spilling(&vec![1u8; 100], &mut buf).unwrap();
/// assert!(matches!(large, Encoded::Spilled(_)));
/// ```
pub fn to_bytes_spilling<'b, T>(
    value: &T,
    buf: &'b mut [core::mem::MaybeUninit<u8>],
) -> Result<crate::Encoded<'b>, rancor::Error>
where
    T: for<'a> rkyv::Serialize<
        HighSerializer<crate::spill::Spilling<'b>, ArenaHandle<'a>, rancor::Error>,
    >,
{
    to_bytes_in(value, crate::spill::Spilling::new(buf)).map(crate::spill::Spilling::finish)
}

/// [`to_bytes_in`] into a vector of its own.
pub fn to_bytes<T>(value: &T) -> Result<AlignedVec, rancor::Error>
where
    T: for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>,
{
    to_bytes_in(value, AlignedVec::new())
}

/// Runs `f` with this thread's archiving scratch, kept between calls as rkyv keeps its
/// own (shrunk to its first block after each use), or with a fresh one while the thread
/// destroys its locals.
fn with_scratch<R>(f: impl FnOnce(&mut Arena) -> R) -> R {
    std::thread_local! {
        static SCRATCH: core::cell::Cell<Option<Arena>> = const { core::cell::Cell::new(None) };
    }
    let Ok(kept) = SCRATCH.try_with(core::cell::Cell::take) else {
        return f(&mut Arena::new());
    };
    let mut arena = kept.unwrap_or_default();
    let out = f(&mut arena);
    arena.shrink();
    // Gone meanwhile (a destructor archiving as the thread ends): dropped with it.
    let _ = SCRATCH.try_with(|s| s.set(Some(arena)));
    out
}

/// Alignment the host gives archived arguments, and the most any archived type needs.
///
/// No arena, output or reply gives an archive more, and a small output that moves keeps
/// its bytes' place only modulo 16. The Rust crates refuse, when the code is built, to
/// archive, fingerprint or read a type whose archived form needs more (a constant
/// evaluated as code is generated: `cargo build` reports it, `cargo check` does not).
pub const ARCHIVE_ALIGN: usize = 16;

/// Names [`Fits::ALIGNED`] for `T`.
struct Fits<T>(core::marker::PhantomData<T>);

impl<T: Archive> Fits<T> {
    /// Fails to evaluate for a `T` whose archive needs more than [`ARCHIVE_ALIGN`].
    const ALIGNED: () = assert!(
        align_of::<T::Archived>() <= ARCHIVE_ALIGN,
        "memlink: this archived type needs more than 16-byte alignment \
         (memlink_abi::archive::ARCHIVE_ALIGN), more than any archive is given; \
         lower the `repr(align)` of its archived form"
    );
}

/// Bounds on an archive, checked before and during validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of pointers (boxes, vectors, out-of-line strings inside each
    /// other) validation follows; deeper archives are refused rather than overflowing
    /// the stack. 0 admits no pointers at all.
    pub max_depth: usize,
    /// Largest archive accepted, in bytes.
    pub max_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_size: 1 << 30,
        }
    }
}

/// `FORMAT` bit: multi-byte values are big-endian.
pub const FORMAT_BIG_ENDIAN: u32 = 1 << 8;
/// `FORMAT` bit: archived primitives are unaligned.
pub const FORMAT_UNALIGNED: u32 = 1 << 9;

/// The rkyv format this build uses: the archived pointer width in bytes (low 8 bits),
/// [`FORMAT_BIG_ENDIAN`] and [`FORMAT_UNALIGNED`].
pub fn format() -> u32 {
    let width = size_of::<rkyv::primitive::ArchivedUsize>() as u32;
    let name = core::any::type_name::<rkyv::primitive::ArchivedU32>();
    let big = if name.ends_with("_be") || name.ends_with("_ube") {
        FORMAT_BIG_ENDIAN
    } else {
        0
    };
    let unaligned = if align_of::<rkyv::primitive::ArchivedU32>() == 1 {
        FORMAT_UNALIGNED
    } else {
        0
    };
    width | big | unaligned
}

/// Describes a [`format()`] value, for error messages.
pub fn describe_format(format: u32) -> String {
    format!(
        "{}-bit pointers, {}-endian, {}",
        (format & 0xff) * 8,
        if format & FORMAT_BIG_ENDIAN != 0 {
            "big"
        } else {
            "little"
        },
        if format & FORMAT_UNALIGNED != 0 {
            "unaligned"
        } else {
            "aligned"
        }
    )
}

/// The identity of an archived type, as the method table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveType {
    /// `std::any::type_name` of the unarchived type.
    pub name: &'static str,
    /// [`fingerprint`] of it.
    pub fingerprint: u64,
}

impl ArchiveType {
    /// The identity of `T`.
    pub fn of<T: Archive>() -> ArchiveType {
        ArchiveType {
            name: core::any::type_name::<T>(),
            fingerprint: fingerprint::<T>(),
        }
    }
}

/// A fingerprint of `T` as an archive: its type name, the size and alignment of its
/// archived form, and the rkyv [`format()`]. Two sides that disagree on any of them
/// would read each other's bytes as something else.
///
/// It is FNV-1a 64 over the name's bytes, then the size and the alignment as `u64`
/// little-endian, then the format as `u32` little-endian: what a module in another
/// language computes for its method table (docs/abi.md).
///
/// A change that keeps the name, size and alignment (two fields of one type swapped) is
/// not seen: share the types through one crate rather than copies.
pub fn fingerprint<T: Archive>() -> u64 {
    let () = Fits::<T>::ALIGNED;
    let mut h = Fnv64::new();
    h.write(core::any::type_name::<T>().as_bytes());
    h.write(&(size_of::<T::Archived>() as u64).to_le_bytes());
    h.write(&(align_of::<T::Archived>() as u64).to_le_bytes());
    h.write(&format().to_le_bytes());
    h.0
}

struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Types whose archive can be validated, with either error type.
pub trait Checkable:
    Portable
    + for<'a> CheckBytes<HighValidator<'a, Failure>>
    + for<'a> CheckBytes<HighValidator<'a, BoxedError>>
{
}

impl<T> Checkable for T where
    T: Portable
        + for<'a> CheckBytes<HighValidator<'a, Failure>>
        + for<'a> CheckBytes<HighValidator<'a, BoxedError>>
{
}

/// Types that can be archived into the call's arena (or, when it is full, a buffer):
/// anything `#[derive(rkyv::Archive, rkyv::Serialize)]` gives.
pub trait Archivable:
    Archive
    + for<'a, 'b> rkyv::Serialize<
        HighSerializer<crate::spill::Spilling<'b>, ArenaHandle<'a>, rancor::Error>,
    > + for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
}

impl<T> Archivable for T where
    T: Archive
        + for<'a, 'b> rkyv::Serialize<
            HighSerializer<crate::spill::Spilling<'b>, ArenaHandle<'a>, rancor::Error>,
        > + for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
}

/// Checks `bytes` as an archive of `T` within `limits` and returns its root, in place;
/// `what` names the bytes in error messages.
///
/// Errors ([`ModuleError::Serialize`]) say what was wrong: empty, over the size limit,
/// misaligned (with how each writer fixes it), or which validation check failed,
/// including nesting deeper than the depth limit.
pub fn check<'b, T>(bytes: &'b [u8], limits: Limits, what: &str) -> Result<&'b T::Archived>
where
    T: Archive,
    T::Archived: Checkable,
{
    let () = Fits::<T>::ALIGNED;
    let bad = |reason: String| ModuleError::Serialize(format!("bad {what}: {reason}"));
    let mut bytes = bytes;
    if bytes.is_empty() {
        if size_of::<T::Archived>() != 0 {
            return Err(bad("the archive is empty".into()));
        }
        // A zero-sized root (`()`, a unit struct, `((),)`) is archived as no bytes at
        // all, and an empty slice may point anywhere: it is read from one that is
        // aligned.
        bytes = &EMPTY.0;
    }
    if bytes.len() > limits.max_size {
        return Err(bad(format!(
            "the archive is {} bytes, over the limit of {} bytes",
            bytes.len(),
            limits.max_size
        )));
    }
    let misalignment = bytes.as_ptr().addr() % ARCHIVE_ALIGN;
    if misalignment != 0 {
        return Err(bad(format!(
            "the archive starts {misalignment} bytes past a {ARCHIVE_ALIGN}-byte boundary; \
             rkyv reads it in place and needs it aligned: its writer starts it on one (a host \
             lets the runtime place its arguments, as typed archived calls do, or copies them \
             into an rkyv::util::AlignedVec; a module returns its archive on one)"
        )));
    }
    // The cheap error type first; only a failure pays for an explanation. `BoxedError`
    // keeps rkyv's messages in every build (`rancor::Error` drops them without debug
    // assertions, so a release module would only say that something failed).
    match validate::<T::Archived, Failure>(bytes, limits.max_depth) {
        Ok(root) => Ok(root),
        Err(_) => match validate::<T::Archived, BoxedError>(bytes, limits.max_depth) {
            Ok(root) => Ok(root),
            Err(e) => Err(bad(explain(&e, limits.max_depth, bytes))),
        },
    }
}

/// No bytes, on an archive's alignment: where a zero-sized root is read.
#[repr(C, align(16))]
struct Empty([u8; 0]);

const _: () = assert!(align_of::<Empty>() == ARCHIVE_ALIGN);

static EMPTY: Empty = Empty([]);

/// The root of the archive of `T` in `bytes`, which [`check`] accepted, read without
/// validating it again: for a reader that keeps the bytes it validated and lends their
/// root later, wherever they have moved to meanwhile (an archive's pointers are relative
/// to itself). An empty `bytes`, a zero-sized root, is read where [`check`] read it.
///
/// # Safety
///
/// [`check`]`::<T>` must have accepted these bytes, unchanged since, and they must start
/// on a multiple of [`ARCHIVE_ALIGN`] (as [`check`] requires of the bytes it accepts), or
/// be empty.
pub unsafe fn access_checked<T>(bytes: &[u8]) -> &T::Archived
where
    T: Archive,
    T::Archived: Portable,
{
    let () = Fits::<T>::ALIGNED;
    let bytes = if bytes.is_empty() {
        &EMPTY.0[..]
    } else {
        bytes
    };
    // SAFETY: the bytes hold a valid archive of `T` (the caller's contract: `check`
    // validated them, and they are unchanged; validity does not depend on where they lie),
    // or are the empty, 16-aligned bytes `check` validated a zero-sized root in; and they
    // start on a multiple of 16, which is all `T::Archived` needs (`Fits`).
    unsafe { rkyv::access_unchecked::<T::Archived>(bytes) }
}

/// Validates with pointers nested at most `depth` deep.
fn validate<A, E>(bytes: &[u8], depth: usize) -> core::result::Result<&A, E>
where
    A: Portable + for<'a> CheckBytes<HighValidator<'a, E>>,
    E: rancor::Source,
{
    // rkyv counts subtree levels, the root's included, and refuses the push that would
    // reach its limit: a limit of `depth + 2` admits exactly `depth` nested pointers.
    // (Never `None`: rkyv reads that as no limit at all.)
    let levels = NonZeroUsize::new(depth.saturating_add(2)).unwrap_or(NonZeroUsize::MAX);
    let archive = ArchiveValidator::with_max_depth(bytes, Some(levels));
    let mut validator = Validator::new(archive, SharedValidator::new());
    rkyv::api::access_with_context::<A, _, E>(bytes, &mut validator)
}

#[cfg(test)]
mod tests;

/// Says why validation of `bytes` failed: rkyv's error, the innermost context it
/// recorded (the check that failed) and the outermost (where in the argument it was),
/// with offsets into `bytes` for addresses ([`without_addresses`]).
#[cold]
#[inline(never)]
fn explain(e: &BoxedError, depth: usize, bytes: &[u8]) -> String {
    without_addresses(&explain_in_rkyv_words(e, depth), bytes)
}

/// [`explain`], in rkyv's words as they come.
fn explain_in_rkyv_words(e: &BoxedError, depth: usize) -> String {
    // Each `trace` rkyv added wraps the error once more; the alternate form of a level
    // adds its own trace to the plain message.
    let base = e.to_string();
    let mut traces = Vec::new();
    let mut level: Option<&(dyn std::error::Error + 'static)> = Some(BoxedError::inner(e));
    while let Some(err) = level {
        let full = format!("{err:#}");
        if let Some(trace) = full
            .strip_prefix(base.as_str())
            .and_then(|t| t.strip_prefix("trace: "))
        {
            traces.push(trace.to_owned());
        }
        level = err.source();
    }
    let Some(innermost) = traces.last() else {
        return format!("validation failed: {base}");
    };
    let cause = if innermost.contains("maximum subtree depth") {
        format!("pointers nested deeper than the depth limit of {depth}")
    } else {
        format!("{base} ({innermost})")
    };
    match traces.first().filter(|_| traces.len() > 1) {
        Some(outermost) => format!("validation failed: {cause}, {outermost}"),
        None => format!("validation failed: {cause}"),
    }
}

/// `message` with each address in it (`0x` and hex digits, as rkyv's errors print
/// pointers) told as an offset into `bytes` (`offset 16`), or as `an address outside the
/// archive`: where in the archive something failed is what its author can use, and the
/// process's addresses are not the caller's to know (the message may reach another
/// process).
fn without_addresses(message: &str, bytes: &[u8]) -> String {
    let base = bytes.as_ptr().addr();
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        let digits = rest[at + 2..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len() - at - 2);
        let hex = &rest[at + 2..at + 2 + digits];
        match usize::from_str_radix(hex, 16) {
            Ok(addr) if (base..=base + bytes.len()).contains(&addr) => {
                out.push_str(&format!("offset {}", addr - base));
            }
            Ok(_) => out.push_str("an address outside the archive"),
            // Not a number (`0x` alone) or too long for one: left as it was.
            Err(_) => out.push_str(&rest[at..at + 2 + digits]),
        }
        rest = &rest[at + 2 + digits..];
    }
    out.push_str(rest);
    out
}
