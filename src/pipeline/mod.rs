//! The listing pipeline every socket-reading action shares: collect, keep what the socket
//! filters keep, attribute to processes, keep what the process filters keep, sort, and read
//! the executables of what is left.
//!
//! A plain listing asks only for what its output shows ([`Config::needs`]); an audit or a baseline
//! always needs the holders and their executables, since those are a listener's identity.

pub mod report;

use std::io::{self, Write};

use crate::config::{Config, Needs};
use crate::enrich::exe::Executables;
use crate::model::{Entry, OwnerUnknownReason, Socket};
use crate::process::info::{self, HidePid, ProcVisibility};
use crate::source::{self, CollectRequest, Collected};
use crate::{filter, process};

/// The sockets to show, sorted, with what the process scan could not see.
#[derive(Debug, Default)]
pub struct Listing {
    /// The kept entries, in display order.
    pub entries: Vec<Entry>,
    /// Executables of their holders (empty unless asked for).
    pub exes: Executables,
    /// Whether processes were scanned at all.
    pub attributed: bool,
    /// Processes whose fds could not be read.
    pub denied: usize,
    /// Why `/proc` itself could not be scanned, if it could not.
    pub scan_error: Option<io::Error>,
    /// Set when the proc mount hides other users' processes from this reader (`hidepid=`):
    /// they cannot be counted as denied, since they are not listed at all.
    pub hidden: Option<ProcVisibility>,
    /// Which way owners were found (for `--verbose`).
    pub method: Option<process::Method>,
}

impl Listing {
    /// Say on `err` what the process scan could not see, and what would fix it.
    pub fn report_attribution(&self, config: &Config, err: &mut dyn Write) -> io::Result<()> {
        if !self.attributed {
            return Ok(());
        }
        if let (true, Some(method)) = (config.verbose, &self.method) {
            writeln!(err, "lsports: {method}")?;
        }
        // Said only when a shown socket lacks its owner because of it: `--port 9` showing
        // nothing, or every socket with its owner, has nothing to explain.
        let blamed = self
            .entries
            .iter()
            .any(|e| e.owner_unknown == Some(OwnerUnknownReason::Permission));
        if let (Some(hidden), true) = (&self.hidden, blamed) {
            report::hidden_processes(hidden, config, err)?;
        }
        let denied = if blamed { self.denied } else { 0 };
        report::attribution(denied, self.scan_error.as_ref(), config, err)?;
        let outside = self
            .entries
            .iter()
            .filter(|e| e.owner_unknown == Some(OwnerUnknownReason::OutsidePidNamespace))
            .count();
        report::held_outside(outside, err)
    }

    /// Whether every process could be inspected, so a socket without holders truly has none.
    pub fn saw_everything(&self) -> bool {
        self.attributed && self.denied == 0 && self.scan_error.is_none() && self.hidden.is_none()
    }
}

/// Run the pipeline. Source failures and parse warnings are reported on `err`; `None` when
/// no source could read any table, or `--attribution bpf` cannot run (said on `err`).
pub fn gather(config: &Config, needs: Needs, err: &mut dyn Write) -> io::Result<Option<Listing>> {
    // Started before collecting: the kernel's pass over every fd overlaps with the collection.
    let started = needs
        .processes
        .then(|| process::start(&config.proc_root, config.attribution, needs.details));
    let Some(sockets) = collect(config, err)? else {
        return Ok(None);
    };
    let Some(started) = started else {
        return Ok(Some(listing(unattributed(sockets), None, config, needs)));
    };
    crate::sys::timing::mark("sockets collected");
    let attributed = started.finish(sockets);
    crate::sys::timing::mark("owners found");
    match attributed {
        Ok(attributed) => Ok(Some(listing(Vec::new(), Some(attributed), config, needs))),
        Err(why) => {
            writeln!(err, "lsports: --attribution bpf: {why}")?;
            Ok(None)
        }
    }
}

