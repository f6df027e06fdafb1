//! The iterator's output: a stream of records, `{ u32 pid; u32 fd; u64 inode; u64 start; u32
//! netns; u32 extra; }` in native byte order (`struct record` in `task_sockets.bpf.c`), one
//! per socket fd, each followed by `extra` bytes: first, after the first record of each process
//! (after every record, from the `task_file` program), the process's cgroup v2 id, a `u64`
//! ([`CGROUP_SIZE`]); then, where the loader asked for the sockets too
//! ([`super::iterator::Emit::Sockets`]), a `struct socket_record` of [`SOCKET_RECORD_SIZE`]
//! bytes describing the socket as sock_diag would. Both programs write the same records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasherDefault;

use crate::model::word_hash::WordHasher;

use crate::model::Holder;
use crate::process::holders::Holders;

/// Size of one record's fixed part in bytes.
pub const RECORD_SIZE: usize = 32;
/// Size of the cgroup id that follows a process's first record.
pub const CGROUP_SIZE: usize = 8;
/// Size of the socket record that may follow it (`struct socket_record`).
pub const SOCKET_RECORD_SIZE: usize = 80;

/// One socket file descriptor of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Process id, as the reader's pid namespace numbers it.
    pub pid: u32,
    /// File descriptor number.
    pub fd: u32,
    /// Socket inode.
    pub inode: u64,
    /// When the process started: the kernel's `task->start_boottime`, nanoseconds since boot
    /// (without a time namespace's offset).
    pub start: u64,
    /// Inode of the socket's network namespace (what `/proc/PID/ns/net` links to for a process
    /// in it); 0 when the kernel's structures could not be read.
    pub netns: u32,
    /// The cgroup v2 id of the process (`task->cgroups->dfl_cgrp`; 0 when the kernel's
    /// structures could not be read), on the first record of each process (the fd-table
    /// walk) or on every record (`task_file`); `None` on the others.
    pub cgroup: Option<u64>,
    /// The socket's own record (`struct socket_record`, [`SOCKET_RECORD_SIZE`] bytes), where
    /// the walk was asked for it and the socket is a TCP or UDP one.
    pub socket: Option<&'a [u8]>,
}

/// The bytes of the whole records at the start of `bytes` (the rest is a record cut by a
/// short read, to be completed by the next).
pub fn whole(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(size) = size_at(bytes, at) {
        at += size;
    }
    at
}

/// The size of the record at `at`, if it is all in `bytes`.
fn size_at(bytes: &[u8], at: usize) -> Option<usize> {
    let header = bytes.get(at..at + RECORD_SIZE)?;
    let extra = u32::from_ne_bytes(header[28..32].try_into().ok()?) as usize;
    let size = RECORD_SIZE + extra;
    (bytes.len() - at >= size).then_some(size)
}

/// Decode whole records; a trailing partial record (which the kernel never writes) is ignored.
pub fn decode(bytes: &[u8]) -> impl Iterator<Item = Record<'_>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let size = size_at(bytes, at)?;
        let chunk = &bytes[at..at + size];
        at += size;
        // `size_at` checked the whole record is there, so every field's slice has its size.
        let u32_at =
            |at: usize| u32::from_ne_bytes(chunk[at..at + 4].try_into().unwrap_or_default());
        let u64_at =
            |at: usize| u64::from_ne_bytes(chunk[at..at + 8].try_into().unwrap_or_default());
        let rest = &chunk[RECORD_SIZE..];
        // The cgroup id comes first when it comes: the rest is then 8 bytes longer.
        let with_cgroup = matches!(rest.len() % SOCKET_RECORD_SIZE, CGROUP_SIZE)
            && rest.len() <= CGROUP_SIZE + SOCKET_RECORD_SIZE;
        let (cgroup, socket) = match with_cgroup {
            true => (Some(u64_at(RECORD_SIZE)), &rest[CGROUP_SIZE..]),
            false => (None, rest),
        };
        Some(Record {
            pid: u32_at(0),
            fd: u32_at(4),
            inode: u64_at(8),
            start: u64_at(16),
            netns: u32_at(24),
            cgroup,
            socket: (socket.len() == SOCKET_RECORD_SIZE).then_some(socket),
        })
    })
}

