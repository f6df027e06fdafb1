//! The command line, netstat-compatible: short flags combine (`-tulpn`), repeating a flag is
//! harmless, and `Cli::resolve` turns raw flags into a plain [`Config`], rejecting the
//! combinations that make no sense with a usage error (exit 2).
//!
//! Listing is what a bare `lsports -tlnp` does; the subcommands ([`commands`]: `audit`,
//! `baseline save`, `watch`, `capture`, `serve`) do something else with the same sockets. The listing
//! flags are global, so they narrow a subcommand too (`lsports watch -t --port 22`); which
//! flags make sense where is checked in one place (`checks`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgGroup, ArgMatches, CommandFactory, FromArgMatches, Parser};
use ipnet::IpNet;

use crate::config::{
    Action, AttributionChoice, AuditSpec, Column, Config, FailSet, Generated, NetnsChoice, Numeric,
    OutputFormat, ServeSpec, SourceChoice, StateSelection, Until, WaitSpec, WatchSpec,
};
use crate::enrich::names::SERVICES_PATH;
use crate::filter::ephemeral::EphemeralPorts;
use crate::filter::{self, Filter, Glob, PortSet};
use crate::model::exposure::{self, Exposure};
use crate::model::{Family, Protocol};
use crate::text::duration;
pub use commands::{BaselineCommand, Command};
pub use services::ServiceNames;

/// The proc filesystem read unless `--proc-root` or `--snapshot` says otherwise.
const PROC: &str = "/proc";
/// Time between polls of `watch` and `-c`: netstat -c's.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// At most one listing per this long for `serve`: Prometheus' default scrape interval.
const DEFAULT_SERVE_INTERVAL: Duration = Duration::from_secs(15);

const OUTPUT: &str = "Output";
const FILTERS: &str = "Filters";
const WAITING: &str = "Waiting for ports";
const WATCHING: &str = "Watching";
const OFFLINE: &str = "Offline";

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
        ends as wanted), 1 when no source could enumerate sockets, a wait timed out or a \
        capture or snapshot failed or the output could not be written, 2 on usage errors. audit: 0 nothing unexpected, 1 something \
        unexpected, 2 the audit could not be done. watch and -c: 0 when stopped by SIGTERM, 130 \
        by Ctrl-C.",
    args_override_self = true,
    group(ArgGroup::new("waiting").args(["wait", "wait_free"]))
)]
pub struct Cli {
    /// Show TCP sockets
    #[arg(short = 't', long, global = true)]
    pub tcp: bool,

    /// Show UDP sockets
    #[arg(short = 'u', long, global = true)]
    pub udp: bool,

