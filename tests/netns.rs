//! Integration tests: each test builds its own world of sockets and processes
//! in a private network namespace (tests/support/world.py) and compares what
//! lsports prints to what the world created. Nothing here depends on what
//! listens on the host: netlink only sees the test's namespace, and the /proc
//! fd scan matches sockets by inode.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::{Value, json};

/// The Local Address cell lsports should print for a socket (numeric).
fn table_local(t: &Truth) -> String {
    let host = if t.family == "ipv4" {
        t.addr.clone()
    } else if t.addr == "::" && t.v6only == Some(false) {
        "*".to_string()
    } else {
        format!("[{}]", t.addr)
    };
    match &t.device {
        Some(d) => format!("{host}%{d}:{}", t.port),
        None => format!("{host}:{}", t.port),
    }
}

/// The Proto cell: tcp, tcp6, udp, udp6.
fn table_proto(t: &Truth) -> String {
    if t.family == "ipv6" {
        format!("{}6", t.proto)
    } else {
        t.proto.clone()
    }
}

/// The table row of a truth socket (by Proto and Local Address).
fn row_of<'a>(table: &'a Table, t: &Truth) -> &'a Vec<String> {
    table.row_proto(&table_proto(t), &table_local(t))
}

/// The Foreign Address cell of a listener / bound UDP socket.
fn table_foreign_listener(t: &Truth) -> &'static str {
    if t.family == "ipv4" {
        "0.0.0.0:*"
    } else if t.addr == "::" && t.v6only == Some(false) {
        "*:*"
    } else {
        "[::]:*"
    }
}

fn state_of(t: &Truth) -> &'static str {
    match t.kind.as_str() {
        "listen" => "LISTEN",
        "unconn" => "UNCONN",
        _ => "ESTABLISHED",
    }
}

/// The pids and the name of every process in a program cell, as sets.
fn program_cell_procs(cell: &str) -> BTreeSet<(u32, String)> {
    parse_program(cell)
        .into_iter()
        .flat_map(|(pids, name)| pids.into_iter().map(move |p| (p, name.clone())))
        .collect()
}

fn truth_procs(t: &Truth) -> BTreeSet<(u32, String)> {
    t.procs.iter().map(|p| (p.pid, p.name.clone())).collect()
}

