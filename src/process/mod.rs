//! Who holds each socket: socket inodes are mapped to every (pid, fd) holding them, then
//! details are read for just those pids.
//!
//! Attribution reads in one pass, from [`start`] to [`Attributed`]:
//!
//! ```text
//! start(proc_root, choice)  ->  Started { plan }      before the sockets are collected
//!   strategy::plan: Plan::Walk   fdscan::Walk          the /proc/*/fd walk, already walking
//!                   Plan::Bpf    bpf::Pass             the kernel iterator, loading
//!                   Plan::Refused                      `--attribution bpf` that cannot run
//! Started::finish(sockets)  ->  Scan                   the same shape from either path
//!                           ->  Attributed             one Entry per socket, the Method, warnings
//! ```
//!
//! Two paths find the holders ([`strategy`] chooses): the kernel's BPF `task_file` iterator
//! ([`bpf`]), one pass in the kernel where root may load it, and the `/proc/*/fd` walk
//! ([`fdscan`]), one `readlinkat` per fd, which works for anyone and is faster on small hosts.
//! Both give the same [`Scan`], so the listing does not depend on which ran. The walk runs
//! while the sockets are collected; the kernel iterator only loads meanwhile, and visits the
//! processes once the sockets are known (see [`bpf::iterator::run`] for why).

pub mod bpf;
pub mod confirm;
pub mod entries;
pub mod fdscan;
pub mod holders;
pub mod info;
pub mod strategy;

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{AttributionChoice, DetailFields};
use crate::error::ParseWarning;
use crate::model::{Entry, Socket};
use crate::text::counts::count;
pub use bpf::BpfUnavailable;
pub use holders::Scan;
pub use strategy::Method;

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
    /// What went wrong on the way; each says whether it is shown without `--verbose`
    /// ([`ScanWarning::always_shown`]).
    pub warnings: Vec<ScanWarning>,
    /// The socket fds seen that hold none of the sockets attributed, when
    /// [`Started::keep_unwanted`] asked for them and the path that ran kept them.
    pub unwanted: Option<Vec<(u64, crate::model::Holder)>>,
    /// Where the kernel iterator ran: every network namespace a socket of a process was in,
    /// each with one (pid, fd) that held such a socket ([`Scan::socket_netns`]); `None` from
    /// the walk.
    pub socket_netns: Option<std::collections::BTreeMap<u64, crate::model::Holder>>,
    /// Where the kernel iterator was asked for sockets: their records ([`Scan::walked`]).
    pub walked: Option<bpf::records::WalkedRecords>,
    /// Where the kernel iterator ran: each holder's cgroup v2 id ([`Scan::cgroups`]); empty
    /// from the walk.
    pub cgroups: std::collections::HashMap<u32, u64>,
    /// Processes hidden from `/proc` by a mount over their directory, sorted: those the
    /// kernel iterator named as holders, or the walk read holding a socket past the mount; and
    /// those whose fds the walk could not read (it cannot tell what they hold). Sockets
    /// without a holder they hold, or may hold, say [`OwnerUnknownReason::Hidden`].
    ///
    /// [`OwnerUnknownReason::Hidden`]: crate::model::OwnerUnknownReason::Hidden
    pub hidden_pids: Vec<u32>,
    /// Whether `hidden_pids` are the holders, named by the kernel iterator or read past the
    /// mount by the walk; `false` when some are only possible ones (the walk could not read
    /// a hidden process's fds: see [`fdscan::hidden_holders`]).
    pub hidden_named: bool,
}

/// Something the scan met that the user may need to know, on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanWarning {
    /// A thread of the `/proc` walk panicked: the processes it had taken were not inspected,
    /// so their sockets show no owner (reason "permission", as for a failed scan).
    WalkerFailed {
        /// Processes taken by the thread, whose results were lost.
        processes: usize,
        /// The panic's message.
        message: String,
    },
    /// A process file was read but did not parse (a `status` without a usable `Uid:` line):
    /// the field is left unknown. The live kernel writes these files well-formed; a fixture
    /// tree or an edited snapshot may not.
    Unparsed(ParseWarning),
}

impl ScanWarning {
    /// Whether the warning is shown without `--verbose`: a failed walker hides owners that
    /// are there, while an unknown uid is visible in the listing itself.
    pub fn always_shown(&self) -> bool {
        matches!(self, ScanWarning::WalkerFailed { .. })
    }

    /// Whether owners may be missing because of it.
    pub fn hides_owners(&self) -> bool {
        matches!(self, ScanWarning::WalkerFailed { .. })
    }
}

