//! A small reach lab for the tests of lsports' output: a host network namespace with
//! dual-stack TCP listeners and UDP echo servers (`tests/support/reach_lab.py listen`), an
//! outside namespace that probes it over a veth pair (`reach_lab.py probe`), rules loaded in
//! the host with `nft -f -`, and lsports run inside the host namespace, as root or not.
//!
//! `tests/reach.rs` checks the evaluator itself against thousands of probes; this lab checks
//! that what lsports prints is what a probe from outside sees.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Output, Stdio};

use serde_json::{Value, json};

use super::run::{Spawned, lsports_bin, output_guarded, output_with_input, scrubbed};
use super::tools::{have, need_root};

/// The host's IPv4 address on the veth; the outside probes from 192.0.2.2.
pub const HOST_V4: &str = "192.0.2.1";
/// The outside's IPv4 address.
pub const OUTSIDE_V4: &str = "192.0.2.2";
/// A second outside address, one no rule names.
pub const OTHER_V4: &str = "198.51.100.2";
/// The host's IPv6 address; the outside probes from 2001:db8::2.
pub const HOST_V6: &str = "2001:db8::1";
/// The outside's IPv6 address.
pub const OUTSIDE_V6: &str = "2001:db8::2";

/// The two namespaces and the pipe to the prober.
pub struct ReachLab {
    host: Spawned,
    outside: Spawned,
    to_prober: ChildStdin,
    from_prober: BufReader<ChildStdout>,
    sport: u32,
}

fn lab_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/reach_lab.py")
}

impl ReachLab {
    /// The lab with listeners on `ports`, or `None` (said) when not root or a tool is
    /// missing; under `CI=true` that fails instead.
    pub fn start_or_skip(ports: &[u16]) -> Option<ReachLab> {
        if !need_root("the reach lab (network namespaces, nft rulesets)") {
            return None;
        }
        for tool in ["nft", "python3", "unshare", "nsenter", "ip", "setpriv"] {
            if !have(tool) {
                super::tools::skip_unless_ci(&format!("the reach lab needs {tool}"));
                return None;
            }
        }
        Some(ReachLab::start(ports))
    }

