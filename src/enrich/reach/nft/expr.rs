//! One rule's expressions compiled into [`Step`]s: matches on the fields the evaluator knows,
//! statements that change the packet, and a verdict. Anything else stays in the rule as an
//! `unknown` match or verdict carrying its text.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

use super::super::ranges::{RangeSet, addr_num, prefix_range};
use super::super::rules::{Action, BitsField, CondKind, Effect, Field, Match, Rule, Step};
use super::{Scope, text};
use crate::model::Family;

/// What a match's left-hand side is.
enum Key {
    /// A numeric field, after the matches it depends on (`ip protocol` needs IPv4).
    Num(Field, Vec<Match>),
    /// Conntrack bits.
    Bits(BitsField),
    /// The input interface's name.
    Iface,
    /// `oifname`: the output interface (a forwarded packet's).
    Oif,
    /// Something the packet does not fix, after the matches it depends on (`icmpv6 type`
    /// needs ICMPv6, so a TCP packet never gets that far).
    Cond(CondKind, Vec<Match>),
}

/// Compile one rule object; also say whether it holds an `xt` expression.
pub fn rule(r: &Value, label: &str, scope: &Scope) -> (Rule, bool) {
    let exprs = r
        .get("expr")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let shown: Vec<String> = exprs
        .iter()
        .filter(|e| e.get("counter").is_none())
        .map(text::stmt)
        .collect();
    let handle = r
        .get("handle")
        .map(text::value)
        .unwrap_or_else(|| "?".into());
    let by: Arc<str> = format!("{label} handle {handle}: {}", shown.join(" ")).into();
    let mut steps = Vec::new();
    let mut xt = false;
    for e in exprs {
        let Some((name, body)) = e.as_object().and_then(|o| o.iter().next()) else {
            steps.push(Step::Verdict(Action::Unknown(
                format!("not a statement: {}", text::short(e)).into(),
            )));
            break;
        };
        xt |= name == "xt";
        let (more, last) = statement(name, body, e, scope);
        steps.extend(more);
        if let Some(action) = last {
            steps.push(Step::Verdict(action));
            break;
        }
    }
    (Rule { steps, by }, xt)
}

/// One statement: the steps it adds, and the verdict that ends the rule, if it is one.
fn statement(
    name: &str,
    body: &Value,
    whole: &Value,
    scope: &Scope,
) -> (Vec<Step>, Option<Action>) {
    let cond = |kind| {
        vec![Step::Match(Match::Cond {
            kind,
            text: text::stmt(whole).into(),
        })]
    };
    match name {
        "match" => (
            matching(body, scope).into_iter().map(Step::Match).collect(),
            None,
        ),
        "counter" | "log" | "set" | "flow" | "last" | "ct helper" | "ct timeout"
        | "ct expectation" => (vec![], None),
        "limit" | "quota" | "meter" | "connlimit" => (cond(CondKind::Limit), None),
        "notrack" => (vec![Step::Effect(Effect::Notrack)], None),
        "mangle" => mangle(body),
        "xt" if body["type"] == "match" => (cond(CondKind::Unknown), None),
        "vmap" => (vec![], Some(vmap(body, scope))),
        "dnat" | "redirect" => (nat_family(body), Some(nat(name, body))),
        "snat" | "masquerade" => (vec![], Some(Action::Accept)),
        "reject" => (reject_family(body, scope), Some(Action::Reject)),
        _ => (vec![], Some(verdict(whole, scope))),
    }
}

/// What nft's listing leaves out before a `reject`: the dependency nft adds itself (`meta
/// l4proto tcp` for `reject with tcp reset`, `meta nfproto` for `reject with icmp …` or
/// `icmpv6 …`), which the JSON drops. And an explicit `meta nfproto` written before `reject
/// with tcp reset` in an inet table is dropped too (nft 1.0.6), so whether such a rule
/// applies to both families cannot be told from the listing.
/// The condition standing for that dropped `meta nfproto`, until nft's netlink listing says
/// what it was ([`super::reset`]).
pub(super) const UNLISTED_NFPROTO: &str =
    "meta nfproto, which nft does not list before reject with tcp reset";

