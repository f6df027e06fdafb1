//! Socket attribution in the kernel: a BPF `task_file` iterator visits every (process, fd,
//! file) in one pass and emits only the sockets, so no `readlinkat` is paid per descriptor.
//!
//! The program (`bpf/task_sockets.bpf.c`, compiled to the committed `task_sockets.bpf.o` by
//! `bpf/build.sh`, so building lsports needs no clang) is CO-RE: the kernel fields it reads
//! are relocated against `/sys/kernel/btf/vmlinux` when it is loaded. It needs Linux 5.8 or
//! later with BTF, and root or `CAP_BPF` + `CAP_PERFMON` in the initial user namespace;
//! [`preflight`] checks each so a refusal names what is missing.
//!
//! Pids are emitted as the reader's pid namespace numbers them (the program walks the task's
//! `struct pid` to the reader's level), so they match the reader's `/proc` even inside a
//! container. The result has the shape of [`fdscan::scan`](super::fdscan::scan)'s, so both
//! paths feed the same entry building and give the same listing.

pub mod details;
pub mod error;
pub mod iterator;
pub mod preflight;
pub mod records;

use std::collections::HashSet;
use std::path::Path;

use super::fdscan::FdScan;
pub use error::BpfUnavailable;

/// Where the kernel describes its own types.
pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// Find every (pid, fd) holding each inode in `wanted`, then read details of those pids under
/// `proc_root`, which must be this process's live `/proc`.
pub fn scan(proc_root: &Path, wanted: &HashSet<u64>) -> Result<FdScan, BpfUnavailable> {
    let reader = preflight::check(proc_root)?;
    let output = iterator::run(reader)?;
    Ok(select(&output, proc_root, wanted))
}

/// The scan from the iterator's `output`: holders of the inodes in `wanted`, and the details
/// of just those processes.
pub fn select(output: &[u8], proc_root: &Path, wanted: &HashSet<u64>) -> FdScan {
    let (holders, processes) = records::holders(records::decode(output), wanted);
    let mut pids: Vec<u32> = holders.values().flatten().map(|h| h.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    FdScan {
        holders,
        details: details::read_all(proc_root, &pids),
        // The kernel shows every process of the reader's pid namespace: none is hidden.
        denied: 0,
        scanned: processes,
    }
}
