//! Network namespaces kept by bind mounts, read from `/proc/self/mountinfo`.
//!
//! `ip netns add NAME` bind-mounts the namespace on `/run/netns/NAME`; Docker uses
//! `/run/docker/netns/<id>`, CNI plugins `/var/run/netns/cni-<uuid>`. Each such mount is a line
//! with filesystem type `nsfs` whose root field is the namespace itself, `net:[INODE]`, so the
//! namespace's inode is read from the line, with nothing opened.
//!
//! Mount points are chosen by whoever mounts them: the kernel escapes space, tab, newline and
//! backslash as `\NNN` octal, and any other byte (control characters, invalid UTF-8) comes
//! through as it is. Paths are kept as raw bytes; showing them is the renderer's business.
//!
//! Hand-written rather than `procfs-core`'s `MountInfos`, which was measured 3.1 to 4.7 times as
//! slow on a table of 200 `ip netns` mounts among 40 others (57 µs against 178–243 µs per
//! table, best of five runs of 10,000, on a loaded 2-core host; `examples/procfs_compare.rs
//! parsers`), and which does not fit: it reads the table as UTF-8 lines, so one mount point
//! with a byte that is not UTF-8 fails the whole table (every named namespace would be lost),
//! and it keeps the kernel's `\NNN` escapes in mount points.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One nsfs bind mount of a network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetMount {
    /// The namespace's nsfs inode.
    pub inode: u64,
    /// Where it is mounted, unescaped.
    pub path: PathBuf,
}

/// Directories whose entries are namespace names, most telling first: `ip netns` names
/// (`/var/run` is normally a link to `/run`, but a mount made through it is listed under
/// whichever path the kernel resolved), then Docker's sandbox ids.
const NAMING_DIRS: [&[u8]; 3] = [b"/run/netns/", b"/var/run/netns/", b"/run/docker/netns/"];

/// Every network-namespace bind mount in a mountinfo text. Lines that are not nsfs mounts of
/// a network namespace, and lines that do not parse, are skipped.
pub fn net_mounts(text: &[u8]) -> Vec<NetMount> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

/// One mountinfo line: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS…] - FSTYPE SOURCE SUPER`.
fn parse_line(line: &[u8]) -> Option<NetMount> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    // The optional tags end at a lone "-"; the filesystem type follows it.
    let dash = fields.iter().skip(6).position(|f| *f == b"-")? + 6;
    if fields.get(dash + 1).copied() != Some(b"nsfs".as_slice()) {
        return None;
    }
    let inode = net_inode(fields.get(3)?)?;
    let path = PathBuf::from(OsString::from_vec(unescape(fields.get(4)?)));
    Some(NetMount { inode, path })
}

/// The inode in an nsfs root field that names a network namespace: `net:[4026532286]`.
pub fn net_inode(root: &[u8]) -> Option<u64> {
    let digits = root.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Undo the kernel's `\NNN` octal escapes (`mangle()` in fs/proc_namespace.c). A backslash
/// not followed by three octal digits stays as it is.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// The name a mount gives its namespace: the entry name under a directory that holds
/// namespace names (`/run/netns/NAME`), or `None` for a mount anywhere else.
pub fn name_of(path: &std::path::Path) -> Option<OsString> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    NAMING_DIRS.iter().find_map(|dir| {
        let name = bytes.strip_prefix(*dir)?;
        (!name.is_empty() && !name.contains(&b'/')).then(|| OsString::from_vec(name.to_vec()))
    })
}

