//! `--netns all` answered from the kernel iterator's socket records: the pipeline's side.
//!
//! Attribution's BPF fd walk visits every socket any process holds, in every namespace, in one
//! pass. Asked to ([`emit`]), it writes each socket's own record beside its holder, and the
//! namespaces whose sockets it read whole ([`netns::walked`]'s gate) are listed from those
//! records, with their holders from the same pass; only the others are dumped over sock_diag.
//! `LSPORTS_NETNS_DUMP=all` dumps every namespace as before (for tests and measurements: both
//! must list the same).

use std::collections::HashMap;

use super::Plan;
use crate::config::{NetnsChoice, StateSelection};
use crate::filter;
use crate::model::{Entry, Socket};
use crate::process::Scan;
use crate::process::bpf::Emit;
use crate::source::Collected;
use crate::source::netns::gate;
use crate::source::netns::sockstat::Counts;
use crate::source::netns::{self, Dumped, Pending, SocketInNetns};

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
    /// The namespaces dumped after the walk, with what their counts explain.
    dumped: Dumped,
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
            dumped: Dumped::new(),
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
    pub(super) fn finish(self) -> (Option<Pending>, Dumped, Collected) {
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
/// shown as the kernel's, so they get a pass of their own. Not those a namespace's counts
/// explain ([`netns::walked::surplus`]: the kernel's own, such as VXLAN's port, which no pass
/// would find a holder of): they stay, with the `-v` line that says so.
pub(super) fn unheld(entries: &mut Vec<Entry>, dumped: &Dumped) -> (Vec<Socket>, Option<String>) {
    if dumped.is_empty() {
        return (Vec::new(), None);
    }
    let ns_of = |e: &Entry| e.socket.netns.as_ref().map(|ns| ns.inode);
    let unheld = |e: &Entry| {
        e.processes.is_empty()
            && e.socket.inode != 0
            && ns_of(e).is_some_and(|ns| dumped.contains_key(&ns))
    };
    // Each dumped namespace's unheld sockets, as its counts count them.
    let mut tallies: HashMap<u64, Counts> = HashMap::new();
    for entry in entries.iter().filter(|e| unheld(e)) {
        let tally = tallies.entry(ns_of(entry).unwrap_or_default()).or_default();
        gate::count(tally, &entry.socket);
    }
    let explained = |ns: u64| {
        let surplus = dumped.get(&ns).copied().flatten();
        let tally = tallies.get(&ns).copied().unwrap_or_default();
        surplus.is_some_and(|surplus| surplus.beyond(&tally).is_some())
    };
    let late = |e: &Entry| unheld(e) && !ns_of(e).is_some_and(explained);
    let kernel = entries.iter().filter(|e| unheld(e) && !late(e)).count();
    // Taken out in place: a partition into two new vectors would hold every entry twice, the
    // run's peak (measured: 4.6 MiB more with 25,000 sockets).
    let late: Vec<Entry> = entries.extract_if(.., |e| late(e)).collect();
    let note = (kernel > 0).then(|| {
        format!(
            "--netns all: {} in the namespaces dumped no process holds, and their counts, \
             unchanged through the walk and the dump, say the kernel does: not looked for again",
            crate::text::counts::count(kernel, "socket")
        )
    });
    (late.into_iter().map(|e| e.socket).collect(), note)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Netns, Protocol};

    /// An entry of a UDP socket bound to `port` in namespace `ns`, held by `pid` if any.
    fn entry(ns: u64, port: u16, pid: Option<u32>) -> Entry {
        let mut entry = Entry::bare(Socket {
            inode: u64::from(port),
            netns: Some(Arc::new(Netns {
                inode: ns,
                name: None,
            })),
            ..Socket::listening(Protocol::Udp, "0.0.0.0", port)
        });
        entry.processes = (pid.into_iter())
            .map(|pid| crate::model::OwnerProcess {
                pid,
                fd: 3,
                name: None,
                cmdline: None,
                uid: None,
                labels: None,
            })
            .collect();
        entry
    }

    #[test]
    fn unheld_sockets_the_counts_explain_stay_and_the_rest_get_a_pass_of_their_own() {
        let one_udp = Counts {
            udp4: 1,
            ..Counts::default()
        };
        // 7: one kernel UDP socket explained. 8: two unheld, one explained. 9: dumped for
        // churn, nothing explained. 10: answered from the walk, not dumped.
        let dumped: Dumped = [(7, Some(one_udp)), (8, Some(one_udp)), (9, None)].into();
        let mut entries = vec![
            entry(7, 4789, None),
            entry(7, 53, Some(1)),
            entry(8, 51820, None),
            entry(8, 51821, None),
            entry(9, 5353, None),
            entry(10, 6000, None),
        ];
        let (late, note) = unheld(&mut entries, &dumped);
        let mut late: Vec<u16> = late.iter().map(|s| s.local_port).collect();
        late.sort_unstable();
        assert_eq!(late, [5353, 51820, 51821]);
        let kept: Vec<u16> = entries.iter().map(|e| e.socket.local_port).collect();
        assert_eq!(kept, [4789, 53, 6000]);
        let note = note.unwrap();
        assert!(
            note.starts_with("--netns all: 1 socket in the namespaces dumped"),
            "{note}"
        );

        let mut entries = vec![entry(9, 5353, None)];
        let (late, note) = unheld(&mut entries, &dumped);
        assert_eq!(
            (late.len(), note),
            (1, None),
            "nothing explained, nothing said"
        );
    }
}
