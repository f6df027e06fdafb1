//! Sockets from the kernel's tcp and udp iterators (`LSPORTS_SOCKETS=iter`) must be exactly
//! what sock_diag gives (`LSPORTS_SOCKETS=diag`, the reference): the same JSON for `-l` and
//! `-a`, and the same values in the fields the JSON leaves out (cgroup id), against a world
//! holding every kind of socket the kernel tells apart: v4, v6, v6only and dual-stack
//! listeners, an SO_REUSEPORT group, a device-bound listener, connections with unread data in
//! both directions, one waiting to be accepted, a request socket (SYN_RECV), a TIME_WAIT
//! socket, a listener of another user, UDP bound, connected, and with a datagram unread.
//!
//! These tests need root and a kernel with BTF: elsewhere they skip, saying so, and under
//! `CI=true` they fail instead.

mod common;

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;
use lsports::config::{SourceChoice, StateSelection};
use lsports::model::{Family, Protocol, Socket, SourceKind};
use lsports::process::bpf;
use lsports::source::bpf::iter;
use lsports::source::netlink::SockDiag;
use lsports::source::{CollectRequest, drop_repeated};
use serde_json::{Value, json};

/// Whether the BPF programs can be loaded here; otherwise skip (failing under CI).
fn can_load_bpf() -> bool {
    if !need_root("loading the tcp and udp BPF iterators") {
        return false;
    }
    if !Path::new(bpf::BTF_PATH).exists() {
        skip_unless_ci(&format!("no kernel BTF at {}", bpf::BTF_PATH));
        return false;
    }
    true
}

/// The sockets world.py cannot make, made by one holder inside the world; it writes what it
/// made (ports, the other user's pid) to its first argument once everything is in place.
const HOLDER: &str = r#"
import json, os, socket as S, sys, time
keep = []
def listener(fam, addr, port, backlog=8, defer=False):
    s = S.socket(fam, S.SOCK_STREAM)
    if defer:
        # The server end stays a request socket (SYN_RECV) until data arrives.
        s.setsockopt(S.IPPROTO_TCP, S.TCP_DEFER_ACCEPT, 60)
    s.bind((addr, port)); s.listen(backlog); keep.append(s); return s
# 1000 bytes unread by the server, 10 by the client; a second client waits to be accepted.
a = listener(S.AF_INET, "127.0.0.1", 7101, backlog=17)
c = S.create_connection(("127.0.0.1", 7101)); srv, _ = a.accept()
c.sendall(b"x" * 1000); srv.sendall(b"y" * 10)
waiting = S.create_connection(("127.0.0.1", 7101))
d = listener(S.AF_INET6, "::1", 7102, defer=True)
syn = S.create_connection(("::1", 7102))
# The client closes first: its end stays in TIME_WAIT for a minute.
t = listener(S.AF_INET, "127.0.0.1", 7103)
tc = S.create_connection(("127.0.0.1", 7103)); ts, _ = t.accept()
tc.close(); ts.recv(1); ts.close()
u = S.socket(S.AF_INET6, S.SOCK_DGRAM); u.bind(("::1", 7104))
uc = S.socket(S.AF_INET6, S.SOCK_DGRAM); uc.connect(("::1", 7104)); uc.send(b"z" * 300)
# A dual-stack listener's IPv4 client: the server end is AF_INET6 with a v4-mapped address.
m = listener(S.AF_INET6, "::", 7106)
mc = S.create_connection(("127.0.0.1", 7106)); ms, _ = m.accept()
keep += [c, srv, waiting, syn, u, uc, mc, ms]
r, w = os.pipe()
other = os.fork()
if other == 0:
    os.setgid(65534); os.setuid(65534)
    listener(S.AF_INET, "127.0.0.1", 7105)
    os.write(w, b"1")
    while True: time.sleep(60)
os.read(r, 1)
time.sleep(0.2)
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump({"nobody_pid": other}, f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True: time.sleep(60)
"#;

/// A world with every kind of socket, its holder, and what the holder reported.
struct Sockets {
    world: World,
    _holder: Spawned,
    report: Value,
}

fn world() -> Sockets {
    let world = World::start(&json!([
        group_with("tcp", "0.0.0.0", "rport", json!({"reuseport": 3})),
        group_with("tcp", "::", "dual", json!({"v6only": false})),
        group_with("tcp", "::", "v6only", json!({"v6only": true})),
        group_with("tcp", "0.0.0.0", "bound", json!({"device": "lsp0"})),
        group_with("udp", "0.0.0.0", "udpb", json!({})),
        group_with("udp", "127.0.0.1", "udpc", json!({"udp_connect": true})),
        group_with("tcp", "::1", "conn6", json!({"connect": true})),
    ]));
    let report: PathBuf = world.dir().join("holder.json");
    let report_arg = report.to_str().unwrap().to_owned();
    let mut holder = world.spawn("the socket holder", "python3", &["-c", HOLDER, &report_arg]);
    holder.wait_for_file(&report);
    let report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    Sockets {
        world,
        _holder: holder,
        report,
    }
}

/// lsports `args` in the world with `LSPORTS_SOCKETS=path`, `-v --json -e`: the listing,
/// after checking `-v` names the source of every table as `said`.
fn listing(world: &World, path: &str, args: &[&str], said: &str) -> Value {
    let mut a = vec!["-v", "--json", "-e"];
    a.extend_from_slice(args);
    let mut cmd = world.enter();
    cmd.arg(lsports_bin())
        .args(&a)
        .env(iter::FORCE_VARIABLE, path);
    let out = output_guarded(cmd, &format!("LSPORTS_SOCKETS={path} lsports {a:?}"));
    assert_success(&out, &a);
    let stderr = stderr(&out);
    for table in ["tcp/ipv4", "tcp/ipv6", "udp/ipv4", "udp/ipv6"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("lsports: {table}: ")) && l.contains(said)),
            "{path} {a:?}: -v must say {table} came {said:?}:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("could not run"),
        "{path} {a:?}: no fallback expected:\n{stderr}"
    );
    parse_json(&out.stdout)
}

