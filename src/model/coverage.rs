//! Which network namespaces a listing read, as data for the stages after collection: an audit
//! must tell a baseline listener that is gone (its namespace was read, or no longer exists)
//! from one it could not look for (its namespace was found but not read, or may exist
//! unfound), and must not learn that by parsing the notes printed for people.

use super::{Family, Netns, Protocol};

/// A network namespace a `--netns` collection found (other than lsports' own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundNetns {
    /// Its inode and the name a mount gives it.
    pub netns: Netns,
    /// Processes living in it, as discovery saw them (its container and unit are theirs).
    pub pids: Vec<u32>,
}

/// What a collection across namespaces read and did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Namespaces other than lsports' own whose sockets were read.
    pub read: Vec<FoundNetns>,
    /// Namespaces found whose sockets were not read (entering refused and no process in it
    /// readable, gone meanwhile, failed).
    pub unread: Vec<FoundNetns>,
    /// Namespaces may exist that were not found at all: some processes' namespaces could not
    /// be read, some held sockets could not be asked for theirs, or the mount table could not
    /// be read.
    pub incomplete: bool,
    /// The socket tables of the namespace listed first (lsports' own; the one `--netns`
    /// names) that no source could read: its listeners of those are unknown, not absent.
    pub unread_tables: Vec<(Protocol, Family)>,
}

impl Coverage {
    /// Add what a later step of the same collection read (the namespaces only sockets keep
    /// alive); whether the search was complete is the later step's word, which includes the
    /// first's.
    pub fn absorb(&mut self, later: Coverage) {
        self.read.extend(later.read);
        self.unread.extend(later.unread);
        self.incomplete |= later.incomplete;
    }
}
