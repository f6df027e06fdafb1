//! The actions a run can take, each a thin layer over the stages: [`list`] (the default),
//! [`audit`] (with its baseline and policy files), [`watch`], [`continuous`] (netstat -c),
//! [`wait`], [`capture`] (a snapshot), [`generate`] (man page, completions) and [`serve`] (a
//! Prometheus exporter). [`run`] picks the one the configuration names.

pub mod audit;
pub mod capture;
pub mod continuous;
pub mod generate;
pub mod list;
pub mod serve;
pub mod wait;
pub mod watch;

use std::io::{self, Write};

use crate::ExitCode;
use crate::config::{Action, Config};

/// Run the action `config` names. `host` is the name of the machine looked at, for the
/// reports that record it (audit, baseline).
pub fn run(
    config: &Config,
    host: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    match &config.action {
        Action::List => list::run(config, out, err),
        Action::Wait(spec) => wait::run(spec, config, err),
        Action::Generate(what) => {
            generate::write(*what, out)?;
            out.flush()?;
            Ok(ExitCode::Success)
        }
        Action::Continuous(interval) => continuous::run(*interval, config, out, err),
        Action::Watch(spec) => watch::run(spec, config, out, err),
        Action::Audit(spec) => audit::run(spec, config, host, out, err),
        Action::SaveBaseline { file, force } => {
            audit::baseline::save::run(file, *force, config, host.map(str::to_owned), out, err)
        }
        Action::Capture { out: file, force } => capture::run(file, *force, config, out, err),
        Action::Serve(spec) => serve::run(spec, config, host, err),
    }
}
