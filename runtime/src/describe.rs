//! A module's description: what `memlink_module_info` returns, checked field by field
//! and copied into owned values before the runtime trusts any of it.

use memlink_abi::{self as abi, Format, ModuleInfo, StrRef};

/// One method as the module's table describes it, checked and copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// The exported name.
    pub name: String,
    /// FNV-1a of the name: the id on the wire.
    pub id: u32,
    /// How the arguments are encoded.
    pub args_format: Format,
    /// How the result is encoded.
    pub result_format: Format,
    /// Number of arguments after the context.
    pub arg_count: u16,
    /// Whether the export is an `async fn`.
    pub is_async: bool,
    /// Whether its author marked it pure (its result depends on its arguments alone):
    /// a runtime with a result cache may answer it from there.
    pub pure: bool,
    /// For archived arguments: the type the archive must hold.
    pub args_type: Option<ArchivedType>,
    /// For an archived result: the type the archive holds.
    pub result_type: Option<ArchivedType>,
    /// The export's signature without its context (`add(a: u32, b: u32) -> u32`), as
    /// the module records it; `None` when it records none.
    pub signature: Option<String>,
}

/// A type exchanged as an rkyv archive, as a method table names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedType {
    /// The unarchived type's name, as `std::any::type_name` spells it in the module.
    pub name: String,
    /// Its fingerprint (`memlink_abi::archive::fingerprint`): name, archived size and
    /// alignment, rkyv format.
    pub fingerprint: u64,
}

/// What a module's description says, checked.
pub(crate) struct Described {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) sdk_version: String,
    pub(crate) methods: Vec<Method>,
    /// Each method's own entry point, where the module has one (`methods`' order).
    pub(crate) calls: Vec<Option<abi::MethodCallFn>>,
}

/// The most methods a module may export: far more than any real module has, and small
/// enough that a garbage count is refused before the table is read or anything is
/// allocated for it.
const MAX_METHODS: usize = 1 << 16;

/// Why the text `s`, which `StrRef::as_str` refused, cannot be read: said of the text
/// ("the name of method 1 … is longer than …").
pub(crate) fn unreadable(s: StrRef) -> &'static str {
    if isize::try_from(s.len).is_err() {
        "is longer than any text can be (its length is past isize::MAX)"
    } else if s.ptr.is_null() {
        "is null with a length"
    } else {
        "is not UTF-8"
    }
}

/// Checks a module's self-description and copies it into owned values.
///
/// The header (magic, ABI version, size) is read through the pointer before a reference
/// to the whole description is made: a description shorter than this runtime's (a C
/// module built against another header) is refused on its size, never read past its end.
///
/// # Safety
///
/// `info` must be null or point to memory valid for reads of a [`ModuleInfo`]'s first
/// three fields, and, when its `size` says it holds a whole `ModuleInfo`, of a whole
/// one, with everything it points to: all unchanged for the life of the process.
pub(crate) unsafe fn describe(info: *const ModuleInfo) -> Result<Described, String> {
    if info.is_null() {
        return Err("memlink_module_info returned null".into());
    }
    if !info.is_aligned() {
        return Err(format!(
            "memlink_module_info returned {info:p}, not aligned to {} as a ModuleInfo must be",
            align_of::<ModuleInfo>()
        ));
    }
    // SAFETY: non-null and aligned (above), and valid for reads of the header's fields
    // (the caller's contract); each is read alone, no reference to the whole made.
    let header = unsafe {
        Header {
            magic: (&raw const (*info).magic).read(),
            abi_version: (&raw const (*info).abi_version).read(),
            size: (&raw const (*info).size).read(),
        }
    };
    check_header(&header)?;
    // SAFETY: its size says it holds a whole `ModuleInfo` (`check_header`), which the
    // caller's contract then makes valid, and unchanged, for the life of the process.
    let info = unsafe { &*info };
    let text = |s: StrRef, what: &str| -> Result<String, String> {
        // SAFETY: the module's strings are in its static memory, alive while it is
        // mapped, and never written.
        unsafe { s.as_str() }
            .map(str::to_owned)
            .ok_or_else(|| format!("{what} {}", unreadable(s)))
    };
    if info.method_count > MAX_METHODS {
        return Err(format!(
            "its method table claims {} methods, more than the {MAX_METHODS} a module may have",
            info.method_count
        ));
    }
    let rows: &[abi::MethodInfo] = if info.method_count == 0 {
        &[]
    } else if info.methods.is_null() {
        return Err("method table is null".into());
    } else {
        // SAFETY: a non-null table of `method_count` rows in the module's static memory;
        // the count is bounded above, so the slice's size fits an `isize`.
        unsafe { std::slice::from_raw_parts(info.methods, info.method_count) }
    };
    // Zero now, so that a later minor version may give it a meaning.
    if info.reserved != 0 {
        return Err(format!(
            "module info has reserved {:#x}, which must be 0",
            info.reserved
        ));
    }
    let mut methods = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        methods.push(method(i, row, &text)?);
    }
    check_ids(&methods)?;
    check_format(info.rkyv_format, &methods)?;
    let calls = if info.method_calls.is_null() || rows.is_empty() {
        vec![None; rows.len()]
    } else {
        // SAFETY: a non-null `method_calls` has `method_count` entries in the module's
        // static memory (the ABI), each null or an entry point of the module; the count
        // is bounded above, as for the rows.
        unsafe { std::slice::from_raw_parts(info.method_calls, rows.len()) }.to_vec()
    };
    let name = text(info.name, "module name")?;
    // Its name is what calls and nested calls address it by, and what a load under a name
    // of the host's choosing keeps as its own (a versioned reference finds it by it).
    if let Some(reason) = crate::names::unusable(&name) {
        return Err(format!(
            "its name {name:?} cannot be used: {reason} (rebuild it with another name)"
        ));
    }
    // The version is read as semver too: with a control character, no requirement
    // would admit it.
    let printable = |s: StrRef, what: &str| {
        printable(text(s, &format!("module {what}"))?, &format!("its {what}"))
    };
    Ok(Described {
        name,
        version: printable(info.version, "version")?,
        sdk_version: printable(info.sdk_version, "SDK version")?,
        methods,
        calls,
    })
}

