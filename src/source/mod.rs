//! Where sockets come from: netlink sock_diag first, and per (protocol, family) the
//! `/proc/net` tables where netlink fails or is not wanted.
//!
//! Each table is collected on its own, so a missing `udp_diag` module costs only UDP its
//! netlink detail, and a failure is reported (with `--verbose`) rather than read as "no
//! sockets". A collection narrowed to some local ports (`--port`, `--wait`) has the kernel
//! filter them ([`bytecode`]), so it costs a few small messages however many sockets the
//! host has.

pub mod bpf;
pub mod bytecode;
pub mod events;
pub mod netlink;
pub mod netns;
pub mod procnet;

use std::path::PathBuf;

use crate::config::{SourceChoice, StateSelection};
use crate::error::{ParseWarning, SourceError};
use crate::filter::PortSet;
use crate::model::{Family, Protocol, Socket, SourceKind};
use netlink::SockDiag;

/// What to collect.
#[derive(Debug, Clone)]
pub struct CollectRequest {
    /// The (protocol, family) tables to read.
    pub tables: Vec<(Protocol, Family)>,
    /// Listening sockets only, or every state.
    pub states: StateSelection,
    /// Only sockets bound to one of these local ports; `None` for every port.
    pub ports: Option<PortSet>,
    /// The source choice.
    pub choice: SourceChoice,
    /// Root of the proc filesystem (normally `/proc`).
    pub proc_root: PathBuf,
    /// The snapshot file `proc_root` was unpacked from, if it was: a table missing from it is
    /// said to be missing from the snapshot.
    pub snapshot: Option<PathBuf>,
}

/// How one table was collected, for `--verbose` and for the exit code.
#[derive(Debug)]
pub struct TableReport {
    /// Protocol of the table.
    pub protocol: Protocol,
    /// Family of the table.
    pub family: Family,
    /// The source that fed it, or `None` when every source failed.
    pub source: Option<SourceKind>,
    /// Sockets it contributed.
    pub count: usize,
    /// The kernel kept only the sockets on the wanted ports (netlink with a port filter).
    pub port_filter: bool,
    /// Why netlink was not used, when it was tried and failed.
    pub netlink_error: Option<SourceError>,
    /// Why `/proc/net` failed, when it was tried and failed.
    pub proc_error: Option<SourceError>,
    /// Why the tcp/udp iterators ([`bpf::iter`]) did not feed it, when they were tried.
    pub iterator_error: Option<String>,
}

/// Everything collected.
#[derive(Debug, Default)]
pub struct Collected {
    /// Sockets from every table that could be read.
    pub sockets: Vec<Socket>,
    /// One report per requested table.
    pub reports: Vec<TableReport>,
    /// Lines of `/proc/net` tables that could not be parsed.
    pub warnings: Vec<ParseWarning>,
    /// What else could not be read, one line each for stderr (network namespaces not
    /// reached, and why).
    pub notes: Vec<String>,
    /// Lines for `--verbose` only (how `--netns all` read each namespace).
    pub verbose_notes: Vec<String>,
    /// The namespaces read and not read, as data (`--netns`; empty for the current one).
    pub coverage: crate::model::coverage::Coverage,
}

impl Collected {
    /// True when no requested table could be read at all.
    pub fn nothing_read(&self) -> bool {
        self.reports.iter().all(|r| r.source.is_none())
    }

    /// The requested tables no source could read.
    pub fn unread_tables(&self) -> Vec<(Protocol, Family)> {
        (self.reports.iter())
            .filter(|r| r.source.is_none())
            .map(|r| (r.protocol, r.family))
            .collect()
    }
}

/// Collect sockets for every requested table.
///
/// With several tables and cores, every other table is collected on a second thread with its
/// own netlink socket: on a busy host the kernel's dump is nearly all of the collection, and a
/// dump runs on the core of the thread reading it. The result is in the requested order
/// either way.
pub fn collect(request: &CollectRequest) -> Collected {
    if !iterators_asked() {
        return collect_dumps(request);
    }
    let why = match request.choice {
        SourceChoice::Auto => match bpf::iter::collect(request) {
            Ok(collected) => return collected,
            Err(why) => why.to_string(),
        },
        // `--source netlink` (or proc) names its source: the variable does not override it.
        SourceChoice::Netlink | SourceChoice::Proc => "only with --source auto".to_string(),
    };
    let mut collected = collect_dumps(request);
    iterators_not_used(&mut collected, &why);
    collected
}

