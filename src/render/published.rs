//! A listing with published ports (`--published`): the sockets as every format writes them,
//! then one row per published port — in the table and CSV under the same columns (`Local
//! Address` reads `0.0.0.0:8080 → 172.17.0.2:80 (web)`, `State` reads `PUBLISHED`), in JSON
//! and JSON Lines as [`wire::PublishedRow`] objects after the socket objects. Prometheus
//! output has no published ports: it counts sockets.

use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use super::columns::{Cells, Style};
use super::table::Grid;
use super::wire::{self, PublishedRow};
use super::{Labels, csv, json};
use crate::config::{Column, OutputFormat, RenderOptions};
use crate::enrich::exe::Executables;
use crate::model::published::{
    Landing, Published, PublishedKind, PublishedReach, WITHOUT_LISTENER,
};
use crate::model::{Entry, Family};
use crate::text::safe_json;
use crate::text::sanitize::{terminal_safe, terminal_safe_text};

/// Render `entries`, then `published`, as `options` say.
pub fn render(
    entries: &[Entry],
    published: &[Published],
    options: &RenderOptions,
    exes: &Executables,
    out: &mut dyn Write,
) -> io::Result<()> {
    match options.format {
        OutputFormat::Table => {
            let labels = Labels::for_table(options.numeric, entries);
            let style = Style::Display { wide: options.wide };
            let cells = Cells::new(labels, exes, style);
            write_grid(entries, published, options, cells, style, out)
        }
        OutputFormat::Csv => {
            let cells = Cells::new(Labels::numeric(), exes, Style::Machine);
            write_grid(entries, published, options, cells, Style::Machine, out)
        }
        OutputFormat::Json => write_json(entries, published, exes, out),
        OutputFormat::Jsonl => {
            json::write_jsonl(entries, &mut Labels::numeric(), exes, out)?;
            for p in published {
                safe_json::to_writer(&mut *out, &PublishedRow::of(p), false)
                    .map_err(io::Error::from)?;
                writeln!(out)?;
            }
            Ok(())
        }
        OutputFormat::Prometheus => super::render(entries, options, exes, out),
    }
}

/// A row of the JSON array: a socket, or a published port.
#[derive(Serialize)]
#[serde(untagged)]
enum Row {
    Socket(wire::Socket),
    Published(PublishedRow),
}

fn write_json(
    entries: &[Entry],
    published: &[Published],
    exes: &Executables,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut labels = Labels::numeric();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut *out, safe_json::SafeJsonFormatter::pretty());
    let sockets = entries
        .iter()
        .map(|e| Row::Socket(json::json_socket(e, &mut labels, exes)));
    let ports = published
        .iter()
        .map(|p| Row::Published(PublishedRow::of(p)));
    serde::Serializer::collect_seq(&mut serializer, sockets.chain(ports))
        .map_err(io::Error::from)?;
    writeln!(out)
}

/// The table (`Style::Display`) or the CSV (`Style::Machine`): sockets, then published ports.
fn write_grid(
    entries: &[Entry],
    published: &[Published],
    options: &RenderOptions,
    mut cells: Cells<'_>,
    style: Style,
    out: &mut dyn Write,
) -> io::Result<()> {
    let columns = &options.columns;
    if style == Style::Machine {
        csv::write_csv(entries, options, &mut cells, out)?;
        for p in published {
            let row: Vec<String> = columns.iter().map(|&c| cell(c, p, style)).collect();
            let quoted: Vec<_> = row.iter().map(|f| csv::quote(f)).collect();
            writeln!(out, "{}", quoted.join(","))?;
        }
        return Ok(());
    }
    let right: Vec<bool> = columns.iter().map(|c| c.right_aligned()).collect();
    let mut grid = Grid::new(columns.len(), entries.len() + published.len() + 1);
    if options.header {
        grid.push_row(columns.iter().map(|c| c.header()));
    }
    for entry in entries {
        for &column in columns {
            grid.push_cell_with(|text| cells.write(column, entry, text));
        }
    }
    for p in published {
        for &column in columns {
            grid.push_cell(&cell(column, p, style));
        }
    }
    grid.write(&right, out)
}

