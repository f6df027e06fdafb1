//! `--netns all` in one kernel pass: the namespaces whose sockets the BPF fd walk read whole
//! need no sock_diag dump.
//!
//! ```text
//! before the walk:  each namespace's socket counts (sockstat, through a process in it)
//! the walk:         every socket fd of every process, with the socket's own record
//! after the walk:   the counts again; per namespace, the walk's distinct hashed sockets
//!                   against both readings (gate): equal -> its listing is the walk's;
//!                   else (a socket no process holds, churn, unreadable) -> dumped
//! ```
//!
//! Each sock_diag dump walks the host-wide hash tables and skips other namespaces' sockets,
//! so N dumps cost N passes over every socket of the host; the walk is one pass, which the
//! attribution makes anyway. The caller's own namespace is always dumped (the reference; it
//! runs while the BPF program loads), and so is every namespace a listing of every state
//! (`-a`) asks for: TIME_WAIT and request sockets are nobody's fd and in no count.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use super::Namespace;
use super::gate::{self, Why};
use super::sockstat::{self, Counts};
use crate::model::socket_record::SocketRecord;
use crate::model::{DeviceBinding, Family, Netns, Protocol, Socket};

/// Each namespace's counts as read before the walk, by inode.
pub type Before = HashMap<u64, Result<Counts, Why>>;

/// Read the counts of every namespace of `namespaces` but `current`, under the live proc root
/// `proc`; to be done before the walk begins.
pub fn count_before(namespaces: &[Namespace], current: Option<u64>, proc: &Path) -> Before {
    namespaces
        .iter()
        .filter(|ns| Some(ns.inode) != current)
        .map(|ns| (ns.inode, counts_of(ns, proc)))
        .collect()
}

/// The counts before the walk read while the namespaces are being discovered, on a thread of
/// their own: each namespace's through the first process found in it, the moment it is found
/// ([`EarlyCounts::tell`], as `discover_telling` tells). Discovery (a link read per process)
/// and the counts (three reads per namespace) then overlap instead of following each other,
/// while the BPF program is still being loaded on the other core.
#[derive(Debug)]
pub struct EarlyCounts {
    tell: Option<std::sync::mpsc::Sender<(u64, u32)>>,
    thread: Option<std::thread::JoinHandle<HashMap<u64, Counts>>>,
}

impl EarlyCounts {
    /// Start the reading thread, under the live proc root `proc`; where no thread can be made,
    /// every count is read by [`EarlyCounts::finish`].
    pub fn start(proc: &Path) -> EarlyCounts {
        let (tell, told) = std::sync::mpsc::channel::<(u64, u32)>();
        let proc = proc.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("netns-counts".into())
            .spawn(move || {
                // Only readings through a process still in the namespace afterwards are kept.
                (told.into_iter())
                    .filter_map(|(inode, pid)| {
                        let counts = counts_through(inode, &[pid], &proc).ok()?;
                        Some((inode, counts))
                    })
                    .collect()
            });
        match spawned {
            Ok(thread) => EarlyCounts {
                tell: Some(tell),
                thread: Some(thread),
            },
            Err(_) => EarlyCounts {
                tell: None,
                thread: None,
            },
        }
    }

    /// Read the counts of namespace `inode` through process `pid`, found in it.
    pub fn tell(&self, inode: u64, pid: u32) {
        if let Some(tell) = &self.tell {
            // A thread that is gone has read nothing more: `finish` reads the rest.
            let _ = tell.send((inode, pid));
        }
    }

    /// The counts of every namespace of `namespaces` but `current`, as [`count_before`] reads
    /// them: those read early where they could be, the others (whose first process left, or
    /// that no process was found in) now, through all of their processes.
    pub fn finish(mut self, namespaces: &[Namespace], current: Option<u64>, proc: &Path) -> Before {
        drop(self.tell.take());
        let mut early = (self.thread.take())
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        namespaces
            .iter()
            .filter(|ns| Some(ns.inode) != current)
            .map(|ns| match early.remove(&ns.inode) {
                Some(counts) => (ns.inode, Ok(counts)),
                None => (ns.inode, counts_of(ns, proc)),
            })
            .collect()
    }
}

