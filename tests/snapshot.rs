//! Snapshots of real worlds: `lsports capture` / `--snapshot` and the library API under them
//! (`lsports::snapshot::{capture, open}`), compared with the live run. Archive handling on its
//! own (fixture trees, hostile and damaged files) is in tests/snapshot_archives.rs.
//!
//! Capturing a world's namespace needs a process inside it: the library tests re-run this
//! test binary under `nsenter` with `LSPORTS_TEST_CAPTURE` set (see `capture_helper`); the CLI
//! tests run `lsports capture` there. Either snapshot is then read back on the host, outside
//! the namespace, and must list what the live run inside it listed.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use lsports::snapshot;
use lsports::source::procnet::ByteOrder;
use serde_json::{Value, json};

/// A spec touching every kind of socket and holder world.py can make.
fn world_spec() -> Value {
    json!([
        group("tcp", "0.0.0.0", "sshd"),
        group_with("tcp", "::", "nginx", json!({"v6only": false, "prefork": 2})),
        group_with("tcp", "::1", "postgres", json!({"v6only": true})),
        group_with(
            "tcp",
            "::ffff:127.0.0.1",
            "mapped",
            json!({"v6only": false})
        ),
        group("udp", "0.0.0.0", "dnsmasq"),
        group_with("udp", "::", "chronyd", json!({"v6only": false})),
        group_with("tcp", "127.0.0.1", "envoy", json!({"reuseport": 2})),
        group_with("tcp", "127.0.0.1", "redis", json!({"connect": true})),
        group_with("udp", "127.0.0.1", "unbound", json!({"udp_connect": true})),
        group_with("tcp", "127.0.0.1", "", json!({"name_hex": "fffe6576696c"})),
    ])
}

/// Not a test of its own: with `LSPORTS_TEST_CAPTURE=OUT` set (by `World::capture`, inside a
/// world's namespace) it captures `/proc` to OUT through the library.
#[test]
fn capture_helper() {
    capture_helper_body();
}

/// Not a test of its own: with `LSPORTS_REGENERATE_FIXTURES=1` it rewrites the snapshots under
/// `fixtures/snapshots/` from a fresh world, captured once as root and once as nobody (see
/// fixtures/README.md). Run as root.
///
/// The world runs in its own pid and mount namespaces too, so the snapshot holds the world's
/// processes only, with small stable pids, and nothing of the machine that made it.
#[test]
fn regenerate_world_fixtures() {
    if std::env::var_os("LSPORTS_REGENERATE_FIXTURES").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots");
    fs::create_dir_all(&dir).unwrap();
    let world = isolated_world(&world_spec());
    // Written to a directory anyone may write to (nobody captures too), then moved.
    let scratch = tempfile::tempdir().unwrap();
    fs::set_permissions(
        scratch.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    for (name, as_nobody) in [
        ("netns-world-root.tar", false),
        ("netns-world-nobody.tar.gz", true),
    ] {
        let out = scratch.path().join(name);
        world.capture(&out, as_nobody);
        fs::copy(&out, dir.join(name)).unwrap();
    }
}

/// The world of `spec` in private network, pid and mount namespaces (fixture regeneration
/// only): world.py as pid 1.
fn isolated_world(spec: &Value) -> Isolated {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("spec.json");
    fs::write(&spec_path, spec.to_string()).unwrap();
    let (truth, ready) = (dir.path().join("truth.json"), dir.path().join("ready"));
    let world = Isolated::start(
        "exec python3 \"$@\"",
        &[&world_py(), &spec_path, &truth, &ready],
        &ready,
    );
    // world.py has read its spec and written its truth by now; the files are not needed.
    drop(dir);
    world
}

/// (inode, pids, names) of every socket, to compare holders whatever the source.
fn holders(v: &Value) -> Vec<(u64, Vec<u32>, Vec<String>)> {
    let mut rows: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let names = s["processes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap_or("").to_string())
                .collect();
            (s["inode"].as_u64().unwrap(), json_pids(s), names)
        })
        .collect();
    rows.sort();
    rows
}

/// Both runs list the same sockets (addresses, ports, pids) with the same holders and names.
fn assert_same_listing(what: &str, got: &Value, want: &Value) {
    assert_same_rows(what, &rows_from_json(got), &rows_from_json(want));
    assert_eq!(holders(got), holders(want), "{what}: holders differ");
}

#[test]
fn library_capture_of_a_world_reads_back_as_the_live_run() {
    let world = World::start(&world_spec());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("world.tar");
    let live_proc = world.json(&["-a", "--source", "proc"]);
    let live_netlink = world.json(&[]);
    world.capture(&file);

    let opened = snapshot::open(&file).unwrap();
    assert!(opened.has_manifest());
    assert_eq!(opened.manifest().byte_order(), Some(ByteOrder::native()));
    let offline = json_of_root(opened.proc_root(), &["-a"]);
    // Same source, same machine: identical, field for field, the namespace included (a
    // snapshot records the capture's own); but not its firewall rules: its reach is `unknown`.
    assert_eq!(without_reach(offline), without_reach(live_proc));
    let offline_listening = json_of_root(opened.proc_root(), &[]);
    assert_same_listing(
        "snapshot vs live netlink",
        &offline_listening,
        &live_netlink,
    );
    // And what the world says it made: every listener with exactly its holders.
    for t in world.listening() {
        assert_eq!(
            json_pids(by_inode(&offline_listening, t.inode)),
            t.pids,
            "{t:?}"
        );
    }
}

