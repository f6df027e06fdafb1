//! One process's directory under a proc root, opened once ([`super::ProcRoot::process`]).
//!
//! A pid names whichever process has it now: between the walk seeing a pid hold a socket and
//! its details being read, the process may exit and the pid go to another. A directory fd
//! opened once keeps naming the process it was opened for: once that process exits, reads
//! through it fail (`ESRCH`) rather than describe the newcomer. So a reader first asks, through
//! the directory, whether the process holds the socket ([`ProcessDir::holds`]), then reads the
//! rest through the same directory.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::StackPath;
use super::fds::parse_socket_link;

/// The directory `PID/` of one process, held as an `O_PATH` descriptor.
#[derive(Debug)]
pub struct ProcessDir {
    pid: u32,
    fd: OwnedFd,
}

/// Whether a process holds a socket through an fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// It does.
    Yes,
    /// It does not (any more): the fd was closed or reused, or the process is gone.
    No,
    /// Its fd links may not be read.
    Denied,
}

impl ProcessDir {
    /// The directory `fd` of process `pid` (opened through the root, never leaving it).
    pub(super) fn new(pid: u32, fd: OwnedFd) -> Self {
        ProcessDir { pid, fd }
    }

    /// The process's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The directory's descriptor, for files opened relative to it
    /// ([`super::ProcRoot::read_into`]).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether the process holds socket `inode` as `fd`, read through this directory: a
    /// `Yes` proves that what is read through it describes a holder of the socket.
    pub fn holds(&self, fd: u32, inode: u64) -> Hold {
        let path = StackPath::fd_link(fd);
        let mut link = [0u8; 64];
        match rustix::fs::readlinkat_raw(&self.fd, path.as_cstr(), &mut link[..]) {
            Ok(len) if parse_socket_link(&link[..len]) == Some(inode) => Hold::Yes,
            Ok(_) => Hold::No,
            Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => Hold::Denied,
            Err(_) => Hold::No,
        }
    }

    /// The target of the process's `exe` link, read through this directory; `None` when it
    /// may not be read (another user's process) or the process is gone.
    pub fn exe(&self) -> Option<Vec<u8>> {
        let target = rustix::fs::readlinkat(&self.fd, c"exe", Vec::new()).ok()?;
        Some(target.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;
    use std::path::Path;

    use super::*;
    use crate::sys::procroot::ProcRoot;

    #[test]
    fn holds_reads_the_fd_link_through_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("9/fd")).unwrap();
        std::os::unix::fs::symlink("socket:[42]", dir.path().join("9/fd/3")).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("9/fd/4")).unwrap();
        let nine = ProcRoot::open(dir.path()).unwrap().process(9).unwrap();
        assert_eq!(nine.pid(), 9);
        assert_eq!(nine.holds(3, 42), Hold::Yes);
        assert_eq!(nine.holds(3, 43), Hold::No, "another socket");
        assert_eq!(nine.holds(4, 42), Hold::No, "not a socket");
        assert_eq!(nine.holds(5, 42), Hold::No, "closed meanwhile");
        assert_eq!(nine.exe(), None, "a tree written by hand may lack it");
    }

    #[test]
    fn a_directory_opened_once_does_not_follow_the_pid_to_a_newcomer() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("7/fd")).unwrap();
        std::os::unix::fs::symlink("socket:[5]", dir.path().join("7/fd/3")).unwrap();
        let root = ProcRoot::open(dir.path()).unwrap();
        let seven = root.process(7).unwrap();
        // The process exits and another takes its pid (in a tree: the directory is replaced).
        std::fs::rename(dir.path().join("7"), dir.path().join("gone")).unwrap();
        std::fs::create_dir_all(dir.path().join("7/fd")).unwrap();
        std::os::unix::fs::symlink("socket:[6]", dir.path().join("7/fd/3")).unwrap();
        assert_eq!(
            seven.holds(3, 5),
            Hold::Yes,
            "still the process it was opened for"
        );
        assert_eq!(root.process(7).unwrap().holds(3, 5), Hold::No);
    }

    #[test]
    fn our_own_directory_gives_our_executable() {
        let root = ProcRoot::open(Path::new("/proc")).unwrap();
        let me = root.process(std::process::id()).unwrap();
        let exe = std::env::current_exe().unwrap().into_os_string().into_vec();
        assert_eq!(me.exe(), Some(exe));
        let gone = root.process(u32::MAX).unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ENOENT));
    }
}
