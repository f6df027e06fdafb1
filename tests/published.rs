//! Published ports end to end (`--published`), against the kernel: three private network
//! namespaces — a host, a container and an outside, joined by veth pairs, the host routing —
//! with Docker's rules for two published ports loaded in the host by `iptables-nft-restore`
//! (`-A DOCKER ! -i vc -p tcp --dport 8080 -j DNAT --to-destination C:80`, and 8081 → C:81)
//! and a native nftables one (`iifname "vo" tcp dport 9090 dnat to C:80`),
//! a python listener on C:80 and C:82 in a cgroup named as Docker names a container's
//! (`docker-<id>.scope`, its name `web` in a fake `/var/lib/docker` under `--state-root`), a
//! fake `docker-proxy` in the host (a python process whose argument area reads `docker-proxy
//! -proto tcp … -host-port 8082 -container-ip C -container-port 82`) listening on 8082, and
//! one with hostile arguments.
//!
//! A probe from outside decides the truth: 8080 reaches the container's listener, 8081 is
//! refused by the container's kernel (forwarded, nothing listens), 8082 reaches the proxy,
//! 9090 reaches the container, 8084 times out (a `DOCKER-USER` drop in the forward hook).
//! lsports, run in the host with `--netns all`, must list each as a row joined to the
//! container's listener (or flagged without one), never contradict the probe with its reach
//! verdict, refuse the hostile proxy with its arguments escaped, and say "not seen" rather
//! than flag when it was not asked to look in other namespaces. Unprivileged, the rules are
//! unreadable (said on stderr) and the proxy's row remains.
//!
//! Needs root, iptables-nft-restore, nft, ip, nsenter, unshare and a cgroup2 mount; under
//! `CI=true` a missing one is a failure.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use serde_json::{Value, json};

use common::{
    assert_success, assert_terminal_safe, assert_valid, cgroup2_mount_as_root, have, lsports_bin,
    need_root, output_guarded, parse_json, put, scrubbed, skip_unless_ci, stderr,
};

const WEB: &str = "7777777777777777777777777777777777777777777777777777777777777777";

/// The three namespaces (each held by a sleeping process), the cgroup, and the processes;
/// on drop every process is killed (the namespaces and veths go with their holders) and the
/// cgroups removed.
struct Lab {
    holders: Vec<Child>,
    children: Vec<Child>,
    cgroups: Vec<PathBuf>,
    /// The second octet of this lab's addresses: 10.N.1.0/24 host–container, 10.N.2.0/24
    /// host–outside.
    net: u32,
    state: tempfile::TempDir,
}

impl Lab {
    fn ns(&self, i: usize) -> String {
        format!("--net=/proc/{}/ns/net", self.holders[i].id())
    }

    fn host(&self) -> String {
        self.ns(0)
    }

    fn container_ip(&self) -> String {
        format!("10.{}.1.2", self.net)
    }

    fn host_outside_ip(&self) -> String {
        format!("10.{}.2.1", self.net)
    }

