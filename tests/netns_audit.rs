//! Every network namespace (`--netns all`) through the binary, beyond the listing: audit,
//! baseline, watch, capture and the /proc fallback, each on a private host the test builds
//! (see `common::private_host`) with a listener of the host itself and listeners in other
//! namespaces: a Docker-like container (a nsfs mount under `/run/docker/netns`, a process in
//! a cgroup named as Docker names it, a fake `config.v2.json` under `--state-root`), `ip
//! netns` namespaces and an unnamed one.
//!
//! - A baseline of that host survives the container's re-creation (a new namespace, inode,
//!   sandbox name, container id and cgroup; the same container name); new listeners in the
//!   container and in a named namespace are unexpected, placed in text and JSON; policy rules
//!   match `container` and `netns`; the table names namespace, container and unit.
//! - `watch --netns all` reports a listener opening and closing in another namespace.
//! - `capture --netns all` records every namespace, one only a socket keeps alive too; the
//!   snapshot lists them as live.
//! - A snapshot older than namespaces lists the same with `--netns all`.
//! - Unprivileged, audit and capture of every namespace say what they could not read.
//! - Root of a user namespace, which cannot enter a namespace of the initial one, reads it
//!   from `/proc/PID/net` with what that lacks marked unknown.
//!
//! Needs root (and a cgroup2 mount for the container); skips on a laptop without them, fails
//! under `CI=true`.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;
use serde_json::{Value, json};

const INNER: &str = "LSPORTS_NETNS_AUDIT_INNER";
const FIRST_ID: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SECOND_ID: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#[test]
fn a_docker_host_baseline_survives_a_container_restart_and_new_listeners_are_placed() {
    if cgroup2_mount_as_root("auditing containers").is_none() {
        return;
    }
    run_in_private_host("inner_docker_host", INNER);
}

/// Listeners and the cgroups and mounts they live in; dropped in the right order (processes
/// first, then their cgroups).
struct Host {
    cgroups: PathBuf,
    state: tempfile::TempDir,
    listeners: Vec<(String, Spawned)>,
    dirs: Vec<PathBuf>,
}

impl Host {
    /// A host whose containers' cgroups go under `cgroups` (made with the first container).
    fn new(cgroups: Option<&Path>) -> Host {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Host {
            cgroups: cgroups
                .unwrap_or(Path::new("/nonexistent"))
                .join(format!("lsports-nsaudit-{nanos}")),
            state: tempfile::tempdir().unwrap(),
            listeners: Vec::new(),
            dirs: Vec::new(),
        }
    }

    /// A Docker-like container: its namespace mounted as Docker mounts a sandbox's, its
    /// cgroup, its state file naming it.
    fn container(&mut self, id: &str, sandbox: &str, name: &str) -> (PathBuf, PathBuf) {
        let netns = PathBuf::from(format!("/run/docker/netns/{sandbox}"));
        sh_ok(&format!(
            "mkdir -p /run/docker/netns && touch {0} && unshare --net={0} ip link set lo up",
            netns.display()
        ));
        let mut cgroup = self.cgroups.clone();
        if !cgroup.exists() {
            fs::create_dir(&cgroup).unwrap();
            self.dirs.push(cgroup.clone());
        }
        for part in ["system.slice", &format!("docker-{id}.scope")] {
            cgroup.push(part);
            if !cgroup.exists() {
                fs::create_dir(&cgroup).unwrap();
                self.dirs.push(cgroup.clone());
            }
        }
        put(
            self.state.path(),
            &format!("var/lib/docker/containers/{id}/config.v2.json"),
            &json!({ "Name": format!("/{name}") }).to_string(),
        );
        (netns, cgroup)
    }

    /// Remove a container's namespace mount (its processes must be gone) and cgroup.
    fn remove_container(&mut self, netns: &Path, cgroup: &Path) {
        self.listeners
            .retain(|(ns, _)| ns != &netns.display().to_string());
        sh_ok(&format!("umount {0} && rm {0}", netns.display()));
        wait_until("the container's cgroup to empty", || {
            fs::remove_dir(cgroup).ok()
        });
        self.dirs.retain(|d| d != cgroup);
    }

    /// A TCP listener on 0.0.0.0:`port` in the namespace `netns` (`None`: this one) and the
    /// cgroup `cgroup` (`None`: this one); its socket inode.
    fn listen(&mut self, netns: Option<&Path>, cgroup: Option<&Path>, port: u16) -> u64 {
        let script = listener_script(port);
        let mut cmd = scrubbed("sh");
        cmd.args([
            "-c",
            r#"[ -z "$1" ] || echo $$ > "$1/cgroup.procs" || exit 1
               if [ -n "$2" ]; then exec nsenter --net="$2" python3 -c "$3"; fi
               exec python3 -c "$3""#,
            "sh",
        ])
        .arg(cgroup.map(Path::as_os_str).unwrap_or_default())
        .arg(netns.map(Path::as_os_str).unwrap_or_default())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        let key = netns.map(|p| p.display().to_string()).unwrap_or_default();
        self.start(cmd, key, &format!("the listener on {port}"))
    }

