//! The archived argument types of the `zero_copy` example exports (and of this crate's
//! `archived_points`), and what a harness does with bytes claimed to be an archive of
//! one: validate them with `memlink_msdk::archive::check`, as an export's wrapper does,
//! and when they validate, read every field the way an export would.
//!
//! [`examine`] checks, for one type:
//! - a failure is `ModuleError::Serialize` with the `bad <what>: ` prefix;
//! - a validated archive is safe to use: every field is read (vectors walked, strings
//!   as `str`, floats, the chain to its end) and every byte read lies inside the buffer;
//!   a chain's links point strictly backwards, so walking one ends; `str`s are UTF-8;
//! - it means what it says: deserialized and archived again, it reads the same;
//! - the size limit: one byte under the archive's size refuses it with the reason, its
//!   exact size changes nothing;
//! - the depth limit: `max_depth` admits archives whose pointers nest at most that
//!   deep (a vector or string inside the root is 1, each link of a chain 1 more), and
//!   refuses deeper ones saying so; a tighter limit never accepts more;
//! - a start 1 to 15 bytes past a 16-byte boundary is refused with the alignment
//!   message, before anything is read.
//!
//! The depth checks step around the open bugs `archive-depth-*` of [`crate::known`].

use core::num::NonZeroUsize;

use memlink_examples::zero_copy_types::{ArchivedChain, ArchivedPoint, Chain, Point};
use memlink_msdk::archive::{check, Archivable, Checkable, Limits, ARCHIVE_ALIGN};
use memlink_msdk::rkyv;
use memlink_msdk::rkyv::api::high::HighValidator;
use memlink_msdk::rkyv::bytecheck::CheckBytes;
use memlink_msdk::rkyv::rancor::{self, Failure, Source};
use memlink_msdk::rkyv::util::AlignedVec;
use memlink_msdk::rkyv::validation::archive::ArchiveValidator;
use memlink_msdk::rkyv::validation::shared::SharedValidator;
use memlink_msdk::rkyv::validation::Validator;
use memlink_msdk::rkyv::vec::ArchivedVec;
use memlink_msdk::ModuleError;

use crate::known;

/// Longest chain [`Shape::rebuild`] rebuilds: `Chain` is archived and dropped
/// recursively.
const MAX_REBUILT_LINKS: usize = 1000;

/// Largest input probed with a depth limit high enough for any archive of its size:
/// validation recurses once per level, and a level takes at least 8 bytes.
const MAX_DEEP_PROBE: usize = 4096;

/// The prefix `check` gives its messages here.
const WHAT: &str = "archive";

/// Which checks [`examine`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probes {
    /// Default limits, read, round trip, size and depth limits, a misaligned start.
    All,
    /// Default limits, and when the archive validates, read every field.
    Light,
}

/// What reading a validated archive found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// How deep its pointers nest: 1 for a vector or string inside the root, plus 1 per
    /// link of a chain.
    pub nesting: usize,
    /// A digest of every field, equal to [`Shape::digest`] of the value it stands for.
    pub digest: u64,
}

/// The buffer an archive lies in: every byte read from it must be inside.
#[derive(Debug, Clone, Copy)]
pub struct Within {
    start: usize,
    end: usize,
}

impl Within {
    /// The bytes of `bytes`.
    pub fn of(bytes: &[u8]) -> Within {
        let range = bytes.as_ptr_range();
        Within {
            start: range.start.addr(),
            end: range.end.addr(),
        }
    }

    /// Panics unless the `len` bytes at `ptr` are inside.
    fn holds<T: ?Sized>(&self, ptr: *const T, len: usize, what: &str) {
        let at = ptr.cast::<u8>().addr();
        assert!(
            at >= self.start && at.checked_add(len).is_some_and(|end| end <= self.end),
            "a validated archive's {what} ({len} bytes at {at:#x}) is outside its buffer {:#x}..{:#x}",
            self.start,
            self.end
        );
    }
}

/// FNV-1a over the fields, in order.
#[derive(Debug, Clone, Copy)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    fn f32(&mut self, v: f32) {
        self.bytes(&v.to_bits().to_le_bytes());
    }

    fn point(&mut self, p: &Point) {
        self.f32(p.x);
        self.f32(p.y);
        self.f32(p.z);
    }

    fn points(&mut self, points: &[Point]) {
        self.u64(points.len() as u64);
        points.iter().for_each(|p| self.point(p));
    }

    fn text(&mut self, text: &[u8]) {
        self.u64(text.len() as u64);
        self.bytes(text);
    }

    /// The digest so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Reads every point, checking each lies in `within` (when given).
