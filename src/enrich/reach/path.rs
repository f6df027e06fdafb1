//! One path of the evaluation: what is known about the packet on it. The packet's fixed
//! fields (protocol, port, conntrack state, mark) are values; what the question leaves open
//! (the source address, the destination among this host's addresses, the input interface,
//! rate limits) is a constraint that each match narrows, so a path where a rule matched and
//! one where it did not are both followed, and a path whose constraints contradict each other
//! is dropped.

use std::sync::Arc;

use super::ranges::{RangeSet, addr_max, addr_num, describe_addrs};
use super::rules::{BitsField, CondKind, Field};
use super::verdict::Packet;
use crate::model::{Family, Protocol};

/// `ct state invalid`: what `ct state` reads before conntrack has seen the packet.
pub const CT_INVALID: u32 = 1;
/// `ct state established`: the handshake's second packet from the client (its ACK).
pub const CT_ESTABLISHED: u32 = 2;
/// `ct status confirmed` and `seen-reply`, which an established connection has.
pub const CT_STATUS_ESTABLISHED: u32 = 8 | 2;
/// `ct state new`, the state of the first packet of a connection.
pub const CT_NEW: u32 = 8;
/// The priority of the conntrack hook in prerouting: chains before it see no connection.
pub const CONNTRACK_PRIO: i32 = -200;
/// The priority of the nat hook in prerouting, where conntrack applies a connection's DNAT.
pub const DSTNAT_PRIO: i32 = -100;
/// `ct state untracked`, after `notrack`.
pub const CT_UNTRACKED: u32 = 64;
/// `ct status dnat`.
pub const CT_STATUS_DNAT: u32 = 32;
/// `fib daddr type local`: the packet is addressed to this host.
pub const RTN_LOCAL: u128 = 2;

/// What is known about the packet on one path.
#[derive(Debug, Clone)]
pub struct Path {
    /// Address family.
    pub family: Family,
    /// Protocol number.
    pub proto: u8,
    /// Destination port (changed by a redirect).
    pub dport: u16,
    /// `meta mark`.
    pub mark: u32,
    /// `ct state` bit (set as each base chain is entered, see [`Path::enter`]).
    pub ct_state: u32,
    /// Whether this is the client's ACK completing a TCP handshake (`ct state established`).
    pub established: bool,
    /// Whether `notrack` ran before conntrack: the connection is untracked.
    pub untracked: bool,
    /// Whether the chain being evaluated runs before conntrack.
    pub before_conntrack: bool,
    /// `ct status` bits.
    pub ct_status: u32,
    /// Source addresses still possible.
    pub saddr: RangeSet,
    /// Destination addresses still possible.
    pub daddr: RangeSet,
    /// Input interface: its name when the question fixed it.
    pub iif: Option<String>,
    /// Name sets the interface must be in (each an alternative of names or `prefix*`).
    pub iif_in: Vec<Vec<String>>,
    /// Names (or `prefix*`) the interface is not.
    pub iif_not: Vec<String>,
    /// Opaque conditions taken on this path: (kind, text, held).
    pub conds: Vec<(CondKind, Arc<str>, bool)>,
    /// The first rule that accepted the packet on this path.
    pub accepted_by: Option<Arc<str>>,
    /// Set by a followed DNAT to another host (see `Eval::following`): the packet goes on to
    /// the forward hook, not input.
    pub forwarded: bool,
    /// Set by a followed DNAT or redirect, to another host or this one: this path is the
    /// published port's own packet (the verdict names what it met first).
    pub followed: bool,
    /// The output interface of a forwarded packet, when known.
    pub oif: Option<String>,
    /// The destination before a followed DNAT, which the chains before NAT see.
    pub before_nat: Option<(RangeSet, u16)>,
    /// For the handshake's ACK of a DNAT-ed connection: the destination conntrack rewrites it
    /// to when it reaches the NAT priority (nat chains themselves see established packets no
    /// more).
    pub nat_pending: Option<(RangeSet, u16)>,
    /// The policy of the last base chain this path passed (what accepted it, when no rule
    /// did).
    pub last_policy: Option<Arc<str>>,
}

