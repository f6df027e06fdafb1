//! Snapshots: `lsports capture` / `--snapshot` and the library API under them
//! (`lsports::snapshot::{capture, open}`).
//!
//! Capturing a world's namespace needs a process inside it: the library tests re-run this
//! test binary under `nsenter` with `LSPORTS_TEST_CAPTURE` set (see `capture_helper`); the CLI
//! tests run `lsports capture` there. Either snapshot is then read back on the host, outside
//! the namespace, and must list what the live run inside it listed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use lsports::model::{Family, Protocol};
use lsports::snapshot::{self, Compression, SnapshotError};
use lsports::source::procnet::{self, ByteOrder};
use serde_json::{Value, json};

const PROC_ROOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc-roots");
const EDGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc-net/edge");

fn fixture_root(case: &str) -> PathBuf {
    Path::new(PROC_ROOTS).join(case)
}

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

/// `nsenter` into the world's network namespace (the harness's own is private).
fn in_world(world: &World) -> Command {
    let mut cmd = scrubbed("nsenter");
    if is_root() {
        cmd.arg(format!("--net=/proc/{}/ns/net", world.pid()));
    } else {
        cmd.args(["--user", "--net", "--preserve-credentials", "-t"])
            .arg(world.pid().to_string());
    }
    cmd.arg("--");
    cmd
}

/// Not a test of its own: with `LSPORTS_TEST_CAPTURE=OUT` set (by `capture_in_world`, inside a
/// world's namespace) it captures `/proc` to OUT through the library.
#[test]
fn capture_helper() {
    let Some(out) = std::env::var_os("LSPORTS_TEST_CAPTURE") else {
        return;
    };
    let summary = snapshot::capture(Path::new("/proc"), Path::new(&out), false)
        .unwrap_or_else(|e| panic!("capture failed: {e}"));
    eprintln!("{}", summary.describe());
}

/// Capture the world's namespace with the library, from inside it.
fn capture_in_world(world: &World, out: &Path) {
    let mut cmd = in_world(world);
    cmd.arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "capture_helper",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("LSPORTS_TEST_CAPTURE", out);
    let output = output_guarded(cmd, "capture_helper in the world");
    assert_success(&output, &["(test) capture_helper"]);
    assert!(out.is_file(), "capture_helper wrote nothing");
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
    let world = IsolatedWorld::start(&world_spec());
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

/// A world in private network, pid and mount namespaces (fixture regeneration only).
struct IsolatedWorld {
    child: std::process::Child,
    holder: u32,
    _dir: tempfile::TempDir,
}

impl IsolatedWorld {
    fn start(spec: &Value) -> IsolatedWorld {
        let dir = tempfile::tempdir().unwrap();
        let spec_path = dir.path().join("spec.json");
        let ready = dir.path().join("ready");
        fs::write(&spec_path, spec.to_string()).unwrap();
        let script = format!(
            "ip link set lo up && exec python3 {} {} {} {}",
            world_py().display(),
            spec_path.display(),
            dir.path().join("truth.json").display(),
            ready.display()
        );
        let mut cmd = scrubbed("unshare");
        cmd.args(["--net", "--pid", "--fork", "--mount", "--mount-proc"])
            .args(["bash", "-c", &script]);
        let child = cmd.spawn().expect("unshare");
        let unshare_pid = child.id();
        while !ready.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The forked child of unshare: world.py, pid 1 inside.
        let children = format!("/proc/{unshare_pid}/task/{unshare_pid}/children");
        let holder = fs::read_to_string(children)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        IsolatedWorld {
            child,
            holder,
            _dir: dir,
        }
    }

    fn capture(&self, out: &Path, as_nobody: bool) {
        let mut cmd = scrubbed("nsenter");
        cmd.args(["--net", "--pid", "--mount", "-t"])
            .arg(self.holder.to_string())
            .arg("--");
        if as_nobody {
            cmd.args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            ]);
        }
        cmd.arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "capture_helper",
                "--test-threads=1",
                "--nocapture",
            ])
            .env("LSPORTS_TEST_CAPTURE", out);
        let output = output_guarded(cmd, "capture_helper in an isolated world");
        assert_success(&output, &["(test) capture_helper"]);
    }
}

