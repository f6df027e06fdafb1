//! `lsports --snapshot FILE`: unpack a snapshot into a private temporary directory that then
//! serves as the proc root, so every flag and format works on it as on a live system.
//!
//! The archive is untrusted (it may come from any machine, or anyone): every entry is checked
//! by name against the snapshot layout before anything is written, only fd and `exe` entries
//! may be symlinks (fd links only to plain names like `socket:[N]`; `exe` links are only ever
//! read with `readlink`, by lsports and by this unpacker alike), and sizes are bounded. Files
//! are written at paths built from the checked name's parts, never from the name itself, and
//! never through a link.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::SnapshotError;
use super::guard::{self, TarGuard};
use super::layout::{self, EntryKind};
use super::manifest::{self, Manifest};
use crate::source::procnet::{ByteOrder, transcode::transcode};
use crate::sys::signals::Cleanup;

// The bounds keep a hostile archive from costing much memory, disk or time, while leaving
// room for the largest real hosts. Tables and per-process files are read into memory whole.

// Largest socket table accepted (~1.7 million sockets at ~150 bytes each), and largest
// per-process file (`cmdline` is bounded by ARG_MAX, a few MiB at most): the same bounds as a
// live or copied proc tree is read with.
use crate::sys::procroot::{MAX_PROCESS_FILE, MAX_TABLE_FILE as MAX_TABLE};
/// Largest manifest or unreadable-fd note.
const MAX_SMALL_FILE: u64 = 64 << 10;
/// Largest total unpacked size.
const MAX_TOTAL: u64 = 1 << 30;
/// Most tar stream read, headers and skipped entries included (after decompression).
const MAX_STREAM: u64 = 2 << 30;
/// Most entries accepted: a busy proxy may hold hundreds of thousands of sockets.
const MAX_ENTRIES: usize = 1_000_000;
/// Most processes accepted. A capture holds only processes holding a socket; each costs a
/// directory and a few files to unpack (and to remove), which takes seconds per ten thousand
/// on a slow disk, so thousands of empty entries are refused early.
const MAX_PROCESSES: usize = 16_384;
/// Most network namespaces accepted, for the same reason (a busy Kubernetes node has a few
/// hundred).
const MAX_NAMESPACES: usize = 4_096;

/// A snapshot unpacked into a private temporary directory, removed when this is dropped.
#[derive(Debug)]
pub struct OpenedSnapshot {
    dir: tempfile::TempDir,
    /// Unregisters the directory from removal on a signal once it is removed normally.
    _cleanup: Cleanup,
    root: PathBuf,
    manifest: Manifest,
    has_manifest: bool,
    skipped: usize,
}

impl OpenedSnapshot {
    /// The unpacked proc tree: pass it as the proc root (the `/proc` source is implied, since
    /// netlink only describes the live kernel).
    pub fn proc_root(&self) -> &Path {
        &self.root
    }

    /// What the snapshot says about itself (defaults when it has no manifest).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether the archive had a manifest (a proc tree tarred by hand has none).
    pub fn has_manifest(&self) -> bool {
        self.has_manifest
    }

    /// Entries with names a snapshot does not use, skipped.
    pub fn skipped_entries(&self) -> usize {
        self.skipped
    }

    /// One line for `--verbose`: `snapshot of web1 (Linux 6.8.0, x86_64), captured …`.
    pub fn describe(&self) -> String {
        let mut text = format!("snapshot of {}", self.manifest.describe());
        if self.skipped > 0 {
            text.push_str(&format!("; {} unknown entries skipped", self.skipped));
        }
        text
    }

