//! The `procfs` crates against lsports' own /proc readers, timed: the numbers quoted in the
//! module docs of `process/info.rs`, `source/procnet/mod.rs`, `process/fdscan.rs` and
//! `source/netns/mountinfo.rs` come from here.
//!
//! ```text
//! cargo build --release --example procfs_compare
//! target/release/examples/procfs_compare parsers        # status, /proc/net/tcp, mountinfo
//! python3 bench/world.py --procs 1000 --tcp 20000 --udp 5000 --conns 5000 --fds 100000 \
//!     -- target/release/examples/procfs_compare walk     # the fd walk, in a large world
//! ```
//!
//! Each parser reads the same bytes from memory (no I/O), and both sides must agree on what
//! they found, so a faster side that parsed less would fail here rather than look good.

use std::collections::HashSet;
use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

use lsports::model::{Family, Protocol};
use lsports::process::{fdscan, info};
use lsports::source::netns;
use lsports::source::procnet::{self, ByteOrder};
use procfs_core::{ExplicitSystemInfo, FromBufRead, FromBufReadSI};

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("parsers") => parsers(),
        Some("walk") => walk(),
        _ => eprintln!("usage: procfs_compare parsers|walk"),
    }
}

/// The best of five runs of `f`, `n` times each: the least disturbed by the rest of the host.
fn best(n: u32, mut f: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed() / n
        })
        .min()
        .unwrap_or_default()
}

fn report(what: &str, ours: Duration, theirs: Duration) {
    let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
    println!(
        "{what:<36} lsports {ours:>10.1?}   procfs {theirs:>10.1?}   procfs/lsports {ratio:.2}"
    );
}

fn parsers() {
    status();
    tcp_table();
    mountinfo();
    netns_mounts();
}

fn status() {
    let text = std::fs::read("/proc/self/status").expect("/proc/self/status");
    let ours = info::effective_uid(&text[..], "status").expect("a Uid line");
    let theirs = procfs_core::process::Status::from_buf_read(&text[..])
        .expect("status")
        .euid;
    assert_eq!(ours, theirs);
    let t_ours = best(100_000, || {
        std::hint::black_box(info::effective_uid(&text[..], "status").ok());
    });
    let t_theirs = best(100_000, || {
        std::hint::black_box(procfs_core::process::Status::from_buf_read(&text[..]).ok());
    });
    report("status: effective uid", t_ours, t_theirs);
}

/// A /proc/net/tcp of 25,000 listening rows, as the kernel writes it.
fn synthetic_tcp(rows: u32) -> Vec<u8> {
    let mut text = String::from(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    );
    for i in 0..rows {
        let addr = u32::from_be_bytes([127, (i >> 16) as u8, (i >> 8) as u8, i as u8]).swap_bytes();
        let port = 1024 + (i % 60_000);
        text.push_str(&format!(
            "{i:>4}: {addr:08X}:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 {} 1 0000000000000000 100 0 0 10 0\n",
            100_000 + i
        ));
    }
    text.into_bytes()
}

fn tcp_table() {
    let text = synthetic_tcp(25_000);
    let parse_ours = || {
        procnet::parse_table(
            &text[..],
            Protocol::Tcp,
            Family::Ipv4,
            ByteOrder::native(),
            "tcp",
        )
    };
    let info = ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    };
    let parse_theirs = || procfs_core::net::TcpNetEntries::from_buf_read(&text[..], &info);
    let ours = parse_ours();
    let theirs = parse_theirs().expect("tcp table");
    assert!(ours.warnings.is_empty());
    assert_eq!(ours.sockets.len(), theirs.0.len());
    for (a, b) in ours.sockets.iter().zip(&theirs.0) {
        assert_eq!((a.inode, a.local_port), (b.inode, b.local_address.port()));
    }
    let t_ours = best(100, || {
        std::hint::black_box(parse_ours());
    });
    let t_theirs = best(100, || {
        std::hint::black_box(parse_theirs().ok());
    });
    report("/proc/net/tcp, 25,000 rows", t_ours, t_theirs);
}

