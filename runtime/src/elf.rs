//! A check of a shared library's file before it is handed to the dynamic loader.
//!
//! `dlopen` maps a library's loadable segments straight from the file. A truncated file
//! whose segments reach past its end still loads, and the first touch of a page past
//! the end raises `SIGBUS`, which kills the host. Reading the ELF program headers and
//! comparing them with the file's size turns that into an error before anything is
//! mapped. Files that are not 64-bit little-endian ELF are left to the loader, which
//! reports them itself.

use std::path::Path;

/// `PT_LOAD`: a segment the loader maps from the file.
const PT_LOAD: u32 = 1;

/// Why a file cannot be loaded safely, or `Ok` when the loader may try it.
pub(crate) fn check(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    check_bytes(&bytes)
}

fn check_bytes(file: &[u8]) -> Result<(), String> {
    // Only 64-bit little-endian ELF is checked here; anything else goes to the loader.
    if file.len() < 64 || &file[..4] != b"\x7fELF" || file[4] != 2 || file[5] != 1 {
        return Ok(());
    }
    let u16_at = |o: usize| file.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        file.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    };
    let u64_at = |o: usize| {
        file.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    let len = file.len() as u64;
    let short = |what: &str| {
        format!("the file is truncated: it is {len} bytes, and {what} lies past its end")
    };
    let phoff = u64_at(0x20).ok_or_else(|| short("the ELF header"))?;
    let phentsize = u64::from(u16_at(0x36).ok_or_else(|| short("the ELF header"))?);
    let phnum = u64::from(u16_at(0x38).ok_or_else(|| short("the ELF header"))?);
    let table_end = phentsize
        .checked_mul(phnum)
        .and_then(|n| n.checked_add(phoff));
    if phentsize < 56 || table_end.is_none_or(|end| end > len) {
        return Err(short("the program header table"));
    }
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).map_err(|_| short("a program header"))?;
        if u32_at(at) != Some(PT_LOAD) {
            continue;
        }
        let offset = u64_at(at + 8).ok_or_else(|| short("a program header"))?;
        let size = u64_at(at + 32).ok_or_else(|| short("a program header"))?;
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(short(&format!(
                "loadable segment {i} (bytes {offset}..{})",
                offset.saturating_add(size)
            )));
        }
    }
    Ok(())
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
        // Cuts inside the headers and the first loadable segment (a test binary's tail is
        // debug sections, which are not loaded).
        for cut in [100, 4096] {
            let err = check_bytes(&bytes[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
    }

    #[test]
    fn non_elf_files_are_left_to_the_loader() {
        assert_eq!(check_bytes(b"just text"), Ok(()));
        assert_eq!(check_bytes(&[0u8; 100]), Ok(()));
    }
}