/// One cell of a published port's row. Columns about a socket's own kernel state (queues,
/// uid, inode, v6only, source) have nothing to say: `-` (empty in CSV). `Reach` is the
/// verdict of the host port, as for a socket.
pub fn cell(column: Column, p: &Published, style: Style) -> String {
    let display = matches!(style, Style::Display { .. });
    let text = match column {
        Column::Proto if display && p.family == Family::Ipv6 => Some(format!("{}6", proto(p))),
        Column::Proto => Some(proto(p).to_string()),
        Column::Family => Some(p.family.name().to_string()),
        Column::Local => Some(local(p, display)),
        Column::Address => Some(p.host_addr.to_string()),
        Column::Port => Some(p.host_port.to_string()),
        Column::State => Some("PUBLISHED".to_string()),
        Column::Netns => netns(p),
        Column::Container => container(p, display),
        Column::Pid => pids(p),
        Column::Program => Some(programs(p)),
        Column::Process => Some(process(p)),
        Column::Flags => Some(flags(p)),
        Column::Unit => match &p.landing {
            Landing::Listener(l) => l.labels.as_deref().and_then(|l| l.display_unit()),
            _ => None,
        }
        .map(|u| u.into_owned()),
        Column::Reach => Some(reach(p, style)),
        _ => None,
    };
    text.filter(|t| !t.is_empty())
        .unwrap_or_else(|| if display { "-".into() } else { String::new() })
}

/// The reach verdict of the host port, as a socket's `reach` cell reads: `open`, one per
/// family where there are several (`;`-separated in the CSV), under `-w` each followed by what
/// decided it, escaped (a rule's text can hold any character).
fn reach(p: &Published, style: Style) -> String {
    let one = |r: &PublishedReach| {
        let verdict = match p.reach.len() {
            1 => r.verdict.to_string(),
            _ => format!("{}:{}", r.family, r.verdict),
        };
        match style {
            Style::Display { wide: true } => {
                format!("{verdict} ({})", terminal_safe_text(r.by.clone()))
            }
            _ => verdict,
        }
    };
    let separator = match style {
        Style::Display { .. } => " ",
        Style::Machine => ";",
    };
    p.reach.iter().map(one).collect::<Vec<_>>().join(separator)
}

fn proto(p: &Published) -> &'static str {
    p.protocol.name()
}

/// `0.0.0.0:8080 → 172.17.0.2:80 (web)`; a redirect's target is `:PORT` on this host.
fn local(p: &Published, display: bool) -> String {
    let host = endpoint(p.host_addr, p.host_port);
    let target = match p.target_addr {
        Some(addr) => endpoint(addr, p.target_port),
        None => format!(":{}", p.target_port),
    };
    let mut text = format!("{host} → {target}");
    if display {
        match (container(p, true), &p.landing) {
            (Some(name), _) => text.push_str(&format!(" ({name})")),
            (None, Landing::NoListener { .. }) => text.push_str(" (no listener)"),
            _ => {}
        }
    }
    text
}

fn endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V6(a) => format!("[{a}]:{port}"),
        IpAddr::V4(a) => format!("{a}:{port}"),
    }
}

/// The listener's container: its name, else its id (12 digits in the table), after its user
/// (`alice/`) for a rootless one; escaped.
fn container(p: &Published, display: bool) -> Option<String> {
    let c = p.container()?;
    let owner = c.owner_prefix().unwrap_or_default();
    Some(match c.display_name() {
        Some(name) => format!("{owner}{name}"),
        None if display => format!(
            "{owner}{}",
            c.display_id().chars().take(12).collect::<String>()
        ),
        None => format!("{owner}{}", c.display_id()),
    })
}

/// The namespace the port is published in (its host side's, as a socket's `netns` is).
fn netns(p: &Published) -> Option<String> {
    Some(terminal_safe(&p.netns.as_deref()?.label()).into_owned())
}

fn pids(p: &Published) -> Option<String> {
    let pids: Vec<String> =
        p.by.iter()
            .filter_map(|b| b.pid)
            .map(|n| n.to_string())
            .collect();
    Some(pids.join(","))
}

/// `docker-proxy`, `dnat`, `redirect`: what publishes it, once each.
fn programs(p: &Published) -> String {
    let mut kinds: Vec<PublishedKind> = p.by.iter().map(|b| b.kind).collect();
    kinds.dedup();
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    names.join(",")
}

/// netstat's `PID/Program name` for what publishes it: `1234/docker-proxy`, `dnat`.
fn process(p: &Published) -> String {
    let parts: Vec<String> =
        p.by.iter()
            .map(|b| match b.pid {
                Some(pid) => format!("{pid}/{}", b.kind.name()),
                None => b.kind.name().to_string(),
            })
            .collect();
    let mut unique: Vec<String> = Vec::new();
    for part in parts {
        if !unique.contains(&part) {
            unique.push(part);
        }
    }
    unique.join(",")
}

