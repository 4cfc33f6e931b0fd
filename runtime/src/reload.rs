//! Hot reload: what a reload may change, how the new version's method table is held
//! against the old one's, and the private copy a reload loads.
//!
//! [`Runtime::reload`](crate::Runtime::reload) replaces a module's image under the same
//! handle and name. Calls already running finish on the old image; every call that starts
//! after the switch runs the new one. Before the switch the new version is opened from a
//! private copy of its file (the loader returns the image it already mapped for a path it
//! has seen, statics and all), its method table is compared with the old one's, and it is
//! initialized; any failure leaves the old version serving.
//!
//! State crosses a reload only when the host asks for it ([`ReloadPolicy::carry_state`])
//! and both versions take part: the old one exports [`SAVE_STATE`], returning its state
//! as bytes, and the new one exports [`RESTORE_STATE`], taking them. The new version
//! otherwise starts with a fresh persistent region: nothing crosses silently.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::describe::Method;
use crate::error::RuntimeError;
use crate::written::Contents;

/// The export a module offers to hand its state to the version replacing it: no
/// arguments, its state as bytes (raw) or a serde value (MessagePack) out.
pub const SAVE_STATE: &str = "memlink_save_state";
/// The export a module offers to take the state of the version it replaces: that
/// version's [`SAVE_STATE`] bytes (raw) in, or its MessagePack value as the one
/// parameter.
pub const RESTORE_STATE: &str = "memlink_restore_state";

/// What a reload allows.
///
/// ```
/// use memlink_runtime::reload::ReloadPolicy;
///
/// // Refuse a version that drops or changes an export (the default), and hand the old
/// // version's state to the new one.
/// let policy = ReloadPolicy::default().carry_state(true);
/// assert!(!policy.allows_changes());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadPolicy {
    allow_changes: bool,
    carry_state: bool,
}

impl ReloadPolicy {
    /// Whether a new version that removes a method, or changes one's signature, formats
    /// or archived types, is loaded anyway (default: refused with
    /// `RuntimeError::ReloadRefused`). Added methods are always allowed.
    pub fn allow_changes(mut self, allow: bool) -> Self {
        self.allow_changes = allow;
        self
    }

    /// Whether the old version's state is handed to the new one through [`SAVE_STATE`]
    /// and [`RESTORE_STATE`] (default: no). With it, a version lacking its export, or
    /// either call failing, refuses the reload.
    ///
    /// The state crossing is what the old version holds when its `SAVE_STATE` runs:
    /// the last step before the switch, once the new version is loaded and started.
    /// Calls go on meanwhile, and what they do to the old version after the save (calls
    /// that run on it until the switch, and those that took it before and end after) is
    /// not carried. The save is a call like any other: it waits for a slot of a module
    /// at its concurrency limit (or is refused, under `Saturation::Reject`).
    pub fn carry_state(mut self, carry: bool) -> Self {
        self.carry_state = carry;
        self
    }

    /// See [`allow_changes`](ReloadPolicy::allow_changes).
    pub fn allows_changes(&self) -> bool {
        self.allow_changes
    }

    /// See [`carry_state`](ReloadPolicy::carry_state).
    pub fn carries_state(&self) -> bool {
        self.carry_state
    }
}

/// How a method differs between the version a reload replaces and the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MethodChange {
    /// The new version does not export it.
    Removed {
        /// The method.
        method: String,
    },
    /// The new version exports it with another signature, other formats or other
    /// archived types: callers written for the old one would be refused or misread.
    Changed {
        /// The method.
        method: String,
        /// The old version's signature (or formats, when it records none).
        before: String,
        /// The new version's.
        after: String,
    },
    /// Only the new version exports it.
    Added {
        /// The method.
        method: String,
    },
}

impl MethodChange {
    /// Whether callers of the old version can break on it: anything but an addition, and
    /// but a change of an export the host calls for the module's lifecycle
    /// ([`SAVE_STATE`], [`RESTORE_STATE`], `memlink_dependencies`, `memlink_health`):
    /// they are the host's to call (a caller may call one by name, as any export, but
    /// not count on it across versions): a new version that takes the old one's state
    /// and keeps no `memlink_save_state` of its own was refused as an export removed.
    pub fn breaks_callers(&self) -> bool {
        match self {
            MethodChange::Added { .. } => false,
            MethodChange::Removed { method } | MethodChange::Changed { method, .. } => {
                !is_lifecycle_export(method)
            }
        }
    }
}

