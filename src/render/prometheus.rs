//! Prometheus text exposition format (version 0.0.4), for node_exporter's textfile collector.
//!
//! ```text
//! lsports_listening_socket{proto,family,address,port,interface,netns,exposure,program,user[,container][,unit][,reach]}
//!     one series per listening socket; the value is how many sockets share the labels
//!     (1, or the number of SO_REUSEPORT siblings, which would otherwise be duplicates)
//! lsports_listening_sockets{proto,exposure}
//!     sockets per protocol and exposure, 0 included so alerts see "none"
//! lsports_listening_sockets_reachable{proto,family,exposure}
//!     the same by the family that reaches them: a dual-stack [::] counts for ipv4 too
//! ```
//!
//! PIDs are left out of the labels on purpose: every restart would start a new series. So is
//! `reach` unless asked for (`--reach`): a firewall change would start new series too.
//! Label values are made terminal-safe first (a process name with an escape sequence shows as
//! `\e[2J`), then escaped as the format requires (`\\`, `\"`, `\n`), so every file parses.

use std::collections::HashMap;
use std::io::{self, Write};

use super::labels::{Labels, device_label};
use crate::config::RenderOptions;
use crate::model::exposure::{self, Exposure};
use crate::model::{DeviceBinding, Entry, Family, Protocol};
use crate::text::sanitize;

/// A label set, in the order it is written.
type LabelSet = Vec<(&'static str, String)>;

/// Write the metrics for the listening sockets among `entries`.
pub fn write_prometheus(
    entries: &[Entry],
    options: &RenderOptions,
    labels: &mut Labels,
    out: &mut dyn Write,
) -> io::Result<()> {
    let listening: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.socket.state.is_listening(e.socket.protocol))
        .collect();
    write_family(
        out,
        "lsports_listening_socket",
        "Listening socket with these labels: 1, or the number of SO_REUSEPORT siblings sharing them.",
        &per_socket(&listening, labels, options.reach_label),
    )?;
    write_family(
        out,
        "lsports_listening_sockets",
        "Listening sockets by protocol and exposure (loopback, link-local, interface, specific, all).",
        &by_exposure(&listening, &options.protocols),
    )?;
    write_family(
        out,
        "lsports_listening_sockets_reachable",
        "Listening sockets by protocol, exposure and the address family that reaches them; a dual-stack [::] socket counts for ipv4 and ipv6.",
        &by_reachable_family(&listening, &options.protocols, &options.families),
    )
}

fn per_socket(entries: &[&Entry], labels: &mut Labels, reach: bool) -> Vec<(LabelSet, u64)> {
    let mut series: Vec<(LabelSet, u64)> = Vec::new();
    let mut index: HashMap<LabelSet, usize> = HashMap::new();
    for entry in entries {
        let mut set = socket_labels(entry, labels);
        if reach {
            set.push(("reach", reach_label(entry)));
        }
        match index.get(&set) {
            Some(&i) => series[i].1 += 1,
            None => {
                index.insert(set.clone(), series.len());
                series.push((set, 1));
            }
        }
    }
    series
}

fn socket_labels(entry: &Entry, labels: &mut Labels) -> LabelSet {
    let socket = &entry.socket;
    let interface = match &socket.device {
        DeviceBinding::Device { index, name } => device_label(*index, name.as_deref()),
        DeviceBinding::Unbound | DeviceBinding::Unknown => String::new(),
    };
    // The namespace's name, else `net:[INODE]`; empty when unknown (a snapshot).
    let netns = socket
        .netns
        .as_deref()
        .map(|ns| sanitize::terminal_safe(&ns.label()).into_owned())
        .unwrap_or_default();
    let user = labels
        .user_name(socket.uid)
        .unwrap_or_else(|| socket.uid.to_string());
    let mut set = vec![
        ("proto", socket.protocol.name().into()),
        ("family", socket.family.name().into()),
        ("address", socket.local_addr.to_string()),
        ("port", socket.local_port.to_string()),
        ("interface", interface),
        ("netns", netns),
        ("exposure", exposure::classify(socket).name().into()),
        ("program", program_names(entry)),
        (
            "user",
            sanitize::terminal_safe(user.as_bytes()).into_owned(),
        ),
    ];
    set.extend(ownership_labels(entry));
    set
}

/// `container` (its name, else its id; `alice/web` for a user's rootless one) and `unit`, each only when known: Prometheus reads a
/// missing label as an empty one, so hosts without containers keep their series as they were.
/// Escaped like process names; the format's own escaping follows when written.
fn ownership_labels(entry: &Entry) -> LabelSet {
    let Some(labels) = entry.labels.as_deref() else {
        return Vec::new();
    };
    let container = labels
        .container
        .as_ref()
        .map(|c| ("container", c.display_label()));
    let unit = labels.display_unit().map(|u| ("unit", u.into_owned()));
    container.into_iter().chain(unit).collect()
}

/// The verdict (`open`), or one per family where they differ (`ipv4:open,ipv6:filtered`).
fn reach_label(entry: &Entry) -> String {
    let one = |r: &crate::model::reach::Reach| match entry.reach.len() {
        1 => r.verdict.name().to_string(),
        _ => format!("{}:{}", r.family.name(), r.verdict.name()),
    };
    entry.reach.iter().map(one).collect::<Vec<_>>().join(",")
}

