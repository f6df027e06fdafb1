//! Dumping each namespace's sockets: a few worker threads take the namespaces one at a time,
//! enter each with `setns` (which moves only the calling thread) and collect there with the
//! usual sources — a sock_diag socket opened after `setns` belongs to the namespace entered,
//! and `/proc/thread-self/net` shows that namespace's tables.
//!
//! Where entering is refused (`EPERM`: no `CAP_SYS_ADMIN` over the namespace, as for an
//! unprivileged user, or root in a user-namespaced container), the namespace's tables are read
//! from `/proc/PID/net/*` of a process that lives in it, with what that format lacks marked as
//! usual. A namespace with no such process is reported as not reached, with the reason.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Namespace;
use super::nsfd::{self, NsFd};
use crate::config::{SourceChoice, StateSelection};
use crate::model::{Family, Protocol};
use crate::source::{self, CollectRequest, Collected};

/// What to collect in each namespace.
#[derive(Debug, Clone)]
pub struct DumpRequest {
    /// The (protocol, family) tables to read.
    pub tables: Vec<(Protocol, Family)>,
    /// Listening sockets only, or every state.
    pub states: StateSelection,
    /// Worker threads: `None` picks one per core (each dump is mostly kernel time spent on
    /// the reading thread's core, so more workers than cores gain nothing); `Some(0)` does
    /// everything on the calling thread, as happens when no thread can be started.
    pub workers: Option<usize>,
}

/// How a namespace's sockets were read, or why they were not.
#[derive(Debug)]
pub enum Reach {
    /// It is the caller's own namespace: read where the caller is.
    Current,
    /// Entered with `setns`.
    Entered,
    /// Entering was refused; read from `/proc/PID/net` of this process, which lives in it.
    Proc {
        /// The process whose tables were read.
        pid: u32,
    },
    /// Not read at all.
    NotReached(NotReached),
}

/// Why a namespace was not read.
#[derive(Debug, thiserror::Error)]
pub enum NotReached {
    /// Entering was refused and no process in it could be read instead.
    #[error(
        "entering another network namespace needs CAP_SYS_ADMIN (run as root), and no process \
         in it could be read instead"
    )]
    NeedsCapSysAdmin,
    /// It vanished: its processes exited and its mounts went before it could be opened.
    #[error("it no longer exists (its processes exited and its mounts are gone)")]
    Gone,
    /// Opening or entering it failed otherwise.
    #[error("cannot open or enter it: {0}")]
    Failed(io::Error),
}

/// One namespace's sockets.
#[derive(Debug)]
pub struct NsDump {
    /// The namespace's nsfs inode: every socket in `collected` belongs to it.
    pub inode: u64,
    /// How it was read.
    pub reach: Reach,
    /// Its sockets, with a report per table as the plain listing has.
    pub collected: Collected,
}

/// What every worker shares.
struct Context<'a> {
    namespaces: &'a [Namespace],
    current: Option<u64>,
    proc: &'a Path,
    request: &'a DumpRequest,
    /// The caller's namespace, to come back to; `None` where it cannot be opened.
    home: Option<NsFd>,
    next: AtomicUsize,
}

/// Dump every namespace of `namespaces`, in that order. `current` is the caller's own
/// namespace (read in place, never entered); `proc` the live proc filesystem (`/proc`).
///
/// Fails only if this thread had to do the work itself (no worker thread could be started)
/// and then could not return to its own namespace.
pub fn dump_all(
    namespaces: &[Namespace],
    current: Option<u64>,
    proc: &Path,
    request: &DumpRequest,
) -> io::Result<Vec<NsDump>> {
    let context = Context {
        namespaces,
        current,
        proc,
        request,
        home: nsfd::current().ok(),
        next: AtomicUsize::new(0),
    };
    let mut done: BTreeMap<usize, NsDump> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..worker_count(request.workers, namespaces.len()))
            .map_while(|_| {
                // No thread to be had (`pids.max`, RLIMIT_NPROC): this thread does the rest.
                std::thread::Builder::new()
                    .name("netns".into())
                    .spawn_scoped(scope, || work(&context))
                    .ok()
            })
            .collect();
        // A panicked worker's namespaces are missing below and are done here instead.
        workers
            .into_iter()
            .filter_map(|worker| worker.join().ok())
            .flatten()
            .collect()
    });
    let missing: Vec<usize> = (0..namespaces.len())
        .filter(|i| !done.contains_key(i))
        .collect();
    if !missing.is_empty() {
        let mut thread = Thread::default();
        for i in missing {
            done.insert(i, dump_one(&namespaces[i], &context, &mut thread));
        }
        thread.go_home(&context)?;
    }
    Ok(done.into_values().collect())
}

fn worker_count(asked: Option<usize>, namespaces: usize) -> usize {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
    asked.unwrap_or_else(cores).min(namespaces)
}

