//! Stopping a polling loop cleanly on Ctrl-C (SIGINT) or SIGTERM.
//!
//! Rather than a handler that sets a flag (and a sleep the signal does not cut short, since
//! `std::thread::sleep` resumes after `EINTR`), the two signals are blocked and the loop sleeps
//! in `sigtimedwait`: a signal ends the sleep at once, is consumed there, and nothing runs in
//! signal context. Blocked signals stay pending, so one that arrives while a poll is being
//! printed is seen at the next sleep, after the output is complete.
//!
//! A signal the parent set to be ignored (a background job of a non-interactive shell ignores
//! SIGINT) stays ignored: it is discarded by the kernel and never pending, as the shell meant.

use std::io;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Why a loop was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT: Ctrl-C at a terminal.
    Interrupt,
    /// SIGTERM: a service manager or `kill`.
    Terminate,
}

/// SIGINT and SIGTERM, blocked in the calling thread (and every thread it starts later) for
/// as long as the program runs, and waited for with a timeout.
#[derive(Debug)]
pub struct StopSignals {
    set: SigSet,
}

impl StopSignals {
    /// Block SIGINT and SIGTERM. Call before starting threads, which inherit the mask: a
    /// process-directed signal is then pending for the process until [`StopSignals::sleep`]
    /// takes it.
    pub fn block() -> io::Result<StopSignals> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(io::Error::from)?;
        Ok(StopSignals { set })
    }

    /// Sleep for `duration`, or less if a stop signal arrives (or is already pending).
    pub fn sleep(&self, duration: Duration) -> Option<Stop> {
        let timeout = libc::timespec {
            tv_sec: libc::time_t::try_from(duration.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: duration.subsec_nanos() as libc::c_long,
        };
        loop {
            // SAFETY: the set is a valid sigset_t, `info` may be null, and `timeout` is a
            // valid timespec that outlives the call.
            let signal =
                unsafe { libc::sigtimedwait(self.set.as_ref(), std::ptr::null_mut(), &timeout) };
            match signal {
                libc::SIGINT => return Some(Stop::Interrupt),
                libc::SIGTERM => return Some(Stop::Terminate),
                // EINTR: another signal (SIGWINCH, SIGCHLD) interrupted the wait. Sleeping
                // the whole duration again is harmless: the next poll is merely a little late.
                _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
                // EAGAIN: the time is up.
                _ => return None,
            }
        }
    }

    /// A stop signal already pending, without waiting.
    pub fn pending(&self) -> Option<Stop> {
        self.sleep(Duration::ZERO)
    }
}

impl Stop {
    /// The exit status for a run that stopped this way: a service manager's SIGTERM is the
    /// normal end of a watch (0), while Ctrl-C follows the shell's 128 + SIGINT (130), so a
    /// script that runs `lsports watch` stops there too.
    pub fn exit_status(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_signal_ends_the_sleep_at_once() {
        // Its own thread: the mask and the thread-directed signal stay there.
        std::thread::spawn(|| {
            let signals = StopSignals::block().unwrap();
            assert_eq!(signals.pending(), None);
            // SAFETY: pthread_kill to this very thread, with a signal it has blocked.
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGTERM) };
            let started = std::time::Instant::now();
            assert_eq!(
                signals.sleep(Duration::from_secs(600)),
                Some(Stop::Terminate)
            );
            assert!(started.elapsed() < Duration::from_secs(300), "hang guard");
            // SAFETY: as above.
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGINT) };
            assert_eq!(signals.pending(), Some(Stop::Interrupt));
            assert_eq!(signals.sleep(Duration::from_millis(1)), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn exit_statuses_follow_the_conventions() {
        assert_eq!(Stop::Interrupt.exit_status(), 130);
        assert_eq!(Stop::Terminate.exit_status(), 0);
    }
}
