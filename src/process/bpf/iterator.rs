//! Load `task_sockets.bpf.o`, run one of its two programs once as an anonymous iterator and
//! pass on its output as it is read.
//!
//! The `task` iterator that walks each process's fd table itself ([`Variant::FdWalk`], Linux
//! 5.17 and later for `bpf_loop`) is tried first; where the kernel refuses it, the `task_file`
//! iterator ([`Variant::TaskFile`], Linux 5.8 and later) runs instead, and [`Ran`] says why for
//! `-v`. The caller may ask for one of them: lsports does when `LSPORTS_BPF_ITERATOR` is
//! `task` or `task_file` ([`Variant::forced`]; for tests and measurements, as both must give
//! the same records).
//!
//! The fd-table walk is read by several iterators at once, one per core ([`readers`]), each on
//! its own thread: every one visits every process, and the first to reach a process walks it
//! (the program's `claims`), so the kernel's work is shared out as it goes, however uneven the
//! processes' tables are. Each process's records still come whole, from one read of one reader.
//!
//! Nothing is pinned: the program, its link and the iterator are file descriptors owned by
//! this function's values, so they are released when it returns, on success or on error, and
//! nothing outlives the process.

use std::error::Error;
use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::mpsc::Receiver;

use aya::maps::{Array, MapData};

use super::error::BpfUnavailable;
use super::loader::{self, Iterators, Wanted};
use super::preflight::Checked;
use super::records;
use crate::text::counts::count;

/// The compiled programs, built from `task_sockets.bpf.c` by `bpf/build.sh`.
static OBJECT: &[u8] = include_bytes!("task_sockets.bpf.o");
/// Read size: the kernel fills at most 8 pages per read, so this takes all it has.
const READ_BUFFER: usize = 64 * 1024;
/// The kernel structs `task_sockets.bpf.c` reads through CO-RE relocations (the `CORE` ones in
/// `kernel_types.h`) and `upid`, the element type of `pid.numbers`: the BTF digest keeps these
/// with all their members. A struct added to the program must be added here (a test checks).
pub(crate) const RELOCATED_STRUCTS: &[&str] = &[
    "task_struct",
    "css_set",
    "pid",
    "upid",
    "super_block",
    "inode",
    "file",
    "fdtable",
    "files_struct",
    "ns_common",
    "net",
    "sock_common",
    "sock",
    "socket",
    // What `read_socket` (src/source/bpf/socket_record.h) reads besides, for `Emit::Sockets`:
    // the names of `SOCKET_RECORD_STRUCTS` in src/model/socket_record.rs (a test checks).
    "socket_alloc",
    "tcp_sock",
    "udp_sock",
    "inet_timewait_sock",
    "cgroup",
    "kernfs_node",
];
/// The environment variable that forces one program (`task` or `task_file`), for tests.
pub const FORCE_VARIABLE: &str = "LSPORTS_BPF_ITERATOR";
/// The environment variable that sets how many iterators read the fd-table walk at once (`1`:
/// one, as before the walk was shared out), for tests and measurements.
pub const READERS_VARIABLE: &str = "LSPORTS_BPF_READERS";
/// Readers at most, whatever the cores: each visits every process, claimed or not.
const MAX_READERS: usize = 8;
/// The program's map of the highest pid claimed in a pass and the pass's number (`claims` in
/// the C source).
const CLAIMS_MAP: &str = "claims";

/// How many iterators read the fd-table walk at once: `LSPORTS_BPF_READERS` when it is a
/// positive number, or one per core; at most [`MAX_READERS`].
pub fn readers() -> usize {
    let forced = std::env::var(READERS_VARIABLE)
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .filter(|&readers| readers > 0);
    let cores = || std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    forced.unwrap_or_else(cores).min(MAX_READERS)
}

/// What the walk writes per socket fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Emit {
    /// The holder record alone (`struct record`): who holds which socket inode, where.
    #[default]
    Holders,
    /// Each holder record followed by the socket's own record (`struct socket_record`, as
    /// sock_diag would describe it), except for sockets in the network namespace with this
    /// inode (the reader's own, dumped over sock_diag anyway), and for sockets other than TCP
    /// and UDP ones, which get none.
    Sockets {
        /// The namespace whose sockets are not read.
        except_netns: u32,
    },
}

