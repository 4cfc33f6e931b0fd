//! Zero-copy arguments and results: rkyv archives read where they lie.
//!
//! An export whose parameters are `&Archived<T>`, `&[u8]` or `&str` (with more than one
//! parameter, or any `&Archived<T>`) takes its arguments as one rkyv archive of the
//! parameters' tuple, which the host writes once into the call's arena. The wrapper
//! checks the archive (size, alignment, then `bytecheck` validation with a depth limit:
//! [`check`], from the ABI crate, which the host uses for archived results too) and
//! hands the export references into the arena: nothing is copied or deserialized.
//!
//! Validated bytes stay valid only while nobody writes them: the host writes the
//! arguments before the call and not again until it returns, and the module refuses a
//! frame whose arguments overlap its scratch arena.
//!
//! Two things the archive cannot say for itself are checked before a byte is read:
//! the rkyv format (endianness, alignment, pointer width are Cargo features of rkyv,
//! unified across each side's dependency graph; see [`format()`]) is compared at load, and
//! each archived method carries a [`fingerprint`] of its types, which a typed host call
//! must match.

use std::sync::atomic::{AtomicUsize, Ordering};

pub use memlink_abi::archive::{
    check, describe_format, fingerprint, format, Archivable, ArchiveType, Checkable, Limits,
    ARCHIVE_ALIGN, FORMAT_BIG_ENDIAN, FORMAT_UNALIGNED,
};

use crate::error::Result;

/// The result of an export, encoded as an rkyv archive in the call's arena instead of
/// MessagePack: `-> Result<Rkyv<T>>`. The host reads it in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rkyv<T>(pub T);

static MAX_DEPTH: AtomicUsize = AtomicUsize::new(128);
static MAX_SIZE: AtomicUsize = AtomicUsize::new(1 << 30);

/// Sets the limits every archived export of this module checks (default:
/// [`Limits::default`], 128 levels and 1 GiB).
pub fn set_limits(limits: Limits) {
    MAX_DEPTH.store(limits.max_depth, Ordering::Relaxed);
    MAX_SIZE.store(limits.max_size, Ordering::Relaxed);
}

/// The limits in force.
pub fn limits() -> Limits {
    Limits {
        max_depth: MAX_DEPTH.load(Ordering::Relaxed),
        max_size: MAX_SIZE.load(Ordering::Relaxed),
    }
}

/// Checks `bytes` as an archive of `T` within the module's [`limits`] and returns its
/// root, in place (see [`check`] for what is checked and how refusals read).
pub fn access<T>(bytes: &[u8]) -> Result<&T::Archived>
where
    T: rkyv::Archive,
    T::Archived: Checkable,
{
    check::<T>(bytes, limits(), "archive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_limits_apply_to_access() {
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&vec![1u32, 2]).unwrap();
        assert_eq!(access::<Vec<u32>>(&bytes).unwrap().len(), 2);
        let before = limits();
        set_limits(Limits {
            max_depth: 0,
            ..before
        });
        let refused = access::<Vec<u32>>(&bytes).unwrap_err().to_string();
        set_limits(before);
        assert!(refused.contains("depth limit of 0"), "{refused}");
    }
}
