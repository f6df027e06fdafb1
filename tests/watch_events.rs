//! `lsports watch --events`: listeners learned from kernel events. As root, in private network
//! namespaces, listeners that live a millisecond (far less than any poll interval) must be
//! reported opened and closed with their pid and port; a ring buffer overrun must be reported
//! and followed by a resynchronising poll. Unprivileged, `auto` falls back to polling and says
//! so under `-v`, and `kernel` fails. No timing is asserted: every wait polls for an outcome,
//! under the harness's hang guard.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use nix::sys::signal::Signal;
use serde_json::{Value, json};

/// Opens each listener of argv (`PROTO ADDR PORT`, port 0 for any) in turn, keeps it a
/// millisecond, closes it, and prints `PROTO PORT` for each, after its own pid. Names itself
/// first, so its command name is known.
const FLASH_PY: &str = r#"
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, ctypes.create_string_buffer(os.environ.get("FLASH_NAME", "flash").encode(), 16), 0, 0, 0)
print(os.getpid())
args = sys.argv[1:]
for i in range(0, len(args), 3):
    proto, addr, port = args[i], args[i + 1], int(args[i + 2])
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.bind((addr, port))
    if proto == "tcp":
        s.listen(8)
    print(proto, s.getsockname()[1], flush=True)
    time.sleep(0.001)
    s.close()
"#;

/// Held by the tests whose watch sees other namespaces' events (`--netns all`) and by the one
/// that floods the ring: a flood while the other runs would, rightly, be reported as lost
/// events there too.
static WHOLE_HOST: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn whole_host() -> std::sync::MutexGuard<'static, ()> {
    WHOLE_HOST
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `lsports watch` running in a namespace, its output in files.
struct Watch {
    process: Spawned,
    out: PathBuf,
    err: PathBuf,
}

impl Watch {
    /// `lsports watch --events kernel --changes-only MORE` in `world`, once its first poll is
    /// done.
    fn kernel(world: &World, more: &[&str]) -> Watch {
        let args = [&["--events", "kernel", "--changes-only"][..], more].concat();
        Watch::start(world.enter(), world.dir(), &args, "with kernel events")
    }
    /// Start `lsports watch ARGS --format jsonl -v` through `enter` (a command that runs the
    /// rest of its arguments), and wait until its first poll is done.
    fn start(mut cmd: std::process::Command, dir: &Path, args: &[&str], ready: &str) -> Watch {
        let (out, err) = (dir.join("watch.out"), dir.join("watch.err"));
        cmd.arg(lsports_bin())
            .arg("watch")
            .args(args)
            .args(["--format", "jsonl", "-v"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut process = Spawned::start(cmd, "lsports watch");
        let text = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        process.wait_for(&format!("watch to say {ready:?}"), || {
            text(&err).contains(ready).then_some(())
        });
        Watch { process, out, err }
    }

    /// The events printed so far.
    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect()
    }

    /// Wait until an event matches `want`.
    fn wait_for(&mut self, what: &str, want: impl Fn(&Value) -> bool) {
        let out = self.out.clone();
        self.process.wait_for(what, || {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|e| want(&e))
                .then_some(())
        });
    }

    /// Stop with SIGTERM; the exit status must be 0; the events and stderr.
    fn stop(mut self) -> (Vec<Value>, String) {
        self.process.signal(Signal::SIGTERM);
        let status = self.process.wait();
        let err = std::fs::read_to_string(&self.err).unwrap_or_default();
        assert!(status.success(), "watch exited {status}: {err}");
        (self.events(), err)
    }
}

/// An event reduced to what these tests check: (event, proto, family, port, pid, program).
fn seen(e: &Value) -> (String, String, String, u64, u64, String) {
    (
        e["event"].as_str().unwrap_or_default().into(),
        e["proto"].as_str().unwrap_or_default().into(),
        e["family"].as_str().unwrap_or_default().into(),
        e["port"].as_u64().unwrap_or_default(),
        e["pid"].as_u64().unwrap_or_default(),
        e["program"].as_str().unwrap_or_default().into(),
    )
}

