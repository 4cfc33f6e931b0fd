//! A check of a library's dynamic section, the table the dynamic loader follows before
//! any of the library's code runs: the libraries it needs (names in its string table),
//! its symbol table, its relocations, its initializers.
//!
//! The loader trusts every address in it. A file whose headers and body come from two
//! builds (a copy written over in place and closed halfway, as an interrupted
//! `rsync --inplace` leaves it) passes the size checks of `super::check`, and its
//! dynamic section, read where the first build's headers put it, holds the second
//! build's bytes: the loader follows them and the process dies of `SIGSEGV` inside
//! `dlopen`. This check reads the section where the loader will, and refuses a table
//! that points outside the library's own segments, a string that runs past its string
//! table, or a table with no end: what the loader would follow is inside the file.

/// `PT_LOAD`, `PT_DYNAMIC`: program header types.
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;

/// The most of a dynamic section this reads: real ones are well under a kilobyte (tens
/// of 16-byte entries); a longer one is read only this far, as the loader reads it only
/// to its `DT_NULL`.
const MAX_DYNAMIC: u64 = 64 * 1024;
/// The most of a string table this reads to check the strings the loader reads from it
/// (a library's own name, the libraries it needs, its search paths); a longer table's
/// strings are left unchecked.
const MAX_STRTAB: u64 = 64 * 1024 * 1024;

/// Dynamic section tags this checks (`<elf.h>`).
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_PLTRELSZ: u64 = 2;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_STRSZ: u64 = 10;
const DT_INIT: u64 = 12;
const DT_FINI: u64 = 13;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_REL: u64 = 17;
const DT_RELSZ: u64 = 18;
const DT_JMPREL: u64 = 23;
const DT_INIT_ARRAY: u64 = 25;
const DT_FINI_ARRAY: u64 = 26;
const DT_INIT_ARRAYSZ: u64 = 27;
const DT_FINI_ARRAYSZ: u64 = 28;
const DT_RUNPATH: u64 = 29;
const DT_RELRSZ: u64 = 35;
const DT_RELR: u64 = 36;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERNEED: u64 = 0x6fff_fffe;

/// A program header's fields this check uses.
#[derive(Debug, Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

impl Segment {
    /// Whether the `len` bytes from address `addr` lie in this segment's memory image.
    fn holds(&self, addr: u64, len: u64) -> bool {
        self.kind == PT_LOAD
            && addr >= self.vaddr
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.vaddr.saturating_add(self.memsz))
    }

    /// Where in the file the `len` bytes from address `addr` are, when this segment maps
    /// all of them from the file.
    fn file_offset(&self, addr: u64, len: u64) -> Option<u64> {
        let within = addr.checked_sub(self.vaddr)?;
        (self.kind == PT_LOAD && within.checked_add(len)? <= self.filesz)
            .then(|| self.offset + within)
    }
}

