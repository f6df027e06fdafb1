//! Why the kernel iterator cannot run: one variant per missing piece, each saying what would
//! provide it, because `--attribution bpf` reports it to the user and `auto` under `-v`.

use std::io;
use std::path::PathBuf;

/// The BPF fast path cannot run here.
#[derive(Debug, thiserror::Error)]
pub enum BpfUnavailable {
    /// The proc root is a fixture tree, a snapshot or another pid namespace's proc mount: the
    /// kernel iterator describes the running system as this process sees it, nothing else.
    #[error(
        "{} is not this process's live /proc (the BPF iterator only describes the running \
         system)",
        proc_root.display()
    )]
    NotLiveProc {
        /// The proc root that was asked for.
        proc_root: PathBuf,
    },
    /// The process lacks the capabilities to load a tracing program.
    #[error("loading the BPF iterator needs root, or CAP_BPF and CAP_PERFMON; missing {missing}")]
    MissingCapability {
        /// The capabilities that are missing, as the user would name them.
        missing: String,
    },
    /// Capabilities inside a user namespace do not count for BPF, which checks the initial one.
    #[error(
        "loading the BPF iterator needs CAP_BPF and CAP_PERFMON in the initial user namespace; \
         this process runs in a nested user namespace"
    )]
    UserNamespace,
    /// The kernel does not describe its own types, so the program cannot be relocated (CO-RE).
    #[error(
        "no usable kernel BTF at {} (needs a kernel built with CONFIG_DEBUG_INFO_BTF): {reason}",
        path.display()
    )]
    NoBtf {
        /// Where the BTF was looked for.
        path: PathBuf,
        /// Why it could not be read or parsed.
        reason: String,
    },
    /// The kernel's BTF has no such iterator: older than Linux 5.8 (`task_file`), or BPF
    /// iterators are not built in.
    #[error(
        "the kernel has no such BPF iterator (task_file needs Linux 5.8 or later, the \
         fd-table walk 5.17): {0}"
    )]
    NoIterator(String),
    /// The kernel refused the program or a map (verifier, missing helper, memory limit).
    #[error("the kernel refused the BPF iterator: {0}")]
    Load(String),
    /// The iterator loaded but reading its output failed.
    #[error("reading the BPF iterator failed: {0}")]
    Read(#[source] io::Error),
    /// A process holds more sockets than the fd-table walk can give in one read: the kernel
    /// hands over one process's records whole, in a buffer of 32 KiB (1,023 records and the
    /// process's cgroup id), and
    /// refuses the read (`E2BIG`) when they do not fit. The `task_file` iterator, which hands
    /// over each file apart, has no such limit.
    #[error("a process holds more sockets than one read of the fd-table walk carries (1,023)")]
    TooManySockets,
}

impl BpfUnavailable {
    /// Short name of the missing piece, for tests and logs (`capability`, `btf`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            BpfUnavailable::NotLiveProc { .. } => "proc_root",
            BpfUnavailable::MissingCapability { .. } | BpfUnavailable::UserNamespace => {
                "capability"
            }
            BpfUnavailable::NoBtf { .. } => "btf",
            BpfUnavailable::NoIterator(_) => "kernel",
            BpfUnavailable::Load(_) => "load",
            BpfUnavailable::Read(_) => "read",
            BpfUnavailable::TooManySockets => "too_many_sockets",
        }
    }
}
