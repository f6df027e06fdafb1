//! One pass over `/proc/*/fd`: which (pid, fd) pairs refer to each wanted socket inode.
//!
//! This is where netstat and ss spend nearly all their time on a busy host, so it is written
//! for speed: `/proc` is opened once ([`ProcRoot`]: never left, no magic link followed), each
//! pid's fd directory is opened relative to it and listed as an [`FdDir`](crate::sys::procroot::FdDir) (large `getdents64`
//! buffers, each link read with `readlinkat` relative to the directory into a stack buffer: no
//! path strings, no allocation per fd). Pids are spread over threads through a shared counter,
//! because fd counts per process are very skewed.
//!
//! It stays hand-written rather than `procfs::process::all_processes` and `Process::fd()`
//! (which build a path, a `PathBuf` and a `String` per fd, on one thread): in a world of 1,000
//! processes, 35,000 sockets and 100,000 other fds (`bench/world.py`), this walk, reading the
//! details of every holder too, took 1.0 s and the procfs walk 1.8 s, reading none (best of
//! three, 2 cores; `examples/procfs_compare.rs walk`).
//!
//! A process found holding a wanted socket has its details (name, command line, uid) read by
//! the same worker right away: in parallel, and as close as possible to the moment its fds
//! were seen, so a pid reused in between is unlikely to lend its name to the socket.
//!
//! The walk starts while the sockets are still being collected ([`start`], then
//! [`Walk::finish`] with the wanted inodes). Processes scanned before the inodes are known keep
//! all their socket fds until then (their details are read then, a little later). A socket
//! opened during the collection by a process already scanned, or by one started after the
//! walk listed `/proc`, would be missed: when a wanted inode has no holder at the end, just
//! those processes are looked at again ([`rescue`]).
//!
//! A process hidden by a mount over its `/proc/PID` shows the mount's files, not its own:
//! when `mountinfo` lists such a mount, [`hidden_holders`] reads its fds afterwards through a
//! detached copy of the proc mount that leaves the mount behind, so the walk blames it for
//! exactly the sockets it holds, as the kernel iterator does (and costs nothing more when no
//! process is hidden, the usual case).
//!
//! A process that exits mid-scan is skipped. A process whose fds cannot be read (another
//! user's, or non-dumpable) is counted, never mistaken for one without sockets. A walking
//! thread that panics loses the processes it had taken: they are counted and reported
//! ([`ScanWarning::WalkerFailed`]), so their sockets show "permission", never "kernel".
//!
//! How fast, measured (README, "Performance": 1,000 processes and 131,000 fds, 2 cores, medians
//! of 7 interleaved runs): `lsports -ltnup --attribution walk` takes 0.39 s, against 1.18 s for
//! `ss -ltnup` and 1.30 s for `netstat -tulpn` (3.0× and 3.3× faster), which read every link by
//! path. A minimal C walker (open, `getdents64`, `readlinkat`, nothing else) needs 0.63 s of
//! one core, so no walk on two cores ends before about 0.31 s: this one is within a quarter of
//! that floor, attribution and output included. `statx` per link (5 % cheaper) and
//! `pidfd_getfd` + `fstat` (30 % cheaper) were measured and not taken: the first may block on
//! a hung filesystem, the second holds and closes other processes' files. The `procfs` crate's
//! walk is compared above.

use std::collections::HashSet;
use std::collections::hash_map::Entry;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use super::ScanWarning;
use super::confirm::Confirm;
use super::holders::{Holders, Scan};
use super::info::{DetailsReader, ProcessDetails};
use crate::config::DetailFields;
use crate::model::Holder;
pub use crate::sys::procroot::parse_socket_link;
use crate::sys::procroot::{DentsBuffer, FdDir, FdLink, ProcRoot, StackPath};

/// `PF_KTHREAD` in `/proc/PID/stat` flags: kernel threads have no fds worth counting.
const PF_KTHREAD: u64 = 0x0020_0000;
/// `PF_EXITING` in `/proc/PID/stat` flags: the process is exiting (or a zombie). Once its
/// memory is released the kernel gives its fd directory to root, so an unprivileged walk is
/// refused there though the process is only going away (lsports' own `nft` child, just
/// finished, is one).
const PF_EXITING: u64 = 0x0000_0004;