fn read_points(d: &mut Digest, points: &ArchivedVec<ArchivedPoint>, within: Option<&Within>) {
    let slice = points.as_slice();
    if let Some(w) = within {
        w.holds(slice.as_ptr(), size_of_val(slice), "vector of points");
    }
    d.u64(slice.len() as u64);
    for p in slice {
        d.f32(p.x.to_native());
        d.f32(p.y.to_native());
        d.f32(p.z.to_native());
    }
}

/// Reads a string as `str`, checking it lies in `within` (when given) and is UTF-8.
fn read_str(d: &mut Digest, text: &str, within: Option<&Within>) {
    if let Some(w) = within {
        w.holds(text.as_ptr(), text.len(), "string");
    }
    assert!(
        std::str::from_utf8(text.as_bytes()).is_ok(),
        "a validated string is not UTF-8"
    );
    // Walk it as a program would, char by char.
    let walked: usize = text.chars().map(char::len_utf8).sum();
    assert_eq!(walked, text.len(), "a validated string's chars");
    d.text(text.as_bytes());
}

/// Reads bytes, checking they lie in `within`.
fn read_bytes(d: &mut Digest, bytes: &ArchivedVec<u8>, within: &Within) {
    let slice = bytes.as_slice();
    within.holds(slice.as_ptr(), slice.len(), "vector of bytes");
    d.text(slice);
}

/// The digest `archived_points` returns: every point, then the label.
pub fn points_and_label(points: &ArchivedVec<ArchivedPoint>, label: &str) -> u64 {
    let mut d = Digest::default();
    read_points(&mut d, points, None);
    read_str(&mut d, label, None);
    d.finish()
}

/// An archived argument type, and how to read all of it.
pub trait Shape: Archivable<Archived: Checkable> + Sized {
    /// The type's name in messages.
    const NAME: &'static str;

    /// Reads every field of a validated archive; each must lie in `within`.
    fn read(root: &Self::Archived, within: &Within) -> Reading;

    /// The value a validated archive stands for, deserialized (or, for a chain, rebuilt
    /// from what [`Shape::read`] found; `None`: too long to rebuild).
    fn rebuild(root: &Self::Archived, read: Reading) -> Option<Self>;

    /// The digest [`Shape::read`] finds in an archive of `self`.
    fn digest(&self) -> u64;

    /// How deep the pointers of an archive of `self` nest.
    fn nesting(&self) -> usize {
        1
    }
}

impl Shape for (Vec<Point>,) {
    const NAME: &'static str = "(Vec<Point>,)";

    fn read(root: &Self::Archived, within: &Within) -> Reading {
        let mut d = Digest::default();
        read_points(&mut d, &root.0, Some(within));
        Reading {
            nesting: 1,
            digest: d.finish(),
        }
    }

    fn rebuild(root: &Self::Archived, _read: Reading) -> Option<Self> {
        Some(rkyv::deserialize::<Self, rancor::Error>(root).expect("deserialize"))
    }

    fn digest(&self) -> u64 {
        let mut d = Digest::default();
        d.points(&self.0);
        d.finish()
    }
}

impl Shape for (Vec<Point>, f32) {
    const NAME: &'static str = "(Vec<Point>, f32)";

    fn read(root: &Self::Archived, within: &Within) -> Reading {
        let mut d = Digest::default();
        read_points(&mut d, &root.0, Some(within));
        d.f32(root.1.to_native());
        Reading {
            nesting: 1,
            digest: d.finish(),
        }
    }

    fn rebuild(root: &Self::Archived, _read: Reading) -> Option<Self> {
        Some(rkyv::deserialize::<Self, rancor::Error>(root).expect("deserialize"))
    }

    fn digest(&self) -> u64 {
        let mut d = Digest::default();
        d.points(&self.0);
        d.f32(self.1);
        d.finish()
    }
}

impl Shape for (String, Vec<u8>) {
    const NAME: &'static str = "(String, Vec<u8>)";

    fn read(root: &Self::Archived, within: &Within) -> Reading {
        let mut d = Digest::default();
        read_str(&mut d, root.0.as_str(), Some(within));
        read_bytes(&mut d, &root.1, within);
        Reading {
            nesting: 1,
            digest: d.finish(),
        }
    }

    fn rebuild(root: &Self::Archived, _read: Reading) -> Option<Self> {
        Some(rkyv::deserialize::<Self, rancor::Error>(root).expect("deserialize"))
    }

    fn digest(&self) -> u64 {
        let mut d = Digest::default();
        d.text(self.0.as_bytes());
        d.text(&self.1);
        d.finish()
    }
}