    /// Show listening sockets only (the default)
    #[arg(
        short = 'l',
        long,
        long_help = "Show listening TCP sockets and bound, unconnected UDP sockets (UNCONN). \
            This is the default; the flag exists for netstat compatibility.",
        global = true
    )]
    pub listening: bool,

    /// Show sockets in every state, with the foreign address
    #[arg(
        short = 'a',
        long,
        long_help = "Show sockets in every state: established connections, TIME_WAIT, \
            connected UDP and so on, as well as listeners.",
        global = true
    )]
    pub all: bool,

    /// Don't resolve names (hosts, ports, users)
    #[arg(short = 'n', long, global = true)]
    pub numeric: bool,

    /// Show numeric host addresses
    #[arg(long, global = true)]
    pub numeric_hosts: bool,

    /// Show numeric port numbers
    #[arg(long, global = true)]
    pub numeric_ports: bool,

    /// Show numeric user ids
    #[arg(long, global = true)]
    pub numeric_users: bool,

    /// Show the PID/Program name column (always shown; for netstat compatibility)
    #[arg(short = 'p', global = true)]
    pub show_program: bool,

    /// Show the User and Inode columns
    #[arg(short = 'e', long, global = true)]
    pub extend: bool,

    /// Show IPv4 sockets only (with -6: both)
    #[arg(short = '4', long, global = true)]
    pub inet: bool,

    /// Show IPv6 sockets only (with -4: both)
    #[arg(short = '6', long, global = true)]
    pub inet6: bool,

    /// Don't shorten the program column
    #[arg(
        short = 'W',
        long,
        long_help = "Never shorten: by default a socket held by many processes shows the \
            first few PIDs and a count (812,813,814,+40/nginx); with -W every PID is listed.",
        global = true
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
            format for node_exporter's textfile collector.",
        global = true
    )]
    pub format: Option<OutputFormat>,

    /// Print JSON instead of a table (same as --format json)
    #[arg(long, conflicts_with = "format", help_heading = OUTPUT, global = true)]
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
        long_help = "Choose and order the columns of the table or CSV, comma-separated, from \
            the values below (`-` and `_` are interchangeable). Without a list, as at the end \
            of `-tlnpo`, -o is netstat's timers flag: lsports notes that it shows no timers \
            and lists as usual.",
        global = true
    )]
    pub columns: Vec<Column>,

    /// netstat's -o/--timers: accepted with a note, since lsports shows no socket timers
    #[arg(long, hide = true, global = true)]
    pub timers: bool,

    /// Don't print the header row of the table or CSV
    #[arg(short = 'H', long, help_heading = OUTPUT, global = true)]
    pub no_header: bool,

    /// Only sockets reachable from outside this host (everything but loopback)
    #[arg(long, help_heading = FILTERS, global = true)]
    pub exposed: bool,

    /// Only sockets of these exposures (comma-separated; external: all but loopback)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "EXPOSURES",
        value_parser = PossibleValuesParser::new(exposure::possible_values()).try_map(|w| exposure::parse_word(&w)),
        conflicts_with = "exposed",
        help_heading = FILTERS,
        global = true
    )]
    pub exposure: Vec<Vec<Exposure>>,

    /// Only what the network can reach through the firewall: open, restricted, and unknown
    #[arg(
        long,
        help_heading = FILTERS,
        long_help = "Only sockets a new connection from outside can reach through this host's \
            firewall (nftables, iptables): reach open or restricted, for some address family. \
            A socket whose reach is unknown (a rule lsports cannot evaluate, or rules it cannot \
            read: run as root) is kept too, since it may be reachable: an audit must not miss \
            one. Implies reading the firewall rules, as the reach column does.",
        global = true
    )]
    pub reachable: bool,

    /// Evaluate the firewall for every socket: the reach column, Prometheus' reach label
    #[arg(
        long,
        help_heading = OUTPUT,
        long_help = "Read this host's firewall rules (nft, iptables-save; needs root or \
            CAP_NET_ADMIN) and say for every socket whether a new connection from outside \
            gets through: open, restricted (only from named sources, interfaces, or under a \
            rate limit), filtered, rejected, local (bound to loopback), unknown. Adds the \
            reach column to the table and CSV, and the reach label to Prometheus' per-socket \
            series (left out otherwise, so series stay the same from run to run). JSON always \
            carries it; -e and -o reach show it too.",
        global = true
    )]
    pub reach: bool,

    /// Leave out UDP client sockets on ephemeral ports (resolvers, browsers)
    #[arg(
        long,
        help_heading = FILTERS,
        long_help = "Leave out UDP sockets on a port of the kernel's ephemeral range \
            (net.ipv4.ip_local_port_range; for a snapshot, the kernel's default 32768-60999): \
            the client sockets of resolvers, browsers and NTP clients, which come and go all \
            the time, each on a new port. Works with every format and with watch, -c, audit \
            and baseline save. TCP sockets are always kept.",
        global = true
    )]
    pub ignore_ephemeral: bool,

    /// Only these local ports: 22,80,8000-8100, or service names (ssh)
    #[arg(
        long = "port",
        value_name = "PORTS",
        help_heading = FILTERS,
        long_help = "Only these local ports, comma-separated: numbers, ranges (8000-8100) and \
            service names from /etc/services (ssh, http-alt), the names the table shows.",
        global = true
    )]
    pub ports: Vec<String>,

    /// Only these local addresses or networks: 127.0.0.1, ::1, 10.0.0.0/8
    #[arg(
        long = "address",
        value_name = "ADDRESS",
        value_delimiter = ',',
        value_parser = filter::parse_network,
        help_heading = FILTERS,
        global = true
    )]
    pub addresses: Vec<IpNet>,

    /// Only sockets held by these process ids
    #[arg(long = "pid", value_name = "PIDS", value_delimiter = ',', help_heading = FILTERS, global = true)]
    pub pids: Vec<u32>,

    /// Only sockets owned by, or held by a process of, these users (names or uids)
    #[arg(
        long = "user",
        value_name = "USERS",
        value_delimiter = ',',
        value_parser = non_empty,
        help_heading = FILTERS,
        global = true
    )]
    pub users: Vec<String>,

    /// Only sockets held by a process with this name (exact or glob: 'python*')
    #[arg(
        long = "program",
        value_name = "NAME",
        num_args = 0..=1,
        value_parser = non_empty,
        help_heading = FILTERS,
        long_help = "Only sockets held by a process with this name: exact, or a shell glob \
            ('python*', 'worker-[0-9]'). Matches the process name (comm) or the file name of \
            its argv[0], so names cut to 15 characters still match in full. Repeat for \
            several. Without a NAME, --program is netstat's spelling of -p and changes nothing.",
        global = true
    )]
    pub programs: Vec<String>,

    /// Only sockets of a container with this name, id or pod (exact or glob: 'web-*')
    #[arg(
        long = "container",
        value_name = "NAME",
        value_parser = non_empty,
        help_heading = FILTERS,
        long_help = "Only sockets that a container made or whose holder runs in one: NAME \
            matches the container's name or its Kubernetes pod, exactly or as a shell glob, or \
            its id or a start of it, as docker takes ids (the 12-character short id the table \
            shows, or '3f2a'). A user's rootless container (cgroup under user@UID.service) \
            is matched only by a pattern naming its user: 'alice/web', '1000/web', '*/web'; a \
            plain pattern, even '*', matches root's containers only. Repeat for several.",
        global = true
    )]
    pub containers: Vec<String>,

    /// Only sockets of a systemd unit with this name (exact or glob: 'nginx*')
    #[arg(
        long = "unit",
        value_name = "NAME",
        value_parser = non_empty,
        help_heading = FILTERS,
        long_help = "Only sockets made in, or held by a process of, a systemd unit matching \
            NAME exactly or as a shell glob ('sshd.*', 'user@1000.service/*'). A socket that \
            socket activation passed on matches by either unit (sshd.socket, sshd.service). \
            Repeat for several.",
        global = true
    )]
    pub units: Vec<String>,

    /// Read container runtimes' state and unit files under DIR instead of / (for tests)
    #[arg(long, value_name = "DIR", hide = true, global = true)]
    pub state_root: Option<PathBuf>,

    /// Wait until something listens on every one of these ports
    #[arg(
        long,
        value_name = "PORTS",
        help_heading = WAITING,
        long_help = "Wait until something listens on every one of these ports (TCP LISTEN or \
            bound UDP; -t/-u, -4/-6 and the filters narrow it), then exit 0 without output. \
            Exits 1 with a message naming the missing ports when --timeout passes first. \
            Ports as for --port: numbers, ranges and service names."
    )]
    pub wait: Vec<String>,

    /// Wait until nothing listens on any of these ports
    #[arg(long, value_name = "PORTS", conflicts_with = "wait", help_heading = WAITING)]
    pub wait_free: Vec<String>,

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
        value_name = "SOURCE",
        long_help = "Where sockets come from. auto (the default): netlink sock_diag, and for \
            each protocol where netlink fails, /proc/net/{tcp,tcp6,udp,udp6}. netlink: netlink \
            only. proc: /proc/net only (no backlog, v6only or device binding). --proc-root and \
            --snapshot imply proc.",
        global = true
    )]
    pub source: Option<SourceChoice>,

    /// Say which source fed each protocol and why a fallback happened
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,

    /// How to find socket owners: auto, bpf (kernel iterator) or walk (/proc/*/fd)
    #[arg(
        long,
        value_enum,
        default_value_t = AttributionChoice::Auto,
        long_help = "How to find the processes holding each socket. auto (the default): the \
            kernel's BPF iterator where it can run (root or CAP_BPF and CAP_PERFMON, \
            Linux 5.8 or later with BTF, the live /proc; from Linux 5.17 it walks each \
            process's fd table itself) on a host with 8,192 open files or \
            more; otherwise the /proc/*/fd walk, which is faster on smaller hosts. -v says \
            which ran and why. bpf: the iterator only; exit 1 naming what is missing when it \
            cannot run (watch, -c and --wait keep polling with the walk, and -v says why). \
            walk: the /proc/*/fd walk only.",
        global = true
    )]
    pub attribution: AttributionChoice,

    /// Network namespaces to list: current, all, an ip-netns NAME, a PATH or pid:PID
    #[arg(
        short = 'N',
        long,
        value_name = "NS",
        default_value = "current",
        value_parser = clap::builder::OsStringValueParser::new().try_map(|v| NetnsChoice::parse(&v)),
        long_help = "Which network namespaces to list. current (the default, as ss and \
            netstat): the one lsports runs in. all: every namespace of the host, found from \
            /proc/*/ns/net, from nsfs bind mounts (ip netns, Docker, CNI) and from the sockets \
            themselves (a namespace only a socket keeps alive), each read from inside it; \
            entering another namespace needs CAP_SYS_ADMIN, and without it a namespace is read \
            from /proc/PID/net of a process in it, and what could not be read is said on \
            stderr. NAME: the one ip netns names so (/run/netns/NAME), as ss -N. PATH: the one \
            bind-mounted there, or a /proc/PID/ns/net link. pid:PID: the one that process \
            lives in. The netns column shows each socket's namespace, and is in the table by \
            default when more than one namespace is listed. With capture, the chosen \
            namespaces' tables are recorded too; with --snapshot (or --proc-root, a captured \
            tree), all lists every namespace it recorded.",
        global = true
    )]
    pub netns: NetnsChoice,

    /// Also list published ports: DNAT/redirect rules and docker-proxy mappings, as rows
    #[arg(
        long,
        long_help = "Also list published ports, as rows of their own after the sockets: \
            each DNAT or redirect rule of the nat prerouting chains (nftables, iptables-nft, \
            iptables-legacy: Docker's -p 8080:80) and each docker-proxy process, as host \
            address:port → target address:port, joined to the listener the target lands on \
            (its container's name) and with the reach verdict of the host port. Only with \
            --netns all can lsports see a container's namespace: otherwise the target is \
            \"not seen\". A published port whose target namespace was seen but listens on \
            nothing there is flagged published-without-listener (not under a filter that may \
            have left that listener out). --port, -t/-u and -4/-6 select published ports by \
            their host side. Off by default: it runs nft \
            and iptables-save (root, or CAP_NET_ADMIN, is needed to read the rules; without \
            them only docker-proxy mappings are found, and stderr says why), and a published \
            port is not a socket.",
        global = true
    )]
    pub published: bool,

    /// Read sockets and processes from this proc tree instead of /proc (implies --source proc)
    #[arg(
        long,
        value_name = "DIR",
        help_heading = OFFLINE,
        long_help = "Read DIR/net/{tcp,tcp6,udp,udp6} and DIR/PID/{fd,comm,cmdline,status} \
            instead of /proc: an unpacked snapshot, a copied tree, a test fixture, or the proc \
            filesystem of another mount. Implies --source proc, since netlink only ever \
            describes the live kernel; with --source auto, the live kernel's sockets are \
            attributed to DIR's processes (a host's /proc mounted into a container).",
        global = true
    )]
    pub proc_root: Option<PathBuf>,

    /// Read a snapshot written by `lsports capture` instead of the live system
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "proc_root",
        help_heading = OFFLINE,
        long_help = "Read a snapshot written by `lsports capture` (plain or gzip-compressed \
            tar) as if it were the live system: every flag, format and subcommand but watch \
            and -c works on it. Implies --source proc.",
        global = true
    )]
    pub snapshot: Option<PathBuf>,

    /// Reprint the listing every interval, as netstat -c does
    #[arg(short = 'c', long, help_heading = WATCHING, global = true)]
    pub continuous: bool,

    /// Time between polls of watch and -c (default 1s; 500ms, 2s, 1m); serve: between listings (15s)
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = duration::parse_duration,
        help_heading = WATCHING,
        global = true
    )]
    pub interval: Option<Duration>,

    /// What to do instead of listing
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The flags given at the top level, as typed (`-t`, `--port`), for messages.
    #[arg(skip)]
    pub given: Vec<String>,
}

