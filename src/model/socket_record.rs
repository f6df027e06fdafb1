//! `struct socket_record` (`src/source/bpf/socket_record.h`) as a BPF program writes it, and
//! its decoding into a [`Socket`] that says what a sock_diag dump would.
//!
//! It lives in `model`, at the bottom of the import graph, because both `source` (the tcp and
//! udp iterators) and `process` (the fd-table walk) decode these records, and `source`
//! already uses `process`. Decoding bytes is not I/O.
//!
//! The layout is fixed: 80 bytes, native byte order, every field at its natural alignment:
//!
//! | offset | field          | type      | meaning                                           |
//! |-------:|----------------|-----------|---------------------------------------------------|
//! |      0 | `inode`        | u64       | socket inode; 0 for TIME_WAIT, request sockets    |
//! |      8 | `cgroup_id`    | u64       | cgroup v2 id; 0 unknown or not a full socket      |
//! |     16 | `local_addr`   | [u8; 16]  | network order; IPv4 in the first 4 bytes          |
//! |     32 | `remote_addr`  | [u8; 16]  | likewise; 0 when not connected                    |
//! |     48 | `netns`        | u32       | inode of the socket's network namespace           |
//! |     52 | `uid`          | u32       | owner uid (initial user namespace)                |
//! |     56 | `recv_q`       | u32       | sock_diag's `idiag_rqueue`                        |
//! |     60 | `send_q`       | u32       | sock_diag's `idiag_wqueue`                        |
//! |     64 | `bound_dev_if` | u32       | bound device index; 0 for none                    |
//! |     68 | `local_port`   | u16       | host order                                        |
//! |     70 | `remote_port`  | u16       | host order                                        |
//! |     72 | `family`       | u8        | `AF_INET` (2) or `AF_INET6` (10)                  |
//! |     73 | `protocol`     | u8        | `IPPROTO_TCP` (6) or `IPPROTO_UDP` (17)           |
//! |     74 | `state`        | u8        | `TCP_*` state as sock_diag reports it             |
//! |     75 | `flags`        | u8        | [`FULL`] \| [`V6ONLY`]                            |
//! |     76 | `reserved`     | u32       | 0                                                 |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU64;
use std::sync::Arc;

use crate::model::{DeviceBinding, Family, Netns, Protocol, Socket, SocketState, SourceKind};

/// Size of one record in bytes (`sizeof(struct socket_record)`).
pub const RECORD_SIZE: usize = 80;

/// `flags`: a full socket, whose inode, uid, queues, cgroup and v6only are its own (sock_diag
/// sends v6only and the cgroup id only for these).
pub const FULL: u8 = 1;
/// `flags`: `IPV6_V6ONLY` is set.
pub const V6ONLY: u8 = 2;

/// The kernel structs `read_socket()` reads through CO-RE relocations: a BTF digest made for
/// a program including `socket_record.h` must keep these whole (with the program's own).
pub const SOCKET_RECORD_STRUCTS: &[&str] = &[
    "sock_common",
    "sock",
    "net",
    "ns_common",
    "socket_alloc",
    "inode",
    "tcp_sock",
    "udp_sock",
    "inet_timewait_sock",
    "cgroup",
    "kernfs_node",
];

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// One socket as `read_socket()` wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketRecord {
    /// Socket inode; 0 for TIME_WAIT and request sockets, and sockets without a file.
    pub inode: u64,
    /// cgroup v2 id of the cgroup the socket was made in; 0 when unknown.
    pub cgroup_id: u64,
    /// Local address, network byte order (IPv4: the first 4 bytes).
    pub local_addr: [u8; 16],
    /// Remote address, likewise.
    pub remote_addr: [u8; 16],
    /// Inode of the socket's network namespace; 0 when unreadable.
    pub netns: u32,
    /// Owner uid.
    pub uid: u32,
    /// Receive queue, as sock_diag's `idiag_rqueue`.
    pub recv_q: u32,
    /// Send queue, as sock_diag's `idiag_wqueue`.
    pub send_q: u32,
    /// Index of the device the socket is bound to; 0 for none.
    pub bound_dev_if: u32,
    /// Local port.
    pub local_port: u16,
    /// Remote port.
    pub remote_port: u16,
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub protocol: u8,
    /// State, `TCP_*` numbering, as sock_diag reports it.
    pub state: u8,
    /// [`FULL`] and [`V6ONLY`].
    pub flags: u8,
}

