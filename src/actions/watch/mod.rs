//! `lsports watch`: poll every interval and print an event each time a listener appears or
//! disappears, until Ctrl-C or SIGTERM.
//!
//! ```text
//! every interval: collect (netlink, cheap) -> keep (socket filters) -> compare with the last poll
//!                 new sockets only: attribute, executables, flags -> keep (process filters)
//!                 -> events: closed, then opened, in display order -> flush
//! ```
//!
//! Each poll costs one socket dump; the process scan runs only in polls where a socket
//! appeared, and only for the new sockets. Nothing accumulates between polls but the current
//! listeners ([`tracker`]) and a user-name cache, so memory stays flat over days.

pub mod event;
pub mod tracker;

use std::io::{self, Write};
use std::time::{Instant, SystemTime};

use crate::ExitCode;
use crate::config::{Config, Needs, OutputFormat, WatchSpec};
use crate::enrich::exe::Executables;
use crate::enrich::suspicious;
use crate::filter;
use crate::model::{Entry, Family, Protocol, Socket};
use crate::pipeline;
use crate::pipeline::report::{self, Repeats};
use crate::source;
use crate::sys::signals::{Stop, StopSignals};
use crate::text::counts;
use event::{EventWriter, Kind};
use tracker::{Subject, Tracker};

/// Watch as `spec` says, until a stop signal. Exit status: 0 on SIGTERM, 130 on Ctrl-C, 1 when
/// the first poll cannot list sockets at all.
pub fn run(
    spec: &WatchSpec,
    config: &Config,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let signals = StopSignals::block()?;
    let mut watcher = Watcher::new(spec, config);
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
    tracker: Tracker,
    writer: EventWriter,
    repeats: Repeats,
}

impl<'a> Watcher<'a> {
    fn new(spec: &'a WatchSpec, config: &'a Config) -> Self {
        Watcher {
            spec,
            config,
            tracker: Tracker::default(),
            writer: EventWriter::new(config.format == OutputFormat::Jsonl),
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
        let collected = source::collect(&pipeline::request(self.config));
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
        let Some(sockets) = pipeline::keep(collected, self.config) else {
            return Ok(None);
        };
        let (new, closed) = self.tracker.compare(sockets, &read);
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

    /// Attribute and inspect new sockets; return those the process filters keep, sorted.
    fn look_at(
        &self,
        new: &[Socket],
        first: bool,
        err: &mut dyn Write,
    ) -> io::Result<Vec<Subject>> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let listing = pipeline::attribute(new.to_vec(), self.config, Needs::EVERYTHING);
        if first {
            listing.report_attribution(self.config, err)?;
        }
        Ok(listing
            .entries
            .into_iter()
            .map(|entry| subject(entry, &listing.exes, self.config))
            .collect())
    }
}

fn subject(entry: Entry, exes: &Executables, config: &Config) -> Subject {
    Subject {
        exes: entry
            .processes
            .iter()
            .map(|p| exes.get(p.pid).map(<[u8]>::to_vec))
            .collect(),
        findings: suspicious::inspect(&entry, exes, &config.proc_root),
        entry,
    }
}

/// Subjects in display order.
fn sorted(mut subjects: Vec<Subject>) -> Vec<Subject> {
    subjects.sort_by(|a, b| filter::display_order(&a.entry.socket, &b.entry.socket));
    subjects
}
