//! Sockets from the kernel over `NETLINK_SOCK_DIAG`: one dump per (family, protocol), with the
//! state filter in the request so the kernel only sends what will be shown.
//!
//! The reply decoder ([`decode_chunk`]) is separate from the socket I/O so that recorded kernel
//! replies can be tested offline. Errors are never swallowed: an `NLMSG_ERROR`, or a negative code
//! inside `NLMSG_DONE` (how the kernel reports a missing `udp_diag` module), is an error, not an
//! empty table, so the caller can fall back to `/proc/net`.

use std::io;
use std::net::IpAddr;
use std::num::NonZeroU64;

use netlink_packet_core::Nla as _;
use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP},
    inet::{ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags, nlas::Nla},
};
use netlink_sys::{Socket as NlSocket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};

use crate::config::StateSelection;
use crate::error::SourceError;
use crate::model::{DeviceBinding, Family, Protocol, Socket, SocketState, SourceKind};

/// Receive buffer per `recv`: the kernel sizes dump chunks to the reader's buffer, up to 32 KiB
/// per skb; a smaller buffer would truncate messages.
const RECV_CHUNK: usize = 64 * 1024;
/// Socket receive buffer, so a large dump is not throttled by a small default `SO_RCVBUF`.
const SOCKET_RCVBUF: usize = 1024 * 1024;

/// An open sock_diag socket; dumps are made one after another over it.
pub struct SockDiag {
    socket: NlSocket,
    sequence: u32,
    buffer: Vec<u8>,
}

/// Whether the dump is finished after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More chunks follow.
    More,
    /// `NLMSG_DONE` was seen.
    Done,
}

impl SockDiag {
    /// Open and connect a sock_diag socket.
    pub fn open() -> Result<Self, SourceError> {
        let io_err = |context| move |source| SourceError::NetlinkIo { context, source };
        let mut socket = NlSocket::new(NETLINK_SOCK_DIAG).map_err(io_err("socket"))?;
        socket.bind_auto().map_err(io_err("bind"))?;
        socket
            .connect(&NlAddr::new(0, 0))
            .map_err(io_err("connect"))?;
        // A failure to enlarge the buffer only costs speed, so it is not an error.
        let _ = socket.set_rx_buf_sz(SOCKET_RCVBUF);
        Ok(SockDiag {
            socket,
            sequence: 0,
            buffer: vec![0; RECV_CHUNK],
        })
    }

    /// Dump every socket of one (protocol, family) in the selected states.
    pub fn dump(
        &mut self,
        protocol: Protocol,
        family: Family,
        states: StateSelection,
    ) -> Result<Vec<Socket>, SourceError> {
        self.dump_filtered(protocol, family, states, None)
    }

    /// Dump like [`SockDiag::dump`], with `program` (inet_diag bytecode, see
    /// [`super::bytecode`]) run by the kernel on every socket, which sends only those it
    /// accepts.
    pub fn dump_filtered(
        &mut self,
        protocol: Protocol,
        family: Family,
        states: StateSelection,
        program: Option<&[u8]>,
    ) -> Result<Vec<Socket>, SourceError> {
        let sequence = self.next_sequence();
        let request = encode_request(protocol, family, states, sequence);
        let request = match program {
            Some(program) => super::bytecode::with_program(request, program),
            None => request,
        };
        self.exchange(&request, protocol, None)
    }

    /// Dump like [`SockDiag::dump`] but return the raw reply bytes, every chunk back to back,
    /// with the sequence number used: how the test fixtures in `fixtures/netlink` are recorded.
    pub fn record(
        &mut self,
        protocol: Protocol,
        family: Family,
        states: StateSelection,
    ) -> Result<(Vec<u8>, u32), SourceError> {
        let sequence = self.next_sequence();
        let request = encode_request(protocol, family, states, sequence);
        let mut raw = Vec::new();
        self.exchange(&request, protocol, Some(&mut raw))?;
        Ok((raw, sequence))
    }

