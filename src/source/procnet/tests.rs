//! Tests of the `/proc/net` parser against captured and hand-written tables.

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
        let row = format!("0: {hex}:0016 {any} 0A 00000000:00000000 00:00000000 00000000 0 0 7\n");
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
fn missing_ipv6_table_beside_its_ipv4_table_means_ipv6_disabled() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net")).unwrap();
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        let v4 = dir
            .path()
            .join("net")
            .join(table_name(protocol, Family::Ipv4));
        std::fs::write(v4, "  sl  local_address\n").unwrap();
        let t = read_table(dir.path(), protocol, Family::Ipv6).unwrap();
        assert_eq!(t, ParsedTable::default());
    }
}

#[test]
fn missing_ipv6_table_without_its_ipv4_table_is_unread() {
    // No root at all (a typo), an empty root, and a root whose tcp table is a directory (its
    // udp table fine): the missing tcp6 says nothing about IPv6, so it is not "no sockets".
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("nonexistent");
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(broken.join("net/tcp")).unwrap();
    std::fs::write(broken.join("net/udp"), "  sl  local_address\n").unwrap();
    for root in [absent.as_path(), dir.path(), broken.as_path()] {
        match read_table(root, Protocol::Tcp, Family::Ipv6) {
            Err(SourceError::ProcRead { path, .. }) => assert_eq!(path, root.join("net/tcp6")),
            other => panic!("{}: expected ProcRead, got {other:?}", root.display()),
        }
    }
    // The udp table beside it is readable, so udp6's absence is IPv6 disabled.
    let t = read_table(&broken, Protocol::Udp, Family::Ipv6).unwrap();
    assert_eq!(t, ParsedTable::default());
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

#[test]
fn rows_repeated_by_a_busy_kernel_are_listed_once() {
    let table = fixture("netns-6.18/net/tcp");
    let text = String::from_utf8(table).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // Repeat a listener and a TIME_WAIT row, as a table read during churn can.
    lines.insert(3, lines[1]);
    let tw = lines.iter().position(|l| l.contains(" 06 ")).unwrap();
    lines.push(lines[tw]);
    let repeated = lines.join("\n") + "\n";
    let mut t = parse_le(repeated.as_bytes(), Protocol::Tcp, Family::Ipv4);
    assert_eq!(t.sockets.len(), 10);
    crate::source::drop_repeated(&mut t.sockets);
    assert_eq!(t.sockets.len(), 8);
    // Two inode-0 rows that differ stay apart.
    assert_eq!(t.sockets.iter().filter(|s| s.inode == 0).count(), 2);
}

#[test]
fn read_table_drops_repeated_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("net")).unwrap();
    let text = String::from_utf8(fixture("netns-6.18/net/udp")).unwrap();
    let row = text.lines().nth(1).unwrap();
    std::fs::write(dir.path().join("net/udp"), format!("{text}{row}\n")).unwrap();
    let t = read_table(dir.path(), Protocol::Udp, Family::Ipv4).unwrap();
    assert_eq!(t.sockets.len(), 4);
}

#[test]
fn an_endless_line_is_skipped_and_the_next_row_still_read() {
    let row = "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0\n";
    let mut text = b"  sl  local_address rem_address   st\n".to_vec();
    text.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
    text.push(b'\n');
    text.extend_from_slice(row.as_bytes());
    // A reader handing out small pieces, so the long line spans many of its buffers.
    let reader = std::io::BufReader::with_capacity(100, &text[..]);
    let table = parse_table(reader, Protocol::Tcp, Family::Ipv4, ByteOrder::Little, "t");
    assert_eq!(table.sockets.len(), 1, "{:?}", table.warnings);
    assert_eq!(table.sockets[0].inode, 1111);
    assert_eq!(table.warnings.len(), 1);
    assert!(
        table.warnings[0]
            .to_string()
            .contains("t:2: field line: longer than 4096 bytes")
    );
}
