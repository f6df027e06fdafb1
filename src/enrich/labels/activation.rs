//! systemd socket activation: which `.socket` unit made a socket that the service manager
//! holds, and which service it was passed to, where ss, netstat and lsof all say "systemd".
//!
//! Only a socket the manager itself holds (pid 1, or the pids given to
//! [`Activations::with_managers`]) is labelled: systemd keeps every socket of an active
//! socket unit open, and nobody but root can make pid 1 hold a socket, so an unprivileged
//! process cannot borrow `sshd.socket` by setting `LISTEN_FDNAMES` in its own environment.
//! The socket unit is named from, in this order:
//!
//! 1. the socket's own cgroup (`INET_DIAG_CGROUP_ID`): systemd creates an inet socket inside
//!    the socket unit's cgroup where BPF firewalling is available
//!    (`socket_address_listen_in_cgroup` in systemd's `src/core/socket.c`), so the path ends
//!    in `system.slice/sshd.socket`; elsewhere it is pid 1's `init.scope`, which names none
//!    (a socket in any other unit's cgroup was made by that unit, and pid 1 holds it only in
//!    the unit's fd store: no activation);
//! 2. the service's `LISTEN_FDNAMES` ([`environ`]): the name of the fd through which the
//!    service holds the socket, which is the socket unit's name unless the unit sets
//!    `FileDescriptorName=` (then the unit files say which unit has that name);
//! 3. the unit files' `ListenStream=`/`ListenDatagram=` ([`unitfile`], [`listen`]) matched
//!    against the socket's protocol, address, port, device and `IPV6_V6ONLY`.
//!
//! The service is the unit of a holder other than the manager, from its `/proc/PID/cgroup`
//! (preferring one that `LISTEN_PID`/`LISTEN_FDS` say got the socket from systemd); for such
//! a holder whose cgroup names no unit, the socket unit's `Service=` (or its default).
//! Nothing here talks to systemd (no D-Bus, no private socket): files and the kernel only.
//!
//! Not covered: sockets of user managers (`systemd --user`) unless their pids are given as
//! managers; `Accept=yes` connection sockets (the manager does not keep them); a service
//! in a PID namespace of its own, whose `LISTEN_PID` is not the pid seen here.

pub mod environ;
pub mod listen;
pub mod unitfile;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::cgroup;
use crate::model::{Holder, Socket};
use crate::sys::procroot::ProcRoot;
use crate::text::sanitize::terminal_safe;
use environ::ListenEnv;
use unitfile::{SocketUnit, is_socket_unit};

/// What named the socket unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Evidence {
    /// The socket's cgroup.
    Cgroup,
    /// The service's `LISTEN_FDNAMES`.
    FdName,
    /// The unit files' `Listen*=` settings.
    UnitFile,
}

impl Evidence {
    /// The name used in JSON and `--verbose` (`cgroup`, `fd_name`, `unit_file`).
    pub fn name(self) -> &'static str {
        match self {
            Evidence::Cgroup => "cgroup",
            Evidence::FdName => "fd_name",
            Evidence::UnitFile => "unit_file",
        }
    }
}

/// A socket made by a socket unit. Names are raw (a unit or fd name is any bytes an
/// administrator, or a cgroup's maker, chose): show them through the `display_*` accessors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The socket unit, `sshd.socket`.
    pub socket_unit: String,
    /// The unit it was passed to, `sshd.service`, once a service holds it.
    pub service: Option<String>,
    /// What named the socket unit.
    pub evidence: Evidence,
}

impl Activation {
    /// The socket unit, safe for a terminal.
    pub fn display_socket_unit(&self) -> Cow<'_, str> {
        terminal_safe(self.socket_unit.as_bytes())
    }

    /// The service, safe for a terminal.
    pub fn display_service(&self) -> Option<Cow<'_, str>> {
        self.service.as_deref().map(|s| terminal_safe(s.as_bytes()))
    }

    /// `sshd.socket → sshd.service`, or `sshd.socket` before a service holds it; safe for a
    /// terminal.
    pub fn display(&self) -> String {
        match self.display_service() {
            Some(service) => format!("{} → {service}", self.display_socket_unit()),
            None => self.display_socket_unit().into_owned(),
        }
    }
}

/// What is known of one socket.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The socket.
    pub socket: &'a Socket,
    /// The path of its cgroup, if the kernel sent its cgroup id and the id resolved
    /// ([`super::Labeler::cgroup_path`]).
    pub cgroup: Option<&'a [u8]>,
    /// Every (pid, fd) holding it.
    pub holders: &'a [Holder],
}

