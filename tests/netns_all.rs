//! Integration tests of `lsports::source::netns` (every network namespace, each dumped): in real
//! namespaces the test makes, with listeners it starts, compared by inode with what it built.
//!
//! A survey sees the whole host, so the test does not run on the host's view: the outer
//! test re-runs this binary's `inner_*` test under `unshare --net --mount --pid --fork
//! --mount-proc`. There `/proc` lists only the test's processes, the network namespace the test
//! stands in is a fresh one, the host's nsfs mounts are unmounted (in the private mount
//! namespace only) and `/run` is a fresh tmpfs, so `ip netns add` names land there. When the
//! inner test ends, pid 1 of its PID namespace is gone, so every process it started is killed
//! and every mount it made goes with its mount namespace, even on failure.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use lsports::config::StateSelection;
use lsports::model::{Family, Protocol, Socket};
use lsports::source::netns::{self, DumpRequest, NotReached, Reach, Survey};
use serde_json::{Value, json};

/// Set for the inner run; the inner tests do nothing without it.
const INNER: &str = "LSPORTS_NETNS_ALL_INNER";

/// One socket as the test compares it: (proto, family, port, socket inode).
type Key = (String, String, u16, u64);

#[test]
fn every_namespace_is_found_and_each_dump_is_exactly_its_listeners() {
    if !is_root() {
        skip_unless_ci("netns_all needs root: it creates named namespaces with `ip netns add`");
        return;
    }
    private_host::run_in_private_host("inner_every_namespace", INNER);
}

#[test]
#[ignore = "run inside private namespaces by every_namespace_is_found_and_each_dump_is_exactly_its_listeners"]
fn inner_every_namespace() {
    if !private_host::in_private_host(INNER) {
        return;
    }
    private_host::isolate_host();
    let own = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let here = ns_inode(std::process::id());
    let mut want: BTreeMap<u64, BTreeSet<Key>> = BTreeMap::new();
    want.insert(here, BTreeSet::from([key_of_std(&own)]));

    // Two named namespaces, each with a world; the second also with a listener run by nobody.
    let named: Vec<NamedNs> = (1..=2).map(NamedNs::add).collect();
    let named_worlds: Vec<NsWorld> = named
        .iter()
        .map(|ns| NsWorld::start(&ns.nsenter()))
        .collect();
    for (ns, world) in named.iter().zip(&named_worlds) {
        want.insert(ns.inode, world.keys());
    }
    let nobody = Holder::start(&named[1].nsenter(), NOBODY_LISTENER, true, &[]);
    want.get_mut(&named[1].inode).unwrap().extend(nobody.keys());

    // Two unnamed namespaces (`unshare --net`), as the harness makes them.
    let unnamed: Vec<World> = (0..2).map(|_| World::start(&spec())).collect();
    for world in &unnamed {
        want.insert(ns_inode(world.pid()), world_keys(&world.truth));
    }

    // Two namespaces only a socket keeps alive: one whose process went back home and whose
    // mount was removed, one whose creator handed the socket over and exited.
    let pin = NamedNs::add(3);
    let pin_arg = pin.path.to_str().unwrap().to_string();
    let holder = Holder::start(&[], PINNING_HOLDER, false, &[pin_arg]);
    let pin_path = pin.path.clone();
    drop(pin);
    assert!(
        !pin_path.exists(),
        "ip netns delete left {}",
        pin_path.display()
    );
    for (ns, sockets) in holder.by_netns() {
        assert!(
            !want.contains_key(&ns),
            "a pinned namespace must be a new one"
        );
        want.insert(ns, sockets);
    }

    let survey = survey_all();
    assert!(
        survey.discovery.unreadable.is_empty(),
        "root reads every process"
    );
    assert_eq!(survey.discovery.current, Some(here));
    let found: BTreeSet<u64> = survey
        .discovery
        .namespaces
        .iter()
        .map(|ns| ns.inode)
        .collect();
    assert_eq!(found, want.keys().copied().collect(), "namespaces found");
    assert_eq!(dumped(&survey), want, "each namespace's sockets");

    for dump in &survey.dumps {
        let expected = if dump.inode == here {
            "current"
        } else {
            "entered"
        };
        assert_eq!(
            reach_name(&dump.reach),
            expected,
            "namespace {}",
            dump.inode
        );
    }
    for ns in &named {
        let got = survey
            .discovery
            .namespaces
            .iter()
            .find(|n| n.inode == ns.inode)
            .unwrap();
        assert_eq!(got.display_name().as_deref(), Some(ns.name.as_str()));
        assert_eq!(got.mounts, vec![ns.path.clone()]);
    }
    for (ns, _) in holder.by_netns() {
        let got = survey
            .discovery
            .namespaces
            .iter()
            .find(|n| n.inode == ns)
            .unwrap();
        assert_eq!(got.origins, vec![netns::Origin::Socket], "namespace {ns}");
        assert_eq!(got.pinned_by.map(|h| h.pid), Some(holder.pid));
        assert!(got.name.is_none() && got.pids.is_empty());
    }
    for world in &unnamed {
        let ns = ns_inode(world.pid());
        let got = survey
            .discovery
            .namespaces
            .iter()
            .find(|n| n.inode == ns)
            .unwrap();
        assert!(got.pids.contains(&world.pid()) && got.name.is_none());
    }

    // No worker thread (as when none can be started): this thread enters each namespace in
    // turn, finds the same, and is back in its own namespace afterwards.
    let alone = survey_with(Some(0));
    assert_eq!(
        dumped(&alone),
        want,
        "each namespace's sockets, read on this thread"
    );
    assert_eq!(
        thread_ns(),
        here,
        "the calling thread came back to its namespace"
    );
    let fresh = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        ns_of_socket(&fresh),
        here,
        "sockets made afterwards are made at home"
    );
    drop(fresh);

    unprivileged_survey(here, &own, &named, &nobody, &want);
    // Every holder of every socket the worlds and holders made, as they made them.
    let mut holders: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for world in named_worlds
        .iter()
        .map(|w| &w.truth)
        .chain(unnamed.iter().map(|w| &w.truth))
    {
        for t in world.iter().filter(|t| t.is_listening()) {
            holders.insert(t.inode, t.pids.clone());
        }
    }
    for (_, _, _, inode) in nobody.keys() {
        holders.insert(inode, vec![nobody.pid]);
    }
    for (_, _, _, inode) in holder.keys() {
        holders.insert(inode, vec![holder.pid]);
    }
    let names: BTreeMap<u64, &str> = named
        .iter()
        .map(|ns| (ns.inode, ns.name.as_str()))
        .collect();
    binary_lists_every_namespace(&want, &names, &holders);
    binary_lists_one_namespace(&want, &named[0], unnamed[0].pid());
    binary_as_nobody(here, &own, &named, &want);
    hostile_name_is_escaped(unnamed[1].pid());
    device_is_named_in_its_own_namespace(&named[0]);
    drop((named_worlds, unnamed, holder));
}

