//! The cgroup v2 file system: where it is mounted, and from a socket's cgroup id
//! (`INET_DIAG_CGROUP_ID` in a sock_diag reply) to the cgroup's path.
//!
//! A cgroup v2 id is the inode number of the cgroup's directory in the cgroup2 file system
//! (kernfs gives each node its id as inode number, Linux 5.5 and later on 64-bit). So one
//! walk of the cgroup2 mount builds the whole id → path map. The walk is bounded (depth and
//! number of directories), opens every directory relative to its parent with `O_NOFOLLOW`,
//! and never follows a link (cgroupfs has none, but the mount given may be any directory).
//!
//! The same tree says which process is in which cgroup ([`CgroupIndex::members`]): one
//! `cgroup.procs` read per cgroup instead of one `/proc/PID/cgroup` read per process. Where
//! processes outnumber cgroups, that is fewer reads, and each is cheaper (measured in
//! `bench/compare.sh labels`' world, 1,000 processes in 201 containers: 204 `cgroup.procs`
//! reads in 3–11 ms against 23–32 ms for the processes' 1,218 `/proc/PID/cgroup`; procfs
//! takes the cgroup mutex and prints every hierarchy of a hybrid host for each process).
//!
//! The walk works on a cgroup v1 hierarchy too (kernfs as well), whose `tasks` say where
//! each thread is ([`CgroupIndex::threads_below_root`]); a walk cut short by its limits says
//! so ([`CgroupIndex::is_complete`]), for a reader that infers "in the root" from "listed in
//! no other cgroup".

use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::sys::stat::fstat;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, openat, statat};

/// How deep the walk goes (the kernel's own default limit is far deeper, but real trees are
/// rarely ten levels deep).
pub const MAX_DEPTH: usize = 32;
/// How many cgroups the walk records at most.
pub const MAX_CGROUPS: usize = 200_000;
/// Cgroups whose members are read on a second thread from this many on (about 15 µs each, a
/// thread about 100 µs).
const PARALLEL_FROM: usize = 32;

/// The cgroups under one cgroup2 mount, by id.
#[derive(Debug, Default)]
pub struct CgroupIndex {
    by_id: HashMap<u64, Box<[u8]>>,
    /// Whether a directory's link count says how many subdirectories it has (2 + that many,
    /// as kernfs keeps it): then a cgroup with none (most: every container's, every
    /// service's) is known from its `stat` alone, and not opened and listed. Only on cgroup2
    /// itself: other file systems may count otherwise (btrfs gives a directory one link).
    counts_subdirectories: bool,
    /// How many cgroups the walk records at most.
    limit: usize,
    /// Whether a limit (depth, count) left some directory out.
    cut: bool,
    /// The id of the mount's root.
    root: u64,
}

impl CgroupIndex {
    /// Walk the cgroup2 file system mounted at `mount`. Paths are relative to the mount and
    /// start with `/`, as `/proc/PID/cgroup` writes them.
    pub fn build(mount: &Path) -> io::Result<CgroupIndex> {
        CgroupIndex::build_at_most(mount, MAX_CGROUPS)
    }

