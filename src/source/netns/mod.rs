//! Every network namespace of the host, and the sockets in each (`--netns all`).
//!
//! ```text
//! discover: /proc/*/ns/net + nsfs mounts in mountinfo   -> namespaces (inode, name, pids)
//! dump:     a worker thread per namespace at a time enters it (setns) and asks sock_diag;
//!           refused (no CAP_SYS_ADMIN) -> /proc/PID/net/* of a process in it
//! pinned:   sockets held but listed in no dump -> SIOCGSKNS -> namespaces only a socket
//!           keeps alive -> dump those too
//! ```
//!
//! A namespace is known by its nsfs inode, the number `/proc/PID/ns/net` shows (`stat -L`
//! gives it too); a name only where a bind mount gives one (`ip netns`, Docker, CNI). Every
//! namespace found is either dumped or reported as not reached with the reason, so a caller
//! can say what it could not see instead of giving a silent partial answer.

pub mod collect;
pub mod discover;
pub mod dump;
pub mod gate;
pub mod mountinfo;
pub mod nsfd;
pub mod pinned;
pub mod recorded;
pub mod sockstat;
pub mod walked;

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

pub use collect::{Dumped, Pending, collect, collect_counting, collect_known};
pub use discover::{Discovery, discover};
pub use dump::{DumpRequest, NotReached, NsDump, Reach, dump_all};
pub use pinned::{HeldSocket, SocketInNetns, held_sockets, held_sockets_under};

use crate::sys::procroot::ProcRoot;
use crate::sys::timing::mark;

/// How a namespace was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An nsfs bind mount (`ip netns`, Docker, CNI).
    Mount,
    /// A process lives in it.
    Process,
    /// Only a socket was found to lead to it: no process lives in it and nothing mounts it.
    Socket,
}

/// One network namespace.
#[derive(Debug)]
pub struct Namespace {
    /// Its nsfs inode.
    pub inode: u64,
    /// The name a bind mount gives it (`w1` for `/run/netns/w1`), raw bytes as mounted:
    /// anyone allowed to mount chose it, so it must be escaped for display.
    pub name: Option<OsString>,
    /// Where it is bind-mounted, the most telling mount first.
    pub mounts: Vec<PathBuf>,
    /// Processes that live in it, ascending.
    pub pids: Vec<u32>,
    /// How it was found.
    pub origins: Vec<Origin>,
    /// The holder of the socket that led to it (pid, fd, socket inode), for a namespace
    /// found from a socket.
    pub pinned_by: Option<HeldSocket>,
    /// An fd of it already open (from the socket that led to it).
    pub(crate) handle: Option<nsfd::NsFd>,
}

impl Namespace {
    /// A namespace known so far only by its inode.
    pub fn new(inode: u64) -> Namespace {
        Namespace {
            inode,
            name: None,
            mounts: Vec::new(),
            pids: Vec::new(),
            origins: Vec::new(),
            pinned_by: None,
            handle: None,
        }
    }

    /// The name for a terminal (escaped), if a mount names it.
    pub fn display_name(&self) -> Option<String> {
        use std::os::unix::ffi::OsStrExt;
        let name = self.name.as_ref()?;
        Some(crate::text::sanitize::terminal_safe(name.as_bytes()).into_owned())
    }
}

/// The inode of the network namespace this thread is in, as the live proc root `proc` shows
/// it; `None` for a proc tree that is not live (a snapshot, a copied tree) or unreadable.
pub fn current_inode(proc: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(proc.join("thread-self/ns/net"))
        .ok()
        .map(|meta| meta.ino())
}

/// The inode of the namespace the listing's own tables belong to: this thread's under a live
/// proc root, the capture's own in a captured tree that recorded it; else `None`.
pub fn own_inode(proc: &Path) -> Option<u64> {
    current_inode(proc).or_else(|| recorded::own(proc).map(|ns| ns.inode))
}