impl fmt::Display for ScanWarning {
    /// The stderr line, without the `lsports: ` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanWarning::WalkerFailed { processes, message } => write!(
                f,
                "{} not inspected: a /proc walk thread failed ({message}), so their sockets may \
                 show no owner; this is a bug in lsports, please report it",
                count(*processes, "process")
            ),
            ScanWarning::Unparsed(warning) => write!(f, "warning: {warning}"),
        }
    }
}

/// Attribution begun before the sockets are collected: the walk runs, or the kernel iterator
/// loads, while they are; [`Started::finish`] attributes the collected sockets.
///
/// A `Started` dropped unfinished (nothing was collected) stops its walk, or leaves its
/// iterator thread to end on its own: it holds nothing but file descriptors, closed when it
/// ends or the process exits.
#[derive(Debug)]
pub struct Started {
    proc_root: PathBuf,
    fields: DetailFields,
    plan: strategy::Plan,
    /// Processes outside this PID namespace may hold sockets unseen.
    nested: bool,
}

/// Start attributing the way `choice` says, before the sockets are known, to read the name and
/// `fields` of each holder.
pub fn start(proc_root: &Path, choice: AttributionChoice, fields: DetailFields) -> Started {
    start_emitting(proc_root, choice, fields, bpf::Emit::Holders)
}

/// [`start`], with the kernel iterator, if it is the path chosen, writing what `emit` asks
/// for; one asked for sockets waits for [`Started::go`] before its pass.
pub fn start_emitting(
    proc_root: &Path,
    choice: AttributionChoice,
    fields: DetailFields,
    emit: bpf::Emit,
) -> Started {
    Started {
        proc_root: proc_root.to_path_buf(),
        fields,
        plan: strategy::plan_emitting(proc_root, choice, fields, emit),
        nested: info::in_nested_pid_namespace(proc_root),
    }
}

impl Started {
    /// Keep the socket fds that hold none of the sockets to attribute too
    /// ([`Attributed::unwanted`]), where the path chosen can (the walk): whether it will.
    pub fn keep_unwanted(&self) -> bool {
        self.plan.keep_unwanted()
    }

    /// Whether the path chosen is the kernel iterator, which names the network namespace of
    /// every socket held ([`Attributed::socket_netns`]) unless it falls back to the walk.
    pub fn names_socket_netns(&self) -> bool {
        self.plan.names_socket_netns()
    }

    /// Let a kernel iterator started to read sockets ([`start_emitting`]) begin its pass;
    /// finishing lets it too.
    pub fn go(&mut self) {
        self.plan.go();
    }

    /// Something to wait on until the kernel iterator's first pass has visited every process
    /// (or ended without doing so), where it runs on a thread of its own; `None` on any other
    /// path.
    pub fn first_pass_end(&self) -> Option<bpf::pass::PassEnd> {
        self.plan.first_pass_end()
    }

    /// Attribute `sockets`. Fails only for [`AttributionChoice::Bpf`] when the iterator
    /// cannot run here, naming the missing piece.
    pub fn finish(self, sockets: Vec<Socket>) -> Result<Attributed, BpfUnavailable> {
        let wanted = wanted_inodes(&sockets);
        let (scan, method) = self.plan.finish(&self.proc_root, self.fields, wanted)?;
        Ok(attributed(
            sockets,
            scan,
            method,
            seen(&self.proc_root, self.nested),
        ))
    }

    /// [`Started::finish`] (or, with `or_walk`, [`Started::finish_or_walk`]) of `sockets` and
    /// of those `more` makes of the scan before the entries are built: `--netns all` takes
    /// the sockets the kernel iterator read out of it ([`Scan::walked`]), whose holders the
    /// scan has.
    pub fn finish_adding(
        self,
        mut sockets: Vec<Socket>,
        or_walk: bool,
        more: impl FnOnce(&mut Scan) -> Vec<Socket>,
    ) -> Result<Attributed, BpfUnavailable> {
        let wanted = wanted_inodes(&sockets);
        let (mut scan, method) = match or_walk {
            true => self
                .plan
                .finish_or_walk(&self.proc_root, self.fields, wanted),
            false => self.plan.finish(&self.proc_root, self.fields, wanted)?,
        };
        let mut added = match &mut scan {
            Ok(scan) => more(scan),
            Err(_) => more(&mut Scan::default()),
        };
        // The larger vector takes the other in: the two copies of the sockets side by side
        // would be the run's peak (`--netns all` adds most of them).
        if added.len() > sockets.len() {
            added.splice(0..0, sockets);
            sockets = added;
        } else {
            sockets.extend(added);
        }
        Ok(attributed(
            sockets,
            scan,
            method,
            seen(&self.proc_root, self.nested),
        ))
    }

