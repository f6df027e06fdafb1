//! The `bpf(2)` commands the own loader makes itself: loading the object's BTF, filling and
//! freezing its global-data maps, loading a tracing program at an attach id, and creating an
//! iterator's link and its readable descriptor.
//!
//! Hand-written because no well-kept crate offers them without a parsed kernel BTF: aya 0.14
//! keeps its wrappers crate-private (`aya::sys`), rustix and nix have no `bpf(2)`, and
//! libbpf-sys would build libbpf's C sources (and libelf) into lsports for six calls. The
//! attribute layouts are not hand-written: they are `aya_obj::generated`'s bindings of the
//! kernel's uapi `bpf_attr`, the ones aya itself fills.

use std::ffi::CStr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use aya_obj::generated::{bpf_attach_type, bpf_attr, bpf_cmd, bpf_prog_type};

/// Size of the verifier's log buffer, asked for only when a load fails: what the kernel says
/// about the first problem fits in far less, and the log's end is what matters.
const LOG_SIZE: usize = 64 * 1024;
/// `log_level` 1: the verifier says why it refused a program (2 would trace every insn).
const LOG_LEVEL: u32 = 1;

/// What a program load needs besides its attach id.
#[derive(Debug)]
pub struct ProgramLoad<'a> {
    /// The program's name for `bpftool` and `/proc/PID/fdinfo` (cut to 15 bytes).
    pub name: &'a str,
    /// Its instructions, relocated (`struct bpf_insn`, 8 bytes each).
    pub insns: &'a [aya_obj::generated::bpf_insn],
    /// Its license, NUL-terminated.
    pub license: &'a CStr,
    /// The object's BTF, with `func_info` and `line_info` describing the program in it.
    pub btf: Option<BorrowedFd<'a>>,
    /// `struct bpf_func_info` records (`func_info_rec_size` bytes each).
    pub func_info: &'a [u8],
    /// Size of one func_info record (0: none).
    pub func_info_rec_size: u32,
    /// `struct bpf_line_info` records.
    pub line_info: &'a [u8],
    /// Size of one line_info record (0: none).
    pub line_info_rec_size: u32,
}

/// A failed program load: the errno, and the verifier's log where it gave one.
#[derive(Debug)]
pub struct LoadFailed {
    /// What `bpf(BPF_PROG_LOAD)` returned.
    pub error: io::Error,
    /// The verifier's last lines (empty when it said nothing).
    pub log: String,
}

/// Load `program` as an iterator (`BPF_PROG_TYPE_TRACING`, `BPF_TRACE_ITER`) attached to the
/// kernel's BTF type `attach_btf_id` (`bpf_iter_<type>`). A refusal is retried once with the
/// verifier's log asked for, so that the error says why.
pub fn load_iterator(program: &ProgramLoad<'_>, attach_btf_id: u32) -> Result<OwnedFd, LoadFailed> {
    let attr = |log: Option<&mut [u8]>| {
        // SAFETY: `bpf_attr` is a C union of integers and arrays of them: all zeroes is valid
        // (and what the kernel requires of every field not used).
        let mut attr = unsafe { mem::zeroed::<bpf_attr>() };
        // SAFETY: writing fields of the union's member for BPF_PROG_LOAD, the command it is
        // made for; every field written is a plain integer or byte array.
        let u = unsafe { &mut attr.__bindgen_anon_3 };
        for (to, from) in u.prog_name.iter_mut().zip(program.name.bytes().take(15)) {
            *to = from as libc::c_char;
        }
        u.prog_type = bpf_prog_type::BPF_PROG_TYPE_TRACING as u32;
        u.expected_attach_type = bpf_attach_type::BPF_TRACE_ITER as u32;
        u.attach_btf_id = attach_btf_id;
        u.insns = program.insns.as_ptr() as u64;
        u.insn_cnt = program.insns.len() as u32;
        u.license = program.license.as_ptr() as u64;
        if let Some(btf) = program.btf {
            u.prog_btf_fd = btf.as_raw_fd() as u32;
            if program.func_info_rec_size > 0 {
                u.func_info = program.func_info.as_ptr() as u64;
                u.func_info_cnt = count(program.func_info, program.func_info_rec_size);
                u.func_info_rec_size = program.func_info_rec_size;
            }
            if program.line_info_rec_size > 0 {
                u.line_info = program.line_info.as_ptr() as u64;
                u.line_info_cnt = count(program.line_info, program.line_info_rec_size);
                u.line_info_rec_size = program.line_info_rec_size;
            }
        }
        if let Some(log) = log {
            u.log_level = LOG_LEVEL;
            u.log_buf = log.as_mut_ptr() as u64;
            u.log_size = log.len() as u32;
        }
        attr
    };
    // SAFETY: the attribute points at `program`'s instructions, license and info records,
    // which outlive the call; BPF_PROG_LOAD returns a new descriptor.
    let error = match unsafe { fd_command(bpf_cmd::BPF_PROG_LOAD, &mut attr(None)) } {
        Ok(fd) => return Ok(fd),
        Err(error) => error,
    };
    let mut log = vec![0u8; LOG_SIZE];
    // SAFETY: as above; `log` is writable for its whole length and outlives the call.
    let error = match unsafe { fd_command(bpf_cmd::BPF_PROG_LOAD, &mut attr(Some(&mut log))) } {
        // Refused without a log, accepted with one: take it (it is the same program).
        Ok(fd) => return Ok(fd),
        // ENOSPC: the log did not fit; its beginning is there, which is enough to say why.
        Err(again) if again.raw_os_error() == Some(libc::ENOSPC) => error,
        Err(again) => again,
    };
    Err(LoadFailed {
        error,
        log: log_tail(&log),
    })
}