fn states(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

/// Every JSON socket carries exactly the processes of the truth socket with
/// the same inode: pid, name, cmdline, fd.
fn assert_processes_match(v: &Value, world: &World, kinds: &[&str]) {
    for t in world
        .truth
        .iter()
        .filter(|t| kinds.contains(&t.kind.as_str()))
    {
        let s = by_inode(v, t.inode);
        let procs = s["processes"].as_array().unwrap();
        let got: BTreeMap<u64, &Value> = procs
            .iter()
            .map(|p| (p["pid"].as_u64().unwrap(), p))
            .collect();
        assert_eq!(
            got.keys().map(|&p| p as u32).collect::<Vec<_>>(),
            t.pids,
            "pids of inode {} ({}:{})",
            t.inode,
            t.addr,
            t.port
        );
        for tp in &t.procs {
            let p = got[&(tp.pid as u64)];
            assert_eq!(p["name"], json!(tp.name), "name of pid {}", tp.pid);
            assert_eq!(p["cmdline"], json!(tp.cmdline), "cmdline of pid {}", tp.pid);
            assert_eq!(p["fd"], json!(tp.fd), "fd of pid {}", tp.pid);
        }
        assert_eq!(
            s["owner_unknown_reason"],
            Value::Null,
            "owner_unknown_reason with processes found: {s}"
        );
    }
}

fn basic_spec() -> Value {
    json!([
        group("tcp", "0.0.0.0", "tcp4any"),
        group("tcp", "127.0.0.1", "tcp4lo"),
        group("tcp", "::1", "tcp6lo"),
        group_with("tcp", "::", "tcp6only", json!({"v6only": true})),
        group("udp", "0.0.0.0", "udp4any"),
        group("udp", "127.0.0.1", "udp4lo"),
        group("udp", "::1", "udp6lo"),
        group_with("udp", "::", "udp6dual", json!({"v6only": false})),
    ])
}

#[test]
fn tcp_udp_v4_v6_listeners_json_matches_world() {
    let world = World::start(&basic_spec());
    assert_eq!(world.truth.len(), 8);
    let v = world.json(&["-n"]);
    assert_json_schema(&v);
    assert_same_rows(
        "lsports -n --json",
        &rows_from_json(&v),
        &rows_from_truth(world.listening()),
    );
    for t in &world.truth {
        let s = by_inode(&v, t.inode);
        assert_eq!(s["state"], json!(state_of(t)), "state of {s}");
        assert_eq!(s["source"], json!("netlink"), "default source of {s}");
        assert_eq!(s["uid"], json!(0), "socket uid of {s}");
        assert_eq!(s["interface"], Value::Null, "interface of {s}");
        if t.family == "ipv6" {
            assert_eq!(s["v6only"], json!(t.v6only), "v6only of {s}");
        } else {
            assert_eq!(s["v6only"], Value::Null, "v6only of IPv4 {s}");
        }
    }
    assert_processes_match(&v, &world, &["listen", "unconn"]);
}

#[test]
fn default_table_lists_every_listener() {
    let world = World::start(&basic_spec());
    let table = world.table(&["-n"]);
    for h in [
        "Proto",
        "Recv-Q",
        "Send-Q",
        "Local Address",
        "Foreign Address",
        "State",
        "PID/Program name",
    ] {
        table.col_index(h);
    }
    assert_eq!(
        table.rows.len(),
        world.truth.len(),
        "one row per socket:\n{}",
        table.raw
    );
    for t in &world.truth {
        let row = row_of(&table, t);
        assert_eq!(table.cell(row, "Proto"), table_proto(t), "{row:?}");
        assert_eq!(table.cell(row, "State"), state_of(t), "{row:?}");
        assert_eq!(
            table.cell(row, "Foreign Address"),
            table_foreign_listener(t),
            "{row:?}"
        );
        assert_eq!(
            table.cell(row, "PID/Program name"),
            format!("{}/{}", t.pids[0], t.name),
            "{row:?}"
        );
    }
}

#[test]
fn listener_backlog_is_send_q() {
    let world = World::start(&json!([
        group_with("tcp", "127.0.0.1", "backlog", json!({"backlog": 77})),
        group_with("tcp", "::1", "backlog6", json!({"backlog": 33})),
    ]));
    let v = world.json(&["-n"]);
    let table = world.table(&["-n"]);
    for t in &world.truth {
        let s = by_inode(&v, t.inode);
        assert_eq!(s["send_q"], json!(t.backlog.unwrap()), "send_q of {s}");
        assert_eq!(s["recv_q"], json!(0), "recv_q of {s}");
        let row = row_of(&table, t);
        assert_eq!(
            table.cell(row, "Send-Q"),
            t.backlog.unwrap().to_string(),
            "{row:?}"
        );
        assert_eq!(table.cell(row, "Recv-Q"), "0", "{row:?}");
    }
}

#[test]
fn dual_stack_and_v6only_wildcards() {
    let world = World::start(&json!([
        group_with("tcp", "::", "dual", json!({"v6only": false})),
        group_with("tcp", "::", "v6only", json!({"v6only": true})),
        group_with("udp", "::", "udpdual", json!({"v6only": false})),
        group_with("udp", "::", "udpv6only", json!({"v6only": true})),
    ]));
    let v = world.json(&["-n"]);
    assert_same_rows(
        "dual stack",
        &rows_from_json(&v),
        &rows_from_truth(world.listening()),
    );
    let table = world.table(&["-n"]);
    for t in &world.truth {
        let s = by_inode(&v, t.inode);
        assert_eq!(s["family"], json!("ipv6"));
        assert_eq!(s["local_addr"], json!("::"));
        assert_eq!(s["v6only"], json!(t.v6only.unwrap()), "v6only of {s}");
        let want = if t.v6only == Some(true) {
            format!("[::]:{}", t.port)
        } else {
            format!("*:{}", t.port)
        };
        let row = table.row_proto(&table_proto(t), &want);
        assert_eq!(table.cell(row, "Proto"), table_proto(t), "{row:?}");
        assert_eq!(
            program_cell_procs(table.cell(row, "PID/Program name")),
            truth_procs(t)
        );
    }
}

#[test]
fn socket_bound_to_device_shows_interface() {
    let world = World::start(&json!([
        group_with("tcp", "0.0.0.0", "ond0", json!({"device": "d0"})),
        group_with("udp", "0.0.0.0", "onlo", json!({"device": "lo"})),
        group("tcp", "0.0.0.0", "nodev"),
    ]));
    let v = world.json(&["-n"]);
    assert_same_rows(
        "device",
        &rows_from_json(&v),
        &rows_from_truth(world.listening()),
    );
    let table = world.table(&["-n"]);
    for t in &world.truth {
        let s = by_inode(&v, t.inode);
        assert_eq!(s["interface"], json!(t.device), "interface of {s}");
        let row = row_of(&table, t);
        assert_eq!(
            table.cell(row, "PID/Program name"),
            format!("{}/{}", t.pids[0], t.name)
        );
    }
    let d0 = world.one(0, "listen");
    table.row_proto("tcp", &format!("0.0.0.0%d0:{}", d0.port));
    let lo = world.one(1, "unconn");
    table.row_proto("udp", &format!("0.0.0.0%lo:{}", lo.port));
}

#[test]
fn established_connections_only_with_all() {
    let world = World::start(&json!([
        group_with(
            "tcp",
            "127.0.0.1",
            "srv4",
            json!({"connect": true, "client_name": "cli4"})
        ),
        group_with(
            "tcp",
            "::1",
            "srv6",
            json!({"connect": true, "client_name": "cli6"})
        ),
        group_with(
            "tcp",
            "::",
            "srvdual",
            json!({"v6only": false, "connect": true})
        ),
    ]));
    assert_eq!(
        world
            .truth
            .iter()
            .filter(|t| t.kind == "established")
            .count(),
        6
    );

    // Without -a: exactly the listeners.
    let v = world.json(&["-n"]);
    assert_same_rows(
        "without -a",
        &rows_from_json(&v),
        &rows_from_truth(world.listening()),
    );
    assert_eq!(states(&v), BTreeSet::from(["LISTEN".to_string()]));
    let table = world.table(&["-n"]);
    assert_eq!(table.rows.len(), 3, "{}", table.raw);
    assert!(!table.raw.contains("ESTABLISHED"), "{}", table.raw);

    // With -a: every socket, established ones with their peer.
    let v = world.json(&["-n", "-a"]);
    assert_json_schema(&v);
    assert_same_rows(
        "with -a",
        &rows_from_json(&v),
        &rows_from_truth(&world.truth),
    );
    for t in world.truth.iter().filter(|t| t.kind == "established") {
        let s = by_inode(&v, t.inode);
        assert_eq!(s["state"], json!("ESTABLISHED"), "{s}");
        assert_eq!(
            s["remote_addr"],
            json!(t.remote_addr.clone().unwrap()),
            "{s}"
        );
        assert_eq!(s["remote_port"], json!(t.remote_port.unwrap()), "{s}");
    }
    assert_processes_match(&v, &world, &["listen", "established"]);

    let table = world.table(&["-n", "-a"]);
    assert_eq!(table.rows.len(), world.truth.len(), "{}", table.raw);
    for t in world.truth.iter().filter(|t| t.kind == "established") {
        let local = if t.family == "ipv6" {
            format!("[{}]:{}", t.addr, t.port)
        } else {
            format!("{}:{}", t.addr, t.port)
        };
        let remote_addr = t.remote_addr.clone().unwrap();
        let remote = if t.family == "ipv6" {
            format!("[{remote_addr}]:{}", t.remote_port.unwrap())
        } else {
            format!("{remote_addr}:{}", t.remote_port.unwrap())
        };
        let rows: Vec<_> = table
            .rows_with_local(&local)
            .into_iter()
            .filter(|r| table.cell(r, "Foreign Address") == remote)
            .collect();
        assert_eq!(rows.len(), 1, "{local} -> {remote} in:\n{}", table.raw);
        assert_eq!(table.cell(rows[0], "State"), "ESTABLISHED");
        assert_eq!(
            program_cell_procs(table.cell(rows[0], "PID/Program name")),
            truth_procs(t)
        );
    }
}

#[test]
fn connected_udp_is_not_listening() {
    let world = World::start(&json!([
        group_with("udp", "127.0.0.1", "udpsrv", json!({"udp_connect": true})),
        group_with("udp", "::1", "udpsrv6", json!({"udp_connect": true})),
    ]));
    let connected: Vec<&Truth> = world
        .truth
        .iter()
        .filter(|t| t.kind == "udp_connected")
        .collect();
    assert_eq!(connected.len(), 2);

    for args in [&["-n"][..], &["-n", "-u"], &["-n", "-l"]] {
        let v = world.json(args);
        assert_same_rows(
            &format!("lsports {args:?}"),
            &rows_from_json(&v),
            &rows_from_truth(world.listening()),
        );
        assert_eq!(states(&v), BTreeSet::from(["UNCONN".to_string()]));
    }

    let v = world.json(&["-n", "-a"]);
    assert_same_rows(
        "with -a",
        &rows_from_json(&v),
        &rows_from_truth(&world.truth),
    );
    for t in connected {
        let s = by_inode(&v, t.inode);
        assert_eq!(s["proto"], json!("udp"));
        assert_eq!(s["state"], json!("ESTABLISHED"), "{s}");
        assert_eq!(
            s["remote_addr"],
            json!(t.remote_addr.clone().unwrap()),
            "{s}"
        );
        assert_eq!(s["remote_port"], json!(t.remote_port.unwrap()), "{s}");
        assert_eq!(json_pids(s), t.pids);
    }
}

#[test]
fn prefork_group_lists_every_pid() {
    let world = World::start(&json!([
        group_with("tcp", "0.0.0.0", "forky", json!({"prefork": 4})),
        group_with(
            "udp",
            "::",
            "forkyu",
            json!({"prefork": 4, "v6only": false})
        ),
        group("tcp", "127.0.0.1", "single"),
    ]));
    let v = world.json(&["-n"]);
    assert_same_rows(
        "prefork",
        &rows_from_json(&v),
        &rows_from_truth(world.listening()),
    );
    assert_processes_match(&v, &world, &["listen", "unconn"]);
    let table = world.table(&["-n", "-W"]);
    for gi in [0, 1] {
        let t = world.one(gi, if gi == 0 { "listen" } else { "unconn" });
        assert_eq!(t.pids.len(), 5);
        assert_eq!(json_pids(by_inode(&v, t.inode)), t.pids);
        let row = row_of(&table, t);
        let cell = table.cell(row, "PID/Program name");
        let parts = parse_program(cell);
        assert_eq!(parts.len(), 1, "one name, so one pid list: {cell:?}");
        assert_eq!(parts[0].1, t.name, "{cell:?}");
        let pids: BTreeSet<u32> = parts[0].0.iter().copied().collect();
        assert_eq!(pids.len(), parts[0].0.len(), "pid repeated: {cell:?}");
        assert_eq!(pids, t.pids.iter().copied().collect(), "{cell:?}");
    }
}

#[test]
fn prefork_workers_with_another_name() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "master",
        json!({"prefork": 3, "worker_name": "worker"})
    )]));
    let t = world.one(0, "listen");
    let v = world.json(&["-n"]);
    assert_processes_match(&v, &world, &["listen"]);
    let table = world.table(&["-n", "-W"]);
    let row = row_of(&table, t);
    let cell = table.cell(row, "PID/Program name");
    assert_eq!(
        cell.split(';').count(),
        2,
        "two names, `;`-separated: {cell:?}"
    );
    assert_eq!(program_cell_procs(cell), truth_procs(t), "{cell:?}");
}

