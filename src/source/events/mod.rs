//! Listeners opening and closing, as the kernel reports them: the event path of
//! `watch --events` (and the open/close counters a Prometheus exporter can serve).
//!
//! ```text
//! tp_btf/inet_sock_set_state   TCP into / out of LISTEN  ┐
//! cgroup/post_bind4, 6         UDP bound                 ├─> ring buffer ─> EventSource
//! cgroup/sock_release          bound UDP released        │   (full: LOST per CPU)
//! cgroup/connect4, 6           bound UDP connected       ┘   (a client now: closed)
//! ```
//!
//! Every record carries the socket (protocol, family, address, port, cookie, inode, network
//! namespace) and the process running when it happened (pid, uid, comm, cgroup). These hooks
//! load on a kernel in lockdown, where kprobes and fentry are refused. They miss only what
//! binds without `bind()` (a UDP socket autobound by `sendto`): a caller keeps a slow poll
//! beside them. A record the ring had no room for is never silently lost: [`EventSource::lost`]
//! counts them, and the caller reads the tables again.
//!
//! Needs Linux 5.8 or later with BTF, a cgroup v2 mount, and root (or `CAP_BPF`,
//! `CAP_PERFMON` and `CAP_NET_ADMIN`) in the initial user namespace.

pub mod error;
pub mod program;
pub mod record;

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use aya::Ebpf;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

pub use error::EventsUnavailable;
pub use record::{Change, ListenEvent};

/// The loaded programs and their ring buffer. Dropping it detaches everything.
pub struct EventSource {
    ring: RingBuf<MapData>,
    lost: PerCpuArray<MapData, u64>,
    /// Lost records already reported by [`EventSource::lost`].
    lost_reported: u64,
    /// Owns the programs and their links: declared last, so dropped after the maps.
    _ebpf: Ebpf,
}

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSource")
            .field("lost_reported", &self.lost_reported)
            .finish_non_exhaustive()
    }
}

impl EventSource {
    /// Load and attach the programs; the events start now. With `netns` (an nsfs inode),
    /// only that network namespace's listeners are reported; with `None`, every one's.
    pub fn open(netns: Option<u64>) -> Result<EventSource, EventsUnavailable> {
        let mut ebpf = program::load(netns)?;
        let missing = |name: &str| EventsUnavailable::Load(format!("no map {name} in the object"));
        let ring = ebpf
            .take_map(program::RING)
            .ok_or_else(|| missing(program::RING))?;
        let ring = RingBuf::try_from(ring).map_err(|e| EventsUnavailable::Load(e.to_string()))?;
        let lost = ebpf
            .take_map(program::LOST)
            .ok_or_else(|| missing(program::LOST))?;
        let lost =
            PerCpuArray::try_from(lost).map_err(|e| EventsUnavailable::Load(e.to_string()))?;
        Ok(EventSource {
            ring,
            lost,
            lost_reported: 0,
            _ebpf: ebpf,
        })
    }

    /// Wait until records are ready or `timeout` passes; `true` when some are ready.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let timeout = Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        let fd = self.ring.as_fd();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(ready) => Ok(ready > 0),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every record ready now, decoded, in the order the kernel wrote them.
    pub fn drain(&mut self) -> Vec<ListenEvent> {
        let mut events = Vec::new();
        while let Some(item) = self.ring.next() {
            events.extend(record::decode(&item));
        }
        events
    }

    /// Records the ring had no room for since the last call: each is an event nobody will
    /// see, so the caller must read the tables again.
    pub fn lost(&mut self) -> u64 {
        let total: u64 = self
            .lost
            .get(&0, 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0);
        let new = total.saturating_sub(self.lost_reported);
        self.lost_reported = total;
        new
    }
}

/// Opened and closed listeners counted by program (command name), for a Prometheus
/// exporter's counters: a listener that lives between two scrapes still counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    by_program: BTreeMap<(Vec<u8>, CountedChange), u64>,
}

/// The change a count is of, ordered for stable output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CountedChange {
    /// Listeners opened.
    Opened,
    /// Listeners closed.
    Closed,
}

impl Counts {
    /// Count `event` under its command name.
    pub fn add(&mut self, event: &ListenEvent) {
        let change = match event.change {
            Change::Opened => CountedChange::Opened,
            Change::Closed => CountedChange::Closed,
        };
        *self
            .by_program
            .entry((event.comm.clone(), change))
            .or_default() += 1;
    }

    /// Every (raw command name, change, count), by name: names are raw bytes, to be escaped
    /// by whoever prints them.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], CountedChange, u64)> {
        self.by_program
            .iter()
            .map(|((name, change), count)| (name.as_slice(), *change, *count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_by_program_and_change() {
        let opened = record::decode(&record::tests::record(1, 6, 2, &[0; 4], 80)).unwrap();
        let closed = record::decode(&record::tests::record(2, 6, 2, &[0; 4], 80)).unwrap();
        let mut counts = Counts::default();
        counts.add(&opened);
        counts.add(&opened);
        counts.add(&closed);
        let all: Vec<_> = counts.iter().collect();
        assert_eq!(
            all,
            [
                (&b"python3"[..], CountedChange::Opened, 2),
                (&b"python3"[..], CountedChange::Closed, 1)
            ]
        );
    }
}
