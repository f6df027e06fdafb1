//! `lsports watch`: poll every interval and print an event each time a listener appears or
//! disappears, until Ctrl-C or SIGTERM.
//!
//! ```text
//! every interval: collect (netlink, cheap; socket filters) -> compare with the last poll
//!                 new sockets only: attribute -> select (process filters) -> enrich
//!                 (executables, findings) -> events: closed, then opened, in display order
//! ```
//!
//! Each poll costs one socket dump; the process scan runs only in polls where a socket
//! appeared, and only for the new sockets. Nothing accumulates between polls but the current
//! listeners ([`tracker`]) and a user-name cache, so memory stays flat over days.
//!
//! With `--events kernel` (or `auto` where the programs load) the listeners come from kernel
//! events instead, as they happen, and a poll runs only every few intervals ([`kernel`]).

pub mod event;
pub mod kernel;
pub mod tracker;

use std::io::{self, Write};
use std::time::{Instant, SystemTime};

use crate::ExitCode;
use crate::config::{Config, EventsChoice, Needs, OutputFormat, WatchSpec};
use crate::enrich::exe::Executables;
use crate::filter;
use crate::model::{Entry, Family, Protocol, Socket};
use crate::pipeline::report::{self, Repeats};
use crate::pipeline::{self, Plan};
use crate::source::events::{EventSource, EventsUnavailable};
use crate::sys::signals::{Stop, StopSignals};
use crate::text::counts;
use event::{EventWriter, Kind};
use tracker::{Subject, Tracker};

/// Watch as `spec` says, until a stop signal. Exit status: 0 on SIGTERM, 130 on Ctrl-C, 1 when
/// the first poll cannot list sockets at all, or `--events kernel` cannot load its programs.
pub fn run(
    spec: &WatchSpec,
    config: &Config,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let signals = StopSignals::block()?;
    let mut watcher = Watcher::new(spec, config);
    match events(spec, config) {
        Some(Ok(source)) => return kernel::run(source, &mut watcher, &signals, out, err),
        Some(Err(why)) if spec.events == EventsChoice::Kernel => {
            writeln!(err, "lsports: --events kernel: {why}")?;
            return Ok(ExitCode::Failed);
        }
        Some(Err(why)) if config.verbose => {
            writeln!(
                err,
                "lsports: kernel events unavailable, polling instead: {why}"
            )?;
        }
        _ => {}
    }
    poll_loop(&mut watcher, &signals, out, err)
}

/// The kernel's events, when `spec` wants them; `None` for `--events poll`.
fn events(spec: &WatchSpec, config: &Config) -> Option<Result<EventSource, EventsUnavailable>> {
    if spec.events == EventsChoice::Poll {
        return None;
    }
    // Kernel events describe the running system, never a snapshot or a copied proc tree.
    if config.snapshot.is_some() || config.proc_root != std::path::Path::new("/proc") {
        return Some(Err(EventsUnavailable::NotLive(config.proc_root.clone())));
    }
    Some(EventSource::open(kernel::scope(
        &config.netns,
        &config.proc_root,
    )))
}

/// Poll every interval until a stop signal.
fn poll_loop(
    watcher: &mut Watcher,
    signals: &StopSignals,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let (spec, config) = (watcher.spec, watcher.config);
    let mut first = true;
    loop {
        let started = Instant::now();
        match watcher.poll(first, out, err)? {
            Some(()) => out.flush()?,
            None if first => return Ok(ExitCode::NoSource),
            None => {}
        }
        if first && config.verbose {
            writeln!(
                err,
                "lsports: watching {}, polling every {}",
                counts::count(watcher.tracker.len(), "listener"),
                crate::text::duration::display(spec.interval)
            )?;
        }
        first = false;
        let rest = spec.interval.saturating_sub(started.elapsed());
        if let Some(stop) = signals.sleep(rest) {
            return Ok(stopped(stop));
        }
    }
}