/// The holders of the wanted inodes among the records seen so far.
#[derive(Debug)]
pub struct Selection<'a> {
    wanted: &'a HashSet<u64>,
    found: Vec<(u64, Holder)>,
    /// Processes seen; the kernel visits one process's fds together, so a pid differing from
    /// the previous record's is a new process.
    processes: usize,
    last_pid: Option<u32>,
    /// One descriptor per network namespace that any socket seen belongs to.
    namespaces: BTreeMap<u64, Holder>,
    /// The namespace of the previous record: most follow one of the same.
    last_netns: u32,
    /// Wanted inodes named by a record whose holder `keep` did not confirm.
    seen_unkept: Vec<u64>,
    /// The socket records that came with the holder records, one per socket.
    sockets: WalkedRecords,
    /// The cgroup v2 id of each process with a kept holder, as the kernel saw it (one entry
    /// per run of a process's records).
    cgroups: Vec<(u32, u64)>,
    /// The last process whose cgroup id came, and that id: it comes with the process's first
    /// record, which may hold no wanted socket.
    last_cgroup: Option<(u32, u64)>,
}

/// The socket records the walk wrote (`struct socket_record`, raw: the process stage does not
/// read sockets), one per socket however many fds hold it.
#[derive(Debug, Default)]
pub struct WalkedRecords {
    /// One per socket, in the order first seen.
    pub records: Vec<[u8; SOCKET_RECORD_SIZE]>,
    /// The inodes of those sockets.
    inodes: HashSet<u64, BuildHasherDefault<WordHasher>>,
}

impl<'a> Selection<'a> {
    /// An empty selection of the holders of `wanted`.
    pub fn new(wanted: &'a HashSet<u64>) -> Self {
        Selection {
            wanted,
            found: Vec::new(),
            processes: 0,
            last_pid: None,
            namespaces: BTreeMap::new(),
            last_netns: 0,
            seen_unkept: Vec::new(),
            sockets: WalkedRecords::default(),
            cgroups: Vec::new(),
            last_cgroup: None,
        }
    }

    /// Add `records`, keeping each holder of a wanted inode that `keep` confirms (reading its
    /// details while the iterator goes on).
    pub fn add<'r>(
        &mut self,
        records: impl Iterator<Item = Record<'r>>,
        mut keep: impl FnMut(&Record, Holder) -> bool,
    ) {
        for record in records {
            if self.last_pid != Some(record.pid) {
                self.processes += 1;
                self.last_pid = Some(record.pid);
            }
            let holder = Holder {
                pid: record.pid,
                fd: record.fd,
            };
            if let Some(cgroup) = record.cgroup {
                self.last_cgroup = Some((record.pid, cgroup));
            }
            if record.netns != self.last_netns && record.netns != 0 {
                self.last_netns = record.netns;
                self.namespaces.entry(record.netns.into()).or_insert(holder);
            }
            // A socket's own record comes only for sockets of other namespaces, read whole
            // from the walk: their holders are wanted too.
            if let Some(socket) = record.socket {
                self.sockets.add(record.inode, socket);
            } else if !self.wanted.contains(&record.inode) {
                continue;
            }
            if keep(&record, holder) {
                self.found.push((record.inode, holder));
                // Only a kept holder's: a pid reused since the kernel's visit is not confirmed.
                let known = self
                    .cgroups
                    .last()
                    .is_some_and(|&(pid, _)| pid == record.pid);
                match self.last_cgroup {
                    Some((pid, cgroup)) if pid == record.pid && cgroup != 0 && !known => {
                        self.cgroups.push((pid, cgroup));
                    }
                    _ => {}
                }
            } else {
                self.seen_unkept.push(record.inode);
            }
        }
    }

    /// Add the records of a second pass that name an inode in `only`, as [`Selection::add`]
    /// but without counting their processes again.
    pub fn add_again<'r>(
        &mut self,
        records: impl Iterator<Item = Record<'r>>,
        only: &HashSet<u64>,
        keep: impl FnMut(&Record, Holder) -> bool,
    ) {
        let processes = self.processes;
        self.add(records.filter(|r| only.contains(&r.inode)), keep);
        self.processes = processes;
    }

    /// The wanted inodes that no record named so far.
    pub fn unseen(&self) -> HashSet<u64> {
        let mut unseen = self.wanted.clone();
        for (inode, _) in &self.found {
            unseen.remove(inode);
        }
        for inode in &self.seen_unkept {
            unseen.remove(inode);
        }
        unseen
    }

    /// The inodes asked for.
    pub fn wanted(&self) -> &'a HashSet<u64> {
        self.wanted
    }

    /// Every holder of each wanted inode, sorted by (pid, fd) as the fd walk gives them, and
    /// the number of distinct processes that hold any socket.
    pub fn finish(self) -> (Holders, usize) {
        (Holders::from_pairs(self.found), self.processes)
    }

    /// The cgroup v2 id of every process with a kept holder, as the kernel saw it, taken out.
    pub fn take_cgroups(&mut self) -> HashMap<u32, u64> {
        std::mem::take(&mut self.cgroups).into_iter().collect()
    }

    /// The socket records that came with the holder records, taken out.
    pub fn take_sockets(&mut self) -> WalkedRecords {
        std::mem::take(&mut self.sockets)
    }

    /// The network namespaces of every socket seen, wanted or not, each with one (pid, fd)
    /// holding a socket in it, as the kernel saw them (unconfirmed).
    pub fn namespaces(&self) -> &BTreeMap<u64, Holder> {
        &self.namespaces
    }
}