impl Emit {
    /// The program's read-only globals that ask for it (each a `__u32`, in native order).
    fn globals(self) -> Vec<(&'static str, [u8; 4])> {
        match self {
            Emit::Holders => Vec::new(),
            Emit::Sockets { except_netns } => vec![
                ("emit_sockets", 1u32.to_ne_bytes()),
                ("sockets_except_netns", except_netns.to_ne_bytes()),
            ],
        }
    }
}

/// Which of the object's two programs ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `task_fd_walk`: a `task` iterator walking each process's fd table with `bpf_loop`,
    /// taking no reference per file (Linux 5.17 and later).
    FdWalk,
    /// `task_sockets`: a `task_file` iterator, handed each file with a reference taken and
    /// dropped by the kernel (Linux 5.8 and later).
    TaskFile,
}

impl Variant {
    /// The function in `task_sockets.bpf.c`.
    fn program(self) -> &'static str {
        match self {
            Variant::FdWalk => "task_fd_walk",
            Variant::TaskFile => "task_sockets",
        }
    }

    /// The iterator type, as the program's section names it (`SEC("iter/task")`).
    pub fn iter_type(self) -> &'static str {
        match self {
            Variant::FdWalk => "task",
            Variant::TaskFile => "task_file",
        }
    }

    /// The kernel function whose BTF id is the attach point: `bpf_iter_` and the iterator
    /// type, as the loaders look it up (for tests of the digest).
    #[cfg(test)]
    pub(crate) fn iter_func(self) -> String {
        format!("bpf_iter_{}", self.iter_type())
    }

    /// The variant `LSPORTS_BPF_ITERATOR` asks for, if any.
    pub fn forced() -> Option<Variant> {
        match std::env::var(FORCE_VARIABLE).ok()?.as_str() {
            "task" => Some(Variant::FdWalk),
            "task_file" => Some(Variant::TaskFile),
            _ => None,
        }
    }

    /// How many iterators read a pass at once: the fd-table walk is shared out ([`readers`]);
    /// `task_file` hands each reader every file, so it has one.
    fn readers(self) -> usize {
        match self {
            Variant::FdWalk => readers(),
            Variant::TaskFile => 1,
        }
    }
}

/// Which program ran, and why not the fd-table walk when it did not.
#[derive(Debug)]
pub struct Ran {
    /// The program that ran.
    pub variant: Variant,
    /// Why the fd-table walk did not: `None` when it ran or was not asked for.
    pub not_walked: Option<BpfUnavailable>,
    /// How many iterators read each pass at once, on as many threads.
    pub readers: usize,
    /// Why aya loaded the program rather than lsports' own loader (`None`: the own one did).
    pub aya_fallback: Option<String>,
}

impl fmt::Display for Ran {
    /// What `-v` says of the iterator, inside `process owners from the kernel (...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_program(f)?;
        match &self.aya_fallback {
            Some(why) => write!(f, "; loaded through aya: {why}"),
            None => Ok(()),
        }
    }
}

impl Ran {
    /// Which program ran, and why not the fd-table walk.
    fn fmt_program(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.variant, &self.not_walked) {
            (Variant::FdWalk, _) => write!(
                f,
                "BPF task iterator walking each fd table on {}",
                count(self.readers, "thread")
            ),
            (Variant::TaskFile, None) => f.write_str("BPF task_file iterator, as asked"),
            (Variant::TaskFile, Some(why)) => write!(
                f,
                "BPF task_file iterator; the fd-table walk could not run: {why}"
            ),
        }
    }
}

