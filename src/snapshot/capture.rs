//! `lsports capture`: read a proc tree the way lsports does and write it as one tar.
//!
//! The tables are read first, then every process; only fds holding a socket of those tables
//! are kept (and only processes with at least one), so the snapshot is small and holds no
//! process that could not matter. Processes that exit during the capture are skipped whole;
//! processes whose fds cannot be read are recorded as such, so that the opened snapshot says
//! "owner unknown: permission" exactly as the live run would have.
//!
//! The file appears atomically, written by the one atomic writer ([`crate::sys::atomic`]),
//! private (0600) from creation on: refusing to replace an existing file unless forced, and
//! leaving no half-written snapshot behind on any failure or on a signal.

use std::collections::HashSet;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::SnapshotError;
use super::layout::{MANIFEST, PROCESS_FILES, TABLES};
use super::manifest::Manifest;
use super::namespaces::{self, Recording};
use crate::config::NetnsChoice;
use crate::process::fdscan::parse_socket_link;
use crate::sys::atomic::{Access, AtomicFile, WriteError};
use crate::sys::procroot::ProcRoot;

/// Compression of a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// A gzip-compressed tar.
    Gzip,
}

impl Compression {
    /// Gzip for names ending in `.gz` or `.tgz`, else none.
    pub fn for_path(path: &Path) -> Compression {
        let name = path.as_os_str().as_encoded_bytes();
        if name.ends_with(b".gz") || name.ends_with(b".tgz") {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// What a capture wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// The socket tables captured (`tcp`, `tcp6`, …); a missing IPv6 table is simply absent.
    pub tables: Vec<&'static str>,
    /// Tables that exist but could not be read, with the reason.
    pub table_errors: Vec<String>,
    /// Socket rows in the captured tables.
    pub sockets: usize,
    /// Processes holding at least one of those sockets.
    pub processes: usize,
    /// fd links recorded.
    pub links: usize,
    /// Processes whose fds could not be read (recorded as such).
    pub denied: usize,
    /// Processes that exited during the capture (skipped).
    pub vanished: usize,
    /// Network namespaces whose tables were captured besides the capture's own (`--netns`).
    pub namespaces: usize,
}

impl CaptureSummary {
    /// One line for stderr, e.g. `captured 4 tables (12 sockets) and 3 processes (5 socket fds)`.
    pub fn describe(&self) -> String {
        self.describe_as(crate::sys::privilege::Privilege::current())
    }

    /// [`CaptureSummary::describe`] for a capture run with `privilege`, which decides what
    /// would have included the processes it could not inspect.
    pub fn describe_as(&self, privilege: crate::sys::privilege::Privilege) -> String {
        use crate::sys::privilege::Privilege;
        use crate::text::counts::count;
        let namespaces = match self.namespaces {
            0 => String::new(),
            n => format!(" in {}", count(n + 1, "network namespace")),
        };
        let mut text = format!(
            "captured {}{namespaces} ({}) and {} ({})",
            count(self.tables.len(), "table"),
            count(self.sockets, "socket"),
            count(self.processes, "process"),
            count(self.links, "socket fd")
        );
        if self.vanished > 0 {
            let (processes, was) = (count(self.vanished, "process"), were(self.vanished));
            text.push_str(&format!(
                "; {processes} exited during the capture and {was} skipped"
            ));
        }
        if self.denied > 0 {
            let their = if self.denied == 1 { "its" } else { "their" };
            let remedy = match privilege {
                Privilege::Unprivileged => "capture as root to include them",
                Privilege::Root => {
                    "refused even to root, by a security module such as Yama, SELinux, AppArmor \
                     or a sandbox's"
                }
                Privilege::NamespacedRoot => {
                    "lsports runs as root of a user namespace, which may not look into processes \
                     outside it: capture from the host's user namespace to include them"
                }
            };
            text.push_str(&format!(
                "; {} could not be inspected, so {their} sockets will show no owner ({remedy})",
                count(self.denied, "process")
            ));
        }
        for error in &self.table_errors {
            text.push_str(&format!("; {error}"));
        }
        text
    }
}

/// `was` for one, `were` for more.
fn were(n: usize) -> &'static str {
    if n == 1 { "was" } else { "were" }
}

/// Capture the proc tree at `proc_root` into the file `out` (gzip if it ends in `.gz` or
/// `.tgz`). Refuses to replace an existing `out` unless `force`; on any error no file is
/// left behind. The file is created readable by its owner only: command lines may hold
/// secrets.
pub fn capture(proc_root: &Path, out: &Path, force: bool) -> Result<CaptureSummary, SnapshotError> {
    capture_netns(proc_root, &NetnsChoice::Current, out, force)
}

/// [`capture`], with the tables of the network namespaces `netns` names too.
pub fn capture_netns(
    proc_root: &Path,
    netns: &NetnsChoice,
    out: &Path,
    force: bool,
) -> Result<CaptureSummary, SnapshotError> {
    let mut file = AtomicFile::create(out, Access::Private, force).map_err(from_write)?;
    let summary = write_to(
        proc_root,
        netns,
        Compression::for_path(out),
        file.file(),
        out,
    )?;
    file.commit().map_err(from_write)?;
    Ok(summary)
}

/// Write a snapshot of `proc_root` to any writer (a pipe to ssh, a buffer in a test).
pub fn write_snapshot<W: Write>(
    proc_root: &Path,
    compression: Compression,
    out: W,
) -> Result<CaptureSummary, SnapshotError> {
    write_snapshot_netns(proc_root, &NetnsChoice::Current, compression, out)
}

/// [`write_snapshot`], with the tables of the network namespaces `netns` names too.
pub fn write_snapshot_netns<W: Write>(
    proc_root: &Path,
    netns: &NetnsChoice,
    compression: Compression,
    out: W,
) -> Result<CaptureSummary, SnapshotError> {
    write_to(
        proc_root,
        netns,
        compression,
        out,
        Path::new("standard output"),
    )
}

/// Collect, then encode to `out`; `label` names `out` in errors.
fn write_to<W: Write>(
    proc_root: &Path,
    netns: &NetnsChoice,
    compression: Compression,
    out: W,
    label: &Path,
) -> Result<CaptureSummary, SnapshotError> {
    let captured = collect(proc_root, netns)?;
    let written = match compression {
        Compression::None => write_archive(&captured, BufWriter::new(out)).and_then(flush),
        Compression::Gzip => write_gzip(&captured, out, label)?,
    };
    written.map_err(|source| SnapshotError::Write {
        path: label.to_owned(),
        source,
    })?;
    Ok(captured.summary)
}

fn flush<W: Write>(mut out: W) -> io::Result<()> {
    out.flush()
}

#[cfg(feature = "gzip")]
fn write_gzip<W: Write>(
    captured: &Captured,
    out: W,
    _label: &Path,
) -> Result<io::Result<()>, SnapshotError> {
    let level = flate2::Compression::default();
    let encoder = flate2::write::GzEncoder::new(BufWriter::new(out), level);
    Ok(write_archive(captured, encoder)
        .and_then(|e| e.finish())
        .and_then(flush))
}

/// Without gzip support a `.gz` name is an error before anything is read.
#[cfg(not(feature = "gzip"))]
fn write_gzip<W: Write>(
    _captured: &Captured,
    _out: W,
    label: &Path,
) -> Result<io::Result<()>, SnapshotError> {
    Err(SnapshotError::CompressionUnsupported {
        path: label.to_owned(),
    })
}

fn from_write(error: WriteError) -> SnapshotError {
    match error {
        WriteError::Exists { path } => SnapshotError::Exists { path },
        WriteError::Io { path, source } => SnapshotError::Write { path, source },
    }
}

/// Everything read from the tree, ready to be written.
struct Captured {
    manifest: Manifest,
    tables: Vec<(&'static str, Vec<u8>)>,
    netns: Recording,
    processes: Vec<ProcessCapture>,
    summary: CaptureSummary,
}

/// One process as it goes into the archive.
struct ProcessCapture {
    pid: u32,
    fds: FdCapture,
    files: Vec<(&'static str, Vec<u8>)>,
    /// Target of the `exe` link, when it could be read.
    exe: Option<Vec<u8>>,
}

enum FdCapture {
    /// fd number and link target of every fd holding a captured socket.
    Links(Vec<(u32, Vec<u8>)>),
    /// The fd directory could not be read: why.
    Denied(String),
}

/// What capturing one process gave.
enum Outcome {
    Captured(ProcessCapture),
    NoSockets,
    Vanished,
}

fn collect(proc_root: &Path, netns: &NetnsChoice) -> Result<Captured, SnapshotError> {
    let root_error = |source| SnapshotError::ProcRoot {
        path: proc_root.to_owned(),
        source,
    };
    let tree = ProcRoot::open(proc_root).map_err(root_error)?;
    let mut summary = CaptureSummary::default();
    let tables = read_tables(&tree, &mut summary);
    if tables.is_empty() {
        return Err(SnapshotError::NothingCaptured {
            path: proc_root.to_owned(),
        });
    }
    let mut inodes = table_inodes(&tables, &mut summary);
    let recording = namespaces::record(proc_root, netns, &inodes);
    for other in &recording.others {
        inodes.extend(table_inodes(&other.tables, &mut summary));
    }
    summary.namespaces = recording.others.len();
    summary.table_errors.extend(recording.notes.iter().cloned());
    let mut processes = Vec::new();
    for pid in tree.pids().map_err(root_error)? {
        match capture_process(&tree, pid, &inodes) {
            Outcome::Captured(process) => {
                record(&process, &mut summary);
                processes.push(process);
            }
            Outcome::NoSockets => {}
            Outcome::Vanished => summary.vanished += 1,
        }
    }
    Ok(Captured {
        manifest: Manifest::for_this_host(proc_root),
        tables,
        netns: recording,
        processes,
        summary,
    })
}

fn record(process: &ProcessCapture, summary: &mut CaptureSummary) {
    match &process.fds {
        FdCapture::Links(links) => {
            summary.processes += 1;
            summary.links += links.len();
        }
        FdCapture::Denied(_) => summary.denied += 1,
    }
}

fn read_tables(tree: &ProcRoot, summary: &mut CaptureSummary) -> Vec<(&'static str, Vec<u8>)> {
    let mut tables = Vec::new();
    for name in TABLES {
        match tree.read_file(&format!("net/{name}")) {
            Ok(data) => {
                summary.tables.push(name);
                tables.push((name, data));
            }
            // No IPv6 on the host: the table is absent there too, and lsports reads that as
            // "no IPv6 sockets".
            Err(e) if e.kind() == io::ErrorKind::NotFound && name.ends_with('6') => {}
            Err(e) => summary
                .table_errors
                .push(format!("cannot read net/{name}: {e}")),
        }
    }
    tables
}

/// Inodes of every socket in the tables, counted in the summary.
fn table_inodes(tables: &[(&'static str, Vec<u8>)], summary: &mut CaptureSummary) -> HashSet<u64> {
    let (count, inodes) = namespaces::socket_inodes(tables);
    summary.sockets += count;
    inodes
}

fn capture_process(tree: &ProcRoot, pid: u32, inodes: &HashSet<u64>) -> Outcome {
    let links = match tree.fd_links(pid) {
        Ok(links) => links,
        Err(e) if is_gone(&e) => return Outcome::Vanished,
        Err(e) => return denied_process(tree, pid, &e),
    };
    let links: Vec<(u32, Vec<u8>)> = links
        .into_iter()
        .filter(|(_, target)| parse_socket_link(target).is_some_and(|i| inodes.contains(&i)))
        .collect();
    if links.is_empty() {
        return Outcome::NoSockets;
    }
    match process_files(tree, pid, &PROCESS_FILES) {
        Some(files) => Outcome::Captured(ProcessCapture {
            pid,
            fds: FdCapture::Links(links),
            files,
            // Another user's link needs ptrace rights, and a kernel thread has none: optional.
            exe: tree.process_link(pid, "exe").ok(),
        }),
        None => Outcome::Vanished,
    }
}

/// A process whose fds cannot be read: keep why, and its `stat`, from which lsports tells a
/// kernel thread (never counted as hidden) from a user process.
fn denied_process(tree: &ProcRoot, pid: u32, error: &io::Error) -> Outcome {
    let Some(files) = process_files(tree, pid, &["stat"]) else {
        return Outcome::Vanished;
    };
    Outcome::Captured(ProcessCapture {
        pid,
        fds: FdCapture::Denied(denied_note(tree, pid, error)),
        files,
        exe: None,
    })
}

/// Why the fds of `pid` are missing. Capturing an unpacked snapshot finds the note the first
/// capture left where the directory would be (`fd` is then a file): keep that one, so a
/// snapshot of a snapshot is the same snapshot.
fn denied_note(tree: &ProcRoot, pid: u32, error: &io::Error) -> String {
    if error.raw_os_error() == Some(libc::ENOTDIR) {
        if let Ok(note) = tree.read_file(&format!("{pid}/fd")) {
            return String::from_utf8_lossy(&note).into_owned();
        }
    }
    format!(
        "lsports: the fd directory of this process could not be read at capture time: {error}\n"
    )
}

/// The readable ones of `names`; `None` if the process exited meanwhile.
fn process_files(
    tree: &ProcRoot,
    pid: u32,
    names: &[&'static str],
) -> Option<Vec<(&'static str, Vec<u8>)>> {
    let mut files = Vec::with_capacity(names.len());
    for &name in names {
        // At most what a snapshot may hold of a process's file (a larger one is left out, as
        // an unreadable one is), so a copied tree's 2 GiB `cmdline` is neither copied nor
        // makes a snapshot that cannot be opened.
        let mut data = Vec::new();
        let path = format!("{pid}/{name}");
        match tree.read_into(None, path.as_str(), &mut data) {
            Ok(()) => files.push((name, data)),
            // A missing file may be a tree written by hand; a missing process has exited.
            Err(e) if is_gone(&e) && !tree.has_process(pid) => return None,
            Err(_) => {}
        }
    }
    Some(files)
}

fn is_gone(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// Entry metadata: files read-only, directories traversable, owned by root, dated at capture.
fn header(kind: tar::EntryType, size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(match kind {
        tar::EntryType::Directory => 0o555,
        tar::EntryType::Symlink => 0o777,
        _ => 0o444,
    });
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn write_archive<W: Write>(captured: &Captured, out: W) -> io::Result<W> {
    let mtime = captured.manifest.captured_at;
    let mut builder = tar::Builder::new(out);
    let manifest = serde_json::to_vec_pretty(&captured.manifest)?;
    append_file(&mut builder, MANIFEST, &manifest, mtime)?;
    append_dir(&mut builder, "proc/", mtime)?;
    append_dir(&mut builder, "proc/net/", mtime)?;
    for (name, data) in &captured.tables {
        append_file(&mut builder, &format!("proc/net/{name}"), data, mtime)?;
    }
    append_namespaces(&mut builder, &captured.netns, mtime)?;
    for process in &captured.processes {
        append_process(&mut builder, process, mtime)?;
    }
    builder.into_inner()
}

/// `proc/netns/`: the capture's own namespace, each other one with its tables, those found
/// but not read, and whether that is every namespace there was.
fn append_namespaces<W: Write>(
    builder: &mut tar::Builder<W>,
    recording: &Recording,
    mtime: u64,
) -> io::Result<()> {
    let Some(own) = &recording.own else {
        return Ok(());
    };
    append_dir(builder, "proc/netns/", mtime)?;
    append_file(
        builder,
        "proc/netns/own",
        own.inode.to_string().as_bytes(),
        mtime,
    )?;
    if recording.complete {
        append_file(builder, "proc/netns/complete", b"", mtime)?;
    }
    let unread = recording.unread.iter().map(|ns| (ns, true));
    let read = std::iter::once(own).chain(&recording.others);
    for (ns, not_read) in read.map(|ns| (ns, false)).chain(unread) {
        let dir = format!("proc/netns/{}", ns.inode);
        append_dir(builder, &format!("{dir}/"), mtime)?;
        if let Some(name) = &ns.name {
            append_file(builder, &format!("{dir}/name"), name, mtime)?;
        }
        if not_read {
            append_file(builder, &format!("{dir}/unread"), b"", mtime)?;
        }
        for (table, data) in &ns.tables {
            append_file(builder, &format!("{dir}/net/{table}"), data, mtime)?;
        }
    }
    Ok(())
}

fn append_process<W: Write>(
    builder: &mut tar::Builder<W>,
    process: &ProcessCapture,
    mtime: u64,
) -> io::Result<()> {
    let dir = format!("proc/{}", process.pid);
    append_dir(builder, &format!("{dir}/"), mtime)?;
    for (name, data) in &process.files {
        append_file(builder, &format!("{dir}/{name}"), data, mtime)?;
    }
    if let Some(exe) = &process.exe {
        append_link(builder, &format!("{dir}/exe"), exe, mtime)?;
    }
    match &process.fds {
        FdCapture::Denied(why) => append_file(builder, &format!("{dir}/fd"), why.as_bytes(), mtime),
        FdCapture::Links(links) => {
            append_dir(builder, &format!("{dir}/fd/"), mtime)?;
            for (fd, target) in links {
                append_link(builder, &format!("{dir}/fd/{fd}"), target, mtime)?;
            }
            Ok(())
        }
    }
}

fn append_link<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    target: &[u8],
    mtime: u64,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Symlink, 0, mtime);
    builder.append_link(&mut h, path, Path::new(std::ffi::OsStr::from_bytes(target)))
}

fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mtime: u64,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, mtime);
    builder.append_data(&mut h, path, data)
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &str, mtime: u64) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, mtime);
    builder.append_data(&mut h, path, io::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_in_the_right_grammatical_number() {
        use crate::sys::privilege::Privilege;
        let one = CaptureSummary {
            tables: vec!["tcp"],
            table_errors: Vec::new(),
            sockets: 1,
            processes: 1,
            links: 1,
            denied: 1,
            vanished: 1,
            namespaces: 0,
        };
        assert_eq!(
            one.describe_as(Privilege::Unprivileged),
            "captured 1 table (1 socket) and 1 process (1 socket fd); 1 process exited during \
             the capture and was skipped; 1 process could not be inspected, so its sockets will \
             show no owner (capture as root to include them)"
        );
        let two = CaptureSummary {
            tables: vec!["tcp", "udp"],
            sockets: 2,
            processes: 2,
            links: 2,
            denied: 2,
            vanished: 2,
            ..one
        };
        assert_eq!(
            two.describe_as(Privilege::Unprivileged),
            "captured 2 tables (2 sockets) and 2 processes (2 socket fds); 2 processes exited \
             during the capture and were skipped; 2 processes could not be inspected, so their \
             sockets will show no owner (capture as root to include them)"
        );
        assert!(two.describe_as(Privilege::Root).ends_with(
            "(refused even to root, by a security module such as Yama, SELinux, \
                            AppArmor or a sandbox's)"
        ),);
        assert!(
            two.describe_as(Privilege::NamespacedRoot)
                .ends_with("capture from the host's user namespace to include them)"),
        );
    }
}