/// The iterators' listing equals sock_diag's but for each socket's `source`, which says
/// `bpf`; the listing is returned.
fn assert_same_listing(world: &World, args: &[&str]) -> Value {
    let diag = listing(world, "diag", args, "sockets from netlink sock_diag");
    let mut iter = listing(
        world,
        "iter",
        args,
        "sockets from the kernel's tcp/udp iterators",
    );
    assert_valid(&iter, "the iterators' listing");
    for socket in iter.as_array_mut().unwrap() {
        assert_eq!(socket["source"], "bpf", "{socket}");
        socket["source"] = json!("netlink");
    }
    if iter != diag {
        panic!(
            "{args:?}: the iterators and sock_diag differ:\niter:\n{}\ndiag:\n{}",
            serde_json::to_string_pretty(&iter).unwrap(),
            serde_json::to_string_pretty(&diag).unwrap()
        );
    }
    diag
}

/// The listing's sockets on local `port`.
fn on_port(listing: &Value, port: u16) -> Vec<&Value> {
    listing
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["local_port"] == port)
        .collect()
}

#[test]
fn the_iterators_give_the_json_sock_diag_gives_for_listeners_and_every_state() {
    if !can_load_bpf() {
        return;
    }
    let sockets = world();
    let world = &sockets.world;
    let listening = assert_same_listing(world, &["-tun"]);
    // world.py's sockets are all there (the holder's, on 7101 to 7106, are checked below).
    let from_world = json!(
        listening
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| !(7101..=7106).contains(&s["local_port"].as_u64().unwrap()))
            .collect::<Vec<_>>()
    );
    assert_same_rows(
        "-l",
        &rows_from_json(&from_world),
        &rows_from_truth(world.listening()),
    );
    let all = assert_same_listing(world, &["-tuna"]);
    // A port set: the kernel keeps the range 7101..=7106, lsports the exact set.
    let some = assert_same_listing(world, &["-tuna", "--port", "7101,7103,7106"]);
    let mut ports: Vec<u64> = some
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["local_port"].as_u64().unwrap())
        .collect();
    ports.dedup();
    assert_eq!(ports, [7101, 7103, 7106], "{some}");
    let mapped = on_port(&all, 7106)
        .into_iter()
        .find(|s| s["state"] == "ESTABLISHED")
        .unwrap_or_else(|| panic!("no accepted v4 client on the dual-stack listener: {all}"));
    assert_eq!(mapped["family"], "ipv6");
    assert_eq!(mapped["local_addr"], "::ffff:127.0.0.1");

    // What the comparison covered, as the holder made it.
    let states = |port: u16| -> Vec<String> {
        let mut states: Vec<String> = on_port(&all, port)
            .iter()
            .map(|s| s["state"].as_str().unwrap().to_owned())
            .collect();
        states.sort();
        states
    };
    assert!(states(7102).contains(&"SYN_RECV".to_owned()), "{all}");
    // The client's end is the one in TIME_WAIT: remote port 7103.
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|s| s["remote_port"] == 7103 && s["state"] == "TIME_WAIT"),
        "{all}"
    );
    let queue = |port: u16, state: &str| -> (u64, u64) {
        let s = on_port(&all, port)
            .into_iter()
            .find(|s| s["state"] == state)
            .unwrap_or_else(|| panic!("no {state} socket on {port}: {all}"));
        (s["recv_q"].as_u64().unwrap(), s["send_q"].as_u64().unwrap())
    };
    assert_eq!(queue(7101, "LISTEN"), (1, 17), "one waiting, backlog 17");
    let unread: Vec<u64> = on_port(&all, 7101)
        .iter()
        .filter(|s| s["state"] == "ESTABLISHED")
        .map(|s| s["recv_q"].as_u64().unwrap())
        .collect();
    assert!(unread.contains(&1000), "the server's unread bytes: {all}");
    assert!(queue(7104, "UNCONN").0 > 0, "an unread datagram: {all}");
    let nobody = on_port(&listening, 7105);
    assert_eq!(nobody.len(), 1, "{listening}");
    assert_eq!(nobody[0]["uid"], 65534);
    let pid = &sockets.report["nobody_pid"];
    assert_eq!(nobody[0]["processes"][0]["pid"], *pid);
    let v6only: BTreeMap<u64, Value> = listening
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["family"] == "ipv6" && s["proto"] == "tcp")
        .map(|s| (s["local_port"].as_u64().unwrap(), s["v6only"].clone()))
        .collect();
    assert!(v6only.values().any(|v| *v == json!(true)), "{v6only:?}");
    assert!(v6only.values().any(|v| *v == json!(false)), "{v6only:?}");
    assert!(
        listening
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["interface"] == "lsp0"),
        "the device-bound listener: {listening}"
    );
}

