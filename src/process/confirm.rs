//! Holders confirmed when their details are read: a pid seen holding a socket may belong to
//! another process by the time its name and uid are read (the holder exited and the pid was
//! reused, on a host with a small `pid_max`, many sockets and fork churn). So the details are
//! read through the process's own directory, opened once, after reading through that same
//! directory that the process holds the socket as that fd: a reused pid's newcomer fails the
//! check and is dropped, instead of lending its name and uid to the socket.
//!
//! Both attribution paths confirm the same way; one process's holders come together (the walk
//! scans a process at once, the kernel iterator visits one process's fds together), so one
//! directory is open at a time.

use std::collections::HashMap;

use super::info::{DetailsReader, Hold, ProcessDetails, ProcessDir};
use crate::model::Holder;

/// Confirms holders one after the other, reading each confirmed process's details once.
#[derive(Debug)]
pub struct Confirm {
    reader: DetailsReader,
    /// The process of the last holder: its directory (`None` when gone) and whether its
    /// details were read.
    current: Option<(u32, Option<ProcessDir>, bool)>,
    details: Vec<(u32, ProcessDetails)>,
    /// Processes whose fd links were refused.
    denied: Vec<u32>,
}

impl Confirm {
    /// Confirm holders, reading details with `reader`.
    pub fn new(reader: DetailsReader) -> Self {
        Confirm {
            reader,
            current: None,
            details: Vec::new(),
            denied: Vec::new(),
        }
    }

    /// Whether `holder` holds `inode` now, its details read if so (once per process).
    pub fn keep(&mut self, inode: u64, holder: Holder) -> bool {
        if self
            .current
            .as_ref()
            .is_none_or(|(pid, ..)| *pid != holder.pid)
        {
            let dir = self.reader.open(holder.pid);
            self.current = Some((holder.pid, dir, false));
        }
        let Some((pid, Some(dir), read)) = &mut self.current else {
            return false;
        };
        match dir.holds(holder.fd, inode) {
            Hold::Yes if *read => true,
            Hold::Yes => {
                let details = self.reader.read_in(dir);
                // Asked again after reading: a process that exited while its details were read
                // (a forked child inheriting the socket, say) left some of them unread, and is
                // gone from the moment the listing describes; it is dropped with all its
                // holders rather than shown with half its details.
                if dir.holds(holder.fd, inode) != Hold::Yes {
                    self.current = Some((*pid, None, false));
                    return false;
                }
                *read = true;
                self.details.push((*pid, details));
                true
            }
            Hold::No => false,
            Hold::Denied => {
                if self.denied.last() != Some(pid) {
                    self.denied.push(*pid);
                }
                false
            }
        }
    }

    /// The details of every confirmed process, and how many processes refused their links.
    pub fn finish(self) -> (Vec<(u32, ProcessDetails)>, usize) {
        let mut denied = self.denied;
        denied.sort_unstable();
        denied.dedup();
        (self.details, denied.len())
    }

    /// [`Confirm::finish`] into a map.
    pub fn finish_map(self) -> (HashMap<u32, ProcessDetails>, usize) {
        let (details, denied) = self.finish();
        (details.into_iter().collect(), denied)
    }
}
