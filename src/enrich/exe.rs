//! The executable behind each shown process (`readlink /proc/PID/exe`).
//!
//! A process picks its own name and command line, but not the file it runs, so the path is the
//! better answer to "what is this really". It is read only when an output shows it, and only
//! for shown processes. Reading another user's link needs `CAP_SYS_PTRACE`; without it the
//! path is unknown, not an error.

use std::collections::HashMap;
use std::path::Path;

use crate::model::Entry;
use crate::process::info::{DetailsReader, Hold};

/// Executable paths by pid, as raw bytes (a path need not be UTF-8).
#[derive(Debug, Clone, Default)]
pub struct Executables {
    paths: HashMap<u32, Option<Vec<u8>>>,
}

impl Executables {
    /// Read the link of every process holding one of `entries`, through the process's own
    /// directory once it shows the process still holds the socket: a pid reused since the
    /// scan must not lend its executable (see `process::confirm`).
    pub fn read(proc_root: &Path, entries: &[Entry]) -> Self {
        let reader = DetailsReader::new(proc_root);
        let mut paths = HashMap::new();
        for entry in entries {
            for process in &entry.processes {
                paths.entry(process.pid).or_insert_with(|| {
                    let dir = reader.open(process.pid)?;
                    (dir.holds(process.fd, entry.socket.inode) == Hold::Yes)
                        .then(|| dir.exe())
                        .flatten()
                });
            }
        }
        Executables { paths }
    }

    /// The path of `pid`'s executable; `None` when it was not read or could not be. A binary
    /// replaced or deleted since it started reads `/path (deleted)`, as the kernel says.
    pub fn get(&self, pid: u32) -> Option<&[u8]> {
        self.paths.get(&pid).and_then(Option::as_deref)
    }
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
            processes: thin_vec::thin_vec![OwnerProcess {
                pid,
                fd,
                name: None,
                cmdline: None,
                uid: None,
                labels: None,
            }],
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
    fn vanished_or_unlisted_processes_have_no_path() {
        let exes = Executables::read(Path::new("/proc"), &[entry_held_by(u32::MAX)]);
        assert_eq!(exes.get(u32::MAX), None);
        assert_eq!(exes.get(1234), None);
    }
}
