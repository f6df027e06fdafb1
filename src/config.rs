//! The resolved configuration: what to collect, what to show and how. Plain data, built by
//! `Cli::resolve`, read by every stage.

use std::path::PathBuf;

use crate::model::{Family, Protocol};
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

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// netstat-style table.
    Table,
    /// One JSON array.
    Json,
}

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Protocols to show, in display order.
    pub protocols: Vec<Protocol>,
    /// Families to show.
    pub families: Vec<Family>,
    /// Listening only, or every state.
    pub states: StateSelection,
    /// Lookups to skip.
    pub numeric: Numeric,
    /// Add the User and Inode columns.
    pub extend: bool,
    /// Never shorten the program column.
    pub wide: bool,
    /// Output format.
    pub format: OutputFormat,
    /// Where sockets come from.
    pub source: SourceChoice,
    /// Report sources and fallbacks on stderr.
    pub verbose: bool,
    /// Root of the proc filesystem.
    pub proc_root: PathBuf,
}

impl Config {
    /// The (protocol, family) tables to collect, in display order.
    pub fn tables(&self) -> Vec<(Protocol, Family)> {
        self.protocols
            .iter()
            .flat_map(|&p| self.families.iter().map(move |&f| (p, f)))
            .collect()
    }
}
