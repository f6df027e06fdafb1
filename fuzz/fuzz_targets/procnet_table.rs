//! `/proc/net/{tcp,tcp6,udp,udp6}` parser: any bytes, every table kind and byte order; never a
//! panic, and every row either parses or becomes a warning naming its line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lsports::model::{Family, Protocol};
use lsports::source::procnet::{ByteOrder, parse_table, transcode::transcode};

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        for family in [Family::Ipv4, Family::Ipv6] {
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let table = parse_table(data, protocol, family, order, "fuzz");
                assert!(table.sockets.len() + table.warnings.len() <= lines);
            }
        }
    }
    let swapped = transcode(data, ByteOrder::Little, ByteOrder::Big);
    assert_eq!(transcode(&swapped, ByteOrder::Big, ByteOrder::Little), data);
});