/// The counts of `ns`, through the first of its processes that is still in it after the read
/// (a pid can exit, or be reused, meanwhile).
fn counts_of(ns: &Namespace, proc: &Path) -> Result<Counts, Why> {
    counts_through(ns.inode, &ns.pids, proc)
}

/// The counts of namespace `inode`, through the first of `pids` still in it after the read.
fn counts_through(inode: u64, pids: &[u32], proc: &Path) -> Result<Counts, Why> {
    let mut last = Why::NoCounts;
    for pid in pids {
        let counts = sockstat::read(&proc.join(format!("{pid}/net")));
        let still_there = std::fs::metadata(proc.join(format!("{pid}/ns/net")))
            .is_ok_and(|meta| meta.ino() == inode);
        match (counts, still_there) {
            (Ok(counts), true) => return Ok(counts),
            (Err(e), true) => last = Why::Unreadable(e),
            (_, false) => {}
        }
    }
    Err(last)
}

/// What the walk read, over every namespace but the caller's.
#[derive(Debug, Default)]
pub struct Walked {
    /// Each namespace's hashed sockets as the kernel counts them (see [`gate::tally`]), by
    /// inode.
    pub counts: HashMap<u64, Counts>,
    /// The namespaces where a socket kept is bound to a device (see [`Why::Device`]).
    pub devices: HashSet<u64>,
    /// Every namespace's sockets a dump of the request would list, each tagged with its
    /// namespace, in one vector: one per namespace would leave as many holes in the heap once
    /// merged (measured: the run's peak, 3 MiB above the rest, with 25,000 sockets over 200
    /// namespaces).
    pub sockets: Vec<Socket>,
}

/// Records decoded per chunk: the records' vector is shrunk after each, so the records and
/// the sockets made of them are never both held whole.
const CHUNK: usize = 2048;

/// The walk's socket records (`struct socket_record`), one per socket: every one counted by
/// its namespace's inode, those a dump asking for `tables` and `listening` only (else every
/// state) would list kept as sockets ([`requested`]; the others are dropped here, before they
/// cost a socket each), tagged with `netns` of their namespace's inode. The records are taken
/// from the end a chunk at a time, and their vector shrunk after each (a large vector's tail
/// goes back to the kernel: see `sys::memory`).
pub fn decode(
    mut records: Vec<[u8; 80]>,
    tables: &[(Protocol, Family)],
    listening: bool,
    mut netns: impl FnMut(u64) -> Arc<Netns>,
) -> Walked {
    let mut walked = Walked::default();
    // Room for every record: what is never written is never mapped.
    walked.sockets.reserve_exact(records.len());
    // A process's sockets come together, and most are in its own namespace.
    let mut last: Option<Arc<Netns>> = None;
    while !records.is_empty() {
        let start = records.len().saturating_sub(CHUNK);
        for bytes in records.drain(start..) {
            let Some(record) = SocketRecord::parse(&bytes) else {
                continue;
            };
            let inode = u64::from(record.netns);
            let ns = match &last {
                Some(ns) if ns.inode == inode => Arc::clone(ns),
                _ => Arc::clone(last.insert(netns(inode))),
            };
            let Ok(socket) = record.to_socket(|_| Some(ns)) else {
                continue;
            };
            gate::count(walked.counts.entry(inode).or_default(), &socket);
            if requested(&socket, tables, listening) {
                if matches!(socket.device, DeviceBinding::Device { .. }) {
                    walked.devices.insert(inode);
                }
                walked.sockets.push(socket);
            }
        }
        records.shrink_to_fit();
    }
    walked.sockets.shrink_to_fit();
    walked
}