#[test]
fn reuseport_group_is_separate_rows() {
    let world = World::start(&json!([
        group_with("tcp", "0.0.0.0", "rport", json!({"reuseport": 3})),
        group_with("udp", "::1", "rportu", json!({"reuseport": 3})),
    ]));
    let v = world.json(&["-n"]);
    assert_same_rows(
        "reuseport",
        &rows_from_json(&v),
        &rows_from_truth(world.listening()),
    );
    assert_processes_match(&v, &world, &["listen", "unconn"]);
    let table = world.table(&["-n", "-W"]);
    for gi in [0, 1] {
        let members: Vec<&Truth> = world.truth.iter().filter(|t| t.group == gi).collect();
        assert_eq!(members.len(), 3);
        let port = members[0].port;
        assert!(members.iter().all(|t| t.port == port));
        let inodes: BTreeSet<u64> = members.iter().map(|t| t.inode).collect();
        assert_eq!(inodes.len(), 3, "three separate sockets");
        let rows = table.rows_with_local(&table_local(members[0]));
        assert_eq!(rows.len(), 3, "three rows for port {port}:\n{}", table.raw);
        let got: BTreeSet<(u32, String)> = rows
            .iter()
            .map(|r| {
                let procs = program_cell_procs(table.cell(r, "PID/Program name"));
                assert_eq!(procs.len(), 1, "one pid per row: {r:?}");
                procs.into_iter().next().unwrap()
            })
            .collect();
        let want: BTreeSet<(u32, String)> = members.iter().flat_map(|t| truth_procs(t)).collect();
        assert_eq!(got, want);
    }
}

