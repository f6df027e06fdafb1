//! The netstat-style table: `Proto Recv-Q Send-Q Local Address Foreign Address State
//! PID/Program name`, with `User Inode` before the program column under `-e`.

use std::io::{self, Write};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::labels::{Labels, program_cell};
use crate::config::Config;
use crate::model::{Entry, Family};

/// Write the table for `entries` (already sorted).
pub fn write_table(
    entries: &[Entry],
    config: &Config,
    labels: &mut Labels,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header(config.extend));
    for entry in entries {
        table.add_row(row(entry, config, labels));
    }
    style_columns(&mut table);
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn header(extend: bool) -> Vec<&'static str> {
    let mut columns = vec![
        "Proto",
        "Recv-Q",
        "Send-Q",
        "Local Address",
        "Foreign Address",
        "State",
    ];
    if extend {
        columns.extend(["User", "Inode"]);
    }
    columns.push("PID/Program name");
    columns
}

fn row(entry: &Entry, config: &Config, labels: &mut Labels) -> Vec<String> {
    let socket = &entry.socket;
    let proto = match socket.family {
        Family::Ipv4 => socket.protocol.name().to_string(),
        Family::Ipv6 => format!("{}6", socket.protocol.name()),
    };
    let mut cells = vec![
        proto,
        socket.recv_q.to_string(),
        socket.send_q.map_or_else(|| "-".into(), |q| q.to_string()),
        labels.local(socket),
        labels.remote(socket),
        socket.state.label(socket.protocol).to_string(),
    ];
    if config.extend {
        cells.push(labels.user_cell(socket.uid));
        cells.push(socket.inode.to_string());
    }
    cells.push(program_cell(&entry.processes, config.wide));
    cells
}

/// Queues are numbers and read best right-aligned; columns are separated by two spaces and the
/// first starts at the margin, as in netstat.
fn style_columns(table: &mut Table) {
    let count = table.column_count();
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if index + 1 == count { 0 } else { 2 }));
        if index == 1 || index == 2 {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}
