//! Who can reach a socket: the question behind "open port". A service bound to 127.0.0.1 is
//! running but not reachable from outside; one bound to 0.0.0.0 is reachable on every address
//! of the host. The class is derived from the bound address and device only (no firewall is
//! consulted), so it is an upper bound on reachability.
//!
//! A device is known by its index, never by its name: any local administrator (or a container
//! runtime) can rename the loopback device and give its name to a veth that reaches another
//! host. Where the source cannot tell the device at all (`/proc/net`, snapshots), the class is
//! the one the address gives, the widest the socket can have, since a device binding only
//! narrows reach; JSON lists `interface` in `unknown_fields` then.

use std::net::IpAddr;

use crate::model::{DeviceBinding, Family, Socket};

/// Reachability class of a socket, from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Exposure {
    /// Bound to a loopback address (127.0.0.0/8, ::1) or to the loopback device (index 1,
    /// whatever its name): only this host can connect.
    Loopback,
    /// Bound to a link-local address (169.254.0.0/16, fe80::/10): only the attached link.
    LinkLocal,
    /// Bound to one network device (`SO_BINDTODEVICE`): whatever that device reaches.
    Interface,
    /// Bound to one non-loopback address: whoever can route to that address.
    Specific,
    /// Bound to the wildcard address (0.0.0.0 or `[::]`): every address of the host.
    All,
}

impl Exposure {
    /// Every class, narrowest first (the order of summary metrics).
    pub const EVERY: [Exposure; 5] = [
        Exposure::Loopback,
        Exposure::LinkLocal,
        Exposure::Interface,
        Exposure::Specific,
        Exposure::All,
    ];

    /// Name used in every output format (`loopback`, `link-local`, …).
    pub fn name(self) -> &'static str {
        match self {
            Exposure::Loopback => "loopback",
            Exposure::LinkLocal => "link-local",
            Exposure::Interface => "interface",
            Exposure::Specific => "specific",
            Exposure::All => "all",
        }
    }

    /// Whether something outside this host may reach the socket (everything but loopback).
    pub fn is_external(self) -> bool {
        self != Exposure::Loopback
    }

    /// Every class outside this host can reach, narrowest first (what `external` stands for).
    pub fn external() -> Vec<Exposure> {
        Exposure::EVERY
            .into_iter()
            .filter(|e| e.is_external())
            .collect()
    }
}

/// Every word that names exposure classes, in `--exposure` and in policies alike: the five
/// class names and `external` (all but loopback, the meaning of `--exposed`).
pub const WORDS: [&str; 6] = [
    "loopback",
    "link-local",
    "interface",
    "specific",
    "all",
    "external",
];

/// [`WORDS`] as clap shows them, each with what it means.
pub fn possible_values() -> Vec<clap::builder::PossibleValue> {
    use clap::ValueEnum;
    let classes = Exposure::value_variants()
        .iter()
        .filter_map(|e| e.to_possible_value());
    let external = clap::builder::PossibleValue::new(WORDS[5])
        .help("Every class but loopback: whatever something outside this host may reach");
    classes.chain([external]).collect()
}

/// The classes one word of [`WORDS`] stands for. The one parser of exposure words, so that a
/// filter accepts exactly what a policy does.
pub fn parse_word(text: &str) -> Result<Vec<Exposure>, String> {
    if text == "external" {
        return Ok(Exposure::external());
    }
    Exposure::EVERY
        .into_iter()
        .find(|e| e.name() == text)
        .map(|e| vec![e])
        .ok_or_else(|| {
            format!(
                "exposure {text:?} is not {} or {}",
                WORDS[..WORDS.len() - 1].join(", "),
                WORDS[WORDS.len() - 1]
            )
        })
}