    /// The temporary directory holding the unpacked tree.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Open the snapshot file at `file`, with the invoking user's rights (see
/// [`crate::sys::privilege::as_invoker`]).
pub fn open(file: &Path) -> Result<OpenedSnapshot, SnapshotError> {
    let reader = crate::sys::privilege::as_invoker(|| File::open(file));
    let reader = reader.map_err(|source| SnapshotError::Read {
        path: file.to_owned(),
        source,
    })?;
    open_reader(reader, file)
}

/// Open a snapshot from any reader (standard input, a network stream); `label` names it in
/// errors. Gzip compression is recognised by its magic bytes, whatever the name.
pub fn open_reader(reader: impl Read, label: &Path) -> Result<OpenedSnapshot, SnapshotError> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf().map_err(|source| SnapshotError::Read {
        path: label.to_owned(),
        source,
    })?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    // 0700 from creation on: the tree holds command lines, which may hold secrets. Removed if
    // a signal ends the run as well as when dropped.
    let make = || {
        tempfile::Builder::new()
            .prefix("lsports-snapshot-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
    };
    let (dir, cleanup) =
        Cleanup::create(make, |d| d.path()).map_err(|source| SnapshotError::Unpack {
            path: label.to_owned(),
            dir: std::env::temp_dir(),
            source,
        })?;
    let mut unpacker = Unpacker::new(label, dir.path().join(layout::PROC_DIR));
    if gzip {
        unpacker.unpack(TarGuard::new(decompress(reader, label)?, MAX_STREAM))?;
    } else {
        unpacker.unpack(TarGuard::new(reader, MAX_STREAM))?;
    }
    unpacker.finish(dir, cleanup)
}

#[cfg(feature = "gzip")]
fn decompress<R: BufRead>(reader: R, _label: &Path) -> Result<impl Read, SnapshotError> {
    Ok(flate2::bufread::MultiGzDecoder::new(reader))
}

#[cfg(not(feature = "gzip"))]
fn decompress<R: BufRead>(_reader: R, label: &Path) -> Result<R, SnapshotError> {
    Err(SnapshotError::CompressionUnsupported {
        path: label.to_owned(),
    })
}

/// State of one unpacking.
struct Unpacker<'a> {
    label: &'a Path,
    root: PathBuf,
    manifest: Option<Vec<u8>>,
    tables: Vec<&'static str>,
    /// Other namespaces' tables written, relative to the root (for the byte-order rewrite).
    netns_tables: Vec<PathBuf>,
    total: u64,
    entries: usize,
    processes: HashSet<u32>,
    namespaces: HashSet<u64>,
    /// The files and links written so far, by what they are (a name may be spelt two ways).
    written: HashSet<EntryKind>,
    skipped: usize,
}

impl<'a> Unpacker<'a> {
    fn new(label: &'a Path, root: PathBuf) -> Self {
        Unpacker {
            label,
            root,
            manifest: None,
            tables: Vec::new(),
            netns_tables: Vec::new(),
            total: 0,
            entries: 0,
            processes: HashSet::new(),
            namespaces: HashSet::new(),
            written: HashSet::new(),
            skipped: 0,
        }
    }

