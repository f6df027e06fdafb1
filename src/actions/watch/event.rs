//! One `watch` event, as a line of text or of JSON.
//!
//! ```text
//! 2026-11-26T03:00:00Z present tcp   0.0.0.0:22             812/sshd
//! 2026-11-26T03:00:05Z opened  tcp   127.0.0.1:8080         4242/python3
//! 2026-11-26T03:00:09Z closed  tcp   127.0.0.1:8080         4242/python3
//! ```
//!
//! Watching other namespaces (`--netns` other than `current`), each text line names the
//! socket's namespace before its address (`web 0.0.0.0:80`, `net:[4026532458] 0.0.0.0:53`);
//! in JSON every event has the socket object's `netns`, as the listing has.
//!
//! In JSON an event is the listing's socket object ([`crate::render::wire::Socket`], so
//! `local_addr` and `local_port` as everywhere) with the time, the event, the first holder
//! and the flags beside it; `address` and `port` repeat `local_addr` and `local_port` for the
//! scripts written before, and go away in the next release:
//!
//! ```json
//! {"time":"2026-11-26T03:00:05Z","event":"opened","proto":"tcp","family":"ipv4",
//!  "local_addr":"127.0.0.1","local_port":8080,…,"exposure":"loopback",…,
//!  "processes":[{"pid":4242,"name":"python3","cmdline":"python3 -m http.server",
//!  "exe":"/usr/bin/python3.12","uid":0,"user":"root","fd":3}],"owner_unknown_reason":null,
//!  "address":"127.0.0.1","port":8080,"pid":4242,"program":"python3","flags":[]}
//! ```
//!
//! Addresses and ports are numeric in both: a lookup per event would make the stream as slow
//! as the slowest resolver. Names chosen by processes are escaped as in every output.

use std::io::{self, Write};

use serde::Serialize;

use super::tracker::Subject;
use crate::model::Family;
use crate::render::Labels;
use crate::render::labels::{program_cell_quoted, quoted_name};
use crate::render::wire::Socket;
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
    /// Name each text event's network namespace.
    netns: bool,
}

impl EventWriter {
    /// A writer of JSON Lines (`json`) or of text lines.
    pub fn new(json: bool) -> EventWriter {
        EventWriter {
            json,
            labels: Labels::numeric(),
            netns: false,
        }
    }

    /// The same, naming each text event's network namespace (watching more than one).
    pub fn naming_netns(self) -> EventWriter {
        EventWriter {
            netns: true,
            ..self
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

    /// Say that `count` kernel events were lost (the ring buffer was full) at `time`: what
    /// they said is read from the tables right after, so the gap is never silent.
    pub fn write_lost(&mut self, time: &str, count: u64, out: &mut dyn Write) -> io::Result<()> {
        if self.json {
            let lost = LostEvent {
                time,
                event: "lost",
                lost: count,
            };
            safe_json::to_writer(&mut *out, &lost, false).map_err(io::Error::from)?;
            writeln!(out)
        } else {
            writeln!(
                out,
                "{time} lost    {count} kernel events (ring buffer full); reading the tables again"
            )
        }
    }

    fn text(&self, time: &str, kind: Kind, subject: &Subject) -> String {
        let socket = &subject.entry.socket;
        let proto = match socket.family {
            Family::Ipv4 => socket.protocol.name().to_string(),
            Family::Ipv6 => format!("{}6", socket.protocol.name()),
        };
        let mut local = self.labels.local(socket);
        if self.netns {
            let netns = (socket.netns.as_deref())
                .map_or(std::borrow::Cow::Borrowed(&b"-"[..]), |ns| ns.label());
            local = format!("{} {local}", quoted_name(&netns));
        }
        let mut line = format!(
            "{time} {:<7} {proto:<5} {:<22} {}",
            kind.name(),
            local,
            program_cell_quoted(&subject.entry.processes, true)
        );
        if !subject.findings.is_empty() {
            let flags: Vec<&str> = subject.findings.iter().map(|f| f.flag.name()).collect();
            line.push_str(&format!(" [{}]", flags.join(",")));
        }
        line
    }

    fn json_event<'a>(&mut self, time: &'a str, kind: Kind, subject: &'a Subject) -> JsonEvent<'a> {
        let entry = &subject.entry;
        let first = entry.processes.first();
        let mut flags: Vec<&'static str> = subject.findings.iter().map(|f| f.flag.name()).collect();
        flags.dedup();
        let exe = |i: usize, _: &_| subject.exes.get(i).and_then(Option::as_deref);
        let socket = Socket::of(entry, &mut self.labels, exe);
        JsonEvent {
            time,
            event: kind.name(),
            address: socket.local_addr.clone(),
            port: socket.local_port,
            socket,
            pid: first.map(|p| p.pid),
            program: first
                .and_then(|p| p.name.as_deref())
                .map(|n| sanitize::lossy(n).into_owned()),
            flags,
        }
    }
}

/// An event: the listing's socket object, with what happened and when beside it.
#[derive(Serialize)]
struct JsonEvent<'a> {
    time: &'a str,
    event: &'static str,
    #[serde(flatten)]
    socket: Socket,
    /// Deprecated alias of `local_addr`, kept for one release for scripts written before
    /// the socket object was shared.
    address: String,
    /// Deprecated alias of `local_port`, likewise.
    port: u16,
    pid: Option<u32>,
    program: Option<String>,
    flags: Vec<&'static str>,
}

/// Kernel events lost: the ring buffer had no room for them.
#[derive(Serialize)]
struct LostEvent<'a> {
    time: &'a str,
    event: &'static str,
    /// How many.
    lost: u64,
}
