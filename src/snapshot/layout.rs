//! What a snapshot archive holds, by name. Capture writes these names; open accepts only these,
//! so the check of an untrusted archive is one pure function, [`classify`].
//!
//! ```text
//! lsports-snapshot.json           manifest: who captured what, where, when (see Manifest)
//! proc/net/{tcp,tcp6,udp,udp6}    the socket tables, byte for byte as the kernel wrote them
//! proc/PID/{comm,cmdline,status,stat}
//! proc/PID/cgroup                 the holder's cgroups: its container and unit labels (absent
//!                                 from snapshots made before lsports recorded it)
//! proc/PID/fd/FD -> socket:[N]    one symlink per fd holding a socket in the tables
//! proc/PID/exe -> /usr/sbin/sshd  the executable, as `readlink` gave it (never followed)
//! proc/PID/fd                     a regular file instead of the directory: the fd directory
//!                                 could not be read at capture time (its text says why)
//! proc/netns/own                  the capture's own network namespace: its inode, in decimal
//! proc/netns/INODE/name           a captured namespace's name, as its bind mount gives it
//!                                 (absent when nothing names it)
//! proc/netns/INODE/net/TABLE      another namespace's tables (`capture --netns all`; the
//!                                 capture's own namespace's are proc/net/)
//! proc/netns/INODE/unread         (empty) a namespace found but not read: an audit of the
//!                                 snapshot calls its listeners "not checked", not missing
//! proc/netns/complete             (empty) `--netns all` looked everywhere it needed to:
//!                                 without it, a namespace may be missing from the snapshot
//! ```
//!
//! `proc/` is laid out like `/proc` itself, so `tar -xf SNAP proc` followed by
//! `lsports --proc-root proc` reads it too.

/// Name of the manifest entry.
pub const MANIFEST: &str = "lsports-snapshot.json";
/// Directory holding the proc tree inside the archive.
pub const PROC_DIR: &str = "proc";
/// The socket tables a snapshot may hold.
pub const TABLES: [&str; 4] = ["tcp", "tcp6", "udp", "udp6"];
/// The per-process files a snapshot may hold. `cgroup` names a holder's container and unit,
/// which container and unit filters, columns and policy rules judge: without it a snapshot's
/// listeners would be nobody's containers, and a rule denying a container's would pass them.
pub const PROCESS_FILES: [&str; 5] = ["comm", "cmdline", "status", "stat", "cgroup"];

/// What an archive entry is, judged by its name alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// The manifest.
    Manifest,
    /// A directory on the way to other entries (`proc/`, `proc/PID/`, …).
    Directory,
    /// `proc/net/NAME`, one of [`TABLES`].
    Table(&'static str),
    /// `proc/PID/NAME`, one of [`PROCESS_FILES`].
    ProcessFile {
        /// Process id.
        pid: u32,
        /// File name.
        name: &'static str,
    },
    /// `proc/PID/fd`: a directory of fd links, or a file saying why it could not be read.
    FdDir {
        /// Process id.
        pid: u32,
    },
    /// `proc/PID/exe`: the executable's path, as a link that is read, never followed.
    ExeLink {
        /// Process id.
        pid: u32,
    },
    /// `proc/PID/fd/FD`: an fd link.
    FdLink {
        /// Process id.
        pid: u32,
        /// File descriptor number.
        fd: u32,
    },
    /// A harmless name a snapshot does not use (from a newer lsports, or added by hand):
    /// skipped.
    Unknown,
    /// `proc/netns/own`: the inode of the capture's own network namespace.
    NetnsOwn,
    /// `proc/netns/complete`: the capture looked for every namespace and found all there were
    /// to find (`--netns all`, nothing it could not look into); absent, a namespace the
    /// snapshot has no tables for may have existed.
    NetnsComplete,
    /// `proc/netns/INODE/unread`: a namespace the capture found but could not read.
    NetnsUnread {
        /// The namespace's nsfs inode.
        inode: u64,
    },
    /// `proc/netns/INODE/name`: a namespace's name.
    NetnsName {
        /// The namespace's nsfs inode.
        inode: u64,
    },
    /// `proc/netns/INODE/net/TABLE`: one of [`TABLES`] of another namespace.
    NetnsTable {
        /// The namespace's nsfs inode.
        inode: u64,
        /// The table.
        table: &'static str,
    },
}

