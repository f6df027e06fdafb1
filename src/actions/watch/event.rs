//! One `watch` event, as a line of text or of JSON.
//!
//! ```text
//! 2026-11-26T03:00:00Z present tcp   0.0.0.0:22             812/sshd
//! 2026-11-26T03:00:05Z opened  tcp   127.0.0.1:8080         4242/python3
//! 2026-11-26T03:00:09Z closed  tcp   127.0.0.1:8080         4242/python3
//! ```
//!
//! ```json
//! {"time":"2026-11-26T03:00:05Z","event":"opened","proto":"tcp","family":"ipv4",
//!  "address":"127.0.0.1","port":8080,"exposure":"loopback","uid":0,"user":"root",
//!  "inode":3912348,"pid":4242,"program":"python3","processes":[{"pid":4242,"name":"python3",
//!  "cmdline":"python3 -m http.server","exe":"/usr/bin/python3.12","uid":0,"user":"root"}],
//!  "flags":[]}
//! ```
//!
//! Addresses and ports are numeric in both: a lookup per event would make the stream as slow
//! as the slowest resolver. Names chosen by processes are escaped as in every output.

use std::io::{self, Write};

use serde::Serialize;

use super::tracker::Subject;
use crate::model::Family;
use crate::model::exposure;
use crate::render::Labels;
use crate::render::labels::program_cell;
use crate::text::safe_json;
use crate::text::sanitize;

/// What happened to a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// It was there at the first poll.
    Present,
    /// It appeared.
    Opened,
    /// It went away.
    Closed,
}

impl Kind {
    /// The word in both formats.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Present => "present",
            Kind::Opened => "opened",
            Kind::Closed => "closed",
        }
    }
}

/// Writes events in one format, keeping the user-name cache across polls.
pub struct EventWriter {
    json: bool,
    labels: Labels,
}

impl EventWriter {
    /// A writer of JSON Lines (`json`) or of text lines.
    pub fn new(json: bool) -> EventWriter {
        EventWriter {
            json,
            labels: Labels::numeric(),
        }
    }

    /// Write one event that happened at `time` (RFC 3339).
    pub fn write(
        &mut self,
        time: &str,
        kind: Kind,
        subject: &Subject,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        if self.json {
            let event = self.json_event(time, kind, subject);
            safe_json::to_writer(&mut *out, &event, false).map_err(io::Error::from)?;
            writeln!(out)
        } else {
            writeln!(out, "{}", self.text(time, kind, subject))
        }
    }

    fn text(&self, time: &str, kind: Kind, subject: &Subject) -> String {
        let socket = &subject.entry.socket;
        let proto = match socket.family {
            Family::Ipv4 => socket.protocol.name().to_string(),
            Family::Ipv6 => format!("{}6", socket.protocol.name()),
        };
        let mut line = format!(
            "{time} {:<7} {proto:<5} {:<22} {}",
            kind.name(),
            self.labels.local(socket),
            program_cell(&subject.entry.processes, true)
        );
        if !subject.findings.is_empty() {
            let flags: Vec<&str> = subject.findings.iter().map(|f| f.flag.name()).collect();
            line.push_str(&format!(" [{}]", flags.join(",")));
        }
        line
    }

    fn json_event<'a>(&mut self, time: &'a str, kind: Kind, subject: &'a Subject) -> JsonEvent<'a> {
        let entry = &subject.entry;
        let socket = &entry.socket;
        let first = entry.processes.first();
        let mut flags: Vec<&'static str> = subject.findings.iter().map(|f| f.flag.name()).collect();
        flags.dedup();
        JsonEvent {
            time,
            event: kind.name(),
            proto: socket.protocol.name(),
            family: socket.family.name(),
            address: socket.local_addr.to_string(),
            port: socket.local_port,
            exposure: exposure::classify(socket).name(),
            uid: socket.uid,
            user: self.labels.user_name(socket.uid),
            inode: socket.inode,
            pid: first.map(|p| p.pid),
            program: first.and_then(|p| p.name.as_deref()).map(lossy),
            processes: entry
                .processes
                .iter()
                .zip(subject.exes.iter().chain(std::iter::repeat(&None)))
                .map(|(p, exe)| JsonProcess {
                    pid: p.pid,
                    name: p.name.as_deref().map(lossy),
                    cmdline: p.cmdline.as_deref().map(sanitize::cmdline_lossy),
                    exe: exe.as_deref().map(lossy),
                    uid: p.uid,
                    user: p.uid.and_then(|uid| self.labels.user_name(uid)),
                })
                .collect(),
            flags,
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    sanitize::lossy(bytes).into_owned()
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    time: &'a str,
    event: &'static str,
    proto: &'static str,
    family: &'static str,
    address: String,
    port: u16,
    exposure: &'static str,
    uid: u32,
    user: Option<String>,
    inode: u64,
    pid: Option<u32>,
    program: Option<String>,
    processes: Vec<JsonProcess>,
    flags: Vec<&'static str>,
}

#[derive(Serialize)]
struct JsonProcess {
    pid: u32,
    name: Option<String>,
    cmdline: Option<String>,
    exe: Option<String>,
    uid: Option<u32>,
    user: Option<String>,
}
