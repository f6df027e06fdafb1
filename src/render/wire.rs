//! The JSON wire types: one per concept, shared by every output that speaks JSON, so that a
//! socket is the same object in the listing (`--json`, `--format jsonl`), in a `watch` event
//! and in an audit report, and its schema (`schema/lsports.schema.json`, `#/$defs/socket` and
//! `#/$defs/process`) is stated once, here.
//!
//! They are separate from the model, so the model can change without changing the contract.
//! A watch event and an audit listener are this socket object with a few fields of their own
//! beside it (`#[serde(flatten)]`): a script reads `local_addr` the same way from all three.
//! The types deserialise too, so a Rust consumer (and the tests) can read every output back.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::labels::Labels;
use crate::model::exposure;
use crate::model::labels::Labels as ModelLabels;
use crate::model::reach::Reach;
use crate::model::{DeviceBinding, Entry, Family, OwnerProcess, SourceKind};
use crate::text::sanitize;

/// A name from a fixed set (`"tcp"`, `"LISTEN"`, …): borrowed when written, owned when read.
pub type Word = Cow<'static, str>;

/// One socket and every process holding it (`#/$defs/socket`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// `tcp` or `udp`.
    pub proto: Word,
    /// `ipv4` or `ipv6`.
    pub family: Word,
    /// Local address, without brackets or scope.
    pub local_addr: String,
    /// Local port.
    pub local_port: u16,
    /// Peer address (the unspecified address when not connected).
    pub remote_addr: String,
    /// Peer port (0 when not connected).
    pub remote_port: u16,
    /// `LISTEN`, `UNCONN`, `ESTABLISHED`, …
    pub state: Word,
    /// Receive queue; `None` when the source cannot tell.
    pub recv_q: Option<u32>,
    /// Send queue (a TCP listener's backlog limit); `None` from `/proc/net`.
    pub send_q: Option<u32>,
    /// Owner uid of the socket; `None` for a TIME_WAIT or request socket, which has none.
    pub uid: Option<u32>,
    /// Owner by name; `None` when the uid has none.
    pub user: Option<String>,
    /// Socket inode (0: no file refers to it).
    pub inode: u64,
    /// `IPV6_V6ONLY`; `None` for IPv4 or when unknown.
    pub v6only: Option<bool>,
    /// The device it is bound to (name, or index when the name is unknown); `None` when
    /// unbound or unknown (then `unknown_fields` says `interface`).
    pub interface: Option<String>,
    /// The network namespace it belongs to (its interface and exposure are that
    /// namespace's); `None` when unknown (a copied proc tree, a snapshot older than namespaces).
    pub netns: Option<Netns>,
    /// Who can reach it: `loopback`, `link-local`, `interface`, `specific`, `all`.
    pub exposure: Word,
    /// Address families it accepts traffic from.
    pub reachable_families: Vec<Word>,
    /// `netlink` or `proc`.
    pub source: Word,
    /// Fields the source could not give.
    pub unknown_fields: Vec<Word>,
    /// The container that made it, else its first labelled holder's; `None` when none is
    /// known or labels were not read.
    #[serde(default)]
    pub container: Option<Container>,
    /// The systemd unit that made it, else its first labelled holder's;
    /// `sshd.socket → sshd.service` for a socket systemd's socket activation passed on.
    #[serde(default)]
    pub unit: Option<String>,
    /// Every process holding it.
    pub processes: Vec<Process>,
    /// Why `processes` is empty (`kernel`, `permission`, …); `None` when it is not.
    pub owner_unknown_reason: Option<Word>,
    /// Whether a new connection from outside gets through the firewall: one per address
    /// family where a dual-stack socket's families differ, else one; empty for a socket that
    /// is not listening, or when reach was not evaluated (a watch or audit always does).
    #[serde(default)]
    pub reach: Vec<ReachWire>,
}

