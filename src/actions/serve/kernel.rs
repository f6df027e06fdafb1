//! The kernel's listener events, counted by `serve --events kernel` (or `auto` where the
//! programs load): every TCP listen and UDP bind and close as it happens, so a listener
//! living a millisecond is counted, where a poll every second misses it.
//!
//! ```text
//! open: attach, then one listing: the listeners there, their programs remembered by inode
//! ring (source::events) ──open──> socket filters ─> holder = the process the kernel saw
//!                                 ─> label, select (pipeline::refine) ─> its program,
//!                                    remembered                        ─> Report::Event
//!                       ──close─> a remembered listener's program      ─> Report::Event
//!                       ──lost──> Report::Lost, and the listing again to remember anew
//! ```
//!
//! As with polling, the listeners there at the start are learned, not counted, and a close
//! counts only for a listener known (so a socket the filters leave out, or a client socket a
//! release hook also sees, never counts). The program is named as the polling source names
//! it ([`program_names`]): the holder's command name, which is what `/proc/PID/comm` says and
//! what the kernel records.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use super::events::{self, Change, EventSource, ListenerEvent, Report};
use crate::actions::watch::kernel::{scope, socket_of};
use crate::config::Config;
use crate::filter;
use crate::model::{Entry, Netns, OwnerProcess, OwnerUnknownReason};
use crate::pipeline::{self, Listing, Plan};
use crate::render::prometheus::program_names;
use crate::source::events::{self as kernel, EventsUnavailable, ListenEvent};

/// The longest one wait on the ring lasts (serve ends with its process, not this thread).
const WAIT: Duration = Duration::from_secs(1);

/// Open listeners remembered by inode, to count and name their close; past this many, a
/// listener opened is counted but its close is not.
const REMEMBERED: usize = 100_000;

/// Events from the kernel's programs, attached from [`KernelEvents::open`] on.
pub struct KernelEvents {
    source: kernel::EventSource,
    /// The one namespace counted, by inode (`--netns`); `None`: every one (`--netns all`).
    scope: Option<u64>,
    plan: Plan,
    /// The programs of the listeners open now, by socket inode.
    opened: HashMap<u64, String>,
}

impl KernelEvents {
    /// Load and attach the programs for the namespaces `config` selects, as `watch` does.
    pub fn open(config: &Config) -> Result<KernelEvents, EventsUnavailable> {
        // Kernel events describe the running system, never a copied proc tree.
        if config.snapshot.is_some() || config.proc_root != std::path::Path::new("/proc") {
            return Err(EventsUnavailable::NotLive(config.proc_root.clone()));
        }
        let scope = scope(&config.netns, &config.proc_root);
        let mut kernel = KernelEvents {
            source: kernel::EventSource::open(scope)?,
            scope,
            plan: events::plan(config),
            opened: HashMap::new(),
        };
        // The programs are attached: a listener opened from now on is in this listing, or
        // in the ring, or both (then its open is known and not counted twice). Learned
        // before serve answers, so that what opens once it answers is counted.
        kernel.learn();
        Ok(kernel)
    }

    /// What `event` counts as, if the filters keep it.
    fn take(&mut self, event: &ListenEvent) -> Option<ListenerEvent> {
        if self.scope.is_some_and(|inode| inode != event.netns) {
            return None;
        }
        let change = match event.change {
            kernel::Change::Opened => Change::Open,
            kernel::Change::Closed => Change::Close,
        };
        if change == Change::Close {
            let program = self.opened.remove(&event.inode)?;
            return Some(ListenerEvent { change, program });
        }
        // Known already: opened while the programs loaded, and in the first listing.
        if event.inode != 0 && self.opened.contains_key(&event.inode) {
            return None;
        }
        let program = self.program(event)?;
        if event.inode != 0 && self.opened.len() < REMEMBERED {
            self.opened.insert(event.inode, program.clone());
        }
        Some(ListenerEvent { change, program })
    }

    /// Remember the listeners open now, with their programs: those there at the start, and
    /// again after lost events, whose closes would otherwise be remembered forever.
    fn learn(&mut self) {
        let collected = pipeline::collect(&self.plan);
        let begun = pipeline::begin(&self.plan);
        // A polling plan walks where the BPF iterator is refused: attribution cannot fail.
        let listing = pipeline::attribute(collected.sockets, begun, &self.plan).unwrap_or_default();
        let listing = pipeline::refine(listing, &self.plan);
        self.opened = (listing.entries.iter())
            .filter(|entry| entry.socket.inode != 0)
            .map(|entry| (entry.socket.inode, program_names(entry)))
            .take(REMEMBERED)
            .collect();
    }

    /// The program of the listener `event` describes, held by the process the kernel saw;
    /// `None` when the filters leave it out.
    fn program(&self, event: &ListenEvent) -> Option<String> {
        let netns = Arc::new(Netns {
            inode: event.netns,
            name: None,
        });
        let socket = filter::keep_sockets(vec![socket_of(event, netns)], &self.plan.filter)
            .into_iter()
            .next()?;
        let process = OwnerProcess {
            pid: event.pid,
            fd: 0,
            name: Some(event.comm.as_slice().into()),
            cmdline: None,
            uid: Some(event.uid),
            labels: None,
        };
        let kernel_held = event.pid == 0;
        let entry = Entry {
            socket,
            processes: if kernel_held {
                Default::default()
            } else {
                thin_vec::thin_vec![process]
            },
            owner_unknown: kernel_held.then_some(OwnerUnknownReason::Kernel),
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
        };
        let listing = Listing {
            entries: vec![entry],
            attributed: true,
            ..Listing::default()
        };
        let listing = pipeline::refine(listing, &self.plan);
        listing.entries.first().map(program_names)
    }
}

impl EventSource for KernelEvents {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn run(mut self: Box<Self>, reports: Sender<Report>) {
        loop {
            // A failed wait (it cannot, short of a bad descriptor) must not spin.
            if self.source.wait(WAIT).is_err() {
                std::thread::sleep(WAIT);
            }
            let mut batch: Vec<Report> = (self.source.drain().iter())
                .filter_map(|event| self.take(event))
                .map(Report::Event)
                .collect();
            let lost = self.source.lost();
            if lost > 0 {
                batch.push(Report::Lost(lost));
                self.learn();
            }
            for report in batch {
                if reports.send(report).is_err() {
                    return;
                }
            }
        }
    }
}
