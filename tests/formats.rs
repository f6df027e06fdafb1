//! Output formats, columns, exposure and filters, each on a world of real sockets in a private
//! network namespace. JSON and JSONL are validated against the published schema file.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use lsports::text::sanitize::terminal_safe;
use serde_json::{Value, json};

/// A world with one socket of each interesting kind.
fn mixed_world() -> World {
    World::start(&json!([
        group("tcp", "0.0.0.0", "tcp4any"),
        group_with("tcp", "::", "dualstack", json!({"v6only": false})),
        group_with("udp", "::", "udp6only", json!({"v6only": true})),
        group_with("tcp", "127.0.0.1", "prefork", json!({"prefork": 2})),
        group_with("udp", "0.0.0.0", "ondev", json!({"device": "lsp0"})),
        group("tcp", "::1", "tcp6lo"),
    ]))
}

fn ports_of_json(v: &Value) -> BTreeSet<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["local_port"].as_u64().unwrap())
        .collect()
}

#[test]
fn json_matches_the_schema_file_and_the_world() {
    let world = mixed_world();
    let v = world.json(&["-n"]);
    assert_valid(&v, "lsports --json");
    assert_keys_documented(&v);
    // The README's contract, as the other suites check it.
    assert_json_schema(&v);
    assert_same_rows(
        "--json",
        &rows_from_json(&v),
        &rows_from_truth(world.listening()),
    );
    let expected = [
        ("tcp4any", "all", json!(["ipv4"])),
        ("dualstack", "all", json!(["ipv4", "ipv6"])),
        ("udp6only", "all", json!(["ipv6"])),
        ("prefork", "loopback", json!(["ipv4"])),
        ("ondev", "interface", json!(["ipv4"])),
        ("tcp6lo", "loopback", json!(["ipv6"])),
    ];
    for t in world.listening() {
        let s = by_inode(&v, t.inode);
        let (_, exposure, families) = expected.iter().find(|e| e.0 == t.name).unwrap();
        assert_eq!(s["exposure"], json!(exposure), "{s}");
        assert_eq!(&s["reachable_families"], families, "{s}");
        for p in s["processes"].as_array().unwrap() {
            let pid = p["pid"].as_u64().unwrap();
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
            assert_eq!(p["exe"], json!(exe.to_str().unwrap()), "exe of {p}");
        }
    }
}

#[test]
fn jsonl_carries_the_json_objects_one_per_line() {
    let world = mixed_world();
    let array = world.json(&["-n"]);
    let text = world.text(&["--format", "jsonl"]);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(text.lines().count(), array.as_array().unwrap().len());
    for line in &lines {
        assert_valid(&json!([line]), "a --format jsonl line");
    }
    assert_eq!(Value::Array(lines), array, "jsonl and json differ");
}

#[test]
fn empty_world_gives_empty_documents() {
    let world = World::start(&json!([]));
    assert_eq!(world.json(&[]), json!([]));
    assert_eq!(world.text(&["--format", "jsonl"]), "");
    let csv = world.text(&["--format", "csv", "-o", "proto,port"]);
    assert_eq!(csv, "proto,port\n");
    assert_eq!(world.text(&["--format", "csv", "-o", "port", "-H"]), "");
}

