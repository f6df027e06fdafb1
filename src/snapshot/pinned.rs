//! The namespaces a capture of `--netns all` records that only a socket keeps alive: no
//! process lives in them and no mount names them (a socket created in a namespace its creator
//! then left or exited from, systemd's `PrivateNetwork=` socket units), so no `/proc/*/ns`
//! walk finds them. As the live `--netns all` does ([`crate::source::netns::pinned`]), every
//! socket a process holds that no recorded table lists is asked for its namespace
//! (`SIOCGSKNS`), once; a namespace found so is entered through that fd, on a thread of its
//! own, and its tables recorded like any other's. Its sockets are then listed in turn, so a
//! socket of it that leads further is followed too.

use std::collections::HashSet;
use std::path::Path;

use super::namespaces::{self, Recording};
use crate::source::netns::{self, Namespace, pinned::Search};
use crate::sys::procroot::ProcRoot;
use crate::text::counts::count;

/// Record into `recording` every namespace not in `known` that a held socket not in `listed`
/// leads to, with a note for each one that could not be read and one for the sockets that
/// could not be asked (unprivileged: another user's process, no `CAP_NET_ADMIN`).
pub fn follow(
    proc_root: &Path,
    recording: &mut Recording,
    mut listed: HashSet<u64>,
    mut known: HashSet<u64>,
) {
    let Ok(root) = ProcRoot::open(proc_root) else {
        recording.complete = false;
        return;
    };
    let held = netns::held_sockets(&root);
    for other in &recording.others {
        listed.extend(namespaces::socket_inodes(&other.tables).1);
    }
    let mut search = Search::new(&held);
    loop {
        let found = search.next_namespaces(&listed, &known);
        if found.is_empty() {
            break;
        }
        for namespace in &found {
            known.insert(namespace.inode);
            let tables = tables_through_socket(namespace, proc_root);
            if let Ok(tables) = &tables {
                listed.extend(namespaces::socket_inodes(tables).1);
            }
            recording.add(namespace, tables);
        }
    }
    if search.unprobed() > 0 {
        recording.complete = false;
        recording.notes.push(format!(
            "{} could not be asked for their network namespace (needs root), so a namespace \
             only a socket keeps alive may not be captured",
            count(search.unprobed(), "held socket")
        ));
    }
}

/// The tables of a namespace found from a socket, entered through the namespace fd that
/// socket gave.
fn tables_through_socket(
    namespace: &Namespace,
    proc_root: &Path,
) -> Result<namespaces::Tables, String> {
    let Some(handle) = namespace.handle.as_ref() else {
        return Err("no fd of it is open".into());
    };
    match namespaces::entered_by(|| handle.enter(), proc_root) {
        Ok(tables) if !tables.is_empty() => Ok(tables),
        Ok(_) => Err("none of its tables could be read".into()),
        Err(e) => Err(format!(
            "cannot enter it through the socket that keeps it: {e}"
        )),
    }
}