/// Load the iterator (`program`, or the fd-table walk falling back to `task_file` when
/// `None`), wait for `go`, then run it once, handing its output to `each` as it is read (see
/// [`Loaded::pass`]). A `go` that hangs up means nobody wants the output: nothing runs (and
/// `Ok(None)` says so).
pub fn run(
    checked: Checked,
    program: Option<Variant>,
    emit: Emit,
    go: &Receiver<()>,
    mut each: impl FnMut(Output<'_>) + Send,
) -> Result<Option<Ran>, BpfUnavailable> {
    let (mut loaded, mut ran) = load(checked, program, emit)?;
    if go.recv().is_err() {
        return Ok(None);
    }
    first_pass(checked, program, &mut loaded, &mut ran, &mut each)?;
    Ok(Some(ran))
}

/// The first pass of `loaded` (loaded for `program`, as `ran` says), its output handed to
/// `each`. One process's records must fit in one read: when they do not, and no program was
/// forced, `each` is told to [`Output::Restart`] and `task_file`, which hands each descriptor
/// over alone, makes the pass instead; `loaded` and `ran` are then its.
pub fn first_pass(
    checked: Checked,
    program: Option<Variant>,
    loaded: &mut Loaded,
    ran: &mut Ran,
    mut each: impl FnMut(Output<'_>) + Send,
) -> Result<(), BpfUnavailable> {
    ran.readers = match loaded.pass(|records| each(Output::Records(records))) {
        Err(BpfUnavailable::TooManySockets) if program.is_none() => {
            crate::sys::timing::mark("bpf: a process has too many sockets for the fd-table walk");
            each(Output::Restart);
            (*loaded, *ran) = load(checked, Some(Variant::TaskFile), loaded.emit)?;
            ran.not_walked = Some(BpfUnavailable::TooManySockets);
            loaded.pass(|records| each(Output::Records(records)))?
        }
        outcome => outcome?,
    };
    Ok(())
}

/// What [`run`] and [`first_pass`] hand their caller.
#[derive(Debug)]
pub enum Output<'a> {
    /// Whole records, as the kernel wrote them.
    Records(&'a [u8]),
    /// The records so far are void: the fd-table walk failed part way and `task_file` makes
    /// the pass again from the start.
    Restart,
}

/// A program loaded into the kernel as its iterator: each [`Loaded::pass`] attaches it anew
/// and visits every process once. The kernel's BTF is released by now; the program is a file
/// descriptor, closed when this is dropped.
pub struct Loaded {
    iterators: Iterators,
    variant: Variant,
    emit: Emit,
    /// Iterators read at once in each pass.
    readers: usize,
    /// Passes begun: each is numbered, so that no reader takes a claim of an earlier one.
    passes: u64,
    /// Why aya loaded it, until [`Ran`] says so.
    aya_fallback: Option<String>,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("variant", &self.variant)
            .field("emit", &self.emit)
            .field("readers", &self.readers)
            .finish()
    }
}

/// Load `forced`, or the fd-table walk, or `task_file` where the kernel refuses the walk.
/// The program writes what `emit` asks for.
pub fn load(
    _checked: Checked,
    forced: Option<Variant>,
    emit: Emit,
) -> Result<(Loaded, Ran), BpfUnavailable> {
    crate::sys::timing::mark("bpf: started");
    let first = forced.unwrap_or(Variant::FdWalk);
    let not_walked = match load_variant(first, emit) {
        Ok(mut loaded) => {
            let ran = Ran {
                variant: first,
                not_walked: None,
                readers: loaded.readers,
                aya_fallback: loaded.aya_fallback.take(),
            };
            return Ok((loaded, ran));
        }
        Err(why) if forced.is_none() => why,
        Err(why) => return Err(why),
    };
    crate::sys::timing::mark("bpf: fd-table walk refused");
    let mut loaded = load_variant(Variant::TaskFile, emit)?;
    let ran = Ran {
        variant: Variant::TaskFile,
        not_walked: Some(not_walked),
        readers: loaded.readers,
        aya_fallback: loaded.aya_fallback.take(),
    };
    Ok((loaded, ran))
}

/// Load `variant`'s program as its iterator (the verifier checks it here).
fn load_variant(variant: Variant, emit: Emit) -> Result<Loaded, BpfUnavailable> {
    load_variant_with(variant, emit, loader::Choice::from_env())
}

/// [`load_variant`] by the loader `choice`.
fn load_variant_with(
    variant: Variant,
    emit: Emit,
    choice: loader::Choice,
) -> Result<Loaded, BpfUnavailable> {
    let values = emit.globals();
    let globals: Vec<(&str, &[u8])> = values.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let wanted = Wanted {
        object: OBJECT,
        relocated: RELOCATED_STRUCTS,
        programs: &[(variant.program(), variant.iter_type())],
        globals: &globals,
    };
    let loaded = loader::load_with(&wanted, choice)?;
    Ok(Loaded {
        iterators: loaded.iterators,
        aya_fallback: loaded.aya_fallback,
        variant,
        emit,
        readers: variant.readers(),
        passes: 0,
    })
}

impl Loaded {
    /// Visit every process once, handing the output to `each` as it is read, in whole records
    /// (see `records`), so the caller can work on the first processes while the kernel visits
    /// the rest. The output of every reader goes to `each`, one read at a time; each read
    /// holds whole processes, so one process's records are never split between calls. Returns
    /// how many readers ran.
    pub fn pass(&mut self, each: impl FnMut(&[u8]) + Send) -> Result<usize, BpfUnavailable> {
        if self.variant == Variant::FdWalk {
            self.reset_claims()?;
        }
        let outputs = (0..self.readers)
            .map(|_| self.open())
            .collect::<Result<Vec<File>, _>>()?;
        crate::sys::timing::mark("bpf: iterator opened");
        let each = Mutex::new(each);
        let hand = &|records: &[u8]| {
            // A poisoned lock only means another reader's `each` panicked: its thread says so.
            let mut each = each.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            each(records);
        };
        let mut outputs = outputs.into_iter();
        let Some(first) = outputs.next() else {
            return Ok(0);
        };
        std::thread::scope(|scope| {
            // A reader whose thread cannot be made is never read: the others claim every
            // process it would have walked, so the records are the same, only less shared out.
            let threads: Vec<_> = outputs
                .filter_map(|output| {
                    std::thread::Builder::new()
                        .name("bpf-reader".into())
                        .spawn_scoped(scope, move || drain(output, hand))
                        .ok()
                })
                .collect();
            let ran = 1 + threads.len();
            let mut outcome = drain(first, hand);
            for thread in threads {
                let joined = thread.join().unwrap_or_else(|_| {
                    Err(BpfUnavailable::Load("an iterator reader panicked".into()))
                });
                outcome = outcome.and(joined);
            }
            outcome.map(|()| ran)
        })
    }

    /// Number the next pass and set the highest pid claimed to 0, so that its readers share
    /// out every process again.
    fn reset_claims(&mut self) -> Result<(), BpfUnavailable> {
        self.passes += 1;
        let map = self
            .iterators
            .map_mut(CLAIMS_MAP)
            .ok_or_else(|| BpfUnavailable::Load(format!("no map {CLAIMS_MAP} in the object")))?;
        let mut claims: Array<&mut MapData, u64> =
            Array::try_from(map).map_err(|e| BpfUnavailable::Load(chain(&e)))?;
        let set = |claims: &mut Array<&mut MapData, u64>, index, value| {
            claims
                .set(index, value, 0)
                .map_err(|e| BpfUnavailable::Load(chain(&e)))
        };
        set(&mut claims, 0, 0)?;
        set(&mut claims, 1, self.passes)
    }

    /// Attach the program and open one pass over it; the link is the pass's file's to keep.
    fn open(&mut self) -> Result<File, BpfUnavailable> {
        self.iterators.open(self.variant.program())
    }
}

/// Read one iterator to its end, handing whole records to `each` as they are read.
fn drain(mut output: File, each: impl Fn(&[u8])) -> Result<(), BpfUnavailable> {
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut filled = 0;
    loop {
        let read = match output.read(&mut buffer[filled..]) {
            Ok(0) => {
                crate::sys::timing::mark("bpf: iterator drained");
                return Ok(());
            }
            Ok(read) => read,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // One process's records are handed over whole, or not at all.
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) => {
                return Err(BpfUnavailable::TooManySockets);
            }
            Err(e) => return Err(BpfUnavailable::Read(e)),
        };
        filled += read;
        // The kernel writes whole records, but a short read must not split one.
        let whole = records::whole(&buffer[..filled]);
        each(&buffer[..whole]);
        buffer.copy_within(whole..filled, 0);
        filled -= whole;
    }
}

