//! Worlds: private network namespaces holding the sockets and processes of a spec, built by
//! `tests/support/world.py`, with what it created (the truth) to compare lsports with.
//!
//! As root the namespace is made with `unshare --net`; otherwise with
//! `unshare --user --map-root-user --net`. Programs run inside it through `nsenter`. Each
//! [`World`] is its own namespace, so tests may run in parallel; everything it holds is one
//! process group, killed when the world is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;
use serde_json::Value;

use super::json::parse_json;
use super::run::{
    Spawned, assert_success, lsports_bin, output_guarded, scrubbed, scrubbed_env, stderr, stdout,
    this_test_binary,
};
use super::scripting::sections;
use super::table::Table;
use super::tools::{is_root, need_root};

/// The world builder.
pub fn world_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/world.py")
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
    /// A listening socket (TCP listen or unconnected UDP), as lsports lists without `-a`.
    pub fn is_listening(&self) -> bool {
        self.kind == "listen" || self.kind == "unconn"
    }
}

/// A private network namespace holding the sockets of a spec.
pub struct World {
    holder: Spawned,
    dir: tempfile::TempDir,
    /// What world.py created, one entry a socket.
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

/// `s` quoted for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The script that makes `groups`' devices and then becomes world.py.
fn world_script(groups: &[Value], spec: &Path, truth: &Path, ready: &Path) -> String {
    // Interfaces to create for SO_BINDTODEVICE: dummy where the kernel has it, else a bridge
    // (the socket only needs a named, up device).
    let devices: BTreeSet<&str> = groups
        .iter()
        .filter_map(|g| g.get("device").and_then(Value::as_str))
        .filter(|d| *d != "lo")
        .collect();
    let mut script = String::from("set -e\nip link set lo up\n");
    for d in devices {
        let q = sh_quote(d);
        script.push_str(&format!(
            "ip link add {q} type dummy 2>/dev/null || ip link add {q} type bridge\n\
             ip link set {q} up\n"
        ));
    }
    let path = |p: &Path| sh_quote(p.to_str().expect("temp paths are UTF-8"));
    script.push_str(&format!(
        "exec python3 {} {} {} {}\n",
        path(&world_py()),
        path(spec),
        path(truth),
        path(ready),
    ));
    script
}

/// `unshare` making a new network namespace (and a user namespace unless root).
fn unshare_net() -> Command {
    let mut cmd = Command::new("unshare");
    if is_root() {
        cmd.arg("--net");
    } else {
        cmd.args(["--user", "--map-root-user", "--net"]);
    }
    cmd
}

impl World {
    /// Build the world described by `spec` (a JSON array of groups, see world.py) in a fresh
    /// network namespace and wait (under the hang guard) until it is ready.
    pub fn start(spec: &Value) -> World {
        let groups = spec.as_array().expect("spec must be a JSON array");
        let dir = tempfile::Builder::new()
            .prefix("lsports-world-")
            .tempdir()
            .expect("tempdir");
        let path = |name: &str| dir.path().join(name);
        let (spec_path, truth_path, ready_path) =
            (path("spec.json"), path("truth.json"), path("ready"));
        let log_path = path("world.log");
        std::fs::write(&spec_path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
        let script = world_script(groups, &spec_path, &truth_path, &ready_path);
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = unshare_net();
        cmd.args(["bash", "-c", &script])
            .env_clear()
            .envs(scrubbed_env())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut holder = Spawned::start(cmd, "the world (unshare, world.py)");
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        super::run::wait_until("the world to be ready", || {
            if let Some(status) = holder.try_status() {
                panic!("world exited ({status}) before it was ready:\n{}", log());
            }
            ready_path.exists().then_some(())
        });
        let truth = std::fs::read(&truth_path).expect("truth file");
        World {
            holder,
            dir,
            truth: serde_json::from_slice(&truth).expect("truth file is JSON"),
        }
    }

    /// The namespace's holder process (world.py itself).
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// The world's private directory (spec, truth, log; scripts may write here too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `nsenter` into the world's namespace, scrubbed: append the program and its arguments.
    pub fn enter(&self) -> Command {
        let mut cmd = scrubbed("nsenter");
        cmd.args(self.nsenter_args()).arg("--");
        cmd
    }

    /// The `nsenter` options that enter the world's namespace (for a command line built by
    /// hand, as a terminal multiplexer needs).
    pub fn nsenter_args(&self) -> Vec<String> {
        if is_root() {
            vec![format!("--net=/proc/{}/ns/net", self.pid())]
        } else {
            ["--user", "--net", "--preserve-credentials", "-t"]
                .map(String::from)
                .into_iter()
                .chain([self.pid().to_string()])
                .collect()
        }
    }

    /// Run lsports with `args` inside the namespace.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.enter();
        cmd.arg(lsports_bin()).args(args);
        output_guarded(cmd, &format!("lsports {}", args.join(" ")))
    }

