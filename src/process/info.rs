//! What `/proc` says about processes: one process's name, command line and effective uid (read
//! only for processes that hold a shown socket), and whether the proc mount hides processes.
//!
//! Parsers take readers and never open a path; [`DetailsReader`] and [`proc_visibility`] are
//! the thin wrappers that own the paths under a configurable proc root, so the same code reads
//! the live `/proc`, a fixture tree or an opened snapshot.
//!
//! The parsers are hand-written rather than the `procfs-core` crate's, because they were
//! measured faster (`examples/procfs_compare.rs parsers`, best of five runs, in memory, 2
//! cores): the effective uid from a `status` takes 0.73 µs here and 39 µs through
//! `Status::from_buf_read` (54 times as long: it parses every line into a map), and the
//! `hidepid` of `/proc` from a `mountinfo` 3.2 µs against 19 µs through `MountInfos` (6 times).
//! `status` is read for every process holding a shown socket.

use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use crate::config::DetailFields;
use crate::error::ParseWarning;
pub use crate::sys::procroot::{Hold, ProcessDir};
use crate::sys::procroot::{ProcRoot, StackPath};

/// The details of one process; every field is `None` when it could not be read (the process
/// exited, or the file is not readable) or did not parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessDetails {
    /// Raw `comm`, without the trailing newline; shared by every socket the process holds.
    pub name: Option<crate::model::SharedBytes>,
    /// Raw `cmdline`; shared like `name`.
    pub cmdline: Option<crate::model::SharedBytes>,
    /// Effective uid from `status`.
    pub uid: Option<u32>,
    /// Files that were read but did not parse (a `status` without a usable `Uid:` line).
    /// A file that could not be read at all is not a warning: processes exit all the time.
    pub warnings: Vec<ParseWarning>,
}

/// Reads the details of many processes under one proc root: files are opened relative to the
/// root's directory descriptor by paths on the stack (never leaving the root, never blocking:
/// a FIFO or a link out of the tree where a file should be leaves that field unknown), and
/// read into one reused buffer, so a process costs its three files' open, check, read and
/// close, and the three copies kept.
#[derive(Debug)]
pub struct DetailsReader {
    /// `None` when the root cannot be opened: every process then reads as vanished.
    root: Option<Arc<ProcRoot>>,
    buffer: Vec<u8>,
    fields: DetailFields,
    /// Files refused for their size since the last details were given out (a copied tree's
    /// 2 GiB `cmdline`): said, as a file that did not parse is.
    too_large: Vec<ParseWarning>,
}

impl DetailsReader {
    /// A reader of processes under `proc_root`.
    pub fn new(proc_root: &Path) -> Self {
        Self::reading(ProcRoot::open(proc_root).ok().map(Arc::new))
    }

    /// A reader of processes under `root`, already open.
    pub fn with_root(root: Arc<ProcRoot>) -> Self {
        Self::reading(Some(root))
    }

    fn reading(root: Option<Arc<ProcRoot>>) -> Self {
        DetailsReader {
            root,
            buffer: Vec::with_capacity(4096),
            fields: DetailFields::ALL,
            too_large: Vec::new(),
        }
    }

    /// Read only the name and `fields` (the others stay `None`).
    pub fn only(mut self, fields: DetailFields) -> Self {
        self.fields = fields;
        self
    }

    /// `comm`, `cmdline` and `status` of `pid`; fields that cannot be read are `None`.
    pub fn read(&mut self, pid: u32) -> ProcessDetails {
        match self.open(pid) {
            Some(dir) => self.read_in(&dir),
            None => ProcessDetails::default(),
        }
    }

    /// The directory of `pid`, opened once: whatever is read through it is of the process
    /// that had the pid when it was opened; if that process exits and the pid is reused, reads
    /// fail rather than describe the newcomer. `None` when there is no such process.
    pub fn open(&self, pid: u32) -> Option<ProcessDir> {
        self.root.as_ref()?.process(pid).ok()
    }

    /// `comm`, `cmdline` and `status` of the process of `dir`; fields that cannot be read are
    /// `None`.
    pub fn read_in(&mut self, dir: &ProcessDir) -> ProcessDetails {
        self.read_fields(At::Dir(dir), true)
    }

