//! Plain data shared by every stage: what a socket is, who holds it, and why an owner may be
//! blank. Nothing here does I/O, so collectors, attribution, filters and renderers can all be
//! tested with values built by hand.

pub mod coverage;
pub mod exposure;
pub mod finding;
pub mod labels;
pub mod owners;
pub mod published;
pub mod reach;
pub mod shared;
pub mod socket_record;
pub mod word_hash;

use std::net::IpAddr;
use std::num::NonZeroU64;
use std::sync::Arc;

pub use owners::Owners;
pub use shared::{SharedBytes, SharedStr};
pub use thin_vec::ThinVec;

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (`IPPROTO_TCP`).
    Tcp,
    /// UDP (`IPPROTO_UDP`).
    Udp,
}

impl Protocol {
    /// Lower-case name, as used in JSON and in `/etc/services` (`tcp`, `udp`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `AF_INET`.
    Ipv4,
    /// `AF_INET6`.
    Ipv6,
}

impl Family {
    /// Name used in JSON (`ipv4`, `ipv6`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// Where a socket's description came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// The kernel's `NETLINK_SOCK_DIAG` interface.
    Netlink,
    /// The text tables `/proc/net/{tcp,tcp6,udp,udp6}`.
    Proc,
    /// A kernel event as it happened (`watch --events`), not a table.
    Event,
    /// A BPF program reading the kernel's socket structures (the tcp and udp iterators).
    Bpf,
}

impl SourceKind {
    /// Name used in JSON and `--verbose` (`netlink`, `proc`, `event`, `bpf`).
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Netlink => "netlink",
            SourceKind::Proc => "proc",
            SourceKind::Event => "event",
            SourceKind::Bpf => "bpf",
        }
    }
}

/// Kernel socket state: the `TCP_*` numbering that both sock_diag and `/proc/net/*` use, for UDP
/// too (an unconnected UDP socket is `TCP_CLOSE`, a connected one `TCP_ESTABLISHED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketState(pub u8);

impl SocketState {
    /// `TCP_ESTABLISHED`.
    pub const ESTABLISHED: SocketState = SocketState(1);
    /// `TCP_TIME_WAIT`.
    pub const TIME_WAIT: SocketState = SocketState(6);
    /// `TCP_SYN_RECV`: how sock_diag reports a request socket (a connection not yet set up).
    pub const SYN_RECV: SocketState = SocketState(3);
    /// `TCP_NEW_SYN_RECV`: a request socket's own state.
    pub const NEW_SYN_RECV: SocketState = SocketState(12);
    /// `TCP_CLOSE`: for UDP, a bound but unconnected socket.
    pub const CLOSE: SocketState = SocketState(7);
    /// `TCP_LISTEN`.
    pub const LISTEN: SocketState = SocketState(10);

    /// The state's name as netstat and ss print it. An unconnected UDP socket is `UNCONN`
    /// (ss's word; netstat leaves the column blank, which scripts cannot match on).
    pub fn label(self, protocol: Protocol) -> &'static str {
        if protocol == Protocol::Udp && self == Self::CLOSE {
            return "UNCONN";
        }
        match self.0 {
            1 => "ESTABLISHED",
            2 => "SYN_SENT",
            3 => "SYN_RECV",
            4 => "FIN_WAIT1",
            5 => "FIN_WAIT2",
            6 => "TIME_WAIT",
            7 => "CLOSE",
            8 => "CLOSE_WAIT",
            9 => "LAST_ACK",
            10 => "LISTEN",
            11 => "CLOSING",
            12 => "NEW_SYN_RECV",
            _ => "UNKNOWN",
        }
    }

    /// Whether this is the "service is waiting here" state for `protocol`: LISTEN for TCP,
    /// bound-and-unconnected for UDP.
    pub fn is_listening(self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Tcp => self == Self::LISTEN,
            Protocol::Udp => self == Self::CLOSE,
        }
    }
}

/// Which network device, if any, a socket is bound to (`SO_BINDTODEVICE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceBinding {
    /// The source cannot tell (`/proc/net/*` does not carry it).
    Unknown,
    /// Not bound to a device.
    Unbound,
    /// Bound to the device with this index; `name` is filled in when the index resolves.
    Device {
        /// Kernel interface index.
        index: u32,
        /// Interface name, when the index could be resolved in this network namespace.
        /// Shared by every socket bound to that device, behind one word: every socket of a
        /// listing carries a `DeviceBinding`, 16 bytes with it, 24 with an `Arc<str>`.
        name: Option<SharedStr>,
    },
}

