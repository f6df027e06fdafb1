//! How the allocator holds memory: large blocks each in their own mapping, so that what the
//! run frees goes back to the kernel at once, and one arena for every thread, so that what
//! one thread frees serves the next allocation of any other.
//!
//! glibc's `malloc` starts by mapping every block of 128 KiB or more on its own, but raises
//! that threshold to the size of each such block freed (up to 32 MiB), after which large
//! blocks come from an arena, whose freed memory stays with the process. lsports frees large
//! blocks while it runs: the parsed kernel BTF once the BPF iterator is loaded, each netlink
//! dump's vector once merged, the sockets once turned into entries. With the threshold
//! raised, the memory they held is still counted when the entries and the table are made:
//! measured in the large world (25,000 sockets), the peak RSS of `lsports -ltnup` was about
//! 1.5 MiB higher (14.7 against 13.3 MiB). A fixed threshold also makes a large vector's
//! `shrink_to_fit` an `mremap` that releases the tail, which the entries' builder counts on.
//!
//! glibc also gives each thread that allocates an arena of its own (up to eight per core):
//! the sockets' dump threads, the BPF loader, the walk's and the table's workers. What a
//! thread frees stays in its arena, where the main thread, which builds the entries, cannot
//! reuse it. One arena for all: measured in the large world (world.py `--time`, five
//! interleaved runs, load average 8 to 13), the peak RSS of `lsports -ltnup` went from 14.5
//! to 13.8 MiB (BPF) and from 13.1 to 12.6 MiB (walk), with times unchanged within the
//! noise. Small blocks still come from each thread's own cache without taking the lock.

/// Blocks at least this large get a mapping of their own: glibc's starting threshold.
const OWN_MAPPING_FROM: usize = 128 * 1024;
/// Arenas at most: the main one, shared by every thread.
const ARENAS: libc::c_int = 1;

/// Keep large blocks in their own mappings, and every thread in one arena, for the rest of
/// the run. Call it first thing, before any thread starts; with an allocator other than
/// glibc's it does nothing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes a setting of the allocator, under its own lock, and
        // no crate wraps it; a refusal (0) only leaves the default, which is no harm.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_FROM as libc::c_int);
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}
