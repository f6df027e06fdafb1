//! What `watch` remembers between polls: the listeners present at the last one, and nothing
//! else, so memory follows the number of listeners, never the time watched.
//!
//! A listener is one socket, keyed by its namespace, place and inode: a restarted service
//! opens a new socket, which is a close and an open. A socket's details are read once, when it appears;
//! a closed socket is described by what was read then, since its holders are gone.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::finding::Finding;
use crate::model::{Entry, Family, Protocol, Socket};

/// What identifies one socket across polls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The socket's network namespace (`--netns all` watches several).
    netns: Option<u64>,
    protocol: Protocol,
    family: Family,
    address: IpAddr,
    port: u16,
    inode: u64,
}

impl Key {
    /// The key of `socket`.
    pub fn of(socket: &Socket) -> Key {
        Key {
            netns: socket.netns.as_ref().map(|ns| ns.inode),
            protocol: socket.protocol,
            family: socket.family,
            address: socket.local_addr,
            port: socket.local_port,
            inode: socket.inode,
        }
    }
}

/// A listener as it was when it appeared: what its events print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The socket and its holders.
    pub entry: Entry,
    /// The holders' executables, in the order of `entry.processes` (for JSON).
    pub exes: Vec<Option<Vec<u8>>>,
    /// What looked suspicious about it.
    pub findings: Vec<Finding>,
}

/// The listeners of the last poll. A socket the process filters (`--pid`, `--user`,
/// `--program`) rejected is remembered too, as `None`, so it is not looked at again.
#[derive(Debug, Default)]
pub struct Tracker {
    known: HashMap<Key, Option<Subject>>,
    /// The key of each known socket by inode, for kernel events: a TCP listener's close
    /// event comes after the kernel has given its port back, so only its inode names it.
    by_inode: HashMap<u64, Key>,
}

impl Tracker {
    /// Compare with this poll's sockets. Returns the sockets not seen before (to be looked at
    /// and then [`Tracker::admit`]ted) and the listeners gone since, which are forgotten.
    /// Sockets of tables this poll could not read are kept as they were: a failed read is not
    /// a mass closing.
    pub fn compare(
        &mut self,
        sockets: Vec<Socket>,
        read: &[(Protocol, Family)],
    ) -> (Vec<Socket>, Vec<Subject>) {
        let present: HashMap<Key, Socket> = sockets.into_iter().map(|s| (Key::of(&s), s)).collect();
        let gone: Vec<Key> = self
            .known
            .keys()
            .filter(|key| read.contains(&(key.protocol, key.family)) && !present.contains_key(*key))
            .cloned()
            .collect();
        let closed = gone.iter().filter_map(|key| self.remove(key)).collect();
        let new = present
            .into_iter()
            .filter(|(key, _)| !self.known.contains_key(key))
            .map(|(_, socket)| socket)
            .collect();
        (new, closed)
    }

    /// Remember the new sockets: `kept` are the listeners shown, `looked_at` every new socket
    /// (those not kept were rejected by the process filters).
    pub fn admit(&mut self, looked_at: &[Socket], kept: &[Subject]) {
        for socket in looked_at {
            self.known.insert(Key::of(socket), None);
            if socket.inode != 0 {
                self.by_inode.insert(socket.inode, Key::of(socket));
            }
        }
        for subject in kept {
            self.known
                .insert(Key::of(&subject.entry.socket), Some(subject.clone()));
        }
    }

    /// Whether the socket of `inode` is known (shown or filtered out).
    pub fn knows_inode(&self, inode: u64) -> bool {
        self.by_inode.contains_key(&inode)
    }

    /// Forget the socket of `inode`, which the kernel says closed: the listener shown, or
    /// `None` when it was never shown (filtered out, or unknown).
    pub fn close_inode(&mut self, inode: u64) -> Option<Subject> {
        let key = self.by_inode.get(&inode)?.clone();
        self.remove(&key)
    }

    fn remove(&mut self, key: &Key) -> Option<Subject> {
        if self.by_inode.get(&key.inode) == Some(key) {
            self.by_inode.remove(&key.inode);
        }
        self.known.remove(key).flatten()
    }

    /// The network namespaces of the listeners shown now, one each.
    pub fn namespaces(&self) -> Vec<std::sync::Arc<crate::model::Netns>> {
        let mut seen = std::collections::HashSet::new();
        self.known
            .values()
            .flatten()
            .filter_map(|s| s.entry.socket.netns.clone())
            .filter(|netns| seen.insert(netns.inode))
            .collect()
    }