impl WalkedRecords {
    /// The records alone, the inodes' set freed.
    pub fn into_records(self) -> Vec<[u8; SOCKET_RECORD_SIZE]> {
        self.records
    }

    /// Add the record of socket `inode` unless it has one already.
    fn add(&mut self, inode: u64, socket: &[u8]) {
        let Ok(record) = socket.try_into() else {
            return;
        };
        if self.inodes.insert(inode) {
            self.records.push(record);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Records as the kernel writes them, each process started at `100 * pid` ns, every
    /// socket in namespace 4026531840.
    pub(crate) fn encode(records: &[(u32, u32, u64)]) -> Vec<u8> {
        encode_full(
            &records
                .iter()
                .map(|&(pid, fd, inode)| (pid, fd, inode, 100 * u64::from(pid), 4026531840))
                .collect::<Vec<_>>(),
        )
    }

    /// Records as the kernel writes them: (pid, fd, inode, start, netns), without cgroup ids.
    pub(crate) fn encode_full(records: &[(u32, u32, u64, u64, u32)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for &(pid, fd, inode, start, netns) in records {
            bytes.extend_from_slice(&pid.to_ne_bytes());
            bytes.extend_from_slice(&fd.to_ne_bytes());
            bytes.extend_from_slice(&inode.to_ne_bytes());
            bytes.extend_from_slice(&start.to_ne_bytes());
            bytes.extend_from_slice(&netns.to_ne_bytes());
            bytes.extend_from_slice(&0u32.to_ne_bytes());
        }
        assert_eq!(bytes.len(), records.len() * RECORD_SIZE);
        bytes
    }

    /// Records as the fd-table walk writes them, (pid, fd, inode), each process's first one
    /// followed by its cgroup id from `cgroup(pid)`.
    pub(crate) fn encode_with_cgroups(
        records: &[(u32, u32, u64)],
        cgroup: impl Fn(u32) -> u64,
    ) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut last = None;
        for &(pid, fd, inode) in records {
            let mut record = encode(&[(pid, fd, inode)]);
            if last.replace(pid) != Some(pid) {
                record[28..32].copy_from_slice(&(CGROUP_SIZE as u32).to_ne_bytes());
                record.extend_from_slice(&cgroup(pid).to_ne_bytes());
            }
            bytes.extend(record);
        }
        bytes
    }

    #[test]
    fn records_decode_in_native_order_and_partial_tails_are_dropped() {
        let mut bytes = encode(&[(7, 3, 1 << 40), (8, 4, 99)]);
        bytes.extend_from_slice(&[1, 2, 3]);
        let got: Vec<Record> = decode(&bytes).collect();
        assert_eq!(
            got,
            vec![
                Record {
                    pid: 7,
                    fd: 3,
                    inode: 1 << 40,
                    start: 700,
                    netns: 4026531840,
                    cgroup: None,
                    socket: None,
                },
                Record {
                    pid: 8,
                    fd: 4,
                    inode: 99,
                    start: 800,
                    netns: 4026531840,
                    cgroup: None,
                    socket: None,
                },
            ]
        );
    }

    /// A record followed by a socket record whose first byte is `tag`.
    fn with_socket(pid: u32, fd: u32, inode: u64, netns: u32, tag: u8) -> Vec<u8> {
        let mut bytes = encode_full(&[(pid, fd, inode, 100, netns)]);
        bytes[28..32].copy_from_slice(&(SOCKET_RECORD_SIZE as u32).to_ne_bytes());
        let mut socket = [0u8; SOCKET_RECORD_SIZE];
        socket[0] = tag;
        bytes.extend_from_slice(&socket);
        bytes
    }

    #[test]
    fn records_with_socket_records_decode_and_a_cut_one_waits_for_the_rest() {
        let mut bytes = encode(&[(7, 3, 1)]);
        bytes.extend(with_socket(8, 4, 2, 9, 0xab));
        bytes.extend(encode(&[(9, 5, 3)]));
        let whole_len = bytes.len();
        assert_eq!(whole(&bytes), whole_len);
        let got: Vec<Record> = decode(&bytes).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].socket, None);
        assert_eq!(got[1].socket.map(|s| (s.len(), s[0])), Some((80, 0xab)));
        assert_eq!((got[2].pid, got[2].socket), (9, None));
        // A read that ends inside the socket record: only the first record is whole.
        let cut = RECORD_SIZE + RECORD_SIZE + 10;
        assert_eq!(whole(&bytes[..cut]), RECORD_SIZE);
        assert_eq!(decode(&bytes[..cut]).count(), 1);
    }

