//! Real cgroup v2 directories for the label tests: where the cgroup2 file system is mounted
//! (on a hybrid host it is `/sys/fs/cgroup/unified`, not `/sys/fs/cgroup`), and small files of
//! fake runtime state.

use std::fs;
use std::path::{Path, PathBuf};

use lsports::sys::cgroupfs;

use super::{is_root, skip_unless_ci};

/// The cgroup2 mount, for a test that makes cgroups: `None` (after saying why, and failing
/// under `CI=true`) without root or without a cgroup2 file system.
pub fn cgroup2_mount_as_root(needs: &str) -> Option<PathBuf> {
    if !is_root() {
        skip_unless_ci(&format!("{needs} needs root"));
        return None;
    }
    let info = fs::read("/proc/self/mountinfo").unwrap();
    let mount = cgroupfs::cgroup2_mount(&info);
    if mount.is_none() {
        skip_unless_ci("no cgroup2 file system is mounted");
    }
    mount
}

/// Write `content` to `rel` under `root`, making its directories.
pub fn put(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}