fn is(e: &Value, kind: &str, port: u64) -> bool {
    e["event"] == kind && e["port"] == port
}

/// Run FLASH_PY with `listeners` through `cmd`; its pid and the ports it got, in order.
fn flash(mut cmd: std::process::Command, dir: &Path, listeners: &[&str]) -> (u64, Vec<u64>) {
    let py = dir.join("flash.py");
    std::fs::write(&py, FLASH_PY).unwrap();
    cmd.arg("python3").arg(&py).args(listeners);
    let out = output_guarded(cmd, "flash.py");
    assert_success(&out, &["flash.py"]);
    let text = stdout(&out);
    let mut lines = text.lines();
    let pid = lines.next().unwrap().trim().parse().unwrap();
    let ports = lines
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    (pid, ports)
}

fn resident_world() -> World {
    World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "resident",
        json!({"port": 18500})
    )]))
}

/// Run the Python `script` in `world`; the numbers it prints on its first line (its pid
/// first). It lives on until the [`Spawned`] is dropped (its stdin, a pipe, closes then).
fn python_in(world: &World, script: &str, what: &str) -> (Spawned, Vec<u64>) {
    let mut cmd = world.enter();
    cmd.args(["python3", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = Spawned::start(cmd, what);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.child_mut().stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let printed = (line.split_whitespace())
        .map(|n| {
            n.parse()
                .unwrap_or_else(|e| panic!("{what} printed {line:?}: {e}"))
        })
        .collect();
    (child, printed)
}

/// The network namespace inode of a world (what its sockets' `netns.inode` is).
fn netns_inode(world: &World) -> u64 {
    std::fs::metadata(format!("/proc/{}/ns/net", world.pid()))
        .unwrap()
        .ino()
}

#[test]
fn listeners_living_a_millisecond_are_reported_opened_and_closed() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let world = resident_world();
    let mut watch = Watch::kernel(&world, &["--program", "flash"]);
    // A listener of the host's namespace, not the watched one, and one of a program the
    // filter leaves out: never reported.
    let host_dir = tempfile::tempdir().unwrap();
    let (_, host_ports) = flash(scrubbed("env"), host_dir.path(), &["tcp", "127.0.0.1", "0"]);
    let mut other = world.enter();
    other.env("FLASH_NAME", "other");
    let (_, other_ports) = flash(other, world.dir(), &["udp", "127.0.0.1", "0"]);
    let (pid, ports) = flash(
        world.enter(),
        world.dir(),
        &["tcp", "127.0.0.1", "0", "udp", "::", "0"],
    );
    let (tcp, udp) = (ports[0], ports[1]);
    watch.wait_for("the UDP listener's close", |e| is(e, "closed", udp));
    let (events, err) = watch.stop();
    let got: Vec<_> = events.iter().map(seen).collect();
    let want = |kind: &str, proto: &str, family: &str, port| {
        (
            kind.into(),
            proto.into(),
            family.into(),
            port,
            pid,
            "flash".into(),
        )
    };
    assert_eq!(
        got,
        [
            want("opened", "tcp", "ipv4", tcp),
            want("closed", "tcp", "ipv4", tcp),
            want("opened", "udp", "ipv6", udp),
            want("closed", "udp", "ipv6", udp),
        ],
        "host port {host_ports:?} and other's {other_ports:?} must not show; stderr: {err}"
    );
    // The same socket object as a listing's, placed in the watched namespace.
    for event in &events {
        assert_valid_as(event, "watch_event", "a kernel watch event");
        assert_eq!(event["netns"]["inode"], netns_inode(&world), "{event}");
        assert_eq!(event["source"], "event", "{event}");
        assert_eq!(event["processes"][0]["pid"], pid, "{event}");
    }
    assert_eq!(events[0]["local_addr"], "127.0.0.1");
    assert_eq!(events[2]["local_addr"], "::");
}

#[test]
fn netns_all_reports_each_namespace_s_listeners_in_their_namespace() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let _alone = whole_host();
    let worlds = [resident_world(), resident_world(), resident_world()];
    let dir = tempfile::tempdir().unwrap();
    let mut watch = Watch::start(
        scrubbed("env"),
        dir.path(),
        &[
            "--events",
            "kernel",
            "--netns",
            "all",
            "--changes-only",
            "--port",
            "18510-18519",
        ],
        "with kernel events",
    );
    let mut want = BTreeSet::new();
    for (i, world) in worlds.iter().enumerate() {
        let (tcp, udp) = ((18510 + i).to_string(), (18515 + i).to_string());
        let (pid, _) = flash(
            world.enter(),
            world.dir(),
            &["tcp", "0.0.0.0", &tcp, "udp", "127.0.0.1", &udp],
        );
        let inode = netns_inode(world);
        for port in [&tcp, &udp] {
            for kind in ["opened", "closed"] {
                want.insert((kind.to_string(), port.parse::<u64>().unwrap(), pid, inode));
            }
        }
    }
    // Kernel events are host-wide: the same ports opened in namespaces of other processes
    // (this test run elsewhere on the machine) are reported too, rightly; only the worlds'
    // namespaces are this test's to judge.
    let ours: Vec<u64> = worlds.iter().map(netns_inode).collect();
    let last = ours[2];
    watch.wait_for("the last close", |e| {
        is(e, "closed", 18517) && e["netns"]["inode"] == last
    });
    let (events, err) = watch.stop();
    // A "lost" event (no socket, no netns) means something else on the host flooded the ring
    // while this ran: then this run cannot judge exactness, and says so plainly.
    let lost: Vec<&Value> = events.iter().filter(|e| e["event"] == "lost").collect();
    assert!(
        lost.is_empty(),
        "kernel events were lost to another process's burst: {lost:?}"
    );
    let events: Vec<Value> = (events.into_iter())
        .filter(|e| (e["netns"]["inode"].as_u64()).is_some_and(|inode| ours.contains(&inode)))
        .collect();
    let got: BTreeSet<_> = events
        .iter()
        .map(|e| {
            let (kind, _, _, port, pid, _) = seen(e);
            (kind, port, pid, e["netns"]["inode"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(got, want, "stderr: {err}");
    assert_eq!(events.len(), 12, "each once: {events:?}");
}

#[test]
fn a_burst_larger_than_the_ring_is_reported_lost_then_read_again() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let _alone = whole_host();
    let world = resident_world();
    let mut watch = Watch::kernel(&world, &[]);
    // Stopped, it reads nothing: 6,000 binds and releases (12,000 records) overrun the ring
    // (256 KiB, about 2,900 records), and the listener opened last finds no room.
    watch.process.signal(Signal::SIGSTOP);
    let script = "import socket, os, time\n\
        for _ in range(6000):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    \
        s.bind(('127.0.0.1', 0)); s.close()\n\
        l = socket.socket(); l.bind(('127.0.0.1', 18520)); l.listen(8)\n\
        print(os.getpid(), flush=True)\n\
        time.sleep(300)\n";
    let (_burst, printed) = python_in(&world, script, "the burst");
    let pid = printed[0];
    watch.process.signal(Signal::SIGCONT);
    watch.wait_for("the listener, read again", |e| is(e, "opened", 18520));
    let (events, err) = watch.stop();
    let lost = events
        .iter()
        .position(|e| e["event"] == "lost")
        .unwrap_or_else(|| panic!("no lost event; stderr: {err}"));
    assert!(
        events[lost]["lost"].as_u64().unwrap() > 0,
        "{}",
        events[lost]
    );
    let opened: Vec<usize> = (0..events.len())
        .filter(|&i| is(&events[i], "opened", 18520))
        .collect();
    assert_eq!(opened.len(), 1, "reported once");
    assert!(opened[0] > lost, "found by the poll after the loss");
    assert_eq!(events[opened[0]]["pid"], pid);
    assert_eq!(events[opened[0]]["source"], "netlink");
}

#[test]
fn unprivileged_auto_polls_and_says_why_while_kernel_fails() {
    if !need_root("running lsports as another user") {
        return;
    }
    let world = resident_world();
    let mut nobody = world.enter();
    nobody.args(AS_NOBODY);
    let watch = Watch::start(
        nobody,
        world.dir(),
        &["--events", "auto", "--changes-only"],
        "polling every",
    );
    let (_, err) = watch.stop();
    assert!(
        err.contains("kernel events unavailable, polling instead: kernel events need root"),
        "{err}"
    );
    assert!(err.contains("missing CAP_BPF"), "{err}");
    let out = world
        .run_as_nobody(&["watch", "--events", "kernel"])
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("lsports: --events kernel: kernel events need root"),
        "{err}"
    );
    assert!(stdout(&out).is_empty(), "no event before the refusal");
}

#[test]
fn poll_is_what_it_says_and_minus_c_refuses_events() {
    let world = resident_world();
    let watch = Watch::start(
        world.enter(),
        world.dir(),
        &["--events", "poll"],
        "polling every",
    );
    let (events, err) = watch.stop();
    assert!(!err.contains("kernel events"), "{err}");
    assert_eq!(events.len(), 1, "the resident listener: {events:?}");
    assert_eq!(events[0]["event"], "present");
    let message = usage_error(&["watch", "-c", "--events", "kernel"]);
    assert!(
        message.contains("--events applies to its events"),
        "{message}"
    );
}

#[test]
fn a_udp_socket_autobound_by_sendto_is_found_by_the_reconciling_poll() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let world = resident_world();
    // Reading the tables every 10 intervals: every second here.
    let mut watch = Watch::kernel(&world, &["--interval", "100ms"]);
    // No bind(): sendto gives the socket a port, and no hook sees it.
    let script = "import socket, os, time\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s.sendto(b'x', ('127.0.0.1', 9))\n\
        print(os.getpid(), s.getsockname()[1], flush=True)\n\
        time.sleep(300)\n";
    let (_sender, printed) = python_in(&world, script, "the sender");
    let (pid, port) = (printed[0], printed[1]);
    watch.wait_for("the autobound socket", |e| is(e, "opened", port));
    let (events, _) = watch.stop();
    let opened = events.iter().find(|e| is(e, "opened", port)).unwrap();
    assert_eq!(opened["pid"], pid);
    assert_eq!(opened["source"], "netlink", "from the poll, not an event");
}

#[test]
fn protocol_and_family_flags_choose_the_events_as_they_choose_the_tables() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let world = resident_world();
    let mut watch = Watch::kernel(&world, &["-u", "-4"]);
    // One listener of each table; only udp/ipv4 is asked for.
    let (pid, ports) = flash(
        world.enter(),
        world.dir(),
        &[
            "tcp",
            "127.0.0.1",
            "0",
            "tcp",
            "::1",
            "0",
            "udp",
            "::1",
            "0",
            "udp",
            "127.0.0.1",
            "0",
        ],
    );
    let udp4 = ports[3];
    watch.wait_for("the udp/ipv4 listener's close", |e| is(e, "closed", udp4));
    let (events, err) = watch.stop();
    let got: Vec<_> = events.iter().map(seen).collect();
    let want = |kind: &str| {
        (
            kind.into(),
            "udp".into(),
            "ipv4".into(),
            udp4,
            pid,
            "flash".into(),
        )
    };
    assert_eq!(
        got,
        [want("opened"), want("closed")],
        "ports {ports:?}: tcp and ipv6 must not show; stderr: {err}"
    );
}