/// Whether `method` is one of the exports the host calls for a module's lifecycle. The
/// names are `crate::lifecycle`'s and `crate::health`'s (which use this module's, so
/// they are written here; `lifecycle`'s tests check the list against its own).
fn is_lifecycle_export(method: &str) -> bool {
    [
        SAVE_STATE,
        RESTORE_STATE,
        "memlink_dependencies",
        crate::health::HEALTH_CHECK,
    ]
    .contains(&method)
}

impl fmt::Display for MethodChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MethodChange::Removed { method } => write!(f, "`{method}` removed"),
            MethodChange::Changed {
                method,
                before,
                after,
            } => write!(f, "`{method}` changed from `{before}` to `{after}`"),
            MethodChange::Added { method } => write!(f, "`{method}` added"),
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The version replaced (its crate's version).
    pub from_version: String,
    /// The version now serving.
    pub to_version: String,
    /// How the method tables differ (additions included).
    pub changes: Vec<MethodChange>,
    /// Bytes of state handed over, when the policy carried state.
    pub state_carried: Option<usize>,
}

/// What callers see of a method: how to call it and what comes back.
fn contract(m: &Method) -> String {
    let types = |t: &Option<crate::describe::ArchivedType>| {
        t.as_ref()
            .map(|t| format!(" {}#{:016x}", t.name, t.fingerprint))
            .unwrap_or_default()
    };
    let shape = format!(
        "{} args{} -> {}{}",
        m.args_format.name(),
        types(&m.args_type),
        m.result_format.name(),
        types(&m.result_type)
    );
    match &m.signature {
        Some(sig) => format!("{sig} ({shape})"),
        None => format!("{} argument(s), {shape}", m.arg_count),
    }
}

/// How `new` differs from `old`, method by method (both sorted by id, as tables are).
pub(crate) fn compare(old: &[Method], new: &[Method]) -> Vec<MethodChange> {
    let mut changes = Vec::new();
    for m in old {
        match new.iter().find(|n| n.name == m.name) {
            None => changes.push(MethodChange::Removed {
                method: m.name.clone(),
            }),
            Some(n) => {
                let (before, after) = (contract(m), contract(n));
                if before != after {
                    changes.push(MethodChange::Changed {
                        method: m.name.clone(),
                        before,
                        after,
                    });
                }
            }
        }
    }
    for n in new {
        if !old.iter().any(|m| m.name == n.name) {
            changes.push(MethodChange::Added {
                method: n.name.clone(),
            });
        }
    }
    changes
}

/// Why a private copy is refused when its file was written while it was copied, or changed
/// since the look it was made for (see `crate::written`): the copy may hold pieces of two
/// builds, which the loader crashed the process on.
pub(crate) const WRITTEN_WHILE_COPIED: &str = "the file was written while it was copied, or \
     changed (written, or its metadata) since a watched directory looked at it, so the copy \
     may hold pieces of two builds (another process writing it in place, as `rsync \
     --inplace` does, leaves such a mix): it is not loaded; load it again once its writer is \
     done (a watched directory looks at it again)";

/// A private copy of the library at `path`, for the loader to map as a new image; the
/// caller drops it once loaded (the mapping outlives the file), which removes it.
///
/// Each copy goes into a directory of its own (mode 0700 on Unix, created new under a
/// name no one else holds), created new: no other user can put a file or a link where a
/// copy is about to be written and have it loaded instead. The directory goes with the
/// copy, so a host reloading all day leaves nothing behind in the temporary directory.
pub(crate) struct PrivateCopy {
    dir: PathBuf,
    file: PathBuf,
}