    fn start(ports: &[u16]) -> ReachLab {
        let mut listen = scrubbed("unshare");
        listen
            .args(["--net", "python3"])
            .arg(lab_py())
            .arg("listen");
        listen.args(ports.iter().map(u16::to_string));
        listen.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut host = Spawned::start(listen, "the lab's host (reach_lab.py listen)");
        let mut line = String::new();
        BufReader::new(host.child_mut().stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the listeners did not start");
        let mut probe = scrubbed("unshare");
        probe.args(["--net", "python3"]).arg(lab_py()).arg("probe");
        probe.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut outside = Spawned::start(probe, "the lab's outside (reach_lab.py probe)");
        let to_prober = outside.child_mut().stdin.take().unwrap();
        let mut from_prober = BufReader::new(outside.child_mut().stdout.take().unwrap());
        let mut line = String::new();
        from_prober.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the prober did not start");
        let lab = ReachLab {
            host,
            outside,
            to_prober,
            from_prober,
            sport: 0,
        };
        let (h, o) = (lab.host.id().to_string(), lab.outside.id().to_string());
        let mut veth = Command::new("ip");
        veth.args([
            "link", "add", "vh", "netns", &h, "type", "veth", "peer", "name", "vo", "netns", &o,
        ]);
        ok(veth);
        let host_setup = [
            "link set lo up",
            "link set vh up",
            "addr add 192.0.2.1/24 dev vh",
            "-6 addr add 2001:db8::1/64 dev vh nodad",
            "route add 198.51.100.0/24 dev vh",
        ];
        let outside_setup = [
            "link set lo up",
            "link set vo up",
            "addr add 192.0.2.2/24 dev vo",
            "addr add 198.51.100.2/32 dev vo",
            "-6 addr add 2001:db8::2/64 dev vo nodad",
        ];
        for (pid, commands) in [
            (lab.host.id(), &host_setup),
            (lab.outside.id(), &outside_setup),
        ] {
            for c in commands.iter() {
                let mut ip = lab.enter(pid, "ip");
                ip.args(c.split_whitespace());
                ok(ip);
            }
        }
        lab
    }

    /// The host namespace's pid (its `/proc/PID/ns/net`).
    pub fn host_pid(&self) -> u32 {
        self.host.id()
    }

    fn enter(&self, pid: u32, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = scrubbed("nsenter");
        cmd.arg(format!("--net=/proc/{pid}/ns/net"))
            .arg("--")
            .arg(program);
        cmd
    }

    /// Replace the host's rules with the nft ruleset `text`.
    pub fn nft(&self, text: &str) {
        let mut flush = self.enter(self.host.id(), "nft");
        flush.args(["flush", "ruleset"]);
        ok(flush);
        let mut load = self.enter(self.host.id(), "nft");
        load.args(["-f", "-"]);
        let out = output_with_input(load, Some(text.as_bytes()), "nft -f -");
        assert!(
            out.status.success(),
            "nft refused the ruleset:\n{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run `program` with `args` inside the host namespace (another firewall tool:
    /// `iptables-legacy`, `iptables-nft`), and fail the test if it fails.
    pub fn run_in_host(&self, program: &str, args: &[&str]) {
        let mut cmd = self.enter(self.host.id(), program);
        cmd.args(args);
        ok(cmd);
    }

    /// Run lsports with `args` inside the host namespace, as root.
    pub fn lsports(&self, args: &[&str]) -> Output {
        let mut cmd = self.enter(self.host.id(), lsports_bin());
        cmd.args(args);
        output_guarded(cmd, "lsports in the lab's host")
    }

    /// The same as `nobody` (no capability: the rules cannot be read).
    pub fn lsports_unprivileged(&self, args: &[&str]) -> Output {
        let mut cmd = self.enter(self.host.id(), "setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        cmd.arg(lsports_bin()).args(args);
        output_guarded(cmd, "lsports as nobody in the lab's host")
    }

    /// Run lsports inside the host namespace with `fake` mounted over `nft` (in a private
    /// mount namespace): a missing or misbehaving nft, without touching the machine's.
    pub fn lsports_with_nft(&self, fake: &Path, args: &[&str]) -> Output {
        let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("nft is installed");
        let mut cmd = self.enter(self.host.id(), "unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$0\" \"$1\" && shift && exec \"$@\"")
            .arg(fake)
            .arg(nft)
            .arg(lsports_bin())
            .args(args);
        output_guarded(cmd, "lsports with a fake nft in the lab's host")
    }

    /// What a new connection from `src` to the host's `port` sees: `pass`, `refused` or
    /// `timeout` (a timeout is retried with a longer wait, so a loaded machine cannot fake a
    /// drop).
    pub fn probe(&mut self, proto: &str, src: &str, port: u16) -> String {
        let first = self.probe_once(proto, src, port, 0.5);
        if first != "timeout" {
            return first;
        }
        self.probe_once(proto, src, port, 3.0)
    }

    fn probe_once(&mut self, proto: &str, src: &str, port: u16, timeout: f64) -> String {
        // A new source port each time: conntrack must not see an earlier probe's flow.
        self.sport += 1;
        let sport = 20_000 + self.sport;
        let dst = if src.contains(':') { HOST_V6 } else { HOST_V4 };
        let batch = json!([{"id": "0", "proto": proto, "src": src, "sport": sport,
            "dst": dst, "port": port, "timeout": timeout}]);
        writeln!(self.to_prober, "{batch}").unwrap();
        let mut line = String::new();
        self.from_prober
            .read_line(&mut line)
            .expect("the prober answers");
        let out: Value = serde_json::from_str(&line).unwrap();
        out["0"].as_str().unwrap_or("missing").to_string()
    }
}

fn ok(mut cmd: Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