/// The arguments of this crate's `archived_points` export.
impl Shape for (Vec<Point>, String) {
    const NAME: &'static str = "(Vec<Point>, String)";

    fn read(root: &Self::Archived, within: &Within) -> Reading {
        let mut d = Digest::default();
        read_points(&mut d, &root.0, Some(within));
        read_str(&mut d, root.1.as_str(), Some(within));
        Reading {
            nesting: 1,
            digest: d.finish(),
        }
    }

    fn rebuild(root: &Self::Archived, _read: Reading) -> Option<Self> {
        Some(rkyv::deserialize::<Self, rancor::Error>(root).expect("deserialize"))
    }

    fn digest(&self) -> u64 {
        let mut d = Digest::default();
        d.points(&self.0);
        d.text(self.1.as_bytes());
        d.finish()
    }
}

impl Shape for (Chain,) {
    const NAME: &'static str = "(Chain,)";

    fn read(root: &Self::Archived, within: &Within) -> Reading {
        let mut at = &root.0;
        let mut links = 0usize;
        loop {
            within.holds(at, size_of::<ArchivedChain>(), "chain link");
            match at {
                ArchivedChain::End => break,
                ArchivedChain::Link(next) => {
                    let next = next.get();
                    assert!(
                        (next as *const ArchivedChain).addr() < (at as *const ArchivedChain).addr(),
                        "link {links} of a validated chain points forward or to itself: it may never end"
                    );
                    links += 1;
                    at = next;
                }
            }
        }
        let mut d = Digest::default();
        d.u64(links as u64);
        Reading {
            nesting: links,
            digest: d.finish(),
        }
    }

    fn rebuild(_root: &Self::Archived, read: Reading) -> Option<Self> {
        (read.nesting <= MAX_REBUILT_LINKS).then(|| (chain(read.nesting),))
    }

    fn digest(&self) -> u64 {
        let mut d = Digest::default();
        d.u64(self.nesting() as u64);
        d.finish()
    }

    fn nesting(&self) -> usize {
        let mut at = &self.0;
        let mut links = 0;
        while let Chain::Link(next) = at {
            links += 1;
            at = next;
        }
        links
    }
}

/// `n` links, then the end.
pub fn chain(n: usize) -> Chain {
    (0..n).fold(Chain::End, |c, _| Chain::Link(Box::new(c)))
}

/// Serializes `value` the way a host does.
pub fn archive<T: Shape>(value: &T) -> AlignedVec {
    rkyv::to_bytes::<rancor::Error>(value).expect("archiving a generated value")
}

/// `bytes` copied `offset` bytes past a 16-byte boundary; the copy is `buf[offset..]`.
pub fn placed(bytes: &[u8], offset: usize) -> AlignedVec<ARCHIVE_ALIGN> {
    let mut buf = AlignedVec::<ARCHIVE_ALIGN>::with_capacity(offset + bytes.len());
    buf.extend_from_slice(&[0u8; ARCHIVE_ALIGN][..offset]);
    buf.extend_from_slice(bytes);
    buf
}

/// The message of a `check` failure, which must be `Serialize` with the prefix.
fn message(e: &ModuleError, context: &str) -> String {
    match e {
        ModuleError::Serialize(m) => {
            assert!(
                m.starts_with(&format!("bad {WHAT}: ")),
                "{context}: message without its prefix: {m}"
            );
            m.clone()
        }
        other => panic!("{context}: {other:?}, not a Serialize error"),
    }
}

/// The message of what must be a `check` failure.
fn refusal<T>(result: Result<T, ModuleError>, context: &str) -> String {
    match result {
        Ok(_) => panic!("{context}: accepted"),
        Err(e) => message(&e, context),
    }
}

fn limits(max_depth: usize, max_size: usize) -> Limits {
    Limits {
        max_depth,
        max_size,
    }
}