impl Path {
    /// The path a question starts with: the packet from outside, not on loopback.
    pub fn start(packet: &Packet, established: bool) -> Path {
        // (`established` only for tests of a lone ACK; see `handshake_ack`.)
        let full = RangeSet::upto(addr_max(packet.family));
        let fixed =
            |a: Option<std::net::IpAddr>| a.map_or(full.clone(), |a| RangeSet::point(addr_num(a)));
        Path {
            family: packet.family,
            proto: match packet.proto {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
            },
            dport: packet.dport,
            mark: 0,
            ct_state: CT_NEW,
            untracked: false,
            before_conntrack: false,
            ct_status: if established {
                CT_STATUS_ESTABLISHED
            } else {
                0
            },
            established,
            saddr: fixed(packet.saddr),
            daddr: fixed(packet.daddr),
            iif: packet.iif.clone(),
            iif_in: Vec::new(),
            iif_not: vec!["lo".to_string()],
            conds: Vec::new(),
            accepted_by: None,
            forwarded: false,
            followed: false,
            oif: None,
            before_nat: None,
            nat_pending: None,
            last_policy: None,
        }
    }

    /// The client's ACK completing the handshake this SYN path began: the same source,
    /// destination, interface and conditions; the connection now established.
    pub fn handshake_ack(&self) -> Path {
        let mut ack = Path {
            mark: 0,
            ct_status: CT_STATUS_ESTABLISHED | (self.ct_status & CT_STATUS_DNAT),
            established: true,
            untracked: self.untracked,
            accepted_by: None,
            last_policy: None,
            ..self.clone()
        };
        // The ACK arrives with the original destination; conntrack rewrites it at the NAT
        // priority, as it did the SYN.
        if let Some((daddr, dport)) = ack.before_nat.take() {
            let translated = (std::mem::replace(&mut ack.daddr, daddr), ack.dport);
            ack.dport = dport;
            ack.nat_pending = Some(translated);
        }
        ack
    }

    /// Enter a base chain on `hook` at `prio`: before conntrack (ingress, or prerouting below
    /// its priority) `ct state` reads invalid; after it, new (or untracked after `notrack`).
    pub fn enter(&mut self, hook: super::rules::Hook, prio: i32) {
        use super::rules::Hook;
        if hook != Hook::Prerouting || prio >= DSTNAT_PRIO {
            if let Some((daddr, dport)) = self.nat_pending.take() {
                self.daddr = daddr;
                self.dport = dport;
            }
        }
        self.before_conntrack =
            hook == Hook::Ingress || (hook == Hook::Prerouting && prio < CONNTRACK_PRIO);
        self.ct_state = match (self.untracked, self.before_conntrack) {
            (true, _) => CT_UNTRACKED,
            (false, true) => CT_INVALID,
            (false, false) if self.established => CT_ESTABLISHED,
            (false, false) => CT_NEW,
        };
    }

    /// `notrack`: takes effect only before conntrack has attached a connection.
    pub fn notrack(&mut self) {
        if self.before_conntrack {
            self.untracked = true;
            self.ct_state = CT_UNTRACKED;
        }
    }

    /// The value of a concrete field; `None` when the packet has no such field (a `tcp dport`
    /// on a UDP packet), which no match on it satisfies, negated or not.
    pub fn value(&self, field: Field) -> Option<u128> {
        match field {
            Field::L4proto => Some(self.proto.into()),
            Field::Nfproto => Some(match self.family {
                Family::Ipv4 => 2,
                Family::Ipv6 => 10,
            }),
            Field::Dport(Some(p)) if p != self.proto => None,
            Field::Dport(_) => Some(self.dport.into()),
            Field::Mark => Some(self.mark.into()),
            Field::FibDaddrType => Some(RTN_LOCAL),
            Field::Saddr(_) | Field::Daddr(_) => None,
        }
    }

    /// The TCP flags of this path's packet, and the bits of them the question leaves open;
    /// `None` for a packet without a TCP header. The first packet of a connection is a SYN
    /// (ECE and CWR set when the client asks for ECN); the handshake's last is an ACK (PSH,
    /// ECE or CWR possibly set on what follows it).
    pub fn tcp_flags(&self) -> Option<(u8, u8)> {
        const SYN: u8 = 0x02;
        const PSH: u8 = 0x08;
        const ACK: u8 = 0x10;
        const ECE_CWR: u8 = 0xc0;
        (self.proto == 6).then_some(match self.established {
            false => (SYN, ECE_CWR),
            true => (ACK, PSH | ECE_CWR),
        })
    }

