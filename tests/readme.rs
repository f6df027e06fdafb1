//! README's examples stay true to the CLI: every `lsports …` command shown in a code block
//! parses, with the flags, values and column names it uses, and the combinations it makes are
//! accepted. (The outputs shown were produced by running the daemons named there in a private
//! network namespace; this guards the commands from drifting as the CLI changes.) The audit
//! example's files are held to the real formats: its baseline is byte for byte what `baseline
//! save` writes, its policy parses and holds the rules and lines the report cites, and its JSON
//! report has no field, and its summary line no word, that a real audit does not write.

mod common;

use clap::Parser;
use common::*;
use lsports::cli::Cli;

/// The README's code blocks, line by line (continuation lines joined).
fn code_lines() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut lines = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if !inside {
            continue;
        }
        pending.push_str(line.trim_end_matches('\\'));
        if line.ends_with('\\') {
            pending.push(' ');
        } else {
            lines.push(std::mem::take(&mut pending));
        }
    }
    lines
}

/// The words of the lsports command in `line`, if it runs one: after an optional `$ ` prompt
/// and `sudo`, up to the first shell operator or comment. Single quotes group words.
fn lsports_words(line: &str) -> Option<Vec<String>> {
    let line = line.trim_start().trim_start_matches("$ ");
    let at = line.find("lsports ")?;
    let before = line[..at].trim();
    let runs_it = before.is_empty()
        || before == "sudo"
        || before.ends_with("&&")
        || before.ends_with("||")
        || before.ends_with(';')
        || before.ends_with("$(")
        || before.ends_with("<(")
        || before.ends_with("ExecStart=/usr/local/bin/")
        || before.ends_with('/');
    if !runs_it || line[at..].starts_with("lsports audit:") {
        return None;
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in without_substitutions(&line[at..]).chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            '|' | '&' | '>' | '#' | ';' | ')' | '<' if !quoted => {
                // `2>&1`: the digits name a file descriptor, not an argument.
                if c == '>' && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                }
                break;
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    Some(words)
}

/// `text` with each command substitution `$(…)` inside it replaced by `X`, as one word part.
fn without_substitutions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        out.push('X');
        rest = rest[start..]
            .find(')')
            .map_or("", |end| &rest[start + end + 1..]);
    }
    out.push_str(rest);
    out
}

#[test]
fn every_lsports_command_in_the_readme_parses() {
    let mut checked = 0;
    for line in code_lines() {
        let Some(words) = lsports_words(&line) else {
            continue;
        };
        // Elided arguments (`…`) and lsports's own messages (`lsports: …`) are not commands.
        if words.iter().any(|w| w.contains('…')) || words[0] != "lsports" {
            continue;
        }
        let parsed = Cli::try_parse_from(&words);
        let parsed = match parsed {
            // `--user NAME` is resolved against this host's passwd database: parse only.
            Ok(cli) if words.iter().any(|w| w == "--user") => Ok(cli).map(|_| ()),
            Ok(cli) => cli.resolve().map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = parsed {
            panic!("README: `{line}` does not parse:\n{error}");
        }
        checked += 1;
    }
    assert!(
        checked >= 30,
        "only {checked} commands found: is the README parsed right?"
    );
}

#[test]
fn the_first_example_is_the_listing_it_shows() {
    // The first example once showed a udp row under `-tlnp`; -t lists TCP only.
    let readme = include_str!("../README.md");
    let usage = &readme[readme.find("## Usage").unwrap()..];
    let block = &usage[usage.find("```\n").unwrap() + 4..];
    let block = &block[..block.find("```").unwrap()];
    let mut lines = block.lines();
    let command = lines.next().unwrap().trim_start_matches("$ ");
    let words: Vec<&str> = command.split_whitespace().collect();
    let config = Cli::config_from(&words).unwrap();
    let protocols: Vec<String> = config
        .protocols
        .iter()
        .map(|p| format!("{p:?}").to_lowercase())
        .collect();
    for row in lines.skip(1) {
        let proto = row.split_whitespace().next().unwrap().trim_end_matches('6');
        assert!(
            protocols.iter().any(|p| p == proto),
            "`{command}` cannot show {row}"
        );
    }
}

/// The body of the first code block opened by `fence` (e.g. "```toml") after `marker`.
fn block_after(marker: &str, fence: &str) -> &'static str {
    let readme = include_str!("../README.md");
    let from = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has no {marker:?}"));
    let opening = format!("\n{fence}\n");
    let start = from
        + readme[from..]
            .find(&opening)
            .unwrap_or_else(|| panic!("no {fence} block after {marker:?}"))
        + opening.len();
    let end = start + readme[start..].find("```\n").unwrap();
    &readme[start..end]
}

/// The README's baseline: the file `baseline save` wrote on the README's host.
fn readme_baseline() -> &'static str {
    block_after("### Baseline files", "```toml")
}

/// The README's policy: the one its audit example used.
fn readme_policy() -> &'static str {
    block_after("### Policies", "```toml")
}

#[test]
fn the_readme_baseline_is_what_baseline_save_writes() {
    use lsports::actions::audit::baseline::file;
    use lsports::actions::audit::tomlfile::Source;
    let shown = readme_baseline();
    let source = Source::from_text("/etc/lsports/baseline.toml", shown);
    let baseline = file::parse(&source).unwrap_or_else(|e| panic!("README baseline: {e}"));
    assert_eq!(
        file::format(&baseline),
        shown,
        "the README's baseline is not byte for byte what `lsports baseline save` writes"
    );
}

