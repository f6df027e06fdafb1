//! lsports: which ports on this machine have a service listening, and who owns them.
//!
//! A listing is four stages over plain data ([`model`]), in [`pipeline`]:
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
//! can be shown, and attribution is skipped when nothing shown needs processes.
//!
//! The other actions reuse the pipeline: [`audit`] compares the listeners with a
//! [`baseline`] and a [`policy`] and flags [`suspicious`] ones; [`watch`] polls it and reports
//! what opens and closes; [`continuous`] reprints it (netstat -c); [`wait`] waits for ports;
//! [`snapshot`] captures a proc tree or opens one to read instead of the live system;
//! [`generate`] prints the man page and completions. [`run`] picks one and returns the exit
//! status; `main` only parses arguments and exits.

pub mod actions;
pub mod cli;
pub mod config;
pub mod enrich;
pub mod error;
pub mod filter;
pub mod model;
pub mod pipeline;
pub mod process;
pub mod render;
pub mod snapshot;
pub mod source;
pub mod sys;
pub mod text;

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::Path;

use config::{Action, Config, SourceChoice};
use snapshot::OpenedSnapshot;

/// Exit status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Listed what there was (possibly nothing), a wait ended as wanted, an audit found
    /// nothing unexpected, or a watch was stopped with SIGTERM.
    Success,
    /// No source could enumerate sockets.
    NoSource,
    /// `--wait` or `--wait-free` ran out of time.
    WaitTimedOut,
    /// An audit found something unexpected.
    Unexpected,
    /// A capture, a snapshot or a baseline could not be written or read.
    Failed,
    /// The command line was wrong.
    Usage,
    /// An audit could not be done (a bad baseline or policy, no source).
    AuditError,
    /// A watch or `-c` was stopped with Ctrl-C (SIGINT).
    Interrupted,
}

impl ExitCode {
    /// The process exit status: 0; 1 (no source, a wait timed out, something unexpected, a
    /// failed capture); 2 (usage, an audit that could not be done); 130 (Ctrl-C).
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::NoSource
            | ExitCode::WaitTimedOut
            | ExitCode::Unexpected
            | ExitCode::Failed => 1,
            ExitCode::Usage | ExitCode::AuditError => 2,
            ExitCode::Interrupted => 130,
        }
    }
}

/// Run lsports with a resolved configuration, writing the output to `out` and diagnostics to
/// `err`. A write error on `out` (such as a closed pipe) is returned for the caller to judge.
///
/// With `--snapshot`, the snapshot is unpacked first and read as the proc root for the whole
/// run; its temporary directory is removed when the run ends.
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<ExitCode> {
    let opened = match &config.snapshot {
        Some(file) => match snapshot::open(file) {
            Ok(opened) => Some(opened),
            Err(error) => {
                writeln!(err, "lsports: {error}")?;
                return Ok(failure(config));
            }
        },
        None => None,
    };
    if let Some(opened) = opened.as_ref().filter(|_| config.verbose) {
        writeln!(err, "lsports: {}", opened.describe())?;
    }
    let config = reading(config, opened.as_ref());
    let host = host_name(&config, opened.as_ref());
    dispatch(&config, host.as_deref(), out, err)
}

/// The configuration reading `opened` (the `/proc` source over its unpacked tree).
fn reading<'a>(config: &'a Config, opened: Option<&OpenedSnapshot>) -> Cow<'a, Config> {
    match opened {
        Some(opened) => Cow::Owned(Config {
            proc_root: opened.proc_root().to_owned(),
            source: SourceChoice::Proc,
            ..config.clone()
        }),
        None => Cow::Borrowed(config),
    }
}

/// The exit status for a snapshot that cannot be read: an audit could not be done, anything
/// else failed.
fn failure(config: &Config) -> ExitCode {
    match config.action {
        Action::Audit(_) => ExitCode::AuditError,
        _ => ExitCode::Failed,
    }
}

/// The name of the machine being looked at: the snapshot's, or the proc tree's, in the
/// terminal-safe form identities use (both come from files anyone may have written).
fn host_name(config: &Config, opened: Option<&OpenedSnapshot>) -> Option<String> {
    let name = match opened {
        Some(opened) => opened.manifest().hostname.clone(),
        None => {
            let root = sys::procroot::ProcRoot::open(&config.proc_root).ok()?;
            String::from_utf8(root.read_file("sys/kernel/hostname").ok()?).ok()?
        }
    };
    let name = name.trim();
    (!name.is_empty()).then(|| text::sanitize::terminal_safe(name.as_bytes()).into_owned())
}

fn dispatch(
    config: &Config,
    host: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    match &config.action {
        Action::List => list(config, out, err),
        Action::Wait(spec) => actions::wait::run(spec, config, err),
        Action::Generate(what) => {
            actions::generate::write(*what, out)?;
            out.flush()?;
            Ok(ExitCode::Success)
        }
        Action::Continuous(interval) => actions::continuous::run(*interval, config, out, err),
        Action::Watch(spec) => actions::watch::run(spec, config, out, err),
        Action::Audit(spec) => actions::audit::run(spec, config, host, out, err),
        Action::SaveBaseline { file, force } => actions::audit::baseline::save::run(
            file,
            *force,
            config,
            host.map(str::to_owned),
            out,
            err,
        ),
        Action::Capture { out: file, force } => capture(file, *force, config, out, err),
    }
}

/// List sockets: collect, filter, attribute, select, render.
fn list(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<ExitCode> {
    let Some(listing) = pipeline::gather(config, config.needs(), err)? else {
        return Ok(ExitCode::NoSource);
    };
    crate::sys::timing::mark("listing ready");
    render::render(
        &listing.entries,
        &config.render_options(),
        &listing.exes,
        out,
    )?;
    crate::sys::timing::mark("rendered");
    out.flush()?;
    listing.report_attribution(config, err)?;
    Ok(ExitCode::Success)
}

/// `lsports capture OUT`: the summary on stderr, where diagnostics go, so stdout stays empty.
/// `OUT` `-` is standard output (a plain tar, as `baseline save -` writes the baseline
/// there), unless that is a terminal, which a binary archive would only garble.
fn capture(
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
        snapshot::write_snapshot(&config.proc_root, snapshot::Compression::None, out)
    } else {
        snapshot::capture(&config.proc_root, file, force)
    };
    match captured {
        Ok(summary) => {
            writeln!(err, "lsports: {}", summary.describe())?;
            Ok(ExitCode::Success)
        }
        Err(error) => {
            writeln!(err, "lsports: {error}")?;
            Ok(ExitCode::Failed)
        }
    }
}