#[test]
fn the_walk_answers_whole_namespaces_and_lists_what_the_dumps_list() {
    if !is_root() {
        skip_unless_ci("netns_all needs root: it creates named namespaces with `ip netns add`");
        return;
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        skip_unless_ci("no kernel BTF: the BPF fd walk cannot read sockets");
        return;
    }
    private_host::run_in_private_host("inner_walk_answers", INNER);
}

/// `--netns all` with the kernel iterator reading the sockets it visits: the namespaces whose
/// sockets every one a process holds are listed from the walk's records (`source` "bpf"), the
/// others (a kernel socket, sockets only a holder elsewhere keeps, churn) are dumped, `-v`
/// says which and why, and the listing is the one every namespace dumped gives
/// (`LSPORTS_NETNS_DUMP=all`) field for field, holders included.
#[test]
#[ignore = "run inside private namespaces by the_walk_answers_whole_namespaces_and_lists_what_the_dumps_list"]
fn inner_walk_answers() {
    if !private_host::in_private_host(INNER) {
        return;
    }
    private_host::isolate_host();
    let _own = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let named: Vec<NamedNs> = (1..=3).map(NamedNs::add).collect();
    let worlds: Vec<NsWorld> = named
        .iter()
        .map(|ns| NsWorld::start(&ns.nsenter()))
        .collect();
    let unnamed = World::start(&spec());
    // A kernel socket in the third: VXLAN's UDP port, which no process holds.
    let vxlan = format!(
        "ip -n {0} link add lsp-vx0 type vxlan id 42 dstport 4789 dev lo && \
         ip -n {0} link set lsp-vx0 up",
        named[2].name
    );
    let has_vxlan = Command::new("sh")
        .args(["-c", &vxlan])
        .status()
        .unwrap()
        .success();
    if !has_vxlan {
        skip_unless_ci("no VXLAN here: the kernel-socket fallback is not checked");
    }
    let pin = NamedNs::add(4);
    let pinned = Holder::start(
        &[],
        PINNING_HOLDER,
        false,
        &[pin.path.to_str().unwrap().into()],
    );
    drop(pin);

    let walked = lsports_json(&[], "walk");
    let dumped = lsports_json(&[("LSPORTS_NETNS_DUMP", "all")], "dumps");
    let answered: BTreeSet<u64> = [named[0].inode, named[1].inode, ns_inode(unnamed.pid())].into();
    for sock in walked.0.as_array().unwrap() {
        let ns = sock["netns"]["inode"].as_u64().unwrap();
        let want = if answered.contains(&ns) {
            "bpf"
        } else {
            "netlink"
        };
        assert_eq!(sock["source"], want, "namespace {ns}: {sock}");
    }
    for sock in dumped.0.as_array().unwrap() {
        assert_eq!(sock["source"], "netlink", "{sock}");
    }
    assert_eq!(
        without_source(&walked.0),
        without_source(&dumped.0),
        "the walk's listing is the dumps' listing"
    );
    let mut want_keys: BTreeSet<Key> = worlds.iter().flat_map(NsWorld::keys).collect();
    want_keys.extend(world_keys(&unnamed.truth));
    want_keys.extend(pinned.keys());
    let got_keys: BTreeSet<Key> = json_by_netns(&walked.0).into_values().flatten().collect();
    assert!(
        got_keys.is_superset(&want_keys),
        "every socket made is listed"
    );
    let vx = walked
        .0
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["local_port"] == 4789);
    assert_eq!(
        vx.is_some(),
        has_vxlan,
        "VXLAN's port is listed where it was made"
    );
    if let Some(vx) = vx {
        assert_eq!(vx["netns"]["inode"], named[2].inode, "{vx}");
        assert_eq!(vx["source"], "netlink", "its namespace was dumped: {vx}");
        assert_eq!(
            json_pids(vx),
            Vec::<u32>::new(),
            "a kernel socket has no holder: {vx}"
        );
    }
    let line = walked
        .1
        .iter()
        .find(|l| l.contains("answered from the BPF fd walk"))
        .unwrap_or_else(|| panic!("no -v line on the walk: {:?}", walked.1));
    assert!(line.contains("3 namespaces answered"), "{line}");
    assert!(line.contains("this one, always"), "{line}");
    if has_vxlan {
        assert!(
            line.contains("1: they hold sockets no process holds"),
            "{line}"
        );
        // Its counts explain VXLAN's port: no second pass looks for a holder of it.
        let said = walked.1.join("\n");
        assert!(
            said.contains(
                "--netns all: 1 socket in the namespaces dumped no process holds, and their \
                 counts, unchanged through the walk and the dump, say the kernel does: not \
                 looked for again"
            ),
            "{said}"
        );
        assert!(!said.contains("a pass of their own"), "{said}");
    }
    assert!(
        line.contains("2: no process lives in them"),
        "the pinned ones: {line}"
    );
    assert!(
        !dumped.1.iter().any(|l| l.contains("answered from")),
        "LSPORTS_NETNS_DUMP=all walks nothing: {:?}",
        dumped.1
    );
    assert!(
        dumped
            .1
            .iter()
            .any(|l| l.ends_with("every namespace dumped over sock_diag: LSPORTS_NETNS_DUMP=all")),
        "-v says why every namespace was dumped: {:?}",
        dumped.1
    );
    churn_never_loses_a_stable_socket(&named[1], &worlds[1]);
    too_many_sockets_for_the_buffer_fall_back_to_task_file(&named[0]);
    drop((worlds, unnamed, pinned, named));
}

