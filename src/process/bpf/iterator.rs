//! Load `task_sockets.bpf.o`, run it once as an anonymous `task_file` iterator and pass on its
//! output as it is read.
//!
//! Nothing is pinned: the program, its link and the iterator are file descriptors owned by
//! this function's values, so they are released when it returns, on success or on error, and
//! nothing outlives the process.

use std::error::Error;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::mpsc::Receiver;

use aya::programs::{Iter, ProgramError};
use aya::{Btf, Ebpf, EbpfLoader, Endianness};

use super::BTF_PATH;
use super::btf_digest;
use super::error::BpfUnavailable;
use super::preflight::Checked;
use super::records::RECORD_SIZE;

/// The compiled program, built from `task_sockets.bpf.c` by `bpf/build.sh`.
static OBJECT: &[u8] = include_bytes!("task_sockets.bpf.o");
/// The function in `task_sockets.bpf.c`.
const PROGRAM: &str = "task_sockets";
/// Read size: the kernel fills at most 8 pages per read, so this takes all it has.
const READ_BUFFER: usize = 64 * 1024;
/// The kernel structs `task_sockets.bpf.c` reads through CO-RE relocations (the `CORE` ones in
/// `kernel_types.h`) and `upid`, the element type of `pid.numbers`: the BTF digest keeps these
/// with all their members. A struct added to the program must be added here (a test checks).
pub(crate) const RELOCATED_STRUCTS: &[&str] =
    &["task_struct", "pid", "upid", "super_block", "inode", "file"];
/// The iterator type: the program attaches to the kernel function `bpf_iter_task_file`.
const ITER_TYPE: &str = "task_file";
/// The kernel function named after [`ITER_TYPE`], whose BTF id is the attach point.
const ITER_FUNC: &str = "bpf_iter_task_file";

/// Load the iterator, wait for `go`, then run it, handing its output to `each` as it is read,
/// in whole records (see `records`), so the caller can work on the first processes while the
/// kernel visits the rest. A `go` that hangs up means nobody wants the output: nothing runs.
///
/// The kernel visits the processes only once `go` arrives, which the caller sends when the
/// sockets are collected: a process visited before that could open a listener the collection
/// then sees, and it would look ownerless. Loading, most of the cost, still overlaps.
pub fn run(
    _checked: Checked,
    go: &Receiver<()>,
    mut each: impl FnMut(&[u8]),
) -> Result<(), BpfUnavailable> {
    let mut output = open()?;
    if go.recv().is_err() {
        return Ok(());
    }
    // The program and the BTF are released by now: the open iterator holds the kernel's
    // references, so only the output costs memory from here on.
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
            Err(e) => return Err(BpfUnavailable::Read(e)),
        };
        filled += read;
        // The kernel writes whole records, but a short read must not split one.
        let whole = filled - filled % RECORD_SIZE;
        each(&buffer[..whole]);
        buffer.copy_within(whole..filled, 0);
        filled -= whole;
    }
}

/// Load, attach and open one pass of the iterator.
fn open() -> Result<File, BpfUnavailable> {
    crate::sys::timing::mark("bpf: started");
    let mut loader = loader_without_btf();
    crate::sys::timing::mark("bpf: loader made");
    let btf = KernelBtf::load()?;
    crate::sys::timing::mark("bpf: kernel types digested");
    let (mut ebpf, btf) = match loader.btf(Some(&btf.relocations)).load(OBJECT) {
        Ok(ebpf) => (ebpf, btf),
        // A digest that parses yet lacks what a relocation needs would be a bug of the
        // digest, not of the kernel: the whole BTF still loads the program.
        Err(_) if btf.attach.is_some() => {
            let full = KernelBtf::full()?;
            let ebpf = loader_without_btf()
                .btf(Some(&full.relocations))
                .load(OBJECT)
                .map_err(|e| BpfUnavailable::Load(chain(&e)))?;
            (ebpf, full)
        }
        Err(e) => return Err(BpfUnavailable::Load(chain(&e))),
    };
    crate::sys::timing::mark("bpf: program loaded");
    let opened = open_iterator(&mut ebpf, btf.attach());
    crate::sys::timing::mark("bpf: iterator opened");
    opened
}

