//! Snapshots and the files lsports writes, seen by an attacker: hostile names reach the
//! terminal escaped, unpacked trees and temporary files are private while lsports runs and
//! gone after any signal it can catch, and hostile archives are refused quickly and cheaply.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::json;

const PROC_ROOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc-roots");

/// The `net/tcp` of a fixture holding one listener (inode 7801).
fn tcp_table() -> Vec<u8> {
    fs::read(Path::new(PROC_ROOTS).join("empty-table/net/tcp")).unwrap()
}

/// A tar built entry by entry.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn file(mut self, name: &str, data: &[u8]) -> Self {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        h.set_entry_type(tar::EntryType::Regular);
        self.0.append_data(&mut h, name, data).unwrap();
        self
    }

    fn manifest(self, hostname: &str, kernel: &str, machine: &str) -> Self {
        let m = json!({"format": "lsports-snapshot", "version": 1, "hostname": hostname,
            "kernel": kernel, "machine": machine, "captured_at": 1_780_000_000u64});
        self.file("lsports-snapshot.json", m.to_string().as_bytes())
    }

    fn tcp(self) -> Self {
        self.file("proc/net/tcp", &tcp_table())
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// Whether `text` holds anything that must not reach a terminal raw, besides the line ends.
fn has_raw_controls(text: &str) -> bool {
    text.lines()
        .any(|line| line.chars().any(lsports::sanitize::is_terminal_unsafe))
}

fn stderr_text(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

// ---------------------------------------------------------------------------------------------
// Hostile names from files and other machines

const EVIL_HOST: &str = "web1\x1b[2J\r\u{202E}evil";

fn hostile_snapshot(dir: &Path) -> PathBuf {
    let file = dir.join("evil.tar");
    let bytes = Tar::new()
        .manifest(EVIL_HOST, "6.8\x1b]0;pwned\x07", "x86_64\u{200B}\n")
        .tcp()
        .bytes();
    fs::write(&file, bytes).unwrap();
    file
}

#[test]
fn a_snapshots_host_kernel_and_machine_are_escaped_in_verbose_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = hostile_snapshot(dir.path());
    let args = ["--snapshot", file.to_str().unwrap(), "-v", "--json"];
    let out = run_host(&args);
    assert_success(&out, &args);
    let err = stderr_text(&out);
    assert!(!has_raw_controls(&err), "raw controls on stderr: {err:?}");
    assert!(
        err.contains(r"snapshot of web1\e[2J\r\u{202E}evil (Linux 6.8\e]0;pwned\a, x86_64\u{200B}\n)"),
        "{err}"
    );
}

#[test]
fn the_audit_host_warning_escapes_both_host_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = hostile_snapshot(dir.path());
    let baseline = dir.path().join("baseline.toml");
    // A hand-edited (or hostile) baseline: TOML escapes put raw controls in the strings.
    fs::write(
        &baseline,
        "version = 1\nhost = \"db\\u001b[31m\\r\\u2066\"\nlisteners = []\n",
    )
    .unwrap();
    let args = [
        "--snapshot",
        file.to_str().unwrap(),
        "audit",
        "--baseline",
        baseline.to_str().unwrap(),
    ];
    let out = run_host(&args);
    let err = stderr_text(&out);
    assert!(!has_raw_controls(&err), "raw controls on stderr: {err:?}");
    assert!(
        err.contains(r"was recorded on db\e[31m\r\u{2066}, and this is web1\e[2J\r\u{202E}evil"),
        "{err}"
    );
}

#[test]
fn a_hostile_key_in_a_baseline_is_escaped_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = hostile_snapshot(dir.path());
    let baseline = dir.path().join("baseline.toml");
    fs::write(&baseline, "version = 1\n\"\\u001b[2Jx\\u202e\" = 1\n").unwrap();
    let args = [
        "--snapshot",
        file.to_str().unwrap(),
        "audit",
        "--baseline",
        baseline.to_str().unwrap(),
    ];
    let out = run_host(&args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_text(&out));
    let err = stderr_text(&out);
    assert!(!has_raw_controls(&err), "raw controls on stderr: {err:?}");
    assert!(err.contains(r"\e[2Jx\u{202E}"), "{err}");
}