/// Why a record is not a socket lsports lists (the program never writes one such; a wrong
/// layout would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Neither `AF_INET` nor `AF_INET6`.
    #[error("socket record with address family {0}, neither AF_INET nor AF_INET6")]
    Family(u8),
    /// Neither TCP nor UDP.
    #[error("socket record with protocol {0}, neither TCP nor UDP")]
    Protocol(u8),
}

impl SocketRecord {
    /// The record in `bytes`, exactly [`RECORD_SIZE`] of them; `None` for any other length.
    pub fn parse(bytes: &[u8]) -> Option<SocketRecord> {
        let bytes: &[u8; RECORD_SIZE] = bytes.try_into().ok()?;
        let u16_at = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| u32::from_ne_bytes(array(&bytes[at..at + 4]));
        let u64_at = |at: usize| u64::from_ne_bytes(array(&bytes[at..at + 8]));
        Some(SocketRecord {
            inode: u64_at(0),
            cgroup_id: u64_at(8),
            local_addr: array(&bytes[16..32]),
            remote_addr: array(&bytes[32..48]),
            netns: u32_at(48),
            uid: u32_at(52),
            recv_q: u32_at(56),
            send_q: u32_at(60),
            bound_dev_if: u32_at(64),
            local_port: u16_at(68),
            remote_port: u16_at(70),
            family: bytes[72],
            protocol: bytes[73],
            state: bytes[74],
            flags: bytes[75],
        })
    }

    /// The socket as a sock_diag dump describes it, its network namespace given by `netns`
    /// (the record's namespace inode in, the shared namespace out).
    pub fn to_socket(
        &self,
        netns: impl FnOnce(u32) -> Option<Arc<Netns>>,
    ) -> Result<Socket, RecordError> {
        let (family, local_addr, remote_addr) = match self.family {
            AF_INET => (Family::Ipv4, v4(&self.local_addr), v4(&self.remote_addr)),
            AF_INET6 => (
                Family::Ipv6,
                Ipv6Addr::from(self.local_addr).into(),
                Ipv6Addr::from(self.remote_addr).into(),
            ),
            other => return Err(RecordError::Family(other)),
        };
        let protocol = match self.protocol {
            IPPROTO_TCP => Protocol::Tcp,
            IPPROTO_UDP => Protocol::Udp,
            other => return Err(RecordError::Protocol(other)),
        };
        let full = self.flags & FULL != 0;
        Ok(Socket {
            protocol,
            family,
            local_addr,
            local_port: self.local_port,
            remote_addr,
            remote_port: self.remote_port,
            state: SocketState(self.state),
            recv_q: self.recv_q,
            send_q: Some(self.send_q),
            uid: self.uid,
            inode: self.inode,
            v6only: self.v6only(family),
            device: match self.bound_dev_if {
                0 => DeviceBinding::Unbound,
                index => DeviceBinding::Device { index, name: None },
            },
            source: SourceKind::Bpf,
            cgroup_id: NonZeroU64::new(self.cgroup_id).filter(|_| full),
            netns: netns(self.netns),
        })
    }
}

impl SocketRecord {
    /// What sock_diag says of v6only: inet_diag_msg_attrs_fill sends INET_DIAG_SKV6ONLY for
    /// full AF_INET6 sockets in LISTEN or CLOSE (an unconnected UDP socket) only.
    fn v6only(&self, family: Family) -> Option<bool> {
        let shown = self.flags & FULL != 0
            && family == Family::Ipv6
            && [SocketState::LISTEN, SocketState::CLOSE].contains(&SocketState(self.state));
        shown.then_some(self.flags & V6ONLY != 0)
    }
}

/// Whole records in `bytes`; a trailing partial record (which the kernel never writes) is
/// ignored.
pub fn decode(bytes: &[u8]) -> impl Iterator<Item = SocketRecord> + '_ {
    bytes
        .chunks_exact(RECORD_SIZE)
        .filter_map(SocketRecord::parse)
}

/// The first bytes of `bytes` as an array; `bytes` is at least `N` long at every caller
/// (slices of a fixed-size record), and a shorter one would give zeros, not a panic.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let len = bytes.len().min(N);
    out[..len].copy_from_slice(&bytes[..len]);
    out
}

