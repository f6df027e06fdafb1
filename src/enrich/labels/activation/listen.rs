//! A socket unit's `Listen*=` values, parsed as systemd's `socket_address_parse` reads them,
//! and matched against a socket the kernel reported.
//!
//! The inet forms (`systemd.socket(5)`):
//!
//! | value | socket systemd makes |
//! |---|---|
//! | `22` | `[::]:22`, dual-stack unless `BindIPv6Only=ipv6-only`; `0.0.0.0:22` on a host without IPv6 |
//! | `0.0.0.0:22`, `127.0.0.1:53` | that IPv4 address |
//! | `[::]:22`, `[::1]:53` | that IPv6 address |
//! | `1.2.3.4%eth0:80`, `[fe80::1%eth0]:80` | the address, bound to the device (systemd 246 and later) |
//!
//! Paths (`/run/x.sock`, `@abstract`), `vsock:`, `netlink` and FIFO values are kept as
//! [`ListenAddr::Other`]: they name no TCP or UDP socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{DeviceBinding, Protocol, Socket};

/// Which `Listen*=` setting a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenKind {
    /// `ListenStream=`: TCP for an inet address.
    Stream,
    /// `ListenDatagram=`: UDP for an inet address.
    Datagram,
    /// `ListenSequentialPacket=`: never TCP or UDP.
    SequentialPacket,
}

impl ListenKind {
    /// The kind for a setting's name, if it is one of the three.
    pub fn from_key(key: &str) -> Option<ListenKind> {
        match key {
            "ListenStream" => Some(ListenKind::Stream),
            "ListenDatagram" => Some(ListenKind::Datagram),
            "ListenSequentialPacket" => Some(ListenKind::SequentialPacket),
            _ => None,
        }
    }

    /// The transport protocol this kind gives an inet socket.
    fn protocol(self) -> Option<Protocol> {
        match self {
            ListenKind::Stream => Some(Protocol::Tcp),
            ListenKind::Datagram => Some(Protocol::Udp),
            ListenKind::SequentialPacket => None,
        }
    }
}

/// Where a `Listen*=` value listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A bare port: `[::]:port` (or `0.0.0.0:port` without IPv6).
    Port(u16),
    /// An address and port, with the device after `%` if one is named.
    Inet {
        /// The address.
        addr: IpAddr,
        /// The port.
        port: u16,
        /// The device of `addr%dev`.
        device: Option<String>,
    },
    /// Anything that is no inet address (a path, `vsock:…`, a netlink family).
    Other,
}

/// `BindIPv6Only=`: whether an IPv6 wildcard socket also takes IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindIpv6Only {
    /// Not set: the kernel's `net.ipv6.bindv6only` decides (0, dual-stack, almost always).
    #[default]
    Default,
    /// `both`: dual-stack (`IPV6_V6ONLY` off).
    Both,
    /// `ipv6-only`: IPv6 only.
    Ipv6Only,
}

impl BindIpv6Only {
    /// Parse the setting's value; an empty or unknown value is the default.
    pub fn parse(value: &str) -> BindIpv6Only {
        match value {
            "both" => BindIpv6Only::Both,
            "ipv6-only" => BindIpv6Only::Ipv6Only,
            _ => BindIpv6Only::Default,
        }
    }

    /// Whether a socket whose `IPV6_V6ONLY` is `v6only` (`None`: unknown) fits this setting.
    fn allows(self, v6only: Option<bool>) -> bool {
        !matches!(
            (self, v6only),
            (BindIpv6Only::Both, Some(true)) | (BindIpv6Only::Ipv6Only, Some(false))
        )
    }
}

/// One `Listen*=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Which setting.
    pub kind: ListenKind,
    /// Where.
    pub addr: ListenAddr,
}

/// What else of a socket unit decides whether a socket is one of its: `BindToDevice=` and
/// `BindIPv6Only=`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// `BindToDevice=`.
    pub device: Option<&'a str>,
    /// `BindIPv6Only=`.
    pub ipv6_only: BindIpv6Only,
}

