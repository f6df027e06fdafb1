//! Display text for addresses, ports, users and holders, in netstat's and ss's notation.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::Numeric;
use crate::enrich::names::{Services, UserNames, resolve_hosts};
use crate::model::{DeviceBinding, Entry, OwnerProcess, Protocol, Socket};
use crate::text::pids::pid_list;
use crate::text::sanitize;

/// How long all reverse lookups of one table may take together.
const HOST_LOOKUP_BUDGET: Duration = Duration::from_secs(1);

/// Resolved names for one rendering.
#[derive(Debug, Default, Clone)]
pub struct Labels {
    numeric: Numeric,
    services: Services,
    users: UserNames,
    hosts: HashMap<IpAddr, String>,
}

impl Labels {
    /// Names needing no lookups at all (for machine formats and `-n`).
    pub fn numeric() -> Self {
        Labels {
            numeric: Numeric {
                hosts: true,
                ports: true,
                users: false,
            },
            ..Labels::default()
        }
    }

    /// Load what `numeric` does not rule out, resolving the hosts of `entries` up front.
    pub fn for_table(numeric: Numeric, entries: &[Entry]) -> Self {
        let services = if numeric.ports {
            Services::default()
        } else {
            Services::load_system()
        };
        let hosts = if numeric.hosts {
            HashMap::new()
        } else {
            let addrs: Vec<IpAddr> = entries
                .iter()
                .flat_map(|e| [e.socket.local_addr, e.socket.remote_addr])
                .collect();
            resolve_hosts(&addrs, HOST_LOOKUP_BUDGET)
        };
        Labels {
            numeric,
            services,
            users: UserNames::default(),
            hosts,
        }
    }

    /// The user name of `uid` (for JSON, regardless of `-n`).
    pub fn user_name(&mut self, uid: u32) -> Option<String> {
        self.users.name(uid).map(str::to_string)
    }

    /// The User column: a name unless numeric users were asked for or none exists.
    pub fn user_cell(&mut self, uid: u32) -> String {
        if self.numeric.users {
            return uid.to_string();
        }
        self.users
            .name(uid)
            .map_or_else(|| uid.to_string(), str::to_string)
    }

    /// Local Address, e.g. `0.0.0.0:22`, `*:22`, `[::]:22`, `[::1]%lo:53`, `localhost:ssh`.
    pub fn local(&self, socket: &Socket) -> String {
        let mut text = String::new();
        self.write_local(socket, &mut text);
        text
    }

    /// [`Labels::local`], appended to `out`.
    pub fn write_local(&self, socket: &Socket, out: &mut String) {
        self.write_host(socket.local_addr, socket, true, out);
        out.push(':');
        self.write_port(socket.local_port, socket.protocol, out);
    }

    /// Foreign Address: `0.0.0.0:*` when unconnected, else the peer.
    pub fn remote(&self, socket: &Socket) -> String {
        let mut text = String::new();
        self.write_remote(socket, &mut text);
        text
    }

    /// [`Labels::remote`], appended to `out`.
    pub fn write_remote(&self, socket: &Socket, out: &mut String) {
        self.write_host(socket.remote_addr, socket, false, out);
        if socket.remote_port == 0 && socket.remote_addr.is_unspecified() {
            out.push_str(":*");
            return;
        }
        out.push(':');
        self.write_port(socket.remote_port, socket.protocol, out);
    }

    /// An address alone, for the Address columns: its resolved name, `*` for a dual-stack
    /// local wildcard, else the address without brackets (`::1`, `0.0.0.0`).
    pub fn address(&self, addr: IpAddr, socket: &Socket, local: bool) -> String {
        match addr {
            IpAddr::V6(v6) if local && v6.is_unspecified() && socket.v6only == Some(false) => {
                "*".into()
            }
            _ if addr.is_unspecified() => addr.to_string(),
            _ => match self.hosts.get(&addr) {
                Some(name) => sanitize::terminal_safe(name.as_bytes()).into_owned(),
                None => addr.to_string(),
            },
        }
    }

    fn write_host(&self, addr: IpAddr, socket: &Socket, local: bool, out: &mut String) {
        match addr {
            // ss's notation: `*` is a dual-stack wildcard that also accepts IPv4.
            IpAddr::V6(v6) if v6.is_unspecified() && socket.v6only == Some(false) => out.push('*'),
            _ if addr.is_unspecified() => write_bracketed(addr, out),
            _ => match self.hosts.get(&addr) {
                Some(name) => out.push_str(&sanitize::terminal_safe(name.as_bytes())),
                None => write_bracketed(addr, out),
            },
        }
        if local {
            if let DeviceBinding::Device { index, name } = &socket.device {
                out.push('%');
                out.push_str(&device_label(*index, name.as_deref()));
            }
        }
    }

    /// A port alone: its service name unless numeric ports were asked for or it has none.
    pub fn port_label(&self, port: u16, protocol: Protocol) -> String {
        let mut text = String::new();
        self.write_port(port, protocol, &mut text);
        text
    }

    fn write_port(&self, port: u16, protocol: Protocol, out: &mut String) {
        match self.services.name(port, protocol) {
            Some(name) if !self.numeric.ports => out.push_str(name),
            _ => push_number(out, port),
        }
    }
}

/// An address as it goes before `:port`: IPv6 in brackets. IPv4, most rows, is written digit
/// by digit: through `Display` it went through the formatter's padding once per octet, and
/// was the largest part of a table's rendering time (measured: 25,000 rows, two addresses a
/// row, each written twice, once to measure the columns).
fn write_bracketed(addr: IpAddr, out: &mut String) {
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            push_number(out, a);
            for octet in [b, c, d] {
                out.push('.');
                push_number(out, octet);
            }
        }
        // Writing to a String cannot fail.
        IpAddr::V6(v6) => drop(write!(out, "[{v6}]")),
    }
}

