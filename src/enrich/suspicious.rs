//! Suspicious listeners: what about a listener deserves a second look, whether or not it was
//! expected, each with a one-line explanation.
//!
//! | flag | when |
//! |---|---|
//! | `exe-deleted` | a holder's executable was deleted or replaced after it started (`/proc/PID/exe` ends in ` (deleted)`), or never was on disk (`/memfd:NAME (deleted)`: run from memory) |
//! | `exe-writable-dir` | a holder's executable lies in `/tmp`, `/var/tmp`, `/dev/shm` or any directory every user may write to, or is itself writable by every user |
//! | `exe-masked` | a holder's executable path holds only in mounts an unprivileged user made (see [`crate::enrich::exe`]): the path is that user's claim, and where the real file lies cannot be checked |
//! | `root-exposed` | reachable from outside this host and held by a root process |
//! | `no-owner` | no process holds it although every process could be inspected, or its holder is hidden from `/proc` (a mount over `/proc/PID`) |
//!
//! Directories are checked through `/proc/PID/root`, the process's own view of the file
//! system, so a container's `/srv/app` is the container's, not the host's. Where that link
//! cannot be followed (another user's process without privileges, a snapshot) only the
//! temporary directories are recognised, by path.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::enrich::exe::{Executables, Masked};
use crate::model::exposure;
use crate::model::finding::{Finding, Flag};
use crate::model::{Entry, OwnerUnknownReason};
use crate::text::pids::pid_list;
use crate::text::sanitize;

/// What the kernel appends to the link of an executable that is no longer on disk.
const DELETED_SUFFIX: &[u8] = b" (deleted)";
/// How the kernel names the executable of a process run from a `memfd_create(2)` file.
const MEMFD_PREFIX: &[u8] = b"/memfd:";
/// Directories for temporary files, writable by everyone on any normal system.
const TEMPORARY_DIRS: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];
/// `S_IWOTH`.
const WORLD_WRITABLE: u32 = 0o002;

/// Every flag `entry` raises, one finding per flag and executable, in [`Flag::EVERY`] order.
/// `exes` must hold the holders' executables (see [`Executables::read`]).
pub fn inspect(entry: &Entry, exes: &Executables, proc_root: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (exe, pids) in executables(entry, exes) {
        match pids.first().and_then(|&pid| exes.masked(pid)) {
            // Its directories are the user's to arrange: no verdict on them would mean anything.
            Some(masked) => findings.extend(masked_findings(masked, &pids)),
            None => findings.extend(exe_findings(&exe, &pids, proc_root)),
        }
    }
    findings.extend(root_exposed(entry));
    findings.extend(no_owner(entry));
    findings.sort_by_key(|f| f.flag);
    findings
}

/// The distinct executables of the holders, each with the pids running it.
fn executables(entry: &Entry, exes: &Executables) -> Vec<(Vec<u8>, Vec<u32>)> {
    let mut found: Vec<(Vec<u8>, Vec<u32>)> = Vec::new();
    for process in &entry.processes {
        let Some(exe) = exes.get(process.pid) else {
            continue;
        };
        match found.iter_mut().find(|(e, _)| e == exe) {
            Some((_, pids)) => pids.push(process.pid),
            None => found.push((exe.to_vec(), vec![process.pid])),
        }
    }
    found
}

/// The flags raised by one executable link (as `readlink /proc/PID/exe` gave it), run by
/// `pids`; the directories are looked up through the first pid's root.
pub fn exe_findings(exe: &[u8], pids: &[u32], proc_root: &Path) -> Vec<Finding> {
    let who = holders(pids);
    let gone = gone(exe, &who, "");
    let mut findings: Vec<Finding> = gone.finding.into_iter().collect();
    if gone.in_memory {
        // No directory holds it: nothing more to look up.
        return findings;
    }
    let shown = sanitize::terminal_safe(gone.path);
    let path = Path::new(std::ffi::OsStr::from_bytes(gone.path));
    if let Some(reason) = pids.first().and_then(|&pid| writable(path, pid, proc_root)) {
        findings.push(Finding {
            flag: Flag::ExeWritableDir,
            explanation: format!(
                "{who}: executable {shown} {reason}, so anyone could have put it there"
            ),
        });
    }
    findings
}

/// The flags raised by an executable whose path holds only in an unprivileged user's mounts.
fn masked_findings(masked: &Masked, pids: &[u32]) -> Vec<Finding> {
    let who = holders(pids);
    let user = match masked.user {
        Some(uid) => format!("user {uid}"),
        None => "an unprivileged user".into(),
    };
    let gone = gone(&masked.link, &who, &format!(" (in mounts {user} made)"));
    let shown = sanitize::terminal_safe(gone.path);
    let mut findings: Vec<Finding> = gone.finding.into_iter().collect();
    findings.push(Finding {
        flag: Flag::ExeMasked,
        explanation: format!(
            "{who}: executable {shown} is that path only in mounts {user} made (a user \
             namespace), not in this host's file system, so the path says nothing about what \
             runs"
        ),
    });
    findings
}

