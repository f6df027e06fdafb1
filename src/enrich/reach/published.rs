//! Published ports in the rules: every `dnat` and `redirect` a packet can reach from a nat
//! prerouting chain (Docker's `-A DOCKER ! -i docker0 -p tcp --dport 8080 -j DNAT
//! --to-destination 172.17.0.2:80`), as (protocol, host address and port) → (target address
//! and port), with the rule as `by`; and the reach verdict of such a port.
//!
//! The protocol, port and address a rule forwards are read from its own matches and those of
//! the rules that jumped to its chain. A rule that forwards every port (a 1:1 NAT, `dnat to
//! 10.0.0.5` with no port match) or more than [`MAX_PORTS`] ports publishes no row: it is a
//! host forwarded wholesale, not a published port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ranges::{RangeSet, num_addr};
use super::rules::{Action, Chain, Field, Hook, Match, Step, TableFamily};
use super::{Reach, Ruleset};
use crate::model::published::{Landing, Published, PublishedBy, PublishedKind};
use crate::model::{Family, Protocol};

/// More ports than this in one rule and it is not read as published ports.
pub const MAX_PORTS: u128 = 1024;
/// Jumps nested deeper than this are not followed (nft refuses loops long before).
const MAX_DEPTH: usize = 16;

/// Every published port the rules define, in rule order; the same mapping from two rules is
/// one port with both as `by`.
pub fn from_rules(ruleset: &Ruleset) -> Vec<Published> {
    let chains = ruleset.chains();
    let mut found: Vec<Published> = Vec::new();
    let mut starts: Vec<usize> = (0..chains.len())
        .filter(|&i| {
            chains[i]
                .base
                .as_ref()
                .is_some_and(|b| b.nat && b.hook == Hook::Prerouting)
        })
        .collect();
    starts.sort_by_key(|&i| chains[i].base.as_ref().map(|b| b.prio));
    for ci in starts {
        walk(chains, ci, &mut Vec::new(), 0, &mut found);
    }
    found
}

/// Gather the nat rules of chain `ci`, reached under the matches `context`.
fn walk<'a>(
    chains: &'a [Chain],
    ci: usize,
    context: &mut Vec<&'a Match>,
    depth: usize,
    found: &mut Vec<Published>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let chain = &chains[ci];
    for rule in &chain.rules {
        let before = context.len();
        for step in &rule.steps {
            match step {
                Step::Match(m) => context.push(m),
                Step::Effect(_) => {}
                Step::Verdict(action) => {
                    let target = match action {
                        Action::Jump(c) | Action::Goto(c) => Some(*c),
                        _ => None,
                    };
                    match target {
                        Some(c) => walk(chains, c, context, depth + 1, found),
                        None => {
                            let at = Rule {
                                family: chain.family,
                                by: &rule.by,
                            };
                            publish(&at, context, action, found);
                        }
                    }
                }
            }
        }
        context.truncate(before);
    }
}

/// The rule a mapping comes from.
struct Rule<'a> {
    family: TableFamily,
    by: &'a str,
}

/// Add the ports a nat verdict publishes under `context`.
fn publish(rule: &Rule<'_>, context: &[&Match], action: &Action, found: &mut Vec<Published>) {
    let (kind, addr, port) = match action {
        Action::Dnat {
            addr: Some(addr),
            port,
        } => (PublishedKind::Dnat, Some(*addr), *port),
        Action::Redirect { port } => (PublishedKind::Redirect, None, *port),
        _ => return,
    };
    let Some(ports) = dports(context) else { return };
    for family in families(rule.family, context, addr) {
        for protocol in protocols(context) {
            let host_addr = host_addr(context, family);
            for &(lo, hi) in ports.ranges() {
                for host_port in lo..=hi {
                    let host_port = host_port as u16;
                    let mapping = Published {
                        protocol,
                        family,
                        netns: None,
                        host_addr,
                        host_port,
                        target_addr: addr,
                        target_port: port.unwrap_or(host_port),
                        by: vec![PublishedBy {
                            kind,
                            text: rule.by.to_string(),
                            pid: None,
                        }],
                        landing: Landing::NotSeen,
                        reach: Vec::new(),
                    };
                    add(found, mapping);
                }
            }
        }
    }
}

