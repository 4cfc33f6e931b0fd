//! A check of a shared library's file before it is handed to the dynamic loader.
//!
//! `dlopen` maps a library's loadable segments straight from the file. A truncated file
//! whose segments reach past its end still loads, and the first touch of a page past
//! the end raises `SIGBUS`, which kills the host. Reading the ELF program headers and
//! comparing them with the file's size turns that into an error before anything is
//! mapped. The section header table is checked the same way: linkers write it last, so
//! a file cut anywhere (a copy still being written, say) is refused, even where every
//! loadable segment happens to be whole. The dynamic section, which the loader follows
//! before any of the library's code runs, is checked to point only inside the library
//! ([`dynamic`]). Only the headers, the dynamic section and the strings it names are
//! read, never the whole file, and only from a regular file: a device (`/dev/zero`) or a
//! pipe is refused before a byte is read, and a FIFO without waiting for a writer
//! ([`open_regular`]). Files that
//! are not 64-bit little-endian ELF are left to the loader, which reports them itself.
//!
//! Once a library is loaded, [`symbol_kind`] tells an entry point the host will call
//! from a symbol of the same name that holds data (a C `const uint32_t
//! memlink_abi_version = 6;`): calling into data kills the host.

mod dynamic;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// `PT_LOAD`: a segment the loader maps from the file.
const PT_LOAD: u32 = 1;
/// Size of the ELF64 header.
const EHDR: usize = 64;
/// Size of an ELF64 program header.
const PHDR: u64 = 56;
/// The largest program header this accepts: ELF64's are 56 bytes; a larger entry size
/// is allowed by the format for extensions nobody uses. With at most 65,535 entries, the
/// table this reads is at most 14 MiB (real libraries have about ten entries).
const MAX_PHDR: u64 = 256;

/// Opens `path` for reading if it is a regular file, or says why not (`it is not a regular
/// file`, or the system's error).
///
/// Opening a FIFO for reading blocks until a writer comes, and a device may never end:
/// the path is checked before it is opened, and the open file again, in case the path
/// changed in between. On Linux the file is opened without blocking, so a FIFO put there
/// in that moment is refused too, not waited on.
pub(crate) fn open_regular(path: &Path) -> Result<File, String> {
    let cannot = |e: std::io::Error| format!("cannot read the file: {e}");
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(NOT_REGULAR.to_owned());
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        // A bit pattern of the kernel's, which `custom_flags` takes as a C int.
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    );
    let file = options.open(path).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(NOT_REGULAR.to_owned());
    }
    Ok(file)
}

/// Why a path that is a directory, a FIFO, a socket or a device is refused.
const NOT_REGULAR: &str = "it is not a regular file";

/// Why a file cannot be loaded safely, or `Ok` when the loader may try it.
pub(crate) fn check(path: &Path) -> Result<(), String> {
    let mut file = open_regular(path)?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read the file: {e}"))?
        .len();
    let mut header = [0u8; EHDR];
    let got = read_up_to(&mut file, &mut header)?;
    let Some(table) = program_headers(&header[..got], len)? else {
        return Ok(());
    };
    let size =
        usize::try_from(table.size).map_err(|_| truncated(len, "the program header table"))?;
    let mut bytes = vec![0u8; size];
    file.seek(SeekFrom::Start(table.offset))
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if read_up_to(&mut file, &mut bytes)? < size {
        return Err(truncated(len, "the program header table"));
    }
    check_segments(&bytes, table.entry, len)?;
    check_section_headers(&header, len)?;
    dynamic::check(&bytes, table.entry, |offset, want| {
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| format!("cannot read the file: {e}"))?;
        let mut buf = vec![0u8; want];
        let got = read_up_to(&mut file, &mut buf)?;
        buf.truncate(got);
        Ok(buf)
    })
}

/// Checks that the section header table named by the ELF header `header` (already known
/// to be a 64-bit little-endian ELF header) lies inside a file of `len` bytes.
fn check_section_headers(header: &[u8; EHDR], len: u64) -> Result<(), String> {
    let offset = u64::from_le_bytes(header[0x28..0x30].try_into().unwrap_or([0; 8]));
    let entry = u64::from(u16::from_le_bytes([header[0x3a], header[0x3b]]));
    let count = u64::from(u16::from_le_bytes([header[0x3c], header[0x3d]]));
    if offset == 0 {
        // No section headers (a stripped-down file): nothing to check.
        return Ok(());
    }
    if offset
        .checked_add(entry * count)
        .is_none_or(|end| end > len)
    {
        return Err(truncated(len, "the section header table"));
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> Result<usize, String> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read the file: {e}")),
        }
    }
    Ok(got)
}

