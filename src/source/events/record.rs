//! The record `listen_events.bpf.c` writes into its ring buffer, decoded.
//!
//! The layout is `struct event` of the C source: 88 bytes in native byte order, except the
//! addresses, which are in network order as the kernel keeps them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{Family, Protocol};

/// Size of one record.
pub const RECORD_SIZE: usize = 88;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const OPENED: u8 = 1;
const CLOSED: u8 = 2;

/// What happened to a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// A TCP socket entered LISTEN, or a UDP socket was bound.
    Opened,
    /// A TCP socket left LISTEN, or a bound UDP socket was released.
    Closed,
}

/// One listener opened or closed, as the kernel saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenEvent {
    /// Opened or closed.
    pub change: Change,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// IPv4 or IPv6.
    pub family: Family,
    /// The local (bound) address.
    pub address: IpAddr,
    /// The local port.
    pub port: u16,
    /// The process (thread group) running when it happened, numbered in the initial pid
    /// namespace. For a close, whoever dropped the last reference: usually the holder.
    pub pid: u32,
    /// That process's uid.
    pub uid: u32,
    /// That process's command name, raw (at most 15 bytes): to be escaped for display.
    pub comm: Vec<u8>,
    /// The socket's cookie (`SO_COOKIE`, sock_diag's `idiag_cookie`): unique for the boot.
    pub cookie: u64,
    /// The nsfs inode of the socket's network namespace.
    pub netns: u64,
    /// The socket's inode (what `/proc/PID/fd` links to); 0 when it has no file.
    pub inode: u64,
    /// The cgroup v2 id of the process running when it happened.
    pub cgroup: u64,
    /// The index of the device the socket is bound to (`SO_BINDTODEVICE`); 0 for none.
    pub bound_dev_if: u32,
    /// For an IPv6 socket, whether `IPV6_V6ONLY` is set (read from the kernel's socket, as
    /// sock_diag reports it); `None` for IPv4.
    pub v6only: Option<bool>,
}

/// Decode one record; `None` for a record of an unknown protocol, family or kind (a program
/// and a reader out of step), which is skipped rather than shown wrong.
pub fn decode(bytes: &[u8]) -> Option<ListenEvent> {
    let bytes: &[u8; RECORD_SIZE] = bytes.get(..RECORD_SIZE)?.try_into().ok()?;
    let u64_at = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
    let (family, address) = match bytes[58] {
        AF_INET => {
            let octets: [u8; 4] = bytes[40..44].try_into().ok()?;
            (Family::Ipv4, IpAddr::V4(Ipv4Addr::from(octets)))
        }
        AF_INET6 => {
            let octets: [u8; 16] = bytes[40..56].try_into().ok()?;
            (Family::Ipv6, IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => return None,
    };
    let protocol = match bytes[59] {
        IPPROTO_TCP => Protocol::Tcp,
        IPPROTO_UDP => Protocol::Udp,
        _ => return None,
    };
    let change = match bytes[60] {
        OPENED => Change::Opened,
        CLOSED => Change::Closed,
        _ => return None,
    };
    let comm = &bytes[64..80];
    let comm_len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    Some(ListenEvent {
        change,
        protocol,
        family,
        address,
        port: u16::from_ne_bytes([bytes[56], bytes[57]]),
        pid: u32_at(32),
        uid: u32_at(36),
        comm: comm[..comm_len].to_vec(),
        cookie: u64_at(0),
        netns: u64_at(8),
        inode: u64_at(16),
        cgroup: u64_at(24),
        bound_dev_if: u32_at(80),
        v6only: (family == Family::Ipv6).then_some(bytes[61] != 0),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record as the program writes it.
    pub(crate) fn record(kind: u8, proto: u8, family: u8, addr: &[u8], port: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; RECORD_SIZE];
        bytes[0..8].copy_from_slice(&77u64.to_ne_bytes());
        bytes[8..16].copy_from_slice(&4026531840u64.to_ne_bytes());
        bytes[16..24].copy_from_slice(&123456u64.to_ne_bytes());
        bytes[32..36].copy_from_slice(&4242u32.to_ne_bytes());
        bytes[36..40].copy_from_slice(&1000u32.to_ne_bytes());
        bytes[40..40 + addr.len()].copy_from_slice(addr);
        bytes[56..58].copy_from_slice(&port.to_ne_bytes());
        bytes[58] = family;
        bytes[59] = proto;
        bytes[60] = kind;
        bytes[64..71].copy_from_slice(b"python3");
        bytes[80..84].copy_from_slice(&1u32.to_ne_bytes());
        bytes
    }

    #[test]
    fn an_ipv6_record_says_whether_the_socket_is_v6only() {
        let mut bytes = record(1, 6, 10, &[0; 16], 8080);
        assert_eq!(decode(&bytes).unwrap().v6only, Some(false));
        bytes[61] = 1;
        assert_eq!(decode(&bytes).unwrap().v6only, Some(true));
        let mut bytes = record(1, 6, 2, &[127, 0, 0, 1], 8080);
        bytes[61] = 1;
        assert_eq!(
            decode(&bytes).unwrap().v6only,
            None,
            "IPv4 has no such flag"
        );
    }

    #[test]
    fn a_tcp_listen_record_decodes_to_its_socket_and_process() {
        let event = decode(&record(1, 6, 2, &[127, 0, 0, 1], 8080)).unwrap();
        assert_eq!(event.change, Change::Opened);
        assert_eq!(
            (event.protocol, event.family),
            (Protocol::Tcp, Family::Ipv4)
        );
        assert_eq!(event.address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!((event.port, event.pid, event.uid), (8080, 4242, 1000));
        assert_eq!(event.comm, b"python3");
        assert_eq!((event.cookie, event.inode), (77, 123456));
        assert_eq!(event.bound_dev_if, 1);
    }

    #[test]
    fn a_udp6_close_keeps_its_address_in_network_order() {
        let mut addr = [0u8; 16];
        addr[15] = 1;
        let event = decode(&record(2, 17, 10, &addr, 53)).unwrap();
        assert_eq!(event.change, Change::Closed);
        assert_eq!(event.address, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(event.family, Family::Ipv6);
    }

    #[test]
    fn unknown_or_short_records_are_skipped() {
        assert!(decode(&record(3, 6, 2, &[0; 4], 1)).is_none());
        assert!(decode(&record(1, 1, 2, &[0; 4], 1)).is_none());
        assert!(decode(&record(1, 6, 1, &[0; 4], 1)).is_none());
        assert!(decode(&[0u8; 10]).is_none());
    }
}
