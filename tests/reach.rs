//! The reach evaluator against the kernel: a host and an outside network namespace joined by
//! a veth pair, dual-stack TCP listeners and UDP echo servers on the host, a ruleset loaded
//! there (nft, iptables-nft or iptables-legacy), and probes from outside from two sources per
//! family. The verdict lsports reads from that namespace must never be contradicted by a
//! probe: `open`/`restricted` (for the probe's own source and interface) ⇒ it gets through,
//! `filtered` ⇒ it times out, `rejected` ⇒ a reset or ICMP error; `unknown` allows anything.
//!
//! Rulesets: the captured ufw, firewalld and Docker ones (`fixtures/rulesets/`), one of every
//! construct, and a seeded random generator (`LSPORTS_REACH_CASES` cases, default 200;
//! `LSPORTS_REACH_SEED` to replay).

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

use common::*;
use lsports::enrich::reach::{Packet, Reach, Ruleset, Sources, Verdict};
use lsports::model::{Family, Protocol};
use serde_json::{Value, json};

/// Ports the host listens on (TCP and UDP) and the probes try.
const PORTS: [u16; 13] = [
    22, 25, 53, 80, 443, 2222, 3306, 5353, 5432, 8080, 8081, 9090, 9999,
];
/// The host's addresses, on its veth `vh`.
const HOST: [&str; 2] = ["192.0.2.1", "2001:db8::1"];
/// The outside's addresses (two per family: the rules can tell them apart).
const OUTSIDE: [&str; 4] = ["192.0.2.2", "198.51.100.2", "2001:db8::2", "2001:db8:1::2"];
/// A probe that sees nothing for this long timed out (retried with [`SLOW`] before it
/// counts against a verdict that expects an answer, so a loaded machine cannot fake a drop).
const QUICK: f64 = 0.4;
const SLOW: f64 = 3.0;

fn lab_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/reach_lab.py")
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/rulesets")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The two namespaces, their processes, and the pipe to the prober.
struct Lab {
    host: Spawned,
    _outside: Spawned,
    to_prober: ChildStdin,
    from_prober: BufReader<ChildStdout>,
    /// Source ports used so far: each probe gets a new one.
    sports: u32,
}

/// One probe: from `src` to the host's address of the same family.
#[derive(Debug, Clone)]
struct Probe {
    proto: Protocol,
    src: IpAddr,
    port: u16,
}

impl Probe {
    fn family(&self) -> Family {
        if self.src.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }

    fn dst(&self) -> IpAddr {
        HOST[usize::from(self.family() == Family::Ipv6)]
            .parse()
            .unwrap()
    }
}

