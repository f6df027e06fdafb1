//! Audit and baseline across network namespaces (`--netns all`), end to end through the
//! binary, on a private host the test builds (see `common::private_host`): a listener of the
//! host itself, a Docker-like container (a nsfs mount under `/run/docker/netns`, a process in
//! a cgroup named as Docker names it, a fake `config.v2.json` under `--state-root`) and an
//! `ip netns` namespace.
//!
//! - A baseline of that host survives the container's re-creation: a new namespace (new
//!   inode, new sandbox name), a new container id and cgroup, the same container name.
//! - A new listener in the container and one in the named namespace are unexpected, and the
//!   report says where each is, in text and in JSON.
//! - Policy rules match `container` and `netns`.
//!
//! Needs root and a cgroup2 mount; skips on a laptop without them, fails under `CI=true`.

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
    fn new() -> Host {
        let mount = cgroup2_mount_as_root("auditing containers").unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let cgroups = mount.join(format!("lsports-nsaudit-{nanos}"));
        fs::create_dir(&cgroups).unwrap();
        Host {
            cgroups: cgroups.clone(),
            state: tempfile::tempdir().unwrap(),
            listeners: Vec::new(),
            dirs: vec![cgroups],
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
        let script = format!(
            "import os,socket,sys\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('0.0.0.0',{port})); s.listen()\n\
             print(os.fstat(s.fileno()).st_ino, flush=True)\n\
             sys.stdin.read()\n"
        );
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
        let mut child = Spawned::start(cmd, &format!("a listener on {port}"));
        let mut line = String::new();
        BufReader::new(child.child_mut().stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let key = netns.map(|p| p.display().to_string()).unwrap_or_default();
        self.listeners.push((key, child));
        line.trim()
            .parse()
            .unwrap_or_else(|_| panic!("the listener on {port} did not start: {line:?}"))
    }

    fn lsports(&self, args: &[&str]) -> Output {
        let mut cmd = scrubbed(lsports_bin());
        cmd.arg("--state-root").arg(self.state.path()).args(args);
        output_guarded(cmd, &format!("lsports {}", args.join(" ")))
    }
}

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
    let mut host = Host::new();
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
    host.remove_container(&first_ns, &first_cgroup);
    let (second_ns, second_cgroup) = host.container(SECOND_ID, "9a8b7c6d5e4f", "web");
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