    /// A TCP listener on 0.0.0.0:`port` in the namespace mounted at `netns`, run by nobody;
    /// kept under `key` (see [`Host::stop`]).
    fn listen_as_nobody(&mut self, netns: &Path, port: u16, key: &str) -> u64 {
        let mut cmd = scrubbed("nsenter");
        cmd.arg(format!("--net={}", netns.display()))
            .arg("--")
            .args(AS_NOBODY)
            .args(["python3", "-c", &listener_script(port)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        self.start(cmd, key.into(), &format!("nobody's listener on {port}"))
    }

    /// Stop the listeners kept under `key` (a namespace's path; empty: this namespace's).
    fn stop(&mut self, key: &str) {
        self.listeners.retain(|(k, _)| k != key);
    }

    /// A TCP listener on 0.0.0.0:`port` in a namespace only it keeps alive: made by a child
    /// in a namespace of its own, handed to its parent (in this namespace) over a socketpair
    /// before the child exits; its socket inode.
    fn listen_pinned(&mut self, port: u16) -> u64 {
        let mut cmd = scrubbed("python3");
        cmd.args(["-c", PINNED_LISTENER, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        self.start(
            cmd,
            String::new(),
            &format!("the pinned listener on {port}"),
        )
    }

    /// Start `cmd`, which prints its socket's inode and lives until its stdin closes; kept
    /// under `key` (the namespace's path).
    fn start(&mut self, cmd: std::process::Command, key: String, what: &str) -> u64 {
        let mut child = Spawned::start(cmd, what);
        let mut line = String::new();
        BufReader::new(child.child_mut().stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.listeners.push((key, child));
        line.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{what} did not start: {line:?}"))
    }

    fn lsports(&self, args: &[&str]) -> Output {
        let mut cmd = scrubbed(lsports_bin());
        cmd.arg("--state-root").arg(self.state.path()).args(args);
        output_guarded(cmd, &format!("lsports {}", args.join(" ")))
    }
}

/// A namespace nothing names, kept by a process living in it (killed on drop), and the path
/// of its namespace file.
fn unnamed_namespace() -> (Spawned, PathBuf) {
    let here = netns_inode(Path::new("/proc/self/ns/net"));
    let mut cmd = scrubbed("unshare");
    cmd.args(["--net", "sleep", "infinity"]);
    let holder = Spawned::start(cmd, "an unnamed namespace");
    let path = PathBuf::from(format!("/proc/{}/ns/net", holder.id()));
    wait_until("the unnamed namespace", || {
        (netns_inode(&path) != here).then_some(())
    });
    (holder, path)
}

/// Listens on TCP 0.0.0.0:`port`, prints the socket's inode and lives until stdin closes.
fn listener_script(port: u16) -> String {
    format!(
        "import os,socket,sys\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0',{port})); s.listen()\n\
         print(os.fstat(s.fileno()).st_ino, flush=True)\n\
         sys.stdin.read()\n"
    )
}

/// lsports `args`, run by nobody.
fn as_nobody(args: &[&str]) -> Output {
    let mut cmd = scrubbed(AS_NOBODY[0]);
    cmd.args(&AS_NOBODY[1..]).arg(lsports_bin()).args(args);
    output_guarded(cmd, &format!("(nobody) lsports {}", args.join(" ")))
}

/// Makes the socket of [`Host::listen_pinned`]: a child unshares its network namespace,
/// listens on argv[1] there, passes the socket with SCM_RIGHTS and exits; the parent prints
/// the socket's inode and holds it until its stdin closes.
const PINNED_LISTENER: &str = r#"
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
left, right = socket.socketpair()
if os.fork() == 0:
    try:
        if libc.unshare(0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
        socket.send_fds(right, [b"s"], [s.fileno()])
    finally:
        os._exit(0)
_, fds, _, _ = socket.recv_fds(left, 1, 1)
os.wait()
s = socket.socket(fileno=fds[0])
print(os.fstat(s.fileno()).st_ino, flush=True)
sys.stdin.read()
"#;

impl Drop for Host {
    fn drop(&mut self) {
        self.listeners.clear();
        for dir in self.dirs.iter().rev() {
            for _ in 0..100 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

#[test]
#[ignore = "run inside private namespaces by a_docker_host_baseline_survives_a_container_restart_and_new_listeners_are_placed"]
fn inner_docker_host() {
    if !in_private_host(INNER) {
        return;
    }
    isolate_host();
    let mount = cgroup2_mount_as_root("auditing containers").unwrap();
    let mut host = Host::new(Some(&mount));
    host.listen(None, None, 22);
    let (first_ns, first_cgroup) = host.container(FIRST_ID, "0f1e2d3c4b5a", "web");
    host.listen(Some(&first_ns), Some(&first_cgroup), 8080);
    let first_inode = netns_inode(&first_ns);

    let baseline = host.state.path().join("baseline.toml");
    let baseline_arg = baseline.to_str().unwrap();
    let out = host.lsports(&["--netns", "all", "baseline", "save", baseline_arg]);
    assert_success(&out, &["baseline save"]);
    let text = fs::read_to_string(&baseline).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("proto =")).collect();
    assert_eq!(lines.len(), 2, "one line per listener:\n{text}");
    let host_line = lines.iter().find(|l| l.contains("port = 22,")).unwrap();
    assert!(
        !["container", "netns", "unit"]
            .iter()
            .any(|k| host_line.contains(k)),
        "the host's listener is recorded as before namespaces: {host_line}"
    );
    let web_line = lines.iter().find(|l| l.contains("port = 8080,")).unwrap();
    assert!(web_line.contains(r#"container = "web""#), "{web_line}");
    assert!(!web_line.contains(&first_inode.to_string()), "{web_line}");

    // The container is re-created: a new namespace, sandbox, id and cgroup; the same name.
    // (The new namespace is made while the old one lives: a freed inode can be reused.)
    let (second_ns, second_cgroup) = host.container(SECOND_ID, "9a8b7c6d5e4f", "web");
    host.remove_container(&first_ns, &first_cgroup);
    host.listen(Some(&second_ns), Some(&second_cgroup), 8080);
    assert_ne!(netns_inode(&second_ns), first_inode, "a new namespace");
    let audit = ["--netns", "all", "audit", "--baseline", baseline_arg];
    let out = host.lsports(&audit);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).starts_with("lsports audit: OK: 0 unexpected, 0 missing"));

    // The table of more than one namespace names each row's namespace, container and unit.
    let out = host.lsports(&["--netns", "all", "-tlnp"]);
    assert_success(&out, &["--netns all -tlnp"]);
    let table = stdout(&out);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("Netns ") && header.trim_end().ends_with(" Container  Unit"),
        "{table}"
    );
    let row = table.lines().find(|l| l.contains("0.0.0.0:8080 ")).unwrap();
    assert!(row.starts_with("9a8b7c6d5e4f "), "{table}");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[cells.len() - 2..],
        ["web", &format!("docker-{SECOND_ID}.scope")],
        "{table}"
    );
    let header_of = |args: &[&str]| {
        stdout(&host.lsports(args))
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(
        !header_of(&["-tlnp"]).contains("Container"),
        "one namespace"
    );
    assert_eq!(
        header_of(&["--netns", "all", "-tln", "-o", "proto,local"])
            .split_whitespace()
            .count(),
        3,
        "chosen columns are kept"
    );
    // A filter that leaves one namespace's sockets keeps the column, in the table and CSV: the
    // container's port must not read as the host's, nor a script's columns change with it.
    let filtered = stdout(&host.lsports(&["--netns", "all", "-tln", "--port", "8080"]));
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    assert!(filtered.starts_with("Netns "), "{filtered}");
    assert!(
        filtered
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("9a8b7c6d5e4f "),
        "{filtered}"
    );
    let csv = [
        "--netns", "all", "-tln", "--port", "8080", "--format", "csv",
    ];
    let csv = stdout(&host.lsports(&csv));
    assert!(csv.starts_with("netns,"), "{csv}");

    // New listeners: one in the container, one in an `ip netns` namespace.
    sh_ok("ip netns add w1 && ip -n w1 link set lo up");
    let w1 = PathBuf::from("/run/netns/w1");
    host.listen(Some(&second_ns), Some(&second_cgroup), 9090);
    host.listen(Some(&w1), None, 7000);
    let out = host.lsports(&audit);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = stdout(&out);
    assert!(report.contains("FAIL: 2 unexpected, 0 missing"), "{report}");
    for place in ["0.0.0.0:9090 in container web", "0.0.0.0:7000 in netns w1"] {
        let row = report.lines().find(|l| l.contains(place));
        assert!(
            row.is_some_and(|r| r.contains("python3") && r.ends_with("not in the baseline")),
            "no row for {place}:\n{report}"
        );
    }
    let mut json_args = audit.to_vec();
    json_args.extend(["--format", "json"]);
    let out = host.lsports(&json_args);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid_as(&report, "audit_report", "audit --netns all --format json");
    let unexpected = report["unexpected"].as_array().unwrap();
    let by_port = |port: u16| {
        unexpected
            .iter()
            .map(|u| &u["listener"])
            .find(|l| l["local_port"] == port)
            .unwrap_or_else(|| panic!("no unexpected listener on {port}: {report:#}"))
    };
    let web = by_port(9090);
    assert_eq!(
        web["namespace"],
        json!({"kind": "container", "name": "web"})
    );
    assert_eq!(web["container"]["name"], "web");
    assert_eq!(web["container"]["id"], SECOND_ID);
    assert_eq!(web["netns"]["inode"], netns_inode(&second_ns));
    let named = by_port(7000);
    assert_eq!(named["namespace"], json!({"kind": "netns", "name": "w1"}));
    assert_eq!(
        named["netns"],
        json!({"inode": netns_inode(&w1), "name": "w1"})
    );
    assert_eq!(unexpected.len(), 2, "{report:#}");

    // A policy matches them by container and by namespace name.
    let policy = host.state.path().join("policy.toml");
    fs::write(
        &policy,
        "default = \"deny\"\n\
         [[rule]]\naction = \"allow\"\nport = 22\n\
         [[rule]]\naction = \"allow\"\ncontainer = \"we*\"\nport = [8080, 9090]\n\
         [[rule]]\naction = \"deny\"\nname = \"nothing in w1\"\nnetns = \"w1\"\n",
    )
    .unwrap();
    let args = [
        "--netns",
        "all",
        "audit",
        "--policy",
        policy.to_str().unwrap(),
    ];
    let out = host.lsports(&args);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}{}", stderr(&out));
    assert!(report.contains("FAIL: 1 unexpected"), "{report}");
    let row = report
        .lines()
        .find(|l| l.contains("0.0.0.0:7000 in netns w1"));
    assert!(
        row.is_some_and(|r| r.contains("denied by rule 3 \"nothing in w1\"")),
        "{report}"
    );
}

#[test]
fn watch_reports_opens_and_closes_in_every_namespace() {
    if !is_root() {
        skip_unless_ci("watching every namespace needs root: it makes `ip netns` namespaces");
        return;
    }
    run_in_private_host("inner_watch", INNER);
}

/// A running `lsports watch`, its stdout lines sent over a channel as they come.
struct Watch {
    _child: Spawned,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut cmd = scrubbed(lsports_bin());
        cmd.args(args).stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = Spawned::start(cmd, "lsports watch");
        let stdout = child.child_mut().stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Watch {
            _child: child,
            lines,
        }
    }

    /// The first line that `wanted` accepts, within a minute in all (lines it skips, other
    /// processes' listeners among them, only go in the message if none comes).
    fn until(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("no event {what} ({e}); saw:\n{}", seen.join("\n")),
            }
        }
    }
}

#[test]
#[ignore = "run inside private namespaces by watch_reports_opens_and_closes_in_every_namespace"]
fn inner_watch() {
    if !in_private_host(INNER) {
        return;
    }
    isolate_host();
    let mut host = Host::new(None);
    let here = netns_inode(Path::new("/proc/self/ns/net"));
    host.listen(None, None, 22);
    sh_ok("ip netns add w2 && ip -n w2 link set lo up");
    let w2 = PathBuf::from("/run/netns/w2");
    let w2_inode = netns_inode(&w2);
    let common = ["--netns", "all", "watch", "--interval", "100ms"];
    let json = Watch::start(&[&common[..], &["--format", "jsonl"]].concat());
    let text = Watch::start(&common);
    let event = |line: &str| serde_json::from_str::<Value>(line).unwrap();
    // Kernel events are host-wide: listeners other processes open (other tests running now)
    // come too, so each wait is for this test's own port in its own namespace.
    let is = |kind: &'static str, port: u16, inode: u64| {
        move |line: &str| {
            let e = event(line);
            e["event"] == kind && e["local_port"] == port && e["netns"]["inode"] == inode
        }
    };
    let present = event(&json.until("present on 22", is("present", 22, here)));
    assert_eq!(present["netns"], json!({"inode": here, "name": null}));
    text.until("present on 22", |l| {
        l.contains(&format!("net:[{here}] 0.0.0.0:22"))
    });

    host.listen(Some(&w2), None, 7070);
    let opened = event(&json.until("opened in w2", is("opened", 7070, w2_inode)));
    assert_eq!(opened["netns"], json!({"inode": w2_inode, "name": "w2"}));
    assert_eq!(opened["processes"][0]["name"], "python3");
    let in_w2 = |kind: &'static str| {
        move |l: &str| l.contains(&format!(" {kind} ")) && l.contains("w2 0.0.0.0:7070")
    };
    let line = text.until("opened in w2", in_w2("opened"));
    assert!(line.contains("/python3"), "{line}");

    let w2_key = w2.display().to_string();
    host.listeners.retain(|(ns, _)| *ns != w2_key);
    let closed = event(&json.until("closed in w2", is("closed", 7070, w2_inode)));
    assert_eq!(closed["netns"], json!({"inode": w2_inode, "name": "w2"}));
    text.until("closed in w2", in_w2("closed"));
}

#[test]
fn capture_records_every_namespace_and_the_snapshot_lists_them_as_live() {
    if !is_root() {
        skip_unless_ci("capturing every namespace needs root: it makes `ip netns` namespaces");
        return;
    }
    run_in_private_host("inner_capture", INNER);
}

/// What a listing says of each socket that a snapshot must say alike, sorted.
fn projected(listing: &Value) -> Vec<Value> {
    let mut rows: Vec<Value> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let holders: Vec<Value> = (s["processes"].as_array().unwrap().iter())
                .map(|p| json!([p["pid"], p["name"], p["exe"]]))
                .collect();
            json!([
                s["netns"],
                s["proto"],
                s["family"],
                s["local_addr"],
                s["local_port"],
                s["state"],
                s["inode"],
                s["uid"],
                s["exposure"],
                holders
            ])
        })
        .collect();
    rows.sort_by_key(|r| r.to_string());
    rows
}

