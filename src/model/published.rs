//! Published ports, as plain data: a port of this host that the firewall forwards to another
//! address (a DNAT or redirect rule in nat prerouting: Docker's `-p 8080:80`), or that a
//! `docker-proxy` process relays, with the listener it lands on when lsports can see it.
//! Found by `enrich::published`, shown as rows of their own by every renderer.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Family, Netns, Protocol};
use crate::model::labels::Labels;

/// The flag of a published port whose target's namespace listens on nothing there.
pub const WITHOUT_LISTENER: &str = "published-without-listener";

/// How lsports learned of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PublishedKind {
    /// A `dnat` (or `-j DNAT`) rule reached from a nat prerouting chain.
    Dnat,
    /// A `redirect` (or `-j REDIRECT`) rule: to a port of this host.
    Redirect,
    /// A `docker-proxy` process's arguments.
    DockerProxy,
}

impl PublishedKind {
    /// Name used in every output (`dnat`, `redirect`, `docker-proxy`).
    pub fn name(self) -> &'static str {
        match self {
            PublishedKind::Dnat => "dnat",
            PublishedKind::Redirect => "redirect",
            PublishedKind::DockerProxy => "docker-proxy",
        }
    }
}

/// One thing that publishes the port: a rule, or a proxy process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedBy {
    /// Which kind of thing.
    pub kind: PublishedKind,
    /// For a rule, its text as the ruleset's reader names it (`iptables-legacy ip table nat
    /// chain DOCKER rule 2: -A DOCKER …`); for a proxy, `docker-proxy pid N`. Raw: a rule
    /// comment can hold any character, so a terminal renderer escapes it.
    pub text: String,
    /// The proxy's process id.
    pub pid: Option<u32>,
}

/// The listener a published port lands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedListener {
    /// Its network namespace.
    pub netns: Option<Arc<Netns>>,
    /// Its local address (the target, or a wildcard).
    pub addr: IpAddr,
    /// Its port.
    pub port: u16,
    /// Its socket inode.
    pub inode: u64,
    /// Its unit and container, when labels were read.
    pub labels: Option<Arc<Labels>>,
}

/// Whether the target of a published port has a listener, as far as lsports can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// This listener serves it.
    Listener(PublishedListener),
    /// The target's network namespace was seen, and nothing in it listens on the target
    /// address and port: the published port leads nowhere (flagged).
    NoListener {
        /// The namespace that owns the target address.
        netns: Option<Arc<Netns>>,
    },
    /// No namespace lsports looked in owns the target address (without `--netns all` only
    /// the host's is looked in), so whether something listens there is not known.
    NotSeen,
}

/// The reach verdict of a published port, as plain text: `open`, `filtered`, `unknown`, …
/// and what decided it (see `enrich::reach::Reach`, which the model cannot name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedReach {
    /// The verdict's name.
    pub verdict: &'static str,
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    /// The rule (or reason) that decided it; raw, like [`PublishedBy::text`].
    pub by: String,
    /// Conditions of a `restricted` verdict.
    pub conditions: Vec<String>,
}

/// One published port: `proto host_addr:host_port → target_addr:target_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The protocol.
    pub protocol: Protocol,
    /// The address family.
    pub family: Family,
    /// The network namespace it is published in (where the rules are read, or the proxy
    /// runs): what the host side `host_addr:host_port` belongs to. `None` where unknown.
    pub netns: Option<Arc<Netns>>,
    /// The host address it is published on; the unspecified address for every address of
    /// the host.
    pub host_addr: IpAddr,
    /// The host port.
    pub host_port: u16,
    /// Where it goes; `None` for this host (a redirect).
    pub target_addr: Option<IpAddr>,
    /// The port it goes to.
    pub target_port: u16,
    /// What publishes it: the rules and proxies that agree on this mapping.
    pub by: Vec<PublishedBy>,
    /// Where it lands.
    pub landing: Landing,
    /// Whether a packet from outside gets through to it (one per family), when asked.
    pub reach: Vec<PublishedReach>,
}

impl Published {
    /// The container whose listener serves it, if known.
    pub fn container(&self) -> Option<&super::labels::Container> {
        match &self.landing {
            Landing::Listener(l) => l.labels.as_deref()?.container.as_ref(),
            _ => None,
        }
    }

    /// Whether it is flagged [`WITHOUT_LISTENER`].
    pub fn without_listener(&self) -> bool {
        matches!(self.landing, Landing::NoListener { .. })
    }
}
