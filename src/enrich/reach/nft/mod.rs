//! nftables' ruleset as JSON (`nft -j list ruleset`, see libnftables-json(5)) compiled into
//! [`Chain`]s.
//!
//! The JSON is read as a tree (`serde_json::Value`) rather than through the typed enums of
//! the `nftables` crate: that crate fails the whole document on one statement its enums do not
//! know, where an evaluator must keep every other rule and call only that one `unknown`; it
//! would also bring strum, schemars and serde_path_to_error for types we read a fraction of.

mod expr;
pub mod reset;
mod text;

use std::collections::HashMap;

use serde_json::Value;

pub use super::rules::Table;
use super::rules::{Base, Chain, Hook, TableFamily};

/// A named set or map: its elements (a map's are `[key, value]` pairs).
#[derive(Debug, Default)]
struct Set {
    elems: Vec<Value>,
    /// Changed at run time by the packet path (`flags dynamic` or `timeout`, or a rule's
    /// `add @set`/`update @set`): its contents now are no guide to the next packet.
    dynamic: bool,
}

/// What the rules of one table may refer to.
struct Scope<'a> {
    /// The table's family (`inet`, `ip`, …).
    family: &'a str,
    chains: &'a HashMap<String, usize>,
    sets: &'a HashMap<String, Set>,
}

/// Compile the JSON of `nft -j list ruleset`. Errors say what is malformed; a rule with an
/// expression this does not know is kept as `unknown`, never an error.
pub fn parse(bytes: &[u8]) -> Result<Vec<Table>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("not nft's JSON: no top-level \"nftables\" array")?;
    let mut tables: Vec<Table> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut chain_ix: Vec<HashMap<String, usize>> = Vec::new();
    let mut sets: Vec<HashMap<String, Set>> = Vec::new();
    for item in items {
        if let Some(t) = item.get("table") {
            let (family, name) = (field(t, "family")?, field(t, "name")?);
            if table_family(&family).is_none() || flags(t).contains(&"dormant") {
                continue;
            }
            index.insert((family.clone(), name.clone()), tables.len());
            tables.push(Table {
                family,
                name,
                has_xt: false,
                chains: Vec::new(),
            });
            chain_ix.push(HashMap::new());
            sets.push(HashMap::new());
        } else if let Some(c) = item.get("chain") {
            let Some(&ti) = index.get(&(field(c, "family")?, field(c, "table")?)) else {
                continue;
            };
            let chain = chain(&tables[ti], c)?;
            chain_ix[ti].insert(field(c, "name")?, tables[ti].chains.len());
            tables[ti].chains.push(chain);
        } else if let Some(s) = item.get("set").or_else(|| item.get("map")) {
            let Some(&ti) = index.get(&(field(s, "family")?, field(s, "table")?)) else {
                continue;
            };
            let elems = s
                .get("elem")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // The kernel lists `flags dynamic` as `timeout` alone when both were given.
            let dynamic = (flags(s).iter()).any(|f| *f == "dynamic" || *f == "timeout");
            sets[ti].insert(field(s, "name")?, Set { elems, dynamic });
        }
    }
    // A set a rule writes to (`add @blacklist { ip saddr }`) changes with the traffic.
    for item in items {
        let Some(r) = item.get("rule") else { continue };
        let Some(&ti) = index.get(&(field(r, "family")?, field(r, "table")?)) else {
            continue;
        };
        for name in written_sets(&r["expr"]) {
            if let Some(set) = sets[ti].get_mut(name) {
                set.dynamic = true;
            }
        }
    }
    for item in items {
        let Some(r) = item.get("rule") else { continue };
        let Some(&ti) = index.get(&(field(r, "family")?, field(r, "table")?)) else {
            continue;
        };
        let chain_name = field(r, "chain")?;
        let Some(&ci) = chain_ix[ti].get(&chain_name) else {
            return Err(format!(
                "rule in chain {chain_name:?}, which the ruleset does not declare"
            ));
        };
        let scope = Scope {
            family: &tables[ti].family,
            chains: &chain_ix[ti],
            sets: &sets[ti],
        };
        let label = tables[ti].chains[ci].label.clone();
        let (rule, xt) = expr::rule(r, &label, &scope);
        tables[ti].has_xt |= xt;
        tables[ti].chains[ci].rules.push(rule);
    }
    Ok(tables)
}

/// The named sets a rule's `set` statements (`add`, `update`, `delete`) write to.
fn written_sets(exprs: &Value) -> Vec<&str> {
    let statements = exprs.as_array().map(Vec::as_slice).unwrap_or_default();
    (statements.iter())
        .filter_map(|s| {
            let body = s.get("set").or_else(|| s.get("map"))?;
            let name = body.get("set").or_else(|| body.get("map"))?;
            name.as_str()?.strip_prefix('@')
        })
        .collect()
}

/// A chain declaration.
fn chain(table: &Table, c: &Value) -> Result<Chain, String> {
    let label = format!(
        "table {} {} chain {}",
        table.family,
        table.name,
        field(c, "name")?
    );
    let hook = match c.get("hook").and_then(Value::as_str) {
        Some("ingress") => Some(Hook::Ingress),
        Some("prerouting") => Some(Hook::Prerouting),
        Some("input") => Some(Hook::Input),
        Some("forward") => Some(Hook::Forward),
        _ => None,
    };
    let base = hook.map(|hook| Base {
        hook,
        prio: priority(c.get("prio")),
        policy_drop: c.get("policy").and_then(Value::as_str) == Some("drop"),
        nat: c.get("type").and_then(Value::as_str) == Some("nat"),
        device: c.get("dev").and_then(Value::as_str).map(str::to_string),
        handle: c.get("handle").and_then(Value::as_u64).unwrap_or(0),
        table: 0,
    });
    let family = table_family(&table.family).unwrap_or(TableFamily::Both);
    Ok(Chain {
        label,
        family,
        base,
        rules: Vec::new(),
        index: Default::default(),
    })
}

/// Which packets a table of this family sees; `None` for families off the input path
/// (`bridge`, `arp`).
fn table_family(family: &str) -> Option<TableFamily> {
    match family {
        "ip" => Some(TableFamily::Ip),
        "ip6" => Some(TableFamily::Ip6),
        "inet" | "netdev" => Some(TableFamily::Both),
        _ => None,
    }
}

/// A chain priority: a number, or one of nft's names.
fn priority(v: Option<&Value>) -> i32 {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .unwrap_or(0)
            .clamp(i32::MIN.into(), i32::MAX.into()) as i32,
        Some(Value::String(s)) => match s.as_str() {
            "raw" => -300,
            "mangle" => -150,
            "dstnat" => -100,
            "security" => 50,
            "srcnat" => 100,
            _ => 0,
        },
        _ => 0,
    }
}

/// A required string member.
fn field(v: &Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("an object without a string {key:?}: {}", text::short(v)))
}

/// The `flags` of a table or set.
fn flags(v: &Value) -> Vec<&str> {
    match v.get("flags") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}