#[test]
fn csv_has_a_header_and_one_quoted_row_per_socket() {
    let tricky = "a,\"b\" c\nd";
    let world = World::start(&json!([
        group("tcp", "127.0.0.1", tricky),
        group_with("tcp", "0.0.0.0", "workers", json!({"prefork": 2})),
        group_with("udp", "::", "dns", json!({"v6only": false})),
    ]));
    let text = world.text(&["--format", "csv"]);
    assert_terminal_safe("csv", text.as_bytes());
    let rows = parse_csv(&text);
    let header: Vec<&str> = rows[0].iter().map(String::as_str).collect();
    assert_eq!(
        header,
        [
            "proto",
            "family",
            "address",
            "port",
            "state",
            "recv_q",
            "send_q",
            "uid",
            "user",
            "inode",
            "interface",
            "exposure",
            "pid",
            "program"
        ]
    );
    assert_eq!(rows.len() - 1, world.listening().count(), "{text}");
    for t in world.listening() {
        let row: BTreeMap<&str, &str> = rows
            .iter()
            .skip(1)
            .map(|r| {
                header
                    .iter()
                    .copied()
                    .zip(r.iter().map(String::as_str))
                    .collect()
            })
            .find(|r: &BTreeMap<&str, &str>| r["inode"] == t.inode.to_string())
            .unwrap_or_else(|| panic!("no row for {t:?} in\n{text}"));
        assert_eq!(row["proto"], t.proto);
        assert_eq!(row["family"], t.family);
        assert_eq!(row["address"], t.addr);
        assert_eq!(row["port"], t.port.to_string());
        assert_eq!(row["user"], "root");
        let pids: Vec<String> = t.pids.iter().map(u32::to_string).collect();
        assert_eq!(row["pid"], pids.join(","));
        let name = terminal_safe(&hex_bytes(&t.name_hex)).into_owned();
        assert_eq!(row["program"], name, "program cell");
    }
    // The quoting is needed: the tricky name holds a comma and a quote.
    assert!(text.contains("\"a,\"\"b\"\" c\\nd\""), "{text}");
    let bare = world.text(&["--format", "csv", "--no-header"]);
    assert_eq!(bare, text.split_once('\n').unwrap().1);
}

#[test]
fn columns_choose_and_order_table_and_csv() {
    let world = mixed_world();
    let table = world.table(&["-n", "-o", "port,proto,pid,program,exposure"]);
    assert_eq!(
        table.header,
        ["Port", "Proto", "PID", "Program", "Exposure"]
    );
    assert_eq!(table.rows.len(), world.listening().count());
    for t in world.listening() {
        let row = table
            .rows
            .iter()
            .find(|r| r[0] == t.port.to_string() && r[1].starts_with(&t.proto))
            .unwrap_or_else(|| panic!("no row for {t:?}:\n{}", table.raw));
        let pids: Vec<String> = t.pids.iter().map(u32::to_string).collect();
        assert_eq!(row[2], pids.join(","));
        assert_eq!(row[3], t.name);
    }
    let headless = world.text(&["-n", "-H", "-o", "port,proto"]);
    assert_eq!(headless.lines().count(), world.listening().count());
    assert!(!headless.contains("Port"), "{headless}");

    let csv = parse_csv(&world.text(&["--format", "csv", "-o", "exe,port,cmdline"]));
    assert_eq!(csv[0], ["exe", "port", "cmdline"]);
    for row in &csv[1..] {
        assert!(row[0].starts_with('/'), "exe cell {row:?}");
        assert!(row[2].contains("python3"), "cmdline cell {row:?}");
    }
}

#[test]
fn default_table_is_the_netstat_column_set() {
    let world = mixed_world();
    for (plain, explicit) in [
        (
            &["-tln"][..],
            "proto,recv_q,send_q,local,foreign,state,process",
        ),
        (
            &["-ln", "-e"][..],
            "proto,recv-q,send-q,local,foreign,state,user,inode,process,reach",
        ),
    ] {
        let mut args = plain.to_vec();
        args.extend(["-o", explicit]);
        assert_eq!(world.text(plain), world.text(&args), "{plain:?}");
    }
    let table = world.table(&["-tln"]);
    assert_eq!(
        table.header,
        [
            "Proto",
            "Recv-Q",
            "Send-Q",
            "Local Address",
            "Foreign Address",
            "State",
            "PID/Program name"
        ]
    );
}

/// A socket on an address or device world.py cannot set up, and the exposure it must get.
struct ExposureCase {
    addr: &'static str,
    port: u16,
    v6only: Option<bool>,
    device: Option<&'static str>,
    exposure: &'static str,
    families: &'static [&'static str],
}

