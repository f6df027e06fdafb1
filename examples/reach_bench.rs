//! Benchmark of the reach evaluator against issue #14's target: with a 1,000-rule ruleset
//! and 25,000 listeners, asking for `reach` adds at most 50 ms.
//!
//! `cargo run --release --example reach_bench` builds (in memory, nothing is loaded into the
//! kernel) an nftables ruleset of 1,000 rules in the shapes real ones have — per-port
//! accepts, source-restricted ports, port sets, a verdict map, jumps into per-service chains —
//! as `nft -j list ruleset` would print it, and 25,000 non-loopback TCP and UDP listeners on
//! distinct ports and addresses (the worst case: a loopback listener costs nothing). It prints
//! the time to compile the rules and to give every listener its verdicts, cold and cached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use lsports::enrich::reach::load::compile;
use lsports::enrich::reach::{Ruleset, Verdict};
use lsports::model::{DeviceBinding, Family, Protocol, Socket, SocketState, SourceKind};
use serde_json::{Value, json};

const RULES: usize = 1_000;
const LISTENERS: usize = 25_000;
const ROUNDS: usize = 5;

fn main() -> anyhow::Result<()> {
    let doc = ruleset();
    let bytes = serde_json::to_vec(&doc)?;
    let sockets = listeners();
    let run = |rs: &Ruleset| {
        let t = Instant::now();
        let mut counts = [0usize; 6];
        for s in &sockets {
            for r in rs.for_listener(s) {
                counts[r.verdict as usize] += 1;
            }
        }
        (t.elapsed(), counts)
    };
    // The machine is shared: the median of a few rounds, each from a fresh compile.
    let mut rounds = Vec::new();
    let mut counts = [0; 6];
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let rs = compile(&bytes, |_, _| None, &[])?;
        let compiled = t.elapsed();
        let (cold, c) = run(&rs);
        let (warm, _) = run(&rs);
        counts = c;
        rounds.push((compiled + cold, compiled, cold, warm));
    }
    rounds.sort();
    let (_, compiled, cold, warm) = rounds[ROUNDS / 2];
    println!(
        "{} rules ({} KiB of JSON), {LISTENERS} listeners",
        rule_count(&doc),
        bytes.len() / 1024
    );
    println!("median of {ROUNDS} rounds");
    println!("compile the ruleset:        {:>8.2} ms", ms(compiled));
    println!("verdicts, cold cache:       {:>8.2} ms", ms(cold));
    println!("verdicts, cached:           {:>8.2} ms", ms(warm));
    println!(
        "added by reach (compile + cold): {:.2} ms (target: at most 50 ms)",
        ms(compiled + cold)
    );
    let names = [
        Verdict::Open,
        Verdict::Restricted,
        Verdict::Filtered,
        Verdict::Rejected,
        Verdict::Local,
        Verdict::Unknown,
    ];
    let summary: Vec<String> = names
        .iter()
        .map(|v| format!("{} {}", v.name(), counts[*v as usize]))
        .collect();
    println!("verdicts: {}", summary.join(", "));
    Ok(())
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rule_count(doc: &Value) -> usize {
    doc["nftables"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|i| i.get("rule").is_some()).count())
}

