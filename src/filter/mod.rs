//! What the user asked to see, in the order they see it.
//!
//! Protocol, family and state are selected at collection (in the kernel where possible). The
//! rest happens here in two steps, so that process details are read only for sockets that can
//! still be shown: [`Filter::keeps_socket`] (port, address, exposure, ephemeral) before attribution,
//! [`Filter::keeps_entry`] (pid, user, program) after it. Values within one filter are
//! alternatives; different filters must all match.

pub mod ephemeral;
pub mod glob;
pub mod order;
pub mod ports;

use std::net::IpAddr;

use ipnet::IpNet;

use crate::filter::ephemeral::EphemeralPorts;
use crate::model::exposure::{self, Exposure};
use crate::model::labels::Labels;
use crate::model::reach::Verdict;
use crate::model::{Entry, Family, OwnerProcess, OwnerUnknownReason, Protocol, Socket};
pub use glob::Glob;
pub use ports::{PortSet, PortSpecError};

/// Every selection criterion; the default keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Local ports to keep (`--port`); `None` keeps every port.
    pub ports: Option<PortSet>,
    /// Local address networks to keep (`--address`); empty keeps every address.
    pub addresses: Vec<IpNet>,
    /// Exposure classes to keep (`--exposed`, `--exposure`); `None` keeps every class.
    pub exposures: Option<Vec<Exposure>>,
    /// Keep sockets held by one of these pids (`--pid`).
    pub pids: Vec<u32>,
    /// Keep sockets owned by, or held by a process running as, one of these uids (`--user`).
    pub uids: Vec<u32>,
    /// Keep sockets held by a process whose name matches one of these (`--program`).
    pub programs: Vec<Glob>,
    /// Keep sockets whose container, or a holder's, matches one of these by name, id or pod
    /// (`--container`).
    pub containers: Vec<Glob>,
    /// Keep sockets whose systemd unit, or a holder's, matches one of these (`--unit`).
    pub units: Vec<Glob>,
    /// Leave out UDP client sockets on ports of this range (`--ignore-ephemeral`); `None`
    /// keeps them.
    pub ephemeral: Option<EphemeralPorts>,
    /// Keep only what the network can reach through the firewall (`--reachable`): `open`,
    /// `restricted`, and `unknown` (which may be either); applied once reach is evaluated.
    pub reachable: bool,
}

impl Filter {
    /// Whether the criteria that need only the socket keep it.
    pub fn keeps_socket(&self, socket: &Socket) -> bool {
        let port_ok = self
            .ports
            .as_ref()
            .is_none_or(|ports| ports.contains(socket.local_port));
        let address = exposure::unmapped(socket.local_addr);
        let address_ok =
            self.addresses.is_empty() || self.addresses.iter().any(|net| net.contains(&address));
        let exposure_ok = self
            .exposures
            .as_ref()
            .is_none_or(|kept| kept.contains(&exposure::classify(socket)));
        let client_ok = self
            .ephemeral
            .as_ref()
            .is_none_or(|range| !range.is_client_udp(socket));
        port_ok && address_ok && exposure_ok && client_ok
    }

    /// Whether [`Filter::keeps_entry`] needs the processes holding each socket.
    pub fn needs_processes(&self) -> bool {
        !(self.pids.is_empty() && self.uids.is_empty() && self.programs.is_empty())
            || self.needs_labels()
    }

    /// Whether [`Filter::keeps_entry`] needs the labels of each socket and holder.
    pub fn needs_labels(&self) -> bool {
        !(self.containers.is_empty() && self.units.is_empty())
    }

    /// Whether the criteria about processes keep an attributed entry.
    pub fn keeps_entry(&self, entry: &Entry) -> bool {
        let processes = &entry.processes;
        let pid_ok = self.pids.is_empty() || processes.iter().any(|p| self.pids.contains(&p.pid));
        let user_ok = self.uids.is_empty()
            || (entry.socket.owner_uid()).is_some_and(|uid| self.uids.contains(&uid))
            || processes
                .iter()
                .any(|p| p.uid.is_some_and(|uid| self.uids.contains(&uid)));
        let program_ok = self.programs.is_empty()
            || processes
                .iter()
                .any(|p| self.programs.iter().any(|glob| program_matches(glob, p)));
        pid_ok && user_ok && program_ok && self.keeps_labels(entry)
    }

