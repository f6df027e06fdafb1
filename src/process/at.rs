//! Files opened relative to a directory descriptor, by paths built on the stack: the fd walk
//! and the details reader open hundreds of thousands of `PID/…` paths under `/proc`, and
//! neither a path string per open nor a lookup of the proc root each time is worth paying.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A NUL-terminated relative path like `1234/fd` on the stack.
pub struct StackPath {
    bytes: [u8; 32],
    len: usize,
}

impl StackPath {
    /// `PID/name`, e.g. `1234/comm`. `name` is one of this crate's short constant names.
    pub fn pid_file(pid: u32, name: &[u8]) -> Self {
        let mut path = StackPath {
            bytes: [0; 32],
            len: 0,
        };
        path.push_u32(pid);
        path.push_bytes(b"/");
        path.push_bytes(name);
        path
    }

    /// A name relative to a process's own directory, e.g. `comm`.
    pub fn name(name: &[u8]) -> Self {
        let mut path = StackPath {
            bytes: [0; 32],
            len: 0,
        };
        path.push_bytes(name);
        path
    }

    /// `fd/FD`, one fd link relative to a process's own directory.
    pub fn fd_link(fd: u32) -> Self {
        let mut path = StackPath::name(b"fd/");
        path.push_u32(fd);
        path
    }

    /// Drop the last byte (the trailing `/` of `pid_file(pid, b"")`).
    pub fn pop(&mut self) {
        if self.len > 0 {
            self.len -= 1;
            self.bytes[self.len] = 0;
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        // At most 10 digits, a slash and a name of under 20 bytes: always fits with the NUL.
        let end = (self.len + bytes.len()).min(self.bytes.len() - 1);
        let take = end - self.len;
        self.bytes[self.len..end].copy_from_slice(&bytes[..take]);
        self.len = end;
    }

    fn push_u32(&mut self, value: u32) {
        let mut digits = [0u8; 10];
        let mut n = value;
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push_bytes(&digits[start..]);
    }

    /// The path as a C string.
    pub fn as_cstr(&self) -> &CStr {
        // The buffer is zeroed beyond `len`, and `len` < 32.
        CStr::from_bytes_until_nul(&self.bytes[..=self.len]).unwrap_or_default()
    }
}

/// Open the directory `path` relative to `dir`.
pub fn open_dir_at(dir: RawFd, path: &CStr) -> io::Result<OwnedFd> {
    open_at(
        dir,
        path,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
}

/// Open `path` relative to `dir` as a handle for further `*at` calls only (`O_PATH`): no
/// permission is needed to hold it, and it is cheaper than opening the directory to read.
pub fn open_path_at(dir: RawFd, path: &CStr) -> io::Result<OwnedFd> {
    open_at(
        dir,
        path,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
}

/// `readlinkat` `path` relative to `dir` into `buffer`: the length of the target (cut at the
/// buffer's length).
pub fn read_link_at(dir: RawFd, path: &CStr, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `path` is NUL-terminated and `buffer` is valid for writes of its length.
    let len =
        unsafe { libc::readlinkat(dir, path.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    usize::try_from(len).map_err(|_| io::Error::last_os_error())
}

/// Open the file `path` relative to `dir` for reading.
pub fn open_file_at(dir: RawFd, path: &CStr) -> io::Result<OwnedFd> {
    open_at(dir, path, libc::O_RDONLY | libc::O_CLOEXEC)
}

fn open_at(dir: RawFd, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the returned fd is owned by the OwnedFd below.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Read the whole of `path` under `dir` into `buffer` (cleared first; its allocation is kept
/// for the next file). Unlike `File::read_to_end`, no `statx` and `lseek` for a size hint:
/// proc files report a size of 0 anyway.
pub fn read_file_at(dir: RawFd, path: &CStr, buffer: &mut Vec<u8>) -> io::Result<()> {
    let mut file = File::from(open_file_at(dir, path)?);
    buffer.clear();
    loop {
        if buffer.capacity() - buffer.len() < 512 {
            buffer.reserve(4096);
        }
        let start = buffer.len();
        buffer.resize(buffer.capacity(), 0);
        let read = file.read(&mut buffer[start..]);
        buffer.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_paths_hold_any_pid_and_name() {
        assert_eq!(StackPath::pid_file(0, b"fd").as_cstr(), c"0/fd");
        assert_eq!(
            StackPath::pid_file(u32::MAX, b"cmdline").as_cstr(),
            c"4294967295/cmdline"
        );
        // Too long is cut, never a panic.
        let long = StackPath::pid_file(u32::MAX, &[b'x'; 40]);
        assert_eq!(long.as_cstr().to_bytes().len(), 31);
    }

    #[test]
    fn whole_files_are_read_whatever_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::create_dir(dir.path().join("7")).unwrap();
        std::fs::write(dir.path().join("7/big"), &big).unwrap();
        std::fs::write(dir.path().join("7/empty"), b"").unwrap();
        let root = File::open(dir.path()).unwrap();
        let root = std::os::fd::AsRawFd::as_raw_fd(&root);
        let mut buffer = Vec::new();
        read_file_at(root, StackPath::pid_file(7, b"big").as_cstr(), &mut buffer).unwrap();
        assert_eq!(buffer, big);
        read_file_at(
            root,
            StackPath::pid_file(7, b"empty").as_cstr(),
            &mut buffer,
        )
        .unwrap();
        assert!(buffer.is_empty());
        let missing = read_file_at(root, StackPath::pid_file(8, b"big").as_cstr(), &mut buffer);
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
