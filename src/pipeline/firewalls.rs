//! Reading the firewall rules for the reach step and `--published`: begun on threads at the
//! start of a run ([`Rules::begin`]), beside collection and attribution, since `nft -j list
//! ruleset` and `iptables-save` take longer than evaluating the rules; other namespaces' as
//! soon as the collected listeners name them ([`Rules::begin_namespaces`]). Each namespace's
//! rules are read once, whichever step asks first, and joined where they are used.
//!
//! Other namespaces are entered here because enrich cannot reach `source::netns` itself
//! (source imports enrich).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::enrich::reach::{LoadError, Ruleset, Sources};
use crate::model::Socket;
use crate::source::netns::{self, nsfd::NsFd};
use crate::sys::procroot::ProcRoot;

/// This namespace's rules, shared by reach and `--published`.
pub type Here = Result<Arc<Ruleset>, LoadError>;

/// Another namespace's rules, or why it could not be entered.
pub type Elsewhere = Result<Result<Arc<Ruleset>, LoadError>, String>;

/// A read begun on a thread, or (when none could be spawned, or none was begun) not yet.
#[derive(Debug, Default)]
enum Reading<T> {
    #[default]
    NotBegun,
    Running(JoinHandle<T>),
    Done(T),
}

/// The firewall rules of a run, read once per namespace, on threads begun early where they
/// could be spawned and on the calling thread where not.
///
/// Reach and `--published` both ask for other namespaces' rules (reach for those its
/// listeners live in, `--published` for every one listed): each namespace has one slot,
/// which the first to ask fills and the others wait on and share, so its rules are read once
/// a run (`tests/published.rs` counts `nft` runs per namespace). A slot has a lock of its
/// own, so `--published`'s parallel reads of different namespaces do not wait on each other.
#[derive(Debug)]
pub struct Rules {
    proc_root: PathBuf,
    here: Mutex<Reading<Here>>,
    elsewhere: Mutex<HashMap<u64, Slot>>,
}

/// One other namespace's rules: begun, read, or not yet.
type Slot = Arc<Mutex<Reading<Elsewhere>>>;

impl Rules {
    /// Rules read only when first asked for, on the asking thread.
    pub fn lazy(proc_root: &Path) -> Rules {
        Rules {
            proc_root: proc_root.to_path_buf(),
            here: Mutex::new(Reading::NotBegun),
            elsewhere: Mutex::new(HashMap::new()),
        }
    }

    /// Begin reading this namespace's rules on a thread of their own; where no thread can be
    /// spawned, they are read when first asked for.
    pub fn begin(proc_root: &Path) -> Rules {
        let mut rules = Rules::lazy(proc_root);
        let spawned = std::thread::Builder::new()
            .name("lsports-rules".into())
            .spawn(|| Ruleset::load(&Sources::default()).map(Arc::new));
        if let Ok(handle) = spawned {
            rules.here = Mutex::new(Reading::Running(handle));
        }
        rules
    }

    /// Begin reading the rules of the namespaces `sockets`' listeners live in, other than
    /// this one, each on a thread that enters it. A namespace that cannot be opened, or whose
    /// thread cannot be spawned, is read when asked for ([`Rules::elsewhere`]), which says why.
    pub fn begin_namespaces(&self, sockets: &[Socket]) {
        let mut inodes: Vec<u64> = (sockets.iter())
            .filter(|s| s.state.is_listening(s.protocol))
            .filter_map(|s| s.netns.as_ref().map(|ns| ns.inode))
            .collect();
        inodes.sort_unstable();
        inodes.dedup();
        let Ok(root) = ProcRoot::open(&self.proc_root) else {
            return;
        };
        let Ok(discovery) = netns::discover(&root) else {
            return;
        };
        let mut begun = self.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
        for inode in inodes {
            if Some(inode) == discovery.current || begun.contains_key(&inode) {
                continue;
            }
            let Ok(ns) = open(&discovery, inode, &self.proc_root) else {
                continue;
            };
            let spawned = std::thread::Builder::new()
                .name("lsports-rules".into())
                .spawn(move || read_entered(&ns, &Sources::default()));
            if let Ok(handle) = spawned {
                begun.insert(inode, Arc::new(Mutex::new(Reading::Running(handle))));
            }
        }
    }

    /// This namespace's rules: joined from their thread, or read now, the first time; the
    /// same rules every time after.
    pub fn here(&self) -> Here {
        let mut here = self.here.lock().unwrap_or_else(|e| e.into_inner());
        let done = match std::mem::replace(&mut *here, Reading::NotBegun) {
            Reading::Done(done) => done,
            Reading::Running(handle) => handle.join().unwrap_or_else(|_| Err(failed_reader())),
            Reading::NotBegun => Ruleset::load(&Sources::default()).map(Arc::new),
        };
        *here = Reading::Done(done.clone());
        done
    }

    /// The rules of namespace `inode`: joined from the thread begun for it, or read now by a
    /// thread that enters it, the first time; the same rules every time after.
    pub fn elsewhere(&self, inode: u64) -> Elsewhere {
        let slot = {
            let mut slots = self.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(slots.entry(inode).or_default())
        };
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let done = match std::mem::replace(&mut *slot, Reading::NotBegun) {
            Reading::Done(done) => done,
            Reading::Running(handle) => handle
                .join()
                .unwrap_or_else(|_| Err("its reader failed".into())),
            Reading::NotBegun => read_in(inode, &self.proc_root, &Sources::default()),
        };
        *slot = Reading::Done(done.clone());
        done
    }
}

fn failed_reader() -> LoadError {
    LoadError::Failed {
        tool: "nft".into(),
        detail: "the thread reading the rules failed".into(),
    }
}

/// The rules of namespace `inode`, read by a thread that entered it (programs it starts run
/// there too), or why it cannot be entered.
pub fn read_in(inode: u64, proc_root: &Path, sources: &Sources) -> Elsewhere {
    let root = ProcRoot::open(proc_root).map_err(|e| format!("cannot list namespaces: {e}"))?;
    let discovery = netns::discover(&root).map_err(|e| format!("cannot list namespaces: {e}"))?;
    let ns = open(&discovery, inode, proc_root)?;
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .spawn_scoped(scope, || read_entered(&ns, sources))
            .map_err(|e| format!("cannot start a thread to enter it: {e}"))?
            .join()
            .unwrap_or_else(|_| Err("its reader failed".into()))
    })
}

/// Enter `ns` (on the calling thread, which must be one of its own: it stays there) and read
/// its rules.
fn read_entered(ns: &NsFd, sources: &Sources) -> Elsewhere {
    ns.enter().map_err(|e| format!("cannot enter it: {e}"))?;
    Ok(Ruleset::load(sources).map(Arc::new))
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