fn mixed_spec() -> Value {
    json!([
        group("tcp", "0.0.0.0", "a"),
        group("tcp", "127.0.0.1", "b"),
        group_with("tcp", "::", "c", json!({"v6only": false, "prefork": 2})),
        group_with("tcp", "::", "d", json!({"v6only": true})),
        group("tcp", "::1", "e"),
        group("udp", "0.0.0.0", "f"),
        group_with("udp", "::", "g", json!({"v6only": false})),
        group("udp", "::1", "h"),
        group_with("tcp", "127.0.0.1", "i", json!({"reuseport": 2})),
        group_with("tcp", "127.0.0.1", "j", json!({"connect": true})),
        group_with("udp", "127.0.0.1", "k", json!({"udp_connect": true})),
    ])
}

#[test]
fn proc_source_matches_netlink() {
    let world = World::start(&mixed_spec());
    let nl = world.json(&["-n", "--source", "netlink"]);
    let pr = world.json(&["-n", "--source", "proc"]);
    assert_json_schema(&pr);
    let want = rows_from_truth(world.listening());
    assert_same_rows("--source netlink", &rows_from_json(&nl), &want);
    assert_same_rows("--source proc", &rows_from_json(&pr), &want);
    for s in nl.as_array().unwrap() {
        assert_eq!(s["source"], json!("netlink"), "{s}");
    }
    for s in pr.as_array().unwrap() {
        assert_eq!(s["source"], json!("proc"), "{s}");
        if s["family"] == json!("ipv6") {
            // /proc/net/*6 does not carry IPV6_V6ONLY.
            assert_eq!(s["v6only"], Value::Null, "{s}");
        }
    }
    for t in world.listening() {
        assert_eq!(by_inode(&pr, t.inode)["state"], json!(state_of(t)));
    }

    // Every state too.
    let nl = world.json(&["-n", "-a", "--source", "netlink"]);
    let pr = world.json(&["-n", "-a", "--source", "proc"]);
    let want = rows_from_truth(&world.truth);
    assert_same_rows("-a --source netlink", &rows_from_json(&nl), &want);
    assert_same_rows("-a --source proc", &rows_from_json(&pr), &want);

    // From /proc the dual-stack flag is unknown: `[::]`, never `*`.
    let table = world.table(&["-n", "--source", "proc"]);
    let dual = world.one(2, "listen");
    table.row_proto("tcp6", &format!("[::]:{}", dual.port));
    assert!(
        table
            .rows_with_local(&format!("*:{}", dual.port))
            .is_empty(),
        "{}",
        table.raw
    );
}

#[test]
fn protocol_and_family_filters() {
    let world = World::start(&json!([
        group("tcp", "0.0.0.0", "t4"),
        group("tcp", "127.0.0.1", "t4lo"),
        group_with("tcp", "::", "t6", json!({"v6only": true})),
        group("tcp", "::1", "t6lo"),
        group("udp", "0.0.0.0", "u4"),
        group_with("udp", "::", "u6", json!({"v6only": true})),
        group("udp", "::1", "u6lo"),
    ]));
    let cases: &[(&[&str], Option<&str>, Option<&str>)] = &[
        (&["-t"], Some("tcp"), None),
        (&["--tcp"], Some("tcp"), None),
        (&["-u"], Some("udp"), None),
        (&["--udp"], Some("udp"), None),
        (&["-4"], None, Some("ipv4")),
        (&["--inet"], None, Some("ipv4")),
        (&["-6"], None, Some("ipv6")),
        (&["--inet6"], None, Some("ipv6")),
        (&["-t", "-4"], Some("tcp"), Some("ipv4")),
        (&["-u6"], Some("udp"), Some("ipv6")),
        (&["-tu"], None, None),
        (&["-4", "-6"], None, None),
        (&[], None, None),
    ];
    for (args, proto, family) in cases {
        let mut a = vec!["-n"];
        a.extend_from_slice(args);
        let v = world.json(&a);
        let want = rows_from_truth(world.listening().filter(|t| {
            proto.is_none_or(|p| t.proto == p) && family.is_none_or(|f| t.family == f)
        }));
        assert!(!want.is_empty());
        assert_same_rows(&format!("lsports {a:?}"), &rows_from_json(&v), &want);

        let table = world.table(&a);
        assert_eq!(
            table.rows.len(),
            want.len(),
            "table rows of {a:?}:\n{}",
            table.raw
        );
    }
}

