//! `--wait` and `--wait-free` against listeners that appear and vanish while lsports waits,
//! in a private network namespace. The only timing assertions are generous upper bounds that
//! catch a hang (the harness also kills anything running for minutes).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The lines of a script that start lsports with `args` in the background, let it wait for a
/// second, and fail unless it is still waiting by then.
fn start_waiting(args: &str) -> String {
    format!(
        "$LSPORTS {args} 2>\"$WORLD_DIR/wait.err\" & W=$!\n\
         sleep 1\n\
         kill -0 $W 2>/dev/null || {{ echo 'lsports stopped waiting too early' >&2; cat \"$WORLD_DIR/wait.err\" >&2; exit 90; }}\n"
    )
}

/// The lines that collect the waiting lsports' exit status into `rc=N` on stdout.
const COLLECT: &str = "wait $W; echo \"rc=$?\"; cat \"$WORLD_DIR/wait.err\" >&2\n";

#[test]
fn wait_returns_once_a_delayed_listener_appears() {
    let world = World::start(&json!([]));
    let late = Listener::new("late", json!([{"addr": "127.0.0.1", "port": 18080}]));
    let script = format!(
        "{wait}{start}{collect}{stop}",
        wait = start_waiting("--wait 18080 --timeout 120s"),
        start = late.start(None),
        collect = COLLECT,
        stop = late.stop(),
    );
    let started = Instant::now();
    let (out, err) = world.script_ok(&script);
    assert!(out.contains("rc=0"), "stdout: {out}\nstderr: {err}");
    assert!(err.is_empty(), "a successful wait is silent: {err}");
    assert!(started.elapsed() < Duration::from_secs(100), "hang guard");
}

#[test]
fn wait_for_several_ports_and_protocols() {
    let world = World::start(&json!([]));
    let late = Listener::new(
        "several",
        json!([
            {"addr": "::", "port": 18081, "v6only": false},
            {"proto": "udp", "addr": "0.0.0.0", "port": 18082}
        ]),
    );
    let script = format!(
        "{wait}{start}{collect}{stop}",
        wait = start_waiting("--wait 18081,18082 --timeout 120s -v"),
        start = late.start(None),
        collect = COLLECT,
        stop = late.stop(),
    );
    let (out, err) = world.script_ok(&script);
    assert!(out.contains("rc=0"), "stdout: {out}\nstderr: {err}");
    // -v says how it polls: a kernel-side port filter; and at the end, who listens.
    assert!(
        err.contains("tcp/ipv4: 0 sockets from netlink sock_diag, ports filtered by the kernel"),
        "{err}"
    );
    assert!(err.contains("ports 18081, 18082: listening after"), "{err}");
    for holder in ["tcp *:18081 held by ", "udp 0.0.0.0:18082 held by "] {
        let line = err.lines().find(|l| l.contains(holder)).expect(holder);
        assert!(line.ends_with("/several"), "{err}");
    }
}

#[test]
fn wait_times_out_with_a_message_naming_the_missing_port() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "present",
        json!({"port": 18090})
    )]));
    let started = Instant::now();
    let out = world.run(&["--wait", "18090,18091", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(
        err.trim_end(),
        "lsports: --wait timed out after 1s: nothing listens on port 18091",
    );
    assert!(started.elapsed() < Duration::from_secs(60), "hang guard");
}

#[test]
fn timeout_zero_checks_once() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "present",
        json!({"port": 18095})
    )]));
    let now = world.run(&["--wait", "18095", "--timeout", "0"]);
    assert_eq!(now.status.code(), Some(0), "{}", stderr(&now));
    let absent = world.run(&["--wait", "18096", "--timeout", "0", "-t"]);
    assert_eq!(absent.status.code(), Some(1));
    assert!(stderr(&absent).contains("nothing listens on port 18096"));
    // -u narrows the wait to UDP, where nothing listens on 18095.
    let udp = world.run(&["--wait", "18095", "--timeout", "0", "-u"]);
    assert_eq!(udp.status.code(), Some(1));
}

