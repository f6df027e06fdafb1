//! One pass of the iterator on its own thread, started before the sockets are known: loading
//! it (most of its cost) overlaps with collecting the sockets; the pass itself runs once they
//! are collected (see [`iterator::run`]), and the caller keeps the wanted ones as the output
//! arrives.

use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use super::error::BpfUnavailable;
use super::preflight::Checked;
use super::{Gather, Ran, Variant, iterator, never_ran};
use crate::config::DetailFields;
use crate::process::holders::Scan;

/// An iterator loading or running: chunks of whole records as the kernel produces them, then the outcome.
#[derive(Debug)]
pub struct Pass {
    /// Tells the loaded iterator to start visiting processes (see [`iterator::run`]).
    go: Sender<()>,
    chunks: Receiver<Vec<u8>>,
    outcome: Outcome,
}

/// Where the iterator runs.
#[derive(Debug)]
enum Outcome {
    /// On its own thread, which says how it ended.
    Thread(JoinHandle<Result<Option<Ran>, BpfUnavailable>>),
    /// Nowhere yet: no thread could be made (a `pids.max` or `RLIMIT_NPROC` reached, just when
    /// an admin reaches for this tool), so [`Pass::gather`] loads and runs it on the
    /// caller's thread, without the overlap.
    Inline(Checked, Option<Variant>),
}

impl Pass {
    /// Load the iterator on a new thread; it runs once [`Pass::gather`] is called. The
    /// program is the one `LSPORTS_BPF_ITERATOR` asks for, if any (see [`Variant::forced`]).
    pub fn start(checked: Checked) -> Pass {
        let program = Variant::forced();
        let (sender, chunks) = mpsc::channel();
        let (go, ready) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("bpf-iterator".into())
            .spawn(move || {
                // A receiver gone means the run ended without attributing: nothing to do.
                iterator::run(checked, program, &ready, |records| {
                    drop(sender.send(records.to_vec()))
                })
            });
        // `checked` is a copy: the thread that could not be made took only its own.
        let outcome = spawned.map_or(Outcome::Inline(checked, program), Outcome::Thread);
        Pass {
            go,
            chunks,
            outcome,
        }
    }

    /// The holders of `wanted` and their details (read under `proc_root`), gathered from the
    /// output as it arrives; the details of early processes are read while the kernel is still
    /// visiting later ones. Also which program ran.
    pub fn gather(
        self,
        proc_root: &Path,
        wanted: &HashSet<u64>,
        fields: DetailFields,
    ) -> Result<(Scan, Ran), BpfUnavailable> {
        let mut gather = Gather::new(proc_root, wanted, fields);
        // The sockets are collected: every one of them exists by now, so its holders will be
        // found. A thread that already failed has hung up, and says why below.
        let _ = self.go.send(());
        let thread = match self.outcome {
            Outcome::Thread(thread) => thread,
            Outcome::Inline(checked, program) => {
                let (go, ready) = mpsc::channel();
                let _ = go.send(());
                let ran = iterator::run(checked, program, &ready, |records| gather.add(records))?;
                return Ok((gather.finish(), ran.ok_or_else(never_ran)?));
            }
        };
        // Ends when the thread is done and drops its sender.
        for chunk in self.chunks {
            gather.add(&chunk);
        }
        crate::sys::timing::mark("bpf: records gathered");
        let ran = thread
            .join()
            .unwrap_or_else(|_| Err(BpfUnavailable::Load("the iterator thread panicked".into())))?;
        Ok((gather.finish(), ran.ok_or_else(never_ran)?))
    }
}