impl Drop for IsolatedWorld {
    fn drop(&mut self) {
        // Killing pid 1 of the namespace ends every process in it.
        // SAFETY: plain kill(2) of a process this test started.
        unsafe { libc::kill(self.holder as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// lsports on the host (outside any namespace) over an unpacked proc root.
fn json_of_root(root: &Path, args: &[&str]) -> Value {
    let mut a = vec![
        "--proc-root",
        root.to_str().unwrap(),
        "--source",
        "proc",
        "--json",
    ];
    a.extend_from_slice(args);
    let out = run_host(&a);
    assert_success(&out, &a);
    parse_json(&out.stdout)
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
    capture_in_world(&world, &file);

    let opened = snapshot::open(&file).unwrap();
    assert!(opened.has_manifest());
    assert_eq!(opened.manifest().byte_order(), Some(ByteOrder::native()));
    let offline = json_of_root(opened.proc_root(), &["-a"]);
    // Same source, same machine: identical, field for field.
    assert_eq!(offline, live_proc);
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
    let file = dir.path().join("world.tar.gz");
    let file_arg = file.to_str().unwrap();
    let live = world.json(&["-a", "--source", "proc"]);
    let live_default = world.json(&[]);
    let captured = world.run(&["capture", file_arg]);
    assert_success(&captured, &["capture", file_arg]);

    let out = run_host(&["--snapshot", file_arg, "-a", "--json"]);
    assert_success(&out, &["--snapshot", file_arg, "-a", "--json"]);
    assert_eq!(parse_json(&out.stdout), live);
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
    capture_in_world(&world, &file);
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

// ---------------------------------------------------------------------------------------------
// Library API on fixture trees

/// Every file and link of a proc tree, by relative path.
fn tree_contents(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let meta = path.symlink_metadata().unwrap();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            out.push((rel, target.into_os_string().into_encoded_bytes()));
        } else if meta.is_dir() {
            walk(root, &path, out);
        } else {
            out.push((rel, fs::read(&path).unwrap()));
        }
    }
}

#[test]
fn capture_and_open_reproduce_a_tree_exactly() {
    for case in ["mapped-v6", "crlf", "truncated-table", "unreadable-process"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap.tar");
        let summary = snapshot::capture(&fixture_root(case), &file, false).unwrap();
        assert!(!summary.tables.is_empty());
        let opened = snapshot::open(&file).unwrap();
        assert_eq!(
            tree_contents(opened.proc_root()),
            tree_contents(&fixture_root(case)),
            "{case}"
        );
    }
}

#[test]
fn capture_keeps_only_processes_holding_table_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    fs::create_dir_all(root.join("net")).unwrap();
    fs::copy(
        fixture_root("empty-table").join("net/tcp"),
        root.join("net/tcp"),
    )
    .unwrap();
    for (pid, target) in [
        (10, "socket:[7801]"),
        (11, "socket:[99]"),
        (12, "pipe:[7801]"),
    ] {
        fs::create_dir_all(root.join(format!("{pid}/fd"))).unwrap();
        std::os::unix::fs::symlink(target, root.join(format!("{pid}/fd/3"))).unwrap();
        fs::write(root.join(format!("{pid}/comm")), b"x\n").unwrap();
    }
    let file = dir.path().join("snap.tar");
    let summary = snapshot::capture(&root, &file, false).unwrap();
    assert_eq!(
        (summary.processes, summary.links, summary.sockets),
        (1, 1, 1)
    );
    assert_eq!(summary.tables, ["tcp"]);
    let opened = snapshot::open(&file).unwrap();
    let pids: Vec<String> = fs::read_dir(opened.proc_root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "net")
        .collect();
    assert_eq!(pids, ["10"]);
}

#[test]
fn live_capture_finds_this_process_and_its_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.tar");
    let summary = snapshot::capture(Path::new("/proc"), &file, false).unwrap();
    assert!(summary.tables.contains(&"tcp"), "{summary:?}");
    let opened = snapshot::open(&file).unwrap();
    let v = json_of_root(opened.proc_root(), &["-t", "-4"]);
    let mine = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["local_port"] == port && s["local_addr"] == "127.0.0.1")
        .unwrap_or_else(|| panic!("port {port} missing from {v}"));
    assert_eq!(json_pids(mine), [std::process::id()]);
}

#[test]
fn refuses_to_overwrite_unless_forced_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.tar");
    fs::write(&file, b"precious").unwrap();
    let err = snapshot::capture(&fixture_root("crlf"), &file, false).unwrap_err();
    assert!(matches!(err, SnapshotError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"precious");
    snapshot::capture(&fixture_root("crlf"), &file, true).unwrap();
    assert!(snapshot::open(&file).is_ok());
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "temporary files left behind: {names:?}");
}

#[test]
fn a_failed_capture_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.tar");
    let err = snapshot::capture(&dir.path().join("no-such-proc"), &file, false).unwrap_err();
    assert!(matches!(err, SnapshotError::ProcRoot { .. }), "{err}");
    assert!(err.to_string().contains("no-such-proc"), "{err}");
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let err = snapshot::capture(&empty, &file, false).unwrap_err();
    assert!(
        matches!(err, SnapshotError::NothingCaptured { .. }),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only `empty` remains"
    );
    let err = snapshot::capture(
        &fixture_root("crlf"),
        &dir.path().join("no/dir/x.tar"),
        false,
    )
    .unwrap_err();
    assert!(matches!(err, SnapshotError::Write { .. }), "{err}");
}

