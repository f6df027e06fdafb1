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
//!
//! The kernel iterator also says when each process started ([`Confirm::keep_started`]): when
//! the pid's `stat`, read after the process's other details, shows that same start and a
//! process not exiting, the pid is still the process the kernel saw, alive when its details
//! were read, and none of its holders needs a link read, nor its directory opened (a pid is
//! never reused while its process exists: see `DetailsReader::read_started_pid`). A newcomer
//! on a reused pid started after the kernel's pass began, so this holds only for processes
//! that started before it (the caller gives no start for the others, which are confirmed fd
//! by fd through their directory, as are the holders of a process whose `stat` says
//! otherwise).
//!
//! A holder confirmed by `stat` has no fd link read again, so a socket its process closed
//! after the pass saw it is still listed with it. That is left so, measured: the kernel saw
//! the process hold it during the pass, which overlaps the collection, so the listing says
//! what was true within the run, as the walk's does (which reads the links while the sockets
//! are collected, and again only for a process's first holder); a close just after a re-check
//! would be missed the same way. Re-reading each holder's link after the `stat` (`fd/N`, one
//! `readlinkat` per holder) made the whole listing 37 and 41 % slower: `-ltnup --attribution
//! bpf` in the large world (`world.py --procs 1000 --tcp 20000 --udp 5000 --conns 5000 --fds
//! 100000`: 25,010 sockets), medians of 11 interleaved runs, 0.236 → 0.324 s and 0.308 →
//! 0.436 s (2 cores at load average 9 to 17; 2026-12-02).

use std::collections::HashMap;

use super::info::{DetailsReader, Hold, ProcessDetails, ProcessDir};
use crate::model::Holder;

/// The process whose holders are being confirmed.
#[derive(Debug)]
struct Current {
    pid: u32,
    /// Its directory, opened when first needed: a process whose `stat` vouches for it
    /// ([`Confirm::keep_started`]) never needs it.
    dir: Dir,
    /// Whether its details were read (its first holder confirmed).
    read: bool,
    /// What its `stat` said of its start, once asked.
    started: Started,
    /// Whether its holders were all just read through `dir` ([`Confirm::adopt`]).
    scanned: bool,
}

/// A process's directory, as far as it was needed.
#[derive(Debug)]
enum Dir {
    /// Not opened yet.
    Unopened,
    /// Open.
    Open(ProcessDir),
    /// The process is gone (no directory for its pid), or exited while being read.
    Gone,
}

/// Whether the directory's process started when the kernel said the pid's process did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Started {
    /// Not asked yet.
    Unknown,
    /// `stat` shows this start tick.
    At(u64),
    /// `stat` could not be read.
    Unreadable,
}

/// Confirms holders one after the other, reading each confirmed process's details once.
#[derive(Debug)]
pub struct Confirm {
    reader: DetailsReader,
    /// The process of the last holder.
    current: Option<Current>,
    details: Vec<(u32, ProcessDetails)>,
    /// Processes whose fd links were refused.
    denied: Vec<u32>,
    /// Holders dropped because their process's directory did not show them: exited, a
    /// reused pid, or hidden from `/proc` (the caller tells which, see
    /// [`Confirm::take_unshown`]).
    unshown: Vec<(u64, Holder)>,
    /// Process directories opened so far (each an open and a close): what
    /// [`Confirm::keep_started`] spares a process its `stat` vouches for.
    opened: usize,
}

impl Confirm {
    /// Confirm holders, reading details with `reader`.
    pub fn new(reader: DetailsReader) -> Self {
        Confirm {
            reader,
            current: None,
            details: Vec::new(),
            denied: Vec::new(),
            unshown: Vec::new(),
            opened: 0,
        }
    }

    /// Whether `holder` holds `inode` now, its details read if so (once per process).
    pub fn keep(&mut self, inode: u64, holder: Holder) -> bool {
        self.keep_started(inode, holder, None)
    }

