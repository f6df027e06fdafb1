//! The iterator on its own thread, started before the sockets are known: loading it and its
//! first pass over the processes overlap with collecting the sockets, and the caller keeps the
//! wanted ones once it knows them.
//!
//! A socket opened during that pass, in a process the kernel had already visited, is one the
//! pass cannot have seen; the collection may list it. So once the first pass is read, a wanted
//! socket that no record named at all asks for a second pass ([`Pass::gather`]), which keeps
//! only such sockets: every socket collected is then looked for after it was collected, as when
//! the pass waited for the collection, while the common case (every socket named) pays nothing.

use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::error::BpfUnavailable;
use super::iterator::{Emit, Output};
use super::preflight::Checked;
use super::start_time::StartClock;
use super::{Gather, Ran, Variant, iterator, never_ran};
use crate::config::DetailFields;
use crate::process::holders::Scan;

/// What the iterator thread sends.
#[derive(Debug)]
enum Chunk {
    /// Whole records, as read.
    Records(Vec<u8>),
    /// The first pass is read; the thread waits to hear whether a second one is wanted.
    FirstDone,
    /// The fd-table walk failed part way (see [`BpfUnavailable::TooManySockets`]): what it
    /// gave is dropped, and `task_file` makes the first pass again.
    Restart,
}

/// An iterator loading or running: chunks of whole records as the kernel produces them, then
/// the outcome.
#[derive(Debug)]
pub struct Pass {
    /// Tells the thread whether to make a second pass.
    again: Sender<bool>,
    chunks: Receiver<Chunk>,
    /// Chunks received before [`Pass::gather`] (see [`Pass::wait_for_first_pass`]).
    early: Vec<Chunk>,
    outcome: Outcome,
    /// Taken before the first pass began (see `start_time`).
    clock: Option<StartClock>,
    /// What the walk writes.
    emit: Emit,
    /// For a walk that reads sockets: lets the first pass begin ([`Pass::go`]); `None` once
    /// sent, or for a walk that begins as soon as it is loaded.
    go: Option<Sender<()>>,
    /// Set by the thread once its first pass is over ([`Pass::first_pass_end`]).
    end: PassEnd,
}

/// The end of an iterator thread's first pass, for another thread to wait for: `--netns all`
/// reads each namespace's socket counts again once the kernel has visited every process,
/// while the records are still being gathered.
#[derive(Debug, Clone, Default)]
pub struct PassEnd(Arc<(Mutex<bool>, Condvar)>);

