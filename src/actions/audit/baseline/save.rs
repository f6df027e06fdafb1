//! `lsports baseline save FILE`: record the listeners and write the file so that it is never
//! lost or half-written.
//!
//! The text goes to a temporary file in FILE's directory, is flushed to disk, and is renamed
//! over FILE in one step: a reader (or a crash) sees the old file or the new one, never part
//! of either. Without `--force` the rename refuses to replace anything, atomically, so a file
//! that appears meanwhile is not clobbered either.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Baseline, file};
use crate::ExitCode;
use crate::actions::audit::identity::{Identifier, Identity};
use crate::config::{Config, Needs};
use crate::filter::ephemeral::EphemeralPorts;
use crate::pipeline::{self, Listing, Plan};
use crate::text::counts;

/// Why the baseline could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The file exists and `--force` was not given.
    #[error("{} already exists; pass --force to replace it", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Creating, writing, flushing or renaming failed; nothing was replaced.
    #[error("cannot write baseline {}: {source}", path.display())]
    Write {
        /// The file (or its directory, when the temporary file could not be made there).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Record the listeners `config` selects and save them to `path` (`-`: `out`).
pub fn run(
    path: &Path,
    force: bool,
    config: &Config,
    host: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    // A listener's identity is its holders and their executables; findings are not recorded.
    let needs = Needs {
        findings: false,
        ..Needs::EVERYTHING
    };
    let plan = Plan::new(config, needs);
    let Some(listing) = pipeline::gather(&plan, config.verbose, err)? else {
        return Ok(ExitCode::NoSource);
    };
    let identities = identify(&listing, config);
    let saved = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let baseline = Baseline::record(&identities, host, Some(saved));
    let text = file::format(&baseline);
    listing.report_attribution(config, err)?;
    if path == Path::new("-") {
        out.write_all(text.as_bytes())?;
        out.flush()?;
        return Ok(ExitCode::Success);
    }
    match write_atomically(path, text.as_bytes(), force) {
        Ok(()) => {
            writeln!(
                err,
                "lsports: saved {} ({}) to {}",
                counts::count(identities.len(), "listener"),
                counts::count(baseline.expected.len(), "line"),
                path.display()
            )?;
            Ok(ExitCode::Success)
        }
        Err(error) => {
            writeln!(err, "lsports: {error}")?;
            Ok(ExitCode::Failed)
        }
    }
}

/// The identities of every listed listener.
pub fn identify(listing: &Listing, config: &Config) -> Vec<Identity> {
    let mut identifier = Identifier::new(EphemeralPorts::read(&config.proc_root));
    listing
        .entries
        .iter()
        .map(|entry| identifier.identify(entry, &listing.exes))
        .collect()
}

/// Write `contents` to `path` through a temporary file and a rename; without `force`, fail
/// rather than replace an existing file.
pub fn write_atomically(path: &Path, contents: &[u8], force: bool) -> Result<(), SaveError> {
    if !force && path.symlink_metadata().is_ok() {
        return Err(SaveError::Exists {
            path: path.to_owned(),
        });
    }
    let write_error = |source| SaveError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    // The final mode is decided before anything is written: the replaced file's (a 0600
    // baseline stays 0600), or 0666 less the umask for a new file, as the user's shell would
    // create it. The temporary file is 0600 (tempfile's default) until it is complete.
    let mode = final_mode(path);
    let mut temp = tempfile::Builder::new()
        .prefix(".lsports-baseline-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|source| SaveError::Write {
            path: dir.clone(),
            source,
        })?;
    temp.write_all(contents).map_err(write_error)?;
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .and_then(|()| temp.as_file().sync_all())
        .map_err(write_error)?;
    let persisted = if force {
        temp.persist(path)
    } else {
        temp.persist_noclobber(path)
    };
    persisted.map_err(|e| match e.error.kind() {
        io::ErrorKind::AlreadyExists => SaveError::Exists {
            path: path.to_owned(),
        },
        _ => write_error(e.error),
    })?;
    // Make the rename itself durable; a failure here loses nothing already written.
    let _ = File::open(&dir).and_then(|d| d.sync_all());
    Ok(())
}

/// The mode `path` gets: that of the regular file it replaces, or 0666 less the umask.
fn final_mode(path: &Path) -> u32 {
    match path.symlink_metadata() {
        Ok(meta) if meta.is_file() => meta.permissions().mode() & 0o7777,
        _ => 0o666 & !umask(),
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