const fn case(
    addr: &'static str,
    port: u16,
    v6only: Option<bool>,
    device: Option<&'static str>,
    exposure: &'static str,
    families: &'static [&'static str],
) -> ExposureCase {
    ExposureCase {
        addr,
        port,
        v6only,
        device,
        exposure,
        families,
    }
}

const EXPOSURE_CASES: &[ExposureCase] = &[
    case("127.0.0.1", 7001, None, None, "loopback", &["ipv4"]),
    case("::1", 7002, Some(true), None, "loopback", &["ipv6"]),
    case("0.0.0.0", 7003, None, None, "all", &["ipv4"]),
    case("::", 7004, Some(false), None, "all", &["ipv4", "ipv6"]),
    case("::", 7005, Some(true), None, "all", &["ipv6"]),
    case("0.0.0.0", 7006, None, Some("lsx0"), "interface", &["ipv4"]),
    case("0.0.0.0", 7007, None, Some("lo"), "loopback", &["ipv4"]),
    case("169.254.7.7", 7008, None, None, "link-local", &["ipv4"]),
    case("192.0.2.7", 7009, None, None, "specific", &["ipv4"]),
    case("2001:db8::7", 7010, Some(true), None, "specific", &["ipv6"]),
    case(
        "::ffff:127.0.0.1",
        7011,
        Some(false),
        None,
        "loopback",
        &["ipv4"],
    ),
    case(
        "fe80::7%lsx0",
        7012,
        Some(true),
        None,
        "link-local",
        &["ipv6"],
    ),
];

#[test]
fn exposure_classes_and_the_exposed_filter() {
    let world = World::start(&json!([]));
    let sockets: Vec<Value> = EXPOSURE_CASES
        .iter()
        .map(|c| json!({"addr": c.addr, "port": c.port, "v6only": c.v6only, "device": c.device}))
        .collect();
    let listener = Listener::new("exposed", Value::Array(sockets));
    // Addresses only bind once assigned (nodad: no duplicate detection delay for IPv6).
    let script = format!(
        "set -e\n\
         ip link add lsx0 type dummy 2>/dev/null || ip link add lsx0 type bridge\n\
         ip link set lsx0 up\n\
         ip addr add 169.254.7.7/16 dev lsx0\n\
         ip addr add 192.0.2.7/24 dev lsx0\n\
         ip addr add 2001:db8::7/64 dev lsx0 nodad\n\
         ip addr add fe80::7/64 dev lsx0 nodad\n\
         {start}\
         echo '=== json'; $LSPORTS -t --json\n\
         echo '=== exposed'; $LSPORTS -t --exposed --format jsonl\n\
         echo '=== link-local'; $LSPORTS -t --exposure link-local,interface --format csv -o port,exposure\n\
         echo '=== table'; $LSPORTS -tn -o port,exposure -H\n\
         {stop}",
        start = listener.start(None),
        stop = listener.stop(),
    );
    let (parts, _) = world.script_sections(&script);

    let v: Value = serde_json::from_str(&parts["json"]).unwrap();
    assert_valid(&v, "exposure --json");
    let by_port: BTreeMap<u64, &Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["local_port"].as_u64().unwrap(), s))
        .collect();
    assert_eq!(by_port.len(), EXPOSURE_CASES.len(), "{v:#}");
    for c in EXPOSURE_CASES {
        let s = by_port[&u64::from(c.port)];
        assert_eq!(
            s["exposure"],
            json!(c.exposure),
            "{} port {}: {s}",
            c.addr,
            c.port
        );
        assert_eq!(
            s["reachable_families"],
            json!(c.families),
            "{}: {s}",
            c.addr
        );
    }

    let exposed: BTreeSet<u64> = parts["exposed"]
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["local_port"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let external: BTreeSet<u64> = EXPOSURE_CASES
        .iter()
        .filter(|c| c.exposure != "loopback")
        .map(|c| u64::from(c.port))
        .collect();
    assert_eq!(exposed, external);

    let csv = parse_csv(&parts["link-local"]);
    let got: Vec<(&str, &str)> = csv[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("7006", "interface"),
            ("7008", "link-local"),
            ("7012", "link-local")
        ]
    );
    let table_rows = parts["table"].lines().count();
    assert_eq!(table_rows, EXPOSURE_CASES.len(), "{}", parts["table"]);
}

