//! What a listener *is*, as opposed to which process happens to hold it now: protocol,
//! address, port, the device it is bound to (`0.0.0.0%eth0:67` is not `0.0.0.0:67`), the
//! network namespace it is in ([`Namespace`]), owning user and program (name and executable). Baselines record identities
//! and audits compare them, so a service restarted with a new PID (and a new socket inode) is
//! the same listener, and the same port held by another program or user is not.
//!
//! Names and paths are kept in their terminal-safe form ([`sanitize::terminal_safe`], which
//! is injective), so a baseline file is safe to `cat` and compares byte for byte.

use std::net::IpAddr;

use crate::enrich::exe::Executables;
use crate::enrich::names::UserNames;
use crate::filter::ephemeral::EphemeralPorts;
use crate::model::exposure::{self, Exposure};
use crate::model::reach::{Reach, Verdict};
use crate::model::{DeviceBinding, Entry, Protocol};
use crate::render::labels::device_label;
use crate::text::sanitize;

/// A program holding a listener.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Program {
    /// Process name (`comm`), terminal-safe.
    pub name: String,
    /// Executable path without the kernel's ` (deleted)`, terminal-safe; `None` when it could
    /// not be read (another user's process, without privileges).
    pub exe: Option<String>,
}

/// The device a listener is bound to (`SO_BINDTODEVICE`), part of where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// Not bound to a device.
    Unbound,
    /// Bound to this device: its name, terminal-safe (or its index, when it has no name here).
    Bound(String),
    /// The source cannot tell (`/proc/net` does not say).
    Unknown,
}

/// Which network namespace a listener is in, by what still names it after a reboot or a
/// container's restart: never the namespace's inode, which both change. The namespace lsports
/// runs in is [`Namespace::Current`], so identities of the host are what they were before
/// lsports listed other namespaces, and baselines saved then still match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    /// The namespace lsports runs in (or, from a snapshot, the one its capture ran in).
    Current,
    /// Another namespace, the socket's container's (else its first labelled holder's): the
    /// container's name, else its id; terminal-safe. Docker's own mount name for the
    /// namespace is a sandbox id that changes on every restart; the container's name does not.
    Container(String),
    /// Another namespace, not a container's, named by a bind mount (`ip netns`): its name,
    /// terminal-safe.
    Netns(String),
    /// Another namespace, nameless, of a systemd unit (`PrivateNetwork=`): the unit,
    /// terminal-safe.
    Unit(String),
    /// Another namespace that nothing names.
    Unnamed,
}

impl Namespace {
    /// The namespace of `entry`, where `current` is the inode of the namespace lsports runs in
    /// (`None`: unknown, then only a socket of no known namespace is in the current one).
    pub fn of(entry: &Entry, current: Option<u64>) -> Namespace {
        let Some(netns) = &entry.socket.netns else {
            return Namespace::Current;
        };
        if Some(netns.inode) == current {
            return Namespace::Current;
        }
        let safe = |text: &str| sanitize::terminal_safe(text.as_bytes()).into_owned();
        let labels = entry.labels.as_deref();
        if let Some(container) = labels.and_then(|l| l.container.as_ref()) {
            // `alice/web` for a user's rootless container: a baseline's `web` is root's.
            return Namespace::Container(container.display_label());
        }
        if let Some(name) = &netns.name {
            return Namespace::Netns(sanitize::terminal_safe(name).into_owned());
        }
        match labels.and_then(|l| l.unit.as_deref()) {
            Some(unit) => Namespace::Unit(safe(unit)),
            None => Namespace::Unnamed,
        }
    }

    /// `container web`, `netns w1`, `unit db.service`, `an unnamed netns`; `None` for the
    /// current one. For reports, after the listener's address.
    pub fn describe(&self) -> Option<String> {
        match self {
            Namespace::Current => None,
            Namespace::Container(name) => Some(format!("container {name}")),
            Namespace::Netns(name) => Some(format!("netns {name}")),
            Namespace::Unit(name) => Some(format!("unit {name}")),
            Namespace::Unnamed => Some("an unnamed netns".into()),
        }
    }
}

