//! Finding the network namespaces of a host: every process's `/proc/PID/ns/net`, and every
//! nsfs bind mount in `/proc/self/mountinfo` (which also names them), de-duplicated by inode.
//!
//! Namespaces that only a socket keeps alive are found later, from the sockets themselves
//! ([`super::pinned`]): neither a process nor a mount leads to them.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::mountinfo;
use super::{Namespace, Origin};
use crate::sys::procroot::{ProcRoot, StackPath};

/// The namespaces found, and what could not be looked at.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Every namespace found, sorted by inode.
    pub namespaces: Vec<Namespace>,
    /// The inode of the caller's own namespace, where the proc root tells it.
    pub current: Option<u64>,
    /// Processes whose namespace could not be read (`EACCES`: another user's process, read
    /// without `CAP_SYS_PTRACE`): their namespaces may be missing from `namespaces`.
    pub unreadable: Vec<u32>,
    /// Why the mount table could not be read, if it could not: named namespaces no process
    /// lives in are then missing.
    pub mounts_error: Option<io::Error>,
}

impl Discovery {
    /// The namespace with this inode.
    pub fn get(&self, inode: u64) -> Option<&Namespace> {
        self.namespaces.iter().find(|ns| ns.inode == inode)
    }
}

/// Discover the network namespaces under `root`: the processes' and the bind-mounted ones.
/// Only listing the processes can fail; a process that vanishes meanwhile is skipped.
pub fn discover(root: &ProcRoot) -> io::Result<Discovery> {
    discover_telling(root, |_, _| {})
}

/// [`discover`], telling `met` of each namespace other than the caller's the moment a process
/// is first found in it (its inode, that process's pid), once, while the other processes are
/// still being looked at: `--netns all` reads its socket counts meanwhile.
///
/// The links are read on two threads where there are many processes ([`read_links`]):
/// `--netns all` cannot begin its walk before every namespace is known, and the BPF program
/// it waits for is loaded meanwhile on the other core, which is idle once it is. Measured in
/// the namespaces world (1,216 processes, 201 namespaces; `LSPORTS_TIMING=1`, medians of 9
/// interleaved runs, load average about 20), the main thread's CPU up to "netns:
/// discovered" went from 8.0 to 5.0 ms with this and the one-call link read ([`NetLinks`]);
/// what it gains in wall time depends on the other core being free, which it is not while
/// the BPF program is still being verified, so it was not measurable on that machine.
pub fn discover_telling(root: &ProcRoot, met: impl Fn(u64, u32) + Sync) -> io::Result<Discovery> {
    let mut found: BTreeMap<u64, Namespace> = BTreeMap::new();
    let mut discovery = Discovery {
        current: read_inode(root.read_link("thread-self/ns/net")).ok(),
        ..Discovery::default()
    };
    let pids = root.pids()?;
    let told = Mutex::new(HashSet::new());
    let tell = |inode: u64, pid: u32| {
        let first = told.lock().map_or(true, |mut told| told.insert(inode));
        if first && Some(inode) != discovery.current {
            met(inode, pid);
        }
    };
    let links = read_links(&NetLinks::of(root), &pids, tell);
    for (&pid, link) in pids.iter().zip(links) {
        match link {
            Link::Inode(inode) => found
                .entry(inode)
                .or_insert_with(|| Namespace::new(inode))
                .pids
                .push(pid),
            Link::Denied => discovery.unreadable.push(pid),
            Link::Nothing => {}
        }
    }
    match root.read_file("self/mountinfo") {
        Ok(text) => add_mounts(&mut found, mountinfo::net_mounts(&text)),
        Err(e) => discovery.mounts_error = Some(e),
    }
    discovery.namespaces = found.into_values().collect();
    Ok(discovery)
}

/// What one process's `ns/net` link said.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// The inode of its namespace.
    Inode(u64),
    /// It may not be read (`EACCES`: another user's process, read without
    /// `CAP_SYS_PTRACE`).
    Denied,
    /// Gone meanwhile, or a kernel thread's odd entry: nothing to list.
    Nothing,
}

