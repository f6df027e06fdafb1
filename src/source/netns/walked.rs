//! `--netns all` in one kernel pass: the namespaces whose sockets the BPF fd walk read whole
//! need no sock_diag dump.
//!
//! ```text
//! before the walk:  each namespace's socket counts (sockstat, through a process in it)
//! the walk:         every socket fd of every process, with the socket's own record
//! after the walk:   the counts again; per namespace, the walk's distinct hashed sockets
//!                   against both readings (gate): equal -> its listing is the walk's;
//!                   else (a socket no process holds, churn, unreadable) -> dumped
//! ```
//!
//! Each sock_diag dump walks the host-wide hash tables and skips other namespaces' sockets,
//! so N dumps cost N passes over every socket of the host; the walk is one pass, which the
//! attribution makes anyway. The caller's own namespace is always dumped (the reference; it
//! runs while the BPF program loads), and so is every namespace a listing of every state
//! (`-a`) asks for: TIME_WAIT and request sockets are nobody's fd and in no count.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Namespace;
use super::gate::{self, Why};
use super::sockstat::{self, Counts};
use crate::model::socket_record::SocketRecord;
use crate::model::{DeviceBinding, Family, Protocol, Socket};

/// Each namespace's counts as read before the walk, by inode.
pub type Before = HashMap<u64, Result<Counts, Why>>;

/// Read the counts of every namespace of `namespaces` but `current`, under the live proc root
/// `proc`; to be done before the walk begins.
pub fn count_before(namespaces: &[Namespace], current: Option<u64>, proc: &Path) -> Before {
    namespaces
        .iter()
        .filter(|ns| Some(ns.inode) != current)
        .map(|ns| (ns.inode, counts_of(ns, proc)))
        .collect()
}

/// The counts of `ns`, through the first of its processes that is still in it after the read
/// (a pid can exit, or be reused, meanwhile).
fn counts_of(ns: &Namespace, proc: &Path) -> Result<Counts, Why> {
    let mut last = Why::NoCounts;
    for pid in &ns.pids {
        let counts = sockstat::read(&proc.join(format!("{pid}/net")));
        let still_there = std::fs::metadata(proc.join(format!("{pid}/ns/net")))
            .is_ok_and(|meta| meta.ino() == ns.inode);
        match (counts, still_there) {
            (Ok(counts), true) => return Ok(counts),
            (Err(e), true) => last = Why::Unreadable(e),
            (_, false) => {}
        }
    }
    Err(last)
}

/// What the walk read in one namespace.
#[derive(Debug, Default)]
pub struct Walked {
    /// Its hashed sockets as the kernel counts them (see [`gate::tally`]).
    pub counts: Counts,
    /// Its sockets a dump of the request would list.
    pub sockets: Vec<Socket>,
}

/// The walk's socket records (`struct socket_record`), one per socket, by their namespace's
/// inode: every one counted, those a dump asking for `tables` and `listening` only (else
/// every state) would list kept as sockets ([`requested`]; the others are dropped here,
/// before they cost a socket each).
pub fn decode(
    records: &[[u8; 80]],
    tables: &[(Protocol, Family)],
    listening: bool,
) -> HashMap<u64, Walked> {
    let mut by_netns: HashMap<u64, Walked> = HashMap::new();
    for record in records
        .iter()
        .filter_map(|bytes| SocketRecord::parse(bytes))
    {
        // The namespace is tagged by the caller, with its name.
        let Ok(socket) = record.to_socket(|_| None) else {
            continue;
        };
        let walked = by_netns.entry(record.netns.into()).or_default();
        gate::count(&mut walked.counts, &socket);
        if requested(&socket, tables, listening) {
            walked.sockets.push(socket);
        }
    }
    by_netns
}

/// What the gate decided for every namespace but the caller's.
#[derive(Debug, Default)]
pub struct Judged {
    /// The namespaces the walk answered, each with its sockets (every hashed one).
    pub answered: Vec<(u64, Vec<Socket>)>,
    /// The namespaces to dump, each with why.
    pub dump: Vec<(u64, Why)>,
}

/// Judge every namespace of `namespaces` but `current` by its counts `before` the walk, its
/// counts now, and the sockets the walk read in it (`walked`, by namespace inode, each once).
pub fn judge(
    namespaces: &[Namespace],
    current: Option<u64>,
    mut before: Before,
    mut walked: HashMap<u64, Walked>,
    proc: &Path,
) -> Judged {
    let mut judged = Judged::default();
    for ns in namespaces.iter().filter(|ns| Some(ns.inode) != current) {
        let Walked { counts, sockets } = walked.remove(&ns.inode).unwrap_or_default();
        let Some(counted) = before.remove(&ns.inode) else {
            // Found after the counts were read (from a socket): nothing to compare with.
            judged.dump.push((ns.inode, Why::NoCounts));
            continue;
        };
        let verdict = match counted {
            Err(why) => Err(why),
            Ok(before) => {
                // Its processes all left since the first reading: churn.
                let after = counts_of(ns, proc).map_err(|why| match why {
                    Why::NoCounts => Why::Churn,
                    why => why,
                });
                gate::judge(Ok(before), counts, after)
            }
        };
        match verdict.and_then(|()| named_devices_only(&sockets)) {
            Ok(()) => judged.answered.push((ns.inode, sockets)),
            Err(why) => judged.dump.push((ns.inode, why)),
        }
    }
    judged
}

