//! Which interface this host sends a published port's target through: the longest prefix of
//! the main routing table that holds the target (`/proc/PID/net/route` for IPv4,
//! `ipv6_route` for IPv6, of the namespace the rules are read in). Docker's forward rules
//! match it (`-o docker0`).

use std::net::IpAddr;

/// The interface of the longest route to `target` in `route` (IPv4) or `ipv6_route` (IPv6),
/// as those files read; `None` when no route holds it.
pub fn oif(target: IpAddr, route: &[u8], ipv6_route: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(match target {
        IpAddr::V4(_) => route,
        IpAddr::V6(_) => ipv6_route,
    });
    let mut best: Option<(u32, String)> = None;
    for line in text.lines() {
        let Some((prefix, iface)) = (match target {
            IpAddr::V4(a) => v4_route(line, u32::from(a)),
            IpAddr::V6(a) => v6_route(line, u128::from(a)),
        }) else {
            continue;
        };
        if best.as_ref().is_none_or(|(len, _)| prefix > *len) {
            best = Some((prefix, iface));
        }
    }
    best.map(|(_, iface)| iface)
}

/// `Iface Destination Gateway Flags RefCnt Use Metric Mask …` (hex, in host byte order as
/// the kernel prints them): the prefix length, if the route holds `addr`.
fn v4_route(line: &str, addr: u32) -> Option<(u32, String)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (iface, dest, mask) = (f.first()?, f.get(1)?, f.get(7)?);
    let dest = u32::from_be(u32::from_str_radix(dest, 16).ok()?.swap_bytes().to_be());
    let mask = u32::from_be(u32::from_str_radix(mask, 16).ok()?.swap_bytes().to_be());
    // The kernel prints the address as the bytes in memory read as a native integer.
    let (dest, mask) = if cfg!(target_endian = "little") {
        (dest, mask)
    } else {
        (dest.swap_bytes(), mask.swap_bytes())
    };
    (addr & mask == dest && mask.leading_ones() + mask.trailing_zeros() == 32)
        .then(|| (mask.leading_ones(), iface.to_string()))
}

/// `DEST PLEN SRC SRCPLEN NEXTHOP METRIC REFCNT USE FLAGS IFACE` (hex).
fn v6_route(line: &str, addr: u128) -> Option<(u32, String)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (dest, plen, iface) = (f.first()?, f.get(1)?, f.get(9)?);
    let dest = u128::from_str_radix(dest, 16).ok()?;
    let plen = u32::from_str_radix(plen, 16).ok()?.min(128);
    let mask = if plen == 0 {
        0
    } else {
        u128::MAX << (128 - plen)
    };
    (addr & mask == dest && *iface != "lo").then(|| (plen, iface.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_route_names_the_interface() {
        let route =
            b"Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let v6 = b"fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 br-1\n\
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n";
        let at = |a: &str| oif(a.parse().unwrap(), route, v6);
        assert_eq!(at("172.17.0.2").as_deref(), Some("docker0"));
        assert_eq!(at("198.51.100.7").as_deref(), Some("eth0"));
        assert_eq!(at("fd00::2").as_deref(), Some("br-1"));
        assert_eq!(at("2001:db8::1").as_deref(), Some("eth0"));
        assert_eq!(oif("10.0.0.1".parse().unwrap(), b"", b""), None);
    }
}
