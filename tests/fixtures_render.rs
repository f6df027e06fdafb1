//! Every fixture proc tree and snapshot, rendered as a table and as JSON, pinned with insta.
//!
//! Each case runs the real binary over the tree (`--proc-root DIR --source proc`), with every
//! state (`-a`), so a change in parsing, attribution or rendering of any edge case shows up as
//! a reviewable snapshot diff (`cargo insta review`, or `INSTA_UPDATE=always cargo test`).
//! Machine-dependent text is redacted: the fixture's absolute path in warnings, and user names
//! (the uid → name mapping is the host's, not the fixture's).

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// stdout, then stderr under a marker, with `root` replaced by `[ROOT]`.
fn run_redacted(root: &Path, args: &[&str]) -> (String, String) {
    let root_text = root.to_str().unwrap();
    let mut all = vec!["--proc-root", root_text, "--source", "proc"];
    all.extend_from_slice(args);
    let out = run_host(&all);
    assert_success(&out, &all);
    let redact = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(root_text, "[ROOT]");
    (redact(&out.stdout), redact(&out.stderr))
}

/// The table with every column and state, and what lsports said on stderr.
fn table(root: &Path) -> String {
    let (stdout, stderr) = run_redacted(root, &["-a", "-n", "-e", "-W"]);
    format!("{stdout}--- stderr ---\n{stderr}")
}

/// The JSON of every state, with user names redacted.
fn json(root: &Path) -> String {
    let (stdout, _) = run_redacted(root, &["-a", "--json"]);
    let mut value = parse_json(stdout.as_bytes());
    redact_users(&mut value);
    serde_json::to_string_pretty(&value).unwrap()
}

fn redact_users(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "user" {
                    *v = Value::String("[user]".into());
                } else {
                    redact_users(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_users),
        _ => {}
    }
}

fn check(name: &str, root: &Path) {
    insta::assert_snapshot!(format!("{name}__table"), table(root));
    insta::assert_snapshot!(format!("{name}__json"), json(root));
}

/// Hand-written trees under fixtures/proc-roots (see fixtures/README.md).
const PROC_ROOT_CASES: [&str; 13] = [
    "cmdline-nul-newline",
    "crlf",
    "empty-table",
    "extra-column",
    "large-inode",
    "link-local-v6",
    "mapped-v6",
    "missing-tcp6",
    "non-utf8-comm",
    "time-wait",
    "truncated-table",
    "udp-connected",
    "unreadable-process",
];

macro_rules! proc_root_tests {
    ($($test:ident => $case:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check($case, &fixture_root($case));
            }
        )*
    };
}

proc_root_tests! {
    cmdline_with_embedded_nuls_and_newlines => "cmdline-nul-newline",
    crlf_line_ends => "crlf",
    empty_table_file => "empty-table",
    extra_unknown_column => "extra-column",
    very_large_inodes => "large-inode",
    scoped_link_local_ipv6 => "link-local-v6",
    ipv4_mapped_ipv6 => "mapped-v6",
    missing_ipv6_tables => "missing-tcp6",
    non_utf8_and_escape_sequences_in_comm => "non-utf8-comm",
    time_wait_and_unaccepted_rows_with_inode_0 => "time-wait",
    truncated_last_line => "truncated-table",
    udp_connected_and_unconnected => "udp-connected",
    unreadable_fds_and_malformed_status => "unreadable-process",
}

#[test]
fn every_proc_root_fixture_is_rendered() {
    let mut dirs: Vec<String> = std::fs::read_dir(fixture("proc-roots"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs, PROC_ROOT_CASES,
        "add new fixture dirs to PROC_ROOT_CASES and the tests"
    );
}

/// Captured tables with no processes: every owner blank.
#[test]
fn captured_netns_tables_without_processes() {
    check("netns-6.18", &fixture("proc-net/netns-6.18"));
}

/// Captured IPv6 tables only: the IPv4 tables are missing, which is reported, not fatal.
#[test]
fn captured_link_local_tables_without_ipv4() {
    check("link-local-6.18", &fixture("proc-net/link-local-6.18"));
}

fn snapshot_case(name: &str, file: &str) {
    let opened = lsports::snapshot::open(&fixture("snapshots").join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    check(name, opened.proc_root());
}

/// A world captured as root: every owner, prefork workers, reuseport siblings, a hostile name.
#[test]
fn world_captured_as_root() {
    snapshot_case("snapshot-world-root", "netns-world-root.tar");
}

/// The same kind of world captured as nobody: every socket, no owner, and why.
#[cfg(feature = "gzip")]
#[test]
fn world_captured_as_nobody() {
    snapshot_case("snapshot-world-nobody", "netns-world-nobody.tar.gz");
}
