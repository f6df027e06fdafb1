//! How many TCP and UDP sockets a network namespace's kernel counts as hashed: the `inuse`
//! figures of its `sockstat` and `sockstat6`, which the completeness gate ([`super::gate`])
//! holds the BPF walk's sockets against.
//!
//! What the kernel counts (`sock_prot_inuse_add` callers; `net/ipv4/proc.c`,
//! `net/ipv6/proc.c`), per namespace and per protocol structure:
//! - `TCP: inuse` (`tcp_prot`, AF_INET) and `TCP6: inuse` (`tcpv6_prot`, AF_INET6): full
//!   sockets in the listening hash or the established hash (`inet_hash`,
//!   `inet_ehash_nolisten`; taken out by `inet_unhash` and by the TIME_WAIT hash dance), so
//!   every state but CLOSE; not TIME_WAIT (`tw`) or request socks (NEW_SYN_RECV);
//! - `UDP: inuse` (`udp_prot`) and `UDP6: inuse` (`udpv6_prot`): sockets in the UDP table,
//!   that is bound ones (`udp_lib_get_port`, `udp_lib_unhash`);
//! - UDP-Lite, raw, MPTCP and ping sockets have lines (or structures) of their own, not these.
//!
//! The counts are per-CPU sums, exact when nothing changes while they are read: a caller reads
//! them before and after what it compares them with, and trusts only equal readings.

use std::io;
use std::path::Path;

/// The hashed TCP and UDP sockets of one namespace, per family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `TCP: inuse`: IPv4 TCP sockets in any state but CLOSE, TIME_WAIT and NEW_SYN_RECV.
    pub tcp4: u64,
    /// `UDP: inuse`: bound IPv4 UDP sockets.
    pub udp4: u64,
    /// `TCP6: inuse`, as `tcp4` for IPv6.
    pub tcp6: u64,
    /// `UDP6: inuse`, as `udp4` for IPv6.
    pub udp6: u64,
}

impl Counts {
    /// What `self` counts beyond `less`, kind by kind; `None` where `less` counts more.
    pub fn beyond(&self, less: &Counts) -> Option<Counts> {
        Some(Counts {
            tcp4: self.tcp4.checked_sub(less.tcp4)?,
            udp4: self.udp4.checked_sub(less.udp4)?,
            tcp6: self.tcp6.checked_sub(less.tcp6)?,
            udp6: self.udp6.checked_sub(less.udp6)?,
        })
    }
}

/// Why a namespace's counts could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CountsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The file was read but a needed line is missing or malformed.
    #[error("{path} has no usable `{line}: inuse N` line")]
    Unparsed {
        /// The file.
        path: String,
        /// The line's label (`TCP`, `UDP6`, ...).
        line: &'static str,
    },
}

/// The counts in `net`, a namespace's `net` directory (`/proc/PID/net`, or
/// `/proc/thread-self/net` of a thread that entered it). A missing `sockstat6` (IPv6 not
/// built or disabled) counts no IPv6 socket: none can exist then.
pub fn read(net: &Path) -> Result<Counts, CountsError> {
    let v4 = read_file(&net.join("sockstat"))?;
    let (tcp4, udp4) = (inuse(&v4, "TCP")?, inuse(&v4, "UDP")?);
    let (tcp6, udp6) = match read_file(&net.join("sockstat6")) {
        Ok(v6) => (inuse(&v6, "TCP6")?, inuse(&v6, "UDP6")?),
        Err(CountsError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => (0, 0),
        Err(e) => return Err(e),
    };
    Ok(Counts {
        tcp4,
        udp4,
        tcp6,
        udp6,
    })
}

/// A file's bytes and its path, for the messages.
struct Text {
    path: String,
    bytes: Vec<u8>,
}

fn read_file(path: &Path) -> Result<Text, CountsError> {
    let path = path.display().to_string();
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Text { path, bytes }),
        Err(source) => Err(CountsError::Read { path, source }),
    }
}

/// The `inuse` figure of the line labelled `label` (`TCP: inuse 5 orphan 0 ...`).
fn inuse(text: &Text, label: &'static str) -> Result<u64, CountsError> {
    let unparsed = || CountsError::Unparsed {
        path: text.path.clone(),
        line: label,
    };
    let line = text
        .bytes
        .split(|&b| b == b'\n')
        .find(|line| {
            line.strip_prefix(label.as_bytes())
                .is_some_and(|r| r.starts_with(b":"))
        })
        .ok_or_else(unparsed)?;
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let value = words
        .position(|w| w == b"inuse")
        .and_then(|_| words.next())
        .and_then(|w| std::str::from_utf8(w).ok())
        .and_then(|w| w.parse().ok());
    value.ok_or_else(unparsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCKSTAT: &str = "sockets: used 211\nTCP: inuse 9 orphan 1 tw 19 alloc 47 mem 22\n\
                            UDP: inuse 2 mem 0\nUDPLITE: inuse 7\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";
    const SOCKSTAT6: &str = "TCP6: inuse 4\nUDP6: inuse 3\nUDPLITE6: inuse 5\nRAW6: inuse 1\n\
                             FRAG6: inuse 0 memory 0\n";

    #[test]
    fn inuse_is_read_per_protocol_and_family_and_lite_and_raw_are_not_mistaken_for_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sockstat"), SOCKSTAT).unwrap();
        std::fs::write(dir.path().join("sockstat6"), SOCKSTAT6).unwrap();
        let counts = read(dir.path()).unwrap();
        assert_eq!(
            counts,
            Counts {
                tcp4: 9,
                udp4: 2,
                tcp6: 4,
                udp6: 3
            }
        );
    }

    #[test]
    fn without_ipv6_there_are_no_ipv6_sockets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sockstat"), SOCKSTAT).unwrap();
        let counts = read(dir.path()).unwrap();
        assert_eq!((counts.tcp6, counts.udp6), (0, 0));
    }

    #[test]
    fn a_missing_or_malformed_line_is_an_error_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read ") && err.contains("sockstat"),
            "{err}"
        );
        std::fs::write(dir.path().join("sockstat"), "TCP: inuse x\nUDP: inuse 1\n").unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.ends_with("has no usable `TCP: inuse N` line"), "{err}");
        std::fs::write(
            dir.path().join("sockstat"),
            "TCP: inuse 1\nUDPLITE: inuse 1\n",
        )
        .unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("`UDP: inuse N`"), "UDPLITE is not UDP: {err}");
    }

    #[test]
    fn the_live_kernel_files_parse() {
        // Every kernel since 2.6 writes these lines; a change of format must not pass silently.
        read(Path::new("/proc/self/net")).unwrap();
    }
}