    /// Listeners shown now.
    pub fn len(&self) -> usize {
        self.known.values().filter(|s| s.is_some()).count()
    }

    /// Whether no listener is shown now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(protocol: Protocol, port: u16, inode: u64) -> Socket {
        Socket {
            inode,
            ..Socket::listening(protocol, "127.0.0.1", port)
        }
    }

    fn subject(socket: Socket) -> Subject {
        Subject {
            entry: Entry::bare(socket),
            exes: Vec::new(),
            findings: Vec::new(),
        }
    }

    const BOTH: [(Protocol, Family); 2] =
        [(Protocol::Tcp, Family::Ipv4), (Protocol::Udp, Family::Ipv4)];

    fn ports(sockets: &[Socket]) -> Vec<u16> {
        let mut ports: Vec<u16> = sockets.iter().map(|s| s.local_port).collect();
        ports.sort();
        ports
    }

    #[test]
    fn appearing_and_vanishing_sockets_are_reported_once() {
        let mut tracker = Tracker::default();
        let (a, b) = (socket(Protocol::Tcp, 22, 1), socket(Protocol::Udp, 53, 2));
        let (new, closed) = tracker.compare(vec![a.clone(), b.clone()], &BOTH);
        assert_eq!((ports(&new), closed.len()), (vec![22, 53], 0));
        tracker.admit(&new, &[subject(a.clone()), subject(b.clone())]);
        let (new, closed) = tracker.compare(vec![a.clone(), b.clone()], &BOTH);
        assert!(new.is_empty() && closed.is_empty());
        let (new, closed) = tracker.compare(vec![a.clone()], &BOTH);
        assert!(new.is_empty());
        assert_eq!(closed, [subject(b)]);
        assert_eq!(tracker.len(), 1);
    }

    #[test]
    fn a_restart_on_the_same_port_is_a_close_and_an_open() {
        let mut tracker = Tracker::default();
        let old = socket(Protocol::Tcp, 80, 10);
        let (new, _) = tracker.compare(vec![old.clone()], &BOTH);
        tracker.admit(&new, &[subject(old.clone())]);
        let (new, closed) = tracker.compare(vec![socket(Protocol::Tcp, 80, 11)], &BOTH);
        assert_eq!((ports(&new), closed), (vec![80], vec![subject(old)]));
    }

    #[test]
    fn a_table_that_could_not_be_read_closes_nothing() {
        let mut tracker = Tracker::default();
        let udp = socket(Protocol::Udp, 53, 2);
        let (new, _) = tracker.compare(vec![udp.clone()], &BOTH);
        tracker.admit(&new, &[subject(udp)]);
        let (new, closed) = tracker.compare(Vec::new(), &BOTH[..1]);
        assert!(new.is_empty() && closed.is_empty());
        assert_eq!(tracker.len(), 1);
    }

    #[test]
    fn a_kernel_close_finds_its_listener_by_inode_alone() {
        let mut tracker = Tracker::default();
        let (a, b) = (socket(Protocol::Tcp, 80, 10), socket(Protocol::Udp, 53, 11));
        let (new, _) = tracker.compare(vec![a.clone(), b.clone()], &BOTH);
        tracker.admit(&new, &[subject(a.clone())]);
        assert!(tracker.knows_inode(10) && tracker.knows_inode(11));
        assert_eq!(tracker.close_inode(10), Some(subject(a)));
        assert_eq!(tracker.close_inode(10), None, "closed once");
        assert_eq!(tracker.close_inode(11), None, "filtered out: never shown");
        assert!(!tracker.knows_inode(11));
        let (new, closed) = tracker.compare(Vec::new(), &BOTH);
        assert!(new.is_empty() && closed.is_empty());
    }

    #[test]
    fn filtered_out_sockets_are_remembered_but_never_reported() {
        let mut tracker = Tracker::default();
        let other = socket(Protocol::Tcp, 8080, 5);
        let (new, _) = tracker.compare(vec![other.clone()], &BOTH);
        tracker.admit(&new, &[]);
        assert!(tracker.is_empty());
        let (new, closed) = tracker.compare(vec![other], &BOTH);
        assert!(new.is_empty() && closed.is_empty());
        let (_, closed) = tracker.compare(Vec::new(), &BOTH);
        assert!(closed.is_empty(), "a socket never shown is never closed");
    }
}
