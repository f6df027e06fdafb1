//! Entering other network namespaces to read their firewall rules, for the reach step:
//! enrich cannot reach `source::netns` itself (source imports enrich).

use std::path::Path;

use crate::enrich::reach::{LoadError, Ruleset, Sources};
use crate::source::netns::{self, nsfd::NsFd};
use crate::sys::procroot::ProcRoot;

/// The rules of namespace `inode`, read by a thread that entered it (programs it starts run
/// there too), or why it cannot be entered.
pub fn read_in(
    inode: u64,
    proc_root: &Path,
    sources: &Sources,
) -> Result<Result<Ruleset, LoadError>, String> {
    let root = ProcRoot::open(proc_root).map_err(|e| format!("cannot list namespaces: {e}"))?;
    let discovery = netns::discover(&root).map_err(|e| format!("cannot list namespaces: {e}"))?;
    let ns = open(&discovery, inode, proc_root)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                ns.enter().map_err(|e| format!("cannot enter it: {e}"))?;
                Ok(Ruleset::load(sources))
            })
            .join()
            .unwrap_or_else(|_| Err("its reader failed".into()))
    })
}

/// A handle on namespace `inode`: through a bind mount, else a process living in it.
fn open(discovery: &netns::Discovery, inode: u64, proc_root: &Path) -> Result<NsFd, String> {
    let ns = discovery
        .get(inode)
        .ok_or_else(|| "it is no longer there".to_string())?;
    let by_mount = ns.mounts.iter().map(|m| netns::nsfd::of_mount(m, inode));
    let by_pid = (ns.pids.iter()).map(|&pid| netns::nsfd::of_process(proc_root, pid, inode));
    let mut last = "no process lives in it and nothing mounts it".to_string();
    for attempt in by_mount.chain(by_pid) {
        match attempt {
            Ok(handle) => return Ok(handle),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
