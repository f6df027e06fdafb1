//! The network namespaces a capture records (`lsports capture --netns all|NAME|…`): the
//! capture's own namespace by inode and name (always, so an opened snapshot tags its sockets
//! as the live listing does), and each other chosen namespace's tables, byte for byte as the
//! kernel wrote them.
//!
//! Another namespace's tables are read from `/proc/PID/net/*` of a process living in it
//! (checked to still live there after the read), else on a thread of their own that enters
//! it through its bind mount (`setns` moves only that thread, which then ends). Namespaces
//! only a socket keeps alive are followed by [`super::pinned`]. What could not be read, and
//! whether every namespace was found, are recorded too, so that an audit of the snapshot
//! tells listeners gone from listeners not looked for.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::layout::TABLES;
use crate::config::NetnsChoice;
use crate::model::{Family, Protocol};
use crate::source::netns::{self, Namespace, nsfd};
use crate::source::procnet::{self, ByteOrder};
use crate::sys::procroot::ProcRoot;

/// The tables of one table file set: `(name, bytes)`.
pub type Tables = Vec<(&'static str, Vec<u8>)>;

/// A namespace recorded in a snapshot.
#[derive(Debug)]
pub struct Recorded {
    /// Its nsfs inode.
    pub inode: u64,
    /// Its bind mount's name, raw.
    pub name: Option<Vec<u8>>,
    /// Its tables; empty for the capture's own (whose tables are `proc/net`).
    pub tables: Tables,
}

/// What a capture records about namespaces.
#[derive(Debug, Default)]
pub struct Recording {
    /// The capture's own namespace; `None` for a proc tree that is not live.
    pub own: Option<Recorded>,
    /// The other chosen namespaces that could be read.
    pub others: Vec<Recorded>,
    /// The chosen namespaces that could not be read (no tables).
    pub unread: Vec<Recorded>,
    /// Whether `--netns all` found every namespace there was: no process whose namespace
    /// could not be read, no held socket that could not be asked for its own, the mount table
    /// read. An audit of the snapshot then knows a listener whose namespace it lacks is gone.
    pub complete: bool,
    /// What could not be read, for the summary.
    pub notes: Vec<String>,
}

/// Record the namespaces `choice` names under the live proc root `proc_root`; `listed` holds
/// the inodes of the sockets in the capture's own tables (a held socket not among them, nor in
/// any namespace recorded, may lead to a namespace only it keeps alive).
pub fn record(proc_root: &Path, choice: &NetnsChoice, listed: &HashSet<u64>) -> Recording {
    let Some(own) = netns::current_inode(proc_root) else {
        return Recording::default();
    };
    let names = netns::collect::mount_names(proc_root);
    let mut recording = Recording {
        own: Some(Recorded {
            inode: own,
            name: names.get(&own).cloned().map(OsString::into_vec),
            tables: Vec::new(),
        }),
        ..Recording::default()
    };
    let (chosen, complete) = match choose(proc_root, choice) {
        Ok(chosen) => chosen,
        Err(why) => {
            recording.notes.push(why);
            return recording;
        }
    };
    recording.complete = complete;
    for namespace in chosen.iter().filter(|ns| ns.inode != own) {
        recording.add(namespace, tables_of(namespace, proc_root));
    }
    if *choice == NetnsChoice::All {
        let mut known: HashSet<u64> = chosen.iter().map(|ns| ns.inode).collect();
        known.insert(own);
        super::pinned::follow(proc_root, &mut recording, listed.clone(), known);
    }
    recording
}

impl Recording {
    /// Add `namespace` with its tables, or the note saying why they could not be read.
    pub(super) fn add(&mut self, namespace: &Namespace, tables: Result<Tables, String>) {
        match tables {
            Ok(tables) => self.others.push(Recorded {
                inode: namespace.inode,
                name: namespace.name.clone().map(OsString::into_vec),
                tables,
            }),
            Err(why) => {
                self.notes.push(format!(
                    "network namespace {} not captured: {why}",
                    namespace.inode
                ));
                self.unread.push(Recorded {
                    inode: namespace.inode,
                    name: namespace.name.clone().map(OsString::into_vec),
                    tables: Vec::new(),
                });
            }
        }
    }
}

/// How many sockets `tables` list, and the inodes of those that have one (every state: the
/// snapshot may be read with `-a`).
pub fn socket_inodes(tables: &[(&'static str, Vec<u8>)]) -> (usize, HashSet<u64>) {
    let mut count = 0;
    let mut inodes = HashSet::new();
    for (name, data) in tables {
        let (protocol, family) = table_kind(name);
        let parsed = procnet::parse_table(&data[..], protocol, family, ByteOrder::native(), name);
        count += parsed.sockets.len();
        inodes.extend(parsed.sockets.iter().map(|s| s.inode).filter(|&i| i != 0));
    }
    (count, inodes)
}

fn table_kind(name: &str) -> (Protocol, Family) {
    let protocol = if name.starts_with("tcp") {
        Protocol::Tcp
    } else {
        Protocol::Udp
    };
    let family = if name.ends_with('6') {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    (protocol, family)
}

/// The namespaces `choice` names, and whether that is every namespace there is (only
/// `--netns all` can tell, and only when every process's namespace and the mounts were read).
fn choose(proc_root: &Path, choice: &NetnsChoice) -> Result<(Vec<Namespace>, bool), String> {
    match choice {
        NetnsChoice::Current => Ok((Vec::new(), false)),
        NetnsChoice::All => {
            let root = ProcRoot::open(proc_root).map_err(|e| e.to_string())?;
            let discovery = netns::discover(&root).map_err(|e| {
                format!(
                    "cannot list the network namespaces under {}: {e}",
                    proc_root.display()
                )
            })?;
            let complete = discovery.unreadable.is_empty() && discovery.mounts_error.is_none();
            Ok((discovery.namespaces, complete))
        }
        _ => match netns::collect::chosen_namespace(proc_root, choice) {
            Some(chosen) => chosen.map(|ns| (vec![ns], false)),
            None => Ok((Vec::new(), false)),
        },
    }
}

/// A namespace's tables: from a process in it, else entered through a mount.
fn tables_of(ns: &Namespace, proc_root: &Path) -> Result<Tables, String> {
    for &pid in &ns.pids {
        let tables = read_tables(&proc_root.join(pid.to_string()));
        let still_there = nsfd::of_process(proc_root, pid, ns.inode).is_ok();
        if still_there && !tables.is_empty() {
            return Ok(tables);
        }
    }
    let mut last = String::from("no process lives in it and no mount names it");
    for mount in &ns.mounts {
        match entered(mount, ns.inode, proc_root) {
            Ok(tables) if !tables.is_empty() => return Ok(tables),
            Ok(_) => last = "none of its tables could be read".into(),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Its tables, read on a thread that enters the namespace mounted at `mount` and then ends.
fn entered(mount: &Path, inode: u64, proc_root: &Path) -> io::Result<Tables> {
    entered_by(|| nsfd::of_mount(mount, inode)?.enter(), proc_root)
}

/// The tables of the namespace `enter` moves the calling thread into, read on a thread of
/// their own that then ends (so no other thread of the capture ever leaves its namespace).
pub(super) fn entered_by(
    enter: impl FnOnce() -> io::Result<()> + Send,
    proc_root: &Path,
) -> io::Result<Tables> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("netns-capture".into())
            .spawn_scoped(scope, || {
                enter()?;
                Ok(read_tables(&proc_root.join("thread-self")))
            })?;
        worker
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the capturing thread panicked")))
    })
}

/// The readable tables of `dir/net`; a missing one is left out (no IPv6 there).
fn read_tables(dir: &Path) -> Tables {
    TABLES
        .iter()
        .filter_map(|&name| Some((name, std::fs::read(dir.join("net").join(name)).ok()?)))
        .collect()
}