#[test]
fn cli_capture_then_snapshot_gives_the_live_json() {
    let world = World::start(&world_spec());
    let dir = tempfile::tempdir().unwrap();
    // Compressed where this build can: the CLI path for gzip too.
    let name = if cfg!(feature = "gzip") {
        "world.tar.gz"
    } else {
        "world.tar"
    };
    let file = dir.path().join(name);
    let file_arg = file.to_str().unwrap();
    let live = world.json(&["-a", "--source", "proc"]);
    let live_default = world.json(&[]);
    let captured = world.run(&["capture", file_arg]);
    assert_success(&captured, &["capture", file_arg]);

    let out = run_host(&["--snapshot", file_arg, "-a", "--json"]);
    assert_success(&out, &["--snapshot", file_arg, "-a", "--json"]);
    // A snapshot does not record the firewall rules: its reach is `unknown`, the live one's
    // is what this host's rules say.
    assert_eq!(without_reach(parse_json(&out.stdout)), without_reach(live));
    let out = run_host(&["--snapshot", file_arg, "--json"]);
    assert_success(&out, &["--snapshot", file_arg, "--json"]);
    assert_same_listing(
        "--snapshot vs live",
        &parse_json(&out.stdout),
        &live_default,
    );
}

#[test]
fn cli_snapshot_honours_every_flag_as_the_unpacked_tree_does() {
    let world = World::start(&world_spec());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("world.tar");
    let file_arg = file.to_str().unwrap();
    world.capture(&file);
    let opened = snapshot::open(&file).unwrap();
    let root = opened.proc_root().to_str().unwrap();
    for flags in [
        &["-tln"][..],
        &["-uln"],
        &["-an"],
        &["-4n"],
        &["-6n"],
        &["-tlnpe"],
        &["-anW"],
        &["--json"],
        &["-a", "--json"],
    ] {
        let mut snap_args = vec!["--snapshot", file_arg];
        snap_args.extend_from_slice(flags);
        let mut root_args = vec!["--proc-root", root, "--source", "proc"];
        root_args.extend_from_slice(flags);
        let (snap, tree) = (run_host(&snap_args), run_host(&root_args));
        assert_success(&snap, &snap_args);
        assert_success(&tree, &root_args);
        assert_eq!(
            String::from_utf8_lossy(&snap.stdout),
            String::from_utf8_lossy(&tree.stdout),
            "lsports {flags:?}"
        );
    }
}

#[test]
fn cli_capture_refuses_to_overwrite_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.tar");
    let file_arg = file.to_str().unwrap();
    fs::write(&file, b"precious").unwrap();
    let out = run_host(&["capture", file_arg]);
    assert!(!out.status.success(), "overwrote an existing file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(fs::read(&file).unwrap(), b"precious");
    let out = run_host(&["capture", "--force", file_arg]);
    assert_success(&out, &["capture", "--force", file_arg]);
    assert!(snapshot::open(&file).is_ok());
}

#[test]
fn cli_proc_root_implies_the_proc_source() {
    let root = fixture_root("mapped-v6");
    let out = run_host(&["--proc-root", root.to_str().unwrap(), "--json"]);
    assert_success(&out, &["--proc-root", "mapped-v6", "--json"]);
    let v = parse_json(&out.stdout);
    let ports: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["local_port"].as_u64().unwrap())
        .collect();
    // Only the fixture's listeners: netlink would have described the live host instead.
    assert_eq!(ports, [443, 5432]);
    assert!(v.as_array().unwrap().iter().all(|s| s["source"] == "proc"));
}

/// A snapshot taken without root names every socket but not their owners; the hint says what
/// would have recorded them (capturing as root), not what cannot help now (running as root).
#[cfg(feature = "gzip")]
#[test]
fn snapshot_captured_unprivileged_says_to_capture_as_root() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/netns-world-nobody.tar.gz");
    let out = run_host(&["--snapshot", file.to_str().unwrap(), "-n"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("could not be inspected"))
        .collect();
    assert_eq!(hints.len(), 1, "{stderr}");
    assert!(
        hints[0].contains("when the snapshot was captured"),
        "{stderr}"
    );
    assert!(hints[0].contains("capture as root"), "{stderr}");
    assert!(!hints[0].contains("setcap"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().count() > 1,
        "every socket is still listed:\n{stdout}"
    );
}

/// A listing without `reach`: a snapshot does not record the firewall rules, so its reach is
/// `unknown` where the live one's is what this host's rules say.
fn without_reach(mut listing: serde_json::Value) -> serde_json::Value {
    for socket in listing.as_array_mut().unwrap() {
        socket.as_object_mut().unwrap().remove("reach");
    }
    listing
}
