//! `--generate`: the man page and completions come out of the binary and are valid for the
//! tools that read them (groff, bash, zsh, fish; `.ci/run` installs zsh and fish).

mod common;

use std::path::Path;

use clap::CommandFactory;
use common::*;

fn generate(what: &str) -> String {
    let out = run_host(&["--generate", what]);
    assert_success(&out, &["--generate", what]);
    String::from_utf8(out.stdout).expect("generated text is UTF-8")
}

/// Run `program args… file` on `text` written to a file: (exit 0?, what it said). `None`
/// when the program is absent, which only a developer's machine may be (see `have`).
fn check_with(program: &str, args: &[&str], text: &str, name: &str) -> Option<(bool, String)> {
    if !have(program) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let mut cmd = scrubbed(program);
    cmd.args(args).arg(&file);
    let out = output_guarded(cmd, program);
    Some((
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    ))
}

/// The man page as `man` shows it, in plain ASCII (no bold overstrikes): `None` without groff.
fn man_page_text() -> Option<String> {
    let man = generate("man");
    let (ok, said) = check_with(
        "groff",
        &["-man", "-Tascii", "-P-cbou", "-rLL=200n", "-ww"],
        &man,
        "lsports.1",
    )?;
    assert!(ok, "groff failed: {said}");
    Some(said)
}

#[test]
fn man_page_renders_without_warnings() {
    let man = generate("man");
    assert!(man.contains(".TH LSPORTS 1"), "{man}");
    // ASCII source renders the same whatever groff assumes the input encoding is, so no `-k`.
    assert!(man.is_ascii(), "non-ASCII in the roff source");
    for flag in [
        r"\-\-wait\-free",
        r"\-\-format",
        r"\-\-columns",
        r"\-\-exposed",
    ] {
        assert!(man.contains(flag), "man page lacks {flag}");
    }
    if let Some((ok, said)) =
        check_with("groff", &["-man", "-Tutf8", "-ww", "-z"], &man, "lsports.1")
    {
        assert!(ok && said.is_empty(), "groff: {said}");
    }
}

/// The section of the rendered page that starts with the line `title` (indented as groff
/// indents a heading or subheading) and ends at the next heading of either level.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let lines: Vec<&str> = text.lines().collect();
    let is_heading = |line: &str| {
        let indent = line.len() - line.trim_start().len();
        !line.trim().is_empty() && indent <= 3
    };
    let start = lines
        .iter()
        .position(|line| line.trim() == title && is_heading(line))
        .unwrap_or_else(|| panic!("no section {title:?} in:\n{text}"));
    let end = lines[start + 1..]
        .iter()
        .position(|line| is_heading(line))
        .map_or(lines.len(), |n| start + 1 + n);
    let from = text.find(lines[start]).unwrap();
    let to = if end == lines.len() {
        text.len()
    } else {
        text[from..].find(lines[end]).unwrap() + from
    };
    &text[from..to]
}

#[test]
fn man_page_documents_every_command_and_every_option() {
    let Some(text) = man_page_text() else { return };
    let mut command = lsports::cli::Cli::command();
    command.build();
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        if let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")) {
            assert!(
                text.contains(&format!("--{long}")),
                "no --{long} in the page"
            );
        }
    }
    let mut commands = Vec::new();
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let leaves: Vec<_> = if sub.has_subcommands() {
            sub.get_subcommands()
                .filter(|s| s.get_name() != "help")
                .map(|leaf| {
                    (
                        format!("lsports {} {}", sub.get_name(), leaf.get_name()),
                        leaf,
                    )
                })
                .collect()
        } else {
            vec![(format!("lsports {}", sub.get_name()), sub)]
        };
        commands.extend(leaves);
    }
    let names: Vec<&str> = commands.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "lsports audit",
        "lsports baseline save",
        "lsports watch",
        "lsports capture",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} is not a command: {names:?}"
        );
    }
    for (name, leaf) in commands {
        let body = section(&text, &name);
        for arg in leaf
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set())
        {
            let shown = match arg.get_long() {
                Some("help") => continue,
                Some(long) => format!("--{long}"),
                None => arg.get_value_names().unwrap()[0].to_string(),
            };
            assert!(body.contains(&shown), "{name}: no {shown} in\n{body}");
        }
    }
    for heading in [
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        let body = section(&text, heading);
        assert!(body.lines().count() > 2, "{heading} is empty");
    }
    let environment = section(&text, "ENVIRONMENT");
    for variable in ["LSPORTS_TIMING", "TMPDIR"] {
        assert!(environment.contains(variable), "{variable}");
    }
    let see_also = section(&text, "SEE ALSO");
    for page in ["ss(8)", "netstat(8)", "lsof(8)"] {
        assert!(see_also.contains(page), "SEE ALSO lacks {page}");
    }
}