/// One process holding more sockets than their records fit in the kernel's iterator buffer
/// (32 KiB a process: 400 × 112 bytes do not fit, 400 × 32 do): the fd-table walk gives way to
/// `task_file`, which hands each descriptor over alone and still reads the sockets, so the
/// namespaces are still answered from the walk; `-v` says so, and nothing is lost.
fn too_many_sockets_for_the_buffer_fall_back_to_task_file(ns: &NamedNs) {
    let many = Holder::start(&ns.nsenter(), MANY_LISTENERS, false, &[]);
    let walked = lsports_json(&[], "overflow");
    let dumped = lsports_json(&[("LSPORTS_NETNS_DUMP", "all")], "overflow, dumps");
    let said = walked.1.join("\n");
    assert!(
        said.contains("BPF task_file iterator; the fd-table walk could not run"),
        "{said}"
    );
    assert!(said.contains("answered from the BPF fd walk"), "{said}");
    assert_eq!(without_source(&walked.0), without_source(&dumped.0));
    let got = json_by_netns(&walked.0)
        .remove(&ns.inode)
        .unwrap_or_default();
    assert!(
        got.is_superset(&many.keys()),
        "400 listeners of one process"
    );
    drop(many);
}

/// Holds 400 TCP listeners until stdin closes.
const MANY_LISTENERS: &str = r#"
import json, os, socket, sys
ns = os.stat("/proc/self/ns/net").st_ino
held = []
for _ in range(400):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); held.append(s)
print(json.dumps({"pid": os.getpid(), "sockets": [
    {"proto": "tcp", "family": "ipv4", "port": s.getsockname()[1],
     "inode": os.fstat(s.fileno()).st_ino, "netns": ns} for s in held]}), flush=True)
sys.stdin.read()
"#;