#[test]
fn a_udp_socket_bound_then_connected_is_closed_when_it_connects() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let world = resident_world();
    // Reading the tables again only every 1,000 s: a close seen here came from an event.
    let mut watch = Watch::kernel(&world, &["--interval", "100s"]);
    // A client that chose its port (bound, then connected) and a listener (bound only), both
    // kept open until stdin closes.
    let script = "import socket, os, sys\n\
        c = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); c.bind(('::1', 0))\n\
        c.connect(('::1', 18500))\n\
        l = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); l.bind(('127.0.0.1', 0))\n\
        print(os.getpid(), c.getsockname()[1], l.getsockname()[1], flush=True)\n\
        sys.stdin.read()\n";
    let (both, printed) = python_in(&world, script, "the client and the listener");
    let (pid, client, listener) = (printed[0], printed[1], printed[2]);
    // The ring keeps the kernel's order: the client's close, if any, comes before this.
    watch.wait_for("the listener's open", |e| is(e, "opened", listener));
    let (events, err) = watch.stop();
    let got: Vec<_> = events.iter().map(seen).collect();
    let event = |kind: &str, family: &str, port| {
        (
            kind.into(),
            "udp".into(),
            family.into(),
            port,
            pid,
            "python3".into(),
        )
    };
    let want = [
        event("opened", "ipv6", client),
        event("closed", "ipv6", client),
        event("opened", "ipv4", listener),
    ];
    assert_eq!(got, want, "the listener is still open; stderr: {err}");
    drop(both);
}