/// A world for the filter tests: one socket per group, fixed ports.
fn filter_world() -> World {
    World::start(&json!([
        group_with("tcp", "127.0.0.1", "alpha", json!({"port": 7101})),
        group_with(
            "tcp",
            "0.0.0.0",
            "beta-svc",
            json!({"port": 7150, "prefork": 1})
        ),
        group_with("udp", "::", "gamma", json!({"port": 7200, "v6only": false})),
    ]))
}

fn ports(world: &World, filters: &[&str]) -> BTreeSet<u64> {
    ports_of_json(&world.json(filters))
}

fn set(ports: &[u64]) -> BTreeSet<u64> {
    ports.iter().copied().collect()
}

#[test]
fn filters_select_and_combine() {
    let world = filter_world();
    let beta_worker = world
        .one(1, "listen")
        .procs
        .iter()
        .find(|p| p.role == "worker")
        .unwrap()
        .pid
        .to_string();
    let cases: Vec<(Vec<&str>, &[u64])> = vec![
        (vec!["--port", "7101"], &[7101]),
        (vec!["--port", "7100-7199"], &[7101, 7150]),
        (vec!["--port", "7101,7200"], &[7101, 7200]),
        (vec!["--port", "7101", "--port", "7150"], &[7101, 7150]),
        (vec!["--address", "127.0.0.1"], &[7101]),
        (vec!["--address", "0.0.0.0/0"], &[7101, 7150]),
        (vec!["--address", "::/0"], &[7200]),
        (vec!["--address", "127.0.0.0/8,::"], &[7101, 7200]),
        (vec!["--pid", &beta_worker], &[7150]),
        (vec!["--program", "beta-svc"], &[7150]),
        (vec!["--program", "b*"], &[7150]),
        (
            vec!["--program", "gam?a", "--program", "alpha"],
            &[7101, 7200],
        ),
        (vec!["--program", "nomatch"], &[]),
        (vec!["--user", "root"], &[7101, 7150, 7200]),
        (vec!["--user", "0", "--port", "7200"], &[7200]),
        (vec!["--port", "7100-7199", "--program", "b*"], &[7150]),
        (vec!["--port", "7101", "--program", "b*"], &[]),
        (vec!["--exposed"], &[7150, 7200]),
        (vec!["--exposed", "--address", "::/0"], &[7200]),
    ];
    for (filters, want) in cases {
        assert_eq!(ports(&world, &filters), set(want), "lsports {filters:?}");
    }
}

#[test]
fn filters_apply_in_every_format() {
    let world = filter_world();
    let args = |format: &'static str| vec!["-n", "--port", "7101", "--format", format];
    let table = world.table(&args("table"));
    assert_eq!(table.rows.len(), 1, "{}", table.raw);
    assert_eq!(
        table.cell(&table.rows[0], "Local Address"),
        "127.0.0.1:7101"
    );
    assert_eq!(
        ports_of_json(&world.json(&["--port", "7101"])),
        set(&[7101])
    );
    let jsonl = world.text(&args("jsonl"));
    assert_eq!(jsonl.lines().count(), 1);
    assert!(jsonl.contains("\"local_port\":7101"), "{jsonl}");
    let csv = parse_csv(&world.text(&args("csv")));
    assert_eq!(csv.len(), 2);
    assert_eq!(csv[1][3], "7101");
    let prom = world.text(&args("prometheus"));
    let series: Vec<&str> = prom
        .lines()
        .filter(|l| l.starts_with("lsports_listening_socket{"))
        .collect();
    assert_eq!(series.len(), 1, "{prom}");
    assert!(series[0].contains("port=\"7101\""), "{prom}");
}