/// A namespace whose sockets come and go while lsports lists it: its stable listeners are
/// listed, with their holders, every time, and the gate sends it to the dump at least once.
fn churn_never_loses_a_stable_socket(ns: &NamedNs, world: &NsWorld) {
    let churner = Holder::start(&ns.nsenter(), CHURNER, false, &[]);
    let stable = world.keys();
    let mut fell_back = 0;
    for _ in 0..8 {
        let (v, lines) = lsports_json(&[], "churn");
        let got = json_by_netns(&v).remove(&ns.inode).unwrap_or_default();
        assert!(
            got.is_superset(&stable),
            "a stable socket was lost: {got:?}\n{lines:?}"
        );
        // Dumped, its sockets say so; from the walk, they say "bpf".
        let mine = v.as_array().unwrap().iter();
        let mut mine = mine.filter(|s| s["netns"]["inode"] == ns.inode);
        if mine.all(|s| s["source"] == "netlink") {
            fell_back += 1;
        }
    }
    assert!(
        fell_back > 0,
        "8 listings during churn, none fell back to the dump"
    );
    drop(churner);
}

/// Opens and closes a TCP listener, over and over, until stdin closes.
const CHURNER: &str = r#"
import json, os, socket, sys, threading, time
print(json.dumps({"pid": os.getpid(), "sockets": []}), flush=True)
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
while True:
    s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(); time.sleep(0.001)
    s.close(); time.sleep(0.001)
"#;

/// `lsports --netns all -tulnp --json -v --attribution bpf` with `env`: its JSON, sorted by
/// socket inode, and its stderr lines.
fn lsports_json(env: &[(&str, &str)], what: &str) -> (Value, Vec<String>) {
    let args = [
        "--netns",
        "all",
        "-tulnp",
        "--json",
        "-v",
        "--attribution",
        "bpf",
    ];
    let mut cmd = scrubbed(lsports_bin());
    cmd.args(args).envs(env.iter().copied());
    let out = output_guarded(cmd, what);
    assert_success(&out, &args);
    let mut v = parse_json(&out.stdout);
    assert_json_schema(&v);
    v.as_array_mut()
        .unwrap()
        .sort_by_key(|s| (s["inode"].as_u64(), s["local_port"].as_u64()));
    (v, stderr_lines(&out))
}

/// A listing without each socket's `source`, the one field that says which path read it.
fn without_source(v: &Value) -> Value {
    let mut v = v.clone();
    for sock in v.as_array_mut().unwrap() {
        sock.as_object_mut().unwrap().remove("source");
    }
    v
}

/// lsports itself, as a user runs it: `--netns all` lists exactly each namespace's sockets
/// under its inode and name, each with the process holding it (attribution crosses
/// namespaces: socket inodes are host-wide), says nothing on stderr as root, and the table
/// shows the netns column first.
///
/// Both ways of finding holders: the walk, whose socket fds also lead to the namespaces only a
/// socket keeps alive, and the kernel iterator (as root with BTF, which CI has).
fn binary_lists_every_namespace(
    want: &BTreeMap<u64, BTreeSet<Key>>,
    names: &BTreeMap<u64, &str>,
    holders: &BTreeMap<u64, Vec<u32>>,
) {
    let mut choices = vec!["walk", "auto"];
    if std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        choices.push("bpf");
    } else {
        skip_unless_ci("no kernel BTF: --netns all is not checked with --attribution bpf");
    }
    for choice in choices {
        let args = [
            "--netns",
            "all",
            "-tulnp",
            "--json",
            "--attribution",
            choice,
        ];
        let out = run_host(&args);
        assert_success(&out, &args);
        assert_eq!(stderr(&out), "", "root reads every namespace: {args:?}");
        let v = parse_json(&out.stdout);
        assert_json_schema(&v);
        assert_eq!(
            &json_by_netns(&v),
            want,
            "lsports --netns all --attribution {choice}, by namespace"
        );
        let mut checked = 0;
        for sock in v.as_array().unwrap() {
            let ns = &sock["netns"];
            let inode = ns["inode"].as_u64().unwrap();
            assert_eq!(ns["name"].as_str(), names.get(&inode).copied(), "{sock}");
            // The test's own listener (held by this process) is the only one not in `holders`.
            if let Some(pids) = holders.get(&sock["inode"].as_u64().unwrap()) {
                assert_eq!(
                    &json_pids(sock),
                    pids,
                    "--attribution {choice}: holders of {sock}"
                );
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            holders.len(),
            "--attribution {choice}: every socket made"
        );
    }
    let args = ["--netns", "all", "-tln"];
    let out = run_host(&args);
    assert_success(&out, &args);
    let table = stdout(&out);
    assert!(table.starts_with("Netns "), "{table}");
    for (inode, name) in names {
        let (_, _, port, _) = want[inode].iter().next().unwrap();
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.contains(&format!(":{port} "))),
            "{name}'s port {port} in\n{table}"
        );
    }
}