    /// [`CgroupIndex::build`], recording at most `limit` cgroups (and never more than
    /// [`MAX_CGROUPS`]): for a reader that has a use for the index only when it is small.
    pub fn build_at_most(mount: &Path, limit: usize) -> io::Result<CgroupIndex> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = rustix::fs::open(mount, flags, Mode::empty())
            .map_err(|e| io::Error::other(format!("{}: {e}", mount.display())))?;
        let mut index = CgroupIndex {
            counts_subdirectories: is_cgroup2(mount) || is_cgroup_v1(mount),
            limit: limit.min(MAX_CGROUPS),
            ..CgroupIndex::default()
        };
        let mut path = Vec::new();
        let ino = fstat(root.as_raw_fd())?.st_ino;
        index.root = ino;
        index.walk(root, ino, &mut path, 0)?;
        Ok(index)
    }

    /// The path of the cgroup `id`, if the walk saw it.
    pub fn path(&self, id: u64) -> Option<&[u8]> {
        self.by_id.get(&id).map(|p| &p[..])
    }

    /// Each process in the cgroups the walk saw, by pid, with its cgroup's id: read from every
    /// cgroup's `cgroup.procs` under `mount` (the mount walked). Pids are as this process's
    /// PID namespace numbers them (a process outside it, which the kernel shows as 0, is left
    /// out), so they match `/proc` only where `/proc` is this namespace's. A process listed in
    /// several cgroups (its threads in a threaded subtree) keeps the top-most, its domain.
    /// A cgroup removed meanwhile is skipped.
    pub fn members(&self, mount: &Path) -> io::Result<HashMap<u32, u64>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = rustix::fs::open(mount, flags, Mode::empty())
            .map_err(|e| io::Error::other(format!("{}: {e}", mount.display())))?;
        let cgroups: Vec<(u64, &[u8])> = self.by_id.iter().map(|(&id, p)| (id, &p[..])).collect();
        let (first, second) = cgroups.split_at(cgroups.len() / 2);
        let read = |part: &[(u64, &[u8])]| read_members(&root, part, PROCS);
        // Half on another core, when there are enough to pay for a thread: the reads are
        // independent, and at this point of a run the second core is idle.
        let (mine, theirs) = std::thread::scope(|scope| {
            let other = (second.len() >= PARALLEL_FROM)
                .then(|| {
                    let thread = std::thread::Builder::new().name("cgroups".into());
                    thread.spawn_scoped(scope, || read(second)).ok()
                })
                .flatten();
            let mine = read(first);
            let theirs = match other.map(|thread| thread.join()) {
                Some(Ok(theirs)) => theirs,
                _ => read(second),
            };
            (mine, theirs)
        });
        let mut members: HashMap<u32, u64> = HashMap::new();
        for (pid, id) in mine.into_iter().chain(theirs) {
            let kept = members.entry(pid).or_insert(id);
            if self.by_id[kept].len() > self.by_id[&id].len() {
                *kept = id;
            }
        }
        Ok(members)
    }

    /// Each thread in a cgroup other than the root, by thread id, with its cgroup's id: read
    /// from the `tasks` file of every cgroup the walk saw but the root, on a cgroup v1
    /// hierarchy mounted at `mount` (the mount walked). A process's own id is the id of its
    /// main thread, so the process's entry says where that thread is: where `/proc/PID/cgroup`
    /// says the process is. Thread ids are as this process's PID namespace numbers them (the
    /// kernel leaves out threads outside it). A cgroup removed meanwhile is skipped.
    pub fn threads_below_root(&self, mount: &Path) -> io::Result<HashMap<u32, u64>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = rustix::fs::open(mount, flags, Mode::empty())
            .map_err(|e| io::Error::other(format!("{}: {e}", mount.display())))?;
        let cgroups: Vec<(u64, &[u8])> = (self.by_id.iter())
            .filter(|(_, path)| path[..] != b"/"[..])
            .map(|(&id, p)| (id, &p[..]))
            .collect();
        Ok(read_members(&root, &cgroups, TASKS).into_iter().collect())
    }

    /// The id of the root cgroup (the mount's root, path `/`).
    pub fn root_id(&self) -> u64 {
        self.root
    }

    /// Whether the walk recorded every directory below the mount: no limit of depth or number
    /// cut it short (directories made or removed meanwhile aside).
    pub fn is_complete(&self) -> bool {
        !self.cut
    }

    /// How many cgroups the walk recorded.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the walk recorded none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Record `dir` (inode `ino`, at `path`, empty for the root) and the directories below it.
    fn walk(&mut self, dir: OwnedFd, ino: u64, path: &mut Vec<u8>, depth: usize) -> io::Result<()> {
        self.record(ino, path);
        let names = subdirectories(&dir)?;
        if depth >= MAX_DEPTH {
            self.cut |= !names.is_empty();
            return Ok(());
        }
        for name in names {
            if self.by_id.len() >= self.limit {
                self.cut = true;
                break;
            }
            let len = path.len();
            path.push(b'/');
            path.extend_from_slice(&name);
            match self.leaf(&dir, &name) {
                Some(Leaf::Yes(ino)) => self.record(ino, path),
                Some(Leaf::No) => {
                    // Not known to be a leaf: opened and listed (and never through a link).
                    if let Some(child) = open_subdirectory(&dir, &name) {
                        let ino = fstat(child.as_raw_fd())?.st_ino;
                        self.walk(child, ino, path, depth + 1)?;
                    }
                }
                None => {} // removed meanwhile, or not a directory after all
            }
            path.truncate(len);
        }
        Ok(())
    }

    /// Record the cgroup `ino` at `path` (empty for the root).
    fn record(&mut self, ino: u64, path: &[u8]) {
        let shown: &[u8] = if path.is_empty() { b"/" } else { path };
        self.by_id.insert(ino, shown.into());
    }

    /// Whether the subdirectory `name` of `dir` has no subdirectory of its own, from its link
    /// count where the file system keeps one per subdirectory; `None` if it is not a directory
    /// (a link, or gone).
    fn leaf(&self, dir: &OwnedFd, name: &[u8]) -> Option<Leaf> {
        if !self.counts_subdirectories {
            return Some(Leaf::No);
        }
        let stat = statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return None;
        }
        Some(match stat.st_nlink {
            2 => Leaf::Yes(stat.st_ino),
            _ => Leaf::No,
        })
    }
}