impl Cli {
    /// Parse `args` (the first is the program name) and resolve them, with service names
    /// from /etc/services.
    pub fn config_from<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Cli::parse_args(args)?.resolve()
    }

    /// The clap command: the derived one, with each subcommand's help showing only the
    /// flags that apply to it.
    pub fn clap_command() -> clap::Command {
        commands::hide_what_does_not_apply(Cli::command())
    }

    /// Parse `args` (the first is the program name), with netstat's and ss's habits
    /// translated or explained (`netstat`).
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Cli::clap_command();
        let args = netstat::rewrite_timers(args.into_iter().map(Into::into).collect(), &command);
        let matches = command
            .try_get_matches_from_mut(&args)
            .map_err(|error| netstat::with_hint(error, &args, &mut command))?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.given = given_flags(&command, &matches);
        Ok(cli)
    }

    /// Turn raw flags into the resolved configuration, or a usage error for combinations
    /// that make no sense; service names in port lists are looked up in /etc/services.
    pub fn resolve(self) -> Result<Config, clap::Error> {
        self.resolve_with(&mut ServiceNames::new(SERVICES_PATH))
    }

    /// [`Cli::resolve`], with service names looked up in `services`.
    pub fn resolve_with(self, services: &mut ServiceNames) -> Result<Config, clap::Error> {
        let format = self.output_format();
        self.check_combinations(format)?;
        Ok(Config {
            action: self.action(services)?,
            protocols: pick_both(self.tcp, self.udp, Protocol::Tcp, Protocol::Udp),
            families: pick_both(self.inet, self.inet6, Family::Ipv4, Family::Ipv6),
            states: if self.all {
                StateSelection::All
            } else {
                StateSelection::Listening
            },
            filter: self.filter(services)?,
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
            source: self.source_choice(),
            verbose: self.verbose,
            attribution: self.attribution,
            proc_root: self.proc_root.clone().unwrap_or_else(|| PROC.into()),
            snapshot: self.snapshot.clone(),
            state_root: self.state_root.clone().unwrap_or_else(|| "/".into()),
            netns: self.netns.clone(),
            notes: self.notes(),
            reach: self.reach,
            published: self.published,
        })
    }

    /// What the user should know about how their flags were read.
    fn notes(&self) -> Vec<String> {
        let timers = self.timers.then(|| netstat::TIMERS_NOTE.to_string());
        let switches = switches::notes(|name| std::env::var_os(name));
        timers.into_iter().chain(switches).collect()
    }

    fn output_format(&self) -> OutputFormat {
        match (self.format, self.json) {
            (Some(format), _) => format,
            (None, true) => OutputFormat::Json,
            (None, false) => OutputFormat::Table,
        }
    }

    /// A snapshot is read through the `/proc` source only; `--proc-root` implies it too,
    /// unless `--source auto` asks for the live kernel's sockets with DIR's processes (a host's
    /// `/proc` mounted into a container). `--source netlink` with either is a usage error.
    fn source_choice(&self) -> SourceChoice {
        match (self.source, &self.proc_root, &self.snapshot) {
            (_, _, Some(_)) => SourceChoice::Proc,
            (Some(choice), _, None) => choice,
            (None, Some(_), None) => SourceChoice::Proc,
            (None, None, None) => SourceChoice::Auto,
        }
    }

    fn interval(&self) -> Duration {
        self.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    fn action(&self, services: &mut ServiceNames) -> Result<Action, clap::Error> {
        if let Some(command) = &self.command {
            return Ok(self.command_action(command));
        }
        if let Some(what) = self.generate {
            return Ok(Action::Generate(what));
        }
        if self.continuous {
            return Ok(Action::Continuous(self.interval()));
        }
        let (lists, until, flag) = if !self.wait.is_empty() {
            (&self.wait, Until::Listening, "--wait")
        } else if !self.wait_free.is_empty() {
            (&self.wait_free, Until::Free, "--wait-free")
        } else {
            return Ok(Action::List);
        };
        let ports = port_set(lists, flag, services)?;
        if ports.contains(0) {
            return Err(usage("port 0 cannot be waited for".into()));
        }
        Ok(Action::Wait(WaitSpec {
            ports,
            until,
            timeout: self.timeout,
        }))
    }

    fn command_action(&self, command: &Command) -> Action {
        match command {
            Command::Audit(args) => Action::Audit(AuditSpec {
                baseline: args.baseline.clone(),
                policy: args.policy.clone(),
                fail: FailSet::from_choices(&args.fail_on),
            }),
            Command::Baseline(BaselineCommand::Save(args)) => Action::SaveBaseline {
                file: args.file.clone(),
                force: args.force,
            },
            Command::Watch(_) if self.continuous => Action::Continuous(self.interval()),
            Command::Watch(args) => Action::Watch(WatchSpec {
                interval: self.interval(),
                changes_only: args.changes_only,
                events: args.events.unwrap_or_default(),
            }),
            Command::Capture(args) => Action::Capture {
                out: args.out.clone(),
                force: args.force,
            },
            Command::Serve(args) => Action::Serve(ServeSpec {
                listen: args.listen,
                interval: self.interval.unwrap_or(DEFAULT_SERVE_INTERVAL),
                baseline: args.baseline.clone(),
                policy: args.policy.clone(),
                events: args.events.unwrap_or_default(),
            }),
        }
    }

    fn filter(&self, services: &mut ServiceNames) -> Result<Filter, clap::Error> {
        let uids = self
            .users
            .iter()
            .map(|user| filter::resolve_user(user))
            .collect::<Result<Vec<u32>, String>>()
            .map_err(|message| {
                Cli::command().error(ErrorKind::ValueValidation, format!("--user: {message}"))
            })?;
        let exposures = if self.exposed {
            Some(Exposure::external())
        } else {
            (!self.exposure.is_empty()).then(|| self.exposure.concat())
        };
        let ports = match self.ports.is_empty() {
            true => None,
            false => Some(port_set(&self.ports, "--port", services)?),
        };
        Ok(Filter {
            ports,
            addresses: self.addresses.clone(),
            exposures,
            pids: self.pids.clone(),
            uids,
            programs: self.programs.iter().map(|p| Glob::new(p)).collect(),
            containers: self.containers.iter().map(|p| Glob::new(p)).collect(),
            units: self.units.iter().map(|p| Glob::new(p)).collect(),
            ephemeral: self.leaves_out_ephemeral().then(|| self.ephemeral_ports()),
            reachable: self.reachable,
        })
    }

    /// `--ignore-ephemeral`, which `serve` implies unless `--include-ephemeral`: client
    /// sockets would make series that churn.
    fn leaves_out_ephemeral(&self) -> bool {
        match &self.command {
            Some(Command::Serve(args)) => !args.include_ephemeral,
            _ => self.ignore_ephemeral,
        }
    }

    /// The ephemeral range of the system looked at: the live kernel's or the proc tree's; a
    /// snapshot does not record it, so the kernel's default.
    fn ephemeral_ports(&self) -> EphemeralPorts {
        match (&self.snapshot, &self.proc_root) {
            (Some(_), _) => EphemeralPorts::default(),
            (None, Some(root)) => EphemeralPorts::read(root),
            (None, None) => EphemeralPorts::read(PROC.as_ref()),
        }
    }
}

