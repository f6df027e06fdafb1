//! The ephemeral port range, and the rule that keeps client noise out of audits.
//!
//! A resolver, a browser or an NTP client that sends UDP without `connect()` holds an
//! unconnected UDP socket on a port the kernel picked from `net.ipv4.ip_local_port_range`. To
//! the kernel it is indistinguishable from a UDP service (both are bound and unconnected), but
//! its port changes every time, so auditing it by port would flap. The rule: a UDP socket on a
//! port in the ephemeral range is a *client socket*; audits and baselines recognise it by
//! program and user, whatever its port, and never report it missing; `--ignore-ephemeral`
//! leaves such sockets out of any listing (`Filter::ephemeral`), so that a Prometheus series or
//! a watch event is not made per client port. TCP is not affected: a TCP socket in LISTEN
//! accepts connections whatever its port.

use std::ops::RangeInclusive;
use std::path::Path;

use crate::model::{Protocol, Socket};
use crate::sys::procroot::ProcRoot;

/// The kernel's default `ip_local_port_range`, used when the live value cannot be read (a
/// snapshot does not record it).
pub const LINUX_DEFAULT: RangeInclusive<u16> = 32768..=60999;

/// The range the kernel picks ephemeral ports from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EphemeralPorts {
    range: RangeInclusive<u16>,
}

impl Default for EphemeralPorts {
    fn default() -> Self {
        EphemeralPorts {
            range: LINUX_DEFAULT,
        }
    }
}

impl EphemeralPorts {
    /// The range of the network namespace whose proc tree is `proc_root`
    /// (`sys/net/ipv4/ip_local_port_range`, which also governs IPv6), or the kernel default
    /// when that is no readable regular file under the root.
    pub fn read(proc_root: &Path) -> EphemeralPorts {
        ProcRoot::open(proc_root)
            .and_then(|root| root.read_file("sys/net/ipv4/ip_local_port_range"))
            .ok()
            .and_then(|bytes| Self::parse(std::str::from_utf8(&bytes).ok()?))
            .unwrap_or_default()
    }

    /// Parse the file's `LOW<tab>HIGH` line.
    pub fn parse(text: &str) -> Option<EphemeralPorts> {
        let mut numbers = text.split_ascii_whitespace().map(str::parse::<u16>);
        let (low, high) = (numbers.next()?.ok()?, numbers.next()?.ok()?);
        (low <= high).then_some(EphemeralPorts { range: low..=high })
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        self.range.contains(&port)
    }

    /// Whether `socket` is a client socket by the rule above: UDP, on an ephemeral port.
    pub fn is_client_udp(&self, socket: &Socket) -> bool {
        socket.protocol == Protocol::Udp && self.contains(socket.local_port)
    }

    /// The range as the kernel file writes it, for messages: `32768-60999`.
    pub fn describe(&self) -> String {
        format!("{}-{}", self.range.start(), self.range.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_file_parses() {
        let ports = EphemeralPorts::parse("32768\t60999\n").unwrap();
        assert!(ports.contains(32768) && ports.contains(60999));
        assert!(!ports.contains(32767) && !ports.contains(61000));
        assert_eq!(ports.describe(), "32768-60999");
        assert_eq!(
            EphemeralPorts::parse("1024 1024").unwrap().describe(),
            "1024-1024"
        );
    }

    #[test]
    fn damaged_files_fall_back_to_the_default() {
        for text in ["", "x y", "60999 32768", "1"] {
            assert_eq!(EphemeralPorts::parse(text), None, "{text:?}");
        }
        let missing = EphemeralPorts::read(Path::new("/nonexistent-lsports"));
        assert_eq!(missing, EphemeralPorts::default());
    }
}
