//! What the signals that end a run do: stop a polling loop cleanly, and never leave secrets
//! behind.
//!
//! SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken by one thread that waits
//! for them with `sigwait`, so nothing runs in signal context and any code may run in
//! response. While a loop listens ([`StopSignals`]), SIGINT and SIGTERM are handed to it: a
//! watch ends its output and returns. Otherwise the signal is fatal, as it would be by
//! default, but first every path registered with [`Cleanup`] (an unpacked snapshot, a capture's
//! temporary file, both of which hold command lines) is removed; then the signal is raised
//! again with its default action, so the parent sees the process killed by it (a shell's 130,
//! 143, 129).
//!
//! The mask must be set before other threads start, since they inherit it: [`install`] runs
//! when a snapshot is opened, a capture starts or a loop starts listening, before anything
//! else of the run. A signal the parent set to be ignored (a background job of a
//! non-interactive shell ignores SIGINT) stays ignored: it is discarded by the kernel and never
//! pending, as the shell meant. SIGPIPE is ignored by Rust programs: a closed pipe is an
//! `EPIPE` error that unwinds normally, and the unwinding removes everything as well.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, MutexGuard, OnceLock};
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

/// What the signal thread shares with the rest of the program.
struct Shared {
    /// Paths to remove before dying, by registration id.
    cleanup: Mutex<Vec<(u64, PathBuf)>>,
    next_id: Mutex<u64>,
    /// The loop listening for stop signals, if any.
    listener: Mutex<Option<Sender<Stop>>>,
    /// The signal thread, for tests that signal it directly.
    #[cfg_attr(not(test), allow(dead_code))]
    thread: libc::pthread_t,
}

static SHARED: OnceLock<Result<Shared, i32>> = OnceLock::new();

fn fatal_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set
}

/// Block SIGINT, SIGTERM and SIGHUP in the calling thread (and so in every thread it starts
/// later) and start the thread that takes them. Idempotent.
pub fn install() -> io::Result<()> {
    shared().map(drop)
}

fn shared() -> io::Result<&'static Shared> {
    let result = SHARED.get_or_init(|| start().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)));
    result
        .as_ref()
        .map_err(|&errno| io::Error::from_raw_os_error(errno))
}

fn start() -> io::Result<Shared> {
    let set = fatal_set();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(io::Error::from)?;
    let handle = std::thread::Builder::new()
        .name("lsports-signals".into())
        .spawn(move || wait_for_signals(set))?;
    let thread = std::os::unix::thread::JoinHandleExt::as_pthread_t(&handle);
    Ok(Shared {
        cleanup: Mutex::new(Vec::new()),
        next_id: Mutex::new(0),
        listener: Mutex::new(None),
        thread,
    })
}

fn wait_for_signals(set: SigSet) {
    loop {
        let Ok(signal) = set.wait() else { continue };
        let stop = match signal {
            Signal::SIGINT => Some(Stop::Interrupt),
            Signal::SIGTERM => Some(Stop::Terminate),
            _ => None,
        };
        if let (Some(stop), Ok(shared)) = (stop, shared()) {
            let listener = lock(&shared.listener);
            if listener.as_ref().is_some_and(|tx| tx.send(stop).is_ok()) {
                continue;
            }
        }
        die(signal);
    }
}

/// Remove every registered path, then die of `signal`.
fn die(signal: Signal) -> ! {
    if let Ok(shared) = shared() {
        // Held until the end: nothing registers (creates) a new path meanwhile.
        let cleanup = lock(&shared.cleanup);
        for (_, path) in cleanup.iter() {
            remove(path);
        }
        let mut only = SigSet::empty();
        only.add(signal);
        // The default action of these signals ends the process as soon as one is unblocked.
        let _ = nix::sys::signal::raise(signal);
        let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
    }
    std::process::exit(128 + signal as i32)
}

/// Remove a file or a whole tree. The run may still be writing into the tree: try again
/// until it is gone (the writer fails once its directories are gone, never recreating them).
fn remove(path: &Path) {
    for _ in 0..10 {
        let removed = match path.symlink_metadata() {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
            Ok(_) => std::fs::remove_file(path),
            Err(_) => return,
        };
        if removed.is_ok() {
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A path removed if a signal ends the run before this is dropped. Dropping it only
/// unregisters the path: removing it in the normal course is its owner's job.
#[derive(Debug)]
pub struct Cleanup {
    id: u64,
}

impl Cleanup {
    /// Run `make`, which creates something at the path `path_of` gives, and register that
    /// path for removal, with no moment between the two at which a signal would leave it
    /// behind. Installs the signal thread first if needed.
    pub fn create<T>(
        make: impl FnOnce() -> io::Result<T>,
        path_of: impl FnOnce(&T) -> &Path,
    ) -> io::Result<(T, Cleanup)> {
        let shared = shared()?;
        let mut cleanup = lock(&shared.cleanup);
        let made = make()?;
        let id = {
            let mut next = lock(&shared.next_id);
            *next += 1;
            *next
        };
        cleanup.push((id, path_of(&made).to_owned()));
        Ok((made, Cleanup { id }))
    }
}

/// Whether `path` is registered for removal on a fatal signal (for the tests of the code
/// that registers).
#[cfg(test)]
pub(crate) fn is_registered(path: &Path) -> bool {
    shared().is_ok_and(|shared| lock(&shared.cleanup).iter().any(|(_, p)| p == path))
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(shared) = shared() {
            lock(&shared.cleanup).retain(|(id, _)| *id != self.id);
        }
    }
}

/// The stop signals of a polling loop: while this lives, SIGINT and SIGTERM end its sleep
/// instead of the process. Only one loop listens at a time.
#[derive(Debug)]
pub struct StopSignals {
    stops: Receiver<Stop>,
}

impl StopSignals {
    /// Start listening (installing the signal thread if needed). Call before starting
    /// threads, which inherit the mask.
    pub fn block() -> io::Result<StopSignals> {
        let shared = shared()?;
        let (tx, stops) = mpsc::channel();
        *lock(&shared.listener) = Some(tx);
        Ok(StopSignals { stops })
    }

    /// Sleep for `duration`, or less if a stop signal arrives (or is already pending).
    pub fn sleep(&self, duration: Duration) -> Option<Stop> {
        self.stops.recv_timeout(duration).ok()
    }

    /// A stop signal already pending, without waiting.
    pub fn pending(&self) -> Option<Stop> {
        self.stops.try_recv().ok()
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        if let Ok(shared) = shared() {
            *lock(&shared.listener) = None;
        }
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
        let signals = StopSignals::block().unwrap();
        assert_eq!(signals.pending(), None);
        let thread = shared().unwrap().thread;
        // Thread-directed, to the signal thread (it never ends): the test runner's other
        // threads never see it.
        nix::sys::pthread::pthread_kill(thread, Signal::SIGTERM).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            signals.sleep(Duration::from_secs(600)),
            Some(Stop::Terminate)
        );
        assert!(started.elapsed() < Duration::from_secs(300), "hang guard");
        nix::sys::pthread::pthread_kill(thread, Signal::SIGINT).unwrap();
        assert_eq!(
            signals.sleep(Duration::from_secs(600)),
            Some(Stop::Interrupt)
        );
        assert_eq!(signals.sleep(Duration::from_millis(1)), None);
    }

    #[test]
    fn exit_statuses_follow_the_conventions() {
        assert_eq!(Stop::Interrupt.exit_status(), 130);
        assert_eq!(Stop::Terminate.exit_status(), 0);
    }
}
