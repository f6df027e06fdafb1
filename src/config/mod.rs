//! The resolved configuration: what to do, what to collect, what to show and how. Plain data,
//! built by `Cli::resolve`, read by every stage.

use std::path::PathBuf;
use std::time::Duration;

use crate::actions::audit::AuditSpec;
use crate::actions::generate::Generated;
use crate::actions::wait::WaitSpec;
use crate::actions::watch::WatchSpec;
use crate::filter::Filter;
use crate::model::{Family, Protocol};
use crate::process::{AttributionChoice, DetailFields};
use crate::render::columns::Column;
use crate::source::SourceChoice;
use crate::source::netlink::StateSelection;

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
}

/// What a run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// List sockets (the default).
    List,
    /// Wait until ports are listened on, or free (`--wait`, `--wait-free`).
    Wait(WaitSpec),
    /// Print a man page or a shell completion script (`--generate`).
    Generate(Generated),
    /// Reprint the listing every interval, as netstat -c does (`-c`).
    Continuous(Duration),
    /// Print an event each time a listener opens or closes (`watch`).
    Watch(WatchSpec),
    /// Compare the listeners with a baseline and/or a policy (`audit`).
    Audit(AuditSpec),
    /// Record the listeners into a baseline file (`baseline save FILE`).
    SaveBaseline {
        /// The file (`-`: standard output).
        file: PathBuf,
        /// Replace an existing file.
        force: bool,
    },
    /// Write a snapshot of the proc tree (`capture OUT`).
    Capture {
        /// The snapshot file.
        out: PathBuf,
        /// Replace an existing file.
        force: bool,
    },
}

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to do.
    pub action: Action,
    /// Protocols to show, in display order.
    pub protocols: Vec<Protocol>,
    /// Families to show.
    pub families: Vec<Family>,
    /// Listening only, or every state.
    pub states: StateSelection,
    /// Which sockets to keep beyond protocol, family and state.
    pub filter: Filter,
    /// Lookups to skip.
    pub numeric: Numeric,
    /// Add the User and Inode columns.
    pub extend: bool,
    /// Never shorten the program column.
    pub wide: bool,
    /// Output format.
    pub format: OutputFormat,
    /// Columns of the table or CSV, in order; `None` for the format's default.
    pub columns: Option<Vec<Column>>,
    /// Print the header row of the table or CSV.
    pub header: bool,
    /// Where sockets come from.
    pub source: SourceChoice,
    /// Report sources and fallbacks on stderr.
    pub verbose: bool,
    /// How socket owners are found (`--attribution`).
    pub attribution: AttributionChoice,
    /// Root of the proc filesystem (`--proc-root`; for `--snapshot`, set once it is unpacked).
    pub proc_root: PathBuf,
    /// Snapshot file to read instead of the live system (`--snapshot`); unpacked by `run`.
    pub snapshot: Option<PathBuf>,
    /// Notes on how the command line was read (netstat's `-o` timers), printed on stderr
    /// before the run.
    pub notes: Vec<String>,
}

impl Config {
    /// The (protocol, family) tables to collect, in display order.
    pub fn tables(&self) -> Vec<(Protocol, Family)> {
        self.protocols
            .iter()
            .flat_map(|&p| self.families.iter().map(move |&f| (p, f)))
            .collect()
    }

    /// The columns the table or CSV shows: the chosen ones, or the format's default.
    pub fn shown_columns(&self) -> Vec<Column> {
        match &self.columns {
            Some(columns) => columns.clone(),
            None if self.format == OutputFormat::Csv => {
                Column::csv_default(self.states == StateSelection::All)
            }
            None => Column::table_default(self.extend),
        }
    }

    /// Whether the run must find the processes holding each socket: for a filter on them,
    /// for a column showing them, and for the formats that always describe them.
    pub fn needs_processes(&self) -> bool {
        self.filter.needs_processes()
            || !self.format.has_columns()
            || self.shown_columns().iter().any(|c| c.needs_processes())
    }

    /// Which process details beyond the name the output and filters use: every one for the
    /// machine formats, else what the shown columns and the filters read (the command line
    /// for `--program`'s match on `argv[0]` and the `cmdline` column, the uid for `--user`
    /// and the `flags` column).
    pub fn needs_details(&self) -> DetailFields {
        if !self.format.has_columns() {
            return DetailFields::ALL;
        }
        let columns = self.shown_columns();
        DetailFields {
            cmdline: !self.filter.programs.is_empty() || columns.contains(&Column::Cmdline),
            uid: !self.filter.uids.is_empty() || columns.contains(&Column::Flags),
        }
    }

    /// Whether the executable path of each shown process must be read.
    pub fn needs_executables(&self) -> bool {
        matches!(self.format, OutputFormat::Json | OutputFormat::Jsonl)
            || (self.format.has_columns()
                && self
                    .shown_columns()
                    .iter()
                    .any(|c| matches!(c, Column::Exe | Column::Flags)))
    }
}