    /// Run lsports as uid/gid 65534 with no groups and no capabilities inside the namespace.
    /// Root only: elsewhere `None`, after skipping (see `need_root`; CI fails instead).
    pub fn run_as_nobody(&self, args: &[&str]) -> Option<Output> {
        if !need_root("running lsports as another user") {
            return None;
        }
        let mut cmd = self.enter();
        cmd.args(AS_NOBODY).arg(lsports_bin()).args(args);
        Some(output_guarded(
            cmd,
            &format!("(nobody) lsports {}", args.join(" ")),
        ))
    }

    /// Run a bash script inside the namespace; `$LSPORTS` is the binary, `$WORLD_DIR` the
    /// world's directory.
    pub fn run_shell(&self, script: &str) -> Output {
        let mut cmd = self.enter();
        cmd.args(["bash", "-c", script])
            .env("LSPORTS", lsports_bin())
            .env("WORLD_DIR", self.dir.path());
        output_guarded(cmd, &format!("bash -c {script:?}"))
    }

    /// [`World::run_shell`], requiring exit 0: (stdout, stderr).
    pub fn script_ok(&self, script: &str) -> (String, String) {
        let out = self.run_shell(script);
        assert!(
            out.status.success(),
            "script failed ({}):\nstdout:\n{}\nstderr:\n{}\nscript:\n{script}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        (stdout(&out), stderr(&out))
    }

    /// [`World::script_ok`], with stdout split into the sections printed after `=== NAME`
    /// lines (see `sections`).
    pub fn script_sections(&self, script: &str) -> (BTreeMap<String, String>, String) {
        let (out, err) = self.script_ok(script);
        (sections(&out), err)
    }

    /// Start `program args` in the namespace in the background, killed (with everything it
    /// starts) when the returned handle is dropped.
    pub fn spawn(&self, what: &str, program: &str, args: &[&str]) -> Spawned {
        let mut cmd = self.enter();
        cmd.arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Spawned::start(cmd, what)
    }

    /// Capture the namespace to `out` through the library, from inside it: this test binary
    /// runs its `capture_helper` test there (see [`capture_helper_body`]).
    pub fn capture(&self, out: &Path) {
        let mut cmd = this_test_binary(self.enter(), "capture_helper");
        cmd.env(CAPTURE_ENV, out);
        let output = output_guarded(cmd, "capture_helper in the world");
        assert_success(&output, &["(test) capture_helper"]);
        assert!(out.is_file(), "capture_helper wrote nothing");
    }

    /// Run lsports `args` (plus `--json`), require exit 0, and parse stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a: Vec<&str> = args.to_vec();
        a.push("--json");
        let out = self.run(&a);
        assert_success(&out, &a);
        parse_json(&out.stdout)
    }

    /// Run lsports `args`, require exit 0, and return stdout.
    pub fn text(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, args);
        stdout(&out)
    }

