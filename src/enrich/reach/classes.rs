//! Classes of packets no rule tells apart, the key of the verdict cache: ports, source and
//! destination addresses are cut at every boundary of every set a rule matches them against
//! (and every NAT target), so two packets in the same class meet the same answers everywhere
//! and get the same verdict. 25,000 listeners on distinct ports and addresses then cost one
//! evaluation per class they fall in, not one each.

use super::ranges::addr_num;
use super::rules::{Action, Chain, Field, Match, Step};
use super::verdict::Packet;
use crate::model::{Family, Protocol};

/// The cache key: family, protocol, source and destination address classes (`None`: any),
/// input interface, port class.
pub type Key = (
    Family,
    Protocol,
    Option<usize>,
    Option<usize>,
    Option<String>,
    usize,
);

/// Sorted boundaries: a value's class is how many boundaries are at or below it.
#[derive(Debug, Default)]
pub struct Classes {
    port: Vec<u128>,
    saddr: [Vec<u128>; 2],
    daddr: [Vec<u128>; 2],
}

impl Classes {
    /// The boundaries of every match and NAT target in `chains`.
    pub fn of(chains: &[Chain]) -> Classes {
        let mut c = Classes::default();
        for step in chains
            .iter()
            .flat_map(|ch| &ch.rules)
            .flat_map(|r| &r.steps)
        {
            match step {
                Step::Match(m) => c.add_match(m),
                Step::Effect(_) => {}
                Step::Verdict(a) => c.add_action(a),
            }
        }
        for v in [&mut c.port]
            .into_iter()
            .chain(&mut c.saddr)
            .chain(&mut c.daddr)
        {
            v.sort_unstable();
            v.dedup();
        }
        c
    }

    /// The runs of destination ports no rule tells apart, in order, covering 0-65535.
    pub fn port_runs(&self) -> Vec<(u16, u16)> {
        let mut runs = Vec::new();
        let mut start: u128 = 0;
        for &b in self.port.iter().filter(|&&b| b > 0 && b <= 65535) {
            if b > start {
                runs.push((start as u16, (b - 1) as u16));
                start = b;
            }
        }
        runs.push((start as u16, u16::MAX));
        runs
    }

    /// The cache key of `packet`.
    pub fn key(&self, p: &Packet) -> Key {
        let fam = usize::from(p.family == Family::Ipv6);
        let class = |bounds: &[u128], v: u128| bounds.partition_point(|&b| b <= v);
        // With no rule on an address of this family, a given address and "any" get the
        // same verdict: one key for both.
        let addr = |bounds: &[u128], a: Option<std::net::IpAddr>| {
            a.filter(|_| !bounds.is_empty())
                .map(|a| class(bounds, addr_num(a)))
        };
        let saddr = addr(&self.saddr[fam], p.saddr);
        let daddr = addr(&self.daddr[fam], p.daddr);
        let port = class(&self.port, p.dport.into());
        (p.family, p.proto, saddr, daddr, p.iif.clone(), port)
    }

    fn add_match(&mut self, m: &Match) {
        let fam = |f: &Family| usize::from(*f == Family::Ipv6);
        match m {
            Match::Values { field, set, .. } => match field {
                Field::Dport(_) => self.port.extend(set.boundaries()),
                Field::Saddr(f) => self.saddr[fam(f)].extend(set.boundaries()),
                Field::Daddr(f) => self.daddr[fam(f)].extend(set.boundaries()),
                _ => {}
            },
            Match::Any(conjs) => conjs.iter().flatten().for_each(|m| self.add_match(m)),
            _ => {}
        }
    }

    fn add_action(&mut self, a: &Action) {
        match a {
            Action::Choice(elems) => {
                for (ms, act) in elems {
                    ms.iter().for_each(|m| self.add_match(m));
                    self.add_action(act);
                }
            }
            Action::Dnat { addr, port } => {
                if let Some(a) = addr {
                    let n = addr_num(*a);
                    self.daddr[usize::from(a.is_ipv6())].extend([n, n.saturating_add(1)]);
                }
                self.add_port(*port);
            }
            Action::Redirect { port } => self.add_port(*port),
            _ => {}
        }
    }

    fn add_port(&mut self, port: Option<u16>) {
        if let Some(p) = port {
            self.port.extend([u128::from(p), u128::from(p) + 1]);
        }
    }
}
