//! The binary is linked with the code a listing runs first (`link/hotcode.ld`, passed to the
//! linker by `build.rs`; README, "The binary's pages"): the functions it names lie together in
//! a `.text.hot` section before the rest of the code, whatever the build's symbol hashes.

use std::path::Path;

/// An ELF64 section: name, address, size, file offset, entry size, linked section.
struct Section {
    name: String,
    addr: u64,
    size: u64,
    offset: u64,
    entsize: u64,
    link: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn c_str(b: &[u8], at: usize) -> String {
    let end = b[at..].iter().position(|&c| c == 0).unwrap() + at;
    String::from_utf8_lossy(&b[at..end]).into_owned()
}

/// The sections of a little-endian ELF64 file.
fn sections(elf: &[u8]) -> Vec<Section> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    let (shoff, shentsize) = (u64_at(elf, 0x28) as usize, u16_at(elf, 0x3a) as usize);
    let (shnum, shstrndx) = (u16_at(elf, 0x3c) as usize, u16_at(elf, 0x3e) as usize);
    let raw: Vec<(u32, Section)> = (0..shnum)
        .map(|i| {
            let h = shoff + i * shentsize;
            let section = Section {
                name: String::new(),
                addr: u64_at(elf, h + 0x10),
                offset: u64_at(elf, h + 0x18),
                size: u64_at(elf, h + 0x20),
                link: u32_at(elf, h + 0x28),
                entsize: u64_at(elf, h + 0x38),
            };
            (u32_at(elf, h), section)
        })
        .collect();
    let names = raw[shstrndx].1.offset as usize;
    raw.into_iter()
        .map(|(name, mut s)| {
            s.name = c_str(elf, names + name as usize);
            s
        })
        .collect()
}

/// The addresses of the symbols whose names `wanted` accepts, from `.symtab`.
fn symbols(elf: &[u8], all: &[Section], wanted: impl Fn(&str) -> bool) -> Vec<(String, u64)> {
    let symtab = all.iter().find(|s| s.name == ".symtab").expect(".symtab");
    let strtab = all[symtab.link as usize].offset as usize;
    (0..symtab.size / symtab.entsize)
        .map(|i| (symtab.offset + i * symtab.entsize) as usize)
        .map(|at| {
            (
                c_str(elf, strtab + u32_at(elf, at) as usize),
                u64_at(elf, at + 8),
            )
        })
        .filter(|(name, _)| wanted(name))
        .collect()
}

#[test]
fn the_listing_code_is_linked_first() {
    if std::env::var_os("LSPORTS_NO_HOTCODE").is_some_and(|v| !v.is_empty() && v != "0") {
        eprintln!("SKIP: built with LSPORTS_NO_HOTCODE (the compiler's own layout)");
        return;
    }
    let elf = std::fs::read(env!("CARGO_BIN_EXE_lsports")).unwrap();
    let all = sections(&elf);
    let hot = all.iter().find(|s| s.name == ".text.hot");
    let hot = hot.expect("no .text.hot section: build.rs did not pass link/hotcode.ld");
    let text = all.iter().find(|s| s.name == ".text").expect(".text");
    assert!(
        hot.size >= 64 * 1024,
        ".text.hot holds only {} bytes",
        hot.size
    );
    assert!(hot.addr < text.addr, ".text.hot is not before .text");
    // Named by hash-less patterns: found whatever hashes this build gave them.
    let inside = |addr: u64| (hot.addr..hot.addr + hot.size).contains(&addr);
    for name in [
        "main",
        "_ZN7lsports7actions3run17h",
        "_ZN7lsports8pipeline6gather17h",
    ] {
        let found = symbols(&elf, &all, |s| {
            s == name || (name.ends_with("17h") && s.starts_with(name))
        });
        assert!(!found.is_empty(), "no symbol {name} in the binary");
        for (symbol, addr) in found {
            assert!(inside(addr), "{symbol} at {addr:#x} is outside .text.hot");
        }
    }
}

/// Every line of the script is an input-section pattern for one function, so a pattern the
/// generator got wrong (or a hand edit) cannot pull in whole files or other sections.
#[test]
fn the_script_names_only_function_sections() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/hotcode.ld");
    let script = std::fs::read_to_string(&path).unwrap();
    assert!(
        script.contains(".text.hot :"),
        "no .text.hot output section"
    );
    assert!(
        script.trim_end().ends_with("INSERT BEFORE .text;"),
        "the script must INSERT"
    );
    let patterns: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("*("))
        .collect();
    assert!(patterns.len() > 100, "only {} patterns", patterns.len());
    for line in patterns {
        let inner = line.strip_prefix("*(").and_then(|l| l.strip_suffix(')'));
        let inner = inner.unwrap_or_else(|| panic!("malformed pattern line: {line}"));
        for pattern in inner.split(' ') {
            let name = pattern
                .strip_prefix(".text.unlikely.")
                .or_else(|| pattern.strip_prefix(".text."))
                .unwrap_or_else(|| panic!("{pattern}: not a function section"));
            assert!(
                name.len() > 3 && !name.starts_with('*'),
                "{pattern}: matches any function"
            );
        }
    }
}
