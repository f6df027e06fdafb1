//! The manifest: the first entry of a snapshot, saying which host and kernel it came from,
//! when, and how to read its tables (the writer's byte order).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::source::procnet::ByteOrder;
use crate::text::sanitize::terminal_safe;

/// The `format` value that marks an lsports snapshot.
pub const FORMAT: &str = "lsports-snapshot";
/// The layout version this build writes and reads.
pub const VERSION: u32 = 1;

/// What a snapshot says about itself. Every field but `format` and `version` is informational
/// except `byte_order`, which is needed to read the tables of a host unlike this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version ([`VERSION`] when written by this build).
    pub version: u32,
    /// lsports version that captured it.
    #[serde(default)]
    pub lsports: String,
    /// Capture time, seconds since the Unix epoch (UTC).
    #[serde(default)]
    pub captured_at: u64,
    /// Host name of the captured machine (`uname -n`).
    #[serde(default)]
    pub hostname: String,
    /// Kernel release (`uname -r`).
    #[serde(default)]
    pub kernel: String,
    /// Machine architecture (`uname -m`).
    #[serde(default)]
    pub machine: String,
    /// Byte order of the captured host: `little` or `big`.
    #[serde(default = "native_order_name")]
    pub byte_order: String,
    /// The proc root that was captured.
    #[serde(default)]
    pub proc_root: String,
    /// Effective uid of the capturing process: a snapshot taken without root may lack owners.
    #[serde(default)]
    pub captured_by_uid: Option<u32>,
    /// The `hidepid=` option of the captured proc mount when it hid other users' processes
    /// from the (unprivileged) capture: their sockets have no owner in the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidepid: Option<String>,
}

fn native_order_name() -> String {
    ByteOrder::native().name().to_owned()
}

impl Manifest {
    /// A manifest describing this host now, for a capture of `proc_root`.
    pub fn for_this_host(proc_root: &Path) -> Manifest {
        let [hostname, kernel, machine] = uname();
        let euid = rustix::process::geteuid();
        let visibility = crate::process::info::proc_visibility(proc_root);
        Manifest {
            format: FORMAT.to_owned(),
            version: VERSION,
            lsports: env!("CARGO_PKG_VERSION").to_owned(),
            captured_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            hostname,
            kernel,
            machine,
            byte_order: native_order_name(),
            proc_root: proc_root.display().to_string(),
            captured_by_uid: Some(euid.as_raw()),
            hidepid: visibility
                .filter(|_| !euid.is_root())
                .map(|v| v.hidepid.name().to_owned()),
        }
    }

    /// What to assume of an archive with no manifest (a proc tree tarred by hand): this host's
    /// byte order, nothing else known.
    pub fn unknown() -> Manifest {
        Manifest {
            format: FORMAT.to_owned(),
            version: VERSION,
            lsports: String::new(),
            captured_at: 0,
            hostname: String::new(),
            kernel: String::new(),
            machine: String::new(),
            byte_order: native_order_name(),
            proc_root: String::new(),
            captured_by_uid: None,
            hidepid: None,
        }
    }

    /// The byte order the tables were written in, `None` if the manifest names no known one.
    pub fn byte_order(&self) -> Option<ByteOrder> {
        ByteOrder::from_name(&self.byte_order)
    }

    /// One line for humans: `web1 (Linux 6.8.0, x86_64), captured 2026-11-26 00:08:51 UTC`.
    /// The names come from another machine (or anyone who wrote the file): they are escaped
    /// like process names.
    pub fn describe(&self) -> String {
        let safe = |text: &str| terminal_safe(text.as_bytes()).into_owned();
        let mut text = if self.hostname.is_empty() {
            "unknown host".to_owned()
        } else {
            safe(&self.hostname)
        };
        if !self.kernel.is_empty() {
            let (kernel, machine) = (safe(&self.kernel), safe(&self.machine));
            text.push_str(&format!(" (Linux {kernel}, {machine})"));
        }
        if self.captured_at > 0 {
            text.push_str(&format!(", captured {}", utc_timestamp(self.captured_at)));
        }
        text
    }
}

/// `uname -n`, `uname -r` and `uname -m`.
fn uname() -> [String; 3] {
    let uts = rustix::system::uname();
    let text = |field: &std::ffi::CStr| field.to_string_lossy().into_owned();
    [
        text(uts.nodename()),
        text(uts.release()),
        text(uts.machine()),
    ]
}

/// `YYYY-MM-DD hh:mm:ss UTC` for seconds since the epoch (proleptic Gregorian calendar).
pub fn utc_timestamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`, for
/// non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_timestamp(1_795_652_931), "2026-11-26 00:28:51 UTC");
    }

    #[test]
    fn this_host_round_trips_through_json() {
        let m = Manifest::for_this_host(Path::new("/proc"));
        assert_eq!(m.byte_order(), Some(ByteOrder::native()));
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
        assert!(m.describe().contains(&m.kernel));
        // The kernel's own words for what uname reports.
        let sys = |name| std::fs::read_to_string(format!("/proc/sys/kernel/{name}")).unwrap();
        assert_eq!(m.kernel, sys("osrelease").trim_end());
        assert_eq!(m.hostname, sys("hostname").trim_end());
        assert_eq!(m.machine, std::env::consts::ARCH);
    }

    #[test]
    fn hostile_names_are_escaped_in_the_description() {
        let mut m = Manifest::unknown();
        m.hostname = "web1\x1b]0;owned\x07\r".into();
        m.kernel = "6.8\u{202E}0".into();
        m.machine = "x86\u{200B}64\n".into();
        let text = m.describe();
        assert!(
            !text.chars().any(crate::text::sanitize::is_terminal_unsafe),
            "{text:?}"
        );
        assert_eq!(
            text,
            "web1\\e]0;owned\\a\\r (Linux 6.8\\u{202E}0, x86\\u{200B}64\\n)"
        );
    }

    #[test]
    fn minimal_manifest_fills_defaults() {
        let m: Manifest =
            serde_json::from_str(r#"{"format":"lsports-snapshot","version":1,"new":1}"#).unwrap();
        assert_eq!(m.byte_order(), Some(ByteOrder::native()));
        assert_eq!(m.describe(), "unknown host");
    }
}