impl PrivateCopy {
    /// Copies `path` into a new private directory of its own. With `looked`, what the
    /// file was when the caller decided to load it (a watched directory's look, see
    /// [`Contents`](crate::written::Contents)): a file written since then is refused too,
    /// as one written while it is copied is.
    pub(crate) fn of(path: &Path, looked: Option<Contents>) -> Result<PrivateCopy, RuntimeError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let failed = |what: String| RuntimeError::NotALibrary {
            path: path.to_owned(),
            reason: format!("cannot make a private copy for a fresh image: {what}"),
        };
        // Only a regular file is copied: reading a FIFO would wait for a writer, and a
        // device might never end.
        let mut from =
            crate::elf::open_regular(path).map_err(|reason| RuntimeError::NotALibrary {
                path: path.to_owned(),
                reason,
            })?;
        // Watched from the open on: a writer's writes from then until the copy is made
        // refuse it (see `crate::written`).
        let writes = crate::written::Writes::to(&from);
        let opened = from.metadata().map_err(|e| failed(e.to_string()))?;
        let len = opened.len();
        // Changed since the look already: refused before it is copied (and after, below,
        // for a change while it is).
        let changed = |now: &fs::Metadata| looked.is_some_and(|l| Contents::of(now) != l);
        let written = || RuntimeError::NotALibrary {
            path: path.to_owned(),
            reason: WRITTEN_WHILE_COPIED.to_owned(),
        };
        if changed(&opened) {
            return Err(written());
        }
        let base = copies_base();
        refuse_noexec(&base)?;
        // The process's limit, not the module file's fault: said as a setting, as
        // TMPDIR's faults are.
        if let Some(reason) = past_file_size_limit(len, file_size_limit()) {
            return Err(RuntimeError::BadSetting {
                setting: "RLIMIT_FSIZE (ulimit -f)".to_owned(),
                reason: format!(
                    "no private copy of {} can be made: {reason}",
                    path.display()
                ),
            });
        }
        // The temporary directory's fault, not the module file's: said as a setting.
        let dir = private_dir(NEXT.fetch_add(1, Ordering::Relaxed)).map_err(|e| {
            RuntimeError::BadSetting {
                setting: format!("TMPDIR ({})", base.display()),
                reason: format!(
                    "no directory for a private copy of a module (which a reload, a watched \
                     directory and `private_copy` load) can be made in it: {e}; point TMPDIR \
                     at a directory this process can write"
                ),
            }
        })?;
        let file = path.file_name().unwrap_or(path.as_os_str());
        let copy = dir.join(file);
        // From here the directory is ours to remove.
        let mut made = PrivateCopy {
            dir,
            file: PathBuf::new(),
        };
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o700);
        let full = |e: &std::io::Error| no_room(&base, e);
        let mut to = options
            .open(&copy)
            .map_err(|e| full(&e).unwrap_or_else(|| failed(format!("{}: {e}", copy.display()))))?;
        // From here the file is ours to remove too, whether the copy is whole or not.
        made.file = copy;
        // No byte past the length checked against the limit: a file that grows while it
        // is copied is written meanwhile, which refuses the copy below.
        std::io::copy(&mut std::io::Read::take(&mut from, len), &mut to).map_err(|e| {
            full(&e).unwrap_or_else(|| failed(format!("{}: {e}", made.file.display())))
        })?;
        // Written once the copy's file was open, or just before, since the look: each may
        // have left it half rewritten, the writer paused.
        let since_looked = looked.is_some() && from.metadata().map_or(true, |now| changed(&now));
        if writes.seen() || since_looked {
            return Err(written());
        }
        Ok(made)
    }

    /// Where the copy is.
    pub(crate) fn path(&self) -> &Path {
        &self.file
    }
}

/// This process's file-size limit (`RLIMIT_FSIZE`, `ulimit -f`), in bytes; `None`: none.
fn file_size_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Fsize).current
}

/// Why a copy of `len` bytes cannot be written under the file-size limit `limit`:
/// writing past it raises `SIGXFSZ`, whose default action ends the process (a host
/// making a private copy of a module larger than its limit was killed with no word).
fn past_file_size_limit(len: u64, limit: Option<u64>) -> Option<String> {
    let limit = limit.filter(|&limit| len > limit)?;
    Some(format!(
        "the file is {len} bytes, past this process's file-size limit of {limit} bytes, \
         which a copy may not pass (a reload, a watched directory and `private_copy` load \
         from one)"
    ))
}

/// The error of a copy into the temporary directory `base` that failed with `e` for want
/// of room (the file system full, a quota reached): the directory's fault, not the module
/// file's, said as a setting (as a directory that cannot be made is); `None` for any
/// other failure.
fn no_room(base: &Path, e: &std::io::Error) -> Option<RuntimeError> {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded).then(|| {
        RuntimeError::BadSetting {
            setting: format!("TMPDIR ({})", base.display()),
            reason: format!(
                "no private copy of a module (which a reload, a watched directory and \
                 `private_copy` load) fits in it: {e}; free space there, or point TMPDIR \
                 at a directory with room"
            ),
        }
    })
}

