//! Labelling a listing: every socket from its own cgroup (`INET_DIAG_CGROUP_ID`) or else from
//! its holders', every holder from its cgroup when the output shows holders' labels, and a
//! socket that systemd's socket activation made with both units (`sshd.socket →
//! sshd.service`).
//!
//! Each process's cgroup is read at most once, however many sockets it holds, and each cgroup
//! path is derived once ([`Labeler`]); the cgroup tree is walked only when a socket carries a
//! cgroup id or many holders are read. Three things keep the reads few (measured in
//! `bench/compare.sh labels`, where the 1,000 processes' `/proc/PID/cgroup` reads were 11 of
//! the 20 ms the labels cost on a quiet machine):
//! - when only sockets' labels are shown ([`Scope::Sockets`]: the table's and CSV's columns,
//!   Prometheus), a holder's cgroup is read only for a socket whose own cgroup names no unit
//!   or container (or is not known): where every socket was made in its container's or
//!   unit's cgroup, no process's cgroup is read at all;
//! - where more holders must be read than there are cgroups, each cgroup's `cgroup.procs` is
//!   read once instead ([`Labeler::cgroup_members`]; only when the proc root is this PID
//!   namespace's `/proc`, whose pids those are). A process in the root cgroup is still read
//!   from its `/proc/PID/cgroup`, whose `name=systemd` line may say more on a hybrid host
//!   (unless that hierarchy is read instead: the last point). The paths are then the
//!   cgroup2 mount's, as for sockets' cgroup ids.
//! - where the kernel iterator found the holders, it read each one's cgroup v2 id as it
//!   visited the process (`Listing::holder_cgroups`): those take the place of the members,
//!   and no file is read for them at all (the root cgroup's, again, excepted).
//! - where many holders (members or found by the iterator) are in the cgroup2 root, the
//!   `name=systemd` hierarchy is read from its own tree instead of their files
//!   ([`SystemdHierarchy`]; only where that is sound, see [`super::hybrid`]): on a host
//!   whose hierarchy has no directory but its root, one directory listing. In the namespaces
//!   world (1,216 processes, all in both roots) the stage went from 6.0 to 1.2 ms (medians,
//!   `LSPORTS_TIMING=1`; the numbers and how they were measured are in [`super::hybrid`]).
//!
//! A process that cannot be read (gone, or hidden) gets no labels, not an error: labels are a
//! description, and the listing is right without them.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::activation::{Activations, Query};
use super::hybrid::SystemdHierarchy;
use super::{Labeler, Labels};
use crate::model::{Entry, Holder};
use crate::sys::procroot::ProcRoot;
use crate::sys::timing::mark;

/// Where labels are read from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// Root of the proc filesystem (`/proc`, or `--proc-root`).
    pub proc_root: &'a Path,
    /// Root under which runtime state files and unit files are read (`/` on a live system).
    pub state_root: &'a Path,
}

/// Whose labels a run shows ([`crate::config::Needs::holder_labels`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Each socket's only: the holders are left unlabelled, and a holder's cgroup is read
    /// only where the socket's own cgroup names nothing.
    Sockets,
    /// Each socket's and each holder's (JSON, and the `--container`/`--unit` filters, which
    /// keep a socket by any holder's labels).
    SocketsAndHolders,
}