/// A listener's reach for one address family (`#/$defs/reach`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReachWire {
    /// `open`, `restricted`, `filtered`, `rejected`, `local` or `unknown`.
    pub verdict: Word,
    /// `ipv4` or `ipv6`: the family evaluated.
    pub family: Word,
    /// What decided it: a rule, a chain's policy, `no ruleset`, or why it is unknown. Text
    /// from the ruleset, kept as it is (the JSON writer escapes control characters).
    pub by: String,
    /// For `restricted`, the alternative conditions under which a packet gets through, in
    /// nft syntax (`ip saddr 192.0.2.0/24`).
    pub conditions: Vec<String>,
}

impl ReachWire {
    /// The wire form of one verdict.
    pub fn of(reach: &Reach) -> ReachWire {
        ReachWire {
            verdict: Cow::Borrowed(reach.verdict.name()),
            family: Cow::Borrowed(reach.family.name()),
            by: reach.by.clone(),
            conditions: reach.conditions.clone(),
        }
    }
}

/// A socket's network namespace: `{"inode": N, "name": "w1" | null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Netns {
    /// Its nsfs inode, as `stat -L /proc/PID/ns/net` gives it.
    pub inode: u64,
    /// The name a bind mount gives it (`ip netns`, Docker, CNI), escaped as process names
    /// are, since whoever may mount chose it.
    pub name: Option<String>,
}

impl Netns {
    /// A namespace of the model as the JSON writes it.
    pub fn of(ns: &crate::model::Netns) -> Netns {
        Netns {
            inode: ns.inode,
            name: ns.name.as_deref().map(lossy),
        }
    }
}

/// A process holding a socket (`#/$defs/process`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Process name (`comm`), bytes that are not UTF-8 as U+FFFD; `None` if it vanished.
    pub name: Option<String>,
    /// Arguments joined by spaces; `None` if unreadable.
    pub cmdline: Option<String>,
    /// Executable path, `/path (deleted)` when replaced since start; `None` when unreadable.
    pub exe: Option<String>,
    /// Effective uid; `None` if unreadable.
    pub uid: Option<u32>,
    /// Effective user by name; `None` when unknown.
    pub user: Option<String>,
    /// Lowest file descriptor through which it holds the socket.
    pub fd: u32,
    /// The container it runs in, from `/proc/PID/cgroup`.
    #[serde(default)]
    pub container: Option<Container>,
    /// The systemd unit it runs in, from `/proc/PID/cgroup`.
    #[serde(default)]
    pub unit: Option<String>,
}

/// A container (`#/$defs/container`). Names are whatever its starter chose: kept as they
/// are, the JSON writer escapes control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// `docker`, `podman`, `containerd`, `cri-o`, `cri`, `lxc`, `machine`.
    pub runtime: Word,
    /// The runtime's id (64 hex digits), or the name for LXC and machines.
    pub id: String,
    /// Its name, from the runtime's state files.
    pub name: Option<String>,
    /// Its Kubernetes pod.
    pub pod: Option<String>,
    /// Its pod's Kubernetes namespace.
    pub pod_namespace: Option<String>,
    /// A rootless container's user (the uid of the `user@UID.service` it runs under);
    /// absent for root's containers, so their objects read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootless_uid: Option<u32>,
    /// The rootless user's name; absent for root's containers (null: the uid has no name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootless_user: Option<Option<String>>,
}

impl Container {
    /// The container of `labels`, if they name one.
    fn of(labels: Option<&ModelLabels>) -> Option<Container> {
        let container = labels?.container.as_ref()?;
        Some(Container {
            runtime: Cow::Borrowed(container.runtime.as_str()),
            id: container.id.clone(),
            name: container.name.clone(),
            pod: container.pod.clone(),
            pod_namespace: container.pod_namespace.clone(),
            rootless_uid: container.rootless_uid,
            rootless_user: container
                .rootless_uid
                .map(|_| container.rootless_user.clone()),
        })
    }
}

/// The unit of `labels`, if they name one.
fn unit_of(labels: Option<&ModelLabels>) -> Option<String> {
    labels?.unit.clone()
}

