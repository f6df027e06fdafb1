//! Sets of numbers as sorted, disjoint, inclusive ranges: the one shape every value a rule
//! matches on takes (addresses as `u128`, ports, protocol numbers, conntrack states, marks),
//! so that "which source addresses still reach this rule" is exact set arithmetic rather than
//! a list of strings compared by text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Family;

/// A set of `u128` values, kept as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct RangeSet {
    ranges: Vec<(u128, u128)>,
}

impl RangeSet {
    /// The empty set.
    pub fn empty() -> RangeSet {
        RangeSet { ranges: Vec::new() }
    }

    /// Every value from 0 to `max`.
    pub fn upto(max: u128) -> RangeSet {
        RangeSet::range(0, max)
    }

    /// One value.
    pub fn point(v: u128) -> RangeSet {
        RangeSet::range(v, v)
    }

    /// The values `lo..=hi` (empty when `lo > hi`).
    pub fn range(lo: u128, hi: u128) -> RangeSet {
        let ranges = if lo <= hi { vec![(lo, hi)] } else { Vec::new() };
        RangeSet { ranges }
    }

    /// The union of any ranges, in any order, overlapping or not.
    pub fn from_ranges(mut parts: Vec<(u128, u128)>) -> RangeSet {
        parts.retain(|(lo, hi)| lo <= hi);
        parts.sort_unstable();
        let mut ranges: Vec<(u128, u128)> = Vec::with_capacity(parts.len());
        for (lo, hi) in parts {
            match ranges.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => ranges.push((lo, hi)),
            }
        }
        RangeSet { ranges }
    }

    /// Whether no value is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `v` is in the set (binary search: sets from a 1,000-element rule stay cheap).
    pub fn contains(&self, v: u128) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < v);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= v)
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    /// The values in either set.
    pub fn union(&self, other: &RangeSet) -> RangeSet {
        RangeSet::from_ranges(self.ranges.iter().chain(&other.ranges).copied().collect())
    }

    /// The values in both sets.
    pub fn intersect(&self, other: &RangeSet) -> RangeSet {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
            if lo <= hi {
                out.push((lo, hi));
            }
            if a.1 < b.1 { i += 1 } else { j += 1 }
        }
        RangeSet { ranges: out }
    }

    /// The values in `self` and not in `other`.
    pub fn subtract(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        for &(lo, hi) in &self.ranges {
            let mut start = lo;
            let mut open = true;
            for &(olo, ohi) in &other.ranges {
                if ohi < start || olo > hi {
                    continue;
                }
                if olo > start {
                    out.push((start, olo - 1));
                }
                if ohi >= hi {
                    open = false;
                    break;
                }
                start = ohi + 1;
            }
            if open {
                out.push((start, hi));
            }
        }
        RangeSet { ranges: out }
    }

    /// Every range's two ends, and the value after each (the points where a match on this
    /// set can change its answer).
    pub fn boundaries(&self) -> impl Iterator<Item = u128> + '_ {
        self.ranges
            .iter()
            .flat_map(|&(lo, hi)| [lo, hi.saturating_add(1)])
    }
}

/// The largest address of `family` as a number.
pub fn addr_max(family: Family) -> u128 {
    match family {
        Family::Ipv4 => u32::MAX as u128,
        Family::Ipv6 => u128::MAX,
    }
}

/// An address as a number of its family's space.
pub fn addr_num(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address `n` of `family`.
pub fn num_addr(family: Family, n: u128) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::from(n as u32)),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// The addresses `addr/len` as a range (`len` clamped to the family's width).
pub fn prefix_range(addr: IpAddr, len: u8) -> (u128, u128) {
    let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
    let host = bits - u32::from(len).min(bits);
    let n = addr_num(addr);
    if host == 0 {
        return (n, n);
    }
    let mask = if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    };
    (n & !mask, n | mask)
}

/// A set of addresses written as CIDR prefixes (`192.0.2.0/24`, `2001:db8::1`), at most
/// `limit` of them before the rest is summarised as "… and N more".
pub fn describe_addrs(family: Family, set: &RangeSet, limit: usize) -> String {
    let mut parts = Vec::new();
    for &(lo, hi) in set.ranges() {
        parts.extend(cidrs(family, lo, hi));
    }
    let more = parts.len().saturating_sub(limit);
    parts.truncate(limit);
    let mut text = parts.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    if parts.len() > 1 || more > 0 {
        text = format!("{{ {text} }}");
    }
    text
}

/// The CIDR prefixes that exactly cover `lo..=hi`.
fn cidrs(family: Family, mut lo: u128, hi: u128) -> Vec<String> {
    let bits = if family == Family::Ipv4 { 32 } else { 128 };
    let mut out = Vec::new();
    loop {
        // The largest block starting at `lo` (aligned) and not passing `hi`.
        let mut size_log = if lo == 0 {
            bits
        } else {
            lo.trailing_zeros().min(bits)
        };
        while size_log > 0 && block_end(lo, size_log) > hi {
            size_log -= 1;
        }
        let len = bits - size_log;
        let addr = num_addr(family, lo);
        out.push(if len == bits {
            addr.to_string()
        } else {
            format!("{addr}/{len}")
        });
        let end = block_end(lo, size_log);
        if end >= hi || out.len() > 64 {
            return out;
        }
        lo = end + 1;
    }
}

/// The last value of the aligned block of 2^`size_log` values starting at `lo`.
fn block_end(lo: u128, size_log: u32) -> u128 {
    if size_log >= 128 {
        u128::MAX
    } else {
        lo | ((1u128 << size_log) - 1)
    }
}
