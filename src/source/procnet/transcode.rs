//! Rewriting a table saved on a host of the other byte order into this host's order.
//!
//! A snapshot from an s390x host holds `7F000001` where an x86 host writes `0100007F` for
//! 127.0.0.1 (see [`ByteOrder`]). Rather than carry the writer's byte order through every
//! reader, a snapshot's tables are rewritten once, when it is opened, into what this host's
//! kernel would have printed; after that they are read like the live `/proc`.
//!
//! Only the two address columns change, and only where they have exactly the shape the kernel
//! writes; every other byte (padding, line ends, malformed rows) is kept, so the parser still
//! sees, and warns about, exactly what was captured.

use super::ByteOrder;

/// `table` as a host of byte order `to` would have written it, given that a host of order
/// `from` did. Returns the input unchanged when the orders agree.
pub fn transcode(table: &[u8], from: ByteOrder, to: ByteOrder) -> Vec<u8> {
    if from == to {
        return table.to_vec();
    }
    let mut out = Vec::with_capacity(table.len());
    for line in table.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(&swap_line(line));
    }
    out
}

/// Swap the address words of the second and third whitespace-separated columns of one line.
fn swap_line(line: &[u8]) -> Vec<u8> {
    let mut line = line.to_vec();
    for (column, (start, end)) in columns(&line).into_iter().enumerate().take(3) {
        if column >= 1 {
            swap_endpoint(&mut line[start..end]);
        }
    }
    line
}

/// Byte ranges of the first three columns (the slot, local and remote endpoints).
fn columns(line: &[u8]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::with_capacity(3);
    let mut start = None;
    for (index, &byte) in line.iter().enumerate() {
        match (byte.is_ascii_whitespace(), start) {
            (false, None) => start = Some(index),
            (true, Some(s)) => {
                ranges.push((s, index));
                start = None;
                if ranges.len() == 3 {
                    return ranges;
                }
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        ranges.push((s, line.len()));
    }
    ranges
}

/// `ADDR:PORT` with ADDR of 8 or 32 hex digits: reverse the byte pairs within each 8-digit
/// word. Anything else is left for the parser to reject.
fn swap_endpoint(endpoint: &mut [u8]) {
    let Some(colon) = endpoint.iter().position(|&b| b == b':') else {
        return;
    };
    let address = &mut endpoint[..colon];
    if !matches!(address.len(), 8 | 32) || !address.iter().all(u8::is_ascii_hexdigit) {
        return;
    }
    for word in address.chunks_exact_mut(8) {
        let pairs: Vec<[u8; 2]> = word.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        for (slot, pair) in word.chunks_exact_mut(2).zip(pairs.iter().rev()) {
            slot.copy_from_slice(pair);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Protocol};
    use crate::source::procnet::parse_table;

    const EDGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc-net/edge");

    #[test]
    fn big_endian_table_reads_natively_after_transcoding() {
        for (name, family) in [
            ("tcp-big-endian", Family::Ipv4),
            ("tcp6-big-endian", Family::Ipv6),
        ] {
            let big = std::fs::read(format!("{EDGE}/{name}")).unwrap();
            let want = parse_table(&big[..], Protocol::Tcp, family, ByteOrder::Big, "t");
            let little = transcode(&big, ByteOrder::Big, ByteOrder::Little);
            let got = parse_table(&little[..], Protocol::Tcp, family, ByteOrder::Little, "t");
            assert_eq!(got, want);
            assert!(!got.sockets.is_empty());
        }
    }

    #[test]
    fn only_address_words_change() {
        let row = b"   0: 0100007F:0016 0A0B0C0D:0050 0A 00000001:00000002 00:00000000 00000000  1000 0 7   \r\n";
        let swapped = transcode(row, ByteOrder::Little, ByteOrder::Big);
        let want = b"   0: 7F000001:0016 0D0C0B0A:0050 0A 00000001:00000002 00:00000000 00000000  1000 0 7   \r\n";
        assert_eq!(swapped, want.to_vec());
        assert_eq!(transcode(&swapped, ByteOrder::Big, ByteOrder::Little), row);
    }

    #[test]
    fn same_order_and_malformed_input_are_kept() {
        let odd = b"sl x\n0: 0100007G:0016 zz\n\xff\xfe:\n0: 12:34";
        assert_eq!(transcode(odd, ByteOrder::Little, ByteOrder::Big), odd);
        assert_eq!(transcode(odd, ByteOrder::Big, ByteOrder::Big), odd);
    }
}