/// `-N NAME` and `--netns pid:PID` list just that namespace, each socket under its inode.
fn binary_lists_one_namespace(want: &BTreeMap<u64, BTreeSet<Key>>, ns: &NamedNs, pid: u32) {
    let pid_arg = format!("pid:{pid}");
    for (args, inode) in [
        (vec!["-N", ns.name.as_str(), "-tuln", "--json"], ns.inode),
        (
            vec!["--netns", pid_arg.as_str(), "-tuln", "--json"],
            ns_inode(pid),
        ),
    ] {
        let out = run_host(&args);
        assert_success(&out, &args);
        let got = json_by_netns(&parse_json(&out.stdout));
        assert_eq!(
            got,
            BTreeMap::from([(inode, want[&inode].clone())]),
            "{args:?}"
        );
    }
}

/// As nobody, lsports lists what it can reach (its own namespace; the one nobody's process
/// lives in, from that process's /proc/PID/net) and says in one stderr line what it could
/// not, and why.
fn binary_as_nobody(
    here: u64,
    own: &std::net::TcpListener,
    named: &[NamedNs],
    want: &BTreeMap<u64, BTreeSet<Key>>,
) {
    let mut cmd = scrubbed("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ])
    .arg(lsports_bin())
    .args(["--netns", "all", "-tuln", "--json"]);
    let out = output_guarded(cmd, "lsports --netns all as nobody");
    assert!(out.status.success(), "{}", stderr(&out));
    let got = json_by_netns(&parse_json(&out.stdout));
    let expected = BTreeMap::from([
        (here, BTreeSet::from([key_of_std(own)])),
        (named[1].inode, want[&named[1].inode].clone()),
    ]);
    assert_eq!(got, expected, "what nobody can reach");
    let lines = stderr_lines(&out);
    let about: Vec<&String> = lines.iter().filter(|l| l.contains("--netns all")).collect();
    assert_eq!(about.len(), 1, "one line on what was not read: {lines:?}");
    assert!(
        about[0].contains("not read") && about[0].contains("CAP_SYS_ADMIN"),
        "{lines:?}"
    );
}

/// A namespace name is chosen by whoever may mount: bound at a path with an escape sequence,
/// it is shown escaped in the table and as the JSON string of those bytes.
fn hostile_name_is_escaped(pid: u32) {
    let name = "ev\x1b[2Jil";
    sh(&format!(
        "p=\"/run/netns/$(printf '{name}')\"; touch \"$p\" && mount --bind /proc/{pid}/ns/net \"$p\""
    ));
    let args = ["--netns", "all", "-tln"];
    let out = run_host(&args);
    sh(&format!(
        "p=\"/run/netns/$(printf '{name}')\"; umount \"$p\" && rm \"$p\""
    ));
    assert_success(&out, &args);
    assert!(!out.stdout.contains(&0x1b), "raw escape in the table");
    assert!(stdout(&out).contains("ev\\e[2Jil "), "{}", stdout(&out));
}

/// Bound to a device by name (`SO_BINDTODEVICE`) in its namespace.
const DEVICE_BOUND: &str = r#"
import json, os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
s.bind(("0.0.0.0", 0))
print(json.dumps({"pid": os.getpid(), "sockets": [
    {"proto": "udp", "family": "ipv4", "port": s.getsockname()[1],
     "inode": os.fstat(s.fileno()).st_ino, "netns": os.stat("/proc/self/ns/net").st_ino}]}),
    flush=True)
sys.stdin.read()
"#;

/// A socket bound to a device of another namespace is shown with that namespace's name for
/// the index (here index 2, which does not exist where lsports runs), not this one's.
fn device_is_named_in_its_own_namespace(ns: &NamedNs) {
    let dev = "lsp-dev0";
    sh(&format!(
        "ip -n {0} link add {dev} type veth peer name {dev}p && ip -n {0} link set {dev} up",
        ns.name
    ));
    let bound = Holder::start(&ns.nsenter(), DEVICE_BOUND, false, &[dev.into()]);
    let (_, _, _, inode) = bound.keys().into_iter().next().unwrap();
    let args = ["--netns", "all", "-uln", "--json"];
    let out = run_host(&args);
    assert_success(&out, &args);
    let v = parse_json(&out.stdout);
    let sock = by_inode(&v, inode);
    assert_eq!(sock["interface"], dev, "{sock}");
    assert_eq!(sock["exposure"], "interface", "{sock}");
    assert_eq!(sock["netns"]["inode"], ns.inode, "{sock}");
}

/// A `--json` listing's sockets by their `netns.inode`.
fn json_by_netns(v: &Value) -> BTreeMap<u64, BTreeSet<Key>> {
    let mut by: BTreeMap<u64, BTreeSet<Key>> = BTreeMap::new();
    for s in v.as_array().unwrap() {
        let key: Key = (
            s["proto"].as_str().unwrap().into(),
            s["family"].as_str().unwrap().into(),
            s["local_port"].as_u64().unwrap() as u16,
            s["inode"].as_u64().unwrap(),
        );
        let inode = s["netns"]["inode"]
            .as_u64()
            .unwrap_or_else(|| panic!("no netns: {s}"));
        by.entry(inode).or_default().insert(key);
    }
    by
}

/// As nobody, in the same world: the current namespace is dumped, the named namespace with a
/// process of nobody's is read from that process's `/proc/PID/net`, the other named one is
/// reported as not reached for want of CAP_SYS_ADMIN, and the processes whose namespace could
/// not be read are counted, not ignored.
fn unprivileged_survey(
    here: u64,
    own: &std::net::TcpListener,
    named: &[NamedNs],
    nobody: &Holder,
    want: &BTreeMap<u64, BTreeSet<Key>>,
) {
    let mut cmd = scrubbed("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ])
    .arg(std::env::current_exe().unwrap())
    .args([
        "inner_unprivileged_probe",
        "--exact",
        "--ignored",
        "--nocapture",
    ])
    .args(["--test-threads=1"])
    .env(INNER, "1");
    let out = output_guarded(cmd, "survey as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("SURVEY ").map(|(_, json)| json))
        .unwrap_or_else(|| panic!("no survey printed:\n{stdout}"));
    let got: Value = serde_json::from_str(line).unwrap();
    let reported: BTreeMap<u64, &Value> = got["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ns| (ns["inode"].as_u64().unwrap(), ns))
        .collect();
    let expect_inodes = BTreeSet::from([here, named[0].inode, named[1].inode]);
    assert_eq!(
        reported.keys().copied().collect::<BTreeSet<_>>(),
        expect_inodes,
        "{line}"
    );

    let current = reported[&here];
    assert_eq!(current["reach"], "current", "{line}");
    assert_eq!(keys_of_json(current), BTreeSet::from([key_of_std(own)]));

    let read = reported[&named[1].inode];
    assert_eq!(read["reach"], format!("proc:{}", nobody.pid), "{line}");
    assert_eq!(&keys_of_json(read), &want[&named[1].inode]);

    let refused = reported[&named[0].inode];
    assert_eq!(refused["reach"], "not_reached", "{line}");
    assert!(
        refused["why"].as_str().unwrap().contains("CAP_SYS_ADMIN"),
        "{line}"
    );
    assert!(keys_of_json(refused).is_empty());
    assert!(
        got["unreadable"].as_u64().unwrap() > 0,
        "root's processes are counted: {line}"
    );
}

#[test]
#[ignore = "run as nobody by every_namespace_is_found_and_each_dump_is_exactly_its_listeners"]
fn inner_unprivileged_probe() {
    if std::env::var_os(INNER).is_none() {
        return;
    }
    let survey = survey_all();
    let namespaces: Vec<Value> = survey
        .dumps
        .iter()
        .map(|d| {
            let why = match &d.reach {
                Reach::NotReached(why) => Some(why.to_string()),
                _ => None,
            };
            let sockets: Vec<Key> = d.collected.sockets.iter().map(key_of).collect();
            json!({"inode": d.inode, "reach": reach_name(&d.reach), "why": why, "sockets": sockets})
        })
        .collect();
    let report = json!({
        "namespaces": namespaces,
        "unreadable": survey.discovery.unreadable.len(),
    });
    println!("SURVEY {report}");
}

fn survey_all() -> Survey {
    survey_with(None)
}

fn survey_with(workers: Option<usize>) -> Survey {
    let proc = Path::new("/proc");
    let root = lsports::sys::procroot::ProcRoot::open(proc).unwrap();
    let request = DumpRequest {
        workers,
        ..survey_request()
    };
    netns::survey(proc, &request, &netns::held_sockets(&root)).unwrap()
}

fn reach_name(reach: &Reach) -> String {
    match reach {
        Reach::Current => "current".into(),
        Reach::Entered => "entered".into(),
        Reach::Proc { pid } => format!("proc:{pid}"),
        Reach::NotReached(
            NotReached::NeedsCapSysAdmin | NotReached::Gone | NotReached::Failed(_),
        ) => "not_reached".into(),
    }
}

fn dumped(survey: &Survey) -> BTreeMap<u64, BTreeSet<Key>> {
    survey
        .dumps
        .iter()
        .map(|d| (d.inode, d.collected.sockets.iter().map(key_of).collect()))
        .collect()
}

fn key_of(s: &Socket) -> Key {
    (
        s.protocol.name().into(),
        s.family.name().into(),
        s.local_port,
        s.inode,
    )
}

fn key_of_std(listener: &std::net::TcpListener) -> Key {
    let port = listener.local_addr().unwrap().port();
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        listener.as_raw_fd()
    }))
    .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    .unwrap();
    ("tcp".into(), "ipv4".into(), port, inode)
}

/// The namespace of the calling thread.
fn thread_ns() -> u64 {
    let link = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let text = link.to_str().unwrap().as_bytes().to_vec();
    netns::mountinfo::net_inode(&text).unwrap()
}

/// The namespace a socket belongs to, by `SIOCGSKNS` as the library asks it.
fn ns_of_socket(listener: &std::net::TcpListener) -> u64 {
    let (_, _, _, inode) = key_of_std(listener);
    let fd = std::os::fd::AsRawFd::as_raw_fd(listener) as u32;
    let mut probe = netns::nsfd::SocketProbe::default();
    probe
        .namespace_of(std::process::id(), fd, inode)
        .unwrap()
        .inode()
}

fn keys_of_json(ns: &Value) -> BTreeSet<Key> {
    serde_json::from_value(ns["sockets"].clone()).unwrap()
}

fn world_keys(truth: &[Truth]) -> BTreeSet<Key> {
    truth
        .iter()
        .filter(|t| t.is_listening())
        .map(|t| (t.proto.clone(), t.family.clone(), t.port, t.inode))
        .collect()
}

fn spec() -> Value {
    json!([
        group("tcp", "0.0.0.0", "ns-tcp"),
        group("udp", "0.0.0.0", "ns-udp"),
        group_with("tcp", "::", "ns-tcp6", json!({"v6only": true})),
    ])
}

/// The network namespace inode of `pid`, as `stat -L /proc/PID/ns/net` gives it.
fn ns_inode(pid: u32) -> u64 {
    let out = Command::new("stat")
        .args(["-L", "-c", "%i"])
        .arg(format!("/proc/{pid}/ns/net"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace made with `ip netns add`, deleted on drop.
struct NamedNs {
    name: String,
    path: PathBuf,
    inode: u64,
}

impl NamedNs {
    fn add(n: u32) -> NamedNs {
        let name = format!("lsports-t-{}-{n}", std::process::id());
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ));
        let path = PathBuf::from(format!("/run/netns/{name}"));
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        NamedNs { name, path, inode }
    }

    fn nsenter(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--net={}", self.path.display()),
            "--".into(),
        ]
    }
}

impl Drop for NamedNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// world.py in another namespace (`prefix` enters it), killed with its process group on drop.
struct NsWorld {
    child: Child,
    _dir: tempfile::TempDir,
    truth: Vec<Truth>,
}

impl NsWorld {
    fn start(prefix: &[String]) -> NsWorld {
        let dir = tempfile::tempdir().unwrap();
        let (spec_path, truth, ready) = (
            dir.path().join("spec"),
            dir.path().join("truth"),
            dir.path().join("ready"),
        );
        std::fs::write(&spec_path, spec().to_string()).unwrap();
        let mut cmd = scrubbed(&prefix[0]);
        cmd.args(&prefix[1..])
            .arg("python3")
            .arg(world_py())
            .args([&spec_path, &truth, &ready])
            .stdin(Stdio::null())
            .process_group(0);
        let child = cmd.spawn().unwrap();
        let start = Instant::now();
        while !ready.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "world in {prefix:?} not ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let truth = serde_json::from_slice(&std::fs::read(&truth).unwrap()).unwrap();
        NsWorld {
            child,
            _dir: dir,
            truth,
        }
    }

    fn keys(&self) -> BTreeSet<Key> {
        world_keys(&self.truth)
    }
}

impl Drop for NsWorld {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A python process holding sockets; it prints one JSON line describing them and lives until
/// its stdin closes (on drop).
struct Holder {
    child: Child,
    pid: u32,
    report: Value,
}

/// Listens on a TCP port of its namespace (run as nobody).
const NOBODY_LISTENER: &str = r#"
import json, os, socket, sys
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen()
print(json.dumps({"pid": os.getpid(), "sockets": [
    {"proto": "tcp", "family": "ipv4", "port": s.getsockname()[1],
     "inode": os.fstat(s.fileno()).st_ino, "netns": os.stat("/proc/self/ns/net").st_ino}]}),
    flush=True)
sys.stdin.read()
"#;

/// Makes two sockets whose namespaces nothing else keeps: a TCP listener made after setns
/// into the namespace named in argv[1] and back, and a UDP socket made by a child in a
/// namespace of its own (unshare), handed over with SCM_RIGHTS before the child exits.
const PINNING_HOLDER: &str = r#"
import ctypes, json, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
def check(rc, what):
    if rc != 0:
        raise OSError(ctypes.get_errno(), what)
home = os.open("/proc/self/ns/net", os.O_RDONLY)
target = os.open(sys.argv[1], os.O_RDONLY)
check(libc.setns(target, CLONE_NEWNET), "setns")
a = socket.socket(); a.bind(("0.0.0.0", 0)); a.listen()
check(libc.setns(home, CLONE_NEWNET), "setns home")
ns_a = os.fstat(target).st_ino
os.close(target)
left, right = socket.socketpair()
child = os.fork()
if child == 0:
    try:
        check(libc.unshare(CLONE_NEWNET), "unshare")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 0))
        ns = os.stat("/proc/self/ns/net").st_ino
        socket.send_fds(right, [str(ns).encode()], [u.fileno()])
    finally:
        os._exit(0)
