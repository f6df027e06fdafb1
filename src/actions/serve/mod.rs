//! `lsports serve`: a Prometheus exporter of the listening sockets.
//!
//! ```text
//! scrapers ──GET /metrics──> http (bounded head, time, workers) ──> cache: at most one
//!                                                                   listing per --interval
//!   listing: gather (the listing's plan) -> --format prometheus's series
//!                                        -> the audit's, with --baseline/--policy
//!   per scrape: lsports_up, duration, listings_total, and the events counted so far
//! events: an EventSource thread (--events: the kernel's, or polling) -> EventCounts
//! ```
//!
//! Nothing is served but `GET /metrics`, on loopback unless `--listen` says otherwise. It runs
//! until SIGTERM (exit 0) or Ctrl-C (130).

pub mod cache;
pub mod events;
pub mod exposition;
pub mod http;
pub mod kernel;

use std::io::{self, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use crate::ExitCode;
use crate::actions::audit::{self, Files, verdict};
use crate::config::{Config, EventsChoice, FailSet, Needs, OutputFormat, ServeSpec};
use crate::pipeline::{self, Listing, Plan};
use crate::render::Labels;
use crate::render::prometheus::write_prometheus;
use crate::sys::signals::StopSignals;
use cache::{Cache, Listed};
use events::{EventCounts, EventSource, PollingEvents};
use kernel::KernelEvents;

/// Serve as `spec` says until a stop signal. Exit status: 0 on SIGTERM, 130 on Ctrl-C, 1 when
/// the address cannot be listened on or `--events kernel` cannot load its programs, 2 when
/// the baseline or policy cannot be read.
pub fn run(
    spec: &ServeSpec,
    config: &Config,
    host: Option<&str>,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let files = match spec.audit().map(|audit| audit::load(&audit)).transpose() {
        Ok(files) => files,
        Err(error) => {
            writeln!(err, "lsports: {error}")?;
            return Ok(ExitCode::AuditError);
        }
    };
    if let Some((baseline, policy)) = &files {
        audit::warn_about_files(baseline.as_ref(), policy.as_ref(), host, err)?;
    }
    // Before any thread starts: they inherit the blocked stop signals.
    let signals = StopSignals::block()?;
    let Some(listener) = bind(spec, err)? else {
        return Ok(ExitCode::Failed);
    };
    // After binding: serve's own listener is there at the start, not an event.
    let Some(source) = event_source(spec.events, config, err)? else {
        return Ok(ExitCode::Failed);
    };
    let address = listener.local_addr()?;
    let events = events::start(source)?;
    let (notes, said) = mpsc::channel();
    let lister = Lister::new(config, files, notes);
    let cache = Cache::new(spec.interval, Box::new(lister.into_fn()));
    let handler = Arc::new(move || scrape(&cache, &events));
    http::start(listener, handler)?;
    writeln!(
        err,
        "lsports: serving http://{address}{} (at most one listing per {})",
        http::METRICS_PATH,
        crate::text::duration::display(spec.interval)
    )?;
    loop {
        if let Some(stop) = signals.sleep(SAY_EVERY) {
            return Ok(crate::actions::watch::stopped(stop));
        }
        for note in said.try_iter() {
            err.write_all(&note)?;
        }
    }
}

/// Where the events come from, as `--events` says: the kernel's where they load (for
/// `auto`; why not is said under `-v`), else polling. `None` when `kernel` cannot load
/// (said on `err`).
fn event_source(
    choice: EventsChoice,
    config: &Config,
    err: &mut dyn Write,
) -> io::Result<Option<Box<dyn EventSource>>> {
    if choice == EventsChoice::Poll {
        return Ok(Some(Box::new(PollingEvents::new(config))));
    }
    let why = match KernelEvents::open(config) {
        Ok(kernel) => {
            if config.verbose {
                writeln!(err, "lsports: counting listener events from kernel events")?;
            }
            return Ok(Some(Box::new(kernel)));
        }
        Err(why) => why,
    };
    if choice == EventsChoice::Kernel {
        writeln!(err, "lsports: --events kernel: {why}")?;
        return Ok(None);
    }
    if config.verbose {
        writeln!(
            err,
            "lsports: kernel events unavailable, counting events by polling instead: {why}"
        )?;
    }
    Ok(Some(Box::new(PollingEvents::new(config))))
}

/// Listen on `--listen`; `None` when it cannot be listened on (said on `err`).
fn bind(spec: &ServeSpec, err: &mut dyn Write) -> io::Result<Option<TcpListener>> {
    match TcpListener::bind(spec.listen) {
        Ok(listener) => Ok(Some(listener)),
        Err(error) => {
            writeln!(
                err,
                "lsports: serve: cannot listen on {}: {error}; choose another with --listen \
                 ADDR:PORT",
                spec.listen
            )?;
            Ok(None)
        }
    }
}

/// The answer to one scrape: the listing of this interval, and the counters as they are now.
fn scrape(cache: &Cache, events: &EventCounts) -> Vec<u8> {
    let listed = cache.get();
    let mut body = Vec::with_capacity(listed.series.len() + 2048);
    // Writing into memory cannot fail.
    let _ = exposition::write_scrape(&listed, cache.listings(), events, &mut body);
    body
}

/// How often what the first listing had to say is passed on to stderr: the caller holds
/// stderr, so the listing (on a server thread) sends it here.
const SAY_EVERY: Duration = Duration::from_millis(200);

/// Makes one listing: gather, render, audit.
struct Lister {
    config: Config,
    plan: Plan,
    files: Option<Files>,
    /// The first listing says what it could not read (sent to `run`, which writes it to
    /// stderr); later ones keep quiet, as a scrape every few seconds would repeat it forever.
    first: AtomicBool,
    notes: Sender<Vec<u8>>,
}

impl Lister {
    fn new(config: &Config, files: Option<Files>, notes: Sender<Vec<u8>>) -> Lister {
        let needs = match files {
            Some(_) => Needs::EVERYTHING,
            None => OutputFormat::Prometheus.needs(),
        };
        Lister {
            plan: Plan::new(config, needs.and(config.filter_needs())).polling(),
            config: config.clone(),
            files,
            first: AtomicBool::new(true),
            notes,
        }
    }

    fn into_fn(self) -> impl Fn() -> Listed + Send + Sync {
        move || self.list()
    }

    fn list(&self) -> Listed {
        let begun = Instant::now();
        let first = self.first.swap(false, Ordering::Relaxed);
        let mut notes = Vec::new();
        let gathered = pipeline::gather(&self.plan, self.config.verbose && first, &mut notes);
        if let Ok(Some(listing)) = &gathered {
            let _ = listing.report_attribution(&self.config, &mut notes);
        }
        if first {
            let _ = self.notes.send(notes);
        }
        let Ok(Some(listing)) = gathered else {
            return Listed {
                up: false,
                duration: begun.elapsed(),
                series: Vec::new(),
            };
        };
        let mut series = Vec::new();
        // Writing into memory cannot fail.
        let _ = self.render(&listing, &mut series);
        Listed {
            up: true,
            duration: begun.elapsed(),
            series,
        }
    }

    fn render(&self, listing: &Listing, out: &mut Vec<u8>) -> io::Result<()> {
        let options = self.config.render_options();
        write_prometheus(&listing.entries, &options, &mut Labels::numeric(), out)?;
        let Some((baseline, policy)) = &self.files else {
            return Ok(());
        };
        let listeners = audit::audited(listing, &self.config);
        // As `audit` judges: a baseline listener in a namespace not read is not missing.
        let scope = audit::scope::Scope::new(&self.config, listing.coverage.clone(), &listeners);
        let verdict = verdict::judge_within(
            &listeners,
            baseline.as_ref().map(|(_, b)| b),
            policy.as_ref(),
            // Only what serve exports may fail its audit: with `audit`'s default flags
            // (exe-deleted, exe-writable-dir), a flagged listener, shown in no series, would
            // make it "failed" and so never incomplete, silencing the alert on a deny rule
            // left unevaluated.
            &FailSet {
                missing: false,
                flags: Vec::new(),
            },
            &|line| scope.unchecked(line),
        );
        exposition::write_audit(&listeners, &verdict, out)
    }
}