impl Listen {
    /// Parse `value` of the setting `kind`.
    pub fn parse(kind: ListenKind, value: &str) -> Listen {
        Listen {
            kind,
            addr: parse_addr(value),
        }
    }

    /// Whether `socket` is the socket systemd makes for this value under `options`.
    pub fn matches(&self, socket: &Socket, options: Options<'_>) -> bool {
        if self.kind.protocol() != Some(socket.protocol) {
            return false;
        }
        let (addr, port, device) = match &self.addr {
            ListenAddr::Port(port) => (None, *port, None),
            ListenAddr::Inet { addr, port, device } => (Some(*addr), *port, device.as_deref()),
            ListenAddr::Other => return false,
        };
        port == socket.local_port
            && address_fits(addr, socket, options.ipv6_only)
            && device_fits(device.or(options.device), &socket.device)
    }
}

/// Whether the socket's local address is the one systemd binds for `addr` (`None`: a bare
/// port).
fn address_fits(addr: Option<IpAddr>, socket: &Socket, ipv6_only: BindIpv6Only) -> bool {
    let Some(addr) = addr else {
        // A bare port: the IPv6 wildcard, or the IPv4 one where the host has no IPv6.
        return match socket.local_addr {
            IpAddr::V6(local) => local.is_unspecified() && ipv6_only.allows(socket.v6only),
            IpAddr::V4(local) => local.is_unspecified(),
        };
    };
    if addr != socket.local_addr {
        return false;
    }
    // `[::]:22` is dual-stack or not as BindIPv6Only= says; a specific address is one family.
    !(addr.is_ipv6() && addr.is_unspecified()) || ipv6_only.allows(socket.v6only)
}

/// Whether the socket's device binding is the one asked for (`None`: no device). A binding
/// the source could not tell, or a device whose name did not resolve, is no mismatch.
fn device_fits(want: Option<&str>, binding: &DeviceBinding) -> bool {
    match (want, binding) {
        (_, DeviceBinding::Unknown) => true,
        (None, DeviceBinding::Unbound) => true,
        (None, DeviceBinding::Device { .. }) | (Some(_), DeviceBinding::Unbound) => false,
        (Some(want), DeviceBinding::Device { name, .. }) => {
            name.as_deref().is_none_or(|name| name == want)
        }
    }
}

/// Parse a `Listen*=` value (see the module docs).
fn parse_addr(value: &str) -> ListenAddr {
    if let Ok(port) = value.parse::<u16>() {
        return if port == 0 {
            ListenAddr::Other
        } else {
            ListenAddr::Port(port)
        };
    }
    if let Some(rest) = value.strip_prefix('[') {
        return parse_v6(rest).unwrap_or(ListenAddr::Other);
    }
    parse_v4(value).unwrap_or(ListenAddr::Other)
}

/// `addr[%dev]]:port`, after the `[`.
fn parse_v6(rest: &str) -> Option<ListenAddr> {
    let (inside, port) = rest.split_once("]:")?;
    let (addr, device) = split_device(inside);
    let addr: Ipv6Addr = addr.parse().ok()?;
    inet(IpAddr::V6(addr), port, device)
}

/// `a.b.c.d[%dev]:port`.
fn parse_v4(value: &str) -> Option<ListenAddr> {
    let (inside, port) = value.rsplit_once(':')?;
    let (addr, device) = split_device(inside);
    let addr: Ipv4Addr = addr.parse().ok()?;
    inet(IpAddr::V4(addr), port, device)
}

fn split_device(inside: &str) -> (&str, Option<&str>) {
    match inside.split_once('%') {
        Some((addr, device)) => (addr, Some(device).filter(|d| !d.is_empty())),
        None => (inside, None),
    }
}

fn inet(addr: IpAddr, port: &str, device: Option<&str>) -> Option<ListenAddr> {
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    Some(ListenAddr::Inet {
        addr,
        port,
        device: device.map(str::to_owned),
    })
}