fn truncated(len: u64, what: &str) -> String {
    format!("the file is truncated: it is {len} bytes, and {what} lies past its end")
}

/// Where the program header table is.
#[derive(Debug)]
struct Table {
    offset: u64,
    entry: u64,
    size: u64,
}

/// The program header table named by the ELF header `header` of a file of `len` bytes,
/// or `None` for a file this check leaves to the loader.
fn program_headers(header: &[u8], len: u64) -> Result<Option<Table>, String> {
    // A static library, which a crate built as `staticlib` (or `ar` in C) makes: the
    // loader's "invalid ELF header" does not say that only the crate type is wrong.
    if header.starts_with(b"!<arch>\n") {
        return Err(
            "it is a static library (an `ar` archive: a Rust `staticlib`, or a C \
                    `.a`), not a shared one: build the module as a `cdylib` (in C, link it \
                    with `-shared`)"
                .to_owned(),
        );
    }
    // Only 64-bit little-endian ELF is checked here; anything else goes to the loader.
    if header.len() < EHDR || &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(None);
    }
    // An object file (`cc -c`, not linked) or a core dump: the loader said only that its
    // program headers were wrong, or nothing a reader could act on.
    match u16::from_le_bytes([header[0x10], header[0x11]]) {
        1 => {
            return Err(
                "it is an object file (`cc -c`'s `.o`), not a shared library: link it \
                        with `-shared`"
                    .to_owned(),
            )
        }
        4 => return Err("it is a core dump, not a shared library".to_owned()),
        _ => {}
    }
    check_machine(u16::from_le_bytes([header[0x12], header[0x13]]))?;
    let offset = u64::from_le_bytes(header[0x20..0x28].try_into().unwrap_or([0; 8]));
    let entry = u64::from(u16::from_le_bytes([header[0x36], header[0x37]]));
    let count = u64::from(u16::from_le_bytes([header[0x38], header[0x39]]));
    let size = entry * count;
    if !(PHDR..=MAX_PHDR).contains(&entry) {
        return Err(format!(
            "its program headers are {entry} bytes each, where ELF64 has {PHDR}"
        ));
    }
    if offset.checked_add(size).is_none_or(|end| end > len) {
        return Err(truncated(len, "the program header table"));
    }
    Ok(Some(Table {
        offset,
        entry,
        size,
    }))
}

/// The ELF machine (`e_machine`) this process runs on, where it is one this check knows.
const HOST_MACHINE: Option<u16> = if cfg!(target_arch = "x86_64") {
    Some(62)
} else if cfg!(target_arch = "aarch64") {
    Some(183)
} else if cfg!(target_arch = "riscv64") {
    Some(243)
} else if cfg!(target_arch = "powerpc64") {
    Some(21)
} else if cfg!(target_arch = "loongarch64") {
    Some(258)
} else {
    None
};

/// The name of ELF machine `machine`, for the ones a 64-bit little-endian module is
/// usually built for.
fn machine_name(machine: u16) -> Option<&'static str> {
    Some(match machine {
        62 => "x86-64",
        3 => "x86 (32-bit)",
        183 => "AArch64",
        243 => "RISC-V",
        21 => "PowerPC64",
        258 => "LoongArch",
        _ => return None,
    })
}

/// Refuses a library built for another machine than this process's: the loader says
/// only "cannot open shared object file: No such file or directory" of one, of a file
/// that is there.
fn check_machine(machine: u16) -> Result<(), String> {
    let Some(host) = HOST_MACHINE.filter(|&host| host != machine) else {
        return Ok(());
    };
    let name = |m: u16| machine_name(m).map_or_else(|| format!("ELF machine {m}"), str::to_owned);
    Err(format!(
        "it is built for {}, and this process runs on {}: build the module for this machine",
        name(machine),
        name(host)
    ))
}

/// A file offset no library reaches (1 TiB): a segment said to end past it is read from
/// corrupt headers, not from a copy cut short.
const ABSURD: u64 = 1 << 40;

