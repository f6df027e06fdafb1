//! `iptables-save` / `ip6tables-save` output compiled into [`Chain`]s: the rules of
//! iptables-legacy, and of iptables-nft tables whose `xt` matches nft's JSON leaves opaque —
//! what Docker and ufw install. The common match modules are evaluated (see [`rule`]); any
//! other match is an `unknown` condition and any other target an `unknown` verdict, each
//! carrying the rule's text.

mod rule;

use std::collections::HashMap;

use super::rules::{Base, Chain, Hook, Table, TableFamily};
use crate::model::Family;

/// Where a table's chains hook, at the priorities iptables registers them with.
fn hook_of(table: &str, chain: &str) -> Option<(Hook, i32)> {
    match (table, chain) {
        ("raw", "PREROUTING") => Some((Hook::Prerouting, -300)),
        ("mangle", "PREROUTING") => Some((Hook::Prerouting, -150)),
        ("nat", "PREROUTING") => Some((Hook::Prerouting, -100)),
        ("mangle", "INPUT") => Some((Hook::Input, -150)),
        ("filter", "INPUT") => Some((Hook::Input, 0)),
        ("security", "INPUT") => Some((Hook::Input, 50)),
        ("mangle", "FORWARD") => Some((Hook::Forward, -150)),
        ("filter", "FORWARD") => Some((Hook::Forward, 0)),
        ("security", "FORWARD") => Some((Hook::Forward, 50)),
        _ => None,
    }
}

/// Compile the output of `iptables-save` (`family` IPv4) or `ip6tables-save` (IPv6);
/// `origin` (`iptables-legacy`, `iptables-nft`) labels the chains.
pub fn parse(text: &str, family: Family, origin: &str) -> Result<Vec<Table>, String> {
    let mut tables: Vec<Table> = Vec::new();
    let mut chains: HashMap<String, usize> = HashMap::new();
    let mut rules: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let at = || format!("line {}", n + 1);
        if let Some(name) = line.strip_prefix('*') {
            finish(&mut tables, &chains, &mut rules, family);
            chains.clear();
            tables.push(Table {
                family: family_name(family).into(),
                name: name.into(),
                has_xt: false,
                chains: vec![],
            });
        } else if let Some(decl) = line.strip_prefix(':') {
            let table = tables
                .last_mut()
                .ok_or_else(|| format!("{}: chain before any *table", at()))?;
            let mut words = decl.split_whitespace();
            let (name, policy) = (
                words.next().unwrap_or_default(),
                words.next().unwrap_or("-"),
            );
            let label = format!(
                "{origin} {} table {} chain {name}",
                family_name(family),
                table.name
            );
            let base = hook_of(&table.name, name).map(|(hook, prio)| Base {
                hook,
                prio,
                policy_drop: policy == "DROP",
                nat: table.name == "nat",
                device: None,
                handle: 0,
                table: 0,
            });
            let tf = if family == Family::Ipv4 {
                TableFamily::Ip
            } else {
                TableFamily::Ip6
            };
            chains.insert(name.to_string(), table.chains.len());
            table.chains.push(Chain {
                label,
                family: tf,
                base,
                rules: vec![],
                index: Default::default(),
            });
        } else if line.starts_with("-A ") || line.starts_with("[") {
            if tables.is_empty() {
                return Err(format!("{}: rule before any *table", at()));
            }
            rules.push((n + 1, line.to_string()));
        } else if !(line.is_empty() || line.starts_with('#') || line == "COMMIT") {
            return Err(format!(
                "{}: not iptables-save output: {}",
                at(),
                line.chars().take(80).collect::<String>()
            ));
        }
    }
    finish(&mut tables, &chains, &mut rules, family);
    Ok(tables)
}

/// Compile the rules gathered for the last table, now that all its chains are declared.
fn finish(
    tables: &mut [Table],
    chains: &HashMap<String, usize>,
    rules: &mut Vec<(usize, String)>,
    family: Family,
) {
    let Some(table) = tables.last_mut() else {
        return;
    };
    let mut count: HashMap<usize, usize> = HashMap::new();
    for (_, line) in rules.drain(..) {
        let compiled = rule::compile(&line, family, chains);
        let Some((ci, steps)) = compiled else {
            continue;
        };
        let nth = count.entry(ci).or_default();
        *nth += 1;
        let by = format!("{} rule {}: {}", table.chains[ci].label, nth, line).into();
        table.chains[ci]
            .rules
            .push(super::rules::Rule { steps, by });
    }
}

/// `ip` or `ip6`.
fn family_name(family: Family) -> &'static str {
    if family == Family::Ipv4 { "ip" } else { "ip6" }
}
