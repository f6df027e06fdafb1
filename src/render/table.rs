//! The netstat-style table: `Proto Recv-Q Send-Q Local Address Foreign Address State
//! PID/Program name` by default, `User Inode` before the program column under `-e`, or the
//! columns of `-o` in their order; the header row unless `--no-header`.
//!
//! The layout is comfy-table's borderless preset (`NOTHING`, padding `(0, 2)`, queues
//! right-aligned, trailing blanks trimmed), written by hand because it was measured faster:
//! comfy-table keeps several allocations per cell and a formatted copy of every row. Here
//! ([`Grid`]) each cell's text is appended to one shared buffer and the rows are written in a
//! second pass once the column widths are known; [`write_table`] measures the widths first
//! and fills a grid only a chunk of rows at a time. Rendering 25,000 rows of seven columns (release build,
//! 2 cores, interleaved runs; `measure_25000_rows_against_comfy_table` below) took 15–35 ms
//! and 4.5 MB of peak memory beyond the rows themselves, against comfy-table's 300–510 ms and
//! 51 MB: about 15 times faster and 11 times smaller. The unit tests hold this output to
//! comfy-table's, byte for byte, the measurement included.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use super::columns::Cells;
use crate::config::{Column, RenderOptions};
use crate::model::Entry;
use crate::sys::parallel;

/// Blanks between columns (comfy-table's right padding of 2).
const GAP: usize = 2;

/// Rows formatted at a time: the table's text is never whole in memory, only a few chunks.
const CHUNK_ROWS: usize = 1024;

/// Write the table for `entries` (already sorted).
///
/// Two passes, each over both cores ([`parallel`]): the first only measures every cell for
/// the column widths, the second formats the rows again, a chunk at a time, and writes them
/// in order. Formatting twice costs less than holding the whole table's text (3 MB for
/// 25,000 rows of seven columns), and each pass takes half the time on two cores.
pub fn write_table(
    entries: &[Entry],
    options: &RenderOptions,
    cells: &mut Cells<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let columns = &options.columns;
    let right: Vec<bool> = columns.iter().map(|c| c.right_aligned()).collect();
    let mut header = Grid::new(columns.len(), 1);
    if options.header {
        header.push_row(columns.iter().map(|c| c.header()));
    }
    let measured = parallel::halves(entries, cells, |cells, part| measure(part, columns, cells));
    for widths in measured {
        header.widen(&widths);
    }
    header.write(&right, out)?;
    let widths = &header.column_widths;
    parallel::chunks_in_order(
        entries,
        CHUNK_ROWS,
        cells,
        |cells, part| {
            let mut grid = Grid::new(columns.len(), part.len());
            grid.widen(widths);
            for entry in part {
                for &column in columns {
                    grid.push_cell_measured(|text| cells.write_measured(column, entry, text));
                }
            }
            let mut bytes = Vec::new();
            grid.write(&right, &mut bytes).map(|()| bytes)
        },
        |bytes| out.write_all(&bytes?),
    )
}

/// The width of each column over `entries`' cells.
fn measure(entries: &[Entry], columns: &[Column], cells: &mut Cells<'_>) -> Vec<usize> {
    let mut widths = vec![0; columns.len()];
    let mut text = String::new();
    for entry in entries {
        for (width, &column) in widths.iter_mut().zip(columns) {
            text.clear();
            let known = cells.write_measured(column, entry, &mut text);
            let cell = known.map_or_else(|| cell_width(&text), saturate);
            *width = (*width).max(usize::from(cell));
        }
    }
    widths
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
        self.push_cell_measured(|text| {
            write(text);
            None
        });
    }

    /// [`Grid::push_cell_with`] for a `write` that may say the cell's display width (see
    /// [`Cells::write_measured`]), which is then not measured again.
    pub fn push_cell_measured(&mut self, write: impl FnOnce(&mut String) -> Option<usize>) {
        let column = self.ends.len() % self.columns.max(1);
        let start = self.text.len();
        let known = write(&mut self.text);
        let width = match known {
            Some(width) => saturate(width),
            None => cell_width(&self.text[start..]),
        };
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
        self.widths.push(width);
        self.column_widths[column] = self.column_widths[column].max(usize::from(width));
    }

    /// Make each column at least as wide as `widths` says (those of other rows).
    pub fn widen(&mut self, widths: &[usize]) {
        for (mine, &theirs) in self.column_widths.iter_mut().zip(widths) {
            *mine = (*mine).max(theirs);
        }
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
            // One write per row, the trailing blanks cut and the newline added in place.
            line.truncate(line.trim_end().len());
            line.push('\n');
            out.write_all(line.as_bytes())?;
            line.clear();
        }
        Ok(())
    }
}

/// Columns `cell` takes on a terminal, as the grid keeps it: cells are short (the widest is a
/// PID list), so it saturates rather than wraps if not.
fn cell_width(cell: &str) -> u16 {
    saturate(display_width(cell))
}

/// A cell's width as the grid keeps it (see [`cell_width`]).
fn saturate(width: usize) -> u16 {
    u16::try_from(width).unwrap_or(u16::MAX)
}

/// Columns `cell` takes on a terminal; printable ASCII, nearly every cell, is one per byte.
pub(super) fn display_width(cell: &str) -> usize {
    if cell.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        cell.len()
    } else {
        cell.width()
    }
}