/// A holder other than the manager, as far as it is known.
#[derive(Debug)]
struct Passed<'a> {
    fd: u32,
    /// Its activation variables, if they say it got this fd from systemd.
    env: Option<&'a ListenEnv>,
    /// The unit of its cgroup.
    unit: Option<&'a str>,
}

/// Names socket units for one run, reading each process's `environ` and `cgroup` once and
/// the unit files once, at the first socket that needs them.
#[derive(Debug)]
pub struct Activations<'a> {
    proc: &'a ProcRoot,
    unit_root: PathBuf,
    managers: Vec<u32>,
    units: Option<Vec<SocketUnit>>,
    envs: HashMap<u32, Option<ListenEnv>>,
    cgroup_units: HashMap<u32, Option<String>>,
}

impl<'a> Activations<'a> {
    /// Read processes under `proc` and unit files under `unit_root` (`/` on a live system).
    pub fn new(proc: &'a ProcRoot, unit_root: &Path) -> Activations<'a> {
        Activations {
            proc,
            unit_root: unit_root.to_path_buf(),
            managers: vec![1],
            units: None,
            envs: HashMap::new(),
            cgroup_units: HashMap::new(),
        }
    }

    /// Take `pids` as the service managers instead of pid 1 (a container's systemd seen from
    /// the host; a stand-in in tests).
    pub fn with_managers(mut self, pids: Vec<u32>) -> Activations<'a> {
        self.managers = pids;
        self
    }

    /// Whether a manager is among `pids` (a socket's holders): only then can
    /// [`Activations::resolve`] name a socket unit, so a caller may skip building its query.
    pub fn held_by_manager(&self, mut pids: impl Iterator<Item = u32>) -> bool {
        pids.any(|pid| self.managers.contains(&pid))
    }

    /// The socket unit that made `query`'s socket and the service it was passed to; `None`
    /// if no manager holds it or nothing names its unit.
    pub fn resolve(&mut self, query: &Query<'_>) -> Option<Activation> {
        if !query.holders.iter().any(|h| self.managers.contains(&h.pid)) {
            return None;
        }
        let by_cgroup = match query.cgroup.map(CgroupSays::of) {
            Some(CgroupSays::OtherUnit) => return None,
            Some(CgroupSays::SocketUnit(unit)) => Some(unit),
            Some(CgroupSays::Manager) | None => None,
        };
        let others: Vec<Holder> = (query.holders.iter())
            .filter(|h| !self.managers.contains(&h.pid))
            .copied()
            .collect();
        self.load_holders(&others);
        let unnamed_service = others.iter().any(|h| self.passes_unnamed(h));
        self.load_units_if(unnamed_service || by_cgroup.is_none());
        let passed = self.passed(&others);
        let held_by = passed.iter().find_map(|p| p.unit);
        let (socket_unit, evidence) = by_cgroup
            .map(|unit| (unit, Evidence::Cgroup))
            .or_else(|| self.by_fd_name(query.socket, &passed))
            .or_else(|| self.by_unit_files(query.socket, held_by))?;
        let service = self.service(&passed, &socket_unit);
        Some(Activation {
            socket_unit,
            service,
            evidence,
        })
    }

    /// Read the `environ` and `cgroup` of each holder not read before.
    fn load_holders(&mut self, holders: &[Holder]) {
        for holder in holders {
            let pid = holder.pid;
            if !self.envs.contains_key(&pid) {
                let env = environ::read(self.proc, pid).ok().flatten();
                self.envs.insert(pid, env);
            }
            if !self.cgroup_units.contains_key(&pid) {
                let unit = self.cgroup_unit(pid);
                self.cgroup_units.insert(pid, unit);
            }
        }
    }

    /// Whether systemd passed the socket to `holder` but its cgroup names no unit (so the
    /// service is the socket unit's `Service=`).
    fn passes_unnamed(&self, holder: &Holder) -> bool {
        let passes = self.envs[&holder.pid]
            .as_ref()
            .is_some_and(|e| e.passes(holder.pid, holder.fd));
        passes && self.cgroup_units[&holder.pid].is_none()
    }

    /// The unit files, loaded the first time `needed` is true.
    fn load_units_if(&mut self, needed: bool) {
        if needed && self.units.is_none() {
            self.units = Some(unitfile::load(&self.unit_root));
        }
    }

    fn units(&self) -> &[SocketUnit] {
        self.units.as_deref().unwrap_or_default()
    }