/// Validates `bytes` (any alignment: they are copied to a 16-byte boundary) as an
/// archive of `T` and checks what the module docs promise; returns what reading a valid
/// one found.
pub fn examine<T: Shape>(bytes: &[u8], probes: Probes, misalign: usize) -> Option<Reading> {
    let buf = placed(bytes, 0);
    let bytes = &buf[..];
    let name = T::NAME;
    let default = check::<T>(bytes, Limits::default(), WHAT);
    if probes == Probes::All {
        agrees_with_rkyv::<T>(bytes, default.is_ok());
    }
    let (reading, default_error) = match default {
        Ok(root) => {
            let within = Within::of(bytes);
            within.holds(root, size_of_val(root), "root");
            let reading = T::read(root, &within);
            if probes == Probes::All {
                round_trip::<T>(root, reading);
            }
            (Some(reading), None)
        }
        Err(e) => {
            let m = message(&e, name);
            if bytes.is_empty() {
                assert!(m.ends_with("the archive is empty"), "{name}, empty: {m}");
            } else {
                assert!(m.contains("validation failed"), "{name}: {m}");
            }
            (None, Some(e))
        }
    };
    if probes == Probes::All {
        size_limit::<T>(bytes, reading.is_some());
        depth_limit::<T>(bytes, reading, default_error);
        misaligned::<T>(bytes, misalign);
    }
    reading
}

/// Checks `bytes` (which must be 16-aligned) with `limits` and reads every field.
pub fn read_checked<T: Shape>(bytes: &[u8], limits: Limits) -> Result<Reading, ModuleError> {
    let root = check::<T>(bytes, limits, WHAT)?;
    let within = Within::of(bytes);
    within.holds(root, size_of_val(root), "root");
    Ok(T::read(root, &within))
}

/// `check`'s verdict is rkyv's, with either error type.
fn agrees_with_rkyv<T: Shape>(bytes: &[u8], accepted: bool) {
    if bytes.is_empty() {
        return;
    }
    let depth = Limits::default().max_depth;
    let cheap = rkyv_accepts::<T::Archived, Failure>(bytes, depth);
    let explained = rkyv_accepts::<T::Archived, rancor::BoxedError>(bytes, depth);
    assert_eq!(
        (cheap, explained),
        (accepted, accepted),
        "{}: rkyv with Failure / with Error / check disagree",
        T::NAME
    );
}

fn rkyv_accepts<A, E>(bytes: &[u8], depth: usize) -> bool
where
    A: rkyv::Portable + for<'a> CheckBytes<HighValidator<'a, E>>,
    E: Source,
{
    // rkyv counts the root as a level and refuses the push that reaches its limit:
    // `depth` nested pointers take `depth + 2`.
    let archive = ArchiveValidator::with_max_depth(bytes, NonZeroUsize::new(depth + 2));
    let mut validator = Validator::new(archive, SharedValidator::new());
    rkyv::api::access_with_context::<A, _, E>(bytes, &mut validator).is_ok()
}

/// The value a validated archive stands for, archived again, reads the same.
fn round_trip<T: Shape>(root: &T::Archived, reading: Reading) {
    let Some(value) = T::rebuild(root, reading) else {
        return;
    };
    assert_eq!(
        value.digest(),
        reading.digest,
        "{}: the deserialized value differs from what was read",
        T::NAME
    );
    assert_eq!(value.nesting(), reading.nesting, "{}: nesting", T::NAME);
    let again = archive(&value);
    let root = check::<T>(&again, Limits::default(), WHAT)
        .unwrap_or_else(|e| panic!("{}: our own archive of a read value: {e}", T::NAME));
    assert_eq!(
        T::read(root, &Within::of(&again)),
        reading,
        "{}: archived again, it reads differently",
        T::NAME
    );
}

/// One byte under the size refuses with the reason; the exact size changes nothing.
fn size_limit<T: Shape>(bytes: &[u8], accepted: bool) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    let depth = Limits::default().max_depth;
    let m = refusal(check::<T>(bytes, limits(depth, len - 1), WHAT), "size");
    assert!(
        m.contains(&format!(
            "the archive is {len} bytes, over the limit of {} bytes",
            len - 1
        )),
        "{}: {m}",
        T::NAME
    );
    assert_eq!(
        check::<T>(bytes, limits(depth, len), WHAT).is_ok(),
        accepted,
        "{}: a size limit of exactly the archive's size changed the verdict",
        T::NAME
    );
}

/// The depth limits `max_depth` probes: around 0, around the archive's nesting and
/// (what the limit really admits while `archive-depth-count` is open) 2 past it.
fn depth_probes(nesting: Option<usize>) -> Vec<usize> {
    let mut probes = vec![0, 1, 2, 3];
    if let Some(n) = nesting {
        probes.extend([n.saturating_sub(1), n, n + 1, n + 2]);
    }
    probes.sort_unstable();
    probes.dedup();
    probes.retain(|&d| d > 0 || !known::tolerated(known::ARCHIVE_DEPTH_ZERO));
    probes
}

/// The least `max_depth` that should admit an archive whose pointers nest `nesting`
/// deep.
fn needed(nesting: usize) -> usize {
    if known::tolerated(known::ARCHIVE_DEPTH_COUNT) {
        // rkyv counts the root, and refuses when the count reaches 0.
        nesting + 2
    } else {
        nesting
    }
}