/// Append `count` blanks: a slice at a time, not a `char` at a time (every padded cell of
/// every row).
fn push_blanks(line: &mut String, mut count: usize) {
    const BLANKS: &str = "                                                                ";
    while count > 0 {
        let now = count.min(BLANKS.len());
        line.push_str(&BLANKS[..now]);
        count -= now;
    }
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

    /// 25,000 rows as a busy host lists them: a prefork server's PID lists, IPv6 and
    /// device-bound addresses, a few names that need escaping.
    fn busy_host(rows: usize) -> Vec<Vec<String>> {
        let header = [
            "Proto",
            "Recv-Q",
            "Send-Q",
            "Local Address",
            "Foreign Address",
            "State",
        ];
        let mut table = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
        table[0].push("PID/Program name".into());
        for i in 0..rows {
            let local = match i % 3 {
                0 => format!("10.{}.{}.1:{}", i / 250 % 250, i % 250, 1024 + i % 60000),
                1 => format!("[fd00::{i:x}]:{}", 1024 + i % 60000),
                _ => format!("0.0.0.0%eth{}:{}", i % 8, 1024 + i % 60000),
            };
            let program = match i % 50 {
                0 => format!("{i},{},{},+37/nginx", i + 1, i + 2),
                1 => format!("{i}/work\\e[31mer"),
                _ => format!("{i}/svc{}", i % 97),
            };
            let row = ["tcp", "0", "128", &local, "0.0.0.0:*", "LISTEN", &program];
            table.push(row.iter().map(|c| c.to_string()).collect());
        }
        table
    }

    /// The measurement behind the module doc, run on demand (in release mode, alone):
    /// `cargo test --release --lib render::table::tests::measure -- --ignored --nocapture`.
    /// `LSPORTS_TABLE_ONLY=ours|comfy` renders with one of them only, so that the process's
    /// peak RSS (printed) is that renderer's.
    #[test]
    #[ignore = "a measurement, not a check: run it alone in release mode"]
    fn measure_25000_rows_against_comfy_table() {
        let owned = busy_host(25_000);
        let rows: Vec<Vec<&str>> = owned
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let right = [false, true, true, false, false, false, false];
        let only = std::env::var("LSPORTS_TABLE_ONLY").unwrap_or_default();
        let peak = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let line = status
                .lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string);
            line.unwrap_or_default()
        };
        println!("the rows alone: {}", peak());
        let time = |name: &str, render: &dyn Fn() -> String| -> Option<String> {
            if !only.is_empty() && only != name {
                return None;
            }
            let started = std::time::Instant::now();
            let text = render();
            println!("{name}: {:?} ({})", started.elapsed(), peak());
            Some(text)
        };
        let ours = time("ours", &|| ours(&rows, &right));
        let comfy = time("comfy", &|| comfy(&rows, &right));
        if let (Some(ours), Some(comfy)) = (ours, comfy) {
            assert_eq!(ours, comfy, "the same bytes at 25,000 rows");
        }
    }

    /// Rows over many chunks, the widest cells of each column in a late chunk: the table
    /// written a chunk at a time (on two threads) is the one the whole grid gives.
    #[test]
    fn a_table_written_in_chunks_is_the_whole_grid() {
        use crate::config::{Numeric, OutputFormat};
        use crate::enrich::exe::Executables;
        use crate::model::{Entry, OwnerProcess, Protocol, Socket};
        use crate::render::Labels;
        use crate::render::columns::Style;
        let rows = 3 * CHUNK_ROWS + 17;
        let entries: Vec<Entry> = (0..rows)
            .map(|i| {
                let wide = i == 2 * CHUNK_ROWS + 5;
                let addr = if wide {
                    "fd00:1:2:3:4:5:6:7"
                } else {
                    "10.0.0.1"
                };
                let owner = OwnerProcess {
                    pid: if wide { 4_000_000 } else { i as u32 + 1 },
                    fd: 3,
                    name: Some(b"svc".into()),
                    cmdline: None,
                    uid: None,
                    labels: None,
                };
                Entry {
                    socket: Socket::listening(Protocol::Tcp, addr, (i % 60_000) as u16),
                    processes: crate::model::Owners::one(owner),
                    owner_unknown: None,
                    findings: Default::default(),
                    labels: None,
                    reach: Default::default(),
                }
            })
            .collect();
        let columns = vec![Column::Proto, Column::RecvQ, Column::Local, Column::Process];
        let options = RenderOptions {
            format: OutputFormat::Table,
            columns: columns.clone(),
            header: true,
            numeric: Numeric {
                hosts: true,
                ports: true,
                users: true,
            },
            wide: false,
            protocols: vec![Protocol::Tcp],
            families: Vec::new(),
            reach_label: false,
        };
        let exes = Executables::default();
        let cells = || Cells::new(Labels::numeric(), &exes, Style::Display { wide: false });
        let mut chunked = Vec::new();
        write_table(&entries, &options, &mut cells(), &mut chunked).unwrap();
        let mut grid = Grid::new(columns.len(), rows + 1);
        grid.push_row(columns.iter().map(|c| c.header()));
        let mut cells = cells();
        for entry in &entries {
            for &column in &columns {
                grid.push_cell_with(|text| cells.write(column, entry, text));
            }
        }
        let mut whole = Vec::new();
        let right: Vec<bool> = columns.iter().map(|c| c.right_aligned()).collect();
        grid.write(&right, &mut whole).unwrap();
        let chunked = String::from_utf8(chunked).unwrap();
        assert_eq!(chunked.lines().count(), rows + 1);
        assert_eq!(chunked, String::from_utf8(whole).unwrap());
    }

    #[test]
    fn columns_are_aligned_and_lines_have_no_trailing_blanks() {
        let rows = vec![vec!["a", "bb", "c"], vec!["aaaa", "b", ""]];
        let text = ours(&rows, &[false, true, false]);
        assert_eq!(text, "a     bb  c\naaaa   b\n");
    }
}
