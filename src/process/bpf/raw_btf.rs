//! The kernel's raw BTF (`/sys/kernel/btf/vmlinux`), read once for the attach-id scan and the
//! relocation digest: mapped where the kernel allows it, read otherwise; and the format's
//! few rules both readers share ([`sections`], [`fixed_part`], [`extra_len`]), so the two walk
//! the types the same way.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

use super::BTF_PATH;

/// The kernel's raw BTF: mapped where the kernel allows it (Linux 6.16 and later map the BTF
/// itself, read-only: no copy, none of sysfs' 4 KiB reads, and no memory of this process),
/// otherwise read once into a buffer of its size.
pub(crate) enum RawBtf {
    /// Mapped: the kernel's own pages.
    Mapped(Mapping),
    /// Read into a buffer of its size.
    Read(Vec<u8>),
}

impl RawBtf {
    /// Open the kernel's BTF at [`BTF_PATH`].
    pub(crate) fn open() -> std::io::Result<RawBtf> {
        let mut file = File::open(BTF_PATH)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::from(ErrorKind::InvalidData))?;
        if let Some(mapping) = Mapping::new(&file, len) {
            return Ok(RawBtf::Mapped(mapping));
        }
        let mut bytes = Vec::with_capacity(len);
        file.read_to_end(&mut bytes)?;
        Ok(RawBtf::Read(bytes))
    }

    /// The whole BTF.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            RawBtf::Mapped(mapping) => mapping.bytes(),
            RawBtf::Read(bytes) => bytes,
        }
    }
}

/// A read-only private mapping of a whole file, unmapped on drop.
pub(crate) struct Mapping {
    start: NonNull<libc::c_void>,
    len: usize,
}

impl Mapping {
    /// Map `len` bytes of `file`, or `None` where the file cannot be mapped (older kernels).
    fn new(file: &File, len: usize) -> Option<Mapping> {
        if len == 0 {
            return None;
        }
        // SAFETY: a new read-only mapping at an address the kernel picks (null hint), so it
        // overlaps no existing memory; `file` is an open descriptor for the whole call.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(start).map(|start| Mapping { start, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` readable bytes from `start` stay mapped until `drop`, which the borrow
        // of `self` outlasts; the kernel's BTF never changes (unlike a regular file's pages,
        // which a truncation could take away under a mapping).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`; no slice of it outlives `self`.
        unsafe {
            libc::munmap(self.start.as_ptr(), self.len);
        }
    }
}

/// Magic number of BTF data in this machine's byte order (the kernel's is always native).
pub(crate) const MAGIC: u16 = 0xeb9f;
/// The only BTF version there is.
pub(crate) const VERSION: u8 = 1;
/// The smallest header there is (`struct btf_header`, up to `str_len`).
pub(crate) const HEADER_LEN: usize = 24;
/// Size of the fixed part of every type (`struct btf_type`).
pub(crate) const TYPE_LEN: usize = 12;
/// The `vlen` bits of a type's `info`: member, variant or parameter count.
pub(crate) const VLEN_MASK: u32 = 0xffff;

/// BTF kinds (`BTF_KIND_*` in the kernel's uapi `btf.h`).
pub(crate) mod kinds {
    pub(crate) const INT: u32 = 1;
    pub(crate) const PTR: u32 = 2;
    pub(crate) const ARRAY: u32 = 3;
    pub(crate) const STRUCT: u32 = 4;
    pub(crate) const UNION: u32 = 5;
    pub(crate) const ENUM: u32 = 6;
    pub(crate) const FWD: u32 = 7;
    pub(crate) const TYPEDEF: u32 = 8;
    pub(crate) const VOLATILE: u32 = 9;
    pub(crate) const CONST: u32 = 10;
    pub(crate) const RESTRICT: u32 = 11;
    pub(crate) const FUNC: u32 = 12;
    pub(crate) const FUNC_PROTO: u32 = 13;
    pub(crate) const VAR: u32 = 14;
    pub(crate) const DATASEC: u32 = 15;
    pub(crate) const FLOAT: u32 = 16;
    pub(crate) const DECL_TAG: u32 = 17;
    pub(crate) const TYPE_TAG: u32 = 18;
    pub(crate) const ENUM64: u32 = 19;
}

/// Why BTF data's sections could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// The data does not start with a BTF header in this machine's byte order.
    Magic(u16),
    /// A BTF version neither reader knows.
    Version(u8),
    /// The header is short, or its sections lie outside the data.
    Header,
}

/// The type and string sections of `raw`, after checking its header.
pub(crate) fn sections(raw: &[u8]) -> Result<(&[u8], &[u8]), HeaderError> {
    let magic = raw
        .get(..2)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .ok_or(HeaderError::Header)?;
    if magic != MAGIC {
        return Err(HeaderError::Magic(magic));
    }
    let version = *raw.get(2).ok_or(HeaderError::Header)?;
    if version != VERSION {
        return Err(HeaderError::Version(version));
    }
    let word = |at| {
        read_u32(raw, at)
            .map(|w| w as usize)
            .ok_or(HeaderError::Header)
    };
    let header_len = word(4)?;
    if header_len < HEADER_LEN {
        return Err(HeaderError::Header);
    }
    let section = |off: usize, len: usize| {
        let start = header_len.checked_add(off).ok_or(HeaderError::Header)?;
        let end = start.checked_add(len).ok_or(HeaderError::Header)?;
        raw.get(start..end).ok_or(HeaderError::Header)
    };
    Ok((
        section(word(8)?, word(12)?)?,
        section(word(16)?, word(20)?)?,
    ))
}

/// The kind bits of a type's `info`.
pub(crate) fn kind(info: u32) -> u32 {
    (info >> 24) & 0x1f
}

/// The three words every type starts with (name, info, size or type), at byte `at`.
pub(crate) fn fixed_part(types: &[u8], at: usize) -> Option<[u32; 3]> {
    let bytes: &[u8; TYPE_LEN] = types.get(at..at.checked_add(TYPE_LEN)?)?.try_into().ok()?;
    let word = |i: usize| u32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some([word(0), word(4), word(8)])
}

/// Bytes of kind-specific data after the fixed part of a type of `kind` with `vlen` entries
/// (the kernel's `btf_type_size`), or `None` for a kind neither reader knows. Kind 0 is no
/// kind the kernel writes, and aya refuses it: so do they.
pub(crate) fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    use kinds::*;
    Some(match kind {
        INT | VAR | DECL_TAG => 4,
        ARRAY => 12,
        STRUCT | UNION | DATASEC | ENUM64 => 12 * vlen,
        ENUM | FUNC_PROTO => 8 * vlen,
        PTR | FWD | TYPEDEF | VOLATILE | CONST | RESTRICT | FUNC | FLOAT | TYPE_TAG => 0,
        _ => return None,
    })
}

/// A native-endian `u32` at byte `at`, if all four bytes are there.
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    bytes.get(at..end)?.try_into().ok().map(u32::from_ne_bytes)
}