/// Per-thread accumulator, merged at the end so threads never contend on a map.
#[derive(Default)]
struct Partial {
    found: Vec<(u64, Holder)>,
    details: Vec<(u32, ProcessDetails)>,
    /// Every socket fd of the processes scanned before the wanted inodes were known.
    unsorted: Vec<(u64, Holder)>,
    /// Processes whose scan began before the wanted inodes were known.
    early: Vec<u32>,
    /// Socket fds holding no wanted inode, when [`Walk::keep_unwanted`] asked for them.
    unwanted: Vec<(u64, Holder)>,
    denied: usize,
    scanned: usize,
    /// Pids this worker took off the shared list, whatever came of them.
    claimed: usize,
}

/// Scan every process under `proc_root` for fds referring to the inodes in `wanted`.
pub fn scan(proc_root: &Path, wanted: &HashSet<u64>) -> io::Result<Scan> {
    start(proc_root, DetailFields::ALL).finish(wanted.clone())
}

/// A walk begun before the wanted inodes are known, so that it overlaps with collecting the
/// sockets: processes scanned before [`Walk::finish`] keep all their socket fds, sorted out
/// (and their details read) at the end; the rest are sorted out as they are scanned.
#[derive(Debug)]
pub struct Walk {
    /// The walking threads' shared state, or why the walk could not start (the proc root
    /// cannot be read).
    shared: Result<Arc<Shared>, Option<io::Error>>,
    workers: Vec<JoinHandle<Partial>>,
}

/// What the walking threads share.
#[derive(Debug)]
struct Shared {
    fields: DetailFields,
    root: Arc<ProcRoot>,
    pids: Vec<u32>,
    next: AtomicUsize,
    wanted: OnceLock<HashSet<u64>>,
    /// Set when the walk is dropped unfinished (nothing was collected): workers stop early.
    abandoned: AtomicBool,
    /// Keep the socket fds that hold no wanted inode ([`Walk::keep_unwanted`]).
    keep_unwanted: AtomicBool,
    /// See [`Knobs::panic_at`].
    #[cfg(test)]
    panic_at: Option<u32>,
}

/// What a test fixes about a walk, to take one path for sure rather than race for it.
#[derive(Debug, Clone, Copy, Default)]
struct Knobs {
    /// Walking threads to start: `None` for as many as pay off ([`worker_count`]).
    threads: Option<usize>,
    /// A walking thread panics when it takes this pid, as a bug would make it.
    #[cfg(test)]
    panic_at: Option<u32>,
}

/// Start walking every process under `proc_root`, to read the name and `fields` of each
/// holder.
pub fn start(proc_root: &Path, fields: DetailFields) -> Walk {
    start_with(proc_root, fields, Knobs::default())
}

fn start_with(proc_root: &Path, fields: DetailFields, knobs: Knobs) -> Walk {
    let opened = ProcRoot::open(proc_root).and_then(|root| Ok((root.pids()?, root)));
    let shared = match opened {
        Ok((pids, root)) => Arc::new(Shared {
            fields,
            root: Arc::new(root),
            pids,
            next: AtomicUsize::new(0),
            wanted: OnceLock::new(),
            abandoned: AtomicBool::new(false),
            keep_unwanted: AtomicBool::new(false),
            #[cfg(test)]
            panic_at: knobs.panic_at,
        }),
        Err(error) => {
            return Walk {
                shared: Err(Some(error)),
                workers: Vec::new(),
            };
        }
    };
    // A thread that cannot be made (a `pids.max` or `RLIMIT_NPROC` reached: just when an
    // admin reaches for this tool) is no failure: `finish` walks on its own thread too.
    let threads = knobs
        .threads
        .unwrap_or_else(|| worker_count(shared.pids.len()));
    let workers = (0..threads)
        .map_while(|_| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("fd-walk".into())
                .spawn(move || scan_worker(&shared))
                .ok()
        })
        .collect();
    Walk {
        shared: Ok(shared),
        workers,
    }
}