/// Why a name is refused outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeName {
    /// Absolute path.
    Absolute,
    /// A `..` component.
    ParentDir,
    /// An empty name or a NUL byte.
    Malformed,
}

impl UnsafeName {
    /// Short explanation for error messages.
    pub fn reason(self) -> &'static str {
        match self {
            UnsafeName::Absolute => "absolute path",
            UnsafeName::ParentDir => "`..` in the path",
            UnsafeName::Malformed => "empty name or NUL byte",
        }
    }
}

/// Classify an archive entry by its raw name.
pub fn classify(name: &[u8]) -> Result<EntryKind, UnsafeName> {
    let parts = components(name)?;
    Ok(match parts.as_slice() {
        [] | [b"proc"] => EntryKind::Directory,
        [m] if *m == MANIFEST.as_bytes() => EntryKind::Manifest,
        [b"proc", b"net"] => EntryKind::Directory,
        [b"proc", b"net", table] => {
            known(table, &TABLES).map_or(EntryKind::Unknown, EntryKind::Table)
        }
        [b"proc", b"netns", rest @ ..] => netns_entry(rest),
        [b"proc", pid, rest @ ..] => match canonical_u32(pid) {
            Some(pid) => process_entry(pid, rest),
            None => EntryKind::Unknown,
        },
        _ => EntryKind::Unknown,
    })
}

fn netns_entry(rest: &[&[u8]]) -> EntryKind {
    let inode = |text: &[u8]| canonical_u64(text);
    match rest {
        [] => EntryKind::Directory,
        [b"own"] => EntryKind::NetnsOwn,
        [b"complete"] => EntryKind::NetnsComplete,
        [ns, more @ ..] => match (inode(ns), more) {
            (None, _) => EntryKind::Unknown,
            (Some(_), [] | [b"net"]) => EntryKind::Directory,
            (Some(inode), [b"name"]) => EntryKind::NetnsName { inode },
            (Some(inode), [b"unread"]) => EntryKind::NetnsUnread { inode },
            (Some(inode), [b"net", table]) => {
                known(table, &TABLES).map_or(EntryKind::Unknown, |table| EntryKind::NetnsTable {
                    inode,
                    table,
                })
            }
            (Some(_), _) => EntryKind::Unknown,
        },
    }
}

/// A decimal u64 as the kernel writes an inode: digits only, no leading zero.
pub fn canonical_u64(text: &[u8]) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.iter().all(u8::is_ascii_digit)
        && (text == b"0" || text[0] != b'0');
    canonical.then(|| std::str::from_utf8(text).ok()?.parse().ok())?
}

fn process_entry(pid: u32, rest: &[&[u8]]) -> EntryKind {
    match rest {
        [] => EntryKind::Directory,
        [b"fd"] => EntryKind::FdDir { pid },
        [b"exe"] => EntryKind::ExeLink { pid },
        [b"fd", fd] => {
            canonical_u32(fd).map_or(EntryKind::Unknown, |fd| EntryKind::FdLink { pid, fd })
        }
        [name] => known(name, &PROCESS_FILES).map_or(EntryKind::Unknown, |name| {
            EntryKind::ProcessFile { pid, name }
        }),
        _ => EntryKind::Unknown,
    }
}

/// Split on `/`, dropping `.` components and empty ones (`./proc//net/` is `proc/net`).
fn components(name: &[u8]) -> Result<Vec<&[u8]>, UnsafeName> {
    if name.is_empty() || name.contains(&0) {
        return Err(UnsafeName::Malformed);
    }
    if name.starts_with(b"/") {
        return Err(UnsafeName::Absolute);
    }
    let mut parts = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(UnsafeName::ParentDir),
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

fn known(name: &[u8], names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|n| n.as_bytes() == name)
}

/// A decimal u32 written the way `/proc` writes it (`0042` would be a different directory
/// name than the `42` the fd scan looks for).
pub use crate::sys::procroot::canonical_u32;

/// Whether `target` is acceptable as an fd link's target: a short name with no `/`, so that
/// nothing following the link after extraction could leave the snapshot directory.
pub fn safe_link_target(target: &[u8]) -> bool {
    !target.is_empty() && target.len() <= 255 && !target.contains(&b'/') && !target.contains(&0)
}