/// `max_depth` admits what nests at most that deep and refuses the rest, saying why.
fn depth_limit<T: Shape>(
    bytes: &[u8],
    reading: Option<Reading>,
    default_error: Option<ModuleError>,
) {
    let name = T::NAME;
    let len = bytes.len();
    let Some(reading) = reading.or_else(|| deep_reading::<T>(bytes)) else {
        // Refused with the default limits: a tighter limit refuses it too.
        for d in depth_probes(None) {
            assert!(
                check::<T>(bytes, limits(d, usize::MAX), WHAT).is_err(),
                "{name}: refused with the default limits, accepted with max_depth {d}"
            );
        }
        return;
    };
    let need = needed(reading.nesting);
    let default_depth = Limits::default().max_depth;
    if let Some(e) = default_error {
        // Valid, but refused with the default limits: for its depth, and saying so.
        assert!(
            need > default_depth,
            "{name}: nesting {} refused with the default limits: {e}",
            reading.nesting
        );
        expect_depth_message(name, reading.nesting, default_depth, e);
    }
    for d in depth_probes(Some(reading.nesting)) {
        let result = check::<T>(bytes, limits(d, len), WHAT);
        if d >= need {
            let root = result.unwrap_or_else(|e| {
                panic!(
                    "{name}: nesting {} refused with max_depth {d}: {e}",
                    reading.nesting
                )
            });
            assert_eq!(T::read(root, &Within::of(bytes)), reading);
        } else {
            let e = match result {
                Ok(_) => panic!(
                    "{name}: nesting {} accepted with max_depth {d}",
                    reading.nesting
                ),
                Err(e) => e,
            };
            expect_depth_message(name, reading.nesting, d, e);
        }
    }
}

/// An archive refused for its depth says so.
fn expect_depth_message(name: &str, nesting: usize, max_depth: usize, e: ModuleError) {
    let m = message(&e, name);
    assert!(
        m.contains("depth") || known::tolerated(known::ARCHIVE_DEPTH_MESSAGE),
        "{name}: nesting {nesting} refused with max_depth {max_depth} without naming the depth limit: {m}"
    );
}

/// An archive the default limits refused, read with a limit high enough for any
/// archive of its size (small inputs only: validation recurses once per level).
fn deep_reading<T: Shape>(bytes: &[u8]) -> Option<Reading> {
    if bytes.is_empty() || bytes.len() > MAX_DEEP_PROBE {
        return None;
    }
    let root = check::<T>(bytes, limits(bytes.len() + 2, bytes.len()), WHAT).ok()?;
    Some(T::read(root, &Within::of(bytes)))
}

/// A start `misalign` (1 to 15) bytes past a 16-byte boundary is refused, after the
/// empty and size checks and before anything is read.
fn misaligned<T: Shape>(bytes: &[u8], misalign: usize) {
    assert!((1..ARCHIVE_ALIGN).contains(&misalign));
    let buf = placed(bytes, misalign);
    let shifted = &buf[misalign..];
    let name = T::NAME;
    let m = refusal(check::<T>(shifted, Limits::default(), WHAT), "misaligned");
    if bytes.is_empty() {
        assert!(m.ends_with("the archive is empty"), "{name}: {m}");
        return;
    }
    assert!(
        m.contains(&format!(
            "the archive starts {misalign} bytes past a {ARCHIVE_ALIGN}-byte boundary"
        )),
        "{name}, {misalign} bytes off: {m}"
    );
    let m = refusal(
        check::<T>(shifted, limits(1, bytes.len() - 1), WHAT),
        "misaligned and too large",
    );
    assert!(m.contains("over the limit"), "{name}: {m}");
}

/// [`examine`] for every archived argument type.
pub fn examine_all(bytes: &[u8], probes: Probes) {
    // A different misalignment per type, from the input, so a corpus covers all 15.
    let off =
        |i: usize| 1 + (bytes.len() + bytes.first().map_or(0, |&b| usize::from(b)) + 4 * i) % 15;
    // The chain first: the one type whose archives nest without bound.
    examine::<(Chain,)>(bytes, probes, off(0));
    examine::<(Vec<Point>,)>(bytes, probes, off(1));
    examine::<(Vec<Point>, f32)>(bytes, probes, off(2));
    examine::<(String, Vec<u8>)>(bytes, probes, off(3));
    examine::<(Vec<Point>, String)>(bytes, probes, off(4));
}
