//! The netstat-style table: `Proto Recv-Q Send-Q Local Address Foreign Address State
//! PID/Program name` by default, `User Inode` before the program column under `-e`, or the
//! columns of `-o` in their order; the header row unless `--no-header`.
//!
//! The layout is comfy-table's borderless preset (`NOTHING`, padding `(0, 2)`, queues
//! right-aligned, trailing blanks trimmed), written by hand: comfy-table keeps several
//! allocations per cell and a formatted copy of every row, which on a host with 25,000
//! listeners cost ~0.1 s and ~30 MB. Here each cell's text is appended to one shared buffer
//! and the rows are written in a second pass once the column widths are known. The unit tests
//! hold this output to comfy-table's, byte for byte.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use super::columns::Cells;
use crate::config::RenderOptions;
use crate::model::Entry;

/// Blanks between columns (comfy-table's right padding of 2).
const GAP: usize = 2;

/// Write the table for `entries` (already sorted).
pub fn write_table(
    entries: &[Entry],
    options: &RenderOptions,
    cells: &mut Cells<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let columns = &options.columns;
    let right: Vec<bool> = columns.iter().map(|c| c.right_aligned()).collect();
    let mut grid = Grid::new(columns.len(), entries.len() + 1);
    if options.header {
        grid.push_row(columns.iter().map(|c| c.header()));
    }
    for entry in entries {
        for &column in columns {
            grid.push_cell_with(|text| cells.write(column, entry, text));
        }
    }
    grid.write(&right, out)
}

/// Every cell's text in one buffer, with its end offset and display width, so a table of any
/// size costs three allocations.
#[derive(Debug)]
pub struct Grid {
    columns: usize,
    text: String,
    // u32 offsets and u16 widths: a 25,000-row table keeps 175,000 of each.
    ends: Vec<u32>,
    widths: Vec<u16>,
    column_widths: Vec<usize>,
}

impl Grid {
    /// An empty grid of `columns` columns, sized for about `rows` rows.
    pub fn new(columns: usize, rows: usize) -> Self {
        Grid {
            columns,
            text: String::with_capacity(rows * columns * 12),
            ends: Vec::with_capacity(rows * columns),
            widths: Vec::with_capacity(rows * columns),
            column_widths: vec![0; columns],
        }
    }

    /// Append one row.
    pub fn push_row<'s>(&mut self, cells: impl IntoIterator<Item = &'s str>) {
        for cell in cells {
            self.push_cell(cell);
        }
    }

    /// Append the next cell, filling rows left to right.
    pub fn push_cell(&mut self, cell: &str) {
        self.push_cell_with(|text| text.push_str(cell));
    }

    /// Append the next cell as `write` appends it to the grid's text.
    pub fn push_cell_with(&mut self, write: impl FnOnce(&mut String)) {
        let column = self.ends.len() % self.columns.max(1);
        let start = self.text.len();
        write(&mut self.text);
        // Cells are short (the widest is a PID list); saturate rather than wrap if not.
        let width = u16::try_from(display_width(&self.text[start..])).unwrap_or(u16::MAX);
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
        self.widths.push(width);
        self.column_widths[column] = self.column_widths[column].max(usize::from(width));
    }

    /// Write every row; `right[i]` right-aligns column `i`.
    pub fn write(&self, right: &[bool], out: &mut dyn Write) -> io::Result<()> {
        let mut line = String::new();
        let mut start = 0;
        for (index, (&end, &width)) in self.ends.iter().zip(&self.widths).enumerate() {
            let column = index % self.columns;
            let pad = self.column_widths[column] - usize::from(width);
            let end = end as usize;
            let cell = self.text.get(start..end).unwrap_or_default();
            start = end;
            if right.get(column).copied().unwrap_or(false) {
                push_blanks(&mut line, pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                push_blanks(&mut line, pad);
            }
            if column + 1 < self.columns {
                push_blanks(&mut line, GAP);
                continue;
            }
            writeln!(out, "{}", line.trim_end())?;
            line.clear();
        }
        Ok(())
    }
}

/// Columns `cell` takes on a terminal; printable ASCII, nearly every cell, is one per byte.
fn display_width(cell: &str) -> usize {
    if cell.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        cell.len()
    } else {
        cell.width()
    }
}

fn push_blanks(line: &mut String, count: usize) {
    line.extend(std::iter::repeat_n(' ', count));
}

#[cfg(test)]
mod tests {
    use super::*;
    use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

    /// What comfy-table prints for the same rows with the layout this module reproduces.
    fn comfy(rows: &[Vec<&str>], right: &[bool]) -> String {
        let mut table = Table::new();
        table
            .load_preset(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        for row in rows {
            table.add_row(row.clone());
        }
        let count = table.column_count();
        for (index, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, if index + 1 == count { 0 } else { 2 }));
            if right[index] {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        table
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect()
    }

    fn ours(rows: &[Vec<&str>], right: &[bool]) -> String {
        let mut grid = Grid::new(right.len(), rows.len());
        for row in rows {
            grid.push_row(row.iter().copied());
        }
        let mut out = Vec::new();
        grid.write(right, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn same_bytes_as_comfy_table_for_a_netstat_table() {
        let rows = vec![
            vec![
                "Proto",
                "Recv-Q",
                "Send-Q",
                "Local Address",
                "State",
                "PID/Program name",
            ],
            vec!["tcp", "0", "128", "0.0.0.0:22", "LISTEN", "812/sshd"],
            vec!["tcp6", "12345", "-", "*:443", "LISTEN", "900,901,+40/nginx"],
            vec!["udp", "0", "0", "[fe80::1]%eth0:546", "UNCONN", "-"],
        ];
        let right = [false, true, true, false, false, false];
        assert_eq!(ours(&rows, &right), comfy(&rows, &right));
    }

    #[test]
    fn same_bytes_as_comfy_table_for_wide_and_escaped_text() {
        let rows = vec![
            vec!["Proto", "PID/Program name", "User"],
            vec!["tcp", "7/日本語サーバ", "ユーザー"],
            vec!["udp", "8/work\\e[31mer\\nX", ""],
            vec!["tcp6", "", "root"],
        ];
        let right = [false, false, true];
        assert_eq!(ours(&rows, &right), comfy(&rows, &right));
    }

    #[test]
    fn single_column_and_empty_tables() {
        let rows = vec![vec!["Port"], vec!["22"], vec!["8080"]];
        assert_eq!(ours(&rows, &[true]), comfy(&rows, &[true]));
        assert_eq!(ours(&[], &[false, false]), "");
    }

    #[test]
    fn columns_are_aligned_and_lines_have_no_trailing_blanks() {
        let rows = vec![vec!["a", "bb", "c"], vec!["aaaa", "b", ""]];
        let text = ours(&rows, &[false, true, false]);
        assert_eq!(text, "a     bb  c\naaaa   b\n");
    }
}
