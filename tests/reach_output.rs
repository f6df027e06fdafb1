//! Reach as lsports shows it, against the kernel: a ruleset loaded in a private network
//! namespace with listeners on every port, lsports run inside it, and every verdict it prints
//! that claims something checked by a probe from another namespace. Then what lsports says
//! when it cannot read the rules: as nobody, with nft missing, with nft printing garbage.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::Value;

/// TCP: 22 open to all, 80 only from the outside's first address (IPv4 only), 8080
/// rejected, 9090 dropped by the policy, 5000 accepted after a mark set to a value lsports
/// cannot know (`unknown`).
/// UDP: 9090 open, everything else dropped.
const RULES: &str = r#"
table inet lab {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iif lo accept
        meta l4proto ipv6-icmp accept
        tcp dport 22 accept
        tcp dport 80 ip saddr 192.0.2.2 accept
        tcp dport 8080 reject
        tcp dport 5000 meta mark set ct mark accept
        udp dport 9090 accept
    }
}
"#;

const PORTS: [u16; 5] = [22, 80, 5000, 8080, 9090];

/// Each `proto/port` of the listing, with its reach (`ipv4:open` per family where they
/// differ, else `open`).
fn verdicts(json: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for socket in json.as_array().expect("a JSON array") {
        let reach = socket["reach"].as_array().expect("reach on every socket");
        let text: Vec<String> = reach
            .iter()
            .map(|r| match reach.len() {
                1 => r["verdict"].as_str().unwrap().to_string(),
                _ => format!(
                    "{}:{}",
                    r["family"].as_str().unwrap(),
                    r["verdict"].as_str().unwrap()
                ),
            })
            .collect();
        let key = format!(
            "{}/{}",
            socket["proto"].as_str().unwrap(),
            socket["local_port"]
        );
        out.insert(key, text.join(" "));
    }
    out
}

fn lab_with_rules() -> Option<ReachLab> {
    let lab = ReachLab::start_or_skip(&PORTS)?;
    lab.nft(RULES);
    Some(lab)
}

#[test]
fn json_and_the_reach_column_say_what_a_probe_from_outside_sees() {
    let Some(mut lab) = lab_with_rules() else {
        return;
    };
    let out = lab.lsports(&["--json"]);
    assert_success(&out, &["--json"]);
    let json = parse_json(&out.stdout);
    assert_json_schema(&json);
    let got = verdicts(&json);
    let want: BTreeMap<String, String> = [
        ("tcp/22", "open"),
        ("tcp/80", "ipv4:restricted ipv6:filtered"),
        ("tcp/5000", "unknown"),
        ("tcp/8080", "rejected"),
        ("tcp/9090", "filtered"),
        ("udp/22", "filtered"),
        ("udp/80", "filtered"),
        ("udp/5000", "filtered"),
        ("udp/8080", "filtered"),
        ("udp/9090", "open"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want, "reach in --json");

    // Every claim, as the kernel answers it.
    let probes = [
        ("tcp", OUTSIDE_V4, 22, "pass"),
        ("tcp", OUTSIDE_V6, 22, "pass"),
        ("tcp", OUTSIDE_V4, 80, "pass"),
        ("tcp", OTHER_V4, 80, "timeout"),
        ("tcp", OUTSIDE_V6, 80, "timeout"),
        ("tcp", OUTSIDE_V4, 8080, "refused"),
        ("tcp", OUTSIDE_V4, 9090, "timeout"),
        ("udp", OUTSIDE_V4, 9090, "pass"),
        ("udp", OUTSIDE_V6, 9090, "pass"),
        ("udp", OUTSIDE_V4, 22, "timeout"),
    ];
    for (proto, src, port, expected) in probes {
        assert_eq!(
            lab.probe(proto, src, port),
            expected,
            "a {proto} probe from {src} to port {port}"
        );
    }

    // The restricted one names its condition and the rule; the policy's drop names it.
    let tcp80 = json
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["proto"] == "tcp" && s["local_port"] == 80)
        .unwrap();
    let v4 = &tcp80["reach"][0];
    assert_eq!(v4["family"], "ipv4");
    assert_eq!(v4["conditions"], serde_json::json!(["ip saddr 192.0.2.2"]));
    let by = v4["by"].as_str().unwrap();
    assert!(
        by.contains("table inet lab chain input") && by.contains("tcp dport 80"),
        "by: {by}"
    );
    let tcp5000 = by_port_proto(&json, "tcp", 5000);
    assert!(
        tcp5000["reach"][0]["by"].as_str().unwrap().contains("mark"),
        "an unknown names the rule: {tcp5000}"
    );

    // The table's column says the same.
    let args = ["-t", "-o", "proto,port,reach", "-n", "-H"];
    let out = lab.lsports(&args);
    assert_success(&out, &args);
    let rows: BTreeMap<String, String> = stdout(&out)
        .lines()
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells[1].to_string(), cells[2..].join(" "))
        })
        .collect();
    assert_eq!(rows["22"], "open");
    assert_eq!(rows["80"], "ipv4:restricted ipv6:filtered");
    assert_eq!(rows["8080"], "rejected");
    assert_eq!(rows["9090"], "filtered");
    assert_eq!(rows["5000"], "unknown");
}

