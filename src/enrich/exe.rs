//! The executable behind each shown process (`readlink /proc/PID/exe`).
//!
//! A process picks its own name and command line, but not the file it runs, so the path is the
//! better answer to "what is this really". It is read only when an output shows it, and only
//! for shown processes. Reading another user's link needs `CAP_SYS_PTRACE`; without it the
//! path is unknown, not an error.
//!
//! The link is the path in the process's own mount namespace, which any user can build (a user
//! namespace, a bind mount over `/usr/sbin/sshd`). From the live `/proc`, a path that names
//! another file here, in a namespace an unprivileged user made ([`mountns::ExeView`]), is
//! shown and matched qualified by that user, `(uid 1000's mounts)/usr/sbin/sshd`: never an
//! absolute path, so no baseline or policy `exe` written for the host's file matches it, and
//! a baseline saved from it matches it again. Checking costs one `stat` per shown process
//! (of its `ns/mnt`), and three more for a process in another mount namespace.

use std::collections::HashMap;
use std::path::Path;

use crate::model::Entry;
use crate::process::info::{DetailsReader, Hold};
use crate::sys::mountns::{self, ExeView};

/// Executable paths by pid, as raw bytes (a path need not be UTF-8).
#[derive(Debug, Clone, Default)]
pub struct Executables {
    paths: HashMap<u32, Option<Vec<u8>>>,
    /// The processes whose path holds only in mounts an unprivileged user made: the link as
    /// the kernel gave it, and the user.
    masked: HashMap<u32, Masked>,
}

/// An executable path that holds only in a mount namespace an unprivileged user made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// The link as the kernel gave it: the path in the process's namespace.
    pub link: Vec<u8>,
    /// The uid that made the namespace's user namespace, when the kernel says.
    pub user: Option<u32>,
}

impl Executables {
    /// Read the link of every process holding one of `entries`, through the process's own
    /// directory once it shows the process still holds the socket: a pid reused since the
    /// scan must not lend its executable (see `process::confirm`). From the live `/proc`, a
    /// path only an unprivileged user's mounts make true is qualified (see the module doc).
    pub fn read(proc_root: &Path, entries: &[Entry]) -> Self {
        let reader = DetailsReader::new(proc_root);
        // Only the live /proc's processes live in mount namespaces lsports can compare with.
        let own = (proc_root == Path::new("/proc"))
            .then(mountns::Own::read)
            .flatten();
        let mut paths = HashMap::new();
        let mut masked = HashMap::new();
        for entry in entries {
            for process in &entry.processes {
                paths.entry(process.pid).or_insert_with(|| {
                    let dir = reader.open(process.pid)?;
                    if dir.holds(process.fd, entry.socket.inode) != Hold::Yes {
                        return None;
                    }
                    let link = dir.exe()?;
                    let Some(own) = own else {
                        return Some(link);
                    };
                    match mountns::exe_view(dir.fd(), &link, own) {
                        ExeView::Here | ExeView::RootMounts => Some(link),
                        ExeView::UserMounts(user) => {
                            let shown = qualified(&link, user);
                            masked.insert(process.pid, Masked { link, user });
                            Some(shown)
                        }
                    }
                });
            }
        }
        Executables { paths, masked }
    }

    /// The path of `pid`'s executable; `None` when it was not read or could not be. A binary
    /// replaced or deleted since it started reads `/path (deleted)`, as the kernel says; a
    /// path that holds only in an unprivileged user's mounts reads
    /// `(uid 1000's mounts)/path`.
    pub fn get(&self, pid: u32) -> Option<&[u8]> {
        self.paths.get(&pid).and_then(Option::as_deref)
    }

    /// Whether `pid`'s path holds only in mounts an unprivileged user made, and which.
    pub fn masked(&self, pid: u32) -> Option<&Masked> {
        self.masked.get(&pid)
    }
}

/// The prefix of an executable path that holds only in `user`'s mounts.
pub fn mounts_of(user: Option<u32>) -> String {
    match user {
        Some(uid) => format!("(uid {uid}'s mounts)"),
        None => "(a user namespace's mounts)".into(),
    }
}

/// Whether `text` is an executable as lsports writes one: an absolute path, or one qualified
/// by the user whose mounts it holds in ([`mounts_of`]).
pub fn is_exe_text(text: &str) -> bool {
    let path = match text.strip_prefix('(') {
        Some(rest) => match rest.split_once("mounts)") {
            Some((_, path)) => path,
            None => return false,
        },
        None => text,
    };
    path.starts_with('/')
}

/// `link` as shown and matched when it holds only in `user`'s mounts.
fn qualified(link: &[u8], user: Option<u32>) -> Vec<u8> {
    let mut shown = mounts_of(user).into_bytes();
    shown.extend_from_slice(link);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::{OwnerProcess, Protocol, Socket};

    fn entry_held_by(pid: u32) -> Entry {
        held_as(pid, 3, 1)
    }

    fn held_as(pid: u32, fd: u32, inode: u64) -> Entry {
        Entry {
            socket: Socket {
                inode,
                ..Socket::listening(Protocol::Tcp, "127.0.0.1", 1)
            },
            processes: crate::model::Owners::one(OwnerProcess {
                pid,
                fd,
                name: None,
                cmdline: None,
                uid: None,
                labels: None,
            }),
            owner_unknown: None,
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
        }
    }

    #[test]
    fn own_executable_is_found() {
        use std::os::fd::AsRawFd;
        let me = std::process::id();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd();
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let inode =
            crate::process::fdscan::parse_socket_link(link.as_os_str().as_encoded_bytes()).unwrap();
        let exes = Executables::read(Path::new("/proc"), &[held_as(me, fd as u32, inode)]);
        let expected = std::env::current_exe().unwrap().into_os_string();
        assert_eq!(exes.get(me), Some(expected.as_encoded_bytes()));
    }

    #[test]
    fn a_reused_pid_lends_no_executable() {
        // pid 7 held socket 99 as fd 3 when scanned; now pid 7 is another process, whose fd 3
        // is another socket and whose executable is not the holder's.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("7/fd")).unwrap();
        std::os::unix::fs::symlink("socket:[5]", dir.path().join("7/fd/3")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/intruder", dir.path().join("7/exe")).unwrap();
        let exes = Executables::read(dir.path(), &[held_as(7, 3, 99)]);
        assert_eq!(exes.get(7), None);
        let exes = Executables::read(dir.path(), &[held_as(7, 3, 5)]);
        assert_eq!(exes.get(7), Some(&b"/usr/bin/intruder"[..]));
    }

    #[test]
    fn only_absolute_or_qualified_paths_are_executables() {
        for good in ["/usr/sbin/sshd", "(uid 1000's mounts)/usr/sbin/sshd"] {
            assert!(is_exe_text(good), "{good}");
        }
        let shown = String::from_utf8(qualified(b"/usr/bin/x (deleted)", None)).unwrap();
        assert!(is_exe_text(&shown), "{shown}");
        for bad in [
            "",
            "*",
            "sshd",
            "relative/path",
            "(uid 1000)/x",
            "(uid 1000's mounts)x",
        ] {
            assert!(!is_exe_text(bad), "{bad}");
        }
    }

    #[test]
    fn vanished_or_unlisted_processes_have_no_path() {
        let exes = Executables::read(Path::new("/proc"), &[entry_held_by(u32::MAX)]);
        assert_eq!(exes.get(u32::MAX), None);
        assert_eq!(exes.get(1234), None);
    }
}
