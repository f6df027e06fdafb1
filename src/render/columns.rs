//! The columns of the table and the CSV (`-o/--columns`): their names, headers and cells.
//!
//! A column means the same in both formats; only the notation differs. The table writes
//! netstat's (`tcp6`, names unless `-n`, `-` for unknown, long PID lists shortened), the CSV
//! the JSON values (`tcp` plus a `family` column, numbers, an empty cell for unknown). Every
//! string a process or the network controls goes through the terminal-safe escaping, so no
//! cell of either carries a raw control character.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::model::word_hash::WordHasher;
use std::net::IpAddr;
use std::sync::Arc;

use super::labels::{Labels, device_label, program_cell, push_number, write_program_cell};
use super::table::display_width;
use crate::config::Column;
use crate::enrich::exe::Executables;
use crate::model::exposure;
use crate::model::labels::Labels as Owners;
use crate::model::reach::Reach;
use crate::model::{DeviceBinding, Entry, Family, Netns, OwnerProcess, Socket};
use crate::text::pids::pid_list;
use crate::text::sanitize;

/// The notation of the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// netstat's, for people; `wide` keeps long PID lists whole.
    Display {
        /// Never shorten PID lists.
        wide: bool,
    },
    /// The JSON values, for programs.
    Machine,
}

/// Makes the cells of one rendering; a copy per thread when rows are made on several.
#[derive(Clone)]
pub struct Cells<'a> {
    labels: Labels,
    exes: &'a Executables,
    style: Style,
    /// The `container` and `unit` cells of each distinct labels met.
    owner_cells: Vec<OwnerCells>,
    /// Index into `owner_cells` by the labels' address (the labels are kept there, so no
    /// address is reused while it is a key).
    owner_index: HashMap<usize, usize, BuildHasherDefault<WordHasher>>,
    /// The address of the labels of the last `container` or `unit` cell and its index:
    /// neighbouring rows often share them, and a hit here skips the lookup.
    last_owner: Option<(usize, usize)>,
}

/// The `container` and `unit` cells of one labels, made once.
#[derive(Clone)]
struct OwnerCells {
    /// Held so that its address stays its own while it is a key.
    _labels: Arc<Owners>,
    container: String,
    unit: String,
    /// Their display widths.
    container_width: usize,
    unit_width: usize,
}

impl<'a> Cells<'a> {
    /// Cells in `style`, with names from `labels` and executables from `exes`.
    pub fn new(labels: Labels, exes: &'a Executables, style: Style) -> Self {
        Cells {
            labels,
            exes,
            style,
            owner_cells: Vec::new(),
            owner_index: HashMap::default(),
            last_owner: None,
        }
    }

    /// The `flags` cell: the names of the flags the enrich stage found, distinct, in
    /// [`Flag::EVERY`](crate::model::finding::Flag::EVERY) order, comma-separated; `-`
    /// (table) or empty (CSV) when none. Formatting only: nothing is looked up here.
    fn flags(&self, entry: &Entry) -> String {
        let mut names: Vec<&str> = entry.findings.iter().map(|f| f.flag.name()).collect();
        names.dedup();
        if names.is_empty() {
            return self.or_missing(None);
        }
        names.join(",")
    }

    /// Append the text of `column` for `entry` to `out`, as [`Cells::text`] gives it: the
    /// table's path, which writes the commonest cells in place instead of through a `String`
    /// each (a 25,000-row table has 175,000 cells).
    pub fn write(&mut self, column: Column, entry: &Entry, out: &mut String) {
        self.write_measured(column, entry, out);
    }

