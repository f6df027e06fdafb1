//! The subcommands: `audit`, `baseline save`, `watch`, `capture` and `serve`. Every listing
//! flag of the top level is global, so it works after a subcommand too (`lsports watch -t
//! --port 22`) and narrows what the subcommand looks at.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The listing flags (global, so that every subcommand parses them) that each subcommand's
/// `-h` shows: not those it refuses (`checks` explains the refusal when one is given anyway).
/// `capture` shows only `--proc-root`: it records everything, and the listing flags apply
/// when the snapshot is read. `watch` keeps the output flags, which apply with `-c`.
const SHOWN: &[(&str, Shown)] = &[
    (
        "audit",
        Shown::AllBut(&[
            "all",
            "columns",
            "no_header",
            "continuous",
            "interval",
            "published",
        ]),
    ),
    (
        "baseline",
        Shown::AllBut(&[
            "format",
            "json",
            "columns",
            "no_header",
            "all",
            "continuous",
            "interval",
            "published",
        ]),
    ),
    ("watch", Shown::AllBut(&["snapshot", "published"])),
    ("capture", Shown::Only(&["proc_root"])),
    (
        "serve",
        Shown::AllBut(&[
            "all",
            "format",
            "json",
            "columns",
            "no_header",
            "continuous",
            "snapshot",
            "extend",
            "wide",
            "published",
        ]),
    ),
];

/// Which of the global flags a subcommand's help shows, by id.
enum Shown {
    AllBut(&'static [&'static str]),
    Only(&'static [&'static str]),
}

impl Shown {
    fn hides(&self, id: &str) -> bool {
        match self {
            Shown::AllBut(hidden) => hidden.contains(&id),
            Shown::Only(shown) => !shown.contains(&id),
        }
    }
}

/// `command` with the flags a subcommand refuses or ignores left out of its help. The global
/// flags are copied into each subcommand here, hidden where they do not apply, as clap would
/// copy them when it builds the command (it leaves alone those already there).
pub(super) fn hide_what_does_not_apply(command: clap::Command) -> clap::Command {
    let globals: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    command.mut_subcommands(|sub| {
        let Some((_, shown)) = SHOWN.iter().find(|(name, _)| *name == sub.get_name()) else {
            return sub;
        };
        globals.iter().fold(sub, |sub, arg| {
            let hidden = arg.is_hide_set() || shown.hides(arg.get_id().as_str());
            sub.arg(arg.clone().hide(hidden))
        })
    })
}

use crate::config::{EventsChoice, FailOn};