/// A listener's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Bound address.
    pub address: IpAddr,
    /// Bound port.
    pub port: u16,
    /// Bound device.
    pub device: Device,
    /// The network namespace it is in.
    pub namespace: Namespace,
    /// A UDP client socket on an ephemeral port (see [`crate::filter::ephemeral`]).
    pub ephemeral: bool,
    /// Who can reach it.
    pub exposure: Exposure,
    /// Owner of the socket: a user name, or the uid when it has none.
    pub user: String,
    /// The distinct programs holding it, sorted; empty when no holder is known.
    pub programs: Vec<Program>,
    /// Its reach through the firewall as a baseline records it (`open`, or
    /// `ipv4:open ipv6:filtered` where the families differ); `None` when it was not
    /// evaluated or some family's is `unknown` (nothing to compare).
    pub reach: Option<String>,
}

/// Computes identities, caching user names across listeners (and, in a loop, across polls).
#[derive(Debug, Default)]
pub struct Identifier {
    users: UserNames,
    ephemeral: EphemeralPorts,
    current: Option<u64>,
}

impl Identifier {
    /// An identifier using `ephemeral` as the ephemeral port range.
    pub fn new(ephemeral: EphemeralPorts) -> Identifier {
        Identifier {
            users: UserNames::default(),
            ephemeral,
            current: None,
        }
    }

    /// The same, where `current` is the inode of the namespace lsports runs in: its listeners
    /// are identified as before namespaces were listed.
    pub fn in_netns(self, current: Option<u64>) -> Identifier {
        Identifier { current, ..self }
    }

    /// The identity of `entry`, whose holders' executables are in `exes`.
    pub fn identify(&mut self, entry: &Entry, exes: &Executables) -> Identity {
        let socket = &entry.socket;
        Identity {
            protocol: socket.protocol,
            address: socket.local_addr,
            port: socket.local_port,
            device: device(&socket.device),
            namespace: Namespace::of(entry, self.current),
            ephemeral: self.ephemeral.is_client_udp(socket),
            exposure: exposure::classify(socket),
            user: self.user(socket.uid),
            programs: programs(entry, exes),
            reach: reach_text(&entry.reach),
        }
    }

    /// The name of `uid`, or the number when the passwd database has none.
    pub fn user(&mut self, uid: u32) -> String {
        match self.users.name(uid) {
            Some(name) => sanitize::terminal_safe(name.as_bytes()).into_owned(),
            None => uid.to_string(),
        }
    }
}

/// `open`, or `ipv4:open ipv6:filtered`; `None` when nothing or `unknown` is known.
pub fn reach_text(reach: &[Reach]) -> Option<String> {
    if reach.iter().any(|r| r.verdict == Verdict::Unknown) {
        return None;
    }
    reach_words(reach)
}

/// [`reach_text`] with `unknown` verdicts written too (`unknown`, `ipv4:open ipv6:unknown`),
/// for saying what a reach is now; `None` when it was not evaluated.
pub fn reach_words(reach: &[Reach]) -> Option<String> {
    let one = |r: &Reach| match reach.len() {
        1 => r.verdict.name().to_string(),
        _ => format!("{}:{}", r.family.name(), r.verdict.name()),
    };
    (!reach.is_empty()).then(|| reach.iter().map(one).collect::<Vec<_>>().join(" "))
}

/// The identity's form of a socket's device binding: the name as the table shows it.
fn device(binding: &DeviceBinding) -> Device {
    match binding {
        DeviceBinding::Unbound => Device::Unbound,
        DeviceBinding::Unknown => Device::Unknown,
        DeviceBinding::Device { index, name } => {
            Device::Bound(device_label(*index, name.as_deref()))
        }
    }
}

/// The distinct programs holding `entry`, sorted.
fn programs(entry: &Entry, exes: &Executables) -> Vec<Program> {
    let mut programs: Vec<Program> = entry
        .processes
        .iter()
        .map(|process| Program {
            name: process
                .name
                .as_deref()
                .map(|n| sanitize::terminal_safe(n).into_owned())
                .unwrap_or_default(),
            exe: exes.get(process.pid).map(exe_path),
        })
        .collect();
    programs.sort();
    programs.dedup();
    programs
}

/// An executable link as a path: the kernel's ` (deleted)` is a fact about the process, not
/// part of the path (the suspicious-listener flags report it).
pub fn exe_path(link: &[u8]) -> String {
    let path = link.strip_suffix(b" (deleted)").unwrap_or(link);
    sanitize::terminal_safe(path).into_owned()
}

