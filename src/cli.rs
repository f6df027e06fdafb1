//! The command line, netstat-compatible: short flags combine (`-tulpn`), repeating a flag is
//! harmless, and `Cli::resolve` turns raw flags into a plain [`Config`], rejecting the
//! combinations that make no sense with a usage error (exit 2).
//!
//! Everything is a top-level flag, so subcommands can be added later as an optional
//! `#[command(subcommand)]` without changing what a bare `lsports -tlnp` means.

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{ArgGroup, CommandFactory, Parser, ValueEnum};
use ipnet::IpNet;

use crate::config::{Action, Config, Numeric, OutputFormat};
use crate::exposure::Exposure;
use crate::filter::{self, Filter, Glob, PortSet};
use crate::generate::Generated;
use crate::model::{Family, Protocol};
use crate::render::columns::Column;
use crate::source::SourceChoice;
use crate::source::netlink::StateSelection;
use crate::wait::{Until, WaitSpec, duration};

const OUTPUT: &str = "Output";
const FILTERS: &str = "Filters";
const WAITING: &str = "Waiting for ports";

/// Which ports have a service listening, and who owns them.
#[derive(Debug, Parser)]
#[command(
    name = "lsports",
    version,
    about = "Which ports have a service listening, and who owns them",
    long_about = "Which ports on this machine have a service listening, and who owns them.\n\n\
        Lists listening TCP and bound UDP sockets (IPv4 and IPv6) from the kernel's sock_diag \
        interface, falling back to /proc/net per protocol, with every process holding each \
        socket. Flags follow netstat and combine as netstat's do: lsports -tulpn.",
    after_long_help = "Exit status: 0 on success (also when nothing listens, and when a wait \
        ends as wanted), 1 when no source could enumerate sockets or a wait timed out, 2 on \
        usage errors.",
    args_override_self = true,
    group(ArgGroup::new("waiting").args(["wait", "wait_free"]))
)]
pub struct Cli {
    /// Show TCP sockets
    #[arg(short = 't', long)]
    pub tcp: bool,

    /// Show UDP sockets
    #[arg(short = 'u', long)]
    pub udp: bool,

