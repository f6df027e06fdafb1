//! Flag combinations clap's declarations cannot express, each rejected with a usage error that
//! says why and, where there is one, what to type instead.

use super::commands::{Command, ServeArgs};
use super::{Cli, usage};
use crate::config::SourceChoice;
use crate::config::{NetnsChoice, OutputFormat};
use clap::CommandFactory;

/// Why `-c --format prometheus` is refused, and what to do instead.
const PROMETHEUS_CONTINUOUS: &str = "-c would print one exposition after another, which no \
    Prometheus reader accepts as one; for node_exporter's textfile collector, run \
    `lsports --format prometheus > DIR/lsports.prom.tmp && mv DIR/lsports.prom.tmp \
    DIR/lsports.prom` from a timer, so that each scrape reads one whole exposition";

impl Cli {
    /// Every check, in the order a user would want to hear about them.
    pub(super) fn check_combinations(&self, format: OutputFormat) -> Result<(), clap::Error> {
        self.check_generate_flags()?;
        self.check_output_flags(format)?;
        self.check_wait_flags()?;
        self.check_offline_flags()?;
        self.check_polling_flags()?;
        self.check_published_flags(format)?;
        match &self.command {
            Some(command) => self.check_command(command, format),
            None => Ok(()),
        }
    }

    /// A man page or a completion script is the same whatever else is asked: any other flag
    /// is a mistake (`--generate man -t`), not something to ignore.
    fn check_generate_flags(&self) -> Result<(), clap::Error> {
        if self.generate.is_none() {
            return Ok(());
        }
        match self.given.iter().find(|flag| !flag.ends_with("--generate")) {
            Some(flag) => Err(usage(format!(
                "--generate prints the man page or a completion script, the same whatever \
                 else is asked; {flag} cannot be used with it"
            ))),
            None => Ok(()),
        }
    }

    fn check_output_flags(&self, format: OutputFormat) -> Result<(), clap::Error> {
        let name = format_name(format);
        if let Some(flag) = self.column_flag().filter(|_| !format.has_columns()) {
            return Err(usage(format!(
                "{flag} applies to the table and csv formats, not {name}"
            )));
        }
        if format == OutputFormat::Prometheus && self.all {
            return Err(usage(
                "--format prometheus describes listening sockets; -a/--all cannot be used with it"
                    .into(),
            ));
        }
        if format == OutputFormat::Prometheus && self.continuous {
            return Err(usage(PROMETHEUS_CONTINUOUS.into()));
        }
        Ok(())
    }

