//! Handles on network namespaces, and the system calls that use them: open a namespace by a
//! process, by a bind mount or by a socket someone holds, and move the calling thread into it.
//!
//! A namespace is known by its nsfs inode (what `/proc/PID/ns/net` names, `net:[INODE]`);
//! every handle is checked to be the namespace it was opened for, since a pid can be reused and
//! a mount point replaced between reading its name and opening it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags};
use rustix::thread::LinkNameSpaceType;

/// `SIOCGSKNS` (linux/sockios.h): an fd of the network namespace a socket belongs to. Added in
/// Linux 4.9; the kernel requires `CAP_NET_ADMIN` over the namespace's user namespace.
const SIOCGSKNS: libc::c_ulong = 0x894C;

/// An open network namespace.
#[derive(Debug)]
pub struct NsFd {
    fd: OwnedFd,
    inode: u64,
}

impl NsFd {
    /// The namespace's nsfs inode.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// The namespace file descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Move the calling thread (only it: the other threads stay where they are) into this
    /// namespace. Sockets the thread creates afterwards belong to it, and stay in it wherever
    /// they are passed. `EPERM` means the caller lacks `CAP_SYS_ADMIN` over the namespace.
    pub fn enter(&self) -> io::Result<()> {
        rustix::thread::move_into_link_name_space(
            self.fd.as_fd(),
            Some(LinkNameSpaceType::Network),
        )?;
        Ok(())
    }

    /// `fd`, known to be the network namespace `inode` (a duplicate of an [`NsFd`]'s).
    pub(crate) fn adopt(fd: OwnedFd, inode: u64) -> NsFd {
        NsFd { fd, inode }
    }

    /// An fd the kernel gave as a network namespace; its inode is read with `fstat`.
    fn from_fd(fd: OwnedFd) -> io::Result<NsFd> {
        let inode = rustix::fs::fstat(&fd)?.st_ino;
        Ok(NsFd { fd, inode })
    }

    /// `fd` if it is the namespace `inode` (an nsfs file: inodes of other filesystems can
    /// have the same number), else an error saying what happened meanwhile.
    fn expect(fd: OwnedFd, inode: u64, what: &dyn Fn() -> String) -> io::Result<NsFd> {
        let stat = rustix::fs::fstat(&fd)?;
        let ns = NsFd {
            fd,
            inode: stat.st_ino,
        };
        if ns.inode == inode && Some(stat.st_dev) == nsfs_device() {
            Ok(ns)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is no longer network namespace {inode} (it changed since it was listed)",
                    what()
                ),
            ))
        }
    }
}

/// The device of the nsfs filesystem every namespace file lives on, read once.
fn nsfs_device() -> Option<u64> {
    static DEVICE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *DEVICE.get_or_init(|| {
        rustix::fs::stat("/proc/thread-self/ns/net")
            .ok()
            .map(|stat| stat.st_dev)
    })
}

/// The calling thread's own network namespace.
pub fn current() -> io::Result<NsFd> {
    NsFd::from_fd(open_ns_file(Path::new("/proc/thread-self/ns/net"))?)
}

/// The network namespace `inode` of process `pid`, through `PROC/PID/ns/net` (`proc` is the
/// live proc filesystem, normally `/proc`). Fails with `NotFound` when the process is gone or
/// now lives elsewhere.
pub fn of_process(proc: &Path, pid: u32, inode: u64) -> io::Result<NsFd> {
    let path = proc.join(format!("{pid}/ns/net"));
    let fd = open_ns_file(&path)?;
    NsFd::expect(fd, inode, &|| format!("process {pid}"))
}

/// The network namespace `inode` bind-mounted on `path`. The open neither follows a link
/// nor blocks, so a mount point swapped for a link or a FIFO is refused, not followed.
pub fn of_mount(path: &Path, inode: u64) -> io::Result<NsFd> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("{}: {e}", path.display()),
        )
    })?;
    NsFd::expect(fd, inode, &|| path.display().to_string())
}

fn open_ns_file(path: &Path) -> io::Result<OwnedFd> {
    // The ns file is a magic link: it must be followed.
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(io::Error::from)
}

/// Reads the namespaces of sockets other processes hold, keeping one pidfd per process.
#[derive(Debug, Default)]
pub struct SocketProbe {
    pidfds: std::collections::HashMap<u32, Option<OwnedFd>>,
}