#[test]
#[ignore = "run inside private namespaces by capture_records_every_namespace_and_the_snapshot_lists_them_as_live"]
fn inner_capture() {
    if !in_private_host(INNER) {
        return;
    }
    isolate_host();
    let mut host = Host::new(None);
    let here = netns_inode(Path::new("/proc/self/ns/net"));
    host.listen(None, None, 22);
    sh_ok("ip netns add c1 && ip -n c1 link set lo up");
    let c1 = PathBuf::from("/run/netns/c1");
    host.listen(Some(&c1), None, 8080);
    let (unnamed_holder, unnamed) = unnamed_namespace();
    host.listen(Some(&unnamed), None, 5353);
    let pinned_socket = host.listen_pinned(4242);

    let live = host.lsports(&["--netns", "all", "--json", "-tlnp"]);
    assert_success(&live, &["--netns all"]);
    let live = parse_json(&live.stdout);
    let pinned = by_inode(&live, pinned_socket)["netns"]["inode"].clone();
    assert!(
        ![
            json!(here),
            json!(netns_inode(&c1)),
            json!(netns_inode(&unnamed))
        ]
        .contains(&pinned),
        "the pinned listener is in a namespace of its own: {live:#}"
    );
    let snapshot = host.state.path().join("all.tar");
    let snapshot_arg = snapshot.to_str().unwrap();
    let out = host.lsports(&["--netns", "all", "capture", snapshot_arg]);
    assert_success(&out, &["capture"]);
    let summary = stderr(&out);
    assert!(
        summary.contains("in 4 network namespaces") && !summary.contains(';'),
        "every namespace captured, nothing left out: {summary}"
    );
    let opened = host.lsports(&[
        "--snapshot",
        snapshot_arg,
        "--netns",
        "all",
        "--json",
        "-tlnp",
    ]);
    assert_success(&opened, &["--snapshot --netns all"]);
    let opened = parse_json(&opened.stdout);
    assert_eq!(projected(&opened), projected(&live));
    let namespaces: std::collections::BTreeSet<String> = (opened.as_array().unwrap().iter())
        .map(|s| s["netns"].to_string())
        .collect();
    let expected: std::collections::BTreeSet<String> = [
        json!({"inode": here, "name": null}),
        json!({"inode": netns_inode(&c1), "name": "c1"}),
        json!({"inode": netns_inode(&unnamed), "name": null}),
        json!({"inode": pinned, "name": null}),
    ]
    .iter()
    .map(Value::to_string)
    .collect();
    assert_eq!(namespaces, expected);

    // Without --netns all, the snapshot lists the capture's own namespace, as live.
    let own = host.lsports(&["--snapshot", snapshot_arg, "--json", "-tlnp"]);
    let live_own = host.lsports(&["--json", "-tlnp"]);
    assert_eq!(
        projected(&parse_json(&own.stdout)),
        projected(&parse_json(&live_own.stdout))
    );
    drop(unnamed_holder);
}

