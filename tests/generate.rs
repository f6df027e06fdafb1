//! `--generate`: the man page and completions come out of the binary and are valid for the
//! tools that read them (groff, bash, zsh, fish; `.ci/run` installs zsh and fish).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn generate(what: &str) -> String {
    let out = run_host(&["--generate", what]);
    assert_success(&out, &["--generate", what]);
    String::from_utf8(out.stdout).expect("generated text is UTF-8")
}

/// Run `program args… file` on `text` written to a file; `None` when the program is absent.
fn check_with(program: &str, args: &[&str], text: &str, name: &str) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let out = match Command::new(program).args(args).arg(&file).output() {
        Ok(out) => out,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIP: {program} is not installed");
            return None;
        }
        Err(error) => panic!("cannot run {program}: {error}"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

#[test]
fn man_page_renders_without_warnings() {
    let man = generate("man");
    assert!(man.contains(".TH lsports 1"), "{man}");
    for flag in [
        r"\-\-wait\-free",
        r"\-\-format",
        r"\-\-columns",
        r"\-\-exposed",
    ] {
        assert!(man.contains(flag), "man page lacks {flag}");
    }
    if let Some((ok, said)) = check_with(
        "groff",
        &["-k", "-man", "-Tutf8", "-ww", "-z"],
        &man,
        "lsports.1",
    ) {
        assert!(ok && said.is_empty(), "groff: {said}");
    }
}

#[test]
fn bash_completion_loads_and_registers() {
    let script = generate("bash");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lsports.bash");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p lsports", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lsports"));
    assert!(script.contains("--wait-free") && script.contains("prometheus"));
}

#[test]
fn zsh_and_fish_completions_parse() {
    let zsh = generate("zsh");
    assert!(zsh.starts_with("#compdef lsports"), "{}", &zsh[..40]);
    if let Some((ok, said)) = check_with("zsh", &["-n"], &zsh, "_lsports") {
        assert!(ok, "zsh -n: {said}");
    }
    let fish = generate("fish");
    assert!(fish.contains("complete -c lsports"));
    if let Some((ok, said)) = check_with("fish", &["--no-execute"], &fish, "lsports.fish") {
        assert!(ok, "fish --no-execute: {said}");
    }
    for other in ["elvish", "powershell"] {
        assert!(generate(other).contains("lsports"), "{other}");
    }
}

#[test]
fn generate_into_a_closed_pipe_is_quiet() {
    let bin = lsports_bin();
    let out = scrubbed("bash")
        .arg("-c")
        .arg(format!(
            "{} --generate man | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
            Path::new(&bin).display()
        ))
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    // 0: finished before head closed; 141 would be SIGPIPE, which lsports turns into exit 0.
    assert_eq!(
        status.trim(),
        "0",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
