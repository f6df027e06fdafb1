//! The executable behind each shown process (`readlink /proc/PID/exe`).
//!
//! A process picks its own name and command line, but not the file it runs, so the path is the
//! better answer to "what is this really". It is read only when an output shows it, and only
//! for shown processes. Reading another user's link needs `CAP_SYS_PTRACE`; without it the
//! path is unknown, not an error.

use std::collections::HashMap;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::model::Entry;

/// Executable paths by pid, as raw bytes (a path need not be UTF-8).
#[derive(Debug, Clone, Default)]
pub struct Executables {
    paths: HashMap<u32, Option<Vec<u8>>>,
}

impl Executables {
    /// Read the link of every process holding one of `entries`.
    pub fn read(proc_root: &Path, entries: &[Entry]) -> Self {
        let mut paths = HashMap::new();
        for process in entries.iter().flat_map(|e| &e.processes) {
            paths
                .entry(process.pid)
                .or_insert_with(|| read_link(proc_root, process.pid));
        }
        Executables { paths }
    }

    /// The path of `pid`'s executable; `None` when it was not read or could not be. A binary
    /// replaced or deleted since it started reads `/path (deleted)`, as the kernel says.
    pub fn get(&self, pid: u32) -> Option<&[u8]> {
        self.paths.get(&pid).and_then(Option::as_deref)
    }
}

fn read_link(proc_root: &Path, pid: u32) -> Option<Vec<u8>> {
    let link = proc_root.join(pid.to_string()).join("exe");
    std::fs::read_link(link)
        .ok()
        .map(|path| path.into_os_string().into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::{OwnerProcess, Protocol, Socket};

    fn entry_held_by(pid: u32) -> Entry {
        Entry {
            socket: Socket::listening(Protocol::Tcp, "127.0.0.1", 1),
            processes: vec![OwnerProcess {
                pid,
                fd: 3,
                name: None,
                cmdline: None,
                uid: None,
            }],
            owner_unknown: None,
        }
    }

    #[test]
    fn own_executable_is_found() {
        let me = std::process::id();
        let exes = Executables::read(Path::new("/proc"), &[entry_held_by(me)]);
        let expected = std::env::current_exe().unwrap().into_os_string().into_vec();
        assert_eq!(exes.get(me), Some(&expected[..]));
    }

    #[test]
    fn vanished_or_unlisted_processes_have_no_path() {
        let exes = Executables::read(Path::new("/proc"), &[entry_held_by(u32::MAX)]);
        assert_eq!(exes.get(u32::MAX), None);
        assert_eq!(exes.get(1234), None);
    }
}
