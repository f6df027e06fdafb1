//! Reach for a listing: the rules of every network namespace its listeners live in, each read
//! once (by a thread that entered the namespace, since `nft` and `iptables-save` read the
//! namespace they run in), and every listener evaluated against its own namespace's rules.
//!
//! Only listening sockets get a reach: the question is the fate of a *new* inbound
//! connection. Rules that cannot be read make every verdict of their namespace `unknown`, by
//! the reason; the reason is also returned once, for the caller to say on stderr.

use std::collections::HashMap;
use std::sync::Arc;

use super::{LoadError, Reach, Ruleset, Verdict};
use crate::model::Entry;
use crate::model::exposure::{self, Exposure};
use crate::model::{Family, Protocol};

/// Where the rules are read from.
#[derive(Clone, Copy)]
pub enum RulesFrom<'a> {
    /// The live system: this namespace's rules from `here` (read once, and perhaps begun
    /// before the sockets were collected), other namespaces' from `elsewhere`, which enters
    /// the namespace (or says why it cannot).
    Live {
        /// This namespace's rules.
        here: Here<'a>,
        /// Another namespace's rules.
        elsewhere: Elsewhere<'a>,
    },
    /// A captured system (`--snapshot`, or another proc tree): its rules were not captured,
    /// so every verdict is `unknown`, and nothing on this machine is read in its place.
    Captured,
}

/// The rules read for a listing, by namespace, and why some could not be read.
#[derive(Debug, Default)]
pub struct Firewalls {
    rulesets: HashMap<Option<u64>, Arc<Ruleset>>,
    /// Why some rules could not be read, for stderr (the first, when several namespaces
    /// fail alike); their listeners' reach is `unknown`.
    pub note: Option<String>,
}

/// A run of ports a rule accepts from outside with nothing listening there: a stale rule,
/// or a service that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    /// The namespace whose rules these are (`None`: this one, when sockets do not say).
    pub netns: Option<u64>,
    /// The protocol the rule accepts.
    pub proto: Protocol,
    /// The first and last port of the run.
    pub ports: (u16, u16),
    /// The families it is accepted for.
    pub families: Vec<Family>,
    /// `open` or `restricted` (then `conditions` says when).
    pub verdict: Verdict,
    /// The rule, as the ruleset has it (raw: escape it for a terminal).
    pub by: String,
    /// For `restricted`: the conditions.
    pub conditions: Vec<String>,
}

/// This namespace's rules, the same each time asked.
pub type Here<'a> = &'a dyn Fn() -> Result<Arc<Ruleset>, LoadError>;

/// Reads the rules of namespace `inode` from inside it, or says why it cannot enter it.
pub type Elsewhere<'a> = &'a dyn Fn(u64) -> Result<Result<Arc<Ruleset>, LoadError>, String>;

/// Fill `reach` of every listening entry, from the rules of its namespace.
pub fn evaluate(entries: &mut [Entry], from: RulesFrom<'_>) -> Firewalls {
    let rulesets = match from {
        RulesFrom::Captured => captured(entries),
        RulesFrom::Live { here, elsewhere } => live(entries, here, elsewhere),
    };
    let mut firewalls = Firewalls::default();
    for (ns, (ruleset, problem)) in rulesets {
        firewalls.note = firewalls.note.or(problem);
        firewalls.rulesets.insert(ns, ruleset);
    }
    for entry in entries.iter_mut().filter(|e| is_listener(e)) {
        let ruleset = &firewalls.rulesets[&namespace_of(entry)];
        entry.reach = one_per_differing_family(ruleset.for_listener(&entry.socket), entry).into();
    }
    firewalls
}

impl Firewalls {
    /// Whether the rules of `entry`'s namespace were not read, so that its reach is
    /// `unknown` for that reason (see [`Ruleset::unread`]).
    pub fn unread_for(&self, entry: &Entry) -> bool {
        (self.rulesets.get(&namespace_of(entry))).is_some_and(|r| r.unread())
    }

    /// The runs of ports (of those `wanted` keeps) that a rule accepts, with no listener of
    /// `entries` behind them in the rules' namespace, protocol and family.
    pub fn holes(&self, entries: &[Entry], wanted: impl Fn(u16) -> bool) -> Vec<Hole> {
        let mut holes: Vec<Hole> = Vec::new();
        let mut namespaces: Vec<&Option<u64>> = self.rulesets.keys().collect();
        namespaces.sort_unstable();
        for ns in namespaces {
            let ruleset = &self.rulesets[ns];
            for proto in [Protocol::Tcp, Protocol::Udp] {
                for family in [Family::Ipv4, Family::Ipv6] {
                    for ((lo, hi), reach) in ruleset.accepted_ports(family, proto) {
                        let listened = entries.iter().any(|e| {
                            namespace_of(e) == *ns
                                && e.socket.protocol == proto
                                && (lo..=hi).contains(&e.socket.local_port)
                                && exposure::classify(&e.socket) != Exposure::Loopback
                                && exposure::reachable_families(&e.socket).contains(&family)
                        });
                        if !listened && (lo..=hi).any(&wanted) {
                            add_hole(&mut holes, *ns, proto, (lo, hi), family, reach);
                        }
                    }
                }
            }
        }
        holes
    }
}