/// Add `mapping`, or its `by` to the same mapping found before.
pub fn add(found: &mut Vec<Published>, mapping: Published) {
    let same = |p: &&mut Published| {
        (p.protocol, p.family, p.host_addr, p.host_port)
            == (
                mapping.protocol,
                mapping.family,
                mapping.host_addr,
                mapping.host_port,
            )
            && (p.target_addr, p.target_port) == (mapping.target_addr, mapping.target_port)
            && p.netns.as_ref().map(|n| n.inode) == mapping.netns.as_ref().map(|n| n.inode)
    };
    match found.iter_mut().find(same) {
        Some(p) => p.by.extend(mapping.by),
        None => found.push(mapping),
    }
}

/// The destination ports the matches allow, when they name at most [`MAX_PORTS`].
fn dports(context: &[&Match]) -> Option<RangeSet> {
    let mut ports = RangeSet::range(1, 65535);
    let mut named = false;
    for m in context {
        if let Match::Values {
            field: Field::Dport(_),
            set,
            neg,
        } = m
        {
            ports = if *neg {
                ports.subtract(set)
            } else {
                named = true;
                ports.intersect(set)
            };
        }
    }
    let count: u128 = ports.ranges().iter().map(|(lo, hi)| hi - lo + 1).sum();
    (named && count > 0 && count <= MAX_PORTS).then_some(ports)
}

/// The protocols the matches allow (a port match implies its protocol).
fn protocols(context: &[&Match]) -> Vec<Protocol> {
    [(6u8, Protocol::Tcp), (17, Protocol::Udp)]
        .into_iter()
        .filter(|&(number, _)| {
            context.iter().all(|m| match m {
                Match::Values {
                    field: Field::L4proto,
                    set,
                    neg,
                } => set.contains(number.into()) != *neg,
                Match::Values {
                    field: Field::Dport(Some(p)),
                    neg: false,
                    ..
                } => *p == number,
                _ => true,
            })
        })
        .map(|(_, protocol)| protocol)
        .collect()
}

/// The families the table, the matches and the target allow.
fn families(table: TableFamily, context: &[&Match], target: Option<IpAddr>) -> Vec<Family> {
    [Family::Ipv4, Family::Ipv6]
        .into_iter()
        .filter(|&f| table.sees(f))
        .filter(|&f| target.is_none_or(|a| a.is_ipv4() == (f == Family::Ipv4)))
        .filter(|&f| {
            context.iter().all(|m| match m {
                Match::Values {
                    field: Field::Nfproto,
                    set,
                    neg,
                } => set.contains(if f == Family::Ipv4 { 2 } else { 10 }) != *neg,
                Match::Values {
                    field: Field::Saddr(g) | Field::Daddr(g),
                    neg: false,
                    ..
                } => *g == f,
                _ => true,
            })
        })
        .collect()
}

