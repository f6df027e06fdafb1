//! Phase timings for performance work: with `LSPORTS_TIMING=1` in the environment, the end of
//! each phase (milliseconds since the start, the thread, and the process's memory then) is
//! written to stderr when the run ends. It is how the README's account of where the time and
//! the memory go was measured. Off, a mark costs one atomic load.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static START: OnceLock<Instant> = OnceLock::new();
static MARKS: Mutex<Vec<Mark>> = Mutex::new(Vec::new());
/// Marks kept at most: `-c` and `watch` mark every poll, and run for days.
const MAX_MARKS: usize = 10_000;

/// One phase's end.
struct Mark {
    label: &'static str,
    thread: String,
    millis: f64,
    /// CPU time the marking thread has used so far, in milliseconds: on a shared, busy
    /// machine, what a phase costs rather than how long it waited for a core.
    cpu: f64,
    memory: Option<Memory>,
}

/// Start timing if `LSPORTS_TIMING` is set (to anything but `0` or empty).
pub fn enable_from_env() {
    let wanted = std::env::var_os("LSPORTS_TIMING").is_some_and(|v| !v.is_empty() && v != "0");
    if wanted {
        START.get_or_init(Instant::now);
        ENABLED.store(true, Ordering::Relaxed);
    }
}

/// Note that the phase `label` ended now, on this thread.
pub fn mark(label: &'static str) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let millis = START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0;
    let thread = std::thread::current().name().unwrap_or("worker").to_owned();
    let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let cpu = cpu.tv_sec as f64 * 1000.0 + cpu.tv_nsec as f64 / 1e6;
    if let Ok(mut marks) = MARKS.lock() {
        if marks.len() >= MAX_MARKS {
            return;
        }
        marks.push(Mark {
            label,
            thread,
            millis,
            cpu,
            memory: Memory::now(),
        });
    }
}

/// Write the marks, in time order, to `err` (nothing when timing is off).
pub fn report(err: &mut dyn Write) -> io::Result<()> {
    let Ok(mut marks) = MARKS.lock() else {
        return Ok(());
    };
    marks.sort_by(|a, b| a.millis.total_cmp(&b.millis));
    for mark in marks.iter() {
        write!(err, "lsports: timing: {:8.1} ms  ", mark.millis)?;
        if let Some(memory) = &mark.memory {
            write!(err, "{memory}  ")?;
        }
        writeln!(err, "{} [{}]  cpu {:.1}", mark.label, mark.thread, mark.cpu)?;
    }
    Ok(())
}

/// The process's resident memory at a mark, in KiB, from `/proc/self/status`: the peak so far
/// (`VmHWM`, what `time -v` and the benchmarks report at the end), and what is resident now,
/// split into anonymous memory (heap, stacks) and mapped files (the binary's and libraries'
/// pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Memory {
    peak: u64,
    anon: u64,
    file: u64,
}

impl Memory {
    /// Read now; `None` where `/proc/self/status` is not there to read.
    fn now() -> Option<Memory> {
        // A stack buffer, not a String: reading must not itself move what it measures.
        let mut buffer = [0u8; 4096];
        let mut file = std::fs::File::open("/proc/self/status").ok()?;
        let mut filled = 0;
        while filled < buffer.len() {
            match io::Read::read(&mut file, &mut buffer[filled..]) {
                Ok(0) | Err(_) => break,
                Ok(read) => filled += read,
            }
        }
        Some(Memory::parse(&buffer[..filled]))
    }

    /// The fields of `status` text (lines like `VmHWM:\t  6616 kB`); a missing one is 0.
    fn parse(status: &[u8]) -> Memory {
        let mut memory = Memory::default();
        for line in status.split(|&b| b == b'\n') {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (key, value) = (&line[..colon], &line[colon + 1..]);
            let field = match key {
                b"VmHWM" => &mut memory.peak,
                b"RssAnon" => &mut memory.anon,
                b"RssFile" => &mut memory.file,
                _ => continue,
            };
            *field = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
        }
        memory
    }
}

impl std::fmt::Display for Memory {
    /// `peak 6616 KiB (anon 736, file 5880)`, the KiB at a fixed width so columns line up.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "peak {:6} KiB (anon {:6}, file {:5})",
            self.peak, self.anon, self.file
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_reported_in_time_order_only_when_enabled() {
        mark("before enabling");
        START.get_or_init(Instant::now);
        ENABLED.store(true, Ordering::Relaxed);
        mark("first");
        std::thread::Builder::new()
            .name("helper".into())
            .spawn(|| mark("second"))
            .unwrap()
            .join()
            .unwrap();
        let mut out = Vec::new();
        report(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("before enabling"), "{text}");
        // Each mark says the memory then: some peak, at least what is resident now.
        let line = text.lines().find(|l| l.contains("first [")).unwrap();
        let memory = Memory::now().unwrap();
        assert!(memory.peak > 0 && memory.peak >= memory.anon, "{memory}");
        assert!(line.contains(" KiB (anon "), "{line}");
        let first = text.find("first [").unwrap();
        let second = text.find("second [helper]").unwrap();
        assert!(first < second, "{text}");
    }

    #[test]
    fn memory_is_read_from_status_lines() {
        let status = b"Name:\tlsports\nVmHWM:\t    6616 kB\nVmRSS:\t    6000 kB\n\
            RssAnon:\t     736 kB\nRssFile:\t    5880 kB\nRssShmem:\t0 kB\n";
        let memory = Memory::parse(status);
        assert_eq!(
            memory,
            Memory {
                peak: 6616,
                anon: 736,
                file: 5880
            }
        );
        assert_eq!(
            memory.to_string(),
            "peak   6616 KiB (anon    736, file  5880)"
        );
        // Garbage is zeros, not a panic.
        assert_eq!(Memory::parse(b"VmHWM: lots\n:\n\xff"), Memory::default());
    }
}
