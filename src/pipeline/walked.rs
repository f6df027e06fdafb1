//! `--netns all` answered from the kernel iterator's socket records: the pipeline's side.
//!
//! Attribution's BPF fd walk visits every socket any process holds, in every namespace, in one
//! pass. Asked to ([`emit`]), it writes each socket's own record beside its holder, and the
//! namespaces whose sockets it read whole ([`netns::walked`]'s gate) are listed from those
//! records, with their holders from the same pass; only the others are dumped over sock_diag.
//! `LSPORTS_NETNS_DUMP=all` dumps every namespace as before (for tests and measurements: both
//! must list the same).

use std::collections::HashSet;

use super::Plan;
use crate::config::{NetnsChoice, StateSelection};
use crate::filter;
use crate::model::{Entry, Socket};
use crate::process::Scan;
use crate::process::bpf::Emit;
use crate::source::Collected;
use crate::source::netns::{self, Pending, SocketInNetns};

/// The variable that makes `--netns all` dump every namespace (`all`).
pub const DUMP_VARIABLE: &str = "LSPORTS_NETNS_DUMP";

/// What the kernel iterator should write for `plan`: the sockets too for a `--netns all`
/// listing of listeners in the live kernel (a listing of every state needs the dumps for
/// TIME_WAIT and request sockets, which no fd holds), unless `LSPORTS_NETNS_DUMP=all`.
pub(super) fn emit(plan: &Plan) -> Emit {
    let asked = plan.netns == NetnsChoice::All
        && plan.needs.processes
        && plan.request.states == StateSelection::Listening
        && plan.request.snapshot.is_none()
        && std::env::var_os(DUMP_VARIABLE).is_none_or(|v| v != "all");
    let own = asked
        .then(|| netns::current_inode(&plan.proc_root))
        .flatten()
        .and_then(|inode| u32::try_from(inode).ok());
    match own {
        Some(except_netns) => Emit::Sockets { except_netns },
        None => Emit::Holders,
    }
}

/// The `-v` line for a `--netns all` that dumps every namespace without trying the walk
/// (`walks`: whether the kernel iterator runs and was asked for sockets), saying why.
pub(super) fn why_dumped(plan: &Plan, walks: bool) -> Option<String> {
    if plan.netns != NetnsChoice::All || plan.request.snapshot.is_some() || walks {
        return None;
    }
    let why = if std::env::var_os(DUMP_VARIABLE).is_some_and(|v| v == "all") {
        "LSPORTS_NETNS_DUMP=all"
    } else if plan.request.states != StateSelection::Listening {
        "every state is asked for, and TIME_WAIT and request sockets are no process's"
    } else if !plan.needs.processes {
        "no owners are asked for, so no BPF walk runs"
    } else {
        "owners come from the /proc walk, which reads no sockets"
    };
    Some(format!(
        "--netns all: every namespace dumped over sock_diag: {why}"
    ))
}

/// A pending `--netns all` while attribution runs: completed from the walk's records when it
/// read sockets, else left to be followed as before.
pub(super) struct Walking<'p> {
    pending: Option<Pending>,
    plan: &'p Plan,
    /// The namespaces dumped after the walk.
    dumped: HashSet<u64>,
    /// What completing it collected beyond the sockets handed to attribution: sockets that
    /// need a pass of their own, notes.
    more: Collected,
}

impl<'p> Walking<'p> {
    /// `pending` as [`netns::collect_counting`] or [`netns::collect_known`] left it.
    pub(super) fn new(pending: Pending, plan: &'p Plan) -> Self {
        Walking {
            pending: Some(pending),
            plan,
            dumped: HashSet::new(),
            more: Collected::default(),
        }
    }

    /// Out of the attribution's `scan`, before its entries are built: for a pending
    /// [`netns::collect_counting`], the sockets of every other namespace (from the walk's
    /// records where the gate lets them, else dumped), to be attributed with the same scan.
    /// A walk that read no sockets (the iterator fell back to the `/proc` walk) leaves the
    /// other namespaces dumped into [`Walking::finish`]'s sockets and the pending survey to be
    /// followed.
    pub(super) fn complete(&mut self, scan: &mut Scan) -> Vec<Socket> {
        let Some(pending) = self.pending.as_mut().filter(|p| p.counting()) else {
            return Vec::new();
        };
        let Some(records) = scan.walked.take() else {
            let rest = pending.dump_rest();
            absorb(&mut self.more, rest);
            return Vec::new();
        };
        let seen: Vec<SocketInNetns> = std::mem::take(&mut scan.socket_netns)
            .into_iter()
            .map(|(netns, h)| SocketInNetns {
                netns,
                pid: h.pid,
                fd: h.fd,
            })
            .collect();
        let Some(pending) = self.pending.take() else {
            return Vec::new();
        };
        let (mut collected, dumped) = pending.complete(records.into_records(), &seen);
        self.dumped = dumped;
        let sockets = std::mem::take(&mut collected.sockets);
        absorb(&mut self.more, collected);
        filter::keep_sockets(sockets, &self.plan.filter)
    }

    /// What is left: the survey, if not completed (to be followed), the namespaces dumped
    /// after the walk, and what else was collected.
    pub(super) fn finish(self) -> (Option<Pending>, HashSet<u64>, Collected) {
        (self.pending, self.dumped, self.more)
    }
}

/// Add `from`'s sockets, warnings, notes and coverage to `into`'s (its table reports are the current
/// namespace's, kept).
pub(super) fn absorb(into: &mut Collected, mut from: Collected) {
    into.sockets.append(&mut from.sockets);
    into.warnings.append(&mut from.warnings);
    into.notes.append(&mut from.notes);
    into.verbose_notes.append(&mut from.verbose_notes);
    into.coverage.absorb(from.coverage);
}

/// Take out of `entries` the sockets of the namespaces `dumped` after the walk that the walk
/// saw no holder of: a socket made after the walk visited its process would otherwise be
/// shown as the kernel's. They get a pass of their own (so do kernel sockets, which have no
/// holder to find).
pub(super) fn unheld(entries: &mut Vec<Entry>, dumped: &HashSet<u64>) -> Vec<Socket> {
    if dumped.is_empty() {
        return Vec::new();
    }
    let late = |e: &Entry| {
        e.processes.is_empty()
            && e.socket.inode != 0
            && e.socket
                .netns
                .as_ref()
                .is_some_and(|ns| dumped.contains(&ns.inode))
    };
    let (late, kept): (Vec<Entry>, Vec<Entry>) =
        std::mem::take(entries).into_iter().partition(late);
    *entries = kept;
    late.into_iter().map(|e| e.socket).collect()
}
