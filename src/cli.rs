//! The command line, netstat-compatible: short flags combine (`-tulpn`), repeating a flag is
//! harmless, and `Cli::resolve` turns raw flags into a plain [`Config`].

use std::path::PathBuf;

use clap::Parser;

use crate::config::{Config, Numeric, OutputFormat};
use crate::model::{Family, Protocol};
use crate::source::SourceChoice;
use crate::source::netlink::StateSelection;

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
    after_long_help = "Exit status: 0 on success (also when nothing listens), 1 when no source \
        could enumerate sockets, 2 on usage errors.",
    args_override_self = true
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
    #[arg(short = 'p', long)]
    pub program: bool,

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

    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,

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
    /// Turn raw flags into the resolved configuration.
    pub fn resolve(self) -> Config {
        Config {
            protocols: pick_both(self.tcp, self.udp, Protocol::Tcp, Protocol::Udp),
            families: pick_both(self.inet, self.inet6, Family::Ipv4, Family::Ipv6),
            states: if self.all {
                StateSelection::All
            } else {
                StateSelection::Listening
            },
            numeric: Numeric {
                hosts: self.numeric || self.numeric_hosts,
                ports: self.numeric || self.numeric_ports,
                users: self.numeric || self.numeric_users,
            },
            extend: self.extend,
            wide: self.wide,
            format: if self.json {
                OutputFormat::Json
            } else {
                OutputFormat::Table
            },
            source: self.source,
            verbose: self.verbose,
            proc_root: self.proc_root,
        }
    }
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
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn config(args: &[&str]) -> Config {
        Cli::try_parse_from(std::iter::once("lsports").chain(args.iter().copied()))
            .unwrap()
            .resolve()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn combined_short_flags_work_like_netstat() {
        let c = config(&["-tulpn"]);
        assert_eq!(c.protocols, vec![Protocol::Tcp, Protocol::Udp]);
        assert_eq!(c.states, StateSelection::Listening);
        assert!(c.numeric.hosts && c.numeric.ports && c.numeric.users);
        let c = config(&["-tlnp"]);
        assert_eq!(c.protocols, vec![Protocol::Tcp]);
    }

    #[test]
    fn repeated_flags_are_accepted() {
        let c = config(&["-t", "-t", "--tcp", "-nn"]);
        assert_eq!(c.protocols, vec![Protocol::Tcp]);
    }

    #[test]
    fn long_netstat_spelling_works() {
        let c = config(&["--tcp", "--listening", "--numeric"]);
        assert_eq!(c.protocols, vec![Protocol::Tcp]);
        assert_eq!(c.families, vec![Family::Ipv4, Family::Ipv6]);
        assert!(c.numeric.ports);
    }

    #[test]
    fn families_and_all() {
        assert_eq!(config(&["-4"]).families, vec![Family::Ipv4]);
        assert_eq!(config(&["-6"]).families, vec![Family::Ipv6]);
        assert_eq!(config(&["-46"]).families.len(), 2);
        assert_eq!(config(&["-a"]).states, StateSelection::All);
    }

    #[test]
    fn numeric_parts_are_separate() {
        let c = config(&["--numeric-ports"]);
        assert!(c.numeric.ports && !c.numeric.hosts && !c.numeric.users);
    }

    #[test]
    fn unknown_flag_is_a_usage_error() {
        let err = Cli::try_parse_from(["lsports", "--bogus"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