    /// Whether an entry [`Filter::keeps_entry`] leaves out might be kept had its holders been
    /// seen: none was (processes this user may not inspect, or holders outside this PID
    /// namespace), and a filter asks about holders (`--pid`, `--program`; `--container` and
    /// `--unit` when the socket's own cgroup did not name it). `--user` alone is settled by
    /// the socket's owner, which is always known.
    pub fn may_keep_entry(&self, entry: &Entry) -> bool {
        let unseen = entry.processes.is_empty()
            && matches!(
                entry.owner_unknown,
                Some(OwnerUnknownReason::Permission | OwnerUnknownReason::OutsidePidNamespace)
            );
        let asks_holders = !self.pids.is_empty()
            || !self.programs.is_empty()
            || (entry.labels.is_none() && self.needs_labels());
        let user_ok = self.uids.is_empty()
            || (entry.socket.owner_uid()).is_some_and(|uid| self.uids.contains(&uid));
        unseen && asks_holders && user_ok
    }

    /// Whether `--reachable` keeps an entry whose reach was evaluated: some family's verdict
    /// lets a packet through, or may (`unknown`: an auditor asking what the network can reach
    /// must not have a listener hidden because a rule could not be read).
    pub fn keeps_reach(&self, entry: &Entry) -> bool {
        !self.reachable
            || entry
                .reach
                .iter()
                .any(|r| r.verdict.is_reachable() || r.verdict == Verdict::Unknown)
    }

    /// Whether `--container` and `--unit` keep the entry: a match on the socket's own labels
    /// or on any holder's.
    fn keeps_labels(&self, entry: &Entry) -> bool {
        let every = || {
            let holders = entry.processes.iter().filter_map(|p| p.labels.as_deref());
            entry.labels.as_deref().into_iter().chain(holders)
        };
        let container_ok = self.containers.is_empty()
            || every().any(|l| self.containers.iter().any(|g| container_matches(g, l)));
        let unit_ok =
            self.units.is_empty() || every().any(|l| self.units.iter().any(|g| unit_matches(g, l)));
        container_ok && unit_ok
    }
}

/// A container matches by name or pod name, or by id or a start of it, as docker takes ids (the
/// 12-character short id the table shows, `3f2a`, or a glob such as `3f2a?c`).
///
/// A rootless container (one in a user's `user@UID.service` subtree) is matched only by a
/// pattern that names its user, `USER/NAME` or `UID/NAME` (`alice/web`, `1000/3f2a`,
/// `*/web` for any user's): the user made its cgroup and wrote the file naming it, so a
/// plain `web` (or `*`) means root's containers, never a user's claim to be one.
fn container_matches(glob: &Glob, labels: &Labels) -> bool {
    let Some(container) = &labels.container else {
        return false;
    };
    let names = [container.name.as_ref(), container.pod.as_ref()];
    let Some(uid) = container.rootless_uid else {
        return glob.matches_start_of(container.id.as_bytes())
            || (names.into_iter().flatten()).any(|text| glob.matches(text.as_bytes()));
    };
    if !glob.as_str().contains('/') {
        return false;
    }
    let users = [Some(uid.to_string()), container.rootless_user.clone()];
    users.into_iter().flatten().any(|user| {
        let qualified = |text: &str| format!("{user}/{text}").into_bytes();
        glob.matches_start_of(&qualified(&container.id))
            || (names.into_iter().flatten()).any(|text| glob.matches(&qualified(text)))
    })
}

/// A unit matches whole, or by either side of an activation (`sshd.socket → sshd.service`).
fn unit_matches(glob: &Glob, labels: &Labels) -> bool {
    let Some(unit) = &labels.unit else {
        return false;
    };
    glob.matches(unit.as_bytes()) || unit.split(" → ").any(|part| glob.matches(part.as_bytes()))
}

/// A process matches by `comm` or by the file name of `argv[0]`: `comm` is cut to 15 bytes
/// (`systemd-resolve`), while `argv[0]` keeps the name people type (`systemd-resolved`).
fn program_matches(glob: &Glob, process: &OwnerProcess) -> bool {
    let by_comm = process.name.as_deref().is_some_and(|n| glob.matches(n));
    by_comm || argv0_file_name(process).is_some_and(|n| glob.matches(n))
}