    /// Whether a `tcp flags` match holds for this path's packet: `None` where the flags the
    /// question leaves open decide it.
    pub fn tcp_flags_match(&self, mask: u8, value: u8, any: bool, neg: bool) -> Option<bool> {
        let Some((flags, open)) = self.tcp_flags() else {
            // No TCP header: no flags match, negated or not.
            return Some(false);
        };
        let known = !open;
        let holds = if any {
            if flags & value & known != 0 {
                Some(true)
            } else if value & open == 0 {
                Some(false)
            } else {
                None
            }
        } else if (flags & mask & known) != (value & mask & known) {
            Some(false)
        } else if mask & open == 0 {
            Some(true)
        } else {
            None
        };
        holds.map(|h| h != neg)
    }

    /// The bits of a conntrack field.
    pub fn bits(&self, field: BitsField) -> u32 {
        match field {
            BitsField::CtState => self.ct_state,
            BitsField::CtStatus => self.ct_status,
        }
    }

    /// Whether some interface name satisfies the interface constraints.
    pub fn iif_possible(&self) -> bool {
        let fits = |name: &str| {
            self.iif_in
                .iter()
                .all(|set| set.iter().any(|p| name_matches(p, name)))
                && !self.iif_not.iter().any(|p| name_matches(p, name))
        };
        if let Some(name) = &self.iif {
            return fits(name);
        }
        // A witness is either a name the constraints mention, or a fresh name under one of
        // their wildcards, or (no positive constraint) a name nobody mentions.
        let mut candidates: Vec<String> = vec!["\u{7f}lsports-any".to_string()];
        for p in self.iif_in.iter().flatten() {
            match p.strip_suffix('*') {
                Some(prefix) => candidates.push(format!("{prefix}\u{7f}")),
                None => candidates.push(p.clone()),
            }
        }
        candidates.iter().any(|c| fits(c))
    }

    /// Whether the opaque conditions do not contradict each other (the same condition both
    /// held and not held).
    pub fn conds_possible(&self) -> bool {
        let last = self.conds.last();
        last.is_none_or(|(_, text, held)| {
            !self.conds.iter().any(|(_, t, h)| t == text && h != held)
        })
    }

    /// The conditions this path holds under, in nft syntax, compared with `start`.
    pub fn describe(&self, start: &Path) -> String {
        let mut parts = Vec::new();
        let ip = if self.family == Family::Ipv4 {
            "ip"
        } else {
            "ip6"
        };
        for (name, now, was) in [
            ("saddr", &self.saddr, &start.saddr),
            ("daddr", &self.daddr, &start.daddr),
        ] {
            if now != was {
                let excluded = was.subtract(now);
                if excluded.ranges().len() < now.ranges().len() {
                    parts.push(format!(
                        "{ip} {name} != {}",
                        describe_addrs(self.family, &excluded, 8)
                    ));
                } else {
                    parts.push(format!(
                        "{ip} {name} {}",
                        describe_addrs(self.family, now, 8)
                    ));
                }
            }
        }
        for set in &self.iif_in {
            parts.push(format!("iifname {}", quoted_names(set)));
        }
        let mut not: Vec<String> = Vec::new();
        for n in &self.iif_not {
            if !start.iif_not.contains(n) && !not.contains(n) {
                not.push(n.clone());
            }
        }
        if !not.is_empty() {
            parts.push(format!("iifname != {}", quoted_names(&not)));
        }
        for (_, text, held) in &self.conds {
            parts.push(if *held {
                text.to_string()
            } else {
                format!("not ({text})")
            });
        }
        parts.join(" ")
    }
}

/// Whether interface name `name` matches `pattern` (`eth0`, or `eth*` for a prefix).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// `"eth0"` or `{ "eth0", "eth1" }`.
fn quoted_names(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    if q.len() == 1 {
        q[0].clone()
    } else {
        format!("{{ {} }}", q.join(", "))
    }
}
