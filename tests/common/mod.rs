//! Test harness: private network namespaces with a world of sockets and
//! processes built by `tests/support/world.py`, and helpers to run lsports
//! inside them and compare its output to what the world created.
//!
//! As root the namespace is made with `unshare --net`; otherwise with
//! `unshare --user --map-root-user --net`. lsports runs inside it through
//! `nsenter`. Each `World` is its own namespace, so tests may run in parallel.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// Generous guard against a hung world or lsports; not a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(300);

pub fn lsports_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lsports"))
}

pub fn world_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/world.py")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The environment lsports runs with: nothing inherited from the test runner.
pub fn scrubbed_env() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("LANG", "C"),
        ("LC_ALL", "C"),
        ("HOME", "/"),
        ("TERM", "dumb"),
    ]
}

/// A command with a scrubbed environment and SIGPIPE back to its default
/// disposition (the test runner ignores it, a user's shell does not).
pub fn scrubbed(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(scrubbed_env()).current_dir("/");
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd
}

/// lsports outside any test namespace (for flag parsing checks).
pub fn run_host(args: &[&str]) -> Output {
    let mut cmd = scrubbed(lsports_bin());
    cmd.args(args);
    output_guarded(cmd, &format!("lsports {}", args.join(" ")))
}

/// Run to completion, collecting stdout/stderr, with a hang guard.
pub fn output_guarded(mut cmd: Command, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_guarded(&mut child, what);
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn wait_guarded(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {HANG_GUARD:?}, killed (hang)");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// One socket the world created (an entry of world.py's truth file).
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    pub proto: String,
    pub family: String,
    pub addr: String,
    pub port: u16,
    pub remote_addr: Option<String>,
    pub remote_port: Option<u16>,
    pub pids: Vec<u32>,
    pub procs: Vec<TruthProc>,
    pub inode: u64,
    /// listen | unconn | established | udp_connected
    pub kind: String,
    pub name: String,
    pub name_hex: String,
    pub v6only: Option<bool>,
    pub device: Option<String>,
    pub backlog: Option<u32>,
    pub group: usize,
}

/// One process holding a socket of the world.
#[derive(Debug, Clone, Deserialize)]
pub struct TruthProc {
    pub pid: u32,
    /// main | worker | reuseport | client
    pub role: String,
    pub name: String,
    pub name_hex: String,
    pub cmdline: String,
    pub fd: u32,
}

impl Truth {
    pub fn is_listening(&self) -> bool {
        self.kind == "listen" || self.kind == "unconn"
    }
}

/// A private network namespace holding the sockets of a spec.
pub struct World {
    child: Option<Child>,
    pid: u32,
    dir: tempfile::TempDir,
    pub truth: Vec<Truth>,
}

/// Shorthand for one spec group; fields not given take world.py's defaults.
pub fn group(proto: &str, addr: &str, name: &str) -> Value {
    serde_json::json!({"proto": proto, "addr": addr, "port": 0, "name": name})
}

/// `group` with extra keys merged in.
pub fn group_with(proto: &str, addr: &str, name: &str, extra: Value) -> Value {
    let mut g = group(proto, addr, name);
    for (k, v) in extra.as_object().expect("extra must be an object") {
        g[k] = v.clone();
    }
    g
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl World {
    /// Build the world described by `spec` (a JSON array of groups, see
    /// world.py) in a fresh network namespace and wait until it is ready.
    pub fn start(spec: &Value) -> World {
        let groups = spec.as_array().expect("spec must be a JSON array");
        let dir = tempfile::Builder::new()
            .prefix("lsports-world-")
            .tempdir()
            .expect("tempdir");
        let spec_path = dir.path().join("spec.json");
        let truth_path = dir.path().join("truth.json");
        let ready_path = dir.path().join("ready");
        let log_path = dir.path().join("world.log");
        std::fs::write(&spec_path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();

        // Interfaces to create for SO_BINDTODEVICE: dummy where the kernel has
        // it, else a bridge (the socket only needs a named, up device).
        let devices: BTreeSet<String> = groups
            .iter()
            .filter_map(|g| g.get("device").and_then(Value::as_str))
            .filter(|d| *d != "lo")
            .map(str::to_string)
            .collect();
        let mut script = String::from("set -e\nip link set lo up\n");
        for d in &devices {
            let q = sh_quote(d);
            script.push_str(&format!(
                "ip link add {q} type dummy 2>/dev/null || ip link add {q} type bridge\n\
                 ip link set {q} up\n"
            ));
        }
        script.push_str(&format!(
            "exec python3 {} {} {} {}\n",
            sh_quote(world_py().to_str().unwrap()),
            sh_quote(spec_path.to_str().unwrap()),
            sh_quote(truth_path.to_str().unwrap()),
            sh_quote(ready_path.to_str().unwrap()),
        ));

        let mut cmd = Command::new("unshare");
        if is_root() {
            cmd.arg("--net");
        } else {
            cmd.args(["--user", "--map-root-user", "--net"]);
        }
        let log = std::fs::File::create(&log_path).unwrap();
        cmd.args(["bash", "-c", &script])
            .env_clear()
            .envs(scrubbed_env())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn().expect("cannot run unshare (util-linux)");
        let pid = child.id();
        let mut world = World {
            child: Some(child),
            pid,
            dir,
            truth: Vec::new(),
        };

        let start = Instant::now();
        while !ready_path.exists() {
            if let Some(st) = world.child.as_mut().unwrap().try_wait().unwrap() {
                world.child = None;
                panic!(
                    "world exited ({st}) before it was ready:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if start.elapsed() > HANG_GUARD {
                panic!(
                    "world not ready after {HANG_GUARD:?}:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        let truth = std::fs::read(&truth_path).expect("truth file");
        world.truth = serde_json::from_slice(&truth).expect("truth file is JSON");
        world
    }

    /// The namespace's holder process (world.py itself).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn nsenter(&self) -> Command {
        let mut cmd = scrubbed("nsenter");
        if is_root() {
            cmd.arg(format!("--net=/proc/{}/ns/net", self.pid));
        } else {
            cmd.args(["--user", "--net", "--preserve-credentials", "-t"])
                .arg(self.pid.to_string());
        }
        cmd.arg("--");
        cmd
    }

    /// Run lsports with `args` inside the namespace.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.nsenter();
        cmd.arg(lsports_bin()).args(args);
        output_guarded(cmd, &format!("lsports {}", args.join(" ")))
    }

    /// Run lsports as uid/gid 65534 with no groups and no capabilities
    /// inside the namespace. Root only: returns None (after printing why)
    /// when the test is not root.
    pub fn run_as_nobody(&self, args: &[&str]) -> Option<Output> {
        if !is_root() {
            eprintln!("SKIP: running as another user needs root");
            return None;
        }
        let mut cmd = self.nsenter();
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(lsports_bin())
        .args(args);
        Some(output_guarded(
            cmd,
            &format!("(nobody) lsports {}", args.join(" ")),
        ))
    }

    /// Run a bash script inside the namespace; `$LSPORTS` is the binary.
    pub fn run_shell(&self, script: &str) -> Output {
        let mut cmd = self.nsenter();
        cmd.args(["bash", "-c", script])
            .env("LSPORTS", lsports_bin())
            .env("WORLD_DIR", self.dir.path());
        output_guarded(cmd, &format!("bash -c {script:?}"))
    }

    /// Run lsports `args` (plus `--json`), require exit 0, and parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a: Vec<&str> = args.to_vec();
        a.push("--json");
        let out = self.run(&a);
        assert_success(&out, &a);
        parse_json(&out.stdout)
    }

    /// Run lsports `args` (table), require exit 0, and parse the table.
    pub fn table(&self, args: &[&str]) -> Table {
        let out = self.run(args);
        assert_success(&out, args);
        Table::parse(&String::from_utf8(out.stdout).expect("table is UTF-8"))
    }

    pub fn listening(&self) -> impl Iterator<Item = &Truth> {
        self.truth.iter().filter(|t| t.is_listening())
    }

    /// The only truth entry of group `gi` of kind `kind`.
    pub fn one(&self, gi: usize, kind: &str) -> &Truth {
        let v: Vec<&Truth> = self
            .truth
            .iter()
            .filter(|t| t.group == gi && t.kind == kind)
            .collect();
        assert_eq!(v.len(), 1, "group {gi} kind {kind}: {v:?}");
        v[0]
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole process group: bash/world.py and every forked holder.
            // SAFETY: plain kill(2) on our own process group.
            unsafe {
                libc::kill(-(self.pid as i32), libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "lsports {} failed: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn parse_json(stdout: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "lsports --json output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    });
    assert!(v.is_array(), "--json must print an array, got {v}");
    v
}

pub fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------
// Comparable projection: (proto, family, local addr, local port, pids)

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row {
    pub proto: String,
    pub family: String,
    pub addr: String,
    pub port: u16,
    pub pids: Vec<u32>,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = if self.family == "ipv6" {
            format!("[{}]", self.addr)
        } else {
            self.addr.clone()
        };
        write!(
            f,
            "{:<3} {} {}:{} pids={:?}",
            self.proto, self.family, addr, self.port, self.pids
        )
    }
}

pub fn rows_from_truth<'a>(it: impl IntoIterator<Item = &'a Truth>) -> Vec<Row> {
    let mut v: Vec<Row> = it
        .into_iter()
        .map(|t| Row {
            proto: t.proto.clone(),
            family: t.family.clone(),
            addr: t.addr.clone(),
            port: t.port,
            pids: t.pids.clone(),
        })
        .collect();
    v.sort();
    v
}

pub fn json_pids(sock: &Value) -> Vec<u32> {
    let mut pids: Vec<u32> = sock["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("processes is not an array in {sock}"))
        .iter()
        .map(|p| p["pid"].as_u64().expect("pid is an integer") as u32)
        .collect();
    pids.sort();
    pids
}

pub fn rows_from_json(v: &Value) -> Vec<Row> {
    let mut rows: Vec<Row> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|s| Row {
            proto: s["proto"].as_str().expect("proto").to_string(),
            family: s["family"].as_str().expect("family").to_string(),
            addr: s["local_addr"].as_str().expect("local_addr").to_string(),
            port: s["local_port"].as_u64().expect("local_port") as u16,
            pids: json_pids(s),
        })
        .collect();
    rows.sort();
    rows
}

/// Compare as multisets and panic with a readable diff on mismatch.
pub fn assert_same_rows(what: &str, got: &[Row], want: &[Row]) {
    let count = |rows: &[Row]| {
        let mut m: BTreeMap<Row, usize> = BTreeMap::new();
        for r in rows {
            *m.entry(r.clone()).or_default() += 1;
        }
        m
    };
    let (g, w) = (count(got), count(want));
    if g == w {
        return;
    }
    let mut msg = format!(
        "{what}: lsports listed {} sockets, the world has {}\n",
        got.len(),
        want.len()
    );
    for (r, n) in &w {
        let have = g.get(r).copied().unwrap_or(0);
        for _ in have..*n {
            msg.push_str(&format!("  missing: {r}\n"));
        }
    }
    for (r, n) in &g {
        let expect = w.get(r).copied().unwrap_or(0);
        for _ in expect..*n {
            msg.push_str(&format!("  extra:   {r}\n"));
        }
    }
    panic!("{msg}");
}

/// Find the JSON socket object with this inode.
pub fn by_inode(v: &Value, inode: u64) -> &Value {
    let found: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["inode"].as_u64() == Some(inode))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one socket with inode {inode} in:\n{}",
        serde_json::to_string_pretty(v).unwrap()
    );
    found[0]
}

/// Check every object has the documented fields with the documented types.
pub fn assert_json_schema(v: &Value) {
    for s in v.as_array().expect("array") {
        let o = s
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {s}"));
        let ctx = || serde_json::to_string(s).unwrap();
        let is_str = |k: &str| o.get(k).is_some_and(Value::is_string);
        let is_uint = |k: &str| o.get(k).is_some_and(Value::is_u64);
        let is_uint_or_null = |k: &str| o.get(k).is_some_and(|x| x.is_u64() || x.is_null());
        assert!(
            matches!(o.get("proto").and_then(Value::as_str), Some("tcp" | "udp")),
            "proto in {}",
            ctx()
        );
        assert!(
            matches!(
                o.get("family").and_then(Value::as_str),
                Some("ipv4" | "ipv6")
            ),
            "family in {}",
            ctx()
        );
        for k in ["local_addr", "remote_addr", "state"] {
            assert!(is_str(k), "{k} must be a string in {}", ctx());
        }
        for k in ["local_port", "remote_port", "inode"] {
            assert!(is_uint(k), "{k} must be an integer in {}", ctx());
        }
        for k in ["recv_q", "send_q", "uid"] {
            assert!(is_uint_or_null(k), "{k} must be integer|null in {}", ctx());
        }
        assert!(
            o.get("user").is_some_and(|x| x.is_string() || x.is_null()),
            "user in {}",
            ctx()
        );
        assert!(
            o.get("v6only")
                .is_some_and(|x| x.is_boolean() || x.is_null()),
            "v6only in {}",
            ctx()
        );
        assert!(
            o.get("interface")
                .is_some_and(|x| x.is_string() || x.is_null()),
            "interface in {}",
            ctx()
        );
        assert!(
            matches!(
                o.get("source").and_then(Value::as_str),
                Some("netlink" | "proc")
            ),
            "source in {}",
            ctx()
        );
        assert!(
            o.get("unknown_fields")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "unknown_fields in {}",
            ctx()
        );
        assert!(
            matches!(o.get("owner_unknown_reason"), Some(Value::Null))
                || matches!(
                    o.get("owner_unknown_reason").and_then(Value::as_str),
                    Some("kernel" | "permission" | "not_found" | "outside_pid_namespace")
                ),
            "owner_unknown_reason in {}",
            ctx()
        );
        let procs = o
            .get("processes")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("processes in {}", ctx()));
        for p in procs {
            let po = p.as_object().expect("process object");
            for k in ["pid", "uid", "fd"] {
                assert!(
                    po.get(k).is_some_and(Value::is_u64),
                    "process {k} in {}",
                    ctx()
                );
            }
            for k in ["name", "cmdline"] {
                assert!(
                    po.get(k).is_some_and(Value::is_string),
                    "process {k} in {}",
                    ctx()
                );
            }
            assert!(
                po.get("user").is_some_and(|x| x.is_string() || x.is_null()),
                "process user in {}",
                ctx()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Table parsing

/// The table: header column names (split on runs of 2+ spaces) and rows,
/// whose cells are split on whitespace; the last column (the program) takes
/// the rest of the line.
#[derive(Debug)]
pub struct Table {
    pub raw: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(s: &str) -> Table {
        let mut lines = s.lines();
        let header_line = lines.next().unwrap_or("");
        let header: Vec<String> = header_line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let n = header.len();
        let mut rows = Vec::new();
        for line in lines {
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mut row: Vec<String> = fields
                .iter()
                .take(n.saturating_sub(1))
                .map(|s| s.to_string())
                .collect();
            if fields.len() >= n {
                row.push(fields[n - 1..].join(" "));
            }
            rows.push(row);
        }
        Table {
            raw: s.to_string(),
            header,
            rows,
        }
    }

    pub fn col_index(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in header {:?}", self.header))
    }

    /// Cell `name` of `row` ("" when the row is short).
    pub fn cell<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        row.get(self.col_index(name))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Rows whose Local Address cell is exactly `local`.
    pub fn rows_with_local(&self, local: &str) -> Vec<&Vec<String>> {
        let i = self.col_index("Local Address");
        self.rows
            .iter()
            .filter(|r| r.get(i).map(String::as_str) == Some(local))
            .collect()
    }

    /// The only row with this Proto cell and Local Address cell.
    pub fn row_proto(&self, proto: &str, local: &str) -> &Vec<String> {
        let p = self.col_index("Proto");
        let v: Vec<&Vec<String>> = self
            .rows_with_local(local)
            .into_iter()
            .filter(|r| r.get(p).map(String::as_str) == Some(proto))
            .collect();
        assert_eq!(
            v.len(),
            1,
            "expected one {proto} row with local address {local:?} in:\n{}",
            self.raw
        );
        v[0]
    }

    /// The only row whose Local Address is `local`.
    pub fn row(&self, local: &str) -> &Vec<String> {
        let v = self.rows_with_local(local);
        assert_eq!(
            v.len(),
            1,
            "expected one row with local address {local:?} in:\n{}",
            self.raw
        );
        v[0]
    }
}

/// Parse a program cell `pid,pid/name;pid/name2` into (pids, name) parts.
pub fn parse_program(cell: &str) -> Vec<(Vec<u32>, String)> {
    if cell == "-" || cell.is_empty() {
        return Vec::new();
    }
    cell.split(';')
        .map(|part| {
            let (pids, name) = part
                .split_once('/')
                .unwrap_or_else(|| panic!("program cell part without '/': {part:?}"));
            let pids = pids
                .split(',')
                .map(|p| {
                    p.parse()
                        .unwrap_or_else(|_| panic!("bad pid {p:?} in program cell {cell:?}"))
                })
                .collect();
            (pids, name.to_string())
        })
        .collect()
}

/// Say why a test does not run here and return, so the caller can `return`; under `CI=true`
/// fail instead, since CI has every tool and privilege the tests need.
pub fn skip_unless_ci(reason: &str) {
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "{reason} (CI=true: a test may not skip in CI)"
    );
    eprintln!("SKIP: {reason}");
}
