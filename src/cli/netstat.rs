//! Habits from netstat and ss that lsports' flags do not cover: netstat's `-o` (timers) at the
//! end of a cluster (`-tlnpo`), a port given as an argument (`lsports 22`), an ss filter
//! (`sport = :22`), and the flags of what lsports does not do (`-s`, `-r`, `-x`, `--sctp` …).
//! The first is accepted with a note; the others are usage errors whose tip names the lsports
//! way or the tool that does it, instead of clap's guess at a similar flag.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Command, ValueEnum};

use crate::config::Column;

/// The hidden flag netstat's `-o` becomes.
pub(super) const TIMERS: &str = "--timers";

/// What `--timers` (or `-o` without a column list) tells the user.
pub(super) const TIMERS_NOTE: &str = "-o without a column list is netstat's timers flag (--timers): \
    lsports shows no socket timers (ss -o does); -o LIST chooses columns (-o proto,local)";

/// Flags of netstat and ss for what lsports does not do, and the tip naming the tool that
/// does it.
const ELSEWHERE: &[(&[&str], &str)] = &[
    (
        &["-s", "--statistics"],
        "for protocol statistics, use nstat (or ss -s for a summary)",
    ),
    (&["-r", "--route"], "for the routing table, use ip route"),
    (
        &["-i", "--interfaces"],
        "for interface statistics, use ip -s link",
    ),
    (
        &["-g", "--groups"],
        "for multicast group memberships, use ip maddress",
    ),
    (
        &["-M", "--masquerade"],
        "for masqueraded connections, use conntrack -L",
    ),
    (
        &["-x", "--unix"],
        "lsports lists TCP and UDP; for Unix sockets, use ss -xlp",
    ),
    (
        &["-w", "--raw"],
        "lsports lists TCP and UDP; for raw sockets, use ss -wlp",
    ),
    (
        &["-S", "--sctp"],
        "lsports lists TCP and UDP; for SCTP sockets, use ss -Slp",
    ),
    (
        &["-d", "--dccp"],
        "lsports lists TCP and UDP; for DCCP sockets, use ss -dlp",
    ),
    (
        &["-U", "--udplite"],
        "lsports lists TCP and UDP; for UDP-Lite sockets, use ss -Ulp",
    ),
    (
        &["-Z", "--context"],
        "for SELinux contexts of sockets, use ss -Z",
    ),
    (&["-m", "--memory"], "for socket memory, use ss -m"),
    (&["-K", "--kill"], "to close sockets, use ss -K"),
    (
        &["-A", "--query", "--socket", "-f", "--family"],
        "lsports chooses with -t/-u and -4/-6; ss -A inet is its default (TCP and UDP, IPv4 \
         and IPv6)",
    ),
    (
        &["-N", "--net"],
        "for another network namespace, use ip netns exec NAME lsports",
    ),
];

/// Words that start an ss filter expression.
const SS_FILTER: &[&str] = &[
    "sport", "dport", "src", "dst", "state", "exclude", "(", "!", "not",
];

/// netstat's `-o` is a flag, lsports' takes a column list: an `o` ending a cluster of flags
/// (`-tlnpo`), or a lone `-o`, with no column list after it becomes `--timers`, so that it
/// neither fails nor swallows the next word (`lsports -tlnpo 22`).
pub(super) fn rewrite_timers(args: Vec<OsString>, command: &Command) -> Vec<OsString> {
    let flags: String = command
        .get_arguments()
        .filter(|a| !a.get_action().takes_values())
        .filter_map(|a| a.get_short())
        .collect();
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut rest = args.into_iter().peekable();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(rest);
            break;
        }
        let next = rest.peek();
        let timers = match arg.to_str().and_then(|a| timers_cluster(a, &flags)) {
            // A lone -o takes what follows unless it is a flag: `-o prot` is a typo to report.
            Some("") => next.is_none_or(|n| n.to_string_lossy().starts_with('-')),
            Some(_) => !next.is_some_and(is_column_list),
            None => false,
        };
        if !timers {
            out.push(arg);
            continue;
        }
        let cluster = arg.to_string_lossy();
        let flags_before = &cluster[..cluster.len() - 1];
        if flags_before != "-" {
            out.push(flags_before.into());
        }
        out.push(TIMERS.into());
    }
    out
}

/// The flags before the final `o` of a cluster of flags that ends in `o` (`-tlnpo` → `tlnp`,
/// `-o` → ``), or `None` for any other argument.
fn timers_cluster<'a>(arg: &'a str, flags: &str) -> Option<&'a str> {
    let cluster = arg.strip_prefix('-')?.strip_suffix('o')?;
    let plain = !arg.starts_with("--") && cluster.chars().all(|c| flags.contains(c));
    plain.then_some(cluster)
}

fn is_column_list(arg: &OsString) -> bool {
    arg.to_str().is_some_and(|text| {
        text.split(',')
            .all(|name| Column::from_str(name.trim(), true).is_ok())
    })
}

/// The usage error for `error`, with a tip naming the lsports way or the tool that does what
/// was asked, where there is one; else `error` itself.
pub(super) fn with_hint(
    error: clap::Error,
    args: &[OsString],
    command: &mut Command,
) -> clap::Error {
    let word = match error.kind() {
        ErrorKind::UnknownArgument => error.get(ContextKind::InvalidArg),
        ErrorKind::InvalidSubcommand => error.get(ContextKind::InvalidSubcommand),
        _ => None,
    };
    let Some(ContextValue::String(word)) = word else {
        return error;
    };
    match hint(word, args) {
        Some(tip) => command.error(
            ErrorKind::UnknownArgument,
            format!("unexpected argument '{word}' found\n\n  tip: {tip}"),
        ),
        None => error,
    }
}

/// The tip for an unexpected `word`, if lsports has one.
fn hint(word: &str, args: &[OsString]) -> Option<String> {
    let flag = word.split('=').next().unwrap_or(word);
    if let Some((_, elsewhere)) = ELSEWHERE.iter().find(|(flags, _)| flags.contains(&flag)) {
        return Some(elsewhere.to_string());
    }
    if word.starts_with('-') {
        return None;
    }
    if SS_FILTER.contains(&word) {
        let port = port_after(word, args).unwrap_or_else(|| "PORTS".into());
        return Some(format!(
            "lsports reads no ss filter expression; it filters with flags: --port {port}, \
             --address ADDRESS, -a for every state"
        ));
    }
    let port = word.strip_prefix(':').unwrap_or(word);
    let is_port = !port.is_empty() && port.chars().all(|c| c.is_ascii_digit() || ",-".contains(c));
    is_port.then(|| format!("lsports takes ports as a flag: --port {port}"))
}

/// The first port (`:22`, `22`) after `word` in `args`, for an ss filter.
fn port_after(word: &str, args: &[OsString]) -> Option<String> {
    let at = args.iter().position(|a| a == word)?;
    args[at + 1..].iter().find_map(|arg| {
        let text = arg.to_str()?.trim_start_matches(':');
        let digits = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit());
        digits.then(|| text.to_string())
    })
}