    /// [`Cells::write`], returning the cell's display width where it is known without reading
    /// the text back: the `container` and `unit` cells, made once per distinct labels, keep
    /// theirs. The table measures every cell it writes, and these are its longest (a Docker
    /// container's unit is 77 characters): scanning them for each row showed in profiles of
    /// `--netns all`, where they are on by default.
    pub fn write_measured(
        &mut self,
        column: Column,
        entry: &Entry,
        out: &mut String,
    ) -> Option<usize> {
        let socket = &entry.socket;
        match column {
            Column::Container | Column::Unit => return Some(self.write_owner(column, entry, out)),
            Column::Proto => {
                out.push_str(socket.protocol.name());
                if matches!(self.style, Style::Display { .. }) && socket.family == Family::Ipv6 {
                    out.push('6');
                }
            }
            Column::RecvQ => push_number(out, socket.recv_q),
            Column::SendQ => match socket.send_q {
                Some(queue) => push_number(out, queue),
                None => out.push_str(&self.or_missing(None)),
            },
            Column::Local => self.labels.write_local(socket, out),
            Column::Foreign => self.labels.write_remote(socket, out),
            Column::State => out.push_str(socket.state.label(socket.protocol)),
            Column::Process => write_program_cell(&entry.processes, self.whole_lists(), out),
            // Every row's first cell under `--netns all`.
            Column::Netns => match socket.netns.as_deref() {
                Some(Netns {
                    name: Some(name), ..
                }) => out.push_str(&sanitize::terminal_safe(name)),
                Some(Netns { inode, .. }) => {
                    out.push_str("net:[");
                    push_number(out, *inode);
                    out.push(']');
                }
                None => out.push_str(self.missing()),
            },
            _ => out.push_str(&self.text(column, entry)),
        }
        None
    }

    /// The text of `column` for `entry`.
    pub fn text(&mut self, column: Column, entry: &Entry) -> String {
        let socket = &entry.socket;
        match column {
            Column::Proto => self.proto(socket),
            Column::Family => socket.family.name().into(),
            Column::RecvQ => socket.recv_q.to_string(),
            Column::SendQ => self.or_missing(socket.send_q.map(|q| q.to_string())),
            Column::Local => self.labels.local(socket),
            Column::Address => self.address(socket.local_addr, socket, true),
            Column::Port => self.port(socket.local_port, socket),
            Column::Foreign => self.labels.remote(socket),
            Column::RemoteAddr => self.address(socket.remote_addr, socket, false),
            Column::RemotePort => self.port(socket.remote_port, socket),
            Column::State => socket.state.label(socket.protocol).into(),
            // A minisocket has no owner (the kernel's 0 is no uid): `-`, as ss shows none.
            Column::Uid => self.or_missing(socket.owner_uid().map(|uid| uid.to_string())),
            Column::User => match socket.owner_uid() {
                Some(uid) => self.user(uid),
                None => self.missing().into(),
            },
            Column::Inode => socket.inode.to_string(),
            Column::Interface => self.or_missing(interface(socket)),
            Column::V6only => self.v6only(socket.v6only),
            Column::Exposure => exposure::classify(socket).name().into(),
            Column::Netns => self.or_missing(
                socket
                    .netns
                    .as_deref()
                    .map(|ns| sanitize::terminal_safe(&ns.label()).into_owned()),
            ),
            Column::Source => socket.source.name().into(),
            Column::Pid => self.pids(entry),
            Column::Program => self.joined(entry, |p, _| p.name.as_deref().map(safe)),
            Column::Process => program_cell(&entry.processes, self.whole_lists()),
            Column::Cmdline => self.joined(entry, |p, _| cmdline(p.cmdline.as_deref()?)),
            Column::Exe => self.joined(entry, |p, exes| exes.get(p.pid).map(safe)),
            Column::Flags => self.flags(entry),
            Column::Container | Column::Unit => {
                let mut text = String::new();
                self.write_owner(column, entry, &mut text);
                text
            }
            Column::Reach => self.reach(&entry.reach),
        }
    }

