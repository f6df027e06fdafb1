//! What `/proc/PID` says about one process: name, command line, effective uid. Read only for
//! processes that hold a shown socket.

use std::io::BufRead;
use std::path::Path;

/// The details of one process; every field is `None` when it could not be read (the process
/// exited, or the file is not readable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessDetails {
    /// Raw `comm`, without the trailing newline.
    pub name: Option<Vec<u8>>,
    /// Raw `cmdline`.
    pub cmdline: Option<Vec<u8>>,
    /// Effective uid from `status`.
    pub uid: Option<u32>,
}

/// Read `comm`, `cmdline` and `status` of `pid` under `proc_root`.
pub fn read_details(proc_root: &Path, pid: u32) -> ProcessDetails {
    let dir = proc_root.join(pid.to_string());
    ProcessDetails {
        name: std::fs::read(dir.join("comm")).ok().map(strip_newline),
        cmdline: std::fs::read(dir.join("cmdline")).ok(),
        uid: std::fs::read(dir.join("status"))
            .ok()
            .and_then(|s| effective_uid(&s[..])),
    }
}

/// `comm` ends with one newline that is not part of the name (a name may contain others).
fn strip_newline(mut name: Vec<u8>) -> Vec<u8> {
    if name.last() == Some(&b'\n') {
        name.pop();
    }
    name
}

/// The effective uid: the second number of the `Uid:` line of `status`.
pub fn effective_uid(status: impl BufRead) -> Option<u32> {
    status.split(b'\n').map_while(Result::ok).find_map(|line| {
        let rest = line.strip_prefix(b"Uid:")?;
        let text = std::str::from_utf8(rest).ok()?;
        text.split_ascii_whitespace().nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_field() {
        let status = b"Name:\tx\nUmask:\t0022\nUid:\t1000\t33\t33\t33\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(&status[..]), Some(33));
        assert_eq!(effective_uid(&b"Name:\tx\n"[..]), None);
        assert_eq!(effective_uid(&b"Uid:\tx\ty\n"[..]), None);
    }

    #[test]
    fn comm_keeps_inner_newlines_but_drops_the_last() {
        assert_eq!(strip_newline(b"a\nb\n".to_vec()), b"a\nb".to_vec());
        assert_eq!(strip_newline(b"nginx".to_vec()), b"nginx".to_vec());
    }

    #[test]
    fn details_of_this_process() {
        let me = read_details(Path::new("/proc"), std::process::id());
        assert!(me.name.is_some_and(|n| !n.is_empty()));
        assert_eq!(me.uid, Some(nix::unistd::geteuid().as_raw()));
    }

    #[test]
    fn vanished_process_gives_nothing() {
        let gone = read_details(Path::new("/proc"), u32::MAX);
        assert_eq!(gone, ProcessDetails::default());
    }
}
