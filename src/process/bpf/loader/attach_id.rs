//! The kernel's type id of each iterator function (`bpf_iter_task`, `bpf_iter_tcp`...), found by
//! one streaming pass over the raw BTF: the attach point a tracing program is loaded with.
//!
//! The id is a type's position in the kernel's BTF, so whoever finds it must walk every type
//! before it (types have no index; each one's length depends on its kind). aya does that by
//! parsing all of them into a vector of 72-byte `BtfType`s (4.6 MiB for the 64,000 ids below
//! `bpf_iter_task` here); this walk keeps nothing but the ids asked for: it reads each type's
//! fixed 12 bytes, skips its kind-specific data, and reads a name only where the type is a
//! FUNC whose name's first byte matches one wanted, so almost no string is ever touched. The
//! format's rules are [`crate::process::bpf::raw_btf`]'s, shared with the relocation digest.

use crate::process::bpf::raw_btf::kinds::FUNC;
use crate::process::bpf::raw_btf::{
    HeaderError, TYPE_LEN, VLEN_MASK, extra_len, fixed_part, kind, sections,
};

/// Why the raw BTF could not be scanned: the caller loads through aya instead, which parses it
/// for itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The data does not start with a BTF header in this machine's byte order.
    #[error("not BTF in native byte order (magic {0:#06x})")]
    Magic(u16),
    /// A BTF version this module does not know.
    #[error("unsupported BTF version {0}")]
    Version(u8),
    /// The header is short, or its sections lie outside the data.
    #[error("truncated BTF header or a section outside the data")]
    Header,
    /// A type runs past the end of the type section.
    #[error("BTF type {0} is truncated")]
    Truncated(u32),
    /// A type of a kind this module does not know the length of, so the ids after it are
    /// unknown.
    #[error("BTF type {id} has unknown kind {kind}")]
    UnknownKind {
        /// The type's id.
        id: u32,
        /// Its kind number.
        kind: u32,
    },
}

impl From<HeaderError> for ScanError {
    fn from(error: HeaderError) -> Self {
        match error {
            HeaderError::Magic(magic) => ScanError::Magic(magic),
            HeaderError::Version(version) => ScanError::Version(version),
            HeaderError::Header => ScanError::Header,
        }
    }
}

/// The type id of the first FUNC named like each of `names`, in their order (`None`: no such
/// function), in the raw BTF `raw` (native byte order, as `/sys/kernel/btf/vmlinux` is).
pub fn func_ids(raw: &[u8], names: &[&str]) -> Result<Vec<Option<u32>>, ScanError> {
    let (types, strings) = sections(raw)?;
    let mut ids = vec![None; names.len()];
    // Names are compared only where their first byte matches one wanted.
    let mut initials = [false; 256];
    for name in names.iter().filter_map(|name| name.as_bytes().first()) {
        initials[usize::from(*name)] = true;
    }
    let mut id: u32 = 0;
    let mut at = 0;
    while at < types.len() {
        id = id.checked_add(1).ok_or(ScanError::Header)?;
        let [name, info, _] = fixed_part(types, at).ok_or(ScanError::Truncated(id))?;
        let kind = kind(info);
        let extra = extra_len(kind, (info & VLEN_MASK) as usize)
            .ok_or(ScanError::UnknownKind { id, kind })?;
        if kind == FUNC {
            let initial = strings.get(name as usize).copied().unwrap_or(0);
            if initials[usize::from(initial)] {
                for (wanted, found) in names.iter().zip(ids.iter_mut()) {
                    if found.is_none() && name_is(strings, name, wanted) {
                        *found = Some(id);
                    }
                }
            }
        }
        at += TYPE_LEN + extra;
    }
    // The last type's kind-specific data must be there too.
    if at > types.len() {
        return Err(ScanError::Truncated(id));
    }
    Ok(ids)
}

