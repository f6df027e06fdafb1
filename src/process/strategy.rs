//! Which way socket owners are found: the kernel BPF iterator where it can run and pays off,
//! the `/proc/*/fd` walk otherwise, and a record of which ran and why, for `--verbose`.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::bpf::background::Background;
use super::bpf::{self, BpfUnavailable};
use super::fdscan::{self, FdScan};
use crate::config::{AttributionChoice, DetailFields};

/// Below this many open files on the host (`fs.file-nr`), `auto` walks `/proc`: loading the
/// iterator costs about 12 ms and 6 MiB (mostly digesting the kernel's BTF), while the walk
/// costs about 1.5 µs per fd on two cores and the iterator about 0.25 µs. Measured here, the
/// walk is ahead at 4,000 open files (13 ms against 18) and behind from about 8,000 (at
/// 15,000, 70 ms against 37; at 140,000 fds, 0.38 s against 0.09 s).
pub const BPF_PAYS_FROM_OPEN_FILES: u64 = 8_192;

/// Which way the owners were found.
#[derive(Debug, Default)]
pub enum Method {
    /// The kernel's BPF `task_file` iterator.
    Bpf,
    /// The `/proc/*/fd` walk, as asked.
    #[default]
    Walk,
    /// The walk, because the BPF iterator could not run (`auto` only).
    WalkFallback(BpfUnavailable),
    /// The walk, because the host has too few open files for the iterator to pay off (`auto`
    /// only).
    WalkSmallHost {
        /// Open files on the host (`fs.file-nr`).
        open_files: u64,
    },
}