    /// [`Confirm::keep`] for a holder the kernel saw in a process that started at `start`
    /// (clock ticks since boot, as `/proc/PID/stat` counts them): `Some` only when that is
    /// before the kernel's pass began. A process whose `stat` shows that start, and no exit
    /// begun, once its details are read, is the one the kernel saw: it keeps the holder
    /// without an fd link read, and so do its other holders.
    pub fn keep_started(&mut self, inode: u64, holder: Holder, start: Option<u64>) -> bool {
        if self.current.as_ref().is_none_or(|c| c.pid != holder.pid) {
            self.current = Some(Current {
                pid: holder.pid,
                dir: Dir::Unopened,
                read: false,
                started: Started::Unknown,
                scanned: false,
            });
        }
        let Some(current) = &mut self.current else {
            return false;
        };
        if let (Some(start), false, Started::Unknown, Dir::Unopened) =
            (start, current.read, current.started, &current.dir)
        {
            // The first holder of a process older than the pass: its `stat`, read last,
            // shows whether the pid is still the process the kernel saw, alive; no fd link is
            // read, and no directory opened (see `DetailsReader::read_started_pid`).
            // Otherwise (a reused pid, an exiting process, one gone) its links decide.
            match self.reader.read_started_pid(current.pid, start) {
                Ok(details) => {
                    current.read = true;
                    current.started = Started::At(start);
                    self.details.push((current.pid, details));
                    return true;
                }
                Err(shown) => current.started = shown.map_or(Started::Unreadable, Started::At),
            }
        }
        if start.is_some_and(|start| current.read && current.started == Started::At(start)) {
            // Its `stat` vouched for it above, for its first holder: for this one too.
            return true;
        }
        if let Dir::Unopened = current.dir {
            current.dir = self.reader.open(current.pid).map_or(Dir::Gone, Dir::Open);
            self.opened += 1;
        }
        let Dir::Open(dir) = &current.dir else {
            self.unshown.push((inode, holder));
            return false;
        };
        if current.scanned && current.read {
            // Its first holder was confirmed and its details read through the directory its
            // links were just read through: the same process, so its other holders are too.
            return true;
        }
        if let (Some(start), true) = (start, current.read) {
            // Its details were read through its links (its `stat` said otherwise above, or
            // its first holder came without a start): asked once, if not yet.
            if current.started == Started::Unknown {
                current.started = self
                    .reader
                    .start_tick(dir)
                    .map_or(Started::Unreadable, Started::At);
            }
            if current.started == Started::At(start) {
                return true;
            }
        }
        let pid = current.pid;
        match dir.holds(holder.fd, inode) {
            Hold::Yes if current.read => true,
            Hold::Yes => {
                let details = self.reader.read_in(dir);
                // Asked again after reading: a process that exited while its details were read
                // (a forked child inheriting the socket, say) left some of them unread, and is
                // gone from the moment the listing describes; it is dropped with all its
                // holders rather than shown with half its details.
                if dir.holds(holder.fd, inode) != Hold::Yes {
                    current.dir = Dir::Gone;
                    self.unshown.push((inode, holder));
                    return false;
                }
                current.read = true;
                self.details.push((pid, details));
                true
            }
            Hold::No => {
                self.unshown.push((inode, holder));
                false
            }
            Hold::Denied => {
                if self.denied.last() != Some(&pid) {
                    self.denied.push(pid);
                }
                false
            }
        }
    }

    /// Confirm the holders of the process of `dir` next: its fd links were just read through
    /// `dir` (see `fdscan`), so once its first holder is confirmed, when its details are read,
    /// the others need no link read of their own.
    pub fn adopt(&mut self, dir: ProcessDir) {
        self.current = Some(Current {
            pid: dir.pid(),
            dir: Dir::Open(dir),
            read: false,
            started: Started::Unknown,
            scanned: true,
        });
    }