impl Socket {
    /// The wire form of `entry`; `exe` gives the executable of the holder at an index of
    /// `entry.processes` (each output keeps executables its own way).
    pub fn of<'e>(
        entry: &Entry,
        labels: &mut Labels,
        exe: impl Fn(usize, &OwnerProcess) -> Option<&'e [u8]>,
    ) -> Socket {
        let socket = &entry.socket;
        Socket {
            proto: Cow::Borrowed(socket.protocol.name()),
            family: Cow::Borrowed(socket.family.name()),
            local_addr: socket.local_addr.to_string(),
            local_port: socket.local_port,
            remote_addr: socket.remote_addr.to_string(),
            remote_port: socket.remote_port,
            state: Cow::Borrowed(socket.state.label(socket.protocol)),
            recv_q: Some(socket.recv_q),
            send_q: socket.send_q,
            uid: socket.owner_uid(),
            user: socket.owner_uid().and_then(|uid| labels.user_name(uid)),
            inode: socket.inode,
            v6only: socket.v6only,
            interface: interface(&socket.device),
            netns: socket.netns.as_deref().map(Netns::of),
            exposure: Cow::Borrowed(exposure::classify(socket).name()),
            reachable_families: exposure::reachable_families(socket)
                .iter()
                .map(|f| Cow::Borrowed(f.name()))
                .collect(),
            source: Cow::Borrowed(socket.source.name()),
            unknown_fields: unknown_fields(entry),
            container: Container::of(entry.labels.as_deref()),
            unit: unit_of(entry.labels.as_deref()),
            processes: (entry.processes.iter().enumerate())
                .map(|(i, p)| Process::of(p, labels, exe(i, p)))
                .collect(),
            owner_unknown_reason: entry.owner_unknown.map(|r| Cow::Borrowed(r.name())),
            reach: entry.reach.iter().map(ReachWire::of).collect(),
        }
    }
}

impl Process {
    /// The wire form of a holder whose executable link reads `exe`.
    pub fn of(process: &OwnerProcess, labels: &mut Labels, exe: Option<&[u8]>) -> Process {
        Process {
            pid: process.pid,
            name: process.name.as_deref().map(lossy),
            cmdline: process.cmdline.as_deref().map(sanitize::cmdline_lossy),
            exe: exe.map(lossy),
            uid: process.uid,
            user: process.uid.and_then(|uid| labels.user_name(uid)),
            fd: process.fd,
            container: Container::of(process.labels.as_deref()),
            unit: unit_of(process.labels.as_deref()),
        }
    }
}

/// The `interface` of a socket: the device's name, or its index when the name is unknown.
pub fn interface(device: &DeviceBinding) -> Option<String> {
    match device {
        DeviceBinding::Device { index, name } => Some(
            name.as_deref()
                .map_or_else(|| index.to_string(), str::to_owned),
        ),
        DeviceBinding::Unbound | DeviceBinding::Unknown => None,
    }
}

fn unknown_fields(entry: &Entry) -> Vec<Word> {
    let socket = &entry.socket;
    let mut fields = Vec::new();
    if socket.send_q.is_none() {
        fields.push(Cow::Borrowed("send_q"));
    }
    if socket.source == SourceKind::Proc && socket.family == Family::Ipv6 {
        fields.push(Cow::Borrowed("v6only"));
    }
    if socket.device == DeviceBinding::Unknown {
        fields.push(Cow::Borrowed("interface"));
    }
    fields
}

fn lossy(bytes: &[u8]) -> String {
    sanitize::lossy(bytes).into_owned()
}

/// A published port as a row of the listing (`#/$defs/published`): the host side in the
/// socket object's own field names (`proto`, `family`, `local_addr`, `local_port`, `state`
/// `PUBLISHED`), so `.local_port` reads the same on every row; `kind` tells it from a socket
/// (whose rows have no `kind`); where it goes and what publishes it under `published`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRow {
    /// Always `published`.
    pub kind: Word,
    /// `tcp` or `udp`.
    pub proto: Word,
    /// `ipv4` or `ipv6`.
    pub family: Word,
    /// The host address it is published on (`0.0.0.0` or `::`: every address).
    pub local_addr: String,
    /// The host port.
    pub local_port: u16,
    /// Always `PUBLISHED`.
    pub state: Word,
    /// The network namespace it is published in (the rules' or the proxy's), as a socket's
    /// `netns`; `None` when unknown.
    pub netns: Option<Netns>,
    /// The container of the listener it lands on, if known.
    pub container: Option<Container>,
    /// Where it goes, what publishes it, and what listens there.
    pub published: Published,
    /// Whether a new connection from outside gets through the firewall to the host port,
    /// one per family.
    pub reach: Vec<PublishedReach>,
}

