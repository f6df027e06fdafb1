//! README's examples stay true to the CLI: every `lsports …` command shown in a code block
//! parses, with the flags, values and column names it uses, and the combinations it makes are
//! accepted. (The outputs shown were produced by running the daemons named there in a private
//! network namespace; this guards the commands from drifting as the CLI changes.)

use clap::Parser;
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