/// Refuses a temporary directory `base` on a file system mounted `noexec`: the loader
/// can map no library from there, and its words ("failed to map segment") would be
/// taken for a fault of the module's file, which the error names.
fn refuse_noexec(base: &Path) -> Result<(), RuntimeError> {
    // Where this cannot be told, the copy is tried, and the loader says what it says.
    if crate::module::mounted_noexec(base) {
        return Err(RuntimeError::BadSetting {
            setting: format!("TMPDIR ({})", base.display()),
            reason: "its file system is mounted noexec, so no private copy of a module \
                     (which a reload, a watched directory and `private_copy` load) can be \
                     mapped from it: point TMPDIR at a directory that allows running code"
                .to_owned(),
        });
    }
    Ok(())
}

/// A new directory of this process's own for the private copy numbered `n`, where
/// [`keep_copies_in`] says, else in the temporary directory.
fn private_dir(n: u64) -> std::io::Result<PathBuf> {
    new_dir(
        &copies_base(),
        &format!("{}{n}-", copies_prefix(std::process::id())),
    )
}

/// A new directory (mode 0700 on Unix) in `base`, named `prefix` and a number of the
/// clock's: `create` fails if anything is there already, so the directory is new, and
/// ours.
pub(crate) fn new_dir(base: &Path, prefix: &str) -> std::io::Result<PathBuf> {
    let mut attempt = 0u32;
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("{prefix}{nanos:08x}{attempt}"));
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Where this process makes its private copies, when not in the temporary directory.
static COPIES_IN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes this process's private copies in `dir` (a directory of the process's own, which
/// it can write) from now on, not in the temporary directory: a daemon's worker, whose
/// supervisor removes what it left there when it dies (a copy the loader was mapping).
/// The first directory given stays.
#[cfg(feature = "daemon")]
pub(crate) fn keep_copies_in(dir: PathBuf) {
    let _ = COPIES_IN.set(dir);
}

/// Removes this process's own private copies from the directory [`keep_copies_in`] gave,
/// and the directory too if nothing else is left in it: for a daemon's worker whose
/// supervisor, which would have removed both, is gone (the last of its workers out
/// removes the directory). Plain file system calls, and no thread-local: it may run
/// while a library's constructor holds the loader's lock.
#[cfg(feature = "daemon")]
pub(crate) fn leave_copies_dir() {
    let Some(dir) = COPIES_IN.get() else {
        return;
    };
    remove_copies_in(dir, std::process::id(), |_, _| {});
    let _ = fs::remove_dir(dir);
}

/// Removes process `pid`'s private copies from `dir`, a directory of this process's
/// user's alone (`remove_dir_all` follows no link out of it), telling `failed` of each
/// that cannot be removed. Plain file system calls, and no thread-local.
#[cfg(feature = "daemon")]
pub(crate) fn remove_copies_in(
    dir: &Path,
    pid: u32,
    mut failed: impl FnMut(&Path, std::io::Error),
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = copies_prefix(pid);
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(&prefix))
        {
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                failed(&entry.path(), e);
            }
        }
    }
}

/// Where private copies go: [`keep_copies_in`]'s directory, else the temporary one.
fn copies_base() -> PathBuf {
    COPIES_IN.get().cloned().unwrap_or_else(std::env::temp_dir)
}