/// Checks the dynamic section of a library whose program header table is `table`
/// (entries of `entry` bytes, every loadable segment inside the file), reading the file
/// through `read_at(offset, len)`, which gives at most `len` bytes from `offset`.
pub(super) fn check(
    table: &[u8],
    entry: u64,
    mut read_at: impl FnMut(u64, usize) -> Result<Vec<u8>, String>,
) -> Result<(), String> {
    let entry = usize::try_from(entry).unwrap_or(usize::MAX);
    let segments: Vec<Segment> = table.chunks_exact(entry).map(segment).collect();
    let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        // No dynamic section: the loader says what it makes of such a file.
        return Ok(());
    };
    let Some(offset) = segments
        .iter()
        .find_map(|s| s.file_offset(dynamic.vaddr, dynamic.filesz))
    else {
        return Err(damaged(format!(
            "its dynamic section (address {:#x}) lies outside its loadable segments",
            dynamic.vaddr
        )));
    };
    let want = dynamic.filesz.min(MAX_DYNAMIC) as usize;
    let bytes = read_at(offset, want)?;
    let entries = entries(&bytes)?;
    let value = |tag: u64| entries.iter().find(|&&(t, _)| t == tag).map(|&(_, v)| v);
    // A library that exports symbols (a module exports its entry points) has both.
    if value(DT_SYMTAB).is_none() || value(DT_STRTAB).is_none() {
        return Err(damaged(format!(
            "its dynamic section ({} entries) has no symbol table (DT_SYMTAB) or string \
             table (DT_STRTAB)",
            entries.len()
        )));
    }
    // Each table the loader follows lies in the library's memory image.
    for (tag, size_tag, name) in [
        (DT_STRTAB, Some(DT_STRSZ), "DT_STRTAB"),
        (DT_SYMTAB, None, "DT_SYMTAB"),
        (DT_HASH, None, "DT_HASH"),
        (DT_GNU_HASH, None, "DT_GNU_HASH"),
        (DT_RELA, Some(DT_RELASZ), "DT_RELA"),
        (DT_REL, Some(DT_RELSZ), "DT_REL"),
        (DT_RELR, Some(DT_RELRSZ), "DT_RELR"),
        (DT_JMPREL, Some(DT_PLTRELSZ), "DT_JMPREL"),
        (DT_INIT, None, "DT_INIT"),
        (DT_FINI, None, "DT_FINI"),
        (DT_INIT_ARRAY, Some(DT_INIT_ARRAYSZ), "DT_INIT_ARRAY"),
        (DT_FINI_ARRAY, Some(DT_FINI_ARRAYSZ), "DT_FINI_ARRAY"),
        (DT_VERSYM, None, "DT_VERSYM"),
        (DT_VERDEF, None, "DT_VERDEF"),
        (DT_VERNEED, None, "DT_VERNEED"),
    ] {
        let Some(addr) = value(tag) else { continue };
        let len = size_tag.and_then(value).unwrap_or(1);
        if !segments.iter().any(|s| s.holds(addr, len)) {
            return Err(damaged(format!(
                "its dynamic section's {name} ({len} bytes at address {addr:#x}) lies \
                 outside its loadable segments"
            )));
        }
    }
    check_strings(&entries, &segments, read_at)
}

/// The `(tag, value)` entries of a dynamic section up to its `DT_NULL`, or why it has
/// none.
fn entries(bytes: &[u8]) -> Result<Vec<(u64, u64)>, String> {
    let mut entries = Vec::new();
    for pair in bytes.chunks_exact(16) {
        let word = |o: usize| u64::from_le_bytes(pair[o..o + 8].try_into().unwrap_or([0; 8]));
        if word(0) == DT_NULL {
            return Ok(entries);
        }
        entries.push((word(0), word(8)));
    }
    Err(damaged(format!(
        "its dynamic section ({} bytes read) has no end (DT_NULL)",
        bytes.len()
    )))
}

/// Checks that the strings the loader reads from the string table (the library's name,
/// the libraries it needs, its search paths) start inside it and end there.
fn check_strings(
    entries: &[(u64, u64)],
    segments: &[Segment],
    mut read_at: impl FnMut(u64, usize) -> Result<Vec<u8>, String>,
) -> Result<(), String> {
    let strings: Vec<u64> = entries
        .iter()
        .filter(|(t, _)| matches!(*t, DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH))
        .map(|&(_, v)| v)
        .collect();
    if strings.is_empty() {
        return Ok(());
    }
    let value = |tag: u64| entries.iter().find(|&&(t, _)| t == tag).map(|&(_, v)| v);
    let (Some(addr), Some(size)) = (value(DT_STRTAB), value(DT_STRSZ)) else {
        return Err(damaged(
            "its dynamic section names libraries but has no string table (DT_STRTAB, \
             DT_STRSZ)"
                .to_owned(),
        ));
    };
    if size > MAX_STRTAB {
        return Ok(());
    }
    let Some(offset) = segments.iter().find_map(|s| s.file_offset(addr, size)) else {
        return Err(damaged(format!(
            "its string table ({size} bytes at address {addr:#x}) lies outside what its \
             loadable segments map from the file"
        )));
    };
    let table = read_at(offset, size as usize)?;
    for start in strings {
        let ends = usize::try_from(start)
            .ok()
            .and_then(|s| table.get(s..))
            .is_some_and(|rest| rest.contains(&0));
        if !ends {
            return Err(damaged(format!(
                "a name its dynamic section gives (at {start} in its string table of \
                 {size} bytes) does not end inside the table"
            )));
        }
    }
    Ok(())
}