/// Classify `socket` by its bound address and device.
///
/// Link-local wins over the device binding because the kernel binds every socket on an IPv6
/// link-local address to that address's device: "link-local" is the more telling answer.
pub fn classify(socket: &Socket) -> Exposure {
    let addr = unmapped(socket.local_addr);
    if addr.is_loopback() || bound_to_loopback_device(&socket.device) {
        Exposure::Loopback
    } else if is_link_local(addr) {
        Exposure::LinkLocal
    } else if matches!(socket.device, DeviceBinding::Device { .. }) {
        Exposure::Interface
    } else if addr.is_unspecified() {
        Exposure::All
    } else {
        Exposure::Specific
    }
}

/// The address families over which `socket` accepts traffic. A dual-stack `[::]` socket also
/// accepts IPv4, and a socket bound to an IPv4-mapped address (`::ffff:a.b.c.d`) only IPv4.
///
/// When `v6only` is unknown (the `/proc/net` source cannot read it) a `[::]` socket is taken to
/// be dual-stack, the kernel's default (`net.ipv6.bindv6only = 0`): overstating reach is the
/// safe mistake for a question about exposure.
pub fn reachable_families(socket: &Socket) -> &'static [Family] {
    const V4: &[Family] = &[Family::Ipv4];
    const V6: &[Family] = &[Family::Ipv6];
    const BOTH: &[Family] = &[Family::Ipv4, Family::Ipv6];
    match socket.local_addr {
        IpAddr::V4(_) => V4,
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => V4,
        IpAddr::V6(v6) if v6.is_unspecified() && socket.v6only != Some(true) => BOTH,
        IpAddr::V6(_) => V6,
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for; anything else unchanged.
pub fn unmapped(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn is_link_local(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// The interface index of the loopback device, the same in every network namespace: the kernel
/// registers the loopback device first in each namespace and checks that it got
/// `LOOPBACK_IFINDEX` (1); it can be neither deleted nor moved to another namespace, so no other
/// device ever has that index. Its name (`lo`) proves nothing: it can be renamed, and any
/// device can take the name.
pub const LOOPBACK_INDEX: u32 = 1;

/// Whether the socket is bound to the loopback device, known by its index.
fn bound_to_loopback_device(device: &DeviceBinding) -> bool {
    matches!(device, DeviceBinding::Device { index, .. } if *index == LOOPBACK_INDEX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn socket(addr: &str, device: DeviceBinding, v6only: Option<bool>) -> Socket {
        Socket {
            send_q: Some(128),
            v6only,
            device,
            ..Socket::listening(Protocol::Tcp, addr, 22)
        }
    }

    fn class(addr: &str) -> Exposure {
        classify(&socket(addr, DeviceBinding::Unbound, None))
    }

    fn device(name: &str) -> DeviceBinding {
        DeviceBinding::Device {
            index: if name == "lo" { LOOPBACK_INDEX } else { 7 },
            name: Some(name.into()),
        }
    }

    #[test]
    fn loopback_addresses() {
        assert_eq!(class("127.0.0.1"), Exposure::Loopback);
        assert_eq!(class("127.5.6.7"), Exposure::Loopback);
        assert_eq!(class("::1"), Exposure::Loopback);
        assert_eq!(class("::ffff:127.0.0.1"), Exposure::Loopback);
    }

    #[test]
    fn wildcard_is_all_and_one_address_is_specific() {
        assert_eq!(class("0.0.0.0"), Exposure::All);
        assert_eq!(class("::"), Exposure::All);
        assert_eq!(class("192.0.2.7"), Exposure::Specific);
        assert_eq!(class("2001:db8::7"), Exposure::Specific);
        assert_eq!(class("::ffff:192.0.2.7"), Exposure::Specific);
    }

    #[test]
    fn link_local_addresses() {
        assert_eq!(class("169.254.1.2"), Exposure::LinkLocal);
        assert_eq!(class("fe80::1"), Exposure::LinkLocal);
        assert_eq!(class("febf::1"), Exposure::LinkLocal);
        assert_eq!(class("fec0::1"), Exposure::Specific);
    }

    #[test]
    fn device_binding_narrows_the_wildcard() {
        let on_eth = socket("0.0.0.0", device("eth0"), None);
        assert_eq!(classify(&on_eth), Exposure::Interface);
        let on_lo = socket("::", device("lo"), Some(false));
        assert_eq!(classify(&on_lo), Exposure::Loopback);
        // Link-local v6 sockets are always device-bound by the kernel.
        let scoped = socket("fe80::1", device("eth0"), Some(false));
        assert_eq!(classify(&scoped), Exposure::LinkLocal);
        let unnamed = socket(
            "0.0.0.0",
            DeviceBinding::Device {
                index: 9,
                name: None,
            },
            None,
        );
        assert_eq!(classify(&unnamed), Exposure::Interface);
    }

    #[test]
    fn loopback_is_the_device_index_never_the_name() {
        let at = |index, name: Option<&str>| {
            let device = DeviceBinding::Device {
                index,
                name: name.map(Into::into),
            };
            classify(&socket("0.0.0.0", device, None))
        };
        // A veth renamed `lo` reaches another namespace: it is an interface like any other.
        assert_eq!(at(3, Some("lo")), Exposure::Interface);
        // The loopback device renamed away, or its name not resolved, is still loopback.
        assert_eq!(at(LOOPBACK_INDEX, Some("realo")), Exposure::Loopback);
        assert_eq!(at(LOOPBACK_INDEX, None), Exposure::Loopback);
    }

    #[test]
    fn an_unknown_device_leaves_the_widest_class_of_the_address() {
        let unknown = |addr| classify(&socket(addr, DeviceBinding::Unknown, None));
        assert_eq!(unknown("0.0.0.0"), Exposure::All);
        assert_eq!(unknown("192.0.2.7"), Exposure::Specific);
        assert_eq!(unknown("127.0.0.1"), Exposure::Loopback);
    }

    #[test]
    fn dual_stack_wildcard_reaches_ipv4_too() {
        let dual = socket("::", DeviceBinding::Unbound, Some(false));
        assert_eq!(reachable_families(&dual), [Family::Ipv4, Family::Ipv6]);
        let v6only = socket("::", DeviceBinding::Unbound, Some(true));
        assert_eq!(reachable_families(&v6only), [Family::Ipv6]);
        let unknown = socket("::", DeviceBinding::Unknown, None);
        assert_eq!(reachable_families(&unknown), [Family::Ipv4, Family::Ipv6]);
        let mapped = socket("::ffff:192.0.2.1", DeviceBinding::Unbound, Some(false));
        assert_eq!(reachable_families(&mapped), [Family::Ipv4]);
        let v4 = socket("0.0.0.0", DeviceBinding::Unbound, None);
        assert_eq!(reachable_families(&v4), [Family::Ipv4]);
        let specific6 = socket("2001:db8::1", DeviceBinding::Unbound, Some(false));
        assert_eq!(reachable_families(&specific6), [Family::Ipv6]);
    }

    #[test]
    fn every_word_parses_and_external_is_all_but_loopback() {
        for exposure in Exposure::EVERY {
            assert_eq!(parse_word(exposure.name()), Ok(vec![exposure]));
            assert!(WORDS.contains(&exposure.name()));
        }
        let shown: Vec<String> = possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(shown, WORDS);
        for word in WORDS {
            assert!(parse_word(word).is_ok(), "{word}");
        }
        assert_eq!(
            parse_word("external").unwrap(),
            [
                Exposure::LinkLocal,
                Exposure::Interface,
                Exposure::Specific,
                Exposure::All
            ]
        );
        let error = parse_word("public").unwrap_err();
        assert_eq!(
            error,
            "exposure \"public\" is not loopback, link-local, interface, specific, all or external"
        );
    }

    #[test]
    fn only_loopback_is_internal() {
        let external: Vec<Exposure> = Exposure::EVERY
            .into_iter()
            .filter(|e| e.is_external())
            .collect();
        assert_eq!(external.len(), 4);
        assert!(!Exposure::Loopback.is_external());
    }
}