    /// The sequence number for the next request (built with [`encode_request`], possibly
    /// extended, e.g. with a kernel filter, then sent with [`SockDiag::exchange`]).
    pub fn next_sequence(&mut self) -> u32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }

    /// Send a dump request made for the current sequence number and decode every reply until
    /// `NLMSG_DONE`; with `raw`, also keep the reply bytes as received.
    pub fn exchange(
        &mut self,
        request: &[u8],
        protocol: Protocol,
        mut raw: Option<&mut Vec<u8>>,
    ) -> Result<Vec<Socket>, SourceError> {
        self.socket
            .send(request, 0)
            .map_err(|source| SourceError::NetlinkIo {
                context: "send",
                source,
            })?;
        let mut sockets = Vec::new();
        loop {
            let len = self.recv_chunk()?;
            let chunk = &self.buffer[..len];
            if let Some(raw) = raw.as_deref_mut() {
                raw.extend_from_slice(chunk);
            }
            if decode_chunk(chunk, self.sequence, protocol, &mut sockets)? == Progress::Done {
                return Ok(sockets);
            }
        }
    }

    fn recv_chunk(&mut self) -> Result<usize, SourceError> {
        loop {
            match self.socket.recv(&mut &mut self.buffer[..], 0) {
                Ok(0) => {
                    return Err(SourceError::NetlinkDecode(
                        "the kernel closed the dump before NLMSG_DONE".into(),
                    ));
                }
                Ok(len) => return Ok(len),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(SourceError::NetlinkIo {
                        context: "recv",
                        source,
                    });
                }
            }
        }
    }
}

/// The request bytes for one dump.
pub fn encode_request(
    protocol: Protocol,
    family: Family,
    states: StateSelection,
    sequence: u32,
) -> Vec<u8> {
    let (af, socket_id) = match family {
        Family::Ipv4 => (AF_INET, SocketId::new_v4()),
        Family::Ipv6 => (AF_INET6, SocketId::new_v6()),
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = sequence;
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: af,
            protocol: match protocol {
                Protocol::Tcp => IPPROTO_TCP,
                Protocol::Udp => IPPROTO_UDP,
            },
            extensions: ExtensionFlags::empty(),
            states: state_flags(protocol, states),
            socket_id,
        })
        .into(),
    );
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

fn state_flags(protocol: Protocol, states: StateSelection) -> StateFlags {
    match (states, protocol) {
        (StateSelection::All, _) => StateFlags::all(),
        (StateSelection::Listening, Protocol::Tcp) => StateFlags::LISTEN,
        (StateSelection::Listening, Protocol::Udp) => StateFlags::CLOSE,
    }
}

/// Decode one `recv` worth of reply messages, appending sockets to `out`.
///
/// Messages whose sequence number is not `sequence` belong to another request and are an
/// error: reading them as ours would mix tables.
pub fn decode_chunk(
    mut chunk: &[u8],
    sequence: u32,
    protocol: Protocol,
    out: &mut Vec<Socket>,
) -> Result<Progress, SourceError> {
    while !chunk.is_empty() {
        let message = NetlinkMessage::<SockDiagMessage>::deserialize(chunk)
            .map_err(|e| SourceError::NetlinkDecode(e.to_string()))?;
        let len = message.header.length as usize;
        if len == 0 || len > chunk.len() {
            return Err(SourceError::NetlinkDecode(format!(
                "message length {len} does not fit the {} bytes received",
                chunk.len()
            )));
        }
        if message.header.sequence_number != sequence {
            return Err(SourceError::NetlinkDecode(format!(
                "reply has sequence number {}, expected {sequence}",
                message.header.sequence_number
            )));
        }
        if handle_payload(message.payload, protocol, out)? == Progress::Done {
            return Ok(Progress::Done);
        }
        // Messages are 4-byte aligned within a chunk.
        chunk = chunk.get(align4(len)..).unwrap_or_default();
    }
    Ok(Progress::More)
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn handle_payload(
    payload: NetlinkPayload<SockDiagMessage>,
    protocol: Protocol,
    out: &mut Vec<Socket>,
) -> Result<Progress, SourceError> {
    match payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
            out.push(socket_from_response(&response, protocol));
            Ok(Progress::More)
        }
        NetlinkPayload::Done(done) if done.code < 0 => Err(refused(done.code)),
        NetlinkPayload::Done(_) => Ok(Progress::Done),
        NetlinkPayload::Error(error) => match error.code {
            Some(code) => Err(refused(code.get())),
            // An ACK carries no error; a dump does not normally send one.
            None => Ok(Progress::More),
        },
        NetlinkPayload::Overrun(_) => Err(SourceError::NetlinkDecode(
            "the kernel reported a buffer overrun".into(),
        )),
        NetlinkPayload::Noop | NetlinkPayload::InnerMessage(_) => Ok(Progress::More),
        // The payload enum is non-exhaustive in newer versions; anything unknown is skipped.
        #[allow(unreachable_patterns)]
        _ => Ok(Progress::More),
    }
}

