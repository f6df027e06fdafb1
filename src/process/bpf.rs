//! Socket attribution in the kernel: a BPF iterator visits every process's descriptors in one
//! pass and emits only the sockets, so no `readlinkat` is paid per descriptor.
//!
//! The programs (`task_sockets.bpf.c`, compiled to the committed `task_sockets.bpf.o` by
//! `bpf/build.sh`, so building lsports needs no clang) are CO-RE: the kernel fields they read
//! are relocated against `/sys/kernel/btf/vmlinux` when loaded. What each piece needs:
//! - everything: a kernel with BTF (`CONFIG_DEBUG_INFO_BTF`), root or `CAP_BPF` +
//!   `CAP_PERFMON` in the initial user namespace ([`preflight`] checks each so a refusal
//!   names what is missing), and no lockdown of tracing programs' reads beyond what
//!   `bpf_probe_read_kernel` is allowed (lockdown's "integrity" mode allows it);
//! - the fd-table walk ([`iterator::Variant::FdWalk`]): the `task` iterator and `bpf_loop`,
//!   Linux 5.17 or later; it reads each descriptor table under RCU and takes no reference;
//! - its fallback, the `task_file` iterator ([`iterator::Variant::TaskFile`]): Linux 5.8;
//! - the records' start times (`task->start_boottime`, Linux 5.5) and sockets' network
//!   namespaces (`sk->__sk_common.skc_net`), read by both.
//!
//! Pids are emitted as the reader's pid namespace numbers them (the program reads the task's
//! `struct pid` at the reader's level), so they match the reader's `/proc` even inside a
//! container. The result is the walk's [`Scan`], so both paths feed the same entry building
//! and give the same listing.

pub mod aya_workaround;
pub mod error;
pub mod iterator;
pub mod loader;
pub mod pass;
pub mod preflight;
mod raw_btf;
pub mod records;
pub mod start_time;

use std::collections::HashSet;
use std::path::Path;

use super::confirm::Confirm;
use super::fdscan;
use super::holders::Scan;
use super::info::DetailsReader;
use crate::config::DetailFields;
pub use error::BpfUnavailable;
pub use iterator::{Emit, Ran, Variant};
pub use pass::Pass;

/// Where the kernel describes its own types.
pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// Find every (pid, fd) holding each inode in `wanted`, with the details of those pids read
/// under `proc_root`, which must be this process's live `/proc`.
pub fn scan(proc_root: &Path, wanted: &HashSet<u64>) -> Result<Scan, BpfUnavailable> {
    scan_ran(proc_root, wanted, Variant::forced()).map(|(scan, _)| scan)
}

/// [`scan`] by `program` (`None`: the fd-table walk, or `task_file` where the kernel refuses
/// it), saying which program ran.
pub fn scan_ran(
    proc_root: &Path,
    wanted: &HashSet<u64>,
    program: Option<Variant>,
) -> Result<(Scan, Ran), BpfUnavailable> {
    let checked = preflight::check(proc_root)?;
    let started = || Gather::new(proc_root, wanted, DetailFields::ALL);
    let mut gather = started();
    let (go, ready) = std::sync::mpsc::channel();
    // The wanted sockets are known already: run at once.
    let _ = go.send(());
    let emit = iterator::Emit::Holders;
    let ran = iterator::run(checked, program, emit, &ready, |output| match output {
        iterator::Output::Records(records) => gather.add(records),
        iterator::Output::Restart => gather = started(),
    })?;
    Ok((gather.finish(), ran.ok_or_else(never_ran)?))
}

/// The iterator thread ended without running, though it was told to go.
fn never_ran() -> BpfUnavailable {
    BpfUnavailable::Load("the iterator ended before it ran".into())
}

