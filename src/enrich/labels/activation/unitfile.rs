//! Socket units from systemd's unit files, read under an injectable root: the `[Socket]`
//! settings that say which sockets a unit makes and whom it hands them to.
//!
//! Loading follows `systemd.unit(5)`: the first directory of the search path that has
//! `NAME.socket` gives the unit (a link to `/dev/null`, or an empty file, masks it); then the
//! drop-ins `NAME.socket.d/*.conf` and the type-wide `socket.d/*.conf` from every directory,
//! one per file name (the higher-priority directory's wins), applied in file-name order. An
//! empty assignment resets a list (`ListenStream=` empties every `Listen*=`, as systemd does).
//!
//! The syntax is read as systemd's `config_parse` reads it: `#` and `;` comment lines, a `\`
//! at the end of a line continuing it (comment lines inside are skipped), whitespace around
//! keys and values trimmed, and, tolerantly, one pair of quotes around a value removed.
//! Specifiers (`%i`) are not expanded: a value with one matches no socket.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::readlinkat;

use super::super::safefile::{open_dir_in_root, open_root, read_in_root};
use super::listen::{BindIpv6Only, Listen, ListenKind, Options};
use crate::model::Socket;

/// systemd's system unit search path, highest priority first, relative to the root
/// (`lookup_paths_init` for the system manager, plus `lib/systemd/system` of distributions
/// without merged `/usr`).
pub const SEARCH_PATH: [&str; 12] = [
    "etc/systemd/system.control",
    "run/systemd/system.control",
    "run/systemd/transient",
    "run/systemd/generator.early",
    "etc/systemd/system",
    "etc/systemd/system.attached",
    "run/systemd/system",
    "run/systemd/system.attached",
    "run/systemd/generator",
    "usr/local/lib/systemd/system",
    "usr/lib/systemd/system",
    "lib/systemd/system",
];

/// A unit file is read only up to this size (systemd's own limit is 4 MiB per line).
const UNIT_CAP: u64 = 1 << 20;
/// How many entries of one directory are looked at.
const MAX_ENTRIES: usize = 100_000;
/// How many drop-ins one unit takes.
const MAX_DROPINS: usize = 256;

/// One socket unit's settings. Strings are as the files have them (raw).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SocketUnit {
    /// The unit's name, `sshd.socket`.
    pub name: String,
    /// Its `Listen*=` values, in order.
    pub listens: Vec<Listen>,
    /// `BindToDevice=`.
    pub device: Option<String>,
    /// `BindIPv6Only=`.
    pub ipv6_only: BindIpv6Only,
    /// `Service=`.
    pub service: Option<String>,
    /// `FileDescriptorName=`.
    pub fd_name: Option<String>,
    /// `SocketProtocol=` (`udplite`, `sctp`, `mptcp`), if set.
    pub protocol: Option<String>,
}

impl SocketUnit {
    /// A unit called `name` with no settings yet.
    pub fn named(name: &str) -> SocketUnit {
        SocketUnit {
            name: name.to_owned(),
            ..SocketUnit::default()
        }
    }

    /// Apply the `[Socket]` assignments of one file's `text`, after those applied before.
    pub fn apply(&mut self, text: &str) {
        for (section, key, value) in assignments(text) {
            if section == "Socket" {
                self.set(&key, value);
            }
        }
    }

    fn set(&mut self, key: &str, value: String) {
        let value = Some(value).filter(|v| !v.is_empty());
        if let Some(kind) = ListenKind::from_key(key) {
            match value {
                Some(value) => self.listens.push(Listen::parse(kind, &value)),
                None => self.listens.clear(),
            }
            return;
        }
        match key {
            "BindToDevice" => self.device = value,
            "BindIPv6Only" => self.ipv6_only = BindIpv6Only::parse(value.as_deref().unwrap_or("")),
            "Service" => self.service = value,
            "FileDescriptorName" => self.fd_name = value,
            "SocketProtocol" => self.protocol = value,
            _ => {}
        }
    }

    /// The service it activates: `Service=`, else the unit's own name with `.service`.
    pub fn service_name(&self) -> String {
        match &self.service {
            Some(service) => service.clone(),
            None => format!("{}.service", self.name.trim_end_matches(".socket")),
        }
    }

    /// The name its sockets are passed under: `FileDescriptorName=`, else the unit's name.
    pub fn fd_name(&self) -> &str {
        self.fd_name.as_deref().unwrap_or(&self.name)
    }

    /// Whether `socket` is one this unit makes.
    pub fn makes(&self, socket: &Socket) -> bool {
        // SCTP, UDP-Lite and MPTCP sockets are no plain TCP or UDP socket.
        if self
            .protocol
            .as_deref()
            .is_some_and(|p| p != "tcp" && p != "udp")
        {
            return false;
        }
        let options = Options {
            device: self.device.as_deref(),
            ipv6_only: self.ipv6_only,
        };
        self.listens.iter().any(|l| l.matches(socket, options))
    }
}

/// The `(section, key, value)` assignments of a unit file, in order (see the module docs).
pub fn assignments(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        let continuing = !pending.is_empty();
        if line.starts_with(['#', ';']) || (!continuing && line.is_empty()) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let whole = std::mem::take(&mut pending);
        let whole = whole.trim();
        if let Some(name) = whole.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = whole.split_once('=') {
            out.push((
                section.clone(),
                key.trim().to_owned(),
                unquote(value.trim()),
            ));
        }
    }
    out
}