#[test]
fn wait_without_process_filters_scans_no_process() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "present",
        json!({"port": 18097})
    )]));
    // With /proc out of reach a process scan would fail loudly; a wait does not need one.
    // (--proc-root alone implies --source proc; auto keeps the live sockets.)
    let out = world.run(&[
        "--wait",
        "18097",
        "--timeout",
        "30s",
        "--proc-root",
        "/nonexistent",
        "--source",
        "auto",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    // A process filter is "asking": the scan happens and the filter decides.
    let named = world.run(&["--wait", "18097", "--timeout", "0", "--program", "present"]);
    assert_eq!(named.status.code(), Some(0), "{}", stderr(&named));
    let other = world.run(&["--wait", "18097", "--timeout", "0", "--program", "other"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr(&other).contains("nothing the filters keep listens on port 18097"),
        "{}",
        stderr(&other)
    );
}

#[test]
fn wait_works_from_the_proc_source_too() {
    let world = World::start(&json!([]));
    let late = Listener::new("procsrc", json!([{"addr": "::1", "port": 18098}]));
    let script = format!(
        "{wait}{start}{collect}{stop}",
        wait = start_waiting("--wait 18098 --timeout 120s --source proc"),
        start = late.start(None),
        collect = COLLECT,
        stop = late.stop(),
    );
    let (out, err) = world.script_ok(&script);
    assert!(out.contains("rc=0"), "stdout: {out}\nstderr: {err}");
}

#[test]
fn wait_free_returns_once_the_listener_is_gone() {
    let world = World::start(&json!([]));
    let busy = Listener::new("busy", json!([{"addr": "0.0.0.0", "port": 18100}]));
    let script = format!(
        "{start}{wait}{stop}{collect}",
        start = busy.start(None),
        wait = start_waiting("--wait-free 18100 --timeout 120s"),
        stop = busy.stop(),
        collect = COLLECT,
    );
    let (out, err) = world.script_ok(&script);
    assert!(out.contains("rc=0"), "stdout: {out}\nstderr: {err}");
}

#[test]
fn wait_free_timeout_names_who_holds_the_port() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "squatter",
        json!({"port": 18110})
    )]));
    let pid = world.one(0, "listen").pids[0];
    let out = world.run(&["--wait-free", "18110-18112", "--timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "lsports: --wait-free timed out after 500ms: port 18110 still in use",
            &format!("lsports:   tcp 127.0.0.1:18110 held by {pid}/squatter"),
        ]
    );
    let free = world.run(&["--wait-free", "18111", "--timeout", "0"]);
    assert_eq!(free.status.code(), Some(0));
}

#[test]
fn wait_flags_that_cannot_apply_are_usage_errors() {
    for args in [
        &["--timeout", "5s"][..],
        &["--wait", "80", "--wait-free", "81"],
        &["--wait", "80", "--format", "csv"],
        &["--wait", "80", "-a"],
        &["--wait", "0"],
        &["--wait", "no-such-service-lsports"],
        &["--wait", "80", "--timeout", "8761h"],
        &["--wait", "80", "--timeout", "soon"],
    ] {
        usage_error(args);
    }
}

/// Unprivileged, the holder of root's listener cannot be seen, so a process filter can neither
/// keep nor drop it: `--wait-free` must not call the port free (a script would start into
/// EADDRINUSE), `--wait` must say why it cannot end, and the listing why it shows nothing.
#[test]
fn a_holder_that_cannot_be_seen_is_neither_free_nor_ignored() {
    let world = World::start(&json!([group_with(
        "tcp",
        "0.0.0.0",
        "evil",
        json!({"port": 18120})
    )]));
    let Some(out) = world.run_as_nobody(&[
        "--wait-free",
        "18120",
        "--program",
        "ev*",
        "--timeout",
        "500ms",
    ]) else {
        return;
    };
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--wait-free timed out after 500ms: port 18120 still in use"),
        "{err}"
    );
    assert!(
        err.contains("tcp 0.0.0.0:18120 held by no process lsports can see"),
        "{err}"
    );
    assert!(err.contains("could not be inspected"), "{err}");
    // As root the holder is seen, and another program's filter leaves the port free.
    let root = world.run(&[
        "--wait-free",
        "18120",
        "--program",
        "other",
        "--timeout",
        "0",
    ]);
    assert_eq!(root.status.code(), Some(0), "{}", stderr(&root));

    let out = world
        .run_as_nobody(&["--wait", "18120", "--program", "ev*", "--timeout", "500ms"])
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("something listens on port 18120, but its holder could not be inspected"),
        "{err}"
    );

    let out = world
        .run_as_nobody(&["-tln", "--port", "18120", "--program", "ev*"])
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 socket left out by the process filters"),
        "{}",
        stderr(&out)
    );
}
