//! One poll of `--wait`: the listening sockets on the waited-for ports, read as cheaply as the
//! kernel allows. Each table is a sock_diag dump of listeners only, with a port filter run by
//! the kernel (see [`super::bytecode`]), so a poll costs a few small messages however many
//! sockets the host has. A table netlink cannot dump falls back to `/proc/net` (unless
//! `--source netlink`), once and for the rest of the wait.

use std::collections::HashSet;
use std::path::PathBuf;

use super::bytecode;
use crate::config::{Config, SourceChoice, StateSelection};
use crate::error::SourceError;
use crate::filter::PortSet;
use crate::model::{Family, Protocol, Socket};
use crate::source::netlink::{SockDiag, encode_request};
use crate::source::procnet;

/// A table that no source could read.
#[derive(Debug, thiserror::Error)]
#[error("{}/{}: cannot list sockets{}{}", .protocol.name(), .family.name(),
    .netlink.as_ref().map(|e| format!(" (netlink failed: {e})")).unwrap_or_default(),
    .proc.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
pub struct ProbeError {
    /// Protocol of the table.
    pub protocol: Protocol,
    /// Family of the table.
    pub family: Family,
    /// Why netlink failed, when it was tried.
    pub netlink: Option<SourceError>,
    /// Why `/proc/net` failed, when it was tried.
    pub proc: Option<SourceError>,
}

/// Polls the listening sockets of the configured tables.
pub struct Prober {
    tables: Vec<(Protocol, Family)>,
    choice: SourceChoice,
    proc_root: PathBuf,
    netlink: Option<SockDiag>,
    /// Why netlink could not be opened, kept for the first poll under `--source netlink`.
    open_error: Option<SourceError>,
    /// Tables read from `/proc/net`: by choice, or since netlink failed for them.
    on_proc: HashSet<(Protocol, Family)>,
    notes: Vec<String>,
}

impl Prober {
    /// A prober for the tables, source and proc root of `config`.
    pub fn new(config: &Config) -> Self {
        let mut prober = Prober {
            tables: config.tables(),
            choice: config.source,
            proc_root: config.proc_root.clone(),
            netlink: None,
            open_error: None,
            on_proc: HashSet::new(),
            notes: Vec::new(),
        };
        match config.source {
            SourceChoice::Proc => prober.on_proc.extend(config.tables()),
            _ => match SockDiag::open() {
                Ok(diag) => prober.netlink = Some(diag),
                Err(error) => prober.netlink_unavailable(error),
            },
        }
        prober
    }

    /// The listening sockets on `ports`, from every table.
    pub fn poll(&mut self, ports: &PortSet) -> Result<Vec<Socket>, ProbeError> {
        let mut sockets = Vec::new();
        for (protocol, family) in self.tables.clone() {
            sockets.extend(self.poll_table(protocol, family, ports)?);
        }
        sockets.retain(|s| ports.contains(s.local_port));
        Ok(sockets)
    }

    /// What changed in how tables are read since the last call (for `--verbose`).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn poll_table(
        &mut self,
        protocol: Protocol,
        family: Family,
        ports: &PortSet,
    ) -> Result<Vec<Socket>, ProbeError> {
        let mut netlink_error = None;
        if !self.on_proc.contains(&(protocol, family)) {
            match &mut self.netlink {
                Some(diag) => match listening(diag, protocol, family, ports) {
                    Ok(sockets) => return Ok(sockets),
                    Err(error) => netlink_error = Some(error),
                },
                None => netlink_error = self.open_error.take(),
            }
        }
        if self.choice == SourceChoice::Netlink {
            return Err(ProbeError {
                protocol,
                family,
                netlink: netlink_error,
                proc: None,
            });
        }
        if let Some(error) = &netlink_error {
            self.notes.push(format!(
                "{}/{}: netlink failed ({error}); polling /proc/net instead",
                protocol.name(),
                family.name()
            ));
            self.on_proc.insert((protocol, family));
        }
        self.read_proc(protocol, family, netlink_error)
    }

    fn read_proc(
        &self,
        protocol: Protocol,
        family: Family,
        netlink: Option<SourceError>,
    ) -> Result<Vec<Socket>, ProbeError> {
        match procnet::read_table(&self.proc_root, protocol, family) {
            Ok(table) => Ok(table
                .sockets
                .into_iter()
                .filter(|s| s.state.is_listening(s.protocol))
                .collect()),
            Err(error) => Err(ProbeError {
                protocol,
                family,
                netlink,
                proc: Some(error),
            }),
        }
    }

    fn netlink_unavailable(&mut self, error: SourceError) {
        if self.choice == SourceChoice::Netlink {
            // No fallback allowed: the first poll reports the failure.
            self.open_error = Some(error);
            return;
        }
        self.notes.push(format!(
            "netlink sock_diag unavailable ({error}); polling /proc/net"
        ));
        self.on_proc.extend(self.tables.iter().copied());
    }

    /// A one-line description of how each table is polled (for `--verbose`).
    pub fn describe(&self, ports: &PortSet) -> Vec<String> {
        let filtered = bytecode::port_filter(ports.ranges()).is_some();
        self.tables
            .iter()
            .map(|&(protocol, family)| {
                let how = if self.netlink.is_some() && !self.on_proc.contains(&(protocol, family)) {
                    if filtered {
                        "netlink sock_diag with a kernel port filter"
                    } else {
                        "netlink sock_diag, ports filtered in lsports"
                    }
                } else {
                    "/proc/net"
                };
                format!("{}/{}: polling {how}", protocol.name(), family.name())
            })
            .collect()
    }
}

/// Dump the listeners of one table whose local port is in `ports`, the filter run by the
/// kernel.
fn listening(
    diag: &mut SockDiag,
    protocol: Protocol,
    family: Family,
    ports: &PortSet,
) -> Result<Vec<Socket>, SourceError> {
    let sequence = diag.next_sequence();
    let request = encode_request(protocol, family, StateSelection::Listening, sequence);
    let request = match bytecode::port_filter(ports.ranges()) {
        Some(program) => bytecode::with_program(request, &program),
        None => request,
    };
    diag.exchange(&request, protocol, None)
}
