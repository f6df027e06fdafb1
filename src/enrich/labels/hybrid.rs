//! Where processes sit in the cgroup v1 `name=systemd` hierarchy of a hybrid host, read from
//! the hierarchy's own tree instead of each process's `/proc/PID/cgroup`.
//!
//! On a hybrid host a process in the root of the cgroup2 tree may still be in a unit in the
//! v1 `name=systemd` hierarchy (a runtime that joins only the v1 hierarchies): that line of
//! its `/proc/PID/cgroup` names the unit. Reading that file for every such process is what
//! the labels cost where no process is in a cgroup2 directory: 1,016 reads, 5.4 ms on the
//! critical path of `--netns all -tlnup` in the namespaces world (1,216 processes, 201
//! namespaces; `LSPORTS_TIMING=1`, strace counts). procfs prints every hierarchy of the host
//! for each file, under the cgroup mutex.
//!
//! The hierarchy itself says the same, in one place: each non-root cgroup's `tasks` lists the
//! threads in it, and a process is where its main thread is (the thread whose id is the pid,
//! which `/proc/PID/cgroup` shows). Every process listed in no non-root cgroup is in the
//! root: on the hosts where this matters most, the hierarchy has no directory but its root,
//! and nothing is read but one directory listing. That inference is sound only where
//! - the pids are this PID namespace's (the caller's condition, as for cgroup2 members);
//! - the hierarchy is mounted from its root ([`cgroupfs::named_v1_mount`]), and this process
//!   is in the initial cgroup namespace, so that no process's path lies outside the mount
//!   (`/../…`) and the mount's paths are those `/proc/PID/cgroup` writes;
//! - the walk saw every directory ([`CgroupIndex::is_complete`]);
//! - and, as a check of all that, this process is found where its own `/proc/self/cgroup`
//!   says it is.
//!
//! Anything else, and the files are read as before. Where the host has no `name=systemd`
//! hierarchy at all (a cgroup2-only host: no process's file has that line), a process in the
//! cgroup2 root is in the root, and no file is read either.
//!
//! Measured in the namespaces world (`world.py --procs 1000 --tcp 20000 --udp 5000 --conns
//! 5000 --fds 100000 --netns 200`, every process in both roots; `--netns all -tlnup`, the BPF
//! path), main's binary and this one run alternately, 21 runs each, on a loaded machine (load
//! 8–14 on 2 cores): the stage from "owners found" to "labels read" (`LSPORTS_TIMING=1`) took
//! a median 6.0 ms (5.1–18.3) before and 1.2 ms (1.0–1.5) after, no `/proc/PID/cgroup` opened
//! (strace: 1,016 before); the process's CPU time (user + sys, `wait4`) a median 111.4 ms
//! before, 104.6 ms after. What is left of the stage is the loop over the 25,010 sockets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use super::cgroup;
use crate::sys::cgroupfs::{self, CgroupIndex};
use crate::sys::procroot::ProcRoot;

/// `readlink /proc/self/ns/cgroup` in the initial cgroup namespace (`PROC_CGROUP_INIT_INO`
/// in the kernel's `include/linux/proc_ns.h`: the initial namespaces' inodes are fixed).
const INITIAL_CGROUP_NAMESPACE: &[u8] = b"cgroup:[4026531835]";

/// Each process's `name=systemd` path, as `/proc/PID/cgroup` would write it.
#[derive(Debug)]
pub enum SystemdHierarchy {
    /// The host has no `name=systemd` hierarchy: no process's cgroup file has that line.
    Absent,
    /// The hierarchy's non-root cgroups and who is in them.
    Read {
        /// Its cgroups, by id.
        index: CgroupIndex,
        /// The cgroup of each thread in a non-root cgroup, by thread id.
        threads: HashMap<u32, u64>,
    },
}

impl SystemdHierarchy {
    /// Read the hierarchy, when it has at most `budget` cgroups, its root included (each
    /// costs a `tasks` read, against one `/proc/PID/cgroup` per process). `None` where the
    /// files must be read instead: too many cgroups, or the hierarchy cannot be read from its
    /// tree (see the module documentation). `proc` must be this PID namespace's `/proc`.
    pub fn read(proc: &ProcRoot, budget: usize) -> Option<SystemdHierarchy> {
        let own = proc.read_file("self/cgroup").ok()?;
        let Some(own_path) = cgroup::systemd_v1_path(&own) else {
            return Some(SystemdHierarchy::Absent);
        };
        let namespace = proc.read_link_in("self/ns", "cgroup").ok()?;
        if namespace != INITIAL_CGROUP_NAMESPACE {
            return None;
        }
        let mount = systemd_mount(proc)?;
        // A walk cut short at the budget is not complete.
        let index = CgroupIndex::build_at_most(&mount, budget).ok()?;
        if !index.is_complete() {
            return None;
        }
        let threads = match index.len() {
            1 => HashMap::new(),
            _ => index.threads_below_root(&mount).ok()?,
        };
        let read = SystemdHierarchy::Read { index, threads };
        (read.path_of(std::process::id()) == own_path).then_some(read)
    }

    /// The cgroup path that labels process `pid`, which is in the cgroup2 root: its
    /// `name=systemd` path (`/` for the root), or `/` where the host has no such hierarchy,
    /// as [`cgroup::process_cgroup_path`] would take it from the process's file.
    pub fn path_of(&self, pid: u32) -> &[u8] {
        match self {
            SystemdHierarchy::Absent => b"/",
            SystemdHierarchy::Read { index, threads } => (threads.get(&pid))
                .and_then(|&id| index.path(id))
                .unwrap_or(b"/"),
        }
    }
}

/// The mount point of the `name=systemd` hierarchy's root, from `/proc/self/mountinfo`, read
/// line by line only until it is found: systemd mounts it early, and the table goes on with a
/// line per bind-mounted network namespace (201 in the namespaces world), each costing the
/// kernel a path lookup.
fn systemd_mount(proc: &ProcRoot) -> Option<PathBuf> {
    let file = proc.open_file("self/mountinfo").ok()?;
    let mut lines = BufReader::new(file).split(b'\n').map_while(Result::ok);
    lines.find_map(|line| cgroupfs::named_v1_mount(&line, b"systemd"))
}

#[cfg(test)]
mod tests;