/// A socket bound to a device is named from inside its namespace (`if_indextoname` there),
/// which a dump does while it is entered: such a namespace is dumped.
fn named_devices_only(sockets: &[Socket]) -> Result<(), Why> {
    match sockets
        .iter()
        .any(|s| matches!(s.device, DeviceBinding::Device { .. }))
    {
        true => Err(Why::Device),
        false => Ok(()),
    }
}

/// Whether a dump asking for `tables` and `listening` only (else every state) would list
/// `socket`: one in the hash tables the dump walks, of a table and state asked for.
pub fn requested(socket: &Socket, tables: &[(Protocol, Family)], listening: bool) -> bool {
    gate::hashed(socket)
        && tables.contains(&(socket.protocol, socket.family))
        && (!listening || socket.state.is_listening(socket.protocol))
}

/// The `-v` line: how many namespaces the walk answered and how many were dumped, and why.
pub fn summary(judged: &Judged, current_dumped: bool) -> String {
    let mut reasons: Vec<(&'static str, usize)> = Vec::new();
    for (_, why) in &judged.dump {
        match reasons.iter_mut().find(|(r, _)| *r == why.reason()) {
            Some((_, n)) => *n += 1,
            None => reasons.push((why.reason(), 1)),
        }
    }
    let dumped = judged.dump.len() + usize::from(current_dumped);
    let mut line = format!(
        "--netns all: {} answered from the BPF fd walk's socket records, {} dumped over \
         sock_diag",
        crate::text::counts::count(judged.answered.len(), "namespace"),
        dumped
    );
    let mut parts: Vec<String> = Vec::new();
    if current_dumped {
        parts.push("this one, always".into());
    }
    parts.extend(reasons.iter().map(|(why, n)| format!("{n}: {why}")));
    if !parts.is_empty() {
        line.push_str(&format!(" ({})", parts.join("; ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SocketState;
    use crate::source::netns::gate::tests::socket;

    /// A proc tree with process `pid`, whose `ns/net` is a plain file: the namespace's inode
    /// is that file's. Its namespace counts `tcp4` IPv4 TCP sockets.
    fn proc_with(pid: u32, tcp4: u32) -> (tempfile::TempDir, u64) {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join(format!("{pid}/net"));
        std::fs::create_dir_all(&net).unwrap();
        let text = format!("TCP: inuse {tcp4} orphan 0 tw 0 alloc 1 mem 0\nUDP: inuse 0 mem 0\n");
        std::fs::write(net.join("sockstat"), text).unwrap();
        let ns_dir = dir.path().join(format!("{pid}/ns"));
        std::fs::create_dir_all(&ns_dir).unwrap();
        std::fs::write(ns_dir.join("net"), "").unwrap();
        let inode = std::fs::metadata(ns_dir.join("net")).unwrap().ino();
        (dir, inode)
    }

    /// What the walk read: `sockets`, all of them requested.
    fn walked(sockets: Vec<Socket>) -> Walked {
        Walked {
            counts: gate::tally(&sockets),
            sockets,
        }
    }

    fn namespace(inode: u64, pid: u32) -> Namespace {
        let mut ns = Namespace::new(inode);
        ns.pids.push(pid);
        ns
    }

    #[test]
    fn a_namespace_whose_counts_match_is_answered_and_one_that_differs_is_dumped() {
        let (dir, inode) = proc_with(7, 1);
        let namespaces = [namespace(inode, 7), Namespace::new(1)];
        let before = count_before(&namespaces, Some(1), dir.path());
        assert_eq!(before.len(), 1, "the current namespace is not counted");
        let listener = socket(Protocol::Tcp, "0.0.0.0", 80, SocketState::LISTEN);
        let walked = HashMap::from([(inode, walked(vec![listener.clone()]))]);
        let judged = judge(&namespaces, Some(1), before, walked, dir.path());
        assert_eq!(judged.answered.len(), 1);
        assert!(judged.dump.is_empty());
        assert_eq!(judged.answered[0].1, [listener]);
        assert_eq!(
            summary(&judged, true),
            "--netns all: 1 namespace answered from the BPF fd walk's socket records, 1 dumped \
             over sock_diag (this one, always)"
        );

        // The kernel counts one more than any process holds: a kernel socket.
        let before = count_before(&namespaces, Some(1), dir.path());
        let judged = judge(&namespaces, Some(1), before, HashMap::new(), dir.path());
        assert!(judged.answered.is_empty());
        assert!(matches!(judged.dump[..], [(i, Why::Mismatch { .. })] if i == inode));
        let line = summary(&judged, false);
        assert!(line.contains("0 namespaces answered"), "{line}");
        assert!(line.contains("1 dumped over sock_diag (1: they hold sockets no process holds"));
    }

    #[test]
    fn counts_that_change_during_the_walk_dump_the_namespace() {
        let (dir, inode) = proc_with(7, 1);
        let namespaces = [namespace(inode, 7)];
        let before = count_before(&namespaces, None, dir.path());
        let text = "TCP: inuse 2\nUDP: inuse 0\n";
        std::fs::write(dir.path().join("7/net/sockstat"), text).unwrap();
        let listener = socket(Protocol::Tcp, "0.0.0.0", 80, SocketState::LISTEN);
        let walked = HashMap::from([(inode, walked(vec![listener]))]);
        let judged = judge(&namespaces, None, before, walked, dir.path());
        assert!(matches!(judged.dump[..], [(_, Why::Churn)]), "{judged:?}");
    }

    #[test]
    fn no_process_to_count_through_or_a_device_bound_socket_dumps_the_namespace() {
        let (dir, inode) = proc_with(7, 1);
        // Process 8 is not in the namespace (no proc entry): no counts.
        let namespaces = [namespace(inode, 7), namespace(99, 8)];
        let before = count_before(&namespaces, None, dir.path());
        let mut bound = socket(Protocol::Tcp, "0.0.0.0", 80, SocketState::LISTEN);
        bound.device = DeviceBinding::Device {
            index: 2,
            name: None,
        };
        let walked = HashMap::from([(inode, walked(vec![bound]))]);
        let judged = judge(&namespaces, None, before, walked, dir.path());
        let whys: Vec<&str> = judged.dump.iter().map(|(_, w)| w.reason()).collect();
        assert_eq!(
            whys,
            [Why::Device.reason(), Why::NoCounts.reason()],
            "{judged:?}"
        );
    }

    #[test]
    fn records_decode_into_sockets_by_namespace_and_others_are_left_out() {
        let record = |netns, protocol, port| {
            let bytes = crate::model::socket_record::tests::encode(&SocketRecord {
                inode: u64::from(port),
                cgroup_id: 0,
                local_addr: [0; 16],
                remote_addr: [0; 16],
                netns,
                uid: 0,
                recv_q: 0,
                send_q: 128,
                bound_dev_if: 0,
                local_port: port,
                remote_port: 0,
                family: 2,
                protocol,
                state: 10,
                flags: 1,
            });
            <[u8; 80]>::try_from(bytes.as_slice()).unwrap()
        };
        // A record of another protocol (132: SCTP) is not one lsports lists.
        let records = [
            record(7, 6, 80),
            record(8, 17, 53),
            record(7, 6, 443),
            record(7, 132, 9),
        ];
        let tables = [(Protocol::Tcp, Family::Ipv4), (Protocol::Udp, Family::Ipv4)];
        let by_netns = decode(&records, &tables, true);
        let ports =
            |ns: u64| -> Vec<u16> { by_netns[&ns].sockets.iter().map(|s| s.local_port).collect() };
        assert_eq!(ports(7), [80, 443]);
        assert_eq!(by_netns[&7].counts.tcp4, 2);
        // A UDP socket in state LISTEN (10) is not listening: counted, not kept.
        assert!(ports(8).is_empty());
        assert_eq!(by_netns[&8].counts.udp4, 1);
        assert_eq!(by_netns.len(), 2);
        // Only IPv6 asked for: every socket still counted.
        let v6 = decode(&records, &[(Protocol::Tcp, Family::Ipv6)], true);
        assert!(v6[&7].sockets.is_empty());
        assert_eq!(v6[&7].counts.tcp4, 2);
    }

    #[test]
    fn only_what_the_dump_would_list_is_kept() {
        let sockets = [
            socket(Protocol::Tcp, "0.0.0.0", 80, SocketState::LISTEN),
            socket(Protocol::Tcp, "10.0.0.1", 80, SocketState::ESTABLISHED),
            socket(Protocol::Udp, "0.0.0.0", 53, SocketState::CLOSE),
            socket(Protocol::Udp, "0.0.0.0", 0, SocketState::CLOSE),
            socket(Protocol::Tcp, "::", 22, SocketState::LISTEN),
        ];
        let tcp4 = [(Protocol::Tcp, Family::Ipv4), (Protocol::Udp, Family::Ipv4)];
        let kept = |listening| -> Vec<u16> {
            let asked = sockets.iter().filter(|s| requested(s, &tcp4, listening));
            asked.map(|s| s.local_port).collect()
        };
        assert_eq!(
            kept(true),
            [80, 53],
            "listening IPv4, an unbound UDP socket is in no table"
        );
        assert_eq!(kept(false), [80, 80, 53]);
    }
}
