//! Durations as people type them for `--timeout` and `--interval`: `30s`, `500ms`, `2m`, `1h`,
//! `1m30s`, `1.5s`, or a bare number of seconds.
//!
//! A duration is at most [`MAX`], a year: every consumer adds it to a clock or hands it to
//! the kernel, and a user's number must not overflow either (a wait without a limit is what
//! leaving out `--timeout` means).

use std::time::Duration;

/// The longest duration accepted: a year (8760h).
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all.
    #[error("{0:?} is not a duration (e.g. 30s, 500ms, 2m, 1m30s; a bare number is seconds)")]
    Syntax(String),
    /// A duration, but longer than [`MAX`].
    #[error("{0:?} is longer than a year (8760h), the longest duration lsports accepts")]
    TooLong(String),
}

/// Parse a duration: one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`; a lone
/// number without a unit is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let total = parse_unbounded(text)?;
    if total > MAX {
        return Err(DurationError::TooLong(text.to_string()));
    }
    Ok(total)
}

/// The sum of the parts, or `TooLong` where it would not fit a `Duration`.
fn parse_unbounded(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError::Syntax(text.to_string());
    let too_long = || DurationError::TooLong(text.to_string());
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = trimmed.parse::<f64>() {
        return seconds_to_duration(seconds, text);
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let unit_end = rest[number_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |i| number_end + i);
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        let scale = unit_seconds(&rest[number_end..unit_end]).ok_or_else(bad)?;
        let part = seconds_to_duration(number * scale, text)?;
        total = total.checked_add(part).ok_or_else(too_long)?;
        rest = &rest[unit_end..];
    }
    Ok(total)
}

fn unit_seconds(unit: &str) -> Option<f64> {
    match unit {
        "ms" => Some(0.001),
        "s" | "sec" | "secs" => Some(1.0),
        "m" | "min" | "mins" => Some(60.0),
        "h" | "hour" | "hours" => Some(3600.0),
        _ => None,
    }
}

/// `seconds` as a duration: negative, NaN and infinite numbers are not durations; finite
/// ones too large for a `Duration` are too long.
fn seconds_to_duration(seconds: f64, text: &str) -> Result<Duration, DurationError> {
    if !seconds.is_finite() || seconds.is_sign_negative() {
        return Err(DurationError::Syntax(text.to_string()));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| DurationError::TooLong(text.to_string()))
}

/// A duration the way it would be typed back: `30s`, `1.5s`, `250ms`.
pub fn display(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 && !duration.is_zero() {
        format!("{millis}ms")
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u128 {
        parse_duration(text).unwrap().as_millis()
    }

    #[test]
    fn units_and_bare_seconds() {
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("2m"), 120_000);
        assert_eq!(ms("1h"), 3_600_000);
        assert_eq!(ms("1.5s"), 1_500);
        assert_eq!(ms("10"), 10_000);
        assert_eq!(ms("0"), 0);
        assert_eq!(ms("1m30s"), 90_000);
        assert_eq!(ms(" 2min "), 120_000);
    }

    #[test]
    fn nonsense_is_rejected() {
        for text in [
            "", "s", "-1", "1x", "5 s", "1.2.3s", "ms", "inf", "NaN", "-0", "-1s", "1e400",
        ] {
            let error = parse_duration(text).unwrap_err();
            assert_eq!(error, DurationError::Syntax(text.into()), "{text:?}");
        }
    }

    #[test]
    fn overflowing_durations_are_too_long_not_a_panic() {
        for text in [
            "10000000000000000000s10000000000000000000s",
            "18446744073709551615s1s",
            "99999999999999999999h",
            "8761h",
            "8760h1ms",
            "31536001",
        ] {
            let error = parse_duration(text).unwrap_err();
            assert_eq!(error, DurationError::TooLong(text.into()), "{text:?}");
        }
        assert_eq!(parse_duration("8760h"), Ok(MAX));
        assert_eq!(parse_duration("8759h60m"), Ok(MAX));
    }

    #[test]
    fn durations_display_as_typed() {
        assert_eq!(display(Duration::from_secs(30)), "30s");
        assert_eq!(display(Duration::from_millis(250)), "250ms");
        assert_eq!(display(Duration::from_millis(1500)), "1.5s");
        assert_eq!(display(Duration::ZERO), "0s");
    }
}
