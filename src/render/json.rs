//! JSON and JSON Lines output: wire types separate from the model, so the schema documented in
//! README.md and published in `schema/lsports.schema.json` is stated once, here, and the model
//! can change without changing it. Both formats carry the same socket objects: `--json` as one
//! indented array, `--format jsonl` one compact object per line (a stream `jq -c`, `grep` and
//! log shippers read line by line).

use std::io::{self, Write};

use serde::{Serialize, Serializer};

use super::labels::Labels;
use crate::enrich::exe::Executables;
use crate::model::exposure;
use crate::model::{DeviceBinding, Entry, Family, OwnerProcess, SourceKind};
use crate::text::safe_json;
use crate::text::sanitize;

/// One socket as JSON.
#[derive(Debug, Serialize)]
pub struct JsonSocket {
    proto: &'static str,
    family: &'static str,
    local_addr: String,
    local_port: u16,
    remote_addr: String,
    remote_port: u16,
    state: &'static str,
    recv_q: Option<u32>,
    send_q: Option<u32>,
    uid: u32,
    user: Option<String>,
    inode: u64,
    v6only: Option<bool>,
    interface: Option<String>,
    exposure: &'static str,
    reachable_families: Vec<&'static str>,
    source: &'static str,
    unknown_fields: Vec<&'static str>,
    processes: Vec<JsonProcess>,
    owner_unknown_reason: Option<&'static str>,
}

/// One holder as JSON.
#[derive(Debug, Serialize)]
pub struct JsonProcess {
    pid: u32,
    name: Option<String>,
    cmdline: Option<String>,
    exe: Option<String>,
    uid: Option<u32>,
    user: Option<String>,
    fd: u32,
}

/// Write `entries` as one pretty-printed JSON array, with `exe` unknown (null) for every
/// process; [`write_json_array`] fills it in.
pub fn write_json(entries: &[Entry], labels: &mut Labels, out: &mut dyn Write) -> io::Result<()> {
    write_json_array(entries, labels, &Executables::default(), out)
}

/// Write `entries` as one pretty-printed JSON array, with executables from `exes`.
pub fn write_json_array(
    entries: &[Entry],
    labels: &mut Labels,
    exes: &Executables,
    out: &mut dyn Write,
) -> io::Result<()> {
    // Streamed: each object is built, written and dropped in turn, so memory does not grow
    // with a second copy of every socket.
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut *out, safe_json::SafeJsonFormatter::pretty());
    serializer
        .collect_seq(entries.iter().map(|e| json_socket(e, labels, exes)))
        .map_err(io::Error::from)?;
    writeln!(out)
}

/// Write `entries` as JSON Lines: one compact socket object per line, nothing for no sockets.
pub fn write_jsonl(
    entries: &[Entry],
    labels: &mut Labels,
    exes: &Executables,
    out: &mut dyn Write,
) -> io::Result<()> {
    for entry in entries {
        let socket = json_socket(entry, labels, exes);
        safe_json::to_writer(&mut *out, &socket, false).map_err(io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}

/// The JSON form of one entry.
pub fn json_socket(entry: &Entry, labels: &mut Labels, exes: &Executables) -> JsonSocket {
    let socket = &entry.socket;
    JsonSocket {
        proto: socket.protocol.name(),
        family: socket.family.name(),
        local_addr: socket.local_addr.to_string(),
        local_port: socket.local_port,
        remote_addr: socket.remote_addr.to_string(),
        remote_port: socket.remote_port,
        state: socket.state.label(socket.protocol),
        recv_q: Some(socket.recv_q),
        send_q: socket.send_q,
        uid: socket.uid,
        user: labels.user_name(socket.uid),
        inode: socket.inode,
        v6only: socket.v6only,
        interface: match &socket.device {
            DeviceBinding::Device { index, name } => {
                Some(name.clone().unwrap_or_else(|| index.to_string()))
            }
            _ => None,
        },
        exposure: exposure::classify(socket).name(),
        reachable_families: exposure::reachable_families(socket)
            .iter()
            .map(|f| f.name())
            .collect(),
        source: socket.source.name(),
        unknown_fields: unknown_fields(entry),
        processes: entry
            .processes
            .iter()
            .map(|p| json_process(p, labels, exes))
            .collect(),
        owner_unknown_reason: entry.owner_unknown.map(|r| r.name()),
    }
}

fn unknown_fields(entry: &Entry) -> Vec<&'static str> {
    let socket = &entry.socket;
    let mut fields = Vec::new();
    if socket.send_q.is_none() {
        fields.push("send_q");
    }
    if socket.source == SourceKind::Proc && socket.family == Family::Ipv6 {
        fields.push("v6only");
    }
    if socket.device == DeviceBinding::Unknown {
        fields.push("interface");
    }
    fields
}

fn json_process(process: &OwnerProcess, labels: &mut Labels, exes: &Executables) -> JsonProcess {
    JsonProcess {
        pid: process.pid,
        name: process
            .name
            .as_deref()
            .map(|n| sanitize::lossy(n).into_owned()),
        cmdline: process.cmdline.as_deref().map(sanitize::cmdline_lossy),
        exe: exes
            .get(process.pid)
            .map(|path| sanitize::lossy(path).into_owned()),
        uid: process.uid,
        user: process.uid.and_then(|uid| labels.user_name(uid)),
        fd: process.fd,
    }
}
