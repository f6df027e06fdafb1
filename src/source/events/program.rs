//! Load `listen_events.bpf.o` and attach its six programs: the TCP state tracepoint, and the
//! bind, release and connect hooks at the root of the cgroup v2 hierarchy.
//!
//! Nothing is pinned: the programs, their links and the maps are file descriptors owned by
//! the returned [`Ebpf`], so everything detaches when it is dropped, and when the process
//! ends however it ends. The cgroup links are `bpf_link`s (Linux 5.7 and later), which the
//! kernel removes with their last descriptor, unlike the older attachments that outlive
//! their process.

use std::fs::File;
use std::path::{Path, PathBuf};

use aya::programs::{BtfTracePoint, CgroupAttachMode, CgroupSock, CgroupSockAddr, ProgramError};
use aya::{Btf, Ebpf};

use super::error::EventsUnavailable;
use crate::process::bpf::aya_workaround::loader_without_btf;
use crate::process::bpf::iterator::chain;
use crate::process::bpf::preflight::is_initial_user_ns;
use crate::sys::cgroupfs::cgroup2_mount;

/// The compiled programs, built from `listen_events.bpf.c` by `bpf/build.sh`.
static OBJECT: &[u8] = include_bytes!("listen_events.bpf.o");
/// The tracepoint, as `tp_btf/` names it (the kernel's `btf_trace_inet_sock_set_state`).
const TRACEPOINT: &str = "inet_sock_set_state";
/// The cgroup-sock programs, by function name.
const CGROUP_PROGRAMS: [&str; 3] = ["post_bind4", "post_bind6", "sock_release"];
/// The cgroup sock_addr programs (a bound UDP socket connecting), by function name.
const CONNECT_PROGRAMS: [&str; 2] = ["connect4", "connect6"];
/// The filter on one network namespace (`volatile const`: fixed when loaded).
const WATCHED_NETNS: &str = "watched_netns";
/// The ring buffer and the per-CPU count of records it had no room for.
pub(super) const RING: &str = "EVENTS";
pub(super) const LOST: &str = "LOST";

// Capability bits (`linux/capability.h`).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Check, load and attach everything, reporting only sockets of the network namespace of
/// nsfs inode `netns` (`None`: of every namespace); the loaded object owns every attachment.
pub fn load(netns: Option<u64>) -> Result<Ebpf, EventsUnavailable> {
    check_privileges()?;
    let cgroup = cgroup_root()?;
    let btf = Btf::from_sys_fs().map_err(|e| EventsUnavailable::NoBtf(chain(&e)))?;
    let watched = netns.unwrap_or(0);
    let mut ebpf = loader_without_btf()
        .btf(Some(&btf))
        .override_global(WATCHED_NETNS, &watched, true)
        .load(OBJECT)
        .map_err(|e| EventsUnavailable::Load(chain(&e)))?;
    attach_tracepoint(&mut ebpf, &btf)?;
    let dir = File::open(&cgroup).map_err(|e| {
        EventsUnavailable::NoCgroup2(format!(": cannot open {}: {e}", cgroup.display()))
    })?;
    for name in CGROUP_PROGRAMS {
        attach_cgroup(&mut ebpf, name, &dir)?;
    }
    for name in CONNECT_PROGRAMS {
        attach_connect(&mut ebpf, name, &dir)?;
    }
    Ok(ebpf)
}

fn attach_tracepoint(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), EventsUnavailable> {
    let program: &mut BtfTracePoint = program(ebpf, TRACEPOINT)?
        .try_into()
        .map_err(|e: ProgramError| load_error(TRACEPOINT, &e))?;
    program
        .load(TRACEPOINT, btf)
        .map_err(|e| load_error(TRACEPOINT, &e))?;
    program.attach().map_err(|e| load_error(TRACEPOINT, &e))?;
    Ok(())
}

fn attach_cgroup(ebpf: &mut Ebpf, name: &str, cgroup: &File) -> Result<(), EventsUnavailable> {
    let program: &mut CgroupSock = program(ebpf, name)?
        .try_into()
        .map_err(|e: ProgramError| load_error(name, &e))?;
    program.load().map_err(|e| load_error(name, &e))?;
    program
        .attach(cgroup, CgroupAttachMode::Single)
        .map_err(|e| load_error(name, &e))?;
    Ok(())
}