impl Lab {
    fn start() -> Lab {
        let mut listen = scrubbed("unshare");
        listen
            .args(["--net", "python3"])
            .arg(lab_py())
            .arg("listen");
        listen
            .args(PORTS.map(|p| p.to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut host = Spawned::start(listen, "the lab's host (unshare, reach_lab.py listen)");
        let mut line = String::new();
        BufReader::new(host.child_mut().stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the listeners did not start");
        let mut probe = scrubbed("unshare");
        probe.args(["--net", "python3"]).arg(lab_py()).arg("probe");
        probe.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut outside = Spawned::start(probe, "the lab's outside (unshare, reach_lab.py probe)");
        let to_prober = outside.child_mut().stdin.take().unwrap();
        let mut from_prober = BufReader::new(outside.child_mut().stdout.take().unwrap());
        // Ready means in its own namespace: only then may the veth's end be moved there.
        let mut line = String::new();
        from_prober.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the prober did not start");
        let lab = Lab {
            host,
            _outside: outside,
            to_prober,
            from_prober,
            sports: 0,
        };
        let (h, o) = (lab.host.id().to_string(), lab._outside.id().to_string());
        sh(Command::new("ip").args([
            "link", "add", "vh", "netns", &h, "type", "veth", "peer", "name", "vo", "netns", &o,
        ]));
        lab.ip(
            lab.host.id(),
            &[
                "link set lo up",
                "link set vh up",
                "addr add 192.0.2.1/24 dev vh",
                "-6 addr add 2001:db8::1/64 dev vh nodad",
                "route add 198.51.100.0/24 dev vh",
                "-6 route add 2001:db8:1::/64 dev vh",
            ],
        );
        // The kernel rate-limits ICMP errors (per peer: a burst of 6, then one a second), which
        // would turn most rejections of a batch of probes into timeouts.
        let mut sysctl = lab.enter(lab.host.id(), "sh");
        sysctl.args(["-c", "for f in ipv4/icmp_ratelimit ipv6/icmp/ratelimit; do echo 0 > /proc/sys/net/$f; done; \
            echo 1000000 > /proc/sys/net/ipv4/icmp_msgs_per_sec; echo 1000000 > /proc/sys/net/ipv4/icmp_msgs_burst"]);
        sh(&mut sysctl);
        lab.ip(
            lab._outside.id(),
            &[
                "link set lo up",
                "link set vo up",
                "addr add 192.0.2.2/24 dev vo",
                "addr add 198.51.100.2/32 dev vo",
                "-6 addr add 2001:db8::2/64 dev vo nodad",
                "-6 addr add 2001:db8:1::2/128 dev vo nodad",
            ],
        );
        lab
    }

    /// Run `ip` commands in the namespace of `pid`.
    fn ip(&self, pid: u32, commands: &[&str]) {
        for c in commands {
            let mut cmd = self.enter(pid, "ip");
            cmd.args(c.split_whitespace());
            sh(&mut cmd);
        }
    }

    fn enter(&self, pid: u32, program: &str) -> Command {
        let mut cmd = scrubbed("nsenter");
        cmd.arg(format!("--net=/proc/{pid}/ns/net"))
            .arg("--")
            .arg(program);
        cmd
    }

    /// Load rules in the host namespace: `program` (`nft -f -`, `iptables-legacy-restore`)
    /// reading `text`, after every earlier nftables rule is gone.
    fn apply(&self, program: &str, args: &[&str], text: &str) {
        // nft's flush removes iptables-nft's tables too. Legacy tables, once loaded, stay
        // loaded in the namespace: the one legacy case comes last.
        let mut flush = self.enter(self.host.id(), "nft");
        flush.args(["flush", "ruleset"]);
        assert!(output_guarded(flush, "nft flush ruleset").status.success());
        let mut cmd = self.enter(self.host.id(), program);
        cmd.args(args);
        let out = output_with_input(cmd, Some(text.as_bytes()), program);
        assert!(
            out.status.success(),
            "{program} refused the ruleset:\n{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The ruleset as lsports reads it from inside the host namespace (a thread that entered
    /// it, as the pipeline will).
    fn ruleset(&self) -> Ruleset {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.host.id())).unwrap();
        std::thread::spawn(move || {
            // SAFETY: setns on a valid namespace fd changes only this thread's namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            Ruleset::load(&Sources::default()).unwrap_or_else(|e| panic!("load: {e}"))
        })
        .join()
        .unwrap()
    }

    /// Run probes at once with `timeout`; their outcomes in order.
    fn probe(&mut self, probes: &[Probe], timeout: f64) -> Vec<String> {
        let mut batch: Vec<Value> = Vec::new();
        for (i, p) in probes.iter().enumerate() {
            self.sports += 1;
            let sport = 10_000 + self.sports % 50_000;
            batch.push(json!({"id": i.to_string(), "proto": p.proto.name(), "src": p.src.to_string(), "sport": sport, "dst": p.dst().to_string(), "port": p.port, "timeout": timeout}));
        }
        writeln!(self.to_prober, "{}", Value::Array(batch)).unwrap();
        let mut line = String::new();
        self.from_prober
            .read_line(&mut line)
            .expect("prober answers");
        let out: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("prober said {line:?}: {e}"));
        (0..probes.len())
            .map(|i| out[i.to_string()].as_str().unwrap_or("missing").to_string())
            .collect()
    }
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a verdict is contradicted by what a probe saw.
fn contradicts(verdict: Verdict, outcome: &str) -> bool {
    match verdict {
        Verdict::Open | Verdict::Restricted => outcome != "pass",
        Verdict::Filtered => outcome != "timeout",
        Verdict::Rejected => outcome != "refused",
        Verdict::Unknown => false,
        Verdict::Local => true,
    }
}

/// The verdict for exactly this probe's packet (its source, the host's address, `vh`).
fn exact(rs: &Ruleset, p: &Probe) -> Reach {
    let packet = Packet {
        saddr: Some(p.src),
        daddr: Some(p.dst()),
        iif: Some("vh".into()),
        ..Packet::any(p.family(), p.proto, p.port)
    };
    rs.verdict(&packet)
}

/// Probe `probes` against the loaded rules; every contradiction, described.
fn check(lab: &mut Lab, rs: &Ruleset, probes: &[Probe]) -> (Vec<String>, [usize; 6]) {
    let mut outcomes = lab.probe(probes, QUICK);
    let answer_expected = |i: usize| exact(rs, &probes[i]).verdict != Verdict::Filtered;
    let slow: Vec<usize> = (0..probes.len())
        .filter(|&i| outcomes[i] == "timeout" && answer_expected(i))
        .collect();
    if !slow.is_empty() {
        let again: Vec<Probe> = slow.iter().map(|&i| probes[i].clone()).collect();
        for (i, o) in slow.iter().zip(lab.probe(&again, SLOW)) {
            outcomes[*i] = o;
        }
    }
    let mut bad = Vec::new();
    let mut seen = [0usize; 6];
    for (p, outcome) in probes.iter().zip(&outcomes) {
        let one = exact(rs, p);
        let any = rs.verdict(&Packet::any(p.family(), p.proto, p.port));
        seen[one.verdict as usize] += 1;
        // Conditions left for an exact packet are rate limits (or its source port): the probe
        // may see either side of them, but a `filtered` that some packets see rejected still
        // lets none through.
        let contradicted = match (one.verdict, one.conditions.is_empty()) {
            (_, true) => contradicts(one.verdict, outcome),
            (Verdict::Filtered, false) => outcome == "pass",
            (_, false) => false,
        };
        if contradicted {
            bad.push(format!(
                "{p:?}: probe {outcome}, verdict for this packet {one:?}"
            ));
        }
        let general = matches!(
            any.verdict,
            Verdict::Open | Verdict::Filtered | Verdict::Rejected
        ) && any.conditions.is_empty();
        if general && contradicts(any.verdict, outcome) {
            bad.push(format!(
                "{p:?}: probe {outcome}, verdict for any packet {any:?}"
            ));
        }
    }
    (bad, seen)
}

/// Every port, both protocols, from every outside address.
fn all_probes() -> Vec<Probe> {
    let mut out = Vec::new();
    for src in OUTSIDE {
        for proto in [Protocol::Tcp, Protocol::Udp] {
            for port in PORTS {
                out.push(Probe {
                    proto,
                    src: src.parse().unwrap(),
                    port,
                });
            }
        }
    }
    out
}

fn lab_or_skip() -> Option<Lab> {
    if !need_root("the reach lab (network namespaces, firewall rules)") {
        return None;
    }
    for tool in [
        "nft",
        "iptables-legacy-restore",
        "iptables-nft-restore",
        "ip6tables-nft-restore",
        "python3",
        "unshare",
        "nsenter",
        "ip",
    ] {
        if !have(tool) {
            return None;
        }
    }
    Some(Lab::start())
}

fn assert_none(what: &str, bad: &[String], rules: &str) {
    assert!(
        bad.is_empty(),
        "{what}: the kernel contradicts {} verdict(s):\n{}\nrules:\n{rules}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn fixtures_verdicts_agree_with_the_kernel() {
    let Some(mut lab) = lab_or_skip() else { return };
    let cases: [(&str, &str, &[&str], String); 6] = [
        ("no ruleset", "nft", &["-f", "-"], String::new()),
        ("reset", "nft", &["-f", "-"], fixture("reset.nft")),
        ("firewalld", "nft", &["-f", "-"], fixture("firewalld.nft")),
        ("constructs", "nft", &["-f", "-"], fixture("constructs.nft")),
        (
            "ufw",
            "iptables-nft-restore",
            &[],
            fixture("ufw.iptables-nft-save"),
        ),
        (
            "docker",
            "iptables-legacy-restore",
            &[],
            fixture("docker.iptables-save"),
        ),
    ];
    for (name, program, args, text) in cases {
        lab.apply(program, args, &text);
        if name == "ufw" {
            let mut cmd = lab.enter(lab.host.id(), "ip6tables-nft-restore");
            cmd.args(["--noflush"]);
            let six = fixture("ufw.ip6tables-nft-save");
            assert!(
                output_with_input(cmd, Some(six.as_bytes()), "ip6tables-nft-restore")
                    .status
                    .success()
            );
        }
        let rs = lab.ruleset();
        let (bad, seen) = check(&mut lab, &rs, &all_probes());
        eprintln!("{name}: verdicts open/restricted/filtered/rejected/local/unknown = {seen:?}");
        assert_none(name, &bad, &text);
        if name == "reset" {
            // Every `reject with tcp reset` read from its bytecode, none left to a guess.
            assert_eq!(seen[Verdict::Unknown as usize], 0, "{name}: {seen:?}");
            assert!(seen[Verdict::Rejected as usize] >= 8, "{name}: {seen:?}");
        }
        if name == "no ruleset" {
            assert_eq!(
                rs.verdict(&Packet::any(Family::Ipv4, Protocol::Tcp, 22)).by,
                "no ruleset"
            );
        }
        if name != "constructs" {
            assert!(
                seen[Verdict::Unknown as usize] < seen.iter().sum::<usize>() / 4,
                "{name}: mostly unknown {seen:?}"
            );
        }
    }
}

/// A small seeded generator (xorshift64*).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One random ruleset in nft's syntax, from the constructs the evaluator supports.
fn random_ruleset(g: &mut Gen) -> String {
    let family = g.pick(&["inet", "inet", "ip", "ip6"]);
    let regular = g.below(3);
    let mut text = format!("table {family} lab {{\n");
    text.push_str(
        "  set ports { type inet_service; flags interval; elements = { 22, 80-443, 9999 } }\n",
    );
    let mut bases = vec![("input", "input", *[-10, 0, 10].get(g.below(3)).unwrap())];
    if g.chance(40) {
        bases.push(("input2", "input", [-20, 5, 20][g.below(3)]));
    }
    if g.chance(40) {
        bases.push(("pre", "prerouting", [-300, -150, -100][g.below(3)]));
    }
    for (name, hook, prio) in &bases {
        let policy = g.pick(&["accept", "accept", "drop"]);
        text.push_str(&format!(
            "  chain {name} {{\n    type filter hook {hook} priority {prio}; policy {policy};\n"
        ));
        for _ in 0..g.below(6) {
            let _ = writeln!(text, "    {}", random_rule(g, family, hook, None, regular));
        }
        text.push_str("  }\n");
    }
    for c in 0..regular {
        let _ = writeln!(text, "  chain c{c} {{");
        for _ in 0..g.below(5) {
            let _ = writeln!(
                text,
                "    {}",
                random_rule(g, family, "input", Some(c), regular)
            );
        }
        text.push_str("  }\n");
    }
    text.push_str("}\n");
    text
}

/// One rule: up to three matches and a verdict. `me` is the regular chain it is in (jumps go
/// to later chains only, so there is no loop).
fn random_rule(g: &mut Gen, family: &str, hook: &str, me: Option<usize>, regular: usize) -> String {
    // One network and one transport protocol per rule: nft refuses `ip saddr … ip6 daddr …`.
    let l3 = match family {
        "ip" => 4,
        "ip6" => 6,
        _ => [4, 6][g.below(2)],
    };
    let l4 = g.pick(&["tcp", "udp", "any"]);
    let mut parts: Vec<String> = Vec::new();
    for _ in 0..g.below(4) {
        parts.push(random_match(g, family, l3, l4));
    }
    let targets: Vec<usize> = (me.map_or(0, |m| m + 1)..regular).collect();
    let mut verdicts = vec![
        "accept",
        "accept",
        "drop",
        "counter",
        "meta mark set 0x1",
        "continue",
    ];
    if hook == "input" {
        verdicts.push("reject");
        if l4 == "tcp" {
            verdicts.push("reject with tcp reset");
        }
    }
    if me.is_some() {
        verdicts.push("return");
    }
    let verdict = if !targets.is_empty() && g.chance(25) {
        let t = targets[g.below(targets.len())];
        match (g.below(3), l4) {
            (0, _) => format!("jump c{t}"),
            (2, "tcp") => format!("tcp dport vmap {{ 22 : accept, 80 : drop, 443 : jump c{t} }}"),
            _ => format!("goto c{t}"),
        }
    } else {
        g.pick(&verdicts).to_string()
    };
    if verdict.starts_with("reject with tcp") {
        parts.push("meta l4proto tcp".into());
    }
    if verdict.contains("vmap") {
        parts.retain(|p| !p.contains("dport"));
    }
    parts.push(verdict);
    parts.join(" ")
}

/// One match of a rule for network protocol `l3` (4 or 6) and transport `l4`.
fn random_match(g: &mut Gen, family: &str, l3: u8, l4: &str) -> String {
    let mut pool: Vec<&str> = vec![
        "th dport 5353",
        "th dport @ports",
        "iifname \"vh\"",
        "iifname \"v*\"",
        "iifname != \"vh\"",
        "iif \"lo\"",
        "iifname \"eth*\"",
        "ct state new",
        "ct state established,related",
        "ct state invalid",
        "ct state != new",
        "fib daddr type local",
        "fib daddr type != local",
        "meta mark 0x1",
        "meta mark 0",
        "limit rate 1000/second",
    ];
    match l4 {
        "tcp" => pool.extend([
            "tcp dport 22",
            "tcp dport { 80, 443, 8080 }",
            "tcp dport 2000-9000",
            "meta l4proto tcp",
        ]),
        "udp" => pool.extend([
            "udp dport 53",
            "udp dport != 53",
            "udp dport { 53, 5353 }",
            "meta l4proto udp",
        ]),
        _ => pool.extend([
            "meta l4proto { tcp, udp }",
            "meta l4proto . th dport { tcp . 22, udp . 53, tcp . 9090 }",
        ]),
    }
    if l3 == 4 {
        pool.extend([
            "ip saddr 192.0.2.2",
            "ip saddr 198.51.100.0/24",
            "ip saddr != 192.0.2.0/24",
            "ip daddr 192.0.2.1",
            "ip saddr { 192.0.2.2, 203.0.113.9 }",
        ]);
    } else {
        pool.extend([
            "ip6 saddr 2001:db8::2",
            "ip6 saddr 2001:db8:1::/64",
            "ip6 saddr != 2001:db8::/64",
            "ip6 daddr 2001:db8::1",
        ]);
    }
    if family == "inet" {
        pool.push(if l3 == 4 {
            "meta nfproto ipv4"
        } else {
            "meta nfproto ipv6"
        });
    }
    g.pick(&pool).to_string()
}

#[test]
fn random_rulesets_verdicts_agree_with_the_kernel() {
    let Some(mut lab) = lab_or_skip() else { return };
    let cases: usize = std::env::var("LSPORTS_REACH_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("LSPORTS_REACH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14);
    let ports = [22, 53, 80, 443, 5353, 8080, 9999];
    let probes: Vec<Probe> = all_probes()
        .into_iter()
        .filter(|p| ports.contains(&p.port))
        .collect();
    let mut totals = [0usize; 6];
    for case in 0..cases {
        let mut g = Gen(seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(case as u64)
            | 1);
        let text = random_ruleset(&mut g);
        lab.apply("nft", &["-f", "-"], &text);
        let rs = lab.ruleset();
        let (bad, seen) = check(&mut lab, &rs, &probes);
        totals.iter_mut().zip(seen).for_each(|(t, s)| *t += s);
        assert_none(
            &format!("seed {seed} case {case} (LSPORTS_REACH_SEED={seed})"),
            &bad,
            &text,
        );
    }
    eprintln!(
        "{cases} rulesets: verdicts open/restricted/filtered/rejected/local/unknown = {totals:?}"
    );
    let decided: usize = totals.iter().sum::<usize>() - totals[Verdict::Unknown as usize];
    assert!(
        decided * 10 >= totals.iter().sum::<usize>() * 9,
        "more than a tenth unknown: {totals:?}"
    );
    for v in [
        Verdict::Open,
        Verdict::Restricted,
        Verdict::Filtered,
        Verdict::Rejected,
    ] {
        assert!(
            totals[v as usize] > 0,
            "the generator never produced {v:?}: {totals:?}"
        );
    }
}

/// Base chains of one hook and priority run newest first (the kernel inserts a new hook
/// function before those of equal priority): the verdict a probe meets is the drop or reject
/// of the chain registered last. Within one table nft's chain handles say which that is;
/// across tables only `nft list hooks` does (kernels with nfnetlink_hook), and without it the
/// verdict must be `unknown`, naming both rules, never the first table's.
#[test]
fn equal_priority_chains_run_newest_first() {
    let Some(mut lab) = lab_or_skip() else { return };
    let chain = |name: &str, rule: &str| {
        format!("chain {name} {{\n type filter hook input priority 0\n tcp dport 5432 {rule}\n}}\n")
    };
    let (drop, reset) = ("drop", "reject with tcp reset");
    let probe = Probe {
        proto: Protocol::Tcp,
        src: "192.0.2.2".parse().unwrap(),
        port: 5432,
    };
    // (name, rules, expected probe outcome, the chain that decides, whether nft's listing
    // alone orders it)
    let cases = [
        (
            "one table, reject made last",
            format!(
                "table inet a {{\n{}{}}}\n",
                chain("c1", drop),
                chain("c2", reset)
            ),
            "refused",
            "table inet a chain c2",
            true,
        ),
        (
            "one table, drop made last",
            format!(
                "table inet a {{\n{}{}}}\n",
                chain("c1", reset),
                chain("c2", drop)
            ),
            "timeout",
            "table inet a chain c2",
            true,
        ),
        (
            "two tables, reject's made last",
            format!(
                "table inet a {{\n{}}}\ntable inet b {{\n{}}}\n",
                chain("in", drop),
                chain("in", reset)
            ),
            "refused",
            "table inet b chain in",
            false,
        ),
        (
            "two tables, drop's made last",
            format!(
                "table inet b {{\n{}}}\ntable inet a {{\n{}}}\n",
                chain("in", reset),
                chain("in", drop)
            ),
            "timeout",
            "table inet a chain in",
            false,
        ),
    ];
    let run = |lab: &mut Lab, name: &str, expect: &str, decider: &str, by_handles: bool| {
        let outcome = lab.probe(std::slice::from_ref(&probe), SLOW).remove(0);
        assert_eq!(outcome, expect, "{name}: the kernel's own answer");
        let rs = lab.ruleset();
        let got = exact(&rs, &probe);
        let kernel_lists = {
            let mut list = lab.enter(lab.host.id(), "nft");
            list.args(["list", "hooks"]);
            let out = output_guarded(list, "nft list hooks");
            String::from_utf8_lossy(&out.stdout).contains(" chain ")
        };
        if by_handles || kernel_lists {
            let verdict = if expect == "refused" {
                Verdict::Rejected
            } else {
                Verdict::Filtered
            };
            assert_eq!(got.verdict, verdict, "{name}: {got:?}");
            assert!(
                got.by.starts_with(decider),
                "{name}: decided by {decider}, said {got:?}"
            );
        } else {
            assert_eq!(got.verdict, Verdict::Unknown, "{name}: {got:?}");
            assert!(
                got.by.contains("table inet a chain in handle")
                    && got.by.contains("table inet b chain in handle")
                    && got.by.contains("registered"),
                "{name}: both candidate rules and why: {got:?}"
            );
            eprintln!(
                "{name}: nft list hooks is not available here; said {:?}",
                got.by
            );
        }
    };
    for (name, text, expect, decider, by_handles) in &cases {
        lab.apply("nft", &["-f", "-"], text);
        run(&mut lab, name, expect, decider, *by_handles);
    }
    // iptables-nft's INPUT chain made after an inet table: a table of its own, at priority 0.
    lab.apply(
        "nft",
        &["-f", "-"],
        &format!("table inet a {{\n{}}}\n", chain("in", drop)),
    );
    let mut ipt = lab.enter(lab.host.id(), "iptables-nft");
    ipt.args([
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "5432",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]);
    sh(&mut ipt);
    let outcome = lab.probe(std::slice::from_ref(&probe), SLOW).remove(0);
    assert_eq!(
        outcome, "refused",
        "iptables-nft INPUT made last: the kernel's own answer"
    );
    let got = exact(&lab.ruleset(), &probe);
    assert!(
        got.verdict == Verdict::Unknown
            && got.by.contains("chain INPUT")
            && got.by.contains("table inet a chain in")
            || got.verdict == Verdict::Rejected && got.by.contains("chain INPUT"),
        "iptables-nft INPUT made last: {got:?}"
    );
}

/// `tcp flags` matches are decided by a new connection's SYN (and, for the rules it meets
/// after conntrack, by the handshake's ACK): the drop-new-non-SYN guard, `tcp flags syn`,
/// the masked `== syn` and their negations give verdicts a probe confirms, not `unknown`;
/// only `tcp flags == syn` (unmasked: a client asking for ECN sets ECE and CWR on its SYN)
/// stays `unknown`.
#[test]
fn tcp_flags_are_decided_by_the_first_packet() {
    let Some(mut lab) = lab_or_skip() else { return };
    let rules = "table inet t {\n chain in {\n  type filter hook input priority 0; policy drop\n  \
        meta l4proto ipv6-icmp accept\n  \
        tcp flags & (fin|syn|rst|ack) != syn ct state new drop\n  \
        ct state established,related accept\n  \
        tcp flags syn tcp dport 22 accept\n  \
        tcp flags & (fin|syn|rst|ack) == syn tcp dport 80 accept\n  \
        tcp flags & (fin|syn|rst|ack) != syn tcp dport 443 drop\n  \
        tcp dport 443 accept\n  \
        tcp flags ! syn tcp dport 5432 accept\n  \
        tcp flags & (syn|ack) == syn|ack tcp dport 8080 accept\n  \
        tcp flags == syn tcp dport 2222 accept\n }\n}\n";
    lab.apply("nft", &["-f", "-"], rules);
    let rs = lab.ruleset();
    let probes: Vec<Probe> = all_probes()
        .into_iter()
        .filter(|p| p.proto == Protocol::Tcp)
        .collect();
    let (bad, _) = check(&mut lab, &rs, &probes);
    assert_none("tcp flags", &bad, rules);
    for (port, want) in [
        (22, Verdict::Open),
        (80, Verdict::Open),
        (443, Verdict::Open),
        (5432, Verdict::Filtered),
        (8080, Verdict::Filtered),
        (9999, Verdict::Filtered),
        (2222, Verdict::Unknown),
    ] {
        for family in [Family::Ipv4, Family::Ipv6] {
            let got = rs.verdict(&Packet::any(family, Protocol::Tcp, port));
            assert_eq!(got.verdict, want, "tcp/{port} {family:?}: {got:?}\n{rules}");
        }
    }
    // The same through iptables (`--syn`, `--tcp-flags MASK COMP`).
    let rules = "*filter\n:INPUT DROP [0:0]\n\
        -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
        -A INPUT -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -m conntrack --ctstate NEW -j DROP\n\
        -A INPUT -p tcp -m tcp --dport 22 --syn -j ACCEPT\n\
        -A INPUT -p tcp -m tcp --dport 80 --tcp-flags SYN,ACK SYN,ACK -j ACCEPT\n\
        COMMIT\n";
    lab.apply("iptables-nft-restore", &[], rules);
    let rs = lab.ruleset();
    let v4: Vec<Probe> = (probes.iter())
        .filter(|p| p.family() == Family::Ipv4)
        .cloned()
        .collect();
    let (bad, _) = check(&mut lab, &rs, &v4);
    assert_none("tcp flags, iptables", &bad, rules);
    for (port, want) in [(22, Verdict::Open), (80, Verdict::Filtered)] {
        let got = rs.verdict(&Packet::any(Family::Ipv4, Protocol::Tcp, port));
        assert_eq!(got.verdict, want, "iptables tcp/{port}: {got:?}\n{rules}");
    }
}
