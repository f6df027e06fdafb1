//! The one way lsports writes a file it is asked to create (a baseline, a snapshot): so that
//! it is never seen half-written, never readable by others while it is written, never left
//! behind, and never replaces a file by surprise.
//!
//! The contents go to a temporary file in the target's directory (so the final rename never
//! crosses a filesystem), created 0600 so that nobody else can open it at any moment, and
//! registered with [`Cleanup`] so that SIGINT, SIGTERM or SIGHUP remove it; dropping an
//! uncommitted [`AtomicFile`] (an error, a panic) removes it too. [`AtomicFile::commit`] sets
//! the final mode, flushes to disk and renames over the target in one step: a reader, or a
//! crash, sees the old file or the new one. Without `force` the rename is `link(2)`-based and
//! refuses to replace anything, atomically, so a file that appears meanwhile is not clobbered.
//! `-` meaning standard output is the callers' business: it is never a file here.

use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::signals::Cleanup;

/// Who may read the file once it is in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Its owner only, always: 0600 for a new file, and a replaced file's mode narrowed to at
    /// most 0600 (a snapshot holds command lines, which may hold secrets).
    Private,
    /// As the user's shell would make it: 0666 less the umask for a new file, and a replaced
    /// file's mode kept exactly (a 0600 baseline stays 0600 under `--force`).
    LikeShell,
    /// As the shell would make it, but never writable by anyone but its owner: 0644 less the
    /// umask for a new file, and a replaced file's mode kept less group and other write. For
    /// a file that decides what others are allowed (a baseline is an allowlist), whatever
    /// the umask.
    OwnerWrites,
}

/// Why the file could not be written; nothing was replaced and nothing is left behind.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file exists (or appeared meanwhile) and `force` was not given.
    #[error("{} already exists", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Creating, writing, flushing or renaming failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file, or its directory when the temporary file could not be made there.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A file being written in the place of `path`, private until [`AtomicFile::commit`] puts it
/// there; removed if dropped before that, or if a signal ends the run.
#[derive(Debug)]
pub struct AtomicFile {
    temp: NamedTempFile,
    /// Declared after `temp`, so dropped after it: the path stays registered for removal on
    /// a signal until the file is renamed or removed.
    _cleanup: Cleanup,
    path: PathBuf,
    dir: PathBuf,
    mode: u32,
    force: bool,
}

impl AtomicFile {
    /// Start writing `path`. Without `force`, an existing `path` (even a dangling link) is an
    /// error before anything is created.
    pub fn create(path: &Path, access: Access, force: bool) -> Result<AtomicFile, WriteError> {
        if !force && path.symlink_metadata().is_ok() {
            return Err(WriteError::Exists {
                path: path.to_owned(),
            });
        }
        let dir = parent_dir(path);
        // Decided before anything is written, from the file that will be replaced.
        let mode = final_mode(path, access);
        let make = || {
            tempfile::Builder::new()
                .prefix(".lsports-")
                .suffix(".tmp")
                .permissions(Permissions::from_mode(0o600))
                .tempfile_in(&dir)
        };
        let (temp, cleanup) =
            Cleanup::create(make, |t| t.path()).map_err(|source| WriteError::Io {
                path: dir.clone(),
                source,
            })?;
        Ok(AtomicFile {
            temp,
            _cleanup: cleanup,
            path: path.to_owned(),
            dir,
            mode,
            force,
        })
    }

    /// The temporary file, to write the contents to.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// The temporary file's path (for tests and messages; it is gone after `commit`).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Give the file its final mode, flush it to disk and rename it over the target.
    pub fn commit(self) -> Result<(), WriteError> {
        let io_error = |source| WriteError::Io {
            path: self.path.clone(),
            source,
        };
        let file = self.temp.as_file();
        file.set_permissions(Permissions::from_mode(self.mode))
            .and_then(|()| file.sync_all())
            .map_err(io_error)?;
        let persisted = if self.force {
            self.temp.persist(&self.path)
        } else {
            self.temp.persist_noclobber(&self.path)
        };
        persisted.map_err(|e| match e.error.kind() {
            io::ErrorKind::AlreadyExists if !self.force => WriteError::Exists {
                path: self.path.clone(),
            },
            _ => io_error(e.error),
        })?;
        // Make the rename itself durable; a failure here loses nothing already written.
        let _ = File::open(&self.dir).and_then(|d| d.sync_all());
        Ok(())
    }
}

/// Write `contents` to `path` atomically (see the module doc).
pub fn write(path: &Path, contents: &[u8], access: Access, force: bool) -> Result<(), WriteError> {
    use std::io::Write;
    let mut file = AtomicFile::create(path, access, force)?;
    file.file()
        .write_all(contents)
        .map_err(|source| WriteError::Io {
            path: path.to_owned(),
            source,
        })?;
    file.commit()
}

/// The directory `path` is in (`.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The mode `path` gets with `access`, given the regular file it replaces, if any.
fn final_mode(path: &Path, access: Access) -> u32 {
    let replaced = match path.symlink_metadata() {
        Ok(meta) if meta.is_file() => Some(meta.permissions().mode() & 0o7777),
        _ => None,
    };
    match (access, replaced) {
        (Access::Private, Some(mode)) => mode & 0o600,
        (Access::Private, None) => 0o600,
        (Access::LikeShell, Some(mode)) => mode,
        (Access::LikeShell, None) => 0o666 & !umask(),
        (Access::OwnerWrites, Some(mode)) => mode & !0o022,
        (Access::OwnerWrites, None) => 0o644 & !umask(),
    }
}

/// The process umask, read from `/proc/self/status` (Linux 4.7+): umask(2) can only read it
/// by changing it, which would race with files other threads create. 022 if it cannot be read.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests;
