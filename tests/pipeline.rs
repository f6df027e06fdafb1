//! Every action goes through the one pipeline, so the flags about where sockets and owners come
//! from (`--source`, `--attribution`) apply to each: list, audit, baseline save, watch, `-c`
//! and `--wait`. Each runs with `-v` in a private network namespace, where netlink works and
//! the BPF iterator would not pay off: only the flags can make `-v` say `/proc/net` and the
//! plain walk.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// The port the world's one listener is bound to.
const PORT: u16 = 18_600;

/// How long a script waits for `watch` or `-c` to print its first poll: a hang guard.
const GUARD: Duration = Duration::from_secs(120);

/// What `-v` says when the walk ran because `--attribution walk` asked for it (under `auto`
/// the line goes on to say why the iterator was not used).
const WALK_AS_ASKED: &str = "lsports: process owners from the /proc/*/fd walk";

/// Assert that `stderr` (of `action`) says every table came from `/proc/net` and the owners
/// from the walk, as asked.
fn assert_flags_applied(action: &str, stderr: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    for table in ["tcp/ipv4", "tcp/ipv6", "udp/ipv4", "udp/ipv6"] {
        let prefix = format!("lsports: {table}: ");
        let line = lines.iter().find(|l| l.starts_with(&prefix));
        assert!(
            line.is_some_and(|l| l.ends_with("sockets from /proc/net")),
            "{action}: --source proc must feed {table} from /proc/net:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("netlink"),
        "{action}: --source proc reads no netlink:\n{stderr}"
    );
    assert!(
        lines.contains(&WALK_AS_ASKED),
        "{action}: -v must say the walk ran, as --attribution walk asked:\n{stderr}"
    );
}

/// A script that runs lsports `args` in the background until its output has `ready` in it,
/// stops it with SIGTERM and prints its status and stderr in sections.
fn until_printed(args: &str, ready: &str) -> String {
    let polls = GUARD.as_secs() * 20;
    format!(
        "$LSPORTS {args} >\"$WORLD_DIR/out\" 2>\"$WORLD_DIR/err\" & W=$!\n\
         for _ in $(seq {polls}); do grep -q -- '{ready}' \"$WORLD_DIR/out\" && break; sleep 0.05; done\n\
         kill -TERM $W; wait $W; echo '=== rc'; echo $?\n\
         echo '=== out'; cat \"$WORLD_DIR/out\"; echo '=== err'; cat \"$WORLD_DIR/err\"\n"
    )
}

#[test]
fn source_and_attribution_apply_to_every_action() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "steady",
        json!({"port": PORT})
    )]));
    let pid = world.one(0, "listen").pids[0];
    let common = ["-v", "--source", "proc", "--attribution", "walk"];
    let baseline = world.dir().join("baseline.toml");
    let baseline = baseline.to_str().unwrap();
    let port = PORT.to_string();
    let one_shot: [(&str, Vec<&str>); 4] = [
        ("list", vec![]),
        ("baseline save", vec!["baseline", "save", baseline]),
        ("audit", vec!["audit", "--baseline", baseline]),
        ("--wait", vec!["--wait", &port, "--timeout", "60s"]),
    ];
    for (action, args) in one_shot {
        let args: Vec<&str> = args.into_iter().chain(common).collect();
        let out = world.run(&args);
        assert_success(&out, &args);
        assert_flags_applied(action, &stderr(&out));
    }
    // The wait names who listens, from the walk it asked for.
    let out = world.run(&[&["--wait", &port, "--timeout", "0"][..], &common].concat());
    let holder = format!("lsports:   tcp 127.0.0.1:{PORT} held by {pid}/steady");
    assert!(
        stderr(&out).lines().any(|l| l == holder),
        "{}",
        stderr(&out)
    );
    let common = common.join(" ");
    for (action, args, ready) in [
        ("watch", format!("watch {common}"), format!(":{PORT}")),
        (
            "-c",
            format!("-c --interval 100ms {common}"),
            format!(":{PORT}"),
        ),
    ] {
        let (sections, _) = world.script_sections(&until_printed(&args, &ready));
        assert_eq!(sections["rc"].trim(), "0", "{action}: {sections:?}");
        assert!(sections["out"].contains(&ready), "{action}: {sections:?}");
        assert_flags_applied(action, &sections["err"]);
    }
}

#[test]
fn wait_with_attribution_walk_says_the_walk_ran() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "waited",
        json!({"port": PORT + 1})
    )]));
    let port = (PORT + 1).to_string();
    let out = world.run(&["--wait", &port, "--attribution", "walk", "-v"]);
    assert_success(&out, &["--wait", &port]);
    let err = stderr(&out);
    assert!(err.lines().any(|l| l == WALK_AS_ASKED), "{err}");
    // The collection stays the kernel-filtered dump a wait has always polled.
    assert!(
        err.contains("tcp/ipv4: 1 sockets from netlink sock_diag, ports filtered by the kernel"),
        "{err}"
    );
}