    /// The nsfs inode of namespace `i`.
    fn inode(&self, i: usize) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(format!("/proc/{}/ns/net", self.holders[i].id()))
            .unwrap()
            .ino()
    }

    /// Start `python3 -c code args…` in namespace `ns` (and `cgroup`, if given); the first
    /// line it prints.
    fn python(&mut self, ns: usize, cgroup: Option<&Path>, code: &str, args: &[&str]) -> String {
        let cgroup = cgroup.map_or(String::new(), |c| c.display().to_string());
        let mut cmd = scrubbed("sh");
        cmd.args([
            "-c",
            "[ -z \"$1\" ] || echo $$ > \"$1/cgroup.procs\"; n=$2; c=$3; shift 3; \
             exec nsenter \"$n\" python3 -c \"$c\" \"$@\"",
            "sh",
        ])
        .arg(cgroup)
        .arg(self.ns(ns))
        .arg(code)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.children.push(child);
        line.trim().to_string()
    }

    /// lsports in the host namespace, as root or (`nobody`) unprivileged.
    fn lsports(&self, args: &[&str], nobody: bool) -> Output {
        let mut cmd = scrubbed("nsenter");
        cmd.arg(self.host());
        if nobody {
            cmd.args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ]);
        }
        cmd.arg(lsports_bin())
            .arg("--state-root")
            .arg(self.state.path())
            .args(args);
        let out = output_guarded(cmd, &format!("lsports {}", args.join(" ")));
        assert_success(&out, args);
        out
    }

    /// Connect from outside to the host's `port`: `Ok` when accepted, `Err` with the reason.
    fn probe(&self, port: u16) -> Result<(), String> {
        let code = "import socket,sys\n\
            try:\n  socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close(); print('ok')\n\
            except Exception as e:\n  print(type(e).__name__)\n";
        let out = scrubbed("nsenter")
            .arg(self.ns(2))
            .args([
                "python3",
                "-c",
                code,
                &self.host_outside_ip(),
                &port.to_string(),
            ])
            .output()
            .unwrap();
        match String::from_utf8_lossy(&out.stdout).trim() {
            "ok" => Ok(()),
            other => Err(other.to_string()),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in self.children.iter_mut().chain(self.holders.iter_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in self.cgroups.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Docker's rules (moby's bridge driver, `docker0` being `vc` here) for 8080 → C:80,
/// 8081 → C:81 and 8084 → C:84, and a `DOCKER-USER` rule dropping what is forwarded to port
/// 84 (the rule Docker's documentation gives for filtering published ports).
fn docker_rules(c: &str) -> String {
    format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n\
         -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
         -A DOCKER -i vc -j RETURN\n\
         -A DOCKER ! -i vc -p tcp -m tcp --dport 8080 -j DNAT --to-destination {c}:80\n\
         -A DOCKER ! -i vc -p tcp -m tcp --dport 8081 -j DNAT --to-destination {c}:81\n\
         -A DOCKER ! -i vc -p tcp -m tcp --dport 8084 -j DNAT --to-destination {c}:84\n\
         COMMIT\n\
         *filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n\
         :DOCKER-USER - [0:0]\n\
         -A FORWARD -j DOCKER-USER\n\
         -A FORWARD -o vc -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A FORWARD -o vc -j DOCKER\n\
         -A FORWARD -i vc ! -o vc -j ACCEPT\n\
         -A DOCKER -d {c}/32 ! -i vc -o vc -p tcp -m tcp --dport 80 -j ACCEPT\n\
         -A DOCKER -d {c}/32 ! -i vc -o vc -p tcp -m tcp --dport 81 -j ACCEPT\n\
         -A DOCKER -d {c}/32 ! -i vc -o vc -p tcp -m tcp --dport 84 -j ACCEPT\n\
         -A DOCKER-USER -p tcp -m tcp --dport 84 -j DROP\n\
         -A DOCKER-USER -j RETURN\n\
         COMMIT\n"
    )
}

/// Listen on every port of argv (TCP, 0.0.0.0), print the sockets' inodes, then accept and
/// close connections until stdin closes.
const LISTENER: &str = "import os,socket,sys,threading\n\
    ss=[]\n\
    for p in sys.argv[1:]:\n  s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('0.0.0.0',int(p))); s.listen(); ss.append(s)\n\
    print(' '.join(str(os.fstat(s.fileno()).st_ino) for s in ss), flush=True)\n\
    def serve(s):\n  while True: s.accept()[0].close()\n\
    for s in ss: threading.Thread(target=serve,args=(s,),daemon=True).start()\n\
    sys.stdin.read()\n";

/// A process that rewrites its argument area to the words of argv[2:] (what `ps` and
/// `/proc/PID/cmdline` then show: `python3 -c CODE …` leaves room enough), listens on
/// argv[1] (if not 0), prints its pid.
const FAKE_PROXY: &str = "import os,socket,sys\n\
    words=[w.encode('utf-8','surrogateescape') for w in sys.argv[2:]]\n\
    port=int(sys.argv[1])\n\
    stat=open('/proc/self/stat','rb').read(); f=stat[stat.rindex(b')')+2:].split()\n\
    start,end=int(f[45]),int(f[46]); data=b''.join(w+b'\\0' for w in words)\n\
    assert len(data)<=end-start\n\
    m=open('/proc/self/mem','r+b',buffering=0); m.seek(start); m.write(data+b'\\0'*(end-start-len(data))); m.close()\n\
    if port:\n  s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('0.0.0.0',port)); s.listen()\n\
    print(os.getpid(), flush=True)\n\
    sys.stdin.read()\n";

fn lab() -> Option<Lab> {
    let mount = cgroup2_mount_as_root("the published-ports lab")?;
    for tool in [
        "iptables-nft-restore",
        "ip",
        "nsenter",
        "unshare",
        "setpriv",
    ] {
        if !have(tool) {
            skip_unless_ci(&format!("the published-ports lab needs {tool}"));
            return None;
        }
    }
    let mut holders = Vec::new();
    for _ in 0..3 {
        // It says so once it is in its own namespace: before that, /proc/PID/ns/net is
        // still this one, and the lab would be built in the host's.
        let mut holder = scrubbed("unshare")
            .args(["--net", "sh", "-c", "echo in; exec sleep infinity"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare --net");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        holders.push(holder);
        assert_eq!(line, "in\n", "unshare --net did not start");
    }
    // One lab per test, and the tests of this file run in parallel in one process.
    static LABS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = LABS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let state = tempfile::tempdir().unwrap();
    put(
        state.path(),
        &format!("var/lib/docker/containers/{WEB}/config.v2.json"),
        &json!({"Name": "/web"}).to_string(),
    );
    let mut lab = Lab {
        holders,
        children: Vec::new(),
        cgroups: Vec::new(),
        net: 20 + (std::process::id() * 4 + n) % 200,
        state,
    };
    let parent = mount.join(format!("lsports-published-{}-{n}", std::process::id()));
    let scope = parent.join(format!("docker-{WEB}.scope"));
    for dir in [&parent, &scope] {
        fs::create_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        lab.cgroups.push(dir.clone());
    }
    let own = fs::metadata("/proc/self/ns/net").unwrap();
    for i in 0..3 {
        use std::os::unix::fs::MetadataExt;
        assert_ne!(lab.inode(i), own.ino(), "namespace {i} is not private");
    }
    let n = lab.net;
    let (h, c, o) = (lab.ns(0), lab.ns(1), lab.ns(2));
    let (cpid, opid) = (lab.holders[1].id(), lab.holders[2].id());
    let script = format!(
        "set -e\n\
         nsenter {h} ip link add vc type veth peer name eth0 netns {cpid}\n\
         nsenter {h} ip link add vo type veth peer name eth0 netns {opid}\n\
         nsenter {h} ip link set lo up\n\
         nsenter {h} ip addr add 10.{n}.1.1/24 dev vc\n nsenter {h} ip link set vc up\n\
         nsenter {h} ip addr add 10.{n}.2.1/24 dev vo\n nsenter {h} ip link set vo up\n\
         nsenter {h} sysctl -qw net.ipv4.ip_forward=1\n\
         for ns in '{c} 1' '{o} 2'; do set -- $ns\n\
           nsenter $1 ip link set lo up\n\
           nsenter $1 ip addr add 10.{n}.$2.2/24 dev eth0\n nsenter $1 ip link set eth0 up\n\
           nsenter $1 ip route add default via 10.{n}.$2.1\n\
         done\n"
    );
    let out = scrubbed("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "lab setup: {}", stderr(&out));
    let mut restore = scrubbed("nsenter");
    restore
        .args([h.as_str(), "iptables-nft-restore"])
        .stdin(Stdio::piped());
    let rules = docker_rules(&lab.container_ip());
    let out = common::output_with_input(restore, Some(rules.as_bytes()), "iptables-nft-restore");
    if !out.status.success() {
        skip_unless_ci(&format!("iptables-nft-restore refused: {}", stderr(&out)));
        return None;
    }
    // Beside Docker's, a port published by a native nftables rule: 9090 → C:80.
    let mut nft = scrubbed("nsenter");
    nft.args([h.as_str(), "nft", "-f", "-"])
        .stdin(Stdio::piped());
    let table = format!(
        "table ip lab {{\n chain pre {{\n  type nat hook prerouting priority dstnat; policy accept;\n  \
         iifname \"vo\" tcp dport 9090 dnat to {}:80\n }}\n}}\n",
        lab.container_ip()
    );
    let out = common::output_with_input(nft, Some(table.as_bytes()), "nft -f");
    assert!(out.status.success(), "nft -f: {}", stderr(&out));
    Some(lab)
}

/// The published row of this lab with this host port (other labs, and the host, may run
/// docker-proxies of their own).
fn row<'a>(listing: &'a Value, lab: &Lab, port: u16) -> &'a Value {
    let target = lab.container_ip();
    listing
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["kind"] == "published"
                && r["local_port"] == port
                && r["published"]["target_addr"] == target
        })
        .unwrap_or_else(|| panic!("no published row for {port} in {listing:#}"))
}