/// What the gate decided for every namespace but the caller's.
#[derive(Debug, Default)]
pub struct Judged {
    /// The namespaces the walk answered: their sockets are the walk's.
    pub answered: HashSet<u64>,
    /// The namespaces to dump, each with why.
    pub dump: Vec<(u64, Why)>,
}

/// Each namespace's counts as read after the walk, by inode.
pub type After = HashMap<u64, Result<Counts, Why>>;

/// Read the counts again, after the walk, of every namespace of `namespaces` (inode and
/// pids) that `before` has counts of: on a thread of its own where one can be made, so that
/// the reads overlap with decoding the walk's records ([`AfterWalk::join`]).
pub fn count_after(namespaces: &[Namespace], before: &Before, proc: &Path) -> AfterWalk {
    let read = after_reader(namespaces, before, proc);
    let spawned = std::thread::Builder::new()
        .name("netns-counts".into())
        .spawn(read.clone());
    match spawned {
        Ok(thread) => AfterWalk::Thread(thread),
        // No thread to be had (`pids.max` reached): read here, without the overlap.
        Err(_) => AfterWalk::Read(read()),
    }
}

/// [`count_after`] begun before the walk is over: the thread first waits for `walked` to
/// return, which it does once the walk has visited every process, so that the reads overlap
/// with gathering the walk's records too. Where no thread can be made, nothing is read (the
/// counts are read when the records are decoded, as [`count_after`] does): `None`.
pub fn count_after_when(
    namespaces: &[Namespace],
    before: &Before,
    proc: &Path,
    walked: impl FnOnce() + Send + 'static,
) -> Option<AfterWalk> {
    let read = after_reader(namespaces, before, proc);
    let spawned = std::thread::Builder::new()
        .name("netns-counts".into())
        .spawn(move || {
            walked();
            read()
        });
    spawned.ok().map(AfterWalk::Thread)
}

/// What reads the counts after the walk ([`count_after`]).
fn after_reader(
    namespaces: &[Namespace],
    before: &Before,
    proc: &Path,
) -> impl Fn() -> After + Clone + Send + 'static {
    let targets: Vec<(u64, Vec<u32>)> = namespaces
        .iter()
        .filter(|ns| matches!(before.get(&ns.inode), Some(Ok(_))))
        .map(|ns| (ns.inode, ns.pids.clone()))
        .collect();
    let proc = proc.to_path_buf();
    move || -> After {
        let counts = targets.iter().map(|(inode, pids)| {
            // Its processes all left since the first reading: churn.
            let after = counts_through(*inode, pids, &proc).map_err(|why| match why {
                Why::NoCounts => Why::Churn,
                why => why,
            });
            (*inode, after)
        });
        counts.collect()
    }
}

/// The counts after the walk, being read ([`count_after`]).
#[derive(Debug)]
pub enum AfterWalk {
    /// On their own thread.
    Thread(std::thread::JoinHandle<After>),
    /// Read already.
    Read(After),
}

impl AfterWalk {
    /// The counts; a namespace whose reading thread failed has none (and is dumped).
    pub fn join(self) -> After {
        match self {
            AfterWalk::Thread(thread) => thread.join().unwrap_or_default(),
            AfterWalk::Read(after) => after,
        }
    }
}

/// Judge every namespace of `namespaces` but `current` by its counts `before` the walk, its
/// counts `after` it, and what the walk read (`walked`: its counts and device-bound sockets
/// by namespace, each socket once).
pub fn judge(
    namespaces: &[Namespace],
    current: Option<u64>,
    mut before: Before,
    mut after: After,
    walked: &Walked,
) -> Judged {
    let mut judged = Judged::default();
    for ns in namespaces.iter().filter(|ns| Some(ns.inode) != current) {
        let counts = walked.counts.get(&ns.inode).copied().unwrap_or_default();
        let Some(counted) = before.remove(&ns.inode) else {
            // Found after the counts were read (from a socket): nothing to compare with.
            judged.dump.push((ns.inode, Why::NoCounts));
            continue;
        };
        let verdict = counted.and_then(|before| {
            let after = after.remove(&ns.inode).unwrap_or(Err(Why::NoCounts));
            gate::judge(Ok(before), counts, after)
        });
        let verdict = verdict.and_then(|()| match walked.devices.contains(&ns.inode) {
            // Named from inside its namespace (`if_indextoname` there), which a dump does
            // while it is entered.
            true => Err(Why::Device),
            false => Ok(()),
        });
        match verdict {
            Ok(()) => drop(judged.answered.insert(ns.inode)),
            Err(why) => judged.dump.push((ns.inode, why)),
        }
    }
    judged
}

