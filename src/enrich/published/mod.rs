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
//! is "not seen", never "without listener". A published port is flagged
//! `published-without-listener` only when the namespace owning the target was looked in and
//! nothing there listens on the target.

pub mod owners;
pub mod proxy;

use std::collections::HashSet;
use std::path::Path;

use crate::config::NetnsChoice;
use crate::enrich::reach::{self, Reach, Ruleset};
use crate::model::Entry;
use crate::model::published::{Published, PublishedReach};
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

/// Where published ports are read from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The proc root (processes, namespaces' addresses).
    pub proc_root: &'a Path,
    /// The namespaces the listing was collected in.
    pub netns: &'a NetnsChoice,
    /// How the firewall rules are read.
    pub rules: &'a reach::Sources,
}

/// The published ports, joined to `entries` (the listing, labelled), with their reach.
pub fn find(entries: &[Entry], sources: Sources<'_>) -> Found {
    let mut found = Found::default();
    let ruleset = match Ruleset::load(sources.rules) {
        Ok(ruleset) => ruleset,
        Err(error) => {
            found.warnings.push(format!(
                "published ports from firewall rules: {}",
                crate::text::sanitize::terminal_safe(error.to_string().as_bytes())
            ));
            Ruleset::unavailable(&error)
        }
    };
    let mut ports = reach::published::from_rules(&ruleset);
    let root = ProcRoot::open(sources.proc_root).ok();
    if let Some(root) = &root {
        for proxied in proxy::scan(root, &mut found.warnings) {
            reach::published::add(&mut ports, proxied);
        }
    }
    let (owners, current) = match &root {
        Some(root) => namespaces(root, sources.netns, entries),
        None => (Vec::new(), None),
    };
    for port in &mut ports {
        port.landing = owners::land(port, &owners, current, entries);
        port.reach = vec![wire_reach(reach::published::reach(&ruleset, port))];
    }
    found.ports = ports;
    found
}

/// The namespaces the listing was collected in (with their addresses), and the one lsports
/// runs in: every one for `--netns all`; else the current one, or the one chosen, which the
/// listing's sockets name.
fn namespaces(
    root: &ProcRoot,
    choice: &NetnsChoice,
    entries: &[Entry],
) -> (Vec<owners::Owner>, Option<u64>) {
    let Ok(discovery) = netns::discover(root) else {
        return (Vec::new(), None);
    };
    let current = discovery.current;
    let listed: HashSet<u64> = entries
        .iter()
        .filter_map(|e| e.socket.netns.as_ref().map(|ns| ns.inode))
        .collect();
    let looked: Vec<(u64, u32)> = discovery
        .namespaces
        .iter()
        .filter(|ns| match choice {
            NetnsChoice::All => true,
            NetnsChoice::Current => Some(ns.inode) == current,
            _ => listed.contains(&ns.inode),
        })
        .filter_map(|ns| Some((ns.inode, *ns.pids.first()?)))
        .collect();
    (owners::read(root, &looked), current)
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
