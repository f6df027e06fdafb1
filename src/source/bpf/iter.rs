//! Sockets from the kernel's `tcp` and `udp` BPF iterators (Linux 5.9 and later): one pass per
//! protocol over this network namespace's hashed sockets, each written as a `socket_record`
//! by `sockets.bpf.c` and decoded into what a sock_diag dump gives.
//!
//! sock_diag stays the reference, and the source everywhere but here: this path runs only for
//! the live namespace lsports is in, with `--source auto`, when the variable
//! `LSPORTS_SOCKETS` ([`FORCE_VARIABLE`]) is `iter` (`diag` forces sock_diag). Whenever it
//! cannot run, sock_diag does, and `-v` says why.
//!
//! Not the default, because it is not faster, measured on the shared 2-core development
//! machine (load average 13 to 18, so only ratios within one interleaved run mean anything;
//! `world.py --procs 1000 --tcp 20000 --udp 5000 --conns 5000 --fds 100000`, 7 runs A B A B,
//! medians, release build):
//!
//! | request                          | sock_diag | iterators | ratio |
//! |----------------------------------|-----------|-----------|-------|
//! | `-ltnu -o proto,local,state`     | 74 ms     | 99 ms     | 1.33× |
//! | `-atnu -o proto,local,state`     | 108 ms    | 136 ms    | 1.26× |
//! | `-ltnup` (owners from BPF)       | 192 ms    | 212 ms    | 1.10× |
//!
//! `LSPORTS_TIMING=1 -ltnu`: loading costs 13 ms (11 of them the BTF digest), the TCP pass
//! 32 ms, the sockets are collected at 50 ms against sock_diag's 42 ms. The cause is the
//! kernel's side: the tcp iterator walks the listening hash and then the whole established
//! hash whatever the request (sock_diag's listener dump walks the listening hash alone), and
//! takes a reference on every socket of a bucket batch. With `-p`, sock_diag is off the
//! critical path anyway (it runs while the task iterator loads), while this object's load
//! competes with the task iterator's for the two cores.
//!
//! Per namespace (`--netns 50` world, `examples/netns_sockets.rs`: every namespace of
//! `/run/netns` entered by a thread, the object loaded once): sock_diag 273 ms, the iterators
//! 374 ms (1.37×), and the same iterators writing nothing at all 327 ms (1.20×): each
//! namespace's pass walks the host-wide tables (the iterators skip other namespaces' sockets,
//! as sock_diag does), and the kernel's walk alone costs more than sock_diag's whole dump.

use std::fs::File;
use std::io::Read;

use super::super::{CollectRequest, Collected, TableReport};
use crate::config::StateSelection;
use crate::model::socket_record::{self, SOCKET_RECORD_STRUCTS};
use crate::model::{Family, Protocol, Socket, SourceKind};
use crate::process::bpf::error::BpfUnavailable;
use crate::process::bpf::loader::{self, Iterators, Wanted};
use crate::process::bpf::preflight;

/// The compiled programs, built from `sockets.bpf.c` by `bpf/build.sh`.
static OBJECT: &[u8] = include_bytes!("sockets.bpf.o");

/// The environment variable choosing the socket source: `iter` or `diag`.
pub const FORCE_VARIABLE: &str = "LSPORTS_SOCKETS";

/// The states sock_diag's "every state" request asks for: `ESTABLISHED` (1) to `CLOSING`
/// (11), as `StateFlags::all()` sets them.
const ALL_STATES: u32 = 0xffe;
/// `TCP_NEW_SYN_RECV`: a request socket, which sock_diag reports as `SYN_RECV`.
const NEW_SYN_RECV: u32 = 12;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;

/// Which way sockets are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketPath {
    /// sock_diag, the reference.
    Diag,
    /// The tcp and udp iterators.
    Iter,
}

impl SocketPath {
    /// The path `LSPORTS_SOCKETS` asks for, if any.
    pub fn forced() -> Option<SocketPath> {
        match std::env::var(FORCE_VARIABLE).ok()?.as_str() {
            "iter" => Some(SocketPath::Iter),
            "diag" => Some(SocketPath::Diag),
            _ => None,
        }
    }
}

/// The programs' read-only globals (`sockets.bpf.c`) for one request, in native byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Globals {
    values: Vec<(&'static str, [u8; 4])>,
}

impl Globals {
    fn of(request: &CollectRequest) -> Globals {
        let families = |protocol| {
            request
                .tables
                .iter()
                .filter(|(p, _)| *p == protocol)
                .map(|(_, family)| match family {
                    Family::Ipv4 => 1 << AF_INET,
                    Family::Ipv6 => 1 << AF_INET6,
                })
                .fold(0u32, |all, one| all | one)
        };
        let (tcp, udp) = match request.states {
            StateSelection::All => (ALL_STATES, ALL_STATES),
            StateSelection::Listening => (1 << 10, 1 << 7),
        };
        // A request socket is reported as SYN_RECV (3); a TIME_WAIT one by its sub-state,
        // TIME_WAIT (6) or FIN_WAIT2 (5).
        let mut tcp_raw = tcp;
        if tcp & (1 << 3) != 0 {
            tcp_raw |= 1 << NEW_SYN_RECV;
        }
        if tcp & (1 << 5) != 0 {
            tcp_raw |= 1 << 6;
        }
        let (port_min, port_max) = request
            .ports
            .as_ref()
            .and_then(|ports| Some((ports.ranges().first()?.0, ports.ranges().last()?.1)))
            .unwrap_or((0, u16::MAX));
        let values = [
            ("tcp_states", tcp),
            ("tcp_raw_states", tcp_raw),
            ("tcp_families", families(Protocol::Tcp)),
            ("udp_states", udp),
            ("udp_families", families(Protocol::Udp)),
            ("port_min", port_min.into()),
            ("port_max", port_max.into()),
        ];
        Globals {
            values: values
                .into_iter()
                .map(|(name, value)| (name, value.to_ne_bytes()))
                .collect(),
        }
    }