/// Processes claimed at a time by each thread reading links.
const CLAIM: usize = 64;

/// Below this many processes, one thread reads every link: a second costs more than it saves.
const TWO_THREADS_FROM: usize = 4 * CLAIM;

/// The `ns/net` link of each of `pids`, in their order, `tell` told of each namespace the
/// first time a thread meets it (with the process it met it in). Many processes are read by
/// this thread and one more, each claiming the next [`CLAIM`] processes until none are left,
/// so that a helper the scheduler keeps waiting (the other core verifying the BPF program)
/// leaves its share to this thread instead of holding it up; where no thread can be had, this
/// one reads them all.
fn read_links(links: &NetLinks, pids: &[u32], tell: impl Fn(u64, u32) + Sync) -> Vec<Link> {
    let chunks: Vec<&[u32]> = pids.chunks(CLAIM).collect();
    let next = AtomicUsize::new(0);
    // Each thread's chunks, by index, and the namespaces it has met.
    let work = || {
        let mut met: HashSet<u64> = HashSet::new();
        let mut done: Vec<(usize, Vec<Link>)> = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = chunks.get(index) else {
                return done;
            };
            let read = chunk.iter().map(|&pid| {
                let link = links.inode(pid);
                if let Link::Inode(inode) = link
                    && met.insert(inode)
                {
                    tell(inode, pid);
                }
                link
            });
            done.push((index, read.collect()));
        }
    };
    let done = match pids.len() >= TWO_THREADS_FROM {
        true => std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("netns-links".into())
                .spawn_scoped(scope, work);
            let mut done = work();
            // A helper that panicked read nothing that counts: its chunks are read again here.
            if let Some(theirs) = helper.ok().and_then(|helper| helper.join().ok()) {
                done.extend(theirs);
            }
            done
        }),
        false => work(),
    };
    let mut slots: Vec<Option<Vec<Link>>> = vec![None; chunks.len()];
    for (index, read) in done {
        slots[index] = Some(read);
    }
    let mut all = Vec::with_capacity(pids.len());
    for (slot, chunk) in slots.into_iter().zip(&chunks) {
        // A chunk a panicking helper had claimed is read now.
        all.extend(slot.unwrap_or_else(|| chunk.iter().map(|&pid| links.inode(pid)).collect()));
    }
    all
}