fn argv0_file_name(process: &OwnerProcess) -> Option<&[u8]> {
    let cmdline = process.cmdline.as_deref()?;
    let argv0 = cmdline.split(|&b| b == 0).next()?;
    let name = argv0.rsplit(|&b| b == b'/').next()?;
    (!name.is_empty()).then_some(name)
}

/// Keep the sockets the socket-level criteria keep.
pub fn keep_sockets(sockets: Vec<Socket>, filter: &Filter) -> Vec<Socket> {
    sockets
        .into_iter()
        .filter(|s| filter.keeps_socket(s))
        .collect()
}

/// Keep the entries the process-level criteria keep, sorted for display.
pub fn keep_entries(entries: Vec<Entry>, filter: &Filter) -> Vec<Entry> {
    keep_entries_or_undecided(entries, filter).0
}

/// [`keep_entries`], with apart the entries left out that the filters may have kept, had
/// their holders been seen ([`Filter::may_keep_entry`]), in display order too.
pub fn keep_entries_or_undecided(entries: Vec<Entry>, filter: &Filter) -> (Vec<Entry>, Vec<Entry>) {
    if !filter.needs_processes() {
        return (select(entries), Vec::new());
    }
    let (kept, left_out): (Vec<Entry>, Vec<Entry>) =
        entries.into_iter().partition(|e| filter.keeps_entry(e));
    let undecided = left_out
        .into_iter()
        .filter(|e| filter.may_keep_entry(e))
        .collect();
    (select(kept), select(undecided))
}

/// Sort entries as netstat users read them: by protocol, then port, then address.
pub fn select(mut entries: Vec<Entry>) -> Vec<Entry> {
    order::sort_by_prefixed_key(
        &mut entries,
        |e| order_prefix(&e.socket),
        |e| order_key(&e.socket),
    );
    entries
}

/// The display order of sockets: protocol, port, address, family, then the peer and inode so
/// that the order is total.
pub fn display_order(a: &Socket, b: &Socket) -> std::cmp::Ordering {
    order_key(a).cmp(&order_key(b))
}

/// What [`display_order`] compares.
type OrderKey = (Protocol, u16, IpAddr, Family, IpAddr, u16, u64);

fn order_key(s: &Socket) -> OrderKey {
    (
        s.protocol,
        s.local_port,
        s.local_addr,
        s.family,
        s.remote_addr,
        s.remote_port,
        s.inode,
    )
}

/// The start of [`order_key`] in 64 bits, which orders like the key wherever two differ:
/// protocol (1 bit), port (16), whether the address is IPv6 (1, as `IpAddr` puts IPv4 first)
/// and the address's first 46 bits (all of an IPv4 address).
fn order_prefix(s: &Socket) -> u64 {
    let protocol = match s.protocol {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
    };
    let address = match s.local_addr {
        IpAddr::V4(v4) => u64::from(u32::from(v4)) << 14,
        IpAddr::V6(v6) => 1 << 46 | (u128::from(v6) >> 82) as u64,
    };
    protocol << 63 | u64::from(s.local_port) << 47 | address
}

/// Parse `--address`: an address (`127.0.0.1`, `::1`, `[::1]`) or a network in CIDR
/// notation (`10.0.0.0/8`, `fe80::/10`). A bare address is a network of one.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let trimmed = text.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(addr) = unbracketed.parse::<IpAddr>() {
        return Ok(unmapped_network(IpNet::from(addr)));
    }
    unbracketed
        .parse::<IpNet>()
        .map(|net| unmapped_network(net.trunc()))
        .map_err(|_| {
            format!("{text:?} is not an address or a network (e.g. 127.0.0.1, ::1, 10.0.0.0/8)")
        })
}

/// `net` as the IPv4 network it maps, when it lies within `::ffff:0:0/96`
/// (`::ffff:127.0.0.1` is `127.0.0.1`, `::ffff:0:0/96` is `0.0.0.0/0`): sockets are matched
/// by their address unmapped ([`exposure::unmapped`]), so a mapped address as the listing
/// writes it (`[::ffff:127.0.0.1]:5432`) must select the socket bound to it.
fn unmapped_network(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else {
        return net;
    };
    match v6.network().to_ipv4_mapped() {
        Some(v4) if v6.prefix_len() >= 96 => {
            ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4)
        }
        _ => net,
    }
}