fn reject_family(body: &Value, scope: &Scope) -> Vec<Step> {
    match body.get("type").and_then(Value::as_str) {
        Some("icmp") => vec![Step::Match(nfproto(Family::Ipv4))],
        Some("icmpv6") => vec![Step::Match(nfproto(Family::Ipv6))],
        Some("tcp reset") => {
            let mut steps = vec![Step::Match(l4proto(6))];
            if matches!(scope.family, "inet" | "netdev") {
                steps.push(Step::Match(Match::Cond {
                    kind: CondKind::Unknown,
                    text: UNLISTED_NFPROTO.into(),
                }));
            }
            steps
        }
        _ => vec![],
    }
}

/// `meta mark set N` changes what later rules see; changing a header field (`tcp dport set`)
/// is beyond the evaluator; anything else (`ct mark set`, `ip dscp set`) does not matter here.
fn mangle(body: &Value) -> (Vec<Step>, Option<Action>) {
    let key = &body["key"];
    if key.get("meta").is_some_and(|m| m["key"] == "mark") {
        if let Some(n) = body["value"].as_u64() {
            return (vec![Step::Effect(Effect::SetMark(n as u32))], None);
        }
        return (
            vec![],
            Some(Action::Unknown("sets the mark to a computed value".into())),
        );
    }
    if key.get("payload").is_some() {
        return (vec![], Some(Action::Unknown("rewrites the packet".into())));
    }
    (vec![], None)
}

/// A verdict statement (or a statement the evaluator does not follow).
fn verdict(v: &Value, scope: &Scope) -> Action {
    let Some((name, body)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Action::Unknown(format!("not a verdict: {}", text::short(v)).into());
    };
    match name.as_str() {
        "accept" => Action::Accept,
        "drop" => Action::Drop,
        "reject" => Action::Reject,
        "return" => Action::Return,
        "continue" => Action::Choice(Vec::new()),
        "jump" | "goto" => {
            let target = body["target"].as_str().unwrap_or_default();
            match scope.chains.get(target) {
                Some(&c) if name == "jump" => Action::Jump(c),
                Some(&c) => Action::Goto(c),
                None => Action::Unknown(format!("{name} to undeclared chain {target:?}").into()),
            }
        }
        other => Action::Unknown(format!("{other} is not evaluated").into()),
    }
}

/// `dnat ip6 to …` in an inet table applies to that family's packets only.
fn nat_family(body: &Value) -> Vec<Step> {
    match body.get("family").and_then(Value::as_str) {
        Some("ip") => vec![Step::Match(nfproto(Family::Ipv4))],
        Some("ip6") => vec![Step::Match(nfproto(Family::Ipv6))],
        _ => vec![],
    }
}

/// `dnat to ADDR:PORT`, `redirect to :PORT`.
fn nat(name: &str, body: &Value) -> Action {
    let port = match body.get("port") {
        None => None,
        Some(p) => match p.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(p) => Some(p),
            None => return Action::Unknown(format!("{name} to a computed port").into()),
        },
    };
    if name == "redirect" {
        return Action::Redirect { port };
    }
    let addr = match body.get("addr") {
        None => None,
        Some(a) => match a.as_str().and_then(|s| s.parse::<IpAddr>().ok()) {
            Some(a) => Some(a),
            None => return Action::Unknown("dnat to a computed address".into()),
        },
    };
    Action::Dnat { addr, port }
}

/// A verdict map: one element per key value.
fn vmap(body: &Value, scope: &Scope) -> Action {
    let elems = match values(&body["data"], scope) {
        Ok(e) => e,
        Err(why) => return Action::Unknown(why.into()),
    };
    let keys = keys(&body["key"]);
    let mut choice = Vec::new();
    for e in elems {
        let (Some(k), Some(v)) = (e.get(0), e.get(1)) else {
            return Action::Unknown(
                format!("map element is not key : verdict: {}", text::short(&e)).into(),
            );
        };
        let Some(ms) = tuple(&keys, k, &text::key(&body["key"])) else {
            return Action::Unknown(format!("map key {} is not evaluated", text::short(k)).into());
        };
        choice.push((ms, verdict(v, scope)));
    }
    Action::Choice(choice)
}

