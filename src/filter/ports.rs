//! Port lists as users type them: `22,80,8000-8100`, and on the command line service names
//! too (`ssh,http-alt`), looked up by the caller in the services file the table names ports
//! from.

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
    /// A name the services file does not know.
    #[error("{0:?} is not a port number (0-65535) or a service name in {1}")]
    UnknownService(String, String),
    /// A name, but the services file could not be read.
    #[error("{0:?} is not a port number, and service names cannot be read: {1}")]
    NoServices(String, String),
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

impl PortSet {
    /// Parse a list whose items may also be service names: `names` gives the ports of a
    /// name (an error when it knows none). An item with a letter in it is a name, whole:
    /// `http-alt` is one service, not a range.
    pub fn parse_with(
        text: &str,
        names: &mut dyn FnMut(&str) -> Result<Vec<u16>, PortSpecError>,
    ) -> Result<Self, PortSpecError> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            if is_name(part) {
                ranges.extend(names(part)?.into_iter().map(|port| (port, port)));
            } else {
                ranges.push(parse_range(part, text)?);
            }
        }
        Ok(Self::from_ranges(ranges))
    }
}

impl FromStr for PortSet {
    type Err = PortSpecError;

    /// Numbers and ranges only.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_with(text, &mut |name| {
            Err(PortSpecError::NotAPort(name.to_string()))
        })
    }
}

/// Whether `part` names a service: services(5) names start with a letter.
fn is_name(part: &str) -> bool {
    part.starts_with(|c: char| c.is_ascii_alphabetic())
}

fn parse_range(part: &str, whole: &str) -> Result<(u16, u16), PortSpecError> {
    if part.is_empty() {
        return Err(PortSpecError::Empty(whole.to_string()));
    }
    // A side missing (`-5`, `80-`) makes the whole item wrong, not an empty port.
    let port = |text: &str| parse_port(text).map_err(|_| PortSpecError::NotAPort(part.into()));
    let (lo, hi) = match part.split_once('-') {
        Some((lo, hi)) => (port(lo.trim())?, port(hi.trim())?),
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
        assert_eq!(err("-5"), PortSpecError::NotAPort("-5".into()));
        assert_eq!(err("-1"), PortSpecError::NotAPort("-1".into()));
        assert_eq!(err("80-"), PortSpecError::NotAPort("80-".into()));
        assert_eq!(err("1-65536"), PortSpecError::NotAPort("1-65536".into()));
        assert_eq!(err("90-80"), PortSpecError::Reversed(90, 80));
    }

    #[test]
    fn names_are_looked_up_whole() {
        let mut asked = Vec::new();
        let mut names = |name: &str| {
            asked.push(name.to_string());
            match name {
                "ssh" => Ok(vec![22]),
                "http-alt" => Ok(vec![8080]),
                _ => Err(PortSpecError::UnknownService(name.into(), "f".into())),
            }
        };
        let set = PortSet::parse_with("ssh, http-alt,1000-1002", &mut names).unwrap();
        assert_eq!(set.ranges(), [(22, 22), (1000, 1002), (8080, 8080)]);
        let error = PortSet::parse_with("22,sshh", &mut names).unwrap_err();
        assert_eq!(
            error,
            PortSpecError::UnknownService("sshh".into(), "f".into())
        );
        assert_eq!(asked, ["ssh", "http-alt", "sshh"]);
    }
}