/// Builds the scan from the iterator's output as it arrives: the holders of the wanted inodes,
/// each confirmed and its process's details read as soon as it is first seen, while the kernel
/// is still visiting the others (see `confirm`: a reused pid does not lend its name; a process
/// whose `stat` shows the kernel's start, alive, needs no fd link read at all).
#[derive(Debug)]
pub struct Gather<'a> {
    proc_root: &'a Path,
    confirm: Confirm,
    selection: records::Selection<'a>,
    /// `None` where start times cannot be compared: every holder is confirmed by its link.
    clock: Option<start_time::StartClock>,
    /// Whether the walk writes sockets' own records ([`iterator::Emit::Sockets`]).
    sockets: bool,
}

impl<'a> Gather<'a> {
    /// Gather the holders of `wanted`, reading the name and `fields` of each under
    /// `proc_root`. Made before the kernel's pass begins: the moment is what tells a
    /// process's start from a newcomer's on its pid.
    pub fn new(proc_root: &'a Path, wanted: &'a HashSet<u64>, fields: DetailFields) -> Self {
        Self::started(
            proc_root,
            wanted,
            fields,
            start_time::StartClock::now(proc_root),
        )
    }

    /// [`Gather::new`] for a pass that began when `clock` was taken.
    pub fn started(
        proc_root: &'a Path,
        wanted: &'a HashSet<u64>,
        fields: DetailFields,
        clock: Option<start_time::StartClock>,
    ) -> Self {
        Gather {
            proc_root,
            confirm: Confirm::new(DetailsReader::new(proc_root).only(fields)),
            selection: records::Selection::new(wanted),
            clock,
            sockets: false,
        }
    }

    /// The same, for a walk that writes sockets' own records: they are kept for the scan.
    pub fn with_sockets(mut self, emit: iterator::Emit) -> Self {
        self.sockets = emit != iterator::Emit::Holders;
        self
    }

    /// Take whole records of the iterator's output.
    pub fn add(&mut self, records: &[u8]) {
        let keep = confirming(&mut self.confirm, self.clock);
        self.selection.add(records::decode(records), keep);
    }

    /// Take whole records of a second pass, keeping only holders of the inodes in `only`.
    pub fn add_again(&mut self, records: &[u8], only: &HashSet<u64>) {
        let keep = confirming(&mut self.confirm, self.clock);
        self.selection
            .add_again(records::decode(records), only, keep);
    }

    /// The wanted inodes no record has named so far.
    pub fn unseen(&self) -> HashSet<u64> {
        self.selection.unseen()
    }

    /// The scan, in the shape the fd walk gives.
    pub fn finish(mut self) -> Scan {
        let wanted = self.selection.wanted();
        let socket_netns = self.selection.namespaces().clone();
        let walked = self.sockets.then(|| self.selection.take_sockets());
        let cgroups = self.selection.take_cgroups();
        let (holders, processes) = self.selection.finish();
        let unshown = self.confirm.take_unshown();
        let (details, mut denied) = self.confirm.finish_map();
        // The kernel sees every process, but a process whose fd links are refused (a security
        // module's, or a sandbox's guarded init) is one the walk cannot inspect, and it may
        // emit nothing for it: when a wanted socket has no holder, count those processes as
        // the walk does, so that both paths give the same reasons.
        // Only wanted inodes are kept: fewer with holders than wanted means one has none.
        if holders.inode_count() < wanted.len() {
            denied = denied.max(fdscan::count_denied(self.proc_root));
        }
        Scan {
            holders,
            details,
            denied,
            scanned: processes,
            warnings: Vec::new(),
            socket_netns,
            unwanted: None,
            walked,
            cgroups,
            unshown,
        }
    }
}