#[test]
fn the_readme_audit_cites_lines_of_the_readme_baseline_and_policy() {
    use lsports::actions::audit::tomlfile::Source;
    let readme = include_str!("../README.md");
    let policy = lsports::actions::audit::policy::parse::parse(&Source::from_text(
        "/etc/lsports/policy.toml",
        readme_policy(),
    ))
    .unwrap_or_else(|e| panic!("README policy: {e}"));
    let baseline = lsports::actions::audit::baseline::file::parse(&Source::from_text(
        "/etc/lsports/baseline.toml",
        readme_baseline(),
    ))
    .unwrap();
    let mut cited = 0;
    // `rule 4 "nothing else exposed beyond loopback" (/etc/lsports/policy.toml:29)`
    for (at, _) in readme.match_indices(" (/etc/lsports/policy.toml:") {
        let before = &readme[..at];
        let rule_at = before.rfind("rule ").unwrap();
        let (number, name) = before[rule_at + 5..].split_once(' ').unwrap();
        let rest = &readme[at + " (/etc/lsports/policy.toml:".len()..];
        let line: usize = rest[..rest.find(')').unwrap()].parse().unwrap();
        let rule = &policy.rules[number.parse::<usize>().unwrap() - 1];
        // The JSON report cites it too, with its quotes escaped.
        let name = name.replace("\\\"", "\"");
        assert_eq!(format!("{:?}", rule.name.as_deref().unwrap()), name);
        assert_eq!(rule.line, line, "rule {number} {name}");
        cited += 1;
    }
    // `/etc/lsports/baseline.toml:15: nothing listens there now`
    for (at, _) in readme.match_indices("/etc/lsports/baseline.toml:") {
        let rest = &readme[at + "/etc/lsports/baseline.toml:".len()..];
        let Some(colon) = rest.find(':').filter(|&c| c > 0) else {
            continue;
        };
        let Ok(line) = rest[..colon].parse::<usize>() else {
            continue;
        };
        assert!(
            baseline.expected.iter().any(|e| e.line == Some(line)),
            "README cites /etc/lsports/baseline.toml:{line}, which is no listener of its baseline"
        );
        cited += 1;
    }
    assert!(cited >= 3, "only {cited} citations found");
}

/// The README's audit JSON, with its `…` elisions taken out, as JSON.
fn readme_audit_json() -> serde_json::Value {
    let shown = block_after("`lsports audit --format json` gives", "```json");
    let mut kept: Vec<String> = Vec::new();
    for line in shown.lines().filter(|l| l.trim() != "…") {
        // An elided last member leaves a dangling comma before the closing bracket.
        let closes = line.trim_start().starts_with(['}', ']']);
        if let Some(previous) = kept.last_mut().filter(|_| closes) {
            if let Some(stripped) = previous.strip_suffix(',') {
                *previous = stripped.to_string();
            }
        }
        kept.push(line.to_string());
    }
    serde_json::from_str(&kept.join("\n"))
        .unwrap_or_else(|e| panic!("README audit JSON: {e}\n{}", kept.join("\n")))
}

/// Every key path of `value` (`unexpected[].listener.port`); a listener's fields are named
/// from `listener.` on, so one shown in any section counts for all.
fn key_paths(value: &serde_json::Value, path: &str, into: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, member) in map {
                let path = if key == "listener" {
                    "listener".to_string()
                } else if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                into.insert(path.clone());
                key_paths(member, &path, into);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{path}[]"), into);
            }
        }
        _ => {}
    }
}

/// `lsports audit` of the captured world fixture against the README's baseline and policy:
/// (text, JSON), with the files' temporary paths written as the README's.
fn audit_of_fixture() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.toml");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&baseline, readme_baseline()).unwrap();
    std::fs::write(&policy, readme_policy()).unwrap();
    let fixture = fixture("snapshots/netns-world-root.tar");
    let run = |format: &str| {
        let args = [
            "--snapshot",
            fixture.to_str().unwrap(),
            "audit",
            "--format",
            format,
            "--baseline",
            baseline.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ];
        let out = run_host(&args);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        stdout(&out)
            .replace(baseline.to_str().unwrap(), "/etc/lsports/baseline.toml")
            .replace(policy.to_str().unwrap(), "/etc/lsports/policy.toml")
    };
    (run("table"), run("json"))
}

#[test]
fn the_readme_audit_report_has_the_real_reports_shape() {
    let (text, json) = audit_of_fixture();
    let real: serde_json::Value = serde_json::from_str(&json).unwrap();
    let (mut real_paths, mut shown_paths) = Default::default();
    key_paths(&real, "", &mut real_paths);
    key_paths(&readme_audit_json(), "", &mut shown_paths);
    // The fixture is a proc tree, whose sockets have no namespace (`netns` null); the README
    // shows a live host's, an object.
    shown_paths.retain(|p| !p.starts_with("listener.netns."));
    let unknown: Vec<&String> = shown_paths.difference(&real_paths).collect();
    assert!(
        unknown.is_empty(),
        "README shows fields lsports never writes: {unknown:?}"
    );
    // The first unexpected listener is shown whole: it has every field a listener has.
    let listener = |paths: &std::collections::BTreeSet<String>| -> Vec<String> {
        paths
            .iter()
            .filter(|p| p.starts_with("listener"))
            .cloned()
            .collect()
    };
    assert_eq!(listener(&shown_paths), listener(&real_paths));

    // The summary line: the same words, whatever the numbers.
    let digits = |line: &str| line.replace(|c: char| c.is_ascii_digit(), "#");
    let readme = include_str!("../README.md");
    let shown = readme
        .lines()
        .find(|l| l.starts_with("lsports audit: FAIL:"))
        .unwrap();
    let real = text.lines().next().unwrap();
    let squeeze = |line: &str| {
        let mut line = digits(line);
        while line.contains("##") {
            line = line.replace("##", "#");
        }
        line
    };
    assert_eq!(squeeze(shown), squeeze(real), "{text}");
}