/// How each process's `ns/net` link is read: the one call in discovery made once per process,
/// before the BPF walk may begin (its counts need the namespaces first), so on the critical
/// path of `--netns all`.
enum NetLinks<'r> {
    /// The root is a procfs mount: `readlinkat(root, "PID/ns/net")`, one call. On procfs
    /// `PID` and `ns` are directories the kernel makes, never links, so the path cannot lead
    /// out of the root, and the last component is read, never followed.
    Procfs(&'r ProcRoot),
    /// Any other tree (a fixture, a copy): the process's directory is opened through the
    /// root (which refuses links out of it), then its link read and the directory closed.
    Tree(&'r ProcRoot),
}

impl<'r> NetLinks<'r> {
    fn of(root: &'r ProcRoot) -> Self {
        /// `PROC_SUPER_MAGIC` (linux/magic.h).
        const PROC_SUPER_MAGIC: u64 = 0x9fa0;
        let procfs =
            rustix::fs::fstatfs(root.fd()).is_ok_and(|fs| fs.f_type as u64 == PROC_SUPER_MAGIC);
        match procfs {
            true => NetLinks::Procfs(root),
            false => NetLinks::Tree(root),
        }
    }

    /// What `pid`'s `ns/net` link says.
    fn inode(&self, pid: u32) -> Link {
        match read_inode(self.read(pid)) {
            Ok(inode) => Link::Inode(inode),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Link::Denied,
            Err(_) => Link::Nothing,
        }
    }

    /// The target of `pid`'s `ns/net` link.
    fn read(&self, pid: u32) -> io::Result<Vec<u8>> {
        match self {
            NetLinks::Procfs(root) => {
                let path = StackPath::pid_file(pid, b"ns/net");
                // `net:[4026531840]`: 16 bytes for any 32-bit inode.
                let mut target = [0u8; 64];
                let len = rustix::fs::readlinkat_raw(root.fd(), path.as_cstr(), &mut target[..])?;
                Ok(target[..len.min(target.len())].to_vec())
            }
            NetLinks::Tree(root) => root.process_link(pid, "ns/net"),
        }
    }
}

/// Record each mount on its namespace, naming the namespace after its most telling mount.
fn add_mounts(found: &mut BTreeMap<u64, Namespace>, mounts: Vec<mountinfo::NetMount>) {
    for mount in mounts {
        let ns = found
            .entry(mount.inode)
            .or_insert_with(|| Namespace::new(mount.inode));
        // Mount propagation can list one mount point twice.
        if !ns.mounts.contains(&mount.path) {
            ns.mounts.push(mount.path);
        }
    }
    for ns in found.values_mut() {
        ns.mounts.sort_by_key(|path| mountinfo::name_rank(path));
        ns.name = ns.mounts.first().and_then(|path| mountinfo::name_of(path));
        if !ns.mounts.is_empty() {
            ns.origins.push(Origin::Mount);
        }
        if !ns.pids.is_empty() {
            ns.origins.push(Origin::Process);
        }
    }
}

/// The inode in an `ns/net` link target, `net:[4026531840]`.
fn read_inode(link: io::Result<Vec<u8>>) -> io::Result<u64> {
    let target = link?;
    mountinfo::net_inode(&target).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not a network namespace link: {}",
                crate::text::sanitize::terminal_safe(&target)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    /// A fake proc tree: processes with `ns/net` links, and a mountinfo.
    fn tree(pids: &[(u32, &str)], mountinfo: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, target) in pids {
            let ns = dir.path().join(format!("{pid}/ns"));
            std::fs::create_dir_all(&ns).unwrap();
            symlink(target, ns.join("net")).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("77")).unwrap();
        std::fs::write(dir.path().join("77/mountinfo"), mountinfo).unwrap();
        symlink("77", dir.path().join("self")).unwrap();
        symlink("77", dir.path().join("thread-self")).unwrap();
        let ns = dir.path().join("77/ns");
        std::fs::create_dir_all(&ns).unwrap();
        symlink("net:[100]", ns.join("net")).unwrap();
        dir
    }

    fn inodes(d: &Discovery) -> Vec<u64> {
        d.namespaces.iter().map(|ns| ns.inode).collect()
    }

    #[test]
    fn processes_sharing_a_namespace_make_one_entry_with_every_pid() {
        let dir = tree(&[(1, "net:[100]"), (5, "net:[200]"), (9, "net:[200]")], b"");
        let d = discover(&ProcRoot::open(dir.path()).unwrap()).unwrap();
        assert_eq!(inodes(&d), vec![100, 200]);
        assert_eq!(d.get(100).unwrap().pids, vec![1, 77]);
        assert_eq!(d.get(200).unwrap().pids, vec![5, 9]);
        assert_eq!(d.current, Some(100));
        assert!(d.get(200).unwrap().name.is_none());
    }

    #[test]
    fn a_bind_mount_names_a_namespace_and_adds_one_no_process_lives_in() {
        let mounts = b"1 2 0:4 net:[200] /run/netns/w1 rw - nsfs nsfs rw\n\
                       3 2 0:4 net:[200] /run/netns/w1 rw - nsfs nsfs rw\n\
                       4 2 0:4 net:[200] /tmp/also rw - nsfs nsfs rw\n\
                       5 2 0:4 net:[300] /run/docker/netns/abc rw - nsfs nsfs rw\n";
        let dir = tree(&[(5, "net:[200]")], mounts);
        let d = discover(&ProcRoot::open(dir.path()).unwrap()).unwrap();
        assert_eq!(inodes(&d), vec![100, 200, 300]);
        let w1 = d.get(200).unwrap();
        assert_eq!(w1.name.as_deref(), Some("w1".as_ref()));
        assert_eq!(
            w1.mounts,
            vec![Path::new("/run/netns/w1"), Path::new("/tmp/also")]
        );
        assert_eq!(w1.origins, vec![Origin::Mount, Origin::Process]);
        let docker = d.get(300).unwrap();
        assert!(docker.pids.is_empty());
        assert_eq!(docker.name.as_deref(), Some("abc".as_ref()));
    }

    #[test]
    fn each_other_namespace_is_told_once_with_the_first_process_found_in_it() {
        let dir = tree(
            &[
                (1, "net:[100]"),
                (5, "net:[200]"),
                (9, "net:[200]"),
                (12, "net:[300]"),
            ],
            b"",
        );
        let met = Mutex::new(Vec::new());
        let d = discover_telling(&ProcRoot::open(dir.path()).unwrap(), |inode, pid| {
            met.lock().unwrap().push((inode, pid))
        })
        .unwrap();
        let met = met.into_inner().unwrap();
        assert_eq!(met, [(200, 5), (300, 12)], "not 100, the caller's own");
        assert_eq!(inodes(&d), vec![100, 200, 300]);
    }

    #[test]
    fn the_live_proc_is_read_through_procfs_links_and_finds_this_process() {
        let root = ProcRoot::open(Path::new("/proc")).unwrap();
        assert!(matches!(NetLinks::of(&root), NetLinks::Procfs(_)));
        let d = discover(&root).unwrap();
        let own = d.current.expect("this thread's namespace");
        let me = std::process::id();
        assert!(d.get(own).unwrap().pids.contains(&me), "{d:?}");
        // A tree that is not procfs is read through each process's directory.
        let dir = tree(&[(1, "net:[100]")], b"");
        let tree = ProcRoot::open(dir.path()).unwrap();
        assert!(matches!(NetLinks::of(&tree), NetLinks::Tree(_)));
    }

    #[test]
    fn many_processes_read_on_two_threads_give_what_one_thread_gives() {
        // Namespace 1000 + pid % 7, a few unreadable links, a gap in the pids.
        let pids: Vec<(u32, String)> = (1..=5 * CLAIM as u32 + 9)
            // 77 is the tree's own process (`self`), in namespace 100.
            .filter(|pid| pid % 50 != 0 && *pid != 77)
            .map(|pid| (pid, format!("net:[{}]", 1000 + pid % 7)))
            .collect();
        let refs: Vec<(u32, &str)> = pids.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let dir = tree(&refs, b"");
        for pid in [3u32, 201] {
            std::fs::remove_file(dir.path().join(format!("{pid}/ns/net"))).unwrap();
            symlink("mnt:[1]", dir.path().join(format!("{pid}/ns/net"))).unwrap();
        }
        let root = ProcRoot::open(dir.path()).unwrap();
        let told = Mutex::new(Vec::new());
        let d =
            discover_telling(&root, |inode, pid| told.lock().unwrap().push((inode, pid))).unwrap();
        assert_eq!(inodes(&d), [100, 1000, 1001, 1002, 1003, 1004, 1005, 1006]);
        for ns in d.namespaces.iter().filter(|ns| ns.inode >= 1000) {
            let want: Vec<u32> = (refs.iter())
                .map(|&(pid, _)| pid)
                .filter(|pid| 1000 + u64::from(pid % 7) == ns.inode && ![3, 201].contains(pid))
                .collect();
            assert_eq!(ns.pids, want, "every process once, ascending");
        }
        let mut told = told.into_inner().unwrap();
        told.sort_unstable();
        let namespaces: Vec<u64> = told.iter().map(|&(inode, _)| inode).collect();
        assert_eq!(
            namespaces,
            (1000..1007).collect::<Vec<_>>(),
            "each told once"
        );
        for (inode, pid) in told {
            assert_eq!(
                1000 + u64::from(pid % 7),
                inode,
                "told with a process in it"
            );
        }
    }

    #[test]
    fn a_link_that_is_not_a_network_namespace_is_skipped() {
        let dir = tree(&[(1, "net:[100]"), (2, "mnt:[5]"), (3, "\x1b[2J")], b"");
        let d = discover(&ProcRoot::open(dir.path()).unwrap()).unwrap();
        assert_eq!(inodes(&d), vec![100]);
    }
}