    /// Show listening sockets only (the default)
    #[arg(
        short = 'l',
        long,
        long_help = "Show listening TCP sockets and bound, unconnected UDP sockets (UNCONN). \
            This is the default; the flag exists for netstat compatibility."
    )]
    pub listening: bool,

    /// Show sockets in every state, with the foreign address
    #[arg(
        short = 'a',
        long,
        long_help = "Show sockets in every state: established connections, TIME_WAIT, \
            connected UDP and so on, as well as listeners."
    )]
    pub all: bool,

    /// Don't resolve names (hosts, ports, users)
    #[arg(short = 'n', long)]
    pub numeric: bool,

    /// Show numeric host addresses
    #[arg(long)]
    pub numeric_hosts: bool,

    /// Show numeric port numbers
    #[arg(long)]
    pub numeric_ports: bool,

    /// Show numeric user ids
    #[arg(long)]
    pub numeric_users: bool,

    /// Show the PID/Program name column (always shown; for netstat compatibility)
    #[arg(short = 'p')]
    pub show_program: bool,

    /// Show the User and Inode columns
    #[arg(short = 'e', long)]
    pub extend: bool,

    /// Show IPv4 sockets only (with -6: both)
    #[arg(short = '4', long)]
    pub inet: bool,

    /// Show IPv6 sockets only (with -4: both)
    #[arg(short = '6', long)]
    pub inet6: bool,

    /// Don't shorten the program column
    #[arg(
        short = 'W',
        long,
        long_help = "Never shorten: by default a socket held by many processes shows the \
            first few PIDs and a count (812,813,814,+40/nginx); with -W every PID is listed."
    )]
    pub wide: bool,

    /// Output format
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        help_heading = OUTPUT,
        long_help = "Output format. table: netstat's table (the default). json: one array of \
            socket objects (schema/lsports.schema.json). jsonl: the same objects, one per \
            line. csv: a header row and one row per socket. prometheus: text exposition \
            format for node_exporter's textfile collector."
    )]
    pub format: Option<OutputFormat>,

    /// Print JSON instead of a table (same as --format json)
    #[arg(long, conflicts_with = "format", help_heading = OUTPUT)]
    pub json: bool,

    /// Columns of the table or CSV, in order (e.g. proto,port,state,pid,program)
    #[arg(
        short = 'o',
        long,
        value_enum,
        value_delimiter = ',',
        ignore_case = true,
        value_name = "COLUMNS",
        help_heading = OUTPUT,
        long_help = "Choose and order the columns of the table or CSV, comma-separated: proto, \
            family, recv_q, send_q, local (address:port), address, port, foreign, remote_addr, \
            remote_port, state, uid, user, inode, interface, v6only, exposure, source, pid, \
            program, process (netstat's PID/Program name), cmdline, exe. `-` and `_` are \
            interchangeable."
    )]
    pub columns: Vec<Column>,

    /// Don't print the header row of the table or CSV
    #[arg(short = 'H', long, help_heading = OUTPUT)]
    pub no_header: bool,

    /// Only sockets reachable from outside this host (everything but loopback)
    #[arg(long, help_heading = FILTERS)]
    pub exposed: bool,

    /// Only sockets of these exposures (comma-separated)
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "EXPOSURES",
        conflicts_with = "exposed",
        help_heading = FILTERS
    )]
    pub exposure: Vec<Exposure>,

    /// Only these local ports: 22,80,8000-8100
    #[arg(long = "port", value_name = "PORTS", help_heading = FILTERS)]
    pub ports: Vec<PortSet>,

    /// Only these local addresses or networks: 127.0.0.1, ::1, 10.0.0.0/8
    #[arg(
        long = "address",
        value_name = "ADDRESS",
        value_delimiter = ',',
        value_parser = filter::parse_network,
        help_heading = FILTERS
    )]
    pub addresses: Vec<IpNet>,

    /// Only sockets held by these process ids
    #[arg(long = "pid", value_name = "PIDS", value_delimiter = ',', help_heading = FILTERS)]
    pub pids: Vec<u32>,

    /// Only sockets owned by, or held by a process of, these users (names or uids)
    #[arg(long = "user", value_name = "USERS", value_delimiter = ',', help_heading = FILTERS)]
    pub users: Vec<String>,

    /// Only sockets held by a process with this name (exact or glob: 'python*')
    #[arg(
        long = "program",
        value_name = "NAME",
        num_args = 0..=1,
        help_heading = FILTERS,
        long_help = "Only sockets held by a process with this name: exact, or a shell glob \
            ('python*', 'worker-[0-9]'). Matches the process name (comm) or the file name of \
            its argv[0], so names cut to 15 characters still match in full. Repeat for \
            several. Without a NAME, --program is netstat's spelling of -p and changes nothing."
    )]
    pub programs: Vec<String>,

    /// Wait until something listens on every one of these ports
    #[arg(
        long,
        value_name = "PORTS",
        help_heading = WAITING,
        long_help = "Wait until something listens on every one of these ports (TCP LISTEN or \
            bound UDP; -t/-u, -4/-6 and the filters narrow it), then exit 0 without output. \
            Exits 1 with a message naming the missing ports when --timeout passes first."
    )]
    pub wait: Vec<PortSet>,

    /// Wait until nothing listens on any of these ports
    #[arg(long, value_name = "PORTS", conflicts_with = "wait", help_heading = WAITING)]
    pub wait_free: Vec<PortSet>,

    /// Give up waiting after this long (30s, 500ms, 2m; 0 checks once; default: no limit)
    #[arg(
        long,
        value_name = "DURATION",
        requires = "waiting",
        value_parser = duration::parse_duration,
        help_heading = WAITING
    )]
    pub timeout: Option<Duration>,

    /// Print the man page or a shell completion script
    #[arg(long, value_enum, value_name = "WHAT", conflicts_with = "waiting")]
    pub generate: Option<Generated>,

    /// Where sockets come from
    #[arg(
        long,
        value_enum,
        default_value_t = SourceChoice::Auto,
        long_help = "Where sockets come from. auto: netlink sock_diag, and for each protocol \
            where netlink fails, /proc/net/{tcp,tcp6,udp,udp6}. netlink: netlink only. proc: \
            /proc/net only (no backlog, v6only or device binding)."
    )]
    pub source: SourceChoice,

    /// Say which source fed each protocol and why a fallback happened
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Read processes from this proc filesystem instead of /proc
    #[arg(long, hide = true, default_value = "/proc")]
    pub proc_root: PathBuf,
}