/// What an executable link (`readlink /proc/PID/exe`) says of a file no longer on disk.
struct Gone<'a> {
    /// The path, its ` (deleted)` taken off.
    path: &'a [u8],
    /// `exe-deleted`, where the file is gone.
    finding: Option<Finding>,
    /// Run from a `memfd_create(2)` file: never on disk, no directory holds it.
    in_memory: bool,
}

/// Whether `link` names a file no longer on disk, said for `who`; `context` follows the
/// deleted file's explanation (whose mounts it was in).
fn gone<'a>(link: &'a [u8], who: &str, context: &str) -> Gone<'a> {
    let (path, deleted) = match link.strip_suffix(DELETED_SUFFIX) {
        Some(path) => (path, true),
        None => (link, false),
    };
    // `memfd_create(2)` files read back as `/memfd:NAME (deleted)`: never on disk at all, the
    // shape of fileless malware (or of a program unpacking itself), not an upgrade.
    let in_memory = (path.strip_prefix(MEMFD_PREFIX)).filter(|_| deleted);
    let explanation = match in_memory {
        Some(name) => format!(
            "{who}: runs from an in-memory file (memfd:{}), never on disk (fileless malware \
             runs so, or a program that unpacks itself)",
            sanitize::terminal_safe(name)
        ),
        None if deleted => format!(
            "{who}: executable {} was deleted or replaced after it started{context} (an \
             upgrade awaiting a restart, or a program hiding its binary)",
            sanitize::terminal_safe(path)
        ),
        None => String::new(),
    };
    Gone {
        path,
        finding: deleted.then_some(Finding {
            flag: Flag::ExeDeleted,
            explanation,
        }),
        in_memory: in_memory.is_some(),
    }
}

/// `pid 812` or `pids 700,701,702`.
fn holders(pids: &[u32]) -> String {
    let list = pid_list(pids, false);
    if pids.len() == 1 {
        format!("pid {list}")
    } else {
        format!("pids {list}")
    }
}

/// Why `path` is writable by anyone, if it is: in a temporary directory, under a
/// world-writable directory, or world-writable itself.
fn writable(path: &Path, pid: u32, proc_root: &Path) -> Option<String> {
    if let Some(dir) = TEMPORARY_DIRS.iter().find(|dir| path.starts_with(dir)) {
        return Some(format!("is in {dir}, a temporary directory"));
    }
    // The process's own root: its mount namespace, its chroot.
    let root = proc_root.join(pid.to_string()).join("root");
    let mode = |p: &Path| -> Option<u32> {
        let relative = p.strip_prefix("/").unwrap_or(p);
        std::fs::symlink_metadata(root.join(relative))
            .ok()
            .map(|m| m.mode())
    };
    if mode(path).is_some_and(|m| m & WORLD_WRITABLE != 0) {
        return Some("is writable by every user".into());
    }
    let dir: PathBuf = path
        .ancestors()
        .skip(1)
        .find(|dir| mode(dir).is_some_and(|m| m & WORLD_WRITABLE != 0))?
        .to_path_buf();
    let dir = sanitize::terminal_safe(dir.as_os_str().as_bytes()).into_owned();
    Some(format!(
        "is under {dir}, a directory every user can write to"
    ))
}

fn root_exposed(entry: &Entry) -> Option<Finding> {
    let exposure = exposure::classify(&entry.socket);
    if !exposure.is_external() {
        return None;
    }
    let root_pids: Vec<u32> = entry
        .processes
        .iter()
        .filter(|p| p.uid == Some(0))
        .map(|p| p.pid)
        .collect();
    if root_pids.is_empty() {
        return None;
    }
    Some(Finding {
        flag: Flag::RootExposed,
        explanation: format!(
            "{}: reachable from outside (exposure {}) and running as root, so a flaw in it is a \
             flaw in the whole host",
            holders(&root_pids),
            exposure.name()
        ),
    })
}

fn no_owner(entry: &Entry) -> Option<Finding> {
    if !entry.processes.is_empty() {
        return None;
    }
    let explanation = match entry.owner_unknown? {
        // Not every process could be inspected, or not every process is visible from this PID
        // namespace: the holder is probably among those, and "no owner" would be a guess.
        OwnerUnknownReason::Permission | OwnerUnknownReason::OutsidePidNamespace => return None,
        // No process ever holds a TIME_WAIT or request socket: nothing is missing.
        OwnerUnknownReason::Minisock => return None,
        OwnerUnknownReason::Kernel => {
            "no process holds it although every process was inspected: a socket of the kernel \
             itself (nfsd, WireGuard, VXLAN) or of a process hidden from /proc"
        }
        OwnerUnknownReason::NotFound => {
            "no process holds it although every process was inspected: its holder exited \
             during the scan, passed it on, or is hidden from /proc"
        }
        OwnerUnknownReason::Hidden => {
            "its holder is hidden from /proc: something is mounted over a process's /proc/PID \
             directory, so what it runs and holds cannot be read (see stderr for the pid)"
        }
    };
    Some(Finding {
        flag: Flag::NoOwner,
        explanation: explanation.into(),
    })
}

#[cfg(test)]
mod tests;