/// An error and its causes on one line: aya's outer messages alone rarely say which errno.
pub(crate) fn chain(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Each `struct NAME { ... } CORE;` of `kernel_types.h` with the names of its members:
    /// what the program reads through CO-RE relocations.
    pub(crate) fn relocated_fields() -> Vec<(String, Vec<String>)> {
        let header = include_str!("kernel_types.h");
        let mut structs = Vec::new();
        let mut rest = header;
        while let Some(start) = rest.find("\nstruct ") {
            rest = &rest[start + "\nstruct ".len()..];
            let Some((name, body)) = rest.split_once(" {\n") else {
                continue;
            };
            let Some((body, after)) = body.split_once("\n}") else {
                continue;
            };
            if !after.starts_with(" CORE;") || name.contains(char::is_whitespace) {
                continue;
            }
            let members = body
                .lines()
                .filter_map(|line| line.trim().strip_suffix(';'))
                .filter_map(|decl| decl.split('[').next()?.split_whitespace().last())
                .map(|member| member.trim_start_matches('*').to_owned())
                .collect();
            structs.push((name.to_owned(), members));
        }
        structs
    }

    #[test]
    fn the_digest_keeps_every_relocated_struct() {
        let fields = relocated_fields();
        let mut declared: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        // Not relocated, but the element of `pid.numbers`: array strides read its size.
        declared.push("upid");
        // And those the shared socket reader reads.
        declared.extend(crate::model::socket_record::SOCKET_RECORD_STRUCTS);
        declared.sort_unstable();
        declared.dedup();
        let mut listed = RELOCATED_STRUCTS.to_vec();
        listed.sort_unstable();
        assert_eq!(declared, listed);
        let task = fields
            .iter()
            .find(|(name, _)| name == "task_struct")
            .unwrap();
        assert_eq!(
            task.1,
            [
                "pid",
                "tgid",
                "thread_pid",
                "start_boottime",
                "files",
                "cgroups"
            ]
        );
        let pid = fields.iter().find(|(name, _)| name == "pid").unwrap();
        assert_eq!(pid.1, ["level", "numbers"]);
    }

    #[test]
    fn each_program_is_the_iterator_type_it_is_loaded_as() {
        // The program is loaded at `bpf_iter_<type>`, whatever it was written for: the
        // object's section must name the same type, or the kernel would run it over other
        // objects (the live-BTF tests in `btf_digest` and `loader::attach_id` check the
        // functions).
        for variant in [Variant::FdWalk, Variant::TaskFile] {
            let section = format!("\0iter/{}\0", variant.iter_type());
            assert!(
                OBJECT
                    .windows(section.len())
                    .any(|name| name == section.as_bytes()),
                "no section {section:?} in task_sockets.bpf.o"
            );
            let program = format!("\0{}\0", variant.program());
            assert!(
                OBJECT
                    .windows(program.len())
                    .any(|name| name == program.as_bytes()),
                "no program {program:?} in task_sockets.bpf.o"
            );
        }
        assert_eq!(Variant::FdWalk.iter_func(), "bpf_iter_task");
        assert_eq!(Variant::TaskFile.iter_func(), "bpf_iter_task_file");
    }

    #[test]
    fn verbose_says_which_program_ran_and_why() {
        let walked = |readers| Ran {
            variant: Variant::FdWalk,
            not_walked: None,
            readers,
            aya_fallback: None,
        };
        assert_eq!(
            walked(2).to_string(),
            "BPF task iterator walking each fd table on 2 threads"
        );
        assert_eq!(
            walked(1).to_string(),
            "BPF task iterator walking each fd table on 1 thread"
        );
        let fell_back = Ran {
            variant: Variant::TaskFile,
            not_walked: Some(BpfUnavailable::Load("bpf_loop: invalid argument".into())),
            readers: 1,
            aya_fallback: None,
        };
        let line = fell_back.to_string();
        assert!(line.starts_with("BPF task_file iterator; the fd-table walk could not run: "));
        assert!(line.ends_with("bpf_loop: invalid argument"), "{line}");
        let forced = Ran {
            variant: Variant::TaskFile,
            not_walked: None,
            readers: 1,
            aya_fallback: None,
        };
        assert_eq!(forced.to_string(), "BPF task_file iterator, as asked");
        let through_aya = Ran {
            aya_fallback: Some("scanning the kernel's BTF: unsupported BTF version 2".into()),
            ..walked(2)
        };
        assert_eq!(
            through_aya.to_string(),
            "BPF task iterator walking each fd table on 2 threads; loaded through aya: scanning \
             the kernel's BTF: unsupported BTF version 2"
        );
    }

    #[test]
    fn the_embedded_object_is_an_elf_file() {
        // A build that embedded a placeholder would fail only at load time, as root.
        assert!(OBJECT.starts_with(b"\x7fELF"));
    }

    /// A TCP listener of this process, its socket inode and fd; `None` (a skip) where the BPF
    /// iterator cannot load, which under CI (root, a kernel with BTF) is a failure.
    fn listener_if_bpf_loads() -> Option<(std::net::TcpListener, u64, u32)> {
        if let Err(why) = crate::process::bpf::preflight::check(std::path::Path::new("/proc")) {
            let ci = std::env::var_os("CI").is_some_and(|v| v == "true");
            assert!(!ci, "the BPF iterator cannot load under CI: {why}");
            println!("SKIP: {why}");
            return None;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let link = format!("/proc/self/fd/{fd}");
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(link).unwrap());
        Some((listener, inode, fd as u32))
    }

    #[test]
    fn both_loaders_load_each_program_and_find_this_process_s_listener() {
        let Some((_listener, inode, fd)) = listener_if_bpf_loads() else {
            return;
        };
        let pid = std::process::id();
        for choice in [loader::Choice::Own, loader::Choice::Aya] {
            for variant in [Variant::FdWalk, Variant::TaskFile] {
                let mut loaded = load_variant_with(variant, Emit::Holders, choice).unwrap();
                // The own loader loads them all on this kernel: no fallback to aya.
                assert_eq!(
                    loaded.aya_fallback.is_some(),
                    choice == loader::Choice::Aya,
                    "{choice:?} {variant:?}: {:?}",
                    loaded.aya_fallback
                );
                let found = Mutex::new(Vec::new());
                loaded
                    .pass(|bytes| {
                        let mut found = found.lock().unwrap();
                        found.extend(
                            records::decode(bytes)
                                .filter(|r| r.inode == inode)
                                .map(|r| (r.pid, r.fd)),
                        );
                    })
                    .unwrap();
                assert_eq!(
                    found.into_inner().unwrap(),
                    [(pid, fd)],
                    "{choice:?} {variant:?}"
                );
            }
        }
    }

    #[test]
    fn the_verifier_checks_the_fd_walk_s_work_per_file_once() {
        // The walk cannot begin before the kernel's verifier has checked every path of the
        // program. task_fd_walk checks the work done per descriptor once (an inner bpf_loop
        // callback, a global function): 1,135 instructions processed with emit_sockets 0 and
        // 1,681 with 1 on Linux 6.18, where the body of a loop over a step's 8 slots was
        // checked at each slot, 12,302 and 12,873 (the load took 9 ms instead of 1). A count
        // of instructions, not a time: the same on a busy machine as on a quiet one.
        if listener_if_bpf_loads().is_none() {
            return;
        }
        for emit in [Emit::Holders, Emit::Sockets { except_netns: 0 }] {
            // Through aya, whose loaded programs say what the kernel counted.
            let loaded = load_variant_with(Variant::FdWalk, emit, loader::Choice::Aya).unwrap();
            let Iterators::Aya(ebpf) = &loaded.iterators else {
                panic!("{emit:?}: loaded by the own loader when aya was asked");
            };
            let info = ebpf
                .program(Variant::FdWalk.program())
                .expect("task_fd_walk in the object")
                .info()
                .unwrap();
            // The kernel counts them from Linux 5.16; the program needs 5.17.
            let processed = info
                .verified_instruction_count()
                .expect("a kernel that runs task_fd_walk counts what it verified");
            assert!(
                processed <= 4_000,
                "{emit:?}: the verifier processed {processed} instructions of task_fd_walk"
            );
        }
    }

    #[test]
    fn an_own_load_that_fails_before_the_kernel_falls_back_to_aya_and_says_why() {
        let Some((_listener, inode, fd)) = listener_if_bpf_loads() else {
            return;
        };
        // A struct no kernel has: the own loader cannot digest the kernel's BTF for it; aya,
        // after its own digest fails the same way, relocates against the whole BTF, where the
        // program (which reads no such struct) loads.
        let mut relocated = RELOCATED_STRUCTS.to_vec();
        relocated.push("lsports_no_such_struct");
        let variant = Variant::TaskFile;
        let wanted = Wanted {
            object: OBJECT,
            relocated: &relocated,
            programs: &[(variant.program(), variant.iter_type())],
            globals: &[],
        };
        let mut loaded = loader::load_with(&wanted, loader::Choice::Own).unwrap();
        assert_eq!(
            loaded.aya_fallback.as_deref(),
            Some("digesting the kernel's BTF: no struct or union named lsports_no_such_struct")
        );
        let mut output = loaded.iterators.open(variant.program()).unwrap();
        let mut bytes = Vec::new();
        output.read_to_end(&mut bytes).unwrap();
        let found: Vec<(u32, u32)> = records::decode(&bytes)
            .filter(|r| r.inode == inode)
            .map(|r| (r.pid, r.fd))
            .collect();
        assert_eq!(found, [(std::process::id(), fd)]);
    }

    #[test]
    fn chained_messages_name_the_cause_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("program loading failed")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let eperm = || std::io::Error::from_raw_os_error(libc::EPERM);
        let message = chain(&Outer(eperm()));
        assert!(
            message.starts_with("program loading failed: Operation not permitted"),
            "{message}"
        );
        // A cause already in the message is not repeated.
        let message = chain(&BpfUnavailable::Read(eperm()));
        assert_eq!(
            message.matches("Operation not permitted").count(),
            1,
            "{message}"
        );
    }
}
