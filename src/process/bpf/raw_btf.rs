//! The kernel's raw BTF (`/sys/kernel/btf/vmlinux`), read once for the attach-id scan and the
//! relocation digest: mapped where the kernel allows it, read otherwise.

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