    /// The holders with what is known of them, those systemd passed the socket to first.
    fn passed(&self, holders: &[Holder]) -> Vec<Passed<'_>> {
        let mut passed: Vec<Passed<'_>> = holders
            .iter()
            .map(|h| Passed {
                fd: h.fd,
                env: self.envs[&h.pid].as_ref().filter(|e| e.passes(h.pid, h.fd)),
                unit: self.cgroup_units[&h.pid].as_deref(),
            })
            .collect();
        passed.sort_by_key(|p| p.env.is_none());
        passed
    }

    /// The unit of `pid`'s cgroup, from `/proc/PID/cgroup`.
    fn cgroup_unit(&self, pid: u32) -> Option<String> {
        let dir = self.proc.open_dir_path(pid.to_string().as_str()).ok()?;
        let mut content = Vec::new();
        let rel = c"cgroup";
        (self.proc)
            .read_into(Some(std::os::fd::AsFd::as_fd(&dir)), rel, &mut content)
            .ok()?;
        let path = cgroup::process_cgroup_path(&content)?;
        let unit = cgroup::derive(path).unit?.to_bytes();
        Some(String::from_utf8_lossy(&unit).into_owned())
    }

    /// The socket unit named by the fd name of a holder systemd passed the socket to.
    fn by_fd_name(&self, socket: &Socket, passed: &[Passed<'_>]) -> Option<(String, Evidence)> {
        passed.iter().find_map(|p| {
            let name = std::str::from_utf8(p.env?.name(p.fd)?).ok()?;
            let unit = if is_socket_unit(name) {
                name.to_owned()
            } else {
                self.unit_named_fd(name, socket)?
            };
            Some((unit, Evidence::FdName))
        })
    }

    /// The one socket unit whose `FileDescriptorName=` is `name` (of those, the one that
    /// makes `socket` if several share the name).
    fn unit_named_fd(&self, name: &str, socket: &Socket) -> Option<String> {
        let named: Vec<&SocketUnit> = (self.units().iter())
            .filter(|u| u.fd_name.as_deref() == Some(name))
            .collect();
        let unit = match named.as_slice() {
            [one] => *one,
            several => only(several.iter().copied().filter(|u| u.makes(socket)))?,
        };
        Some(unit.name.clone())
    }

    /// The one socket unit whose `Listen*=` makes `socket` (of those, the one whose service
    /// is `held_by` if several do).
    fn by_unit_files(&self, socket: &Socket, held_by: Option<&str>) -> Option<(String, Evidence)> {
        let making: Vec<&SocketUnit> = self.units().iter().filter(|u| u.makes(socket)).collect();
        let unit = match (making.as_slice(), held_by) {
            ([one], _) => *one,
            (several, Some(service)) => only(
                several
                    .iter()
                    .copied()
                    .filter(|u| u.service_name() == service),
            )?,
            _ => return None,
        };
        Some((unit.name.clone(), Evidence::UnitFile))
    }

    /// The unit the socket was passed to (see the module docs).
    fn service(&self, passed: &[Passed<'_>], socket_unit: &str) -> Option<String> {
        if let Some(unit) = passed.iter().find_map(|p| p.unit) {
            return Some(unit.to_owned());
        }
        passed.iter().find(|p| p.env.is_some())?;
        let unit = self.units().iter().find(|u| u.name == socket_unit);
        Some(unit.map_or_else(
            || SocketUnit::named(socket_unit).service_name(),
            SocketUnit::service_name,
        ))
    }
}

/// What a socket's cgroup says about who made it.
enum CgroupSays {
    /// A socket unit (systemd made it there).
    SocketUnit(String),
    /// The manager's own `init.scope` (systemd without BPF firewalling), or no unit at all:
    /// nothing.
    Manager,
    /// Another unit, a service that made the socket itself: the manager holds it only in
    /// that service's fd store (`FileDescriptorStoreMax=`), and no socket unit made it.
    OtherUnit,
}

impl CgroupSays {
    fn of(path: &[u8]) -> CgroupSays {
        let Some(unit) = cgroup::derive(path).unit.map(|u| u.to_bytes()) else {
            return CgroupSays::Manager;
        };
        if unit.ends_with(b".socket") {
            CgroupSays::SocketUnit(String::from_utf8_lossy(&unit).into_owned())
        } else if unit == b"init.scope" {
            CgroupSays::Manager
        } else {
            CgroupSays::OtherUnit
        }
    }
}

/// The only item of `items`; `None` for none or several.
fn only<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests;