    /// The verdict (`open`), or one per family where they differ (`ipv4:open ipv6:filtered`;
    /// `;`-separated in the CSV); under `-w` each followed by what decided it, escaped (a rule's
    /// comment can hold any character). Empty for a socket that is not listening.
    fn reach(&self, reach: &[Reach]) -> String {
        let one = |r: &Reach| {
            let verdict = match reach.len() {
                1 => r.verdict.name().to_string(),
                _ => format!("{}:{}", r.family.name(), r.verdict.name()),
            };
            match self.style {
                Style::Display { wide: true } => {
                    format!("{verdict} ({})", sanitize::terminal_safe_text(r.by.clone()))
                }
                _ => verdict,
            }
        };
        let separator = match self.style {
            Style::Display { .. } => " ",
            Style::Machine => ";",
        };
        let text = reach.iter().map(one).collect::<Vec<_>>().join(separator);
        self.or_missing((!text.is_empty()).then_some(text))
    }

    fn proto(&self, socket: &Socket) -> String {
        match (self.style, socket.family) {
            (Style::Display { .. }, Family::Ipv6) => format!("{}6", socket.protocol.name()),
            _ => socket.protocol.name().into(),
        }
    }

    fn address(&self, addr: IpAddr, socket: &Socket, local: bool) -> String {
        match self.style {
            Style::Display { .. } => self.labels.address(addr, socket, local),
            Style::Machine => addr.to_string(),
        }
    }

    fn port(&self, port: u16, socket: &Socket) -> String {
        match self.style {
            Style::Display { .. } => self.labels.port_label(port, socket.protocol),
            Style::Machine => port.to_string(),
        }
    }

    fn user(&mut self, uid: u32) -> String {
        match self.style {
            Style::Display { .. } => self.labels.user_cell(uid),
            Style::Machine => self.labels.user_name(uid).unwrap_or_default(),
        }
    }

    fn v6only(&self, flag: Option<bool>) -> String {
        let text = match (self.style, flag) {
            (_, None) => return self.or_missing(None),
            (Style::Display { .. }, Some(true)) => "yes",
            (Style::Display { .. }, Some(false)) => "no",
            (Style::Machine, Some(flag)) => return flag.to_string(),
        };
        text.into()
    }

    fn pids(&self, entry: &Entry) -> String {
        let pids: Vec<u32> = entry.processes.iter().map(|p| p.pid).collect();
        let text = (!pids.is_empty()).then(|| pid_list(&pids, self.whole_lists()));
        self.or_missing(text)
    }

    /// The distinct values of `value` over the holders, in pid order, joined by `;`.
    fn joined(
        &self,
        entry: &Entry,
        value: impl Fn(&OwnerProcess, &Executables) -> Option<String>,
    ) -> String {
        let mut seen: Vec<String> = Vec::new();
        for text in entry.processes.iter().filter_map(|p| value(p, self.exes)) {
            if !text.is_empty() && !seen.contains(&text) {
                seen.push(text);
            }
        }
        self.or_missing((!seen.is_empty()).then(|| seen.join(";")))
    }

    fn whole_lists(&self) -> bool {
        match self.style {
            Style::Display { wide } => wide,
            Style::Machine => true,
        }
    }

    /// Append the `container` or `unit` cell; its display width. Both are made once per
    /// distinct labels (every socket of a container shares one), since escaping them for each
    /// cell of each pass showed in profiles of `--netns all`, where they are on by default;
    /// rows sorted by port interleave the namespaces, so the cells are kept for every labels
    /// met, not only the last.
    fn write_owner(&mut self, column: Column, entry: &Entry, out: &mut String) -> usize {
        let Some(labels) = entry.labels.as_ref() else {
            out.push_str(self.missing());
            return self.missing().len();
        };
        let key = Arc::as_ptr(labels) as usize;
        let index = match self.last_owner {
            Some((last, index)) if last == key => index,
            _ => match self.owner_index.get(&key) {
                Some(&index) => index,
                None => self.make_owner_cells(entry, labels),
            },
        };
        self.last_owner = Some((key, index));
        let cells = &self.owner_cells[index];
        let (text, width) = match column {
            Column::Container => (&cells.container, cells.container_width),
            _ => (&cells.unit, cells.unit_width),
        };
        out.push_str(text);
        width
    }

