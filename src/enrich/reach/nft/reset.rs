//! The family of an inet or netdev table's `reject with tcp reset` rule, which nft's JSON
//! (1.0.6) cannot tell: it drops a `meta nfproto` written before such a reject, so the rule
//! reads [`UNLISTED_NFPROTO`] (unknown) for both families. nft's netlink listing (`nft
//! --debug=netlink list table inet NAME`) shows the bytecode, where the comparison is kept:
//!
//! ```text
//! inet filter input 7 6
//!   [ meta load nfproto => reg 1 ]
//!   [ cmp eq reg 1 0x00000002 ]
//!   ...
//!   [ reject type 1 code 0 ]
//! ```
//!
//! A rule that loads no `nfproto` rejects both families; one that compares it with ipv4 (2)
//! or ipv6 (10) rejects that family; anything else stays unknown.

use std::collections::HashMap;

use super::expr::{UNLISTED_NFPROTO, nfproto};
use crate::enrich::reach::rules::{CondKind, Match, Step, Table};
use crate::model::Family;

/// What a rule's bytecode says of its family: `None` both, else the one it matches.
type Families = HashMap<(String, u64), Option<Family>>;

/// Whether `table` has a rule whose family waits on the netlink listing.
pub fn needs_netlink(table: &Table) -> bool {
    matches!(table.family.as_str(), "inet" | "netdev")
        && (table.chains.iter().flat_map(|c| &c.rules)).any(|r| r.steps.iter().any(unlisted))
}

/// Replace each unlisted `meta nfproto` of `table`'s rules with what `netlink` (the table's
/// netlink listing) shows: nothing (both families), or a match on the one family. A rule the
/// listing does not describe plainly keeps its unknown.
pub fn resolve(table: &mut Table, netlink: &str) {
    let families = parse(netlink);
    for chain in &mut table.chains {
        let name = chain.label.rsplit(" chain ").next().unwrap_or_default();
        for rule in &mut chain.rules {
            let Some(handle) = handle_of(&rule.by) else {
                continue;
            };
            match families.get(&(name.to_string(), handle)) {
                Some(None) => rule.steps.retain(|s| !unlisted(s)),
                Some(Some(family)) => {
                    for step in rule.steps.iter_mut().filter(|s| unlisted(s)) {
                        *step = Step::Match(nfproto(*family));
                    }
                }
                None => {}
            }
        }
    }
}

fn unlisted(step: &Step) -> bool {
    matches!(step, Step::Match(Match::Cond { kind: CondKind::Unknown, text }) if &**text == UNLISTED_NFPROTO)
}

/// `N` of a rule's `… handle N: …`.
fn handle_of(by: &str) -> Option<u64> {
    let after = by.split_once(" handle ")?.1;
    after.split_once(':')?.0.parse().ok()
}

/// Each rule's family by (chain, handle), from a netlink listing: a rule block is a header
/// `FAMILY TABLE CHAIN HANDLE [POSITION]` then its `  [ … ]` expressions.
fn parse(netlink: &str) -> Families {
    let mut families = Families::new();
    let mut lines = netlink.lines().peekable();
    while let Some(line) = lines.next() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let header = !line.starts_with(char::is_whitespace) && (4..=5).contains(&words.len());
        let Some(handle) = header.then(|| words[3].parse::<u64>().ok()).flatten() else {
            continue;
        };
        let mut exprs = Vec::new();
        while let Some(expr) = lines.next_if(|l| l.trim_start().starts_with('[')) {
            exprs.push(expr.trim());
        }
        if let Some(family) = family_of(&exprs) {
            families.insert((words[2].to_string(), handle), family);
        }
    }
    families
}

/// `Some(None)`: no nfproto loaded; `Some(Some(f))`: compared equal to `f` right after its
/// load; `None`: used some other way.
fn family_of(exprs: &[&str]) -> Option<Option<Family>> {
    let Some(at) = exprs.iter().position(|e| e.contains("meta load nfproto")) else {
        return Some(None);
    };
    let reg = exprs[at]
        .split("=> reg ")
        .nth(1)?
        .trim_end_matches(" ]")
        .trim();
    let cmp = exprs.get(at + 1)?;
    let value = cmp.strip_prefix(&format!("[ cmp eq reg {reg} "))?;
    let family = match value.trim_end_matches(" ]").trim() {
        "0x00000002" => Family::Ipv4,
        "0x0000000a" => Family::Ipv6,
        _ => return None,
    };
    let again = exprs[at + 1..]
        .iter()
        .any(|e| e.contains("meta load nfproto"));
    (!again).then_some(Some(family))
}