/// Whether `LSPORTS_SOCKETS=iter` asks for the tcp/udp iterators ([`bpf::iter`]).
fn iterators_asked() -> bool {
    bpf::iter::SocketPath::forced() == Some(bpf::iter::SocketPath::Iter)
}

/// Say in every table's report why the iterators asked for did not give its sockets (`-v`).
fn iterators_not_used(collected: &mut Collected, why: &str) {
    for report in &mut collected.reports {
        report.iterator_error = Some(why.to_string());
    }
}

/// [`collect`] over sock_diag, or `/proc/net` where it fails.
fn collect_dumps(request: &CollectRequest) -> Collected {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tables: Vec<(usize, (Protocol, Family))> =
        request.tables.iter().copied().enumerate().collect();
    let (mine, theirs): (Vec<_>, Vec<_>) = tables.into_iter().partition(|(i, _)| i % 2 == 0);
    let mut parts = if cores > 1 && !theirs.is_empty() {
        std::thread::scope(|scope| {
            // No thread to be had (a `pids.max` or `RLIMIT_NPROC` reached): this one collects
            // every table.
            let other = std::thread::Builder::new()
                .name("collect".into())
                .spawn_scoped(scope, || collect_tables(request, &theirs))
                .ok();
            let mut parts = collect_tables(request, &mine);
            // A panicked collector would have lost its tables: collect them here instead.
            parts.extend(
                other
                    .and_then(|other| other.join().ok())
                    .unwrap_or_else(|| collect_tables(request, &theirs)),
            );
            parts
        })
    } else {
        collect_tables(request, &mine.into_iter().chain(theirs).collect::<Vec<_>>())
    };
    parts.sort_by_key(|(index, _)| *index);
    let mut collected = Collected::default();
    for (_, part) in parts {
        // The first table's vector takes the others, often in its own spare room.
        append(&mut collected.sockets, part.sockets);
        collected.reports.extend(part.reports);
        collected.warnings.extend(part.warnings);
    }
    // Dumps grow by doubling; on a host with 25,000 listeners the slack is megabytes.
    collected.sockets.shrink_to_fit();
    collected
}

/// Why `LSPORTS_SOCKETS=iter` is not followed with `--netns`: see [`bpf::iter`].
const ITERATORS_NOT_PER_NAMESPACE: &str =
    "not with --netns, which reads every namespace from sock_diag alike";

/// Collect sockets for every requested table on the calling thread, with one netlink socket:
/// for a caller that already spreads its work over the cores (one worker per network
/// namespace, see [`netns::dump`]), where a second thread per collection would cost more than
/// it saves. The result is in the requested order, as [`collect`] gives it.
///
/// The tcp/udp iterators ([`bpf::iter`]) never run here: asked for with `LSPORTS_SOCKETS=iter`,
/// each table's report says so, as every fallback from them is said under `-v`.
pub fn collect_on_this_thread(request: &CollectRequest) -> Collected {
    let tables: Vec<(usize, (Protocol, Family))> =
        request.tables.iter().copied().enumerate().collect();
    let mut collected = Collected::default();
    for (_, part) in collect_tables(request, &tables) {
        append(&mut collected.sockets, part.sockets);
        collected.reports.extend(part.reports);
        collected.warnings.extend(part.warnings);
    }
    if iterators_asked() {
        iterators_not_used(&mut collected, ITERATORS_NOT_PER_NAMESPACE);
    }
    collected.sockets.shrink_to_fit();
    collected
}

/// Collect `tables` on one netlink socket, each table's result apart with its index.
fn collect_tables(
    request: &CollectRequest,
    tables: &[(usize, (Protocol, Family))],
) -> Vec<(usize, Collected)> {
    let mut netlink = match request.choice {
        SourceChoice::Proc => None,
        _ => Some(SockDiag::open()),
    };
    tables
        .iter()
        .map(|&(index, (protocol, family))| {
            let mut part = Collected::default();
            let report = collect_table(request, netlink.as_mut(), protocol, family, &mut part);
            part.reports.push(report);
            (index, part)
        })
        .collect()
}