#[test]
fn man_page_shows_no_markdown_and_names_only_pages_that_exist() {
    let Some(text) = man_page_text() else { return };
    assert!(!text.contains('`'), "literal backtick in the rendered page");
    // Every page named as `name(section)`: lsports's own must be the one --generate man writes
    // (the old page pointed to lsports-audit(1) and others nothing installs); others are
    // system pages, listed under SEE ALSO where a reader looks for them.
    let see_also = section(&text, "SEE ALSO");
    let bytes = text.as_bytes();
    let mut references = Vec::new();
    for (at, _) in text.match_indices('(') {
        let section_digit = bytes.get(at + 1).is_some_and(u8::is_ascii_digit);
        let closed = bytes.get(at + 2) == Some(&b')');
        let name_start = text[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            .map_or(0, |n| n + 1);
        if section_digit && closed && name_start < at {
            references.push(&text[name_start..at + 3]);
        }
    }
    assert!(references.contains(&"ss(8)"), "{references:?}");
    for reference in references {
        // The page's own header and footer say LSPORTS(1).
        let lower = reference.to_ascii_lowercase();
        if lower.starts_with("lsports") {
            assert_eq!(lower, "lsports(1)", "names a page nothing generates");
        } else {
            assert!(
                see_also.contains(reference),
                "{reference} is not under SEE ALSO"
            );
        }
    }
}

#[test]
fn every_option_the_man_page_mentions_exists() {
    let Some(text) = man_page_text() else { return };
    let mut command = lsports::cli::Cli::command();
    command.build();
    let mut longs: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    for sub in command.get_subcommands() {
        for leaf in std::iter::once(sub).chain(sub.get_subcommands()) {
            longs.extend(
                leaf.get_arguments()
                    .filter_map(|a| a.get_long().map(str::to_owned)),
            );
        }
    }
    for (at, _) in text.match_indices("--") {
        let word: String = text[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        // A word broken across lines by hyphenation ends in `-`; the page is rendered wide and
        // without hyphenation breaks for names, but be safe.
        let word = word.trim_end_matches('-');
        if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_lowercase()) {
            continue;
        }
        assert!(
            longs.iter().any(|l| l == word),
            "the page mentions --{word}, which no command has"
        );
    }
}

#[test]
fn bash_completion_loads_and_registers() {
    let script = generate("bash");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lsports.bash");
    std::fs::write(&file, &script).unwrap();
    let mut cmd = scrubbed("bash");
    cmd.arg("-c")
        .arg(format!("source {} && complete -p lsports", file.display()));
    let out = output_guarded(cmd, "bash: source the completion");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("lsports"));
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
    let mut cmd = scrubbed("bash");
    cmd.arg("-c").arg(format!(
        "{} --generate man | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        Path::new(&bin).display()
    ));
    let out = output_guarded(cmd, "lsports --generate man | head");
    let status = stdout(&out);
    // 0: finished before head closed; 141 would be SIGPIPE, which lsports turns into exit 0.
    assert_eq!(status.trim(), "0", "stderr: {}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}
