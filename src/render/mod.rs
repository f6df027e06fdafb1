//! Turning entries into output: one dispatch point over any writer, and the text shared by the
//! renderers (endpoints, the program column, table and CSV cells) built from one [`Labels`] of
//! resolved names.
//!
//! Only the table resolves names (unless `-n`); every machine format is numeric for hosts and
//! ports, so scripts never parse `ssh` where they expect `22`.

pub mod columns;
pub mod csv;
pub mod json;
pub mod labels;
pub mod prometheus;
pub mod published;
pub mod table;
pub mod wire;

use std::io::{self, Write};

use crate::config::{OutputFormat, RenderOptions};
use crate::enrich::exe::Executables;
use crate::model::Entry;
use columns::{Cells, Style};
pub use labels::Labels;

/// Render `entries` as `options` say. `exes` holds the executable paths the format shows
/// (empty when it shows none).
pub fn render(
    entries: &[Entry],
    options: &RenderOptions,
    exes: &Executables,
    out: &mut dyn Write,
) -> io::Result<()> {
    match options.format {
        OutputFormat::Table => {
            let labels = Labels::for_table(options.numeric, entries);
            let style = Style::Display { wide: options.wide };
            let mut cells = Cells::new(labels, exes, style);
            table::write_table(entries, options, &mut cells, out)
        }
        OutputFormat::Csv => {
            let mut cells = Cells::new(Labels::numeric(), exes, Style::Machine);
            csv::write_csv(entries, options, &mut cells, out)
        }
        OutputFormat::Json => json::write_json_array(entries, &mut Labels::numeric(), exes, out),
        OutputFormat::Jsonl => json::write_jsonl(entries, &mut Labels::numeric(), exes, out),
        OutputFormat::Prometheus => {
            prometheus::write_prometheus(entries, options, &mut Labels::numeric(), out)
        }
    }
}