    /// `comm` if `name`, then `cmdline` and `status` as asked for, of the process `at`.
    fn read_fields(&mut self, at: At<'_>, name: bool) -> ProcessDetails {
        // A `stat` too large to read (`read_started_at`, `start_tick`) left its warning with no
        // details to carry it: it is not this process's.
        self.too_large.clear();
        let mut details = ProcessDetails::default();
        if name && self.read_file(at, b"comm") {
            details.name = Some(strip_newline(&self.buffer).into());
        }
        if self.fields.cmdline && self.read_file(at, b"cmdline") {
            details.cmdline = Some(self.buffer[..].into());
        }
        // Read whole first, so a process exiting mid-read is "unreadable", not "malformed".
        if self.fields.uid && self.read_file(at, b"status") {
            let label = || {
                let root = self.root.as_ref().map_or(Path::new(""), |r| r.path());
                root.join(format!("{}/status", at.pid()))
                    .display()
                    .to_string()
            };
            match effective_uid_of(&self.buffer, label) {
                Ok(uid) => details.uid = Some(uid),
                Err(warning) => details.warnings.push(warning),
            }
        }
        details.warnings.append(&mut self.too_large);
        details
    }

    /// The details of the process that has `pid` if it is the one that started at
    /// `start_tick` (clock ticks since boot, as `stat` counts them), was not exiting once they
    /// were read, and may be inspected as its fd links may (see [`Stat::inspectable`]); else
    /// what its `stat` showed of its start (`None`: unreadable, exiting, not to be inspected,
    /// or gone). The command line and `status` (as asked for) are read first and `stat` last,
    /// so its start and liveness vouch for what was read before: a pid reused meanwhile shows
    /// another start, and a process that began to exit (it then drops its fds, and its
    /// command line reads empty) shows a zombie's state or the exiting flag. The name is
    /// `stat`'s own copy of `comm`, the same bytes, read in the same read as the start.
    ///
    /// Each file is opened by its path (`PID/stat`), not through a directory opened first: a
    /// pid is never given to another process while its process exists (a zombie keeps it
    /// too), so when `stat`, read last, shows the start the kernel saw, every file read
    /// before it was that same process's. One open and close fewer per process, for each of
    /// the kernel iterator's holders: measured in the namespaces world (1,216 processes, a C
    /// loop over the same calls, three runs), 3.7 ms of CPU against 4.6–5.0 through the
    /// directory.
    pub fn read_started_pid(
        &mut self,
        pid: u32,
        start_tick: u64,
    ) -> Result<ProcessDetails, Option<u64>> {
        self.read_started_at(At::Pid(pid), start_tick)
    }

    fn read_started_at(
        &mut self,
        at: At<'_>,
        start_tick: u64,
    ) -> Result<ProcessDetails, Option<u64>> {
        let mut details = ProcessDetails {
            name: None,
            ..self.read_fields(at, false)
        };
        if !self.read_file(at, b"stat") {
            return Err(None);
        }
        let stat = parse_stat(&self.buffer).ok_or(None)?;
        if stat.start_tick != start_tick {
            return Err(Some(stat.start_tick));
        }
        if stat.exiting() || !stat.inspectable() {
            return Err(None);
        }
        details.name = Some(stat.name.into());
        Ok(details)
    }

    /// When the process of `dir` started, as its `stat` shows it (field 22, in clock ticks
    /// since boot); `None` when it is gone or the file does not parse.
    pub fn start_tick(&mut self, dir: &ProcessDir) -> Option<u64> {
        if !self.read_file(At::Dir(dir), b"stat") {
            return None;
        }
        parse_start_tick(&self.buffer)
    }

    /// Read `name` of the process `at` into the buffer; false when it cannot be read.
    fn read_file(&mut self, at: At<'_>, name: &[u8]) -> bool {
        let Some(root) = &self.root else {
            return false;
        };
        let read = match at {
            At::Dir(dir) => {
                let path = StackPath::name(name);
                root.read_into(Some(dir.fd()), path.as_cstr(), &mut self.buffer)
            }
            At::Pid(pid) => {
                let path = StackPath::pid_file(pid, name);
                root.read_into(None, path.as_cstr(), &mut self.buffer)
            }
        };
        match read {
            Ok(()) => true,
            Err(error) if error.kind() == std::io::ErrorKind::FileTooLarge => {
                let file = String::from_utf8_lossy(name);
                self.too_large.push(ParseWarning {
                    path: format!("{}/{}/{file}", root.path().display(), at.pid()),
                    line: 1,
                    field: "size",
                    problem: format!("{error}; left unread"),
                });
                false
            }
            Err(_) => false,
        }
    }
}

