//! The one way into a proc root — the live `/proc`, a fixture tree or an unpacked snapshot —
//! for every reader: the fd walk, process details, executables, the `/proc/net` tables, the
//! few sysctls read, and capture.
//!
//! A proc root given with `--proc-root` is a tree anyone may have written, so nothing under it
//! is trusted:
//!
//! - Everything is opened relative to one directory fd with `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_MAGICLINKS)`. Relative symlinks that stay inside are followed, because the
//!   kernel puts two in every `/proc` (`net -> self/net`, `self -> PID`); an absolute or `..`
//!   link that would leave the root, and a magic link (`PID/root`, `PID/cwd`, `PID/fd/N`), are
//!   refused by the kernel itself. The links a reader needs (`fd/N`, `exe`, `self`) are read
//!   with `readlinkat`, never opened.
//! - Files are opened with `O_NONBLOCK` and read only if they are regular files: `open(2)` of
//!   a FIFO waits for a writer forever, and a device can be read forever.
//!
//! On kernels without openat2 (before 5.6, or under a seccomp filter that does not know it)
//! a file is opened normally, still without blocking, and then checked to lie under the root.

//!
//! The layer has four parts: [`ProcRoot`] (this file: the root, files, links, pid lists),
//! [`ProcessDir`] (one process's directory, opened once: what is read through it is of the
//! process that had the pid then), [`FdDir`] (a process's `fd` directory, for the walk) and
//! [`StackPath`] (`PID/name` paths built on the stack). Every descriptor is an `OwnedFd` or a
//! `BorrowedFd`, and every syscall goes through rustix: no `unsafe` here.

mod fds;
mod path;
mod process;

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::fs::{Mode, OFlags, RawDir, ResolveFlags};
use rustix::io::Errno;
use rustix::path::Arg;

pub use fds::{DentsBuffer, FdDir, FdEntry, FdLink, parse_socket_link};
pub use path::StackPath;
pub use process::{Hold, ProcessDir};

/// Whether this kernel has openat2: probed once per process.
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);
const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;

/// An opened proc root.
#[derive(Debug)]
pub struct ProcRoot {
    root: OwnedFd,
    path: PathBuf,
    /// Only where openat2 is missing: the root's real path, under which every file opened
    /// must lie.
    confined_to: Option<PathBuf>,
}