/// A loader that has not parsed the kernel's BTF: [`KernelBtf`] gives it a digest instead.
///
/// aya 0.14's `EbpfLoader::new` always parses `/sys/kernel/btf/vmlinux` for itself (about
/// 20 ms of CPU and 15 MiB here), even when `.btf()` replaces it right after, and there is no
/// other way to make a loader. So it is made on a short-lived thread that first takes a filesystem
/// context of its own (`unshare(CLONE_FS)`: that thread's root and working directory, allowed
/// in a multithreaded process) and changes its root to [`BLIND_ROOT`], where aya's read fails
/// at once. The process's root never changes. Without `CAP_SYS_CHROOT` (a process with only
/// `CAP_BPF` and `CAP_PERFMON`), or when the thread cannot start, the loader is made the
/// normal way: slower, same result.
///
/// Remove once aya 0.15 or later is usable (its target BTF is parsed lazily, only when
/// needed): it needs Rust 1.98.
fn loader_without_btf() -> EbpfLoader<'static> {
    let blinded = std::thread::Builder::new()
        .name("bpf-loader".into())
        .spawn(|| {
            blind_to_kernel_btf();
            EbpfLoader::new()
        })
        .ok()
        .and_then(|thread| thread.join().ok());
    let mut loader = blinded.unwrap_or_default();
    // Whatever it parsed (on the fallback) is dropped before our BTF is made.
    loader.btf(None);
    loader
}

/// A directory with no `sys/kernel/btf/vmlinux` in it for sure (its entries are numbers), and
/// present wherever the BPF path runs (it requires the live `/proc`).
const BLIND_ROOT: &str = "/proc/self/fdinfo";

/// Give the calling thread alone a root where the kernel's BTF cannot be found. Failure leaves
/// the thread's view unchanged (at worst with a private copy of the same root and cwd).
fn blind_to_kernel_btf() {
    // SAFETY: unshare(CLONE_FS) takes no pointers; it gives this thread a private copy of the
    // root, working directory and umask it shared with the other threads, so the chroot below
    // affects this thread only.
    if unsafe { libc::unshare(libc::CLONE_FS) } == 0 {
        // Needs CAP_SYS_CHROOT; without it the loader parses the BTF, as it would anyway.
        let _ = nix::unistd::chroot(BLIND_ROOT);
    }
}

/// The kernel's BTF as aya uses it: to relocate the program's field accesses, and to find
/// the iterator's attach point. Both are small digests (see `btf_digest`), or the same full
/// parse when no digest can be made.
struct KernelBtf {
    relocations: Btf,
    /// `None`: `relocations` is the full BTF and serves for both.
    attach: Option<Btf>,
}

impl KernelBtf {
    fn load() -> Result<KernelBtf, BpfUnavailable> {
        let raw = RawBtf::open().map_err(|e| no_btf(e.to_string()))?;
        let digest = match btf_digest::digest(raw.bytes(), RELOCATED_STRUCTS, ITER_FUNC) {
            Ok(digest) => digest,
            // Unexpected BTF: aya reads it whole, as it would have without the digest.
            Err(_) => return Self::parse_whole(raw.bytes()),
        };
        // The raw bytes (5 MiB when read rather than mapped) are not needed once digested.
        drop(raw);
        let parse = |bytes: &[u8]| Btf::parse(bytes, Endianness::default());
        match (parse(&digest.relocations), parse(&digest.attach)) {
            (Ok(relocations), Ok(attach)) => Ok(KernelBtf {
                relocations,
                attach: Some(attach),
            }),
            // A digest aya refuses would be a bug here, not a kernel problem: read it whole.
            _ => Self::full(),
        }
    }

    /// The whole kernel BTF, parsed by aya: what a failed digest falls back to.
    fn full() -> Result<KernelBtf, BpfUnavailable> {
        Self::parse_whole(RawBtf::open().map_err(|e| no_btf(e.to_string()))?.bytes())
    }

    fn parse_whole(raw: &[u8]) -> Result<KernelBtf, BpfUnavailable> {
        match Btf::parse(raw, Endianness::default()) {
            Ok(relocations) => Ok(KernelBtf {
                relocations,
                attach: None,
            }),
            Err(e) => Err(no_btf(chain(&e))),
        }
    }

    fn attach(&self) -> &Btf {
        self.attach.as_ref().unwrap_or(&self.relocations)
    }
}

