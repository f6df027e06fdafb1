//! Reading a proc tree for capture without ever leaving it.
//!
//! Everything is opened relative to one directory fd with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)`: relative symlinks that stay inside (`/proc/net` -> `self/net`) are
//! fine, while an absolute or `..` link, or a magic link like `fd/3` or `cwd`, is refused by the
//! kernel. fd links are only ever read with `readlinkat`, never opened. On kernels without
//! openat2 (before 5.6) the file is opened and then checked to lie under the root.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2, readlinkat};

/// A proc tree opened for capture.
pub struct ProcTree {
    root: OwnedFd,
    canonical: PathBuf,
}

impl ProcTree {
    /// Open the tree rooted at `path`.
    pub fn open(path: &Path) -> io::Result<ProcTree> {
        let root = File::open(path)?;
        if !root.metadata()?.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(ProcTree {
            root: OwnedFd::from(root),
            canonical: std::fs::canonicalize(path)?,
        })
    }

    /// The whole content of the file at `rel` (relative to the root).
    /// Opened without blocking and read only if it is a regular file: a FIFO (or a device)
    /// planted in a proc root would otherwise hang the capture forever.
    pub fn read_file(&self, rel: &str) -> io::Result<Vec<u8>> {
        let fd = self.open_beneath(rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let mut file = File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel} is not a regular file"),
            ));
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        Ok(data)
    }

    /// Process ids: the numeric entries of the root, sorted.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let names = self.list_dir(".")?;
        let mut pids: Vec<u32> = names
            .iter()
            .filter_map(|n| super::layout::canonical_u32(n))
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// The fds of `pid` with their link targets, sorted by fd. An fd closed while listing is
    /// left out.
    pub fn fd_links(&self, pid: u32) -> io::Result<Vec<(u32, Vec<u8>)>> {
        let dir_path = format!("{pid}/fd");
        let dir = self.open_beneath(&dir_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let mut links = Vec::new();
        for name in read_names(dir.try_clone()?)? {
            let Some(fd) = super::layout::canonical_u32(&name) else {
                continue;
            };
            match readlinkat(Some(dir.as_raw_fd()), OsStr::from_bytes(&name)) {
                Ok(target) => links.push((fd, target.into_vec())),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        links.sort_unstable();
        Ok(links)
    }

    /// The target of the link `name` in the directory of `pid` (like `exe`), read with
    /// `readlinkat` relative to that directory: the link itself is never followed.
    pub fn process_link(&self, pid: u32, name: &str) -> io::Result<Vec<u8>> {
        let dir = self.open_beneath(&pid.to_string(), OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let target = readlinkat(Some(dir.as_raw_fd()), name)?;
        Ok(target.into_vec())
    }

    /// Whether the process directory of `pid` still exists.
    pub fn has_process(&self, pid: u32) -> bool {
        self.open_beneath(&pid.to_string(), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .is_ok()
    }

    fn list_dir(&self, rel: &str) -> io::Result<Vec<Vec<u8>>> {
        let fd = self.open_beneath(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        read_names(fd)
    }

    fn open_beneath(&self, rel: &str, flags: OFlag) -> io::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match openat2(self.root.as_raw_fd(), rel, how) {
            // SAFETY: a fresh descriptor that nothing else owns.
            Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            // No openat2 (old kernel, or a seccomp filter that does not know it).
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => self.open_checked(rel, flags),
            Err(e) => Err(e.into()),
        }
    }

    /// The fallback: open normally, then make sure the file opened lies under the root.
    fn open_checked(&self, rel: &str, flags: OFlag) -> io::Result<OwnedFd> {
        let fd = nix::fcntl::openat(
            Some(self.root.as_raw_fd()),
            rel,
            flags | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        // SAFETY: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        if real.starts_with(&self.canonical) {
            Ok(fd)
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{rel} leads outside the proc root, to {}", real.display()),
            ))
        }
    }
}

/// Entry names of an open directory, without `.` and `..`.
fn read_names(fd: OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut dir = Dir::from(fd)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name: &CStr = entry.file_name();
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(bytes.to_vec());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_through_its_relative_link() {
        let tree = ProcTree::open(Path::new("/proc")).unwrap();
        let tcp = tree.read_file("net/tcp").unwrap();
        assert!(tcp.starts_with(b"  sl"));
        assert!(tree.pids().unwrap().contains(&std::process::id()));
    }

    #[test]
    fn refuses_links_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("1/fd")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("net")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("1/comm")).unwrap();
        std::os::unix::fs::symlink("socket:[9]", root.join("1/fd/3")).unwrap();
        let tree = ProcTree::open(&root).unwrap();
        assert!(tree.read_file("net/passwd").is_err());
        assert!(tree.read_file("1/comm").is_err());
        assert_eq!(tree.fd_links(1).unwrap(), vec![(3, b"socket:[9]".to_vec())]);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("net")).unwrap();
        let fifo = dir.path().join("net/tcp");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let tree = ProcTree::open(dir.path()).unwrap();
        let error = tree.read_file("net/tcp").unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    #[test]
    fn magic_links_are_never_followed() {
        let tree = ProcTree::open(Path::new("/proc")).unwrap();
        let me = std::process::id();
        assert!(tree.read_file(&format!("{me}/root/etc/hostname")).is_err());
        let links = tree.fd_links(me).unwrap();
        assert!(!links.is_empty());
        let exe = tree.process_link(me, "exe").unwrap();
        assert_eq!(
            exe,
            std::env::current_exe().unwrap().into_os_string().into_vec()
        );
    }
}