msg, fds, _, _ = socket.recv_fds(left, 64, 1)
os.waitpid(child, 0)
b = socket.socket(fileno=fds[0])
def info(s, proto, ns):
    return {"proto": proto, "family": "ipv4", "port": s.getsockname()[1],
            "inode": os.fstat(s.fileno()).st_ino, "netns": ns}
print(json.dumps({"pid": os.getpid(),
                  "sockets": [info(a, "tcp", ns_a), info(b, "udp", int(msg))]}), flush=True)
sys.stdin.read()
"#;

impl Holder {
    fn start(prefix: &[String], script: &str, as_nobody: bool, args: &[String]) -> Holder {
        let mut argv: Vec<String> = prefix.to_vec();
        if as_nobody {
            argv.extend(
                [
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                    "--",
                ]
                .map(String::from),
            );
        }
        argv.extend(["python3".into(), "-c".into(), script.into()]);
        argv.extend_from_slice(args);
        let mut child = scrubbed(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let report: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("holder printed {line:?}: {e}"));
        let pid = report["pid"].as_u64().unwrap() as u32;
        Holder { child, pid, report }
    }

    fn keys(&self) -> BTreeSet<Key> {
        self.by_netns().into_values().flatten().collect()
    }

    fn by_netns(&self) -> BTreeMap<u64, BTreeSet<Key>> {
        let mut by: BTreeMap<u64, BTreeSet<Key>> = BTreeMap::new();
        for s in self.report["sockets"].as_array().unwrap() {
            let key: Key = (
                s["proto"].as_str().unwrap().into(),
                s["family"].as_str().unwrap().into(),
                s["port"].as_u64().unwrap() as u16,
                s["inode"].as_u64().unwrap(),
            );
            by.entry(s["netns"].as_u64().unwrap())
                .or_default()
                .insert(key);
        }
        by
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Timing of a survey's stages where it runs (for the benchmark world:
/// `world.py --netns 200 -- TESTBIN survey_timing --exact --ignored --nocapture` with
/// `LSPORTS_NETNS_TIMING=1`); prints the median of each stage over 7 runs.
#[test]
#[ignore = "a measurement, run by hand in a benchmark world"]
fn survey_timing() {
    if std::env::var_os("LSPORTS_NETNS_TIMING").is_none() {
        return;
    }
    let proc = Path::new("/proc");
    let request = DumpRequest {
        workers: None,
        ..survey_request()
    };
    let mut stages: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut time = |stage, start: Instant| {
        stages
            .entry(stage)
            .or_default()
            .push(start.elapsed().as_secs_f64() * 1000.0)
    };
    let mut counts = (0, 0, 0, 0);
    for _ in 0..7 {
        let all = Instant::now();
        let root = lsports::sys::procroot::ProcRoot::open(proc).unwrap();
        let start = Instant::now();
        let discovery = netns::discover(&root).unwrap();
        time("1 discover", start);
        let start = Instant::now();
        let dumps =
            netns::dump_all(&discovery.namespaces, discovery.current, proc, &request).unwrap();
        time("2 dump_all", start);
        let start = Instant::now();
        let held = netns::held_sockets(&root);
        time("3 held_sockets (fd walk)", start);
        let start = Instant::now();
        let survey = netns::survey(proc, &request, &held).unwrap();
        time("4 survey (1+2+pinned search)", start);
        time("5 all", all);
        counts = (
            discovery.namespaces.len(),
            dumps
                .iter()
                .map(|d| d.collected.sockets.len())
                .sum::<usize>(),
            held.len(),
            survey.dumps.len(),
        );
    }
    println!(
        "namespaces {} sockets {} held {} surveyed namespaces {}",
        counts.0, counts.1, counts.2, counts.3
    );
    for (stage, mut ms) in stages {
        ms.sort_by(f64::total_cmp);
        println!(
            "{stage:32} median {:8.1} ms  (min {:.1}, max {:.1})",
            ms[3], ms[0], ms[6]
        );
    }
}

fn survey_request() -> DumpRequest {
    DumpRequest {
        tables: vec![
            (Protocol::Tcp, Family::Ipv4),
            (Protocol::Tcp, Family::Ipv6),
            (Protocol::Udp, Family::Ipv4),
            (Protocol::Udp, Family::Ipv6),
        ],
        states: StateSelection::Listening,
        workers: None,
    }
}