fn attach_connect(ebpf: &mut Ebpf, name: &str, cgroup: &File) -> Result<(), EventsUnavailable> {
    let program: &mut CgroupSockAddr = program(ebpf, name)?
        .try_into()
        .map_err(|e: ProgramError| load_error(name, &e))?;
    program.load().map_err(|e| load_error(name, &e))?;
    program
        .attach(cgroup, CgroupAttachMode::Single)
        .map_err(|e| load_error(name, &e))?;
    Ok(())
}

fn program<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> Result<&'a mut aya::programs::Program, EventsUnavailable> {
    ebpf.program_mut(name)
        .ok_or_else(|| EventsUnavailable::Load(format!("no program {name} in the object")))
}

fn load_error(name: &str, error: &ProgramError) -> EventsUnavailable {
    EventsUnavailable::Load(format!("{name}: {}", chain(error)))
}

/// Root, or the three capabilities, in the initial user namespace: cheaper than a refused
/// `bpf()` call, and it names what is missing where the kernel only says `EPERM`.
fn check_privileges() -> Result<(), EventsUnavailable> {
    let status = std::fs::read("/proc/self/status")
        .map_err(|e| EventsUnavailable::Privilege(format!("cannot read /proc/self/status: {e}")))?;
    let missing = missing_capabilities(&status);
    if !missing.is_empty() {
        return Err(EventsUnavailable::Privilege(format!(
            "missing {}",
            missing.join(" and ")
        )));
    }
    let uid_map = std::fs::read("/proc/self/uid_map").unwrap_or_default();
    if !is_initial_user_ns(&uid_map) {
        return Err(EventsUnavailable::Privilege(
            "this process runs in a nested user namespace".into(),
        ));
    }
    Ok(())
}

/// The capabilities `status`'s `CapEff` lacks for loading and attaching the programs.
pub fn missing_capabilities(status: &[u8]) -> Vec<&'static str> {
    let effective = status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"CapEff:"))
        .and_then(|hex| std::str::from_utf8(hex).ok())
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    [
        (CAP_BPF, "CAP_BPF"),
        (CAP_PERFMON, "CAP_PERFMON"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|&(cap, _)| !has(cap))
    .map(|(_, name)| name)
    .collect()
}

/// Where this process sees the cgroup v2 hierarchy: programs attached there see every
/// socket made in any cgroup below, which is every socket of the mount's namespace.
fn cgroup_root() -> Result<PathBuf, EventsUnavailable> {
    let mountinfo = std::fs::read("/proc/self/mountinfo")
        .map_err(|e| EventsUnavailable::NoCgroup2(format!(": {e}")))?;
    cgroup2_mount(&mountinfo)
        .filter(|path| Path::new(path).is_dir())
        .ok_or_else(|| EventsUnavailable::NoCgroup2(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_or_the_three_capabilities_may_attach() {
        assert!(missing_capabilities(b"CapEff:\t000001ffffffffff\n").is_empty());
        assert!(missing_capabilities(b"CapEff:\t0000000000200000\n").is_empty());
        assert!(missing_capabilities(b"CapEff:\t000000c000001000\n").is_empty());
        assert_eq!(
            missing_capabilities(b"CapEff:\t000000c000000000\n"),
            ["CAP_NET_ADMIN"]
        );
        assert_eq!(missing_capabilities(b"CapEff:\t0\n").len(), 3);
        assert_eq!(missing_capabilities(b"garbage").len(), 3);
    }

    #[test]
    fn the_embedded_object_has_every_program_section() {
        for section in [
            "tp_btf/inet_sock_set_state",
            "cgroup/post_bind4",
            "cgroup/post_bind6",
            "cgroup/sock_release",
            "cgroup/connect4",
            "cgroup/connect6",
        ] {
            let name = format!("\0{section}\0");
            assert!(
                OBJECT.windows(name.len()).any(|w| w == name.as_bytes()),
                "no section {section} in listen_events.bpf.o"
            );
        }
    }
}
