//! The socket-activation variables systemd sets for a service (`sd_listen_fds(3)`):
//! `LISTEN_PID` (the pid they are meant for), `LISTEN_FDS` (how many fds, from fd 3 on) and
//! `LISTEN_FDNAMES` (their names, `:`-separated; systemd 227 and later), read from
//! `/proc/PID/environ`.
//!
//! `environ` is the environment the process was started with, chosen by whoever started it,
//! so it is bounded hostile input: read under the proc root without following a link, at
//! most [`ENVIRON_CAP`] bytes (an entry cut by the cap is dropped), and readable only by root
//! and the process's owner (anything else is no evidence, not an error).

use std::io::{self, Read};

use crate::sys::procroot::ProcRoot;

/// How much of an `environ` is read: far more than a service's environment, far less than
/// the 1/4 of the stack limit a process may be given.
pub const ENVIRON_CAP: u64 = 256 << 10;
/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: u32 = 3;
/// More fds than this are not believed (systemd caps its own at `INT_MAX - 3`, but no
/// service gets near it; this keeps the name list's size sane).
const MAX_LISTEN_FDS: u32 = 1 << 16;

/// The activation variables of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenEnv {
    /// `LISTEN_PID`, if it was set and a number.
    pub pid: Option<u32>,
    /// `LISTEN_FDS`.
    pub fds: u32,
    /// `LISTEN_FDNAMES`, split at `:` (raw bytes); `None` if unset, or if it has not
    /// exactly one name per fd (`sd_listen_fds_with_names` refuses that too).
    pub names: Option<Vec<Vec<u8>>>,
}

impl ListenEnv {
    /// The variables in an `environ` (`KEY=VALUE` entries, each ended by a NUL; a last one
    /// without its NUL was cut short and is dropped); `None` without a usable `LISTEN_FDS`.
    pub fn parse(environ: &[u8]) -> Option<ListenEnv> {
        let mut entries: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
        entries.pop(); // after the last NUL: empty, or an entry cut short
        let value = |key: &[u8]| {
            // The first, as getenv (and so sd_listen_fds) finds it.
            entries
                .iter()
                .find_map(|e| e.strip_prefix(key)?.strip_prefix(b"="))
        };
        let fds = number(value(b"LISTEN_FDS")?).filter(|&n| n > 0 && n <= MAX_LISTEN_FDS)?;
        let names = value(b"LISTEN_FDNAMES")
            .map(|v| {
                v.split(|&b| b == b':')
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .filter(|names| names.len() == fds as usize);
        Some(ListenEnv {
            pid: value(b"LISTEN_PID").and_then(number),
            fds,
            names,
        })
    }

    /// Whether these variables give `pid` its fd `fd`: they are meant for `pid` (a child
    /// that inherited them did not get the fds) and `fd` is in `3..3+LISTEN_FDS`.
    pub fn passes(&self, pid: u32, fd: u32) -> bool {
        self.pid == Some(pid) && self.index(fd).is_some()
    }

    /// The name of fd `fd`, if it is one of the passed fds and the names are known.
    pub fn name(&self, fd: u32) -> Option<&[u8]> {
        let index = self.index(fd)?;
        self.names.as_ref()?.get(index).map(Vec::as_slice)
    }

    fn index(&self, fd: u32) -> Option<usize> {
        let index = fd.checked_sub(LISTEN_FDS_START)?;
        (index < self.fds).then_some(index as usize)
    }
}

/// A decimal number as systemd writes one (`safe_atou`, without a sign or spaces).
fn number(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The activation variables of `pid`, read from its `environ` under `proc` (see the module
/// docs). `Ok(None)` if it has none; an error if the file could not be read.
pub fn read(proc: &ProcRoot, pid: u32) -> io::Result<Option<ListenEnv>> {
    let dir = proc.open_dir_path(pid.to_string().as_str())?;
    let file = proc.open_file_in(Some(std::os::fd::AsFd::as_fd(&dir)), "environ")?;
    let mut data = Vec::new();
    file.take(ENVIRON_CAP).read_to_end(&mut data)?;
    Ok(ListenEnv::parse(&data))
}
