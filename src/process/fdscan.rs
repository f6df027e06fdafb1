//! One pass over `/proc/*/fd`: which (pid, fd) pairs refer to each wanted socket inode.
//!
//! This is where netstat and ss spend nearly all their time on a busy host, so it is written
//! for speed: `/proc` is opened once, each pid's fd directory is opened relative to it, entries
//! are read with large `getdents64` buffers and each link is read with `readlinkat` relative to
//! the directory fd into a stack buffer — no path strings, no allocation per fd. Pids are spread
//! over threads through a shared counter, because fd counts per process are very skewed.
//!
//! A process found holding a wanted socket has its details (name, command line, uid) read by
//! the same worker right away: in parallel, and as close as possible to the moment its fds
//! were seen, so a pid reused in between is unlikely to lend its name to the socket.
//!
//! A process that exits mid-scan is skipped. A process whose fds cannot be read (another
//! user's, or non-dumpable) is counted, never mistaken for one without sockets.

use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::info::{self, ProcessDetails};
use crate::model::Holder;

/// Size of the `getdents64` buffer: one call reads ~1,500 fd entries.
const DENTS_BUFFER: usize = 32 * 1024;
/// `PF_KTHREAD` in `/proc/PID/stat` flags: kernel threads have no fds worth counting.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The result of a scan.
#[derive(Debug, Default)]
pub struct FdScan {
    /// Every holder of each wanted inode, sorted by (pid, fd).
    pub holders: HashMap<u64, Vec<Holder>>,
    /// Details of every pid that holds a wanted inode.
    pub details: HashMap<u32, ProcessDetails>,
    /// User processes whose fd directory could not be read.
    pub denied: usize,
    /// Processes whose fds were read.
    pub scanned: usize,
}

/// Per-thread accumulator, merged at the end so threads never contend on a map.
#[derive(Default)]
struct Partial {
    found: Vec<(u64, Holder)>,
    details: Vec<(u32, ProcessDetails)>,
    denied: usize,
    scanned: usize,
}

/// Scan every process under `proc_root` for fds referring to the inodes in `wanted`.
pub fn scan(proc_root: &Path, wanted: &HashSet<u64>) -> io::Result<FdScan> {
    let root = open_dir(proc_root)?;
    let pids = list_pids(proc_root)?;
    let threads = worker_count(pids.len());
    let next = AtomicUsize::new(0);
    let partials: Vec<Partial> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| scan_worker(proc_root, root.as_raw_fd(), &pids, &next, wanted)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    Ok(merge(partials))
}

fn worker_count(pids: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Tiny worlds are faster on one thread than the cost of spawning more.
    cores.min(pids / 64 + 1).clamp(1, 16)
}

fn merge(partials: Vec<Partial>) -> FdScan {
    let mut scan = FdScan::default();
    for partial in partials {
        scan.denied += partial.denied;
        scan.scanned += partial.scanned;
        scan.details.extend(partial.details);
        for (inode, holder) in partial.found {
            scan.holders.entry(inode).or_default().push(holder);
        }
    }
    for holders in scan.holders.values_mut() {
        holders.sort_unstable();
    }
    scan
}

fn scan_worker(
    proc_root: &Path,
    root: RawFd,
    pids: &[u32],
    next: &AtomicUsize,
    wanted: &HashSet<u64>,
) -> Partial {
    let mut partial = Partial::default();
    let mut dents = vec![0u8; DENTS_BUFFER];
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(&pid) = pids.get(index) else {
            return partial;
        };
        let before = partial.found.len();
        match scan_pid(root, pid, wanted, &mut dents, &mut partial.found) {
            PidOutcome::Scanned => partial.scanned += 1,
            PidOutcome::Gone => {}
            PidOutcome::Denied => {
                if !is_kernel_thread(root, pid) {
                    partial.denied += 1;
                }
            }
        }
        if partial.found.len() > before {
            partial
                .details
                .push((pid, info::read_details(proc_root, pid)));
        }
    }
}

/// What happened when one pid was scanned.
enum PidOutcome {
    Scanned,
    /// The process exited during the scan.
    Gone,
    /// Its fds could not be read.
    Denied,
}

fn scan_pid(
    root: RawFd,
    pid: u32,
    wanted: &HashSet<u64>,
    dents: &mut [u8],
    found: &mut Vec<(u64, Holder)>,
) -> PidOutcome {
    let mut path = PathBuf32::new();
    path.push_u32(pid);
    path.push_bytes(b"/fd");
    let dir = match open_at(root, path.as_cstr()) {
        Ok(dir) => dir,
        Err(e) => return outcome_of(&e),
    };
    loop {
        let len = match getdents(dir.as_raw_fd(), dents) {
            Ok(0) => return PidOutcome::Scanned,
            Ok(len) => len,
            Err(e) => return outcome_of(&e),
        };
        for (name, fd) in DirEntries::new(&dents[..len]) {
            if let Some(inode) = socket_inode_at(dir.as_raw_fd(), name) {
                if wanted.contains(&inode) {
                    found.push((inode, Holder { pid, fd }));
                }
            }
        }
    }
}

fn outcome_of(error: &io::Error) -> PidOutcome {
    match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => PidOutcome::Gone,
        _ => PidOutcome::Denied,
    }
}