impl Walk {
    /// Keep every socket fd that holds none of the wanted inodes too ([`Scan::unwanted`]), for
    /// a caller that must ask those sockets something (`--netns all`: their namespace). Asked
    /// before [`Walk::finish`], it covers every process: those scanned before the wanted inodes
    /// are known keep all their socket fds until then anyway.
    pub fn keep_unwanted(&self) {
        if let Ok(shared) = &self.shared {
            shared.keep_unwanted.store(true, Ordering::Relaxed);
        }
    }

    /// The holders of `wanted`, once every process has been scanned.
    pub fn finish(mut self, wanted: HashSet<u64>) -> io::Result<Scan> {
        let shared = match &mut self.shared {
            Ok(shared) => Arc::clone(shared),
            Err(error) => {
                return Err(error
                    .take()
                    .unwrap_or_else(|| io::Error::other("the /proc walk was not started")));
            }
        };
        // Set once, here: workers look at it after each process.
        let _ = shared.wanted.set(wanted);
        // This thread takes its share of what is left: all of it when no worker could start.
        let mut partials = vec![scan_worker(&shared)];
        let mut panics = Vec::new();
        for worker in std::mem::take(&mut self.workers) {
            match worker.join() {
                Ok(partial) => partials.push(partial),
                Err(panic) => panics.push(panic_message(&*panic)),
            }
        }
        crate::sys::timing::mark("walk: every process scanned");
        let claimed: usize = partials.iter().map(|p| p.claimed).sum();
        // Always set by now; an empty set stands in rather than a panic.
        let empty = HashSet::new();
        let wanted = shared.wanted.get().unwrap_or(&empty);
        let early: Vec<u32> = partials
            .iter()
            .flat_map(|p| p.early.iter().copied())
            .collect();
        let mut scan = merge(partials, wanted, &shared);
        rescue(&mut scan, wanted, &shared, early);
        if !panics.is_empty() {
            // The failed threads' processes are neither scanned nor denied: they are lost,
            // and their sockets must not pass for the kernel's.
            scan.warnings.push(ScanWarning::WalkerFailed {
                processes: shared.pids.len().saturating_sub(claimed),
                message: panics.join("; "),
            });
        }
        Ok(scan)
    }

