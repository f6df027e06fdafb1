//! Turning entries into output: one dispatch point over any writer, and the text shared by the
//! renderers (endpoints, the program column) built from one [`Labels`] of resolved names.

pub mod json;
pub mod labels;
pub mod safe_json;
pub mod table;

use std::io::{self, Write};

use crate::config::{Config, OutputFormat};
use crate::model::Entry;
pub use labels::Labels;

/// Render `entries` in the configured format.
pub fn render(
    entries: &[Entry],
    config: &Config,
    labels: &mut Labels,
    out: &mut dyn Write,
) -> io::Result<()> {
    match config.format {
        OutputFormat::Table => table::write_table(entries, config, labels, out),
        OutputFormat::Json => json::write_json(entries, labels, out),
    }
}