    fn unpack(&mut self, reader: impl Read) -> Result<(), SnapshotError> {
        self.create_dir(&self.root.clone())?;
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(|e| self.not_tar(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.not_tar(e))?;
            self.entry(&mut entry)?;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), SnapshotError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            let limit = MAX_ENTRIES as u64;
            return Err(self.too_many("the number of entries".into(), limit, "entries"));
        }
        let name = entry.path_bytes().into_owned();
        let kind = layout::classify(&name).map_err(|u| self.unsafe_entry(&name, u.reason()))?;
        // A second copy of a table, a process file or a link would silently replace the first
        // (a header-only `net/tcp` appended hides every listener): a capture writes each once,
        // so two are a damaged or doctored archive. Directories may repeat; unknown names are
        // skipped anyway.
        let once = !matches!(kind, EntryKind::Directory | EntryKind::Unknown);
        if once && !self.written.insert(kind.clone()) {
            return Err(self.unsafe_entry(
                &name,
                "it repeats an earlier entry (a damaged or doctored archive: the later copy \
                 would replace the first)",
            ));
        }
        self.count_process(&kind)?;
        let entry_type = entry.header().entry_type();
        match kind {
            EntryKind::Directory => Ok(()),
            EntryKind::Unknown => {
                self.skipped += 1;
                Ok(())
            }
            EntryKind::Manifest => {
                self.expect_file(&name, entry_type)?;
                self.manifest = Some(self.read_limited(entry, &name, MAX_SMALL_FILE)?);
                Ok(())
            }
            EntryKind::Table(table) => {
                self.expect_file(&name, entry_type)?;
                let data = self.read_limited(entry, &name, MAX_TABLE)?;
                let dir = self.root.join("net");
                self.create_dir(&dir)?;
                self.write_file(&dir.join(table), &data)?;
                // Listed once (a repeated entry is refused above): a byte-order rewrite
                // applied twice would undo itself.
                if !self.tables.contains(&table) {
                    self.tables.push(table);
                }
                Ok(())
            }
            EntryKind::ProcessFile { pid, name: file } => {
                self.expect_file(&name, entry_type)?;
                let data = self.read_limited(entry, &name, MAX_PROCESS_FILE)?;
                let dir = self.root.join(pid.to_string());
                self.create_dir(&dir)?;
                self.write_file(&dir.join(file), &data)
            }
            EntryKind::FdDir { pid } => self.fd_dir(entry, &name, entry_type, pid),
            EntryKind::FdLink { pid, fd } => self.fd_link(entry, &name, entry_type, pid, fd),
            EntryKind::ExeLink { pid } => self.exe_link(entry, &name, entry_type, pid),
            EntryKind::NetnsOwn => self.netns_file(entry, &name, entry_type, "netns/own".into()),
            EntryKind::NetnsComplete => {
                self.netns_file(entry, &name, entry_type, "netns/complete".into())
            }
            EntryKind::NetnsUnread { inode } => self.netns_file(
                entry,
                &name,
                entry_type,
                format!("netns/{inode}/unread").into(),
            ),
            EntryKind::NetnsName { inode } => self.netns_file(
                entry,
                &name,
                entry_type,
                format!("netns/{inode}/name").into(),
            ),
            EntryKind::NetnsTable { inode, table } => {
                self.expect_file(&name, entry_type)?;
                let data = self.read_limited(entry, &name, MAX_TABLE)?;
                let rel = PathBuf::from(format!("netns/{inode}/net/{table}"));
                self.put(&rel, &data)?;
                if !self.netns_tables.contains(&rel) {
                    self.netns_tables.push(rel);
                }
                Ok(())
            }
        }
    }

    /// A small file about a namespace, at `rel` under the root.
    fn netns_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        entry_type: tar::EntryType,
        rel: PathBuf,
    ) -> Result<(), SnapshotError> {
        self.expect_file(name, entry_type)?;
        let data = self.read_limited(entry, name, MAX_SMALL_FILE)?;
        self.put(&rel, &data)
    }

    /// Write `data` at `rel` under the root, making its directories.
    fn put(&self, rel: &Path, data: &[u8]) -> Result<(), SnapshotError> {
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            self.create_dir(dir)?;
        }
        self.write_file(&path, data)
    }

    /// Refuse more than [`MAX_PROCESSES`] distinct processes, or [`MAX_NAMESPACES`]
    /// namespaces.
    fn count_process(&mut self, kind: &EntryKind) -> Result<(), SnapshotError> {
        if let EntryKind::NetnsName { inode }
        | EntryKind::NetnsUnread { inode }
        | EntryKind::NetnsTable { inode, .. } = *kind
            && self.namespaces.insert(inode)
            && self.namespaces.len() > MAX_NAMESPACES
        {
            return Err(self.too_many(
                "the number of network namespaces".into(),
                MAX_NAMESPACES as u64,
                "namespaces",
            ));
        }
        let pid = match *kind {
            EntryKind::ProcessFile { pid, .. }
            | EntryKind::FdDir { pid }
            | EntryKind::FdLink { pid, .. }
            | EntryKind::ExeLink { pid } => pid,
            _ => return Ok(()),
        };
        if self.processes.insert(pid) && self.processes.len() > MAX_PROCESSES {
            return Err(self.too_many(
                "the number of processes".into(),
                MAX_PROCESSES as u64,
                "processes",
            ));
        }
        Ok(())
    }

    /// `proc/PID/fd`: a directory, or a file recording that it could not be read.
    fn fd_dir<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        entry_type: tar::EntryType,
        pid: u32,
    ) -> Result<(), SnapshotError> {
        let process = self.root.join(pid.to_string());
        self.create_dir(&process)?;
        let path = process.join("fd");
        if entry_type.is_dir() {
            return self.create_dir(&path);
        }
        self.expect_file(name, entry_type)?;
        let note = self.read_limited(entry, name, MAX_SMALL_FILE)?;
        // A directory already made for this process's links wins over a note saying it was
        // unreadable: the links are the more specific record.
        if path.is_dir() {
            return Ok(());
        }
        self.write_file(&path, &note)
    }

    /// `proc/PID/fd/FD -> socket:[N]`.
    fn fd_link<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        entry_type: tar::EntryType,
        pid: u32,
        fd: u32,
    ) -> Result<(), SnapshotError> {
        let target = self.link_target(entry, name, entry_type, layout::safe_link_target)?;
        let dir = self.root.join(pid.to_string()).join("fd");
        if dir.symlink_metadata().is_ok_and(|m| m.is_file()) {
            self.unpack_io(&dir, fs::remove_file(&dir))?;
        }
        self.create_dir(&dir)?;
        self.make_link(&dir.join(fd.to_string()), &target)
    }

    /// `proc/PID/exe -> /usr/sbin/sshd`.
    fn exe_link<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        entry_type: tar::EntryType,
        pid: u32,
    ) -> Result<(), SnapshotError> {
        let target = self.link_target(entry, name, entry_type, layout::safe_exe_target)?;
        let dir = self.root.join(pid.to_string());
        self.create_dir(&dir)?;
        self.make_link(&dir.join("exe"), &target)
    }

    /// The target of a symlink entry, if the entry is one and `acceptable` approves it.
    fn link_target<R: Read>(
        &self,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        entry_type: tar::EntryType,
        acceptable: fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>, SnapshotError> {
        if entry_type != tar::EntryType::Symlink {
            return Err(self.unsafe_entry(name, "a link entry must be a symlink"));
        }
        let target = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .unwrap_or_default();
        if !acceptable(&target) {
            return Err(self.unsafe_entry(name, "its link target is not one a snapshot holds"));
        }
        Ok(target)
    }

    /// A symlink at `path` (replacing a repeated entry's), to be read, never followed.
    fn make_link(&self, path: &Path, target: &[u8]) -> Result<(), SnapshotError> {
        if path.symlink_metadata().is_ok() {
            self.unpack_io(path, fs::remove_file(path))?;
        }
        let target =
            Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(target));
        self.unpack_io(path, std::os::unix::fs::symlink(target, path))
    }

    fn expect_file(&self, name: &[u8], entry_type: tar::EntryType) -> Result<(), SnapshotError> {
        if entry_type.is_file() {
            Ok(())
        } else {
            Err(self.unsafe_entry(name, "expected a regular file"))
        }
    }

    /// The entry's content, refusing more than `limit` bytes or a total beyond [`MAX_TOTAL`].
    fn read_limited<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        name: &[u8],
        limit: u64,
    ) -> Result<Vec<u8>, SnapshotError> {
        let display = crate::text::sanitize::terminal_safe(name).into_owned();
        if entry.header().size().unwrap_or(u64::MAX) > limit {
            return Err(self.too_large(display, limit));
        }
        let mut data = Vec::new();
        entry
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| self.stream_error(e))?;
        if data.len() as u64 > limit {
            return Err(self.too_large(display, limit));
        }
        self.total += data.len() as u64;
        if self.total > MAX_TOTAL {
            return Err(self.too_large("the unpacked snapshot".into(), MAX_TOTAL));
        }
        Ok(data)
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> Result<(), SnapshotError> {
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            // Readable by the owner only, like the directory: command lines may hold secrets.
            .mode(0o600)
            // Nothing this unpacker makes is a link at a file's path; refuse to write through one.
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .and_then(|mut file| file.write_all(data));
        self.unpack_io(path, written)
    }

    /// Create `path` (0700) and any missing parent below the root: an archive may list
    /// `proc/5/fd/3` before `proc/5/`, or never list the directories at all. Nothing above
    /// the root is created: once a signal has removed the tree, writing fails.
    fn create_dir(&self, path: &Path) -> Result<(), SnapshotError> {
        let below_root = path.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut dir = self.root.clone();
        self.make_one_dir(&dir)?;
        for part in below_root.components() {
            dir.push(part);
            self.make_one_dir(&dir)?;
        }
        Ok(())
    }

    fn make_one_dir(&self, path: &Path) -> Result<(), SnapshotError> {
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
            other => self.unpack_io(path, other),
        }
    }

    fn unpack_io(&self, path: &Path, result: io::Result<()>) -> Result<(), SnapshotError> {
        result.map_err(|source| SnapshotError::Unpack {
            path: self.label.to_owned(),
            dir: path.to_owned(),
            source,
        })
    }

    /// A read error inside an entry: the guard's refusal, or a failing read.
    fn stream_error(&self, error: io::Error) -> SnapshotError {
        match guard::refusal(&error) {
            Some(refused) => self.refused(refused),
            None => SnapshotError::Read {
                path: self.label.to_owned(),
                source: error,
            },
        }
    }

    fn refused(&self, refused: &guard::Refused) -> SnapshotError {
        let limit = match refused {
            guard::Refused::Extension { .. } => guard::MAX_EXTENSION,
            guard::Refused::Stream { budget } => *budget,
        };
        self.too_large(refused.to_string(), limit)
    }

    fn not_tar(&self, error: io::Error) -> SnapshotError {
        if let Some(refused) = guard::refusal(&error) {
            return self.refused(refused);
        }
        SnapshotError::NotASnapshot {
            path: self.label.to_owned(),
            // The tar reader's message quotes the archive's header bytes: escaped, since the
            // archive may be hostile.
            reason: format!(
                "not a readable tar archive ({})",
                crate::text::sanitize::terminal_safe_text(error.to_string())
            ),
        }
    }

    fn unsafe_entry(&self, name: &[u8], reason: &'static str) -> SnapshotError {
        SnapshotError::UnsafeEntry {
            path: self.label.to_owned(),
            entry: String::from_utf8_lossy(name).into_owned(),
            reason,
        }
    }

    fn too_large(&self, what: String, limit: u64) -> SnapshotError {
        self.too_many(what, limit, "bytes")
    }

    fn too_many(&self, what: String, limit: u64, unit: &'static str) -> SnapshotError {
        SnapshotError::TooLarge {
            path: self.label.to_owned(),
            what,
            limit,
            unit,
        }
    }

    /// Check the manifest, require tables, and bring tables into this host's byte order.
    fn finish(
        self,
        dir: tempfile::TempDir,
        cleanup: Cleanup,
    ) -> Result<OpenedSnapshot, SnapshotError> {
        let has_manifest = self.manifest.is_some();
        let manifest = match &self.manifest {
            Some(bytes) => self.check_manifest(bytes)?,
            None => Manifest::unknown(),
        };
        if self.tables.is_empty() {
            return Err(SnapshotError::NotASnapshot {
                path: self.label.to_owned(),
                reason: "it holds no socket table (proc/net/tcp, tcp6, udp or udp6)".into(),
            });
        }
        let order = manifest.byte_order().unwrap_or_else(ByteOrder::native);
        if order != ByteOrder::native() {
            self.transcode_tables(order)?;
        }
        Ok(OpenedSnapshot {
            root: self.root,
            dir,
            _cleanup: cleanup,
            manifest,
            has_manifest,
            skipped: self.skipped,
        })
    }

    fn check_manifest(&self, bytes: &[u8]) -> Result<Manifest, SnapshotError> {
        let bad = |reason: String| SnapshotError::NotASnapshot {
            path: self.label.to_owned(),
            reason,
        };
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("its {} does not parse ({e})", layout::MANIFEST)))?;
        if manifest.format != manifest::FORMAT {
            return Err(bad(format!(
                "its manifest says format {:?}",
                manifest.format
            )));
        }
        if manifest.version > manifest::VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                path: self.label.to_owned(),
                version: manifest.version,
                supported: manifest::VERSION,
            });
        }
        if manifest.byte_order().is_none() {
            return Err(bad(format!("unknown byte order {:?}", manifest.byte_order)));
        }
        Ok(manifest)
    }

    fn transcode_tables(&self, from: ByteOrder) -> Result<(), SnapshotError> {
        let own = self.tables.iter().map(|table| Path::new("net").join(table));
        for rel in own.chain(self.netns_tables.iter().cloned()) {
            let path = self.root.join(rel);
            let data = fs::read(&path).map_err(|source| SnapshotError::Unpack {
                path: self.label.to_owned(),
                dir: path.clone(),
                source,
            })?;
            self.write_file(&path, &transcode(&data, from, ByteOrder::native()))?;
        }
        Ok(())
    }
}