    /// Wait until every walking thread has ended, so that a test knows every process was
    /// scanned before the wanted inodes are given.
    #[cfg(test)]
    fn wait_for_workers(&self) {
        while self.workers.iter().any(|w| !w.is_finished()) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// What a thread panicked with, when it is text (as `panic!` and `expect` make it).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".to_owned())
}

/// Look again, for the wanted inodes still without a holder, at the processes that could hold
/// them unseen: those scanned before the sockets were collected (`early`: a listener they
/// opened afterwards is in the collection) and those started since the walk listed `/proc`.
/// Costs nothing when every socket has a holder; on a host with sockets no process holds (the
/// kernel's own, nfsd or WireGuard), a second look at the early processes.
fn rescue(scan: &mut Scan, wanted: &HashSet<u64>, shared: &Shared, early: Vec<u32>) {
    let missing: HashSet<u64> = wanted
        .iter()
        .copied()
        .filter(|&inode| !scan.holders.contains(inode))
        .collect();
    if missing.is_empty() {
        return;
    }
    let mut again = early;
    if let Ok(now) = shared.root.pids() {
        // `shared.pids` is sorted.
        again.extend(
            now.into_iter()
                .filter(|p| shared.pids.binary_search(p).is_err()),
        );
    }
    again.sort_unstable();
    again.dedup();
    let mut dents = DentsBuffer::large();
    let mut sockets = Vec::new();
    let mut found = Vec::new();
    let mut confirm = Confirm::new(shared.reader());
    for pid in again {
        sockets.clear();
        // Already counted as scanned, denied or gone the first time.
        let _ = scan_pid(shared.root.fd_dir(pid), pid, &mut dents, &mut sockets);
        let held = sockets.iter().filter(|(inode, _)| missing.contains(inode));
        found.extend(held.filter(|&&(inode, holder)| confirm.keep(inode, holder)));
    }
    let (details, _) = confirm.finish();
    for (pid, read) in details {
        if let Entry::Vacant(details) = scan.details.entry(pid) {
            details.insert(read);
        }
    }
    if !found.is_empty() {
        scan.holders.add(found);
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        if let Ok(shared) = &self.shared {
            shared.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

impl Shared {
    /// A reader of the details the walk was asked for.
    fn reader(&self) -> DetailsReader {
        DetailsReader::with_root(Arc::clone(&self.root)).only(self.fields)
    }
}

fn worker_count(pids: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Tiny worlds are faster on one thread than the cost of spawning more.
    cores.min(pids / 64 + 1).clamp(1, 16)
}

/// One scan from the workers' partial results: the early processes' socket fds are sorted
/// out now that `wanted` is known, and their holders' details read.
fn merge(partials: Vec<Partial>, wanted: &HashSet<u64>, shared: &Shared) -> Scan {
    let mut scan = Scan::default();
    let mut found = Vec::new();
    let mut unwanted = Vec::new();
    for mut partial in partials {
        // Left only by workers that ended before the sockets were collected (a small host).
        if !partial.unsorted.is_empty() {
            let mut confirm = Confirm::new(shared.reader());
            let keep_unwanted = shared.keep_unwanted.load(Ordering::Relaxed);
            partial.sort_out(wanted, keep_unwanted, &mut confirm);
            partial.take_details(confirm);
        }
        scan.denied += partial.denied;
        scan.scanned += partial.scanned;
        scan.details.extend(partial.details);
        found.extend(partial.found);
        unwanted.append(&mut partial.unwanted);
    }
    scan.holders = Holders::from_pairs(found);
    if shared.keep_unwanted.load(Ordering::Relaxed) {
        scan.unwanted = Some(unwanted);
    }
    scan
}

impl Partial {
    /// Keep the wanted sockets of the processes scanned before the wanted inodes were known,
    /// if their processes still hold them (their details are read then: see `confirm`).
    fn sort_out(&mut self, wanted: &HashSet<u64>, keep_unwanted: bool, confirm: &mut Confirm) {
        // A process's socket fds are consecutive, and it was scanned once.
        for (inode, holder) in std::mem::take(&mut self.unsorted) {
            if !wanted.contains(&inode) {
                if keep_unwanted {
                    self.unwanted.push((inode, holder));
                }
            } else if confirm.keep(inode, holder) {
                self.found.push((inode, holder));
            }
        }
    }

    /// The details `confirm` read, and the processes it found closed since they were scanned.
    fn take_details(&mut self, confirm: Confirm) {
        let (details, denied) = confirm.finish();
        self.details.extend(details);
        self.denied += denied;
    }
}

fn scan_worker(shared: &Shared) -> Partial {
    let mut partial = Partial::default();
    let mut dents = DentsBuffer::large();
    let mut sockets = Vec::new();
    let mut confirm = Confirm::new(shared.reader());
    let root = &*shared.root;
    while !shared.abandoned.load(Ordering::Relaxed) {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(&pid) = shared.pids.get(index) else {
            break;
        };
        partial.claimed += 1;
        #[cfg(test)]
        if shared.panic_at == Some(pid) && std::thread::current().name() == Some("fd-walk") {
            panic!("walker stopped at pid {pid} by the test");
        }
        sockets.clear();
        let outcome = if shared.wanted.get().is_none() {
            partial.early.push(pid);
            scan_pid(root.fd_dir(pid), pid, &mut dents, &mut sockets)
        } else {
            // The links are read through the process's own directory, opened first, and its
            // holders confirmed through the same one: whoever has the pid by then, they are
            // this process's, and only its first holder's link is read again (see `confirm`).
            match root.process(pid) {
                Ok(dir) => {
                    let outcome = scan_pid(root.fd_dir_of(&dir), pid, &mut dents, &mut sockets);
                    confirm.adopt(dir);
                    outcome
                }
                Err(e) => outcome_of(&e),
            }
        };
        match outcome {
            PidOutcome::Scanned => partial.scanned += 1,
            PidOutcome::Gone => {}
            PidOutcome::Denied => {
                if !holds_no_files(root, pid) {
                    partial.denied += 1;
                }
            }
        }
        let Some(wanted) = shared.wanted.get() else {
            partial.unsorted.extend_from_slice(&sockets);
            continue;
        };
        let held = sockets.iter().filter(|(inode, _)| wanted.contains(inode));
        let confirmed = held.filter(|&&(inode, holder)| confirm.keep(inode, holder));
        partial.found.extend(confirmed);
        if shared.keep_unwanted.load(Ordering::Relaxed) {
            let others = sockets.iter().filter(|(inode, _)| !wanted.contains(inode));
            partial.unwanted.extend(others);
        }
    }
    if let Some(wanted) = shared.wanted.get() {
        // The walk outlasted the collection, as it does on any busy host: sort out the early
        // processes here, on every worker at once, rather than in `merge` on one thread.
        let keep_unwanted = shared.keep_unwanted.load(Ordering::Relaxed);
        partial.sort_out(wanted, keep_unwanted, &mut confirm);
    }
    partial.take_details(confirm);
    partial
}

/// What happened when one pid was scanned.
enum PidOutcome {
    Scanned,
    /// The process exited during the scan.
    Gone,
    /// Its fds could not be read.
    Denied,
}

/// Every socket fd of `pid` listed in `dir` (its `fd` directory, or why that could not be
/// opened), appended to `sockets`.
fn scan_pid(
    dir: io::Result<FdDir>,
    pid: u32,
    dents: &mut DentsBuffer,
    sockets: &mut Vec<(u64, Holder)>,
) -> PidOutcome {
    let dir = match dir {
        Ok(dir) => dir,
        Err(e) => return outcome_of(&e),
    };
    let mut denied = false;
    let listed = dir.entries(dents, |entry| match entry.link() {
        FdLink::Socket(inode) => {
            sockets.push((inode, Holder { pid, fd: entry.fd }));
            ControlFlow::Continue(())
        }
        FdLink::Other => ControlFlow::Continue(()),
        // The directory may be listed while its links are closed to us (a process that is
        // not dumpable, or a sandbox's guarded init): its sockets are not ownerless, they are
        // unseen, and the listing must say so.
        FdLink::Denied => {
            denied = true;
            ControlFlow::Break(())
        }
    });
    match listed {
        Err(e) => outcome_of(&e),
        Ok(()) if denied => PidOutcome::Denied,
        Ok(()) => PidOutcome::Scanned,
    }
}

fn outcome_of(error: &io::Error) -> PidOutcome {
    match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => PidOutcome::Gone,
        _ => PidOutcome::Denied,
    }
}

/// What the walk could learn of the processes hidden from `/proc` by a mount over their
/// directory ([`hidden_holders`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HiddenHolders {
    /// Every socket fd of the hidden processes whose fds could be read past the mount.
    pub holders: Vec<(u64, Holder)>,
    /// Hidden processes whose fds could not be read, even past the mount: they may hold any
    /// socket no other process holds.
    pub unread: Vec<u32>,
}

/// The socket fds of `hidden` (pids whose directory under `proc_root` has something mounted
/// over it), read through a copy of the proc mount without its submounts
/// ([`ProcRoot::without_submounts`]), where the mount covers nothing: the walk then knows
/// exactly which sockets they hold, as the kernel iterator does.
///
/// Where no such copy can be made (without `CAP_SYS_ADMIN`, in a user namespace whose mounts
/// the kernel locked, before Linux 5.2) every hidden pid is `unread`: what it holds cannot be
/// known. Nothing narrows that honestly: a socket's network namespace and owner do not bound
/// its holders (a socket is passed over a UNIX socket, kept across `setns`, inherited by a
/// worker that dropped root). A hidden process that exited meanwhile holds nothing.
pub fn hidden_holders(proc_root: &Path, hidden: &[u32]) -> HiddenHolders {
    let unread = || HiddenHolders {
        holders: Vec::new(),
        unread: hidden.to_vec(),
    };
    let Ok(root) = ProcRoot::open(proc_root).and_then(|r| r.without_submounts()) else {
        return unread();
    };
    let mut found = HiddenHolders::default();
    for &pid in hidden {
        match root.fd_links(pid) {
            Ok(links) => found.holders.extend(links.iter().filter_map(|(fd, link)| {
                parse_socket_link(link).map(|inode| (inode, Holder { pid, fd: *fd }))
            })),
            Err(e) if matches!(outcome_of(&e), PidOutcome::Gone) => {}
            Err(_) => found.unread.push(pid),
        }
    }
    found
}

/// How many processes under `proc_root` refuse their fd links, counted as the walk counts
/// them, at the cost of one link per process: for the kernel iterator, which sees every
/// process, yet cannot say which ones the walk could not have inspected.
pub fn count_denied(proc_root: &Path) -> usize {
    let Ok((pids, root)) = ProcRoot::open(proc_root).and_then(|root| Ok((root.pids()?, root)))
    else {
        return 0;
    };
    let mut dents = DentsBuffer::small();
    pids.into_iter()
        .filter(|&pid| matches!(first_link(&root, pid, &mut dents), PidOutcome::Denied))
        .filter(|&pid| !holds_no_files(&root, pid))
        .count()
}

/// Whether the first fd link of `pid` can be read: [`scan_pid`] stopping at the first link.
fn first_link(root: &ProcRoot, pid: u32, dents: &mut DentsBuffer) -> PidOutcome {
    let dir = match root.fd_dir(pid) {
        Ok(dir) => dir,
        Err(e) => return outcome_of(&e),
    };
    let mut first = None;
    let listed = dir.entries(dents, |entry| {
        first = Some(entry.link());
        ControlFlow::Break(())
    });
    match (listed, first) {
        (Err(e), _) => outcome_of(&e),
        (Ok(()), Some(FdLink::Denied)) => PidOutcome::Denied,
        (Ok(()), _) => PidOutcome::Scanned,
    }
}

/// Kernel threads' and exiting processes' fd directories are root-only, yet they hold no
/// sockets (an exiting process is dropping its files): an unprivileged run must not count
/// them as "could not be inspected".
fn holds_no_files(root: &ProcRoot, pid: u32) -> bool {
    let path = StackPath::pid_file(pid, b"stat");
    let mut stat = Vec::new();
    if root.read_into(None, path.as_cstr(), &mut stat).is_err() {
        return false;
    }
    stat_flags(&String::from_utf8_lossy(&stat)).is_some_and(flags_hold_no_files)
}

/// Whether `/proc/PID/stat` flags say a kernel thread or an exiting process.
fn flags_hold_no_files(flags: u64) -> bool {
    flags & (PF_KTHREAD | PF_EXITING) != 0
}

/// The `flags` field of `/proc/PID/stat` (the 9th), counted after the `)` that ends the
/// command name, since the name itself may contain spaces and parentheses.
fn stat_flags(stat: &str) -> Option<u64> {
    let (_, mut fields) = super::info::split_stat(stat.as_bytes())?;
    fields.nth(6)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn stat_flags_survive_hostile_names() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 2097216 0 0";
        assert_eq!(stat_flags(stat), Some(2_097_216));
        assert_eq!(stat_flags("garbage"), None);
    }

    #[test]
    fn kernel_threads_and_exiting_processes_hold_no_files_others_do() {
        // kthreadd's flags, a zombie's (PF_EXITING | PF_FORKNOEXEC), a running shell's.
        assert!(flags_hold_no_files(0x0020_8040));
        assert!(flags_hold_no_files(0x0040_004c));
        assert!(!flags_hold_no_files(0x0040_0100));
    }

    #[test]
    fn an_unreaped_child_of_ours_is_seen_as_holding_no_files() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let root = ProcRoot::open(Path::new("/proc")).unwrap();
        // Not reaped: a zombie until `child` is waited for.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !holds_no_files(&root, pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "pid {pid} never exited"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut child = child;
        child.wait().unwrap();
    }

