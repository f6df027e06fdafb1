//! Baselines: the listeners expected on a host, recorded by identity ([`crate::actions::audit::identity`]) with
//! `lsports baseline save FILE` and compared with `lsports audit --baseline FILE`.
//!
//! A baseline is a list of expected listeners. Each line says where (protocol, address, port,
//! the device when the listener is bound to one, and the network namespace when it is not the
//! one lsports runs in: by container, `ip netns` name or unit, see [`Namespace`]) and who (user, program, executable); a
//! line left without `interface`, `user`, `program` or `exe` matches any, and the address may
//! be widened by hand to `any` or an exposure class, so one file can describe a fleet. The file format is in [`file`]; writing it safely in [`save`].

pub mod file;
pub mod save;

use std::fmt;
use std::net::IpAddr;

use crate::actions::audit::identity::{Device, Identity, Namespace, Program};
use crate::model::Protocol;
use crate::model::exposure::Exposure;

/// Where an expected listener may be bound.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddressPattern {
    /// Exactly this address (`0.0.0.0`, `::`, `127.0.0.1`).
    Exact(IpAddr),
    /// Any address whose exposure is this class (`loopback`, `all`, …).
    Exposure(Exposure),
    /// Any address at all.
    Any,
}

/// Which port an expected listener may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortPattern {
    /// Exactly this port.
    Number(u16),
    /// Any ephemeral port: a UDP client socket (see [`crate::filter::ephemeral`]).
    Ephemeral,
}

/// One expected listener: one line of a baseline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expected {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The port.
    pub port: PortPattern,
    /// The address.
    pub address: AddressPattern,
    /// The device it is bound to (`interface = "eth0"`). `None` matches any binding: a line
    /// without the key (all of them before lsports recorded bindings, and every line of an
    /// unbound listener) matches what it always matched.
    pub interface: Option<String>,
    /// The network namespace it is in. Never widened by leaving it out: a line without one
    /// (all of them before lsports listed other namespaces) is a listener of the namespace
    /// lsports runs in, and a container's listener is not one of the host's.
    pub namespace: Namespace,
    /// The socket's owner (name, or uid); `None` matches any user.
    pub user: Option<String>,
    /// The process name (`comm`); `None` matches any program, and sockets no process holds.
    pub program: Option<String>,
    /// The executable (absolute); `None` matches any. Without `program`, a holder running it
    /// whatever its name.
    pub exe: Option<String>,
    /// Line in the file it was read from (`None` when made here).
    pub line: Option<usize>,
    /// Its reach through the firewall when it was recorded (`open`, `ipv4:open
    /// ipv6:filtered`), when known; `None` (every line before lsports recorded reach, and a
    /// listener whose reach was unknown) compares with nothing.
    pub reach: Option<String>,
}

/// A baseline: what listened, when and where it was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Host name of the machine it was recorded on.
    pub host: Option<String>,
    /// When it was recorded (RFC 3339, UTC).
    pub saved: Option<String>,
    /// The expected listeners, sorted.
    pub expected: Vec<Expected>,
}

impl Baseline {
    /// The baseline recording `identities`: one line per program holding each listener (one
    /// without a program for a socket no process holds), sorted, without repeats.
    pub fn record(identities: &[Identity], host: Option<String>, saved: Option<String>) -> Self {
        let mut expected: Vec<Expected> = identities.iter().flat_map(Expected::recording).collect();
        expected.sort();
        expected.dedup();
        Baseline {
            host,
            saved,
            expected,
        }
    }
}

impl Expected {
    /// The lines recording `identity`.
    fn recording(identity: &Identity) -> Vec<Expected> {
        let line = |program: Option<&Program>| Expected {
            protocol: identity.protocol,
            port: if identity.ephemeral {
                PortPattern::Ephemeral
            } else {
                PortPattern::Number(identity.port)
            },
            address: AddressPattern::Exact(identity.address),
            interface: match &identity.device {
                Device::Bound(name) => Some(name.clone()),
                Device::Unbound | Device::Unknown => None,
            },
            namespace: identity.namespace.clone(),
            user: Some(identity.user.clone()),
            program: program.map(|p| p.name.clone()),
            exe: program.and_then(|p| p.exe.clone()),
            line: None,
            reach: identity.reach.clone(),
        };
        if identity.programs.is_empty() {
            return vec![line(None)];
        }
        identity.programs.iter().map(|p| line(Some(p))).collect()
    }