/// Resolve `--user`: a uid, or a name from the passwd database.
pub fn resolve_user(text: &str) -> Result<u32, String> {
    if let Ok(uid) = text.parse::<u32>() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(text) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err(format!("no such user: {text:?}")),
        Err(error) => Err(format!("cannot look up user {text:?}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn socket(addr: &str, port: u16, uid: u32) -> Socket {
        let listening = Socket::listening(Protocol::Tcp, addr, port);
        Socket {
            remote_addr: listening.local_addr,
            send_q: Some(5),
            uid,
            inode: u64::from(port),
            ..listening
        }
    }

    fn entry(socket: Socket, processes: &[(u32, &str, &str, u32)]) -> Entry {
        Entry {
            socket,
            processes: processes
                .iter()
                .map(|&(pid, name, cmdline, uid)| OwnerProcess {
                    pid,
                    fd: 3,
                    name: Some(name.as_bytes().into()),
                    cmdline: Some(cmdline.as_bytes().into()),
                    uid: Some(uid),
                    labels: None,
                })
                .collect(),
            owner_unknown: None,
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
        }
    }

    #[test]
    fn default_filter_keeps_everything() {
        let filter = Filter::default();
        assert!(filter.keeps_socket(&socket("0.0.0.0", 22, 0)));
        assert!(!filter.needs_processes());
        assert!(filter.keeps_entry(&entry(socket("::1", 1, 0), &[])));
    }

    #[test]
    fn port_address_and_exposure_combine() {
        let filter = Filter {
            ports: Some("22,8000-8100".parse().unwrap()),
            addresses: vec![parse_network("127.0.0.0/8").unwrap()],
            ..Filter::default()
        };
        assert!(filter.keeps_socket(&socket("127.0.0.1", 8080, 0)));
        assert!(filter.keeps_socket(&socket("::ffff:127.0.0.1", 22, 0)));
        assert!(!filter.keeps_socket(&socket("127.0.0.1", 443, 0)));
        assert!(!filter.keeps_socket(&socket("0.0.0.0", 22, 0)));
        let exposed = Filter {
            exposures: Some(vec![Exposure::All, Exposure::Specific]),
            ..Filter::default()
        };
        assert!(exposed.keeps_socket(&socket("0.0.0.0", 22, 0)));
        assert!(!exposed.keeps_socket(&socket("::1", 22, 0)));
    }

    #[test]
    fn ignore_ephemeral_leaves_out_udp_on_the_range_only() {
        let filter = Filter {
            ephemeral: EphemeralPorts::parse("40000 40100"),
            ..Filter::default()
        };
        let udp = |port| Socket {
            protocol: Protocol::Udp,
            ..socket("0.0.0.0", port, 0)
        };
        assert!(!filter.keeps_socket(&udp(40000)) && !filter.keeps_socket(&udp(40100)));
        assert!(filter.keeps_socket(&udp(39999)) && filter.keeps_socket(&udp(53)));
        assert!(
            filter.keeps_socket(&socket("0.0.0.0", 40050, 0)),
            "TCP is kept"
        );
        assert!(Filter::default().keeps_socket(&udp(40050)));
    }

    #[test]
    fn ipv4_mapped_addresses_and_networks_are_their_ipv4_ones() {
        for (text, want) in [
            ("::ffff:127.0.0.1", "127.0.0.1/32"),
            ("[::ffff:10.1.2.3]", "10.1.2.3/32"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
            ("::/0", "::/0"),
            ("::1", "::1/128"),
        ] {
            assert_eq!(parse_network(text).unwrap().to_string(), want, "{text}");
        }
        let filter = Filter {
            addresses: vec![parse_network("::ffff:127.0.0.1").unwrap()],
            ..Filter::default()
        };
        assert!(filter.keeps_socket(&socket("::ffff:127.0.0.1", 22, 0)));
        assert!(filter.keeps_socket(&socket("127.0.0.1", 22, 0)));
        assert!(!filter.keeps_socket(&socket("::1", 22, 0)));
    }

    #[test]
    fn addresses_and_networks_parse() {
        let one = parse_network("[::1]").unwrap();
        assert!(one.contains(&"::1".parse::<IpAddr>().unwrap()));
        assert!(!one.contains(&"::2".parse::<IpAddr>().unwrap()));
        let net = parse_network("10.1.2.3/8").unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(parse_network("localhost").is_err());
        assert!(parse_network("10.0.0.0/33").is_err());
    }

    #[test]
    fn pid_user_and_program_need_processes() {
        let e = entry(
            socket("0.0.0.0", 80, 0),
            &[
                (700, "nginx", "nginx: master process", 0),
                (701, "nginx", "nginx: worker process", 33),
            ],
        );
        let by_pid = Filter {
            pids: vec![701],
            ..Filter::default()
        };
        assert!(by_pid.needs_processes() && by_pid.keeps_entry(&e));
        let by_worker_user = Filter {
            uids: vec![33],
            ..Filter::default()
        };
        assert!(by_worker_user.keeps_entry(&e));
        let by_other_user = Filter {
            uids: vec![1000],
            ..Filter::default()
        };
        assert!(!by_other_user.keeps_entry(&e));
        let by_glob = Filter {
            programs: vec![Glob::new("ng*")],
            ..Filter::default()
        };
        assert!(by_glob.keeps_entry(&e));
        let orphan = entry(socket("0.0.0.0", 81, 0), &[]);
        assert!(!by_glob.keeps_entry(&orphan) && !by_pid.keeps_entry(&orphan));
    }

    #[test]
    fn program_matches_the_untruncated_argv0_too() {
        let e = entry(
            socket("127.0.0.53", 53, 101),
            &[(
                600,
                "systemd-resolve",
                "/usr/lib/systemd/systemd-resolved\0--flag",
                101,
            )],
        );
        for pattern in ["systemd-resolve", "systemd-resolved", "*resolved"] {
            let filter = Filter {
                programs: vec![Glob::new(pattern)],
                ..Filter::default()
            };
            assert!(filter.keeps_entry(&e), "{pattern}");
        }
    }

    #[test]
    fn socket_owner_uid_counts_for_user() {
        let e = entry(socket("0.0.0.0", 80, 33), &[]);
        let filter = Filter {
            uids: vec![33],
            ..Filter::default()
        };
        assert!(filter.keeps_entry(&e));
    }

    #[test]
    fn users_resolve_by_name_or_number() {
        assert_eq!(resolve_user("root"), Ok(0));
        assert_eq!(resolve_user("4242"), Ok(4242));
        assert!(resolve_user("no-such-user-lsports").is_err());
    }

    /// Addresses whose first 46 bits tie (`::1`, `::2`; two in one /46) beside others.
    const ADDRESSES: &[&str] = &[
        "0.0.0.0",
        "127.0.0.1",
        "127.0.0.2",
        "255.255.255.255",
        "::",
        "::1",
        "::2",
        "::ffff:127.0.0.1",
        "2001:db8::1",
        "2001:db8:3:ffff::1",
        "ffff::1",
    ];

    proptest::proptest! {
        /// The listing's order is a stable sort by the whole display key, however many
        /// sockets share a protocol, port and the start of their address.
        #[test]
        fn select_orders_like_a_stable_sort_by_the_display_key(
            specs in proptest::collection::vec(
                (proptest::bool::ANY, 0u16..4, 0..ADDRESSES.len(), 0..ADDRESSES.len(), 0u64..3),
                0..200,
            )
        ) {
            let entries: Vec<Entry> = specs
                .iter()
                .enumerate()
                .map(|(uid, &(udp, port, local, remote, inode))| {
                    let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
                    let listening = Socket::listening(protocol, ADDRESSES[local], port);
                    Entry::bare(Socket {
                        remote_addr: ADDRESSES[remote].parse().unwrap(),
                        inode,
                        // Tells apart sockets of equal keys, which must keep their order.
                        uid: uid as u32,
                        ..listening
                    })
                })
                .collect();
            let mut want: Vec<Socket> = entries.iter().map(|e| e.socket.clone()).collect();
            want.sort_by_key(order_key);
            for pair in want.windows(2) {
                proptest::prop_assert!(order_prefix(&pair[0]) <= order_prefix(&pair[1]));
            }
            let got: Vec<Socket> = select(entries).into_iter().map(|e| e.socket).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
