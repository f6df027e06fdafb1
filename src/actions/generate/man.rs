//! The man page: one complete `lsports(1)`, made from the clap definition. clap_mangen's own
//! page documents the top-level flags only and points to `lsports-audit(1)` and others that
//! nothing installs; this one has a section per command (`audit`, `baseline save`, `watch`,
//! `capture`) with its options, and the hand-written sections a user looks for
//! ([`man_extra`]). One file is what a package installs and what `--generate man` prints.

use clap::{Arg, Command};
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

use super::{man_extra, man_text};

/// The page, as roff source in ASCII.
pub fn render(mut command: Command) -> String {
    // Building propagates the global options into the subcommands, as parsing sees them.
    command.build();
    let mut roff = Roff::default();
    write_header(&mut roff, &command);
    write_options(&mut roff, &command);
    write_commands(&mut roff, &command);
    man_extra::write(&mut roff);
    man_text::ascii(&roff.render())
}

/// Every command that does something, with the words that name it: `["audit"]`,
/// `["baseline", "save"]`. A command with subcommands of its own (`baseline`) is only a prefix.
pub fn leaf_commands(command: &Command) -> Vec<(Vec<String>, &Command)> {
    let mut out = Vec::new();
    for sub in visible_subcommands(command) {
        let name = sub.get_name().to_owned();
        if sub.has_subcommands() {
            for (mut words, leaf) in leaf_commands(sub) {
                words.insert(0, name.clone());
                out.push((words, leaf));
            }
        } else {
            out.push((vec![name], sub));
        }
    }
    out
}

/// The options a subcommand documents as its own: not the global options it inherits (those
/// are documented once, under OPTIONS).
pub fn own_arguments(command: &Command) -> Vec<&Arg> {
    documented(command)
        .into_iter()
        .filter(|arg| !arg.is_global_set())
        .collect()
}

/// Every option of `command` worth a man page entry: not hidden, not `-h` or `-V`.
fn documented(command: &Command) -> Vec<&Arg> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .collect()
}

fn visible_subcommands(command: &Command) -> impl Iterator<Item = &Command> {
    command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
}

fn write_header(roff: &mut Roff, command: &Command) {
    let source = format!("lsports {}", command.get_version().unwrap_or_default());
    roff.control("TH", ["LSPORTS", "1", "", &source, "User Commands"]);
    roff.control("SH", ["NAME"]);
    let about = command
        .get_about()
        .map(|a| a.to_string())
        .unwrap_or_default();
    roff.text([roman(format!("lsports - {}", lowercase_first(&about)))]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([bold("lsports"), roman(" ["), italic("options"), roman("]")]);
    for (words, leaf) in leaf_commands(command) {
        roff.control("br", []);
        roff.text(synopsis(&words, leaf));
    }
    roff.control("SH", ["DESCRIPTION"]);
    if let Some(text) = command.get_long_about().or_else(|| command.get_about()) {
        man_text::write_paragraphs(roff, &text.to_string(), "PP");
    }
}

/// `lsports audit [--baseline FILE] [--policy FILE] [options]`: the command's own options, then
/// its operands, then the inherited ones as `[options]`.
fn synopsis(words: &[String], command: &Command) -> Vec<Inline> {
    let mut line = vec![bold(format!("lsports {}", words.join(" ")))];
    let arguments = own_arguments(command);
    for arg in arguments.iter().filter(|arg| !arg.is_positional()) {
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        line.push(roman(format!(" {open}")));
        line.extend(flag_words(arg));
        line.push(roman(close));
    }
    for arg in arguments.iter().filter(|arg| arg.is_positional()) {
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        line.push(roman(format!(" {open}")));
        line.push(italic(value_name(arg)));
        line.push(roman(close));
    }
    if command.get_arguments().any(Arg::is_global_set) {
        line.extend([roman(" ["), italic("options"), roman("]")]);
    }
    line
}

/// `--fail-on CHECKS`, `-o, --columns COLUMNS`, or `--force`.
fn flag_words(arg: &Arg) -> Vec<Inline> {
    let mut words = Vec::new();
    if let Some(short) = arg.get_short() {
        words.push(bold(format!("-{short}")));
    }
    if let Some(long) = arg.get_long() {
        if !words.is_empty() {
            words.push(roman(", "));
        }
        words.push(bold(format!("--{long}")));
    }
    if takes_values(arg) && !arg.is_positional() {
        let optional = arg
            .get_num_args()
            .is_some_and(|range| range.min_values() == 0);
        let name = value_name(arg);
        words.push(roman(" "));
        if optional {
            words.extend([roman("["), italic(name), roman("]")]);
        } else {
            words.push(italic(name));
        }
    }
    words
}

fn takes_values(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|range| range.takes_values())
}