impl SocketProbe {
    /// The network namespace of the socket `socket_inode` that process `pid` holds as `fd`:
    /// `pidfd_open` + `pidfd_getfd` give this process a duplicate of the socket (closing it
    /// again is harmless: the holder keeps its own), and `ioctl(SIOCGSKNS)` on it an fd of
    /// its namespace — which may be one no process lives in, kept alive by the socket.
    ///
    /// Needs ptrace access to the holder (`EPERM` otherwise) and Linux 5.6; fails with
    /// `NotFound` when the fd is no longer that socket.
    pub fn namespace_of(&mut self, pid: u32, fd: u32, socket_inode: u64) -> io::Result<NsFd> {
        let socket = self.duplicate(pid, fd)?;
        if rustix::fs::fstat(&socket)?.st_ino != socket_inode {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("fd {fd} of process {pid} is no longer socket {socket_inode}"),
            ));
        }
        NsFd::from_fd(socket_netns(socket.as_fd())?)
    }

    /// The network namespace `netns_inode`, entered through whatever socket process `pid`
    /// holds as `fd` (as [`SocketProbe::namespace_of`]), and that socket's inode. For a
    /// holder known only by the namespace its socket was in (the kernel iterator's): the fd
    /// is checked to be a socket, and its namespace to be that one, since the fd may have
    /// been closed, or reused for another socket, since. Fails with `NotFound` then.
    pub fn namespace_through(
        &mut self,
        pid: u32,
        fd: u32,
        netns_inode: u64,
    ) -> io::Result<(NsFd, u64)> {
        let socket = self.duplicate(pid, fd)?;
        let stat = rustix::fs::fstat(&socket)?;
        let gone = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "fd {fd} of process {pid} is no longer a socket in namespace {netns_inode}"
                ),
            )
        };
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
            return Err(gone());
        }
        let ns = NsFd::expect(socket_netns(socket.as_fd())?, netns_inode, &|| {
            format!("the socket fd {fd} of process {pid}")
        })
        .map_err(|_| gone())?;
        Ok((ns, stat.st_ino))
    }

    /// A duplicate of process `pid`'s `fd` (`pidfd_getfd`), through one pidfd per process.
    fn duplicate(&mut self, pid: u32, fd: u32) -> io::Result<OwnedFd> {
        let pidfd = self
            .pidfds
            .entry(pid)
            .or_insert_with(|| open_pidfd(pid).ok())
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("process {pid}")))?;
        let target = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(rustix::process::pidfd_getfd(
            pidfd,
            target,
            PidfdGetfdFlags::empty(),
        )?)
    }
}

fn open_pidfd(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// `ioctl(socket, SIOCGSKNS)`: a new fd of the socket's network namespace.
fn socket_netns(socket: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGSKNS takes no argument and reads or writes no user memory; on success it
    // returns a new descriptor (O_CLOEXEC) that nothing else owns. No crate wraps this ioctl.
    let raw = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGSKNS) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is the fresh descriptor the kernel just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_inode() -> u64 {
        let link = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let text = link.to_str().unwrap().as_bytes().to_vec();
        super::super::mountinfo::net_inode(&text).unwrap()
    }

    #[test]
    fn the_current_namespace_is_the_one_proc_names() {
        assert_eq!(current().unwrap().inode(), own_inode());
    }

    #[test]
    fn a_socket_this_process_holds_is_in_this_namespace() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        let fd = listener.as_raw_fd() as u32;
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        let mut probe = SocketProbe::default();
        match probe.namespace_of(std::process::id(), fd, inode) {
            Ok(ns) => assert_eq!(ns.inode(), own_inode()),
            // A sandbox without pidfd_getfd (seccomp, an old kernel) cannot run this check.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                eprintln!("SKIP: pidfd_getfd is not available here: {e}")
            }
            Err(e) => panic!("SIOCGSKNS on our own socket failed: {e}"),
        }
    }

    #[test]
    fn an_fd_that_is_no_longer_the_socket_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        let fd = listener.as_raw_fd() as u32;
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        let mut probe = SocketProbe::default();
        let err = probe
            .namespace_of(std::process::id(), fd, inode + 1)
            .unwrap_err();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        }
    }

    #[test]
    fn a_namespace_is_entered_through_a_socket_fd_in_it_and_nothing_else() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        let fd = listener.as_raw_fd() as u32;
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        let me = std::process::id();
        let mut probe = SocketProbe::default();
        match probe.namespace_through(me, fd, own_inode()) {
            Ok((ns, socket)) => {
                assert_eq!(ns.inode(), own_inode());
                assert_eq!(socket, inode, "the socket that led there");
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                eprintln!("SKIP: pidfd_getfd is not available here: {e}");
                return;
            }
            Err(e) => panic!("SIOCGSKNS on our own socket failed: {e}"),
        }
        // The socket is in this namespace, not another: as if the fd had been reused.
        let err = probe
            .namespace_through(me, fd, own_inode() + 1)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        // An fd that is not a socket leads nowhere.
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let err = probe
            .namespace_through(me, file.as_raw_fd() as u32, own_inode())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn a_process_that_moved_is_not_taken_for_its_old_namespace() {
        let err = of_process(Path::new("/proc"), std::process::id(), own_inode() + 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains("changed since it was listed"),
            "{err}"
        );
    }

    #[test]
    fn a_mount_point_that_is_not_a_namespace_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // A FIFO is opened without blocking and then refused as not the namespace.
        assert!(of_mount(&fifo, own_inode()).is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/proc/self/ns/net", &link).unwrap();
        let err = of_mount(&link, own_inode()).unwrap_err();
        assert_eq!(err.raw_os_error(), None, "message carries the path: {err}");
        assert!(err.to_string().contains("link"), "{err}");
    }
}
