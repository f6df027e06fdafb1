//! Socket attribution in the kernel: a BPF `task_file` iterator visits every (process, fd,
//! file) in one pass and emits only the sockets, so no `readlinkat` is paid per descriptor.
//!
//! The program (`bpf/task_sockets.bpf.c`, compiled to the committed `task_sockets.bpf.o` by
//! `bpf/build.sh`, so building lsports needs no clang) is CO-RE: the kernel fields it reads
//! are relocated against `/sys/kernel/btf/vmlinux` when it is loaded. It needs Linux 5.8 or
//! later with BTF, and root or `CAP_BPF` + `CAP_PERFMON` in the initial user namespace;
//! [`preflight`] checks each so a refusal names what is missing.
//!
//! Pids are emitted as the reader's pid namespace numbers them (the program reads the task's
//! `struct pid` at the reader's level), so they match the reader's `/proc` even inside a
//! container. The result is the walk's [`Scan`], so both paths feed the same entry building
//! and give the same listing.

pub mod aya_workaround;
pub mod error;
pub mod iterator;
pub mod pass;
pub mod preflight;
pub mod records;

use std::collections::HashSet;
use std::path::Path;

use super::confirm::Confirm;
use super::fdscan;
use super::holders::Scan;
use super::info::DetailsReader;
use crate::config::DetailFields;
pub use error::BpfUnavailable;
pub use pass::Pass;

/// Where the kernel describes its own types.
pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// Find every (pid, fd) holding each inode in `wanted`, with the details of those pids read
/// under `proc_root`, which must be this process's live `/proc`.
pub fn scan(proc_root: &Path, wanted: &HashSet<u64>) -> Result<Scan, BpfUnavailable> {
    let checked = preflight::check(proc_root)?;
    let mut gather = Gather::new(proc_root, wanted, DetailFields::ALL);
    let (go, ready) = std::sync::mpsc::channel();
    // The wanted sockets are known already: run at once.
    let _ = go.send(());
    iterator::run(checked, &ready, |records| gather.add(records))?;
    Ok(gather.finish())
}

/// Builds the scan from the iterator's output as it arrives: the holders of the wanted inodes,
/// each confirmed and its process's details read as soon as it is first seen, while the kernel
/// is still visiting the others (see `confirm`: a reused pid does not lend its name).
#[derive(Debug)]
pub struct Gather<'a> {
    proc_root: &'a Path,
    confirm: Confirm,
    selection: records::Selection<'a>,
}

impl<'a> Gather<'a> {
    /// Gather the holders of `wanted`, reading the name and `fields` of each under
    /// `proc_root`.
    pub fn new(proc_root: &'a Path, wanted: &'a HashSet<u64>, fields: DetailFields) -> Self {
        Gather {
            proc_root,
            confirm: Confirm::new(DetailsReader::new(proc_root).only(fields)),
            selection: records::Selection::new(wanted),
        }
    }

    /// Take whole records of the iterator's output.
    pub fn add(&mut self, records: &[u8]) {
        let confirm = &mut self.confirm;
        self.selection
            .add(records::decode(records), |inode, holder| {
                confirm.keep(inode, holder)
            });
    }

    /// The scan, in the shape the fd walk gives.
    pub fn finish(self) -> Scan {
        let wanted = self.selection.wanted();
        let (holders, processes) = self.selection.finish();
        let (details, mut denied) = self.confirm.finish_map();
        // The kernel sees every process, but a process whose fd links are refused (a security
        // module's, or a sandbox's guarded init) is one the walk cannot inspect, and it may
        // emit nothing for it: when a wanted socket has no holder, count those processes as
        // the walk does, so that both paths give the same reasons.
        if wanted.iter().any(|&inode| !holders.contains(inode)) {
            denied = denied.max(fdscan::count_denied(self.proc_root));
        }
        Scan {
            holders,
            details,
            denied,
            scanned: processes,
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
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
        let mut records = Vec::new();
        for (pid, fd, inode) in [(7u32, 3u32, 99u64), (8, 4, 100)] {
            records.extend_from_slice(&pid.to_ne_bytes());
            records.extend_from_slice(&fd.to_ne_bytes());
            records.extend_from_slice(&inode.to_ne_bytes());
        }
        gather.add(&records);
        let scan = gather.finish();
        assert!(scan.holders.of(99).is_empty());
        assert!(!scan.details.contains_key(&7));
        assert_eq!(scan.holders.of(100).len(), 1);
        assert_eq!(scan.details[&8].name.as_deref(), Some(&b"sshd"[..]));
    }
}