    #[test]
    fn socket_records_are_kept_once_per_socket_and_their_holders_are_wanted() {
        let mut bytes = with_socket(10, 3, 5, 9, 1);
        // The same socket in a second process (a prefork listener): one record kept.
        bytes.extend(with_socket(11, 4, 5, 9, 1));
        bytes.extend(with_socket(12, 4, 6, 9, 2));
        let wanted = HashSet::new();
        let mut selection = Selection::new(&wanted);
        selection.add(decode(&bytes), |_, _| true);
        let sockets = selection.take_sockets();
        let tags: Vec<u8> = sockets.records.iter().map(|r| r[0]).collect();
        assert_eq!(tags, [1, 2]);
        let (holders, _) = selection.finish();
        assert_eq!(
            holders.of(5).len(),
            2,
            "both holders of the socket read whole"
        );
        assert_eq!(holders.of(6), [Holder { pid: 12, fd: 4 }]);
    }

    #[test]
    fn holders_keep_every_pid_and_fd_of_wanted_inodes_sorted() {
        // A prefork listener (inode 10) in three processes, one of them through two fds. The
        // kernel gives each process's fds together, and lists must not rely on its order.
        let bytes = encode(&[
            (30, 5, 10),
            (10, 4, 10),
            (10, 3, 10),
            (10, 9, 11),
            (20, 3, 10),
        ]);
        let wanted = HashSet::from([10]);
        let mut selection = Selection::new(&wanted);
        let mut asked = Vec::new();
        let (first, rest) = bytes.split_at(2 * RECORD_SIZE);
        let mut keep = |_: &Record, holder: Holder| {
            asked.push(holder.pid);
            true
        };
        selection.add(decode(first), &mut keep);
        selection.add(decode(rest), &mut keep);
        assert_eq!(asked, vec![30, 10, 10, 20], "every wanted holder, in order");
        let (holders, processes) = selection.finish();
        let want: Vec<Holder> = [(10, 3), (10, 4), (20, 3), (30, 5)]
            .into_iter()
            .map(|(pid, fd)| Holder { pid, fd })
            .collect();
        assert_eq!(holders.of(10), want);
        assert!(!holders.contains(11), "unwanted inodes are dropped");
        assert_eq!(processes, 3);
    }

