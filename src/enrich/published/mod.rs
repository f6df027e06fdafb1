//! Published ports (`--published`): ports of this host that lead somewhere else — a DNAT or
//! redirect in nat prerouting ([`crate::enrich::reach::published`]), or a `docker-proxy`
//! process ([`proxy`]) — each joined to the listener it lands on when lsports can see that
//! listener's namespace ([`owners`]), and given the reach verdict of its host side.
//!
//! ```text
//! nft / iptables-save ─▶ nat prerouting dnat, redirect ─┐
//! /proc/PID/cmdline of docker-proxy ────────────────────┴▶ mappings ─▶ land (listing's
//!                                                          listeners, per namespace) ─▶ reach
//! ```
//!
//! The namespaces looked in are those the listing was collected in: the host's alone unless
//! `--netns all`, so a container's listener is found only then; otherwise its published port
//! is "not seen", never "without listener". The rules read are those of the same namespaces
//! (`--netns X`: X's; `--netns all`: every one's), each by a thread that entered it, as reach
//! reads them; a namespace whose rules could not be read is said on stderr. A published port is flagged
//! `published-without-listener` only when the namespace owning the target was looked in and
//! nothing there listens on the target.

pub mod owners;
pub mod proxy;
pub mod routes;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::NetnsChoice;
use crate::enrich::reach::published::Target;
use crate::enrich::reach::{self, Reach, Ruleset};
use crate::filter::Filter;
use crate::model::published::{Published, PublishedReach};
use crate::model::{Entry, Family, Netns, Protocol};
use crate::source::netns;
use crate::sys::procroot::ProcRoot;

/// The published ports of a listing, and what could not be read.
#[derive(Debug, Default)]
pub struct Found {
    /// The published ports, rules first (in rule order), then proxies not already a rule's.
    pub ports: Vec<Published>,
    /// What went wrong finding them (unreadable rules, a docker-proxy whose arguments are
    /// not a mapping): each one line, terminal-safe, for stderr.
    pub warnings: Vec<String>,
}

/// Another namespace's rules, read by a thread that entered it (the pipeline's
/// `firewalls::Rules::elsewhere`), or why it could not be entered.
pub type Elsewhere<'a> =
    &'a (dyn Fn(u64) -> Result<Result<Arc<Ruleset>, reach::LoadError>, String> + Sync);

/// Where published ports are read from.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The proc root (processes, namespaces' addresses).
    pub proc_root: &'a Path,
    /// The namespaces the listing was collected in.
    pub netns: &'a NetnsChoice,
    /// This namespace's firewall rules, as read once for the run (reach reads the same).
    pub rules: &'a Result<Arc<Ruleset>, reach::LoadError>,
    /// The rules of another namespace listed (`--netns X`, `--netns all`).
    pub elsewhere: Elsewhere<'a>,
    /// The tables collected (`-t`, `-u`, `-4`, `-6`): a published port of another protocol
    /// or family is not listed.
    pub tables: &'a [(Protocol, Family)],
    /// The listing's filters: `--port` selects published ports by their host port; any
    /// filter that narrows the listeners means a target's listener may have been left out.
    pub filter: &'a Filter,
}