fn value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .map(|names| names.join(" "))
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
}

/// OPTIONS, then one section per help heading ("OUTPUT", "FILTERS", …), as `--help` groups them.
fn write_options(roff: &mut Roff, command: &Command) {
    let arguments = documented(command);
    let mut headings: Vec<Option<&str>> = vec![None];
    for arg in &arguments {
        if !headings.contains(&arg.get_help_heading()) {
            headings.push(arg.get_help_heading());
        }
    }
    for heading in headings {
        let title = heading.map_or("OPTIONS".to_owned(), str::to_uppercase);
        roff.control("SH", [title.as_str()]);
        for arg in arguments
            .iter()
            .filter(|arg| arg.get_help_heading() == heading)
        {
            write_option(roff, arg);
        }
    }
}

/// One option: its flags and value, its help, its default and its possible values.
fn write_option(roff: &mut Roff, arg: &Arg) {
    roff.control("TP", []);
    let mut header = if arg.is_positional() {
        vec![italic(value_name(arg))]
    } else {
        flag_words(arg)
    };
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|value| value.to_string_lossy().into_owned())
        .collect();
    // A flag's implicit `false` is no default worth telling.
    if takes_values(arg) && !defaults.is_empty() && !arg.is_hide_default_value_set() {
        header.push(roman(format!(" (default: {})", defaults.join(","))));
    }
    roff.text(header);
    let help = arg.get_long_help().or_else(|| arg.get_help());
    if let Some(help) = help {
        man_text::write_paragraphs(roff, &help.to_string(), "IP");
    }
    write_possible_values(roff, arg);
}

/// The choices of an option that has named ones (`--format`, `-o`), each with its help.
fn write_possible_values(roff: &mut Roff, arg: &Arg) {
    if arg.is_hide_possible_values_set() {
        return;
    }
    let values: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|value| !value.is_hide_set())
        .collect();
    // A flag's implicit true/false is not a choice worth listing.
    if values.is_empty() || !takes_values(arg) {
        return;
    }
    roff.control("RS", []);
    for value in values {
        roff.control("TP", []);
        roff.text([bold(value.get_name())]);
        if let Some(help) = value.get_help() {
            roff.text(man_text::inlines(&help.to_string()));
        }
    }
    roff.control("RE", []);
}

/// COMMANDS: one subsection per command, with what it does, its options and its exit status.
fn write_commands(roff: &mut Roff, command: &Command) {
    let leaves = leaf_commands(command);
    if leaves.is_empty() {
        return;
    }
    roff.control("SH", ["COMMANDS"]);
    roff.text(man_text::inlines(
        "Instead of listing, lsports can do one of these. The options above that narrow which \
         sockets are looked at may be given before or after the command's name: \
         `lsports watch -t --port 22` is `lsports -t --port 22 watch`.",
    ));
    for (words, leaf) in leaves {
        let title = format!("lsports {}", words.join(" "));
        roff.control("SS", [title.as_str()]);
        roff.text(synopsis(&words, leaf));
        roff.control("PP", []);
        if let Some(text) = leaf.get_long_about().or_else(|| leaf.get_about()) {
            man_text::write_paragraphs(roff, &text.to_string(), "PP");
        }
        for arg in own_arguments(leaf) {
            write_option(roff, arg);
        }
        if let Some(text) = leaf.get_after_long_help().or_else(|| leaf.get_after_help()) {
            roff.control("PP", []);
            man_text::write_paragraphs(roff, &text.to_string(), "PP");
        }
    }
}

/// "Which ports …" for "lsports - which ports …", as NAME lines are written.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    fn page() -> String {
        render(Cli::command())
    }

    #[test]
    fn every_command_has_a_section_with_every_own_option() {
        let page = page();
        let command = Cli::command();
        let leaves = leaf_commands(&command);
        assert!(leaves.len() >= 4, "audit, baseline save, watch, capture");
        for (words, leaf) in leaves {
            let title = format!(".SS \"lsports {}\"", words.join(" "));
            let start = page.find(&title).unwrap_or_else(|| panic!("no {title}"));
            let section = &page[start..];
            let end = section[1..].find("\n.S").map_or(section.len(), |e| e + 1);
            let section = &section[..end];
            for arg in own_arguments(leaf) {
                let shown = match arg.get_long() {
                    Some(long) => format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-")),
                    None => format!("\\fI{}\\fR", value_name(arg)),
                };
                assert!(
                    section.contains(&shown),
                    "{title} lacks {shown}:\n{section}"
                );
            }
        }
    }

    #[test]
    fn the_page_is_ascii_and_names_no_other_lsports_page() {
        let page = page();
        assert!(page.is_ascii());
        assert!(!page.contains("lsports\\-audit"), "{page}");
        assert!(!page.contains('`'), "literal backtick");
    }
}
