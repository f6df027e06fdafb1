//! Who holds each socket: one pass over `/proc/*/fd` maps socket inodes to every (pid, fd)
//! holding them, then details are read for just those pids.

pub mod fdscan;
pub mod info;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;

use crate::model::{Entry, Holder, OwnerProcess, OwnerUnknownReason, Socket};
use info::ProcessDetails;

/// Sockets with their owners, and what the scan could not see.
#[derive(Debug, Default)]
pub struct Attributed {
    /// One entry per socket.
    pub entries: Vec<Entry>,
    /// User processes whose fds could not be read.
    pub denied: usize,
    /// Processes scanned.
    pub scanned: usize,
    /// Set when `/proc` itself could not be scanned.
    pub scan_error: Option<io::Error>,
}

/// Attribute every socket to the processes holding it.
pub fn attribute(sockets: Vec<Socket>, proc_root: &Path) -> Attributed {
    let wanted: HashSet<u64> = sockets
        .iter()
        .map(|s| s.inode)
        .filter(|&i| i != 0)
        .collect();
    let (scan, scan_error) = match fdscan::scan(proc_root, &wanted) {
        Ok(scan) => (scan, None),
        Err(error) => (fdscan::FdScan::default(), Some(error)),
    };
    // A failed scan hides every owner: report it as a permission problem, the likely cause.
    let blind = scan.denied > 0 || scan_error.is_some();
    let entries = sockets
        .into_iter()
        .map(|socket| {
            let holders = scan
                .holders
                .get(&socket.inode)
                .map_or(&[][..], Vec::as_slice);
            make_entry(socket, holders, &scan.details, blind)
        })
        .collect();
    Attributed {
        entries,
        denied: scan.denied,
        scanned: scan.scanned,
        scan_error,
    }
}

fn make_entry(
    socket: Socket,
    holders: &[Holder],
    details: &HashMap<u32, ProcessDetails>,
    blind: bool,
) -> Entry {
    let processes = owner_processes(holders, details);
    let owner_unknown = processes.is_empty().then(|| unknown_reason(&socket, blind));
    Entry {
        socket,
        processes,
        owner_unknown,
    }
}

/// One owner per pid (a process may hold the socket through several fds: keep the lowest).
fn owner_processes(
    holders: &[Holder],
    details: &HashMap<u32, ProcessDetails>,
) -> Vec<OwnerProcess> {
    let mut owners: Vec<OwnerProcess> = Vec::new();
    for holder in holders {
        if owners.last().is_some_and(|o| o.pid == holder.pid) {
            continue;
        }
        let found = details.get(&holder.pid).cloned().unwrap_or_default();
        owners.push(OwnerProcess {
            pid: holder.pid,
            fd: holder.fd,
            name: found.name,
            cmdline: found.cmdline,
            uid: found.uid,
        });
    }
    owners
}

/// Why nobody was found holding `socket`.
pub fn unknown_reason(socket: &Socket, blind: bool) -> OwnerUnknownReason {
    if socket.inode == 0 {
        OwnerUnknownReason::Kernel
    } else if blind {
        OwnerUnknownReason::Permission
    } else if socket.uid == 0 {
        OwnerUnknownReason::Kernel
    } else {
        OwnerUnknownReason::NotFound
    }
}