    /// Attribute `sockets`, walking `/proc` when the BPF iterator cannot run, whatever the
    /// choice ([`Attributed::method`] says why): for callers with nowhere to report a refusal.
    pub fn finish_or_walk(self, sockets: Vec<Socket>) -> Attributed {
        let wanted = wanted_inodes(&sockets);
        let (scan, method) = self
            .plan
            .finish_or_walk(&self.proc_root, self.fields, wanted);
        attributed(sockets, scan, method, seen(&self.proc_root, self.nested))
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

/// What a scan could not see, whatever it found.
#[derive(Debug, Default)]
struct Seen {
    /// This PID namespace is not the initial one.
    nested: bool,
    /// Pids whose `/proc` directory has a mount over it ([`info::overmounted_pids`]).
    overmounted: Vec<u32>,
    /// Where they were found, to read their fds past the mount.
    proc_root: PathBuf,
}

/// What the scan under `proc_root` could see, asked once it has run: a process hidden from
/// `/proc` after the scan began is one it could not read.
fn seen(proc_root: &Path, nested: bool) -> Seen {
    Seen {
        nested,
        overmounted: info::overmounted_pids(proc_root),
        proc_root: proc_root.to_path_buf(),
    }
}

/// One entry per socket, with its holders from `scan` (found the way `method` says), seen as
/// `seen` says.
fn attributed(
    sockets: Vec<Socket>,
    scan: io::Result<Scan>,
    method: Method,
    seen: Seen,
) -> Attributed {
    let (mut scan, scan_error) = match scan {
        Ok(scan) => (scan, None),
        Err(error) => (Scan::default(), Some(error)),
    };
    // A failed scan hides every owner: report it as a permission problem, the likely cause.
    let view = entries::View {
        blind: scan.denied > 0
            || scan_error.is_some()
            || scan.warnings.iter().any(ScanWarning::hides_owners),
        nested: seen.nested,
    };
    crate::sys::timing::mark("scan finished");
    let mut entries = entries::build(sockets, &scan, view);
    let (hidden_pids, hidden_named) = match seen.overmounted.is_empty() {
        true => (Vec::new(), true),
        false => blame_hidden(&mut entries, &scan, &method, &seen),
    };
    let socket_netns =
        matches!(method, Method::Bpf(_)).then(|| std::mem::take(&mut scan.socket_netns));
    let mut warnings = std::mem::take(&mut scan.warnings);
    warnings.extend(unparsed(&scan));
    Attributed {
        entries,
        denied: scan.denied,
        scanned: scan.scanned,
        scan_error,
        method,
        warnings,
        unwanted: scan.unwanted.take(),
        socket_netns,
        walked: scan.walked.take(),
        cgroups: std::mem::take(&mut scan.cgroups),
        hidden_pids,
        hidden_named,
    }
}

/// Mark the sockets whose holder may be one of the `overmounted` processes, hidden from
/// `/proc`, as [`OwnerUnknownReason::Hidden`]: those the kernel iterator named as held by
/// one; from the walk, those it read in their fd tables past the mount
/// ([`fdscan::hidden_holders`]), and, where it could not, every socket it found no holder of
/// (but inode 0 ones, which no file refers to). The hidden pids that hold, or may hold, a
/// socket shown, and whether they were named as its holders (not only possible ones).
///
/// [`OwnerUnknownReason::Hidden`]: crate::model::OwnerUnknownReason::Hidden
fn blame_hidden(
    entries: &mut [Entry],
    scan: &Scan,
    method: &Method,
    seen: &Seen,
) -> (Vec<u32>, bool) {
    use crate::model::OwnerUnknownReason;
    let overmounted = &seen.overmounted;
    let (named, unread) = match method {
        Method::Bpf(_) => {
            let hidden = |(_, holder): &&(u64, crate::model::Holder)| {
                overmounted.binary_search(&holder.pid).is_ok()
            };
            let named = scan.unshown.iter().filter(hidden).copied().collect();
            (named, Vec::new())
        }
        _ => {
            let read = fdscan::hidden_holders(&seen.proc_root, overmounted);
            (read.holders, read.unread)
        }
    };
    let mut pids = Vec::new();
    for entry in entries.iter_mut() {
        if !entry.processes.is_empty() || entry.socket.inode == 0 {
            continue;
        }
        let holders = named
            .iter()
            .filter(|(inode, _)| *inode == entry.socket.inode);
        let before = pids.len();
        pids.extend(holders.map(|(_, holder)| holder.pid));
        pids.extend(&unread);
        if pids.len() == before {
            continue;
        }
        entry.owner_unknown = Some(OwnerUnknownReason::Hidden);
    }
    pids.sort_unstable();
    pids.dedup();
    (pids, unread.is_empty())
}

/// The files of the holders that did not parse, in pid order.
fn unparsed(scan: &Scan) -> Vec<ScanWarning> {
    let mut pids: Vec<&u32> = scan.details.keys().collect();
    pids.sort_unstable();
    pids.into_iter()
        .flat_map(|pid| &scan.details[pid].warnings)
        .map(|warning| ScanWarning::Unparsed(warning.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Holder, OwnerUnknownReason, Protocol};
    use info::ProcessDetails;

    fn socket(inode: u64) -> Socket {
        Socket {
            inode,
            uid: 0,
            ..Socket::listening(Protocol::Tcp, "127.0.0.1", 8000 + inode as u16)
        }
    }

    #[test]
    fn a_failed_walker_leaves_ownerless_sockets_unexplained_not_kernel() {
        let lost = ScanWarning::WalkerFailed {
            processes: 3,
            message: "boom".into(),
        };
        let scan = Scan {
            holders: holders::Holders::from_pairs(vec![(1, Holder { pid: 7, fd: 3 })]),
            warnings: vec![lost.clone()],
            ..Scan::default()
        };
        let got = attributed(
            vec![socket(1), socket(2)],
            Ok(scan),
            Method::Walk,
            Seen::default(),
        );
        assert_eq!(got.entries[0].processes[0].pid, 7);
        // Owned by root, held by nobody seen: "kernel" were every process inspected.
        assert_eq!(
            got.entries[1].owner_unknown,
            Some(OwnerUnknownReason::Permission)
        );
        assert_eq!(got.warnings, std::slice::from_ref(&lost));
        assert!(lost.always_shown());
        let line = lost.to_string();
        assert!(line.starts_with("3 processes not inspected: a /proc walk thread failed (boom)"));
        // Without the warning, the same scan says "kernel".
        let whole = attributed(
            vec![socket(2)],
            Ok(Scan::default()),
            Method::Walk,
            Seen::default(),
        );
        let reason = whole.entries[0].owner_unknown;
        assert_eq!(reason, Some(OwnerUnknownReason::Kernel));
    }

    #[test]
    fn a_walk_that_cannot_read_a_hidden_process_says_it_may_hold_every_ownerless_socket() {
        // No proc tree to copy: the hidden pid's fds cannot be read past its mount.
        let seen = Seen {
            nested: false,
            overmounted: vec![41],
            proc_root: PathBuf::from("/nonexistent/proc"),
        };
        let scan = Scan {
            holders: holders::Holders::from_pairs(vec![(1, Holder { pid: 7, fd: 3 })]),
            ..Scan::default()
        };
        let no_file = Socket {
            inode: 0,
            ..socket(3)
        };
        let got = attributed(
            vec![socket(1), socket(2), no_file],
            Ok(scan),
            Method::Walk,
            seen,
        );
        let reasons: Vec<_> = got.entries.iter().map(|e| e.owner_unknown).collect();
        assert_eq!(
            reasons,
            [
                None,
                Some(OwnerUnknownReason::Hidden),
                Some(OwnerUnknownReason::Kernel)
            ]
        );
        assert_eq!(got.hidden_pids, [41]);
        assert!(!got.hidden_named, "only a possible holder");
    }

    #[test]
    fn holders_files_that_did_not_parse_are_warnings_for_verbose() {
        let unparsed = |pid: u32| ParseWarning {
            path: format!("/t/{pid}/status"),
            line: 2,
            field: "Uid",
            problem: "no uids".into(),
        };
        let details = |pid| ProcessDetails {
            warnings: vec![unparsed(pid)],
            ..ProcessDetails::default()
        };
        let scan = Scan {
            details: [(9, details(9)), (4, details(4))].into(),
            ..Scan::default()
        };
        let got = attributed(Vec::new(), Ok(scan), Method::Walk, Seen::default());
        let want = [4, 9].map(|pid| ScanWarning::Unparsed(unparsed(pid)));
        assert_eq!(got.warnings, want, "in pid order");
        assert!(!want[0].always_shown() && !want[0].hides_owners());
        assert_eq!(
            want[0].to_string(),
            "warning: /t/4/status:2: field Uid: no uids"
        );
    }
}