/// The union of the port lists given to `flag`, with service names looked up.
fn port_set(
    lists: &[String],
    flag: &str,
    services: &mut ServiceNames,
) -> Result<PortSet, clap::Error> {
    let sets = lists
        .iter()
        .map(|list| PortSet::parse_with(list, &mut |name| services.lookup(name)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Cli::command().error(ErrorKind::ValueValidation, format!("{flag}: {e}")))?;
    Ok(PortSet::union(&sets))
}

/// A `--user` or `--program` value: an empty one would match nothing, silently.
fn non_empty(text: &str) -> Result<String, String> {
    match text.trim().is_empty() {
        true => Err("an empty value matches nothing; give a name".into()),
        false => Ok(text.to_string()),
    }
}

/// The flags given on the command line at the top level, by their names (`-t/--tcp`).
fn given_flags(command: &clap::Command, matches: &ArgMatches) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|arg| match (arg.get_short(), arg.get_long()) {
            (Some(short), Some(long)) => format!("-{short}/--{long}"),
            (None, Some(long)) => format!("--{long}"),
            (Some(short), None) => format!("-{short}"),
            (None, None) => arg.get_id().to_string(),
        })
        .collect()
}

/// A usage error (exit status 2) saying why flags cannot be combined.
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

mod checks;
pub mod commands;
mod netstat;
mod services;
mod switches;
#[cfg(test)]
mod tests;