    fn check_wait_flags(&self) -> Result<(), clap::Error> {
        if self.wait.is_empty() && self.wait_free.is_empty() {
            return Ok(());
        }
        if self.all || !self.ports.is_empty() {
            return Err(usage(
                "--wait and --wait-free watch listening sockets on their own ports; \
                 -a/--all and --port cannot be used with them"
                    .into(),
            ));
        }
        let output_flags = self.format.is_some() || self.json || !self.columns.is_empty();
        if output_flags || self.no_header || self.continuous {
            return Err(usage(
                "--wait and --wait-free print nothing on success; output flags \
                 (--format, --json, --columns, --no-header, -c) cannot be used with them"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A proc tree or a snapshot is not the live kernel: netlink cannot describe it, and it
    /// never changes, so nothing can be waited for or watched in it.
    fn check_offline_flags(&self) -> Result<(), clap::Error> {
        let offline = match (&self.proc_root, &self.snapshot) {
            (_, Some(_)) => "--snapshot",
            (Some(_), None) => "--proc-root",
            (None, None) => return Ok(()),
        };
        let live_source = match self.source {
            Some(SourceChoice::Netlink) => Some("netlink"),
            Some(SourceChoice::Auto) if self.snapshot.is_some() => Some("auto"),
            _ => None,
        };
        if let Some(source) = live_source {
            return Err(usage(format!(
                "{offline} is read through the /proc source; --source {source} describes the \
                 live kernel and cannot be used with it"
            )));
        }
        if !matches!(self.netns, NetnsChoice::Current | NetnsChoice::All) {
            return Err(usage(format!(
                "{offline} holds the namespaces a capture recorded: --netns all lists them, \
                 and a NAME, PATH or pid:PID of the live system cannot be used with it"
            )));
        }
        if self.snapshot.is_none() {
            return Ok(());
        }
        let live_only = if !self.wait.is_empty() || !self.wait_free.is_empty() {
            Some("--wait and --wait-free")
        } else if self.continuous || matches!(self.command, Some(Command::Watch(_))) {
            Some("watch and -c")
        } else if matches!(self.command, Some(Command::Capture(_))) {
            Some("capture")
        } else if matches!(self.command, Some(Command::Serve(_))) {
            Some("serve")
        } else {
            None
        };
        match live_only {
            Some(what) => Err(usage(format!(
                "a snapshot never changes; {what} need the live system and cannot be used with \
                 --snapshot"
            ))),
            None => Ok(()),
        }
    }

    fn check_polling_flags(&self) -> Result<(), clap::Error> {
        let polls =
            self.continuous || matches!(self.command, Some(Command::Watch(_) | Command::Serve(_)));
        match self.interval {
            Some(_) if !polls => Err(usage(
                "--interval applies to watch, serve and -c/--continuous".into(),
            )),
            Some(interval) if interval.is_zero() => Err(usage(
                "--interval must be longer than 0 (e.g. 500ms, 2s)".into(),
            )),
            _ if self.continuous && self.generate.is_some() => Err(usage(
                "-c/--continuous reprints the listing; it cannot be used with --generate".into(),
            )),
            _ => Ok(()),
        }
    }

    fn check_command(&self, command: &Command, format: OutputFormat) -> Result<(), clap::Error> {
        let top_level_only = if self.generate.is_some() {
            Some("--generate")
        } else if !self.wait.is_empty() || !self.wait_free.is_empty() {
            Some("--wait and --wait-free")
        } else {
            None
        };
        if let Some(flag) = top_level_only {
            return Err(usage(format!("{flag} cannot be used with a subcommand")));
        }
        match command {
            Command::Audit(args) if args.baseline.is_none() && args.policy.is_none() => {
                Err(Cli::command().error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "audit needs --baseline FILE (written by `lsports baseline save`), \
                     --policy FILE (TOML allow and deny rules), or both",
                ))
            }
            Command::Audit(_) => self.check_report_command(
                "audit",
                format,
                &[OutputFormat::Table, OutputFormat::Json],
            ),
            Command::Baseline(_) => self.check_baseline_flags(),
            Command::Watch(args) if self.continuous => {
                if args.events.is_some() {
                    return Err(usage(
                        "with -c, watch reprints the whole listing every interval; --events \
                         applies to its events"
                            .into(),
                    ));
                }
                if args.changes_only {
                    return Err(usage(
                        "with -c, watch reprints the whole listing; --changes-only applies to \
                         its events"
                            .into(),
                    ));
                }
                Ok(())
            }
            Command::Watch(_) => self.check_watch_flags(format),
            Command::Capture(_) => self.check_capture_flags(),
            Command::Serve(args) => self.check_serve_flags(args),
        }
    }

    /// `serve` always serves the Prometheus format, of listeners.
    fn check_serve_flags(&self, args: &ServeArgs) -> Result<(), clap::Error> {
        self.check_listeners_only("serve")?;
        if self.format.is_some() || self.json || self.column_flag().is_some() {
            return Err(usage(
                "serve always serves the Prometheus format; output flags (--format, --json, \
                 --columns, --no-header) cannot be used with it"
                    .into(),
            ));
        }
        if args.include_ephemeral && self.ignore_ephemeral {
            return Err(usage(
                "--include-ephemeral and --ignore-ephemeral contradict each other".into(),
            ));
        }
        Ok(())
    }

    /// Audit and baseline are about listeners, and print a report of their own.
    fn check_report_command(
        &self,
        name: &str,
        format: OutputFormat,
        formats: &[OutputFormat],
    ) -> Result<(), clap::Error> {
        self.check_listeners_only(name)?;
        if let Some(flag) = self.column_flag() {
            return Err(usage(format!(
                "{name} prints a report of its own; {flag} cannot be used with it"
            )));
        }
        if !formats.contains(&format) {
            let names: Vec<&str> = formats.iter().map(|f| format_name(*f)).collect();
            return Err(usage(format!(
                "{name} prints {}; --format {} cannot be used with it",
                names.join(" or "),
                format_name(format)
            )));
        }
        Ok(())
    }

    fn check_baseline_flags(&self) -> Result<(), clap::Error> {
        self.check_listeners_only("baseline save")?;
        if self.format.is_some() || self.json || self.column_flag().is_some() {
            return Err(usage(
                "baseline save always writes its TOML format; output flags (--format, --json, \
                 --columns, --no-header) cannot be used with it"
                    .into(),
            ));
        }
        Ok(())
    }

    fn check_watch_flags(&self, format: OutputFormat) -> Result<(), clap::Error> {
        if format == OutputFormat::Json {
            return Err(usage(
                "watch prints a stream of events; use --format jsonl for one JSON object per \
                 event (or -c to reprint the JSON listing every interval)"
                    .into(),
            ));
        }
        self.check_report_command("watch", format, &[OutputFormat::Table, OutputFormat::Jsonl])
    }

    fn check_listeners_only(&self, name: &str) -> Result<(), clap::Error> {
        if self.all {
            return Err(usage(format!(
                "{name} is about listening sockets; -a/--all cannot be used with it"
            )));
        }
        if self.continuous && name != "watch" {
            return Err(usage(format!(
                "-c/--continuous reprints the listing; it cannot be used with {name}"
            )));
        }
        Ok(())
    }

    /// A capture records everything; narrowing and formatting happen when it is read.
    fn check_capture_flags(&self) -> Result<(), clap::Error> {
        match self.listing_flag() {
            Some(flag) => Err(usage(format!(
                "capture records every socket table and every process holding a socket; \
                 {flag} applies when the snapshot is read (lsports --snapshot FILE {flag} …)"
            ))),
            None => Ok(()),
        }
    }

    fn column_flag(&self) -> Option<&'static str> {
        if !self.columns.is_empty() {
            Some("--columns")
        } else if self.no_header {
            Some("--no-header")
        } else {
            None
        }
    }

    /// The first flag given that narrows or formats a listing, for messages.
    fn listing_flag(&self) -> Option<&'static str> {
        let flags = [
            (self.tcp, "-t"),
            (self.udp, "-u"),
            (self.all, "-a"),
            (self.inet, "-4"),
            (self.inet6, "-6"),
            (!self.ports.is_empty(), "--port"),
            (!self.addresses.is_empty(), "--address"),
            (self.exposed, "--exposed"),
            (!self.exposure.is_empty(), "--exposure"),
            (!self.pids.is_empty(), "--pid"),
            (!self.users.is_empty(), "--user"),
            (self.programs.iter().any(|p| !p.is_empty()), "--program"),
            (self.ignore_ephemeral, "--ignore-ephemeral"),
            (self.format.is_some() || self.json, "--format"),
            (self.column_flag().is_some(), "--columns"),
            (self.continuous, "-c"),
        ];
        flags.into_iter().find(|(given, _)| *given).map(|(_, f)| f)
    }
}

/// The name `--format` accepts for `format`.
fn format_name(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Table => "table",
        OutputFormat::Json => "json",
        OutputFormat::Jsonl => "jsonl",
        OutputFormat::Csv => "csv",
        OutputFormat::Prometheus => "prometheus",
    }
}

impl Cli {
    /// `--published` adds rows to one listing of the live host: its rules are read from the
    /// running kernel, so a snapshot or another proc tree would pair them with sockets they do
    /// not describe; and watch, audit, -c and --wait show no published rows.
    fn check_published_flags(&self, format: OutputFormat) -> Result<(), clap::Error> {
        if !self.published {
            return Ok(());
        }
        let with = if self.snapshot.is_some() {
            Some("--snapshot (the rules are the live host's, not the snapshot's)")
        } else if self.proc_root.is_some() {
            Some("--proc-root (the rules are the live host's, not that tree's)")
        } else if self.continuous || !self.wait.is_empty() || !self.wait_free.is_empty() {
            Some("-c, --wait or --wait-free")
        } else if self.command.is_some() {
            Some("a subcommand")
        } else if format == OutputFormat::Prometheus {
            Some("--format prometheus, which counts sockets")
        } else {
            None
        };
        match with {
            Some(what) => Err(usage(format!(
                "--published adds published ports to one listing of this host; it cannot be \
                 used with {what}"
            ))),
            None => Ok(()),
        }
    }
}
