//! What the evaluator answers: a [`Verdict`] for one address family of a listener, with the
//! rule that decided it ([`Reach::by`]) and, for `restricted` (and a mixed `filtered`), the
//! conditions under which the packet is accepted (or rejected).

use std::net::IpAddr;

pub use crate::model::reach::{Reach, Verdict};
use crate::model::{Family, Protocol};

/// The packet whose fate is asked: the first packet of a new connection (a TCP SYN or a UDP
/// datagram) arriving on a non-loopback interface, addressed to this host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Address family.
    pub family: Family,
    /// Transport protocol.
    pub proto: Protocol,
    /// Source address; `None` for any (matches on it become conditions).
    pub saddr: Option<IpAddr>,
    /// Destination address, one of this host's; `None` for any (a wildcard listener).
    pub daddr: Option<IpAddr>,
    /// Destination port.
    pub dport: u16,
    /// Input interface name; `None` for any non-loopback interface.
    pub iif: Option<String>,
}

impl Packet {
    /// A packet from anywhere to any address of this host, on any interface.
    pub fn any(family: Family, proto: Protocol, dport: u16) -> Packet {
        Packet {
            family,
            proto,
            saddr: None,
            daddr: None,
            dport,
            iif: None,
        }
    }
}
