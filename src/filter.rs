//! What the user asked to see, in the order they see it. Protocol, family and state are
//! selected at collection (in the kernel where possible); this stage orders the rows.

use crate::model::Entry;

/// Sort entries as netstat users read them: by protocol, then port, then address.
pub fn select(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| {
        let (a, b) = (&a.socket, &b.socket);
        (a.protocol, a.local_port, a.local_addr, a.family)
            .cmp(&(b.protocol, b.local_port, b.local_addr, b.family))
            .then((a.remote_addr, a.remote_port, a.inode).cmp(&(
                b.remote_addr,
                b.remote_port,
                b.inode,
            )))
    });
    entries
}
