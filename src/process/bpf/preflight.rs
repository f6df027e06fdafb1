//! What must hold before the kernel is asked to load anything: the proc root is this process's
//! live `/proc` (so the pids the kernel gives, numbered in this process's pid namespace, are
//! the ones it shows), the process may load tracing programs, and the kernel describes its
//! types.
//!
//! Each check costs a file read, far less than a refused `bpf()` call, and names the missing
//! piece precisely where the kernel would only say `EPERM` or `EINVAL`. Parsers take the file
//! contents, so they are tested without privileges.

use std::path::Path;

use super::BTF_PATH;
use super::error::BpfUnavailable;
use crate::sys::procroot::ProcRoot;

/// `CAP_SYS_ADMIN`: implies both of the others for BPF.
const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_PERFMON`: reading kernel memory from a tracing program.
const CAP_PERFMON: u32 = 38;
/// `CAP_BPF`: loading programs.
const CAP_BPF: u32 = 39;

/// Proof that every check passed: the iterator is only run with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked(());

/// Run every check, or say which piece is missing.
pub fn check(proc_root: &Path) -> Result<Checked, BpfUnavailable> {
    check_live_proc(proc_root)?;
    let root = ProcRoot::open(proc_root).map_err(BpfUnavailable::Read)?;
    let status = root
        .read_file("self/status")
        .map_err(BpfUnavailable::Read)?;
    check_capabilities(&status)?;
    let uid_map = root
        .read_file("self/uid_map")
        .map_err(BpfUnavailable::Read)?;
    if !is_initial_user_ns(&uid_map) {
        return Err(BpfUnavailable::UserNamespace);
    }
    check_btf(Path::new(BTF_PATH))?;
    Ok(Checked(()))
}

/// The proc root must be a proc mount whose `self` is this process: otherwise it is a fixture
/// tree, a snapshot or another pid namespace's view, and kernel pids would not match it.
fn check_live_proc(proc_root: &Path) -> Result<(), BpfUnavailable> {
    let not_live = || BpfUnavailable::NotLiveProc {
        proc_root: proc_root.to_path_buf(),
    };
    let is_proc = nix::sys::statfs::statfs(proc_root)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
    let me = std::process::id().to_string();
    let is_me =
        std::fs::read_link(proc_root.join("self")).is_ok_and(|target| target == Path::new(&me));
    if is_proc && is_me {
        Ok(())
    } else {
        Err(not_live())
    }
}

/// Whether the effective capabilities in `status` allow loading a tracing iterator.
pub fn check_capabilities(status: &[u8]) -> Result<(), BpfUnavailable> {
    let effective = status_field(status, "CapEff:")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return Ok(());
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| !has(cap))
        .map(|(_, name)| name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(BpfUnavailable::MissingCapability {
        missing: missing.join(" and "),
    })
}

/// The initial user namespace maps every uid to itself: `0 0 4294967295`.
pub fn is_initial_user_ns(uid_map: &[u8]) -> bool {
    let text = String::from_utf8_lossy(uid_map);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_ascii_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

fn check_btf(path: &Path) -> Result<(), BpfUnavailable> {
    std::fs::metadata(path)
        .map(drop)
        .map_err(|error| BpfUnavailable::NoBtf {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })
}

/// The value of the `status` line starting with `key`, trimmed.
fn status_field<'a>(status: &'a [u8], key: &str) -> Option<&'a str> {
    status
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(key.as_bytes()))
        .and_then(|value| std::str::from_utf8(value).ok())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_bpf_perfmon_may_load_others_may_not() {
        assert!(check_capabilities(b"Name:\tx\nCapEff:\t000001ffffffffff\n").is_ok());
        // CAP_SYS_ADMIN alone is enough.
        assert!(check_capabilities(b"CapEff:\t0000000000200000\n").is_ok());
        // CAP_BPF + CAP_PERFMON.
        assert!(check_capabilities(b"CapEff:\t000000c000000000\n").is_ok());
        let only_bpf = check_capabilities(b"CapEff:\t0000008000000000\n").unwrap_err();
        assert_eq!(only_bpf.kind(), "capability");
        assert!(only_bpf.to_string().contains("missing CAP_PERFMON"));
        let none = check_capabilities(b"CapEff:\t0000000000000000\n").unwrap_err();
        assert!(none.to_string().contains("missing CAP_BPF and CAP_PERFMON"));
        assert!(check_capabilities(b"garbage").is_err());
    }

    #[test]
    fn only_the_identity_map_is_the_initial_user_namespace() {
        assert!(is_initial_user_ns(b"         0          0 4294967295\n"));
        assert!(!is_initial_user_ns(b"         0       1000          1\n"));
        assert!(!is_initial_user_ns(b"0 0 1000\n1000 1000 1\n"));
        assert!(!is_initial_user_ns(b""));
    }

    #[test]
    fn a_directory_tree_is_not_a_live_proc() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_live_proc(dir.path()).unwrap_err();
        assert_eq!(err.kind(), "proc_root");
        assert!(check_live_proc(Path::new("/proc")).is_ok());
    }
}