/// `s`, a text of the module's that is printed as it is (`memlink inspect`, errors, logs:
/// its version, a method's signature and type names), refused naming it as `what` when
/// it holds a control character, which would break the line it is printed in (in C,
/// most often the NUL a length counted).
fn printable(s: String, what: &str) -> Result<String, String> {
    if s.chars().any(char::is_control) {
        return Err(format!(
            "{what} {s:?} holds a control character{}",
            nul_hint(&s)
        ));
    }
    Ok(s)
}

/// The likely cause of a control character in a module's text, when there is one to
/// name: a NUL at its end is a C length that counted the terminator.
fn nul_hint(s: &str) -> &'static str {
    match s.ends_with('\0') {
        true => " (in C, a length that counts the terminating NUL?)",
        false => "",
    }
}

/// The first three fields of a module's self-description, read before the rest.
struct Header {
    magic: u64,
    abi_version: u32,
    size: u32,
}

/// The checks of a module's self-description that come before anything in it is read:
/// its magic, its ABI version and its size.
fn check_header(info: &Header) -> Result<(), String> {
    if info.magic != abi::MODULE_MAGIC {
        return Err(format!(
            "module info has magic {:#x}, expected {:#x}",
            info.magic,
            abi::MODULE_MAGIC
        ));
    }
    // `memlink_abi_version` said this runtime's version (checked before anything else);
    // a description that says another was written for another layout, or by hand with
    // its fields out of order (a C initializer names none of them).
    if info.abi_version != abi::ABI_VERSION {
        return Err(format!(
            "module info has abi_version {}, expected {} (what its memlink_abi_version \
             returned; in C, MEMLINK_ABI_VERSION)",
            info.abi_version,
            abi::ABI_VERSION
        ));
    }
    if (info.size as usize) < size_of::<ModuleInfo>() {
        return Err(format!(
            "module info is {} bytes, expected at least {}",
            info.size,
            size_of::<ModuleInfo>()
        ));
    }
    Ok(())
}