    /// Run lsports `args` (table), require exit 0, and parse the table.
    pub fn table(&self, args: &[&str]) -> Table {
        let out = self.run(args);
        assert_success(&out, args);
        Table::parse(&String::from_utf8(out.stdout).expect("table is UTF-8"))
    }

    /// The truth entries lsports lists without `-a`.
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

/// `setpriv` arguments that become uid/gid 65534 with no groups and no capabilities.
pub const AS_NOBODY: [&str; 6] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--",
];

/// The variable that asks `capture_helper` (a test of the binary) to capture `/proc` there.
pub const CAPTURE_ENV: &str = "LSPORTS_TEST_CAPTURE";

/// The body of a test binary's `capture_helper` test: with [`CAPTURE_ENV`]`=OUT` set (by
/// [`World::capture`] or [`Isolated::capture`], inside a namespace) capture `/proc` to OUT
/// through the library; otherwise nothing.
pub fn capture_helper_body() {
    let Some(out) = std::env::var_os(CAPTURE_ENV) else {
        return;
    };
    let summary = lsports::snapshot::capture(Path::new("/proc"), Path::new(&out), false)
        .unwrap_or_else(|e| panic!("capture to {} failed: {e}", Path::new(&out).display()));
    eprintln!("{}", summary.describe());
}

// ---------------------------------------------------------------------------
// Private network, pid and mount namespaces

/// A program running as pid 1 of private network, pid and mount namespaces (with their own
/// `/proc`), so that lsports there sees its processes only. Dropping it kills them all.
pub struct Isolated {
    unshare: Spawned,
    holder: u32,
}

impl Isolated {
    /// Run `sh -c SCRIPT sh ARGS…` as pid 1 of new namespaces (loopback up) and wait until
    /// the file `ready` exists.
    pub fn start(script: &str, args: &[&Path], ready: &Path) -> Isolated {
        let mut cmd = scrubbed("unshare");
        cmd.args(["--net", "--pid", "--fork", "--mount", "--mount-proc", "--"])
            .args(["sh", "-c", &format!("ip link set lo up && {script}"), "sh"])
            .args(args)
            .stdin(Stdio::null());
        let mut unshare = Spawned::start(cmd, "unshare (isolated world)");
        unshare.wait_for_file(ready);
        // The forked child of unshare: pid 1 inside.
        let pid = unshare.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        let holder = std::fs::read_to_string(&children)
            .unwrap_or_else(|e| panic!("{children}: {e}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{children}: not one pid: {e}"));
        Isolated { unshare, holder }
    }

    /// `nsenter` into all three namespaces: append the program and its arguments.
    pub fn enter(&self) -> Command {
        let mut cmd = scrubbed("nsenter");
        cmd.args(["--net", "--pid", "--mount", "-t"])
            .arg(self.holder.to_string())
            .arg("--");
        cmd
    }

    /// Run lsports `args` inside as nobody (see [`AS_NOBODY`]).
    pub fn run_as_nobody(&self, args: &[&str]) -> Output {
        let mut cmd = self.enter();
        cmd.args(AS_NOBODY).arg(lsports_bin()).args(args);
        output_guarded(cmd, &format!("(nobody) lsports {args:?}"))
    }

    /// Capture the namespaces' `/proc` to `out` through the library, from inside (as nobody
    /// when asked): see [`capture_helper_body`].
    pub fn capture(&self, out: &Path, as_nobody: bool) {
        let mut cmd = self.enter();
        if as_nobody {
            cmd.args(AS_NOBODY);
        }
        let mut cmd = this_test_binary(cmd, "capture_helper");
        cmd.env(CAPTURE_ENV, out);
        let output = output_guarded(cmd, "capture_helper in an isolated world");
        assert_success(&output, &["(test) capture_helper"]);
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        // Killing pid 1 of the namespace ends every process in it, whichever group it is in;
        // the unshare handle then kills its own group.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.holder as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.try_status();
    }
}
