//! `--format prometheus` against the real consumers: `promtool check metrics` (Debian package
//! `prometheus`) lints the output, and a real `prometheus-node-exporter` on the namespace's
//! loopback reads it from its textfile directory and serves lsports' gauges on /metrics.
//! `.ci/run` installs both; these tests skip (saying why) only where a binary is truly absent.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::json;

/// Fetch a URL, retrying for up to a minute while the server starts.
const FETCH_METRICS: &str = r#"
import sys, time, urllib.request
deadline = time.time() + 60
while True:
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.2)
"#;

/// Run `promtool check metrics` on `text` and fail with its complaints unless it is silent.
fn assert_promtool_accepts(text: &str) {
    let mut cmd = scrubbed("promtool");
    cmd.args(["check", "metrics"]);
    let out = output_with_input(cmd, Some(text.as_bytes()), "promtool check metrics");
    // promtool exits 1 on parse errors and 3 on lint problems; both print what is wrong.
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics ({}):\n{}{}\n--- input ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A world with the cases that stress the format: SO_REUSEPORT siblings (same labels), a
/// dual-stack socket, a device-bound one, prefork workers and a hostile process name.
fn world() -> World {
    World::start(&json!([
        group_with("tcp", "0.0.0.0", "sshd", json!({"port": 2222})),
        group_with("tcp", "::", "dual", json!({"port": 8443, "v6only": false})),
        group_with("tcp", "127.0.0.1", "pool", json!({"reuseport": 3})),
        group_with("tcp", "0.0.0.0", "web", json!({"port": 8080, "prefork": 2})),
        group_with("udp", "0.0.0.0", "dhcp", json!({"device": "lsp0"})),
        group_with(
            "tcp",
            "127.0.0.1",
            "x",
            json!({"name_hex": "1b5b324a0a225c7b7d3d"})
        ),
    ]))
}

fn metrics(world: &World) -> String {
    world.text(&["--format", "prometheus"])
}

#[test]
fn promtool_accepts_the_output() {
    if !have("promtool") {
        return;
    }
    let world = world();
    assert_promtool_accepts(&metrics(&world));
}

/// The (proto, port) of every `lsports_listening_socket` series of an exposition.
fn series_ports(text: &str) -> BTreeSet<(String, u16)> {
    let label = |line: &str, name: &str| -> String {
        let start = line.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        line[start..].split('"').next().unwrap().to_string()
    };
    text.lines()
        .filter(|l| l.starts_with("lsports_listening_socket{"))
        .map(|l| (label(l, "proto"), label(l, "port").parse().unwrap()))
        .collect()
}

/// Issue #11, item 19: with --ignore-ephemeral, UDP sockets on the namespace's ephemeral range
/// (set here to 45000-45999, so the kernel's default range is not what is tested) make no
/// series; TCP on that range and UDP outside it still do, and promtool accepts both outputs.
#[test]
fn ignore_ephemeral_leaves_udp_client_ports_out_of_the_exposition() {
    if !have("promtool") {
        return;
    }
    let world = World::start(&json!([]));
    let listener = Listener::new(
        "clients",
        json!([
            {"proto": "udp", "addr": "0.0.0.0", "port": 45500},
            {"proto": "udp", "addr": "::", "port": 45999},
            {"proto": "udp", "addr": "0.0.0.0", "port": 40000},
            {"proto": "udp", "addr": "0.0.0.0", "port": 5353},
            {"proto": "tcp", "addr": "0.0.0.0", "port": 45600},
        ]),
    );
    let script = format!(
        "set -e\n\
         echo '45000 45999' > /proc/sys/net/ipv4/ip_local_port_range\n\
         {start}\
         echo '=== every socket'; $LSPORTS --format prometheus\n\
         echo '=== ignoring ephemeral'; $LSPORTS --format prometheus --ignore-ephemeral\n\
         {stop}",
        start = listener.start(None),
        stop = listener.stop(),
    );
    let (parts, _) = world.script_sections(&script);
    let owned = |list: &[(&str, u16)]| -> BTreeSet<(String, u16)> {
        list.iter().map(|&(p, n)| (p.to_string(), n)).collect()
    };
    let kept = [("udp", 40000), ("udp", 5353), ("tcp", 45600)];
    let every = [("udp", 45500), ("udp", 45999)].into_iter().chain(kept);
    assert_eq!(
        series_ports(&parts["every socket"]),
        owned(&every.collect::<Vec<_>>())
    );
    let ignoring = &parts["ignoring ephemeral"];
    assert_eq!(series_ports(ignoring), owned(&kept), "{ignoring}");
    assert!(
        ignoring
            .lines()
            .any(|l| l == r#"lsports_listening_sockets{proto="udp",exposure="all"} 2"#),
        "the summaries leave them out too:\n{ignoring}"
    );
    for text in parts.values() {
        assert_promtool_accepts(text);
    }
}

/// `-c --format prometheus` would concatenate expositions: refused, saying what to do instead.
#[test]
fn continuous_prometheus_is_refused() {
    let out = run_host(&["-c", "--format", "prometheus"]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(text.contains("textfile collector"), "{text}");
    assert!(out.stdout.is_empty());
}

#[test]
fn gauges_describe_the_world() {
    let world = world();
    let text = metrics(&world);
    assert_terminal_safe("prometheus", text.as_bytes());
    let has = |line: &str| text.lines().any(|l| l == line);
    let sample = |labels: &str, value: u32| format!("lsports_listening_socket{{{labels}}} {value}");
    // The world's own namespace, unnamed: `net:[INODE]` as its /proc/PID/ns/net says.
    let ns = std::fs::read_link(format!("/proc/{}/ns/net", world.pid())).unwrap();
    let ns = ns.to_str().unwrap();
    assert!(
        has(&sample(
            &format!(
                r#"proto="tcp",family="ipv4",address="0.0.0.0",port="2222",interface="",netns="{ns}",exposure="all",program="sshd",user="root""#
            ),
            1
        )),
        "{text}"
    );
    assert!(
        has(&sample(
            &format!(
                r#"proto="tcp",family="ipv6",address="::",port="8443",interface="",netns="{ns}",exposure="all",program="dual",user="root""#
            ),
            1
        )),
        "{text}"
    );
    // Three SO_REUSEPORT siblings are one series with the value 3, not duplicates.
    let pool_port = world.truth.iter().find(|t| t.group == 2).unwrap().port;
    assert!(
        has(&sample(
            &format!(
                r#"proto="tcp",family="ipv4",address="127.0.0.1",port="{pool_port}",interface="",netns="{ns}",exposure="loopback",program="pool",user="root""#
            ),
            3
        )),
        "{text}"
    );
    let dhcp_port = world.one(4, "unconn").port;
    assert!(
        has(&sample(
            &format!(
                r#"proto="udp",family="ipv4",address="0.0.0.0",port="{dhcp_port}",interface="lsp0",netns="{ns}",exposure="interface",program="dhcp",user="root""#
            ),
            1
        )),
        "{text}"
    );
    // ESC and newline made visible, then `\` and `"` escaped for the format.
    assert!(text.contains(r#"program="\\e[2J\\n\"\\\\{}=""#), "{text}");
    // Summaries: per protocol and exposure, and by the family that reaches them.
    for line in [
        r#"lsports_listening_sockets{proto="tcp",exposure="all"} 3"#,
        r#"lsports_listening_sockets{proto="tcp",exposure="loopback"} 4"#,
        r#"lsports_listening_sockets{proto="udp",exposure="interface"} 1"#,
        r#"lsports_listening_sockets{proto="udp",exposure="all"} 0"#,
        r#"lsports_listening_sockets_reachable{proto="tcp",family="ipv4",exposure="all"} 3"#,
        r#"lsports_listening_sockets_reachable{proto="tcp",family="ipv6",exposure="all"} 1"#,
    ] {
        assert!(has(line), "missing {line} in\n{text}");
    }
}

#[test]
fn node_exporter_textfile_collector_serves_the_gauges() {
    if !have("prometheus-node-exporter") {
        return;
    }
    let world = world();
    let dir = world.dir().join("textfile");
    std::fs::create_dir(&dir).unwrap();
    let dir = dir.to_str().unwrap();
    // The README's atomic write: a temp name the collector ignores (not *.prom), then rename.
    // node_exporter runs in the namespace, on its own loopback, and dies with the script.
    let fetch = world.dir().join("fetch.py");
    std::fs::write(&fetch, FETCH_METRICS).unwrap();
    let fetch = fetch.to_str().unwrap();
    let script = format!(
        "set -e\n\
         $LSPORTS --format prometheus > {dir}/lsports.prom.$$\n\
         mv {dir}/lsports.prom.$$ {dir}/lsports.prom\n\
         timeout 120 prometheus-node-exporter --web.listen-address=127.0.0.1:9100 \
           --collector.disable-defaults --collector.textfile \
           --collector.textfile.directory={dir} > {dir}/../node-exporter.log 2>&1 &\n\
         NE=$!\n\
         trap 'kill $NE 2>/dev/null; wait $NE 2>/dev/null || true' EXIT\n\
         python3 {fetch} http://127.0.0.1:9100/metrics\n"
    );
    let out = world.run_shell(&script);
    let log = std::fs::read_to_string(world.dir().join("node-exporter.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "script failed: {}\nnode-exporter log:\n{log}",
        stderr(&out)
    );
    let page = stdout(&out);
    let ns = std::fs::read_link(format!("/proc/{}/ns/net", world.pid())).unwrap();
    let ns = ns.to_str().unwrap();
    let has = |prefix: &str| page.lines().any(|l| l.starts_with(prefix));
    assert!(has("node_textfile_scrape_error 0"), "{page}\n{log}");
    assert!(
        has(&format!(
            r#"lsports_listening_socket{{address="0.0.0.0",exposure="all",family="ipv4",interface="",netns="{ns}",port="2222",program="sshd",proto="tcp",user="root"}} 1"#
        )),
        "{page}"
    );
    assert!(
        has(r#"lsports_listening_sockets{exposure="loopback",proto="tcp"} 4"#),
        "{page}"
    );
    assert!(has("# HELP lsports_listening_sockets_reachable "), "{page}");
    assert!(
        has(r#"node_textfile_mtime_seconds{file="#),
        "the collector read the file: {page}"
    );
}