/// The sockets of a namespace dumped after the walk that no process holds, as the kernel's
/// counts explain them: for a namespace dumped because the kernel counts more sockets than
/// processes hold ([`Why::Mismatch`]) whose counts, read again once it is dumped (`now`), are
/// still those read before and after the walk, the surplus, kind by kind. Sockets of the dump
/// without a holder, no more of each kind than this, are the kernel's (VXLAN's port, say),
/// not sockets made after the walk visited their holder: they need no pass of their own. The
/// gate trusts equal counts the same way. `None` for any other reason to dump, or counts that
/// moved.
pub fn surplus(why: &Why, now: Result<Counts, Why>) -> Option<Counts> {
    match (why, now) {
        (Why::Mismatch { kernel, walked }, Ok(now)) if now == *kernel => kernel.beyond(walked),
        _ => None,
    }
}

/// [`surplus`] of the namespace `ns`, dumped for `why`, its counts read now.
pub fn surplus_now(ns: &Namespace, why: &Why, proc: &Path) -> Option<Counts> {
    match why {
        Why::Mismatch { .. } => surplus(why, counts_of(ns, proc)),
        _ => None,
    }
}

/// Whether a dump asking for `tables` and `listening` only (else every state) would list
/// `socket`: one in the hash tables the dump walks, of a table and state asked for.
pub fn requested(socket: &Socket, tables: &[(Protocol, Family)], listening: bool) -> bool {
    gate::hashed(socket)
        && tables.contains(&(socket.protocol, socket.family))
        && (!listening || socket.state.is_listening(socket.protocol))
}