#[test]
fn a_listener_bound_to_a_device_has_its_device_and_exposure() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let world = resident_world();
    let mut watch = Watch::kernel(&world, &["--interval", "100s"]);
    // On every address, but bound to the loopback device: only this host can connect.
    let script = "import socket, os, sys\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'lo')\n\
        s.bind(('0.0.0.0', 0)); s.listen(8)\n\
        print(os.getpid(), s.getsockname()[1], flush=True)\n\
        sys.stdin.read()\n";
    let (listener, printed) = python_in(&world, script, "the device-bound listener");
    let port = printed[1];
    watch.wait_for("the listener's open", |e| is(e, "opened", port));
    let (events, err) = watch.stop();
    drop(listener);
    let opened = events.iter().find(|e| is(e, "opened", port)).unwrap();
    assert_eq!(opened["source"], "event", "{opened}");
    assert_eq!(opened["interface"], "lo", "{opened}; stderr: {err}");
    assert_eq!(opened["exposure"], "loopback", "{opened}");
    assert_eq!(opened["flags"], json!([]), "not root-exposed: {opened}");
}

/// A dual-stack IPv6 listener (Python's default for `::`) and an IPv6-only one, learned from
/// kernel events, must say which they are as a poll does (F10): `v6only` false or true, so the
/// text shows `*:P` for the dual-stack one, not `[::]:P` (IPv6 only), and both reach IPv4
/// only where they should.
#[test]
fn kernel_events_tell_dual_stack_from_ipv6_only() {
    if !need_root("loading the kernel event programs") {
        return;
    }
    let world = resident_world();
    let mut watch = Watch::kernel(&world, &["--interval", "100s"]);
    let script = "import socket as S, os, sys\n\
        t = S.socket(S.AF_INET6); t.bind(('::', 0)); t.listen(8)\n\
        u = S.socket(S.AF_INET6, S.SOCK_DGRAM); u.bind(('::', 0))\n\
        o = S.socket(S.AF_INET6); o.setsockopt(S.IPPROTO_IPV6, S.IPV6_V6ONLY, 1)\n\
        o.bind(('::', 0)); o.listen(8)\n\
        print(os.getpid(), t.getsockname()[1], u.getsockname()[1], o.getsockname()[1], flush=True)\n\
        sys.stdin.read()\n";
    let (listeners, printed) = python_in(&world, script, "the IPv6 listeners");
    let (dual_tcp, dual_udp, only) = (printed[1], printed[2], printed[3]);
    watch.wait_for("the last listener's open", |e| is(e, "opened", only));
    watch.wait_for("the UDP listener's open", |e| is(e, "opened", dual_udp));
    let (events, err) = watch.stop();
    drop(listeners);
    for (port, v6only, families) in [
        (dual_tcp, false, json!(["ipv4", "ipv6"])),
        (dual_udp, false, json!(["ipv4", "ipv6"])),
        (only, true, json!(["ipv6"])),
    ] {
        let opened = events.iter().find(|e| is(e, "opened", port)).unwrap();
        assert_eq!(opened["source"], "event", "{opened}; stderr: {err}");
        assert_eq!(opened["v6only"], v6only, "{opened}");
        assert_eq!(opened["reachable_families"], families, "{opened}");
        let unknown = opened["unknown_fields"].as_array().unwrap();
        assert!(!unknown.contains(&json!("v6only")), "{opened}");
    }
}