fn by_port_proto<'a>(json: &'a Value, proto: &str, port: u16) -> &'a Value {
    json.as_array()
        .unwrap()
        .iter()
        .find(|s| s["proto"] == proto && s["local_port"] == port)
        .unwrap_or_else(|| panic!("no {proto} socket on {port}"))
}

#[test]
fn reachable_keeps_open_restricted_and_unknown() {
    let Some(mut lab) = lab_with_rules() else {
        return;
    };
    let args = ["--json", "--reachable"];
    let out = lab.lsports(&args);
    assert_success(&out, &args);
    let mut kept: Vec<String> = verdicts(&parse_json(&out.stdout)).into_keys().collect();
    kept.sort();
    assert_eq!(kept, ["tcp/22", "tcp/5000", "tcp/80", "udp/9090"]);
    // What it leaves out, nothing gets through to.
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 8080), "refused");
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 9090), "timeout");
    assert_eq!(lab.probe("udp", OUTSIDE_V4, 80), "timeout");
}

#[test]
fn prometheus_labels_reach_only_when_asked() {
    let Some(lab) = lab_with_rules() else {
        return;
    };
    let plain = stdout(&lab.lsports(&["--format", "prometheus"]));
    assert!(
        plain.contains("lsports_listening_socket{") && !plain.contains("reach="),
        "no reach label unless --reach:\n{plain}"
    );
    let args = ["--format", "prometheus", "--reach"];
    let out = lab.lsports(&args);
    assert_success(&out, &args);
    let text = stdout(&out);
    let series = |proto: &str, port: u16| {
        text.lines()
            .find(|l| {
                l.starts_with("lsports_listening_socket{")
                    && l.contains(&format!("proto=\"{proto}\""))
                    && l.contains(&format!("port=\"{port}\""))
            })
            .unwrap_or_else(|| panic!("no series for {proto}/{port}:\n{text}"))
            .to_string()
    };
    assert!(
        series("tcp", 22).contains("reach=\"open\""),
        "{}",
        series("tcp", 22)
    );
    assert!(
        series("tcp", 80).contains("reach=\"ipv4:restricted,ipv6:filtered\""),
        "{}",
        series("tcp", 80)
    );
    assert!(series("udp", 22).contains("reach=\"filtered\""));
}

#[test]
fn a_rule_text_cannot_write_to_the_terminal() {
    let Some(lab) = ReachLab::start_or_skip(&[22]) else {
        return;
    };
    lab.nft(
        "table inet lab { chain input { type filter hook input priority filter; policy drop;\n\
         tcp dport 22 iifname \"e\u{1b}[2Jx\" accept\n}\n}\n",
    );
    let args = ["-t", "-o", "port,reach", "--wide", "-n"];
    let out = lab.lsports(&args);
    assert_success(&out, &args);
    let text = stdout(&out);
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape reached the terminal: {text:?}"
    );
    assert!(
        text.contains("restricted") && text.contains("\\e[2J"),
        "{text}"
    );
    let out = lab.lsports(&["--json", "-t"]);
    assert!(!out.stdout.contains(&0x1b), "JSON escapes it");
    let json = parse_json(&out.stdout);
    let reach = &by_port_proto(&json, "tcp", 22)["reach"][0];
    assert!(
        reach["by"].as_str().unwrap().contains("e\u{1b}[2Jx"),
        "JSON keeps the text as the ruleset has it: {reach}"
    );
}