impl ProcRoot {
    /// Open the tree rooted at `path` (which must be a directory), with the invoking user's
    /// rights (see [`crate::sys::privilege::as_invoker`]): what lies under it is read with
    /// whatever capabilities lsports has, as `/proc` needs, but the user must be able to
    /// open the root itself.
    pub fn open(path: &Path) -> io::Result<ProcRoot> {
        // O_DIRECTORY: a FIFO given as the root fails at once rather than blocking.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = crate::sys::privilege::as_invoker(|| {
            Ok(rustix::fs::open(path, flags, Mode::empty())?)
        })?;
        let confined_to = if has_openat2(root.as_fd()) {
            None
        } else {
            Some(real_path(root.as_fd())?)
        };
        Ok(ProcRoot {
            root,
            path: path.to_path_buf(),
            confined_to,
        })
    }

    /// The same tree with nothing mounted inside it: a private copy of the mount the root is
    /// on, detached from every mount namespace, made with `open_tree(OPEN_TREE_CLONE)`
    /// without `AT_RECURSIVE`, so that its submounts are left behind. A mount over
    /// `/proc/PID` hides that process from every reader of `/proc`; through this copy its
    /// directory is the kernel's again. The copy vanishes when the returned root is dropped:
    /// nothing is mounted anywhere, nothing is left behind.
    ///
    /// Needs `CAP_SYS_ADMIN` (`EPERM` without). In a mount namespace of a user namespace, the
    /// kernel refuses to copy a mount whose submounts it locked there (`EINVAL`): what they
    /// cover stays covered for whoever could not unmount them. Before Linux 5.2, `ENOSYS`.
    pub fn without_submounts(&self) -> io::Result<ProcRoot> {
        use rustix::mount::OpenTreeFlags;
        let flags = OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH;
        let root = rustix::mount::open_tree(self.root.as_fd(), "", flags)?;
        let confined_to = match self.confined_to {
            None => None,
            Some(_) => Some(real_path(root.as_fd())?),
        };
        Ok(ProcRoot {
            root,
            path: self.path.clone(),
            confined_to,
        })
    }

    /// The path the root was opened at, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root's directory descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Open `rel` relative to `dir` (a directory opened through this root), or to the root
    /// when `dir` is `None`, with `flags`, never leaving the root nor following a magic link.
    /// Errors keep the kernel's errno: `ENOENT` for a process gone, `EXDEV` for a link that
    /// leads outside, `ELOOP` for a magic link.
    pub fn open_at<P: Arg>(
        &self,
        dir: Option<BorrowedFd<'_>>,
        rel: P,
        flags: OFlags,
    ) -> io::Result<OwnedFd> {
        let dir = dir.unwrap_or(self.root.as_fd());
        let flags = flags | OFlags::CLOEXEC;
        let Some(confined_to) = &self.confined_to else {
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            return Ok(rustix::fs::openat2(
                dir,
                rel,
                flags,
                Mode::empty(),
                resolve,
            )?);
        };
        let fd = rustix::fs::openat(dir, rel, flags, Mode::empty())?;
        if real_path(fd.as_fd())?.starts_with(confined_to) {
            Ok(fd)
        } else {
            Err(Errno::XDEV.into())
        }
    }

    /// Open the directory `rel` for reading its entries.
    pub fn open_dir<P: Arg>(&self, rel: P) -> io::Result<OwnedFd> {
        self.open_at(None, rel, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    /// Open the directory `rel` as a handle for `*at` calls only (`O_PATH`): no permission is
    /// needed to hold it, and it is cheaper than opening the directory to read.
    pub fn open_dir_path<P: Arg>(&self, rel: P) -> io::Result<OwnedFd> {
        self.open_at(None, rel, OFlags::PATH | OFlags::DIRECTORY)
    }

    /// The directory of `pid`, opened once (see [`ProcessDir`]). `ENOENT` when there is no
    /// such process.
    pub fn process(&self, pid: u32) -> io::Result<ProcessDir> {
        let fd = self.open_dir_path(StackPath::pid(pid).as_cstr())?;
        Ok(ProcessDir::new(pid, fd))
    }

    /// The `fd` directory of `pid`, opened to list (see [`FdDir`]).
    pub fn fd_dir(&self, pid: u32) -> io::Result<FdDir> {
        let fd = self.open_dir(StackPath::pid_file(pid, b"fd").as_cstr())?;
        Ok(FdDir::new(fd))
    }

    /// The `fd` directory of the process of `dir`, opened to list: its links are that
    /// process's, whoever has its pid by now.
    pub fn fd_dir_of(&self, dir: &ProcessDir) -> io::Result<FdDir> {
        let fd = self.open_at(Some(dir.fd()), c"fd", OFlags::RDONLY | OFlags::DIRECTORY)?;
        Ok(FdDir::new(fd))
    }

    /// Open the regular file `rel` under `dir` (see [`ProcRoot::open_at`]) for reading,
    /// without blocking; anything but a regular file is refused with
    /// [`io::ErrorKind::InvalidInput`] naming what it is.
    pub fn open_file_in<P: Arg>(&self, dir: Option<BorrowedFd<'_>>, rel: P) -> io::Result<File> {
        let file = File::from(self.open_at(dir, rel, OFlags::RDONLY | OFlags::NONBLOCK)?);
        let kind = file.metadata()?.file_type();
        if kind.is_file() {
            Ok(file)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}, not a regular file", file_kind(kind)),
            ))
        }
    }

    /// Read the whole of `rel` under `dir` into `buffer` (cleared first; its allocation is
    /// kept for the next file), as [`ProcRoot::open_file_in`] opens it: a process's file, at
    /// most [`MAX_PROCESS_FILE`] (a larger one is refused with [`io::ErrorKind::FileTooLarge`]
    /// once that much is read). Errors keep the kernel's errno, for the callers that tell a
    /// process gone from one refused.
    pub fn read_into<P: Arg>(
        &self,
        dir: Option<BorrowedFd<'_>>,
        rel: P,
        buffer: &mut Vec<u8>,
    ) -> io::Result<()> {
        let file = self.open_file_in(dir, rel)?;
        read_all(file, buffer, MAX_PROCESS_FILE)
    }

    /// Open the regular file at `rel` (relative to the root) for reading. Errors say, in
    /// words, why a file was refused.
    pub fn open_file(&self, rel: &str) -> io::Result<File> {
        self.open_file_in(None, rel).map_err(explain)
    }

    /// The whole content of the regular file at `rel` (relative to the root). Errors say, in
    /// words, why a file was refused.
    /// At most [`MAX_TABLE_FILE`], as the snapshot reader's tables.
    pub fn read_file(&self, rel: &str) -> io::Result<Vec<u8>> {
        let mut data = Vec::new();
        let file = self.open_file_in(None, rel).map_err(explain)?;
        read_all(file, &mut data, MAX_TABLE_FILE).map_err(explain)?;
        Ok(data)
    }

    /// The target of the link `rel` (relative to the root), read, never followed.
    pub fn read_link(&self, rel: &str) -> io::Result<Vec<u8>> {
        read_link_at(self.root.as_fd(), rel)
    }

    /// The target of the link `name` in the directory `rel` (opened through this root, so
    /// `rel` may not leave it), read, never followed: for magic links like `self/ns/pid`.
    pub fn read_link_in(&self, rel: &str, name: &str) -> io::Result<Vec<u8>> {
        let dir = self.open_dir_path(rel)?;
        read_link_at(dir.as_fd(), name)
    }

    /// Process ids: the entries of the root named as `/proc` names them, sorted.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let names = read_names(self.open_dir(".")?)?;
        let mut pids: Vec<u32> = names.iter().filter_map(|n| canonical_u32(n)).collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// The fds of `pid` with their link targets, sorted by fd. An fd closed while listing is
    /// left out.
    pub fn fd_links(&self, pid: u32) -> io::Result<Vec<(u32, Vec<u8>)>> {
        let dir = self.fd_dir(pid)?;
        let mut links = Vec::new();
        let mut failed = None;
        dir.entries(&mut DentsBuffer::small(), |entry| {
            match entry.target() {
                Ok(target) => links.push((entry.fd, target)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => {
                    failed = Some(e);
                    return std::ops::ControlFlow::Break(());
                }
            }
            std::ops::ControlFlow::Continue(())
        })?;
        if let Some(error) = failed {
            return Err(error);
        }
        links.sort_unstable();
        Ok(links)
    }

    /// The target of the link `name` in the directory of `pid` (like `exe`), read with
    /// `readlinkat` relative to that directory: the link itself is never followed.
    pub fn process_link(&self, pid: u32, name: &str) -> io::Result<Vec<u8>> {
        read_link_at(self.process(pid)?.fd(), name)
    }

    /// Whether the process directory of `pid` still exists.
    pub fn has_process(&self, pid: u32) -> bool {
        self.process(pid).is_ok()
    }
}

