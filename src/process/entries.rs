//! One [`Entry`] per socket from a [`Scan`]: its owners, one per pid, with their details, or
//! why it has none.

use std::collections::HashMap;

use super::holders::Scan;
use super::info::ProcessDetails;
use crate::model::{Entry, Holder, OwnerProcess, OwnerUnknownReason, Socket};

/// What the scan could see, which decides why a socket without holders has none.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// Some processes could not be inspected, or `/proc` could not be scanned.
    pub blind: bool,
    /// The PID namespace is not the initial one: processes outside it are not seen.
    pub nested: bool,
}

/// One entry per socket, with its holders in `scan`, seen as `view` says.
pub fn build(sockets: Vec<Socket>, scan: &Scan, view: View) -> Vec<Entry> {
    sockets
        .into_iter()
        .map(|socket| {
            let holders = scan.holders.of(socket.inode);
            entry(socket, holders, &scan.details, view)
        })
        .collect()
}

fn entry(
    socket: Socket,
    holders: &[Holder],
    details: &HashMap<u32, ProcessDetails>,
    view: View,
) -> Entry {
    let processes = owner_processes(holders, details);
    let owner_unknown = processes.is_empty().then(|| unknown_reason(&socket, view));
    Entry {
        socket,
        processes,
        owner_unknown,
        findings: Vec::new(),
        labels: None,
        reach: Vec::new(),
    }
}

/// One owner per pid (a process may hold the socket through several fds: keep the lowest).
fn owner_processes(
    holders: &[Holder],
    details: &HashMap<u32, ProcessDetails>,
) -> Vec<OwnerProcess> {
    // Sized to the holders: an empty Vec grows to 4 on first push, and most sockets have one.
    let mut owners: Vec<OwnerProcess> = Vec::with_capacity(holders.len());
    for holder in holders {
        if owners.last().is_some_and(|o| o.pid == holder.pid) {
            continue;
        }
        let found = details.get(&holder.pid);
        owners.push(OwnerProcess {
            pid: holder.pid,
            fd: holder.fd,
            name: found.and_then(|d| d.name.clone()),
            cmdline: found.and_then(|d| d.cmdline.clone()),
            uid: found.and_then(|d| d.uid),
            labels: None,
        });
    }
    owners
}

/// Why nobody was found holding `socket`, given what the scan could see.
pub fn unknown_reason(socket: &Socket, view: View) -> OwnerUnknownReason {
    if socket.inode == 0 {
        OwnerUnknownReason::Kernel
    } else if view.blind {
        OwnerUnknownReason::Permission
    } else if view.nested {
        // A file refers to it, so some process holds it: never "kernel" from here.
        OwnerUnknownReason::OutsidePidNamespace
    } else if socket.uid == 0 {
        OwnerUnknownReason::Kernel
    } else {
        OwnerUnknownReason::NotFound
    }
}