/// `readlinkat` one fd entry and parse `socket:[N]`; `None` for anything else or on error
/// (an fd closed between `getdents` and `readlinkat` is simply gone).
fn socket_inode_at(dir: RawFd, name: &CStr) -> Option<u64> {
    let mut link = [0u8; 64];
    // SAFETY: `name` is NUL-terminated and `link` is a valid writable buffer of its length.
    let len = unsafe { libc::readlinkat(dir, name.as_ptr(), link.as_mut_ptr().cast(), link.len()) };
    let len = usize::try_from(len).ok()?;
    parse_socket_link(&link[..len])
}

/// Parse the target of an fd link: `socket:[12345]` gives 12345.
pub fn parse_socket_link(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Iterator over `linux_dirent64` records, yielding numeric names (fd numbers) only.
struct DirEntries<'a> {
    buffer: &'a [u8],
}

impl<'a> DirEntries<'a> {
    fn new(buffer: &'a [u8]) -> Self {
        DirEntries { buffer }
    }
}

impl<'a> Iterator for DirEntries<'a> {
    type Item = (&'a CStr, u32);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            let reclen = u16::from_ne_bytes(self.buffer.get(16..18)?.try_into().ok()?) as usize;
            if reclen < 20 || reclen > self.buffer.len() {
                return None;
            }
            let (record, rest) = self.buffer.split_at(reclen);
            self.buffer = rest;
            let name = CStr::from_bytes_until_nul(&record[19..]).ok()?;
            if let Some(fd) = parse_u32(name.to_bytes()) {
                return Some((name, fd));
            }
        }
    }
}

fn parse_u32(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u32, |acc, &b| {
        let digit = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// A NUL-terminated relative path on the stack, so opening `PID/fd` allocates nothing.
struct PathBuf32 {
    bytes: [u8; 32],
    len: usize,
}

impl PathBuf32 {
    fn new() -> Self {
        PathBuf32 {
            bytes: [0; 32],
            len: 0,
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        // Callers push at most 10 digits and a short suffix: always fits with the NUL.
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn push_u32(&mut self, value: u32) {
        let mut digits = [0u8; 10];
        let mut n = value;
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push_bytes(&digits[start..]);
    }

    fn as_cstr(&self) -> &CStr {
        // The buffer is zeroed beyond `len`, and `len` < 32.
        CStr::from_bytes_until_nul(&self.bytes[..=self.len]).unwrap_or_default()
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let file = File::open(path)?;
    Ok(OwnedFd::from(file))
}

fn open_at(dir: RawFd, path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the returned fd is owned by the OwnedFd below.
    let fd = unsafe {
        libc::openat(
            dir,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn getdents(dir: RawFd, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buffer.len()` bytes into `buffer`.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buffer.as_mut_ptr(), buffer.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Numeric entries of the proc root, i.e. every visible process.
fn list_pids(proc_root: &Path) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir(proc_root)?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| parse_u32(entry.file_name().as_encoded_bytes()))
        .collect();
    // Stable order makes holder lists deterministic before their final sort.
    pids.sort_unstable();
    Ok(pids)
}

/// Kernel threads' fd directories are root-only, yet they hold no sockets: an unprivileged
/// run must not count them as "could not be inspected".
fn is_kernel_thread(root: RawFd, pid: u32) -> bool {
    let mut path = PathBuf32::new();
    path.push_u32(pid);
    path.push_bytes(b"/stat");
    let Ok(fd) = open_file_at(root, path.as_cstr()) else {
        return false;
    };
    let mut stat = String::new();
    if io::Read::read_to_string(&mut File::from(fd), &mut stat).is_err() {
        return false;
    }
    stat_flags(&stat).is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// The `flags` field of `/proc/PID/stat` (the 9th), counted after the `)` that ends the
/// command name, since the name itself may contain spaces and parentheses.
fn stat_flags(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_ascii_whitespace().nth(6)?.parse().ok()
}

fn open_file_at(dir: RawFd, path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: as in `open_at`.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as in `open_at`.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links_parse_and_others_do_not() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(
            parse_socket_link(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
        assert_eq!(parse_socket_link(b"socket:[18446744073709551616]"), None);
        assert_eq!(parse_socket_link(b"pipe:[12345]"), None);
        assert_eq!(parse_socket_link(b"/dev/null"), None);
        assert_eq!(parse_socket_link(b"socket:[]"), None);
        assert_eq!(parse_socket_link(b"socket:[12a]"), None);
        assert_eq!(parse_socket_link(b"socket:[12"), None);
    }

    #[test]
    fn stat_flags_survive_hostile_names() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 2097216 0 0";
        assert_eq!(stat_flags(stat), Some(2_097_216));
        assert_eq!(stat_flags("garbage"), None);
    }

    #[test]
    fn scan_finds_our_own_socket_and_fd() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd() as u32;
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let inode = parse_socket_link(link.as_os_str().as_encoded_bytes()).unwrap();
        let wanted = HashSet::from([inode]);
        let scan = scan(Path::new("/proc"), &wanted).unwrap();
        let me = std::process::id();
        assert_eq!(scan.holders[&inode], vec![Holder { pid: me, fd }]);
        assert!(scan.scanned > 0);
    }

    #[test]
    fn missing_proc_root_is_an_error_not_an_empty_scan() {
        let wanted = HashSet::new();
        assert!(scan(Path::new("/nonexistent/proc"), &wanted).is_err());
    }
}