impl PassEnd {
    /// Block until the first pass is over, or the thread ended without one (it failed to load,
    /// or was dropped unasked): never longer than the thread lives.
    pub fn wait(&self) {
        let (over, changed) = &*self.0;
        let mut over = over.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while !*over {
            over = changed
                .wait(over)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Say it is over; waking every waiter.
    fn set(&self) {
        let (over, changed) = &*self.0;
        *over.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        changed.notify_all();
    }
}

/// Sets its [`PassEnd`] when dropped: the thread's end sets it on every path, a panic's too.
struct EndOnDrop(PassEnd);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// Where the iterator runs.
#[derive(Debug)]
enum Outcome {
    /// On its own thread, which says how it ended.
    Thread(JoinHandle<Result<Ran, BpfUnavailable>>),
    /// Nowhere yet: no thread could be made (a `pids.max` or `RLIMIT_NPROC` reached, just when
    /// an admin reaches for this tool), so [`Pass::gather`] loads and runs it on the
    /// caller's thread, once the sockets are known, without the overlap.
    Inline(Checked, Option<Variant>),
}

/// The first pass of a walk that reads sockets waits for [`Pass::go`]: `--netns all` reads
/// each namespace's socket counts before the walk, to compare the walk with.
fn go_channel(emit: Emit) -> (Option<Sender<()>>, Option<Receiver<()>>) {
    match emit {
        Emit::Holders => (None, None),
        Emit::Sockets { .. } => {
            let (go, wait) = mpsc::channel();
            (Some(go), Some(wait))
        }
    }
}

impl Pass {
    /// Load the iterator on a new thread and make its first pass at once. The program is the
    /// one `LSPORTS_BPF_ITERATOR` asks for, if any (see [`Variant::forced`]); it writes the
    /// holder records alone.
    pub fn start(checked: Checked, proc_root: &Path) -> Pass {
        Pass::start_emitting(checked, proc_root, Emit::Holders)
    }

    /// [`Pass::start`], the walk writing what `emit` asks for: one that reads sockets waits
    /// for [`Pass::go`] once loaded.
    pub fn start_emitting(checked: Checked, proc_root: &Path, emit: Emit) -> Pass {
        let program = Variant::forced();
        let (sender, chunks) = mpsc::channel();
        let (again, asked) = mpsc::channel();
        let (go, wait) = go_channel(emit);
        let clock = StartClock::now(proc_root);
        let end = PassEnd::default();
        let ends = EndOnDrop(end.clone());
        let spawned = std::thread::Builder::new()
            .name("bpf-iterator".into())
            .spawn(move || passes(checked, program, emit, wait, &sender, &asked, ends));
        // `checked` is a copy: the thread that could not be made took only its own.
        let outcome = spawned.map_or(Outcome::Inline(checked, program), Outcome::Thread);
        Pass {
            again,
            chunks,
            early: Vec::new(),
            outcome,
            clock,
            emit,
            go,
            end,
        }
    }

    /// The end of the first pass, for another thread to wait for; `None` where the pass runs
    /// on the gathering thread itself (no thread could be made), which waits for nothing.
    pub fn first_pass_end(&self) -> Option<PassEnd> {
        match self.outcome {
            Outcome::Thread(_) => Some(self.end.clone()),
            Outcome::Inline(..) => None,
        }
    }

    /// Let a walk that reads sockets make its first pass (see [`Pass::start`]); nothing for
    /// one that began on its own, or was let go already.
    pub fn go(&mut self) {
        if let Some(go) = self.go.take() {
            // A thread that already ended (failed to load) has hung up: nothing to start.
            let _ = go.send(());
        }
    }

    /// Block until the first pass has been read whole (for tests: a socket opened after this
    /// was certainly not seen by it). Returns at once on a pass without its own thread.
    pub fn wait_for_first_pass(&mut self) {
        while let Ok(chunk) = self.chunks.recv() {
            let done = matches!(chunk, Chunk::FirstDone);
            self.early.push(chunk);
            if done {
                return;
            }
        }
    }

    /// The holders of `wanted` and their details (read under `proc_root`), gathered from the
    /// output as it arrives, and which program ran.
    pub fn gather(
        mut self,
        proc_root: &Path,
        wanted: &HashSet<u64>,
        fields: DetailFields,
    ) -> Result<(Scan, Ran), BpfUnavailable> {
        // Whoever gathers wants the pass: it cannot be left waiting.
        self.go();
        let emit = self.emit;
        let thread = match self.outcome {
            Outcome::Thread(thread) => thread,
            Outcome::Inline(checked, program) => {
                // The sockets are collected: a pass now sees every one of them.
                let started = || Gather::new(proc_root, wanted, fields).with_sockets(emit);
                let mut gather = started();
                let (go, ready) = mpsc::channel();
                let _ = go.send(());
                let ran = iterator::run(checked, program, emit, &ready, |output| match output {
                    iterator::Output::Records(records) => gather.add(records),
                    iterator::Output::Restart => gather = started(),
                })?;
                return Ok((gather.finish(), ran.ok_or_else(never_ran)?));
            }
        };
        let started = || Gather::started(proc_root, wanted, fields, self.clock).with_sockets(emit);
        let mut gather = started();
        let mut unseen = None;
        // Ends when the thread is done and drops its sender.
        for chunk in self.early.into_iter().chain(self.chunks) {
            match (chunk, &unseen) {
                (Chunk::Records(records), None) => gather.add(&records),
                (Chunk::Records(records), Some(unseen)) => gather.add_again(&records, unseen),
                // The clock was taken before the first try, so before this one too.
                (Chunk::Restart, _) => gather = started(),
                (Chunk::FirstDone, _) => {
                    crate::sys::timing::mark("bpf: first pass gathered");
                    let missed = gather.unseen();
                    // A thread that already ended has hung up: nothing to ask.
                    let _ = self.again.send(!missed.is_empty());
                    unseen = Some(missed);
                }
            }
        }
        crate::sys::timing::mark("bpf: records gathered");
        let ran = thread
            .join()
            .unwrap_or_else(|_| Err(BpfUnavailable::Load("the iterator thread panicked".into())))?;
        Ok((gather.finish(), ran))
    }
}

/// The thread's work: load, wait for `wait` if given, make the first pass, and a second one if
/// asked.
fn passes(
    checked: Checked,
    program: Option<Variant>,
    emit: Emit,
    wait: Option<Receiver<()>>,
    sender: &Sender<Chunk>,
    asked: &Receiver<bool>,
    end: EndOnDrop,
) -> Result<Ran, BpfUnavailable> {
    // A receiver gone means the run ended without attributing: the sends fail, harmlessly.
    let send = |records: &[u8]| drop(sender.send(Chunk::Records(records.to_vec())));
    let (mut loaded, mut ran) = iterator::load(checked, program, emit)?;
    if let Some(wait) = wait
        && wait.recv().is_err()
    {
        // The pass was dropped unasked: nothing was collected, nothing to attribute.
        return Ok(ran);
    }
    iterator::first_pass(
        checked,
        program,
        &mut loaded,
        &mut ran,
        |output| match output {
            Output::Records(records) => send(records),
            Output::Restart => drop(sender.send(Chunk::Restart)),
        },
    )?;
    // Every process visited: whoever waits for that may go on.
    drop(end);
    drop(sender.send(Chunk::FirstDone));
    if asked.recv() == Ok(true) {
        crate::sys::timing::mark("bpf: second pass for sockets the first did not see");
        ran.readers = ran.readers.min(loaded.pass(send)?);
    }
    Ok(ran)
}