#[test]
fn user_filter_matches_socket_owner_or_process_user() {
    if !is_root() {
        eprintln!("SKIP: a listener of another user needs root");
        return;
    }
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "rootsvc",
        json!({"port": 7301})
    )]));
    let nobody = Listener::new("nobodysvc", json!([{"addr": "127.0.0.1", "port": 7302}]));
    let script = format!(
        "{start}\
         echo '=== uid'; $LSPORTS --user 65534 --json\n\
         echo '=== root'; $LSPORTS --user root --json\n\
         echo '=== both'; $LSPORTS --user 0,65534 --json\n\
         echo '=== csv'; $LSPORTS --format csv -o port,uid,user,program\n\
         {stop}",
        start = nobody.start(Some(65534)),
        stop = nobody.stop(),
    );
    let (parts, _) = world.script_sections(&script);
    let ports_in = |name: &str| ports_of_json(&serde_json::from_str(&parts[name]).unwrap());
    assert_eq!(ports_in("uid"), set(&[7302]));
    assert_eq!(ports_in("root"), set(&[7301]));
    assert_eq!(ports_in("both"), set(&[7301, 7302]));
    let csv = parse_csv(&parts["csv"]);
    let nobody_row = csv.iter().find(|r| r[0] == "7302").unwrap();
    assert_eq!(nobody_row[1], "65534");
    assert_eq!(nobody_row[3], "nobodysvc");
}

#[test]
fn bad_filters_and_misplaced_flags_are_usage_errors() {
    for args in [
        &["--port", "no-such-service-lsports"][..],
        &["--address", "example.org"],
        &["--user", "no-such-user-lsports"],
        &["--json", "-o", "port"],
        &["--format", "prometheus", "-a"],
        &["-o", "nonsense"],
        &["--format", "xml"],
    ] {
        let err = usage_error(args);
        assert!(err.contains("error"), "{err}");
    }
}