#[test]
fn extend_adds_user_and_inode_columns() {
    let world = World::start(&json!([
        group("tcp", "127.0.0.1", "ext4"),
        group("udp", "::1", "ext6"),
        group_with("tcp", "0.0.0.0", "extfork", json!({"prefork": 2})),
    ]));
    let plain = world.table(&["-n"]);
    assert!(
        !plain.header.iter().any(|h| h == "Inode" || h == "User"),
        "{:?}",
        plain.header
    );

    let table = world.table(&["-n", "-e"]);
    table.col_index("User");
    table.col_index("Inode");
    assert_eq!(table.rows.len(), world.truth.len(), "{}", table.raw);
    for t in &world.truth {
        let row = row_of(&table, t);
        assert_eq!(table.cell(row, "Inode"), t.inode.to_string(), "{row:?}");
        assert_eq!(table.cell(row, "User"), "0", "-n: numeric user: {row:?}");
        assert_eq!(
            program_cell_procs(table.cell(row, "PID/Program name")),
            truth_procs(t),
            "{row:?}"
        );
    }

    // Names for users, numbers for the rest; --extend is -e.
    let table = world.table(&["--numeric-hosts", "--numeric-ports", "--extend"]);
    for t in &world.truth {
        let row = row_of(&table, t);
        assert_eq!(table.cell(row, "User"), "root", "{row:?}");
        assert_eq!(table.cell(row, "Inode"), t.inode.to_string(), "{row:?}");
    }
}

