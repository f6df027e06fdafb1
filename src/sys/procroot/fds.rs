//! A process's `fd` directory, listed and its links read the fast way: entries come from
//! `getdents64` into one reused buffer (about 1,500 entries a call), each link is read with
//! `readlinkat` relative to the directory into a stack buffer. No path string, no allocation
//! per fd: on a busy host this loop is nearly all the time a listing takes.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::RawDir;
use rustix::io::Errno;

use super::canonical_u32;

/// A reusable buffer for directory entries.
#[derive(Debug)]
pub struct DentsBuffer(Vec<MaybeUninit<u8>>);

impl DentsBuffer {
    /// A buffer for the walk: one `getdents64` call reads ~1,500 fd entries.
    pub fn large() -> Self {
        Self::with_len(32 * 1024)
    }

    /// A buffer for a directory read once, or only its first entries.
    pub fn small() -> Self {
        Self::with_len(4096)
    }

    fn with_len(len: usize) -> Self {
        DentsBuffer(vec![MaybeUninit::uninit(); len])
    }

    /// The buffer, for `RawDir`.
    pub(super) fn as_uninit(&mut self) -> &mut [MaybeUninit<u8>] {
        &mut self.0
    }
}

/// What one fd refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdLink {
    /// A socket, by inode.
    Socket(u64),
    /// Anything else, or an fd closed between listing and reading it.
    Other,
    /// The link may not be read (another user's or a non-dumpable process).
    Denied,
}

/// The `PID/fd` directory of one process, opened to list ([`super::ProcRoot::fd_dir`]).
#[derive(Debug)]
pub struct FdDir {
    fd: OwnedFd,
}

impl FdDir {
    pub(super) fn new(fd: OwnedFd) -> Self {
        FdDir { fd }
    }

    /// Call `each` with every fd entry, in directory order, until it breaks: one pass, as the
    /// directory's offset moves on (hence `self`). Entries not named as `/proc` names fds
    /// (`.`, `..`, `03`) are skipped. An error is the listing's (`ENOENT` once the process is
    /// gone).
    pub fn entries(
        self,
        buffer: &mut DentsBuffer,
        mut each: impl FnMut(FdEntry<'_>) -> ControlFlow<()>,
    ) -> io::Result<()> {
        let dir = self.fd.as_fd();
        let mut entries = RawDir::new(dir, buffer.as_uninit());
        while let Some(entry) = entries.next() {
            let entry = entry?;
            let name = entry.file_name();
            if let Some(fd) = canonical_u32(name.to_bytes()) {
                if each(FdEntry { fd, name, dir }).is_break() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// One entry of an [`FdDir`]: an fd number and its link.
#[derive(Debug, Clone, Copy)]
pub struct FdEntry<'a> {
    /// The fd number.
    pub fd: u32,
    name: &'a CStr,
    dir: BorrowedFd<'a>,
}

impl FdEntry<'_> {
    /// What the fd refers to, read with `readlinkat`, never followed.
    pub fn link(&self) -> FdLink {
        let mut link = [0u8; 64];
        match rustix::fs::readlinkat_raw(self.dir, self.name, &mut link[..]) {
            Ok(len) => parse_socket_link(&link[..len]).map_or(FdLink::Other, FdLink::Socket),
            Err(errno) => link_error(errno),
        }
    }

    /// The whole target of the link, never followed.
    pub fn target(&self) -> io::Result<Vec<u8>> {
        super::read_link_at(self.dir, self.name)
    }
}

/// A failed `readlinkat`: permission errors mean unseen sockets, anything else (the fd or the
/// process is gone) means nothing to see.
fn link_error(errno: Errno) -> FdLink {
    match errno {
        Errno::ACCESS | Errno::PERM => FdLink::Denied,
        _ => FdLink::Other,
    }
}

/// Parse the target of an fd link: `socket:[12345]` gives 12345.
pub fn parse_socket_link(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sys::procroot::ProcRoot;

    #[test]
    fn socket_links_parse_and_others_do_not() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(
            parse_socket_link(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
        assert_eq!(parse_socket_link(b"socket:[18446744073709551616]"), None);
        assert_eq!(parse_socket_link(b"pipe:[12345]"), None);
        assert_eq!(parse_socket_link(b"/dev/null"), None);
        assert_eq!(parse_socket_link(b"socket:[]"), None);
        assert_eq!(parse_socket_link(b"socket:[12a]"), None);
        assert_eq!(parse_socket_link(b"socket:[12"), None);
    }

    #[test]
    fn unreadable_links_are_denied_and_vanished_ones_are_nothing() {
        assert_eq!(link_error(Errno::ACCESS), FdLink::Denied);
        assert_eq!(link_error(Errno::PERM), FdLink::Denied);
        assert_eq!(link_error(Errno::NOENT), FdLink::Other);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("9/fd")).unwrap();
        std::os::unix::fs::symlink("socket:[42]", dir.path().join("9/fd/3")).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("9/fd/4")).unwrap();
        let root = ProcRoot::open(dir.path()).unwrap();
        let mut links = Vec::new();
        let fds = root.fd_dir(9).unwrap();
        fds.entries(&mut DentsBuffer::small(), |entry| {
            links.push((entry.fd, entry.link()));
            ControlFlow::Continue(())
        })
        .unwrap();
        links.sort_unstable_by_key(|&(fd, _)| fd);
        assert_eq!(links, [(3, FdLink::Socket(42)), (4, FdLink::Other)]);
    }

    #[test]
    fn entries_are_the_fds_of_a_large_directory_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let fd_dir = dir.path().join("1/fd");
        std::fs::create_dir_all(&fd_dir).unwrap();
        // More than one getdents64 call's worth, and names /proc never writes.
        for fd in 0..5000 {
            std::os::unix::fs::symlink("/dev/null", fd_dir.join(fd.to_string())).unwrap();
        }
        for odd in ["03", "x", "-1", "4294967296"] {
            std::os::unix::fs::symlink("/dev/null", fd_dir.join(odd)).unwrap();
        }
        let root = ProcRoot::open(dir.path()).unwrap();
        let mut seen = Vec::new();
        let fds = root.fd_dir(1).unwrap();
        fds.entries(&mut DentsBuffer::small(), |entry| {
            assert_eq!(entry.target().unwrap(), b"/dev/null");
            seen.push(entry.fd);
            ControlFlow::Continue(())
        })
        .unwrap();
        seen.sort_unstable();
        assert_eq!(seen, (0..5000).collect::<Vec<u32>>());
        let mut first = 0;
        let fds = root.fd_dir(1).unwrap();
        fds.entries(&mut DentsBuffer::small(), |_| {
            first += 1;
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(first, 1, "stops when asked");
    }

    #[test]
    fn our_own_fds_include_our_socket() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let want = listener.as_raw_fd() as u32;
        let root = ProcRoot::open(Path::new("/proc")).unwrap();
        let fds = root.fd_dir(std::process::id()).unwrap();
        let mut found = None;
        fds.entries(&mut DentsBuffer::large(), |entry| {
            if entry.fd == want {
                found = Some(entry.link());
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(matches!(found, Some(FdLink::Socket(_))), "{found:?}");
    }
}
