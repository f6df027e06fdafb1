//! Port lists as users type them: `22,80,8000-8100`.

use std::str::FromStr;

/// Why a port list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    /// Nothing between two commas, or an empty argument.
    #[error("empty port in {0:?} (expected e.g. 22,80,8000-8100)")]
    Empty(String),
    /// Not a number from 0 to 65535.
    #[error("{0:?} is not a port number (0-65535)")]
    NotAPort(String),
    /// A range whose end is below its start.
    #[error("port range {0}-{1} ends before it starts")]
    Reversed(u16, u16),
}

/// A set of ports, kept as sorted, merged inclusive ranges so that `1-65535` costs nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet {
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    /// The set holding exactly `ranges` (inclusive, in any order, overlapping or not).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u16, u16)>) -> Self {
        let mut sorted: Vec<(u16, u16)> = ranges.into_iter().collect();
        sorted.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(sorted.len());
        for (lo, hi) in sorted {
            match merged.last_mut() {
                Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        PortSet { ranges: merged }
    }

    /// The union of several sets (one per repeated flag).
    pub fn union<'a>(sets: impl IntoIterator<Item = &'a PortSet>) -> Self {
        Self::from_ranges(sets.into_iter().flat_map(|s| s.ranges.iter().copied()))
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        // Ranges are sorted and disjoint: binary search on the start.
        let after = self.ranges.partition_point(|&(lo, _)| lo <= port);
        after > 0 && self.ranges[after - 1].1 >= port
    }

    /// The merged inclusive ranges, ascending.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }

    /// Every port in the set, ascending.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|&(lo, hi)| lo..=hi)
    }

    /// Whether the set holds no port.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl FromStr for PortSet {
    type Err = PortSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let ranges = text
            .split(',')
            .map(|part| parse_range(part.trim(), text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_ranges(ranges))
    }
}

fn parse_range(part: &str, whole: &str) -> Result<(u16, u16), PortSpecError> {
    if part.is_empty() {
        return Err(PortSpecError::Empty(whole.to_string()));
    }
    let (lo, hi) = match part.split_once('-') {
        Some((lo, hi)) => (parse_port(lo.trim())?, parse_port(hi.trim())?),
        None => {
            let port = parse_port(part)?;
            (port, port)
        }
    };
    if hi < lo {
        return Err(PortSpecError::Reversed(lo, hi));
    }
    Ok((lo, hi))
}

fn parse_port(text: &str) -> Result<u16, PortSpecError> {
    // `u16::from_str` accepts a leading `+`, which no one means in a port list.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortSpecError::NotAPort(text.to_string()));
    }
    text.parse()
        .map_err(|_| PortSpecError::NotAPort(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> PortSet {
        text.parse().unwrap()
    }

    #[test]
    fn lists_and_ranges() {
        let ports = set("22,80,8000-8100");
        assert!(ports.contains(22) && ports.contains(80));
        assert!(ports.contains(8000) && ports.contains(8050) && ports.contains(8100));
        assert!(!ports.contains(21) && !ports.contains(8101) && !ports.contains(443));
        assert_eq!(ports.ranges(), [(22, 22), (80, 80), (8000, 8100)]);
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        assert_eq!(set("10-20,15-30,31,5").ranges(), [(5, 5), (10, 31)]);
        assert_eq!(set("0-65535,80").ranges(), [(0, 65535)]);
        assert!(set("0-65535").contains(65535));
    }

    #[test]
    fn union_of_repeated_flags() {
        let union = PortSet::union([&set("22"), &set("80,81")]);
        assert_eq!(union.ranges(), [(22, 22), (80, 81)]);
        assert_eq!(union.ports().collect::<Vec<_>>(), [22, 80, 81]);
    }

    #[test]
    fn spaces_around_items_are_fine() {
        assert_eq!(set(" 22 , 80 - 82 ").ranges(), [(22, 22), (80, 82)]);
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        let err = |t: &str| t.parse::<PortSet>().unwrap_err();
        assert_eq!(err(""), PortSpecError::Empty(String::new()));
        assert_eq!(err("22,,80"), PortSpecError::Empty("22,,80".into()));
        assert_eq!(err("ssh"), PortSpecError::NotAPort("ssh".into()));
        assert_eq!(err("65536"), PortSpecError::NotAPort("65536".into()));
        assert_eq!(err("+22"), PortSpecError::NotAPort("+22".into()));
        assert_eq!(err("-5"), PortSpecError::NotAPort(String::new()));
        assert_eq!(err("90-80"), PortSpecError::Reversed(90, 80));
    }
}
