//! Labelling a listing: every holder from its `/proc/PID/cgroup`, every socket from its own
//! cgroup (`INET_DIAG_CGROUP_ID`) or else from its holders', and a socket that systemd's
//! socket activation made with both units (`sshd.socket → sshd.service`).
//!
//! Each process's cgroup file is read once, however many sockets it holds, and each cgroup
//! path is derived once ([`Labeler`]); the cgroup tree is walked only when a socket carries a
//! cgroup id. A process that cannot be read (gone, or hidden) gets no labels, not an error:
//! labels are a description, and the listing is right without them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::activation::{Activations, Query};
use super::{Labeler, Labels};
use crate::model::{Entry, Holder};
use crate::sys::procroot::ProcRoot;

/// Where labels are read from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// Root of the proc filesystem (`/proc`, or `--proc-root`).
    pub proc_root: &'a Path,
    /// Root under which runtime state files and unit files are read (`/` on a live system).
    pub state_root: &'a Path,
}

/// Label every entry of `entries` and each of its holders.
pub fn label_entries(entries: &mut [Entry], sources: Sources<'_>) {
    let proc = ProcRoot::open(sources.proc_root).ok();
    let mut labeler = Labeler::new(sources.state_root);
    let mut by_pid: HashMap<u32, Option<Arc<Labels>>> = HashMap::new();
    let mut activations = proc
        .as_ref()
        .map(|proc| Activations::new(proc, sources.state_root));
    for entry in entries.iter_mut() {
        for process in &mut entry.processes {
            let labels = by_pid
                .entry(process.pid)
                .or_insert_with(|| process_labels(proc.as_ref(), &mut labeler, process.pid));
            process.labels = labels.clone();
        }
        entry.labels = socket_labels(entry, &mut labeler, activations.as_mut());
    }
}

/// The labels of each process of `pids` whose `/proc/PID/cgroup` can be read (one labeler for
/// all, so each cgroup path is derived and each state file read once).
pub fn process_labels_of(pids: &[u32], sources: Sources<'_>) -> Vec<Arc<Labels>> {
    let proc = ProcRoot::open(sources.proc_root).ok();
    let mut labeler = Labeler::new(sources.state_root);
    (pids.iter())
        .filter_map(|&pid| process_labels(proc.as_ref(), &mut labeler, pid))
        .collect()
}

/// The labels of process `pid`, from its `/proc/PID/cgroup`; `None` if it cannot be read.
fn process_labels(proc: Option<&ProcRoot>, labeler: &mut Labeler, pid: u32) -> Option<Arc<Labels>> {
    let content = proc?.read_file(&format!("{pid}/cgroup")).ok()?;
    Some(labeler.for_process_cgroup(&content))
}

/// The socket's own cgroup's labels when they name something, else the first holder's that
/// do; with the socket unit and service when activation made it.
fn socket_labels(
    entry: &Entry,
    labeler: &mut Labeler,
    activations: Option<&mut Activations<'_>>,
) -> Option<Arc<Labels>> {
    let cgroup = entry
        .socket
        .cgroup_id
        .and_then(|id| labeler.cgroup_path(id.get()).map(<[u8]>::to_vec));
    let own = cgroup.as_deref().map(|path| labeler.for_cgroup_path(path));
    let named = |l: &Arc<Labels>| l.unit.is_some() || l.container.is_some();
    let base = own.filter(named).or_else(|| {
        let mut holders = entry.processes.iter().filter_map(|p| p.labels.as_ref());
        holders.find(|l| named(l)).cloned()
    });
    let activation = activations.and_then(|activations| {
        let holders: Vec<Holder> = (entry.processes.iter())
            .map(|p| Holder {
                pid: p.pid,
                fd: p.fd,
            })
            .collect();
        activations.resolve(&Query {
            socket: &entry.socket,
            cgroup: cgroup.as_deref(),
            holders: &holders,
        })
    });
    let Some(activation) = activation else {
        return base;
    };
    let unit = match &activation.service {
        Some(service) => format!("{} → {service}", activation.socket_unit),
        None => activation.socket_unit.clone(),
    };
    let container = base.and_then(|b| b.container.clone());
    Some(Arc::new(Labels {
        unit: Some(unit),
        container,
    }))
}