#[test]
fn unprivileged_reach_is_unknown_and_said_once() {
    let Some(lab) = lab_with_rules() else {
        return;
    };
    let args = ["-t", "-o", "port,reach", "-H", "-n"];
    let out = lab.lsports_unprivileged(&args);
    assert_success(&out, &args);
    let cells: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        .collect();
    assert_eq!(cells.len(), PORTS.len());
    assert!(cells.iter().all(|c| c == "unknown"), "{cells:?}");
    let said: Vec<String> = stderr_lines(&out)
        .into_iter()
        .filter(|l| l.contains("reach"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {said:?}");
    assert!(
        said[0].contains("root or CAP_NET_ADMIN"),
        "says what to do: {said:?}"
    );
    let json = parse_json(&lab.lsports_unprivileged(&["--json", "-t"]).stdout);
    let reach = &by_port_proto(&json, "tcp", 22)["reach"][0];
    assert_eq!(reach["verdict"], "unknown");
    assert!(
        reach["by"].as_str().unwrap().contains("CAP_NET_ADMIN"),
        "{reach}"
    );
}

#[test]
fn missing_or_broken_nft_gives_unknown_and_a_clear_message() {
    let Some(lab) = lab_with_rules() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("nft");
    std::fs::write(&broken, "#!/bin/sh\necho '{\"nftables\": [{\"table\": '\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cases = [
        (std::path::Path::new("/dev/null"), "is not installed"),
        (broken.as_path(), "output is unreadable"),
    ];
    for (fake, message) in cases {
        let args = ["--json", "-t"];
        let out = lab.lsports_with_nft(fake, &args);
        assert_success(&out, &args);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{err}");
        let said: Vec<&str> = err.lines().filter(|l| l.contains("reach")).collect();
        assert_eq!(said.len(), 1, "{err}");
        assert!(said[0].contains(message), "{}: {err}", fake.display());
        let json = parse_json(&out.stdout);
        for socket in json.as_array().unwrap() {
            assert_eq!(socket["reach"][0]["verdict"], "unknown", "{socket}");
        }
    }
}

/// 22 and 5432 listen and are accepted; 8443 is accepted with nothing behind it.
const AUDITED_RULES: &str = r#"
table inet lab {
    chain input {
        type filter hook input priority filter; policy drop;
        tcp dport 22 accept
        tcp dport 5432 accept
        tcp dport 8443 accept
    }
}
"#;

#[test]
fn audit_checks_reach_in_a_policy_and_reports_firewall_holes() {
    let Some(mut lab) = ReachLab::start_or_skip(&[22, 5432]) else {
        return;
    };
    lab.nft(AUDITED_RULES);
    // The truth: 5432 is reachable; 8443 is let through to a port where nothing listens.
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 5432), "pass");
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 8443), "refused");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "default = \"allow\"\n\n[[rule]]\nname = \"db only behind the firewall\"\naction = \"allow\"\n\
         port = 5432\nreach = \"filtered\"\n\n[[rule]]\naction = \"deny\"\nport = 5432\n",
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let args = ["audit", "-t", "--policy", policy, "--format", "json"];
    let out = lab.lsports(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let unexpected: Vec<u64> = report["unexpected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["listener"]["local_port"].as_u64().unwrap())
        .collect();
    assert_eq!(unexpected, [5432], "{report}");
    let listener = &report["unexpected"][0]["listener"];
    assert_eq!(listener["reach"][0]["verdict"], "open", "{listener}");
    let holes = report["holes"].as_array().unwrap();
    assert_eq!(holes.len(), 1, "{report}");
    assert_eq!(holes[0]["proto"], "tcp");
    assert_eq!(holes[0]["port"], 8443);
    assert_eq!(holes[0]["families"], serde_json::json!(["ipv4", "ipv6"]));
    assert!(
        holes[0]["by"]
            .as_str()
            .unwrap()
            .contains("tcp dport 8443 accept")
    );

    // Once the firewall drops 5432, the policy is met.
    lab.nft(&AUDITED_RULES.replace("tcp dport 5432 accept", ""));
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 5432), "timeout");
    let out = lab.lsports(&["audit", "-t", "--policy", policy]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("8443"), "the hole is still reported");
}

