//! Parser for the kernel's text socket tables `/proc/net/{tcp,tcp6,udp,udp6}`.
//!
//! This is the fallback source for when `NETLINK_SOCK_DIAG` is unavailable, so it has to cope
//! with whatever the file holds: a table is parsed row by row, a row that does not parse becomes
//! a [`ParseWarning`] and is skipped, and nothing in the input can make it panic.
//!
//! The format is written by `get_tcp4_sock` (net/ipv4/tcp_ipv4.c), `get_tcp6_sock`
//! (net/ipv6/tcp_ipv6.c), `udp4_format_sock` (net/ipv4/udp.c) and `__ip6_dgram_sock_seq_show`
//! (net/ipv6/datagram.c); every row starts with the same ten columns:
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode …
//!    0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5666 …
//! ```

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::error::{ParseWarning, SourceError};
use crate::model::{DeviceBinding, Family, Protocol, Socket, SocketState, SourceKind};

/// Result of parsing one table: every row that parsed, and a warning per row that did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedTable {
    /// The sockets, in file order.
    pub sockets: Vec<Socket>,
    /// One warning per skipped row, plus one if reading stopped early on an I/O error.
    pub warnings: Vec<ParseWarning>,
}

/// Byte order the table's hex address words were written in (the writing kernel's native order).
///
/// The kernel prints each 32-bit word of an address with `%08X` straight from memory, where the
/// address is stored in network order; so the digits read back as a number are that number's
/// *native* representation on the writing host. Parsing a table saved on another architecture
/// needs that host's order, not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Little-endian writer (x86, most ARM and RISC-V).
    Little,
    /// Big-endian writer (s390x, some PowerPC and MIPS).
    Big,
}

impl ByteOrder {
    /// The order of the machine this code runs on, which is the right one for the live `/proc`.
    pub fn native() -> ByteOrder {
        if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        }
    }

    /// The four address bytes, in network order, that the writing host held as `word`.
    fn word_bytes(self, word: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => word.to_le_bytes(),
            ByteOrder::Big => word.to_be_bytes(),
        }
    }
}

/// The file name for a (protocol, family): "tcp", "tcp6", "udp", "udp6".
pub fn table_name(protocol: Protocol, family: Family) -> &'static str {
    match (protocol, family) {
        (Protocol::Tcp, Family::Ipv4) => "tcp",
        (Protocol::Tcp, Family::Ipv6) => "tcp6",
        (Protocol::Udp, Family::Ipv4) => "udp",
        (Protocol::Udp, Family::Ipv6) => "udp6",
    }
}

/// Read DIR/net/<table> under `proc_root` (normally "/proc"). A missing tcp6/udp6 file means
/// IPv6 is disabled: Ok(empty table), not an error. A missing or unreadable IPv4 table is
/// SourceError::ProcRead with the path.
///
/// Malformed rows and a read error part-way through are warnings in the returned table, not
/// errors: what parsed before them is still worth showing.
pub fn read_table(
    proc_root: &Path,
    protocol: Protocol,
    family: Family,
) -> Result<ParsedTable, SourceError> {
    let path = proc_root.join("net").join(table_name(protocol, family));
    let file = match File::open(&path) {
        Ok(file) => file,
        // With `ipv6.disable=1` (or no IPv6 in the kernel) the v6 tables are simply absent;
        // that is a machine with no IPv6 sockets, not a failure worth falling back over.
        Err(e) if e.kind() == io::ErrorKind::NotFound && family == Family::Ipv6 => {
            return Ok(ParsedTable::default());
        }
        Err(source) => return Err(SourceError::ProcRead { path, source }),
    };
    // A large buffer means few read(2) calls; each one makes the kernel re-find its place in
    // the socket hash, which adds up on tables with tens of thousands of rows.
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    // A file that opens but cannot be read at all (EISDIR, EIO, a security module refusing
    // the read) gave us nothing, so it is an unreadable table, not an empty one with a warning.
    if let Err(source) = reader.fill_buf() {
        return Err(SourceError::ProcRead { path, source });
    }
    let label = path.display().to_string();
    Ok(parse_table(
        reader,
        protocol,
        family,
        ByteOrder::native(),
        &label,
    ))
}