/// How many records of `rec_size` bytes `bytes` holds.
fn count(bytes: &[u8], rec_size: u32) -> u32 {
    (bytes.len() / rec_size.max(1) as usize) as u32
}

/// The verifier's last few lines, printable, on one line.
fn log_tail(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" / ");
    tail.chars().filter(|c| !c.is_control()).collect()
}

/// Load `btf` (the object's own, fixed up for this kernel) and return its descriptor.
pub fn load_btf(btf: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: zeroes are valid for the union (see `load_iterator`).
    let mut attr = unsafe { mem::zeroed::<bpf_attr>() };
    // SAFETY: the member for BPF_BTF_LOAD; plain integers.
    let u = unsafe { &mut attr.__bindgen_anon_7 };
    u.btf = btf.as_ptr() as u64;
    u.btf_size =
        u32::try_from(btf.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `btf` outlives the call; BPF_BTF_LOAD returns a new descriptor.
    unsafe { fd_command(bpf_cmd::BPF_BTF_LOAD, &mut attr) }
}

/// Write `value` as element 0 of the array map `map` (a global-data section's one element).
pub fn set_element_zero(map: BorrowedFd<'_>, value: &mut [u8]) -> io::Result<()> {
    let key = 0u32;
    // SAFETY: zeroes are valid for the union (see `load_iterator`).
    let mut attr = unsafe { mem::zeroed::<bpf_attr>() };
    // SAFETY: the member for BPF_MAP_UPDATE_ELEM; plain integers.
    let u = unsafe { &mut attr.__bindgen_anon_2 };
    u.map_fd = map.as_raw_fd() as u32;
    u.key = (&raw const key) as u64;
    u.__bindgen_anon_1.value = value.as_mut_ptr() as u64;
    // SAFETY: `key` and `value` outlive the call, and `value` is the map's value size (the
    // section's size, which the map was created with). The command returns no descriptor.
    unsafe { command(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut attr) }.map(drop)
}

/// Make `map` read-only to user space, so the verifier may treat its contents as constants
/// (`.rodata`: the `const volatile` globals).
pub fn freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: zeroes are valid for the union (see `load_iterator`).
    let mut attr = unsafe { mem::zeroed::<bpf_attr>() };
    // The member for BPF_MAP_FREEZE (only `map_fd` is read).
    attr.__bindgen_anon_2.map_fd = map.as_raw_fd() as u32;
    // SAFETY: no pointer is passed; the command returns no descriptor.
    unsafe { command(bpf_cmd::BPF_MAP_FREEZE, &mut attr) }.map(drop)
}

/// Attach the iterator program `program`: the link each [`open_iterator`] reads a pass of.
pub fn iterator_link(program: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: zeroes are valid for the union (see `load_iterator`).
    let mut attr = unsafe { mem::zeroed::<bpf_attr>() };
    // The member for BPF_LINK_CREATE. An iterator takes no target fd (the kernel refuses one)
    // and, for the task, tcp and udp iterators, no `iter_info`: a whole-system walk.
    attr.link_create.__bindgen_anon_1.prog_fd = program.as_raw_fd() as u32;
    attr.link_create.attach_type = bpf_attach_type::BPF_TRACE_ITER as u32;
    // SAFETY: no pointer is passed; BPF_LINK_CREATE returns a new descriptor.
    unsafe { fd_command(bpf_cmd::BPF_LINK_CREATE, &mut attr) }
}

/// A new pass of the iterator `link`: reading the descriptor runs the program.
pub fn open_iterator(link: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: zeroes are valid for the union (see `load_iterator`).
    let mut attr = unsafe { mem::zeroed::<bpf_attr>() };
    // The member for BPF_ITER_CREATE.
    attr.iter_create.link_fd = link.as_raw_fd() as u32;
    // SAFETY: no pointer is passed; BPF_ITER_CREATE returns a new descriptor.
    unsafe { fd_command(bpf_cmd::BPF_ITER_CREATE, &mut attr) }
}

/// `bpf(cmd, attr)` for a command that returns a new file descriptor, owned from here on.
///
/// # Safety
/// Every pointer in `attr` must be valid for what `cmd` reads or writes through it, for the
/// call's duration, and `cmd` must return a new descriptor on success.
unsafe fn fd_command(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    // SAFETY: passed on from the caller.
    let fd = unsafe { command(cmd, attr) }?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just made `fd` for this process and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bpf(cmd, attr)`, retried when a signal interrupted it.
///
/// # Safety
/// Every pointer in `attr` must be valid for what `cmd` reads or writes through it, for the
/// call's duration.
unsafe fn command(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<libc::c_long> {
    loop {
        // SAFETY: `attr` is a whole `bpf_attr`, its size passed along; the pointers in it are
        // the caller's to keep valid.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd as libc::c_int,
                std::ptr::from_mut(attr),
                mem::size_of::<bpf_attr>() as libc::c_uint,
            )
        };
        if ret >= 0 {
            return Ok(ret);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_tail_is_the_last_lines_on_one_printable_line() {
        let mut log = b"0: R1=ctx\n\n1: (85) call bpf_loop#181\nunknown func bpf_loop#181\n\x1b[0mprocessed 2 insns\n".to_vec();
        log.extend([0; 16]);
        assert_eq!(
            log_tail(&log),
            "1: (85) call bpf_loop#181 / unknown func bpf_loop#181 / [0mprocessed 2 insns"
        );
        assert_eq!(log_tail(&[0; 8]), "");
    }
}