/// The published ports, joined to `entries` (the listing, labelled), with their reach.
pub fn find(entries: &[Entry], sources: Sources<'_>) -> Found {
    let mut found = Found::default();
    let root = ProcRoot::open(sources.proc_root).ok();
    let discovery = root.as_ref().and_then(|root| netns::discover(root).ok());
    let current = discovery.as_ref().and_then(|d| d.current);
    let mut rulesets: Vec<(Option<u64>, Arc<Ruleset>)> = Vec::new();
    let mut ports = Vec::new();
    for (inode, read) in rules_listed(sources, discovery.as_ref(), current) {
        let ns = inode.map(|inode| namespace(inode, discovery.as_ref(), entries));
        let where_ = match (&ns, inode == current) {
            // A mount name is anyone's bytes: escaped, as every warning's text.
            (Some(ns), false) => format!(
                " of netns {}",
                crate::text::sanitize::terminal_safe(&ns.label())
            ),
            _ => String::new(),
        };
        let ruleset = match read {
            Ok(Ok(ruleset)) => ruleset,
            Ok(Err(error)) => {
                found.warnings.push(format!(
                    "published ports from firewall rules{where_}: {}",
                    crate::text::sanitize::terminal_safe(error.to_string().as_bytes())
                ));
                Arc::new(Ruleset::unavailable(&error))
            }
            Err(why) => {
                found.warnings.push(format!(
                    "published ports from firewall rules{where_}: not read: {}",
                    crate::text::sanitize::terminal_safe(why.as_bytes())
                ));
                continue;
            }
        };
        for mut port in reach::published::from_rules(&ruleset) {
            port.netns = ns.clone();
            if selected(&port, sources) {
                ports.push(port);
            }
        }
        rulesets.push((inode, ruleset));
    }
    if let Some(root) = &root {
        for mut proxied in proxy::scan(root, &mut found.warnings) {
            let pid = proxied.by.iter().find_map(|b| b.pid);
            let inode = pid.and_then(|pid| root.process_link(pid, "ns/net").ok());
            let inode = inode.and_then(|link| netns::mountinfo::net_inode(&link));
            proxied.netns = inode.map(|inode| namespace(inode, discovery.as_ref(), entries));
            if selected(&proxied, sources) {
                reach::published::add(&mut ports, proxied);
            }
        }
    }
    let owners = match (&root, &discovery) {
        (Some(root), Some(discovery)) => looked_in(root, discovery, sources.netns, entries),
        _ => Vec::new(),
    };
    // The address and route files of each namespace ports are published in, read once each
    // however many ports it publishes (Docker publishes dozens in one).
    let mut net_files: HashMap<(Option<u64>, &'static str), Option<Vec<u8>>> = HashMap::new();
    for port in &mut ports {
        let can_flag = complete(port, sources);
        let inode = port.netns.as_ref().map(|ns| ns.inode).or(current);
        port.landing = owners::land(port, &owners, inode, entries, can_flag);
        // The addresses and routes of the namespace the port is published in.
        let dir = match inode == current {
            true => Some("thread-self".to_string()),
            false => (discovery.as_ref())
                .and_then(|d| d.get(inode?))
                .and_then(|ns| ns.pids.first())
                .map(|pid| pid.to_string()),
        };
        let mut read = |name: &'static str| {
            let file = net_files.entry((inode, name)).or_insert_with(|| {
                let path = format!("{}/net/{name}", dir.as_ref()?);
                root.as_ref()?.read_file(&path).ok()
            });
            file.clone()
        };
        let target = target_of(port.target_addr, &mut read);
        let ruleset = (rulesets.iter())
            .find(|(i, _)| *i == inode)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| {
                Arc::new(Ruleset::fixed_unknown(
                    "the rules of its namespace were not read".into(),
                ))
            });
        port.reach = vec![wire_reach(reach::published::reach(&ruleset, port, target))];
    }
    found.ports = ports;
    found
}

/// Where a published port's `target_addr` is, from its namespace's files (`read` by name
/// under `net/`): this host when it is one of the namespace's own addresses (`fib_trie`'s
/// `/32 host LOCAL`, `if_inet6`) or loopback, so the kernel delivers the DNAT-ed packet
/// through input; else another host, routed out through the interface `route` or
/// `ipv6_route` names. A redirect (no address) is this host.
fn target_of(
    target: Option<IpAddr>,
    read: &mut impl FnMut(&'static str) -> Option<Vec<u8>>,
) -> Target {
    let Some(addr) = target else {
        return Target::Local;
    };
    let oif = read("route")
        .and_then(|route| routes::oif(addr, &route, &read("ipv6_route").unwrap_or_default()));
    let local = read("fib_trie").map(|fib_trie| {
        let v6 = owners::local_v6(&read("if_inet6").unwrap_or_default());
        addr.is_loopback() || owners::local_v4(&fib_trie).contains(&addr) || v6.contains(&addr)
    });
    match local {
        Some(true) => Target::Local,
        Some(false) => Target::Elsewhere(oif),
        None => Target::Unknown(oif),
    }
}

/// The namespaces whose rules are read (those the listing lists: the current one, the one
/// chosen, or every one), each with its rules or why they could not be read.
#[allow(clippy::type_complexity)]
fn rules_listed(
    sources: Sources<'_>,
    discovery: Option<&netns::Discovery>,
    current: Option<u64>,
) -> Vec<(
    Option<u64>,
    Result<Result<Arc<Ruleset>, reach::LoadError>, String>,
)> {
    let inodes: Vec<Option<u64>> = match sources.netns {
        NetnsChoice::Current => vec![current],
        NetnsChoice::All => match discovery {
            Some(d) => {
                let mut all: Vec<Option<u64>> = vec![current];
                all.extend(
                    (d.namespaces.iter())
                        .map(|ns| Some(ns.inode))
                        .filter(|&i| i != current),
                );
                all
            }
            None => {
                return vec![(
                    current,
                    Err("the other namespaces cannot be listed".to_string()),
                )];
            }
        },
        chosen => match netns::collect::chosen_namespace(sources.proc_root, chosen) {
            Some(Ok(ns)) => vec![Some(ns.inode)],
            Some(Err(why)) => return vec![(None, Err(why))],
            None => vec![current],
        },
    };
    // Other namespaces are read in parallel, a few at a time (each runs nft).
    let mut out = Vec::new();
    for chunk in inodes.chunks(8) {
        let read: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (chunk.iter())
                .map(|&inode| {
                    scope.spawn(move || match inode {
                        Some(i) if Some(i) != current => (sources.elsewhere)(i),
                        _ => Ok(sources.rules.clone()),
                    })
                })
                .collect();
            (handles.into_iter())
                .map(|h| h.join().unwrap_or_else(|_| Err("its reader failed".into())))
                .collect()
        });
        out.extend(chunk.iter().copied().zip(read));
    }
    out
}