/// Run `body` on a thread that entered the network namespace of `pid` (only that thread).
fn in_netns_of<T: Send + 'static>(pid: u32, body: impl FnOnce() -> T + Send + 'static) -> T {
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    std::thread::spawn(move || {
        // SAFETY: setns on a valid descriptor changes only this thread's network namespace.
        let entered = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
        body()
    })
    .join()
    .unwrap()
}

/// Every table, every state.
fn request_all() -> CollectRequest {
    CollectRequest {
        tables: vec![
            (Protocol::Tcp, Family::Ipv4),
            (Protocol::Tcp, Family::Ipv6),
            (Protocol::Udp, Family::Ipv4),
            (Protocol::Udp, Family::Ipv6),
        ],
        states: StateSelection::All,
        ports: None,
        choice: SourceChoice::Auto,
        proc_root: "/proc".into(),
        snapshot: None,
    }
}

/// Sockets in a stable order, their source set aside.
fn comparable(mut sockets: Vec<Socket>) -> Vec<Socket> {
    drop_repeated(&mut sockets);
    for socket in &mut sockets {
        socket.source = SourceKind::Netlink;
    }
    sockets.sort_by_key(|s| {
        (
            s.protocol,
            s.family,
            s.local_port,
            s.remote_port,
            s.state,
            s.inode,
        )
    });
    sockets
}

#[test]
fn every_field_of_every_socket_is_sock_diags_cgroup_id_uid_and_queues_included() {
    if !can_load_bpf() {
        return;
    }
    let sockets = world();
    let (from_iter, from_diag) = in_netns_of(sockets.world.pid(), || {
        let collected = iter::collect(&request_all()).expect("the iterators run");
        let mut diag = SockDiag::open().unwrap();
        let mut dumped = Vec::new();
        for (protocol, family) in request_all().tables {
            dumped.extend(diag.dump(protocol, family, StateSelection::All).unwrap());
        }
        (collected.sockets, dumped)
    });
    assert!(from_iter.iter().all(|s| s.source == SourceKind::Bpf));
    let (from_iter, from_diag) = (comparable(from_iter), comparable(from_diag));
    assert_eq!(from_iter.len(), from_diag.len());
    for (got, want) in from_iter.iter().zip(&from_diag) {
        assert_eq!(got, want);
    }
    // The cgroup id against the truth: the inode of the holder's cgroup directory.
    let pid: u32 = sockets.report["nobody_pid"]
        .as_u64()
        .unwrap()
        .try_into()
        .unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let Some(path) = cgroup.lines().find_map(|l| l.strip_prefix("0::")) else {
        skip_unless_ci("no cgroup v2 hierarchy to check the cgroup id against");
        return;
    };
    let id = std::fs::metadata(format!("/sys/fs/cgroup{path}"))
        .unwrap()
        .ino();
    let nobody = from_iter
        .iter()
        .find(|s| s.local_port == 7105 && s.state.is_listening(s.protocol))
        .unwrap();
    assert_eq!(nobody.cgroup_id.map(|id| id.get()), Some(id));
    assert_eq!(nobody.uid, 65534);
}

#[test]
fn without_privileges_the_iterators_fall_back_to_sock_diag_and_say_why() {
    if !can_load_bpf() {
        return;
    }
    let sockets = world();
    let args = ["-v", "--json", "-tun"];
    let mut cmd = sockets.world.enter();
    cmd.args(AS_NOBODY)
        .arg(lsports_bin())
        .args(args)
        .env(iter::FORCE_VARIABLE, "iter");
    let out = output_guarded(cmd, "(nobody) LSPORTS_SOCKETS=iter lsports -v");
    assert_success(&out, &args);
    let stderr = stderr(&out);
    let fell_back: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains("sockets from netlink sock_diag; the tcp/udp iterators could not run: ")
        })
        .collect();
    assert_eq!(fell_back.len(), 4, "every table says so:\n{stderr}");
    let listing = parse_json(&out.stdout);
    assert!(
        listing
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["source"] == "netlink"),
        "{listing}"
    );
    assert_eq!(on_port(&listing, 7105).len(), 1, "{listing}");
}