/// Label every entry of `entries`, and each of its holders under
/// [`Scope::SocketsAndHolders`]. `known` is the cgroup v2 id of holders whose cgroup is known
/// already, by pid (the kernel iterator reads each process's): no file is read for those,
/// unless the id is the root's or names no cgroup of the cgroup2 mount.
pub fn label_entries(
    entries: &mut [Entry],
    sources: Sources<'_>,
    scope: Scope,
    known: &HashMap<u32, u64>,
) {
    let proc = ProcRoot::open(sources.proc_root).ok();
    let mut labeler = Labeler::new(sources.state_root);
    let own: Vec<Option<Arc<Labels>>> = (entries.iter())
        .map(|entry| own_labels(entry, &mut labeler))
        .collect();
    mark("labels: sockets' own cgroups");
    let mut holders = HolderLabels::new(proc.as_ref());
    // The pids are this PID namespace's: they name these processes only in its `/proc`.
    let ours = proc.as_ref().is_some_and(is_ours);
    if ours {
        holders.members.clone_from(known);
    }
    let needed = holders_needed(entries, &own, scope);
    let wanted = (needed.iter())
        .filter(|pid| !holders.members.contains_key(pid))
        .count();
    if wanted >= MEMBERS_FROM && ours {
        holders.use_members_if_fewer(&mut labeler, wanted);
        mark("labels: cgroup members read");
    }
    if let Some(proc) = proc.as_ref().filter(|_| ours) {
        holders.use_systemd_hierarchy_if_many(proc, &mut labeler, &needed);
    }
    let mut activations = proc
        .as_ref()
        .map(|proc| Activations::new(proc, sources.state_root));
    for (entry, own) in entries.iter_mut().zip(own) {
        if scope == Scope::SocketsAndHolders {
            for process in &mut entry.processes {
                process.labels = holders.of(&mut labeler, process.pid);
            }
        }
        let base = own.filter(named).or_else(|| {
            (entry.processes.iter()).find_map(|p| holders.of(&mut labeler, p.pid).filter(named))
        });
        entry.labels = with_activation(entry, base, &mut labeler, activations.as_mut());
    }
}

/// Holders to read at least this many before the cgroups' `cgroup.procs` may be read instead
/// of their `/proc/PID/cgroup`: below it, walking the cgroup tree (when no socket's cgroup id
/// asked for it) costs more than it saves.
const MEMBERS_FROM: usize = 64;

/// The labels of the socket's own cgroup (`INET_DIAG_CGROUP_ID`), if the kernel sent its id
/// and a cgroup has it.
fn own_labels(entry: &Entry, labeler: &mut Labeler) -> Option<Arc<Labels>> {
    labeler.for_cgroup_id(entry.socket.cgroup_id?.get())
}

/// Whether labels name a unit or a container.
fn named(labels: &Arc<Labels>) -> bool {
    labels.unit.is_some() || labels.container.is_some()
}

/// The distinct holders whose cgroups the run will read at most: every holder with
/// [`Scope::SocketsAndHolders`], else those of sockets whose own cgroup names nothing.
fn holders_needed(entries: &[Entry], own: &[Option<Arc<Labels>>], scope: Scope) -> HashSet<u32> {
    let needs_holders = |own: &Option<Arc<Labels>>| {
        scope == Scope::SocketsAndHolders || !own.as_ref().is_some_and(named)
    };
    let mut last = None;
    (entries.iter().zip(own))
        .filter(|(_, own)| needs_holders(own))
        .flat_map(|(entry, _)| entry.processes.iter().map(|p| p.pid))
        // A process's sockets mostly come together: a pid like the last costs no lookup.
        .filter(|&pid| last.replace(pid) != Some(pid))
        .collect()
}

/// Whether `proc` is the `/proc` of this process's PID namespace (its `self` is this process),
/// so that pids in `cgroup.procs` are its pids.
fn is_ours(proc: &ProcRoot) -> bool {
    proc.read_link("self")
        .is_ok_and(|link| link == std::process::id().to_string().as_bytes())
}

/// The labels of each process of `pids` whose `/proc/PID/cgroup` can be read (one labeler for
/// all, so each cgroup path is derived and each state file read once).
pub fn process_labels_of(pids: &[u32], sources: Sources<'_>) -> Vec<Arc<Labels>> {
    let proc = ProcRoot::open(sources.proc_root).ok();
    let mut labeler = Labeler::new(sources.state_root);
    let mut holders = HolderLabels::new(proc.as_ref());
    (pids.iter())
        .filter_map(|&pid| holders.of(&mut labeler, pid))
        .collect()
}

/// Processes' labels, each read the first time it is asked for: from the cgroup
/// [`Labeler::cgroup_members`] puts it in, when it was read, else from its
/// `/proc/PID/cgroup`.
struct HolderLabels<'p> {
    proc: Option<&'p ProcRoot>,
    by_pid: HashMap<u32, Option<Arc<Labels>>>,
    /// The last pid asked for and its labels: a process's sockets mostly come together (the
    /// kernel iterator's records, and so the sockets it read, come process by process).
    last: Option<(u32, Option<Arc<Labels>>)>,
    members: HashMap<u32, u64>,
    /// The `name=systemd` hierarchy, read when many members are in the cgroup2 root: where
    /// each of those is in it, without its `/proc/PID/cgroup`.
    systemd: Option<SystemdHierarchy>,
}