/// Whether `target` is acceptable as an `exe` link's target: any path the kernel could print
/// (absolute, possibly ending in ` (deleted)`), bounded, without NUL. Such a link points
/// outside the snapshot, which is harmless because lsports only ever reads it with `readlink`;
/// the unpacker never writes through it either.
pub fn safe_exe_target(target: &[u8]) -> bool {
    !target.is_empty() && target.len() <= 4096 && !target.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_capture_writes_are_recognised() {
        assert_eq!(classify(b"lsports-snapshot.json"), Ok(EntryKind::Manifest));
        assert_eq!(classify(b"proc/net/tcp6"), Ok(EntryKind::Table("tcp6")));
        assert_eq!(
            classify(b"./proc/812/comm"),
            Ok(EntryKind::ProcessFile {
                pid: 812,
                name: "comm"
            })
        );
        assert_eq!(classify(b"proc/812/fd/"), Ok(EntryKind::FdDir { pid: 812 }));
        assert_eq!(
            classify(b"proc/812/fd/3"),
            Ok(EntryKind::FdLink { pid: 812, fd: 3 })
        );
        assert_eq!(
            classify(b"proc/812/exe"),
            Ok(EntryKind::ExeLink { pid: 812 })
        );
        assert_eq!(classify(b"proc//812/"), Ok(EntryKind::Directory));
    }

    #[test]
    fn namespace_names_are_recognised_and_odd_ones_unknown() {
        assert_eq!(classify(b"proc/netns/own"), Ok(EntryKind::NetnsOwn));
        assert_eq!(
            classify(b"proc/netns/complete"),
            Ok(EntryKind::NetnsComplete)
        );
        assert_eq!(
            classify(b"proc/netns/4026532286/unread"),
            Ok(EntryKind::NetnsUnread { inode: 4026532286 })
        );
        assert_eq!(
            classify(b"proc/netns/4026532286/name"),
            Ok(EntryKind::NetnsName { inode: 4026532286 })
        );
        assert_eq!(
            classify(b"proc/netns/4026532286/net/udp6"),
            Ok(EntryKind::NetnsTable {
                inode: 4026532286,
                table: "udp6"
            })
        );
        assert_eq!(classify(b"proc/netns/1/net/"), Ok(EntryKind::Directory));
        for name in [
            &b"proc/netns/01/name"[..],
            b"proc/netns/x/name",
            b"proc/netns/1/net/unix",
            b"proc/netns/1/fd/3",
            b"proc/netns/1/net/tcp/x",
            b"proc/netns/18446744073709551616/name",
        ] {
            assert_eq!(classify(name), Ok(EntryKind::Unknown), "{name:?}");
        }
        assert_eq!(
            classify(b"proc/netns/1/../../../x"),
            Err(UnsafeName::ParentDir)
        );
    }

    #[test]
    fn escapes_are_refused() {
        assert_eq!(classify(b"/etc/passwd"), Err(UnsafeName::Absolute));
        assert_eq!(classify(b"proc/../../x"), Err(UnsafeName::ParentDir));
        assert_eq!(classify(b"proc/1/fd/.."), Err(UnsafeName::ParentDir));
        assert_eq!(classify(b""), Err(UnsafeName::Malformed));
        assert_eq!(classify(b"proc/1\0/comm"), Err(UnsafeName::Malformed));
    }

    #[test]
    fn other_names_are_unknown() {
        for name in [
            &b"proc/net/unix"[..],
            b"proc/0042/comm",
            b"proc/1/environ",
            b"proc/1/fd/3/x",
            b"proc/self/comm",
            b"proc/4294967296/comm",
            b"README",
        ] {
            assert_eq!(classify(name), Ok(EntryKind::Unknown), "{name:?}");
        }
    }

    #[test]
    fn link_targets() {
        assert!(safe_link_target(b"socket:[123]"));
        assert!(!safe_link_target(b"/etc/shadow"));
        assert!(!safe_link_target(b"../x"));
        assert!(!safe_link_target(b""));
        assert!(safe_exe_target(b"/usr/sbin/nginx (deleted)"));
        assert!(!safe_exe_target(b"/a\0b"));
    }
}