fn mountinfo() {
    let text = std::fs::read("/proc/self/mountinfo").expect("/proc/self/mountinfo");
    let t_ours = best(10_000, || {
        std::hint::black_box(info::parse_mountinfo(&text[..], Path::new("/proc")));
    });
    let t_theirs = best(10_000, || {
        let mounts = procfs_core::process::MountInfos::from_buf_read(Cursor::new(&text));
        std::hint::black_box(mounts.ok());
    });
    report("mountinfo: the proc mount's hidepid", t_ours, t_theirs);
}

/// A mountinfo of a host with 200 `ip netns` namespaces among 40 ordinary mounts.
fn synthetic_mountinfo() -> Vec<u8> {
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!(
            "{i} 1 0:{i} / /mnt/m{i} rw,relatime shared:{i} - ext4 /dev/sda{i} rw\n"
        ));
    }
    for i in 0..200 {
        text.push_str(&format!(
            "{} 25 0:4 net:[{}] /run/netns/w{i} rw shared:{} - nsfs nsfs rw\n",
            100 + i,
            4_026_532_000u64 + i,
            300 + i
        ));
    }
    text.into_bytes()
}

/// `--netns all`'s mount reader: the network-namespace bind mounts, each inode and mount point.
fn netns_mounts() {
    let text = synthetic_mountinfo();
    let theirs_of = |text: &[u8]| -> Vec<(u64, std::path::PathBuf)> {
        let mounts = procfs_core::process::MountInfos::from_buf_read(Cursor::new(text));
        mounts
            .map(|m| {
                m.into_iter()
                    .filter(|m| m.fs_type == "nsfs")
                    .filter_map(|m| {
                        let digits = m.root.strip_prefix("net:[")?.strip_suffix(']')?;
                        Some((digits.parse().ok()?, m.mount_point))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let ours: Vec<(u64, std::path::PathBuf)> = netns::mountinfo::net_mounts(&text)
        .into_iter()
        .map(|m| (m.inode, m.path))
        .collect();
    assert_eq!(ours.len(), 200);
    assert_eq!(ours, theirs_of(&text));
    let t_ours = best(10_000, || {
        std::hint::black_box(netns::mountinfo::net_mounts(&text));
    });
    let t_theirs = best(10_000, || {
        std::hint::black_box(theirs_of(&text));
    });
    report("mountinfo: 200 netns bind mounts", t_ours, t_theirs);
}

/// Every socket inode in the host's tables, the wanted set of a listing with `-a`.
fn wanted_inodes() -> HashSet<u64> {
    let mut wanted = HashSet::new();
    for (protocol, family) in [
        (Protocol::Tcp, Family::Ipv4),
        (Protocol::Tcp, Family::Ipv6),
        (Protocol::Udp, Family::Ipv4),
        (Protocol::Udp, Family::Ipv6),
    ] {
        if let Ok(table) = procnet::read_table(Path::new("/proc"), protocol, family) {
            wanted.extend(table.sockets.iter().map(|s| s.inode));
        }
    }
    wanted
}

/// The walk as procfs offers it: every process, every fd, socket targets kept.
fn procfs_walk(wanted: &HashSet<u64>) -> usize {
    let mut found = 0;
    for process in procfs::process::all_processes().expect("/proc").flatten() {
        let Ok(fds) = process.fd() else { continue };
        for fd in fds.flatten() {
            if let procfs::process::FDTarget::Socket(inode) = fd.target {
                found += usize::from(wanted.contains(&inode));
            }
        }
    }
    found
}

fn walk() {
    let wanted = wanted_inodes();
    let ours = fdscan::scan(Path::new("/proc"), &wanted).expect("walk");
    let held: usize = wanted.iter().map(|&i| ours.holders.of(i).len()).sum();
    assert_eq!(
        held,
        procfs_walk(&wanted),
        "both walks find the same holders"
    );
    let t_ours = best(3, || {
        std::hint::black_box(fdscan::scan(Path::new("/proc"), &wanted).ok());
    });
    let t_theirs = best(3, || {
        std::hint::black_box(procfs_walk(&wanted));
    });
    println!(
        "{} processes, {} wanted sockets, {held} holders",
        ours.scanned,
        wanted.len()
    );
    report("fd walk (with details of holders)", t_ours, t_theirs);
}