/// What a directory's `stat` says of its subdirectories.
enum Leaf {
    /// It has none; its inode.
    Yes(u64),
    /// It may have some.
    No,
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

/// The file of a cgroup that lists its processes.
const PROCS: &str = "cgroup.procs";
/// The file of a cgroup v1 cgroup that lists its threads.
const TASKS: &str = "tasks";

/// Every (pid, cgroup id) of the `file` ([`PROCS`] or [`TASKS`]) of `cgroups` (id and path)
/// below `root`.
fn read_members(root: &OwnedFd, cgroups: &[(u64, &[u8])], file: &str) -> Vec<(u32, u64)> {
    let mut members = Vec::new();
    let mut content = Vec::new();
    for &(id, path) in cgroups {
        if read_listing(root, path, file, &mut content) {
            let pids = content.split(|&b| b == b'\n').filter_map(parse_pid);
            members.extend(pids.map(|pid| (pid, id)));
        }
    }
    members
}

/// Read the `file` of the cgroup at `path` (as the index keeps it, `/` for the root) below
/// `root` into `content`; false if it cannot be read.
fn read_listing(root: &OwnedFd, path: &[u8], file: &str, content: &mut Vec<u8>) -> bool {
    let mut rel = path.strip_prefix(b"/").unwrap_or(path).to_vec();
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(file.as_bytes());
    // The walk saw only real directories on the way (cgroupfs has no links); O_NONBLOCK, so
    // that a FIFO in a directory given as the mount cannot stall the run.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(file) = openat(root, OsStr::from_bytes(&rel), flags, Mode::empty()) else {
        return false;
    };
    content.clear();
    std::fs::File::from(file).read_to_end(content).is_ok()
}

/// A pid line of `cgroup.procs`; `None` for 0 (a process outside the reader's PID namespace)
/// or anything that is no pid.
fn parse_pid(line: &[u8]) -> Option<u32> {
    let pid: u32 = std::str::from_utf8(line).ok()?.parse().ok()?;
    (pid != 0).then_some(pid)
}

/// Open the subdirectory `name` of `dir`, never through a link.
fn open_subdirectory(dir: &OwnedFd, name: &[u8]) -> Option<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    openat(dir, OsStr::from_bytes(name), flags, Mode::empty()).ok()
}

/// Whether `path` is the root of a mounted cgroup2 file system (or a directory in one).
pub fn is_cgroup2(path: &Path) -> bool {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    file_system_is(path, CGROUP2_SUPER_MAGIC)
}

/// Whether `path` is the root of a mounted cgroup v1 hierarchy (or a directory in one).
pub fn is_cgroup_v1(path: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
    file_system_is(path, CGROUP_SUPER_MAGIC)
}

/// Whether the file system at `path` has the magic number `magic`.
fn file_system_is(path: &Path, magic: i64) -> bool {
    // `f_type` is an i64 here, but its type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(path).is_ok_and(|fs| fs.f_type as i64 == magic)
}

/// The mount point of a `/proc/PID/mountinfo` line if it mounts the root of the cgroup v1
/// hierarchy named `name` (`name=systemd`: `name` is `systemd`), with the kernel's octal
/// escapes undone; `None` for any other line, and for a mount of a cgroup below the root
/// (a container's view of its own cgroup), whose paths are not those `/proc/PID/cgroup`
/// writes.
pub fn named_v1_mount(line: &[u8], name: &[u8]) -> Option<PathBuf> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let dash = fields.iter().position(|f| *f == b"-")?;
    let (root, mount) = (fields.get(3)?, fields.get(4)?);
    let options = fields.get(dash + 3)?;
    let named = |option: &[u8]| option.strip_prefix(b"name=") == Some(name);
    let ours = *fields.get(dash + 1)? == b"cgroup"
        && *root == b"/"
        && options.split(|&b| b == b',').any(named);
    ours.then(|| PathBuf::from(OsStr::from_bytes(&unescape_octal(mount))))
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
