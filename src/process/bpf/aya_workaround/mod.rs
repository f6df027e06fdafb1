//! The aya 0.14 workaround: the kernel's BTF parsed in a digest, not whole, and a loader made
//! where it cannot parse it for itself. Everything here exists because aya 0.14 offers no
//! other way; it saves most of the BPF path's loading cost, measured below.
//!
//! aya needs the kernel's BTF (`/sys/kernel/btf/vmlinux`, some 130,000 types) for two things:
//! relocating the program's field accesses (CO-RE) and finding the iterator's attach point.
//! Left to itself, it parses all of it, twice: `EbpfLoader::new` parses it unasked, and
//! `Iter::load` wants it again as a parsed `Btf`. This module instead
//! - makes the loader on a short-lived thread whose root is a directory without the BTF
//!   (`loader_without_btf`), so aya's own parse fails at once and costs nothing;
//! - reads the raw BTF once (mapped where the kernel allows it) and writes two small BTFs
//!   holding just what aya consults ([`btf_digest`]), which aya parses in well under a
//!   millisecond;
//! - falls back to the whole BTF, as aya would have read it, whenever a digest cannot be made
//!   or is refused, so a problem here costs time, never correctness.
//!
//! What it saves, measured on the 2-core development machine (release build, `lsports -ltnu
//! --attribution bpf` on the host, 15 runs interleaved with a build that left aya to itself:
//! `EbpfLoader::new().load()` and `Btf::from_sys_fs()`): loading the program, from the
//! thread's start to the program loaded (`LSPORTS_TIMING=1`), takes 22 ms against 129 ms
//! (medians; ranges 16..40 and 86..233 on a busy machine), the whole run 40 ms against
//! 159 ms, and its peak RSS is 10.7 MiB against 23.5 MiB.
//!
//! Since `loader` (the own loader) loads the iterators, this is their fallback: what loads
//! them when the own loader cannot (or `LSPORTS_BPF_LOADER=aya` asks), still through the two
//! digests. The own loader uses the relocation digest too (`btf_digest::relocations`), but not
//! the attach digest: aya keeps its placeholders as 72-byte `BtfType`s, 4.6 MiB for
//! `bpf_iter_task`, which the own loader's scan of the raw BTF does without (measured in
//! `loader`: the peak RSS when the program is verified drops by 4.5 to 6 MiB).
//! `src/source/events/program.rs` still loads through aya with the loader made here.
//!
//! **When to delete it**: once an aya release both lets the caller hand over the target BTF
//! without parsing the kernel's itself (aya 0.15 and later parse it lazily, only when no BTF
//! is given, but need Rust 1.98, newer than this toolchain) and takes an iterator's attach id
//! rather than a parsed `Btf` to find it in (0.16's `Iter::load` still wants the `Btf`).
//! Until then the fallback stays, so that a problem of the own loader costs time and memory,
//! never correctness; `tests/bpf_programs.rs` checks that both loaders give the same
//! listing, and `iterator`'s tests that a failing own load falls back to this one.

pub mod btf_digest;

use aya::{Btf, Ebpf, EbpfLoader, Endianness};

use super::BTF_PATH;
use super::error::BpfUnavailable;
use super::iterator::chain;
use super::raw_btf::RawBtf;

/// Load `object` with its CO-RE accesses to the structs in `relocated` resolved against the
/// kernel's BTF, and the kernel's BTF of `attach_func` (the attach point) for the caller.
pub fn load(
    object: &[u8],
    relocated: &[&str],
    attach_func: &str,
) -> Result<(Ebpf, KernelBtf), BpfUnavailable> {
    load_with_globals(object, relocated, attach_func, &[])
}

/// [`load`], with the object's read-only globals (`const volatile` in the C source) set to
/// `globals` (name, value's bytes) first, so the verifier sees them as constants.
pub fn load_with_globals(
    object: &[u8],
    relocated: &[&str],
    attach_func: &str,
    globals: &[(&str, &[u8])],
) -> Result<(Ebpf, KernelBtf), BpfUnavailable> {
    let mut loader = loader_without_btf();
    crate::sys::timing::mark("bpf: loader made");
    let btf = KernelBtf::load(relocated, attach_func)?;
    crate::sys::timing::mark("bpf: kernel types digested");
    set_globals(&mut loader, globals);
    match loader.btf(Some(&btf.relocations)).load(object) {
        Ok(ebpf) => Ok((ebpf, btf)),
        // A digest that parses yet lacks what a relocation needs would be a bug of the
        // digest, not of the kernel: the whole BTF still loads the program.
        Err(_) if btf.attach.is_some() => {
            let full = KernelBtf::full()?;
            let mut loader = loader_without_btf();
            set_globals(&mut loader, globals);
            let ebpf = loader
                .btf(Some(&full.relocations))
                .load(object)
                .map_err(|e| BpfUnavailable::Load(chain(&e)))?;
            Ok((ebpf, full))
        }
        Err(e) => Err(BpfUnavailable::Load(chain(&e))),
    }
}

/// Give each global of `globals` (name, bytes) its value; a name the object lacks fails the
/// load.
fn set_globals<'a>(loader: &mut EbpfLoader<'a>, globals: &[(&'a str, &'a [u8])]) {
    for &(name, value) in globals {
        loader.override_global(name, value, true);
    }
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
pub(crate) fn loader_without_btf() -> EbpfLoader<'static> {
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
    // unshare(CLONE_FS) gives this thread a private copy of the root, working directory and
    // umask it shared with the other threads, so the chroot below affects this thread only.
    if nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).is_ok() {
        // Needs CAP_SYS_CHROOT; without it the loader parses the BTF, as it would anyway.
        let _ = nix::unistd::chroot(BLIND_ROOT);
    }
}

/// The kernel's BTF as aya uses it: to relocate the program's field accesses, and to find
/// the iterator's attach point. Both are small digests (see `btf_digest`), or the same full
/// parse when no digest can be made.
pub struct KernelBtf {
    relocations: Btf,
    /// `None`: `relocations` is the full BTF and serves for both.
    attach: Option<Btf>,
}

impl KernelBtf {
    fn load(relocated: &[&str], attach_func: &str) -> Result<KernelBtf, BpfUnavailable> {
        let raw = RawBtf::open().map_err(|e| no_btf(e.to_string()))?;
        let digest = match btf_digest::digest(raw.bytes(), relocated, attach_func) {
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

    /// The kernel's BTF of one more attach point, `attach_func`, for a second program of an
    /// object already loaded with [`load`] (whose digest names one function): a digest of that
    /// function alone, or the whole BTF where none can be made.
    pub fn for_attach(attach_func: &str) -> Result<KernelBtf, BpfUnavailable> {
        Self::load(&[], attach_func)
    }

    /// The BTF to find the iterator's attach point in.
    pub fn attach(&self) -> &Btf {
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
