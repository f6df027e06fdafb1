//! Which network namespace owns a published port's target address, and which listener there
//! serves it. A namespace's own addresses are read from `/proc/PID/net/fib_trie` (IPv4: the
//! `/32 host LOCAL` entries) and `/proc/PID/net/if_inet6` (IPv6) of a process living in it;
//! those files describe the namespace of the process, whoever reads them.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};

use crate::model::exposure::{reachable_families, unmapped};
use crate::model::published::{Landing, Published, PublishedListener};
use crate::model::{Entry, Family};
use crate::sys::procroot::ProcRoot;

/// A namespace lsports looked in, and its addresses.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Its nsfs inode.
    pub inode: u64,
    /// Its addresses.
    pub addrs: HashSet<IpAddr>,
}

/// The namespaces `inodes` (each read through one of its processes, `pids`), with their
/// addresses; one that cannot be read is left out (its ports then stay "not seen").
pub fn read(root: &ProcRoot, namespaces: &[(u64, u32)]) -> Vec<Owner> {
    namespaces
        .iter()
        .filter_map(|&(inode, pid)| {
            let v4 = root.read_file(&format!("{pid}/net/fib_trie")).ok()?;
            let v6 = root
                .read_file(&format!("{pid}/net/if_inet6"))
                .unwrap_or_default();
            let mut addrs = local_v4(&v4);
            addrs.extend(local_v6(&v6));
            Some(Owner { inode, addrs })
        })
        .collect()
}

/// The addresses `fib_trie` lists as `/32 host LOCAL`: each follows its `|-- ADDR` line.
pub fn local_v4(fib_trie: &[u8]) -> HashSet<IpAddr> {
    let text = String::from_utf8_lossy(fib_trie);
    let mut last: Option<IpAddr> = None;
    let mut out = HashSet::new();
    for line in text.lines() {
        let line = line.trim_start_matches([' ', '|', '+', '-']).trim();
        if let Ok(addr) = line.parse::<IpAddr>() {
            last = Some(addr);
        } else if line.starts_with("/32 host LOCAL") {
            out.extend(last);
        }
    }
    out
}

/// The addresses of `if_inet6`: 32 hex digits at the start of each line.
pub fn local_v6(if_inet6: &[u8]) -> HashSet<IpAddr> {
    let text = String::from_utf8_lossy(if_inet6);
    text.lines()
        .filter_map(|line| {
            let hex = line.split_whitespace().next()?;
            (hex.len() == 32)
                .then(|| u128::from_str_radix(hex, 16).ok())
                .flatten()
        })
        .map(|n| IpAddr::V6(Ipv6Addr::from(n)))
        .collect()
}

/// Where `published` lands among `entries`, given the namespaces looked in. A target this
/// host forwards to (DNAT) is looked for in every namespace owning its address; a redirect's
/// target, in `current` (the host's own namespace). Without a listener there, it is
/// [`Landing::NoListener`] only when `complete` says the listing holds every listener that
/// could serve it; else [`Landing::NotSeen`].
pub fn land(
    published: &Published,
    owners: &[Owner],
    current: Option<u64>,
    entries: &[Entry],
    complete: bool,
) -> Landing {
    let owning: Vec<&Owner> = match published.target_addr {
        Some(addr) => owners.iter().filter(|o| o.addrs.contains(&addr)).collect(),
        None => owners.iter().filter(|o| Some(o.inode) == current).collect(),
    };
    let Some(first) = owning.first() else {
        return Landing::NotSeen;
    };
    for owner in &owning {
        let serving = entries
            .iter()
            .find(|e| in_namespace(e, owner.inode) && serves(e, published));
        if let Some(entry) = serving {
            let socket = &entry.socket;
            return Landing::Listener(PublishedListener {
                netns: socket.netns.clone(),
                addr: socket.local_addr,
                port: socket.local_port,
                inode: socket.inode,
                labels: entry.labels.clone(),
            });
        }
    }
    if !complete {
        return Landing::NotSeen;
    }
    let netns = entries
        .iter()
        .find(|e| in_namespace(e, first.inode))
        .and_then(|e| e.socket.netns.clone());
    Landing::NoListener { netns }
}

fn in_namespace(entry: &Entry, inode: u64) -> bool {
    entry
        .socket
        .netns
        .as_ref()
        .is_some_and(|ns| ns.inode == inode)
}

/// Whether the listening socket of `entry` accepts the published port's forwarded packets:
/// its protocol and port, bound to the target address or a wildcard of the target's family.
fn serves(entry: &Entry, published: &Published) -> bool {
    let socket = &entry.socket;
    if socket.protocol != published.protocol
        || socket.local_port != published.target_port
        || !socket.state.is_listening(socket.protocol)
    {
        return false;
    }
    // The target's family: a proxy relays IPv6 to an IPv4 container.
    let family = match published.target_addr {
        Some(IpAddr::V4(_)) => Family::Ipv4,
        Some(IpAddr::V6(_)) => Family::Ipv6,
        None => published.family,
    };
    let addr = unmapped(socket.local_addr);
    let wildcard = addr.is_unspecified() && reachable_families(socket).contains(&family);
    wildcard
        || match published.target_addr {
            Some(target) => addr == target,
            // A redirect reaches the host on the address the packet was sent to.
            None => published.host_addr.is_unspecified() || addr == published.host_addr,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_of_a_namespace() {
        let fib =
            b"Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     \
            +-- 172.17.0.0/16 2 0 2\n        |-- 172.17.0.0\n           /16 link UNICAST\n        \
            |-- 172.17.0.2\n           /32 host LOCAL\n        |-- 172.17.255.255\n           \
            /32 link BROADCAST\nLocal:\n     |-- 127.0.0.1\n        /32 host LOCAL\n";
        let v4 = local_v4(fib);
        let want: HashSet<IpAddr> = ["172.17.0.2", "127.0.0.1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(v4, want);
        let v6 = local_v6(b"fd000000000000000000000000000002 03 40 00 80     eth0\nshort\n");
        assert_eq!(v6.len(), 1);
        assert!(v6.contains(&"fd00::2".parse::<IpAddr>().unwrap()));
    }
}