/// Row `i` of the method table, checked. A C author writes the table by hand: every
/// error names the row's method (or, for a name that cannot be read, the row's place).
fn method(
    i: usize,
    row: &abi::MethodInfo,
    text: &impl Fn(StrRef, &str) -> Result<String, String>,
) -> Result<Method, String> {
    let name = text(row.name, &format!("the name of method {i} of the table"))?;
    // A row a C initializer left out (all zeroes) has no name, and a length that counts
    // the terminator gives one ending in a NUL the author cannot see in a message: the
    // call by the name they meant would find nothing, so neither loads.
    if name.is_empty() {
        return Err(format!(
            "method {i} of the table has no name (its name is empty or null)"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "method {i} of the table: its name {name:?} holds a control character{}",
            nul_hint(&name)
        ));
    }
    let text = |s: StrRef, what: &str| {
        let what = format!("method `{name}`: its {what}");
        printable(text(s, &what)?, &what)
    };
    if row.id != abi::method_id(&name) {
        return Err(format!(
            "method `{name}` has id {:#010x}, expected {:#010x}",
            row.id,
            abi::method_id(&name)
        ));
    }
    let format = |tag| {
        Format::from_u8(tag).ok_or_else(|| format!("method `{name}` has unknown format {tag}"))
    };
    if row.reserved != 0 {
        return Err(format!(
            "method `{name}` has reserved {:#x}, which must be 0",
            row.reserved
        ));
    }
    // The fingerprint was checked against the format first (`typed_as_archived`): a
    // type is named exactly when it is fingerprinted, so an archive's type is never
    // shown as `` and a part that is none names no type a reader would take for one.
    let archive_type = |s: StrRef,
                        fingerprint: u64,
                        what|
     -> Result<Option<ArchivedType>, String> {
        let type_name = text(s, what)?;
        match (fingerprint != 0, type_name.is_empty()) {
                (true, true) => Err(format!(
                    "method `{name}`: its {what} is empty, and an archived part names the type its archive holds"
                )),
                (false, false) => Err(format!(
                    "method `{name}`: its {what} is {type_name:?}, but that part is not archived: leave it empty"
                )),
                (true, false) => Ok(Some(ArchivedType {
                    name: type_name,
                    fingerprint,
                })),
                (false, true) => Ok(None),
            }
    };
    let (args_format, result_format) = (format(row.args_format)?, format(row.result_format)?);
    typed_as_archived(&name, args_format, row.args_fingerprint, Part::Args)?;
    typed_as_archived(&name, result_format, row.result_fingerprint, Part::Result)?;
    Ok(Method {
        args_format,
        result_format,
        arg_count: row.arg_count,
        is_async: row.flags & abi::METHOD_ASYNC != 0,
        pure: row.flags & abi::METHOD_PURE != 0,
        args_type: archive_type(row.args_type, row.args_fingerprint, "args_type")?,
        result_type: archive_type(row.result_type, row.result_fingerprint, "result_type")?,
        signature: Some(text(row.signature, "signature")?).filter(|s| !s.is_empty()),
        id: row.id,
        name,
    })
}

/// The arguments or the result of a method, for [`typed_as_archived`].
#[derive(Clone, Copy)]
enum Part {
    Args,
    Result,
}

/// Whether a row names the type of an archive exactly when that part is archived: a
/// typed handle checks the type by its fingerprint, and takes a part with none for one
/// that is not archived (and one with a fingerprint for an archive), so a row written
/// otherwise by hand would be told to use the handle that refuses it.
fn typed_as_archived(
    name: &str,
    format: Format,
    fingerprint: u64,
    part: Part,
) -> Result<(), String> {
    let (field, what) = match part {
        Part::Args => ("args_fingerprint", "its arguments are"),
        Part::Result => ("result_fingerprint", "its result is"),
    };
    match (format == Format::Archived, fingerprint != 0) {
        (true, false) => Err(match part {
            Part::Args => format!(
                "method `{name}` takes archived arguments but gives their type no fingerprint \
                 ({field} is 0)"
            ),
            Part::Result => format!(
                "method `{name}` returns an archive but gives its type no fingerprint ({field} \
                 is 0)"
            ),
        }),
        (false, true) => Err(format!(
            "method `{name}` has {field} {fingerprint:#x}, but {what} {}, not archived: set \
             it to 0",
            format.name()
        )),
        _ => Ok(()),
    }
}

/// Archives can only cross between two builds of rkyv with the same format settings.
fn check_format(module_format: u32, methods: &[Method]) -> Result<(), String> {
    let uses_archives = methods
        .iter()
        .any(|m| m.args_format == Format::Archived || m.result_format == Format::Archived);
    let host_format = memlink_abi::archive::format();
    if uses_archives && module_format != host_format {
        return Err(format!(
            "its archives use rkyv with {}, this runtime's with {}; rkyv's format features \
             (endianness, alignment, pointer width) must match on both sides",
            memlink_abi::archive::describe_format(module_format),
            memlink_abi::archive::describe_format(host_format)
        ));
    }
    Ok(())
}