/// The kernel's error code (negative errno) as a [`SourceError`] with a hint.
fn refused(code: i32) -> SourceError {
    let errno = code.saturating_abs();
    let hint = match errno {
        libc::ENOENT => {
            " (the kernel has no sock_diag handler for this protocol: load it with `modprobe tcp_diag` or `modprobe udp_diag`)"
        }
        libc::EPERM | libc::EACCES => " (netlink is not permitted here, e.g. by a sandbox)",
        _ => "",
    };
    SourceError::NetlinkRefused {
        source: io::Error::from_raw_os_error(errno),
        hint,
    }
}

/// Convert one sock_diag response into the model.
pub fn socket_from_response(response: &InetResponse, protocol: Protocol) -> Socket {
    let header = &response.header;
    let id = &header.socket_id;
    let family = match id.source_address {
        IpAddr::V4(_) => Family::Ipv4,
        IpAddr::V6(_) => Family::Ipv6,
    };
    let v6only = response.nlas.iter().find_map(|nla| match nla {
        Nla::SkV6Only(flag) => Some(*flag),
        _ => None,
    });
    Socket {
        protocol,
        family,
        cgroup_id: cgroup_id(&response.nlas),
        local_addr: id.source_address,
        local_port: id.source_port,
        remote_addr: id.destination_address,
        remote_port: id.destination_port,
        state: SocketState(header.state),
        recv_q: header.recv_queue,
        send_q: Some(header.send_queue),
        uid: header.uid,
        inode: u64::from(header.inode),
        v6only: if family == Family::Ipv6 { v6only } else { None },
        device: match id.interface_id {
            0 => DeviceBinding::Unbound,
            index => DeviceBinding::Device { index, name: None },
        },
        source: SourceKind::Netlink,
        netns: None,
    }
}

/// `INET_DIAG_CGROUP_ID` (linux/inet_diag.h): the cgroup v2 id of the socket's cgroup, which
/// the kernel (5.7 and later, with `CONFIG_SOCK_CGROUP_DATA`) adds to every inet reply
/// unasked. `netlink-packet-sock-diag` 0.5 does not name it, so it arrives as `Nla::Other`.
const INET_DIAG_CGROUP_ID: u16 = 21;