#[test]
fn unprivileged_run_lists_sockets_without_owners() {
    let world = World::start(&json!([
        group("tcp", "0.0.0.0", "rootsvc"),
        group("tcp", "::1", "rootsvc6"),
        group("udp", "127.0.0.1", "rootudp"),
        group_with("tcp", "127.0.0.1", "rootfork", json!({"prefork": 2})),
    ]));
    let Some(out) = world.run_as_nobody(&["-n"]) else {
        return;
    };
    assert_success(&out, &["-n", "(as nobody)"]);
    let table = Table::parse(&String::from_utf8(out.stdout.clone()).unwrap());
    assert_eq!(table.rows.len(), world.truth.len(), "{}", table.raw);
    for t in &world.truth {
        let row = row_of(&table, t);
        assert_eq!(table.cell(row, "PID/Program name"), "-", "{row:?}");
    }
    let lines = stderr_lines(&out);
    assert_eq!(
        lines.len(),
        1,
        "exactly one hint line on stderr: {lines:#?}"
    );
    assert!(lines[0].contains("root"), "{}", lines[0]);
    assert!(lines[0].contains("CAP_DAC_READ_SEARCH"), "{}", lines[0]);

    let out = world.run_as_nobody(&["-n", "--json"]).unwrap();
    assert_success(&out, &["-n", "--json", "(as nobody)"]);
    // JSON carries reach, which nobody cannot read the firewall for: one line says so.
    let (reach, others): (Vec<String>, Vec<String>) = stderr_lines(&out)
        .into_iter()
        .partition(|l| l.contains("reach is unknown"));
    assert!(
        others.len() <= 1 && reach.len() == 1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = parse_json(&out.stdout);
    assert_json_schema(&v);
    let want: Vec<Row> = rows_from_truth(world.listening())
        .into_iter()
        .map(|r| Row { pids: vec![], ..r })
        .collect();
    assert_same_rows("as nobody", &rows_from_json(&v), &want);
    for s in v.as_array().unwrap() {
        assert_eq!(s["owner_unknown_reason"], json!("permission"), "{s}");
    }
}

#[test]
fn hostile_process_name_cannot_split_rows_or_reach_the_terminal() {
    let evil = "\u{1b}[31mred\nx";
    let world = World::start(&json!([
        group("tcp", "0.0.0.0", evil),
        group("udp", "127.0.0.1", evil),
        group("tcp", "127.0.0.1", "calm"),
    ]));
    assert_eq!(world.one(0, "listen").name, evil);

    let out = world.run(&["-n"]);
    assert_success(&out, &["-n"]);
    assert!(
        !out.stdout.contains(&0x1b),
        "raw ESC on stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let table = Table::parse(&text);
    assert_eq!(
        table.rows.len(),
        world.truth.len(),
        "a name must not split a row:\n{text}"
    );
    for t in &world.truth {
        let row = row_of(&table, t);
        let cell = table.cell(row, "PID/Program name");
        if t.name == evil {
            assert_eq!(cell, format!("{}/\\e[31mred\\nx", t.pids[0]), "{row:?}");
        }
    }

    let v = world.json(&["-n"]);
    for t in &world.truth {
        let s = by_inode(&v, t.inode);
        assert_eq!(s["processes"][0]["name"], json!(t.name), "{s}");
    }
}

#[test]
fn bidi_and_invalid_utf8_names_are_escaped() {
    let world = World::start(&json!([
        // U+202E RIGHT-TO-LEFT OVERRIDE then "abc"
        {"proto": "tcp", "addr": "127.0.0.1", "port": 0, "name_hex": "e280ae616263"},
        // 0xff is never UTF-8
        {"proto": "tcp", "addr": "127.0.0.2", "port": 0, "name_hex": "ff41"},
        // U+200B ZERO WIDTH SPACE
        {"proto": "udp", "addr": "127.0.0.1", "port": 0, "name_hex": "e2808b7a"},
    ]));
    let out = world.run(&["-n"]);
    assert_success(&out, &["-n"]);
    let text = String::from_utf8(out.stdout).expect("table is UTF-8");
    assert!(!text.contains('\u{202e}'), "raw bidi override:\n{text}");
    assert!(!text.contains('\u{200b}'), "raw zero-width space:\n{text}");
    let table = Table::parse(&text);
    assert_eq!(table.rows.len(), 3, "{text}");
    let cell = |gi: usize, kind: &str| {
        let t = world.one(gi, kind);
        let row = row_of(&table, t);
        (t.pids[0], table.cell(row, "PID/Program name").to_string())
    };
    // Hex digits of \u{..} escapes compared without regard to case.
    let (pid, c) = cell(0, "listen");
    assert_eq!(c.to_lowercase(), format!("{pid}/\\u{{202e}}abc"));
    let (pid, c) = cell(1, "listen");
    assert_eq!(c.to_lowercase(), format!("{pid}/\\xffa"));
    let (pid, c) = cell(2, "unconn");
    assert_eq!(c.to_lowercase(), format!("{pid}/\\u{{200b}}z"));

    let out = world.run(&["-n", "--json"]);
    assert_success(&out, &["-n", "--json"]);
    let raw = String::from_utf8(out.stdout.clone()).expect("JSON is UTF-8");
    assert!(
        !raw.contains('\u{202e}'),
        "raw bidi override in JSON:\n{raw}"
    );
    assert!(
        !raw.contains('\u{200b}'),
        "raw zero-width space in JSON:\n{raw}"
    );
    let v = parse_json(&out.stdout);
    let name = |gi: usize, kind: &str| {
        by_inode(&v, world.one(gi, kind).inode)["processes"][0]["name"].clone()
    };
    assert_eq!(name(0, "listen"), json!("\u{202e}abc"));
    assert_eq!(name(1, "listen"), json!("\u{fffd}A"));
    assert_eq!(name(2, "unconn"), json!("\u{200b}z"));
}

#[test]
fn pipe_closed_early_by_head_is_quiet_success() {
    // 1200 listeners: the table is larger than a pipe buffer (64 KiB), so
    // lsports is still writing when `head -1` exits.
    let spec: Vec<Value> = (0..12)
        .map(|i| {
            group_with(
                "tcp",
                "127.0.0.1",
                &format!("pipe{i}"),
                json!({"count": 100}),
            )
        })
        .collect();
    let world = World::start(&Value::Array(spec));
    assert_eq!(world.truth.len(), 1200);

    let full = world.run(&["-tln"]);
    assert_success(&full, &["-tln"]);
    assert!(
        full.stdout.len() > 64 * 1024,
        "precondition: output ({} bytes) must exceed the pipe buffer",
        full.stdout.len()
    );
    let first_line = String::from_utf8_lossy(&full.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();

    // Control: the shell's pipe closes early and SIGPIPE has its default
    // disposition, as in a user's shell: `yes` is killed by it (128 + 13).
    let control = world.run_shell(r#"yes | head -1 >/dev/null; echo "${PIPESTATUS[0]}""#);
    assert_eq!(String::from_utf8_lossy(&control.stdout).trim(), "141");

    let out = world.run_shell(
        r#""$LSPORTS" -tln 2>"$WORLD_DIR/pipe.err" | head -1; echo "${PIPESTATUS[0]}" >"$WORLD_DIR/pipe.rc""#,
    );
    assert!(out.status.success(), "shell: {out:?}");
    let rc = std::fs::read_to_string(world.dir().join("pipe.rc")).unwrap();
    let err = std::fs::read_to_string(world.dir().join("pipe.err")).unwrap();
    assert_eq!(
        rc.trim(),
        "0",
        "lsports exit status behind a closed pipe (141 = killed by SIGPIPE); stderr: {err}"
    );
    // Not root: host processes of other users cannot be inspected, and
    // saying so is lsports' documented hint, not noise.
    let err: String = err
        .lines()
        .filter(|l| is_root() || !l.contains("CAP_DAC_READ_SEARCH"))
        .collect();
    assert_eq!(err, "", "stderr behind a closed pipe");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), first_line);
}

#[test]
fn empty_namespace_lists_nothing_and_succeeds() {
    let world = World::start(&json!([]));
    let v = world.json(&["-n"]);
    assert_eq!(v, json!([]));
    let v = world.json(&["-n", "-a"]);
    assert_eq!(v, json!([]));
    let table = world.table(&["-n"]);
    assert!(table.rows.is_empty(), "{}", table.raw);
}

#[test]
fn hundreds_of_processes_listing_equals_world_exactly() {
    let kinds = [
        ("tcp", "0.0.0.0", None),
        ("tcp", "127.0.0.1", None),
        ("tcp", "::1", None),
        ("tcp", "::", Some(true)),
        ("tcp", "::", Some(false)),
        ("udp", "0.0.0.0", None),
        ("udp", "127.0.0.1", None),
        ("udp", "::1", None),
        ("udp", "::", Some(true)),
    ];
    let mut spec = Vec::new();
    // 200 plain listeners held by 150 processes: 50 hold two, 100 hold one.
    for i in 0..150 {
        let (proto, addr, v6only) = kinds[i % kinds.len()];
        spec.push(json!({
            "proto": proto, "addr": addr, "port": 0, "v6only": v6only,
            "name": format!("svc{i}"), "count": if i < 50 { 2 } else { 1 },
        }));
    }
    for i in 0..5 {
        let (proto, addr, v6only) = kinds[(i * 2) % kinds.len()];
        spec.push(json!({
            "proto": proto, "addr": addr, "port": 0, "v6only": v6only,
            "name": format!("fork{i}"), "prefork": 4,
        }));
    }
    for i in 0..5 {
        let (proto, addr, v6only) = kinds[(i * 2 + 1) % kinds.len()];
        spec.push(json!({
            "proto": proto, "addr": addr, "port": 0, "v6only": v6only,
            "name": format!("reuse{i}"), "reuseport": 3,
        }));
    }
    let world = World::start(&Value::Array(spec));
    assert_eq!(world.truth.len(), 200 + 5 + 15);
    let pids: BTreeSet<u32> = world
        .truth
        .iter()
        .flat_map(|t| t.pids.iter().copied())
        .collect();
    assert_eq!(pids.len(), 150 + 25 + 15);
    assert!(world.truth.iter().any(|t| t.proto == "udp"));

    let v = world.json(&["-n"]);
    assert_json_schema(&v);
    assert_same_rows(
        "hundreds of processes",
        &rows_from_json(&v),
        &rows_from_truth(&world.truth),
    );
    let inodes: BTreeMap<u64, Vec<u32>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["inode"].as_u64().unwrap(), json_pids(s)))
        .collect();
    let want: BTreeMap<u64, Vec<u32>> = world
        .truth
        .iter()
        .map(|t| (t.inode, t.pids.clone()))
        .collect();
    assert_eq!(inodes, want, "inode -> pids");
    assert_processes_match(&v, &world, &["listen", "unconn"]);

    let table = world.table(&["-n", "-W"]);
    assert_eq!(table.rows.len(), world.truth.len(), "one row per socket");
}

