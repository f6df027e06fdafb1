//! The iterator's output: a stream of fixed-size records, `{ u32 pid; u32 fd; u64 inode; }` in
//! native byte order (`struct record` in `task_sockets.bpf.c`), one per socket fd.

use std::collections::HashSet;

use crate::model::Holder;
use crate::process::holders::Holders;

/// Size of one record in bytes.
pub const RECORD_SIZE: usize = 16;

/// One socket file descriptor of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Process id, as the reader's pid namespace numbers it.
    pub pid: u32,
    /// File descriptor number.
    pub fd: u32,
    /// Socket inode.
    pub inode: u64,
}

/// Decode whole records; a trailing partial record (which the kernel never writes) is ignored.
pub fn decode(bytes: &[u8]) -> impl Iterator<Item = Record> + '_ {
    bytes.chunks_exact(RECORD_SIZE).map(|chunk| {
        let (pid, rest) = chunk.split_at(4);
        let (fd, inode) = rest.split_at(4);
        Record {
            pid: u32::from_ne_bytes(pid.try_into().unwrap_or_default()),
            fd: u32::from_ne_bytes(fd.try_into().unwrap_or_default()),
            inode: u64::from_ne_bytes(inode.try_into().unwrap_or_default()),
        }
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
}

impl<'a> Selection<'a> {
    /// An empty selection of the holders of `wanted`.
    pub fn new(wanted: &'a HashSet<u64>) -> Self {
        Selection {
            wanted,
            found: Vec::new(),
            processes: 0,
            last_pid: None,
        }
    }

    /// Add `records`, keeping each holder of a wanted inode that `keep` confirms (reading its
    /// details while the iterator goes on).
    pub fn add(
        &mut self,
        records: impl Iterator<Item = Record>,
        mut keep: impl FnMut(u64, Holder) -> bool,
    ) {
        for record in records {
            if self.last_pid != Some(record.pid) {
                self.processes += 1;
                self.last_pid = Some(record.pid);
            }
            if !self.wanted.contains(&record.inode) {
                continue;
            }
            let holder = Holder {
                pid: record.pid,
                fd: record.fd,
            };
            if keep(record.inode, holder) {
                self.found.push((record.inode, holder));
            }
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(records: &[(u32, u32, u64)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for &(pid, fd, inode) in records {
            bytes.extend_from_slice(&pid.to_ne_bytes());
            bytes.extend_from_slice(&fd.to_ne_bytes());
            bytes.extend_from_slice(&inode.to_ne_bytes());
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
                    inode: 1 << 40
                },
                Record {
                    pid: 8,
                    fd: 4,
                    inode: 99
                },
            ]
        );
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
        let mut keep = |_, holder: Holder| {
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
}
