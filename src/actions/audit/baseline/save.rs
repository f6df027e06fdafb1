//! `lsports baseline save FILE`: record the listeners and write the file so that it is never
//! lost or half-written.
//!
//! The file is written by the one atomic writer ([`crate::sys::atomic`]): a reader (or a
//! crash) sees the old file or the new one, never part of either; without `--force` nothing
//! is replaced, not even a file that appears meanwhile; `--force` keeps the replaced file's
//! mode.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{Baseline, file};
use crate::ExitCode;
use crate::actions::audit::identity::{Identifier, Identity};
use crate::config::{Config, Needs};
use crate::filter::ephemeral::EphemeralPorts;
use crate::pipeline::{self, Listing, Plan};
use crate::sys::atomic::{self, Access, WriteError};
use crate::sys::signals;
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
    let to_file = path != Path::new("-");
    // The temporary file is registered for removal on a signal, which works only if the
    // signals are blocked before the pipeline starts threads (they inherit the mask).
    let installed = if to_file { signals::install() } else { Ok(()) };
    if let Err(error) = installed {
        writeln!(err, "lsports: cannot set up signal handling: {error}")?;
        return Ok(ExitCode::Failed);
    }
    // A listener's identity is its holders and their executables; findings are not recorded.
    let needs = Needs {
        findings: false,
        ..Needs::EVERYTHING
    };
    let plan = Plan::new(config, needs);
    let Some(listing) = pipeline::gather(&plan, config.verbose, err)? else {
        return Ok(ExitCode::NoSource);
    };
    if let Some(why) = incomplete(&listing) {
        writeln!(err, "lsports: cannot save a baseline: {why}")?;
        return Ok(ExitCode::NoSource);
    }
    let identities = identify(&listing, config);
    let saved = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let baseline = Baseline::record(&identities, host, Some(saved));
    let text = file::format(&baseline);
    listing.report_attribution(config, err)?;
    if !to_file {
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

/// Why `listing` cannot be a baseline, if it cannot: a table no source could read (said on
/// stderr already) would be recorded as nothing listening there, and an audit against the
/// baseline would then call every listener of that table new.
fn incomplete(listing: &Listing) -> Option<String> {
    let unread = &listing.coverage.unread_tables;
    if unread.is_empty() {
        return None;
    }
    let tables: Vec<String> = (unread.iter())
        .map(|(protocol, family)| format!("{}/{}", protocol.name(), family.name()))
        .collect();
    Some(format!(
        "the {} could not be read, so what listens there is unknown (fix what is said above, \
         or record only the other tables with -t, -u, -4 or -6)",
        match tables.len() {
            1 => format!("{} table", tables[0]),
            _ => format!("{} tables", tables.join(", ")),
        }
    ))
}

/// The identities of every listed listener.
pub fn identify(listing: &Listing, config: &Config) -> Vec<Identity> {
    let mut identifier = Identifier::new(EphemeralPorts::read(&config.proc_root))
        .in_netns(crate::source::netns::own_inode(&config.proc_root));
    listing
        .entries
        .iter()
        .map(|entry| identifier.identify(entry, &listing.exes))
        .collect()
}

/// Write `contents` to `path` with the one atomic writer ([`atomic`]), made as the shell
/// would make it (a replaced file keeps its mode) but never writable by group or others,
/// whatever the umask: a baseline is an allowlist, and whoever may write it may add to it;
/// without `force`, fail rather than replace an existing file.
pub fn write_atomically(path: &Path, contents: &[u8], force: bool) -> Result<(), SaveError> {
    atomic::write(path, contents, Access::OwnerWrites, force).map_err(|error| match error {
        WriteError::Exists { path } => SaveError::Exists { path },
        WriteError::Io { path, source } => SaveError::Write { path, source },
    })
}
