//! Which way socket owners are found: the kernel BPF iterator when it can run, the
//! `/proc/*/fd` walk otherwise, and a record of which ran and why, for `--verbose`.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

use super::bpf::preflight::Checked;
use super::bpf::{self, BpfUnavailable};
use super::fdscan::{self, FdScan};

/// How to find the processes holding each socket (`--attribution`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttributionChoice {
    /// The BPF iterator when it can run here, otherwise the fd walk.
    #[default]
    Auto,
    /// The BPF iterator only; when it cannot run, that is an error.
    Bpf,
    /// The `/proc/*/fd` walk only.
    Walk,
}

/// Which way the owners were found.
#[derive(Debug, Default)]
pub enum Method {
    /// The kernel's BPF `task_file` iterator.
    Bpf,
    /// The `/proc/*/fd` walk.
    #[default]
    Walk,
    /// The walk, because the BPF iterator could not run (`auto` only).
    WalkFallback(BpfUnavailable),
}

impl fmt::Display for Method {
    /// The `--verbose` line, without the `lsports: ` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Bpf => f.write_str("process owners from the kernel (BPF task_file iterator)"),
            Method::Walk => f.write_str("process owners from the /proc/*/fd walk"),
            Method::WalkFallback(why) => write!(
                f,
                "process owners from the /proc/*/fd walk; BPF iterator not used: {why}"
            ),
        }
    }
}

/// What a scan found, and how.
#[derive(Debug)]
pub struct Scanned {
    /// The holders and their details; an error when the walk could not read the proc root.
    pub scan: io::Result<FdScan>,
    /// Which way ran.
    pub method: Method,
}

/// A scan begun before the sockets are known. The kernel iterator does not need them: it
/// reports every socket fd, so it runs on its own thread while the sockets are collected, and
/// [`Started::finish`] keeps the wanted ones. The walk needs the wanted inodes and starts in
/// `finish`.
#[derive(Debug)]
pub struct Started {
    proc_root: PathBuf,
    choice: AttributionChoice,
    /// The kernel iterator's part; `None` when it is not wanted (`walk`).
    kernel: Option<Kernel>,
}

/// The kernel iterator's part of a started scan.
#[derive(Debug)]
enum Kernel {
    /// Cannot run here, known before anything was loaded.
    Unavailable(BpfUnavailable),
    /// Running on its own thread, which sends its output in chunks of whole records as the
    /// kernel produces them and ends with the outcome.
    Running {
        chunks: Receiver<Vec<u8>>,
        outcome: JoinHandle<Result<(), BpfUnavailable>>,
    },
}

/// Start a scan the way `choice` says.
pub fn start(proc_root: &Path, choice: AttributionChoice) -> Started {
    let kernel = match choice {
        AttributionChoice::Walk => None,
        // The checks cost a few file reads: a run that cannot use BPF starts no thread.
        AttributionChoice::Auto | AttributionChoice::Bpf => {
            Some(match bpf::preflight::check(proc_root) {
                Ok(checked) => Kernel::run(checked),
                Err(why) => Kernel::Unavailable(why),
            })
        }
    };
    Started {
        proc_root: proc_root.to_path_buf(),
        choice,
        kernel,
    }
}

impl Started {
    /// Finish the scan for the inodes in `wanted`: `Err` only when `bpf` was asked for and
    /// cannot run.
    pub fn finish(self, wanted: &HashSet<u64>) -> Result<Scanned, BpfUnavailable> {
        match (self.choice, self.kernel) {
            (AttributionChoice::Bpf, Some(kernel)) => Ok(Scanned {
                scan: Ok(kernel.gather(&self.proc_root, wanted)?),
                method: Method::Bpf,
            }),
            (_, kernel) => Ok(finish_or_walk(&self.proc_root, kernel, wanted)),
        }
    }

    /// Finish the scan for the inodes in `wanted`, walking `/proc` when the kernel iterator
    /// was not wanted or could not run: never refuses, whatever the choice.
    pub fn finish_or_walk(self, wanted: &HashSet<u64>) -> Scanned {
        finish_or_walk(&self.proc_root, self.kernel, wanted)
    }
}

impl Kernel {
    /// Start the iterator on its own thread.
    fn run(checked: Checked) -> Kernel {
        let (sender, chunks) = mpsc::channel();
        let outcome = std::thread::spawn(move || {
            // A receiver gone means the run ended without attributing: nothing to do.
            bpf::iterator::run(checked, |records| drop(sender.send(records.to_vec())))
        });
        Kernel::Running { chunks, outcome }
    }

    /// The holders of `wanted` and their details, from the iterator's output as it arrives.
    fn gather(self, proc_root: &Path, wanted: &HashSet<u64>) -> Result<FdScan, BpfUnavailable> {
        let (chunks, outcome) = match self {
            Kernel::Unavailable(why) => return Err(why),
            Kernel::Running { chunks, outcome } => (chunks, outcome),
        };
        let mut gather = bpf::Gather::new(proc_root, wanted);
        // Ends when the thread is done and drops its sender.
        for chunk in chunks {
            gather.add(&chunk);
        }
        outcome
            .join()
            .unwrap_or_else(|_| Err(BpfUnavailable::Load("the iterator thread panicked".into())))?;
        Ok(gather.finish())
    }
}

fn finish_or_walk(proc_root: &Path, kernel: Option<Kernel>, wanted: &HashSet<u64>) -> Scanned {
    let method = match kernel.map(|k| k.gather(proc_root, wanted)) {
        Some(Ok(scan)) => {
            return Scanned {
                scan: Ok(scan),
                method: Method::Bpf,
            };
        }
        Some(Err(why)) => Method::WalkFallback(why),
        None => Method::Walk,
    };
    Scanned {
        scan: fdscan::scan(proc_root, wanted),
        method,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_lines_say_which_path_ran_and_why() {
        assert!(Method::Bpf.to_string().contains("BPF task_file iterator"));
        assert!(Method::Walk.to_string().contains("/proc/*/fd walk"));
        let why = BpfUnavailable::MissingCapability {
            missing: "CAP_BPF".into(),
        };
        let line = Method::WalkFallback(why).to_string();
        assert!(line.contains("walk; BPF iterator not used: "), "{line}");
        assert!(line.contains("missing CAP_BPF"), "{line}");
    }

    #[test]
    fn a_fixture_tree_falls_back_under_auto_and_fails_under_bpf() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = HashSet::new();
        let walked = start(dir.path(), AttributionChoice::Auto)
            .finish(&wanted)
            .unwrap();
        assert!(walked.scan.is_ok());
        assert!(matches!(
            walked.method,
            Method::WalkFallback(BpfUnavailable::NotLiveProc { .. })
        ));
        let refused = start(dir.path(), AttributionChoice::Bpf)
            .finish(&wanted)
            .unwrap_err();
        assert_eq!(refused.kind(), "proc_root");
    }
}