/// Whether the NUL-terminated string at `offset` of `strings` is exactly `name` (never an empty
/// one: an unnamed type is no function anyone asks for).
fn name_is(strings: &[u8], offset: u32, name: &str) -> bool {
    !name.is_empty()
        && strings
            .get(offset as usize..)
            .and_then(|s| s.strip_prefix(name.as_bytes()))
            .is_some_and(|rest| rest.first() == Some(&0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::bpf::aya_workaround::btf_digest::tests::BtfBuilder;
    use aya::{Btf, Endianness};

    /// Every kind whose length the scan must get right, before `bpf_iter_task`: the id found is
    /// the position after all of them.
    fn every_kind() -> (Vec<u8>, u32, u32) {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let ptr = b.ptr(int);
        b.array(int, int, 4);
        b.composite(4, "task_struct", 8, &[("pid", int, 0), ("ptr", ptr, 32)]);
        b.composite(5, "", 8, &[("a", int, 0)]);
        b.enumeration("state", &["A", "B", "C"]);
        b.typedef("pid_t", int);
        b.constant(int);
        let proto = b.func_proto(int, &[("task", ptr), ("x", int)]);
        // A function whose name starts like the wanted one, then a struct named like it.
        b.func("bpf_iter_task_file_x", proto);
        b.composite(4, "bpf_iter_task", 0, &[]);
        let task = b.func("bpf_iter_task", proto);
        b.func("bpf_iter_task", proto);
        let file = b.func("bpf_iter_task_file", proto);
        (b.bytes(), task, file)
    }

    #[test]
    fn finds_each_function_at_its_id_as_aya_does() {
        let (raw, task, file) = every_kind();
        let names = ["bpf_iter_task", "bpf_iter_task_file", "bpf_iter_tcp", ""];
        assert_eq!(
            func_ids(&raw, &names),
            Ok(vec![Some(task), Some(file), None, None])
        );
        let btf = Btf::parse(&raw, Endianness::default()).unwrap();
        let kind = aya_obj::btf::BtfKind::Func;
        assert_eq!(
            btf.id_by_type_name_kind("bpf_iter_task", kind).unwrap(),
            task
        );
        assert_eq!(
            btf.id_by_type_name_kind("bpf_iter_task_file", kind)
                .unwrap(),
            file
        );
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let (raw, ..) = every_kind();
        let names = ["bpf_iter_task"];
        // Every truncation: a header or section cut short, or a type cut in two.
        for len in 0..raw.len() {
            let cut = func_ids(&raw[..len], &names);
            assert!(cut.is_err(), "length {len}: {cut:?}");
        }
        let mut swapped = raw.clone();
        swapped.swap(0, 1);
        assert!(matches!(
            func_ids(&swapped, &names),
            Err(ScanError::Magic(_))
        ));
        let mut version = raw.clone();
        version[2] = 2;
        assert_eq!(func_ids(&version, &names), Err(ScanError::Version(2)));
        // An unknown kind: the ids after it cannot be known.
        let mut b = BtfBuilder::new();
        b.int("int", 4);
        let mut unknown = b.bytes();
        unknown[24 + 7] = 20;
        assert_eq!(
            func_ids(&unknown, &names),
            Err(ScanError::UnknownKind { id: 1, kind: 20 })
        );
        // Every byte corrupted in a few ways: any outcome but a panic.
        for at in 0..raw.len() {
            for value in [0x00, 0x01, 0x13, 0x7f, 0x80, 0xff] {
                let mut bad = raw.clone();
                bad[at] = value;
                let _ = func_ids(&bad, &names);
            }
        }
        // Sections pointing past the data, or overflowing.
        let mut far = raw.clone();
        far[16..20].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(func_ids(&far, &names), Err(ScanError::Header));
    }

    #[test]
    fn the_live_kernel_btf_gives_the_ids_aya_finds() {
        let path = crate::process::bpf::BTF_PATH;
        let raw = match std::fs::read(path) {
            Ok(raw) => raw,
            // The CI kernel has BTF (its BPF iterators work): a missing one there is a failure.
            Err(e) if std::env::var_os("CI").is_some_and(|v| v == "true") => {
                panic!("cannot read {path} under CI: {e}")
            }
            Err(e) => {
                println!("SKIP: cannot read {path}: {e}");
                return;
            }
        };
        // Every attach point lsports loads a program at.
        let names = [
            "bpf_iter_task",
            "bpf_iter_task_file",
            "bpf_iter_tcp",
            "bpf_iter_udp",
        ];
        let ids = func_ids(&raw, &names).unwrap();
        let full = Btf::parse(&raw, Endianness::default()).unwrap();
        for (name, id) in names.iter().zip(ids) {
            let want = full
                .id_by_type_name_kind(name, aya_obj::btf::BtfKind::Func)
                .unwrap();
            assert_eq!(id, Some(want), "{name}");
        }
    }
}