/// What to do instead of listing.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Compare what listens now with a baseline or a policy; exit 1 on anything unexpected
    #[command(
        args_override_self = true,
        long_about = "Compare what listens now with a baseline (from `lsports baseline save`), \
            a policy (a TOML allowlist), or both, and print the unexpected listeners, the \
            missing ones and the suspicious ones.\n\n\
            A listener is recognised by protocol, address, port, user and program (name and \
            executable), never by PID: a service restarted with a new PID is still expected. \
            UDP sockets on ports of the kernel's ephemeral range (client sockets of resolvers \
            and browsers) are matched by program and user whatever their port, and are never \
            reported missing.",
        after_long_help = "Exit status: 0 when nothing is unexpected, 1 when something is (or a \
            check named by --fail-on fails), 2 when the audit could not be done (an unreadable \
            or invalid baseline or policy, named with file and line; no socket source)."
    )]
    Audit(AuditArgs),

    /// Record what listens now, to audit against later
    #[command(subcommand)]
    Baseline(BaselineCommand),

    /// Print an event each time a listener opens or closes (-c: reprint the listing)
    #[command(
        args_override_self = true,
        long_about = "Print an event each time a listener appears or disappears: time, \
            opened/closed, protocol, address, port, program and pid, as a line of text or, \
            with --format jsonl, as JSON Lines for log shippers. As root, the kernel reports \
            each one as it happens (--events, default auto), even a listener that lives a \
            millisecond; otherwise watch polls every --interval (default 1s). The first poll \
            prints the listeners present then, as `present` events, unless --changes-only. \
            With -c, reprint the whole listing every interval instead, as netstat -c does.",
        after_long_help = "Stops cleanly on Ctrl-C (exit status 130, the shell's convention \
            for SIGINT) and on SIGTERM (exit status 0, a service manager's normal stop)."
    )]
    Watch(WatchArgs),

    /// Save everything lsports reads from /proc into one file, to inspect elsewhere
    #[command(
        args_override_self = true,
        long_about = "Write a snapshot of the socket tables and of every process holding one of \
            their sockets (its socket fd links, comm, cmdline, status, stat) into OUT: a tar \
            archive, gzip-compressed when OUT ends in .gz or .tgz, readable by its owner only. \
            Read it anywhere with `lsports --snapshot OUT`. Capture as root, so that every owner \
            is recorded."
    )]
    Capture(CaptureArgs),

    /// Serve the listeners to Prometheus: GET /metrics on --listen (default 127.0.0.1:10150)
    #[command(
        args_override_self = true,
        long_about = "Serve the listening sockets to Prometheus over HTTP: GET /metrics answers \
            with the series of --format prometheus (listeners, with their namespace, container \
            and unit where known), lsports_up, lsports_scrape_duration_seconds, \
            lsports_listings_total, and lsports_listener_events_total: every listener opened \
            or closed since serve started, by program, so a listener that lived between two \
            scrapes still shows (from kernel events where they load, even a listener living a \
            millisecond; see --events). With --baseline and/or --policy, each unexpected listener is \
            a lsports_audit_unexpected series and lsports_audit_unexpected_listeners counts \
            them, for an alert rule.\n\n\
            At most one listing is made per --interval (default 15s), however many scrapers \
            ask: scrapes in between, and scrapes that arrive while a listing runs, share it. \
            UDP client sockets on ephemeral ports are left out (as --ignore-ephemeral does) \
            unless --include-ephemeral. The server answers GET /metrics only (404 for other \
            paths, 405 for other methods), reads at most 8 KiB of request head within 5 \
            seconds, and handles a few connections at a time; it binds to loopback unless \
            --listen says otherwise.",
        after_long_help = "Stops cleanly on Ctrl-C (exit status 130) and on SIGTERM (exit \
            status 0). Exit status 1 when the address cannot be listened on or --events kernel \
            cannot load its programs, 2 when the \
            baseline or policy is unreadable or invalid."
    )]
    Serve(ServeArgs),
}

/// `lsports audit`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Audit")]
pub struct AuditArgs {
    /// Baseline file to compare with (written by `lsports baseline save`; `-`: standard input)
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Policy file: TOML allow and deny rules, tried in order
    #[arg(
        long,
        value_name = "FILE",
        long_help = "Policy file: TOML allow and deny rules, tried in order; the first rule \
            that matches a listener decides. Keys: action, name, proto, port, address, \
            exposure, program, exe, user, required, and reach (open, restricted, filtered, \
            rejected, local, unknown, or a list: the listener's verdict through the firewall; \
            an allow rule matches when every address family's verdict is listed, a deny rule \
            when any is). The audit also reports firewall holes: ports a rule accepts with \
            nothing listening there; published ports whose target listens on nothing \
            (published-without-listener; a container's only under --netns all); and, with \
            --baseline, listeners whose reach changed."
    )]
    pub policy: Option<PathBuf>,

    /// What else fails the audit besides unexpected listeners (default: exe-deleted,exe-writable-dir,exe-masked)
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "CHECKS",
        long_help = "What else makes the audit exit 1 besides unexpected listeners, \
            comma-separated: missing (a baseline listener no longer listens), exe-deleted, \
            exe-writable-dir, exe-masked, root-exposed, no-owner (the suspicious-listener \
            flags), all, or none. Default: exe-deleted,exe-writable-dir,exe-masked. Whatever \
            is not named here is still reported. Unmet `required` policy rules always fail."
    )]
    pub fail_on: Vec<FailOn>,
}

