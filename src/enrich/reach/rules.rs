//! The compiled ruleset: what both readers (nft's JSON, iptables-save) turn rules into, and
//! the only thing the evaluator reads. Everything the evaluator cannot decide statically is
//! kept as a [`Match::Cond`] or [`Match::Unknown`] carrying the rule text, never dropped.

use std::net::IpAddr;
use std::sync::Arc;

use super::ranges::RangeSet;
use crate::model::Family;

/// The hooks a packet for this host passes, in the kernel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    /// `ingress` (netdev or inet tables), before prerouting.
    Ingress,
    /// `prerouting`: raw, conntrack, mangle, dstnat.
    Prerouting,
    /// `input`: after the routing decision delivered the packet to this host.
    Input,
    /// `forward`: after the routing decision sent the packet on to another host (a DNAT to
    /// a container). Only a packet whose DNAT the question follows passes it (see
    /// `Ruleset::verdict_following`); a listener's packet never does.
    Forward,
}

impl Hook {
    /// nft's name for the hook.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
        }
    }
}

/// Which packets a table sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFamily {
    /// `ip` (and iptables): IPv4 only.
    Ip,
    /// `ip6` (and ip6tables): IPv6 only.
    Ip6,
    /// `inet` and `netdev`: both.
    Both,
}

impl TableFamily {
    /// Whether a packet of `family` passes this table's chains.
    pub fn sees(self, family: Family) -> bool {
        match self {
            TableFamily::Ip => family == Family::Ipv4,
            TableFamily::Ip6 => family == Family::Ipv6,
            TableFamily::Both => true,
        }
    }
}

/// What makes a chain a base chain: where it hooks and what it does at its end.
#[derive(Debug, Clone)]
pub struct Base {
    /// The hook.
    pub hook: Hook,
    /// Priority: lower runs first.
    pub prio: i32,
    /// Whether the policy is drop (else accept).
    pub policy_drop: bool,
    /// A `nat` chain: only the first packet of a connection passes it.
    pub nat: bool,
    /// For an ingress chain, the device it is attached to.
    pub device: Option<String>,
    /// The chain's handle in its table (nft numbers a table's chains in the order they were
    /// made; 0 for iptables-legacy): of two chains of one table on one hook and priority,
    /// the higher handle was registered last, and so runs first (see `order`).
    pub handle: u64,
    /// Which table the chain is in (its position in the merged list, set by `load::merge`).
    pub table: usize,
}

/// One chain of one table.
#[derive(Debug, Clone)]
pub struct Chain {
    /// `table FAMILY NAME chain NAME` (or `iptables table filter chain INPUT`), for `by`.
    pub label: String,
    /// Which packets the table sees.
    pub family: TableFamily,
    /// Set for a base chain.
    pub base: Option<Base>,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Which rules may match which destination port (built by `Ruleset::from_chains`).
    pub index: super::index::PortIndex,
}

/// One rule: steps evaluated in order until a match fails or a verdict ends it.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The steps.
    pub steps: Vec<Step>,
    /// `LABEL handle N: TEXT`: what a verdict decided by this rule names.
    pub by: Arc<str>,
}

/// One step of a rule.
#[derive(Debug, Clone)]
pub enum Step {
    /// A match: the rule goes on only where it holds.
    Match(Match),
    /// A statement that changes the packet or its connection.
    Effect(Effect),
    /// A verdict: the rule ends here.
    Verdict(Action),
}

/// Packet fields with numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `meta l4proto` / `ip protocol` / `ip6 nexthdr`: the protocol number.
    L4proto,
    /// `meta nfproto`: 2 (IPv4) or 10 (IPv6).
    Nfproto,
    /// The destination port of `tcp`, `udp` or (`None`) any transport header (`th`).
    Dport(Option<u8>),
    /// The source address of a family (`ip saddr`, `ip6 saddr`): free unless given.
    Saddr(Family),
    /// The destination address of a family: free unless given.
    Daddr(Family),
    /// `meta mark`.
    Mark,
    /// `fib daddr type`: the route type of the destination (2 = local).
    FibDaddrType,
}

/// Conntrack bits (`ct state`, `ct status`) as the kernel numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitsField {
    /// `ct state`: invalid 1, established 2, related 4, new 8, untracked 64.
    CtState,
    /// `ct status`: dnat 32 (among others).
    CtStatus,
}