/// Whether a record's holder is kept: confirmed by `confirm`, by its process's start where
/// `clock` can tell it (see `start_time`), by its fd link otherwise.
fn confirming(
    confirm: &mut Confirm,
    clock: Option<start_time::StartClock>,
) -> impl FnMut(&records::Record, crate::model::Holder) -> bool + '_ {
    move |record, holder| {
        let start = clock.and_then(|clock| clock.settled(record.start));
        confirm.keep_started(record.inode, holder, start)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_pid_reused_after_the_kernel_saw_it_lends_no_name() {
        // The kernel saw pid 7 holding socket 99 as fd 3 and pid 8 holding socket 100 as fd 4;
        // by the time the details are read, pid 7 is another process.
        let dir = tempfile::tempdir().unwrap();
        for (pid, fd, inode, name) in [(7, 3, 5, "intruder"), (8, 4, 100, "sshd")] {
            std::fs::create_dir_all(dir.path().join(format!("{pid}/fd"))).unwrap();
            let fd_link = dir.path().join(format!("{pid}/fd/{fd}"));
            std::os::unix::fs::symlink(format!("socket:[{inode}]"), fd_link).unwrap();
            std::fs::write(dir.path().join(format!("{pid}/comm")), name).unwrap();
        }
        let wanted = HashSet::from([99, 100]);
        let mut gather = Gather::new(dir.path(), &wanted, DetailFields::ALL);
        gather.add(&records::tests::encode(&[(7, 3, 99), (8, 4, 100)]));
        let scan = gather.finish();
        assert!(scan.holders.of(99).is_empty());
        assert!(!scan.details.contains_key(&7));
        assert_eq!(scan.holders.of(100).len(), 1);
        assert_eq!(scan.details[&8].name.as_deref(), Some(&b"sshd"[..]));
    }

    /// A process directory in a tree: `comm`, a `stat` with start tick `start`, and fd links.
    pub(crate) fn fake_process(root: &Path, pid: u32, start: u64, fds: &[(u32, u64)]) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(dir.join("fd")).unwrap();
        std::fs::write(dir.join("comm"), format!("p{pid}\n")).unwrap();
        let stat = format!(
            "{pid} (p{pid}) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0 0 4096 8192 \
             140720000\n"
        );
        std::fs::write(dir.join("stat"), stat).unwrap();
        for (fd, inode) in fds {
            let link = dir.join(format!("fd/{fd}"));
            std::os::unix::fs::symlink(format!("socket:[{inode}]"), link).unwrap();
        }
    }

    #[test]
    fn a_process_started_when_the_kernel_said_keeps_its_holders_without_link_reads() {
        // Records say each process started at 100 * pid ns: tick 0 in /proc.
        let dir = tempfile::tempdir().unwrap();
        // Pid 8 is the process the kernel saw; its fd 5 was closed since (no link), which only
        // a link read would notice: the start shows it is the same process, so no link is read.
        fake_process(dir.path(), 8, 0, &[(4, 100)]);
        // Pid 9 is a newcomer (it started at tick 7): its fd 4 is the old one's, by chance,
        // but fd 5 now holds another socket, and the start says it is not the same process.
        fake_process(dir.path(), 9, 7, &[(4, 200), (5, 999)]);
        let wanted = HashSet::from([100, 101, 200, 201]);
        let mut gather = Gather::new(dir.path(), &wanted, DetailFields::ALL);
        assert!(
            gather.clock.is_some(),
            "a tree without timens_offsets has no offset"
        );
        gather.add(&records::tests::encode(&[
            (8, 4, 100),
            (8, 5, 101),
            (9, 4, 200),
            (9, 5, 201),
        ]));
        let scan = gather.finish();
        let holder = |pid, fd| crate::model::Holder { pid, fd };
        assert_eq!(scan.holders.of(100), [holder(8, 4)]);
        assert_eq!(scan.holders.of(101), [holder(8, 5)]);
        assert_eq!(
            scan.holders.of(200),
            [holder(9, 4)],
            "confirmed by its link"
        );
        assert!(
            scan.holders.of(201).is_empty(),
            "the start differs: confirmed by its link"
        );
        assert_eq!(
            scan.socket_netns.keys().copied().collect::<Vec<_>>(),
            [4026531840]
        );
    }
}