/// Collect the configured tables and keep what the socket filters keep; `None` when nothing
/// could be read.
pub fn collect(config: &Config, err: &mut dyn Write) -> io::Result<Option<Vec<Socket>>> {
    let collected = source::collect(&request(config));
    report::sources(&collected, config.verbose, err)?;
    Ok(keep(collected, config))
}

/// The sockets of `collected` that the socket filters keep, with their devices named; `None`
/// when no table could be read.
pub fn keep(mut collected: Collected, config: &Config) -> Option<Vec<Socket>> {
    if collected.nothing_read() {
        return None;
    }
    source::name_devices(&mut collected.sockets);
    Some(filter::keep_sockets(collected.sockets, &config.filter))
}

/// What [`source::collect`] is asked for under `config`.
pub fn request(config: &Config) -> CollectRequest {
    CollectRequest {
        tables: config.tables(),
        states: config.states,
        choice: config.source,
        proc_root: config.proc_root.clone(),
        snapshot: config.snapshot.clone(),
    }
}

/// Attribute `sockets` (when `needs` says so), apply the process filters, sort, and read
/// executables.
pub fn attribute(sockets: Vec<Socket>, config: &Config, needs: Needs) -> Listing {
    if !needs.processes {
        return listing(unattributed(sockets), None, config, needs);
    }
    // Nowhere to report a refusal here (watch, -c): the walk stands in, and -v says why.
    let started = process::start(&config.proc_root, config.attribution, needs.details);
    listing(
        Vec::new(),
        Some(started.finish_or_walk(sockets)),
        config,
        needs,
    )
}

/// Keep what the process filters keep and read executables: of `attributed`'s entries when
/// processes were scanned, else of `unscanned`.
fn listing(
    unscanned: Vec<Entry>,
    attributed: Option<process::Attributed>,
    config: &Config,
    needs: Needs,
) -> Listing {
    let mut listing = Listing::default();
    let entries = if let Some(attributed) = attributed {
        listing.attributed = true;
        listing.method = Some(attributed.method);
        listing.denied = attributed.denied;
        listing.scan_error = attributed.scan_error;
        listing.hidden = hiding(&config.proc_root);
        let mut entries = attributed.entries;
        if listing.hidden.is_some() {
            blame_hidden_processes(&mut entries);
        }
        entries
    } else {
        unscanned
    };
    listing.entries = filter::keep_entries(entries, &config.filter);
    if needs.executables {
        listing.exes = Executables::read(&config.proc_root, &listing.entries);
    }
    listing
}

/// The proc mount's `hidepid=` restriction, when it hides processes from this reader: not
/// root, not in the mount's `gid=` group, and processes left out of the listing rather than
/// merely closed (`hidepid=1` closes them, and the walk counts those as denied).
fn hiding(proc_root: &std::path::Path) -> Option<ProcVisibility> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let visibility = info::proc_visibility(proc_root)?;
    if visibility.hidepid == HidePid::NoAccess {
        return None;
    }
    let exempt = visibility.gid.is_some_and(|gid| {
        let gid = nix::unistd::Gid::from_raw(gid);
        nix::unistd::getegid() == gid || nix::unistd::getgroups().is_ok_and(|g| g.contains(&gid))
    });
    (!exempt).then_some(visibility)
}

/// Under `hidepid`, an ownerless socket's holder is most likely a hidden process: say
/// "permission", not "kernel" or "not found". Inode 0 sockets have no holder at all.
fn blame_hidden_processes(entries: &mut [Entry]) {
    for entry in entries {
        if entry.socket.inode != 0 && entry.owner_unknown.is_some() {
            entry.owner_unknown = Some(OwnerUnknownReason::Permission);
        }
    }
}

/// Entries for an output that shows nothing about processes: the scan is skipped, so no owner
/// is known and none is claimed missing (`owner_unknown` stays `None`).
fn unattributed(sockets: Vec<Socket>) -> Vec<Entry> {
    sockets
        .into_iter()
        .map(|socket| Entry {
            socket,
            processes: Vec::new(),
            owner_unknown: None,
        })
        .collect()
}
