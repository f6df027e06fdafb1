//! How the output looks: the format, the lookups to skip, and the [`RenderOptions`] a renderer
//! gets instead of the whole configuration.

use super::{Column, Needs};
use crate::model::{Family, Protocol};

/// Which lookups to skip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Numeric {
    /// Show addresses, not host names.
    pub hosts: bool,
    /// Show port numbers, not service names.
    pub ports: bool,
    /// Show uids, not user names.
    pub users: bool,
}

/// Output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// netstat-style table.
    Table,
    /// One JSON array of socket objects.
    Json,
    /// One JSON socket object per line (JSON Lines).
    Jsonl,
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// Prometheus text exposition format, for node_exporter's textfile collector.
    Prometheus,
}

impl OutputFormat {
    /// Whether the format is made of columns (`--columns`, `--no-header` apply).
    pub fn has_columns(self) -> bool {
        matches!(self, OutputFormat::Table | OutputFormat::Csv)
    }

    /// What the format itself needs read: the JSON formats describe every holder with its
    /// executable and every socket's reach, Prometheus every holder; a table or CSV needs
    /// only what its columns show. None shows the suspicious-listener flags but through the
    /// `flags` column; Prometheus shows reach only when asked (`--reach`), so that its series
    /// stay the same from one run to the next.
    pub fn needs(self) -> Needs {
        let every_exe = Needs {
            findings: false,
            ..Needs::EVERYTHING
        };
        // Prometheus labels each series by its socket's unit and container only.
        let every_holder = Needs {
            executables: false,
            reach: false,
            holder_labels: false,
            ..every_exe
        };
        match self {
            OutputFormat::Table | OutputFormat::Csv => Needs::NOTHING,
            OutputFormat::Json | OutputFormat::Jsonl => every_exe,
            OutputFormat::Prometheus => every_holder,
        }
    }
}

/// What a renderer is told: the format and the settings that shape it.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Output format.
    pub format: OutputFormat,
    /// Columns of the table or CSV, in order (the chosen ones or the format's default).
    pub columns: Vec<Column>,
    /// Print the header row of the table or CSV.
    pub header: bool,
    /// Lookups to skip (the table only; the machine formats are always numeric).
    pub numeric: Numeric,
    /// Never shorten the program column.
    pub wide: bool,
    /// Protocols shown, in display order (Prometheus writes a zero for each).
    pub protocols: Vec<Protocol>,
    /// Families shown.
    pub families: Vec<Family>,
    /// Label each Prometheus series with the socket's reach (`--reach`).
    pub reach_label: bool,
}
