//! Which rules of a chain can match a destination port: most rules of a large ruleset name
//! one port or a few, so a packet need only be tried against those naming its port and those
//! naming none. Built once per chain; the evaluator walks the list for its port in rule
//! order, which is the order the kernel tries them in.

use super::ranges::RangeSet;
use super::rules::{Field, Match, Rule, Step};

/// Per elementary port range, the indices of the rules that may match there.
#[derive(Debug, Clone, Default)]
pub struct PortIndex {
    /// Sorted ports where the candidate list changes.
    bounds: Vec<u128>,
    /// One list per range (`bounds.len() + 1`), each ascending.
    lists: Vec<Vec<u32>>,
}

impl PortIndex {
    /// The index of `rules`.
    pub fn of(rules: &[Rule]) -> PortIndex {
        let sets: Vec<Option<&RangeSet>> = rules.iter().map(port_set).collect();
        let mut bounds: Vec<u128> = sets.iter().flatten().flat_map(|s| s.boundaries()).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let mut lists = vec![Vec::new(); bounds.len() + 1];
        for (i, set) in sets.iter().enumerate() {
            match set {
                None => lists.iter_mut().for_each(|l| l.push(i as u32)),
                Some(set) => {
                    for &(lo, hi) in set.ranges() {
                        let first = bounds.partition_point(|&b| b <= lo);
                        let last = bounds.partition_point(|&b| b <= hi);
                        (first..=last).for_each(|c| lists[c].push(i as u32));
                    }
                }
            }
        }
        PortIndex { bounds, lists }
    }

    /// The rules that may match a packet to `port`, in order.
    pub fn candidates(&self, port: u16) -> &[u32] {
        let class = self.bounds.partition_point(|&b| b <= u128::from(port));
        self.lists.get(class).map_or(&[], Vec::as_slice)
    }
}

/// The ports a rule can match, from a destination-port match among the leading matches on
/// what the packet fixes; `None` when it may match any port.
fn port_set(rule: &Rule) -> Option<&RangeSet> {
    for step in &rule.steps {
        match step {
            Step::Match(Match::Values {
                field: Field::Dport(_),
                set,
                neg: false,
            }) => return Some(set),
            Step::Match(
                Match::Const(_)
                | Match::Bits { .. }
                | Match::Values { .. }
                | Match::TcpFlags { .. },
            ) => {}
            _ => return None,
        }
    }
    None
}