impl Program {
    /// `sshd (/usr/sbin/sshd)`, or the name alone when the executable is unknown.
    pub fn describe(&self) -> String {
        match &self.exe {
            Some(exe) => format!("{} ({exe})", self.name),
            None => self.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OwnerProcess, Socket, SourceKind};

    fn entry(protocol: Protocol, port: u16, names: &[&[u8]]) -> Entry {
        Entry {
            socket: Socket {
                source: SourceKind::Proc,
                cgroup_id: None,
                ..Socket::listening(protocol, "0.0.0.0", port)
            },
            processes: names
                .iter()
                .enumerate()
                .map(|(i, name)| OwnerProcess {
                    pid: 100 + i as u32,
                    fd: 3,
                    name: Some((*name).into()),
                    cmdline: None,
                    uid: Some(0),
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
    fn prefork_workers_are_one_program_and_names_are_escaped() {
        let mut identifier = Identifier::default();
        let id = identifier.identify(
            &entry(Protocol::Tcp, 80, &[b"nginx", b"nginx", b"ev\x1bil"]),
            &Executables::default(),
        );
        let names: Vec<&str> = id.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["ev\\eil", "nginx"]);
        assert_eq!((id.user.as_str(), id.exposure), ("root", Exposure::All));
        assert!(!id.ephemeral);
    }

    #[test]
    fn udp_on_an_ephemeral_port_is_a_client_socket() {
        let mut identifier = Identifier::default();
        let exes = Executables::default();
        assert!(
            identifier
                .identify(&entry(Protocol::Udp, 45000, &[]), &exes)
                .ephemeral
        );
        assert!(
            !identifier
                .identify(&entry(Protocol::Tcp, 45000, &[]), &exes)
                .ephemeral
        );
        assert!(
            !identifier
                .identify(&entry(Protocol::Udp, 53, &[]), &exes)
                .ephemeral
        );
    }

    #[test]
    fn a_namespace_is_named_by_container_then_mount_then_unit_escaped_never_by_inode() {
        use crate::model::labels::{Container, Labels, Runtime};
        use std::sync::Arc;
        let in_netns = |inode: u64, name: Option<&[u8]>, labels: Option<Labels>| {
            let mut e = entry(Protocol::Tcp, 80, &[b"nginx"]);
            e.socket.netns = Some(Arc::new(crate::model::Netns {
                inode,
                name: name.map(<[u8]>::to_vec),
            }));
            e.labels = labels.map(Arc::new);
            e
        };
        let container = |name: Option<&str>| Labels {
            unit: Some("docker-1.scope".into()),
            container: Some(Container {
                runtime: Runtime::Docker,
                id: "1".repeat(64),
                name: name.map(str::to_string),
                pod: None,
                pod_namespace: None,
                rootless_uid: None,
                rootless_user: None,
            }),
        };
        let unit = Labels {
            unit: Some("db\x1b.service".into()),
            container: None,
        };
        let of = |e: &Entry| Namespace::of(e, Some(7));
        // lsports' own namespace, named or not, and a socket of unknown namespace.
        assert_eq!(
            of(&in_netns(7, Some(b"w1"), Some(container(Some("web"))))),
            Namespace::Current
        );
        assert_eq!(of(&entry(Protocol::Tcp, 80, &[])), Namespace::Current);
        // Docker's sandbox mount name loses to the container's name, else its id.
        let sandbox = Some(&b"3f2a9c1b7d0e"[..]);
        assert_eq!(
            of(&in_netns(8, sandbox, Some(container(Some("web\n"))))),
            Namespace::Container("web\\n".into())
        );
        assert_eq!(
            of(&in_netns(8, sandbox, Some(container(None)))),
            Namespace::Container("1".repeat(64))
        );
        assert_eq!(
            of(&in_netns(8, Some(b"w\x1b1"), Some(unit.clone()))),
            Namespace::Netns("w\\e1".into())
        );
        assert_eq!(
            of(&in_netns(8, None, Some(unit))),
            Namespace::Unit("db\\e.service".into())
        );
        assert_eq!(of(&in_netns(8, None, None)), Namespace::Unnamed);
    }

    #[test]
    fn deleted_is_not_part_of_the_path() {
        assert_eq!(exe_path(b"/usr/sbin/sshd (deleted)"), "/usr/sbin/sshd");
        assert_eq!(exe_path(b"/opt/a\xffb"), "/opt/a\\xFFb");
    }
}