/// What a condition that cannot be decided from the packet is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CondKind {
    /// A rate limit, quota or meter: holds for some packets and not others.
    Limit,
    /// The source port (chosen by the sender).
    Sport,
    /// The source address in a named set whose contents change at run time (a dynamic or
    /// timeout set, one a rule adds to, an empty one a daemon fills: fail2ban, crowdsec):
    /// holds for some sources and not others, whatever it holds now.
    Source,
    /// A match lsports does not evaluate: the verdict is `unknown` if it matters.
    Unknown,
}

/// One match.
#[derive(Debug, Clone)]
pub enum Match {
    /// Decided when the rules were read (`fib daddr type local` for a packet to this host).
    Const(bool),
    /// The field's value is (or with `neg`, is not) in the set.
    Values {
        /// The field.
        field: Field,
        /// The values.
        set: RangeSet,
        /// `!=`.
        neg: bool,
    },
    /// The field has (or with `neg`, has none of) the bits of `mask`.
    Bits {
        /// The field.
        field: BitsField,
        /// The bits.
        mask: u32,
        /// `!=`.
        neg: bool,
    },
    /// The input interface's name is one of these (a trailing `*` or `+` is a wildcard).
    Iface {
        /// The names.
        names: Vec<String>,
        /// `!=`.
        neg: bool,
    },
    /// `tcp flags`: `(flags & mask) == value`, or with `any`, `flags & value != 0` (`tcp flags
    /// syn`); `neg` negates. A TCP packet only.
    TcpFlags {
        /// The bits compared.
        mask: u8,
        /// The bits they must equal (or, with `any`, of which one must be set).
        value: u8,
        /// Any of `value`'s bits, rather than equality under `mask`.
        any: bool,
        /// Negated.
        neg: bool,
        /// The rule text, for a packet whose flags do not decide it.
        text: Arc<str>,
    },
    /// A condition on something the packet does not fix, named by its rule text.
    Cond {
        /// What it is about.
        kind: CondKind,
        /// nft (or iptables) text of the condition.
        text: Arc<str>,
    },
    /// Any of these conjunctions holds (the elements of a set of concatenations).
    Any(Vec<Vec<Match>>),
    /// The output interface's name is one of these (a trailing `*` is a wildcard): only a
    /// forwarded packet has one.
    Oif {
        /// The names.
        names: Vec<String>,
        /// `!=`.
        neg: bool,
    },
}

/// A statement that changes what later rules see.
#[derive(Debug, Clone)]
pub enum Effect {
    /// `meta mark set N`.
    SetMark(u32),
    /// `notrack`: the connection is untracked (`ct state untracked`).
    Notrack,
}

/// A verdict.
#[derive(Debug, Clone)]
pub enum Action {
    /// Accept: on to the next base chain.
    Accept,
    /// Drop.
    Drop,
    /// Reject (TCP reset or ICMP error).
    Reject,
    /// Back to the calling chain (or the policy).
    Return,
    /// Into a chain, and back.
    Jump(usize),
    /// Into a chain, not back.
    Goto(usize),
    /// A verdict map: the first element whose matches hold decides; none: the rule ends.
    Choice(Vec<(Vec<Match>, Action)>),
    /// `dnat`: to another address (and port).
    Dnat {
        /// New destination address; `None` keeps it.
        addr: Option<IpAddr>,
        /// New destination port; `None` keeps it.
        port: Option<u16>,
    },
    /// `redirect`: to this host (and port).
    Redirect {
        /// New destination port; `None` keeps it.
        port: Option<u16>,
    },
    /// A verdict lsports does not follow (`queue`, a jump to a missing chain, …).
    Unknown(Arc<str>),
}

/// The chains of one table (nftables, or one `*table` of iptables-save).
#[derive(Debug)]
pub struct Table {
    /// `ip`, `ip6`, `inet`, `netdev`.
    pub family: String,
    /// The table's name.
    pub name: String,
    /// Whether a rule holds an `xt` expression: an iptables-nft rule whose match or target
    /// nft's JSON does not describe (`iptables-nft-save` does).
    pub has_xt: bool,
    /// Its chains; jump targets index this list.
    pub chains: Vec<Chain>,
}