/// Checks that every loadable segment of the table `table` lies inside the file.
fn check_segments(table: &[u8], entry: u64, len: u64) -> Result<(), String> {
    let entry = usize::try_from(entry).unwrap_or(usize::MAX);
    for (i, header) in table.chunks_exact(entry).enumerate() {
        let word = |o: usize| u64::from_le_bytes(header[o..o + 8].try_into().unwrap_or([0; 8]));
        if u32::from_le_bytes(header[..4].try_into().unwrap_or([0; 4])) != PT_LOAD {
            continue;
        }
        let (offset, size) = (word(8), word(32));
        // Past any file a library could be: not a copy cut short, but headers that are
        // wrong (a program header count past the real table reads code as headers).
        if offset.checked_add(size).is_none_or(|end| end > ABSURD) {
            return Err(format!(
                "its ELF headers are corrupt: loadable segment {i} claims bytes {offset}..{} of a file of {len} bytes",
                offset.saturating_add(size)
            ));
        }
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(truncated(
                len,
                &format!(
                    "loadable segment {i} (bytes {offset}..{})",
                    offset.saturating_add(size)
                ),
            ));
        }
    }
    Ok(())
}

/// The check on a whole file already in memory (for the tests).
#[cfg(test)]
fn check_bytes(file: &[u8]) -> Result<(), String> {
    let len = file.len() as u64;
    let Some(table) = program_headers(&file[..file.len().min(EHDR)], len)? else {
        return Ok(());
    };
    let (start, end) = (table.offset as usize, (table.offset + table.size) as usize);
    check_segments(&file[start..end], table.entry, len)?;
    let header: &[u8; EHDR] = file[..EHDR].try_into().unwrap_or(&[0; EHDR]);
    check_section_headers(header, len)?;
    dynamic::check(&file[start..end], table.entry, |offset, want| {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(file.len());
        Ok(file[start..start.saturating_add(want).min(file.len())].to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary itself is a 64-bit ELF file on the platforms the runtime runs on.
    fn me() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn a_whole_file_passes_and_a_cut_one_does_not() {
        let bytes = me();
        if !bytes.starts_with(b"\x7fELF") {
            return;
        }
        assert_eq!(check_bytes(&bytes), Ok(()));
        // Cuts inside the headers and the first loadable segment.
        for cut in [100, 4096] {
            let err = check_bytes(&bytes[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
        // A cut through the debug sections at the end leaves every loadable segment
        // whole, and is refused for the section header table, written last.
        let err = check_bytes(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.contains("the section header table"), "{err}");
    }

    /// A static library and an object file, what a module built with the wrong crate
    /// type or not linked is, are named as such; the loader's words said neither.
    #[test]
    fn a_static_library_and_an_object_file_are_named() {
        let err = check_bytes(b"!<arch>\n/               0           0     0     0").unwrap_err();
        assert!(
            err.contains("static library") && err.contains("cdylib"),
            "{err}"
        );
        let mut bytes = me();
        if !bytes.starts_with(b"\x7fELF") {
            return;
        }
        bytes[0x10..0x12].copy_from_slice(&1u16.to_le_bytes());
        let err = check_bytes(&bytes).unwrap_err();
        assert!(
            err.contains("object file") && err.contains("-shared"),
            "{err}"
        );
        bytes[0x10..0x12].copy_from_slice(&4u16.to_le_bytes());
        assert!(check_bytes(&bytes).unwrap_err().contains("core dump"));
    }

    /// A program header count past the real table reads code as headers: a segment of
    /// absurd bounds is told as corrupt headers, not as a file cut short (which it was
    /// called, of a whole file).
    #[test]
    fn headers_past_any_file_are_corrupt_not_truncated() {
        let mut bytes = me();
        if !bytes.starts_with(b"\x7fELF") {
            return;
        }
        let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap());
        let at = usize::try_from(phoff).unwrap();
        // The first header made a loadable segment claiming 2^50 bytes.
        bytes[at..at + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        bytes[at + 32..at + 40].copy_from_slice(&(1u64 << 50).to_le_bytes());
        let err = check_bytes(&bytes).unwrap_err();
        assert!(
            err.starts_with("its ELF headers are corrupt: loadable segment 0 claims bytes"),
            "{err}"
        );
    }

    /// The libraries of this system pass: the check refuses damage, not the layouts
    /// real linkers write.
    #[test]
    fn the_systems_own_libraries_pass() {
        let mut checked = 0;
        for dir in [
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib64",
            "/usr/lib64",
        ] {
            let Ok(files) = std::fs::read_dir(dir) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if !name.contains(".so") || !path.is_file() {
                    continue;
                }
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                if bytes.starts_with(b"\x7fELF") {
                    assert_eq!(check_bytes(&bytes), Ok(()), "{}", path.display());
                    checked += 1;
                }
            }
        }
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert!(checked > 10, "{checked} libraries checked");
        }
    }

    #[test]
    fn non_elf_files_are_left_to_the_loader() {
        assert_eq!(check_bytes(b"just text"), Ok(()));
        assert_eq!(check_bytes(&[0u8; 100]), Ok(()));
    }

    /// Issue item: the program header entry size is bounded before a table is read, so a
    /// header naming 65535 entries of 65535 bytes cannot make the runtime read 4 GiB.
    #[test]
    fn program_header_entries_of_an_impossible_size_are_refused() {
        let bytes = me();
        if !bytes.starts_with(b"\x7fELF") {
            return;
        }
        let mut header = bytes[..EHDR].to_vec();
        for entry in [0u16, 8, 55, 257, u16::MAX] {
            header[0x36..0x38].copy_from_slice(&entry.to_le_bytes());
            header[0x38..0x3a].copy_from_slice(&u16::MAX.to_le_bytes());
            let err = program_headers(&header, bytes.len() as u64).unwrap_err();
            assert!(
                err.contains(&format!("{entry} bytes each")),
                "{entry}: {err}"
            );
        }
        // A real ELF64 entry size is accepted.
        header[0x36..0x38].copy_from_slice(&(PHDR as u16).to_le_bytes());
        header[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        assert!(program_headers(&header, bytes.len() as u64)
            .unwrap()
            .is_some());
    }
}

/// What a symbol the dynamic loader found at `addr` holds, by its `STT_` type in its
/// library's dynamic symbol table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymbolKind {
    /// Code: `STT_FUNC`, `STT_GNU_IFUNC`, or a symbol of no type (an assembler's label).
    Code,
    /// Anything else: data (`STT_OBJECT`, `STT_COMMON`, `STT_TLS`), a section, a file.
    Data,
    /// The loader cannot say (not glibc, or no symbol covers the address).
    Unknown,
}

/// The kind of the symbol at `addr`, an address the dynamic loader returned for a symbol
/// of a loaded library.
///
/// Platform: asks glibc's `dladdr1` for the symbol's table entry; elsewhere (musl, other
/// systems) always [`SymbolKind::Unknown`].
pub(crate) fn symbol_kind(addr: *const core::ffi::c_void) -> SymbolKind {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// glibc's `RTLD_DL_SYMENT` (`<dlfcn.h>`), which the `libc` crate leaves out.
        const RTLD_DL_SYMENT: libc::c_int = 1;
        const STT_NOTYPE: u8 = 0;
        const STT_FUNC: u8 = 2;
        const STT_GNU_IFUNC: u8 = 10;
        let mut info = core::mem::MaybeUninit::<libc::Dl_info>::uninit();
        let mut entry: *mut core::ffi::c_void = core::ptr::null_mut();
        // SAFETY: `dladdr1` reads nothing at `addr` (it compares it with the loaded
        // objects' ranges), writes `info` and `entry`, both valid for writes, and is
        // thread-safe (it takes the loader's lock).
        let found =
            unsafe { libc::dladdr1(addr, info.as_mut_ptr(), &raw mut entry, RTLD_DL_SYMENT) };
        if found == 0 || entry.is_null() {
            return SymbolKind::Unknown;
        }
        // SAFETY: with `RTLD_DL_SYMENT`, a nonzero answer sets `entry` to null or to the
        // symbol's `Elf64_Sym` (`Elf32_Sym` on 32-bit) in the object's dynamic symbol
        // table, mapped while the object is (the caller's library, never unloaded).
        #[cfg(target_pointer_width = "64")]
        let st_info = unsafe { (*entry.cast::<libc::Elf64_Sym>()).st_info };
        // SAFETY: as above.
        #[cfg(target_pointer_width = "32")]
        let st_info = unsafe { (*entry.cast::<libc::Elf32_Sym>()).st_info };
        match st_info & 0xf {
            STT_NOTYPE | STT_FUNC | STT_GNU_IFUNC => SymbolKind::Code,
            _ => SymbolKind::Data,
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = addr;
        SymbolKind::Unknown
    }
}
