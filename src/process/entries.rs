//! One [`Entry`] per socket from a [`Scan`]: its owners, one per pid, with their details, or
//! why it has none.
//!
//! The entries are made on one core. Made on two (the later of each two 512-socket chunks
//! here, the other offered to a second thread and taken back if it had not started it), they
//! were not faster in the large world (25,000 sockets; `LSPORTS_TIMING=1`, from "scan
//! finished" to "owners found", 15 and 20 interleaved runs on a loaded 2-core machine):
//! medians 10.0 and 14.3 ms on one core against 10.8 and 27.4 on two, best runs 5.6 against
//! 6.3 ms. Handing each chunk over and waiting for it was worse: median 21.5 against 13.9 ms
//! (12 runs), with runs of 84–94 ms where the other thread was not scheduled in time. Why two
//! cores gained nothing even at best was not measured; every owner's allocation takes the one
//! allocator lock (`sys::memory`), which the two threads would share.

use std::collections::HashMap;

use super::holders::Scan;
use super::info::ProcessDetails;
use crate::model::{Entry, Holder, OwnerProcess, OwnerUnknownReason, Owners, Socket};

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
fn owner_processes(holders: &[Holder], details: &HashMap<u32, ProcessDetails>) -> Owners {
    // Sized to the pids exactly (the holders are sorted by pid): a list is never grown nor
    // left with spare room, and a socket held by one process or none allocates nothing.
    let pids = holders.chunk_by(|a, b| a.pid == b.pid).count();
    let mut owners = Owners::with_capacity(pids);
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
    if socket.is_minisock() {
        OwnerUnknownReason::Minisock
    } else if socket.inode == 0 {
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

    fn sockets(count: usize) -> Vec<Socket> {
        (0..count)
            .map(|i| Socket {
                inode: i as u64 + 1,
                ..Socket::listening(Protocol::Udp, "0.0.0.0", (i % 60_000) as u16)
            })
            .collect()
    }

    #[test]
    fn entries_keep_the_sockets_order_across_chunks() {
        // Whatever the count: none, less than a chunk, chunks and a remainder.
        for count in [0, 1, CHUNK, 2 * CHUNK + 123] {
            let want = sockets(count);
            let entries = each_socket(want.clone(), Entry::bare);
            let got: Vec<Socket> = entries.into_iter().map(|e| e.socket).collect();
            assert_eq!(got, want, "{count} sockets");
        }
    }

    /// A listing of several chunks, where one socket is held by 150 processes
    /// through one to three fds each (a prefork server's listener, say) and every other by
    /// one or two processes: each socket gets exactly its own owners, one per pid with its
    /// lowest fd and its own name, in pid order, wherever the socket fell in the chunks.
    #[test]
    fn many_holders_across_processes_are_matched_exactly() {
        let count = CHUNK * 4 + 77;
        let shared = (count / 2) as u64 + 1; // the inode in the middle of the listing
        let mut pairs = Vec::new();
        for pid in 1000..1150u32 {
            for fd in 0..=(pid % 3) {
                pairs.push((shared, Holder { pid, fd: 40 - fd }));
            }
        }
        for inode in (1..=count as u64).filter(|&i| i != shared) {
            let pid = inode as u32 % 900 + 2;
            pairs.push((inode, Holder { pid, fd: 3 }));
            if inode % 7 == 0 {
                pairs.push((
                    inode,
                    Holder {
                        pid: pid + 1000,
                        fd: 9,
                    },
                ));
            }
        }
        let mut by_inode: HashMap<u64, Vec<Holder>> = HashMap::new();
        for &(inode, holder) in &pairs {
            by_inode.entry(inode).or_default().push(holder);
        }
        let details = (1..2200u32)
            .map(|pid| {
                let name = format!("p{pid}");
                (
                    pid,
                    ProcessDetails {
                        name: Some(name.as_str().into()),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let scan = Scan {
            holders: super::super::holders::Holders::from_pairs(pairs),
            details,
            ..Scan::default()
        };
        let entries = build(sockets(count), &scan, View::default());
        assert_eq!(entries.len(), count);
        for entry in &entries {
            // What the owners must be, worked out apart from the scan's sorted columns.
            let mut lowest: HashMap<u32, u32> = HashMap::new();
            for holder in &by_inode[&entry.socket.inode] {
                let fd = lowest.entry(holder.pid).or_insert(holder.fd);
                *fd = (*fd).min(holder.fd);
            }
            let mut want: Vec<(u32, u32, String)> = (lowest.into_iter())
                .map(|(pid, fd)| (pid, fd, format!("p{pid}")))
                .collect();
            want.sort_unstable();
            let got: Vec<(u32, u32, String)> = (entry.processes.iter())
                .map(|p| {
                    let name = p.name.as_deref().unwrap_or_default();
                    (p.pid, p.fd, String::from_utf8_lossy(name).into_owned())
                })
                .collect();
            assert_eq!(got, want, "inode {}", entry.socket.inode);
            assert_eq!(entry.owner_unknown, None);
        }
        let widest = entries.iter().find(|e| e.socket.inode == shared).unwrap();
        assert_eq!(widest.processes.len(), 150);
        assert_eq!(
            widest.processes[1].fd, 38,
            "pid 1001 holds it through 38, 39 and 40"
        );
    }
}
