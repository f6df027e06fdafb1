//! One JSON wire type per concept: the listing, a `watch` event and an audit report describe
//! the same socket with the same object, each reads back into lsports' shared wire types
//! (`lsports::render::wire`), and the published schema validates all three. The sockets are
//! real, in a private network namespace, and the truth is the world's.

mod common;

use std::collections::BTreeSet;

use common::*;
use lsports::render::wire;
use serde_json::{Value, json};

/// A plain listener, a prefork one, a dual-stack one and one bound to a device.
fn world() -> World {
    World::start(&json!([
        group_with(
            "tcp",
            "0.0.0.0",
            "websvc",
            json!({"port": 18300, "prefork": 1})
        ),
        group_with("tcp", "::", "dual", json!({"v6only": false, "port": 18301})),
        group_with(
            "udp",
            "0.0.0.0",
            "dhcpd",
            json!({"device": "lsp0", "port": 18367})
        ),
    ]))
}

/// The sections `list`, `watch` and `audit`, all of the same sockets: the listing, the first
/// poll of a watch (one `present` event per socket), and an audit against an empty baseline
/// (every listener unexpected, so every one is described).
fn three_outputs(world: &World, sockets: usize) -> (Value, Vec<Value>, Value) {
    let dir = world.dir().display().to_string();
    std::fs::write(
        world.dir().join("empty.toml"),
        "version = 1\nlisteners = []\n",
    )
    .unwrap();
    let script = format!(
        "echo '=== list'; $LSPORTS --json\n\
         $LSPORTS watch --format jsonl --interval 100ms >{dir}/w.out 2>{dir}/w.err & W=$!\n\
         for _ in $(seq 2400); do [ \"$(grep -c '\"present\"' {dir}/w.out)\" -ge {sockets} ] && break; sleep 0.05; done\n\
         kill -TERM $W; wait $W\n\
         echo '=== audit'; $LSPORTS audit --baseline {dir}/empty.toml --format json; true\n"
    );
    let (sections, _) = world.script_sections(&script);
    let watch = std::fs::read_to_string(world.dir().join("w.out")).unwrap();
    let events: Vec<Value> = watch
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(
        events.len(),
        sockets,
        "one present event per socket:\n{watch}"
    );
    (
        parse_json(sections["list"].as_bytes()),
        events,
        serde_json::from_str(&sections["audit"]).expect("the audit report is JSON"),
    )
}

/// The object with `inode` among `objects` (each found through `socket_of`).
fn with_inode<'a>(objects: impl IntoIterator<Item = &'a Value>, inode: u64) -> &'a Value {
    let mut found = objects.into_iter().filter(|o| o["inode"] == inode);
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no object for inode {inode}"));
    assert!(found.next().is_none(), "two objects for inode {inode}");
    first
}

fn read_back(object: &Value, what: &str) -> wire::Socket {
    serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{what} is not a wire::Socket: {e}\n{object:#}"))
}

/// The keys the schema documents for the socket object and for `def` beside it.
fn documented(def: &str) -> BTreeSet<String> {
    let schema = schema();
    let keys = |d: &str| -> Vec<String> {
        schema["$defs"][d]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    keys("socket").into_iter().chain(keys(def)).collect()
}

fn keys(object: &Value) -> BTreeSet<String> {
    object.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn listing_watch_and_audit_describe_a_socket_with_the_same_object() {
    let world = world();
    let truth: Vec<&Truth> = world.listening().collect();
    let (list, events, audit) = three_outputs(&world, truth.len());
    assert_valid(&list, "lsports --json");
    assert_valid_as(&audit, "audit_report", "lsports audit --format json");
    let listeners: Vec<&Value> = audit["unexpected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["listener"])
        .collect();
    assert_eq!(listeners.len(), truth.len(), "{audit:#}");
    for t in &truth {
        let listed = with_inode(list.as_array().unwrap(), t.inode);
        let event = with_inode(&events, t.inode);
        let audited = with_inode(listeners.iter().copied(), t.inode);
        assert_valid_as(event, "watch_event", "a watch event");
        assert_eq!(keys(event), documented("watch_event"), "{event}");
        assert_eq!(keys(audited), documented("audit_listener"), "{audited}");
        // The same object, field for field, in all three; and it is the world's socket.
        let socket = read_back(listed, "a listing object");
        assert_eq!(
            read_back(event, "a watch event"),
            socket,
            "watch vs listing"
        );
        assert_eq!(
            read_back(audited, "an audit listener"),
            socket,
            "audit vs listing"
        );
        assert_eq!((socket.local_port, socket.inode), (t.port, t.inode));
        assert_eq!(socket.interface, t.device, "{listed}");
        let mut pids: Vec<u32> = socket.processes.iter().map(|p| p.pid).collect();
        let mut want = t.pids.clone();
        pids.sort();
        want.sort();
        assert_eq!(pids, want, "{listed}");
        assert!(
            socket.processes.iter().all(|p| p.exe.is_some() && p.fd > 2),
            "holders with their executable and fd: {listed}"
        );
        // The names scripts used before stay, for one release, as aliases.
        for old in [event, audited] {
            assert_eq!(old["address"].as_str(), Some(socket.local_addr.as_str()));
            assert_eq!(old["port"].as_u64(), Some(u64::from(socket.local_port)));
        }
    }
}