#[test]
fn long_pid_list_is_cut_unless_wide() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "manyworkers",
        json!({"prefork": 19})
    )]));
    let t = world.one(0, "listen");
    assert_eq!(t.pids.len(), 20);

    let table = world.table(&["-n"]);
    let cell = table
        .cell(row_of(&table, t), "PID/Program name")
        .to_string();
    let (list, name) = cell.split_once('/').expect("pids/name");
    assert_eq!(name, t.name, "{cell:?}");
    let items: Vec<&str> = list.split(',').collect();
    let (more, shown) = items.split_last().unwrap();
    let more: usize = more
        .strip_prefix('+')
        .unwrap_or_else(|| panic!("a cut list ends with +N: {cell:?}"))
        .parse()
        .unwrap();
    let shown: BTreeSet<u32> = shown.iter().map(|p| p.parse().unwrap()).collect();
    assert!(!shown.is_empty(), "{cell:?}");
    assert!(
        shown.iter().all(|p| t.pids.contains(p)),
        "only pids that hold the socket: {cell:?}"
    );
    assert_eq!(shown.len() + more, 20, "shown + N = all holders: {cell:?}");

    let table = world.table(&["-n", "--wide"]);
    let cell = table.cell(row_of(&table, t), "PID/Program name");
    assert_eq!(program_cell_procs(cell), truth_procs(t), "{cell:?}");
}

#[test]
fn json_is_sorted_as_the_table() {
    let world = World::start(&mixed_spec());
    for extra in [&[][..], &["-a"]] {
        let mut args = vec!["-n", "-e"];
        args.extend_from_slice(extra);
        let v = world.json(&args);
        let json_inodes: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["inode"].to_string())
            .collect();
        let table = world.table(&args);
        let table_inodes: Vec<String> = table
            .rows
            .iter()
            .map(|r| table.cell(r, "Inode").to_string())
            .collect();
        assert_eq!(
            json_inodes, table_inodes,
            "lsports {args:?}: order of sockets"
        );
    }
}

/// The service name /etc/services gives a port, if any.
fn service_name(port: u16, proto: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines().find_map(|l| {
        let l = l.split('#').next().unwrap();
        let mut f = l.split_whitespace();
        let name = f.next()?;
        (f.next()? == format!("{port}/{proto}")).then(|| name.to_string())
    })
}

#[test]
fn names_for_loopback_and_well_known_ports_without_n() {
    let Some(ssh) = service_name(22, "tcp") else {
        return skip_unless_ci("/etc/services does not name 22/tcp");
    };
    let world = World::start(&json!([
        {"proto": "tcp", "addr": "127.0.0.1", "port": 22, "name": "sshish"},
    ]));
    let t = world.one(0, "listen");
    let cases: &[(&[&str], String)] = &[
        (&[], format!("localhost:{ssh}")),
        (&["--numeric-ports"], "localhost:22".to_string()),
        (&["--numeric-hosts"], format!("127.0.0.1:{ssh}")),
        (
            &["--numeric-hosts", "--numeric-ports"],
            "127.0.0.1:22".to_string(),
        ),
        (&["-n"], "127.0.0.1:22".to_string()),
    ];
    for (args, local) in cases {
        let table = world.table(args);
        assert_eq!(table.rows.len(), 1, "lsports {args:?}:\n{}", table.raw);
        let row = table.row_proto("tcp", local);
        assert_eq!(
            program_cell_procs(table.cell(row, "PID/Program name")),
            truth_procs(t)
        );
    }
    // JSON addresses and ports stay numeric.
    let v = world.json(&[]);
    assert_eq!(v[0]["local_addr"], json!("127.0.0.1"));
    assert_eq!(v[0]["local_port"], json!(22));
}