/// Whether the listing's tables and `--port` keep this published port.
fn selected(port: &Published, sources: Sources<'_>) -> bool {
    let ports = sources.filter.ports.as_ref();
    sources.tables.contains(&(port.protocol, port.family))
        && ports.is_none_or(|ports| ports.contains(port.host_port))
}

/// Whether the listing holds every listener that could serve `port`: its protocol's tables
/// of its family (and IPv6's, for a dual-stack `[::]` serving IPv4), and no filter that
/// leaves listeners out. Only then is "nothing listens on the target" a finding.
fn complete(port: &Published, sources: Sources<'_>) -> bool {
    let f = sources.filter;
    let narrowed = f.ports.is_some()
        || !f.addresses.is_empty()
        || f.exposures.is_some()
        || !f.pids.is_empty()
        || !f.uids.is_empty()
        || !f.programs.is_empty()
        || !f.containers.is_empty()
        || !f.units.is_empty();
    let has = |family| sources.tables.contains(&(port.protocol, family));
    !narrowed && has(port.family) && has(Family::Ipv6)
}

/// The namespaces the listing was collected in, with their addresses: every one for
/// `--netns all`; else the current one, or the one chosen, which the listing's sockets name.
fn looked_in(
    root: &ProcRoot,
    discovery: &netns::Discovery,
    choice: &NetnsChoice,
    entries: &[Entry],
) -> Vec<owners::Owner> {
    let listed: HashSet<u64> = entries
        .iter()
        .filter_map(|e| e.socket.netns.as_ref().map(|ns| ns.inode))
        .collect();
    let looked: Vec<(u64, u32)> = discovery
        .namespaces
        .iter()
        .filter(|ns| match choice {
            NetnsChoice::All => true,
            NetnsChoice::Current => Some(ns.inode) == discovery.current,
            _ => listed.contains(&ns.inode),
        })
        .filter_map(|ns| Some((ns.inode, *ns.pids.first()?)))
        .collect();
    owners::read(root, &looked)
}

/// The namespace `inode` as the listing's sockets share it, else as discovery names it.
fn namespace(inode: u64, discovery: Option<&netns::Discovery>, entries: &[Entry]) -> Arc<Netns> {
    let listed = entries
        .iter()
        .filter_map(|e| e.socket.netns.as_ref())
        .find(|ns| ns.inode == inode);
    if let Some(ns) = listed {
        return ns.clone();
    }
    let name = discovery
        .and_then(|d| d.get(inode))
        .and_then(|ns| ns.name.as_ref())
        .map(|name| name.as_encoded_bytes().to_vec());
    Arc::new(Netns { inode, name })
}

/// A verdict as the model keeps it.
fn wire_reach(reach: Reach) -> PublishedReach {
    PublishedReach {
        verdict: reach.verdict.name(),
        family: reach.family.name(),
        by: reach.by,
        conditions: reach.conditions,
    }
}
