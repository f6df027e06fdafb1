//! Snapshot files through the library API (`lsports::snapshot`): capture and open of fixture
//! trees and of the live `/proc`, atomic and private output, and archives built by hand — from
//! a big-endian host, without a manifest, hostile, damaged or foreign — which must open
//! correctly or fail with a typed error naming the file, never panic or write outside.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use lsports::model::{Family, Protocol};
use lsports::snapshot::{self, Compression, SnapshotError};
use lsports::source::procnet;
use serde_json::{Value, json};

const EDGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc-net/edge");

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

#[cfg(not(feature = "gzip"))]
#[test]
fn without_gzip_support_a_gz_name_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("snap.tar.gz");
    let err = snapshot::capture(&fixture_root("mapped-v6"), &gz, false).unwrap_err();
    assert!(
        matches!(err, SnapshotError::CompressionUnsupported { .. }),
        "{err}"
    );
    assert!(!gz.exists());
}

#[cfg(feature = "gzip")]
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

/// Manifest fields of an s390x host with `byte_order`.
fn s390_host(byte_order: &str) -> Value {
    json!({"hostname": "s390-db1", "kernel": "5.14.0-427.el9.s390x", "machine": "s390x",
        "byte_order": byte_order})
}

fn open_bytes(bytes: &[u8]) -> Result<snapshot::OpenedSnapshot, SnapshotError> {
    snapshot::open_reader(bytes, Path::new("test.tar"))
}

#[test]
fn a_big_endian_hosts_snapshot_reads_correctly_here() {
    let tcp = fs::read(Path::new(EDGE).join("tcp-big-endian")).unwrap();
    let tcp6 = fs::read(Path::new(EDGE).join("tcp6-big-endian")).unwrap();
    let bytes = TarBuilder::new()
        .manifest(s390_host("big"))
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
fn exe_links_are_kept_as_text_and_never_followed() {
    let bytes = TarBuilder::new()
        .tcp()
        .link(tar::EntryType::Symlink, "proc/7/exe", "/etc/shadow")
        .link(tar::EntryType::Symlink, "proc/7/fd/3", "socket:[7801]")
        .bytes();
    let opened = open_bytes(&bytes).unwrap();
    let exe = opened.proc_root().join("7/exe");
    assert_eq!(fs::read_link(&exe).unwrap(), Path::new("/etc/shadow"));
    let v = json_of_root(opened.proc_root(), &[]);
    assert_eq!(by_inode(&v, 7801)["processes"][0]["exe"], "/etc/shadow");
}

#[test]
fn an_fd_link_listed_before_its_process_directory_is_unpacked() {
    // Another tar writer may list `proc/5/fd/3` first, or never list directories at all.
    let bytes = TarBuilder::new()
        .link(tar::EntryType::Symlink, "proc/5/fd/3", "socket:[7801]")
        .file("proc/5/comm", b"early-fd\n")
        .tcp()
        .bytes();
    let opened = open_bytes(&bytes).unwrap();
    let v = json_of_root(opened.proc_root(), &[]);
    let owner = &by_inode(&v, 7801)["processes"][0];
    assert_eq!(owner["pid"], 5);
    assert_eq!(owner["name"], "early-fd");
}

#[test]
fn the_unpacked_tree_is_private_from_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let bytes = TarBuilder::new()
        .tcp()
        .file("proc/5/cmdline", b"mysqld\0--password=hunter2\0")
        .link(tar::EntryType::Symlink, "proc/5/fd/3", "socket:[7801]")
        .bytes();
    let opened = open_bytes(&bytes).unwrap();
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(opened.dir()), 0o700, "{}", opened.dir().display());
    for dir in ["", "net", "5", "5/fd"] {
        assert_eq!(mode(&opened.proc_root().join(dir)), 0o700, "proc/{dir}");
    }
    for file in ["net/tcp", "5/cmdline"] {
        assert_eq!(mode(&opened.proc_root().join(file)), 0o600, "proc/{file}");
    }
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
            "exe as file",
            TarBuilder::new()
                .tcp()
                .file("proc/1/exe", b"/usr/bin/x")
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
        text.contains("1 process could not be inspected, so its sockets will show no owner"),
        "{text}"
    );
}

#[test]
fn a_snapshot_without_a_table_says_so_once() {
    // A tree with no net/udp, as a snapshot made by hand or from a damaged tree would be.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("net")).unwrap();
    let tcp = fs::read(fixture_root("mapped-v6").join("net/tcp")).unwrap();
    fs::write(root.join("net/tcp"), tcp).unwrap();
    let file = dir.path().join("no-udp.tar");
    snapshot::capture(&root, &file, false).unwrap();
    let args = ["--snapshot", file.to_str().unwrap(), "-ltu"];
    let out = run_host(&args);
    assert_success(&out, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Without net/udp, the absent net/udp6 is not "IPv6 disabled": its sockets are as
    // unknown, and each table is said once.
    let want: Vec<String> = [
        "udp/ipv4: cannot list sockets (the snapshot {} holds no net/udp table",
        "udp/ipv6: cannot list sockets (the snapshot {} holds no net/udp6 table",
    ]
    .iter()
    .map(|line| {
        let line = line.replace("{}", &file.display().to_string());
        format!("lsports: {line}, so these sockets are unknown)")
    })
    .collect();
    assert_eq!(stderr.lines().collect::<Vec<_>>(), want, "{stderr}");
}

#[test]
fn a_repeated_entry_is_refused_rather_than_hiding_the_first() {
    // A second, header-only `proc/net/tcp` appended after the real one (inode 7801, held by
    // pid 5): the last copy would win and the listener vanish. Likewise a process file and
    // an fd link given twice.
    let header = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    let base = || {
        TarBuilder::new()
            .manifest(json!({}))
            .tcp()
            .file("proc/5/comm", b"sshd\n")
            .link(tar::EntryType::Symlink, "proc/5/fd/3", "socket:[7801]")
    };
    let dir = tempfile::tempdir().unwrap();
    let list = |name: &str, bytes: Vec<u8>| {
        let file = dir.path().join(name);
        fs::write(&file, bytes).unwrap();
        run_host(&["--snapshot", file.to_str().unwrap(), "-tln", "--json"])
    };
    let whole = list("whole.tar", base().bytes());
    assert_success(&whole, &["--snapshot whole.tar"]);
    assert!(stdout(&whole).contains("7801"), "{}", stdout(&whole));
    for (name, doctored, entry) in [
        (
            "table.tar",
            base().file("proc/net/tcp", header),
            "proc/net/tcp",
        ),
        (
            "comm.tar",
            base().file("proc/5/comm", b"other\n"),
            "proc/5/comm",
        ),
        (
            "fd.tar",
            base().link(tar::EntryType::Symlink, "proc/5/fd/3", "socket:[1]"),
            "proc/5/fd/3",
        ),
    ] {
        let out = list(name, doctored.bytes());
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert_eq!(
            stdout(&out),
            "",
            "{name}: nothing listed from a doctored archive"
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!("refusing unsafe archive entry \"{entry}\""))
                && err.contains("repeats an earlier entry"),
            "{name}: {err}"
        );
    }
}