    #[test]
    fn scan_finds_our_own_socket_and_fd() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd() as u32;
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let inode = parse_socket_link(link.as_os_str().as_encoded_bytes()).unwrap();
        let wanted = HashSet::from([inode]);
        let scan = scan(Path::new("/proc"), &wanted).unwrap();
        let me = std::process::id();
        assert_eq!(scan.holders.of(inode), [Holder { pid: me, fd }]);
        assert!(scan.scanned > 0);
    }

    /// A proc-like tree: `PID/fd/FD` links to `socket:[INODE]`, and each pid's `comm`.
    fn link(root: &Path, pid: u32, fd: u32, inode: u64) {
        let dir = root.join(format!("{pid}/fd"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(root.join(format!("{pid}/comm")), format!("p{pid}\n")).unwrap();
        std::os::unix::fs::symlink(format!("socket:[{inode}]"), dir.join(fd.to_string())).unwrap();
    }

    /// A walk whose threads have all ended before it is finished: every process is scanned
    /// before the wanted inodes are known, as on a host whose collection takes long.
    fn walked_early(root: &Path) -> Walk {
        let knobs = Knobs {
            threads: Some(2),
            ..Knobs::default()
        };
        let walk = start_with(root, DetailFields::ALL, knobs);
        walk.wait_for_workers();
        walk
    }

    /// A walk with no thread of its own: every process is scanned by `finish`, once the
    /// wanted inodes are known, as on a host whose collection is quick.
    fn walked_late(root: &Path) -> Walk {
        let knobs = Knobs {
            threads: Some(0),
            ..Knobs::default()
        };
        start_with(root, DetailFields::ALL, knobs)
    }

    #[test]
    fn sockets_opened_while_collecting_are_found_by_a_second_look() {
        let dir = tempfile::tempdir().unwrap();
        link(dir.path(), 100, 3, 1);
        link(dir.path(), 100, 5, 7);
        let walk = walked_early(dir.path());
        // Pid 100, already scanned, opens fd 4, and pid 200 starts, while the sockets are
        // collected: only a second look finds either.
        link(dir.path(), 100, 4, 2);
        link(dir.path(), 200, 3, 3);
        let scan = walk.finish(HashSet::from([1, 2, 3, 99])).unwrap();
        let holder = |pid, fd| Holder { pid, fd };
        assert_eq!(scan.holders.of(1), [holder(100, 3)]);
        assert_eq!(scan.holders.of(2), [holder(100, 4)]);
        assert_eq!(scan.holders.of(3), [holder(200, 3)]);
        assert!(scan.holders.of(7).is_empty(), "not wanted");
        assert!(scan.holders.of(99).is_empty(), "held by nobody");
        let mut pids: Vec<u32> = scan.details.keys().copied().collect();
        pids.sort_unstable();
        assert_eq!(pids, [100, 200], "details of each holder, once");
        assert_eq!(scan.details[&200].name.as_deref(), Some(&b"p200"[..]));
    }

    #[test]
    fn a_walk_finished_early_or_late_finds_every_holder_and_one_dropped_stops() {
        let dir = tempfile::tempdir().unwrap();
        for pid in 1..200 {
            link(dir.path(), pid, 3, u64::from(pid));
        }
        // Scanned before the inodes are known (sorted out at the end), and after (sorted out
        // as scanned): the same holders, details and counts.
        for (path, walk) in [
            ("early", walked_early(dir.path())),
            ("late", walked_late(dir.path())),
        ] {
            let scan = walk.finish((1..200).collect()).unwrap();
            for pid in 1..200 {
                let got = scan.holders.of(u64::from(pid));
                assert_eq!(got, [Holder { pid, fd: 3 }], "{path}");
                let name = format!("p{pid}");
                assert_eq!(scan.details[&pid].name.as_deref(), Some(name.as_bytes()));
            }
            assert_eq!(scan.details.len(), 199, "{path}");
            assert_eq!((scan.scanned, scan.denied), (199, 0), "{path}");
            assert!(scan.warnings.is_empty(), "{path}: {:?}", scan.warnings);
        }
        // Dropped unfinished: the workers stop on their own, nothing panics.
        drop(start(dir.path(), DetailFields::ALL));
    }

    #[test]
    fn unwanted_socket_fds_are_kept_only_when_asked_early_or_late() {
        let dir = tempfile::tempdir().unwrap();
        link(dir.path(), 10, 3, 1);
        link(dir.path(), 10, 4, 50);
        link(dir.path(), 20, 7, 60);
        link(dir.path(), 20, 8, 2);
        let holder = |pid, fd| Holder { pid, fd };
        for (path, walk) in [
            ("early", walked_early(dir.path())),
            ("late", walked_late(dir.path())),
        ] {
            walk.keep_unwanted();
            let scan = walk.finish(HashSet::from([1, 2])).unwrap();
            let mut unwanted = scan.unwanted.expect("asked for");
            unwanted.sort_unstable();
            assert_eq!(
                unwanted,
                [(50, holder(10, 4)), (60, holder(20, 7))],
                "{path}"
            );
            assert_eq!(scan.holders.of(2), [holder(20, 8)], "{path}");
        }
        let scan = walked_late(dir.path()).finish(HashSet::from([1])).unwrap();
        assert!(scan.unwanted.is_none(), "not asked for, not kept");
    }

    #[test]
    fn a_pid_reused_after_the_scan_lends_neither_name_nor_socket() {
        let dir = tempfile::tempdir().unwrap();
        for pid in 1..100 {
            link(dir.path(), pid, 3, u64::from(pid));
        }
        let walk = walked_early(dir.path());
        // Pid 42 exits and an unrelated process takes its number: its fd 3 is another socket.
        std::fs::remove_dir_all(dir.path().join("42")).unwrap();
        link(dir.path(), 42, 3, 4242);
        std::fs::write(dir.path().join("42/comm"), "intruder\n").unwrap();
        let scan = walk.finish((1..100).collect()).unwrap();
        assert!(scan.holders.of(42).is_empty(), "{:?}", scan.holders.of(42));
        assert!(
            !scan.details.contains_key(&42),
            "{:?}",
            scan.details.get(&42)
        );
        assert_eq!(scan.holders.of(41), [Holder { pid: 41, fd: 3 }]);
        assert_eq!(scan.details[&41].name.as_deref(), Some(&b"p41"[..]));
    }

    #[test]
    fn a_panicked_walker_is_reported_and_its_processes_are_not_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        for pid in 1..100 {
            link(dir.path(), pid, 3, u64::from(pid));
        }
        // One walking thread takes pids 1 to 50 and panics at 50; the rest are left to
        // `finish`, which scans them.
        let knobs = Knobs {
            threads: Some(1),
            panic_at: Some(50),
        };
        let walk = start_with(dir.path(), DetailFields::ALL, knobs);
        walk.wait_for_workers();
        let scan = walk.finish((1..100).collect()).unwrap();
        let [ScanWarning::WalkerFailed { processes, message }] = &scan.warnings[..] else {
            panic!("one failed walker: {:?}", scan.warnings);
        };
        assert_eq!(*processes, 50, "pids 1 to 50 were lost");
        assert!(message.contains("pid 50"), "{message}");
        for pid in 51..100 {
            assert_eq!(scan.holders.of(u64::from(pid)), [Holder { pid, fd: 3 }]);
        }
        assert!((1..=50).all(|inode| scan.holders.of(inode).is_empty()));
        assert_eq!(scan.scanned, 49);
    }

    #[test]
    fn missing_proc_root_is_an_error_not_an_empty_scan() {
        let wanted = HashSet::new();
        assert!(scan(Path::new("/nonexistent/proc"), &wanted).is_err());
    }
}