/// The table must be sorted by id with no id twice (same name twice, or two names
/// whose FNV-1a hashes collide).
fn check_ids(methods: &[Method]) -> Result<(), String> {
    // Every pair is named at once, each with its signature when it has one: two exports
    // of one name in two files of a crate are found by what they take.
    let shown = |m: &Method| match &m.signature {
        Some(signature) => format!("`{}` ({signature})", m.name),
        None => format!("`{}`", m.name),
    };
    let mut shared = Vec::new();
    for w in methods.windows(2) {
        if w[0].id == w[1].id {
            // One name twice is two exports of it (in two files of the crate, or one in
            // a library crate the module links, which exports too): said so, where "share
            // id" read as a collision of hashes, which two names are.
            shared.push(if w[0].name == w[1].name {
                format!(
                    "the export `{}` is there twice, {} and {} (two exports of one name: \
                     in two files of the module, or one in a library crate it links that \
                     exports too)",
                    w[0].name,
                    shown(&w[0]),
                    shown(&w[1])
                )
            } else {
                format!(
                    "methods {} and {} share id {:#010x} (their names' hashes collide)",
                    shown(&w[0]),
                    shown(&w[1]),
                    w[0].id
                )
            });
            continue;
        }
        if w[0].id > w[1].id {
            // A C author writes the table by hand: say which entry is out of place.
            return Err(format!(
                "method table is not sorted by id: `{}` ({:#010x}) comes before `{}` \
                 ({:#010x}); list the methods in ascending order of id",
                w[0].name, w[0].id, w[1].name, w[1].id
            ));
        }
    }
    if shared.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}; rename one of each pair (in Rust, with #[memlink_export(name = \"...\")])",
        shared.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text the module gives that cannot be read is told why: a length past
    /// `isize::MAX` (a C author's `SIZE_MAX`) was called "not UTF-8, or null".
    #[test]
    fn an_unreadable_text_is_told_why() {
        let bytes = b"\xff\xfe";
        let text = |ptr: *const u8, len| StrRef { ptr, len };
        assert_eq!(
            unreadable(text(bytes.as_ptr(), usize::MAX)),
            "is longer than any text can be (its length is past isize::MAX)"
        );
        assert_eq!(
            unreadable(text(core::ptr::null(), 3)),
            "is null with a length"
        );
        assert_eq!(unreadable(text(bytes.as_ptr(), 2)), "is not UTF-8");
    }

    fn m(name: &str) -> Method {
        Method {
            name: name.into(),
            id: abi::method_id(name),
            args_format: Format::MessagePack,
            result_format: Format::MessagePack,
            arg_count: 0,
            is_async: false,
            pure: false,
            args_type: None,
            result_type: None,
            signature: None,
        }
    }

    /// A description shorter than this runtime's (a C module built against another
    /// header) is refused on the size its header gives, and nothing past the header is
    /// read: Miri (`cargo +nightly miri test -p memlink-runtime --lib -- describe`) runs
    /// this on a header alone. Before, a reference to a whole `ModuleInfo` was made of
    /// it first, which Miri refuses as a reference past the end of its allocation.
    #[test]
    fn a_short_description_is_refused_on_its_size_without_being_read_past() {
        #[repr(C)]
        struct ShortInfo {
            magic: u64,
            abi_version: u32,
            size: u32,
        }
        let short = Box::new(ShortInfo {
            magic: abi::MODULE_MAGIC,
            abi_version: abi::ABI_VERSION,
            size: size_of::<ShortInfo>() as u32,
        });
        // SAFETY: valid for reads of the header's three fields, and its size says it is no
        // whole description.
        let err = unsafe { describe((&raw const *short).cast()) }.err();
        assert_eq!(
            err.as_deref(),
            Some(&*format!(
                "module info is 16 bytes, expected at least {}",
                size_of::<ModuleInfo>()
            ))
        );
        // SAFETY: null is refused before anything is read.
        let err = unsafe { describe(core::ptr::null()) }.err();
        assert_eq!(err.as_deref(), Some("memlink_module_info returned null"));
        // A description out of alignment is refused before it is read (a C module's
        // pointer into a byte array, say).
        let bytes = [0u64; 4];
        let odd = bytes
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(4)
            .cast::<ModuleInfo>();
        // SAFETY: misaligned, which is refused before anything is read.
        let err = unsafe { describe(odd) }.err().unwrap_or_default();
        assert!(err.contains("not aligned to 8"), "{err}");
    }

    /// A description of one method `echo`, changed by `change`, as `describe` takes it.
    fn described_with(
        change: impl FnOnce(&mut ModuleInfo, &mut abi::MethodInfo),
    ) -> Result<Described, String> {
        let mut row = Box::new(abi::MethodInfo {
            name: StrRef::new("echo"),
            id: abi::method_id("echo"),
            flags: 0,
            args_format: Format::Raw as u8,
            result_format: Format::Raw as u8,
            arg_count: 1,
            reserved: 0,
            args_type: StrRef::new(""),
            args_fingerprint: 0,
            result_type: StrRef::new(""),
            result_fingerprint: 0,
            signature: StrRef::new("echo(input: bytes) -> bytes"),
        });
        let mut info = Box::new(ModuleInfo {
            magic: abi::MODULE_MAGIC,
            abi_version: abi::ABI_VERSION,
            size: size_of::<ModuleInfo>() as u32,
            name: StrRef::new("m"),
            version: StrRef::new("1.0.0"),
            sdk_version: StrRef::new("none"),
            methods: core::ptr::null(),
            method_count: 1,
            rkyv_format: memlink_abi::archive::format(),
            reserved: 0,
            method_calls: core::ptr::null(),
        });
        change(&mut info, &mut row);
        info.methods = &raw const *row;
        // SAFETY: a whole description whose one row and strings live to the end of this
        // function (the strings are static).
        unsafe { describe(&raw const *info) }
    }

    /// The fields the ABI says are zero or empty are checked: a reserved field set, a
    /// type named for a part that is not archived, or an archive whose type has no name
    /// loaded silently (and `memlink inspect` printed "an rkyv archive of ``").
    #[test]
    fn reserved_fields_and_type_names_are_held_to_what_the_abi_says() {
        assert!(described_with(|_, _| {}).is_ok());
        let refused = |change: fn(&mut ModuleInfo, &mut abi::MethodInfo), want: &str| {
            let err = described_with(change).err().unwrap_or_default();
            assert!(err.contains(want), "{want:?} not in {err:?}");
        };
        refused(
            |i, _| i.reserved = 1,
            "module info has reserved 0x1, which must be 0",
        );
        refused(
            |_, r| r.reserved = 2,
            "method `echo` has reserved 0x2, which must be 0",
        );
        refused(
            |_, r| r.args_type = StrRef::new("Point"),
            "method `echo`: its args_type is \"Point\", but that part is not archived",
        );
        refused(
            |_, r| {
                r.result_format = Format::Archived as u8;
                r.result_fingerprint = 7;
            },
            "method `echo`: its result_type is empty, and an archived part names the type",
        );
    }

    #[test]
    fn duplicate_ids_name_both_methods() {
        let err = check_ids(&[m("add"), m("add")]).unwrap_err();
        assert!(
            err.contains("the export `add` is there twice, `add` and `add`"),
            "{err}"
        );
        // Two names whose hashes collide (here made to) are told as such, with the id.
        let err = check_ids(&[
            m("add"),
            Method {
                id: m("add").id,
                ..m("sum")
            },
        ])
        .unwrap_err();
        assert!(
            err.contains(
                "methods `add` and `sum` share id 0x3b391274 (their names' hashes collide)"
            ),
            "{err}"
        );
        assert!(check_ids(&[m("add"), m("echo")]).is_ok());
        // Every pair at once, with the signatures that tell two exports of a name apart;
        // the first pair alone was named.
        let signed = |name: &str, signature: &str| Method {
            signature: Some(signature.into()),
            ..m(name)
        };
        let err = check_ids(&[
            signed("add", "add(a: u32) -> u32"),
            signed("add", "add(a: u64) -> u64"),
            m("echo"),
            m("echo"),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            "the export `add` is there twice, `add` (add(a: u32) -> u32) and `add` (add(a: \
             u64) -> u64) (two exports of one name: in two files of the module, or one in a \
             library crate it links that exports too); the export `echo` is there twice, \
             `echo` and `echo` (two exports of one name: in two files of the module, or one \
             in a library crate it links that exports too); rename one of each pair (in \
             Rust, with #[memlink_export(name = \"...\")])"
        );
        assert!(check_ids(&[m("echo"), m("add")])
            .unwrap_err()
            .contains("not sorted by id: `echo` (0xd49dd484) comes before `add`"));
    }
}
