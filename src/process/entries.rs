//! One [`Entry`] per socket from a [`Scan`]: its owners, one per pid, with their details, or
//! why it has none.

use std::collections::HashMap;

use super::holders::Scan;
use super::info::ProcessDetails;
use crate::model::{Entry, Holder, OwnerProcess, OwnerUnknownReason, Socket, ThinVec};

/// What the scan could see, which decides why a socket without holders has none.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// Some processes could not be inspected, or `/proc` could not be scanned.
    pub blind: bool,
    /// The PID namespace is not the initial one: processes outside it are not seen.
    pub nested: bool,
}

/// Sockets turned into entries per chunk: small enough that the room a chunk gives back is a
/// few hundred KiB, large enough that giving it back costs nothing measurable.
const CHUNK: usize = 2048;

/// One entry per socket, with its holders in `scan`, seen as `view` says.
pub fn build(sockets: Vec<Socket>, scan: &Scan, view: View) -> Vec<Entry> {
    each_socket(sockets, |socket| {
        let holders = scan.holders.of(socket.inode);
        entry(socket, holders, &scan.details, view)
    })
}

/// One entry per socket, made by `make`, in the sockets' order.
///
/// An entry is a socket and more, so the sockets and their entries side by side would be the
/// run's peak (8 MB for 25,000 sockets). Instead the sockets are taken a chunk at a time from
/// the end, and their vector shrunk after each: the allocator gives a large vector's tail back
/// to the kernel, and the entries' vector only takes memory as it is written, so the two
/// together never hold much more than the entries alone. The entries are made back to front
/// and reversed once at the end.
pub fn each_socket(mut sockets: Vec<Socket>, mut make: impl FnMut(Socket) -> Entry) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(sockets.len());
    while !sockets.is_empty() {
        let start = sockets.len().saturating_sub(CHUNK);
        entries.extend(sockets.drain(start..).rev().map(&mut make));
        sockets.shrink_to_fit();
    }
    entries.reverse();
    entries
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
        findings: Default::default(),
        labels: None,
        reach: Default::default(),
    }
}

/// One owner per pid (a process may hold the socket through several fds: keep the lowest).
fn owner_processes(
    holders: &[Holder],
    details: &HashMap<u32, ProcessDetails>,
) -> ThinVec<OwnerProcess> {
    // Sized to the pids exactly (the holders are sorted by pid): the list is never grown nor
    // left with spare room, and a socket nobody holds allocates nothing.
    let pids = holders.chunk_by(|a, b| a.pid == b.pid).count();
    let mut owners = ThinVec::with_capacity(pids);
    for same in holders.chunk_by(|a, b| a.pid == b.pid) {
        let holder = same[0];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    #[test]
    fn entries_keep_the_sockets_order_across_chunks() {
        let count = 2 * CHUNK + 123;
        let sockets: Vec<Socket> = (0..count)
            .map(|i| Socket {
                inode: i as u64 + 1,
                ..Socket::listening(Protocol::Udp, "0.0.0.0", (i % 60_000) as u16)
            })
            .collect();
        let want = sockets.clone();
        let entries = each_socket(sockets, Entry::bare);
        let got: Vec<Socket> = entries.into_iter().map(|e| e.socket).collect();
        assert_eq!(got, want);
    }
}