/// A worker: take the next namespace until none is left.
fn work(context: &Context<'_>) -> Vec<(usize, NsDump)> {
    let mut thread = Thread::default();
    let mut done = Vec::new();
    loop {
        let i = context.next.fetch_add(1, Ordering::Relaxed);
        let Some(ns) = context.namespaces.get(i) else {
            return done;
        };
        done.push((i, dump_one(ns, context, &mut thread)));
    }
}

/// Where a thread is: it starts in the caller's namespace and moves with each `setns`.
#[derive(Default)]
struct Thread {
    moved: bool,
}

impl Thread {
    /// Back to the caller's namespace, if the thread left it.
    fn go_home(&mut self, context: &Context<'_>) -> io::Result<()> {
        if !self.moved {
            return Ok(());
        }
        let home = context.home.as_ref().ok_or_else(|| {
            io::Error::other("cannot open this thread's own network namespace to return to it")
        })?;
        home.enter().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot return to network namespace {} after reading another one on this \
                     thread: {e}",
                    home.inode()
                ),
            )
        })?;
        self.moved = false;
        Ok(())
    }
}

/// Read one namespace: in place if it is the caller's, else entered, else from a process.
fn dump_one(ns: &Namespace, context: &Context<'_>, thread: &mut Thread) -> NsDump {
    let (reach, collected) = if Some(ns.inode) == context.current {
        match thread.go_home(context) {
            Ok(()) => (Reach::Current, collect_here(context)),
            Err(e) => not_reached(NotReached::Failed(e)),
        }
    } else {
        enter_and_collect(ns, context, thread)
    };
    NsDump {
        inode: ns.inode,
        reach,
        collected,
    }
}

fn enter_and_collect(
    ns: &Namespace,
    context: &Context<'_>,
    thread: &mut Thread,
) -> (Reach, Collected) {
    let opened = open(ns, context.proc);
    let entered = match &opened {
        Ok(handle) => handle.enter(),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    };
    match entered {
        Ok(()) => {
            thread.moved = true;
            (Reach::Entered, collect_here(context))
        }
        Err(e) => match from_a_process(ns, context) {
            Some(found) => found,
            None if e.kind() == io::ErrorKind::PermissionDenied => {
                not_reached(NotReached::NeedsCapSysAdmin)
            }
            None if e.kind() == io::ErrorKind::NotFound => not_reached(NotReached::Gone),
            None => not_reached(NotReached::Failed(e)),
        },
    }
}

fn not_reached(why: NotReached) -> (Reach, Collected) {
    (Reach::NotReached(why), Collected::default())
}

/// A handle on `ns`: the one already open, else through one of its processes, else through
/// one of its mounts. The error is the last one met (`NotFound` when everything is gone).
fn open(ns: &Namespace, proc: &Path) -> io::Result<NsFd> {
    if let Some(handle) = &ns.handle {
        // A duplicate, so each worker has its own; rarely more than one per run.
        let fd = handle.fd().try_clone_to_owned()?;
        return Ok(NsFd::adopt(fd, handle.inode()));
    }
    let mut last = io::Error::from(io::ErrorKind::NotFound);
    let by_process = ns
        .pids
        .iter()
        .map(|&pid| nsfd::of_process(proc, pid, ns.inode));
    let by_mount = ns.mounts.iter().map(|path| nsfd::of_mount(path, ns.inode));
    for attempt in by_process.chain(by_mount) {
        match attempt {
            Ok(handle) => return Ok(handle),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Collect in the namespace this thread is in.
fn collect_here(context: &Context<'_>) -> Collected {
    let request = collect_request(
        context,
        SourceChoice::Auto,
        context.proc.join("thread-self"),
    );
    // The workers already use every core: no second thread per namespace.
    let mut collected = source::collect_on_this_thread(&request);
    // Interface indexes mean something only in their own namespace: name them while in it.
    source::name_devices(&mut collected.sockets);
    collected
}

/// Entering was refused: read `/proc/PID/net` of a process in the namespace, checking after
/// the read that the process still lives there (a pid can be reused meanwhile).
fn from_a_process(ns: &Namespace, context: &Context<'_>) -> Option<(Reach, Collected)> {
    ns.pids.iter().find_map(|&pid| {
        let request = collect_request(
            context,
            SourceChoice::Proc,
            context.proc.join(pid.to_string()),
        );
        let collected = source::collect_on_this_thread(&request);
        let still_there = nsfd::of_process(context.proc, pid, ns.inode).is_ok();
        (still_there && !collected.nothing_read()).then_some((Reach::Proc { pid }, collected))
    })
}

fn collect_request(
    context: &Context<'_>,
    choice: SourceChoice,
    proc_root: PathBuf,
) -> CollectRequest {
    CollectRequest {
        tables: context.request.tables.clone(),
        states: context.request.states,
        choice,
        proc_root,
        snapshot: None,
        ports: None,
    }
}
