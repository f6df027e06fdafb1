//! `watch --events kernel`: listeners learned from kernel events as they happen, with a slow
//! poll beside them.
//!
//! ```text
//! attach the programs (events queue from now)  ->  first poll: `present` events
//! loop: wait on the ring (or a stop signal)    ->  each open: describe it from the event,
//!                                                  its holder confirmed in /proc -> `opened`
//!                                                  each close: the listener by inode -> `closed`
//!       records lost (ring full)               ->  `lost` event, then a poll at once
//!       every RECONCILE intervals              ->  a poll: what no hook sees (UDP autobound
//!                                                  by sendto), and what went without a hook
//! ```
//!
//! An event describes its socket well enough to print it, even when the socket and its
//! process are gone by the time it is read (a listener living a millisecond); the holder's
//! details are read from `/proc` only while the process still has the command name the
//! kernel saw, so a reused pid lends nothing.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::event::Kind;
use super::{Watcher, stopped, subject};
use crate::ExitCode;
use crate::config::NetnsChoice;
use crate::filter;
use crate::model::{
    DeviceBinding, Entry, Family, Netns, OwnerProcess, OwnerUnknownReason, Protocol, Socket,
    SocketState, SourceKind,
};
use crate::pipeline::{self, Listing};
use crate::process::info::DetailsReader;
use crate::source::events::{Change, EventSource, ListenEvent};
use crate::source::netns;
use crate::sys::procroot::{DentsBuffer, FdLink, ProcRoot};
use crate::sys::signals::StopSignals;
use crate::text::counts;

/// How many intervals between two reconciling polls.
const RECONCILE: u32 = 10;
/// The longest a stop signal waits to be noticed while no event comes.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// Watch through `source` until a stop signal; the first poll has not run yet.
pub(super) fn run(
    mut source: EventSource,
    watcher: &mut Watcher,
    signals: &StopSignals,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    // The programs are attached: a listener opened from now on is in the dump below, or in
    // the ring, or both (then its event finds it known).
    if watcher.poll(true, out, err)?.is_none() {
        return Ok(ExitCode::NoSource);
    }
    out.flush()?;
    let reconcile = watcher.spec.interval * RECONCILE;
    if watcher.config.verbose {
        writeln!(
            err,
            "lsports: watching {}, with kernel events (reading the tables again every {})",
            counts::count(watcher.tracker.len(), "listener"),
            crate::text::duration::display(reconcile)
        )?;
    }
    let mut kernel = KernelEvents::new(watcher);
    let mut last_poll = Instant::now();
    loop {
        if let Some(stop) = signals.pending() {
            return Ok(stopped(stop));
        }
        let wait = reconcile
            .saturating_sub(last_poll.elapsed())
            .min(SIGNAL_CHECK);
        source.wait(wait)?;
        for event in source.drain() {
            kernel.take(watcher, &event, out)?;
        }
        let lost = source.lost();
        if lost > 0 {
            watcher.writer.write_lost(&now(), lost, out)?;
        }
        if lost > 0 || last_poll.elapsed() >= reconcile {
            // What the lost records said, or no hook saw, is in the tables.
            watcher.poll(false, out, err)?;
            kernel.learn_names(watcher);
            last_poll = Instant::now();
        }
        out.flush()?;
    }
}

/// What turns kernel events into the watch's events.
struct KernelEvents {
    /// The one namespace watched, by inode; `None`: every namespace (`--netns all`).
    scope: Option<u64>,
    /// The namespace lsports runs in, by inode: where a device index can be named.
    own: Option<u64>,
    /// The namespaces' names, as the tables' sockets carry them.
    names: std::collections::HashMap<u64, Arc<Netns>>,
    details: DetailsReader,
    proc: Option<ProcRoot>,
    dents: DentsBuffer,
}

impl KernelEvents {
    fn new(watcher: &Watcher) -> Self {
        let proc_root = &watcher.config.proc_root;
        let mut kernel = KernelEvents {
            scope: scope(&watcher.config.netns, proc_root),
            own: crate::source::netns::own_inode(proc_root),
            names: Default::default(),
            details: DetailsReader::new(proc_root),
            proc: ProcRoot::open(proc_root).ok(),
            dents: DentsBuffer::small(),
        };
        kernel.learn_names(watcher);
        kernel
    }

    /// Remember the namespaces of the sockets listed so far, with their names.
    fn learn_names(&mut self, watcher: &Watcher) {
        for netns in watcher.tracker.namespaces() {
            self.names.insert(netns.inode, netns);
        }
    }

    /// The namespace with inode `inode`, named. One no socket was listed in yet (made after
    /// the last poll, or empty until now) is named from the namespace mounts (`ip netns`,
    /// Docker), read once for it: waiting for the next reconciling poll would print its
    /// first events unnamed.
    fn namespace(&mut self, inode: u64, proc_root: &Path) -> Arc<Netns> {
        self.names
            .entry(inode)
            .or_insert_with(|| {
                let name = netns::collect::mount_names(proc_root)
                    .remove(&inode)
                    .map(|name| name.into_vec());
                Arc::new(Netns { inode, name })
            })
            .clone()
    }

