//! Load `task_sockets.bpf.o`, run it once as an anonymous `task_file` iterator and pass on its
//! output as it is read.
//!
//! Nothing is pinned: the program, its link and the iterator are file descriptors owned by
//! this function's values, so they are released when it returns, on success or on error, and
//! nothing outlives the process.

use std::error::Error;
use std::fs::File;
use std::io::{ErrorKind, Read};

use aya::programs::{Iter, ProgramError};
use aya::{Btf, Ebpf, EbpfLoader, Endianness};

use super::BTF_PATH;
use super::error::BpfUnavailable;
use super::preflight::Checked;
use super::records::RECORD_SIZE;

/// The compiled program, built from `task_sockets.bpf.c` by `bpf/build.sh`.
static OBJECT: &[u8] = include_bytes!("task_sockets.bpf.o");
/// The function in `task_sockets.bpf.c`.
const PROGRAM: &str = "task_sockets";
/// Read size: the kernel fills at most 8 pages per read, so this takes all it has.
const READ_BUFFER: usize = 64 * 1024;

/// Run the iterator, handing its output to `each` as it is read, in whole records (see
/// `records`), so the caller can work on the first processes while the kernel visits the rest.
pub fn run(_checked: Checked, mut each: impl FnMut(&[u8])) -> Result<(), BpfUnavailable> {
    let mut output = open()?;
    // The program, its BTF and aya's copy of the kernel's are released by now: the open
    // iterator holds the kernel's references, so only the output costs memory from here on.
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut filled = 0;
    loop {
        let read = match output.read(&mut buffer[filled..]) {
            Ok(0) => return Ok(()),
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
    let (mut loader, btf) = loader_and_btf()?;
    let mut ebpf = loader
        .btf(Some(&btf))
        .load(OBJECT)
        .map_err(|e| BpfUnavailable::Load(chain(&e)))?;
    open_iterator(&mut ebpf, &btf)
}

/// A loader and the parsed kernel BTF. `EbpfLoader::new` always parses the kernel's BTF for
/// itself, yet the iterator's attach point needs a parse we can borrow: the loader's copy is
/// dropped before ours is made, so only one (about 15 MiB) is alive at a time. (Parsing both
/// on two threads saved no time on two cores busy collecting sockets, and cost 11 MiB.)
fn loader_and_btf() -> Result<(EbpfLoader<'static>, Btf), BpfUnavailable> {
    let mut loader = EbpfLoader::new();
    loader.btf(None);
    Ok((loader, parse_kernel_btf()?))
}

fn parse_kernel_btf() -> Result<Btf, BpfUnavailable> {
    Btf::parse_file(BTF_PATH, Endianness::default()).map_err(|e| BpfUnavailable::NoBtf {
        path: BTF_PATH.into(),
        reason: chain(&e),
    })
}

/// Load the program as a `task_file` iterator, attach it and open one pass over it.
fn open_iterator(ebpf: &mut Ebpf, btf: &Btf) -> Result<File, BpfUnavailable> {
    let program: &mut Iter = ebpf
        .program_mut(PROGRAM)
        .ok_or_else(|| BpfUnavailable::Load(format!("no program {PROGRAM} in the object")))?
        .try_into()
        .map_err(|e: ProgramError| BpfUnavailable::Load(chain(&e)))?;
    program.load("task_file", btf).map_err(|e| match e {
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
mod tests {
    use super::*;

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
