//! Whose view of the file system a process's executable path is in.
//!
//! `readlink /proc/PID/exe` gives the path in the process's own mount namespace. Any user may
//! make one (an unprivileged user namespace: `unshare -Urm`) and bind-mount a file of theirs
//! over `/usr/sbin/sshd` in it, so the path names whatever that user chose. What the user
//! cannot choose: the file the link really leads to (its device and inode, `stat` follows the
//! magic link), what the same path names in lsports' own namespace, and which user namespace
//! owns the process's mount namespace, and who created that. So a path is taken at face value
//! when the process shares lsports' mount namespace, when the path names the same file here,
//! or when the namespace was made by root (a rootful container, a systemd unit's
//! `PrivateTmp=`/`ProtectSystem=`: root chose those mounts); otherwise it is only the claim of
//! the user who made the namespace ([`ExeView::UserMounts`]).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags};

/// What the kernel appends to the link of an executable that is no longer on disk.
const DELETED_SUFFIX: &[u8] = b" (deleted)";

/// lsports' own mount and user namespaces, the reference the holders are compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Own {
    mnt: u64,
    user: u64,
}

impl Own {
    /// The namespaces of this process; `None` when `/proc/self/ns` cannot be read (then no
    /// path can be checked, and none is doubted).
    pub fn read() -> Option<Own> {
        let inode = |name: &str| -> Option<u64> {
            Some(
                rustix::fs::stat(Path::new("/proc/self/ns").join(name))
                    .ok()?
                    .st_ino,
            )
        };
        Some(Own {
            mnt: inode("mnt")?,
            user: inode("user")?,
        })
    }
}

/// Where a holder's executable path holds true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeView {
    /// Here: the process shares lsports' mount namespace, or the path names the same file
    /// here, or what the process sees could not be read (nothing to doubt it with).
    Here,
    /// In a mount namespace root made (a rootful container's, a unit's): true for the
    /// process, as root arranged it.
    RootMounts,
    /// In a mount namespace of a user namespace an unprivileged user made, where the path is
    /// another file than here: the user chose what the path names. The user is the uid that
    /// created the user namespace (`None`: the kernel would not say).
    UserMounts(Option<u32>),
}

/// Where the executable `link` (as `readlink /proc/PID/exe` gave it) of the process whose
/// `/proc/PID` directory is `dir` holds true.
pub fn exe_view(dir: BorrowedFd<'_>, link: &[u8], own: Own) -> ExeView {
    let Ok(mnt) = rustix::fs::statat(dir, c"ns/mnt", AtFlags::empty()) else {
        return ExeView::Here;
    };
    if mnt.st_ino == own.mnt {
        return ExeView::Here;
    }
    // The same file here: the path is true whoever made the namespace. A deleted file's path
    // names another file (or none) here by nature, so only its namespace can speak for it.
    if !link.ends_with(DELETED_SUFFIX) {
        let Ok(real) = rustix::fs::statat(dir, c"exe", AtFlags::empty()) else {
            return ExeView::Here;
        };
        let here = rustix::fs::stat(Path::new(std::ffi::OsStr::from_bytes(link)));
        if here.is_ok_and(|h| (h.st_dev, h.st_ino) == (real.st_dev, real.st_ino)) {
            return ExeView::Here;
        }
    }
    match mount_owner(dir, own) {
        Ok(Owner::Root) | Err(_) => ExeView::RootMounts,
        Ok(Owner::User(uid)) => ExeView::UserMounts(uid),
    }
}

/// Who made the user namespace that owns a mount namespace.
enum Owner {
    /// lsports' own user namespace (or one above it), or one root created.
    Root,
    /// One another user created (`None`: which, the kernel would not say).
    User(Option<u32>),
}

/// The owner of the process's mount namespace. An error (the namespace file cannot be
/// opened, an old kernel without the ioctls) leaves the path as it was believed before.
fn mount_owner(dir: BorrowedFd<'_>, own: Own) -> io::Result<Owner> {
    let mnt = rustix::fs::openat(
        dir,
        c"ns/mnt",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let user = match ns_ioctl_fd(mnt.as_fd(), libc::NS_GET_USERNS) {
        Ok(user) => user,
        // EPERM: the owner is an ancestor of lsports' own user namespace, above it.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(Owner::Root),
        Err(e) => return Err(e),
    };
    if rustix::fs::fstat(&user)?.st_ino == own.user {
        return Ok(Owner::Root);
    }
    match owner_uid(user.as_fd()) {
        Ok(0) => Ok(Owner::Root),
        Ok(uid) => Ok(Owner::User(Some(uid))),
        Err(_) => Ok(Owner::User(None)),
    }
}

/// `ioctl(ns, request)` for the namespace ioctls that return a new descriptor.
fn ns_ioctl_fd(ns: BorrowedFd<'_>, request: libc::Ioctl) -> io::Result<OwnedFd> {
    // SAFETY: NS_GET_USERNS takes no argument and touches no user memory; on success it
    // returns a new descriptor (O_CLOEXEC) nothing else owns. No crate wraps this ioctl.
    let raw = unsafe { libc::ioctl(ns.as_raw_fd(), request) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is the fresh descriptor the kernel just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `ioctl(userns, NS_GET_OWNER_UID)`: the uid (in lsports' user namespace) that created it.
fn owner_uid(user: BorrowedFd<'_>) -> io::Result<u32> {
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t through the pointer, which points at `uid`,
    // alive and writable for the call. No crate wraps this ioctl.
    let rc = unsafe {
        libc::ioctl(
            user.as_raw_fd(),
            libc::NS_GET_OWNER_UID,
            &mut uid as *mut libc::uid_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_executable_is_here() {
        let own = Own::read().expect("/proc/self/ns");
        let dir = rustix::fs::open(
            "/proc/self",
            OFlags::PATH | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let view = exe_view(dir.as_fd(), exe.as_os_str().as_bytes(), own);
        assert_eq!(view, ExeView::Here);
    }
}