/// Parse a table from any reader. `path_label` names the file in warnings.
///
/// Never fails and never panics: a row that does not parse is skipped with a warning naming
/// `path_label`, its 1-based line number and the bad field; a read error stops the parse,
/// keeps every row parsed so far and adds a warning.
pub fn parse_table<R: BufRead>(
    mut reader: R,
    protocol: Protocol,
    family: Family,
    order: ByteOrder,
    path_label: &str,
) -> ParsedTable {
    let mut table = ParsedTable::default();
    // One buffer for the whole file: rows are read as bytes (the file is not promised to be
    // UTF-8) and parsed in place, so the only allocation per row is the Socket itself.
    let mut line = Vec::with_capacity(256);
    let mut line_no = 0;
    loop {
        line.clear();
        line_no += 1;
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let problem = format!(
                    "read failed ({e}); kept the {} rows before it",
                    table.sockets.len()
                );
                table
                    .warnings
                    .push(RowError::new("line", problem).at(path_label, line_no));
                break;
            }
        }
        match parse_line(&line, line_no == 1, protocol, family, order) {
            Ok(Some(socket)) => table.sockets.push(socket),
            Ok(None) => {}
            Err(err) => table.warnings.push(err.at(path_label, line_no)),
        }
    }
    table
}

/// Columns every row must have; later ones (tcp's timers and pointer, udp's drops, anything a
/// future kernel appends) are ignored.
const REQUIRED_COLUMNS: usize = 10;
const COL_SLOT: usize = 0;
const COL_LOCAL: usize = 1;
const COL_REMOTE: usize = 2;
const COL_STATE: usize = 3;
const COL_QUEUES: usize = 4;
const COL_UID: usize = 7;
const COL_INODE: usize = 9;

/// Longest piece of a bad field quoted in a warning: enough to recognise it, short enough that
/// a garbage line cannot flood the terminal.
const QUOTE_LIMIT: usize = 40;

/// Why one row was skipped: the field at fault and what was wrong. Only built on the error
/// path, so its `String` costs nothing for good rows.
#[derive(Debug)]
struct RowError {
    field: &'static str,
    problem: String,
}

impl RowError {
    fn new(field: &'static str, problem: String) -> RowError {
        RowError { field, problem }
    }

    /// A field whose text is not what the kernel writes there.
    fn bad_value(field: &'static str, value: &str, expected: &str) -> RowError {
        RowError::new(
            field,
            format!("expected {expected}, found {}", quote(value)),
        )
    }

    fn at(self, path_label: &str, line: usize) -> ParseWarning {
        ParseWarning {
            path: path_label.to_owned(),
            line,
            field: self.field,
            problem: self.problem,
        }
    }
}

/// Parse one line: `Ok(None)` for the header or a blank line, `Ok(Some)` for a socket row.
fn parse_line(
    bytes: &[u8],
    first_line: bool,
    protocol: Protocol,
    family: Family,
    order: ByteOrder,
) -> Result<Option<Socket>, RowError> {
    // The kernel only ever writes ASCII here; anything else means the file is not what we think.
    let text = std::str::from_utf8(bytes)
        .map_err(|_| RowError::new("line", "not valid UTF-8".to_owned()))?;
    // A blank line carries no socket (the kernel never writes one, but a hand-edited copy might).
    if text.trim_ascii().is_empty() || (first_line && is_header(text)) {
        return Ok(None);
    }
    parse_row(text, protocol, family, order).map(Some)
}

/// The header is recognised by its first word rather than by position, so a table saved
/// without it still has its first row parsed.
fn is_header(text: &str) -> bool {
    text.split_ascii_whitespace().next() == Some("sl")
}

/// Parse a data row (already known not to be blank or the header) into a socket.
fn parse_row(
    text: &str,
    protocol: Protocol,
    family: Family,
    order: ByteOrder,
) -> Result<Socket, RowError> {
    // Splitting on ASCII whitespace also drops a CRLF file's '\r' and the padding tcp pads rows with.
    let (cols, more_columns) = split_columns(text)?;
    check_slot(cols[COL_SLOT])?;
    // The kernel ends every row with more columns and a newline. A file that stops right after
    // the inode digits may have cut the number itself short, and a wrong inode would be pinned
    // on the wrong process: better to skip the row.
    if !more_columns && !text.ends_with(|c: char| c.is_ascii_whitespace()) {
        return Err(RowError::new(
            "inode",
            "the file ends inside this column, so the number may be cut short".to_owned(),
        ));
    }
    let (local_addr, local_port) = parse_endpoint(cols[COL_LOCAL], family, order)
        .ok_or_else(|| bad_endpoint("local_address", cols[COL_LOCAL], family))?;
    let (remote_addr, remote_port) = parse_endpoint(cols[COL_REMOTE], family, order)
        .ok_or_else(|| bad_endpoint("rem_address", cols[COL_REMOTE], family))?;
    let state = parse_state(cols[COL_STATE])?;
    let (tx_queue, rx_queue) = parse_queues(cols[COL_QUEUES])?;
    let uid = parse_decimal(cols[COL_UID])
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| RowError::bad_value("uid", cols[COL_UID], "a decimal uid"))?;
    let inode = parse_decimal(cols[COL_INODE])
        .ok_or_else(|| RowError::bad_value("inode", cols[COL_INODE], "a decimal inode number"))?;
    Ok(Socket {
        protocol,
        family,
        local_addr,
        local_port,
        remote_addr,
        remote_port,
        state,
        recv_q: rx_queue,
        send_q: send_queue(protocol, state, tx_queue),
        uid,
        inode,
        // None of these are in the table; leave them unknown rather than guess.
        v6only: None,
        device: DeviceBinding::Unknown,
        source: SourceKind::Proc,
    })
}

