//! Typed errors for the failures callers act on: a source that cannot enumerate (so the
//! collector falls back), and a malformed line (so the parser skips it and warns).

use std::io;
use std::path::PathBuf;

/// A socket source could not enumerate one (protocol, family) table.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Opening, sending to or receiving from the sock_diag socket failed.
    #[error("netlink sock_diag {context}: {source}")]
    NetlinkIo {
        /// What was being done ("socket", "send", "recv").
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel answered the dump with an error code (`NLMSG_ERROR`, or a negative code
    /// inside `NLMSG_DONE`, which is how a missing `*_diag` module is reported).
    #[error("netlink sock_diag dump refused by the kernel: {source}{hint}")]
    NetlinkRefused {
        /// The errno the kernel sent.
        #[source]
        source: io::Error,
        /// A hint on what to do, possibly empty.
        hint: &'static str,
    },
    /// The reply could not be decoded.
    #[error("netlink sock_diag reply could not be decoded: {0}")]
    NetlinkDecode(String),
    /// A snapshot holds no such table. A kernel always has the IPv4 tables, so the snapshot
    /// was made without it (by hand, or from a tree that lacked it): its sockets are unknown,
    /// which the unpacked file's path would not tell.
    #[error("the snapshot {} holds no {table} table, so these sockets are unknown", .snapshot.display())]
    NotInSnapshot {
        /// The snapshot file, as given.
        snapshot: PathBuf,
        /// The table's path in the proc tree: `net/udp`.
        table: String,
    },
    /// A `/proc/net` table could not be read.
    #[error("cannot read {path}: {source}")]
    ProcRead {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// One line of a `/proc` table that could not be parsed; the rest of the table still is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: field {field}: {problem}")]
pub struct ParseWarning {
    /// The file, as the user would name it.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// Which field was bad (e.g. `local_address`, `inode`).
    pub field: &'static str,
    /// What was wrong with it.
    pub problem: String,
}
