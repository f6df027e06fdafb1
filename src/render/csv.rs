//! CSV: a header row of column keys (unless `--no-header`), then one row per socket, quoted as
//! RFC 4180 says. Lines end in `\n`, as Unix tools expect; RFC 4180 readers accept it.
//!
//! Cells come from [`Cells`] in machine notation, so names are already terminal-safe: a quoted
//! field never needs to carry a raw newline, and no control character reaches a spreadsheet or
//! a terminal. Values are not altered against spreadsheet formula injection (`=`, `+`, `-`,
//! `@`): scripts need the exact text; import into a spreadsheet as text.

use std::borrow::Cow;
use std::io::{self, Write};

use super::columns::Cells;
use crate::config::RenderOptions;
use crate::model::Entry;

/// Write `entries` as CSV.
pub fn write_csv(
    entries: &[Entry],
    options: &RenderOptions,
    cells: &mut Cells<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let columns = &options.columns;
    if options.header {
        let header: Vec<&str> = columns.iter().map(|c| c.key()).collect();
        write_record(out, header.into_iter())?;
    }
    for entry in entries {
        let row: Vec<String> = columns.iter().map(|&c| cells.text(c, entry)).collect();
        write_record(out, row.iter().map(String::as_str))?;
    }
    Ok(())
}

fn write_record<'a>(out: &mut dyn Write, fields: impl Iterator<Item = &'a str>) -> io::Result<()> {
    let line: Vec<Cow<'a, str>> = fields.map(quote).collect();
    writeln!(out, "{}", line.join(","))
}

/// Quote a field when a reader could misread it: it holds a separator, a quote or a line
/// break, or starts or ends with a space (which some readers trim).
pub fn quote(field: &str) -> Cow<'_, str> {
    let needs_quotes =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs_quotes {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_are_left_alone() {
        assert_eq!(quote("nginx"), "nginx");
        assert_eq!(quote(""), "");
        assert_eq!(quote("0.0.0.0:22"), "0.0.0.0:22");
    }

    #[test]
    fn separators_quotes_and_edges_are_quoted() {
        assert_eq!(quote("812,813"), "\"812,813\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote(" lead"), "\" lead\"");
        assert_eq!(quote("a\nb"), "\"a\nb\"");
    }
}