    /// Print what `event` means, if anything.
    fn take(
        &mut self,
        watcher: &mut Watcher,
        event: &ListenEvent,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        if self.scope.is_some_and(|inode| inode != event.netns) {
            return Ok(());
        }
        // -t/-u and -4/-6 choose the tables a poll dumps; the hooks see every protocol and
        // family, so an event of a table not chosen is left out here.
        let table = (event.protocol, event.family);
        if !watcher.plan.request.tables.contains(&table) {
            return Ok(());
        }
        match event.change {
            Change::Opened => self.opened(watcher, event, out),
            Change::Closed => match watcher.tracker.close_inode(event.inode) {
                Some(subject) => watcher.writer.write(&now(), Kind::Closed, &subject, out),
                None => Ok(()),
            },
        }
    }

    fn opened(
        &mut self,
        watcher: &mut Watcher,
        event: &ListenEvent,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        // Known: it was in a poll already (the first one, if it opened while they loaded).
        if event.inode == 0 || watcher.tracker.knows_inode(event.inode) {
            return Ok(());
        }
        let netns = self.namespace(event.netns, &watcher.config.proc_root);
        let mut socket = socket_of(event, netns);
        // Another namespace's device indexes mean other devices: named only here.
        if self.own == Some(event.netns) {
            crate::source::name_devices(std::slice::from_mut(&mut socket));
        }
        let plan = &watcher.plan;
        let kept = filter::keep_sockets(vec![socket.clone()], &plan.filter);
        let subjects = match kept.into_iter().next() {
            Some(socket) => {
                let entry = self.entry(socket, event);
                let listing = Listing {
                    entries: vec![entry],
                    attributed: true,
                    ..Listing::default()
                };
                let listing = pipeline::refine(listing, plan);
                let exes = &listing.exes;
                listing
                    .entries
                    .into_iter()
                    .map(|entry| subject(entry, exes))
                    .collect()
            }
            None => Vec::new(),
        };
        watcher.tracker.admit(&[socket], &subjects);
        for subject in &subjects {
            watcher.writer.write(&now(), Kind::Opened, subject, out)?;
        }
        Ok(())
    }

    /// The socket with its holder: the process the kernel saw, its details read while it
    /// still carries the command name the kernel saw (a reused pid lends nothing).
    fn entry(&mut self, socket: Socket, event: &ListenEvent) -> Entry {
        let details = self
            .details
            .open(event.pid)
            .map(|dir| self.details.read_in(&dir))
            .filter(|d| d.name.as_deref() == Some(event.comm.as_slice()));
        let fd = details
            .as_ref()
            .and_then(|_| self.fd_of(event.pid, event.inode));
        let process = OwnerProcess {
            pid: event.pid,
            // Not known when the process let go of it before it could be looked at.
            fd: fd.unwrap_or(0),
            name: Some(event.comm.as_slice().into()),
            cmdline: details.as_ref().and_then(|d| d.cmdline.clone()),
            uid: details
                .as_ref()
                .map_or(Some(event.uid), |d| d.uid.or(Some(event.uid))),
            labels: None,
        };
        Entry {
            socket,
            processes: if event.pid == 0 {
                Default::default()
            } else {
                crate::model::Owners::one(process)
            },
            owner_unknown: (event.pid == 0).then_some(OwnerUnknownReason::Kernel),
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
        }
    }

    /// The lowest fd through which `pid` holds the socket `inode`, if it still does.
    fn fd_of(&mut self, pid: u32, inode: u64) -> Option<u32> {
        let dir = self.proc.as_ref()?.fd_dir(pid).ok()?;
        let mut found: Option<u32> = None;
        let _ = dir.entries(&mut self.dents, |entry| {
            if entry.link() == FdLink::Socket(inode) {
                found = Some(found.map_or(entry.fd, |fd| fd.min(entry.fd)));
            }
            ControlFlow::Continue(())
        });
        found
    }
}

/// The socket an event describes, as the tables would list it.
pub fn socket_of(event: &ListenEvent, netns: Arc<Netns>) -> Socket {
    let unspecified = match event.family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    Socket {
        protocol: event.protocol,
        family: event.family,
        local_addr: event.address,
        local_port: event.port,
        remote_addr: unspecified,
        remote_port: 0,
        state: match event.protocol {
            Protocol::Tcp => SocketState::LISTEN,
            Protocol::Udp => SocketState::CLOSE,
        },
        recv_q: 0,
        send_q: None,
        uid: event.uid,
        inode: event.inode,
        v6only: event.v6only,
        device: match event.bound_dev_if {
            0 => DeviceBinding::Unbound,
            index => DeviceBinding::Device { index, name: None },
        },
        source: SourceKind::Event,
        cgroup_id: std::num::NonZeroU64::new(event.cgroup),
        netns: Some(netns),
    }
}

/// The namespace `--netns` watches, by inode; `None` for all of them.
pub fn scope(choice: &NetnsChoice, proc_root: &Path) -> Option<u64> {
    let path = match choice {
        NetnsChoice::All => return None,
        NetnsChoice::Current => proc_root.join("thread-self/ns/net"),
        NetnsChoice::Named(name) => Path::new("/run/netns").join(name),
        NetnsChoice::Path(path) => path.clone(),
        NetnsChoice::Pid(pid) => proc_root.join(format!("{pid}/ns/net")),
    };
    // Unreadable: the first poll said so already, and no event can be placed in it.
    Some(std::fs::metadata(path).map_or(0, |meta| meta.ino()))
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
