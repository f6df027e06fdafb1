//! Load `task_sockets.bpf.o`, run it once as an anonymous `task_file` iterator and pass on its
//! output as it is read.
//!
//! Nothing is pinned: the program, its link and the iterator are file descriptors owned by
//! this function's values, so they are released when it returns, on success or on error, and
//! nothing outlives the process.

use std::error::Error;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::sync::mpsc::Receiver;

use aya::programs::{Iter, ProgramError};
use aya::{Btf, Ebpf};

use super::aya_workaround;
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
/// The iterator type, as the program's section names it (`SEC("iter/task_file")`).
const ITER_TYPE: &str = "task_file";

/// The kernel function whose BTF id is the attach point: aya looks it up as `bpf_iter_` and
/// the iterator type.
pub(crate) fn iter_func() -> String {
    format!("bpf_iter_{ITER_TYPE}")
}

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
    let (mut ebpf, btf) = aya_workaround::load(OBJECT, RELOCATED_STRUCTS, &iter_func())?;
    crate::sys::timing::mark("bpf: program loaded");
    let opened = open_iterator(&mut ebpf, btf.attach());
    crate::sys::timing::mark("bpf: iterator opened");
    opened
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
    fn the_program_is_the_iterator_type_it_is_loaded_as() {
        // `Iter::load(ITER_TYPE, ..)` attaches to `bpf_iter_<ITER_TYPE>`, whatever the program
        // was written for: the object's section must name the same type, or the kernel would
        // run it over other objects (the live-BTF test in `btf_digest` checks the function).
        let section = format!("\0iter/{ITER_TYPE}\0");
        assert!(
            OBJECT
                .windows(section.len())
                .any(|name| name == section.as_bytes()),
            "no section iter/{ITER_TYPE} in task_sockets.bpf.o"
        );
        assert_eq!(iter_func(), "bpf_iter_task_file");
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
