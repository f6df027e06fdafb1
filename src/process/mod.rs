//! Who holds each socket: socket inodes are mapped to every (pid, fd) holding them, then
//! details are read for just those pids.
//!
//! Two ways find the holders ([`strategy`]): the kernel's BPF `task_file` iterator ([`bpf`]),
//! one pass in the kernel where root may load it, and the `/proc/*/fd` walk ([`fdscan`]), one
//! `readlinkat` per fd, which works for anyone and is faster on small hosts. Both give the
//! same [`fdscan::FdScan`], so the listing does not depend on which ran.

pub mod at;
pub mod bpf;
pub mod confirm;
pub mod fdscan;
pub mod holders;
pub mod info;
pub mod strategy;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;

use crate::config::{AttributionChoice, DetailFields};
use crate::model::{Entry, Holder, OwnerProcess, OwnerUnknownReason, Socket};
pub use bpf::BpfUnavailable;
use info::ProcessDetails;
pub use strategy::{Method, Scanned};

/// Sockets with their owners, and what the scan could not see.
#[derive(Debug, Default)]
pub struct Attributed {
    /// One entry per socket.
    pub entries: Vec<Entry>,
    /// User processes whose fds could not be read.
    pub denied: usize,
    /// Processes scanned: by the walk, every process read; by the BPF iterator, every process
    /// holding at least one socket (it never sees the others).
    pub scanned: usize,
    /// Set when `/proc` itself could not be scanned.
    pub scan_error: Option<io::Error>,
    /// Which way the owners were found, and why the BPF iterator was not used.
    pub method: Method,
}

/// Attribution begun before the sockets are collected, so the walk, or the loading of the
/// BPF iterator, overlaps with the collection (the iterator's pass itself runs once
/// [`Started::finish`] is given the collected sockets).
///
/// A `Started` dropped unfinished (nothing was collected) leaves its thread to end on its own:
/// the iterator holds nothing but file descriptors, closed when it ends or the process exits.
#[derive(Debug)]
pub struct Started {
    scan: strategy::Started,
    /// Processes outside this PID namespace may hold sockets unseen.
    nested: bool,
}

/// Start attributing the way `choice` says, before the sockets are known, to read the name and
/// `fields` of each holder.
pub fn start(proc_root: &Path, choice: AttributionChoice, fields: DetailFields) -> Started {
    Started {
        scan: strategy::start(proc_root, choice, fields),
        nested: info::in_nested_pid_namespace(proc_root),
    }
}

impl Started {
    /// Attribute `sockets`. Fails only for [`AttributionChoice::Bpf`] when the iterator
    /// cannot run here, naming the missing piece.
    pub fn finish(self, sockets: Vec<Socket>) -> Result<Attributed, BpfUnavailable> {
        let scanned = self.scan.finish(wanted_inodes(&sockets))?;
        Ok(attributed(sockets, scanned, self.nested))
    }

    /// Attribute `sockets`, walking `/proc` when the BPF iterator cannot run, whatever the
    /// choice ([`Attributed::method`] says why): for callers with nowhere to report a refusal.
    pub fn finish_or_walk(self, sockets: Vec<Socket>) -> Attributed {
        let scanned = self.scan.finish_or_walk(wanted_inodes(&sockets));
        attributed(sockets, scanned, self.nested)
    }
}

/// The inodes worth looking for: 0 means no file refers to the socket.
fn wanted_inodes(sockets: &[Socket]) -> HashSet<u64> {
    sockets
        .iter()
        .map(|s| s.inode)
        .filter(|&i| i != 0)
        .collect()
}

/// One entry per socket, with its holders from `scanned`; `nested` when this PID namespace is
/// not the initial one.
fn attributed(sockets: Vec<Socket>, scanned: Scanned, nested: bool) -> Attributed {
    let (scan, scan_error) = match scanned.scan {
        Ok(scan) => (scan, None),
        Err(error) => (fdscan::FdScan::default(), Some(error)),
    };
    // A failed scan hides every owner: report it as a permission problem, the likely cause.
    let view = View {
        blind: scan.denied > 0 || scan_error.is_some(),
        nested,
    };
    let entries = sockets
        .into_iter()
        .map(|socket| {
            let holders = scan.holders.of(socket.inode);
            make_entry(socket, holders, &scan.details, view)
        })
        .collect();
    Attributed {
        entries,
        denied: scan.denied,
        scanned: scan.scanned,
        scan_error,
        method: scanned.method,
    }
}

/// What the scan could see, which decides why a socket without holders has none.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// Some processes could not be inspected, or `/proc` could not be scanned.
    pub blind: bool,
    /// The PID namespace is not the initial one: processes outside it are not seen.
    pub nested: bool,
}

fn make_entry(
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