#[test]
fn root_in_a_user_namespace_reads_a_namespace_it_cannot_enter_from_proc() {
    if !is_root() {
        skip_unless_ci("making user namespaces with the host's root mapped needs root");
        return;
    }
    run_in_private_host("inner_userns", INNER);
}

#[test]
#[ignore = "run inside private namespaces by root_in_a_user_namespace_reads_a_namespace_it_cannot_enter_from_proc"]
fn inner_userns() {
    if !in_private_host(INNER) {
        return;
    }
    isolate_host();
    sh_ok("ip netns add u1 && ip -n u1 link set lo up");
    let u1 = PathBuf::from("/run/netns/u1");
    // A process of a user namespace of its own (root in it), living in `u1`, which belongs to
    // the initial user namespace: root of that user namespace cannot enter `u1` (setns needs
    // CAP_SYS_ADMIN over its owner), but can read its process's /proc/PID/net.
    let script = "import os,socket,sys\n\
        s=socket.socket(); s.bind(('0.0.0.0',7001)); s.listen()\n\
        print(os.getpid(), os.fstat(s.fileno()).st_ino, flush=True)\n\
        sys.stdin.read()\n";
    let mut cmd = scrubbed("nsenter");
    cmd.arg(format!("--net={}", u1.display()))
        .args([
            "--",
            "unshare",
            "--user",
            "--map-root-user",
            "python3",
            "-c",
            script,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut listener = Spawned::start(cmd, "a listener in a user namespace");
    let mut line = String::new();
    BufReader::new(listener.child_mut().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fields: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    let [pid, inode] = fields[..] else {
        panic!("the listener did not start: {line:?}")
    };

    // The truth, as real root reads it (entering u1, over sock_diag: not answered from the
    // BPF walk's socket records, which would say "bpf").
    let entered = parse_json(
        &output_guarded(
            {
                let mut cmd = scrubbed(lsports_bin());
                cmd.args(["--netns", "all", "-tlnp", "--json"])
                    .env("LSPORTS_NETNS_DUMP", "all");
                cmd
            },
            "lsports as root",
        )
        .stdout,
    );
    let truth = by_inode(&entered, inode);
    assert_eq!(truth["source"], "netlink");

    // Root of the listener's user namespace.
    let mut cmd = scrubbed("nsenter");
    cmd.args(["--user", "-t", &pid.to_string(), "--"])
        .arg(lsports_bin())
        .args(["--netns", "all", "-tlnp", "--json"]);
    let out = output_guarded(cmd, "lsports as root of a user namespace");
    assert_success(&out, &["--netns all (user namespace)"]);
    let listing = parse_json(&out.stdout);
    let socket = by_inode(&listing, inode);
    assert_eq!(
        socket["netns"],
        json!({"inode": netns_inode(&u1), "name": "u1"})
    );
    assert_eq!(
        socket["source"], "proc",
        "read from /proc/{pid}/net: {socket:#}"
    );
    let unknown = socket["unknown_fields"].as_array().unwrap();
    assert!(
        !unknown.is_empty(),
        "what /proc/net lacks is marked: {socket:#}"
    );
    assert!(socket["send_q"].is_null(), "{socket:#}");
    for same in ["proto", "local_addr", "local_port", "state", "uid"] {
        assert_eq!(socket[same], truth[same], "{same}");
    }
    assert_eq!(
        json_pids(socket),
        [pid as u32],
        "its holder is visible: {socket:#}"
    );
    drop(listener);
}

#[test]
fn unprivileged_audit_and_capture_of_every_namespace_say_what_they_could_not_read() {
    if !is_root() {
        skip_unless_ci("the unprivileged side needs root to build namespaces to be refused");
        return;
    }
    run_in_private_host("inner_unprivileged", INNER);
}

#[test]
#[ignore = "run inside private namespaces by unprivileged_audit_and_capture_of_every_namespace_say_what_they_could_not_read"]
fn inner_unprivileged() {
    if !in_private_host(INNER) {
        return;
    }
    isolate_host();
    let mut host = Host::new(None);
    host.listen(None, None, 22);
    sh_ok("ip netns add n1 && ip -n n1 link set lo up");
    host.listen(Some(Path::new("/run/netns/n1")), None, 8080);
    let dir = tempfile::tempdir().unwrap();
    sh_ok(&format!("chmod 0777 {}", dir.path().display()));

    // Audit: the host's listener is judged, n1's cannot be read, and one line says so.
    let policy = dir.path().join("policy.toml");
    fs::write(&policy, "default = \"allow\"\n").unwrap();
    let out = as_nobody(&[
        "--netns",
        "all",
        "audit",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("(1 listener;"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "network namespaces not read: entering another network namespace needs CAP_SYS_ADMIN"
        ),
        "{}",
        stderr(&out)
    );

    // Audit against root's baseline: nobody sees the host's listener on 22 but not its holder
    // (root's), so the program the baseline expects is "not checked", never "changed".
    let baseline = dir.path().join("root.toml");
    let saved = host.lsports(&["baseline", "save", "-t", baseline.to_str().unwrap()]);
    assert_success(&saved, &["baseline save"]);
    sh_ok(&format!("chmod 0644 {}", baseline.display()));
    let args = ["audit", "-t", "--fail-on", "missing", "--baseline"];
    let audit = |file: &Path, json: bool| {
        let file = file.to_str().unwrap();
        let json = if json { &["--json"][..] } else { &[][..] };
        as_nobody(&[&args[..], &[file], json].concat())
    };
    let out = audit(&baseline, false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report = stdout(&out);
    assert!(
        report.contains("0 unexpected, 0 missing, 0 suspicious, 1 not checked")
            && report.contains(
                "Not checked, reported only: something listens there, but the process holding \
                 it could not be inspected"
            ),
        "{report}"
    );
    let report: Value = serde_json::from_slice(&audit(&baseline, true).stdout).unwrap();
    assert_eq!(ports_of(&report, "not_checked"), [22], "{report:#}");
    assert_eq!(report["unexpected"], json!([]), "{report:#}");
    // Owned by another user than the baseline's, the same place is a change all the same.
    let other = dir.path().join("other.toml");
    let text = fs::read_to_string(&baseline).unwrap();
    assert!(text.contains("user = \"root\""), "{text}");
    fs::write(&other, text.replace("user = \"root\"", "user = \"daemon\"")).unwrap();
    sh_ok(&format!("chmod 0644 {}", other.display()));
    let report: Value = serde_json::from_slice(&audit(&other, true).stdout).unwrap();
    assert_eq!(
        report["unexpected"][0]["reasons"][0]["reason"], "changed",
        "{report:#}"
    );
    assert_eq!(
        ports_of(&report, "not_checked"),
        Vec::<u64>::new(),
        "{report:#}"
    );

    // Capture: the own namespace only, and the summary says which one was not captured.
    let snapshot = dir.path().join("nobody.tar");
    let snapshot_arg = snapshot.to_str().unwrap();
    let out = as_nobody(&["--netns", "all", "capture", snapshot_arg]);
    assert_success(&out, &["(nobody) capture"]);
    let n1 = netns_inode(Path::new("/run/netns/n1"));
    assert!(
        stderr(&out).contains(&format!("network namespace {n1} not captured")),
        "{}",
        stderr(&out)
    );
    let listed = host.lsports(&[
        "--snapshot",
        snapshot_arg,
        "--netns",
        "all",
        "--json",
        "-tln",
    ]);
    let listed = parse_json(&listed.stdout);
    let ports: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["local_port"])
        .collect();
    assert_eq!(ports, [&json!(22)], "{listed:#}");
}

#[test]
fn an_audit_tells_listeners_gone_from_listeners_it_could_not_look_for() {
    if !is_root() {
        skip_unless_ci("the audit's namespaces are made, and refused to nobody, by root");
        return;
    }
    run_in_private_host("inner_not_checked", INNER);
}

/// Root's audit (`args`, a JSON audit) of the snapshot `snapshot`: its exit code and report.
fn snapshot_audit(host: &Host, snapshot: &str, args: &[&str]) -> (Option<i32>, Value) {
    let args = [&["--snapshot", snapshot][..], args].concat();
    let out = host.lsports(&args);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code(), report)
}

/// The ports of a JSON audit report's `section`, sorted.
fn ports_of(report: &Value, section: &str) -> Vec<u64> {
    let mut ports: Vec<u64> = (report[section].as_array().unwrap().iter())
        .map(|m| m["port"].as_u64().unwrap())
        .collect();
    ports.sort_unstable();
    ports
}

/// What a root-made baseline of five namespaces tells, audited by nobody (who reads only the
/// host's and the one nobody's processes live in) and by root after a namespace is deleted.
#[test]
#[ignore = "run inside private namespaces by an_audit_tells_listeners_gone_from_listeners_it_could_not_look_for"]
fn inner_not_checked() {
    if !in_private_host(INNER) {
        return;
    }
    isolate_host();
    let mut host = Host::new(None);
    sh_ok(&format!("chmod 0755 {}", host.state.path().display()));
    // The host's listener is nobody's: nobody sees its holder, as the baseline does.
    host.listen_as_nobody(Path::new("/proc/1/ns/net"), 2222, "");
    let path = |n: &str| PathBuf::from(format!("/run/netns/{n}"));
    for n in ["n1", "n2", "n3"] {
        sh_ok(&format!("ip netns add {n} && ip -n {n} link set lo up"));
    }
    host.listen(Some(&path("n1")), None, 8081);
    host.listen(Some(&path("n2")), None, 8082);
    host.listen_as_nobody(&path("n3"), 8083, "n3 a");
    host.listen_as_nobody(&path("n3"), 8084, "n3 b");
    let (unnamed_holder, unnamed) = unnamed_namespace();
    host.listen(Some(&unnamed), None, 5353);
    let baseline = host.state.path().join("baseline.toml");
    let baseline_arg = baseline.to_str().unwrap();
    let out = host.lsports(&["--netns", "all", "baseline", "save", baseline_arg]);
    assert_success(&out, &["baseline save"]);
    sh_ok(&format!("chmod 0644 {baseline_arg}"));
    let audit = ["--netns", "all", "audit", "--baseline", baseline_arg];
    let strict = [&audit[..], &["--fail-on", "missing"]].concat();
    let json = [&strict[..], &["--format", "json"]].concat();

    // Nobody cannot read n1, n2 (mounts only) nor find the unnamed one (root's process): their
    // listeners are not checked, and the audit passes even with --fail-on missing. Nor can it
    // read the firewall rules: the reach root's baseline recorded for nobody's own three
    // listeners is not checked either.
    let out = as_nobody(&strict);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{report}{}", stderr(&out));
    assert!(
        report.starts_with(
            "lsports audit: OK: 0 unexpected, 0 missing, 0 suspicious, 6 not checked (3 listeners;"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "\nNot checked, reported only: the listener is there as expected, but the reach \
             through the firewall its line records could not be told"
        ),
        "{report}"
    );
    assert!(
        report.contains("\nNot checked, reported only: their network namespace could not be read"),
        "{report}"
    );
    for place in [
        "0.0.0.0:8081 in netns n1",
        "0.0.0.0:8082 in netns n2",
        "0.0.0.0:5353 in an unnamed netns",
    ] {
        assert!(report.contains(place), "{place} not checked in\n{report}");
    }
    let out = as_nobody(&json);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid_as(&report, "audit_report", "unprivileged audit --format json");
    assert_eq!(
        ports_of(&report, "not_checked"),
        [2222, 5353, 8081, 8082, 8083, 8084],
        "{report:#}"
    );
    assert_eq!(ports_of(&report, "missing"), [] as [u64; 0], "{report:#}");
    assert!(report["not_checked"][0]["fails"] == false, "{report:#}");

    // Nobody's capture records what it could not read: root's audit of that snapshot says
    // "not checked" for the same listeners, never "missing" (and, as a snapshot records no
    // firewall rules, not checked for the reach of those it has).
    let drop_box = host.state.path().join("nobody");
    sh_ok(&format!("mkdir -m 0777 {}", drop_box.display()));
    let nobody_snapshot = drop_box.join("nobody.tar");
    let nobody_snapshot = nobody_snapshot.to_str().unwrap();
    assert_success(
        &as_nobody(&["--netns", "all", "capture", nobody_snapshot]),
        &["(nobody) capture"],
    );
    let (code, report) = snapshot_audit(&host, nobody_snapshot, &json);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(ports_of(&report, "missing"), [] as [u64; 0], "{report:#}");
    assert_eq!(
        ports_of(&report, "not_checked"),
        [2222, 5353, 8081, 8082, 8083, 8084],
        "{report:#}"
    );

    // A namespace nobody read (n3, from its processes' /proc/PID/net) and the host lost a
    // listener each: missing, and failing, for nobody as for root.
    host.stop("n3 b");
    host.stop("");
    let out = as_nobody(&json);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ports_of(&report, "missing"), [2222, 8084], "{report:#}");
    assert_eq!(
        ports_of(&report, "not_checked"),
        [5353, 8081, 8082, 8083],
        "{report:#}"
    );

    // Root, after n2 is deleted with its listener: a namespace that is gone took its
    // listeners with it, so they are missing; nothing is left unchecked.
    host.stop(&path("n2").display().to_string());
    sh_ok("ip netns delete n2");
    let out = host.lsports(&json);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        ports_of(&report, "missing"),
        [2222, 8082, 8084],
        "{report:#}{}",
        stderr(&out)
    );
    assert_eq!(
        ports_of(&report, "not_checked"),
        [] as [u64; 0],
        "{report:#}"
    );
    // Root's capture found every namespace there was: its snapshot's audit knows n2 is gone.
    // It records no firewall rules: the reach of the listeners left is not checked.
    let root_snapshot = host.state.path().join("root.tar");
    let root_snapshot = root_snapshot.to_str().unwrap();
    assert_success(
        &host.lsports(&["--netns", "all", "capture", root_snapshot]),
        &["capture"],
    );
    let (code, report) = snapshot_audit(&host, root_snapshot, &json);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        ports_of(&report, "missing"),
        [2222, 8082, 8084],
        "{report:#}"
    );
    assert_eq!(
        ports_of(&report, "not_checked"),
        [5353, 8081, 8083],
        "{report:#}"
    );

    // Root without --netns all looked only at the host: the rest is not checked, and says
    // how to check it.
    let out = host.lsports(&["audit", "--baseline", baseline_arg, "--fail-on", "missing"]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("1 missing, 0 suspicious, 5 not checked"),
        "{report}"
    );
    assert!(
        report.contains("Not checked, reported only: this audit did not list their network namespace (audit with --netns all to check them)"),
        "{report}"
    );
    drop(unnamed_holder);
}