#[test]
fn hostile_names_never_reach_any_format_raw() {
    // 15 bytes: ESC, CR, LF, BEL, C1 CSI, RIGHT-TO-LEFT OVERRIDE, an invalid byte.
    let name_hex = "1b5b324a0d0a07c29be280aeff782c";
    let world = World::start(&json!([
        group_with("tcp", "127.0.0.1", "x", json!({"name_hex": name_hex})),
        group_with(
            "udp",
            "::",
            "x",
            json!({"name_hex": name_hex, "v6only": false})
        ),
    ]));
    let escaped = terminal_safe(&hex_bytes(name_hex)).into_owned();
    let runs: &[&[&str]] = &[
        &["-n"],
        &["-o", "program,process,cmdline,exe,interface,user"],
        &["--json"],
        &["--format", "jsonl"],
        &["--format", "csv", "-o", "program,process,cmdline,exe"],
        &["--format", "prometheus"],
    ];
    for args in runs {
        let text = world.text(args);
        assert_terminal_safe(&format!("lsports {args:?}"), text.as_bytes());
        let expected = if args.contains(&"--json") || args.contains(&"jsonl") {
            // JSON escapes, and the document parses back to the lossy name.
            "\\u001b[2J\\r\\n\\u0007\\u009b\\u202e\u{fffd}x,".to_string()
        } else if args.contains(&"prometheus") {
            escaped.replace('\\', "\\\\").replace('"', "\\\"")
        } else {
            escaped.clone()
        };
        assert!(
            text.contains(&expected),
            "{args:?}: {expected:?} not in\n{text}"
        );
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Issue #11, item 19: `--ignore-ephemeral` is a listing filter. With the namespace's range set
/// to 45000-45999, UDP sockets on it are left out of every format, of `-c` and of `watch`;
/// TCP on the range and UDP outside it stay.
#[test]
fn ignore_ephemeral_applies_to_every_format_and_action() {
    let world = World::start(&json!([]));
    let listener = Listener::new(
        "clients",
        json!([
            {"proto": "udp", "addr": "0.0.0.0", "port": 45500},
            {"proto": "udp", "addr": "::", "port": 45999},
            {"proto": "udp", "addr": "0.0.0.0", "port": 5353},
            {"proto": "tcp", "addr": "0.0.0.0", "port": 45600},
        ]),
    );
    let poll = "timeout --preserve-status -s TERM 1.5 $LSPORTS --interval 200ms";
    let script = format!(
        "set -e\n\
         echo '45000 45999' > /proc/sys/net/ipv4/ip_local_port_range\n\
         {start}\
         echo '=== unfiltered'; $LSPORTS --json\n\
         echo '=== table'; $LSPORTS -n --ignore-ephemeral\n\
         echo '=== json'; $LSPORTS --ignore-ephemeral --json\n\
         echo '=== jsonl'; $LSPORTS --ignore-ephemeral --format jsonl\n\
         echo '=== csv'; $LSPORTS --ignore-ephemeral --format csv -o port\n\
         echo '=== continuous'; {poll} -c --ignore-ephemeral --format jsonl\n\
         echo '=== watch'; {poll} watch --ignore-ephemeral --format jsonl\n\
         {stop}",
        start = listener.start(None),
        stop = listener.stop(),
    );
    let (parts, _) = world.script_sections(&script);
    let from_json_lines = |text: &str, key: &str| -> BTreeSet<u64> {
        text.lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()[key]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let table = Table::parse(&parts["table"]);
    let from_table: BTreeSet<u64> = table
        .rows
        .iter()
        .map(|r| {
            let local = table.cell(r, "Local Address");
            local.rsplit(':').next().unwrap().parse().unwrap()
        })
        .collect();
    let from_csv: BTreeSet<u64> = parse_csv(&parts["csv"])[1..]
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    let kept = set(&[5353, 45600]);
    assert_eq!(
        ports_of_json(&parse_json(parts["unfiltered"].as_bytes())),
        set(&[5353, 45500, 45600, 45999]),
        "without the flag every socket is listed"
    );
    assert_eq!(from_table, kept, "table:\n{}", parts["table"]);
    assert_eq!(ports_of_json(&parse_json(parts["json"].as_bytes())), kept);
    assert_eq!(from_json_lines(&parts["jsonl"], "local_port"), kept);
    assert_eq!(from_csv, kept, "csv:\n{}", parts["csv"]);
    assert_eq!(from_json_lines(&parts["continuous"], "local_port"), kept);
    assert_eq!(from_json_lines(&parts["watch"], "port"), kept);
}

/// An address written as the listing writes an IPv4-mapped socket (`[::ffff:127.0.0.1]:7300`)
/// selects it, in `--address` and in a policy's `address`, as the IPv4 address does.
#[test]
fn an_ipv4_mapped_address_selects_the_socket_bound_to_it() {
    let world = World::start(&json!([
        group_with(
            "tcp",
            "::ffff:127.0.0.1",
            "mapped",
            json!({"port": 7300, "v6only": false})
        ),
        group_with("tcp", "127.0.0.2", "other", json!({"port": 7301})),
    ]));
    for (filters, want) in [
        (vec!["--address", "::ffff:127.0.0.1"], &[7300][..]),
        (vec!["--address", "[::ffff:127.0.0.1]"], &[7300]),
        (vec!["--address", "::ffff:127.0.0.0/104"], &[7300, 7301]),
        (vec!["--address", "::ffff:0:0/96"], &[7300, 7301]),
        (vec!["--address", "127.0.0.1"], &[7300]),
    ] {
        assert_eq!(ports(&world, &filters), set(want), "lsports {filters:?}");
    }
    let policy = world.dir().join("policy.toml");
    std::fs::write(
        &policy,
        "default = \"allow\"\n[[rule]]\nname = \"no mapped loopback\"\naction = \"deny\"\n\
         address = \"::ffff:127.0.0.1\"\n",
    )
    .unwrap();
    let out = world.run(&[
        "audit",
        "--fail-on",
        "none",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let denied: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("no mapped loopback"))
        .collect();
    assert_eq!(denied.len(), 1, "{report}");
    assert!(denied[0].contains(":7300"), "{report}");
}