/// Where a published port goes (`#/$defs/published`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The target address; `None` for a redirect (to this host).
    pub target_addr: Option<String>,
    /// The target port.
    pub target_port: u16,
    /// What publishes it: the rules and docker-proxy processes that agree on this mapping.
    pub by: Vec<PublishedBy>,
    /// `listener` (`listener` says which), `no_listener` (the target's namespace was seen and
    /// nothing listens there: flagged), or `not_seen` (that namespace was not looked in:
    /// without `--netns all`, a container's).
    pub landing: Word,
    /// The listener it lands on.
    pub listener: Option<PublishedListener>,
    /// `published-without-listener` when `landing` is `no_listener`.
    pub flags: Vec<Word>,
}

/// One thing publishing a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedBy {
    /// `dnat`, `redirect` or `docker-proxy`.
    pub kind: Word,
    /// The rule, as its reader names it, or `docker-proxy pid N`.
    pub text: String,
    /// The docker-proxy's process id.
    pub pid: Option<u32>,
}

/// The listener a published port lands on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedListener {
    /// Its network namespace.
    pub netns: Option<Netns>,
    /// Its local address.
    pub local_addr: String,
    /// Its port.
    pub local_port: u16,
    /// Its socket inode.
    pub inode: u64,
    /// Its container.
    pub container: Option<Container>,
    /// Its systemd unit.
    pub unit: Option<String>,
}

/// A reach verdict (the shape sockets' `reach` has): `open`, `restricted`, `filtered`,
/// `rejected`, `local` or `unknown`, for one family, with what decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedReach {
    /// The verdict.
    pub verdict: Word,
    /// `ipv4` or `ipv6`.
    pub family: Word,
    /// The rule or reason that decided it.
    pub by: String,
    /// For `restricted`: the conditions under which it is accepted.
    pub conditions: Vec<String>,
}

impl PublishedRow {
    /// The wire form of a published port.
    pub fn of(p: &crate::model::published::Published) -> PublishedRow {
        use crate::model::published::Landing;
        let listener = match &p.landing {
            Landing::Listener(l) => Some(PublishedListener {
                netns: l.netns.as_deref().map(Netns::of),
                local_addr: l.addr.to_string(),
                local_port: l.port,
                inode: l.inode,
                container: Container::of(l.labels.as_deref()),
                unit: unit_of(l.labels.as_deref()),
            }),
            _ => None,
        };
        let landing = match p.landing {
            Landing::Listener(_) => "listener",
            Landing::NoListener { .. } => "no_listener",
            Landing::NotSeen => "not_seen",
        };
        PublishedRow {
            kind: Cow::Borrowed("published"),
            proto: Cow::Borrowed(p.protocol.name()),
            family: Cow::Borrowed(p.family.name()),
            local_addr: p.host_addr.to_string(),
            local_port: p.host_port,
            state: Cow::Borrowed("PUBLISHED"),
            netns: p.netns.as_deref().map(Netns::of),
            container: listener.as_ref().and_then(|l| l.container.clone()),
            published: Published {
                target_addr: p.target_addr.map(|a| a.to_string()),
                target_port: p.target_port,
                by: (p.by.iter())
                    .map(|b| PublishedBy {
                        kind: Cow::Borrowed(b.kind.name()),
                        text: b.text.clone(),
                        pid: b.pid,
                    })
                    .collect(),
                landing: Cow::Borrowed(landing),
                listener,
                flags: (p.without_listener())
                    .then_some(Cow::Borrowed(crate::model::published::WITHOUT_LISTENER))
                    .into_iter()
                    .collect(),
            },
            reach: (p.reach.iter())
                .map(|r| PublishedReach {
                    verdict: Cow::Borrowed(r.verdict),
                    family: Cow::Borrowed(r.family),
                    by: r.by.clone(),
                    conditions: r.conditions.clone(),
                })
                .collect(),
        }
    }
}
