//! Namespaces that only a socket keeps alive.
//!
//! A socket belongs to the namespace it was created in, for good: a process can create a
//! socket in a namespace and leave it (or pass the socket on and exit), and the namespace
//! lives on with no process in it and no mount naming it (systemd's `PrivateNetwork=` socket
//! units are made that way). No `/proc/*/ns` walk finds it, and no dump of the holder's own
//! namespace lists the socket. So a socket someone holds that no dump listed is asked for its
//! namespace (`SIOCGSKNS` on a duplicate of it, see [`SocketProbe`]), once per socket.

use std::collections::{HashMap, HashSet};
use std::io;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::nsfd::SocketProbe;
use super::{Namespace, Origin};
use crate::sys::procroot::{DentsBuffer, FdLink, ProcRoot};

/// A socket a process holds: `/proc/PID/fd/FD -> socket:[INODE]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldSocket {
    /// The socket's inode.
    pub inode: u64,
    /// A process holding it.
    pub pid: u32,
    /// The descriptor it holds it as.
    pub fd: u32,
}

/// Every socket every process under `root` holds, with each holder. Processes that vanish
/// meanwhile or whose fds cannot be read are skipped.
///
/// A walk of its own over `/proc/*/fd`, for callers that do not attribute with the walk
/// (`--netns all` where the BPF iterator finds the holders, `watch`, no `-p`); the pipeline
/// otherwise takes the attribution walk's socket fds instead. It reads links as that walk does
/// (one `readlinkat` into a stack buffer per fd, no path built), on one thread per core.
pub fn held_sockets(root: &ProcRoot) -> Vec<HeldSocket> {
    let pids = root.pids().unwrap_or_default();
    let next = AtomicUsize::new(0);
    let walk = || {
        let mut held = Vec::new();
        let mut dents = DentsBuffer::large();
        while let Some(&pid) = pids.get(next.fetch_add(1, Ordering::Relaxed)) {
            held_by(root, pid, &mut dents, &mut held);
        }
        held
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..cores.min(pids.len() / 64 + 1))
            .filter_map(|_| {
                let helper = std::thread::Builder::new().name("netns-fds".into());
                helper.spawn_scoped(scope, walk).ok()
            })
            .collect();
        let mut held = walk();
        for helper in helpers {
            // A helper that panicked took its processes' sockets with it: they are missing, as
            // a vanished process's are (a namespace only they keep alive is not found).
            held.extend(helper.join().unwrap_or_default());
        }
        held
    })
}

/// The sockets process `pid` holds, appended to `held`.
fn held_by(root: &ProcRoot, pid: u32, dents: &mut DentsBuffer, held: &mut Vec<HeldSocket>) {
    let Ok(dir) = root.fd_dir(pid) else {
        return;
    };
    let _ = dir.entries(dents, |entry| {
        if let FdLink::Socket(inode) = entry.link() {
            held.push(HeldSocket {
                inode,
                pid,
                fd: entry.fd,
            });
        }
        ControlFlow::Continue(())
    });
}

/// [`held_sockets`] of the proc filesystem at `proc` (normally `/proc`); none when it cannot
/// be opened.
pub fn held_sockets_under(proc: &std::path::Path) -> Vec<HeldSocket> {
    match ProcRoot::open(proc) {
        Ok(root) => held_sockets(&root),
        Err(_) => Vec::new(),
    }
}

/// A socket fd that held a socket of network namespace `netns` when the kernel iterator saw
/// it: the holder of one socket in each namespace, named without the socket's inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketInNetns {
    /// The socket's network namespace (nsfs inode).
    pub netns: u64,
    /// A process holding such a socket.
    pub pid: u32,
    /// The descriptor it held it as.
    pub fd: u32,
}

/// The namespaces of `seen` not in `known`, each opened through its holder's fd and checked
/// to be that namespace (see [`SocketProbe::namespace_through`]), and how many holders would
/// not let it be asked. Each namespace is asked once: the kernel named every namespace a
/// socket is in, so no socket listed later leads to one not in `seen`.
pub fn unknown_namespaces(seen: &[SocketInNetns], known: &HashSet<u64>) -> (Vec<Namespace>, usize) {
    let mut probe = SocketProbe::default();
    let mut found = Vec::new();
    let mut unprobed = 0;
    for held in seen.iter().filter(|h| !known.contains(&h.netns)) {
        let (handle, inode) = match probe.namespace_through(held.pid, held.fd, held.netns) {
            Ok(opened) => opened,
            // Closed, or holding another socket, since the kernel saw it: the namespace went
            // with it, or lives on only in sockets the iterator saw after this one (missed).
            Err(e) if gone(&e) => continue,
            Err(_) => {
                unprobed += 1;
                continue;
            }
        };
        let mut ns = Namespace::new(held.netns);
        ns.origins.push(Origin::Socket);
        ns.pinned_by = Some(HeldSocket {
            inode,
            pid: held.pid,
            fd: held.fd,
        });
        ns.handle = Some(handle);
        found.push(ns);
    }
    found.sort_by_key(|ns| ns.inode);
    (found, unprobed)
}

/// Whether a probe failed because the holder or its fd is gone: nothing is left to miss.
/// `ESRCH` is a holder that exited between its pidfd's opening and the fd's duplication (a
/// short-lived child, such as lsports' own `nft` reading the rules beside the walk): counted
/// as refused, it would make an audit call a root listing incomplete.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::ESRCH))
}