    /// Make and keep the `container` and `unit` cells of `labels` (`entry`'s); their index.
    fn make_owner_cells(&mut self, entry: &Entry, labels: &Arc<Owners>) -> usize {
        let mut container = String::new();
        if !self.push_container(entry, &mut container) {
            container.push_str(self.missing());
        }
        let unit = labels.display_unit();
        let unit = unit.map_or_else(|| self.missing().to_owned(), Cow::into_owned);
        self.owner_cells.push(OwnerCells {
            _labels: Arc::clone(labels),
            container_width: display_width(&container),
            unit_width: display_width(&unit),
            container,
            unit,
        });
        let index = self.owner_cells.len() - 1;
        self.owner_index.insert(Arc::as_ptr(labels) as usize, index);
        index
    }

    /// Append the container's name, else its id (cut to Docker's 12 digits in the table),
    /// after its pod as `pod-namespace/pod/` under Kubernetes, and after its user as `alice/`
    /// for a rootless one; escaped like process names.
    /// Written in place, without a `String` per cell (the column is on by default with
    /// `--netns all`); false if the socket has no container.
    fn push_container(&self, entry: &Entry, out: &mut String) -> bool {
        let Some(container) = entry.labels.as_deref().and_then(|l| l.container.as_ref()) else {
            return false;
        };
        // A rootless container's user first (`alice/web`): its name is that user's claim.
        if let Some(owner) = container.owner_prefix() {
            out.push_str(&owner);
        }
        if let Some(pod) = container.display_pod() {
            if let Some(namespace) = container.display_pod_namespace() {
                out.push_str(&namespace);
                out.push('/');
            }
            out.push_str(&pod);
            out.push('/');
        }
        match (container.display_name(), self.style) {
            (Some(name), _) => out.push_str(&name),
            (None, Style::Display { .. }) => out.extend(container.display_id().chars().take(12)),
            (None, Style::Machine) => out.push_str(&container.display_id()),
        }
        true
    }

    /// `-` in the table (as netstat), an empty cell in the CSV.
    fn missing(&self) -> &'static str {
        match self.style {
            Style::Display { .. } => "-",
            Style::Machine => "",
        }
    }

    /// `text`, or [`Cells::missing`]'s mark.
    fn or_missing(&self, text: Option<String>) -> String {
        text.unwrap_or_else(|| self.missing().into())
    }
}

fn safe(bytes: &[u8]) -> String {
    sanitize::terminal_safe(bytes).into_owned()
}

fn cmdline(raw: &[u8]) -> Option<String> {
    Some(sanitize::cmdline_terminal_safe(raw))
}