/// The kernel BTF could not be read or parsed, for `reason`.
fn no_btf(reason: String) -> BpfUnavailable {
    BpfUnavailable::NoBtf {
        path: BTF_PATH.into(),
        reason,
    }
}

/// The kernel's raw BTF: mapped where the kernel allows it (Linux 6.16 and later map the BTF
/// itself, read-only: no copy, none of sysfs' 4 KiB reads, and no memory of this process),
/// otherwise read once into a buffer of its size.
enum RawBtf {
    Mapped(Mapping),
    Read(Vec<u8>),
}

impl RawBtf {
    fn open() -> std::io::Result<RawBtf> {
        let mut file = File::open(BTF_PATH)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| std::io::Error::from(ErrorKind::InvalidData))?;
        if let Some(mapping) = Mapping::new(&file, len) {
            return Ok(RawBtf::Mapped(mapping));
        }
        let mut bytes = Vec::with_capacity(len);
        file.read_to_end(&mut bytes)?;
        Ok(RawBtf::Read(bytes))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            RawBtf::Mapped(mapping) => mapping.bytes(),
            RawBtf::Read(bytes) => bytes,
        }
    }
}

/// A read-only private mapping of a whole file, unmapped on drop.
struct Mapping {
    start: NonNull<libc::c_void>,
    len: usize,
}

impl Mapping {
    /// Map `len` bytes of `file`, or `None` where the file cannot be mapped (older kernels).
    fn new(file: &File, len: usize) -> Option<Mapping> {
        if len == 0 {
            return None;
        }
        // SAFETY: a new read-only mapping at an address the kernel picks (null hint), so it
        // overlaps no existing memory; `file` is an open descriptor for the whole call.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(start).map(|start| Mapping { start, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` readable bytes from `start` stay mapped until `drop`, which the borrow
        // of `self` outlasts; the kernel's BTF never changes (unlike a regular file's pages,
        // which a truncation could take away under a mapping).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`; no slice of it outlives `self`.
        unsafe {
            libc::munmap(self.start.as_ptr(), self.len);
        }
    }
}

/// Load the program as a `task_file` iterator, attach it and open one pass over it.
fn open_iterator(ebpf: &mut Ebpf, btf: &Btf) -> Result<File, BpfUnavailable> {
    let program: &mut Iter = ebpf
        .program_mut(PROGRAM)
        .ok_or_else(|| BpfUnavailable::Load(format!("no program {PROGRAM} in the object")))?
        .try_into()
        .map_err(|e: ProgramError| BpfUnavailable::Load(chain(&e)))?;
    program.load(ITER_TYPE, btf).map_err(|e| match e {
        // The attach point `bpf_iter_task_file` is missing from the kernel's BTF.
        ProgramError::Btf(_) => BpfUnavailable::NoIterator(chain(&e)),
        _ => BpfUnavailable::Load(chain(&e)),
    })?;
    let link_id = program
        .attach()
        .map_err(|e| BpfUnavailable::Load(chain(&e)))?;
    let link = program
        .take_link(link_id)
        .map_err(|e| BpfUnavailable::Load(chain(&e)))?;
    link.into_file()
        .map_err(|e| BpfUnavailable::Load(chain(&e)))
}

/// An error and its causes on one line: aya's outer messages alone rarely say which errno.
fn chain(error: &dyn Error) -> String {
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
        declared.sort_unstable();
        let mut listed = RELOCATED_STRUCTS.to_vec();
        listed.sort_unstable();
        assert_eq!(declared, listed);
        let task = fields
            .iter()
            .find(|(name, _)| name == "task_struct")
            .unwrap();
        assert_eq!(task.1, ["pid", "tgid", "thread_pid"]);
        let pid = fields.iter().find(|(name, _)| name == "pid").unwrap();
        assert_eq!(pid.1, ["level", "numbers"]);
    }

    #[test]
    fn the_iterator_function_is_named_after_its_type() {
        assert_eq!(ITER_FUNC, format!("bpf_iter_{ITER_TYPE}"));
    }

    #[test]
    fn the_embedded_object_is_an_elf_file() {
        // A build that embedded a placeholder would fail only at load time, as root.
        assert!(OBJECT.starts_with(b"\x7fELF"));
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