/// Where a process's files are read from: its directory, opened once, or the root by its pid.
#[derive(Debug, Clone, Copy)]
enum At<'d> {
    Dir(&'d ProcessDir),
    Pid(u32),
}

impl At<'_> {
    fn pid(&self) -> u32 {
        match self {
            At::Dir(dir) => dir.pid(),
            At::Pid(pid) => *pid,
        }
    }
}

/// [`effective_uid`] of a `status` held in memory, naming the file only when it is malformed.
fn effective_uid_of(status: &[u8], label: impl Fn() -> String) -> Result<u32, ParseWarning> {
    // The common case first: no label string is built for a status that parses.
    effective_uid(status, "").map_err(|mut warning| {
        warning.path = label();
        warning
    })
}

/// What confirming a holder reads of a `stat` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat<'a> {
    /// Field 2, `comm` without its parentheses: the raw bytes `comm` shows, unescaped.
    pub name: &'a [u8],
    /// Field 3, the state letter (`Z`: zombie, `X`: dead).
    pub state: u8,
    /// Field 9, the task's flags.
    pub flags: u64,
    /// Field 22, `starttime`, in clock ticks since boot.
    pub start_tick: u64,
    /// Field 28, `startstack`: the kernel writes 0 unless the reader may inspect the process
    /// (`PTRACE_MODE_READ_FSCREDS`, the check its fd links are read under) and it has memory.
    pub start_stack: u64,
}

/// The kernel's `PF_EXITING` task flag: set first thing when a task begins to exit, before it
/// lets go of its memory and its files, and never cleared.
const PF_EXITING: u64 = 0x4;

impl Stat<'_> {
    /// Whether the process has begun to exit (or has exited: a zombie holds no fds).
    pub fn exiting(&self) -> bool {
        self.flags & PF_EXITING != 0 || matches!(self.state, b'Z' | b'X' | b'x')
    }

    /// Whether the reader may read the process's fd links: the kernel shows its stack's start
    /// only under the same access check (a non-dumpable process read without
    /// `CAP_SYS_PTRACE`, or one a security module guards, shows 0).
    pub fn inspectable(&self) -> bool {
        self.start_stack != 0
    }
}

/// The name, state, flags and start of a `stat` line. The name is in parentheses and may hold
/// any byte but NUL, parentheses included, so it ends at the last `)` and the fields are
/// counted from there; `None` when the line does not parse.
pub fn parse_stat(stat: &[u8]) -> Option<Stat<'_>> {
    let (name, mut fields) = split_stat(stat)?;
    let state = match fields.next()?.as_bytes() {
        [letter] => *letter,
        _ => return None,
    };
    let flags = fields.nth(5)?.parse().ok()?;
    let start_tick = fields.nth(12)?.parse().ok()?;
    let start_stack = fields.nth(5)?.parse().ok()?;
    Some(Stat {
        name,
        state,
        flags,
        start_tick,
        start_stack,
    })
}

/// Field 22 of a `stat` line, `starttime`. The name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so fields are counted from the last `)`: `state` is the
/// first after it, `starttime` the twentieth.
pub fn parse_start_tick(stat: &[u8]) -> Option<u64> {
    split_stat(stat)?.1.nth(19)?.parse().ok()
}

/// A `stat` line split at its name (field 2): the name, between the first `(` and the last
/// `)` since it may hold any byte but NUL, parentheses included; and the fields after it,
/// `state` (field 3) first. `None` when the line has no name in parentheses.
pub fn split_stat(stat: &[u8]) -> Option<(&[u8], std::str::SplitAsciiWhitespace<'_>)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let name = stat.get(open + 1..close)?;
    let after = std::str::from_utf8(&stat[close + 1..]).ok()?;
    Some((name, after.split_ascii_whitespace()))
}

/// `comm` from a reader: the name without the one newline the kernel appends (a name may
/// contain others, and any byte but NUL).
pub fn parse_comm(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut name = Vec::with_capacity(16);
    reader.read_to_end(&mut name)?;
    Ok(strip_newline(&name).to_vec())
}

fn strip_newline(name: &[u8]) -> &[u8] {
    name.strip_suffix(b"\n").unwrap_or(name)
}