/// The matches of one `match` expression (a conjunction).
pub fn matching(m: &Value, scope: &Scope) -> Vec<Match> {
    let shown: Arc<str> = text::matching(m).into();
    let unknown = || {
        vec![Match::Cond {
            kind: CondKind::Unknown,
            text: shown.clone(),
        }]
    };
    let (left, right) = (&m["left"], &m["right"]);
    if let Some(flags) = tcp_flags(m["op"].as_str(), left, right, &shown) {
        return flags;
    }
    let neg = match m["op"].as_str() {
        Some("==") | Some("in") => false,
        Some("!=") => true,
        Some(op) => return comparison(op, left, right).unwrap_or_else(unknown),
        None => return unknown(),
    };
    if let Some(fixed) = rpfilter(left, right) {
        return vec![Match::Const(fixed != neg)];
    }
    if let Some(source) = source_set(left, right, scope, &shown) {
        return vec![source];
    }
    let Ok(elems) = values(right, scope) else {
        return unknown();
    };
    let keys = keys(left);
    if keys.len() > 1 {
        let conjs: Option<Vec<Vec<Match>>> =
            elems.iter().map(|e| tuple(&keys, e, &shown)).collect();
        return match conjs {
            Some(c) if !neg => vec![Match::Any(c)],
            _ => unknown(),
        };
    }
    keys.into_iter()
        .next()
        .and_then(|k| single(&k, &elems, neg, &shown))
        .unwrap_or_else(unknown)
}

/// `tcp flags syn` (op `in`: any of the bits), `tcp flags == syn`, `tcp flags != syn`,
/// `tcp flags ! syn` (none of them), `tcp flags & (fin|syn|rst|ack) == syn` (listed as `tcp
/// flags syn / fin,syn,rst,ack`): `None` when the left side is not `tcp flags`, a match that
/// stays unknown when the right side is not flags.
fn tcp_flags(
    op: Option<&str>,
    left: &Value,
    right: &Value,
    shown: &Arc<str>,
) -> Option<Vec<Match>> {
    let is_flags =
        |v: &Value| v["payload"]["protocol"] == "tcp" && v["payload"]["field"] == "flags";
    let (mask, masked) = match left.get("&").and_then(Value::as_array).map(Vec::as_slice) {
        Some([field, mask]) if is_flags(field) => (flag_bits(mask), true),
        _ if is_flags(left) => (Some(0xff), false),
        _ => return None,
    };
    let unknown = vec![Match::Cond {
        kind: CondKind::Unknown,
        text: shown.clone(),
    }];
    let (Some(mask), Some(value)) = (mask, flag_bits(right)) else {
        return Some(unknown);
    };
    let (any, neg) = match (op, masked) {
        (Some("in"), false) => (true, false),
        (Some("!"), false) => (true, true),
        (Some("==") | Some("in"), _) => (false, false),
        (Some("!="), _) => (false, true),
        _ => return Some(unknown),
    };
    Some(vec![
        l4proto(6),
        Match::TcpFlags {
            mask,
            value: value & mask,
            any,
            neg,
            text: shown.clone(),
        },
    ])
}

/// TCP flag bits: a name (`syn`), a list of names (`syn|ack`), or a number.
fn flag_bits(v: &Value) -> Option<u8> {
    const NAMES: [(&str, u8); 8] = [
        ("fin", 0x01),
        ("syn", 0x02),
        ("rst", 0x04),
        ("psh", 0x08),
        ("ack", 0x10),
        ("urg", 0x20),
        ("ecn", 0x40),
        ("cwr", 0x80),
    ];
    if let Some(n) = v.as_u64() {
        return u8::try_from(n).ok();
    }
    if let Some(s) = v.as_str() {
        return NAMES.iter().find(|(n, _)| *n == s).map(|(_, b)| *b);
    }
    // A list is the bits together (`syn|ack`); a set (`{ syn, ack }`) is alternatives,
    // which is not one value: left unknown.
    let list = v.as_array()?;
    list.iter()
        .try_fold(0u8, |acc, e| Some(acc | flag_bits(e)?))
}

