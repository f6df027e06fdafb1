//! The two attribution paths: the kernel BPF iterator and the `/proc/*/fd` walk must give the
//! same holders and the same listing, the iterator must be chosen or refused for the right
//! reasons, and an unprivileged `auto` run must still list every socket.
//!
//! BPF tests need root (as CI runs them) and a kernel with BTF; elsewhere they print why they
//! are skipped. CLI tests use `--attribution`, which the CLI owner wires to
//! `process::attribute_with`.

mod common;

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::path::Path;

use lsports::process::bpf::{self, BpfUnavailable};
use lsports::process::fdscan;

/// Why BPF tests cannot run here, if they cannot.
fn bpf_skip_reason() -> Option<String> {
    if !common::is_root() {
        return Some("the BPF iterator needs root".into());
    }
    if !Path::new(bpf::BTF_PATH).exists() {
        return Some(format!("no kernel BTF at {}", bpf::BTF_PATH));
    }
    None
}

macro_rules! require_bpf {
    () => {
        if let Some(reason) = bpf_skip_reason() {
            eprintln!("SKIP: {reason}");
            return;
        }
    };
}

fn socket_inode(fd: i32) -> u64 {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    fdscan::parse_socket_link(link.as_os_str().as_encoded_bytes()).unwrap()
}

#[test]
fn bpf_and_walk_find_the_same_holders_of_our_own_sockets() {
    require_bpf!();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // A second fd on the same socket: both must be found, lowest first.
    let dup = tcp.try_clone().unwrap();
    let wanted: HashSet<u64> = [tcp.as_raw_fd(), udp.as_raw_fd()]
        .into_iter()
        .map(socket_inode)
        .collect();
    let walked = fdscan::scan(Path::new("/proc"), &wanted).unwrap();
    let kernel = bpf::scan(Path::new("/proc"), &wanted).unwrap();
    assert_eq!(kernel.holders, walked.holders);
    let me = std::process::id();
    let tcp_holders = &kernel.holders[&socket_inode(tcp.as_raw_fd())];
    let fds: Vec<u32> = tcp_holders.iter().map(|h| h.fd).collect();
    assert_eq!(fds, vec![tcp.as_raw_fd() as u32, dup.as_raw_fd() as u32]);
    assert!(tcp_holders.iter().all(|h| h.pid == me));
    assert_eq!(kernel.details[&me], walked.details[&me]);
    assert_eq!(kernel.details.len(), 1, "details only for holder pids");
    assert_eq!(kernel.denied, 0);
}

#[test]
fn a_snapshot_or_fixture_tree_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = bpf::scan(dir.path(), &HashSet::new()).unwrap_err();
    assert!(matches!(err, BpfUnavailable::NotLiveProc { .. }), "{err}");
    assert!(err.to_string().contains("not this process's live /proc"));
}