/// Add a hole, as one more family of the same rule's hole on the same ports if there is one.
fn add_hole(
    holes: &mut Vec<Hole>,
    netns: Option<u64>,
    proto: Protocol,
    ports: (u16, u16),
    family: Family,
    reach: Reach,
) {
    let same = holes
        .iter_mut()
        .find(|h| h.netns == netns && h.proto == proto && h.ports == ports && h.by == reach.by);
    match same {
        Some(hole) => hole.families.push(family),
        None => holes.push(Hole {
            netns,
            proto,
            ports,
            families: vec![family],
            verdict: reach.verdict,
            by: reach.by,
            conditions: reach.conditions,
        }),
    }
}

/// The rules of each namespace, and why they could not be read.
type Rulesets = HashMap<Option<u64>, (Arc<Ruleset>, Option<String>)>;

fn captured(entries: &[Entry]) -> Rulesets {
    let why = "not evaluated: a snapshot or another proc tree does not record the firewall rules"
        .to_string();
    namespaces(entries)
        .into_iter()
        .map(|ns| (ns, (Arc::new(Ruleset::fixed_unknown(why.clone())), None)))
        .collect()
}

fn live(entries: &[Entry], here: Here<'_>, elsewhere: Elsewhere<'_>) -> Rulesets {
    let own = rustix::fs::stat("/proc/thread-self/ns/net")
        .ok()
        .map(|s| s.st_ino);
    let mut out = Rulesets::new();
    let mut others = Vec::new();
    for ns in namespaces(entries) {
        match ns {
            None => {
                out.insert(None, read(here()));
            }
            Some(inode) if Some(inode) == own => {
                out.insert(Some(inode), read(here()));
            }
            Some(inode) => others.push(inode),
        }
    }
    if !others.is_empty() {
        out.extend(in_other_namespaces(&others, elsewhere));
    }
    out
}

/// The rules read, or `unknown` by why not.
fn read(loaded: Result<Arc<Ruleset>, LoadError>) -> (Arc<Ruleset>, Option<String>) {
    match loaded {
        Ok(ruleset) => (ruleset, None),
        Err(error) => {
            let note = format!("reach is unknown: {error}");
            (Arc::new(Ruleset::unavailable(&error)), Some(note))
        }
    }
}

/// The rules of namespaces other than this one, read by `elsewhere` (which enters each).
fn in_other_namespaces(inodes: &[u64], elsewhere: Elsewhere<'_>) -> Rulesets {
    inodes
        .iter()
        .map(|&inode| {
            let rules = match elsewhere(inode) {
                Ok(loaded) => read(loaded),
                // Nothing to do about it (a namespace only a socket keeps alive, or one gone
                // since): the listeners' `by` says so, stderr does not.
                Err(why) => (Arc::new(unreadable_namespace(inode, &why).0), None),
            };
            (Some(inode), rules)
        })
        .collect()
}

fn unreadable_namespace(inode: u64, why: &str) -> (Ruleset, Option<String>) {
    let by = format!("the firewall of net:[{inode}] was not read: {why}");
    let note = format!("reach is unknown in net:[{inode}]: {why} (run as root to read it)");
    (Ruleset::fixed_unknown(by), Some(note))
}

/// The distinct namespaces of the listeners (`None`: unknown, read as this one's).
fn namespaces(entries: &[Entry]) -> Vec<Option<u64>> {
    let mut seen: Vec<Option<u64>> = entries
        .iter()
        .filter(|e| is_listener(e))
        .map(namespace_of)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}

fn namespace_of(entry: &Entry) -> Option<u64> {
    entry.socket.netns.as_ref().map(|ns| ns.inode)
}

fn is_listener(entry: &Entry) -> bool {
    entry.socket.state.is_listening(entry.socket.protocol)
}

/// One reach per family only where they differ (a dual-stack socket whose IPv4 and IPv6
/// traffic meet different rules); where every family has the same fate, one reach, for the
/// socket's own family.
fn one_per_differing_family(mut reach: Vec<Reach>, entry: &Entry) -> Vec<Reach> {
    let same = |a: &Reach, b: &Reach| {
        a.verdict == b.verdict && a.by == b.by && a.conditions == b.conditions
    };
    if reach.len() > 1 && reach.windows(2).all(|w| same(&w[0], &w[1])) {
        reach.truncate(1);
        reach[0].family = entry.socket.family;
    }
    reach
}