fn v4(bytes: &[u8; 16]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record as the kernel writes it, field by field at the offsets of `socket_record.h`.
    pub(crate) fn encode(r: &SocketRecord) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(RECORD_SIZE);
        bytes.extend_from_slice(&r.inode.to_ne_bytes());
        bytes.extend_from_slice(&r.cgroup_id.to_ne_bytes());
        bytes.extend_from_slice(&r.local_addr);
        bytes.extend_from_slice(&r.remote_addr);
        for word in [r.netns, r.uid, r.recv_q, r.send_q, r.bound_dev_if] {
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        bytes.extend_from_slice(&r.local_port.to_ne_bytes());
        bytes.extend_from_slice(&r.remote_port.to_ne_bytes());
        bytes.extend_from_slice(&[r.family, r.protocol, r.state, r.flags]);
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        assert_eq!(bytes.len(), RECORD_SIZE);
        bytes
    }

    fn addr(ip: IpAddr) -> [u8; 16] {
        match ip {
            IpAddr::V4(v4) => {
                let mut out = [0; 16];
                out[..4].copy_from_slice(&v4.octets());
                out
            }
            IpAddr::V6(v6) => v6.octets(),
        }
    }

    /// A full TCP listener on [::]:8080, v6only, bound to device 3, in namespace 4026531840.
    fn listener() -> SocketRecord {
        SocketRecord {
            inode: 123_456,
            cgroup_id: 77,
            local_addr: addr("::".parse().unwrap()),
            remote_addr: [0; 16],
            netns: 4026531840,
            uid: 1000,
            recv_q: 2,
            send_q: 128,
            bound_dev_if: 3,
            local_port: 8080,
            remote_port: 0,
            family: AF_INET6,
            protocol: IPPROTO_TCP,
            state: 10,
            flags: FULL | V6ONLY,
        }
    }

    fn namespace(inode: u32) -> Option<Arc<Netns>> {
        Some(Arc::new(Netns {
            inode: inode.into(),
            name: Some(b"blue".to_vec()),
        }))
    }

    #[test]
    fn a_full_socket_gives_every_field_sock_diag_gives() {
        let bytes = encode(&listener());
        let record = SocketRecord::parse(&bytes).unwrap();
        assert_eq!(record, listener());
        let socket = record.to_socket(namespace).unwrap();
        let want = Socket {
            protocol: Protocol::Tcp,
            family: Family::Ipv6,
            local_addr: "::".parse().unwrap(),
            local_port: 8080,
            remote_addr: "::".parse().unwrap(),
            remote_port: 0,
            state: SocketState::LISTEN,
            recv_q: 2,
            send_q: Some(128),
            uid: 1000,
            inode: 123_456,
            v6only: Some(true),
            device: DeviceBinding::Device {
                index: 3,
                name: None,
            },
            source: SourceKind::Bpf,
            cgroup_id: NonZeroU64::new(77),
            netns: namespace(4026531840),
        };
        assert_eq!(socket, want);
    }

    #[test]
    fn ipv4_addresses_are_the_first_four_bytes_in_network_order() {
        let record = SocketRecord {
            local_addr: addr("10.1.2.3".parse().unwrap()),
            remote_addr: addr("192.0.2.9".parse().unwrap()),
            remote_port: 40000,
            family: AF_INET,
            protocol: IPPROTO_UDP,
            state: 1,
            // A v6only bit on an IPv4 socket means nothing: sock_diag sends none.
            flags: FULL | V6ONLY,
            bound_dev_if: 0,
            ..listener()
        };
        let socket = SocketRecord::parse(&encode(&record))
            .unwrap()
            .to_socket(|_| None)
            .unwrap();
        assert_eq!(socket.local_addr, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(socket.remote_addr, "192.0.2.9".parse::<IpAddr>().unwrap());
        assert_eq!((socket.local_port, socket.remote_port), (8080, 40000));
        assert_eq!(socket.protocol, Protocol::Udp);
        assert_eq!(socket.family, Family::Ipv4);
        assert_eq!(socket.v6only, None);
        assert_eq!(socket.device, DeviceBinding::Unbound);
        assert_eq!(socket.netns, None);
    }

    #[test]
    fn time_wait_and_request_sockets_have_no_v6only_and_no_cgroup() {
        // As inet_twsk_diag_fill and inet_req_diag_fill: only sock_common's part, and no
        // INET_DIAG_SKV6ONLY or INET_DIAG_CGROUP_ID attribute at all.
        for state in [6, 3] {
            let record = SocketRecord {
                inode: 0,
                uid: 0,
                recv_q: 0,
                send_q: 0,
                state,
                flags: 0,
                ..listener()
            };
            let socket = record.to_socket(|_| None).unwrap();
            assert_eq!(socket.v6only, None, "state {state}");
            assert_eq!(socket.cgroup_id, None, "state {state}");
            assert_eq!(socket.inode, 0);
            assert_eq!(socket.state, SocketState(state));
        }
        // A full socket with no cgroup read (0) has none either: no cgroup has id 0.
        let record = SocketRecord {
            cgroup_id: 0,
            ..listener()
        };
        assert_eq!(record.to_socket(|_| None).unwrap().cgroup_id, None);
    }

    #[test]
    fn v6only_is_said_as_sock_diag_says_it_for_listening_and_unconnected_sockets_only() {
        let v6only = |state: u8, flags: u8| {
            let record = SocketRecord {
                state,
                flags,
                ..listener()
            };
            record.to_socket(|_| None).unwrap().v6only
        };
        assert_eq!(v6only(10, FULL | V6ONLY), Some(true));
        assert_eq!(v6only(10, FULL), Some(false));
        assert_eq!(v6only(7, FULL | V6ONLY), Some(true), "UDP unconnected");
        assert_eq!(v6only(1, FULL | V6ONLY), None, "established: no attribute");
        assert_eq!(v6only(8, FULL), None, "close-wait: no attribute");
    }

    #[test]
    fn an_unknown_family_or_protocol_is_an_error_naming_it() {
        let family = SocketRecord {
            family: 1,
            ..listener()
        };
        assert_eq!(family.to_socket(|_| None), Err(RecordError::Family(1)));
        let protocol = SocketRecord {
            protocol: 132,
            ..listener()
        };
        let err = protocol.to_socket(|_| None).unwrap_err();
        assert_eq!(err, RecordError::Protocol(132));
        assert!(err.to_string().contains("132"), "{err}");
    }

    #[test]
    fn the_namespace_is_asked_for_with_the_records_inode() {
        let mut asked = Vec::new();
        let socket = listener()
            .to_socket(|inode| {
                asked.push(inode);
                namespace(inode)
            })
            .unwrap();
        assert_eq!(asked, [4026531840]);
        assert_eq!(socket.netns.unwrap().inode, 4026531840);
    }

    #[test]
    fn whole_records_decode_and_a_partial_tail_is_dropped() {
        let second = SocketRecord {
            local_port: 53,
            ..listener()
        };
        let mut bytes = encode(&listener());
        bytes.extend_from_slice(&encode(&second));
        bytes.extend_from_slice(&[1, 2, 3]);
        let got: Vec<SocketRecord> = decode(&bytes).collect();
        assert_eq!(got, [listener(), second]);
        assert_eq!(SocketRecord::parse(&bytes[..RECORD_SIZE - 1]), None);
    }

    #[test]
    fn the_c_header_asserts_the_layout_decoded_here() {
        // clang checks the header's assertions when it builds the object; they must be the
        // offsets `parse` reads.
        let header = include_str!("../source/bpf/socket_record.h");
        assert!(header.contains("_Static_assert(sizeof(struct socket_record) == 80,"));
        let asserted: Vec<(&str, usize)> = header
            .lines()
            .filter_map(|l| {
                l.strip_prefix("_Static_assert(__builtin_offsetof(struct socket_record, ")
            })
            .filter_map(|l| {
                let (field, rest) = l.split_once(") == ")?;
                Some((field, rest.split(',').next()?.parse().ok()?))
            })
            .collect();
        let decoded = [
            ("inode", 0),
            ("cgroup_id", 8),
            ("local_addr", 16),
            ("remote_addr", 32),
            ("netns", 48),
            ("uid", 52),
            ("recv_q", 56),
            ("send_q", 60),
            ("bound_dev_if", 64),
            ("local_port", 68),
            ("remote_port", 70),
            ("family", 72),
            ("protocol", 73),
            ("state", 74),
            ("flags", 75),
            ("reserved", 76),
        ];
        assert_eq!(asserted, decoded);
        // Each field where `encode` puts it, so the tests above exercise those offsets.
        let bytes = encode(&listener());
        assert_eq!(bytes[72..76], [AF_INET6, IPPROTO_TCP, 10, FULL | V6ONLY]);
        assert_eq!(bytes[68..70], 8080u16.to_ne_bytes());
        assert_eq!(bytes[48..52], 4026531840u32.to_ne_bytes());
    }
}
