//! The order a packet passes the base chains of one hook: by priority, and among chains of
//! equal priority, newest first. The kernel keeps each hook's functions sorted by priority
//! and inserts a new one before the first whose priority is not lower than its own
//! (`nf_hook_entries_grow` in net/netfilter/core.c), so of equal priorities the chain
//! registered last runs first: its drop or reject is the one a packet meets.
//!
//! What nft lists tells that order only in part. A table numbers its chains in the order they
//! were made (the chain handle), so two chains of one table are ordered. Chains of different
//! tables are not: a table's handle says when the table was made, not its chains. The kernel's
//! own list (`nft list hooks`, kernels with `nfnetlink_hook`, 5.14 and later) says it, and is
//! read when chains of different tables tie. Where neither tells, every order is evaluated,
//! and a verdict that depends on it is `unknown` and says so (see `Ruleset::verdict`).

use super::rules::{Chain, Hook};

/// Past this many candidate orders, only the listed order and its reverse are evaluated.
const MAX_ORDERS: usize = 24;

/// The kernel's order of nft base chains per hook list, from `nft list hooks`: for each
/// `(family, hook)` (`ip`/`ip6`, `input`, …), the chain labels (`table inet a chain in`) in
/// the order the kernel runs them.
#[derive(Debug, Default, Clone)]
pub struct Listed {
    lists: Vec<Vec<String>>,
}

impl Listed {
    /// Parse `nft list hooks`: `family ip {`, `hook input {`, then one function per line,
    /// `<prio> chain <family> <table> <chain> [nf_tables]` for a chain. Lines that are not
    /// chains (conntrack, iptables-legacy) are skipped; they name no chain lsports reads.
    pub fn parse(text: &str) -> Listed {
        let mut lists: Vec<Vec<String>> = Vec::new();
        let mut current: Option<Vec<String>> = None;
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                ["hook", ..] => {
                    lists.extend(current.take());
                    current = Some(Vec::new());
                }
                [_prio, "chain", family, table, chain, ..] => {
                    if let Some(list) = &mut current {
                        list.push(format!("table {family} {table} chain {chain}"));
                    }
                }
                _ => {}
            }
        }
        lists.extend(current);
        lists.retain(|l| l.len() > 1);
        Listed { lists }
    }

    /// Whether the list says nothing (an old kernel or nft, or no two chains on one hook).
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Where each of `labels` is in one list that has them all, if any does.
    fn positions(&self, labels: &[&str]) -> Option<Vec<usize>> {
        self.lists.iter().find_map(|list| {
            labels
                .iter()
                .map(|l| list.iter().position(|x| x == l))
                .collect()
        })
    }
}

/// The base chains of equal hook and priority from different tables whose order neither the
/// handles nor the kernel's list tell: what an `unknown` verdict names.
#[derive(Debug, Clone)]
pub struct Tie {
    /// The hook.
    pub hook: Hook,
    /// The priority.
    pub prio: i32,
    /// The chains' labels.
    pub labels: Vec<String>,
}

/// Every order the base chains may run in: the first is the one assumed (tables in listing
/// order), the others differ only in the order of the [`Tie`]s' tables.
#[derive(Debug, Clone, Default)]
pub struct Orders {
    /// The orders (at least one).
    pub orders: Vec<Vec<usize>>,
    /// The ties that make them more than one.
    pub ties: Vec<Tie>,
}

/// Whether a chain can change nothing for a packet: no rules and an accept policy.
fn inert(chain: &Chain) -> bool {
    chain.rules.is_empty() && chain.base.as_ref().is_some_and(|b| !b.policy_drop)
}

