//! The floor of a /proc fd walk: what finding every socket's holders costs with nothing but
//! the system calls it cannot avoid (`open` of `/proc` and of each `/proc/PID/fd`,
//! `getdents64`, `readlinkat` of each fd), on as many threads as lsports' walk uses (one per
//! core). `bench/compare.sh` times it beside `lsports --attribution walk`: the issue's target
//! is that the walk stays within 1.2 times this floor.
//!
//! ```text
//! cargo build --release --example walk_floor
//! target/release/examples/walk_floor      # prints processes, fds and socket fds seen
//! ```
//!
//! It reads no process details (`comm`, `cmdline`, `status`) and builds no index, so it is a
//! floor, not a competitor: lsports does both on top of this.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::mem::MaybeUninit;

use rustix::fs::{Mode, OFlags, RawDir, openat, readlinkat};

fn main() {
    let proc = match open_dir(rustix::fs::CWD, "/proc") {
        Ok(proc) => proc,
        Err(error) => {
            eprintln!("walk_floor: cannot open /proc: {error}");
            std::process::exit(1);
        }
    };
    let pids = numbered_entries(&proc);
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts: Vec<[usize; 2]> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| walk(&proc, &pids, &next)))
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    let (fds, sockets) = counts.iter().fold((0, 0), |(f, s), [a, b]| (f + a, s + b));
    println!("{} processes, {fds} fds, {sockets} socket fds", pids.len());
}

/// Take the next process until none is left: its fd count and socket fd count.
fn walk(proc: &OwnedFd, pids: &[String], next: &AtomicUsize) -> [usize; 2] {
    let mut counts = [0, 0];
    let mut link = Vec::with_capacity(64);
    while let Some(pid) = pids.get(next.fetch_add(1, Ordering::Relaxed)) {
        // A process that exited, or whose fds are not ours to read, is passed over.
        let Ok(fd_dir) = open_dir(proc, &format!("{pid}/fd")) else {
            continue;
        };
        for fd in numbered_entries(&fd_dir) {
            counts[0] += 1;
            link.clear();
            if let Ok(target) = readlinkat(&fd_dir, fd.as_str(), std::mem::take(&mut link)) {
                counts[1] += usize::from(target.as_bytes().starts_with(b"socket:["));
                link = target.into_bytes();
            }
        }
    }
    counts
}

fn open_dir(at: impl rustix::fd::AsFd, path: &str) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    openat(at, path, flags, Mode::empty())
}

/// The names of `dir` that are numbers (pids in `/proc`, fds in `/proc/PID/fd`), read with
/// `getdents64` on the descriptor itself.
fn numbered_entries(dir: &OwnedFd) -> Vec<String> {
    let mut buffer = [MaybeUninit::uninit(); 16 * 1024];
    let mut entries = RawDir::new(dir, &mut buffer);
    let mut names = Vec::new();
    while let Some(Ok(entry)) = entries.next() {
        let name = entry.file_name().to_bytes();
        if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    names
}
