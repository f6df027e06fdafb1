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
//! container. The result has the shape of [`fdscan::scan`](super::fdscan::scan)'s, so both
//! paths feed the same entry building and give the same listing.

pub mod background;
pub mod btf_digest;
pub mod error;
pub mod iterator;
pub mod preflight;
pub mod records;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::fdscan::FdScan;
use super::info::{DetailFields, DetailsReader, ProcessDetails};
pub use error::BpfUnavailable;

/// Where the kernel describes its own types.
pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// Find every (pid, fd) holding each inode in `wanted`, with the details of those pids read
/// under `proc_root`, which must be this process's live `/proc`.
pub fn scan(proc_root: &Path, wanted: &HashSet<u64>) -> Result<FdScan, BpfUnavailable> {
    let checked = preflight::check(proc_root)?;
    let mut gather = Gather::new(proc_root, wanted, DetailFields::ALL);
    let (go, ready) = std::sync::mpsc::channel();
    // The wanted sockets are known already: run at once.
    let _ = go.send(());
    iterator::run(checked, &ready, |records| gather.add(records))?;
    Ok(gather.finish())
}

/// Builds the scan from the iterator's output as it arrives: the holders of the wanted inodes,
/// and the details of each holder process, read as soon as it is first seen, while the kernel
/// is still visiting the others (and close to when it saw the fds, so a reused pid is
/// unlikely to lend its name).
#[derive(Debug)]
pub struct Gather<'a> {
    reader: DetailsReader,
    selection: records::Selection<'a>,
    details: HashMap<u32, ProcessDetails>,
}

impl<'a> Gather<'a> {
    /// Gather the holders of `wanted`, reading the name and `fields` of each under
    /// `proc_root`.
    pub fn new(proc_root: &'a Path, wanted: &'a HashSet<u64>, fields: DetailFields) -> Self {
        Gather {
            reader: DetailsReader::new(proc_root).only(fields),
            selection: records::Selection::new(wanted),
            details: HashMap::new(),
        }
    }

    /// Take whole records of the iterator's output.
    pub fn add(&mut self, records: &[u8]) {
        let Gather {
            reader,
            selection,
            details,
        } = self;
        selection.add(records::decode(records), |pid| {
            details.insert(pid, reader.read(pid));
        });
    }

    /// The scan, in the shape the fd walk gives.
    pub fn finish(self) -> FdScan {
        let (holders, processes) = self.selection.finish();
        FdScan {
            holders,
            details: self.details,
            // The kernel shows every process of the reader's pid namespace: none is hidden.
            denied: 0,
            scanned: processes,
        }
    }
}