impl Cli {
    /// Parse `args` (the first is the program name) and resolve them.
    pub fn config_from<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args)?.resolve()
    }

    /// Turn raw flags into the resolved configuration, or a usage error for combinations
    /// that make no sense.
    pub fn resolve(self) -> Result<Config, clap::Error> {
        let format = self.output_format();
        self.check_combinations(format)?;
        Ok(Config {
            action: self.action()?,
            protocols: pick_both(self.tcp, self.udp, Protocol::Tcp, Protocol::Udp),
            families: pick_both(self.inet, self.inet6, Family::Ipv4, Family::Ipv6),
            states: if self.all {
                StateSelection::All
            } else {
                StateSelection::Listening
            },
            filter: self.filter()?,
            numeric: Numeric {
                hosts: self.numeric || self.numeric_hosts,
                ports: self.numeric || self.numeric_ports,
                users: self.numeric || self.numeric_users,
            },
            extend: self.extend,
            wide: self.wide,
            format,
            columns: (!self.columns.is_empty()).then(|| self.columns.clone()),
            header: !self.no_header,
            source: self.source,
            verbose: self.verbose,
            proc_root: self.proc_root,
        })
    }

    fn output_format(&self) -> OutputFormat {
        match (self.format, self.json) {
            (Some(format), _) => format,
            (None, true) => OutputFormat::Json,
            (None, false) => OutputFormat::Table,
        }
    }

    /// Combinations clap's declarations cannot express.
    fn check_combinations(&self, format: OutputFormat) -> Result<(), clap::Error> {
        self.check_output_flags(format)?;
        self.check_wait_flags()
    }

    fn check_output_flags(&self, format: OutputFormat) -> Result<(), clap::Error> {
        let name = format.to_possible_value().map(|v| v.get_name().to_string());
        let name = name.unwrap_or_default();
        let column_flag = if !self.columns.is_empty() {
            Some("--columns")
        } else if self.no_header {
            Some("--no-header")
        } else {
            None
        };
        if let Some(flag) = column_flag.filter(|_| !format.has_columns()) {
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
        if output_flags || self.no_header {
            return Err(usage(
                "--wait and --wait-free print nothing on success; output flags \
                 (--format, --json, --columns, --no-header) cannot be used with them"
                    .into(),
            ));
        }
        Ok(())
    }

    fn action(&self) -> Result<Action, clap::Error> {
        if let Some(what) = self.generate {
            return Ok(Action::Generate(what));
        }
        let (sets, until) = if !self.wait.is_empty() {
            (&self.wait, Until::Listening)
        } else if !self.wait_free.is_empty() {
            (&self.wait_free, Until::Free)
        } else {
            return Ok(Action::List);
        };
        let ports = PortSet::union(sets);
        if ports.contains(0) {
            return Err(usage("port 0 cannot be waited for".into()));
        }
        Ok(Action::Wait(WaitSpec {
            ports,
            until,
            timeout: self.timeout,
        }))
    }

    fn filter(&self) -> Result<Filter, clap::Error> {
        let uids = self
            .users
            .iter()
            .map(|user| filter::resolve_user(user))
            .collect::<Result<Vec<u32>, String>>()
            .map_err(|message| {
                Cli::command().error(ErrorKind::ValueValidation, format!("--user: {message}"))
            })?;
        let exposures = if self.exposed {
            Some(
                Exposure::EVERY
                    .into_iter()
                    .filter(|e| e.is_external())
                    .collect(),
            )
        } else {
            (!self.exposure.is_empty()).then(|| self.exposure.clone())
        };
        Ok(Filter {
            ports: (!self.ports.is_empty()).then(|| PortSet::union(&self.ports)),
            addresses: self.addresses.clone(),
            exposures,
            pids: self.pids.clone(),
            uids,
            programs: self.programs.iter().map(|p| Glob::new(p)).collect(),
        })
    }
}

fn usage(message: String) -> clap::Error {
    Cli::command().error(ErrorKind::ArgumentConflict, message)
}

/// netstat's rule: naming one of a pair selects it; naming neither (or both) selects both.
fn pick_both<T>(first: bool, second: bool, a: T, b: T) -> Vec<T> {
    match (first, second) {
        (true, false) => vec![a],
        (false, true) => vec![b],
        _ => vec![a, b],
    }
}

#[cfg(test)]
mod tests;