fn collect_table(
    request: &CollectRequest,
    netlink: Option<&mut Result<SockDiag, SourceError>>,
    protocol: Protocol,
    family: Family,
    collected: &mut Collected,
) -> TableReport {
    let mut report = TableReport {
        protocol,
        family,
        source: None,
        count: 0,
        port_filter: false,
        netlink_error: None,
        proc_error: None,
        iterator_error: None,
    };
    if let Some(netlink) = netlink {
        match dump_netlink(netlink, protocol, family, request) {
            Ok(mut sockets) => {
                drop_repeated(&mut sockets);
                keep_ports(&mut sockets, request.ports.as_ref());
                report.source = Some(SourceKind::Netlink);
                report.count = sockets.len();
                report.port_filter = port_filter(request).is_some();
                append(&mut collected.sockets, sockets);
                return report;
            }
            Err(error) => report.netlink_error = Some(error),
        }
    }
    if request.choice == SourceChoice::Netlink {
        return report;
    }
    match procnet::read_table(&request.proc_root, protocol, family) {
        Ok(table) => {
            let before = collected.sockets.len();
            collected.sockets.extend(
                table
                    .sockets
                    .into_iter()
                    .filter(|s| wanted_state(s, request.states))
                    .filter(|s| {
                        request
                            .ports
                            .as_ref()
                            .is_none_or(|p| p.contains(s.local_port))
                    }),
            );
            collected.warnings.extend(table.warnings);
            report.source = Some(SourceKind::Proc);
            report.count = collected.sockets.len() - before;
        }
        Err(error) => report.proc_error = Some(in_snapshot(error, request, protocol, family)),
    }
    report
}