/// One socket as the kernel describes it, before attribution to processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// IPv4 or IPv6.
    pub family: Family,
    /// Local (bound) address.
    pub local_addr: IpAddr,
    /// Local port.
    pub local_port: u16,
    /// Peer address (the unspecified address when not connected).
    pub remote_addr: IpAddr,
    /// Peer port (0 when not connected).
    pub remote_port: u16,
    /// Kernel state.
    pub state: SocketState,
    /// Receive queue; for listeners, connections waiting to be accepted.
    pub recv_q: u32,
    /// Send queue; for TCP listeners, the accept backlog limit. `None` when the source cannot
    /// tell (the backlog is not in `/proc/net/tcp`).
    pub send_q: Option<u32>,
    /// Owner uid of the socket (the creating process's effective uid); 0 as the kernel
    /// reports it for a minisocket, which has none ([`Socket::owner_uid`]).
    pub uid: u32,
    /// Socket inode: the key that links a socket to the file descriptors holding it. 0 for
    /// sockets no file refers to (TIME_WAIT, not yet accepted).
    pub inode: u64,
    /// For IPv6 sockets, whether `IPV6_V6ONLY` is set; `None` for IPv4 or when unknown.
    pub v6only: Option<bool>,
    /// Device binding.
    pub device: DeviceBinding,
    /// Which source described this socket.
    pub source: SourceKind,
    /// The cgroup v2 id of the cgroup the socket was made in (`INET_DIAG_CGROUP_ID`): names
    /// the unit or container that made it even when no holder is visible. `None` from
    /// `/proc/net/*` and from kernels that do not send it. Never 0 (no cgroup has that id),
    /// which keeps the field at 8 bytes: every socket of a listing carries it.
    pub cgroup_id: Option<NonZeroU64>,
    /// The network namespace it belongs to; `None` where unknown (a snapshot older than namespaces, a proc root
    /// whose namespace cannot be read). Shared by every socket of that namespace.
    pub netns: Option<Arc<Netns>>,
}

/// A network namespace, as a socket's `netns`: its nsfs inode (what `stat -L
/// /proc/PID/ns/net` gives) and the name a bind mount gives it (`ip netns`, Docker, CNI).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Netns {
    /// Its nsfs inode.
    pub inode: u64,
    /// The name as mounted, raw bytes: whoever may mount chose it, so it must be escaped
    /// for display.
    pub name: Option<Vec<u8>>,
}

impl Netns {
    /// How the `netns` column shows it: its name if a mount names it, else `net:[INODE]`
    /// as `/proc/PID/ns/net` does. Not yet escaped.
    pub fn label(&self) -> std::borrow::Cow<'_, [u8]> {
        match &self.name {
            Some(name) => name.as_slice().into(),
            None => format!("net:[{}]", self.inode).into_bytes().into(),
        }
    }
}

/// One file descriptor that refers to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Holder {
    /// Process id (thread-group id).
    pub pid: u32,
    /// File descriptor number in that process.
    pub fd: u32,
}

/// A process holding a shown socket, with what `/proc/PID` said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerProcess {
    /// Process id.
    pub pid: u32,
    /// Lowest fd number through which this process holds the socket.
    pub fd: u32,
    /// Raw `comm` (at most 15 bytes, any bytes but NUL); `None` if the process vanished.
    /// Shared with every other socket the process holds: a prefork server or a process with
    /// thousands of listeners keeps one copy.
    pub name: Option<SharedBytes>,
    /// Raw `cmdline`, arguments separated by NUL; empty for kernel threads or zombies. Shared
    /// like `name`.
    pub cmdline: Option<SharedBytes>,
    /// Effective uid of the process, from `status`.
    pub uid: Option<u32>,
    /// Its unit and container, from `/proc/PID/cgroup`: filled by the enrich stage when an
    /// output shows them or a filter uses them, `None` otherwise. Shared by every process in
    /// the same cgroup.
    pub labels: Option<Arc<labels::Labels>>,
}

/// Why a shown socket has no owning process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerUnknownReason {
    /// Every process was inspected, none holds it and it belongs to root: a socket created
    /// inside the kernel (nfsd, WireGuard, VXLAN, …), or one with no file at all (inode 0).
    Kernel,
    /// Some processes could not be inspected; the holder is probably among them.
    Permission,
    /// Every process was inspected and none holds it (a process exited during the scan, or
    /// the socket is in flight over a UNIX socket).
    NotFound,
    /// Every process of this PID namespace was inspected and none holds it, but the namespace
    /// is not the initial one: the holder most likely runs outside it (a container sharing
    /// the host's network sees the host's sockets, not its processes).
    OutsidePidNamespace,
    /// A process is hidden from `/proc`: something is mounted over its `/proc/PID` directory
    /// (or below it), so its fds cannot be read there. The kernel iterator names it as this
    /// socket's holder, and so does the walk where it can read the hidden fds past the mount
    /// (`process::fdscan::hidden_holders`); where it cannot, the hidden process may hold any
    /// socket the walk found no holder of, and each such socket says so.
    Hidden,
    /// A minisocket ([`Socket::is_minisock`]: TIME_WAIT, or a request socket in SYN_RECV):
    /// the kernel keeps it for a connection, no process ever holds one, and it has no owner.
    Minisock,
}