/// The socket's cgroup id, when the reply carries a well-formed one (8 bytes, host order, not
/// 0).
fn cgroup_id(nlas: &[Nla]) -> Option<NonZeroU64> {
    nlas.iter().find_map(|nla| match nla {
        Nla::Other(other) if other.kind() == INET_DIAG_CGROUP_ID && other.value_len() == 8 => {
            let mut value = [0u8; 8];
            other.emit_value(&mut value);
            NonZeroU64::new(u64::from_ne_bytes(value))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A recorded reply: 4 bytes of little-endian sequence number, then the kernel's bytes.
    fn recorded(name: &str, protocol: Protocol) -> Result<Vec<Socket>, SourceError> {
        let path = format!("{}/fixtures/netlink/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        let sequence = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let mut sockets = Vec::new();
        let progress = decode_chunk(&bytes[4..], sequence, protocol, &mut sockets)?;
        assert_eq!(
            progress,
            Progress::Done,
            "recording must end with NLMSG_DONE"
        );
        Ok(sockets)
    }

    fn summary(
        sockets: &[Socket],
    ) -> Vec<(IpAddr, u16, &'static str, Option<bool>, DeviceBinding)> {
        sockets
            .iter()
            .map(|s| {
                let state = s.state.label(s.protocol);
                (
                    s.local_addr,
                    s.local_port,
                    state,
                    s.v6only,
                    s.device.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn recorded_tcp4_listeners_decode_exactly() {
        let sockets = recorded("tcp4-listen.bin", Protocol::Tcp).unwrap();
        let mut got = summary(&sockets);
        got.sort_by_key(|s| s.1);
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            got,
            vec![
                (lo, 631, "LISTEN", None, DeviceBinding::Unbound),
                (any, 2222, "LISTEN", None, DeviceBinding::Unbound),
            ]
        );
        // Listener queues: backlog 77 in Send-Q, one connection waiting to be accepted.
        let ipp = sockets.iter().find(|s| s.local_port == 631).unwrap();
        assert_eq!((ipp.recv_q, ipp.send_q), (1, Some(77)));
        assert!(sockets.iter().all(|s| s.inode != 0 && s.uid == 0));
        assert!(sockets.iter().all(|s| s.source == SourceKind::Netlink));
    }

    #[test]
    fn recorded_tcp4_all_states_include_both_ends_of_a_connection() {
        let sockets = recorded("tcp4-all.bin", Protocol::Tcp).unwrap();
        let established: Vec<_> = sockets
            .iter()
            .filter(|s| s.state == SocketState::ESTABLISHED)
            .collect();
        assert_eq!(established.len(), 2);
        // The server end not yet accepted has no file: inode 0.
        let server = established.iter().find(|s| s.local_port == 631).unwrap();
        assert_eq!(server.inode, 0);
        let client = established.iter().find(|s| s.remote_port == 631).unwrap();
        assert_ne!(client.inode, 0);
        assert_eq!(client.remote_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn recorded_tcp6_tells_dual_stack_from_v6_only() {
        let sockets = recorded("tcp6-listen.bin", Protocol::Tcp).unwrap();
        let mut got = summary(&sockets);
        got.sort_by_key(|s| s.1);
        let any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert_eq!(
            got,
            vec![
                (any, 22, "LISTEN", Some(false), DeviceBinding::Unbound),
                (any, 80, "LISTEN", Some(true), DeviceBinding::Unbound),
            ]
        );
        assert!(sockets.iter().all(|s| s.family == Family::Ipv6));
    }

    #[test]
    fn recorded_udp_shows_device_binding_and_unconn() {
        let v4 = recorded("udp4-listen.bin", Protocol::Udp).unwrap();
        let lo_index = DeviceBinding::Device {
            index: 1,
            name: None,
        };
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert_eq!(summary(&v4), vec![(any, 53, "UNCONN", None, lo_index)]);
        let v6 = recorded("udp6-listen.bin", Protocol::Udp).unwrap();
        let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(
            summary(&v6),
            vec![(lo6, 5353, "UNCONN", Some(true), DeviceBinding::Unbound)]
        );
    }

    #[test]
    fn reply_with_another_sequence_number_is_rejected() {
        let path = format!(
            "{}/fixtures/netlink/tcp4-listen.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(path).unwrap();
        let sequence = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let mut sockets = Vec::new();
        let result = decode_chunk(&bytes[4..], sequence + 1, Protocol::Tcp, &mut sockets);
        assert!(matches!(result, Err(SourceError::NetlinkDecode(m)) if m.contains("sequence")));
    }

    /// An nlmsghdr of `kind` carrying `code` (and, for NLMSG_ERROR, the request's header).
    fn control_message(kind: u16, code: i32, sequence: u32) -> Vec<u8> {
        let extra = if kind == 2 { 16 } else { 0 };
        let len = 16 + 4 + extra;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(len as u32).to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&2u16.to_ne_bytes()); // NLM_F_MULTI
        bytes.extend_from_slice(&sequence.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        bytes.extend_from_slice(&code.to_ne_bytes());
        bytes.resize(len, 0);
        bytes
    }

    #[test]
    fn error_inside_done_is_an_error_not_an_empty_table() {
        // How the kernel answers a dump for a protocol whose diag module is missing.
        let done = control_message(3, -libc::ENOENT, 7);
        let mut sockets = Vec::new();
        let err = decode_chunk(&done, 7, Protocol::Udp, &mut sockets).unwrap_err();
        assert!(matches!(err, SourceError::NetlinkRefused { .. }));
        assert!(err.to_string().contains("modprobe"), "{err}");
    }

    #[test]
    fn nlmsg_error_is_an_error() {
        let error = control_message(2, -libc::EPERM, 9);
        let mut sockets = Vec::new();
        let err = decode_chunk(&error, 9, Protocol::Tcp, &mut sockets).unwrap_err();
        assert!(matches!(err, SourceError::NetlinkRefused { .. }), "{err}");
    }

    #[test]
    fn clean_done_ends_the_dump() {
        let done = control_message(3, 0, 1);
        let mut sockets = Vec::new();
        assert_eq!(
            decode_chunk(&done, 1, Protocol::Tcp, &mut sockets).unwrap(),
            Progress::Done
        );
        assert!(sockets.is_empty());
    }

    #[test]
    fn truncated_and_garbage_replies_are_errors_not_panics() {
        let path = format!(
            "{}/fixtures/netlink/tcp4-all.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(path).unwrap();
        let sequence = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let reply = &bytes[4..];
        for cut in [1, 15, 16, 40, 100, reply.len() - 5] {
            let mut sockets = Vec::new();
            let result = decode_chunk(&reply[..cut], sequence, Protocol::Tcp, &mut sockets);
            assert!(!matches!(result, Ok(Progress::Done)), "cut at {cut}");
        }
        let mut sockets = Vec::new();
        assert!(decode_chunk(&[0xff; 64], sequence, Protocol::Tcp, &mut sockets).is_err());
    }

    #[test]
    fn request_asks_the_kernel_for_listeners_only() {
        let request = encode_request(Protocol::Tcp, Family::Ipv4, StateSelection::Listening, 5);
        // nlmsghdr (16) + inet_diag_req_v2: family, protocol, ext, pad, states (u32).
        assert_eq!(request[16], AF_INET);
        assert_eq!(request[17], IPPROTO_TCP);
        let states = u32::from_ne_bytes(request[20..24].try_into().unwrap());
        assert_eq!(states, 1 << 10);
        let udp = encode_request(Protocol::Udp, Family::Ipv6, StateSelection::Listening, 5);
        assert_eq!(u32::from_ne_bytes(udp[20..24].try_into().unwrap()), 1 << 7);
        assert_eq!(u32::from_ne_bytes(udp[8..12].try_into().unwrap()), 5);
    }

    #[test]
    fn the_sockets_cgroup_id_is_read_from_its_attribute_and_a_malformed_one_is_ignored() {
        use netlink_packet_core::DefaultNla;
        let id: u64 = 0x0102_0304_0506_0708;
        let attr = |kind, value: Vec<u8>| Nla::Other(DefaultNla::new(kind, value));
        let nlas = vec![Nla::SkV6Only(true), attr(21, id.to_ne_bytes().to_vec())];
        assert_eq!(cgroup_id(&nlas), NonZeroU64::new(id));
        // No cgroup has id 0: a zero is no id.
        assert_eq!(cgroup_id(&[attr(21, 0u64.to_ne_bytes().to_vec())]), None);
        // Another unknown attribute of the same size, or a short value, is not a cgroup id.
        assert_eq!(cgroup_id(&[attr(22, id.to_ne_bytes().to_vec())]), None);
        assert_eq!(cgroup_id(&[attr(21, vec![1, 2, 3, 4])]), None);
        assert_eq!(cgroup_id(&[]), None);
    }
}
