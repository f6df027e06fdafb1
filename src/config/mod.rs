//! The resolved configuration: what to do, what to collect, what to show and how. Plain data,
//! built by `Cli::resolve`, read by every stage.

mod action;
mod choices;
mod columns;
mod output;

use std::path::PathBuf;

use crate::filter::Filter;
use crate::model::{Family, Protocol};
pub use action::{
    Action, AuditSpec, FailOn, FailSet, Generated, ServeSpec, Until, WaitSpec, WatchSpec,
};
pub use choices::{
    AttributionChoice, DetailFields, EventsChoice, Needs, NetnsChoice, SourceChoice, StateSelection,
};
pub use columns::Column;
pub use output::{Numeric, OutputFormat, RenderOptions};

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
    /// Root under which container runtimes' state files and systemd's unit files are read
    /// for labels (`/`; the hidden `--state-root` points tests at a fake tree).
    pub state_root: PathBuf,
    /// Which network namespaces to list (`--netns`).
    pub netns: NetnsChoice,
    /// Notes on how the command line was read (netstat's `-o` timers), printed on stderr
    /// before the run.
    pub notes: Vec<String>,
    /// Evaluate the firewall for every socket, for a format that shows it only when asked
    /// (`--reach`: the table's and CSV's `reach` column, Prometheus' `reach` label).
    pub reach: bool,
    /// List published ports too (`--published`): DNAT/redirect rules and docker-proxy
    /// mappings, as rows of their own.
    pub published: bool,
}

impl Config {
    /// The (protocol, family) tables to collect, in display order.
    pub fn tables(&self) -> Vec<(Protocol, Family)> {
        self.protocols
            .iter()
            .flat_map(|&p| self.families.iter().map(move |&f| (p, f)))
            .collect()
    }

    /// The columns the table or CSV shows: the chosen ones, or the format's default (with
    /// `reach` last under `--reach`).
    pub fn shown_columns(&self) -> Vec<Column> {
        let mut columns = self.chosen_or_default_columns();
        if self.reach && !columns.contains(&Column::Reach) {
            columns.push(Column::Reach);
        }
        columns
    }

    fn chosen_or_default_columns(&self) -> Vec<Column> {
        match &self.columns {
            Some(columns) => columns.clone(),
            None if self.format == OutputFormat::Csv => {
                Column::csv_default(self.states == StateSelection::All)
            }
            None => Column::table_default(self.extend),
        }
    }

    /// What the output and the filters need read beyond the sockets: the format's own needs,
    /// each shown column's, and the filters' ([`Config::filter_needs`]).
    pub fn needs(&self) -> Needs {
        let mut needs = self.format.needs().and(self.filter_needs());
        needs.reach |= self.reach;
        if self.published {
            // The container a published port lands in is the label of its listener.
            needs = needs.and(Needs {
                processes: true,
                labels: true,
                ..Needs::NOTHING
            });
        }
        if self.format.has_columns() {
            for column in self.shown_columns() {
                needs = needs.and(column.needs());
            }
            // The container and unit columns join the default ones when `--netns all` finds
            // more than one namespace (`Listing::render_options`), which is known only later.
            if self.columns.is_none() && self.netns == NetnsChoice::All {
                needs = needs
                    .and(Column::Container.needs())
                    .and(Column::Unit.needs());
            }
        }
        needs
    }

    /// What the process filters need read: the holders, the command line for `--program`'s
    /// match on `argv[0]`, the uid for `--user`, the labels for `--container` and `--unit`.
    pub fn filter_needs(&self) -> Needs {
        Needs {
            labels: self.filter.needs_labels(),
            // A filter keeps a socket by its own labels or any holder's.
            holder_labels: self.filter.needs_labels(),
            processes: self.filter.needs_processes(),
            executables: false,
            details: DetailFields {
                cmdline: !self.filter.programs.is_empty(),
                uid: !self.filter.uids.is_empty(),
            },
            findings: false,
            reach: self.filter.reachable,
        }
    }

    /// What the renderer needs to know, and nothing else.
    pub fn render_options(&self) -> RenderOptions {
        RenderOptions {
            format: self.format,
            columns: self.shown_columns(),
            header: self.header,
            numeric: self.numeric,
            wide: self.wide,
            protocols: self.protocols.clone(),
            families: self.families.clone(),
            reach_label: self.reach,
        }
    }
}