/// `tcp dport < 1024` and the like, on a numeric field.
fn comparison(op: &str, left: &Value, right: &Value) -> Option<Vec<Match>> {
    let [Key::Num(field, mut needs)] = <[Key; 1]>::try_from(keys(left)).ok()? else {
        return None;
    };
    let v = u128::from(right.as_u64()?);
    let set = match op {
        "<" => RangeSet::range(0, v.checked_sub(1)?),
        "<=" => RangeSet::range(0, v),
        ">" => RangeSet::range(v + 1, u128::MAX),
        ">=" => RangeSet::range(v, u128::MAX),
        _ => return None,
    };
    needs.push(Match::Values {
        field,
        set,
        neg: false,
    });
    Some(needs)
}

/// `fib saddr . iif oif missing` (reverse-path filtering): a packet from outside whose source
/// routes back through the interface it came in on passes it, which is what is evaluated.
fn rpfilter(left: &Value, right: &Value) -> Option<bool> {
    let fib = left.get("fib")?;
    let has_saddr = fib["flags"].as_array()?.iter().any(|f| f == "saddr");
    if fib["result"] != "oif" || !has_saddr {
        return None;
    }
    let missing =
        matches!(right, Value::Bool(false)) || right == "0" || right == 0 || right == "missing";
    missing.then_some(false)
}

/// The match of a single key against any of `elems`.
fn single(key: &Key, elems: &[Value], neg: bool, shown: &Arc<str>) -> Option<Vec<Match>> {
    Some(match key {
        Key::Num(field, needs) => {
            let mut parts = Vec::new();
            for e in elems {
                parts.extend(ranges(*field, e)?);
            }
            let mut ms = needs.clone();
            ms.push(Match::Values {
                field: *field,
                set: RangeSet::from_ranges(parts),
                neg,
            });
            ms
        }
        Key::Bits(field) => {
            let mut mask = 0;
            for e in elems {
                mask |= bits(*field, e)?;
            }
            vec![Match::Bits {
                field: *field,
                mask,
                neg,
            }]
        }
        Key::Iface => {
            let names: Option<Vec<String>> = elems
                .iter()
                .map(|e| e.as_str().map(str::to_string))
                .collect();
            vec![Match::Iface { names: names?, neg }]
        }
        Key::Oif => {
            let names: Option<Vec<String>> = elems
                .iter()
                .map(|e| e.as_str().map(str::to_string))
                .collect();
            vec![Match::Oif { names: names?, neg }]
        }
        Key::Cond(kind, needs) => {
            let mut ms = needs.clone();
            ms.push(Match::Cond {
                kind: *kind,
                text: shown.clone(),
            });
            ms
        }
    })
}

/// The conjunction saying a concatenated key equals one element (`ip saddr . tcp dport`
/// against `192.0.2.5 . 40`).
fn tuple(keys: &[Key], elem: &Value, shown: &str) -> Option<Vec<Match>> {
    let parts: Vec<Value> = match elem.get("concat").and_then(Value::as_array) {
        Some(c) => c.clone(),
        None => vec![elem.clone()],
    };
    if parts.len() != keys.len() {
        return None;
    }
    let shown: Arc<str> = shown.into();
    let mut conj = Vec::new();
    for (k, v) in keys.iter().zip(&parts) {
        conj.extend(single(k, std::slice::from_ref(v), false, &shown)?);
    }
    Some(conj)
}

/// A match of the source address against a named set whose contents change at run time: a
/// dynamic or timeout set, one a rule adds to, or one declared empty (fail2ban's and
/// crowdsec's sets are plain, filled and emptied by a daemon). What it holds when the rules
/// are read says nothing about the next packet, so it is a condition on the source, the same
/// whether the set is empty now or not (`restricted`, never `open` one minute and `unknown`
/// the next). A non-empty static set is read as its addresses.
fn source_set(left: &Value, right: &Value, scope: &Scope, shown: &Arc<str>) -> Option<Match> {
    let name = right.as_str()?.strip_prefix('@')?;
    let set = scope.sets.get(name)?;
    let source = matches!(key(left), Key::Num(Field::Saddr(_), _));
    (source && (set.dynamic || set.elems.is_empty())).then(|| Match::Cond {
        kind: CondKind::Source,
        text: shown.clone(),
    })
}

