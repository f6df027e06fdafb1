//! The cgroup v2 file system: where it is mounted, and from a socket's cgroup id
//! (`INET_DIAG_CGROUP_ID` in a sock_diag reply) to the cgroup's path.
//!
//! A cgroup v2 id is the inode number of the cgroup's directory in the cgroup2 file system
//! (kernfs gives each node its id as inode number, Linux 5.5 and later on 64-bit). So one
//! walk of the cgroup2 mount builds the whole id → path map. The walk is bounded (depth and
//! number of directories), opens every directory relative to its parent with `O_NOFOLLOW`,
//! and never follows a link (cgroupfs has none, but the mount given may be any directory).

use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::sys::stat::fstat;
use rustix::fs::{Mode, OFlags, openat};

/// How deep the walk goes (the kernel's own default limit is far deeper, but real trees are
/// rarely ten levels deep).
pub const MAX_DEPTH: usize = 32;
/// How many cgroups the walk records at most.
pub const MAX_CGROUPS: usize = 200_000;

/// The cgroups under one cgroup2 mount, by id.
#[derive(Debug, Default)]
pub struct CgroupIndex {
    by_id: HashMap<u64, Box<[u8]>>,
}

impl CgroupIndex {
    /// Walk the cgroup2 file system mounted at `mount`. Paths are relative to the mount and
    /// start with `/`, as `/proc/PID/cgroup` writes them.
    pub fn build(mount: &Path) -> io::Result<CgroupIndex> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = rustix::fs::open(mount, flags, Mode::empty())
            .map_err(|e| io::Error::other(format!("{}: {e}", mount.display())))?;
        let mut index = CgroupIndex::default();
        let mut path = Vec::new();
        index.walk(root, &mut path, 0)?;
        Ok(index)
    }

    /// The path of the cgroup `id`, if the walk saw it.
    pub fn path(&self, id: u64) -> Option<&[u8]> {
        self.by_id.get(&id).map(|p| &p[..])
    }

    /// How many cgroups the walk recorded.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the walk recorded none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Record `dir` (at `path`, empty for the root) and the directories below it.
    fn walk(&mut self, dir: OwnedFd, path: &mut Vec<u8>, depth: usize) -> io::Result<()> {
        let ino = fstat(dir.as_raw_fd())?.st_ino;
        let shown: &[u8] = if path.is_empty() { b"/" } else { path };
        self.by_id.insert(ino, shown.into());
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        for name in subdirectories(&dir)? {
            if self.by_id.len() >= MAX_CGROUPS {
                break;
            }
            let Some(child) = open_subdirectory(&dir, &name) else {
                continue; // removed meanwhile, or not a directory after all
            };
            let len = path.len();
            path.push(b'/');
            path.extend_from_slice(&name);
            self.walk(child, path, depth + 1)?;
            path.truncate(len);
        }
        Ok(())
    }
}

/// The names of the directories in `dir` (links and files left out).
fn subdirectories(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut entries = Dir::from(dir.try_clone()?)?;
    let mut names = Vec::new();
    for entry in entries.iter() {
        let entry = entry?;
        let name: &CStr = entry.file_name();
        let name = name.to_bytes();
        // An unknown type is checked when the directory is opened with O_NOFOLLOW.
        let maybe_dir = matches!(entry.file_type(), Some(Type::Directory) | None);
        if maybe_dir && name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Open the subdirectory `name` of `dir`, never through a link.
fn open_subdirectory(dir: &OwnedFd, name: &[u8]) -> Option<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    openat(dir, OsStr::from_bytes(name), flags, Mode::empty()).ok()
}

/// The mount point of the first cgroup2 file system in a `/proc/PID/mountinfo`, with the
/// kernel's octal escapes (`\040` for a space) undone.
pub fn cgroup2_mount(mountinfo: &[u8]) -> Option<PathBuf> {
    mountinfo.split(|&b| b == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        // After the optional fields, a lone `-`, then the file system type.
        let dash = fields.iter().position(|f| *f == b"-")?;
        let mount = fields.get(4)?;
        (*fields.get(dash + 1)? == b"cgroup2")
            .then(|| PathBuf::from(OsStr::from_bytes(&unescape_octal(mount))))
    })
}

/// Undo mountinfo's `\ooo` escapes.
fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        // At most \377: a larger number is no byte, and is kept as written.
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d[0] <= b'3' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) if field[i] == b'\\' => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            _ => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
