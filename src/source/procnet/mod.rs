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
//!
//! Hand-written rather than the `procfs-core` crate's `TcpNetEntries`/`UdpNetEntries`: those
//! fail the whole table on one bad row, where this parser keeps the rest and says which row, and
//! they were measured slower: a 25,000-row `tcp` table parses in 12 ms here and 19 ms through
//! procfs (1.6 times as long; `examples/procfs_compare.rs parsers`, best of five runs of 100,
//! in memory).

pub mod format;
pub mod transcode;

pub use format::format_table;

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::error::{ParseWarning, SourceError};
use crate::model::{DeviceBinding, Family, Protocol, Socket, SocketState, SourceKind};
use crate::sys::procroot::ProcRoot;

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

    /// The name used in snapshot manifests: `little` or `big`.
    pub fn name(self) -> &'static str {
        match self {
            ByteOrder::Little => "little",
            ByteOrder::Big => "big",
        }
    }

    /// The order named `name` (as [`ByteOrder::name`] writes it), if it is one.
    pub fn from_name(name: &str) -> Option<ByteOrder> {
        match name {
            "little" => Some(ByteOrder::Little),
            "big" => Some(ByteOrder::Big),
            _ => None,
        }
    }

    /// The four address bytes, in network order, that the writing host held as `word`.
    fn word_bytes(self, word: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => word.to_le_bytes(),
            ByteOrder::Big => word.to_be_bytes(),
        }
    }

    /// The word the writing host held for four address bytes in network order: the inverse
    /// of `word_bytes`.
    fn word_from_bytes(self, bytes: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Little => u32::from_le_bytes(bytes),
            ByteOrder::Big => u32::from_be_bytes(bytes),
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
/// IPv6 is disabled (Ok(empty table), not an error), but only beside a readable IPv4 table of
/// the same protocol: a kernel always writes that one, so without it the tree is not a proc
/// tree (a typo, a wrong mount, a doctored snapshot) and the IPv6 table is as unknown as the
/// IPv4 one. Any other missing or unreadable table is SourceError::ProcRead with the path.
///
/// Malformed rows and a read error part-way through are warnings in the returned table, not
/// errors: what parsed before them is still worth showing.
pub fn read_table(
    proc_root: &Path,
    protocol: Protocol,
    family: Family,
) -> Result<ParsedTable, SourceError> {
    let name = format!("net/{}", table_name(protocol, family));
    let path = proc_root.join(&name);
    let unreadable = |source| SourceError::ProcRead {
        path: path.clone(),
        source,
    };
    // Never out of the root, never blocking: a FIFO here would hang the listing forever.
    let root = ProcRoot::open(proc_root).map_err(unreadable)?;
    let reader = match open_table(&root, &name) {
        Ok(reader) => reader,
        // With `ipv6.disable=1` (or no IPv6 in the kernel) the v6 tables are simply absent;
        // that is a machine with no IPv6 sockets, not a failure worth falling back over.
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && family == Family::Ipv6
                && open_table(
                    &root,
                    &format!("net/{}", table_name(protocol, Family::Ipv4)),
                )
                .is_ok() =>
        {
            return Ok(ParsedTable::default());
        }
        Err(source) => return Err(unreadable(source)),
    };
    let label = path.display().to_string();
    let mut table = parse_table(reader, protocol, family, ByteOrder::native(), &label);
    // The kernel writes the table a buffer at a time, finding its place again in the socket
    // hash before each one: a busy host's table can repeat a row.
    super::drop_repeated(&mut table.sockets);
    Ok(table)
}

/// The table `name` of `root`, opened and its first buffer read.
///
/// A file that opens but cannot be read at all (EISDIR, EIO, a security module refusing the
/// read) gave us nothing, so it is an unreadable table, not an empty one with a warning.
fn open_table(root: &ProcRoot, name: &str) -> io::Result<BufReader<std::fs::File>> {
    // A large buffer means few read(2) calls; each one makes the kernel re-find its place in
    // the socket hash, which adds up on tables with tens of thousands of rows.
    let mut reader = BufReader::with_capacity(64 * 1024, root.open_file(name)?);
    reader.fill_buf()?;
    Ok(reader)
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
        match read_line(&mut reader, &mut line) {
            Ok(0) => break,
            Ok(_) if line.len() > MAX_LINE => {
                let problem = format!("longer than {MAX_LINE} bytes: not a row of the kernel's");
                table
                    .warnings
                    .push(RowError::new("line", problem).at(path_label, line_no));
                continue;
            }
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

/// The longest row kept: the kernel's are about 150 bytes. A copied tree's table with no
/// newline in 512 MiB is one "row", skipped as it is read, never held whole.
const MAX_LINE: usize = 4096;

/// Read one line into `line` (ending in `\n` unless the file does), keeping at most
/// [`MAX_LINE`] + 1 bytes of it: the rest of a longer line is read and dropped. The number of
/// bytes kept, 0 at the end.
fn read_line<R: BufRead>(reader: &mut R, line: &mut Vec<u8>) -> std::io::Result<usize> {
    // The common case at read_until's speed; a `Take` stops it from growing without end.
    let mut limited = std::io::Read::take(&mut *reader, MAX_LINE as u64 + 1);
    let kept = limited.read_until(b'\n', line)?;
    if line.len() <= MAX_LINE || line.ends_with(b"\n") {
        return Ok(kept);
    }
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(kept);
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(kept);
            }
            None => {
                let all = available.len();
                reader.consume(all);
            }
        }
    }
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
        cgroup_id: None,
        netns: None,
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
mod tests;