impl<'p> HolderLabels<'p> {
    fn new(proc: Option<&'p ProcRoot>) -> Self {
        HolderLabels {
            proc,
            by_pid: HashMap::new(),
            last: None,
            members: HashMap::new(),
            systemd: None,
        }
    }

    /// Read each cgroup's members once, when the cgroups are fewer than the `wanted`
    /// processes (one `cgroup.procs` read per cgroup against one `/proc/PID/cgroup` per
    /// process), for the processes whose cgroup is not known already.
    fn use_members_if_fewer(&mut self, labeler: &mut Labeler, wanted: usize) {
        if labeler.cgroup_count() < wanted {
            for (pid, id) in labeler.cgroup_members() {
                self.members.entry(pid).or_insert(id);
            }
        }
    }

    /// Read the `name=systemd` hierarchy from its tree when at least [`MEMBERS_FROM`] of the
    /// `needed` processes are members of the cgroup2 root, whose files would be read for
    /// that line alone; only where it has fewer cgroups than there are such processes.
    /// `proc` must be this PID namespace's `/proc`, whose pids the hierarchy's are.
    fn use_systemd_hierarchy_if_many(
        &mut self,
        proc: &ProcRoot,
        labeler: &mut Labeler,
        needed: &HashSet<u32>,
    ) {
        if self.members.is_empty() {
            return;
        }
        let Some(root) = labeler.root_id() else {
            return;
        };
        let at_root = (needed.iter())
            .filter(|pid| self.members.get(pid) == Some(&root))
            .count();
        if at_root >= MEMBERS_FROM {
            self.systemd = SystemdHierarchy::read(proc, at_root);
            mark("labels: name=systemd hierarchy read");
        }
    }

    /// The labels of process `pid`; `None` if its cgroup cannot be read.
    fn of(&mut self, labeler: &mut Labeler, pid: u32) -> Option<Arc<Labels>> {
        if let Some((last, labels)) = &self.last
            && *last == pid
        {
            return labels.clone();
        }
        let labels = match self.by_pid.get(&pid) {
            Some(known) => known.clone(),
            None => {
                let labels = self.read(labeler, pid);
                self.by_pid.insert(pid, labels.clone());
                labels
            }
        };
        self.last = Some((pid, labels.clone()));
        labels
    }

    /// The labels of process `pid`, from its cgroup among the members (and, in the root, the
    /// `name=systemd` hierarchy when it was read), else from its `/proc/PID/cgroup`.
    fn read(&self, labeler: &mut Labeler, pid: u32) -> Option<Arc<Labels>> {
        let member = self.members.get(&pid).copied();
        if let (Some(id), Some(systemd)) = (member, &self.systemd)
            && labeler.root_id() == Some(id)
        {
            return Some(labeler.for_cgroup_path(systemd.path_of(pid)));
        }
        member.and_then(|id| labeler.for_member_of(id)).or_else(|| {
            let content = self.proc?.read_file(&format!("{pid}/cgroup")).ok()?;
            Some(labeler.for_process_cgroup(&content))
        })
    }
}

/// `base` (the socket's own cgroup's labels when they name something, else the first
/// holder's that do), with the socket unit and service instead when activation made it.
fn with_activation(
    entry: &Entry,
    base: Option<Arc<Labels>>,
    labeler: &mut Labeler,
    activations: Option<&mut Activations<'_>>,
) -> Option<Arc<Labels>> {
    let pids = entry.processes.iter().map(|p| p.pid);
    let Some(activations) = activations.filter(|a| a.held_by_manager(pids)) else {
        return base;
    };
    let holders: Vec<Holder> = (entry.processes.iter())
        .map(|p| Holder {
            pid: p.pid,
            fd: p.fd,
        })
        .collect();
    let id = entry.socket.cgroup_id.map(|id| id.get());
    let cgroup = id.and_then(|id| labeler.cgroup_path(id));
    let Some(activation) = activations.resolve(&Query {
        socket: &entry.socket,
        cgroup,
        holders: &holders,
    }) else {
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
