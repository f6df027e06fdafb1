//! Reading a runtime's state file as hostile input.
//!
//! The files are written by daemons, but what is in them (a container's name) is chosen by
//! whoever starts the container, and a rootless runtime's files lie in a home directory their
//! user controls completely. So a path is read in two halves:
//!
//! - the *base*, a directory an administrator chose (`var/lib/docker/containers`, a user's
//!   home from `etc/passwd`), resolved as if the injected root were `/`
//!   (`RESOLVE_IN_ROOT`): a relocated `/var/lib/docker -> /srv/docker` link keeps working,
//!   even under a fake root, and nothing leads out of that root;
//! - the rest, below the base, where no symbolic link at all is followed
//!   (`RESOLVE_NO_SYMLINKS`; on kernels without openat2, `O_NOFOLLOW` on each component).
//!
//! The file is opened without blocking, must be a regular file no larger than a cap given by
//! the caller, and, when an owner is asked for, must belong to that user: a user's hard link
//! to a file of root's is refused.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags, openat, openat2};
use rustix::io::Errno;

/// One state file to read: where it is and what it must be.
#[derive(Debug, Clone, Copy)]
pub struct StateFile<'a> {
    /// The administrator's directory, relative to the root (links followed inside the root).
    pub base: &'a str,
    /// The file below `base` (no link followed).
    pub rel: &'a str,
    /// Refuse files larger than this many bytes.
    pub cap: u64,
    /// Refuse files not owned by this uid.
    pub owner: Option<u32>,
}

/// Read `file` under the directory `root` (see the module docs). Errors name the refusal.
pub fn read(root: BorrowedFd<'_>, file: &StateFile<'_>) -> io::Result<Vec<u8>> {
    let base = open_base(root, file.base)?;
    read_below(base.as_fd(), file)
}

/// [`read`] of `file` below `base`, its `base` opened already by [`open_base`] (a caller
/// reading many files under one base opens it once).
pub fn read_below(base: BorrowedFd<'_>, file: &StateFile<'_>) -> io::Result<Vec<u8>> {
    let opened = File::from(open_below(base, file.rel)?);
    read_capped(opened, file.cap, file.owner)
}

/// Read the regular file at `rel` as if `root` were `/`: links are followed, but never out of
/// the root (`RESOLVE_IN_ROOT`), for files an administrator places by links (systemd's unit
/// files and their aliases). At most `cap` bytes.
pub fn read_in_root(root: BorrowedFd<'_>, rel: &str, cap: u64) -> io::Result<Vec<u8>> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
    let opened = match open2(root, rel, flags, in_root()) {
        Err(Errno::NOSYS | Errno::PERM) => plain_open(root, rel, flags)?,
        other => other?,
    };
    read_capped(File::from(opened), cap, None)
}

/// Open the directory at `rel` for listing, resolved as [`read_in_root`] resolves files.
pub fn open_dir_in_root(root: BorrowedFd<'_>, rel: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY;
    match open2(root, rel, flags, in_root()) {
        Err(Errno::NOSYS | Errno::PERM) => plain_open(root, rel, flags),
        other => Ok(other?),
    }
}

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Read the opened `opened`: a regular file of at most `cap` bytes, owned by `owner` if given.
fn read_capped(opened: File, cap: u64, owner: Option<u32>) -> io::Result<Vec<u8>> {
    let meta = opened.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused("not a regular file"));
    }
    if owner.is_some_and(|uid| uid != meta.uid()) {
        return Err(refused(
            "not owned by the user whose container it describes",
        ));
    }
    if meta.len() > cap {
        return Err(refused("larger than lsports reads"));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the fstat: read one byte past the cap to notice.
    opened.take(cap + 1).read_to_end(&mut data)?;
    if data.len() as u64 > cap {
        return Err(refused("larger than lsports reads"));
    }
    Ok(data)
}

/// Open the root directory itself.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(path, flags, Mode::empty())?)
}

/// Open the directory `base` under `root` (see the module docs), for [`read_below`].
pub fn open_base(root: BorrowedFd<'_>, base: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY;
    match open2(root, base, flags, in_root()) {
        // No openat2: the administrator's path, links followed as the kernel follows them.
        Err(Errno::NOSYS | Errno::PERM) => plain_open(root, base, flags),
        other => Ok(other?),
    }
}

/// Open the regular file at `rel` below `base`, following no link.
pub fn open_below(base: BorrowedFd<'_>, rel: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
    match open2(base, rel, flags, resolve) {
        Err(Errno::NOSYS | Errno::PERM) => open_below_fallback(base, rel),
        Err(Errno::LOOP) => Err(refused("reached through a symbolic link")),
        other => Ok(other?),
    }
}

/// [`open_below`] without openat2: one component at a time, each with `O_NOFOLLOW`.
pub fn open_below_fallback(base: BorrowedFd<'_>, rel: &str) -> io::Result<OwnedFd> {
    let mut parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    let last = parts.pop().ok_or_else(|| refused("an empty path"))?;
    if parts.iter().chain([&last]).any(|p| *p == "..") {
        return Err(refused("a path that climbs out with .."));
    }
    let mut dir = plain_open(base, ".", OFlags::PATH | OFlags::DIRECTORY)?;
    for part in parts {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW;
        dir = plain_open(dir.as_fd(), part, flags).map_err(symlink_refused)?;
    }
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW;
    plain_open(dir.as_fd(), last, flags).map_err(symlink_refused)
}

fn open2(
    dir: BorrowedFd<'_>,
    rel: &str,
    flags: OFlags,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    openat2(dir, rel, flags | OFlags::CLOEXEC, Mode::empty(), resolve)
}

fn plain_open(dir: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(openat(dir, rel, flags | OFlags::CLOEXEC, Mode::empty())?)
}

/// `O_NOFOLLOW` on a link fails with `ELOOP` (or `ENOTDIR` with `O_DIRECTORY` on some
/// kernels); say so in words.
fn symlink_refused(error: io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(libc::ELOOP) => refused("reached through a symbolic link"),
        _ => error,
    }
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("refused: {why}"))
}