fn interface(socket: &Socket) -> Option<String> {
    match &socket.device {
        DeviceBinding::Device { index, name } => Some(device_label(*index, name.as_deref())),
        DeviceBinding::Unbound | DeviceBinding::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, SocketState, SourceKind};
    use clap::ValueEnum;

    fn entry(processes: Vec<OwnerProcess>) -> Entry {
        Entry {
            socket: Socket {
                protocol: Protocol::Tcp,
                family: Family::Ipv6,
                local_addr: "::".parse().unwrap(),
                local_port: 22,
                remote_addr: "::".parse().unwrap(),
                remote_port: 0,
                state: SocketState::LISTEN,
                recv_q: 0,
                send_q: None,
                uid: 0,
                inode: 99,
                v6only: Some(false),
                device: DeviceBinding::Device {
                    index: 3,
                    name: Some("eth\x1b0".into()),
                },
                source: SourceKind::Netlink,
                cgroup_id: None,
                netns: None,
            },
            processes: processes.into(),
            owner_unknown: None,
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
        }
    }

    fn process(pid: u32, name: &[u8], cmdline: &[u8]) -> OwnerProcess {
        OwnerProcess {
            pid,
            fd: 3,
            name: Some(name.into()),
            cmdline: Some(cmdline.into()),
            uid: Some(0),
            labels: None,
        }
    }

    fn cells(style: Style) -> Cells<'static> {
        static NONE: std::sync::OnceLock<Executables> = std::sync::OnceLock::new();
        Cells::new(
            Labels::numeric(),
            NONE.get_or_init(Executables::default),
            style,
        )
    }

    #[test]
    fn every_column_has_a_distinct_key_that_parses_back() {
        let mut keys = std::collections::HashSet::new();
        for column in Column::value_variants() {
            assert!(keys.insert(column.key()), "{column:?}");
            assert_eq!(Column::from_str(column.key(), true), Ok(*column));
        }
        assert_eq!(Column::from_str("recv-q", true), Ok(Column::RecvQ));
        assert_eq!(
            Column::from_str("REMOTE-PORT", true),
            Ok(Column::RemotePort)
        );
    }

    #[test]
    fn table_and_csv_notations_differ_only_in_form() {
        let e = entry(vec![
            process(700, b"master", b"nginx\0-g\0daemon off;\0"),
            process(701, b"worker", b"nginx: worker"),
            process(702, b"worker", b"nginx: worker"),
        ]);
        let mut table = cells(Style::Display { wide: false });
        let mut csv = cells(Style::Machine);
        assert_eq!(table.text(Column::Proto, &e), "tcp6");
        assert_eq!(csv.text(Column::Proto, &e), "tcp");
        assert_eq!(table.text(Column::Address, &e), "*");
        assert_eq!(csv.text(Column::Address, &e), "::");
        assert_eq!(table.text(Column::SendQ, &e), "-");
        assert_eq!(csv.text(Column::SendQ, &e), "");
        assert_eq!(table.text(Column::V6only, &e), "no");
        assert_eq!(csv.text(Column::V6only, &e), "false");
        assert_eq!(table.text(Column::Pid, &e), "700,701,702");
        assert_eq!(csv.text(Column::Program, &e), "master;worker");
        assert_eq!(
            csv.text(Column::Cmdline, &e),
            "nginx -g daemon off;;nginx: worker"
        );
        assert_eq!(csv.text(Column::Process, &e), "700/master;701,702/worker");
        assert_eq!(csv.text(Column::Exposure, &e), "interface");
        assert_eq!(csv.text(Column::Exe, &e), "");
        assert_eq!(table.text(Column::Exe, &e), "-");
    }

    #[test]
    fn written_cells_equal_their_text_in_every_column_and_style() {
        let mut v4 = entry(vec![process(812, b"ss\x1bhd", b"")]);
        v4.socket.family = Family::Ipv4;
        v4.socket.local_addr = "10.0.0.1".parse().unwrap();
        v4.socket.remote_addr = "10.0.0.2".parse().unwrap();
        v4.socket.remote_port = 40_000;
        v4.socket.send_q = Some(128);
        v4.socket.recv_q = 3;
        let mut nameless = entry(vec![OwnerProcess {
            name: None,
            ..process(5, b"", b"")
        }]);
        nameless.socket.device = DeviceBinding::Unbound;
        let many = entry((0..7).map(|i| process(100 + i, b"worker", b"")).collect());
        let netns = |name: Option<&[u8]>| {
            Some(Arc::new(crate::model::Netns {
                inode: 4026532286,
                name: name.map(<[u8]>::to_vec),
            }))
        };
        let mut named = v4.clone();
        named.socket.netns = netns(Some(b"w\x1b[2J1"));
        named.socket.recv_q = u32::MAX;
        named.socket.local_addr = "255.255.255.255".parse().unwrap();
        let mut unnamed = nameless.clone();
        unnamed.socket.netns = netns(None);
        let entries = [v4, nameless, many, entry(Vec::new()), named, unnamed];
        for style in [
            Style::Display { wide: false },
            Style::Display { wide: true },
            Style::Machine,
        ] {
            let mut cells = cells(style);
            for e in &entries {
                for column in Column::value_variants() {
                    let mut written = String::from("x");
                    cells.write(*column, e, &mut written);
                    let text = cells.text(*column, e);
                    assert_eq!(written, format!("x{text}"), "{column:?} {style:?}");
                }
            }
        }
    }

    #[test]
    fn a_width_written_cells_report_is_the_width_of_what_they_wrote() {
        use crate::model::labels::{Container, Runtime};
        let labelled = |name: &str, unit: Option<&str>| {
            let mut e = entry(vec![process(9, b"app", b"")]);
            e.labels = Some(Arc::new(Owners {
                unit: unit.map(str::to_owned),
                container: Some(Container {
                    runtime: Runtime::Docker,
                    id: "ab".repeat(32),
                    name: Some(name.to_owned()),
                    pod: None,
                    pod_namespace: None,
                    rootless_uid: None,
                    rootless_user: None,
                }),
            }));
            e
        };
        let entries = [
            labelled("web", Some("docker-abab.scope")),
            labelled("ウェブ", Some("サービス.service")),
            labelled("ev\u{1b}[31mil", None),
            entry(Vec::new()),
        ];
        for style in [Style::Display { wide: false }, Style::Machine] {
            let mut cells = cells(style);
            // Twice: the second time the kept cells answer.
            for e in entries.iter().chain(&entries) {
                for column in Column::value_variants() {
                    let mut written = String::new();
                    let width = cells.write_measured(*column, e, &mut written);
                    if let Some(width) = width {
                        assert_eq!(width, display_width(&written), "{column:?} {written:?}");
                    }
                    let owner = matches!(column, Column::Container | Column::Unit);
                    assert_eq!(width.is_some(), owner, "{column:?}");
                }
            }
        }
        let mut table = cells(Style::Display { wide: false });
        assert_eq!(table.text(Column::Container, &entries[1]), "ウェブ");
        assert_eq!(table.text(Column::Container, &entries[2]), "ev\\e[31mil");
    }

    #[test]
    fn hostile_names_are_escaped_in_every_cell() {
        let e = entry(vec![process(9, b"\x1b[2J\nx", b"sh\0-c\0\x1b]0;t\x07\0")]);
        let mut csv = cells(Style::Machine);
        for column in Column::value_variants() {
            let text = csv.text(*column, &e);
            assert!(
                !text.chars().any(sanitize::is_terminal_unsafe),
                "{column:?}: {text:?}"
            );
        }
        assert_eq!(csv.text(Column::Program, &e), "\\e[2J\\nx");
        assert_eq!(csv.text(Column::Interface, &e), "eth\\e0");
    }

    #[test]
    fn the_netns_column_names_the_namespace_escaped_or_shows_its_inode() {
        let mut e = entry(Vec::new());
        let mut table = cells(Style::Display { wide: false });
        assert_eq!(table.text(Column::Netns, &e), "-");
        let named = |name: Option<&[u8]>| {
            Some(std::sync::Arc::new(crate::model::Netns {
                inode: 4026532286,
                name: name.map(<[u8]>::to_vec),
            }))
        };
        e.socket.netns = named(None);
        assert_eq!(table.text(Column::Netns, &e), "net:[4026532286]");
        e.socket.netns = named(Some(b"w\x1b[2J1\n"));
        for style in [Style::Display { wide: false }, Style::Machine] {
            assert_eq!(cells(style).text(Column::Netns, &e), "w\\e[2J1\\n");
        }
    }

    #[test]
    fn long_pid_lists_are_cut_only_in_the_table() {
        let many: Vec<OwnerProcess> = (1..=9).map(|pid| process(pid, b"w", b"")).collect();
        let e = entry(many);
        assert_eq!(
            cells(Style::Display { wide: false }).text(Column::Pid, &e),
            "1,2,3,+6"
        );
        assert_eq!(
            cells(Style::Machine).text(Column::Pid, &e),
            "1,2,3,4,5,6,7,8,9"
        );
        assert_eq!(cells(Style::Machine).text(Column::Cmdline, &e), "");
    }
}
