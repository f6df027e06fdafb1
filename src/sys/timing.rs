//! Phase timings for performance work: with `LSPORTS_TIMING=1` in the environment, the end of
//! each phase (milliseconds since the start, and the thread) is written to stderr when the
//! run ends. It is how the README's account of where the time goes was measured. Off, a mark
//! costs one atomic load.

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
    if let Ok(mut marks) = MARKS.lock() {
        if marks.len() >= MAX_MARKS {
            return;
        }
        marks.push(Mark {
            label,
            thread,
            millis,
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
        writeln!(
            err,
            "lsports: timing: {:8.1} ms  {} [{}]",
            mark.millis, mark.label, mark.thread
        )?;
    }
    Ok(())
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
        let first = text.find("first [").unwrap();
        let second = text.find("second [helper]").unwrap();
        assert!(first < second, "{text}");
    }
}