    /// The holders dropped so far because their process's directory did not show them, as
    /// (inode, holder): few, unless processes exit in numbers during the pass.
    pub fn take_unshown(&mut self) -> Vec<(u64, Holder)> {
        std::mem::take(&mut self.unshown)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::bpf::tests::fake_process;
    use crate::sys::procroot::ProcRoot;

    #[test]
    fn an_adopted_directory_confirms_its_other_holders_without_their_links() {
        let tree = tempfile::tempdir().unwrap();
        // The scan saw fd 4 (socket 100) and fd 5 (socket 101); fd 5 has no link left, which
        // only a link read would notice.
        fake_process(tree.path(), 8, 0, &[(4, 100)]);
        let holder = |fd| Holder { pid: 8, fd };
        let root = ProcRoot::open(tree.path()).unwrap();
        let reader = || DetailsReader::new(tree.path());

        let mut adopted = Confirm::new(reader());
        adopted.adopt(root.process(8).unwrap());
        assert!(
            adopted.keep(100, holder(4)),
            "the first holder, by its link"
        );
        assert!(adopted.keep(101, holder(5)), "the next, by the directory");
        let (details, denied) = adopted.finish_map();
        assert_eq!(details[&8].name.as_deref(), Some(&b"p8"[..]));
        assert_eq!(denied, 0);

        // Without the directory the scan read through, each holder's link is read.
        let mut by_links = Confirm::new(reader());
        assert!(by_links.keep(100, holder(4)));
        assert!(!by_links.keep(101, holder(5)));

        // An adopted process whose first holder is gone proves nothing for the next.
        std::fs::remove_file(tree.path().join("8/fd/4")).unwrap();
        let mut gone = Confirm::new(reader());
        gone.adopt(root.process(8).unwrap());
        assert!(!gone.keep(100, holder(4)));
        assert!(!gone.keep(101, holder(5)));
    }

    #[test]
    fn a_process_whose_stat_shows_the_kernels_start_alive_needs_no_link_read() {
        let tree = tempfile::tempdir().unwrap();
        let holder = |pid, fd| Holder { pid, fd };
        // Pid 8: the process the kernel saw (start tick 5). None of its fd links is left,
        // which only a link read would notice: its stat vouches for it, and names it.
        fake_process(tree.path(), 8, 5, &[]);
        std::fs::remove_file(tree.path().join("8/comm")).unwrap();
        // Pid 9: a newcomer on the pid (start tick 6).
        fake_process(tree.path(), 9, 6, &[]);
        // Pid 10: the kernel's process, a zombie now; pid 11, the kernel's process, exiting
        // (PF_EXITING), one of its links still there.
        let stat = |pid: u32, state: char, flags: u32, stack: u32| {
            format!(
                "{pid} (p{pid}) {state} 1 1 1 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0 1 1 \
                 {stack}\n"
            )
        };
        fake_process(tree.path(), 10, 5, &[]);
        std::fs::write(tree.path().join("10/stat"), stat(10, 'Z', 0, 0)).unwrap();
        fake_process(tree.path(), 11, 5, &[(4, 110)]);
        std::fs::write(tree.path().join("11/stat"), stat(11, 'R', 0x400044, 9)).unwrap();
        // Pid 12: the kernel's process, which this reader may not inspect (its stat shows no
        // stack): its links decide (none left here: not held).
        fake_process(tree.path(), 12, 5, &[]);
        std::fs::write(tree.path().join("12/stat"), stat(12, 'S', 0, 0)).unwrap();

        let mut confirm = Confirm::new(DetailsReader::new(tree.path()));
        assert!(confirm.keep_started(100, holder(8, 4), Some(5)));
        assert!(confirm.keep_started(101, holder(8, 5), Some(5)));
        assert!(
            !confirm.keep_started(102, holder(9, 4), Some(5)),
            "another start"
        );
        assert!(
            !confirm.keep_started(103, holder(10, 4), Some(5)),
            "a zombie"
        );
        assert!(
            confirm.keep_started(110, holder(11, 4), Some(5)),
            "by its link"
        );
        assert!(
            !confirm.keep_started(111, holder(11, 5), Some(5)),
            "no link"
        );
        assert!(
            !confirm.keep_started(120, holder(12, 4), Some(5)),
            "not inspectable"
        );
        assert_eq!(
            confirm.opened, 4,
            "only the processes whose stat did not vouch for them: 9 to 12, not 8"
        );
        let (details, denied) = confirm.finish_map();
        assert_eq!(details[&8].name.as_deref(), Some(&b"p8"[..]), "from stat");
        assert_eq!(details[&11].name.as_deref(), Some(&b"p11"[..]), "from comm");
        assert!(![9, 10, 12].iter().any(|pid| details.contains_key(pid)));
        assert_eq!(denied, 0);

        // Without a start (a process younger than the pass), links decide.
        let mut confirm = Confirm::new(DetailsReader::new(tree.path()));
        assert!(!confirm.keep_started(100, holder(8, 4), None));
    }
}
