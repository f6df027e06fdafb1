//! What a run does ([`Action`]) and the resolved settings of each action: plain data that the
//! command line builds and the actions read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::filter::PortSet;
use crate::model::finding::Flag;

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
    /// Serve the listeners to Prometheus over HTTP (`serve`).
    Serve(ServeSpec),
}

impl Action {
    /// Whether the exit status is the answer (`audit`, `--wait`, `--wait-free`): a reader
    /// that closes the pipe early must not change it, as it ends a plain listing with 0.
    pub fn answers_by_exit_status(&self) -> bool {
        matches!(self, Action::Audit(_) | Action::Wait(_))
    }
}

/// A resolved `lsports audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSpec {
    /// `--baseline FILE`.
    pub baseline: Option<PathBuf>,
    /// `--policy FILE`.
    pub policy: Option<PathBuf>,
    /// `--fail-on`.
    pub fail: FailSet,
}

/// One choice of `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A baseline listener no longer listens.
    Missing,
    /// A holder's executable was deleted or replaced since it started.
    ExeDeleted,
    /// A holder's executable is in a temporary or world-writable directory.
    ExeWritableDir,
    /// A holder's executable path holds only in mounts an unprivileged user made.
    ExeMasked,
    /// Reachable from outside and held by root.
    RootExposed,
    /// No process holds it although every process could be inspected.
    NoOwner,
    /// Every check above.
    All,
    /// None of them: only unexpected listeners fail.
    None,
}

/// What fails an audit besides unexpected listeners and unmet `required` rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailSet {
    /// Missing baseline listeners.
    pub missing: bool,
    /// These suspicious-listener flags.
    pub flags: Vec<Flag>,
}

impl Default for FailSet {
    /// Executables that are gone or that anyone could have planted (or disguised, by a mount
    /// only they see): rare on a healthy host,
    /// and worth a failing cron job. Root on an exposed port is the normal state of sshd, and
    /// a kernel socket has no owner by nature, so those are reported without failing.
    fn default() -> Self {
        FailSet {
            missing: false,
            flags: vec![Flag::ExeDeleted, Flag::ExeWritableDir, Flag::ExeMasked],
        }
    }
}

impl FailSet {
    /// The set `--fail-on` chose, in order (`none,missing` is missing alone); the default
    /// when it was not given.
    pub fn from_choices(choices: &[FailOn]) -> FailSet {
        if choices.is_empty() {
            return FailSet::default();
        }
        let mut set = FailSet {
            missing: false,
            flags: Vec::new(),
        };
        for choice in choices {
            match choice {
                FailOn::Missing => set.missing = true,
                FailOn::ExeDeleted => set.flags.push(Flag::ExeDeleted),
                FailOn::ExeWritableDir => set.flags.push(Flag::ExeWritableDir),
                FailOn::ExeMasked => set.flags.push(Flag::ExeMasked),
                FailOn::RootExposed => set.flags.push(Flag::RootExposed),
                FailOn::NoOwner => set.flags.push(Flag::NoOwner),
                FailOn::All => {
                    set.missing = true;
                    set.flags = Flag::EVERY.to_vec();
                }
                FailOn::None => {
                    set.missing = false;
                    set.flags.clear();
                }
            }
        }
        set.flags.sort();
        set.flags.dedup();
        set
    }
}

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Something listens on every port (`--wait`).
    Listening,
    /// Nothing listens on any port (`--wait-free`).
    Free,
}

/// A resolved `--wait` or `--wait-free`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitSpec {
    /// The ports.
    pub ports: PortSet,
    /// Listening or free.
    pub until: Until,
    /// Give up after this long; `None` waits forever, zero checks once.
    pub timeout: Option<Duration>,
}

/// A resolved `lsports watch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// Time between polls.
    pub interval: Duration,
    /// Print no `present` events for the first poll.
    pub changes_only: bool,
    /// Kernel events or polling (`--events`).
    pub events: crate::config::EventsChoice,
}

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// The man page, roff source for `man -l -` or `/usr/share/man/man1/lsports.1`.
    Man,
    /// bash completion, for `/usr/share/bash-completion/completions/lsports`.
    Bash,
    /// zsh completion, for a directory on `$fpath` as `_lsports`.
    Zsh,
    /// fish completion, for `~/.config/fish/completions/lsports.fish`.
    Fish,
    /// elvish completion.
    Elvish,
    /// PowerShell completion.
    Powershell,
}

/// A resolved `lsports serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeSpec {
    /// Where the HTTP server listens (`--listen`).
    pub listen: SocketAddr,
    /// At most one listing per interval, shared by every scrape in it (`--interval`).
    pub interval: Duration,
    /// `--baseline FILE`: its audit's unexpected listeners are served too.
    pub baseline: Option<PathBuf>,
    /// `--policy FILE`: likewise.
    pub policy: Option<PathBuf>,
    /// Where the listener event counters come from (`--events`).
    pub events: crate::config::EventsChoice,
}

impl ServeSpec {
    /// The audit the scrapes carry, when a baseline or a policy was given. The suspicious
    /// flags are served as they are, not judged: an alert rule decides what fires.
    pub fn audit(&self) -> Option<AuditSpec> {
        (self.baseline.is_some() || self.policy.is_some()).then(|| AuditSpec {
            baseline: self.baseline.clone(),
            policy: self.policy.clone(),
            fail: FailSet::default(),
        })
    }
}
