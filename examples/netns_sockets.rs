//! Per network namespace, the listening sockets from sock_diag or from the kernel's tcp/udp
//! BPF iterators: what collecting many namespaces costs each way, for the measurement in
//! `src/source/bpf/iter.rs`. Every namespace bind-mounted under `/run/netns` is entered by a
//! thread of its own (one after another), which dumps its four tables over sock_diag, or runs
//! the iterators, loaded once, there (they take the namespace of the thread that opens them).
//!
//! ```text
//! cargo build --release --example netns_sockets
//! target/release/examples/netns_sockets diag   # prints namespaces and sockets seen
//! target/release/examples/netns_sockets iter
//! ```
//!
//! Root only (entering namespaces, loading BPF).

use std::fs::File;
use std::os::fd::AsFd;

use lsports::config::{SourceChoice, StateSelection};
use lsports::model::{Family, Protocol};
use lsports::source::CollectRequest;
use lsports::source::bpf::iter::Loaded;
use lsports::source::netlink::SockDiag;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let request = CollectRequest {
        tables: vec![
            (Protocol::Tcp, Family::Ipv4),
            (Protocol::Tcp, Family::Ipv6),
            (Protocol::Udp, Family::Ipv4),
            (Protocol::Udp, Family::Ipv6),
        ],
        states: StateSelection::Listening,
        ports: None,
        choice: SourceChoice::Auto,
        proc_root: "/proc".into(),
        snapshot: None,
    };
    let mut loaded = match mode.as_str() {
        "diag" => None,
        "iter" => Some(Loaded::load(&request).unwrap_or_else(|e| fail(&e.to_string()))),
        _ => fail("usage: netns_sockets diag|iter"),
    };
    let mut namespaces = 0;
    let mut sockets = 0;
    let dir = std::fs::read_dir("/run/netns").unwrap_or_else(|e| fail(&format!("/run/netns: {e}")));
    for entry in dir.flatten() {
        let Ok(netns) = File::open(entry.path()) else {
            continue;
        };
        let loaded = loaded.as_mut();
        let request = &request;
        sockets += std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                        .unwrap_or_else(|e| fail(&format!("setns: {e}")));
                    match loaded {
                        Some(loaded) => loaded.pass().map(|s| s.len()).unwrap_or(0),
                        None => dump(request),
                    }
                })
                .join()
                .unwrap_or(0)
        });
        namespaces += 1;
    }
    println!("{namespaces} namespaces, {sockets} sockets");
}

/// The request's tables over one sock_diag socket: how many sockets.
fn dump(request: &CollectRequest) -> usize {
    let Ok(mut diag) = SockDiag::open() else {
        return 0;
    };
    request
        .tables
        .iter()
        .map(|&(protocol, family)| {
            diag.dump(protocol, family, request.states)
                .map_or(0, |s| s.len())
        })
        .sum()
}

fn fail(message: &str) -> ! {
    eprintln!("netns_sockets: {message}");
    std::process::exit(1)
}