#[test]
fn verbose_says_which_source_fed_each_protocol() {
    let world = World::start(&json!([
        group("tcp", "127.0.0.1", "vtcp"),
        group("udp", "::1", "vudp"),
    ]));
    for (args, source) in [
        (&["-n", "-v"][..], "netlink"),
        (&["-n", "--verbose", "--source", "netlink"], "netlink"),
        (&["-n", "-v", "--source", "proc"], "proc"),
    ] {
        let quiet_args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != "-v" && *a != "--verbose")
            .collect();
        let quiet = world.run(&quiet_args);
        assert_success(&quiet, &quiet_args);
        let err = stderr_lines(&quiet);
        // The one line a quiet run may print: processes it could not inspect (other users'
        // when unprivileged; a sandbox's guarded init even as root).
        assert!(
            err.iter().all(|l| l.contains("could not be inspected")),
            "lsports {quiet_args:?}: without -v, no source chatter: {err:?}"
        );

        let out = world.run(args);
        assert_success(&out, args);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&quiet.stdout),
            "-v changes stderr only ({args:?})"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        for proto in ["tcp", "udp"] {
            assert!(
                err.lines().any(|l| l.contains(proto) && l.contains(source)),
                "lsports {args:?}: no stderr line says {proto} came from {source}:\n{err}"
            );
        }
    }
}

/// Connect to ADDR PORT from the namespace the script runs in and print `connected`,
/// `refused` or the error. With `retry`, keep trying for up to 20s (a new veth link).
const CONNECT_PY: &str = r#"
import socket, sys, time
deadline = time.time() + (20 if sys.argv[3] == "retry" else 0)
while True:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
        print("connected")
        break
    except OSError as error:
        if time.time() >= deadline:
            print("refused" if isinstance(error, ConnectionRefusedError) else f"error {error}")
            break
        time.sleep(0.1)
"#;

/// Issue #11, item 5: loopback is the device with index 1, never the device named `lo`. In the
/// listener's namespace the real loopback is renamed `realo` and one end of a veth pair to a
/// second namespace takes the name `lo`. A listener bound (SO_BINDTODEVICE) to the veth `lo`
/// takes connections from the other namespace, so it is exposed; one bound to `realo` refuses
/// them, so it is loopback. The kernel's answer to a real connection is the truth compared with.
#[test]
fn loopback_is_known_by_device_index_not_by_name() {
    if !is_root() {
        return skip_unless_ci("a veth pair between two namespaces needs root");
    }
    let peer = World::start(&json!([]));
    let world = World::start(&json!([]));
    let listener = Listener::new(
        "bound",
        json!([
            {"proto": "tcp", "addr": "0.0.0.0", "port": 7501, "device": "lo"},
            {"proto": "tcp", "addr": "0.0.0.0", "port": 7502, "device": "realo"},
        ]),
    );
    let connect = world.dir().join("connect.py");
    std::fs::write(&connect, CONNECT_PY).unwrap();
    let in_peer = format!("nsenter --net=/proc/{}/ns/net", peer.pid());
    let script = format!(
        "set -e\n\
         ip link add vA type veth peer name vB netns {peer}\n\
         ip link set lo down\n\
         ip link set lo name realo\n\
         ip link set realo up\n\
         ip link set vA name lo\n\
         ip addr add 10.231.0.1/24 dev lo\n\
         ip link set lo up\n\
         {in_peer} ip addr add 10.231.0.2/24 dev vB\n\
         {in_peer} ip link set vB up\n\
         {start}\
         echo '=== via veth named lo'; {in_peer} python3 {connect} 10.231.0.1 7501 retry\n\
         echo '=== via loopback named realo'; {in_peer} python3 {connect} 10.231.0.1 7502 once\n\
         echo '=== listing'; $LSPORTS -n --json --port 7501,7502\n\
         echo '=== exposed'; $LSPORTS -n --json --exposed\n\
         echo '=== external'; $LSPORTS -n --json --exposure external\n\
         echo '=== loopback'; $LSPORTS -n --json --exposure loopback\n\
         {stop}",
        peer = peer.pid(),
        connect = connect.display(),
        start = listener.start(None),
        stop = listener.stop(),
    );
    let (parts, _) = world.script_sections(&script);
    // The kernel's verdict: the veth called `lo` reaches the other namespace, `realo` does not.
    assert_eq!(parts["via veth named lo"].trim(), "connected", "{parts:?}");
    assert_eq!(
        parts["via loopback named realo"].trim(),
        "refused",
        "{parts:?}"
    );
    let listing = parse_json(parts["listing"].as_bytes());
    assert_eq!(by_port(&listing, 7501)["interface"], "lo");
    assert_eq!(by_port(&listing, 7501)["exposure"], "interface");
    assert_eq!(by_port(&listing, 7502)["interface"], "realo");
    assert_eq!(by_port(&listing, 7502)["exposure"], "loopback");
    let ports = |name: &str| ports_of(&parse_json(parts[name].as_bytes()));
    assert_eq!(
        ports("exposed"),
        [7501],
        "--exposed keeps what another host reaches"
    );
    assert_eq!(
        ports("external"),
        [7501],
        "--exposure external is --exposed"
    );
    assert_eq!(ports("loopback"), [7502], "--exposure loopback");
}