/// How the names of process `pid`'s private copies' directories begin (the dash ends the
/// number: process 12's are not process 123's).
pub(crate) fn copies_prefix(pid: u32) -> String {
    format!("memlink-image-{pid}-")
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        // The loader has mapped it (or refused it): the file itself is no longer needed,
        // and a host reloading all day must not leave a file per reload behind. (Its
        // space stays held while the image is mapped; modules are never unmapped.)
        if !self.file.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.file);
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlink_abi::Format;

    /// A copy that fails for want of room in TMPDIR is said as TMPDIR's fault, naming
    /// it; any other failure is left to the caller (the module file's error). Before, a
    /// full TMPDIR was "not a loadable shared library" of a sound library.
    #[test]
    fn a_copy_with_no_room_names_tmpdir() {
        use std::io::{Error, ErrorKind};
        let base = Path::new("/tmp/full");
        for kind in [ErrorKind::StorageFull, ErrorKind::QuotaExceeded] {
            let err = no_room(base, &Error::from(kind)).unwrap();
            assert!(matches!(&err, RuntimeError::BadSetting { .. }), "{err}");
            assert!(err.to_string().contains("TMPDIR (/tmp/full)"), "{err}");
        }
        assert!(no_room(base, &Error::from(ErrorKind::PermissionDenied)).is_none());
    }

    /// A copy made while another thread writes the file in place is refused, saying
    /// why (the copy could hold pieces of two builds); one made while nothing writes it
    /// is whole. The writer loops without pause for as long as the copies are made, so
    /// it writes during one of them at the latest (each tries a few times, for a
    /// machine too busy to run both threads at once).
    #[test]
    fn a_copy_made_while_the_file_is_written_is_refused() {
        use std::os::unix::fs::FileExt;
        use std::sync::atomic::AtomicBool;
        let dir = std::env::temp_dir().join(format!("memlink-torn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("libtorn.so");
        std::fs::write(&path, vec![7u8; 32 << 20]).unwrap();
        let copy = PrivateCopy::of(&path, None).unwrap();
        assert_eq!(std::fs::metadata(copy.path()).unwrap().len(), 32 << 20);
        drop(copy);
        let stop = AtomicBool::new(false);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    file.write_all_at(&[8], 1 << 20).unwrap();
                }
            });
            let refused = (0..20).find_map(|_| PrivateCopy::of(&path, None).err());
            stop.store(true, Ordering::Relaxed);
            let err = refused.expect("every copy made while the file was written was kept");
            assert!(
                matches!(&err, RuntimeError::NotALibrary { reason, .. } if reason == WRITTEN_WHILE_COPIED),
                "{err}"
            );
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A copy past the file-size limit is refused before a byte is written, naming the
    /// limit; one within it, or with no limit, is not.
    #[test]
    fn a_copy_past_the_file_size_limit_is_refused_naming_it() {
        let why = past_file_size_limit(14 << 20, Some(1 << 20)).unwrap();
        assert!(
            why.contains("14680064 bytes") && why.contains("limit of 1048576 bytes"),
            "{why}"
        );
        assert_eq!(past_file_size_limit(1 << 20, Some(1 << 20)), None);
        assert_eq!(past_file_size_limit(u64::MAX, None), None);
    }

    fn method(name: &str, signature: &str) -> Method {
        Method {
            name: name.to_owned(),
            id: memlink_abi::method_id(name),
            args_format: Format::MessagePack,
            result_format: Format::MessagePack,
            arg_count: 2,
            is_async: false,
            pure: false,
            args_type: None,
            result_type: None,
            signature: Some(signature.to_owned()),
        }
    }

    #[test]
    fn removals_changes_and_additions_are_told_apart() {
        let old = [
            method("add", "add(a: u32, b: u32) -> u32"),
            method("gone", "gone() -> ()"),
            method("same", "same() -> ()"),
        ];
        let new = [
            method("add", "add(a: u64, b: u64) -> u64"),
            method("same", "same() -> ()"),
            method("fresh", "fresh() -> ()"),
        ];
        let changes = compare(&old, &new);
        let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(changes.len(), 3, "{shown:?}");
        assert!(shown[0].starts_with("`add` changed from `add(a: u32, b: u32) -> u32"));
        assert_eq!(shown[1], "`gone` removed");
        assert_eq!(shown[2], "`fresh` added");
        assert_eq!(
            changes.iter().filter(|c| c.breaks_callers()).count(),
            2,
            "an addition breaks no caller"
        );
    }

    #[test]
    fn a_format_change_is_a_change_even_with_the_same_signature() {
        let old = [method("f", "f(x: String) -> String")];
        let mut raw = method("f", "f(x: String) -> String");
        raw.args_format = Format::Raw;
        assert!(matches!(
            compare(&old, &[raw])[..],
            [MethodChange::Changed { .. }]
        ));
    }

    #[test]
    fn each_copy_is_a_new_file_and_goes_when_dropped() {
        let src = std::env::temp_dir().join(format!("memlink-copy-src-{}", std::process::id()));
        fs::write(&src, b"image").unwrap();
        let a = PrivateCopy::of(&src, None).unwrap();
        let b = PrivateCopy::of(&src, None).unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(fs::read(a.path()).unwrap(), b"image");
        let kept = a.path().to_owned();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let dir = kept.parent().unwrap();
            let mode = fs::metadata(dir).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o700,
                "the copy's directory is the process's own"
            );
        }
        let dirs = [&a, &b].map(|c| c.path().parent().unwrap().to_owned());
        assert_ne!(dirs[0], dirs[1], "each copy has a directory of its own");
        drop(a);
        // The copy and its directory go: a process reloading all day leaves nothing.
        assert!(!kept.exists() && !dirs[0].exists());
        assert!(dirs[1].exists());
        drop(b);
        assert!(!dirs[1].exists());
        fs::remove_file(&src).unwrap();
    }
}