/// `"value"` or `'value'` without its quotes; anything else as it is.
fn unquote(value: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// Where a unit's files are: the main file and the drop-ins by file name.
#[derive(Debug, Default)]
struct Found {
    /// The main file's path (relative to the root), `None` if masked.
    main: Option<Option<String>>,
    dropins: HashMap<String, String>,
}

/// Every socket unit under `root` (`/` on a live system), sorted by name. Unreadable
/// directories and files are skipped: a unit file is evidence, not a requirement.
pub fn load(root: &Path) -> Vec<SocketUnit> {
    let Ok(root) = open_root(root) else {
        return Vec::new();
    };
    let mut found: HashMap<String, Found> = HashMap::new();
    let mut type_wide: HashMap<String, String> = HashMap::new();
    for dir in SEARCH_PATH {
        scan_dir(root.as_fd(), dir, &mut found, &mut type_wide);
    }
    let mut units: Vec<SocketUnit> = found
        .into_iter()
        .filter_map(|(name, files)| build(root.as_fd(), &name, files, &type_wide))
        .collect();
    units.sort_by(|a, b| a.name.cmp(&b.name));
    units
}

/// Record the unit files and drop-ins of one search-path directory, where no directory
/// before it had them.
fn scan_dir(
    root: BorrowedFd<'_>,
    dir: &str,
    found: &mut HashMap<String, Found>,
    type_wide: &mut HashMap<String, String>,
) {
    let Ok(fd) = open_dir_in_root(root, dir) else {
        return;
    };
    for name in entry_names(&fd) {
        if let Some(unit) = name.strip_suffix(".d").filter(|u| is_socket_unit(u)) {
            let dropins = &mut found.entry(unit.to_owned()).or_default().dropins;
            add_dropins(root, &format!("{dir}/{name}"), dropins);
        } else if name == "socket.d" {
            add_dropins(root, &format!("{dir}/{name}"), type_wide);
        } else if is_socket_unit(&name) {
            let entry = found.entry(name.clone()).or_default();
            if entry.main.is_none() {
                let path = format!("{dir}/{name}");
                entry.main = Some((!is_masked(&fd, &name)).then_some(path));
            }
        }
    }
}

/// Add the `*.conf` files of the drop-in directory `dir` that no earlier directory had.
fn add_dropins(root: BorrowedFd<'_>, dir: &str, into: &mut HashMap<String, String>) {
    let Ok(fd) = open_dir_in_root(root, dir) else {
        return;
    };
    for name in entry_names(&fd) {
        if name.ends_with(".conf") && into.len() < MAX_DROPINS {
            let path = format!("{dir}/{name}");
            into.entry(name).or_insert(path);
        }
    }
}

/// The unit `name` from its files; `None` if it is masked or has no main file.
fn build(
    root: BorrowedFd<'_>,
    name: &str,
    files: Found,
    type_wide: &HashMap<String, String>,
) -> Option<SocketUnit> {
    let main = files.main??;
    let text = read_text(root, &main)?;
    if text.trim().is_empty() {
        return None; // an empty unit file masks the unit too
    }
    let mut unit = SocketUnit::named(name);
    unit.apply(&text);
    let mut dropins: Vec<(&String, &String)> = type_wide.iter().collect();
    // The unit's own drop-in wins over a type-wide one of the same file name.
    dropins.retain(|(file, _)| !files.dropins.contains_key(*file));
    dropins.extend(files.dropins.iter());
    dropins.sort();
    for (_, path) in dropins {
        if let Some(text) = read_text(root, path) {
            unit.apply(&text);
        }
    }
    Some(unit)
}

fn read_text(root: BorrowedFd<'_>, path: &str) -> Option<String> {
    let bytes = read_in_root(root, path, UNIT_CAP).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Whether the entry `name` of `dir` is a link to `/dev/null` (a masked unit).
fn is_masked(dir: &OwnedFd, name: &str) -> bool {
    readlinkat(Some(dir.as_raw_fd()), name).is_ok_and(|target| target == OsStr::new("/dev/null"))
}

/// The names in a directory, but `.`, `..` and names that are not UTF-8 (no unit's).
fn entry_names(fd: &OwnedFd) -> Vec<String> {
    let Ok(mut dir) = fd
        .try_clone()
        .map_err(drop)
        .and_then(|fd| Dir::from(fd).map_err(drop))
    else {
        return Vec::new();
    };
    dir.iter()
        .filter_map(Result::ok)
        .take(MAX_ENTRIES)
        .filter_map(|e| {
            std::str::from_utf8(e.file_name().to_bytes())
                .ok()
                .map(str::to_owned)
        })
        .filter(|n| n != "." && n != "..")
        .collect()
}

/// Whether `name` is a socket unit that can be active: a unit name, not a template
/// (`sshd@.socket`).
pub fn is_socket_unit(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".socket") else {
        return false;
    };
    !stem.is_empty()
        && !stem.ends_with('@')
        && name.len() <= 255
        && OsStr::new(stem)
            .as_bytes()
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}
