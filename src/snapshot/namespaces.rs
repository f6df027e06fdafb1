//! The network namespaces a capture records (`lsports capture --netns all|NAME|…`): the
//! capture's own namespace by inode and name (always, so an opened snapshot tags its sockets
//! as the live listing does), and each other chosen namespace's tables, byte for byte as the
//! kernel wrote them.
//!
//! Another namespace's tables are read from `/proc/PID/net/*` of a process living in it
//! (checked to still live there after the read), else on a thread of their own that enters
//! it through its bind mount (`setns` moves only that thread, which then ends). Namespaces
//! only a socket keeps alive are not captured.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::layout::TABLES;
use crate::config::NetnsChoice;
use crate::source::netns::{self, Namespace, nsfd};
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
    /// What could not be read, for the summary.
    pub notes: Vec<String>,
}

/// Record the namespaces `choice` names under the live proc root `proc_root`.
pub fn record(proc_root: &Path, choice: &NetnsChoice) -> Recording {
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
    let chosen = match choose(proc_root, choice) {
        Ok(chosen) => chosen,
        Err(why) => {
            recording.notes.push(why);
            return recording;
        }
    };
    for namespace in chosen.iter().filter(|ns| ns.inode != own) {
        match tables_of(namespace, proc_root) {
            Ok(tables) => recording.others.push(Recorded {
                inode: namespace.inode,
                name: namespace.name.clone().map(OsString::into_vec),
                tables,
            }),
            Err(why) => recording.notes.push(format!(
                "network namespace {} not captured: {why}",
                namespace.inode
            )),
        }
    }
    recording
}

/// The namespaces `choice` names.
fn choose(proc_root: &Path, choice: &NetnsChoice) -> Result<Vec<Namespace>, String> {
    match choice {
        NetnsChoice::Current => Ok(Vec::new()),
        NetnsChoice::All => {
            let root = ProcRoot::open(proc_root).map_err(|e| e.to_string())?;
            let discovery = netns::discover(&root).map_err(|e| {
                format!(
                    "cannot list the network namespaces under {}: {e}",
                    proc_root.display()
                )
            })?;
            Ok(discovery.namespaces)
        }
        _ => match netns::collect::chosen_namespace(proc_root, choice) {
            Some(chosen) => chosen.map(|ns| vec![ns]),
            None => Ok(Vec::new()),
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
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("netns-capture".into())
            .spawn_scoped(scope, || {
                nsfd::of_mount(mount, inode)?.enter()?;
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