/// The first [`REQUIRED_COLUMNS`] columns, without allocating, and whether any column follows
/// them. Fewer columns than that is usually a truncated last line.
fn split_columns(text: &str) -> Result<([&str; REQUIRED_COLUMNS], bool), RowError> {
    let mut cols = [""; REQUIRED_COLUMNS];
    let mut words = text.split_ascii_whitespace();
    for (found, slot) in cols.iter_mut().enumerate() {
        *slot = words.next().ok_or_else(|| {
            RowError::new(
                "line",
                format!(
                    "only {found} of the {REQUIRED_COLUMNS} required columns (truncated line?)"
                ),
            )
        })?;
    }
    Ok((cols, words.next().is_some()))
}

/// The slot column (`0:`) is not used, but checking it catches a row whose columns are shifted,
/// which would otherwise parse the remote address as the local one.
fn check_slot(slot: &str) -> Result<(), RowError> {
    let number = slot.strip_suffix(':').unwrap_or("");
    if parse_decimal(number).is_some() {
        Ok(())
    } else {
        Err(RowError::bad_value(
            "line",
            slot,
            "a row starting with a slot number like `0:`",
        ))
    }
}

fn bad_endpoint(field: &'static str, value: &str, family: Family) -> RowError {
    let expected = match family {
        Family::Ipv4 => "8 hex digits, ':' and 4 hex digits",
        Family::Ipv6 => "32 hex digits, ':' and 4 hex digits",
    };
    RowError::bad_value(field, value, expected)
}

/// `ADDR:PORT`, e.g. `0100007F:0016`. The port is printed after `ntohs`, so its digits are
/// simply its value; the address is the writer's in-memory words (see [`ByteOrder`]).
fn parse_endpoint(text: &str, family: Family, order: ByteOrder) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    // The kernel always prints `%04X`; insisting on the width catches misaligned columns.
    if port.len() != 4 {
        return None;
    }
    let port = u16::try_from(parse_hex(port.as_bytes())?).ok()?;
    let addr = match family {
        Family::Ipv4 => IpAddr::V4(parse_ipv4(addr.as_bytes(), order)?),
        // A v4-mapped address (::ffff:a.b.c.d) stays IPv6: that is how the socket was bound,
        // and whether it also takes IPv4 traffic is the v6only question /proc cannot answer.
        Family::Ipv6 => IpAddr::V6(parse_ipv6(addr.as_bytes(), order)?),
    };
    Some((addr, port))
}

/// Eight hex digits: one 32-bit word (`%08X`).
fn parse_ipv4(digits: &[u8], order: ByteOrder) -> Option<Ipv4Addr> {
    if digits.len() != 8 {
        return None;
    }
    Some(Ipv4Addr::from(order.word_bytes(parse_hex(digits)?)))
}

/// Thirty-two hex digits: four 32-bit words (`%08X%08X%08X%08X`), each in the writer's order.
fn parse_ipv6(digits: &[u8], order: ByteOrder) -> Option<Ipv6Addr> {
    if digits.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (out, word) in bytes.chunks_exact_mut(4).zip(digits.chunks_exact(8)) {
        out.copy_from_slice(&order.word_bytes(parse_hex(word)?));
    }
    Some(Ipv6Addr::from(bytes))
}

/// `%02X` state number, kept as a number: labels are the renderer's business.
fn parse_state(text: &str) -> Result<SocketState, RowError> {
    parse_hex(text.as_bytes())
        .and_then(|v| u8::try_from(v).ok())
        .map(SocketState)
        .ok_or_else(|| RowError::bad_value("st", text, "a hex state like `0A`"))
}

