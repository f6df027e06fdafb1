//! Process start times, from the kernel's records to what `/proc/PID/stat` shows, and the
//! moment a pass began: together they let a holder be confirmed by its process's start rather
//! than by one fd link read each (see `process::confirm`).
//!
//! The kernel records `task->start_boottime` in nanoseconds since boot; `stat` shows it in
//! clock ticks (`USER_HZ`, 100 on every common architecture), shifted by the reader's time
//! namespace's `boottime` offset. A process on a reused pid started after the pass began, so a
//! start before the pass's own tick names one process only.

use std::io::ErrorKind;
use std::path::Path;

/// Nanoseconds in a second.
const NANOS: u64 = 1_000_000_000;

/// How kernel start times read in `/proc` here, and the tick the pass began in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartClock {
    /// Nanoseconds in one clock tick.
    tick_ns: u64,
    /// The time namespace's `boottime` offset, in nanoseconds.
    offset_ns: i64,
    /// The tick (with the offset) the pass began in.
    began: u64,
}

impl StartClock {
    /// Taken just before the kernel's pass begins, reading the time namespace's offset under
    /// `proc_root` (the live `/proc`). `None` when start times cannot be turned into ticks
    /// exactly: then every holder is confirmed by its fd link, as the walk does.
    pub fn now(proc_root: &Path) -> Option<StartClock> {
        let offsets = match std::fs::read(proc_root.join("self/timens_offsets")) {
            Ok(text) => Some(text),
            // A kernel without time namespaces: no offset.
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(_) => return None,
        };
        let offset_ns = match offsets {
            Some(text) => boottime_offset(&text)?,
            None => 0,
        };
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let now_ns = u64::try_from(now.tv_sec).ok()? * NANOS + u64::try_from(now.tv_nsec).ok()?;
        Self::new(rustix::param::clock_ticks_per_second(), offset_ns, now_ns)
    }

    /// The clock for `ticks_per_second`, an offset and the boot-time clock's `now_ns` (which
    /// includes the offset, as `clock_gettime` gives it).
    fn new(ticks_per_second: u64, offset_ns: i64, now_ns: u64) -> Option<StartClock> {
        // The kernel divides by NSEC_PER_SEC / USER_HZ only when that is exact.
        if ticks_per_second == 0 || !NANOS.is_multiple_of(ticks_per_second) {
            return None;
        }
        let tick_ns = NANOS / ticks_per_second;
        Some(StartClock {
            tick_ns,
            offset_ns,
            began: now_ns / tick_ns,
        })
    }

    /// The tick `stat` shows for a process the kernel says started at `start_ns`, if that
    /// is before the tick the pass began in; `None` for a younger process.
    pub fn settled(&self, start_ns: u64) -> Option<u64> {
        let shifted = start_ns.checked_add_signed(self.offset_ns)?;
        let tick = shifted / self.tick_ns;
        (tick < self.began).then_some(tick)
    }
}

/// The `boottime` line of `timens_offsets` (`boottime <seconds> <nanoseconds>`) in ns.
fn boottime_offset(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("boottime"))?;
    let mut fields = line.split_ascii_whitespace();
    let seconds: i64 = fields.next()?.parse().ok()?;
    let nanos: i64 = fields.next()?.parse().ok()?;
    seconds.checked_mul(NANOS as i64)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_starts_before_the_pass_tick_are_settled() {
        // 100 ticks a second; the pass began at 5.0 s after boot, tick 500.
        let clock = StartClock::new(100, 0, 5 * NANOS + 3).unwrap();
        assert_eq!(clock.settled(4_999_999_999), Some(499));
        assert_eq!(clock.settled(1_230_000_000), Some(123));
        // Started in the pass's own tick: a newcomer could share it.
        assert_eq!(clock.settled(5 * NANOS), None);
        assert_eq!(clock.settled(6 * NANOS), None);
    }

    #[test]
    fn a_time_namespace_offset_shifts_what_stat_shows() {
        let offset = boottime_offset(b"monotonic 0 0\nboottime 10 500000000\n").unwrap();
        assert_eq!(offset, 10_500_000_000);
        let clock = StartClock::new(100, offset, 20 * NANOS).unwrap();
        assert_eq!(clock.settled(NANOS), Some(1150));
        let negative = boottime_offset(b"boottime -2 0\n").unwrap();
        let clock = StartClock::new(100, negative, 20 * NANOS).unwrap();
        assert_eq!(clock.settled(3 * NANOS), Some(100));
        assert_eq!(clock.settled(NANOS), None, "before boot: no tick");
        assert_eq!(boottime_offset(b"monotonic 0 0\n"), None);
        assert_eq!(boottime_offset(b"boottime x 0\n"), None);
    }

    #[test]
    fn a_tick_that_is_no_whole_number_of_nanoseconds_is_refused() {
        assert!(StartClock::new(1024, 0, NANOS).is_none());
        assert!(StartClock::new(0, 0, NANOS).is_none());
    }

    #[test]
    fn this_process_started_before_now() {
        let clock = StartClock::now(Path::new("/proc")).expect("a clock here");
        let stat = std::fs::read("/proc/self/stat").unwrap();
        let shown = crate::process::info::parse_start_tick(&stat).unwrap();
        assert!(shown < clock.began, "{shown} vs {}", clock.began);
    }
}
