//! `lsports capture OUT`: write a snapshot of the proc tree, to read elsewhere with
//! `--snapshot`.

use std::io::{self, Write};
use std::path::Path;

use crate::ExitCode;
use crate::config::Config;
use crate::snapshot;

/// `lsports capture OUT`: the summary on stderr, where diagnostics go, so stdout stays empty.
/// `OUT` `-` is standard output (a plain tar, as `baseline save -` writes the baseline
/// there), unless that is a terminal, which a binary archive would only garble.
pub fn run(
    file: &Path,
    force: bool,
    config: &Config,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let captured = if file == Path::new("-") {
        if io::IsTerminal::is_terminal(&io::stdout()) {
            writeln!(
                err,
                "lsports: capture - writes a binary archive to standard output, which is a \
                 terminal: redirect it (lsports capture - > FILE, or | ssh …) or name a file"
            )?;
            return Ok(ExitCode::Usage);
        }
        snapshot::write_snapshot_netns(
            &config.proc_root,
            &config.netns,
            snapshot::Compression::None,
            out,
        )
    } else {
        snapshot::capture_netns(&config.proc_root, &config.netns, file, force)
    };
    match captured {
        Ok(summary) => {
            writeln!(err, "lsports: {}", summary.describe())?;
            Ok(ExitCode::Success)
        }
        Err(error) => {
            // The reader took part of the archive: a failed capture, said so, not a quiet
            // success as for a listing read by `head`.
            let partial = match &error {
                snapshot::SnapshotError::Write { source, .. }
                    if source.kind() == io::ErrorKind::BrokenPipe =>
                {
                    "; the reader stopped before the end, so what it read is no whole snapshot"
                }
                _ => "",
            };
            writeln!(err, "lsports: {error}{partial}")?;
            Ok(ExitCode::Failed)
        }
    }
}
