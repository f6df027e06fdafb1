//! Writing `/proc/net` tables in the kernel's layout: the inverse of the parser.
//!
//! lsports never writes these for users; they exist so that tests can state "what the kernel
//! would print for these sockets" and check that parsing it gives the sockets back, and so that
//! hand-written fixtures can start from exact kernel rows rather than retyped ones.
//!
//! Column widths follow the kernel's `seq_printf` formats (see the parent module); the columns
//! lsports does not read (timers, retransmits, refcount, pointer, …) are written as an idle
//! socket would show them.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::ByteOrder;
use crate::model::{Family, Protocol, Socket};

/// Width tcp rows and the tcp header are padded to (`seq_setwidth(seq, TMPSZ - 1)`, TMPSZ 150).
const TCP4_WIDTH: usize = 149;
/// Width of udp rows and header (`%-127s`).
const UDP4_WIDTH: usize = 127;

/// The header line the kernel writes for a table, without its newline.
pub fn header(protocol: Protocol, family: Family) -> String {
    let v4 = "local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
    let v6 = "local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
    match (protocol, family) {
        (Protocol::Tcp, Family::Ipv4) => format!("{:<TCP4_WIDTH$}", format!("  sl  {v4}")),
        (Protocol::Tcp, Family::Ipv6) => format!("  sl  {v6}"),
        (Protocol::Udp, Family::Ipv4) => {
            format!("{:<UDP4_WIDTH$}", format!("   sl  {v4} ref pointer drops"))
        }
        (Protocol::Udp, Family::Ipv6) => format!("  sl  {v6} ref pointer drops"),
    }
}

/// The whole table for `sockets`, header first, one row per socket, every line ending in
/// `\n`, with addresses written as a host of byte order `order` would.
///
/// Sockets whose address family is not `family` cannot be written in this table; they are
/// written with the unspecified address of `family` instead, which a round-trip test will
/// notice.
pub fn format_table(
    sockets: &[Socket],
    protocol: Protocol,
    family: Family,
    order: ByteOrder,
) -> String {
    let mut out = header(protocol, family);
    out.push('\n');
    for (slot, socket) in sockets.iter().enumerate() {
        out.push_str(&format_row(slot, socket, protocol, family, order));
        out.push('\n');
    }
    out
}

/// One data row, without its newline.
pub fn format_row(
    slot: usize,
    socket: &Socket,
    protocol: Protocol,
    family: Family,
    order: ByteOrder,
) -> String {
    let local = endpoint(socket.local_addr, socket.local_port, family, order);
    let remote = endpoint(socket.remote_addr, socket.remote_port, family, order);
    // A TCP listener's tx_queue is always 0 in the table (the backlog is not there).
    let tx = socket.send_q.unwrap_or(0);
    let mut row = match protocol {
        Protocol::Tcp => format!("{slot:4}: "),
        Protocol::Udp => format!("{slot:5}: "),
    };
    let _ = write!(
        row,
        "{local} {remote} {:02X} {tx:08X}:{:08X} 00:00000000 00000000 {:5} {:8} {}",
        socket.state.0, socket.recv_q, socket.uid, 0, socket.inode
    );
    // The trailing columns: refcount and a hashed pointer, then tcp's timers and window, or
    // udp's drop counter.
    match protocol {
        Protocol::Tcp => row.push_str(" 1 0000000000000000 100 0 0 10 0"),
        Protocol::Udp => row.push_str(" 2 0000000000000000 0"),
    }
    let width = match (protocol, family) {
        (Protocol::Tcp, Family::Ipv4) => TCP4_WIDTH,
        (Protocol::Udp, Family::Ipv4) => UDP4_WIDTH,
        _ => 0,
    };
    format!("{row:<width$}")
}

/// `ADDR:PORT` as `%08X` words in the writer's memory order and a `%04X` port.
fn endpoint(addr: IpAddr, port: u16, family: Family, order: ByteOrder) -> String {
    let bytes: Vec<u8> = match (family, addr) {
        (Family::Ipv4, IpAddr::V4(a)) => a.octets().to_vec(),
        (Family::Ipv6, IpAddr::V6(a)) => a.octets().to_vec(),
        (Family::Ipv4, _) => vec![0; 4],
        (Family::Ipv6, _) => vec![0; 16],
    };
    let mut text = String::with_capacity(38);
    for word in bytes.chunks_exact(4) {
        let word: [u8; 4] = [word[0], word[1], word[2], word[3]];
        let _ = write!(text, "{:08X}", order.word_from_bytes(word));
    }
    let _ = write!(text, ":{port:04X}");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceBinding, SocketState, SourceKind};
    use crate::source::procnet::parse_table;

    fn socket(protocol: Protocol, local: &str, port: u16, state: SocketState) -> Socket {
        let addr: IpAddr = local.parse().unwrap();
        let family = if addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        let unspecified: IpAddr = if addr.is_ipv4() {
            "0.0.0.0".parse().unwrap()
        } else {
            "::".parse().unwrap()
        };
        Socket {
            protocol,
            family,
            local_addr: addr,
            local_port: port,
            remote_addr: unspecified,
            remote_port: 0,
            state,
            recv_q: 0,
            send_q: None,
            uid: 0,
            inode: 5666,
            v6only: None,
            device: DeviceBinding::Unknown,
            source: SourceKind::Proc,
            cgroup_id: None,
            netns: None,
        }
    }

    #[test]
    fn rows_match_what_the_kernel_wrote() {
        let captured = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/proc-net/edge/tcp-truncated"
        ))
        .unwrap();
        let ssh = socket(Protocol::Tcp, "127.0.0.1", 22, SocketState::LISTEN);
        let mut ssh = ssh;
        ssh.inode = 1000;
        let row = format_row(0, &ssh, Protocol::Tcp, Family::Ipv4, ByteOrder::Little);
        // The hand-written fixture was copied from a real row with a zeroed pointer.
        assert!(captured.lines().nth(1).unwrap().starts_with(row.trim_end()));
    }

    #[test]
    fn header_widths_are_the_kernels() {
        assert_eq!(header(Protocol::Tcp, Family::Ipv4).len(), TCP4_WIDTH);
        assert_eq!(header(Protocol::Udp, Family::Ipv4).len(), UDP4_WIDTH);
        assert!(header(Protocol::Udp, Family::Ipv6).ends_with("ref pointer drops"));
    }

    #[test]
    fn formatted_tables_parse_back() {
        for (protocol, local, state) in [
            (Protocol::Tcp, "::ffff:127.0.0.1", SocketState::LISTEN),
            (Protocol::Udp, "fe80::1", SocketState::CLOSE),
            (Protocol::Tcp, "10.1.2.3", SocketState::TIME_WAIT),
        ] {
            let mut s = socket(protocol, local, 443, state);
            if state != SocketState::LISTEN || protocol == Protocol::Udp {
                s.send_q = Some(7);
            }
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let text = format_table(std::slice::from_ref(&s), protocol, s.family, order);
                let parsed = parse_table(text.as_bytes(), protocol, s.family, order, "t");
                assert_eq!(parsed.warnings, vec![], "{text}");
                assert_eq!(parsed.sockets, vec![s.clone()], "{text}");
            }
        }
    }
}
