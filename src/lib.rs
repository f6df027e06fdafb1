//! lsports: which ports on this machine have a service listening, and who owns them.
//!
//! A listing is four stages over plain data ([`model`]):
//!
//! ```text
//! collect (source: netlink sock_diag, /proc/net fallback)   -> Vec<Socket>
//!   keep what port, address and exposure filters keep      -> Vec<Socket>
//! attribute (process: one pass over /proc/*/fd, by inode)   -> Vec<Entry>
//! select (filter: pid, user, program; display order)        -> Vec<Entry>
//! render (render: table, JSON, JSONL, CSV, Prometheus, to any writer)
//! ```
//!
//! Socket filters run before attribution so process details are read only for sockets that
//! can be shown, and attribution is skipped when nothing shown needs processes. Besides
//! listing, a run can wait for ports ([`wait`]) or print the man page and completions
//! ([`generate`]). [`run`] picks one and returns the exit status; `main` only parses
//! arguments and exits.

pub mod cli;
pub mod config;
pub mod error;
pub mod exe;
pub mod exposure;
pub mod filter;
pub mod generate;
pub mod model;
pub mod names;
pub mod process;
pub mod render;
pub mod report;
pub mod sanitize;
pub mod snapshot;
pub mod source;
pub mod wait;

use std::io::Write;

use config::{Action, Config};
use exe::Executables;
use model::{Entry, Socket};
use source::CollectRequest;

/// Exit status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Listed what there was (possibly nothing), or a wait ended as wanted.
    Success,
    /// No source could enumerate sockets.
    NoSource,
    /// `--wait` or `--wait-free` ran out of time.
    WaitTimedOut,
    /// The command line was wrong.
    Usage,
}

impl ExitCode {
    /// The process exit status: 0, 1 (no source, or a wait timed out), 2 (usage).
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::NoSource | ExitCode::WaitTimedOut => 1,
            ExitCode::Usage => 2,
        }
    }
}

/// Run lsports with a resolved configuration, writing the output to `out` and diagnostics to
/// `err`. A write error on `out` (such as a closed pipe) is returned for the caller to judge.
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<ExitCode> {
    match &config.action {
        Action::List => list(config, out, err),
        Action::Wait(spec) => wait::run(spec, config, err),
        Action::Generate(what) => {
            generate::write(*what, out)?;
            out.flush()?;
            Ok(ExitCode::Success)
        }
    }
}

/// List sockets: collect, filter, attribute, select, render.
fn list(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<ExitCode> {
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
    let sockets = filter::keep_sockets(collected.sockets, &config.filter);
    let (entries, attributed) = if config.needs_processes() {
        let mut attributed = process::attribute(sockets, &config.proc_root);
        (std::mem::take(&mut attributed.entries), Some(attributed))
    } else {
        (unattributed(sockets), None)
    };
    let entries = filter::keep_entries(entries, &config.filter);
    let exes = if config.needs_executables() {
        Executables::read(&config.proc_root, &entries)
    } else {
        Executables::default()
    };
    render::render(&entries, config, &exes, out)?;
    out.flush()?;
    if let Some(attributed) = attributed {
        report::attribution(
            &attributed.denied,
            attributed.scan_error.as_ref(),
            config,
            err,
        )?;
    }
    Ok(ExitCode::Success)
}

/// Entries for an output that shows nothing about processes: the scan is skipped, so no owner
/// is known and none is claimed missing (`owner_unknown` stays `None`).
fn unattributed(sockets: Vec<Socket>) -> Vec<Entry> {
    sockets
        .into_iter()
        .map(|socket| Entry {
            socket,
            processes: Vec::new(),
            owner_unknown: None,
        })
        .collect()
}