/// The effective uid: the second number of the `Uid:` line of `status`. `path_label` names
/// the file in the warning when there is no such line or it does not hold four uids.
pub fn effective_uid(status: impl BufRead, path_label: &str) -> Result<u32, ParseWarning> {
    let warning = |line, problem: String| ParseWarning {
        path: path_label.to_owned(),
        line,
        field: "Uid",
        problem,
    };
    let mut line_no = 0;
    for line in status.split(b'\n') {
        line_no += 1;
        let line = line.map_err(|e| warning(line_no, format!("read failed: {e}")))?;
        let Some(rest) = line.strip_prefix(b"Uid:") else {
            continue;
        };
        return parse_uid_line(rest)
            .ok_or_else(|| warning(line_no, "expected four decimal uids".to_owned()));
    }
    Err(warning(line_no + 1, "no `Uid:` line".to_owned()))
}

/// `real effective saved filesystem`, tab-separated: the second.
fn parse_uid_line(rest: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(rest).ok()?;
    let uids: Vec<u32> = text
        .split_ascii_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    (uids.len() == 4).then(|| uids[1])
}

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO`), fixed by the kernel.
const INITIAL_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

/// Whether `proc_root` is this process's live `/proc` and this process runs in a PID
/// namespace other than the initial one: processes outside it cannot be seen, yet may hold
/// sockets of the network namespace it shares (a container with the host's network). `false`
/// for a fixture tree or a snapshot, whose processes are all there is.
pub fn in_nested_pid_namespace(proc_root: &Path) -> bool {
    let Ok(root) = ProcRoot::open(proc_root) else {
        return false;
    };
    let me = std::process::id().to_string();
    let live = root.read_link("self").is_ok_and(|pid| pid == me.as_bytes());
    // `ns/pid` is a magic link: its target names the namespace, and it is never followed.
    let namespace = || {
        let target = root.read_link_in("self/ns", "pid").ok()?;
        namespace_inode(&target)
    };
    live && namespace().is_some_and(|ino| ino != INITIAL_PID_NAMESPACE)
}

/// The inode in a namespace link's target: `pid:[4026531836]` gives 4026531836.
fn namespace_inode(target: &[u8]) -> Option<u64> {
    let start = target.iter().position(|&b| b == b'[')? + 1;
    let digits = target.get(start..target.len().checked_sub(1)?)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// How a proc mount hides other users' processes (its `hidepid=` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HidePid {
    /// `hidepid=1` / `noaccess`: every process is listed, but others' directories are closed.
    NoAccess,
    /// `hidepid=2` / `invisible`: other users' processes are not even listed.
    Invisible,
    /// `hidepid=4` / `ptraceable`: only processes the reader may ptrace are listed.
    Ptraceable,
}

impl HidePid {
    /// The option's value as the kernel shows it in `mountinfo`: `noaccess`, `invisible` or
    /// `ptraceable`.
    pub fn name(self) -> &'static str {
        match self {
            HidePid::NoAccess => "noaccess",
            HidePid::Invisible => "invisible",
            HidePid::Ptraceable => "ptraceable",
        }
    }
}

/// What the proc mount lets an unprivileged reader see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcVisibility {
    /// The `hidepid=` level.
    pub hidepid: HidePid,
    /// The `gid=` option: members of this group see every process.
    pub gid: Option<u32>,
}

/// Whether the proc filesystem at `proc_root` is mounted with `hidepid=`: processes of other
/// users are then missing from it rather than unreadable, and an unprivileged scan cannot
/// count them. `None` when it is not, or when `proc_root` is not a proc mount (a fixture tree
/// or an opened snapshot) or its `self/mountinfo` cannot be read.
pub fn proc_visibility(proc_root: &Path) -> Option<ProcVisibility> {
    let mount_point = std::fs::canonicalize(proc_root).ok()?;
    let mountinfo = ProcRoot::open(proc_root)
        .and_then(|root| root.read_file("self/mountinfo"))
        .ok()?;
    parse_mountinfo(&mountinfo[..], &mount_point)
}

/// The `hidepid=` level of the topmost proc mount at `mount_point` in a `mountinfo` file.
pub fn parse_mountinfo(mountinfo: impl BufRead, mount_point: &Path) -> Option<ProcVisibility> {
    let want = mount_point.as_os_str().as_encoded_bytes();
    let mut found = None;
    for line in mountinfo.split(b'\n').map_while(Result::ok) {
        if let Some(options) = proc_mount_options(&line, want) {
            // Later lines are mounted over earlier ones on the same point: the last one wins.
            found = Some(visibility(&options));
        }
    }
    found.flatten()
}

/// The super-block options of a mountinfo line, if it is a proc mount at `mount_point`.
///
/// `36 35 0:21 / /proc rw,relatime shared:14 - proc proc rw,hidepid=invisible`: the mount
/// point is the fifth field (octal-escaped), the fields after ` - ` are type, source, options.
fn proc_mount_options(line: &[u8], mount_point: &[u8]) -> Option<Vec<u8>> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    if unescape_octal(fields.get(4)?) != mount_point {
        return None;
    }
    let dash = fields.iter().position(|f| *f == b"-")?;
    if fields.get(dash + 1)? != b"proc" {
        return None;
    }
    Some(fields.get(dash + 3)?.to_vec())
}

/// The pids whose directory under `proc_root` has something mounted on it or below it
/// (`mount --bind /tmp/empty /proc/PID`): a way to hide a process, whose fds and details can
/// then not be read. Sorted, each once; empty when `proc_root` is not a mount this reader's
/// `self/mountinfo` lists (a fixture tree, an opened snapshot).
///
/// A pid listed is alive: the kernel takes the mounts off a `/proc/PID` directory when its
/// process exits, so an exit or a reused pid is never taken for hiding.
pub fn overmounted_pids(proc_root: &Path) -> Vec<u32> {
    let Ok(mount_point) = std::fs::canonicalize(proc_root) else {
        return Vec::new();
    };
    let mountinfo = ProcRoot::open(proc_root).and_then(|root| root.read_file("self/mountinfo"));
    mountinfo.map_or_else(
        |_| Vec::new(),
        |text| parse_overmounted(&text, &mount_point),
    )
}

/// [`overmounted_pids`] from a `mountinfo` text, for the proc mount at `mount_point`.
pub fn parse_overmounted(mountinfo: &[u8], mount_point: &Path) -> Vec<u32> {
    let mut prefix = mount_point.as_os_str().as_encoded_bytes().to_vec();
    if prefix.last() != Some(&b'/') {
        prefix.push(b'/');
    }
    let mut pids: Vec<u32> = mountinfo
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let path = unescape_octal(line.split(|&b| b == b' ').nth(4)?);
            let below = path.strip_prefix(prefix.as_slice())?;
            let name = below.split(|&b| b == b'/').next()?;
            let all_digits = !name.is_empty() && name.iter().all(u8::is_ascii_digit);
            all_digits.then(|| std::str::from_utf8(name).ok()?.parse().ok())?
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// mountinfo writes space, tab, newline and backslash in paths as `\040`-style octal.
fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&byte, tail)) = rest.split_first() {
        let octal = tail
            .get(..3)
            .filter(|d| byte == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                rest = &tail[3..];
            }
            None => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    out
}

/// The visibility described by proc mount options, `None` for `hidepid=0`/`off` or none.
fn visibility(options: &[u8]) -> Option<ProcVisibility> {
    let mut hidepid = None;
    let mut gid = None;
    for option in options.split(|&b| b == b',') {
        if let Some(level) = option.strip_prefix(b"hidepid=") {
            hidepid = match level {
                b"1" | b"noaccess" => Some(HidePid::NoAccess),
                b"2" | b"invisible" => Some(HidePid::Invisible),
                b"4" | b"ptraceable" => Some(HidePid::Ptraceable),
                _ => None,
            };
        } else if let Some(value) = option.strip_prefix(b"gid=") {
            gid = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
    }
    Some(ProcVisibility {
        hidepid: hidepid?,
        gid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_field() {
        let status = b"Name:\tx\nUmask:\t0022\nUid:\t1000\t33\t33\t33\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(&status[..], "s"), Ok(33));
    }

    #[test]
    fn malformed_status_names_file_line_and_field() {
        let missing = effective_uid(&b"Name:\tx\n"[..], "/proc/7/status").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "/proc/7/status:2: field Uid: no `Uid:` line"
        );
        let bad = effective_uid(&b"Name:\tx\nUid:\tx\ty\n"[..], "s").unwrap_err();
        assert_eq!((bad.line, bad.field), (2, "Uid"));
        let short = effective_uid(&b"Uid:\t1\t2\n"[..], "s").unwrap_err();
        assert_eq!(short.line, 1);
        assert!(effective_uid(&b"Uid:\t1\t99999999999\t1\t1\n"[..], "s").is_err());
    }

    #[test]
    fn start_tick_is_field_22_counted_after_the_name() {
        let stat = b"42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                     123456 1000 50 18446744073709551615\n";
        assert_eq!(parse_start_tick(stat), Some(123456));
        assert_eq!(parse_start_tick(b"42 (a) S 1 2 3"), None, "too short");
        assert_eq!(parse_start_tick(b"no parenthesis"), None);
        let me = std::fs::read("/proc/self/stat").unwrap();
        assert!(parse_start_tick(&me).is_some_and(|tick| tick > 0));
    }

    #[test]
    fn stat_gives_name_state_flags_start_and_stack_whatever_the_name_holds() {
        let stat = b"42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                     123456 1000 50 18446744073709551615 4096 8192 140720000 0 0\n";
        let got = parse_stat(stat).unwrap();
        assert_eq!(got.name, b"a) b (c");
        let fields = (got.state, got.flags, got.start_tick, got.start_stack);
        assert_eq!(fields, (b'S', 4194560, 123456, 140720000));
        assert!(!got.exiting() && got.inspectable());
        let line = |state: char, flags: u32, stack: u64| {
            format!(
                "7 (x) {state} 1 7 7 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0 1 1 {stack}\n"
            )
        };
        let exiting = line('R', 4194564, 5);
        assert!(
            parse_stat(exiting.as_bytes()).unwrap().exiting(),
            "PF_EXITING"
        );
        let zombie = line('Z', 4194560, 0);
        assert!(parse_stat(zombie.as_bytes()).unwrap().exiting(), "a zombie");
        // What a reader without ptrace access is shown: 1 for the code's bounds, 0 for the
        // stack.
        let guarded = line('S', 4194560, 0);
        assert!(!parse_stat(guarded.as_bytes()).unwrap().inspectable());
        assert_eq!(parse_stat(b"7 (x) S 1 2 3"), None, "too short");
        let short = b"7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 9 0 0\n";
        assert_eq!(parse_stat(short), None, "no startstack");
        let two_letters = b"7 (x) SS 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 9 0 0 0 0 0 1";
        assert_eq!(parse_stat(two_letters), None);
        assert_eq!(parse_stat(b"7 x) S 1"), None, "no opening parenthesis");
        let me = std::fs::read("/proc/self/stat").unwrap();
        let parsed = parse_stat(&me).unwrap();
        let comm = std::fs::read("/proc/self/comm").unwrap();
        assert_eq!(parsed.name, strip_newline(&comm));
        assert_eq!(Some(parsed.start_tick), parse_start_tick(&me));
        assert!(!parsed.exiting() && parsed.inspectable());
    }

    #[test]
    fn comm_keeps_inner_newlines_but_drops_the_last() {
        assert_eq!(parse_comm(&b"a\nb\n"[..]).unwrap(), b"a\nb".to_vec());
        assert_eq!(parse_comm(&b"nginx"[..]).unwrap(), b"nginx".to_vec());
        assert_eq!(
            parse_comm(&b"\xff\xfe\n"[..]).unwrap(),
            b"\xff\xfe".to_vec()
        );
    }

    #[test]
    fn details_of_this_process() {
        let me = DetailsReader::new(Path::new("/proc")).read(std::process::id());
        assert!(me.name.is_some_and(|n| !n.is_empty()));
        assert_eq!(me.uid, Some(rustix::process::geteuid().as_raw()));
        assert!(me.warnings.is_empty());
    }

    #[test]
    fn only_the_fields_asked_for_are_read() {
        let me = std::process::id();
        let none = DetailFields {
            cmdline: false,
            uid: false,
        };
        let name_only = DetailsReader::new(Path::new("/proc")).only(none).read(me);
        assert!(name_only.name.is_some());
        assert_eq!((name_only.cmdline, name_only.uid), (None, None));
        let uid = DetailFields { uid: true, ..none };
        let with_uid = DetailsReader::new(Path::new("/proc")).only(uid).read(me);
        assert_eq!(with_uid.uid, Some(rustix::process::geteuid().as_raw()));
        assert_eq!(with_uid.cmdline, None);
        let all = DetailsReader::new(Path::new("/proc")).read(me);
        assert!(all.cmdline.is_some_and(|c| !c.is_empty()));
    }

    #[test]
    fn vanished_process_gives_nothing() {
        let gone = DetailsReader::new(Path::new("/proc")).read(u32::MAX);
        assert_eq!(gone, ProcessDetails::default());
    }

    #[test]
    fn garbage_status_in_a_tree_is_a_warning_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("42")).unwrap();
        std::fs::write(dir.path().join("42/status"), b"\xff\nUid:\n").unwrap();
        let details = DetailsReader::new(dir.path()).read(42);
        assert_eq!(details.uid, None);
        let want = dir.path().join("42/status").display().to_string();
        assert_eq!(details.warnings[0].path, want);
        assert_eq!(details.warnings[0].line, 2);
    }

    const MOUNTINFO: &[u8] = b"\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
85 22 0:40 / /proc rw,relatime - proc proc rw,gid=4,hidepid=invisible
86 22 0:41 / /mnt/my\\040proc rw - proc proc rw,hidepid=1
87 22 0:42 / /srv rw - tmpfs none rw,hidepid=2
";

    #[test]
    fn pid_directories_with_a_mount_on_or_below_them_are_overmounted() {
        let mountinfo = b"\
22 1 0:21 / /proc rw,relatime shared:12 - proc proc rw
71 22 254:0 /tmp/empty /proc/3 rw,relatime - ext4 /dev/vda rw
72 22 254:0 /tmp/empty /proc/17/fd rw,relatime - ext4 /dev/vda rw
73 22 254:0 /tmp/empty /proc/17 rw,relatime - ext4 /dev/vda rw
74 22 0:50 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
75 22 0:51 /null /proc/kcore rw - tmpfs tmpfs rw
76 22 0:51 /x /proc/12x rw - tmpfs tmpfs rw
77 1 0:52 /x /mnt/host\\040proc/9 rw - tmpfs tmpfs rw
78 1 0:52 /x /procs/5 rw - tmpfs tmpfs rw
";
        assert_eq!(parse_overmounted(mountinfo, Path::new("/proc")), [3, 17]);
        let spaced = parse_overmounted(mountinfo, Path::new("/mnt/host proc"));
        assert_eq!(spaced, [9]);
        assert!(parse_overmounted(mountinfo, Path::new("/srv")).is_empty());
        assert!(parse_overmounted(b"\xff\n\n- -", Path::new("/")).is_empty());
    }

    #[test]
    fn hidepid_of_the_topmost_proc_mount() {
        let got = parse_mountinfo(MOUNTINFO, Path::new("/proc"));
        let want = ProcVisibility {
            hidepid: HidePid::Invisible,
            gid: Some(4),
        };
        assert_eq!(got, Some(want));
        let spaced = parse_mountinfo(MOUNTINFO, Path::new("/mnt/my proc")).unwrap();
        assert_eq!(spaced.hidepid, HidePid::NoAccess);
        assert_eq!(spaced.hidepid.name(), "noaccess");
    }

    #[test]
    fn no_hidepid_and_other_filesystems_are_none() {
        let plain = b"22 1 0:21 / /proc rw - proc proc rw\n";
        assert_eq!(parse_mountinfo(&plain[..], Path::new("/proc")), None);
        assert_eq!(parse_mountinfo(MOUNTINFO, Path::new("/srv")), None);
        assert_eq!(parse_mountinfo(&b"\xff - -\n\n"[..], Path::new("/")), None);
        let off = b"22 1 0:21 / /proc rw - proc proc rw,hidepid=off\n";
        assert_eq!(parse_mountinfo(&off[..], Path::new("/proc")), None);
    }

    #[test]
    fn only_a_live_proc_can_show_a_nested_pid_namespace() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!in_nested_pid_namespace(dir.path()));
        let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
        let initial = ns == Path::new("pid:[4026531836]");
        assert_eq!(in_nested_pid_namespace(Path::new("/proc")), !initial);
    }

    #[test]
    fn namespace_links_give_their_inode() {
        assert_eq!(namespace_inode(b"pid:[4026531836]"), Some(4_026_531_836));
        assert_eq!(namespace_inode(b"pid:[]"), None);
        assert_eq!(namespace_inode(b"pid:["), None);
        assert_eq!(namespace_inode(b""), None);
    }

    #[test]
    fn a_snapshot_tree_is_not_a_proc_mount() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(proc_visibility(dir.path()), None);
    }
}