/// How telling a mount's name is: lower is better (see [`NAMING_DIRS`]); unnamed last.
pub fn name_rank(path: &std::path::Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    NAMING_DIRS
        .iter()
        .position(|dir| bytes.strip_prefix(*dir).is_some_and(|n| !n.contains(&b'/')))
        .unwrap_or(NAMING_DIRS.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    // Lines as a 6.x kernel writes them: `ip netns add w1`, the /run/netns mount itself
    // (tmpfs), a Docker sandbox, and a mount namespace bind-mounted (nsfs, but not net).
    const SAMPLE: &[u8] = b"\
25 30 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755
612 25 0:23 /netns /run/netns rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755
620 612 0:4 net:[4026532286] /run/netns/w1 rw shared:300 - nsfs nsfs rw
633 25 0:4 net:[4026532401] /run/docker/netns/3f2a9c1b7d0e rw - nsfs nsfs rw
640 25 0:4 mnt:[4026532500] /run/some/mnt rw - nsfs nsfs rw
";

    #[test]
    fn nsfs_net_mounts_are_found_with_their_inode_and_path() {
        assert_eq!(
            net_mounts(SAMPLE),
            vec![
                NetMount {
                    inode: 4026532286,
                    path: "/run/netns/w1".into()
                },
                NetMount {
                    inode: 4026532401,
                    path: "/run/docker/netns/3f2a9c1b7d0e".into()
                },
            ]
        );
    }

    #[test]
    fn a_mount_point_with_escaped_space_newline_and_backslash_is_unescaped() {
        let line = b"1 2 0:4 net:[7] /run/netns/a\\040b\\012c\\134d rw - nsfs nsfs rw";
        let mounts = net_mounts(line);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].path, Path::new("/run/netns/a b\nc\\d"));
        assert_eq!(name_of(&mounts[0].path), Some(OsString::from("a b\nc\\d")));
    }

    #[test]
    fn a_mount_point_with_raw_control_and_non_utf8_bytes_is_kept_byte_for_byte() {
        let line = b"1 2 0:4 net:[9] /run/netns/\x1b[31m\xff rw - nsfs nsfs rw";
        let mounts = net_mounts(line);
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(
            mounts[0].path.as_os_str().as_bytes(),
            b"/run/netns/\x1b[31m\xff"
        );
    }

    #[test]
    fn optional_tags_and_a_dash_inside_a_path_do_not_confuse_the_fields() {
        // The mount point itself is "-": the separator is the first lone "-" after field 6.
        let line = b"1 2 0:4 net:[11] /- rw shared:1 master:2 - nsfs nsfs rw";
        assert_eq!(
            net_mounts(line),
            vec![NetMount {
                inode: 11,
                path: "/-".into()
            }]
        );
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let text =
            b"garbage\n1 2 0:4 net:[] /x rw - nsfs nsfs rw\n1 2 0:4 net:[12x] /y rw - nsfs\n\
                     1 2 0:4 net:[99999999999999999999999] /z rw - nsfs nsfs rw\n\
                     1 2 0:4 net:[5] /run/netns/ok rw - nsfs nsfs rw\n";
        let mounts = net_mounts(text);
        assert_eq!(mounts.len(), 1, "{mounts:?}");
        assert_eq!(mounts[0].inode, 5);
    }

    #[test]
    fn bad_escapes_stay_literal() {
        assert_eq!(unescape(b"a\\9zz\\"), b"a\\9zz\\");
        assert_eq!(unescape(b"\\777"), b"?");
    }

    #[test]
    fn names_come_from_ip_netns_docker_and_cni_directories_only() {
        let named = |p: &str| name_of(Path::new(p)).map(|n| n.into_string().unwrap());
        assert_eq!(named("/run/netns/w1").as_deref(), Some("w1"));
        assert_eq!(
            named("/var/run/netns/cni-1234-abcd").as_deref(),
            Some("cni-1234-abcd")
        );
        assert_eq!(named("/run/docker/netns/3f2a").as_deref(), Some("3f2a"));
        assert_eq!(named("/tmp/held"), None);
        assert_eq!(named("/run/netns/sub/dir"), None);
        assert_eq!(named("/run/netns/"), None);
        assert!(
            name_rank(Path::new("/run/netns/w1")) < name_rank(Path::new("/run/docker/netns/x"))
        );
        assert_eq!(name_rank(Path::new("/tmp/held")), NAMING_DIRS.len());
    }
}