fn flags(p: &Published) -> String {
    if p.without_listener() {
        WITHOUT_LISTENER.into()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::labels::{Container, Labels as ModelLabels, Runtime};
    use crate::model::published::{PublishedBy, PublishedListener};
    use crate::model::{Netns, Protocol};

    fn port(landing: Landing) -> Published {
        Published {
            protocol: Protocol::Tcp,
            family: Family::Ipv4,
            netns: None,
            host_addr: "0.0.0.0".parse().unwrap(),
            host_port: 8080,
            target_addr: Some("172.17.0.2".parse().unwrap()),
            target_port: 80,
            by: vec![PublishedBy {
                kind: PublishedKind::DockerProxy,
                text: "docker-proxy pid 9".into(),
                pid: Some(9),
            }],
            landing,
            reach: vec![],
        }
    }

    fn landed(name: &str) -> Landing {
        Landing::Listener(PublishedListener {
            netns: Some(Arc::new(Netns {
                inode: 7,
                name: Some(b"c\x1b1".to_vec()),
            })),
            addr: "0.0.0.0".parse().unwrap(),
            port: 80,
            inode: 3,
            labels: Some(Arc::new(ModelLabels {
                unit: None,
                container: Some(Container {
                    runtime: Runtime::Docker,
                    id: "ab".repeat(32),
                    name: Some(name.into()),
                    pod: None,
                    pod_namespace: None,
                    rootless_uid: None,
                    rootless_user: None,
                }),
            })),
        })
    }

    #[test]
    fn a_row_reads_host_to_target_and_escapes_names() {
        let table = Style::Display { wide: false };
        let p = port(landed("web\x1b[2J"));
        assert_eq!(
            cell(Column::Local, &p, table),
            "0.0.0.0:8080 → 172.17.0.2:80 (web\\e[2J)"
        );
        assert_eq!(cell(Column::State, &p, table), "PUBLISHED");
        assert_eq!(cell(Column::Process, &p, table), "9/docker-proxy");
        assert_eq!(cell(Column::Netns, &p, table), "-");
        let here = Published {
            netns: Some(Arc::new(Netns {
                inode: 7,
                name: Some(b"h\x1b1".to_vec()),
            })),
            ..port(Landing::NotSeen)
        };
        assert_eq!(cell(Column::Netns, &here, table), "h\\e1");
        assert_eq!(cell(Column::RecvQ, &p, table), "-");
        assert_eq!(cell(Column::RecvQ, &p, Style::Machine), "");
        assert_eq!(cell(Column::Flags, &p, table), "-");
        let lost = port(Landing::NoListener { netns: None });
        assert_eq!(
            cell(Column::Local, &lost, table),
            "0.0.0.0:8080 → 172.17.0.2:80 (no listener)"
        );
        assert_eq!(cell(Column::Flags, &lost, table), WITHOUT_LISTENER);
        assert_eq!(
            cell(Column::Local, &lost, Style::Machine),
            "0.0.0.0:8080 → 172.17.0.2:80"
        );
    }

    #[test]
    fn json_rows_follow_the_sockets() {
        let rows = [port(landed("web")), port(Landing::NotSeen)];
        let options = crate::cli::Cli::config_from(["lsports", "--json"])
            .unwrap()
            .render_options();
        let mut out = Vec::new();
        render(&[], &rows, &options, &Executables::default(), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["kind"], "published");
        assert_eq!(v[0]["local_port"], 8080);
        assert_eq!(v[0]["container"]["name"], "web");
        assert_eq!(v[0]["published"]["landing"], "listener");
        assert_eq!(v[0]["published"]["listener"]["local_port"], 80);
        assert_eq!(v[1]["published"]["landing"], "not_seen");
        let back: Vec<PublishedRow> = serde_json::from_slice(&out).unwrap();
        assert_eq!(back[1], PublishedRow::of(&rows[1]));
    }

    #[test]
    fn a_row_shows_the_reach_of_its_host_port() {
        let verdict = |verdict: &'static str, family: &'static str| PublishedReach {
            verdict,
            family,
            by: "table ip nat chain pre handle 3: \x1b[2J dnat".into(),
            conditions: vec![],
        };
        let p = Published {
            reach: vec![verdict("filtered", "ipv4")],
            ..port(Landing::NotSeen)
        };
        assert_eq!(
            cell(Column::Reach, &p, Style::Display { wide: false }),
            "filtered"
        );
        assert_eq!(cell(Column::Reach, &p, Style::Machine), "filtered");
        assert_eq!(
            cell(Column::Reach, &p, Style::Display { wide: true }),
            "filtered (table ip nat chain pre handle 3: \\e[2J dnat)"
        );
        let both = Published {
            reach: vec![verdict("open", "ipv4"), verdict("unknown", "ipv6")],
            ..port(Landing::NotSeen)
        };
        assert_eq!(
            cell(Column::Reach, &both, Style::Machine),
            "ipv4:open;ipv6:unknown"
        );
        let none = port(Landing::NotSeen);
        assert_eq!(
            cell(Column::Reach, &none, Style::Display { wide: false }),
            "-"
        );
    }
}