    #[test]
    fn each_kept_process_s_cgroup_is_the_kernel_s_and_unconfirmed_ones_lend_none() {
        // Process P is in cgroup 1000 + P (40's could not be read: 0). Pid 10's first record
        // holds an unwanted socket, and its cgroup id comes with it; 20's one holder is not
        // confirmed (its pid was reused since); 30 holds only an unwanted socket.
        let cgroup = |pid| if pid == 40 { 0 } else { 1000 + u64::from(pid) };
        let bytes = encode_with_cgroups(
            &[
                (10, 2, 9),
                (10, 3, 1),
                (10, 4, 2),
                (20, 5, 3),
                (30, 6, 9),
                (40, 7, 4),
            ],
            cgroup,
        );
        let got: Vec<(u32, Option<u64>)> = decode(&bytes).map(|r| (r.pid, r.cgroup)).collect();
        assert_eq!(
            got,
            [
                (10, Some(1010)),
                (10, None),
                (10, None),
                (20, Some(1020)),
                (30, Some(1030)),
                (40, Some(0))
            ]
        );
        let wanted = HashSet::from([1, 2, 3, 4]);
        let mut selection = Selection::new(&wanted);
        selection.add(decode(&bytes), |r, _| r.pid != 20);
        assert_eq!(selection.take_cgroups(), HashMap::from([(10, 1010)]));
        // A cgroup id followed by a socket's own record: both decode.
        let mut both = encode(&[(50, 3, 7)]);
        both[28..32].copy_from_slice(&((CGROUP_SIZE + SOCKET_RECORD_SIZE) as u32).to_ne_bytes());
        both.extend_from_slice(&1050u64.to_ne_bytes());
        both.extend_from_slice(&[0xab; SOCKET_RECORD_SIZE]);
        let record = decode(&both).next().unwrap();
        assert_eq!(record.cgroup, Some(1050));
        assert_eq!(
            record.socket.map(|s| (s.len(), s[0])),
            Some((SOCKET_RECORD_SIZE, 0xab))
        );
    }

    #[test]
    fn a_second_pass_keeps_only_what_the_first_never_named() {
        let wanted = HashSet::from([1, 2, 3]);
        let mut selection = Selection::new(&wanted);
        // Inode 1 is held and confirmed, 2 named but not confirmed (its holder exited), 3 was
        // opened after the kernel visited its process.
        let first = encode(&[(10, 3, 1), (20, 4, 2), (20, 5, 9)]);
        selection.add(decode(&first), |r, _| r.pid == 10);
        let unseen = selection.unseen();
        assert_eq!(unseen, HashSet::from([3]));
        let second = encode(&[(10, 3, 1), (20, 4, 2), (30, 6, 3)]);
        let mut asked = Vec::new();
        selection.add_again(decode(&second), &unseen, |r, _| {
            asked.push(r.inode);
            true
        });
        assert_eq!(
            asked,
            [3],
            "only what the first pass missed is confirmed again"
        );
        let (holders, processes) = selection.finish();
        assert_eq!(holders.of(3), [Holder { pid: 30, fd: 6 }]);
        assert_eq!(holders.of(1), [Holder { pid: 10, fd: 3 }]);
        assert_eq!(processes, 2, "the second pass counts no process again");
    }

    #[test]
    fn every_socket_namespace_is_kept_with_its_first_holder_wanted_or_not() {
        let bytes = encode_full(&[
            (10, 3, 1, 1000, 7),
            (10, 4, 2, 1000, 8),
            (20, 5, 3, 2000, 7),
            (20, 6, 4, 2000, 0),
            (30, 9, 5, 3000, 8),
        ]);
        let wanted = HashSet::from([1]);
        let mut selection = Selection::new(&wanted);
        selection.add(decode(&bytes), |_, _| true);
        let namespaces: Vec<(u64, Holder)> = selection
            .namespaces()
            .iter()
            .map(|(&ns, &h)| (ns, h))
            .collect();
        assert_eq!(
            namespaces,
            [
                (7, Holder { pid: 10, fd: 3 }),
                (8, Holder { pid: 10, fd: 4 })
            ],
            "an unreadable namespace (0) is not one"
        );
    }
}