/// A snapshot captured before lsports recorded namespaces lists its tables with `--netns
/// all` as without it, each socket of unknown namespace.
#[test]
fn an_older_snapshot_lists_the_same_with_netns_all() {
    let snapshot =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/netns-world-root.tar");
    let snapshot = snapshot.to_str().unwrap();
    let list = |extra: &[&str]| {
        let mut args = vec!["--snapshot", snapshot, "-tulnp", "--json"];
        args.extend_from_slice(extra);
        let out = run_host(&args);
        assert_success(&out, &args);
        parse_json(&out.stdout)
    };
    let plain = list(&[]);
    assert!(!plain.as_array().unwrap().is_empty());
    assert!(
        plain
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["netns"].is_null())
    );
    assert_eq!(list(&["--netns", "all"]), plain);
}

/// A hostile snapshot naming thousands of namespaces is refused at the named limit, and leaves
/// nothing behind.
#[test]
fn a_snapshot_with_too_many_namespaces_is_refused_at_the_limit() {
    let mut archive = TarBuilder::new().tcp();
    for inode in 1..=4097 {
        archive = archive.file(&format!("proc/netns/{inode}/name"), b"x");
    }
    let error = lsports::snapshot::open_reader(&archive.bytes()[..], Path::new("many.tar"))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the number of network namespaces exceeds the limit of 4096 namespaces"),
        "{error}"
    );
}
