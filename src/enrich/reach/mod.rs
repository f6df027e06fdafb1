//! Reach: whether a new inbound connection from outside gets through this host's firewall to
//! a listener — `open`, `restricted` (only from named sources, interfaces, or under a rate
//! limit), `filtered`, `rejected`, `local`, or `unknown` with the rule that makes it so.
//!
//! The rules are only ever read: nftables' ruleset as JSON ([`nft`]), and iptables-legacy and
//! iptables-nft's `xt` rules through `iptables-save` ([`ipt`]), run by [`load`] with a
//! scrubbed environment, a timeout and a size cap. Both readers compile into the same chains
//! ([`rules`]); the evaluator ([`eval`]) follows the packet as the kernel does — every base
//! chain on the ingress, prerouting and input hooks in priority order, jumps, gotos, returns,
//! policies, sets, maps and verdict maps, NAT (and, for a published port, the DNAT to its
//! target and the forward hook after it, or the input hook where the target is this host's:
//! [`Ruleset::verdict_following`]) — with three-valued
//! logic: where a match depends on what the question leaves open (the source address, the
//! input interface, a rate limit) both outcomes are followed ([`path`]), and where it cannot
//! be decided at all the verdict is `unknown` unless every outcome agrees. Never a guess presented as a fact.
//!
//! Verdicts are cached per (family, protocol, addresses, interface, port class): a port class
//! is a run of ports no rule tells apart, so 25,000 listeners against 1,000 rules cost a few
//! thousand evaluations at most.

pub mod apply;
pub mod classes;
pub mod eval;
pub mod index;
pub mod ipt;
pub mod load;
pub mod merge;
pub mod nft;
pub mod order;
pub mod path;
pub mod published;
pub mod ranges;
pub mod rules;
pub mod verdict;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Mutex;

pub use load::{LoadError, Sources};
pub use verdict::{Packet, Reach, Verdict};

use crate::model::exposure::{Exposure, classify, reachable_families, unmapped};
use crate::model::{DeviceBinding, Family, Protocol, Socket};
use classes::Classes;
use rules::{Chain, Match, Step};

/// A firewall ruleset compiled for evaluation.
#[derive(Debug)]
pub struct Ruleset {
    chains: Vec<Chain>,
    /// Base chains in the order a packet passes them: more than one order where chains of
    /// equal priority may run either way ([`order`]).
    orders: Vec<Vec<usize>>,
    /// What makes `orders` more than one.
    ties: Vec<order::Tie>,
    /// Where some rule's answer can change (the cache's key).
    classes: Classes,
    /// A verdict that holds for every packet (no ruleset, or rules that could not be read).
    fixed: Option<(Verdict, String)>,
    cache: Mutex<HashMap<classes::Key, Reach>>,
}

impl Ruleset {
    /// Read the rules of the current network namespace (see [`load`]).
    pub fn load(sources: &Sources) -> Result<Ruleset, LoadError> {
        load::load(sources)
    }

    /// The rules of a host with no firewall: everything `open`, by "no ruleset".
    pub fn none() -> Ruleset {
        Ruleset::fixed(Verdict::Open, "no ruleset".to_string())
    }

    /// Rules that could not be read: everything `unknown`, by the reason.
    pub fn unavailable(error: &LoadError) -> Ruleset {
        Ruleset::fixed(
            Verdict::Unknown,
            format!("firewall rules unreadable: {error}"),
        )
    }

    /// Rules that were not read, for the reason `by` (a snapshot, a namespace that could not
    /// be entered): everything `unknown`, by it.
    pub fn fixed_unknown(by: String) -> Ruleset {
        Ruleset::fixed(Verdict::Unknown, by)
    }