/// Every namespace found and every namespace's sockets.
#[derive(Debug)]
pub struct Survey {
    /// What discovery found, with the socket-pinned namespaces added.
    pub discovery: Discovery,
    /// One dump per namespace, in the order of `discovery.namespaces`.
    pub dumps: Vec<NsDump>,
    /// Held sockets whose namespace could not be asked (no ptrace access to the holder,
    /// `SIOCGSKNS` refused): a namespace only they keep alive may be missing.
    pub unprobed: usize,
}

/// Discover every network namespace under the live proc root `proc` (normally `/proc`) and
/// dump each: the processes' and mounted ones first, then the ones found from held sockets
/// that no dump listed (`held`, as from [`held_sockets`]; a caller that has already walked
/// `/proc/*/fd` passes what it found).
pub fn survey(proc: &Path, request: &DumpRequest, held: &[HeldSocket]) -> io::Result<Survey> {
    let mut survey = survey_known(proc, request)?;
    let mut listed: HashSet<u64> = survey
        .dumps
        .iter()
        .flat_map(|d| d.collected.sockets.iter().map(|s| s.inode))
        .collect();
    let (dumps, unprobed) = follow(&mut survey.discovery, &mut listed, held, proc, request)?;
    survey.dumps.extend(dumps);
    survey.unprobed = unprobed;
    Ok(survey)
}

/// The first half of a [`survey`]: every namespace a process lives in or a mount names, each
/// dumped; no held socket is followed yet (`unprobed` is 0).
pub fn survey_known(proc: &Path, request: &DumpRequest) -> io::Result<Survey> {
    let root = ProcRoot::open(proc)?;
    let discovery = discover(&root)?;
    mark("netns: discovered");
    let dumps = dump_all(&discovery.namespaces, discovery.current, proc, request)?;
    mark("netns: dumped");
    Ok(Survey {
        discovery,
        dumps,
        unprobed: 0,
    })
}

/// The second half of a [`survey`]: follow the sockets of `held` that no dump listed (not in
/// `listed`) to the namespaces only they keep alive, dump those and add them to `discovery`;
/// what they list joins `listed`, and is followed in turn. The new dumps, and how many held
/// sockets could not be asked.
pub fn follow(
    discovery: &mut Discovery,
    listed: &mut HashSet<u64>,
    held: &[HeldSocket],
    proc: &Path,
    request: &DumpRequest,
) -> io::Result<(Vec<NsDump>, usize)> {
    let mut probe = pinned::Search::new(held);
    let mut dumps = Vec::new();
    loop {
        let known: HashSet<u64> = discovery.namespaces.iter().map(|ns| ns.inode).collect();
        let mut found = probe.next_namespaces(listed, &known);
        if found.is_empty() {
            break;
        }
        let more = dump_all(&found, discovery.current, proc, request)?;
        listed.extend(
            more.iter()
                .flat_map(|d| d.collected.sockets.iter().map(|s| s.inode)),
        );
        dumps.extend(more);
        discovery.namespaces.append(&mut found);
    }
    mark("netns: held sockets followed");
    Ok((dumps, probe.unprobed()))
}

/// [`follow`] for a caller that knows the namespace of every socket held (the kernel
/// iterator's [`SocketInNetns`]): only the namespaces of `seen` not yet in `discovery` are
/// opened, each through one holder's fd, dumped and added. The new dumps, and how many
/// holders could not be asked.
pub fn follow_namespaces(
    discovery: &mut Discovery,
    seen: &[SocketInNetns],
    proc: &Path,
    request: &DumpRequest,
) -> io::Result<(Vec<NsDump>, usize)> {
    let known: HashSet<u64> = discovery.namespaces.iter().map(|ns| ns.inode).collect();
    let (mut found, unprobed) = pinned::unknown_namespaces(seen, &known);
    let dumps = match found.is_empty() {
        true => Vec::new(),
        false => dump_all(&found, discovery.current, proc, request)?,
    };
    discovery.namespaces.append(&mut found);
    mark("netns: socket namespaces followed");
    Ok((dumps, unprobed))
}
