//! The completeness gate: whether the sockets the BPF fd walk saw in a namespace are all of
//! that namespace's TCP and UDP sockets, so that its sock_diag dump can be skipped.
//!
//! The walk sees only sockets some process holds. A socket nobody holds (a kernel socket:
//! WireGuard's or VXLAN's UDP port, nfsd's listener, MPTCP subflows; an orphaned TCP
//! connection) is in the namespace's hash tables and its `sockstat` counts, but in no fd
//! table. So the walk's distinct hashed sockets are tallied per family and protocol as the
//! kernel counts them ([`super::sockstat`]) and compared with the counts read before and after
//! the walk: equal everywhere, the walk saw every socket; anything else (a kernel socket, a
//! socket opened or closed meanwhile, counts unreadable) and the namespace is dumped.

use std::fmt;

use super::sockstat::{Counts, CountsError};
use crate::model::{Family, Protocol, Socket, SocketState};

/// The walk's sockets of one namespace as the kernel's `inuse` counts them. `sockets` must be
/// distinct (one per socket, however many fds hold it).
pub fn tally<'a>(sockets: impl IntoIterator<Item = &'a Socket>) -> Counts {
    let mut counts = Counts::default();
    for socket in sockets {
        count(&mut counts, socket);
    }
    counts
}

/// Add `socket` to `counts` if the kernel counts it ([`hashed`]).
pub fn count(counts: &mut Counts, socket: &Socket) {
    if !hashed(socket) {
        return;
    }
    let slot = match (socket.protocol, socket.family) {
        (Protocol::Tcp, Family::Ipv4) => &mut counts.tcp4,
        (Protocol::Udp, Family::Ipv4) => &mut counts.udp4,
        (Protocol::Tcp, Family::Ipv6) => &mut counts.tcp6,
        (Protocol::Udp, Family::Ipv6) => &mut counts.udp6,
    };
    *slot += 1;
}

/// Whether the kernel counts `socket` in `inuse`: a TCP socket in any state but CLOSE (a
/// socket made, or only bound, is in no hash; TIME_WAIT and request socks are no process's),
/// a UDP socket once bound (a port of 0 is no entry of the UDP table).
pub fn hashed(socket: &Socket) -> bool {
    match socket.protocol {
        Protocol::Tcp => socket.state != SocketState::CLOSE,
        Protocol::Udp => socket.local_port != 0,
    }
}

/// Why a namespace's dump could not be skipped.
#[derive(Debug)]
pub enum Why {
    /// Its counts could not be read.
    Unreadable(CountsError),
    /// The counts before and after the walk differ: sockets came or went meanwhile.
    Churn,
    /// The kernel counts sockets the walk did not see (held by no process) or the other way.
    Mismatch {
        /// What the kernel counts.
        kernel: Counts,
        /// What the walk saw.
        walked: Counts,
    },
    /// No way to read its counts: no process lives in it and it was not entered.
    NoCounts,
    /// A socket in it is bound to a device, whose name only a thread inside it can look up.
    Device,
}

impl Why {
    /// A short reason, the same for every namespace it applies to (the `-v` line groups by
    /// it).
    pub fn reason(&self) -> &'static str {
        match self {
            Why::Unreadable(_) => "their socket counts could not be read",
            Why::Churn => "their sockets changed while they were read",
            Why::Mismatch { .. } => {
                "they hold sockets no process holds (kernel sockets, orphaned connections)"
            }
            Why::NoCounts => "no process lives in them to read their socket counts from",
            Why::Device => "a socket in them is bound to a device, named only from inside",
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Unreadable(e) => write!(f, "{}: {e}", self.reason()),
            Why::Mismatch { kernel, walked } => write!(
                f,
                "the kernel counts {} TCP, {} UDP, {} TCP6, {} UDP6 sockets, processes hold {}, \
                 {}, {}, {}",
                kernel.tcp4,
                kernel.udp4,
                kernel.tcp6,
                kernel.udp6,
                walked.tcp4,
                walked.udp4,
                walked.tcp6,
                walked.udp6
            ),
            _ => f.write_str(self.reason()),
        }
    }
}

/// Whether the walk's tally `walked` is every socket of a namespace whose counts were read as
/// `before` (before the walk began) and `after` (after it ended)
/// (either `Err` when they could not be read).
pub fn judge(
    before: Result<Counts, Why>,
    walked: Counts,
    after: Result<Counts, Why>,
) -> Result<(), Why> {
    let (before, after) = (before?, after?);
    if before != after {
        return Err(Why::Churn);
    }
    if before != walked {
        return Err(Why::Mismatch {
            kernel: before,
            walked,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A socket of `protocol` bound to `addr`:`port` in `state`.
    pub(crate) fn socket(protocol: Protocol, addr: &str, port: u16, state: SocketState) -> Socket {
        Socket {
            state,
            ..Socket::listening(protocol, addr, port)
        }
    }

    #[test]
    fn the_tally_counts_what_the_kernel_counts() {
        let sockets = [
            socket(Protocol::Tcp, "0.0.0.0", 22, SocketState::LISTEN),
            socket(Protocol::Tcp, "10.0.0.1", 22, SocketState::ESTABLISHED),
            // Made or only bound: in no hash table.
            socket(Protocol::Tcp, "0.0.0.0", 0, SocketState::CLOSE),
            socket(Protocol::Tcp, "::", 80, SocketState::LISTEN),
            socket(Protocol::Udp, "0.0.0.0", 53, SocketState::CLOSE),
            socket(Protocol::Udp, "10.0.0.1", 4000, SocketState::ESTABLISHED),
            // Not bound: not in the UDP table.
            socket(Protocol::Udp, "::", 0, SocketState::CLOSE),
            socket(Protocol::Udp, "::", 547, SocketState::CLOSE),
        ];
        let want = Counts {
            tcp4: 2,
            udp4: 2,
            tcp6: 1,
            udp6: 1,
        };
        assert_eq!(tally(&sockets), want);
    }

    #[test]
    fn only_equal_counts_before_walk_and_after_pass_the_gate() {
        let c = |tcp4| Counts {
            tcp4,
            ..Counts::default()
        };
        assert!(judge(Ok(c(3)), c(3), Ok(c(3))).is_ok());
        // A kernel socket: counted, held by nobody.
        let why = judge(Ok(c(4)), c(3), Ok(c(4))).unwrap_err();
        assert!(matches!(why, Why::Mismatch { .. }), "{why}");
        assert!(
            why.to_string().starts_with("the kernel counts 4 TCP"),
            "{why}"
        );
        // A socket opened while the walk ran, and one closed: churn, whatever the walk saw.
        for walked in [3, 4] {
            let why = judge(Ok(c(3)), c(walked), Ok(c(4))).unwrap_err();
            assert!(matches!(why, Why::Churn), "{why}");
        }
        let gone = CountsError::Read {
            path: "/proc/7/net/sockstat".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let why = judge(Ok(c(3)), c(3), Err(Why::Unreadable(gone))).unwrap_err();
        assert!(why.to_string().contains("/proc/7/net/sockstat"), "{why}");
    }
}
