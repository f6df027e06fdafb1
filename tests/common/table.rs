//! Reading lsports' default table: header columns, rows, and the Program cell.

/// The table: header column names (split on runs of 2+ spaces) and rows,
/// whose cells are split on whitespace; the last column (the program) takes
/// the rest of the line.
#[derive(Debug)]
pub struct Table {
    /// The text parsed, for messages.
    pub raw: String,
    /// The column names of the first line.
    pub header: Vec<String>,
    /// Every other non-blank line, as cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parse lsports' table output.
    pub fn parse(s: &str) -> Table {
        let mut lines = s.lines();
        let header_line = lines.next().unwrap_or("");
        let header: Vec<String> = header_line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let n = header.len();
        let mut rows = Vec::new();
        for line in lines {
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mut row: Vec<String> = fields
                .iter()
                .take(n.saturating_sub(1))
                .map(|s| s.to_string())
                .collect();
            if fields.len() >= n {
                row.push(fields[n - 1..].join(" "));
            }
            rows.push(row);
        }
        Table {
            raw: s.to_string(),
            header,
            rows,
        }
    }

    /// The index of column `name`, which must exist.
    pub fn col_index(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in header {:?}", self.header))
    }

    /// Cell `name` of `row` ("" when the row is short).
    pub fn cell<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        row.get(self.col_index(name))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Rows whose Local Address cell is exactly `local`.
    pub fn rows_with_local(&self, local: &str) -> Vec<&Vec<String>> {
        let i = self.col_index("Local Address");
        self.rows
            .iter()
            .filter(|r| r.get(i).map(String::as_str) == Some(local))
            .collect()
    }

    /// The only row with this Proto cell and Local Address cell.
    pub fn row_proto(&self, proto: &str, local: &str) -> &Vec<String> {
        let p = self.col_index("Proto");
        let v: Vec<&Vec<String>> = self
            .rows_with_local(local)
            .into_iter()
            .filter(|r| r.get(p).map(String::as_str) == Some(proto))
            .collect();
        assert_eq!(
            v.len(),
            1,
            "expected one {proto} row with local address {local:?} in:\n{}",
            self.raw
        );
        v[0]
    }

    /// The only row whose Local Address is `local`.
    pub fn row(&self, local: &str) -> &Vec<String> {
        let v = self.rows_with_local(local);
        assert_eq!(
            v.len(),
            1,
            "expected one row with local address {local:?} in:\n{}",
            self.raw
        );
        v[0]
    }
}

/// Parse a program cell `pid,pid/name;pid/name2` into (pids, name) parts.
pub fn parse_program(cell: &str) -> Vec<(Vec<u32>, String)> {
    if cell == "-" || cell.is_empty() {
        return Vec::new();
    }
    cell.split(';')
        .map(|part| {
            let (pids, name) = part
                .split_once('/')
                .unwrap_or_else(|| panic!("program cell part without '/': {part:?}"));
            let pids = pids
                .split(',')
                .map(|p| {
                    p.parse()
                        .unwrap_or_else(|_| panic!("bad pid {p:?} in program cell {cell:?}"))
                })
                .collect();
            (pids, name.to_string())
        })
        .collect()
}