/// The host address the matches fix (`-d 192.0.2.1`, Docker's `-p 192.0.2.1:8080:80`), else
/// the unspecified address: every address of the host.
fn host_addr(context: &[&Match], family: Family) -> IpAddr {
    for m in context {
        if let Match::Values {
            field: Field::Daddr(f),
            set,
            neg: false,
        } = m
        {
            if let [(lo, hi)] = set.ranges() {
                if *f == family && lo == hi {
                    return num_addr(family, *lo);
                }
            }
        }
    }
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Where a published port's target is, as its namespace's addresses and routes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Another host: the packet is forwarded, out through this interface (`None` when no
    /// route holds the target: a match on the output interface is then `unknown`).
    Elsewhere(Option<String>),
    /// One of this host's own addresses: the packet is delivered here.
    Local,
    /// Not known (the namespace's addresses could not be read); the interface the route
    /// names, if any.
    Unknown(Option<String>),
}

/// The verdict for a new connection from outside to the published port's host side. The
/// evaluator follows the packet through prerouting to the port's own DNAT or redirect, then:
/// to another host ([`Target::Elsewhere`]), through the forward hook, out through the
/// interface the host routes the target through; to this host (a redirect, or a DNAT to one
/// of its own addresses: [`Target::Local`]), through the input hook as a packet to the target
/// port, where that port's rules decide it. Where it is not known which, both are followed,
/// and the verdict is theirs where they agree, else `unknown`.
pub fn reach(ruleset: &Ruleset, published: &Published, target: Target) -> Reach {
    let packet = super::Packet {
        family: published.family,
        proto: published.protocol,
        saddr: None,
        daddr: (!published.host_addr.is_unspecified()).then_some(published.host_addr),
        dport: published.host_port,
        iif: None,
    };
    let follow = |local: bool, oif: Option<String>| super::eval::Follow {
        addr: published.target_addr,
        port: published.target_port,
        oif,
        local: local || published.target_addr.is_none(),
    };
    match target {
        Target::Elsewhere(oif) => ruleset.verdict_following(&packet, &follow(false, oif)),
        Target::Local => ruleset.verdict_following(&packet, &follow(true, None)),
        Target::Unknown(_) if published.target_addr.is_none() => {
            ruleset.verdict_following(&packet, &follow(true, None))
        }
        Target::Unknown(oif) => {
            let away = ruleset.verdict_following(&packet, &follow(false, oif));
            let here = ruleset.verdict_following(&packet, &follow(true, None));
            if (away.verdict, &away.conditions) == (here.verdict, &here.conditions) {
                return away;
            }
            Reach::new(
                super::Verdict::Unknown,
                published.family,
                format!(
                    "{} ({}) if the target is another host, {} ({}) if it is this one: \
                     this namespace's addresses could not be read",
                    away.verdict.name(),
                    away.by,
                    here.verdict.name(),
                    here.by,
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::super::Verdict;
    use super::super::load::compile;
    use super::*;

    fn payload(protocol: &str, field: &str) -> Value {
        json!({"payload": {"protocol": protocol, "field": field}})
    }

    fn is(left: Value, right: Value) -> Value {
        json!({"match": {"op": "==", "left": left, "right": right}})
    }

    /// An `inet nat` table: a prerouting nat chain jumping to `pub`, whose rules are
    /// `rules`, and an unreached chain holding `stray`.
    fn nat(rules: Vec<Value>, stray: Vec<Value>) -> Ruleset {
        let t = |c: Value| json!({"chain": c});
        let mut items = vec![
            json!({"table": {"family": "inet", "name": "nat", "handle": 1}}),
            t(
                json!({"family": "inet", "table": "nat", "name": "pre", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}),
            ),
            t(json!({"family": "inet", "table": "nat", "name": "pub", "handle": 2})),
            t(json!({"family": "inet", "table": "nat", "name": "stray", "handle": 3})),
            json!({"rule": {"family": "inet", "table": "nat", "chain": "pre", "handle": 4,
                "expr": [is(json!({"fib": {"result": "type", "flags": ["daddr"]}}), json!("local")), {"jump": {"target": "pub"}}]}}),
        ];
        for (chain, list) in [("pub", rules), ("stray", stray)] {
            for (i, expr) in list.into_iter().enumerate() {
                items.push(json!({"rule": {"family": "inet", "table": "nat", "chain": chain, "handle": 10 + i, "expr": expr}}));
            }
        }
        let doc = json!({ "nftables": items });
        compile(doc.to_string().as_bytes(), |_, _| None, &[]).expect("compiles")
    }

    fn show(p: &Published) -> String {
        let to = match p.target_addr {
            Some(IpAddr::V6(a)) => format!("[{a}]:{}", p.target_port),
            Some(a) => format!("{a}:{}", p.target_port),
            None => format!("port {}", p.target_port),
        };
        format!(
            "{} {}:{} -> {to} {:?}",
            p.protocol.name(),
            p.host_addr,
            p.host_port,
            p.by.iter().map(|b| b.kind).collect::<Vec<_>>()
        )
    }

    #[test]
    fn dnat_and_redirect_rules_are_published_ports() {
        let rs = nat(
            vec![
                json!([
                    is(payload("ip", "daddr"), json!("192.0.2.1")),
                    is(payload("tcp", "dport"), json!({"set": [8080, 8443]})),
                    {"dnat": {"family": "ip", "addr": "10.0.0.2", "port": 80}}
                ]),
                json!([
                    is(payload("udp", "dport"), json!(53)),
                    {"redirect": {"port": 5353}}
                ]),
                // Every port: a host forwarded wholesale, not a published port.
                json!([{"dnat": {"family": "ip", "addr": "10.0.0.9"}}]),
                json!([
                    is(payload("tcp", "dport"), json!(2222)),
                    {"dnat": {"family": "ip6", "addr": "fd00::2", "port": 22}}
                ]),
            ],
            vec![json!([
                is(payload("tcp", "dport"), json!(9999)),
                {"dnat": {"family": "ip", "addr": "10.0.0.3", "port": 80}}
            ])],
        );
        let found: Vec<String> = from_rules(&rs).iter().map(show).collect();
        assert_eq!(
            found,
            [
                "tcp 192.0.2.1:8080 -> 10.0.0.2:80 [Dnat]",
                "tcp 192.0.2.1:8443 -> 10.0.0.2:80 [Dnat]",
                "udp 0.0.0.0:53 -> port 5353 [Redirect]",
                "udp :::53 -> port 5353 [Redirect]",
                "tcp :::2222 -> [fd00::2]:22 [Dnat]",
            ]
        );
    }

    #[test]
    fn a_rule_and_a_proxy_for_one_mapping_are_one_port() {
        let rs = nat(
            vec![json!([
                is(payload("tcp", "dport"), json!(8080)),
                {"dnat": {"family": "ip", "addr": "172.17.0.2", "port": 80}}
            ])],
            vec![],
        );
        let mut found = from_rules(&rs);
        let rule = found[0].clone();
        let proxy = |target: &str| Published {
            by: vec![PublishedBy {
                kind: PublishedKind::DockerProxy,
                text: "docker-proxy pid 5".into(),
                pid: Some(5),
            }],
            target_addr: Some(target.parse().unwrap()),
            ..rule.clone()
        };
        add(&mut found, proxy("172.17.0.2"));
        assert_eq!(found.len(), 1);
        let kinds: Vec<_> = found[0].by.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [PublishedKind::Dnat, PublishedKind::DockerProxy]);
        add(&mut found, proxy("172.17.0.3"));
        assert_eq!(found.len(), 2, "another target is another port");
    }

    #[test]
    fn docker_rules_publish_8080_and_forward_decides_its_reach() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rulesets/docker.iptables-save");
        let text = std::fs::read(path).unwrap();
        let rs = compile(br#"{"nftables": []}"#, |_, _| None, &[(Family::Ipv4, text)]).unwrap();
        let found = from_rules(&rs);
        assert_eq!(
            found.iter().map(show).collect::<Vec<_>>(),
            ["tcp 0.0.0.0:8080 -> 172.17.0.2:80 [Dnat]"]
        );
        assert!(
            found[0].by[0]
                .text
                .contains("chain DOCKER rule 2: -A DOCKER ! -i docker0")
        );
        // Docker's FORWARD accepts the new connection to the container's port through
        // docker0, so it is open from outside (a packet from docker0 itself is not DNAT-ed,
        // and INPUT accepts it). Were the container routed through another interface,
        // FORWARD's policy would drop the forwarded packet: only the one from docker0 gets
        // through. Through an unknown interface, the verdict cannot be told.
        let r = reach(&rs, &found[0], Target::Elsewhere(Some("docker0".into())));
        assert_eq!(r.verdict, Verdict::Open, "{r:?}");
        let r = reach(&rs, &found[0], Target::Elsewhere(Some("eth1".into())));
        assert_eq!(r.verdict, Verdict::Restricted, "{}", r.by);
        assert_eq!(r.conditions, [r#"iifname "docker0""#]);
        let r = reach(&rs, &found[0], Target::Elsewhere(None));
        assert_eq!(r.verdict, Verdict::Unknown, "{}", r.by);
    }

    #[test]
    fn a_published_port_dropped_before_its_dnat_is_filtered() {
        let mut rs = nat(
            vec![json!([
                is(payload("tcp", "dport"), json!(8080)),
                {"dnat": {"family": "ip", "addr": "10.0.0.2", "port": 80}}
            ])],
            vec![],
        );
        let mut chains = rs.chains().to_vec();
        let raw = Chain {
            label: "table inet raw chain pre".into(),
            family: TableFamily::Both,
            base: Some(super::super::rules::Base {
                hook: Hook::Prerouting,
                prio: -300,
                policy_drop: true,
                nat: false,
                device: None,
                handle: 0,
                table: usize::MAX,
            }),
            rules: vec![],
            index: Default::default(),
        };
        chains.push(raw);
        rs = Ruleset::from_chains(chains);
        let p = &from_rules(&rs)[0];
        let r = reach(&rs, p, Target::Elsewhere(Some("eth0".into())));
        assert_eq!(r.verdict, Verdict::Filtered, "{}", r.by);
    }

    /// A DNAT to one of this host's addresses, and a redirect: the packet is delivered here,
    /// so the input chain's rules for the target port decide it (forward never sees it).
    /// Where it is not known whether the target is this host's, both ways are followed.
    #[test]
    fn a_port_published_to_this_host_meets_the_input_rules_of_its_target() {
        let mut rs = nat(
            vec![
                json!([
                    is(payload("tcp", "dport"), json!(2224)),
                    {"dnat": {"family": "ip", "addr": "192.0.2.1", "port": 5432}}
                ]),
                json!([
                    is(payload("tcp", "dport"), json!(2222)),
                    {"dnat": {"family": "ip", "addr": "192.0.2.1", "port": 22}}
                ]),
                json!([
                    is(payload("tcp", "dport"), json!(2226)),
                    {"redirect": {"port": 5432}}
                ]),
            ],
            vec![],
        );
        // input: policy drop, 22 accepted; forward: policy accept.
        let mut chains = rs.chains().to_vec();
        let base = |hook: Hook, policy_drop: bool| super::super::rules::Base {
            hook,
            prio: 0,
            policy_drop,
            nat: false,
            device: None,
            handle: 0,
            table: usize::MAX,
        };
        let input = compile_input_accepting_22();
        chains.push(Chain {
            label: "table inet filter chain input".into(),
            family: TableFamily::Both,
            base: Some(base(Hook::Input, true)),
            rules: input,
            index: Default::default(),
        });
        chains.push(Chain {
            label: "table inet filter chain forward".into(),
            family: TableFamily::Both,
            base: Some(base(Hook::Forward, false)),
            rules: vec![],
            index: Default::default(),
        });
        rs = Ruleset::from_chains(chains);
        let found = from_rules(&rs);
        let port = |n: u16| found.iter().find(|p| p.host_port == n).unwrap();
        let here = |n: u16| reach(&rs, port(n), Target::Local);
        assert_eq!(here(2224).verdict, Verdict::Filtered, "{}", here(2224).by);
        assert!(
            here(2224).by.contains("chain input policy drop"),
            "{}",
            here(2224).by
        );
        assert_eq!(here(2222).verdict, Verdict::Open, "{}", here(2222).by);
        assert_eq!(here(2226).verdict, Verdict::Filtered, "{}", here(2226).by);
        // Taken for another host's, the same packet would pass forward.
        let away = reach(&rs, port(2224), Target::Elsewhere(Some("eth0".into())));
        assert_eq!(away.verdict, Verdict::Open, "{}", away.by);
        // Not known which: they disagree, so unknown, naming both; where they agree, theirs.
        let unsure = reach(&rs, port(2224), Target::Unknown(Some("eth0".into())));
        assert_eq!(unsure.verdict, Verdict::Unknown, "{}", unsure.by);
        assert!(
            unsure.by.contains("addresses could not be read"),
            "{}",
            unsure.by
        );
        let agree = reach(&rs, port(2222), Target::Unknown(Some("eth0".into())));
        assert_eq!(agree.verdict, Verdict::Open, "{}", agree.by);
        // A redirect is this host's whatever the addresses say.
        let redirect = reach(&rs, port(2226), Target::Unknown(None));
        assert_eq!(redirect.verdict, Verdict::Filtered, "{}", redirect.by);
    }

    /// `tcp dport 22 accept`, compiled as the nft reader compiles it.
    fn compile_input_accepting_22() -> Vec<super::super::rules::Rule> {
        let doc = json!({"nftables": [
            {"table": {"family": "inet", "name": "x", "handle": 1}},
            {"chain": {"family": "inet", "table": "x", "name": "input", "handle": 1,
                "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
            {"rule": {"family": "inet", "table": "x", "chain": "input", "handle": 2,
                "expr": [is(payload("tcp", "dport"), json!(22)), {"accept": null}]}},
        ]});
        let rs = compile(doc.to_string().as_bytes(), |_, _| None, &[]).expect("compiles");
        rs.chains()[0].rules.clone()
    }
}
