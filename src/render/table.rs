//! The netstat-style table: `Proto Recv-Q Send-Q Local Address Foreign Address State
//! PID/Program name` by default, `User Inode` before the program column under `-e`, or the
//! columns of `-o` in their order; the header row unless `--no-header`.

use std::io::{self, Write};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::columns::{Cells, Column};
use crate::config::Config;
use crate::model::Entry;

/// Write the table for `entries` (already sorted).
pub fn write_table(
    entries: &[Entry],
    config: &Config,
    cells: &mut Cells<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let columns = config.shown_columns();
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if config.header {
        table.set_header(columns.iter().map(|c| c.header()));
    }
    for entry in entries {
        table.add_row(columns.iter().map(|&c| cells.text(c, entry)));
    }
    style_columns(&mut table, &columns);
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Columns are separated by two spaces and the first starts at the margin, as in netstat.
fn style_columns(table: &mut Table, columns: &[Column]) {
    let count = table.column_count();
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if index + 1 == count { 0 } else { 2 }));
        if columns.get(index).is_some_and(|c| c.right_aligned()) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}