/// The whole target of the link `name` under `dir`, never followed.
fn read_link_at<P: Arg>(dir: BorrowedFd<'_>, name: P) -> io::Result<Vec<u8>> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(target.into_bytes())
}

/// Whether openat2 works here, probed on `root` the first time it is asked.
fn has_openat2(root: BorrowedFd<'_>) -> bool {
    match OPENAT2.load(Ordering::Relaxed) {
        OPENAT2_YES => return true,
        OPENAT2_NO => return false,
        _ => {}
    }
    // ENOSYS: a kernel before 5.6; EPERM: a seccomp filter that predates the call. Any other
    // outcome means the call itself exists.
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let works = match rustix::fs::openat2(root, ".", flags, Mode::empty(), ResolveFlags::BENEATH) {
        Ok(_) => true,
        Err(errno) => !matches!(errno, Errno::NOSYS | Errno::PERM),
    };
    OPENAT2.store(
        if works { OPENAT2_YES } else { OPENAT2_NO },
        Ordering::Relaxed,
    );
    works
}

/// Where the open file `fd` really is.
fn real_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The most read of one process's file (`comm`, `cmdline`, `status`, `stat`), as the snapshot
/// reader allows: the kernel's are a few KiB (a command line at most the argument space, a few
/// MiB), so more is a copied tree's doing (`--proc-root`), read no further than this.
pub const MAX_PROCESS_FILE: u64 = 16 << 20;
/// The most read of one file named from the root (a socket table, `mountinfo`), as the
/// snapshot reader allows tables: 256 MiB is over a million sockets.
pub const MAX_TABLE_FILE: u64 = 256 << 20;

/// The whole of `file` into `buffer`, at most `limit` bytes (more is
/// [`io::ErrorKind::FileTooLarge`]). Unlike `File::read_to_end`, no `statx` and `lseek` for a
/// size hint: proc files report a size of 0 anyway.
fn read_all(file: File, buffer: &mut Vec<u8>, limit: u64) -> io::Result<()> {
    buffer.clear();
    let mut file = file.take(limit + 1);
    loop {
        if buffer.len() as u64 > limit {
            buffer.clear();
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "larger than {} MiB, the most lsports reads of it",
                    limit >> 20
                ),
            ));
        }
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

