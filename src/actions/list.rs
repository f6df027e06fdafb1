//! The default action: list the sockets, once, in the chosen format.

use std::io::{self, Write};

use crate::ExitCode;
use crate::config::Config;
use crate::pipeline;
use crate::render;
use crate::sys::timing::mark;

/// List sockets: collect, attribute, select, enrich, render.
pub fn run(config: &Config, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<ExitCode> {
    let Some(listing) = pipeline::gather(config, config.needs(), err)? else {
        return Ok(ExitCode::NoSource);
    };
    mark("listing ready");
    render::render(
        &listing.entries,
        &config.render_options(),
        &listing.exes,
        out,
    )?;
    mark("rendered");
    out.flush()?;
    listing.report_attribution(config, err)?;
    Ok(ExitCode::Success)
}
