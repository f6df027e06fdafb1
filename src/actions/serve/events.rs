//! Listener open and close events, counted by program for `lsports_listener_events_total`,
//! so a listener that lived between two scrapes still shows in Prometheus.
//!
//! ```text
//! EventSource (a thread) ──Report──> channel ──> counting thread ──> EventCounts
//!   PollingEvents: the watch tracker, one socket dump per second   (scrapes read it)
//!   KernelEvents: the kernel's events as they happen (super::kernel)
//! ```
//!
//! `--events` picks the source in [`super::run`]; the `source` label of
//! `lsports_listener_event_source_info` says which one counted.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::actions::watch::tracker::{Subject, Tracker};
use crate::config::{Config, Needs};
use crate::model::{Family, Protocol, Socket};
use crate::pipeline::{self, Plan};
use crate::render::prometheus::program_names;

/// What happened to a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// It started listening.
    Open,
    /// It stopped.
    Close,
}

impl Change {
    /// The value of the `event` label.
    pub fn name(self) -> &'static str {
        match self {
            Change::Open => "open",
            Change::Close => "close",
        }
    }
}

/// One listener opened or closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerEvent {
    /// Opened or closed.
    pub change: Change,
    /// The holders' distinct process names, terminal-safe, joined by `;` (empty when none
    /// is known), as the `program` label of the listing's series.
    pub program: String,
}

/// What a source sends the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// One listener opened or closed.
    Event(ListenerEvent),
    /// This many events were lost before they could be counted (the kernel's ring was full).
    Lost(u64),
}

/// Where listener events come from: a thread that sends every event it sees until the
/// receiver is gone.
pub trait EventSource: Send {
    /// The value of the `source` label: `poll`, or `kernel` for the kernel's events.
    fn name(&self) -> &'static str;

    /// Send reports into `reports` until sending fails (the counter is gone).
    fn run(self: Box<Self>, reports: Sender<Report>);
}

/// Distinct programs counted before any further one is counted as [`OTHER_PROGRAMS`]: a host
/// that starts listeners under random names must not grow the exposition without bound.
pub const MAX_PROGRAMS: usize = 1000;

/// The `program` label of the events past [`MAX_PROGRAMS`].
pub const OTHER_PROGRAMS: &str = "(other)";

/// The events counted so far, by change and program.
#[derive(Debug)]
pub struct EventCounts {
    source: &'static str,
    counts: Mutex<BTreeMap<(Change, String), u64>>,
    lost: AtomicU64,
}

impl EventCounts {
    /// No event yet, from the source named `source`.
    pub fn new(source: &'static str) -> EventCounts {
        EventCounts {
            source,
            counts: Mutex::new(BTreeMap::new()),
            lost: AtomicU64::new(0),
        }
    }

    /// The name of the source counted.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Count one event.
    pub fn add(&self, event: ListenerEvent) {
        let mut counts = lock(&self.counts);
        let program = if counts.len() >= 2 * MAX_PROGRAMS
            && !counts.contains_key(&(event.change, event.program.clone()))
        {
            OTHER_PROGRAMS.to_string()
        } else {
            event.program
        };
        *counts.entry((event.change, program)).or_default() += 1;
    }

    /// Count `n` events lost uncounted.
    pub fn add_lost(&self, n: u64) {
        self.lost.fetch_add(n, Ordering::Relaxed);
    }

    /// Events lost uncounted so far (only the kernel's source can lose any).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Every count, in label order.
    pub fn snapshot(&self) -> Vec<(Change, String, u64)> {
        lock(&self.counts)
            .iter()
            .map(|((change, program), n)| (*change, program.clone(), *n))
            .collect()
    }
}

/// Start `source` on its own thread, and a thread counting what it sends into the returned
/// counts.
pub fn start(source: Box<dyn EventSource>) -> io::Result<Arc<EventCounts>> {
    let counts = Arc::new(EventCounts::new(source.name()));
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("lsports-events".into())
        .spawn(move || source.run(tx))?;
    let counter = Arc::clone(&counts);
    thread::Builder::new()
        .name("lsports-count".into())
        .spawn(move || count(&rx, &counter))?;
    Ok(counts)
}

fn count(reports: &Receiver<Report>, counts: &EventCounts) {
    for report in reports {
        match report {
            Report::Event(event) => counts.add(event),
            Report::Lost(n) => counts.add_lost(n),
        }
    }
}