/// `tx_queue:rx_queue`, both hex.
fn parse_queues(text: &str) -> Result<(u32, u32), RowError> {
    text.split_once(':')
        .and_then(|(tx, rx)| Some((parse_hex(tx.as_bytes())?, parse_hex(rx.as_bytes())?)))
        .ok_or_else(|| RowError::bad_value("queues", text, "hex `tx_queue:rx_queue`"))
}

/// For a TCP listener the kernel prints `write_seq - snd_una` (always 0) where `ss` would show
/// the backlog limit, so the send queue is unknown; everywhere else tx_queue is the send queue.
fn send_queue(protocol: Protocol, state: SocketState, tx_queue: u32) -> Option<u32> {
    if protocol == Protocol::Tcp && state == SocketState::LISTEN {
        None
    } else {
        Some(tx_queue)
    }
}

/// 1 to 8 hex digits as a u32. Written by hand because `from_str_radix` also accepts a leading
/// `+`, which the kernel never writes; capping the length makes overflow impossible.
fn parse_hex(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &b| {
        Some((acc << 4) | char::from(b).to_digit(16)?)
    })
}

/// One or more decimal digits as a u64, `None` on overflow or any other character (including
/// the `+`/`-` signs `str::parse` would take).
fn parse_decimal(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u64, |acc, b| {
        let digit = char::from(b).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A bad field's text for a warning: cut to [`QUOTE_LIMIT`] characters, with anything but
/// printable ASCII escaped, since warnings reach a terminal and the file's content is not ours.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(QUOTE_LIMIT) + 2);
    out.push('`');
    for c in value.chars().take(QUOTE_LIMIT) {
        if c.is_ascii_graphic() && c != '`' && c != '\\' {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    if value.chars().nth(QUOTE_LIMIT).is_some() {
        out.push('…');
    }
    out.push('`');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc-net");

    /// Parse a fixture as the live kernel (little-endian x86 here) would have written it.
    fn parse_le(bytes: &[u8], protocol: Protocol, family: Family) -> ParsedTable {
        parse_table(bytes, protocol, family, ByteOrder::Little, "test")
    }

    fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{rel}")).expect("fixture exists")
    }

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    fn find(table: &ParsedTable, inode: u64) -> &Socket {
        table
            .sockets
            .iter()
            .find(|s| s.inode == inode)
            .unwrap_or_else(|| panic!("no socket with inode {inode}"))
    }

    fn local(s: &Socket) -> (IpAddr, u16) {
        (s.local_addr, s.local_port)
    }

    fn remote(s: &Socket) -> (IpAddr, u16) {
        (s.remote_addr, s.remote_port)
    }

    #[test]
    fn table_names() {
        assert_eq!(table_name(Protocol::Tcp, Family::Ipv4), "tcp");
        assert_eq!(table_name(Protocol::Tcp, Family::Ipv6), "tcp6");
        assert_eq!(table_name(Protocol::Udp, Family::Ipv4), "udp");
        assert_eq!(table_name(Protocol::Udp, Family::Ipv6), "udp6");
    }

    #[test]
    fn real_tcp_listener_on_loopback_ssh() {
        let t = parse_le(&fixture("netns-6.18/net/tcp"), Protocol::Tcp, Family::Ipv4);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.sockets.len(), 8);
        let ssh = find(&t, 5666);
        assert_eq!(local(ssh), (v4("127.0.0.1"), 22));
        assert_eq!(remote(ssh), (v4("0.0.0.0"), 0));
        assert_eq!(ssh.state, SocketState::LISTEN);
        assert_eq!(ssh.uid, 0);
        assert_eq!(ssh.recv_q, 0);
        assert_eq!(ssh.send_q, None, "backlog is not in /proc/net/tcp");
        assert_eq!(ssh.protocol, Protocol::Tcp);
        assert_eq!(ssh.family, Family::Ipv4);
        assert_eq!(ssh.v6only, None);
        assert_eq!(ssh.device, DeviceBinding::Unknown);
        assert_eq!(ssh.source, SourceKind::Proc);
    }

    #[test]
    fn real_tcp_other_rows() {
        let t = parse_le(&fixture("netns-6.18/net/tcp"), Protocol::Tcp, Family::Ipv4);
        // 0.0.0.0:8080 with one connection completed but not yet accepted.
        let web = find(&t, 5667);
        assert_eq!(local(web), (v4("0.0.0.0"), 8080));
        assert_eq!(web.recv_q, 1);
        // A listener created by uid 1000.
        let user = find(&t, 5671);
        assert_eq!(local(user), (v4("0.0.0.0"), 3000));
        assert_eq!(user.uid, 1000);
        // Accepted side of the ssh connection, holding 12 unread bytes.
        let est = find(&t, 5674);
        assert_eq!(est.state, SocketState::ESTABLISHED);
        assert_eq!(remote(est), (v4("127.0.0.1"), 0xE2F6));
        assert_eq!((est.recv_q, est.send_q), (12, Some(0)));
    }

    #[test]
    fn real_tcp_inode_zero_rows() {
        let t = parse_le(&fixture("netns-6.18/net/tcp"), Protocol::Tcp, Family::Ipv4);
        let zero: Vec<&Socket> = t.sockets.iter().filter(|s| s.inode == 0).collect();
        assert_eq!(zero.len(), 2);
        // TIME_WAIT left by the client that closed first.
        assert_eq!(zero[0].state, SocketState::TIME_WAIT);
        assert_eq!(remote(zero[0]), (v4("127.0.0.1"), 22));
        // Completed but never accepted: a full socket that no file refers to yet.
        assert_eq!(zero[1].state, SocketState::ESTABLISHED);
        assert_eq!(local(zero[1]), (v4("127.0.0.1"), 8080));
    }

    #[test]
    fn real_tcp6_loopback_any_and_v4_mapped() {
        let t = parse_le(&fixture("netns-6.18/net/tcp6"), Protocol::Tcp, Family::Ipv6);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.sockets.len(), 7);
        assert_eq!(local(find(&t, 5668)), (v6("::1"), 631));
        assert_eq!(local(find(&t, 5669)), (v6("::"), 443));
        let mapped = find(&t, 5670);
        assert_eq!(local(mapped), (v6("::ffff:127.0.0.1"), 5432));
        assert!(mapped.local_addr.is_ipv6(), "v4-mapped stays IPv6");
        let est = find(&t, 5676);
        assert_eq!(est.state, SocketState::ESTABLISHED);
        assert_eq!(remote(est), (v6("::1"), 8443));
        let tw = t.sockets.iter().find(|s| s.inode == 0).unwrap();
        assert_eq!(tw.state, SocketState::TIME_WAIT);
        assert_eq!(remote(tw), (v6("::1"), 631));
    }

    #[test]
    fn real_udp_bound_connected_and_queued() {
        let t = parse_le(&fixture("netns-6.18/net/udp"), Protocol::Udp, Family::Ipv4);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.sockets.len(), 4);
        let dns = find(&t, 5683);
        assert_eq!(local(dns), (v4("127.0.0.1"), 53));
        assert_eq!(dns.state, SocketState(0x07));
        assert!(dns.state.is_listening(Protocol::Udp));
        assert_eq!((dns.recv_q, dns.send_q), (0x340, Some(0)));
        assert_eq!(find(&t, 5672).uid, 1000);
        let connected = find(&t, 5688);
        assert_eq!(connected.state, SocketState::ESTABLISHED);
        assert_eq!(remote(connected), (v4("127.0.0.1"), 53));
    }

    #[test]
    fn real_udp6() {
        let t = parse_le(&fixture("netns-6.18/net/udp6"), Protocol::Udp, Family::Ipv6);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.sockets.len(), 4);
        assert_eq!(local(find(&t, 5685)), (v6("::1"), 53));
        assert_eq!(local(find(&t, 5686)), (v6("::"), 123));
        assert_eq!(local(find(&t, 5687)), (v6("::ffff:127.0.0.1"), 1900));
        assert_eq!(find(&t, 5685).state, SocketState::CLOSE);
    }

    #[test]
    fn real_link_local_has_address_but_no_scope() {
        for (name, protocol, port) in [("tcp6", Protocol::Tcp, 22), ("udp6", Protocol::Udp, 546)] {
            let bytes = fixture(&format!("link-local-6.18/net/{name}"));
            let t = parse_le(&bytes, protocol, Family::Ipv6);
            assert!(t.warnings.is_empty(), "{:?}", t.warnings);
            assert_eq!(t.sockets.len(), 1);
            assert_eq!(local(&t.sockets[0]), (v6("fe80::1"), port));
        }
    }

    #[test]
    fn documented_examples() {
        let row = "   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0\n";
        let t = parse_le(row.as_bytes(), Protocol::Tcp, Family::Ipv4);
        assert_eq!(local(&t.sockets[0]), (v4("127.0.0.1"), 22));
        let any = "00000000000000000000000000000000:0000";
        for (hex, want) in [
            ("00000000000000000000000001000000", "::1"),
            ("0000000000000000FFFF00000100007F", "::ffff:127.0.0.1"),
        ] {
            let row =
                format!("0: {hex}:0016 {any} 0A 00000000:00000000 00:00000000 00000000 0 0 7\n");
            let t = parse_le(row.as_bytes(), Protocol::Tcp, Family::Ipv6);
            assert_eq!(t.sockets[0].local_addr, v6(want), "{hex}");
        }
    }

    #[test]
    fn big_endian_writer_gives_the_same_sockets() {
        let t = parse_table(
            &fixture("edge/tcp-big-endian")[..],
            Protocol::Tcp,
            Family::Ipv4,
            ByteOrder::Big,
            "be",
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(local(find(&t, 3001)), (v4("127.0.0.1"), 22));
        assert_eq!(local(find(&t, 3002)), (v4("0.0.0.0"), 8080));

        let t6 = parse_table(
            &fixture("edge/tcp6-big-endian")[..],
            Protocol::Tcp,
            Family::Ipv6,
            ByteOrder::Big,
            "be6",
        );
        assert!(t6.warnings.is_empty(), "{:?}", t6.warnings);
        assert_eq!(find(&t6, 3003).local_addr, v6("::1"));
        assert_eq!(find(&t6, 3004).local_addr, v6("::ffff:127.0.0.1"));
        assert_eq!(find(&t6, 3005).local_addr, v6("fe80::1"));
    }

    #[test]
    fn wrong_byte_order_swaps_each_word() {
        // The little-endian text read as big-endian: 0x0100007F taken at face value.
        let t = parse_table(
            &fixture("netns-6.18/net/tcp")[..],
            Protocol::Tcp,
            Family::Ipv4,
            ByteOrder::Big,
            "tcp",
        );
        assert_eq!(find(&t, 5666).local_addr, v4("1.0.0.127"));
        let t6 = parse_table(
            &fixture("netns-6.18/net/tcp6")[..],
            Protocol::Tcp,
            Family::Ipv6,
            ByteOrder::Big,
            "tcp6",
        );
        assert_eq!(find(&t6, 5668).local_addr, v6("::100:0"));
    }

    #[test]
    fn native_order_matches_target() {
        let want = if cfg!(target_endian = "little") {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        };
        assert_eq!(ByteOrder::native(), want);
    }

    #[test]
    fn very_large_inodes() {
        let t = parse_le(
            &fixture("edge/tcp-large-inode"),
            Protocol::Tcp,
            Family::Ipv4,
        );
        let inodes: Vec<u64> = t.sockets.iter().map(|s| s.inode).collect();
        assert_eq!(inodes, [u64::MAX, 4_294_967_296, 4242]);
        assert_eq!(t.warnings.len(), 1);
        assert_eq!((t.warnings[0].line, t.warnings[0].field), (4, "inode"));
    }

    #[test]
    fn extra_trailing_columns_are_ignored() {
        let t = parse_le(
            &fixture("edge/tcp-extra-column"),
            Protocol::Tcp,
            Family::Ipv4,
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.sockets.len(), 2);
        assert_eq!(local(&t.sockets[1]), (v4("0.0.0.0"), 8080));
    }

    #[test]
    fn crlf_line_ends() {
        let t = parse_le(&fixture("edge/udp-crlf"), Protocol::Udp, Family::Ipv4);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.sockets.len(), 2);
        assert_eq!(local(&t.sockets[0]), (v4("127.0.0.1"), 53));
        assert_eq!((t.sockets[1].uid, t.sockets[1].inode), (104, 7002));
    }

    #[test]
    fn truncated_last_line_is_a_warning() {
        let t = parse_le(&fixture("edge/tcp-truncated"), Protocol::Tcp, Family::Ipv4);
        assert_eq!(t.sockets.len(), 1);
        assert_eq!(t.warnings.len(), 1);
        let w = &t.warnings[0];
        assert_eq!((w.path.as_str(), w.line, w.field), ("test", 3, "line"));
        assert!(w.problem.contains("only 7 of the 10"), "{}", w.problem);
    }

    #[test]
    fn file_ending_inside_the_inode_is_a_warning() {
        let row = "0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 56";
        let t = parse_le(row.as_bytes(), Protocol::Tcp, Family::Ipv4);
        assert!(t.sockets.is_empty());
        assert_eq!(t.warnings[0].field, "inode");
        // With its newline (or any later column) the same row is complete.
        for complete in [format!("{row}\n"), format!("{row} 1")] {
            let t = parse_le(complete.as_bytes(), Protocol::Tcp, Family::Ipv4);
            assert_eq!(t.sockets[0].inode, 56, "{complete:?}");
        }
    }

    #[test]
    fn empty_file_is_an_empty_table() {
        let t = parse_le(&fixture("edge/tcp-empty"), Protocol::Tcp, Family::Ipv4);
        assert_eq!(t, ParsedTable::default());
    }

    #[test]
    fn header_only_is_an_empty_table() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        let t = parse_le(header.as_bytes(), Protocol::Tcp, Family::Ipv4);
        assert_eq!(t, ParsedTable::default());
    }

    #[test]
    fn first_line_that_is_a_row_is_parsed() {
        let t = parse_le(&fixture("edge/tcp-no-header"), Protocol::Tcp, Family::Ipv4);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let inodes: Vec<u64> = t.sockets.iter().map(|s| s.inode).collect();
        assert_eq!(inodes, [2001, 2002]);
    }

    #[test]
    fn garbage_rows_warn_and_good_rows_after_them_parse() {
        let t = parse_table(
            &fixture("edge/tcp-garbage-middle")[..],
            Protocol::Tcp,
            Family::Ipv4,
            ByteOrder::Little,
            "/proc/net/tcp",
        );
        let inodes: Vec<u64> = t.sockets.iter().map(|s| s.inode).collect();
        assert_eq!(inodes, [1001, 1008]);
        let got: Vec<(usize, &str)> = t.warnings.iter().map(|w| (w.line, w.field)).collect();
        assert_eq!(
            got,
            [
                (3, "line"),
                (4, "local_address"),
                (5, "st"),
                (6, "queues"),
                (7, "uid"),
                (8, "inode"),
                (9, "rem_address"),
            ]
        );
        assert!(t.warnings.iter().all(|w| w.path == "/proc/net/tcp"));
        let w = t.warnings[1].to_string();
        assert!(
            w.starts_with("/proc/net/tcp:4: field local_address:"),
            "{w}"
        );
        assert!(w.contains("`0100007G:0016`"), "{w}");
    }

    #[test]
    fn non_utf8_row_is_skipped() {
        let t = parse_le(&fixture("edge/tcp-non-utf8"), Protocol::Tcp, Family::Ipv4);
        let inodes: Vec<u64> = t.sockets.iter().map(|s| s.inode).collect();
        assert_eq!(inodes, [4001, 4003]);
        assert_eq!(t.warnings.len(), 1);
        assert_eq!((t.warnings[0].line, t.warnings[0].field), (3, "line"));
    }

    #[test]
    fn wrong_family_width_is_rejected() {
        // An IPv6 row fed to the IPv4 parser (and vice versa) must not produce an address.
        let v6row = fixture("link-local-6.18/net/tcp6");
        let t = parse_le(&v6row, Protocol::Tcp, Family::Ipv4);
        assert!(t.sockets.is_empty());
        assert_eq!(t.warnings[0].field, "local_address");
        let v4rows = fixture("netns-6.18/net/tcp");
        let t = parse_le(&v4rows, Protocol::Tcp, Family::Ipv6);
        assert!(t.sockets.is_empty());
        assert_eq!(t.warnings.len(), 8);
    }

    #[test]
    fn warning_text_is_escaped_and_bounded() {
        let row = "0: \u{1b}[2J\u{202e}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7\n";
        let t = parse_le(row.as_bytes(), Protocol::Tcp, Family::Ipv4);
        let problem = &t.warnings[0].problem;
        assert!(
            !problem.contains('\u{1b}') && !problem.contains('\u{202e}'),
            "{problem}"
        );
        assert!(problem.contains("\\u{1b}[2J\\u{202e}"), "{problem}");
        assert!(problem.len() < 120, "{problem}");
    }

    #[test]
    fn nasty_inputs_do_not_panic() {
        let huge_hex = format!("0: {}:0016 {}", "F".repeat(4096), "9".repeat(4096));
        let inputs: [&[u8]; 12] = [
            b"\n",
            b"\xff\xfe",
            b"\xff\xfe\n0: 0100007F:0016",
            b"sl",
            b"sl\nsl\n",
            b"\r\n\r\n",
            b"0: :",
            b"0: 0100007F:FFFFF 00000000:0000 0A 0:0 0 0 0 0 0\n",
            b"0: 0100007F:0016 00000000:0000 100 0:0 0 0 0 0 0\n",
            b"0: 0100007F:0016 00000000:0000 0A 1FFFFFFFF:0 0 0 0 0 0\n",
            b"0: 0100007F:0016 00000000:0000 0A 0:0 0 0 99999999999 0 99999999999999999999999\n",
            huge_hex.as_bytes(),
        ];
        for input in inputs {
            for family in [Family::Ipv4, Family::Ipv6] {
                let t = parse_le(input, Protocol::Tcp, family);
                assert!(t.sockets.is_empty(), "{input:?}");
            }
        }
        // Multi-byte UTF-8 where hex digits should be: length checks are on bytes, never slices.
        let t = parse_le(
            "0: ééééééééééééééééééééééééééééééé:0016".as_bytes(),
            Protocol::Tcp,
            Family::Ipv6,
        );
        assert!(t.sockets.is_empty());
        // Every byte value, in lines of one kind of byte each.
        let all: Vec<u8> = (0..=255u8).flat_map(|b| [b, b, b, b'\n']).collect();
        let _ = parse_le(&all, Protocol::Udp, Family::Ipv6);
    }

    #[test]
    fn read_error_keeps_rows_before_it() {
        /// Hands out `good`, then fails.
        struct FailAfter<'a> {
            good: &'a [u8],
        }
        impl io::Read for FailAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.good.is_empty() {
                    return Err(io::Error::other("device went away"));
                }
                let n = self.good.len().min(buf.len());
                buf[..n].copy_from_slice(&self.good[..n]);
                self.good = &self.good[n..];
                Ok(n)
            }
        }
        let data = fixture("netns-6.18/net/udp");
        let reader = BufReader::new(FailAfter { good: &data });
        let t = parse_table(
            reader,
            Protocol::Udp,
            Family::Ipv4,
            ByteOrder::Little,
            "udp",
        );
        assert_eq!(t.sockets.len(), 4);
        assert_eq!(t.warnings.len(), 1);
        let w = &t.warnings[0];
        assert_eq!((w.line, w.field), (6, "line"));
        assert!(w.problem.contains("device went away"), "{}", w.problem);
    }

    #[test]
    fn read_table_from_a_proc_root() {
        let root = Path::new(FIXTURES).join("netns-6.18");
        let t = read_table(&root, Protocol::Tcp, Family::Ipv4).unwrap();
        assert_eq!(t.sockets.len(), 8);
        assert_eq!(local(find(&t, 5666)), (v4("127.0.0.1"), 22));
        let t = read_table(&root, Protocol::Udp, Family::Ipv6).unwrap();
        assert_eq!(t.sockets.len(), 4);
    }

    #[test]
    fn read_table_warnings_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("net")).unwrap();
        std::fs::write(dir.path().join("net/udp"), "garbage\n").unwrap();
        let t = read_table(dir.path(), Protocol::Udp, Family::Ipv4).unwrap();
        let want = dir.path().join("net/udp").display().to_string();
        assert_eq!(t.warnings[0].path, want);
        assert_eq!(t.warnings[0].line, 1);
    }

    #[test]
    fn missing_ipv6_table_means_ipv6_disabled() {
        let dir = tempfile::tempdir().unwrap();
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            let t = read_table(dir.path(), protocol, Family::Ipv6).unwrap();
            assert_eq!(t, ParsedTable::default());
        }
    }

    #[test]
    fn missing_ipv4_table_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_table(dir.path(), Protocol::Tcp, Family::Ipv4).unwrap_err();
        let want = dir.path().join("net/tcp");
        match &err {
            SourceError::ProcRead { path, source } => {
                assert_eq!(path, &want);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains(&*want.to_string_lossy()), "{err}");
    }

    #[test]
    fn unreadable_ipv6_table_is_still_an_error() {
        // A directory where the file should be opens but cannot be read: not "IPv6 disabled".
        let dir = tempfile::tempdir().unwrap();
        let want = dir.path().join("net/tcp6");
        std::fs::create_dir_all(&want).unwrap();
        match read_table(dir.path(), Protocol::Tcp, Family::Ipv6) {
            Err(SourceError::ProcRead { path, .. }) => assert_eq!(path, want),
            other => panic!("expected ProcRead, got {other:?}"),
        }
    }
}