/// The rows of the published ports this lab made (the host may run other docker-proxies).
fn ours(listing: &Value, lab: &Lab) -> Vec<u64> {
    let target = lab.container_ip();
    let mut ports: Vec<u64> = listing
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "published" && r["published"]["target_addr"] == target)
        .map(|r| r["local_port"].as_u64().unwrap())
        .collect();
    ports.sort();
    ports
}

#[test]
fn published_ports_join_the_container_listener_and_agree_with_a_probe() {
    let Some(mut lab) = lab() else { return };
    let c = lab.container_ip();
    let scope = lab.cgroups[1].clone();
    let inodes = lab.python(1, Some(&scope), LISTENER, &["80", "82", "84"]);
    let inodes: Vec<u64> = inodes.split(' ').map(|i| i.parse().unwrap()).collect();
    let proxy_args = [
        "8082",
        "/usr/bin/docker-proxy",
        "-proto",
        "tcp",
        "-host-ip",
        "0.0.0.0",
        "-host-port",
        "8082",
        "-container-ip",
        &c,
        "-container-port",
        "82",
    ];
    let proxy: u32 = lab
        .python(0, None, FAKE_PROXY, &proxy_args)
        .parse()
        .unwrap();
    let hostile: u32 = lab
        .python(
            0,
            None,
            FAKE_PROXY,
            &[
                "0",
                "docker-proxy",
                "-host-port",
                "8083",
                "-container-ip",
                "\u{1b}[31mevil\u{7}",
                "-container-port",
                "80",
            ],
        )
        .parse()
        .unwrap();

    // The truth, from outside.
    assert_eq!(lab.probe(8080), Ok(()), "8080 reaches the container");
    assert_eq!(
        lab.probe(8081),
        Err("ConnectionRefusedError".into()),
        "8081 is forwarded to a port nothing listens on"
    );
    assert_eq!(lab.probe(8082), Ok(()), "8082 reaches the proxy");
    assert_eq!(lab.probe(9090), Ok(()), "9090 reaches the container");
    assert_eq!(
        lab.probe(8084),
        Err("TimeoutError".into()),
        "DOCKER-USER drops what 8084 forwards"
    );

    let out = lab.lsports(&["--netns", "all", "--published", "--json"], false);
    let listing = parse_json(&out.stdout);
    assert_valid(&listing, "lsports --netns all --published --json");
    assert_eq!(
        ours(&listing, &lab),
        [8080, 8081, 8082, 8084, 9090],
        "{listing:#}"
    );

    let web = row(&listing, &lab, 8080);
    assert_eq!(
        (&web["proto"], &web["local_addr"], &web["state"]),
        (&json!("tcp"), &json!("0.0.0.0"), &json!("PUBLISHED"))
    );
    let published = &web["published"];
    // Published in the host's namespace; it lands in the container's.
    assert_eq!(web["netns"]["inode"], lab.inode(0));
    assert_eq!(published["target_addr"], c);
    assert_eq!(published["target_port"], 80);
    assert_eq!(published["by"][0]["kind"], "dnat");
    let rule = published["by"][0]["text"].as_str().unwrap();
    assert!(
        rule.contains(&format!(
            "! -i vc -p tcp -m tcp --dport 8080 -j DNAT --to-destination {c}:80"
        )),
        "{rule}"
    );
    assert_eq!(published["landing"], "listener");
    let listener = &published["listener"];
    assert_eq!(listener["inode"], inodes[0]);
    assert_eq!(listener["local_port"], 80);
    assert_eq!(listener["netns"]["inode"], lab.inode(1));
    assert_eq!(web["container"]["name"], "web");
    assert_eq!(web["container"]["id"], WEB);
    assert_eq!(published["flags"], json!([]));
    // The reach verdicts follow the packet through the DNAT and the forward hook (out
    // through vc, the host's route to the container), as the probes did.
    assert_eq!(web["reach"][0]["verdict"], "open", "{web:#}");

    // The nftables rule: the same join, by its own rule.
    let native = row(&listing, &lab, 9090);
    let by = native["published"]["by"][0]["text"].as_str().unwrap();
    assert!(by.starts_with("table ip lab chain pre"), "{by}");
    assert!(by.contains("dport 9090"), "{by}");
    assert_eq!(native["published"]["listener"]["inode"], inodes[0]);
    assert_eq!(native["container"]["name"], "web");
    assert_eq!(native["reach"][0]["verdict"], "open", "{native:#}");

    let lost = row(&listing, &lab, 8081);
    assert_eq!(lost["published"]["landing"], "no_listener");
    assert_eq!(
        lost["published"]["flags"],
        json!(["published-without-listener"])
    );
    assert_eq!(lost["container"], Value::Null);
    assert_eq!(
        lost["reach"][0]["verdict"], "open",
        "the firewall lets it through"
    );
    let dropped = row(&listing, &lab, 8084);
    assert_eq!(dropped["published"]["listener"]["inode"], inodes[2]);
    // What 8084 forwards is dropped: only a packet arriving on vc itself, which Docker's rules
    // do not DNAT, gets through (to the host's own port 8084); the probe from outside timed
    // out, as `restricted` to that interface says it must.
    assert_eq!(dropped["reach"][0]["verdict"], "restricted", "{dropped:#}");
    assert_eq!(
        dropped["reach"][0]["conditions"],
        json!([r#"iifname "vc""#])
    );

    let proxied = row(&listing, &lab, 8082);
    let by = &proxied["published"]["by"][0];
    assert_eq!(
        (&by["kind"], &by["pid"]),
        (&json!("docker-proxy"), &json!(proxy))
    );
    assert_eq!(proxied["published"]["listener"]["inode"], inodes[1]);
    assert_eq!(proxied["netns"]["inode"], lab.inode(0));
    assert_eq!(proxied["container"]["name"], "web");
    // No DNAT for 8082: the packet is the host's, and INPUT accepts it, as the probe saw.
    assert_eq!(proxied["reach"][0]["verdict"], "open", "{proxied:#}");

    // The hostile proxy: no row, and its arguments reach stderr escaped.
    assert!(
        !listing
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["local_port"] == 8083),
        "{listing:#}"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "docker-proxy pid {hostile}: its arguments are not a published port"
        )),
        "{err}"
    );
    assert!(err.contains("\\e[31mevil"), "{err}");
    assert_terminal_safe("stderr", &out.stderr);

    // The table: the same rows, host → target (container).
    let table = lab.lsports(&["--netns", "all", "--published", "-n"], false);
    let text = String::from_utf8(table.stdout.clone()).unwrap();
    let line = |port: u16| {
        text.lines()
            .find(|l| l.contains(&format!("0.0.0.0:{port} → {c}:")))
            .unwrap_or_else(|| panic!("no row for {port}:\n{text}"))
            .to_string()
    };
    assert!(
        line(8080).contains(&format!("0.0.0.0:8080 → {c}:80 (web)")),
        "{text}"
    );
    assert!(line(8080).contains("PUBLISHED"), "{text}");
    assert!(line(8081).contains("(no listener)"), "{text}");
    assert!(
        line(8082).contains(&format!("{proxy}/docker-proxy")),
        "{text}"
    );
    assert_terminal_safe("table", &table.stdout);

    // audit reports the published port that leads nowhere (8081), and only that one, in
    // JSON and in text; it does not fail the audit (the policy allows every listener).
    let policy = lab.state.path().join("allow-all.toml");
    std::fs::write(&policy, "default = \"allow\"\n").unwrap();
    let policy = policy.to_str().unwrap();
    // `--fail-on none`: other tests' processes (executables under /tmp) may be listed beside
    // this lab's, and their flags must not decide this audit's exit status.
    let audit_args = [
        "--netns",
        "all",
        "audit",
        "--policy",
        policy,
        "--fail-on",
        "none",
    ];
    let json_args = [&audit_args[..], &["--format", "json"]].concat();
    let audit = lab.lsports(&json_args, false);
    let report: Value = serde_json::from_slice(&audit.stdout).expect("audit JSON");
    // This lab's rules, in its host's namespace (other tests' labs and docker-proxy stand-ins
    // may run beside it, and `--netns all` sees them too).
    let host_inode = std::fs::metadata(format!("/proc/{}/ns/net", lab.holders[0].id()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let unlanded: Vec<&Value> = (report["published_without_listener"].as_array().unwrap())
        .iter()
        .filter(|p| p["netns"]["inode"] == json!(host_inode))
        .filter(|p| !p["by"][0].as_str().unwrap().starts_with("docker-proxy"))
        .collect();
    let ports: Vec<&Value> = unlanded.iter().map(|p| &p["host_port"]).collect();
    assert_eq!(ports, [&json!(8081)], "{report:#}");
    assert_eq!(unlanded[0]["target_addr"], c);
    assert_eq!(unlanded[0]["flags"], json!(["published-without-listener"]));
    assert!(
        unlanded[0]["by"][0]
            .as_str()
            .unwrap()
            .contains("--dport 8081"),
        "{report:#}"
    );
    let audit = lab.lsports(&audit_args, false);
    let text = String::from_utf8(audit.stdout.clone()).unwrap();
    let section = text
        .split("Published ports: forwarded, nothing listens there")
        .nth(1)
        .unwrap_or_else(|| panic!("no published section:\n{text}"));
    assert!(section.contains(&format!("0.0.0.0:8081 → {c}:")), "{text}");
    assert!(section.contains("published-without-listener"), "{text}");
    assert!(!section.contains(&format!(":8080 → {c}:")), "{text}");
    assert_terminal_safe("audit", &audit.stdout);
}

/// lsports flags a published port only when its listing holds every listener that could
/// serve the target: not without `--netns all` (the container's namespace is not looked in),
/// not under `--port` (which selects the published row by its host port, and leaves the
/// container's listeners out). `-u` lists no TCP published port.
#[test]
fn where_lsports_cannot_tell_a_target_is_not_seen_never_flagged() {
    let Some(mut lab) = lab() else { return };
    let scope = lab.cgroups[1].clone();
    lab.python(1, Some(&scope), LISTENER, &["80"]);
    let json = |args: &[&str]| {
        let out = lab.lsports(args, false);
        parse_json(&out.stdout)
    };
    let here_only = json(&["--published", "--json"]);
    assert_eq!(
        ours(&here_only, &lab),
        [8080, 8081, 8084, 9090],
        "{here_only:#}"
    );
    let port_8081 = json(&["--netns", "all", "--published", "--port", "8081", "--json"]);
    assert_eq!(ours(&port_8081, &lab), [8081], "{port_8081:#}");
    for (listing, port) in [(&here_only, 8080), (&here_only, 8081), (&port_8081, 8081)] {
        let r = row(listing, &lab, port);
        assert_eq!(r["published"]["landing"], "not_seen", "{r:#}");
        assert_eq!(r["published"]["flags"], json!([]));
    }
    let udp = json(&["--netns", "all", "--published", "-u", "--json"]);
    assert_eq!(ours(&udp, &lab), Vec::<u64>::new(), "{udp:#}");
}

#[test]
fn unprivileged_the_rules_are_unreadable_and_the_proxy_row_remains() {
    let Some(mut lab) = lab() else { return };
    let c = lab.container_ip();
    let proxy: u32 = lab
        .python(
            0,
            None,
            FAKE_PROXY,
            &[
                "8082",
                "docker-proxy",
                "-host-port",
                "8082",
                "-container-ip",
                &c,
                "-container-port",
                "82",
            ],
        )
        .parse()
        .unwrap();
    let out = lab.lsports(&["--published", "--json"], true);
    let listing = parse_json(&out.stdout);
    assert_eq!(ours(&listing, &lab), [8082], "{listing:#}");
    assert_eq!(
        row(&listing, &lab, 8082)["published"]["by"][0]["pid"],
        proxy
    );
    let err = stderr(&out);
    assert!(
        err.contains("published ports from firewall rules:") && err.contains("CAP_NET_ADMIN"),
        "{err}"
    );
    let reach = &row(&listing, &lab, 8082)["reach"][0];
    assert_eq!(reach["verdict"], "unknown", "{reach}");
}

/// A named namespace (`ip netns add`) with a DNAT rule in its own nat prerouting, removed on
/// drop.
struct NamedNetns(String);

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = scrubbed("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `--published` reads the rules of the namespaces it lists: `--netns X` X's, `--netns all`
/// every one's, as `ip netns exec X lsports --published` does from inside; and the current
/// namespace's listing does not show X's rule as its own.
#[test]
fn published_ports_are_read_in_each_listed_namespace() {
    if !need_root("published ports of another namespace") {
        return;
    }
    for tool in ["ip", "nft"] {
        if !have(tool) {
            skip_unless_ci(&format!("published ports of another namespace need {tool}"));
            return;
        }
    }
    let name = format!("lsports-pub-{}", std::process::id());
    assert_success(
        &output_guarded(
            {
                let mut c = scrubbed("ip");
                c.args(["netns", "add", &name]);
                c
            },
            "ip netns add",
        ),
        &["ip netns add"],
    );
    let ns = NamedNetns(name.clone());
    let rules = "table ip nat {\n chain pre {\n  type nat hook prerouting priority -100\n  tcp dport 8080 dnat to 10.98.0.1:5555\n }\n}\n";
    let mut load = scrubbed("ip");
    load.args(["netns", "exec", &ns.0, "nft", "-f", "-"]);
    assert_success(
        &common::run::output_with_input(load, Some(rules.as_bytes()), "nft -f"),
        &["nft -f"],
    );
    let inode = fs::metadata(format!("/run/netns/{name}"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("the namespace's mount");
    let published = |args: &[&str]| -> Vec<Value> {
        let mut cmd = scrubbed(lsports_bin());
        cmd.args(args).args(["--published", "-n", "--json"]);
        let out = output_guarded(cmd, "lsports --published");
        assert_success(&out, args);
        let listing = parse_json(&out.stdout);
        (listing.as_array().expect("an array").iter())
            .filter(|r| r["kind"] == "published" && r["local_port"] == 8080)
            .filter(|r| r["published"]["target_addr"] == "10.98.0.1")
            .cloned()
            .collect()
    };
    for args in [&["--netns", name.as_str()][..], &["--netns", "all"]] {
        let rows = published(args);
        assert_eq!(
            rows.len(),
            1,
            "{args:?}: one row for the DNAT rule of {name}: {rows:#?}"
        );
        let row = &rows[0];
        assert_eq!(row["netns"]["inode"], inode, "{args:?}: {row:#}");
        assert_eq!(row["published"]["target_port"], 5555, "{args:?}: {row:#}");
        let by = row["published"]["by"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(by.contains("dnat to 10.98.0.1:5555"), "{args:?}: {row:#}");
    }
    // Not in this namespace's own listing (unless this namespace had such a rule itself).
    let here = published(&[]);
    assert!(
        here.iter().all(|r| r["netns"]["inode"] != inode),
        "the current namespace's listing shows {name}'s rule: {here:#?}"
    );
    drop(ns);
}

/// `--published` and `--reach` under `--netns all` both need another namespace's rules, and
/// each namespace's are read once a run: reach (for its listener) and the published ports
/// (for every namespace listed) share the read. Counted where it happens: `nft -j list
/// ruleset` is, in a private mount namespace, a wrapper that writes the network namespace it
/// runs in, then runs the real nft.
#[test]
fn another_namespaces_rules_are_read_once_for_reach_and_published_ports() {
    if !need_root("reading another namespace's rules") {
        return;
    }
    for tool in ["ip", "nft", "unshare"] {
        if !have(tool) {
            skip_unless_ci(&format!("reading another namespace's rules needs {tool}"));
            return;
        }
    }
    let name = format!("lsports-once-{}", std::process::id());
    let mut add = scrubbed("ip");
    add.args(["netns", "add", &name]);
    assert_success(&output_guarded(add, "ip netns add"), &["ip netns add"]);
    let ns = NamedNetns(name.clone());
    let inode = fs::metadata(format!("/run/netns/{name}"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .expect("the namespace's mount");
    // A listener there, so that reach reads its rules too.
    let mut listener = scrubbed("ip");
    listener
        .args(["netns", "exec", &name, "python3", "-c"])
        .arg(
            "import socket, time\ns = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen()\n\
             print(s.getsockname()[1], flush=True); time.sleep(60)",
        )
        .stdout(Stdio::piped());
    let mut listener = listener.spawn().expect("start python3");
    let mut port = String::new();
    BufReader::new(listener.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let port: u16 = port.trim().parse().expect("the listener's port");

    let dir = tempfile::tempdir().unwrap();
    let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap();
    let (real, log, wrapper) = (
        dir.path().join("real-nft"),
        dir.path().join("reads"),
        dir.path().join("nft"),
    );
    fs::copy(nft, &real).unwrap();
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ \"$*\" = \"-j list ruleset\" ] && readlink /proc/self/ns/net >>{}\n\
             exec {} \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    fs::set_permissions(&wrapper, executable).unwrap();
    let mut cmd = scrubbed("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"")
        .arg("sh")
        .arg(&wrapper)
        .arg(nft)
        .arg(lsports_bin())
        .args(["--netns", "all", "--published", "--reach", "-n", "--json"]);
    let out = output_guarded(cmd, "lsports --netns all --published --reach");
    let _ = listener.kill();
    let _ = listener.wait();
    drop(ns);
    assert_success(&out, &["--netns all --published --reach"]);
    let listing = parse_json(&out.stdout);
    // The listener is listed, with the reach its namespace's (empty) rules give it.
    let row = (listing.as_array().unwrap().iter())
        .find(|r| r["netns"]["inode"] == inode && r["local_port"] == port)
        .unwrap_or_else(|| panic!("no row for {name}'s :{port}: {listing:#}"));
    assert_eq!(row["reach"][0]["verdict"], "open", "{row:#}");

    let reads = fs::read_to_string(&log).unwrap_or_default();
    let mut seen: Vec<&str> = reads.lines().collect();
    let ours = format!("net:[{inode}]");
    assert_eq!(
        seen.iter().filter(|l| **l == ours).count(),
        1,
        "{name}'s rules read once: {reads}"
    );
    seen.sort_unstable();
    let before = seen.len();
    seen.dedup();
    assert_eq!(
        seen.len(),
        before,
        "a namespace's rules read twice: {reads}"
    );
}