impl OwnerUnknownReason {
    /// Name used in JSON (`kernel`, `permission`, `not_found`, `outside_pid_namespace`,
    /// `hidden_from_proc`).
    pub fn name(self) -> &'static str {
        match self {
            OwnerUnknownReason::Kernel => "kernel",
            OwnerUnknownReason::Permission => "permission",
            OwnerUnknownReason::NotFound => "not_found",
            OwnerUnknownReason::OutsidePidNamespace => "outside_pid_namespace",
            OwnerUnknownReason::Hidden => "hidden_from_proc",
            OwnerUnknownReason::Minisock => "minisock",
        }
    }
}

/// A socket together with every process that holds it: the unit every renderer prints.
///
/// Its lists are [`ThinVec`]s, one pointer each, with no allocation while empty: a listing
/// holds one entry per socket, and findings and reach are empty unless asked for (and the
/// holders unless owners are looked for). Three `Vec`s took 72 bytes an entry; these take
/// 24, which is 1.1 MiB less in a 25,000-socket listing (README, Performance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The socket.
    pub socket: Socket,
    /// Every process holding it, by pid.
    pub processes: Owners,
    /// Why no process holds it: set when owners were looked for and none was found. `None`
    /// when `processes` is not empty, and also when owners were not looked for at all (an
    /// output that shows nothing about processes skips the scan, and claims nothing missing).
    pub owner_unknown: Option<OwnerUnknownReason>,
    /// The suspicious-listener flags it raises, each with its explanation, in
    /// [`finding::Flag::EVERY`] order: filled by the enrich stage when an output shows them or
    /// an action uses them, empty otherwise.
    pub findings: ThinVec<finding::Finding>,
    /// The socket's unit and container: from its own cgroup (`Socket::cgroup_id`), else from
    /// its holders'; a socket systemd's socket activation made names both units
    /// (`sshd.socket → sshd.service`). Filled like [`OwnerProcess::labels`].
    pub labels: Option<Arc<labels::Labels>>,
    /// Whether a new connection from outside gets through the firewall, one verdict per
    /// address family the socket accepts: filled by the enrich stage when an output, a filter
    /// or an action asks for it (`reach`), empty otherwise.
    pub reach: ThinVec<reach::Reach>,
}

impl Entry {
    /// An entry for `socket` with nothing read about it yet: no holder (and none claimed
    /// missing), no finding, label or reach. Attribution and enrichment fill it in; outputs
    /// that need none of them show it as it is.
    pub fn bare(socket: Socket) -> Entry {
        Entry {
            socket,
            processes: Owners::new(),
            owner_unknown: None,
            findings: ThinVec::new(),
            labels: None,
            reach: ThinVec::new(),
        }
    }
}

impl Socket {
    /// Whether this is one of the kernel's minisockets: a TIME_WAIT socket (what is left of a
    /// closed connection) or a request socket (SYN_RECV, a connection not yet accepted). No
    /// file refers to one (inode 0) and it has no owner: the kernel reports uid 0 for it, as
    /// a placeholder, not root (`ss -e` prints no uid for it).
    pub fn is_minisock(&self) -> bool {
        let states = [
            SocketState::TIME_WAIT,
            SocketState::SYN_RECV,
            SocketState::NEW_SYN_RECV,
        ];
        self.inode == 0 && self.uid == 0 && states.contains(&self.state)
    }

    /// The owner's uid; `None` for a minisocket ([`Socket::is_minisock`]), which has none.
    pub fn owner_uid(&self) -> Option<u32> {
        (!self.is_minisock()).then_some(self.uid)
    }
}

#[cfg(test)]
impl Socket {
    /// A listening socket for unit tests: bound to `addr:port`, unconnected, owned by root,
    /// inode 1, from netlink. Tests change what they look at with struct update syntax.
    pub fn listening(protocol: Protocol, addr: &str, port: u16) -> Socket {
        let local_addr: IpAddr = addr.parse().expect("a test address");
        let (family, remote_addr) = match local_addr {
            IpAddr::V4(_) => (Family::Ipv4, IpAddr::from([0u8; 4])),
            IpAddr::V6(_) => (Family::Ipv6, IpAddr::from([0u16; 8])),
        };
        Socket {
            protocol,
            family,
            local_addr,
            local_port: port,
            remote_addr,
            remote_port: 0,
            state: SocketState::LISTEN,
            recv_q: 0,
            send_q: None,
            uid: 0,
            inode: 1,
            v6only: None,
            device: DeviceBinding::Unbound,
            source: SourceKind::Netlink,
            cgroup_id: None,
            netns: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_and_an_entry_stay_small() {
        // A listing holds one of each per socket: with 25,000 sockets every 8 bytes here are
        // 200 KB of the run's peak (README, Performance: memory). A field that makes them
        // bigger should be worth it; then raise the bounds.
        assert_eq!(std::mem::size_of::<DeviceBinding>(), 16);
        assert!(
            std::mem::size_of::<Socket>() <= 104,
            "{}",
            std::mem::size_of::<Socket>()
        );
        // A held socket's one owner is kept in its entry (`Owners`): this is in every entry.
        assert!(
            std::mem::size_of::<OwnerProcess>() <= 40,
            "{}",
            std::mem::size_of::<OwnerProcess>()
        );
        assert!(
            std::mem::size_of::<Entry>() <= 176,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }
}
