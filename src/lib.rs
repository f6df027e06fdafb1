//! lsports: which ports on this machine have a service listening, and who owns them.
//!
//! A run is four stages over plain data ([`model`]):
//!
//! ```text
//! collect (source: netlink sock_diag, /proc/net fallback)   -> Vec<Socket>
//! attribute (process: one pass over /proc/*/fd, by inode)   -> Vec<Entry>
//! select (filter: what the user asked to see, in order)     -> Vec<Entry>
//! render (render: table or JSON, to any writer)
//! ```
//!
//! [`run`] wires them and returns the exit status; `main` only parses arguments and exits.

pub mod cli;
pub mod config;
pub mod error;
pub mod filter;
pub mod model;
pub mod names;
pub mod process;
pub mod render;
pub mod report;
pub mod sanitize;
pub mod source;

use std::io::Write;

use config::{Config, OutputFormat};
use render::Labels;
use source::CollectRequest;

/// Exit status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Listed what there was (possibly nothing).
    Success = 0,
    /// No source could enumerate sockets.
    NoSource = 1,
    /// The command line was wrong.
    Usage = 2,
}

/// Run lsports with a resolved configuration, writing the listing to `out` and diagnostics to
/// `err`. A write error on `out` (such as a closed pipe) is returned for the caller to judge.
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<ExitCode> {
    let mut collected = source::collect(&CollectRequest {
        tables: config.tables(),
        states: config.states,
        choice: config.source,
        proc_root: config.proc_root.clone(),
    });
    report::sources(&collected, config.verbose, err)?;
    if collected.nothing_read() {
        return Ok(ExitCode::NoSource);
    }
    source::name_devices(&mut collected.sockets);
    let attributed = process::attribute(collected.sockets, &config.proc_root);
    let entries = filter::select(attributed.entries);
    let mut labels = match config.format {
        OutputFormat::Table => Labels::for_table(config.numeric, &entries),
        OutputFormat::Json => Labels::numeric(),
    };
    render::render(&entries, config, &mut labels, out)?;
    out.flush()?;
    report::attribution(
        &attributed.denied,
        attributed.scan_error.as_ref(),
        config,
        err,
    )?;
    Ok(ExitCode::Success)
}