/// The exit status for a loop ended by `stop`.
pub fn stopped(stop: Stop) -> ExitCode {
    match stop {
        Stop::Interrupt => ExitCode::Interrupted,
        Stop::Terminate => ExitCode::Success,
    }
}

/// The state of one watch.
struct Watcher<'a> {
    spec: &'a WatchSpec,
    config: &'a Config,
    /// Every poll collects; a poll with new sockets attributes and enriches them fully.
    plan: Plan,
    tracker: Tracker,
    writer: EventWriter,
    repeats: Repeats,
}

impl<'a> Watcher<'a> {
    fn new(spec: &'a WatchSpec, config: &'a Config) -> Self {
        Watcher {
            spec,
            config,
            plan: Plan::new(config, Needs::EVERYTHING).polling(),
            tracker: Tracker::default(),
            writer: writer(config),
            repeats: Repeats::default(),
        }
    }

    /// One poll: print its events. `None` when no table could be read (said on `err`); the
    /// listeners are then kept as they were.
    fn poll(
        &mut self,
        first: bool,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> io::Result<Option<()>> {
        let collected = pipeline::collect(&self.plan);
        // Which source fed each table is said once; failures and warnings when they start.
        self.repeats.report(
            report::source_lines(&collected, first && self.config.verbose),
            err,
        )?;
        let read: Vec<(Protocol, Family)> = collected
            .reports
            .iter()
            .filter(|r| r.source.is_some())
            .map(|r| (r.protocol, r.family))
            .collect();
        if collected.nothing_read() {
            return Ok(None);
        }
        let (new, closed) = self.tracker.compare(collected.sockets, &read);
        let opened = self.look_at(&new, first, err)?;
        self.tracker.admit(&new, &opened);
        let time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        for subject in sorted(closed) {
            self.writer.write(&time, Kind::Closed, &subject, out)?;
        }
        if first && self.spec.changes_only {
            return Ok(Some(()));
        }
        let kind = if first { Kind::Present } else { Kind::Opened };
        for subject in &opened {
            self.writer.write(&time, kind, subject, out)?;
        }
        Ok(Some(()))
    }

    /// Attribute, select and enrich the new sockets: those the process filters keep, sorted,
    /// with their executables and findings. The owners are looked for only now, and only for
    /// these: most polls find nothing new and read no process at all.
    fn look_at(
        &self,
        new: &[Socket],
        first: bool,
        err: &mut dyn Write,
    ) -> io::Result<Vec<Subject>> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let plan = &self.plan;
        let begun = pipeline::begin(plan);
        // A polling plan walks where the BPF iterator is refused: attribution cannot fail.
        let listing = pipeline::attribute(new.to_vec(), begun, plan).unwrap_or_default();
        let listing = pipeline::refine(listing, plan);
        if first {
            listing.report_attribution(self.config, err)?;
        }
        Ok(listing
            .entries
            .into_iter()
            .map(|entry| subject(entry, &listing.exes))
            .collect())
    }
}

/// Events as `config` asks, naming namespaces when it watches other ones than this.
fn writer(config: &Config) -> EventWriter {
    let writer = EventWriter::new(config.format == OutputFormat::Jsonl);
    match config.netns {
        crate::config::NetnsChoice::Current => writer,
        _ => writer.naming_netns(),
    }
}

fn subject(mut entry: Entry, exes: &Executables) -> Subject {
    Subject {
        exes: entry
            .processes
            .iter()
            .map(|p| exes.get(p.pid).map(<[u8]>::to_vec))
            .collect(),
        findings: std::mem::take(&mut entry.findings).into(),
        entry,
    }
}

/// Subjects in display order.
fn sorted(mut subjects: Vec<Subject>) -> Vec<Subject> {
    subjects.sort_by(|a, b| filter::display_order(&a.entry.socket, &b.entry.socket));
    subjects
}