/// Under `--netns all` each firewall hole says which namespace's rules it is in: JSON
/// `holes[].netns` (the lab's inode, as its sockets give theirs) and the text report's port
/// cell (`8443 in netns …`), as listener rows say theirs.
#[test]
fn audit_holes_name_their_namespace_under_netns_all() {
    let Some(lab) = ReachLab::start_or_skip(&[22, 5432]) else {
        return;
    };
    lab.nft(AUDITED_RULES);
    let inode = std::fs::metadata(format!("/proc/{}/ns/net", lab.host_pid()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("the lab's namespace");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "default = \"allow\"\n").unwrap();
    let policy = policy.to_str().unwrap();
    let run = |format: &str| {
        let mut cmd = scrubbed(lsports_bin());
        cmd.args([
            "audit", "--netns", "all", "-t", "--policy", policy, "--format", format,
        ]);
        output_guarded(cmd, "lsports audit --netns all")
    };
    let out = run("json");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_valid_as(&report, "audit_report", "audit --netns all --format json");
    // (Other tests' labs may run beside this one, with the same rules: each hole is told
    // apart by its namespace.)
    let holes = report["holes"].as_array().unwrap();
    let ours: Vec<&Value> = (holes.iter())
        .filter(|h| h["port"] == 8443 && h["netns"]["inode"] == inode)
        .collect();
    assert_eq!(ours.len(), 1, "{report}");
    assert!(
        holes.iter().all(|h| h["netns"]["inode"].is_u64()),
        "{report}"
    );
    let text = stdout(&run("table"));
    let lines: Vec<&str> = (text.lines())
        .filter(|l| l.contains("tcp dport 8443 accept"))
        .collect();
    assert!(!lines.is_empty(), "no hole row for 8443:\n{text}");
    for line in lines {
        assert!(
            line.contains("8443 in "),
            "the hole's row names its namespace: {line}"
        );
    }
}

#[test]
fn audit_reports_a_reach_changed_since_the_baseline() {
    let Some(mut lab) = ReachLab::start_or_skip(&[22, 5432]) else {
        return;
    };
    lab.nft(AUDITED_RULES);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baseline.toml");
    let path = file.to_str().unwrap();
    let out = lab.lsports(&["baseline", "save", path, "-t"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let saved = std::fs::read_to_string(&file).unwrap();
    let line22 = saved.lines().find(|l| l.contains("port = 22,")).unwrap();
    assert!(line22.contains("reach = \"open\""), "{saved}");
    let out = lab.lsports(&["audit", "-t", "--baseline", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // 22 is no longer let through: the probe times out, and the audit says so.
    lab.nft(&AUDITED_RULES.replace("tcp dport 22 accept", ""));
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 22), "timeout");
    let out = lab.lsports(&["audit", "-t", "--baseline", path, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let unexpected = report["unexpected"].as_array().unwrap();
    assert_eq!(unexpected.len(), 1, "{report}");
    assert_eq!(unexpected[0]["listener"]["local_port"], 22);
    let reason = &unexpected[0]["reasons"][0];
    assert_eq!(reason["reason"], "reach_changed");
    let explanation = reason["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("was open") && explanation.contains("now filtered"),
        "{explanation}"
    );

    // A baseline written before reach was recorded still loads, and compares no reach.
    let old = saved.replace(", reach = \"open\"", "");
    assert!(!old.contains("reach ="));
    std::fs::write(&file, old).unwrap();
    let out = lab.lsports(&["audit", "-t", "--baseline", path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The rows of a `--published --json` listing that the lab's rules publish, by host port:
/// (verdict, by). (A `docker-proxy` process anywhere on the machine makes a row too, in
/// every namespace: not the lab's.)
fn published_verdicts(json: &Value) -> BTreeMap<u16, (String, String)> {
    let rows = json.as_array().expect("a JSON array");
    let by_rule = |r: &&Value| {
        let by = r["published"]["by"].as_array().expect("published.by");
        by.iter()
            .all(|b| b["kind"] == "dnat" || b["kind"] == "redirect")
    };
    rows.iter()
        .filter(|r| r["kind"] == "published")
        .filter(by_rule)
        .map(|r| {
            let reach = r["reach"].as_array().expect("reach on a published row");
            assert_eq!(reach.len(), 1, "one family per published row: {r}");
            let port = r["local_port"].as_u64().unwrap() as u16;
            let verdict = reach[0]["verdict"].as_str().unwrap().to_string();
            (
                port,
                (verdict, reach[0]["by"].as_str().unwrap().to_string()),
            )
        })
        .collect()
}

/// A DNAT to one of the host's own addresses (and a redirect) delivers the packet to the
/// host: after prerouting it passes the input hook as a packet to the target port, and the
/// input rules for that port decide it, not the forward hook (a published port's verdict
/// must never say `open` where the probe from outside times out). Two rulesets: input that
/// accepts all but drops the target port 5432, and input whose policy drops all but 22.
#[test]
fn a_port_published_to_the_host_itself_is_judged_by_its_input_rules() {
    let Some(mut lab) = ReachLab::start_or_skip(&[22, 5432]) else {
        return;
    };
    let nat = format!(
        "table ip nat {{\n chain pre {{\n  type nat hook prerouting priority dstnat;\n  \
         tcp dport 2222 dnat to {HOST_V4}:22\n  tcp dport 2224 dnat to {HOST_V4}:5432\n  \
         tcp dport 2225 redirect to :22\n  tcp dport 2226 redirect to :5432\n }}\n}}\n"
    );
    let inputs = [
        "policy accept;\n  tcp dport 5432 drop",
        "policy drop;\n  tcp dport 22 accept",
    ];
    for input in inputs {
        lab.nft(&format!(
            "{nat}table inet filter {{\n chain input {{\n  type filter hook input priority 0; \
             {input}\n }}\n}}\n"
        ));
        let args = ["--published", "--json", "-t", "-4"];
        let out = lab.lsports(&args);
        assert_success(&out, &args);
        let rows = published_verdicts(&parse_json(&out.stdout));
        assert_eq!(
            rows.keys().copied().collect::<Vec<_>>(),
            [2222, 2224, 2225, 2226],
            "{input}: {rows:?}"
        );
        for (port, (verdict, by)) in &rows {
            let seen = lab.probe("tcp", OUTSIDE_V4, *port);
            let (want, probe) = match port {
                2222 | 2225 => ("open", "pass"),
                _ => ("filtered", "timeout"),
            };
            assert_eq!(seen, probe, "{input}: the kernel's own answer for {port}");
            assert_eq!(
                verdict, want,
                "{input}: {port} is {seen}; lsports said {by}"
            );
        }
        // Filtered by the input rule the listener's own row names.
        let (_, by) = &rows[&2224];
        assert!(
            by.starts_with("table inet filter chain input"),
            "{input}: decided by the input chain: {by}"
        );
    }
}

/// The table and the CSV fill a published row's Reach cell with the verdict JSON carries
/// (`--published --reach`, `-o …,reach`), and `-W` adds what decided it.
#[test]
fn a_published_row_shows_its_reach_in_the_table_and_csv() {
    let Some(lab) = ReachLab::start_or_skip(&[22, 5432]) else {
        return;
    };
    lab.nft(&format!(
        "table ip nat {{\n chain pre {{\n  type nat hook prerouting priority dstnat;\n  \
         tcp dport 2222 dnat to {HOST_V4}:22\n  tcp dport 2224 dnat to {HOST_V4}:5432\n }}\n}}\n\
         table inet filter {{\n chain input {{\n  type filter hook input priority 0; \
         policy accept;\n  tcp dport 5432 drop\n }}\n}}\n"
    ));
    let json = parse_json(&lab.lsports(&["--published", "--json", "-t", "-4"]).stdout);
    let want = published_verdicts(&json);
    assert_eq!(want[&2222].0, "open");
    assert_eq!(want[&2224].0, "filtered");
    let args = [
        "--published",
        "--reach",
        "-n",
        "-t",
        "-4",
        "-o",
        "port,state,reach",
    ];
    let out = lab.lsports(&args);
    assert_success(&out, &args);
    let table = stdout(&out);
    for (port, (verdict, _)) in &want {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&port.to_string()))
            .unwrap_or_else(|| panic!("no row for {port}:\n{table}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [&port.to_string(), "PUBLISHED", verdict.as_str()],
            "{table}"
        );
    }
    let args = ["--published", "-n", "-t", "-4", "-W", "-o", "port,reach"];
    let wide = stdout(&lab.lsports(&args));
    let row = wide.lines().find(|l| l.starts_with("2224 ")).unwrap();
    assert!(
        row.contains("filtered (table inet filter chain input handle"),
        "-W names the rule: {row}"
    );
    let args = [
        "--published",
        "--format",
        "csv",
        "-t",
        "-4",
        "-o",
        "local_port,state,reach",
    ];
    let csv = stdout(&lab.lsports(&args));
    for (port, (verdict, _)) in &want {
        let line = format!("{port},PUBLISHED,{verdict}");
        assert!(csv.lines().any(|l| l == line), "{line} in:\n{csv}");
    }
}

/// An nft table at priority 0 beside iptables-legacy's INPUT (a legacy Docker host with any
/// nft table): the kernel's order of the two chains is not listed here, but where both accept
/// a port, either order accepts it, so it is `open` (and kept by `--reachable` for that reason,
/// a port one of them drops `filtered` and left out), never `unknown`.
#[test]
fn equal_priority_chains_that_agree_give_their_verdict() {
    let Some(mut lab) = ReachLab::start_or_skip(&[80, 5432]) else {
        return;
    };
    if !have("iptables-legacy") {
        return;
    }
    lab.nft(
        "table inet f {\n chain input {\n  type filter hook input priority 0; policy accept;\n  \
         tcp dport 80 drop\n }\n}\n",
    );
    let rule = ["-A", "INPUT", "-p", "tcp", "--dport", "9000", "-j", "DROP"];
    lab.run_in_host("iptables-legacy", &rule);
    let args = ["--json", "-t", "-W"];
    let json = parse_json(&lab.lsports(&args).stdout);
    // Every family's verdict (one reach, or one per family where the rules naming them
    // differ).
    let fates = |port: u16| -> Vec<String> {
        let reach = by_port_proto(&json, "tcp", port)["reach"]
            .as_array()
            .unwrap();
        reach
            .iter()
            .map(|r| r["verdict"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 5432), "pass");
    assert_eq!(lab.probe("tcp", OUTSIDE_V6, 5432), "pass");
    assert!(fates(5432).iter().all(|v| v == "open"), "{json}");
    let reach = by_port_proto(&json, "tcp", 5432)["reach"]
        .as_array()
        .unwrap();
    let by = reach[0]["by"].as_str().unwrap();
    assert!(
        by.contains("table inet f chain input policy accept")
            && by.contains("iptables-legacy ip table filter chain INPUT policy accept"),
        "both chains named: {by}"
    );
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 80), "timeout");
    assert_eq!(lab.probe("tcp", OUTSIDE_V6, 80), "timeout");
    assert_eq!(fates(80), ["filtered"], "{json}");
    let args = ["--reachable", "-t", "-n", "-o", "port,reach"];
    let kept = stdout(&lab.lsports(&args));
    let ports: Vec<&str> = kept
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ports, ["5432"], "{kept}");
}

/// The IPv4 reach of the TCP listener on `port`: (verdict, conditions).
fn ipv4_reach(lab: &ReachLab, port: u16) -> (String, Vec<String>) {
    let args = ["--json", "-t"];
    let out = lab.lsports(&args);
    assert_success(&out, &args);
    let json = parse_json(&out.stdout);
    let reach = by_port_proto(&json, "tcp", port)["reach"]
        .as_array()
        .unwrap();
    let r = (reach.iter())
        .find(|r| r["family"] == "ipv4" || reach.len() == 1)
        .unwrap_or_else(|| panic!("no IPv4 reach: {reach:?}"));
    let conditions = r["conditions"].as_array().unwrap();
    (
        r["verdict"].as_str().unwrap().to_string(),
        conditions
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect(),
    )
}

/// A drop keyed on a set of sources filled at run time (a dynamic set a rule adds to, as a
/// port-knock trap does; a plain set fail2ban fills) is a condition on the source: the port
/// is `restricted`, not `open` while the set is empty and `unknown` once anyone is in it
/// (a plain set that holds addresses now is read as them: `restricted` still).
/// The probes confirm both sides: the banned source times out, another gets through.
#[test]
fn a_run_time_set_of_sources_restricts_whatever_it_holds_now() {
    let Some(mut lab) = ReachLab::start_or_skip(&[22, 9003]) else {
        return;
    };
    lab.nft(
        "table inet filter {\n set blacklist { type ipv4_addr; flags dynamic,timeout; timeout 5m; }\n \
         chain input {\n  type filter hook input priority 0; policy drop;\n  \
         ct state established,related accept\n  ip saddr @blacklist drop\n  \
         tcp dport 9003 ct state new add @blacklist { ip saddr } accept\n  \
         tcp dport 22 accept\n }\n}\n",
    );
    let trapped = ["not (ip saddr @blacklist)".to_string()];
    let before = ipv4_reach(&lab, 22);
    assert_eq!(
        before,
        ("restricted".to_string(), trapped.to_vec()),
        "set empty"
    );
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 22), "pass");
    // The trap: connecting to 9003 puts the source in the set.
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 9003), "pass");
    assert_eq!(
        ipv4_reach(&lab, 22),
        before,
        "the same verdict with a source in the set"
    );
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 22), "timeout", "now banned");
    assert_eq!(lab.probe("tcp", OTHER_V4, 22), "pass", "another source");

    // fail2ban's shape: a plain set, empty until the daemon bans someone.
    lab.nft(
        "table inet f2b {\n set addr-set-sshd { type ipv4_addr; }\n chain input {\n  \
         type filter hook input priority -1; policy accept;\n  \
         tcp dport 22 ip saddr @addr-set-sshd reject\n }\n}\n",
    );
    let (verdict, conditions) = ipv4_reach(&lab, 22);
    assert_eq!(
        (verdict.as_str(), conditions.len()),
        ("restricted", 1),
        "{conditions:?}"
    );
    assert!(
        conditions[0].contains("not (ip saddr @addr-set-sshd)"),
        "{conditions:?}"
    );
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 22), "pass");
    lab.run_in_host(
        "nft",
        &[
            "add",
            "element",
            "inet",
            "f2b",
            "addr-set-sshd",
            "{",
            OUTSIDE_V4,
            "}",
        ],
    );
    // A plain set with elements is read as its addresses: the same verdict, the banned
    // source named.
    let (verdict, after) = ipv4_reach(&lab, 22);
    assert_eq!(verdict, "restricted", "{after:?}");
    assert_eq!(after, [format!("ip saddr != {OUTSIDE_V4}")]);
    assert_eq!(lab.probe("tcp", OUTSIDE_V4, 22), "refused", "banned");
    assert_eq!(lab.probe("tcp", OTHER_V4, 22), "pass", "another source");
}

