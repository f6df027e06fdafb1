//! Command-line contract: flags, usage errors and exit codes.
//!
//! Runs that would list sockets run inside a private network namespace with a
//! world of known sockets, so nothing depends on what listens on the host.

mod common;

use common::*;
use serde_json::json;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

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
        let out = run_host(args);
        assert_eq!(out.status.code(), Some(2), "lsports {args:?}: {out:?}");
        let err = stderr(&out);
        assert!(err.contains("longer than a year"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
