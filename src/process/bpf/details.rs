//! Name, command line and uid of the processes that hold a shown socket, read in parallel:
//! three small `/proc` reads per process add up on a host with a thousand holders.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::process::info::{self, ProcessDetails};

/// Below this many processes one thread is faster than starting more.
const PIDS_PER_THREAD: usize = 64;

/// Read the details of every pid in `pids` under `proc_root`.
pub fn read_all(proc_root: &Path, pids: &[u32]) -> HashMap<u32, ProcessDetails> {
    let threads = worker_count(pids.len());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| read_some(proc_root, pids, &next)))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_default())
            .collect()
    })
}

fn worker_count(pids: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(pids / PIDS_PER_THREAD + 1).clamp(1, 16)
}

/// Take pids from the shared counter until none are left.
fn read_some(proc_root: &Path, pids: &[u32], next: &AtomicUsize) -> Vec<(u32, ProcessDetails)> {
    let mut read = Vec::new();
    while let Some(&pid) = pids.get(next.fetch_add(1, Ordering::Relaxed)) {
        read.push((pid, info::read_details(proc_root, pid)));
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pid_is_read_once_whatever_the_thread_count() {
        let me = std::process::id();
        let mut pids: Vec<u32> = vec![me; 1];
        pids.extend(u32::MAX - 300..u32::MAX);
        let details = read_all(Path::new("/proc"), &pids);
        assert_eq!(details.len(), pids.len());
        assert!(details[&me].name.is_some());
        assert_eq!(details[&(u32::MAX - 1)], ProcessDetails::default());
    }
}