/// `--netns X` shows X's listeners, so only X's rules are read: `nft -j list ruleset` runs
/// once, in X, not also in lsports' own namespace (where, on a large ruleset, it costs
/// hundreds of milliseconds for nothing). Counted with strace from outside the lab.
#[test]
fn netns_x_reads_the_rules_of_x_alone() {
    let Some(lab) = ReachLab::start_or_skip(&[22]) else {
        return;
    };
    if !have("strace") {
        return;
    }
    lab.nft("table inet f {\n chain input {\n  type filter hook input priority 0; policy drop;\n  tcp dport 22 accept\n }\n}\n");
    let trace = tempfile::NamedTempFile::new().unwrap();
    let netns = format!("/proc/{}/ns/net", lab.host_pid());
    let mut cmd = scrubbed("strace");
    cmd.args(["-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o"])
        .arg(trace.path())
        .arg(lsports_bin())
        .args(["--netns", &netns, "--json", "-t", "--port", "22"]);
    let out = output_guarded(cmd, "lsports --netns X under strace");
    assert_success(&out, &["--netns", &netns]);
    let json = parse_json(&out.stdout);
    let reach = &by_port_proto(&json, "tcp", 22)["reach"][0];
    assert_eq!(
        reach["verdict"], "open",
        "the lab's rules were read: {reach}"
    );
    let execs = std::fs::read_to_string(trace.path()).unwrap();
    let runs: Vec<&str> = (execs.lines())
        .filter(|l| l.contains("execve(") && l.contains("\"list\", \"ruleset\""))
        .collect();
    assert_eq!(runs.len(), 1, "nft list ruleset runs:\n{}", runs.join("\n"));
}