    /// Whether the listener is where this line expects one: same protocol, address, port and
    /// device. A binding the source cannot tell (`/proc/net`) is not held against it.
    pub fn covers(&self, identity: &Identity) -> bool {
        let device_ok = match (&self.interface, &identity.device) {
            (None, _) | (Some(_), Device::Unknown) => true,
            (Some(expected), Device::Bound(bound)) => expected == bound,
            (Some(_), Device::Unbound) => false,
        };
        let port_ok = match self.port {
            PortPattern::Number(port) => port == identity.port,
            PortPattern::Ephemeral => identity.ephemeral,
        };
        let address_ok = match &self.address {
            AddressPattern::Exact(address) => *address == identity.address,
            AddressPattern::Exposure(exposure) => *exposure == identity.exposure,
            AddressPattern::Any => true,
        };
        self.protocol == identity.protocol
            && port_ok
            && address_ok
            && device_ok
            && self.namespace == identity.namespace
    }

    /// Whether the listener is the one this line expects: where it expects it, owned by its
    /// user and held by its program.
    pub fn accepts(&self, identity: &Identity) -> bool {
        let user_ok = self.user.as_ref().is_none_or(|user| *user == identity.user);
        self.covers(identity) && user_ok && self.accepts_programs(&identity.programs)
    }

    /// Whether this line could be the listener's, whose holders could not be seen: where it
    /// expects it, owned by its user; the program it names can be neither confirmed nor denied.
    pub fn accepts_unseen_holder(&self, identity: &Identity) -> bool {
        let user_ok = self.user.as_ref().is_none_or(|user| *user == identity.user);
        self.covers(identity) && user_ok
    }

    /// One holder with the expected name and executable is enough: a socket-activated
    /// service is held by systemd and the service, a prefork server by master and workers.
    /// A line naming neither accepts any holder (and sockets no process holds); one naming
    /// only the executable (a fleet's line, where names differ) accepts a holder running it.
    /// An executable that could not be read on either side is not held against it.
    fn accepts_programs(&self, programs: &[Program]) -> bool {
        if self.program.is_none() && self.exe.is_none() {
            return true;
        }
        programs.iter().any(|p| {
            self.program.as_ref().is_none_or(|name| p.name == *name)
                && match (&self.exe, &p.exe) {
                    (Some(expected), Some(found)) => expected == found,
                    _ => true,
                }
        })
    }

    /// Lines recorded from one socket share protocol, port, address, device, namespace and user: a
    /// socket held by several programs is recorded as several lines, any one of which
    /// accounts for it.
    pub fn same_socket(&self, other: &Expected) -> bool {
        type Key<'a> = (
            Protocol,
            PortPattern,
            &'a AddressPattern,
            &'a Option<String>,
            &'a Namespace,
            &'a Option<String>,
        );
        fn key(e: &Expected) -> Key<'_> {
            (
                e.protocol,
                e.port,
                &e.address,
                &e.interface,
                &e.namespace,
                &e.user,
            )
        }
        key(self) == key(other)
    }

    /// Where it is expected, as the table writes a socket: `127.0.0.1:5432`, `[::]:22`,
    /// `0.0.0.0%eth0:67`, `loopback:5432`, `any:ephemeral`; `0.0.0.0:80 in container web` in
    /// another namespace.
    pub fn place(&self) -> String {
        match self.namespace.describe() {
            Some(namespace) => format!("{} in {namespace}", self.address_and_port()),
            None => self.address_and_port(),
        }
    }

    fn address_and_port(&self) -> String {
        let mut place = match &self.address {
            AddressPattern::Exact(IpAddr::V6(v6)) => format!("[{v6}]"),
            address => address.to_string(),
        };
        if let Some(interface) = &self.interface {
            place.push('%');
            place.push_str(interface);
        }
        format!("{place}:{}", self.port)
    }

    /// `sshd (/usr/sbin/sshd) as root`, for messages.
    pub fn describe_holder(&self) -> String {
        let program = match (&self.program, &self.exe) {
            (Some(name), Some(exe)) => format!("{name} ({exe})"),
            (Some(name), None) => name.clone(),
            (None, Some(exe)) => format!("any program running {exe}"),
            (None, None) => "any program".into(),
        };
        match &self.user {
            Some(user) => format!("{program} as {user}"),
            None => program,
        }
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressPattern::Exact(address) => write!(f, "{address}"),
            AddressPattern::Exposure(exposure) => f.write_str(exposure.name()),
            AddressPattern::Any => f.write_str("any"),
        }
    }
}

impl fmt::Display for PortPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortPattern::Number(port) => write!(f, "{port}"),
            PortPattern::Ephemeral => f.write_str("ephemeral"),
        }
    }
}

#[cfg(test)]
mod tests;
