//! lsports: which ports on this machine have a service listening, and who owns them.
//!
//! The stages sit at the top of `src/`, over plain data ([`model`]) and a plain
//! configuration ([`config`]). Every action goes through the one pipeline, whose stages are
//! the functions of [`pipeline`], each taking and giving plain data:
//!
//! ```text
//! cli ──> config: Config, Action and its specs, Column, RenderOptions     (plain data)
//!
//! pipeline::Plan::new(config, needs): what to collect, how owners are found, what to read
//!   collect    source/    netlink sock_diag (ports filtered by the kernel), /proc/net
//!                         fallback, in each chosen network namespace (source/netns/); then
//!                         the socket filters (port, address, exposure, ephemeral)
//!                                                                      -> Vec<Socket>
//!   attribute  process/   BPF iterator or /proc/*/fd walk, by inode    -> Listing (entries)
//!   label      enrich/    labels/: systemd unit, container, pod        -> Listing
//!   select     filter/    pid, user, program, container, unit; order   -> Listing
//!   enrich     enrich/    reach (reach/: each namespace's firewall rules, every listener's
//!                         verdict), executables, suspicious-listener findings -> Listing
//!                         published/: DNAT rules and docker-proxy mappings joined
//!                         to their listeners (--published)
//!   render     render/    table, CSV, JSON, JSONL, Prometheus: formatting only, to any writer;
//!                         wire.rs: the JSON socket object listing, watch and audit share
//!
//! actions/   each picks what to collect and read, and what to do with the result:
//!            list (gather, render), audit/ (gather, judge; baseline/, policy/, identity,
//!            tomlfile), watch/ (collect each poll; attribute and enrich what is new),
//!            continuous (-c) and wait (collect narrowed to the waited ports): pipeline::poll
//!            each interval, capture, generate/ (man page, completions), serve/ (a
//!            Prometheus exporter: HTTP, one cached listing per interval, event counters)
//! snapshot/  a proc tree captured to a file, and opened to read instead of /proc
//! text/      sanitize, safe JSON, durations, pid lists, counts
//! sys/       procroot (the one way into a proc root), atomic (the one way to write a
//!            file), signals, timing;   error.rs
//! ```
//!
//! Socket filters run in collect, before attribution, so process details are read only for
//! sockets that can be shown; attribution is skipped, and executables and findings are not
//! read, when nothing shown or used needs them ([`config::Config::needs`]: what the format,
//! each column and the filters need). Attribution is begun before collecting, so the walk (or
//! the loading of the BPF iterator) overlaps with it.
//!
//! The import graph has no cycle between these top-level modules, and `src/` keeps at most 16
//! of them (`tests/module_graph.rs`): configuration, model, text and sys at the bottom; the
//! stages above them; actions and the command line on top. [`run`] opens a snapshot when one
//! is given and runs the action; `main` only parses arguments and exits.

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
    /// An audit found nothing unexpected, but could not evaluate a policy's deny rule for a
    /// listener it might deny (its holder could not be seen, or its firewall rules could not
    /// be read), so it cannot pass either.
    AuditIncomplete,
    /// A watch or `-c` was stopped with Ctrl-C (SIGINT).
    Interrupted,
}

impl ExitCode {
    /// The process exit status: 0; 1 (no source, a wait timed out, something unexpected, a
    /// failed capture); 2 (usage, an audit that could not be done, or not all of it); 130
    /// (Ctrl-C).
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::NoSource
            | ExitCode::WaitTimedOut
            | ExitCode::Unexpected
            | ExitCode::Failed => 1,
            ExitCode::Usage | ExitCode::AuditError | ExitCode::AuditIncomplete => 2,
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
    // A proc root the user named must be one they may open themselves: a binary given
    // capabilities reads under it with them (a host /proc mounted elsewhere needs them), so
    // this is the one check of the user's own rights (see sys::privilege::as_invoker).
    if opened.is_none() && config.proc_root != std::path::Path::new("/proc") {
        if let Err(error) = sys::procroot::ProcRoot::open(&config.proc_root) {
            if matches!(error.raw_os_error(), Some(libc::EACCES | libc::EPERM)) {
                let root =
                    text::sanitize::terminal_safe(config.proc_root.as_os_str().as_encoded_bytes());
                writeln!(err, "lsports: cannot open the proc root {root}: {error}")?;
                return Ok(failure(config));
            }
        }
    }
    if let Some(opened) = opened.as_ref().filter(|_| config.verbose) {
        writeln!(err, "lsports: {}", opened.describe())?;
    }
    let config = reading(config, opened.as_ref());
    let host = host_name(&config, opened.as_ref());
    actions::run(&config, host.as_deref(), out, err)
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
