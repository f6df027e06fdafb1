//! The namespaces a captured proc tree recorded (a snapshot of `lsports capture --netns …`,
//! see the snapshot layout): `netns/own` holds the inode of the capture's own namespace,
//! whose tables are `net/`; `netns/INODE/name` a namespace's name; `netns/INODE/net/` another
//! namespace's tables, read as `/proc/net` is.

use std::path::Path;
use std::sync::Arc;

use crate::config::SourceChoice;
use crate::model::Netns;
use crate::model::coverage::{Coverage, FoundNetns};
use crate::source::{self, CollectRequest, Collected};

/// The tree's own namespace, if it recorded one.
pub fn own(proc_root: &Path) -> Option<Arc<Netns>> {
    let text = std::fs::read(proc_root.join("netns/own")).ok()?;
    let inode = std::str::from_utf8(&text).ok()?.trim().parse().ok()?;
    Some(named(proc_root, inode))
}

/// Every other namespace the tree recorded tables for, with its sockets, by inode.
pub fn others(request: &CollectRequest, own: u64) -> Vec<(Arc<Netns>, Collected)> {
    let Ok(dir) = std::fs::read_dir(request.proc_root.join("netns")) else {
        return Vec::new();
    };
    let mut inodes: Vec<u64> = dir
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&inode| inode != own)
        .collect();
    inodes.sort_unstable();
    inodes
        .into_iter()
        .filter(|inode| {
            request
                .proc_root
                .join(format!("netns/{inode}/net"))
                .is_dir()
        })
        .map(|inode| {
            let tables = CollectRequest {
                proc_root: request.proc_root.join(format!("netns/{inode}")),
                choice: SourceChoice::Proc,
                ..request.clone()
            };
            (named(&request.proc_root, inode), source::collect(&tables))
        })
        .collect()
}

/// What the capture read, as an audit of the snapshot needs it: the namespaces other than
/// `own` with tables, those it found but could not read (`netns/INODE/unread`), and whether
/// it found every namespace there was (`netns/complete`; absent from a capture that was not
/// `--netns all`, could not look everywhere, or predates the marker).
pub fn coverage(proc_root: &Path, own: u64) -> Coverage {
    let found = |inode: u64| FoundNetns {
        netns: Netns::clone(&named(proc_root, inode)),
        pids: Vec::new(),
    };
    let mut coverage = Coverage {
        incomplete: !proc_root.join("netns/complete").is_file(),
        ..Coverage::default()
    };
    let Ok(dir) = std::fs::read_dir(proc_root.join("netns")) else {
        coverage.incomplete = true;
        return coverage;
    };
    let mut inodes: Vec<u64> = dir
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&inode| inode != own)
        .collect();
    inodes.sort_unstable();
    for inode in inodes {
        let dir = proc_root.join(format!("netns/{inode}"));
        if dir.join("net").is_dir() {
            coverage.read.push(found(inode));
        } else if dir.join("unread").is_file() {
            coverage.unread.push(found(inode));
        }
    }
    coverage
}

fn named(proc_root: &Path, inode: u64) -> Arc<Netns> {
    Arc::new(Netns {
        inode,
        name: std::fs::read(proc_root.join(format!("netns/{inode}/name"))).ok(),
    })
}
