//! A proc root is a tree anyone may have written: a FIFO where a file should be must not hang
//! the listing, and a symbolic link must not take it outside the tree. Each test builds a
//! small tree (one process holding one TCP listener), plants one trap in it, runs the real
//! binary over it with `--proc-root`, and checks the listing finished, said what was wrong, and
//! showed nothing read from outside the root: the files outside hold a marker that must never
//! appear in the output.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Longer than any listing of a tree this size could take, however loaded the machine; a
/// FIFO opened the old way blocks forever, so this only has to be finite.
const PATIENCE: Duration = Duration::from_secs(60);
/// What the files outside the root hold; never shown by a listing of the root.
const MARKER: &str = "OUTSIDE-THE-ROOT-c0ffee";
/// The header of every `/proc/net` table.
const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when \
                      retrnsmt   uid  timeout inode\n";

/// A table row: a TCP listener on 127.0.0.1:`port` with socket inode `inode`.
fn listener(port: u16, inode: u64) -> String {
    format!(
        "   0: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     \
         0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )
}

/// A temporary directory holding `root/` (the proc root: pid 100 holds a listener on port
/// 8080, inode 1001, as fd 3) and `outside/` (files with the marker, and a net table with a
/// listener on port 9999).
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let tree = Tree {
            dir: tempfile::tempdir().unwrap(),
        };
        let root = tree.root();
        fs::create_dir_all(root.join("net")).unwrap();
        fs::write(
            root.join("net/tcp"),
            format!("{HEADER}{}", listener(8080, 1001)),
        )
        .unwrap();
        fs::write(root.join("net/udp"), HEADER).unwrap();
        fs::create_dir_all(root.join("100/fd")).unwrap();
        symlink("socket:[1001]", root.join("100/fd/3")).unwrap();
        fs::write(root.join("100/comm"), "web\n").unwrap();
        fs::write(root.join("100/cmdline"), "web\0--port\08080\0").unwrap();
        fs::write(
            root.join("100/status"),
            "Name:\tweb\nUid:\t33\t33\t33\t33\n",
        )
        .unwrap();
        fs::create_dir_all(root.join("sys/kernel")).unwrap();
        fs::write(root.join("sys/kernel/hostname"), "box\n").unwrap();
        let outside = tree.outside();
        fs::create_dir_all(outside.join("net")).unwrap();
        fs::create_dir_all(outside.join("fd")).unwrap();
        fs::write(outside.join("marker"), format!("{MARKER}\n")).unwrap();
        let status = format!("Name:\t{MARKER}\nUid:\t4242\t4242\t4242\t4242\n");
        fs::write(outside.join("status"), status).unwrap();
        fs::write(outside.join("comm"), format!("{MARKER}\n")).unwrap();
        let table = format!("{HEADER}{}", listener(9999, 1001));
        fs::write(outside.join("net/tcp"), table).unwrap();
        fs::write(outside.join("net/udp"), HEADER).unwrap();
        symlink("socket:[1001]", outside.join("fd/3")).unwrap();
        tree
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Replace `rel` under the root with a FIFO.
    fn fifo(&self, rel: &str) {
        let path = self.root().join(rel);
        let _ = fs::remove_file(&path);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    /// Replace `rel` under the root (a file or a directory) with a link to `target`.
    fn link(&self, rel: &str, target: &Path) {
        let path = self.root().join(rel);
        if path.is_dir() {
            fs::remove_dir_all(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
        symlink(target, path).unwrap();
    }

    /// `lsports --proc-root ROOT --source proc ARGS`, killed if it outlasts [`PATIENCE`].
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = scrubbed(lsports_bin());
        cmd.arg("--proc-root")
            .arg(self.root())
            .args(["--source", "proc"])
            .args(args);
        let out = output_within(cmd, PATIENCE, &format!("lsports {args:?}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains(MARKER),
            "read from outside the root:\n{text}"
        );
        out
    }

    /// The JSON listing of the root's listening TCP sockets.
    fn json(&self) -> (Vec<Value>, String) {
        let out = self.run(&["-lt", "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let listing = parse_json(&out.stdout);
        (listing.as_array().unwrap().clone(), stderr)
    }
}

/// The one process shown holding the listener on `port`.
fn holder(listing: &[Value], port: u64) -> &Value {
    let socket = listing
        .iter()
        .find(|s| s["local_port"] == port)
        .unwrap_or_else(|| panic!("no listener on {port}: {listing:?}"));
    let processes = socket["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 1, "{socket}");
    &processes[0]
}

#[test]
fn the_untouched_tree_lists_its_listener_and_owner() {
    // The truth the other tests depart from.
    let (listing, _) = Tree::new().json();
    assert_eq!(listing.len(), 1, "{listing:?}");
    let web = holder(&listing, 8080);
    assert_eq!(
        (web["pid"].as_u64(), web["name"].as_str()),
        (Some(100), Some("web"))
    );
    assert_eq!(web["uid"], 33);
}

#[test]
fn a_fifo_as_a_socket_table_is_reported_not_waited_on() {
    let tree = Tree::new();
    tree.fifo("net/tcp");
    let out = tree.run(&["-ltu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "lsports: tcp/ipv4: cannot list sockets (cannot read {}: a FIFO, not a regular file)",
        tree.root().join("net/tcp").display()
    );
    assert!(stderr.lines().any(|l| l == want), "{stderr}");
    // The UDP table was read: the listing is shown, as for any table that cannot be read.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // With no table readable at all, the run fails.
    let out = tree.run(&["-lt4"]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn fifos_as_process_files_leave_the_details_unknown() {
    for file in ["comm", "cmdline", "status"] {
        let tree = Tree::new();
        tree.fifo(&format!("100/{file}"));
        let (listing, stderr) = tree.json();
        let web = holder(&listing, 8080);
        assert_eq!(web["pid"], 100, "{file}: {stderr}");
        let unknown = match file {
            "comm" => "name",
            "status" => "uid",
            _ => "cmdline",
        };
        assert!(web[unknown].is_null(), "{file}: {web}");
    }
}

#[test]
fn a_status_that_does_not_parse_is_a_warning_under_verbose() {
    let tree = Tree::new();
    fs::write(
        tree.root().join("100/status"),
        "Name:\tweb\nUid:\tthirty-three\n",
    )
    .unwrap();
    let (listing, quiet) = tree.json();
    let web = holder(&listing, 8080);
    assert_eq!(
        (web["pid"].as_u64(), web["uid"].as_u64()),
        (Some(100), None)
    );
    assert!(!quiet.contains("status"), "only under -v: {quiet}");
    let out = tree.run(&["-lt", "--json", "-v"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "lsports: warning: {}:2: field Uid",
        tree.root().join("100/status").display()
    );
    assert!(stderr.lines().any(|l| l.starts_with(&want)), "{stderr}");
}

#[test]
fn a_fifo_as_the_host_name_or_port_range_is_skipped() {
    let tree = Tree::new();
    tree.fifo("sys/kernel/hostname");
    fs::create_dir_all(tree.root().join("sys/net/ipv4")).unwrap();
    tree.fifo("sys/net/ipv4/ip_local_port_range");
    let (listing, _) = tree.json();
    assert_eq!(holder(&listing, 8080)["name"], "web");
    // The audit reads both (the host name labels it, the range sorts out client sockets).
    let policy = tree.dir.path().join("policy.toml");
    fs::write(&policy, "[[rule]]\naction = \"allow\"\nport = 8080\n").unwrap();
    let out = tree.run(&["audit", "--policy", policy.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn process_files_linked_outside_the_root_are_not_read() {
    let tree = Tree::new();
    let outside = tree.outside();
    // Absolute, and relative with `..`: both leave the root.
    tree.link("100/comm", &outside.join("comm"));
    tree.link("100/cmdline", Path::new("../../outside/marker"));
    tree.link("100/status", &outside.join("status"));
    let (listing, _) = tree.json();
    let web = holder(&listing, 8080);
    assert_eq!(web["pid"], 100);
    assert!(web["name"].is_null(), "{web}");
    assert!(web["cmdline"].is_null(), "{web}");
    assert!(web["uid"].is_null(), "not 4242 from outside: {web}");
    // /etc/shadow is no file of a proc root either.
    tree.link("100/status", Path::new("/etc/shadow"));
    let (listing, _) = tree.json();
    assert!(holder(&listing, 8080)["uid"].is_null());
}

#[test]
fn a_process_directory_linked_outside_the_root_is_not_walked() {
    let tree = Tree::new();
    // The real holder's directory leads outside, to a look-alike whose comm is the marker.
    tree.link("100", &tree.outside());
    let (listing, stderr) = tree.json();
    let socket = &listing[0];
    assert_eq!(socket["local_port"], 8080);
    assert_eq!(socket["processes"], Value::Array(Vec::new()), "{stderr}");
}

#[test]
fn a_net_directory_linked_outside_the_root_is_not_read() {
    let tree = Tree::new();
    tree.link("net", &tree.outside().join("net"));
    let out = tree.run(&["-lt"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("9999"),
        "the outside table was listed:\n{stdout}"
    );
    assert!(stderr.contains("leads outside the proc root"), "{stderr}");
    assert_ne!(out.status.code(), Some(0));
}