/// Distinct process names in pid order, terminal-safe, joined by `;` (empty when no holder
/// is known): the `program` label.
pub fn program_names(entry: &Entry) -> String {
    let mut names: Vec<String> = Vec::new();
    for name in entry.processes.iter().filter_map(|p| p.name.as_deref()) {
        let name = sanitize::terminal_safe(name).into_owned();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(";")
}

fn by_exposure(entries: &[&Entry], protocols: &[Protocol]) -> Vec<(LabelSet, u64)> {
    let mut series = Vec::new();
    for &protocol in protocols {
        for exposure in Exposure::EVERY {
            let count = entries
                .iter()
                .filter(|e| e.socket.protocol == protocol)
                .filter(|e| exposure::classify(&e.socket) == exposure)
                .count();
            let set = vec![
                ("proto", protocol.name().into()),
                ("exposure", exposure.name().into()),
            ];
            series.push((set, count as u64));
        }
    }
    series
}

fn by_reachable_family(
    entries: &[&Entry],
    protocols: &[Protocol],
    families: &[Family],
) -> Vec<(LabelSet, u64)> {
    let mut series = Vec::new();
    for &protocol in protocols {
        for &family in families {
            for exposure in Exposure::EVERY {
                let count = entries
                    .iter()
                    .filter(|e| e.socket.protocol == protocol)
                    .filter(|e| exposure::reachable_families(&e.socket).contains(&family))
                    .filter(|e| exposure::classify(&e.socket) == exposure)
                    .count();
                let set = vec![
                    ("proto", protocol.name().into()),
                    ("family", family.name().into()),
                    ("exposure", exposure.name().into()),
                ];
                series.push((set, count as u64));
            }
        }
    }
    series
}

fn write_family(
    out: &mut dyn Write,
    name: &str,
    help: &str,
    series: &[(LabelSet, u64)],
) -> io::Result<()> {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} gauge")?;
    for (set, value) in series {
        let pairs: Vec<String> = set
            .iter()
            .map(|(label, value)| format!("{label}=\"{}\"", escape_label_value(value)))
            .collect();
        writeln!(out, "{name}{{{}}} {value}", pairs.join(","))?;
    }
    Ok(())
}

/// Escape a label value as the exposition format defines: backslash, double quote, newline.
pub fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OwnerProcess, Socket};

    fn entry(addr: &str, port: u16, v6only: Option<bool>, name: &[u8]) -> Entry {
        let listening = Socket::listening(Protocol::Tcp, addr, port);
        Entry {
            socket: Socket {
                remote_addr: listening.local_addr,
                send_q: Some(1),
                inode: u64::from(port),
                v6only,
                ..listening
            },
            processes: crate::model::Owners::one(OwnerProcess {
                pid: 1,
                fd: 3,
                name: Some(name.into()),
                cmdline: None,
                uid: Some(0),
                labels: None,
            }),
            owner_unknown: None,
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
        }
    }

    fn render(entries: &[Entry]) -> String {
        let config = crate::cli::Cli::config_from(["lsports", "--format", "prometheus"]).unwrap();
        let mut out = Vec::new();
        let options = config.render_options();
        write_prometheus(entries, &options, &mut Labels::numeric(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
    }

    #[test]
    fn hostile_names_become_visible_text() {
        let text = render(&[entry("0.0.0.0", 22, None, b"\x1b[2J\"\\\n")]);
        assert!(text.contains(r#"program="\\e[2J\"\\\\\\n""#), "{text}");
        assert!(
            text.bytes()
                .all(|b| b == b'\n' || (0x20..0x7f).contains(&b))
        );
    }

    #[test]
    fn reuseport_siblings_add_up_instead_of_duplicating() {
        let text = render(&[
            entry("0.0.0.0", 80, None, b"srv"),
            entry("0.0.0.0", 80, None, b"srv"),
        ]);
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("lsports_listening_socket{"))
            .collect();
        assert_eq!(series.len(), 1, "{text}");
        assert!(series[0].ends_with("} 2"), "{text}");
    }

    #[test]
    fn summaries_count_dual_stack_for_ipv4_too() {
        let text = render(&[
            entry("::", 22, Some(false), b"sshd"),
            entry("::", 80, Some(true), b"web"),
            entry("127.0.0.1", 631, None, b"cupsd"),
        ]);
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has(
            r#"lsports_listening_sockets{proto="tcp",exposure="all"} 2"#
        ));
        assert!(has(
            r#"lsports_listening_sockets{proto="tcp",exposure="loopback"} 1"#
        ));
        assert!(has(
            r#"lsports_listening_sockets{proto="udp",exposure="all"} 0"#
        ));
        assert!(has(
            r#"lsports_listening_sockets_reachable{proto="tcp",family="ipv4",exposure="all"} 1"#
        ));
        assert!(has(
            r#"lsports_listening_sockets_reachable{proto="tcp",family="ipv6",exposure="all"} 2"#
        ));
    }
}
