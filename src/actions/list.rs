//! The default action: list the sockets, once, in the chosen format.

use std::io::{self, Write};

use crate::ExitCode;
use crate::config::Config;
use crate::pipeline::{self, Plan};
use crate::sys::timing::mark;

/// List sockets: what the output shows, through every stage, rendered once.
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<ExitCode> {
    let plan = Plan::new(config, config.needs());
    let Some(listing) = pipeline::gather(&plan, config.verbose, err)? else {
        return Ok(ExitCode::NoSource);
    };
    mark("listing ready");
    pipeline::render(&listing, &listing.render_options(config), out)?;
    mark("rendered");
    out.flush()?;
    listing.report_attribution(config, err)?;
    for warning in listing.published.iter().flat_map(|found| &found.warnings) {
        writeln!(err, "lsports: {warning}")?;
    }
    Ok(ExitCode::Success)
}
