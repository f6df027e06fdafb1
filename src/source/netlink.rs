//! Sockets from the kernel over `NETLINK_SOCK_DIAG`: one dump per (family, protocol), with the
//! state filter in the request so the kernel only sends what will be shown.
//!
//! The reply decoder ([`decode_chunk`]) is separate from the socket I/O so that recorded kernel
//! replies can be tested offline. Errors are never swallowed: an `NLMSG_ERROR`, or a negative code
//! inside `NLMSG_DONE` (how the kernel reports a missing `udp_diag` module), is an error, not an
//! empty table, so the caller can fall back to `/proc/net`.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP},
    inet::{ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags, nlas::Nla},
};
use netlink_sys::{Socket as NlSocket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};

use crate::error::SourceError;
use crate::model::{DeviceBinding, Family, Protocol, Socket, SocketState, SourceKind};

/// Receive buffer per `recv`: the kernel sizes dump chunks to the reader's buffer, up to 32 KiB
/// per skb; a smaller buffer would truncate messages.
const RECV_CHUNK: usize = 64 * 1024;
/// Socket receive buffer, so a large dump is not throttled by a small default `SO_RCVBUF`.
const SOCKET_RCVBUF: usize = 1024 * 1024;

/// Which sockets a dump asks the kernel for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSelection {
    /// TCP LISTEN, or UDP bound-and-unconnected (`TCP_CLOSE`).
    Listening,
    /// Every state.
    All,
}

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
        self.sequence = self.sequence.wrapping_add(1);
        let request = encode_request(protocol, family, states, self.sequence);
        self.socket
            .send(&request, 0)
            .map_err(|source| SourceError::NetlinkIo {
                context: "send",
                source,
            })?;
        let mut sockets = Vec::new();
        loop {
            let len = self.recv_chunk()?;
            let chunk = &self.buffer[..len];
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
    }
}
