//! Command-line contract: flags, usage errors and exit codes.
//!
//! Runs that would list sockets run inside a private network namespace with a
//! world of known sockets, so nothing depends on what listens on the host.

mod common;

use common::*;
use serde_json::json;

#[test]
fn unknown_long_flag_is_usage_error_naming_it() {
    let out = run_host(&["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("--frobnicate"), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
}

#[test]
fn unknown_short_flag_is_usage_error_naming_it() {
    let out = run_host(&["-Q"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("-Q"), "{}", stderr(&out));
}

#[test]
fn bogus_source_is_usage_error() {
    let out = run_host(&["--source", "bogus"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("bogus"), "{}", stderr(&out));
    let out = run_host(&["--source=bogus"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_netns_path_that_is_no_namespace_is_refused_as_such() {
    // An ordinary file has an inode too: it must not be taken for a namespace that is gone.
    let out = run_host(&["--netns", "/etc/hostname", "-ltn"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("/etc/hostname is not a network namespace"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("no longer exists"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_prints_the_version() {
    for flag in ["--version", "-V"] {
        let out = run_host(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(env!("CARGO_PKG_VERSION")),
            "{flag} must print {}: {text:?}",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains("lsports"), "{flag}: {text:?}");
    }
}

#[test]
fn short_help_is_shorter_than_long_help() {
    let short = run_host(&["-h"]);
    let long = run_host(&["--help"]);
    assert_eq!(short.status.code(), Some(0), "{short:?}");
    assert_eq!(long.status.code(), Some(0), "{long:?}");
    assert!(!short.stdout.is_empty());
    assert!(
        short.stdout.len() < long.stdout.len(),
        "-h ({} bytes) must be shorter than --help ({} bytes)",
        short.stdout.len(),
        long.stdout.len()
    );
    let long = String::from_utf8_lossy(&long.stdout);
    for flag in ["--tcp", "--udp", "--all", "--json", "--source", "--wide"] {
        assert!(long.contains(flag), "--help mentions {flag}");
    }
}

#[test]
fn combined_and_repeated_flags_are_accepted() {
    let world = World::start(&json!([
        group("tcp", "127.0.0.1", "clitcp"),
        group("udp", "127.0.0.1", "cliudp"),
    ]));
    let all = rows_from_truth(&world.truth);
    let tcp = rows_from_truth(world.truth.iter().filter(|t| t.proto == "tcp"));
    let cases: &[(&[&str], &Vec<Row>)] = &[
        (&["-tulpn"], &all),
        (&["-tlnpe"], &tcp),
        (&["-t", "-t", "-n"], &tcp),
        (&["-tt", "-nn", "-l", "-l"], &tcp),
        (&["-p", "-p", "-n", "-W", "-W"], &all),
    ];
    for (args, want) in cases {
        let out = world.run(args);
        assert_eq!(out.status.code(), Some(0), "lsports {args:?}: {out:?}");
        let table = Table::parse(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            table.rows.len(),
            want.len(),
            "lsports {args:?}:\n{}",
            table.raw
        );
        let v = world.json(args);
        assert_same_rows(&format!("lsports {args:?}"), &rows_from_json(&v), want);
    }
}

/// A number too large for a duration is a usage error naming it, never a panic (exit 101).
#[test]
fn overflowing_durations_are_usage_errors() {
    let huge = "10000000000000000000s10000000000000000000s";
    for args in [
        &["--wait", "80", "--timeout", huge][..],
        &["watch", "--interval", huge],
        &["-c", "--interval", huge],
        &["--wait", "80", "--timeout", "8761h"],
    ] {
        let err = usage_error(args);
        assert!(err.contains("longer than a year"), "{args:?}: {err}");
    }
}

/// Output that cannot be written is an error (exit 1, a message), whether stdout is full or
/// closed (`>&-`); a reader closing the pipe early (`| head`) is the reader's choice: exit 0,
/// without a word about it.
#[test]
fn output_that_cannot_be_written_is_an_error_but_a_closed_pipe_is_not() {
    let world = World::start(&json!([group("tcp", "127.0.0.1", "cliout")]));
    let script = "$LSPORTS -tln >&- 2>\"$WORLD_DIR/closed.err\"; echo \"closed=$?\"\n\
         $LSPORTS -tln >/dev/full 2>\"$WORLD_DIR/full.err\"; echo \"full=$?\"\n\
         $LSPORTS -tln 2>\"$WORLD_DIR/pipe.err\" | head -c 1 >/dev/null; echo \"pipe=${PIPESTATUS[0]}\"\n\
         $LSPORTS --wait 1 --timeout 5s >&- 2>\"$WORLD_DIR/wait.err\"; echo \"wait=$?\"\n\
         $LSPORTS -tln 1<>/dev/null 2>\"$WORLD_DIR/devnull.err\"; echo \"devnull=$?\"\n";
    let (text, _) = world.script_ok(script);
    let err = |name: &str| std::fs::read_to_string(world.dir().join(name)).unwrap();
    assert!(text.contains("closed=1"), "{text}\n{}", err("closed.err"));
    assert!(
        err("closed.err").contains("standard output is closed"),
        "{}",
        err("closed.err")
    );
    assert!(text.contains("full=1"), "{text}");
    assert!(
        err("full.err").contains("No space left"),
        "{}",
        err("full.err")
    );
    assert!(text.contains("pipe=0"), "{text}");
    assert!(
        !err("pipe.err").contains("pipe"),
        "quietly: {}",
        err("pipe.err")
    );
    // /dev/null opened read-write (Python's subprocess.DEVNULL opens it so) is a place to
    // discard the output, not a closed stdout.
    assert!(text.contains("devnull=0"), "{text}\n{}", err("devnull.err"));
    assert_eq!(err("devnull.err"), "");
    // Nothing was to be written: a closed stdout is no loss.
    assert!(text.contains("wait=1"), "the wait times out: {text}");
    assert!(!err("wait.err").contains("closed"), "{}", err("wait.err"));
}

/// An audit and a wait answer with their exit status: a reader that closed the pipe before
/// the text was written (`| head -1`) must not turn "unexpected" or "timed out" into 0, and
/// no word is said about the pipe. A plain listing still ends quietly with 0.
#[test]
fn a_closed_pipe_keeps_the_verdict_of_an_audit_or_a_wait() {
    let world = World::start(&json!([group("tcp", "127.0.0.1", "pipeverdict")]));
    let port = world.one(0, "listen").port;
    // Runs the command with `$1` (stdout or stderr) on a pipe whose reader has already gone,
    // the other stream to `$2`: what `| head -1` does once it has its line.
    let script = format!(
        "gone() {{ python3 -c 'import os, subprocess, sys\n\
         r, w = os.pipe(); os.close(r)\n\
         err = open(sys.argv[2], \"w\")\n\
         pipe, other = (w, err) if sys.argv[1] == \"stdout\" else (err, w)\n\
         sys.exit(subprocess.run(sys.argv[3:], stdout=pipe, stderr=other).returncode)' \"$@\"; }}\n\
         gone stdout \"$WORLD_DIR/audit.err\" $LSPORTS audit --policy /dev/null; echo \"audit=$?\"\n\
         gone stderr \"$WORLD_DIR/free.out\" $LSPORTS --wait-free {port} --timeout 0; echo \"free=$?\"\n\
         gone stderr \"$WORLD_DIR/wait.out\" $LSPORTS --wait 1 --timeout 0; echo \"wait=$?\"\n\
         gone stdout \"$WORLD_DIR/list.err\" $LSPORTS -tln; echo \"list=$?\"\n"
    );
    let (text, _) = world.script_ok(&script);
    let read = |name: &str| std::fs::read_to_string(world.dir().join(name)).unwrap();
    assert!(
        text.contains("audit=1"),
        "unexpected listener: {text}\n{}",
        read("audit.err")
    );
    assert!(text.contains("free=1"), "port {port} is not free: {text}");
    assert!(text.contains("wait=1"), "nothing listens on port 1: {text}");
    assert!(text.contains("list=0"), "{text}\n{}", read("list.err"));
    for name in ["audit.err", "list.err", "free.out", "wait.out"] {
        let said = read(name);
        assert!(
            !said.to_lowercase().contains("pipe"),
            "quietly: {name}: {said}"
        );
    }
}

/// `--port` and `--wait` take the service names the table prints, from a services file the
/// test writes into a private /etc (a tmpfs in a private mount namespace).
#[test]
fn ports_are_given_by_the_service_names_the_table_prints() {
    let world = World::start(&json!([
        group("tcp", "127.0.0.1", "named"),
        group("tcp", "127.0.0.1", "unnamed"),
    ]));
    let named = world.one(0, "listen");
    let other = world.one(1, "listen");
    std::fs::write(
        world.dir().join("services"),
        format!(
            "# test services\nlsports-test {}/tcp lt-alias\n",
            named.port
        ),
    )
    .unwrap();
    let script = "unshare --mount --propagation private bash -e -c '\
         mount -t tmpfs lsports-etc /etc\n\
         cp \"$WORLD_DIR/services\" /etc/services\n\
         $LSPORTS -tl --numeric-hosts --numeric-users --port lsports-test\n\
         echo ---\n\
         $LSPORTS -tln --port lt-alias\n\
         echo ---\n\
         $LSPORTS --wait lsports-test --timeout 5s && echo wait=0\n\
         $LSPORTS -tln --port no-such-service 2>&1 || echo rc=$?\n\
         rm /etc/services; ln -s \"$WORLD_DIR/services\" /etc/services\n\
         $LSPORTS -tln --port lsports-test 2>&1 || echo rc=$?\n'";
    let (text, _) = world.script_ok(script);
    let parts: Vec<&str> = text.split("---\n").collect();
    let by_name = Table::parse(parts[0]);
    assert_eq!(by_name.rows.len(), 1, "{}", by_name.raw);
    let local = by_name.cell(&by_name.rows[0], "Local Address");
    assert_eq!(local, "127.0.0.1:lsports-test", "the table prints the name");
    let by_alias = Table::parse(parts[1]);
    assert_eq!(by_alias.rows.len(), 1, "{}", by_alias.raw);
    let local = by_alias.cell(&by_alias.rows[0], "Local Address");
    assert_eq!(local, format!("127.0.0.1:{}", named.port));
    assert!(!text.contains(&format!(":{}", other.port)), "{text}");
    assert!(parts[2].contains("wait=0"), "{text}");
    assert!(
        parts[2].contains(
            "\"no-such-service\" is not a port number (0-65535) or a service name in /etc/services"
        ),
        "{text}"
    );
    assert!(
        parts[2].contains("symbolic link"),
        "a linked file is not read: {text}"
    );
    assert_eq!(parts[2].matches("rc=2").count(), 2, "{text}");
}

/// netstat's `-tlnpo` lists as `-tlnp` does, with a note that lsports shows no timers.
#[test]
fn netstat_timers_flag_lists_with_a_note() {
    let world = World::start(&json!([group("tcp", "127.0.0.1", "clitimers")]));
    let want = rows_from_truth(world.truth.iter().filter(|t| t.proto == "tcp"));
    let out = world.run(&["-tlnpo"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stderr(&out).contains("timers"), "{}", stderr(&out));
    let table = Table::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(table.rows.len(), want.len(), "{}", table.raw);
    assert_same_rows(
        "-tlnpo --json",
        &rows_from_json(&world.json(&["-tlnpo"])),
        &want,
    );
}

#[test]
fn netstat_habits_get_a_hint_not_a_guess() {
    for (args, tip) in [
        (&["22"][..], "--port 22"),
        (&["sport", "=", ":22"], "--port 22"),
        (&["--sctp"], "ss -Slp"),
        (&["-tulpnx"], "ss -xlp"),
    ] {
        let err = usage_error(args);
        assert!(err.contains(tip), "{args:?}: {err}");
        assert!(!err.contains("--tcp"), "{args:?}: {err}");
    }
}

#[test]
fn capture_help_shows_only_what_capture_takes() {
    let out = run_host(&["capture", "-h"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    for refused in ["--tcp", "--format", "--columns", "--all"] {
        assert!(
            !help.contains(refused),
            "capture -h shows {refused}:\n{help}"
        );
        let out = run_host(&["capture", "x.tar", refused]);
        assert_ne!(out.status.code(), Some(0), "capture {refused} is refused");
    }
}

/// A value clap rejects is quoted in its usage error; one chosen to attack the terminal
/// (escape sequences, BEL, a bidi override) must come out escaped or left out, never raw, on
/// a terminal (clap colours its errors there) as off it. Exit 2 all the same.
#[test]
fn usage_errors_never_echo_a_rejected_value_raw() {
    let hostile = "x\u{1b}]0;pwned\u{7}\u{1b}[2Jy\u{202E}z\r";
    let cases: Vec<Vec<String>> = [
        &["-o", hostile][..],
        &["--format", hostile],
        &["--exposure", hostile],
        &["--generate", hostile],
        &["serve", "--listen", hostile],
        &["--address", hostile],
        &["watch", "--interval", hostile],
        &[hostile],
        &["-t", hostile],
        &[&format!("--{hostile}")],
    ]
    .iter()
    .map(|args| args.iter().map(|a| a.to_string()).collect())
    .collect();
    let tty = have("script");
    for args in &cases {
        let plain: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = usage_error(&plain);
        assert_terminal_safe(&format!("lsports {args:?}"), err.as_bytes());
        if !tty {
            continue;
        }
        let line: Vec<String> = std::iter::once(lsports_bin().display().to_string())
            .chain(args.iter().cloned())
            .map(|a| sh_quote(&a))
            .collect();
        let mut cmd = scrubbed("script");
        cmd.args(["-qec", &line.join(" "), "/dev/null"]);
        let out = output_guarded(cmd, &format!("script lsports {args:?}"));
        assert_eq!(
            out.status.code(),
            Some(2),
            "on a terminal: {args:?}: {out:?}"
        );
        // The terminal turns each newline into CR LF.
        let shown = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        assert!(shown.contains("error"), "on a terminal: {args:?}: {shown}");
        assert_terminal_safe(
            &format!("on a terminal: lsports {args:?}"),
            shown.as_bytes(),
        );
    }
}

/// Help and version are output too: when it cannot be written (a full disk, a closed stdout)
/// that is an error (exit 1, said on stderr); a reader closing the pipe early is not.
#[test]
fn help_and_version_that_cannot_be_written_are_errors() {
    for flag in ["-h", "--help", "--version", "-V"] {
        let script = format!(
            "\"$0\" {flag} >/dev/full 2>/dev/null; echo full=$?\n\
             \"$0\" {flag} >&- 2>/dev/null; echo closed=$?\n\
             \"$0\" {flag} 2>/dev/null | head -c 1 >/dev/null; echo pipe=${{PIPESTATUS[0]}}\n\
             \"$0\" {flag} 2>/dev/null >/dev/null; echo null=$?"
        );
        let mut cmd = scrubbed("bash");
        cmd.args(["-c", &script]).arg(lsports_bin());
        let out = output_guarded(cmd, flag);
        let text = String::from_utf8_lossy(&out.stdout);
        for want in ["full=1", "closed=1", "pipe=0", "null=0"] {
            assert!(text.contains(want), "{flag}: {want}: {text}");
        }
    }
}

/// A watch writes only when a listener opens or closes: with stdout closed it must fail at
/// once, as a listing does, not run unheard until killed.
#[test]
fn a_watch_with_stdout_closed_fails_at_start() {
    let script = "timeout 10 \"$0\" watch --port 1 >&-; echo watch=$?\n\
                  timeout 10 \"$0\" watch --port 1 --format jsonl >&-; echo jsonl=$?";
    let mut cmd = scrubbed("bash");
    cmd.args(["-c", script]).arg(lsports_bin());
    let out = output_guarded(cmd, "watch >&-");
    let text = stdout(&out);
    // 124 would be the timeout killing a watch that never noticed.
    assert!(text.contains("watch=1"), "{text}\n{}", stderr(&out));
    assert!(text.contains("jsonl=1"), "{text}\n{}", stderr(&out));
    assert!(
        stderr(&out).contains("standard output is closed"),
        "{}",
        stderr(&out)
    );
}

/// Root of a user namespace (`unshare -Ur`) is refused the processes outside it: the message
/// must say so, not blame a security module, for a listing as for a capture. A capture whose
/// reader left before the end (the pipe closed before it wrote) failed, and says so plainly.
#[test]
fn messages_name_the_real_reason() {
    let world = World::start(&json!([group("tcp", "127.0.0.1", "msgs")]));
    let script = "unshare -Ur \"$LSPORTS\" -tln >/dev/null 2>\"$WORLD_DIR/userns.err\"; echo userns=$?\n\
         unshare -Ur \"$LSPORTS\" capture \"$WORLD_DIR/snap.tar\" 2>\"$WORLD_DIR/capture.err\"; echo capture=$?\n\
         python3 -c 'import os, subprocess, sys\n\
r, w = os.pipe(); os.close(r)\n\
sys.exit(subprocess.run(sys.argv[1:], stdout=w).returncode)' \"$LSPORTS\" capture - 2>\"$WORLD_DIR/pipe.err\"; echo pipe=$?\n";
    let (text, _) = world.script_ok(script);
    let read = |name: &str| std::fs::read_to_string(world.dir().join(name)).unwrap();
    assert!(text.contains("userns=0"), "{text}\n{}", read("userns.err"));
    let said = read("userns.err");
    assert!(
        said.contains("could not be inspected")
            && said.contains("runs as root of a user namespace")
            && !said.contains("security module"),
        "{said}"
    );
    assert!(
        text.contains("capture=0"),
        "{text}\n{}",
        read("capture.err")
    );
    let said = read("capture.err");
    assert!(
        said.contains("capture from the host's user namespace to include them")
            && !said.contains("capture as root"),
        "{said}"
    );
    assert!(
        text.contains("pipe=1"),
        "a cut-short capture failed: {text}"
    );
    let said = read("pipe.err");
    assert!(
        said.starts_with("lsports: cannot write the snapshot to standard output: ")
            && said.contains("no whole snapshot"),
        "{said}"
    );
}