/// A program header's fields, from its bytes (an entry of at least ELF64's 56 bytes).
fn segment(header: &[u8]) -> Segment {
    let word = |o: usize| u64::from_le_bytes(header[o..o + 8].try_into().unwrap_or([0; 8]));
    Segment {
        kind: u32::from_le_bytes(header[..4].try_into().unwrap_or([0; 4])),
        offset: word(8),
        vaddr: word(16),
        filesz: word(32),
        memsz: word(40),
    }
}

/// `what` is wrong with the file, in the words of a refusal.
fn damaged(what: String) -> String {
    format!(
        "{what}: the file is damaged, or was read while it was being written (its \
         headers from one build, the rest from another)"
    )
}

#[cfg(test)]
mod tests {
    use super::super::check_bytes;
    use super::*;

    /// This test binary: a position-independent executable, which has a dynamic section
    /// as a library does.
    fn me() -> Option<Vec<u8>> {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        bytes.starts_with(b"\x7fELF").then_some(bytes)
    }

    /// Where `bytes`' dynamic section is in the file, and how long it is.
    fn dynamic_range(bytes: &[u8]) -> (usize, usize) {
        let word = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
        let (phoff, phentsize) = (
            word(0x20) as usize,
            u16::from_le_bytes([bytes[0x36], bytes[0x37]]),
        );
        let count = u16::from_le_bytes([bytes[0x38], bytes[0x39]]) as usize;
        let table = &bytes[phoff..phoff + count * phentsize as usize];
        let segments: Vec<Segment> = table
            .chunks_exact(phentsize as usize)
            .map(segment)
            .collect();
        let dynamic = segments.iter().find(|s| s.kind == PT_DYNAMIC).unwrap();
        (dynamic.offset as usize, dynamic.filesz as usize)
    }

    #[test]
    fn a_whole_file_passes() {
        let Some(bytes) = me() else { return };
        assert_eq!(check_bytes(&bytes), Ok(()));
    }

    /// The dynamic section written over with another build's bytes, as a file written in
    /// place and read halfway leaves it: code, zeros, or a table whose addresses lie
    /// elsewhere, each refused saying the file is damaged.
    #[test]
    fn a_dynamic_section_of_other_bytes_is_refused() {
        let Some(bytes) = me() else { return };
        let (start, len) = dynamic_range(&bytes);
        let code_at = bytes.len() / 3;
        let others: [Vec<u8>; 3] = [
            bytes[code_at..code_at + len].to_vec(),
            vec![0; len],
            // The table itself, its addresses moved 1 TiB away.
            bytes[start..start + len]
                .chunks_exact(16)
                .flat_map(|e| {
                    let tag = u64::from_le_bytes(e[..8].try_into().unwrap());
                    let value = u64::from_le_bytes(e[8..].try_into().unwrap());
                    let moved = if matches!(tag, DT_STRTAB | DT_SYMTAB | DT_GNU_HASH) {
                        value + (1 << 40)
                    } else {
                        value
                    };
                    [tag.to_le_bytes(), moved.to_le_bytes()].concat()
                })
                .collect(),
        ];
        for (i, other) in others.iter().enumerate() {
            let mut mixed = bytes.clone();
            mixed[start..start + len].copy_from_slice(other);
            let err = check_bytes(&mixed).unwrap_err();
            assert!(err.contains("the file is damaged"), "{i}: {err}");
        }
    }

    /// A needed library's name that starts past the string table, or runs to its end,
    /// is refused: the loader would read past the table.
    #[test]
    fn a_name_past_the_string_table_is_refused() {
        let Some(bytes) = me() else { return };
        let (start, len) = dynamic_range(&bytes);
        let strsz = bytes[start..start + len]
            .chunks_exact(16)
            .find(|e| u64::from_le_bytes(e[..8].try_into().unwrap()) == DT_STRSZ)
            .map(|e| u64::from_le_bytes(e[8..].try_into().unwrap()))
            .unwrap();
        let needed = (start..start + len)
            .step_by(16)
            .find(|&o| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) == DT_NEEDED)
            .expect("the test binary needs libc");
        for past in [strsz, strsz + 1000, u64::MAX] {
            let mut mixed = bytes.clone();
            mixed[needed + 8..needed + 16].copy_from_slice(&past.to_le_bytes());
            let err = check_bytes(&mixed).unwrap_err();
            assert!(
                err.contains("does not end inside the table"),
                "{past}: {err}"
            );
        }
    }
}
