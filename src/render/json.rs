//! JSON and JSON Lines output of the listing. Both formats carry the same socket objects, the
//! wire type of [`super::wire`] (the one every JSON output shares): `--json` as one indented
//! array, `--format jsonl` one compact object per line (a stream `jq -c`, `grep` and log
//! shippers read line by line).

use std::io::{self, Write};

use serde::Serializer;

use super::labels::Labels;
use super::wire::Socket;
use crate::enrich::exe::Executables;
use crate::model::Entry;
use crate::text::safe_json;

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
pub fn json_socket(entry: &Entry, labels: &mut Labels, exes: &Executables) -> Socket {
    Socket::of(entry, labels, |_, process| exes.get(process.pid))
}