/// A search over held sockets, each asked at most once.
#[derive(Debug)]
pub struct Search {
    /// Holders of each socket, so a holder that refuses can be replaced by another.
    holders: HashMap<u64, Vec<(u32, u32)>>,
    asked: HashSet<u64>,
    probe: SocketProbe,
    unprobed: usize,
}

impl Search {
    /// A search over `held`.
    pub fn new(held: &[HeldSocket]) -> Search {
        let mut holders: HashMap<u64, Vec<(u32, u32)>> = HashMap::new();
        for h in held {
            holders.entry(h.inode).or_default().push((h.pid, h.fd));
        }
        Search {
            holders,
            asked: HashSet::new(),
            probe: SocketProbe::default(),
            unprobed: 0,
        }
    }

    /// Namespaces not in `known` that held sockets not in `listed` belong to, each with an
    /// open handle from its socket. Sockets asked before are not asked again.
    pub fn next_namespaces(
        &mut self,
        listed: &HashSet<u64>,
        known: &HashSet<u64>,
    ) -> Vec<Namespace> {
        let mut found: Vec<Namespace> = Vec::new();
        for (&inode, holders) in &self.holders {
            if listed.contains(&inode) || !self.asked.insert(inode) {
                continue;
            }
            let Some((handle, (pid, fd))) =
                ask(&mut self.probe, inode, holders, &mut self.unprobed)
            else {
                continue;
            };
            let ns_inode = handle.inode();
            if known.contains(&ns_inode) || found.iter().any(|ns| ns.inode == ns_inode) {
                continue;
            }
            let mut ns = Namespace::new(ns_inode);
            ns.origins.push(Origin::Socket);
            ns.pinned_by = Some(HeldSocket { inode, pid, fd });
            ns.handle = Some(handle);
            found.push(ns);
        }
        found.sort_by_key(|ns| ns.inode);
        found
    }

    /// Sockets whose namespace no holder would tell (no ptrace access, `SIOCGSKNS` refused).
    pub fn unprobed(&self) -> usize {
        self.unprobed
    }
}

/// The namespace of socket `inode`, from the first holder that lets us ask. A socket that is
/// gone from every holder is not counted as unprobed: there is nothing left to miss.
fn ask(
    probe: &mut SocketProbe,
    inode: u64,
    holders: &[(u32, u32)],
    unprobed: &mut usize,
) -> Option<(super::nsfd::NsFd, (u32, u32))> {
    let mut refused = false;
    for &(pid, fd) in holders {
        match probe.namespace_of(pid, fd, inode) {
            Ok(handle) => return Some((handle, (pid, fd))),
            // The holder exited or closed the fd since the walk saw it: nothing to miss.
            Err(e) if gone(&e) => {}
            Err(_) => refused = true,
        }
    }
    *unprobed += usize::from(refused);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaces_not_known_are_opened_through_their_holder() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        let here = super::super::nsfd::current().unwrap().inode();
        let pid = std::process::id();
        let fd = listener.as_raw_fd() as u32;
        let seen = [SocketInNetns {
            netns: here,
            pid,
            fd,
        }];
        let (found, unprobed) = unknown_namespaces(&seen, &HashSet::from([here]));
        assert!(
            found.is_empty() && unprobed == 0,
            "a known namespace is not asked"
        );
        let (found, unprobed) = unknown_namespaces(&seen, &HashSet::new());
        // Unprobed only where pidfd_getfd is refused (a sandbox, an old kernel).
        if unprobed == 0 {
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].inode, here);
            assert_eq!(found[0].pinned_by, Some(HeldSocket { inode, pid, fd }));
            assert_eq!(found[0].origins, vec![Origin::Socket]);
        }
        // The fd now holds a socket of this namespace, not of the one the kernel named.
        let moved = [SocketInNetns {
            netns: here + 1,
            pid,
            fd,
        }];
        let (found, unprobed) = unknown_namespaces(&moved, &HashSet::new());
        assert!(found.is_empty() && unprobed == 0, "gone, not refused");
    }

    #[test]
    fn a_holder_that_exited_or_closed_the_fd_is_gone_not_refusing() {
        for errno in [libc::ESRCH, libc::EBADF, libc::ENOENT] {
            assert!(gone(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        assert!(!gone(&io::Error::from_raw_os_error(libc::EPERM)));
    }

    #[test]
    fn sockets_already_listed_or_asked_are_not_asked_again() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        use std::os::fd::AsRawFd;
        let held = [HeldSocket {
            inode,
            pid: std::process::id(),
            fd: listener.as_raw_fd() as u32,
        }];
        let mut search = Search::new(&held);
        let listed = HashSet::from([inode]);
        assert!(search.next_namespaces(&listed, &HashSet::new()).is_empty());
        assert!(search.asked.is_empty(), "a listed socket is not asked");
        let found = search.next_namespaces(&HashSet::new(), &HashSet::new());
        if search.unprobed() == 0 {
            // Our own namespace, unknown to this search: found, with the socket that led to it.
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].pinned_by, Some(held[0]));
            assert_eq!(found[0].origins, vec![Origin::Socket]);
        }
        assert!(
            search
                .next_namespaces(&HashSet::new(), &HashSet::new())
                .is_empty()
        );
    }
}