    fn fixed(verdict: Verdict, by: String) -> Ruleset {
        Ruleset {
            chains: Vec::new(),
            orders: vec![Vec::new()],
            ties: Vec::new(),
            classes: Classes::default(),
            fixed: Some((verdict, by)),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Compile chains (jump targets are indices into `chains`). No chain at all is "no
    /// ruleset".
    pub fn from_chains(chains: Vec<Chain>) -> Ruleset {
        Ruleset::from_chains_listed(chains, &order::Listed::default())
    }

    /// [`Ruleset::from_chains`], with the kernel's order of base chains where nft lists it
    /// (`nft list hooks`, see [`order`]).
    pub fn from_chains_listed(mut chains: Vec<Chain>, listed: &order::Listed) -> Ruleset {
        if chains.is_empty() {
            return Ruleset::none();
        }
        for rule in chains.iter_mut().flat_map(|c| c.rules.iter_mut()) {
            concrete_first(&mut rule.steps);
            for step in &mut rule.steps {
                if let Step::Match(m) = step {
                    name_rule(m, &rule.by);
                }
            }
        }
        let order::Orders { orders, ties } = order::orders(&chains, listed);
        for chain in &mut chains {
            chain.index = index::PortIndex::of(&chain.rules);
        }
        let classes = Classes::of(&chains);
        Ruleset {
            chains,
            orders,
            ties,
            classes,
            fixed: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Evaluate `run` over every order the base chains may run in: its answer where they
    /// agree, else `unknown`, naming the answers and the chains whose order decides. They agree
    /// when the verdict and its conditions are the same, whatever rule decided each: an nft
    /// table at priority 0 beside iptables' INPUT, both accepting, is `open` whichever runs
    /// first (`by` then names both).
    fn over_orders(&self, family: Family, run: impl Fn(&[usize]) -> Reach) -> Reach {
        let first = run(&self.orders[0]);
        let mut also: Vec<String> = Vec::new();
        for order in &self.orders[1..] {
            let other = run(order);
            let same = first.verdict != Verdict::Unknown
                && (other.verdict, &other.conditions) == (first.verdict, &first.conditions);
            if !same {
                return self.undecided(family, &first, &other);
            }
            if other.by != first.by && !also.contains(&other.by) {
                also.push(other.by);
            }
        }
        if also.is_empty() {
            return first;
        }
        also.insert(0, first.by);
        Reach {
            by: format!(
                "{} (the same verdict whichever of the equal-priority chains {} runs first)",
                also.join(", or "),
                self.tied_chains(),
            ),
            ..first
        }
    }

    /// `unknown`: the orders of the equal-priority chains give `first` or `other`.
    fn undecided(&self, family: Family, first: &Reach, other: &Reach) -> Reach {
        Reach::new(
            Verdict::Unknown,
            family,
            format!(
                "{} ({}) or {} ({}), whichever of the equal-priority chains {} was registered \
                 last: the kernel runs it first, and nft lists no such order here (`nft list \
                 hooks` needs a kernel with nfnetlink_hook)",
                first.verdict.name(),
                first.by,
                other.verdict.name(),
                other.by,
                self.tied_chains(),
            ),
        )
    }

    /// The chains whose order is not known, with their hook and priority.
    fn tied_chains(&self) -> String {
        let chains: Vec<String> = (self.ties.iter())
            .map(|t| {
                format!(
                    "{} (hook {} priority {})",
                    t.labels.join(", "),
                    t.hook.name(),
                    t.prio
                )
            })
            .collect();
        chains.join("; ")
    }

    /// The runs of ports a rule accepts for a new connection from outside, to any address
    /// of this host, of `family` and `proto`: each run (ports no rule tells apart) with its
    /// reach, `open` or `restricted`. Rules that accept most ports (a policy of accept, an
    /// `ip saddr 10.0.0.0/8 accept`) are left out: they open the host, not a port, and the
    /// listing shows what they let through. Empty for rules that were not read.
    pub fn accepted_ports(&self, family: Family, proto: Protocol) -> Vec<((u16, u16), Reach)> {
        if self.fixed.is_some() {
            return Vec::new();
        }
        let runs: Vec<((u16, u16), Reach)> = (self.classes.port_runs().into_iter())
            .map(|run| (run, self.verdict(&Packet::any(family, proto, run.0))))
            .filter(|(_, reach)| reach.verdict.is_reachable())
            .collect();
        let mut width: HashMap<&str, u32> = HashMap::new();
        for ((lo, hi), reach) in &runs {
            *width.entry(reach.by.as_str()).or_default() += u32::from(hi - lo) + 1;
        }
        let specific: Vec<&str> = (width.iter())
            .filter(|&(_, &w)| w <= 1 << 15)
            .map(|(&by, _)| by)
            .collect();
        let specific: std::collections::HashSet<String> =
            specific.into_iter().map(str::to_string).collect();
        runs.into_iter()
            .filter(|(_, reach)| specific.contains(&reach.by))
            .collect()
    }

    /// Whether the rules were not read (unreadable, not captured, a namespace not entered):
    /// every verdict is `unknown` for that reason, not for a rule's.
    pub fn unread(&self) -> bool {
        matches!(self.fixed, Some((Verdict::Unknown, _)))
    }

    /// The chains, for tests and diagnostics.
    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }

    /// The verdict for one packet.
    pub fn verdict(&self, packet: &Packet) -> Reach {
        if let Some((verdict, by)) = &self.fixed {
            return Reach::new(*verdict, packet.family, by.clone());
        }
        let key = self.classes.key(packet);
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return hit.clone();
        }
        let reach = self.over_orders(packet.family, |order| {
            eval::Eval::new(&self.chains).run(packet, order)
        });
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, reach.clone());
        reach
    }

    /// The verdict for `packet` where a DNAT or redirect sends it to `follow`: it goes on
    /// through the forward hook (a published port's packet), or the input hook with the
    /// target port where the target is this host, rather than ending as not this listener's.
    /// Not cached: a published port is asked once.
    pub fn verdict_following(&self, packet: &Packet, follow: &eval::Follow) -> Reach {
        if let Some((verdict, by)) = &self.fixed {
            return Reach::new(*verdict, packet.family, by.clone());
        }
        self.over_orders(packet.family, |order| {
            eval::Eval::new(&self.chains)
                .following(follow)
                .run(packet, order)
        })
    }

    /// The verdicts for a listening socket, one per address family it accepts: `local` when
    /// it is bound to loopback, else the fate of a new connection from anywhere to its port
    /// (and address, and device).
    pub fn for_listener(&self, socket: &Socket) -> Vec<Reach> {
        let families = reachable_families(socket);
        if classify(socket) == Exposure::Loopback {
            let by = format!("bound to loopback ({})", unmapped(socket.local_addr));
            return families
                .iter()
                .map(|&f| Reach::new(Verdict::Local, f, by.clone()))
                .collect();
        }
        let addr = unmapped(socket.local_addr);
        let iif = match &socket.device {
            DeviceBinding::Device {
                name: Some(name), ..
            } => Some(name.to_string()),
            _ => None,
        };
        families
            .iter()
            .map(|&family| {
                let packet = Packet {
                    family,
                    proto: socket.protocol,
                    saddr: None,
                    daddr: (!addr.is_unspecified()).then_some(addr),
                    dport: socket.local_port,
                    iif: iif.clone(),
                };
                self.verdict(&packet)
            })
            .collect()
    }
}

/// Reorder each run of consecutive matches so that the ones the packet decides come first:
/// a conjunction is true or false whatever the order, but a rule for another port then ends
/// before it can split the path on a source address or call an unknown match into question.
fn concrete_first(steps: &mut [Step]) {
    let rank = |s: &Step| match s {
        Step::Match(Match::Const(_) | Match::Bits { .. }) => 0,
        Step::Match(Match::Values { field, .. })
            if !matches!(field, rules::Field::Saddr(_) | rules::Field::Daddr(_)) =>
        {
            0
        }
        Step::Match(Match::Cond { .. }) => 2,
        _ => 1,
    };
    for run in steps.split_mut(|s| !matches!(s, Step::Match(_))) {
        run.sort_by_key(rank);
    }
}

/// An unknown match names its rule, since that is what the verdict it decides names.
fn name_rule(m: &mut Match, by: &str) {
    match m {
        Match::Cond {
            kind: rules::CondKind::Unknown,
            text,
        } => {
            *text = format!("{by} ({text} is not evaluated)").into();
        }
        // Decided by the flags the question leaves open, it becomes an unknown match.
        Match::TcpFlags { text, .. } => {
            *text = format!("{by} ({text} is not evaluated)").into();
        }
        Match::Any(conjs) => conjs.iter_mut().flatten().for_each(|m| name_rule(m, by)),
        _ => {}
    }
}