/// What a file that is not a regular file is, for messages.
fn file_kind(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// The refusals of [`ProcRoot::open_at`] in words; other errors as they are. The errno is
/// lost, so only for callers that show the error rather than act on it.
fn explain(error: io::Error) -> io::Error {
    let why = match error.raw_os_error() {
        Some(libc::EXDEV) => "a symbolic link or `..` leads outside the proc root (refused)",
        Some(libc::ELOOP) => {
            "reached through a magic link (like PID/root) or a loop of links (refused)"
        }
        _ => return error,
    };
    io::Error::new(io::ErrorKind::PermissionDenied, why)
}

/// A decimal u32 written the way `/proc` writes it: no sign, no leading zero (`0042` is not
/// the directory of pid 42).
pub fn canonical_u32(text: &[u8]) -> Option<u32> {
    if text.is_empty() || (text.len() > 1 && text[0] == b'0') {
        return None;
    }
    // Folded by hand: the walk calls this for every fd on the host.
    text.iter().try_fold(0u32, |acc, &b| {
        let digit = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// Entry names of an open directory, without `.` and `..`.
fn read_names(fd: OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut buffer = DentsBuffer::small();
    let mut entries = RawDir::new(&fd, buffer.as_uninit());
    let mut names = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let bytes = entry.file_name().to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(bytes.to_vec());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    fn fifo(path: &Path) {
        rustix::fs::mkfifoat(rustix::fs::CWD, path, Mode::from_bits_truncate(0o600)).unwrap();
    }

    #[test]
    fn reads_proc_net_through_its_relative_link() {
        let tree = ProcRoot::open(Path::new("/proc")).unwrap();
        let tcp = tree.read_file("net/tcp").unwrap();
        assert!(tcp.starts_with(b"  sl"));
        assert!(tree.pids().unwrap().contains(&std::process::id()));
        let me = tree.read_link("self").unwrap();
        assert_eq!(me, std::process::id().to_string().into_bytes());
    }

    #[test]
    fn refuses_links_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("1/fd")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside/fd")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("net")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("1/comm")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("1/status")).unwrap();
        std::os::unix::fs::symlink("../outside", root.join("2")).unwrap();
        std::os::unix::fs::symlink("socket:[9]", root.join("1/fd/3")).unwrap();
        let tree = ProcRoot::open(&root).unwrap();
        for rel in ["net/passwd", "1/comm", "1/status"] {
            let error = tree.read_file(rel).unwrap_err();
            assert!(
                error.to_string().contains("outside the proc root"),
                "{rel}: {error}"
            );
        }
        let error = tree.open_dir("2/fd").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EXDEV));
        assert_eq!(tree.fd_links(1).unwrap(), vec![(3, b"socket:[9]".to_vec())]);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("net")).unwrap();
        fifo(&dir.path().join("net/tcp"));
        let tree = ProcRoot::open(dir.path()).unwrap();
        let error = tree.read_file("net/tcp").unwrap_err();
        assert_eq!(error.to_string(), "a FIFO, not a regular file");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(tree.open_file("net").is_err(), "a directory is no file");
    }

    #[test]
    fn a_fifo_as_the_root_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        fifo(&dir.path().join("proc"));
        let error = ProcRoot::open(&dir.path().join("proc")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOTDIR));
    }

    #[test]
    fn magic_links_are_never_followed() {
        let tree = ProcRoot::open(Path::new("/proc")).unwrap();
        let me = std::process::id();
        let error = tree
            .read_file(&format!("{me}/root/etc/hostname"))
            .unwrap_err();
        assert!(error.to_string().contains("magic link"), "{error}");
        let links = tree.fd_links(me).unwrap();
        assert!(!links.is_empty());
        let exe = tree.process_link(me, "exe").unwrap();
        assert_eq!(
            exe,
            std::env::current_exe().unwrap().into_os_string().into_vec()
        );
    }

    #[test]
    fn the_fallback_confines_like_openat2() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("1")).unwrap();
        std::fs::write(root.join("1/stat"), b"1 (a) S").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("1/status")).unwrap();
        let mut tree = ProcRoot::open(&root).unwrap();
        // As on a kernel without openat2.
        tree.confined_to = Some(std::fs::canonicalize(&root).unwrap());
        assert_eq!(tree.read_file("1/stat").unwrap(), b"1 (a) S");
        let error = tree.read_file("1/status").unwrap_err();
        assert!(
            error.to_string().contains("outside the proc root"),
            "{error}"
        );
    }

    #[test]
    fn whole_files_are_read_whatever_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::create_dir(dir.path().join("7")).unwrap();
        std::fs::write(dir.path().join("7/big"), &big).unwrap();
        std::fs::write(dir.path().join("7/empty"), b"").unwrap();
        let tree = ProcRoot::open(dir.path()).unwrap();
        let mut buffer = Vec::new();
        tree.read_into(None, c"7/big", &mut buffer).unwrap();
        assert_eq!(buffer, big);
        let seven = tree.open_dir_path("7").unwrap();
        tree.read_into(Some(seven.as_fd()), c"empty", &mut buffer)
            .unwrap();
        assert!(buffer.is_empty());
        let missing = tree.read_into(None, c"8/big", &mut buffer).unwrap_err();
        assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn canonical_numbers_only() {
        assert_eq!(canonical_u32(b"42"), Some(42));
        assert_eq!(canonical_u32(b"0"), Some(0));
        assert_eq!(canonical_u32(b"4294967295"), Some(u32::MAX));
        for bad in [&b"042"[..], b"", b"+1", b"4294967296", b"self"] {
            assert_eq!(canonical_u32(bad), None, "{bad:?}");
        }
    }
}
