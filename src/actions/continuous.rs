//! `-c`/`--continuous`: netstat's meaning, the whole listing again every interval, in any
//! format but Prometheus (the CLI refuses it: expositions one after another are not one
//! exposition), until Ctrl-C or SIGTERM.
//!
//! A listing that has not changed since the last poll is written again from the bytes of the
//! last rendering, so an idle host costs no name lookups (services, users, hosts) per tick;
//! only the last listing and its rendering are kept, so memory stays flat.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::ExitCode;
use crate::actions::watch::stopped;
use crate::config::{Config, RenderOptions};
use crate::enrich::exe::Executables;
use crate::model::Entry;
use crate::pipeline::report::Repeats;
use crate::pipeline::{self, Plan};
use crate::render;
use crate::sys::signals::StopSignals;

/// Reprint the listing every `interval` until a stop signal. Exit status: 0 on SIGTERM, 130
/// on Ctrl-C, 1 when the first poll cannot list sockets at all.
pub fn run(
    interval: Duration,
    config: &Config,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let signals = StopSignals::block()?;
    let mut repeats = Repeats::default();
    let mut last: Option<(Vec<Entry>, Vec<u8>)> = None;
    let mut first = true;
    let plan = Plan::new(config, config.needs()).polling();
    // As the one-shot listing renders, but fixed for the run: columns that came and went
    // with the sockets would make every reprint a different table.
    let options = pipeline::listing_options(config, 0);
    loop {
        let started = Instant::now();
        match pipeline::poll(
            &plan,
            pipeline::MustRead::AnyTable,
            first && config.verbose,
            &mut repeats,
            err,
        )? {
            Some(listing) => {
                if first {
                    listing.report_attribution(config, err)?;
                }
                let again = Again {
                    options: &options,
                    exes: &listing.exes,
                    exes_shown: plan.needs.executables,
                };
                let rendered = again.render(listing.entries, last.take())?;
                out.write_all(&rendered.1)?;
                out.flush()?;
                last = Some(rendered);
            }
            None if first => return Ok(ExitCode::NoSource),
            None => {}
        }
        first = false;
        if let Some(stop) = signals.sleep(interval.saturating_sub(started.elapsed())) {
            return Ok(stopped(stop));
        }
    }
}

/// One poll's rendering, which may reuse the last one.
struct Again<'a> {
    options: &'a RenderOptions,
    exes: &'a Executables,
    /// Executables are shown: they could change under the same pid, so no reuse.
    exes_shown: bool,
}

impl Again<'_> {
    /// The rendering of `entries`: the last one when nothing changed (and no executable is
    /// shown, which could change under the same pid), a fresh one otherwise.
    fn render(
        &self,
        entries: Vec<Entry>,
        last: Option<(Vec<Entry>, Vec<u8>)>,
    ) -> io::Result<(Vec<Entry>, Vec<u8>)> {
        match last {
            Some((previous, bytes)) if previous == entries && !self.exes_shown => {
                return Ok((previous, bytes));
            }
            _ => {}
        }
        let mut bytes = Vec::new();
        render::render(&entries, self.options, self.exes, &mut bytes)?;
        Ok((entries, bytes))
    }
}