    fn as_slices(&self) -> Vec<(&str, &[u8])> {
        self.values
            .iter()
            .map(|(name, value)| (*name, value.as_slice()))
            .collect()
    }
}

/// The program of each protocol, and the iterator type it attaches to.
fn program(protocol: Protocol) -> (&'static str, &'static str) {
    match protocol {
        Protocol::Tcp => ("tcp_sockets", "tcp"),
        Protocol::Udp => ("udp_sockets", "udp"),
    }
}

/// Collect `request`'s tables from the iterators, each table reported as fed by them; or why
/// they could not run.
pub fn collect(request: &CollectRequest) -> Result<Collected, BpfUnavailable> {
    if request.tables.is_empty() {
        return Ok(Collected::default());
    }
    let mut loaded = Loaded::load(request)?;
    let sockets = loaded.pass()?;
    crate::sys::timing::mark("sockets: iterators drained");
    let mut collected = into_tables(request, sockets);
    if let Some(why) = loaded.aya_fallback.take() {
        collected.verbose_notes.push(format!(
            "the tcp/udp iterators were loaded through aya: {why}"
        ));
    }
    Ok(collected)
}

/// The programs a request needs, loaded into the kernel, ready for passes: one in each
/// network namespace wanted, from a thread that entered it.
pub struct Loaded {
    iterators: Iterators,
    protocols: Vec<Protocol>,
    /// Why aya loaded the programs rather than lsports' own loader, until said.
    aya_fallback: Option<String>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("protocols", &self.protocols)
            .finish()
    }
}

impl Loaded {
    /// Load the program of each protocol `request` asks for, its filters set.
    pub fn load(request: &CollectRequest) -> Result<Loaded, BpfUnavailable> {
        preflight::check(&request.proc_root)?;
        let mut protocols: Vec<Protocol> = request.tables.iter().map(|(p, _)| *p).collect();
        protocols.sort();
        protocols.dedup();
        if protocols.is_empty() {
            return Err(BpfUnavailable::Load(
                "no TCP or UDP table was asked for".into(),
            ));
        }
        crate::sys::timing::mark("sockets: iterators loading");
        let globals = Globals::of(request);
        let programs: Vec<(&str, &str)> = protocols.iter().map(|&p| program(p)).collect();
        let loaded = loader::load(&Wanted {
            object: OBJECT,
            relocated: SOCKET_RECORD_STRUCTS,
            programs: &programs,
            globals: &globals.as_slices(),
        })?;
        crate::sys::timing::mark("sockets: iterators verified");
        Ok(Loaded {
            iterators: loaded.iterators,
            protocols,
            aya_fallback: loaded.aya_fallback,
        })
    }

    /// One pass of every loaded program over the sockets of the calling thread's network
    /// namespace (the kernel's iterators take the namespace of the task that opens them). The
    /// protocols are read on threads of their own: the kernel walks its tables in `read`.
    pub fn pass(&mut self) -> Result<Vec<Socket>, BpfUnavailable> {
        let mut outputs = Vec::new();
        for &protocol in &self.protocols {
            outputs.push(self.iterators.open(program(protocol).0)?);
        }
        let mut sockets = Vec::new();
        std::thread::scope(|scope| {
            let mut outputs = outputs.into_iter();
            let first = outputs.next();
            let others: Vec<_> = outputs.map(|o| scope.spawn(move || read_all(o))).collect();
            if let Some(first) = first {
                sockets.extend(decode(&read_all(first)?));
            }
            for other in others {
                let bytes = other.join().unwrap_or_else(|_| {
                    Err(BpfUnavailable::Load("an iterator thread panicked".into()))
                })?;
                sockets.extend(decode(&bytes));
            }
            Ok(sockets)
        })
    }
}

/// Everything a pass writes.
fn read_all(mut output: File) -> Result<Vec<u8>, BpfUnavailable> {
    let mut bytes = Vec::new();
    output
        .read_to_end(&mut bytes)
        .map_err(BpfUnavailable::Read)?;
    Ok(bytes)
}

/// The sockets in `bytes`; the namespace is the caller's to tag (every one is this
/// process's). A record that is not a TCP or UDP socket is a program bug: skipped.
fn decode(bytes: &[u8]) -> impl Iterator<Item = Socket> + '_ {
    socket_record::decode(bytes).filter_map(|record| record.to_socket(|_| None).ok())
}

/// `sockets` in the request's tables, in its order, with one report each, as sock_diag's
/// dumps give them: repeats dropped, only the wanted ports.
fn into_tables(request: &CollectRequest, mut sockets: Vec<Socket>) -> Collected {
    super::super::drop_repeated(&mut sockets);
    let table = |s: &Socket| {
        request
            .tables
            .iter()
            .position(|&(p, f)| p == s.protocol && f == s.family)
    };
    sockets.retain(|s| {
        table(s).is_some()
            && request
                .ports
                .as_ref()
                .is_none_or(|p| p.contains(s.local_port))
    });
    // Stable: within a table, the kernel's order, as a dump gives it.
    sockets.sort_by_key(|s| table(s));
    let reports = request
        .tables
        .iter()
        .map(|&(protocol, family)| TableReport {
            protocol,
            family,
            source: Some(SourceKind::Bpf),
            count: sockets
                .iter()
                .filter(|s| s.protocol == protocol && s.family == family)
                .count(),
            port_filter: false,
            netlink_error: None,
            proc_error: None,
            iterator_error: None,
        })
        .collect();
    Collected {
        sockets,
        reports,
        ..Collected::default()
    }
}