/// `lsports baseline …`.
#[derive(Debug, Clone, Subcommand)]
pub enum BaselineCommand {
    /// Record the listeners of now into FILE (a sorted TOML file, one listener per line)
    #[command(
        args_override_self = true,
        long_about = "Record the listeners of now into FILE, by identity rather than PID: \
            protocol, address, port, the device it is bound to (if any), user, program name \
            and executable. The file is sorted TOML with one listener per line, so that it \
            diffs well and can be edited by hand. It is written to a temporary file and \
            renamed into place, so it is never half-written, and an existing FILE is only \
            replaced with --force (keeping its mode). `-` writes to \
            standard output. Listing flags narrow what is recorded (-t, --port, --exposed…): \
            give the audit the same ones."
    )]
    Save(SaveArgs),
}

/// `lsports baseline save`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Baseline")]
pub struct SaveArgs {
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,

    /// Where to write the baseline (`-`: standard output)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `lsports watch`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Watch")]
pub struct WatchArgs {
    /// Don't print the listeners present at the first poll, only changes
    #[arg(long)]
    pub changes_only: bool,

    /// Learn of listeners from kernel events or by polling (default: auto)
    #[arg(
        long,
        value_enum,
        value_name = "HOW",
        long_help = "How watch learns that a listener opened or closed: kernel (BPF programs \
            report every TCP listen and UDP bind and close as it happens, even a listener that \
            lives a millisecond; needs root, kernel BTF and a cgroup v2 mount, and a slow poll \
            beside them catches what no hook sees), poll (read the socket tables every \
            --interval; misses what opens and closes between two polls), or auto (the default: \
            kernel where its programs load, else poll, said under -v)."
    )]
    pub events: Option<EventsChoice>,
}

/// `lsports capture`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Capture")]
pub struct CaptureArgs {
    /// Replace OUT if it exists
    #[arg(long)]
    pub force: bool,

    /// The snapshot file to write (.tar, or .tar.gz / .tgz for gzip; `-`: a plain tar to
    /// standard output, never a terminal)
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
}

/// Where `serve` listens unless told: loopback, on a port outside 9100-9999 (the range the
/// Prometheus project hands out to exporters, which is fully allocated).
pub const DEFAULT_SERVE_ADDRESS: &str = "127.0.0.1:10150";

/// `lsports serve`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Serve")]
pub struct ServeArgs {
    /// Address and port to serve /metrics on (default 127.0.0.1:10150; [::1]:10150, 0.0.0.0:10150)
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_SERVE_ADDRESS)]
    pub listen: std::net::SocketAddr,

    /// Baseline file: serve its audit's unexpected listeners (written by `lsports baseline save`)
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Policy file: serve the listeners its rules do not allow
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Serve UDP client sockets on ephemeral ports too (left out by default: they churn)
    #[arg(long)]
    pub include_ephemeral: bool,

    /// Count listener events from kernel events or by polling (default: auto)
    #[arg(
        long,
        value_enum,
        value_name = "HOW",
        long_help = "Where lsports_listener_events_total comes from: kernel (BPF programs \
            report every TCP listen and UDP bind and close as it happens, so even a listener \
            that lives a millisecond is counted; needs root, kernel BTF and a cgroup v2 mount; \
            exit 1 where they cannot load), poll (read the socket tables every second; misses \
            what opens and closes between two polls), or auto (the default: kernel where its \
            programs load, else poll, said under -v). lsports_listener_event_source_info says \
            which one counts, and lsports_listener_events_lost_total what the kernel dropped."
    )]
    pub events: Option<EventsChoice>,
}
