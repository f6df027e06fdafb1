//! Which path finds the socket owners: the kernel BPF iterator where it can run and pays off
//! (its fd-table walk, or the `task_file` iterator where the kernel refuses that),
//! the `/proc/*/fd` walk otherwise, and a record of which ran and why, for `--verbose`.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::Path;

use super::bpf::{self, BpfUnavailable};
use super::fdscan;
use super::holders::Scan;
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
    /// The kernel's BPF iterator: which program, and why not the fd-table walk if not.
    Bpf(bpf::Ran),
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
            Method::Bpf(ran) => write!(f, "process owners from the kernel ({ran})"),
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

/// What a started attribution will do: the path chosen, already running.
#[derive(Debug)]
pub enum Plan {
    /// The `/proc/*/fd` walk, as asked, or saying why the iterator was not used.
    Walk(fdscan::Walk, Method),
    /// The kernel iterator, loading on its own thread.
    Bpf(bpf::Pass),
    /// `bpf` was asked for and cannot run.
    Refused(BpfUnavailable),
}

/// Choose the path the way `choice` says, and start it, to read the name and `fields` of each
/// holder.
pub fn plan(proc_root: &Path, choice: AttributionChoice, fields: DetailFields) -> Plan {
    plan_emitting(proc_root, choice, fields, bpf::Emit::Holders)
}

/// [`plan`], with the kernel iterator, if chosen, writing what `emit` asks for.
pub fn plan_emitting(
    proc_root: &Path,
    choice: AttributionChoice,
    fields: DetailFields,
    emit: bpf::Emit,
) -> Plan {
    match choice {
        AttributionChoice::Walk => Plan::Walk(fdscan::start(proc_root, fields), Method::Walk),
        AttributionChoice::Bpf => match bpf::preflight::check(proc_root) {
            Ok(checked) => Plan::Bpf(bpf::Pass::start_emitting(checked, proc_root, emit)),
            Err(why) => Plan::Refused(why),
        },
        AttributionChoice::Auto => plan_auto(proc_root, fields, emit),
    }
}

/// The iterator if it can run and the host is big enough; the checks cost a few file reads,
/// so a run that will walk starts no thread and loads nothing.
fn plan_auto(proc_root: &Path, fields: DetailFields, emit: bpf::Emit) -> Plan {
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
        _ => Plan::Bpf(bpf::Pass::start_emitting(checked, proc_root, emit)),
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

/// A scan's outcome (an error when the walk could not read the proc root), and which way ran.
pub type Outcome = (io::Result<Scan>, Method);

impl Plan {
    /// Have the scan keep the socket fds that hold no wanted inode ([`Scan::unwanted`]), where
    /// the path chosen can: the walk sees them anyway; the kernel iterator's records are
    /// not kept. Whether it will.
    pub fn keep_unwanted(&self) -> bool {
        match self {
            Plan::Walk(walk, _) => {
                walk.keep_unwanted();
                true
            }
            Plan::Bpf(_) | Plan::Refused(_) => false,
        }
    }

    /// Whether the path chosen is the kernel iterator, whose scan names every socket's
    /// namespace ([`Scan::socket_netns`]).
    pub fn names_socket_netns(&self) -> bool {
        matches!(self, Plan::Bpf(_))
    }

    /// Let a kernel iterator that reads sockets begin its pass (see [`bpf::Pass::go`]).
    pub fn go(&mut self) {
        if let Plan::Bpf(pass) = self {
            pass.go();
        }
    }

    /// The end of the kernel iterator's first pass, where it runs on a thread of its own
    /// (see [`bpf::Pass::first_pass_end`]).
    pub fn first_pass_end(&self) -> Option<bpf::pass::PassEnd> {
        match self {
            Plan::Bpf(pass) => pass.first_pass_end(),
            Plan::Walk(..) | Plan::Refused(_) => None,
        }
    }

    /// Finish the scan for the inodes in `wanted`, reading details under `proc_root`: `Err`
    /// only when `bpf` was asked for and cannot run.
    pub fn finish(
        self,
        proc_root: &Path,
        fields: DetailFields,
        wanted: HashSet<u64>,
    ) -> Result<Outcome, BpfUnavailable> {
        match self {
            Plan::Walk(walk, method) => Ok((walk.finish(wanted), method)),
            Plan::Bpf(pass) => {
                let (scan, ran) = pass.gather(proc_root, &wanted, fields)?;
                Ok((Ok(scan), Method::Bpf(ran)))
            }
            Plan::Refused(why) => Err(why),
        }
    }

    /// Finish the scan for the inodes in `wanted`, walking `/proc` when the kernel iterator
    /// was not wanted or could not run: never refuses, whatever the choice.
    pub fn finish_or_walk(
        self,
        proc_root: &Path,
        fields: DetailFields,
        wanted: HashSet<u64>,
    ) -> Outcome {
        let why = match self {
            Plan::Walk(walk, method) => return (walk.finish(wanted), method),
            Plan::Bpf(pass) => match pass.gather(proc_root, &wanted, fields) {
                Ok((scan, ran)) => return (Ok(scan), Method::Bpf(ran)),
                Err(why) => why,
            },
            Plan::Refused(why) => why,
        };
        let walked = fdscan::start(proc_root, fields).finish(wanted);
        (walked, Method::WalkFallback(why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_lines_say_which_path_ran_and_why() {
        let ran = bpf::Ran {
            variant: bpf::Variant::FdWalk,
            not_walked: None,
            readers: 2,
            aya_fallback: None,
        };
        let line = Method::Bpf(ran).to_string();
        assert_eq!(
            line,
            "process owners from the kernel (BPF task iterator walking each fd table on 2 \
             threads)"
        );
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
        let all = DetailFields::ALL;
        let (walked, method) = plan(dir.path(), AttributionChoice::Auto, all)
            .finish(dir.path(), all, wanted.clone())
            .unwrap();
        assert!(walked.is_ok());
        assert!(matches!(
            method,
            Method::WalkFallback(BpfUnavailable::NotLiveProc { .. })
        ));
        let refused = plan(dir.path(), AttributionChoice::Bpf, all)
            .finish(dir.path(), all, wanted.clone())
            .unwrap_err();
        assert_eq!(refused.kind(), "proc_root");
        // Where nothing can be reported, bpf walks instead and says why.
        let (walked, method) =
            plan(dir.path(), AttributionChoice::Bpf, all).finish_or_walk(dir.path(), all, wanted);
        assert!(walked.is_ok());
        assert!(matches!(method, Method::WalkFallback(_)));
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
