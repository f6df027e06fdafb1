//! What both attribution paths find, in one shape ([`Scan`]): which (pid, fd) pairs hold each
//! socket inode, the details of those processes, and what could not be seen.
//!
//! The holders are kept as two sorted columns rather than a map of lists: a busy host has tens
//! of thousands of wanted inodes, most with one holder, and a list per inode would be an
//! allocation each.

use std::collections::{BTreeMap, HashMap};

use super::ScanWarning;
use super::info::ProcessDetails;
use crate::model::Holder;

/// What a scan found, by the `/proc/*/fd` walk or the kernel iterator alike.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every holder of each wanted inode, sorted by (pid, fd).
    pub holders: Holders,
    /// Details of every pid that holds a wanted inode.
    pub details: HashMap<u32, ProcessDetails>,
    /// User processes whose fds could not be read.
    pub denied: usize,
    /// Processes whose fds were read: by the walk, every process; by the kernel iterator, every
    /// process holding at least one socket (it never sees the others).
    pub scanned: usize,
    /// What went wrong on the way (a walking thread that failed, a file that did not parse).
    pub warnings: Vec<ScanWarning>,
    /// From the kernel iterator only (empty from the walk): the inode of every network
    /// namespace that some socket of a visited process belongs to, wanted or not, each with one
    /// (pid, fd) that held such a socket when the kernel saw it (not confirmed since: check it
    /// before use). This finds namespaces that only a socket keeps alive (no process is in
    /// them, none is mounted), which `--netns all` lists: the socket's fd enters it
    /// (`SIOCGSKNS`).
    pub socket_netns: BTreeMap<u64, Holder>,
    /// Every socket fd seen that holds none of the wanted inodes, when the walk was asked to
    /// keep them ([`super::Started::keep_unwanted`]); `None` when it was not, or the path that
    /// ran cannot. `--netns all` asks these sockets for their namespace: one only a socket
    /// keeps alive is found that way, without a second walk over `/proc/*/fd`.
    pub unwanted: Option<Vec<(u64, Holder)>>,
    /// From the kernel iterator asked for sockets ([`super::bpf::iterator::Emit::Sockets`]):
    /// every TCP and UDP socket a process holds outside the reader's namespace, as its own
    /// record; `None` otherwise.
    pub walked: Option<super::bpf::records::WalkedRecords>,
    /// From the kernel iterator only (empty from the walk): the cgroup v2 id of each process
    /// holding a wanted inode, as the kernel saw it (`task->cgroups->dfl_cgrp`), for labels to
    /// take instead of reading each process's cgroup.
    pub cgroups: HashMap<u32, u64>,
    /// From the kernel iterator only: holders it named that the process's `/proc` directory
    /// did not show, as (inode, holder), to tell a process hidden from `/proc` (see
    /// [`super::info::overmounted_pids`]) from one that exited.
    pub unshown: Vec<(u64, Holder)>,
}

/// Every holder of each inode, sorted by (inode, pid, fd).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holders {
    inodes: Vec<u64>,
    holders: Vec<Holder>,
}

impl Holders {
    /// The holders in `pairs`, in any order; a pair given twice counts once.
    pub fn from_pairs(mut pairs: Vec<(u64, Holder)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup();
        let (inodes, holders) = pairs.into_iter().unzip();
        Holders { inodes, holders }
    }

    /// Add the holders in `pairs`.
    pub fn add(&mut self, pairs: Vec<(u64, Holder)>) {
        let mut all: Vec<(u64, Holder)> =
            self.inodes.drain(..).zip(self.holders.drain(..)).collect();
        all.extend(pairs);
        *self = Holders::from_pairs(all);
    }

    /// The holders of `inode`, by (pid, fd); empty when nothing holds it.
    pub fn of(&self, inode: u64) -> &[Holder] {
        let start = self.inodes.partition_point(|&i| i < inode);
        let end = start + self.inodes[start..].partition_point(|&i| i == inode);
        &self.holders[start..end]
    }

    /// How many distinct inodes have holders: one pass over the sorted column.
    pub fn inode_count(&self) -> usize {
        let repeats = self.inodes.windows(2).filter(|w| w[0] == w[1]).count();
        self.inodes.len() - repeats
    }

    /// Whether any holder of `inode` was found.
    pub fn contains(&self, inode: u64) -> bool {
        !self.of(inode).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: u32, fd: u32) -> Holder {
        Holder { pid, fd }
    }

    #[test]
    fn holders_of_an_inode_are_sorted_and_others_are_empty() {
        let holders = Holders::from_pairs(vec![
            (20, holder(9, 4)),
            (10, holder(30, 5)),
            (10, holder(10, 4)),
            (10, holder(10, 3)),
            (20, holder(9, 4)),
            (u64::MAX, holder(1, 0)),
        ]);
        assert_eq!(
            holders.of(10),
            [holder(10, 3), holder(10, 4), holder(30, 5)]
        );
        assert_eq!(
            holders.of(20),
            [holder(9, 4)],
            "a repeated pair counts once"
        );
        assert_eq!(holders.of(u64::MAX), [holder(1, 0)]);
        assert!(holders.of(0).is_empty() && holders.of(15).is_empty());
        assert!(holders.contains(20) && !holders.contains(21));
        assert_eq!(holders.inode_count(), 3);
        assert_eq!(Holders::default().inode_count(), 0);
        assert!(Holders::default().of(10).is_empty());
        let mut more = holders.clone();
        more.add(vec![(15, holder(2, 2)), (10, holder(11, 1))]);
        assert_eq!(more.of(15), [holder(2, 2)]);
        assert_eq!(
            more.of(10),
            [holder(10, 3), holder(10, 4), holder(11, 1), holder(30, 5)]
        );
        assert_eq!(more.of(20), holders.of(20));
    }
}
