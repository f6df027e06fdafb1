//! Property tests, run by plain `cargo test`: the parsers of untrusted input take arbitrary
//! bytes without panicking, and valid tables round-trip: render(parse(format(x))) is
//! render(x). The fuzz targets under fuzz/ explore the same parsers for longer.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use lsports::model::{
    DeviceBinding, Entry, Family, OwnerUnknownReason, Protocol, Socket, SocketState, SourceKind,
};
use lsports::process::{fdscan, info};
use lsports::render::{Labels, json::write_json};
use lsports::snapshot::{self, layout};
use lsports::source::netlink;
use lsports::source::procnet::{self, ByteOrder, transcode::transcode};
use proptest::prelude::*;

fn protocols() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)]
}

fn families() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)]
}

fn orders() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Little), Just(ByteOrder::Big)]
}

fn address(family: Family) -> BoxedStrategy<IpAddr> {
    match family {
        Family::Ipv4 => any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .boxed(),
        Family::Ipv6 => any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .boxed(),
    }
}

/// A socket as a `/proc/net` table can describe it: no v6only, device or TCP backlog.
fn proc_socket(protocol: Protocol, family: Family) -> impl Strategy<Value = Socket> {
    (
        (address(family), any::<u16>(), address(family), any::<u16>()),
        (
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            move |((local, lport, remote, rport), (state, rx, tx, uid, inode))| {
                let state = SocketState(state);
                let listener = protocol == Protocol::Tcp && state == SocketState::LISTEN;
                Socket {
                    protocol,
                    family,
                    local_addr: local,
                    local_port: lport,
                    remote_addr: remote,
                    remote_port: rport,
                    state,
                    recv_q: rx,
                    send_q: (!listener).then_some(tx),
                    uid,
                    inode,
                    v6only: None,
                    device: DeviceBinding::Unknown,
                    source: SourceKind::Proc,
                    cgroup_id: None,
                    netns: None,
                }
            },
        )
}

/// A table's (protocol, family) and up to 20 sockets in it.
fn table() -> impl Strategy<Value = (Protocol, Family, Vec<Socket>)> {
    (protocols(), families()).prop_flat_map(|(protocol, family)| {
        (
            Just(protocol),
            Just(family),
            prop::collection::vec(proc_socket(protocol, family), 0..20),
        )
    })
}

fn render(sockets: &[Socket]) -> String {
    let entries: Vec<Entry> = sockets
        .iter()
        .map(|socket| Entry {
            socket: socket.clone(),
            processes: Default::default(),
            owner_unknown: Some(OwnerUnknownReason::NotFound),
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
        })
        .collect();
    let mut out = Vec::new();
    write_json(&entries, &mut Labels::numeric(), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

proptest! {
    #[test]
    fn valid_tables_round_trip((protocol, family, sockets) in table(), order in orders()) {
        let text = procnet::format_table(&sockets, protocol, family, order);
        let parsed = procnet::parse_table(text.as_bytes(), protocol, family, order, "t");
        prop_assert_eq!(&parsed.warnings, &vec![]);
        prop_assert_eq!(&parsed.sockets, &sockets);
        prop_assert_eq!(render(&parsed.sockets), render(&sockets));
    }

    #[test]
    fn tables_from_the_other_byte_order_read_the_same_after_transcoding(
        (protocol, family, sockets) in table(),
    ) {
        let big = procnet::format_table(&sockets, protocol, family, ByteOrder::Big);
        let little = transcode(big.as_bytes(), ByteOrder::Big, ByteOrder::Little);
        let parsed = procnet::parse_table(&little[..], protocol, family, ByteOrder::Little, "t");
        prop_assert_eq!(parsed.sockets, sockets);
    }

    #[test]
    fn parse_table_never_panics_on_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        protocol in protocols(),
        family in families(),
        order in orders(),
    ) {
        let lines = bytes.split(|&b| b == b'\n').count();
        let t = procnet::parse_table(&bytes[..], protocol, family, order, "fuzz");
        prop_assert!(t.sockets.len() + t.warnings.len() <= lines);
        for w in &t.warnings {
            prop_assert_eq!(w.path.as_str(), "fuzz");
            prop_assert!(w.line >= 1 && w.line <= lines);
        }
    }

    #[test]
    fn damaged_rows_are_skipped_or_parsed_never_panic(
        (protocol, family, sockets) in table(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut text = procnet::format_table(&sockets, protocol, family, ByteOrder::Little)
            .into_bytes();
        for (at, byte) in edits {
            let i = at.index(text.len());
            text[i] = byte;
        }
        let t = procnet::parse_table(&text[..], protocol, family, ByteOrder::Little, "t");
        prop_assert!(t.sockets.len() <= sockets.len() + 2);
    }

    #[test]
    fn transcoding_is_its_own_inverse(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let there = transcode(&bytes, ByteOrder::Little, ByteOrder::Big);
        prop_assert_eq!(there.len(), bytes.len());
        prop_assert_eq!(transcode(&there, ByteOrder::Big, ByteOrder::Little), bytes);
    }

    #[test]
    fn fd_links_parse_or_not_but_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = fdscan::parse_socket_link(&bytes);
    }

    #[test]
    fn socket_links_round_trip(inode in any::<u64>()) {
        let link = format!("socket:[{inode}]");
        prop_assert_eq!(fdscan::parse_socket_link(link.as_bytes()), Some(inode));
    }

    #[test]
    fn process_files_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = info::effective_uid(&bytes[..], "status");
        let _ = info::parse_comm(&bytes[..]);
        let _ = info::parse_mountinfo(&bytes[..], Path::new("/proc"));
    }

    #[test]
    fn status_uid_round_trips(uids in prop::array::uniform4(any::<u32>())) {
        let status = format!(
            "Name:\tx\nUid:\t{}\t{}\t{}\t{}\nGid:\t0\t0\t0\t0\n",
            uids[0], uids[1], uids[2], uids[3]
        );
        prop_assert_eq!(info::effective_uid(status.as_bytes(), "s"), Ok(uids[1]));
    }

    #[test]
    fn netlink_replies_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        sequence in any::<u32>(),
        protocol in protocols(),
    ) {
        let mut sockets = Vec::new();
        let _ = netlink::decode_chunk(&bytes, sequence, protocol, &mut sockets);
    }

    #[test]
    fn archive_names_that_are_accepted_stay_inside(name in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(kind) = layout::classify(&name) {
            if kind != layout::EntryKind::Unknown {
                prop_assert!(!name.starts_with(b"/"));
                prop_assert!(!name.split(|&b| b == b'/').any(|c| c == b".."));
            }
        }
    }
}

proptest! {
    // Each case unpacks into a temporary directory: fewer cases, still every run.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn snapshot_open_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = snapshot::open_reader(&bytes[..], Path::new("fuzz.tar"));
    }

    #[test]
    fn snapshot_open_never_panics_on_a_damaged_archive(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let root = common::fixture_root("mapped-v6");
        let mut bytes = Vec::new();
        snapshot::write_snapshot(&root, snapshot::Compression::None, &mut bytes).unwrap();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let len = cut.index(bytes.len() + 1);
        let _ = snapshot::open_reader(&bytes[..len.max(bytes.len() / 2)], Path::new("fuzz.tar"));
    }
}