/// What either source reads of a listener: what `watch` reads, so that they all see the same
/// owners, and name the same programs.
pub fn plan(config: &Config) -> Plan {
    let needs = Needs {
        findings: false,
        executables: false,
        ..Needs::EVERYTHING
    };
    Plan::new(config, needs.and(config.filter_needs())).polling()
}

/// How often the polling source dumps the socket tables: `watch`'s default.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Events found by polling, as `watch` does: one socket dump per [`POLL_INTERVAL`], and the
/// owners read only for the sockets that are new. A listener that lives less than a poll can
/// be missed; the kernel's events cannot miss it.
pub struct PollingEvents {
    plan: Plan,
    interval: Duration,
}

impl PollingEvents {
    /// Poll the tables and namespaces `config` selects, keeping what its filters keep.
    pub fn new(config: &Config) -> PollingEvents {
        PollingEvents {
            plan: plan(config),
            interval: POLL_INTERVAL,
        }
    }

    /// One poll: the events since the last one (none at the first, which only learns what
    /// is there).
    fn poll(&self, tracker: &mut Tracker, first: bool) -> Vec<ListenerEvent> {
        let collected = pipeline::collect(&self.plan);
        if collected.nothing_read() {
            return Vec::new();
        }
        let read: Vec<(Protocol, Family)> = (collected.reports.iter())
            .filter(|r| r.source.is_some())
            .map(|r| (r.protocol, r.family))
            .collect();
        let (new, closed) = tracker.compare(collected.sockets, &read);
        let opened = self.look_at(&new);
        tracker.admit(&new, &opened);
        let closes = closed.iter().map(|s| (Change::Close, s));
        let opens = opened.iter().filter(|_| !first).map(|s| (Change::Open, s));
        closes
            .chain(opens)
            .map(|(change, subject)| ListenerEvent {
                change,
                program: program_names(&subject.entry),
            })
            .collect()
    }

    /// The new sockets the process filters keep, with their holders.
    fn look_at(&self, new: &[Socket]) -> Vec<Subject> {
        if new.is_empty() {
            return Vec::new();
        }
        let begun = pipeline::begin(&self.plan);
        // A polling plan walks where the BPF iterator is refused: attribution cannot fail.
        let listing = pipeline::attribute(new.to_vec(), begun, &self.plan).unwrap_or_default();
        let listing = pipeline::refine(listing, &self.plan);
        (listing.entries.into_iter())
            .map(|entry| Subject {
                entry,
                exes: Vec::new(),
                findings: Vec::new(),
            })
            .collect()
    }
}

impl EventSource for PollingEvents {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn run(self: Box<Self>, reports: Sender<Report>) {
        let mut tracker = Tracker::default();
        let mut first = true;
        loop {
            let started = Instant::now();
            for event in self.poll(&mut tracker, first) {
                if reports.send(Report::Event(event)).is_err() {
                    return;
                }
            }
            first = false;
            thread::sleep(self.interval.saturating_sub(started.elapsed()));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(change: Change, program: &str) -> ListenerEvent {
        ListenerEvent {
            change,
            program: program.into(),
        }
    }

    #[test]
    fn events_are_counted_by_change_and_program() {
        let counts = EventCounts::new("poll");
        for e in [
            event(Change::Open, "nc"),
            event(Change::Close, "nc"),
            event(Change::Open, "nc"),
            event(Change::Open, "sshd"),
        ] {
            counts.add(e);
        }
        assert_eq!(
            counts.snapshot(),
            [
                (Change::Open, "nc".into(), 2),
                (Change::Open, "sshd".into(), 1),
                (Change::Close, "nc".into(), 1),
            ]
        );
    }

    #[test]
    fn programs_past_the_limit_are_counted_together() {
        let counts = EventCounts::new("poll");
        for i in 0..MAX_PROGRAMS + 10 {
            counts.add(event(Change::Open, &format!("p{i}")));
            counts.add(event(Change::Close, &format!("p{i}")));
        }
        counts.add(event(Change::Open, "p0"));
        let snapshot = counts.snapshot();
        assert_eq!(snapshot.len(), 2 * MAX_PROGRAMS + 2, "bounded");
        let other = |change| {
            snapshot
                .iter()
                .find(|(c, p, _)| *c == change && p == OTHER_PROGRAMS)
                .map(|(_, _, n)| *n)
        };
        assert_eq!(
            (other(Change::Open), other(Change::Close)),
            (Some(10), Some(10))
        );
        let p0 = snapshot
            .iter()
            .find(|(c, p, _)| *c == Change::Open && p == "p0");
        assert_eq!(
            p0.map(|(_, _, n)| *n),
            Some(2),
            "known programs still count"
        );
    }
}