/// The elements a right-hand side stands for: a named set's, an anonymous set's, or itself.
fn values(right: &Value, scope: &Scope) -> Result<Vec<Value>, String> {
    if let Some(name) = right.as_str().and_then(|s| s.strip_prefix('@')) {
        let set = scope
            .sets
            .get(name)
            .ok_or_else(|| format!("set @{name} is not declared"))?;
        if set.dynamic {
            return Err(format!("set @{name} is filled at run time"));
        }
        return Ok(set.elems.clone());
    }
    if let Value::Array(items) = right {
        return Ok(items.clone());
    }
    match right.get("set") {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(single) => Ok(vec![single.clone()]),
        None => Ok(vec![right.clone()]),
    }
}

/// The keys of a left-hand side (several for a concatenation).
fn keys(left: &Value) -> Vec<Key> {
    match left.get("concat").and_then(Value::as_array) {
        Some(parts) => parts.iter().map(key).collect(),
        None => vec![key(left)],
    }
}

/// What one left-hand expression is.
fn key(left: &Value) -> Key {
    let unknown = Key::Cond(CondKind::Unknown, vec![]);
    if let Some(p) = left.get("payload") {
        return payload(
            p["protocol"].as_str().unwrap_or(""),
            p["field"].as_str().unwrap_or(""),
        );
    }
    if let Some(m) = left.get("meta") {
        return match m["key"].as_str() {
            Some("l4proto") => Key::Num(Field::L4proto, vec![]),
            Some("nfproto") => Key::Num(Field::Nfproto, vec![]),
            Some("iif") | Some("iifname") => Key::Iface,
            Some("oif") | Some("oifname") => Key::Oif,
            Some("mark") => Key::Num(Field::Mark, vec![]),
            _ => unknown,
        };
    }
    if let Some(c) = left.get("ct") {
        return match c["key"].as_str() {
            Some("state") if c.get("dir").is_none() => Key::Bits(BitsField::CtState),
            Some("status") if c.get("dir").is_none() => Key::Bits(BitsField::CtStatus),
            _ => unknown,
        };
    }
    if let Some(f) = left.get("fib") {
        let flags: Vec<&str> = f["flags"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if f["result"] == "type" && flags.contains(&"daddr") && !flags.contains(&"oif") {
            return Key::Num(Field::FibDaddrType, vec![]);
        }
    }
    unknown
}

/// A payload field: `tcp dport`, `ip saddr`, `ip protocol`, `ip6 nexthdr`; any other field
/// of a header the packet has is unknown, of one it has not never matches.
fn payload(protocol: &str, field: &str) -> Key {
    let family = match protocol {
        "ip" => Some(Family::Ipv4),
        "ip6" => Some(Family::Ipv6),
        _ => None,
    };
    let transport = match protocol {
        "tcp" => Some(6),
        "udp" => Some(17),
        "udplite" => Some(136),
        "sctp" => Some(132),
        "dccp" => Some(33),
        "icmp" => Some(1),
        "icmpv6" => Some(58),
        _ => None,
    };
    let unknown = CondKind::Unknown;
    match (family, transport, field) {
        (Some(f), _, "saddr") => Key::Num(Field::Saddr(f), vec![]),
        (Some(f), _, "daddr") => Key::Num(Field::Daddr(f), vec![]),
        (Some(f), _, "protocol" | "nexthdr") => Key::Num(Field::L4proto, vec![nfproto(f)]),
        (Some(f), _, _) => Key::Cond(unknown, vec![nfproto(f)]),
        (_, Some(t), "dport") if t != 1 && t != 58 => Key::Num(Field::Dport(Some(t)), vec![]),
        (_, Some(t), "sport") if t != 1 && t != 58 => Key::Cond(CondKind::Sport, vec![l4proto(t)]),
        (_, Some(t), _) => Key::Cond(unknown, vec![l4proto(t)]),
        _ if protocol == "th" && field == "dport" => Key::Num(Field::Dport(None), vec![]),
        _ if protocol == "th" && field == "sport" => Key::Cond(CondKind::Sport, vec![]),
        _ => Key::Cond(unknown, vec![]),
    }
}

/// `meta l4proto` of protocol number `p`.
fn l4proto(p: u8) -> Match {
    Match::Values {
        field: Field::L4proto,
        set: RangeSet::point(p.into()),
        neg: false,
    }
}

/// `meta nfproto` of `family`.
pub(super) fn nfproto(family: Family) -> Match {
    let n = if family == Family::Ipv4 { 2 } else { 10 };
    Match::Values {
        field: Field::Nfproto,
        set: RangeSet::point(n),
        neg: false,
    }
}

/// The values one element of a numeric match stands for.
fn ranges(field: Field, e: &Value) -> Option<Vec<(u128, u128)>> {
    if let Some(r) = e.get("range").and_then(Value::as_array) {
        let (lo, hi) = (number(field, r.first()?)?, number(field, r.get(1)?)?);
        return Some(vec![(lo.0, hi.1)]);
    }
    if let Some(p) = e.get("prefix") {
        let addr: IpAddr = p["addr"].as_str()?.parse().ok()?;
        address_of(field, addr)?;
        return Some(vec![prefix_range(addr, p["len"].as_u64()?.min(128) as u8)]);
    }
    number(field, e).map(|r| vec![r])
}

/// One literal value of `field` as a range (an address is a one-address range).
fn number(field: Field, v: &Value) -> Option<(u128, u128)> {
    if let Field::Saddr(_) | Field::Daddr(_) = field {
        let addr: IpAddr = v.as_str()?.parse().ok()?;
        let n = address_of(field, addr)?;
        return Some((n, n));
    }
    let n = match v {
        Value::Number(n) => u128::from(n.as_u64()?),
        Value::String(s) => named(field, s)?,
        _ => return None,
    };
    Some((n, n))
}

/// An address as a number, if it is of the field's family.
fn address_of(field: Field, addr: IpAddr) -> Option<u128> {
    let (Field::Saddr(f) | Field::Daddr(f)) = field else {
        return None;
    };
    (addr.is_ipv4() == (f == Family::Ipv4)).then(|| addr_num(addr))
}

/// A value nft prints by name.
fn named(field: Field, s: &str) -> Option<u128> {
    if let Ok(n) = s.parse::<u128>() {
        return Some(n);
    }
    let table: &[(&str, u128)] = match field {
        Field::L4proto => &[
            ("icmp", 1),
            ("igmp", 2),
            ("tcp", 6),
            ("udp", 17),
            ("gre", 47),
            ("esp", 50),
            ("ah", 51),
            ("ipv6-icmp", 58),
            ("icmpv6", 58),
            ("sctp", 132),
            ("dccp", 33),
            ("udplite", 136),
        ],
        Field::Nfproto => &[("ipv4", 2), ("ipv6", 10)],
        Field::FibDaddrType => &[
            ("unspec", 0),
            ("unicast", 1),
            ("local", 2),
            ("broadcast", 3),
            ("anycast", 4),
            ("multicast", 5),
            ("blackhole", 6),
            ("unreachable", 7),
            ("prohibit", 8),
        ],
        _ => &[],
    };
    table.iter().find(|(n, _)| *n == s).map(|(_, v)| *v)
}

/// The bits a `ct state` or `ct status` name stands for.
fn bits(field: BitsField, v: &Value) -> Option<u32> {
    if let Some(n) = v.as_u64() {
        return u32::try_from(n).ok();
    }
    let table: &[(&str, u32)] = match field {
        BitsField::CtState => &[
            ("invalid", 1),
            ("established", 2),
            ("related", 4),
            ("new", 8),
            ("untracked", 64),
        ],
        BitsField::CtStatus => &[
            ("expected", 1),
            ("seen-reply", 2),
            ("assured", 4),
            ("confirmed", 8),
            ("snat", 16),
            ("dnat", 32),
            ("dying", 512),
        ],
    };
    let s = v.as_str()?;
    table.iter().find(|(n, _)| *n == s).map(|(_, b)| *b)
}