/// Append a number's decimal digits (as `Display` writes them, without its formatter).
pub fn push_number(out: &mut String, number: impl Into<u64>) {
    let mut buf = [0u8; 20];
    let digits = crate::text::digits::decimal(number.into(), &mut buf);
    // Every byte written is an ASCII digit.
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// A device's name made terminal-safe, or its index when the name is unknown.
pub fn device_label(index: u32, name: Option<&str>) -> String {
    match name {
        Some(name) => sanitize::terminal_safe(name.as_bytes()).into_owned(),
        None => index.to_string(),
    }
}

/// The program column: every holder, grouped by name in pid order, e.g. `812,813/nginx` or
/// `700/master;701,702/worker`; `-` when no process was found. Without `wide`, a group of many
/// PIDs shows its first few and how many more (`812,813,814,+37/nginx`), never silently one.
pub fn program_cell(processes: &[OwnerProcess], wide: bool) -> String {
    cell_naming(processes, wide, sanitize::terminal_safe)
}

/// [`program_cell`] for lines read word by word (watch events, audit rows), where a name is
/// chosen by whoever runs the process: a name that is empty or holds whitespace, a `"` or a
/// `;` (which separates holders) is written in double quotes, its `"` as `\"`, so that no
/// name can pass for another field or another holder (`812/"evil open tcp 0"`). Backslashes
/// are already doubled by [`sanitize::terminal_safe`], so `\"` is unambiguous.
pub fn program_cell_quoted(processes: &[OwnerProcess], wide: bool) -> String {
    cell_naming(processes, wide, quoted_name)
}

/// A process name, terminal-safe, in double quotes when it could be read as more than one
/// word or holder (see [`program_cell_quoted`]).
pub fn quoted_name(name: &[u8]) -> Cow<'_, str> {
    let safe = sanitize::terminal_safe(name);
    let ambiguous = |c: char| c.is_whitespace() || c == '"' || c == ';';
    if !safe.is_empty() && !safe.chars().any(ambiguous) {
        return safe;
    }
    Cow::Owned(format!("\"{}\"", safe.replace('"', "\\\"")))
}

/// The program column with each name written by `name`.
fn cell_naming(
    processes: &[OwnerProcess],
    wide: bool,
    name: impl Fn(&[u8]) -> Cow<'_, str>,
) -> String {
    if processes.is_empty() {
        return "-".into();
    }
    let mut groups: Vec<(Option<&[u8]>, Vec<u32>)> = Vec::new();
    for process in processes {
        let name = process.name.as_deref();
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, pids)) => pids.push(process.pid),
            None => groups.push((name, vec![process.pid])),
        }
    }
    let parts: Vec<String> = (groups.iter())
        .map(|(group, pids)| {
            let pids = pid_list(pids, wide);
            match group {
                Some(group) => format!("{pids}/{}", name(group)),
                None => pids,
            }
        })
        .collect();
    parts.join(";")
}

/// [`program_cell`], appended to `out`, without building the groups for the commonest case:
/// a socket held by one process.
pub fn write_program_cell(processes: &[OwnerProcess], wide: bool, out: &mut String) {
    let [process] = processes else {
        out.push_str(&program_cell(processes, wide));
        return;
    };
    push_number(out, process.pid);
    if let Some(name) = process.name.as_deref() {
        out.push('/');
        out.push_str(&sanitize::terminal_safe(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ipv4_addresses_are_written_as_display_writes_them() {
        for number in [0, 7, 9, 10, 99, 100, 65535, u64::from(u32::MAX), u64::MAX] {
            let mut out = String::from("x");
            push_number(&mut out, number);
            assert_eq!(out, format!("x{number}"));
        }
        for addr in [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.3.45",
            "255.255.255.255",
            "::1",
            "fe80::1",
        ] {
            let addr: IpAddr = addr.parse().unwrap();
            let mut out = String::new();
            write_bracketed(addr, &mut out);
            let want = match addr {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            assert_eq!(out, want);
        }
    }

    fn holder(pid: u32, name: &[u8]) -> OwnerProcess {
        OwnerProcess {
            pid,
            fd: 3,
            name: Some(name.into()),
            cmdline: None,
            uid: Some(0),
            labels: None,
        }
    }

    #[test]
    fn a_name_that_could_read_as_more_words_or_holders_is_quoted() {
        let cell = |names: &[&[u8]]| {
            let holders: Vec<OwnerProcess> = (names.iter().enumerate())
                .map(|(i, n)| holder(10 + i as u32, n))
                .collect();
            program_cell_quoted(&holders, true)
        };
        assert_eq!(cell(&[b"sshd"]), "10/sshd");
        assert_eq!(cell(&[b"kworker/0:1"]), "10/kworker/0:1");
        assert_eq!(cell(&[b"evil open tcp 0"]), "10/\"evil open tcp 0\"");
        assert_eq!(cell(&[b"a;9/b", b"c"]), "10/\"a;9/b\";11/c");
        assert_eq!(cell(&[b"say \"hi\""]), r#"10/"say \"hi\"""#);
        // A backslash is doubled, so a quote after it is still told apart.
        assert_eq!(cell(&[b"x\\\" y"]), r#"10/"x\\\" y""#);
        // Controls are escaped, never raw; a no-break space is a space to a reader.
        assert_eq!(cell(&[b"a\tb"]), r"10/a\tb");
        assert_eq!(cell(&["a\u{a0}b".as_bytes()]), "10/\"a\u{a0}b\"");
        assert_eq!(cell(&[b""]), "10/\"\"");
        // The table's cell is unchanged.
        assert_eq!(program_cell(&[holder(10, b"a b")], true), "10/a b");
    }
}
