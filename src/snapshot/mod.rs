//! Offline snapshots: capture everything lsports reads from `/proc` into one portable file,
//! and open such a file later, anywhere, as a proc root the normal pipeline reads.
//!
//! ```text
//! capture: proc root --(tables, then each holder's socket fds, comm, cmdline, status, stat, exe)--> tar
//!          (--netns: and each chosen namespace's tables, see namespaces)
//! open:    tar --(checked entry by entry, into a private temp dir)--> proc root --> lsports run
//! ```
//!
//! A snapshot is a plain tar (gzip-compressed when its name ends in `.gz` or `.tgz`), so it can
//! be inspected with standard tools; its layout is in [`layout`]. Opening never trusts the
//! archive: paths are checked against that layout before anything is written, links may only
//! be fd and `exe` links (read, never followed), and sizes are bounded.

mod capture;
mod guard;
pub mod layout;
mod manifest;
mod namespaces;
mod open;
mod pinned;

use std::io;
use std::path::PathBuf;

pub use capture::{
    CaptureSummary, Compression, capture, capture_netns, write_snapshot, write_snapshot_netns,
};
pub use manifest::Manifest;
pub use open::{OpenedSnapshot, open, open_reader};

/// Why a snapshot could not be captured or opened. Every variant names the file involved and,
/// where the user can do something about it, says what.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The output file exists and overwriting was not asked for.
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists {
        /// The output file.
        path: PathBuf,
    },
    /// The proc root could not be opened or listed.
    #[error("cannot read the proc filesystem at {path}: {source}")]
    ProcRoot {
        /// The proc root.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Not one socket table could be read, so the snapshot would be empty.
    #[error(
        "cannot read any socket table under {path}/net (tcp, tcp6, udp, udp6): nothing to capture"
    )]
    NothingCaptured {
        /// The proc root.
        path: PathBuf,
    },
    /// Creating, writing or renaming the output failed; no partial file is left behind.
    #[error("cannot write the snapshot to {path}: {source}")]
    Write {
        /// The output file (or its directory, when the temporary file could not be made).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The snapshot file could not be read.
    #[error("cannot read snapshot {path}: {source}")]
    Read {
        /// The snapshot file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is not an lsports snapshot (not a tar, a bad manifest, no socket tables).
    #[error("{path} is not an lsports snapshot: {reason}")]
    NotASnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The snapshot was written by a newer lsports in a layout this one does not know.
    #[error(
        "{path} is a version {version} snapshot; this lsports reads version {supported}: upgrade lsports"
    )]
    UnsupportedVersion {
        /// The snapshot file.
        path: PathBuf,
        /// The version in its manifest.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// An archive entry would write outside the snapshot, or is of a kind a snapshot never
    /// holds where one is expected (a hard link, a device, a link pointing into a directory).
    #[error("{path}: refusing unsafe archive entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The snapshot file.
        path: PathBuf,
        /// The entry's name, lossily decoded.
        entry: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The snapshot expands beyond the bounds lsports sets (a damaged or hostile archive).
    #[error(
        "{path}: {what} exceeds the limit of {limit} {unit}; the archive is damaged or hostile"
    )]
    TooLarge {
        /// The snapshot file.
        path: PathBuf,
        /// What is too large (an entry's name, "the unpacked snapshot", "the number of
        /// processes"), terminal-safe.
        what: String,
        /// The limit.
        limit: u64,
        /// What the limit counts: "bytes", "entries", "processes", "namespaces".
        unit: &'static str,
    },
    /// The snapshot is gzip-compressed and this build has no gzip support.
    #[error("{path} is gzip-compressed, but this lsports was built without the `gzip` feature")]
    CompressionUnsupported {
        /// The snapshot file.
        path: PathBuf,
    },
    /// Unpacking into the private temporary directory failed.
    #[error("cannot unpack snapshot {path} into {dir}: {source}")]
    Unpack {
        /// The snapshot file.
        path: PathBuf,
        /// The temporary directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