/// The orders the base chains of `chains` may run in.
pub fn orders(chains: &[Chain], listed: &Listed) -> Orders {
    let base = |i: usize| chains[i].base.as_ref().expect("base chain");
    let mut order: Vec<usize> = (0..chains.len())
        .filter(|&i| chains[i].base.is_some())
        .collect();
    // Tables in listing order, each table's chains newest first.
    order.sort_by_key(|&i| {
        let b = base(i);
        (b.hook, b.prio, b.table, std::cmp::Reverse(b.handle))
    });
    // Each group of equal hook and priority with live chains of two tables or more, as
    // blocks (one per table) of positions in `order`.
    let mut groups: Vec<(usize, Vec<Vec<usize>>)> = Vec::new();
    let mut ties = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let key = |i: usize| (base(order[i]).hook, base(order[i]).prio);
        let end = (start..order.len())
            .find(|&j| key(j) != key(start))
            .unwrap_or(order.len());
        let live: Vec<usize> = (start..end)
            .filter(|&j| !inert(&chains[order[j]]))
            .collect();
        let mut tables: Vec<usize> = live.iter().map(|&j| base(order[j]).table).collect();
        tables.dedup();
        if tables.len() > 1 {
            let labels: Vec<&str> = live
                .iter()
                .map(|&j| chains[order[j]].label.as_str())
                .collect();
            if let Some(pos) = listed.positions(&labels) {
                // The kernel said: the live chains in its order, in the places they held.
                let mut by_kernel: Vec<(usize, usize)> = pos
                    .into_iter()
                    .zip(live.iter().map(|&j| order[j]))
                    .collect();
                by_kernel.sort();
                for (&j, (_, ci)) in live.iter().zip(by_kernel) {
                    order[j] = ci;
                }
            } else {
                let blocks = tables
                    .iter()
                    .map(|&t| {
                        live.iter()
                            .copied()
                            .filter(|&j| base(order[j]).table == t)
                            .collect()
                    })
                    .collect();
                groups.push((start, blocks));
                ties.push(Tie {
                    hook: base(order[start]).hook,
                    prio: base(order[start]).prio,
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                });
            }
        }
        start = end;
    }
    let mut orders = vec![order.clone()];
    let count: usize = groups
        .iter()
        .map(|(_, blocks)| (1..=blocks.len()).product::<usize>())
        .try_fold(1usize, |acc, n| acc.checked_mul(n))
        .unwrap_or(usize::MAX);
    let arrangements: Vec<Vec<Vec<usize>>> = if count <= MAX_ORDERS {
        groups.iter().map(|(_, b)| permutations(b.len())).collect()
    } else {
        let two = |n: usize| vec![(0..n).collect(), (0..n).rev().collect()];
        groups.iter().map(|(_, b)| two(b.len())).collect()
    };
    // Every choice of one arrangement per group but the all-identity one (`order` itself);
    // past the cap, only the one reversing every group.
    let mut choices: Vec<Vec<usize>> = vec![Vec::new()];
    for arr in &arrangements {
        choices = (choices.into_iter())
            .flat_map(|c| {
                (0..arr.len()).map(move |k| {
                    let mut c = c.clone();
                    c.push(k);
                    c
                })
            })
            .collect();
    }
    let capped = count > MAX_ORDERS;
    let wanted = |c: &Vec<usize>| match capped {
        true => c.iter().all(|&k| k == 1),
        false => c.iter().any(|&k| k != 0),
    };
    for choice in choices.into_iter().filter(wanted) {
        let mut o = order.clone();
        for (g, (_, blocks)) in groups.iter().enumerate() {
            let slots: Vec<usize> = blocks.iter().flatten().copied().collect();
            let filled: Vec<usize> = arrangements[g][choice[g]]
                .iter()
                .flat_map(|&b| blocks[b].iter().map(|&j| order[j]))
                .collect();
            for (slot, ci) in slots.into_iter().zip(filled) {
                o[slot] = ci;
            }
        }
        orders.push(o);
    }
    Orders { orders, ties }
}

/// Every permutation of `0..n`, the identity first.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for rest in permutations(n - 1) {
        for at in (0..=rest.len()).rev() {
            let mut p = rest.clone();
            p.insert(at, n - 1);
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::reach::rules::{Action, Base, Rule, Step, TableFamily};

    fn chain(label: &str, table: usize, handle: u64, action: Action) -> Chain {
        Chain {
            label: label.into(),
            family: TableFamily::Both,
            base: Some(Base {
                hook: Hook::Input,
                prio: 0,
                policy_drop: false,
                nat: false,
                device: None,
                handle,
                table,
            }),
            rules: vec![Rule {
                steps: vec![Step::Verdict(action)],
                by: label.into(),
            }],
            index: Default::default(),
        }
    }

    #[test]
    fn the_kernels_listing_orders_chains_of_different_tables() {
        // nft 1.0's `list hooks` layout (src/mnl.c print_hooks), newest first.
        let text = "family ip {\n\thook input {\n\t\t 0000000000 chain inet b in [nf_tables]\n\t\t 0000000000 chain inet a in [nf_tables]\n\t\t+0000000010 iptable_filter_hook [iptable_filter]\n\t}\n}\n";
        let chains = vec![
            chain("table inet a chain in", 0, 1, Action::Drop),
            chain("table inet b chain in", 1, 1, Action::Reject),
        ];
        let unlisted = orders(&chains, &Listed::default());
        assert_eq!(unlisted.orders.len(), 2, "either order");
        assert_eq!(unlisted.ties.len(), 1);
        let listed = orders(&chains, &Listed::parse(text));
        assert_eq!(listed.orders, vec![vec![1, 0]]);
        assert!(listed.ties.is_empty());
    }

    #[test]
    fn one_tables_chains_run_newest_first_and_inert_chains_tie_nothing() {
        let mut chains = vec![
            chain("table inet a chain c1", 0, 1, Action::Drop),
            chain("table inet a chain c2", 0, 2, Action::Reject),
            chain(
                "iptables-nft ip table filter chain INPUT",
                1,
                1,
                Action::Accept,
            ),
        ];
        chains[2].rules.clear();
        let o = orders(&chains, &Listed::default());
        assert_eq!(o.orders, vec![vec![1, 0, 2]]);
    }
}