#[test]
fn snapshot_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.tar");
    snapshot::capture(&fixture_root("crlf"), &file, false).unwrap();
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "command lines may hold secrets");
}

#[test]
fn gzip_is_chosen_by_name_and_recognised_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("snap.tar.gz");
    snapshot::capture(&fixture_root("mapped-v6"), &gz, false).unwrap();
    assert_eq!(&fs::read(&gz).unwrap()[..2], [0x1f, 0x8b]);
    // Renamed without the suffix it still opens: the content decides.
    let plain_name = dir.path().join("renamed");
    fs::rename(&gz, &plain_name).unwrap();
    let opened = snapshot::open(&plain_name).unwrap();
    assert_eq!(
        tree_contents(opened.proc_root()),
        tree_contents(&fixture_root("mapped-v6"))
    );
    assert_eq!(Compression::for_path(Path::new("a.tgz")), Compression::Gzip);
    assert_eq!(Compression::for_path(Path::new("a.tar")), Compression::None);
}

#[test]
fn write_snapshot_streams_to_any_writer_and_open_reader_reads_it() {
    let mut buffer = Vec::new();
    let summary = snapshot::write_snapshot(
        &fixture_root("udp-connected"),
        Compression::None,
        &mut buffer,
    )
    .unwrap();
    assert_eq!(summary.sockets, 4);
    let opened = snapshot::open_reader(&buffer[..], Path::new("-")).unwrap();
    assert_eq!(
        tree_contents(opened.proc_root()),
        tree_contents(&fixture_root("udp-connected"))
    );
}

#[test]
fn the_unpacked_tree_is_removed_when_the_snapshot_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.tar");
    snapshot::capture(&fixture_root("crlf"), &file, false).unwrap();
    let opened = snapshot::open(&file).unwrap();
    let root = opened.proc_root().to_owned();
    assert!(root.join("net/udp").is_file());
    drop(opened);
    assert!(!root.exists());
}

// ---------------------------------------------------------------------------------------------
// Hand-built archives: other hosts, and hostile or damaged files

/// A tar built entry by entry.
struct TarBuilder(tar::Builder<Vec<u8>>);

impl TarBuilder {
    fn new() -> Self {
        TarBuilder(tar::Builder::new(Vec::new()))
    }

    fn file(mut self, name: &str, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        h.set_entry_type(tar::EntryType::Regular);
        // Write the name raw: the tar crate's own setters refuse `..` and absolute names.
        raw_name(&mut h, name);
        self.0.append(&h, data).unwrap();
        self
    }

    fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(kind);
        h.set_link_name_literal(target).unwrap();
        raw_name(&mut h, name);
        self.0.append(&h, &[][..]).unwrap();
        self
    }

    fn manifest(self, byte_order: &str) -> Self {
        let m = json!({"format": "lsports-snapshot", "version": 1, "hostname": "s390-db1",
            "kernel": "5.14.0-427.el9.s390x", "machine": "s390x", "byte_order": byte_order,
            "captured_at": 1_780_000_000u64});
        self.file("lsports-snapshot.json", m.to_string().as_bytes())
    }

    fn tcp(self) -> Self {
        self.file(
            "proc/net/tcp",
            &fs::read(fixture_root("empty-table").join("net/tcp")).unwrap(),
        )
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn raw_name(h: &mut tar::Header, name: &str) {
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
}

fn open_bytes(bytes: &[u8]) -> Result<snapshot::OpenedSnapshot, SnapshotError> {
    snapshot::open_reader(bytes, Path::new("test.tar"))
}

#[test]
fn a_big_endian_hosts_snapshot_reads_correctly_here() {
    let tcp = fs::read(Path::new(EDGE).join("tcp-big-endian")).unwrap();
    let tcp6 = fs::read(Path::new(EDGE).join("tcp6-big-endian")).unwrap();
    let bytes = TarBuilder::new()
        .manifest("big")
        .file("proc/net/tcp", &tcp)
        .file("proc/net/tcp6", &tcp6)
        .file("proc/77/comm", b"postgres\n")
        .link(tar::EntryType::Symlink, "proc/77/fd/5", "socket:[3004]")
        .bytes();
    let opened = open_bytes(&bytes).unwrap();
    assert_eq!(opened.manifest().hostname, "s390-db1");
    assert!(opened.describe().contains("s390x"), "{}", opened.describe());
    let t = procnet::read_table(opened.proc_root(), Protocol::Tcp, Family::Ipv4).unwrap();
    let addrs: Vec<String> = t.sockets.iter().map(|s| s.local_addr.to_string()).collect();
    assert_eq!(addrs, ["127.0.0.1", "0.0.0.0"]);
    let t6 = procnet::read_table(opened.proc_root(), Protocol::Tcp, Family::Ipv6).unwrap();
    assert_eq!(t6.sockets[1].local_addr.to_string(), "::ffff:127.0.0.1");
    let v = json_of_root(opened.proc_root(), &[]);
    let mapped = by_inode(&v, 3004);
    assert_eq!(mapped["processes"][0]["name"], "postgres");
}

#[test]
fn an_archive_without_manifest_is_read_in_this_hosts_order() {
    let bytes = TarBuilder::new().tcp().file("README", b"hello").bytes();
    let opened = open_bytes(&bytes).unwrap();
    assert!(!opened.has_manifest());
    assert_eq!(opened.skipped_entries(), 1);
    assert!(opened.proc_root().join("net/tcp").is_file());
}

#[test]
fn entries_that_escape_are_refused() {
    for (name, bytes) in [
        (
            "dotdot",
            TarBuilder::new()
                .tcp()
                .file("proc/../../evil", b"x")
                .bytes(),
        ),
        (
            "absolute",
            TarBuilder::new().tcp().file("/tmp/evil", b"x").bytes(),
        ),
        (
            "symlink comm",
            TarBuilder::new()
                .tcp()
                .link(tar::EntryType::Symlink, "proc/1/comm", "/etc/shadow")
                .bytes(),
        ),
        (
            "fd link out",
            TarBuilder::new()
                .tcp()
                .link(tar::EntryType::Symlink, "proc/1/fd/3", "/etc/shadow")
                .bytes(),
        ),
        (
            "hard link",
            TarBuilder::new()
                .tcp()
                .link(tar::EntryType::Link, "proc/1/fd/3", "proc/net/tcp")
                .bytes(),
        ),
        (
            "table as link",
            TarBuilder::new()
                .link(tar::EntryType::Symlink, "proc/net/tcp", "/proc/net/tcp")
                .bytes(),
        ),
    ] {
        match open_bytes(&bytes) {
            Err(SnapshotError::UnsafeEntry { .. }) => {}
            other => panic!("{name}: expected UnsafeEntry, got {other:?}"),
        }
    }
}

#[test]
fn damaged_or_foreign_files_are_typed_errors() {
    let cases: [(&str, Vec<u8>); 5] = [
        ("empty", Vec::new()),
        ("text", b"this is not a tar archive\n".repeat(40)),
        (
            "no tables",
            TarBuilder::new().file("proc/1/comm", b"x\n").bytes(),
        ),
        (
            "bad manifest",
            TarBuilder::new()
                .tcp()
                .file("lsports-snapshot.json", b"{")
                .bytes(),
        ),
        (
            "other format",
            TarBuilder::new()
                .tcp()
                .file("lsports-snapshot.json", br#"{"format":"x","version":1}"#)
                .bytes(),
        ),
    ];
    for (name, bytes) in cases {
        match open_bytes(&bytes) {
            Err(SnapshotError::NotASnapshot { path, .. }) => {
                assert_eq!(path, Path::new("test.tar"))
            }
            other => panic!("{name}: expected NotASnapshot, got {other:?}"),
        }
    }
    let newer = TarBuilder::new()
        .tcp()
        .file(
            "lsports-snapshot.json",
            br#"{"format":"lsports-snapshot","version":99}"#,
        )
        .bytes();
    let err = open_bytes(&newer).unwrap_err();
    assert!(
        matches!(err, SnapshotError::UnsupportedVersion { version: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade"), "{err}");
}

#[test]
fn a_truncated_archive_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.tar");
    snapshot::capture(&fixture_root("mapped-v6"), &file, false).unwrap();
    let bytes = fs::read(&file).unwrap();
    for cut in [1, 100, 511, 512, 1000, bytes.len() / 2, bytes.len() - 1024] {
        // Whatever the outcome, it is a value, not a crash.
        let _ = open_bytes(&bytes[..cut]);
    }
}

#[test]
fn missing_file_names_the_path() {
    let err = snapshot::open(Path::new("/nonexistent/snap.tar")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/snap.tar"), "{err}");
}

#[test]
fn capture_summary_reads_well() {
    let dir = tempfile::tempdir().unwrap();
    let summary = snapshot::capture(
        &fixture_root("unreadable-process"),
        &dir.path().join("s.tar"),
        false,
    )
    .unwrap();
    assert_eq!((summary.denied, summary.processes), (1, 1));
    let text = summary.describe();
    assert!(
        text.contains("1 processes could not be inspected"),
        "{text}"
    );
}