/// `error` as the user of a snapshot needs it: a table absent from the unpacked tree is one
/// the snapshot lacks, not a file of a temporary directory that does not exist.
fn in_snapshot(
    error: SourceError,
    request: &CollectRequest,
    protocol: Protocol,
    family: Family,
) -> SourceError {
    match (&request.snapshot, &error) {
        (Some(snapshot), SourceError::ProcRead { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            SourceError::NotInSnapshot {
                snapshot: snapshot.clone(),
                table: format!("net/{}", procnet::table_name(protocol, family)),
            }
        }
        _ => error,
    }
}

/// Move the first table's sockets instead of copying them: it is usually the largest.
fn append(all: &mut Vec<Socket>, mut more: Vec<Socket>) {
    if all.is_empty() {
        std::mem::swap(all, &mut more);
    } else {
        all.append(&mut more);
    }
}

fn dump_netlink(
    netlink: &mut Result<SockDiag, SourceError>,
    protocol: Protocol,
    family: Family,
    request: &CollectRequest,
) -> Result<Vec<Socket>, SourceError> {
    match netlink {
        Ok(diag) => diag.dump_filtered(
            protocol,
            family,
            request.states,
            port_filter(request).as_deref(),
        ),
        // Opening failed once; every table reports the same cause.
        Err(error) => Err(same_failure(error)),
    }
}

/// A copy of the error that kept netlink from opening (`io::Error` is not `Clone`), keeping
/// the step that failed and the errno, which the fallback report shows.
fn same_failure(error: &SourceError) -> SourceError {
    match error {
        SourceError::NetlinkIo { context, source } => SourceError::NetlinkIo {
            context,
            source: match source.raw_os_error() {
                Some(errno) => std::io::Error::from_raw_os_error(errno),
                None => std::io::Error::new(source.kind(), source.to_string()),
            },
        },
        other => SourceError::NetlinkDecode(other.to_string()),
    }
}

/// Keep the first of sockets that describe the same socket.
///
/// Both sources read the kernel's socket hash a piece at a time (a buffer of `/proc/net/tcp`,
/// a netlink dump message), finding their place again before each; sockets created or closed
/// meanwhile shift that place, so on a busy host a socket can come twice (or be skipped, which
/// nothing can undo). Repeats go: by inode, which no two sockets share, or for inode 0
/// (TIME_WAIT, not yet accepted) by endpoints and state.
pub fn drop_repeated(sockets: &mut Vec<Socket>) {
    let mut seen = std::collections::HashSet::with_capacity(sockets.len());
    sockets.retain(|s| {
        let key = match s.inode {
            0 => (
                0,
                Some((
                    s.local_addr,
                    s.local_port,
                    s.remote_addr,
                    s.remote_port,
                    s.state,
                )),
            ),
            inode => (inode, None),
        };
        seen.insert(key)
    });
}

/// The kernel's program for the request's ports, if it has ports the kernel can filter.
fn port_filter(request: &CollectRequest) -> Option<Vec<u8>> {
    bytecode::port_filter(request.ports.as_ref()?.ranges())
}

/// Keep the sockets on `ports`: the kernel's filter is left out for very many ranges
/// ([`bytecode::MAX_RANGES`]).
fn keep_ports(sockets: &mut Vec<Socket>, ports: Option<&PortSet>) {
    if let Some(ports) = ports {
        sockets.retain(|s| ports.contains(s.local_port));
    }
}

/// `/proc/net` tables list every state; keep what a netlink request would have asked for.
fn wanted_state(socket: &Socket, states: StateSelection) -> bool {
    match states {
        StateSelection::All => true,
        StateSelection::Listening => socket.state.is_listening(socket.protocol),
    }
}

/// Fill in device names for sockets bound to a device, one lookup per index.
pub fn name_devices(sockets: &mut [Socket]) {
    let mut cache: std::collections::HashMap<u32, Option<crate::model::SharedStr>> =
        Default::default();
    let mut probe = None;
    for socket in sockets {
        if let crate::model::DeviceBinding::Device { index, name } = &mut socket.device {
            *name = cache
                .entry(*index)
                .or_insert_with(|| interface_name(&mut probe, *index).map(Into::into))
                .clone();
        }
    }
}

/// The name of interface `index` in this process's network namespace (`if_indextoname`: the
/// `SIOCGIFNAME` ioctl on any socket, here a Unix datagram socket opened on the first call and
/// kept in `probe`, as glibc does).
fn interface_name(probe: &mut Option<std::os::fd::OwnedFd>, index: u32) -> Option<String> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    if probe.is_none() {
        let flags = SocketFlags::CLOEXEC;
        let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::DGRAM, flags, None);
        *probe = Some(fd.ok()?);
    }
    rustix::net::netdevice::index_to_name(probe.as_ref()?, index).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_as_the_kernel_names_them() {
        // Every interface the kernel lists, by index, from /sys (the truth beside the ioctl).
        let mut want = Vec::new();
        for dir in std::fs::read_dir("/sys/class/net").unwrap() {
            let name = dir.unwrap().file_name().into_string().unwrap();
            let index = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"));
            want.push((index.unwrap().trim().parse::<u32>().unwrap(), Some(name)));
        }
        want.push((u32::MAX, None));
        let mut sockets: Vec<Socket> = want
            .iter()
            .map(|&(index, _)| Socket {
                device: crate::model::DeviceBinding::Device { index, name: None },
                ..Socket::listening(Protocol::Tcp, "127.0.0.1", 1)
            })
            .collect();
        name_devices(&mut sockets);
        let got: Vec<(u32, Option<String>)> = sockets
            .into_iter()
            .map(|s| match s.device {
                crate::model::DeviceBinding::Device { index, name } => {
                    (index, name.map(|n| n.to_string()))
                }
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_socket_a_dump_repeats_is_listed_once() {
        // A recorded netlink reply, as if the kernel had sent its sockets twice over.
        let path = format!(
            "{}/fixtures/netlink/tcp4-all.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(path).unwrap();
        let sequence = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        let mut once = Vec::new();
        netlink::decode_chunk(&bytes[4..], sequence, Protocol::Tcp, &mut once).unwrap();
        assert!(
            once.iter().any(|s| s.inode == 0),
            "the fixture has inode-0 sockets"
        );
        let mut twice: Vec<Socket> = once.iter().chain(&once).cloned().collect();
        drop_repeated(&mut twice);
        assert_eq!(twice, once);
    }

    #[test]
    fn every_table_reports_the_step_and_errno_that_kept_netlink_closed() {
        let opened = SourceError::NetlinkIo {
            context: "bind",
            source: std::io::Error::from_raw_os_error(libc::EPERM),
        };
        let again = same_failure(&opened);
        assert!(
            matches!(&again, SourceError::NetlinkIo { context: "bind", source }
                if source.raw_os_error() == Some(libc::EPERM)),
            "{again:?}"
        );
        assert_eq!(again.to_string(), opened.to_string());
    }
}