/// The `-v` line: how many namespaces the walk answered and how many were dumped, and why.
pub fn summary(judged: &Judged, current_dumped: bool) -> String {
    let mut reasons: Vec<(&'static str, usize)> = Vec::new();
    for (_, why) in &judged.dump {
        match reasons.iter_mut().find(|(r, _)| *r == why.reason()) {
            Some((_, n)) => *n += 1,
            None => reasons.push((why.reason(), 1)),
        }
    }
    let dumped = judged.dump.len() + usize::from(current_dumped);
    let mut line = format!(
        "--netns all: {} answered from the BPF fd walk's socket records, {} dumped over \
         sock_diag",
        crate::text::counts::count(judged.answered.len(), "namespace"),
        dumped
    );
    let mut parts: Vec<String> = Vec::new();
    if current_dumped {
        parts.push("this one, always".into());
    }
    parts.extend(reasons.iter().map(|(why, n)| format!("{n}: {why}")));
    if !parts.is_empty() {
        line.push_str(&format!(" ({})", parts.join("; ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SocketState;
    use crate::source::netns::gate::tests::socket;

    /// A proc tree with process `pid`, whose `ns/net` is a plain file: the namespace's inode
    /// is that file's. Its namespace counts `tcp4` IPv4 TCP sockets.
    fn proc_with(pid: u32, tcp4: u32) -> (tempfile::TempDir, u64) {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join(format!("{pid}/net"));
        std::fs::create_dir_all(&net).unwrap();
        let text = format!("TCP: inuse {tcp4} orphan 0 tw 0 alloc 1 mem 0\nUDP: inuse 0 mem 0\n");
        std::fs::write(net.join("sockstat"), text).unwrap();
        let ns_dir = dir.path().join(format!("{pid}/ns"));
        std::fs::create_dir_all(&ns_dir).unwrap();
        std::fs::write(ns_dir.join("net"), "").unwrap();
        let inode = std::fs::metadata(ns_dir.join("net")).unwrap().ino();
        (dir, inode)
    }

    /// What the walk read: `sockets` in namespace `inode`, all of them requested.
    fn walked(inode: u64, sockets: Vec<Socket>) -> Walked {
        let bound = |s: &Socket| matches!(s.device, DeviceBinding::Device { .. });
        Walked {
            counts: HashMap::from([(inode, gate::tally(&sockets))]),
            devices: sockets
                .iter()
                .any(bound)
                .then_some(inode)
                .into_iter()
                .collect(),
            sockets,
        }
    }

    /// Judge as after a walk that read `walked`, the counts after it read now.
    fn judge_now(
        namespaces: &[Namespace],
        current: Option<u64>,
        before: Before,
        walked: &Walked,
        proc: &Path,
    ) -> Judged {
        let after = count_after(namespaces, &before, proc).join();
        judge(namespaces, current, before, after, walked)
    }

    fn namespace(inode: u64, pid: u32) -> Namespace {
        let mut ns = Namespace::new(inode);
        ns.pids.push(pid);
        ns
    }

    #[test]
    fn a_namespace_whose_counts_match_is_answered_and_one_that_differs_is_dumped() {
        let (dir, inode) = proc_with(7, 1);
        let namespaces = [namespace(inode, 7), Namespace::new(1)];
        let before = count_before(&namespaces, Some(1), dir.path());
        assert_eq!(before.len(), 1, "the current namespace is not counted");
        let listener = socket(Protocol::Tcp, "0.0.0.0", 80, SocketState::LISTEN);
        let walked = walked(inode, vec![listener]);
        let judged = judge_now(&namespaces, Some(1), before, &walked, dir.path());
        assert_eq!(judged.answered, HashSet::from([inode]));
        assert!(judged.dump.is_empty());
        assert_eq!(
            summary(&judged, true),
            "--netns all: 1 namespace answered from the BPF fd walk's socket records, 1 dumped \
             over sock_diag (this one, always)"
        );

        // The kernel counts one more than any process holds: a kernel socket.
        let before = count_before(&namespaces, Some(1), dir.path());
        let nothing = Walked::default();
        let judged = judge_now(&namespaces, Some(1), before, &nothing, dir.path());
        assert!(judged.answered.is_empty());
        assert!(matches!(judged.dump[..], [(i, Why::Mismatch { .. })] if i == inode));
        let line = summary(&judged, false);
        assert!(line.contains("0 namespaces answered"), "{line}");
        assert!(line.contains("1 dumped over sock_diag (1: they hold sockets no process holds"));
    }

    #[test]
    fn counts_read_during_discovery_are_those_read_after_it() {
        let (dir, inode) = proc_with(7, 3);
        // Told through pid 6, gone (no proc entry): read again through every process, 7 too.
        let mut gone_first = namespace(inode, 6);
        gone_first.pids.push(7);
        let namespaces = [gone_first, Namespace::new(1)];
        let early = EarlyCounts::start(dir.path());
        early.tell(inode, 6);
        let before = early.finish(&namespaces, Some(1), dir.path());
        assert_eq!(before.len(), 1, "the current namespace is not counted");
        let want = Counts {
            tcp4: 3,
            ..Counts::default()
        };
        assert_eq!(before[&inode].as_ref().ok(), Some(&want));

        // Told through pid 7, read there; only the namespaces given are counted.
        let namespaces = [namespace(inode, 7)];
        let early = EarlyCounts::start(dir.path());
        early.tell(inode, 7);
        assert!(early.finish(&[], None, dir.path()).is_empty());
        let early = EarlyCounts::start(dir.path());
        early.tell(inode, 7);
        let before = early.finish(&namespaces, None, dir.path());
        assert_eq!(before[&inode].as_ref().ok(), Some(&want));
        // Never told: read by finish, as the file says now.
        let text = "TCP: inuse 4\nUDP: inuse 0\n";
        std::fs::write(dir.path().join("7/net/sockstat"), text).unwrap();
        let before = EarlyCounts::start(dir.path()).finish(&namespaces, None, dir.path());
        assert_eq!(before[&inode].as_ref().ok().map(|c| c.tcp4), Some(4));
    }

    #[test]
    fn counts_that_change_during_the_walk_dump_the_namespace() {
        let (dir, inode) = proc_with(7, 1);
        let namespaces = [namespace(inode, 7)];
        let before = count_before(&namespaces, None, dir.path());
        let text = "TCP: inuse 2\nUDP: inuse 0\n";
        std::fs::write(dir.path().join("7/net/sockstat"), text).unwrap();
        let listener = socket(Protocol::Tcp, "0.0.0.0", 80, SocketState::LISTEN);
        let walked = walked(inode, vec![listener]);
        let judged = judge_now(&namespaces, None, before, &walked, dir.path());
        assert!(matches!(judged.dump[..], [(_, Why::Churn)]), "{judged:?}");
    }

    #[test]
    fn no_process_to_count_through_or_a_device_bound_socket_dumps_the_namespace() {
        let (dir, inode) = proc_with(7, 1);
        // Process 8 is not in the namespace (no proc entry): no counts.
        let namespaces = [namespace(inode, 7), namespace(99, 8)];
        let before = count_before(&namespaces, None, dir.path());
        let mut bound = socket(Protocol::Tcp, "0.0.0.0", 80, SocketState::LISTEN);
        bound.device = DeviceBinding::Device {
            index: 2,
            name: None,
        };
        let walked = walked(inode, vec![bound]);
        let judged = judge_now(&namespaces, None, before, &walked, dir.path());
        let whys: Vec<&str> = judged.dump.iter().map(|(_, w)| w.reason()).collect();
        assert_eq!(
            whys,
            [Why::Device.reason(), Why::NoCounts.reason()],
            "{judged:?}"
        );
    }

    #[test]
    fn only_a_kernel_surplus_whose_counts_held_still_explains_unheld_sockets() {
        let c = |tcp4, udp4| Counts {
            tcp4,
            udp4,
            ..Counts::default()
        };
        let mismatch = Why::Mismatch {
            kernel: c(3, 2),
            walked: c(3, 1),
        };
        // VXLAN's port: one UDP socket beyond what processes hold, counts unchanged.
        assert_eq!(surplus(&mismatch, Ok(c(3, 2))), Some(c(0, 1)));
        // The counts moved since: sockets came or went, nothing is explained.
        assert_eq!(surplus(&mismatch, Ok(c(4, 2))), None);
        assert_eq!(surplus(&mismatch, Err(Why::NoCounts)), None);
        // Dumped for churn, or for want of counts: nothing is explained.
        assert_eq!(surplus(&Why::Churn, Ok(c(3, 2))), None);
        assert_eq!(surplus(&Why::NoCounts, Ok(c(3, 2))), None);
        // Processes held more than the kernel counts: no surplus.
        let odd = Why::Mismatch {
            kernel: c(1, 0),
            walked: c(2, 0),
        };
        assert_eq!(surplus(&odd, Ok(c(1, 0))), None);
    }

    #[test]
    fn records_decode_into_sockets_by_namespace_and_others_are_left_out() {
        let record = |netns, protocol, port| {
            let bytes = crate::model::socket_record::tests::encode(&SocketRecord {
                inode: u64::from(port),
                cgroup_id: 0,
                local_addr: [0; 16],
                remote_addr: [0; 16],
                netns,
                uid: 0,
                recv_q: 0,
                send_q: 128,
                bound_dev_if: 0,
                local_port: port,
                remote_port: 0,
                family: 2,
                protocol,
                state: 10,
                flags: 1,
            });
            <[u8; 80]>::try_from(bytes.as_slice()).unwrap()
        };
        // A record of another protocol (132: SCTP) is not one lsports lists.
        let records = [
            record(7, 6, 80),
            record(8, 17, 53),
            record(7, 6, 443),
            record(7, 132, 9),
        ];
        let tables = [(Protocol::Tcp, Family::Ipv4), (Protocol::Udp, Family::Ipv4)];
        let netns = |inode| Arc::new(Netns { inode, name: None });
        let walked = decode(records.to_vec(), &tables, true, netns);
        let ports = |ns: u64| -> Vec<u16> {
            let of_ns = walked
                .sockets
                .iter()
                .filter(|s| s.netns.as_ref().unwrap().inode == ns);
            let mut ports: Vec<u16> = of_ns.map(|s| s.local_port).collect();
            ports.sort_unstable();
            ports
        };
        assert_eq!(ports(7), [80, 443]);
        assert_eq!(walked.counts[&7].tcp4, 2);
        // A UDP socket in state LISTEN (10) is not listening: counted, not kept.
        assert!(ports(8).is_empty());
        assert_eq!(walked.counts[&8].udp4, 1);
        assert_eq!(walked.counts.len(), 2);
        assert_eq!(walked.sockets.len(), 2);
        // Only IPv6 asked for: every socket still counted.
        let v6 = decode(
            records.to_vec(),
            &[(Protocol::Tcp, Family::Ipv6)],
            true,
            netns,
        );
        assert!(v6.sockets.is_empty());
        assert_eq!(v6.counts[&7].tcp4, 2);

        // Many more records than one chunk, over two namespaces: every one decoded once, each
        // socket tagged with its own namespace, the namespace's tag made once per run of it.
        let many: Vec<[u8; 80]> = (0..3 * CHUNK + 5)
            .map(|i| record(7 + (i / 1000) as u32 % 2, 6, 1 + i as u16))
            .collect();
        let mut made = 0;
        let walked = decode(many, &tables, true, |inode| {
            made += 1;
            netns(inode)
        });
        assert_eq!(walked.sockets.len(), 3 * CHUNK + 5);
        let mut ports: Vec<u16> = walked.sockets.iter().map(|s| s.local_port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 3 * CHUNK + 5);
        let (seven, eight) = (walked.counts[&7].tcp4, walked.counts[&8].tcp4);
        assert_eq!(seven + eight, (3 * CHUNK + 5) as u64);
        for s in &walked.sockets {
            let inode = s.netns.as_ref().unwrap().inode;
            assert_eq!(inode, 7 + u64::from((s.local_port - 1) / 1000 % 2), "{s:?}");
        }
        assert!(
            made <= 8,
            "one tag per run of a namespace, not per socket: {made}"
        );
    }

    #[test]
    fn only_what_the_dump_would_list_is_kept() {
        let sockets = [
            socket(Protocol::Tcp, "0.0.0.0", 80, SocketState::LISTEN),
            socket(Protocol::Tcp, "10.0.0.1", 80, SocketState::ESTABLISHED),
            socket(Protocol::Udp, "0.0.0.0", 53, SocketState::CLOSE),
            socket(Protocol::Udp, "0.0.0.0", 0, SocketState::CLOSE),
            socket(Protocol::Tcp, "::", 22, SocketState::LISTEN),
        ];
        let tcp4 = [(Protocol::Tcp, Family::Ipv4), (Protocol::Udp, Family::Ipv4)];
        let kept = |listening| -> Vec<u16> {
            let asked = sockets.iter().filter(|s| requested(s, &tcp4, listening));
            asked.map(|s| s.local_port).collect()
        };
        assert_eq!(
            kept(true),
            [80, 53],
            "listening IPv4, an unbound UDP socket is in no table"
        );
        assert_eq!(kept(false), [80, 80, 53]);
    }
}
