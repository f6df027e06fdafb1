//! A listener's reach through its host's firewall, as every stage after enrich sees it: the
//! [`Verdict`] for one address family, the rule that decided it, and the conditions under
//! which a packet gets through. Filled by `enrich::reach`; empty when nothing asked for it.

use super::Family;

/// Whether a new inbound connection from outside reaches a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Accepted, whatever its source.
    Open,
    /// Accepted only under the named [`Reach::conditions`] (source addresses or sets, input
    /// interfaces, destination addresses, rate limits, source ports).
    Restricted,
    /// Dropped: the sender sees a timeout.
    Filtered,
    /// Rejected: the sender sees a TCP reset or an ICMP error.
    Rejected,
    /// Bound to loopback: unreachable from outside whatever the rules.
    Local,
    /// A rule lsports cannot evaluate statically decides it, or the rules could not be read;
    /// [`Reach::by`] names which.
    Unknown,
}

impl Verdict {
    /// Every verdict, in the order of the enum.
    pub const EVERY: [Verdict; 6] = [
        Verdict::Open,
        Verdict::Restricted,
        Verdict::Filtered,
        Verdict::Rejected,
        Verdict::Local,
        Verdict::Unknown,
    ];

    /// The verdict named `name` (as [`Verdict::name`] writes it).
    pub fn from_name(name: &str) -> Option<Verdict> {
        Verdict::EVERY.into_iter().find(|v| v.name() == name)
    }

    /// Name used in every output format (`open`, `restricted`, …).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Open => "open",
            Verdict::Restricted => "restricted",
            Verdict::Filtered => "filtered",
            Verdict::Rejected => "rejected",
            Verdict::Local => "local",
            Verdict::Unknown => "unknown",
        }
    }

    /// Whether some packet from outside can get through (`open` or `restricted`).
    pub fn is_reachable(self) -> bool {
        matches!(self, Verdict::Open | Verdict::Restricted)
    }
}

/// The verdict for one address family, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The verdict.
    pub verdict: Verdict,
    /// The address family the packet was evaluated for.
    pub family: Family,
    /// What decided it: a rule (`table inet filter chain input handle 7: tcp dport 22
    /// accept`), a chain policy, "no ruleset", or the reason the rules are unknown. Raw text
    /// from the ruleset (an iptables comment can hold any character): a terminal renderer
    /// passes it through `text::sanitize::terminal_safe_text`.
    pub by: String,
    /// For `restricted`: the alternative conditions under which the packet is accepted, each
    /// a conjunction in nft syntax (`ip saddr 192.0.2.0/24`, `iifname "eth0"`); for a
    /// `filtered` that some packets see rejected, those conditions prefixed `rejected if`.
    pub conditions: Vec<String>,
}

impl Reach {
    /// A reach with no conditions.
    pub fn new(verdict: Verdict, family: Family, by: impl Into<String>) -> Reach {
        Reach {
            verdict,
            family,
            by: by.into(),
            conditions: Vec::new(),
        }
    }
}