impl fmt::Display for Method {
    /// The `--verbose` line, without the `lsports: ` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let walk = "process owners from the /proc/*/fd walk";
        match self {
            Method::Bpf => f.write_str("process owners from the kernel (BPF task_file iterator)"),
            Method::Walk => f.write_str(walk),
            Method::WalkFallback(why) => write!(f, "{walk}; BPF iterator not used: {why}"),
            Method::WalkSmallHost { open_files } => write!(
                f,
                "{walk}; BPF iterator not used: {open_files} open files on this host, where the \
                 walk is faster than loading the iterator (it pays off from \
                 {BPF_PAYS_FROM_OPEN_FILES}; --attribution bpf forces it)"
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

/// A scan begun before the sockets are known: the kernel iterator ([`Background`]) or the walk
/// ([`fdscan::Walk`]) runs while the sockets are collected.
#[derive(Debug)]
pub struct Started {
    proc_root: PathBuf,
    fields: DetailFields,
    plan: Plan,
}

/// What a started scan will do.
#[derive(Debug)]
enum Plan {
    /// Walk, as asked, or saying why the iterator was not used.
    Walk(fdscan::Walk, Method),
    /// `bpf` was asked for and cannot run.
    Refused(BpfUnavailable),
    /// The iterator is running.
    Kernel(Background),
}

/// Start a scan the way `choice` says, to read the name and `fields` of each holder.
pub fn start(proc_root: &Path, choice: AttributionChoice, fields: DetailFields) -> Started {
    let plan = match choice {
        AttributionChoice::Walk => Plan::Walk(fdscan::start(proc_root, fields), Method::Walk),
        AttributionChoice::Bpf => match bpf::preflight::check(proc_root) {
            Ok(checked) => Plan::Kernel(Background::start(checked)),
            Err(why) => Plan::Refused(why),
        },
        AttributionChoice::Auto => plan_auto(proc_root, fields),
    };
    Started {
        proc_root: proc_root.to_path_buf(),
        fields,
        plan,
    }
}

/// The iterator if it can run and the host is big enough; the checks cost a few file reads,
/// so a run that will walk starts no thread and loads nothing.
fn plan_auto(proc_root: &Path, fields: DetailFields) -> Plan {
    let checked = match bpf::preflight::check(proc_root) {
        Ok(checked) => checked,
        Err(why) => {
            return Plan::Walk(fdscan::start(proc_root, fields), Method::WalkFallback(why));
        }
    };
    match open_files(proc_root) {
        Some(open_files) if open_files < BPF_PAYS_FROM_OPEN_FILES => Plan::Walk(
            fdscan::start(proc_root, fields),
            Method::WalkSmallHost { open_files },
        ),
        _ => Plan::Kernel(Background::start(checked)),
    }
}

/// Open files on the host: the first field of `sys/fs/file-nr` (allocated file handles).
fn open_files(proc_root: &Path) -> Option<u64> {
    let text = crate::sys::procroot::ProcRoot::open(proc_root)
        .and_then(|root| root.read_file("sys/fs/file-nr"))
        .ok()?;
    std::str::from_utf8(&text)
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Started {
    /// Finish the scan for the inodes in `wanted`: `Err` only when `bpf` was asked for and
    /// cannot run.
    pub fn finish(self, wanted: HashSet<u64>) -> Result<Scanned, BpfUnavailable> {
        let proc_root = self.proc_root.as_path();
        match self.plan {
            Plan::Refused(why) => Err(why),
            Plan::Kernel(background) => Ok(Scanned {
                scan: Ok(background.gather(proc_root, &wanted, self.fields)?),
                method: Method::Bpf,
            }),
            Plan::Walk(walk, method) => Ok(Scanned {
                scan: walk.finish(wanted),
                method,
            }),
        }
    }

    /// Finish the scan for the inodes in `wanted`, walking `/proc` when the kernel iterator
    /// was not wanted or could not run: never refuses, whatever the choice.
    pub fn finish_or_walk(self, wanted: HashSet<u64>) -> Scanned {
        let proc_root = self.proc_root.as_path();
        let method = match self.plan {
            Plan::Walk(walk, method) => {
                return Scanned {
                    scan: walk.finish(wanted),
                    method,
                };
            }
            Plan::Refused(why) => Method::WalkFallback(why),
            Plan::Kernel(background) => match background.gather(proc_root, &wanted, self.fields) {
                Ok(scan) => {
                    return Scanned {
                        scan: Ok(scan),
                        method: Method::Bpf,
                    };
                }
                Err(why) => Method::WalkFallback(why),
            },
        };
        Scanned {
            scan: fdscan::start(proc_root, self.fields).finish(wanted),
            method,
        }
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
        let small = Method::WalkSmallHost { open_files: 1234 }.to_string();
        assert!(small.contains("1234 open files"), "{small}");
        assert!(small.contains("--attribution bpf forces it"), "{small}");
    }

    #[test]
    fn a_fixture_tree_falls_back_under_auto_and_fails_under_bpf() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = HashSet::new();
        let walked = start(dir.path(), AttributionChoice::Auto, DetailFields::ALL)
            .finish(wanted.clone())
            .unwrap();
        assert!(walked.scan.is_ok());
        assert!(matches!(
            walked.method,
            Method::WalkFallback(BpfUnavailable::NotLiveProc { .. })
        ));
        let refused = start(dir.path(), AttributionChoice::Bpf, DetailFields::ALL)
            .finish(wanted.clone())
            .unwrap_err();
        assert_eq!(refused.kind(), "proc_root");
        // Where nothing can be reported, bpf walks instead and says why.
        let walked =
            start(dir.path(), AttributionChoice::Bpf, DetailFields::ALL).finish_or_walk(wanted);
        assert!(matches!(walked.method, Method::WalkFallback(_)));
    }

    #[test]
    fn open_files_is_the_first_field_of_file_nr() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(open_files(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("sys/fs")).unwrap();
        std::fs::write(
            dir.path().join("sys/fs/file-nr"),
            "5120\t0\t9223372036854775807\n",
        )
        .unwrap();
        assert_eq!(open_files(dir.path()), Some(5120));
        assert!(open_files(Path::new("/proc")).is_some());
    }
}