fn m(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn dport(proto: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": "dport"}})
}

/// 1,000 rules: a base input chain (policy drop) with the usual preamble, per-port accepts,
/// source-restricted ports, port sets, a verdict map, and jumps into 20 service chains.
fn ruleset() -> Value {
    let table = json!({"table": {"family": "inet", "name": "filter", "handle": 1}});
    let mut items = vec![table];
    let chain = |name: &str, base: bool| {
        let mut c = json!({"family": "inet", "table": "filter", "name": name, "handle": 1});
        if base {
            c["type"] = json!("filter");
            c["hook"] = json!("input");
            c["prio"] = json!(0);
            c["policy"] = json!("drop");
        }
        json!({ "chain": c })
    };
    items.push(chain("input", true));
    let services: Vec<String> = (0..20).map(|i| format!("svc{i}")).collect();
    for s in &services {
        items.push(chain(s, false));
    }
    let allowed = json!({"set": {"family": "inet", "table": "filter", "name": "admins", "type": "ipv4_addr",
        "flags": ["interval"], "elem": [{"prefix": {"addr": "192.0.2.0", "len": 24}}, "198.51.100.7"]}});
    items.push(allowed);
    let mut rules: Vec<(String, Value)> = vec![
        (
            "input".into(),
            json!([m(json!({"ct": {"key": "state"}}), json!({"set": ["established", "related"]})), {"accept": null}]),
        ),
        (
            "input".into(),
            json!([m(json!({"meta": {"key": "iifname"}}), json!("lo")), {"accept": null}]),
        ),
        (
            "input".into(),
            json!([{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}, {"drop": null}]),
        ),
    ];
    let vmap: Vec<Value> = (0..50)
        .map(|i| json!([40_000 + i, {"accept": null}]))
        .collect();
    rules.push((
        "input".into(),
        json!([{"vmap": {"key": dport("tcp"), "data": {"set": vmap}}}]),
    ));
    for (i, s) in services.iter().enumerate() {
        let ports: Vec<Value> = (0..10).map(|k| json!(30_000 + i * 10 + k)).collect();
        rules.push((
            "input".into(),
            json!([m(dport("tcp"), json!({"set": ports})), {"jump": {"target": s}}]),
        ));
    }
    let mut n = 0;
    while rules.len() < RULES {
        n += 1;
        let port = 1 + (n * 37) % 29_000;
        let (chain, rule) = match n % 5 {
            0 => (
                services[n % 20].clone(),
                json!([m(dport("tcp"), json!(30_000 + (n % 200))), m(json!({"payload": {"protocol": "ip", "field": "saddr"}}), json!("@admins")), {"accept": null}]),
            ),
            1 => (
                "input".into(),
                json!([m(dport("udp"), json!(port)), {"accept": null}]),
            ),
            2 => (
                "input".into(),
                json!([m(json!({"payload": {"protocol": "ip", "field": "saddr"}}), json!({"prefix": {"addr": "203.0.113.0", "len": 24}})), m(dport("tcp"), json!(port)), {"accept": null}]),
            ),
            3 => (
                "input".into(),
                json!([m(dport("tcp"), json!({"set": [port, {"range": [port + 1, port + 5]}]})), {"reject": null}]),
            ),
            _ => (
                "input".into(),
                json!([m(dport("tcp"), json!(port)), {"accept": null}]),
            ),
        };
        rules.push((chain, rule));
    }
    for (handle, (chain, expr)) in rules.into_iter().enumerate() {
        items.push(json!({"rule": {"family": "inet", "table": "filter", "chain": chain, "handle": handle + 10, "expr": expr}}));
    }
    json!({ "nftables": items })
}

/// 25,000 listeners on distinct ports: wildcard, dual-stack and specific addresses, TCP and
/// UDP.
fn listeners() -> Vec<Socket> {
    (0..LISTENERS)
        .map(|i| {
            let (local_addr, v6only) = match i % 4 {
                0 => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), None),
                1 => (IpAddr::V6(Ipv6Addr::UNSPECIFIED), Some(false)),
                2 => (
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + (i % 200) as u8)),
                    None,
                ),
                _ => (
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0,
                        0,
                        0,
                        0,
                        0,
                        1 + (i % 200) as u16,
                    )),
                    Some(true),
                ),
            };
            let protocol = if i % 3 == 0 {
                Protocol::Udp
            } else {
                Protocol::Tcp
            };
            Socket {
                protocol,
                family: if local_addr.is_ipv4() {
                    Family::Ipv4
                } else {
                    Family::Ipv6
                },
                local_addr,
                local_port: 1 + ((i * 7) % 65_000) as u16,
                remote_addr: local_addr,
                remote_port: 0,
                state: if protocol == Protocol::Tcp {
                    SocketState::LISTEN
                } else {
                    SocketState::CLOSE
                },
                recv_q: 0,
                send_q: None,
                uid: 0,
                inode: i as u64 + 1,
                v6only,
                device: DeviceBinding::Unbound,
                source: SourceKind::Netlink,
                cgroup_id: None,
                netns: None,
            }
        })
        .collect()
}
