//! Policies: a hand-written TOML allowlist (`lsports audit --policy FILE`).
//!
//! ```toml
//! default = "deny"            # a listener no rule matches is unexpected ("allow": expected)
//!
//! [[rule]]
//! name = "ssh"
//! action = "allow"
//! proto = "tcp"
//! port = 22
//! program = "sshd"
//! exe = "/usr/sbin/sshd"
//! required = true             # and report it missing when nothing matches
//!
//! [[rule]]
//! action = "deny"
//! exposure = "external"       # nothing else reachable from outside
//!
//! [[rule]]
//! action = "allow"
//! exposure = "loopback"
//! user = "postgres"
//!
//! [[rule]]
//! action = "allow"
//! container = "web-*"         # or unit = "*.service", netns = "w1" (with --netns all)
//! port = 8080
//!
//! [[rule]]
//! action = "allow"
//! port = 5432
//! reach = "filtered"          # only while the firewall drops what comes from outside
//! ```
//!
//! Rules are tried in order and the first one that matches a listener decides, as in a
//! firewall; the keys of one rule must all match. The file format and its checks are in
//! [`parse`].

pub mod parse;

use std::path::PathBuf;

use ipnet::IpNet;

use crate::actions::audit::identity::Identity;
use crate::filter::{Filter, Glob, PortSet};
use crate::model::exposure::{self, Exposure};
use crate::model::reach::Verdict;
use crate::model::{Entry, Protocol};

/// What a rule (or the default) does with a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The listener is expected.
    Allow,
    /// The listener is unexpected.
    Deny,
}

/// A policy file, checked.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it was read from.
    pub path: PathBuf,
    /// What happens to a listener no rule matches.
    pub default: Action,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// Things worth saying that do not stop the audit (a user unknown on this host).
    pub warnings: Vec<String>,
}

/// One `[[rule]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// 1-based position among the rules.
    pub number: usize,
    /// Line of its `[[rule]]` header.
    pub line: usize,
    /// Its `name`, if given.
    pub name: Option<String>,
    /// Allow or deny.
    pub action: Action,
    /// Report it missing when no listener matches (allow rules only).
    pub required: bool,
    /// What it matches.
    pub matcher: Matcher,
}

/// The conditions of a rule; an absent one matches anything.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// `proto`.
    pub protocol: Option<Protocol>,
    /// `port`: numbers and ranges.
    pub ports: Option<PortSet>,
    /// `port = "ephemeral"`: UDP client sockets (see [`crate::filter::ephemeral`]).
    pub ephemeral: bool,
    /// `address`: addresses and networks.
    pub addresses: Vec<IpNet>,
    /// `exposure`: classes.
    pub exposures: Vec<Exposure>,
    /// `user`: the uids it resolved to; `Some(empty)` when no name resolved (never matches).
    pub uids: Option<Vec<u32>>,
    /// `program`: globs over the process name or argv[0].
    pub programs: Vec<Glob>,
    /// `exe`: globs over the executable path.
    pub exes: Vec<Glob>,
    /// `container`: globs over the container's name or id, as `--container` matches.
    pub containers: Vec<Glob>,
    /// `unit`: globs over the systemd unit, as `--unit` matches.
    pub units: Vec<Glob>,
    /// `netns`: globs over the socket's network namespace as the `netns` column shows it
    /// (its mount name, else `net:[INODE]`, which `net:*` matches: `[` starts a glob class).
    pub netns: Vec<Glob>,
    /// `reach`: the firewall verdicts it matches; empty matches any.
    pub reach: Vec<Verdict>,
    /// How `reach` is read for a socket with a verdict per family: an allow rule matches
    /// only when every family's verdict is listed, a deny rule when any is (the safe reading
    /// both ways: a dual-stack socket open over IPv6 is neither allowed as "filtered" nor
    /// spared by a deny of "open").
    pub reach_in_every_family: bool,
}

/// What decided about a listener.
#[derive(Debug, Clone, Copy)]
pub enum Decision<'a> {
    /// The first rule that matched.
    Rule(&'a Rule),
    /// No rule matched; the policy's default applies.
    Default(Action),
}

impl Decision<'_> {
    /// The resulting action.
    pub fn action(self) -> Action {
        match self {
            Decision::Rule(rule) => rule.action,
            Decision::Default(action) => action,
        }
    }
}

/// Whether a rule matches a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Every condition holds.
    Yes,
    /// Some condition does not.
    No,
    /// Every condition the socket settles holds, and one only its holders could settle
    /// (`program`, `exe`, or a `user`, `container` or `unit` the socket itself is not) cannot
    /// be evaluated: no holder of it could be seen.
    Unknown,
}

/// What a policy says of a listener whose holders could not be seen (see [`Policy::judge`]).
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    /// The same whatever its holders are: the decision of the first rule that matches it
    /// surely, or the default.
    Decided(Decision<'a>),
    /// It depends on rules that look at holders: allowed by some, denied by others.
    Undecided {
        /// The rules that could not be evaluated before the one that decides otherwise, in
        /// order.
        rules: Vec<&'a Rule>,
        /// What decides when none of them matches.
        otherwise: Decision<'a>,
        /// Whether a deny rule among them could deny what would otherwise be allowed: then a
        /// deny the policy's author wrote cannot be checked, and the audit may not pass.
        /// (When only allow rules could not be evaluated, what hangs on them is whether an
        /// expected program is the one there, as for a baseline line.)
        deny_unevaluated: bool,
    },
}

impl Policy {
    /// The decision for the listener `entry`, whose identity is `identity`.
    pub fn decide(&self, entry: &Entry, identity: &Identity) -> Decision<'_> {
        self.rules
            .iter()
            .find(|rule| rule.matcher.matches(entry, identity))
            .map_or(Decision::Default(self.default), Decision::Rule)
    }

    /// [`Policy::decide`] for a listener whose holders could not be seen when `holders_unseen`
    /// (an unprivileged audit of other users' processes): the rules are tried in order as
    /// ever, a rule that looks at holders matches neither surely nor surely not, and the
    /// outcome is decided only when every rule it could hang on would do the same.
    pub fn judge(&self, entry: &Entry, identity: &Identity, holders_unseen: bool) -> Outcome<'_> {
        let mut unknown: Vec<&Rule> = Vec::new();
        let mut otherwise = Decision::Default(self.default);
        for rule in &self.rules {
            match rule.matcher.evaluate(entry, identity, holders_unseen) {
                Match::No => {}
                Match::Unknown => unknown.push(rule),
                Match::Yes => {
                    otherwise = Decision::Rule(rule);
                    break;
                }
            }
        }
        if unknown.iter().all(|r| r.action == otherwise.action()) {
            return Outcome::Decided(otherwise);
        }
        // A deny rule matters when an allow could come after it: a later rule that could not
        // be evaluated either, or what decides otherwise.
        let deny_unevaluated = unknown.iter().enumerate().any(|(i, rule)| {
            rule.action == Action::Deny
                && (otherwise.action() == Action::Allow
                    || unknown[i + 1..].iter().any(|r| r.action == Action::Allow))
        });
        Outcome::Undecided {
            rules: unknown,
            otherwise,
            deny_unevaluated,
        }
    }

    /// Why the default decided, for messages. "Allows" rather than "matches": for a listener
    /// whose holders could not be seen, a deny rule on holders may match it, and the default
    /// decides all the same.
    pub fn describe_default(&self) -> String {
        format!(
            "no rule of {} allows it, and its default is {}",
            self.path.display(),
            match self.default {
                Action::Allow => "allow",
                Action::Deny => "deny",
            }
        )
    }
}

impl Rule {
    /// `rule 3 "ssh" (policy.toml:12)`, for messages.
    pub fn describe(&self, path: &std::path::Path) -> String {
        let name = self
            .name
            .as_ref()
            .map(|n| format!(" {:?}", crate::text::sanitize::terminal_safe(n.as_bytes())))
            .unwrap_or_default();
        format!(
            "rule {}{name} ({}:{})",
            self.number,
            path.display(),
            self.line
        )
    }
}

impl Matcher {
    /// Whether every condition holds for the listener.
    pub fn matches(&self, entry: &Entry, identity: &Identity) -> bool {
        self.evaluate(entry, identity, false) == Match::Yes
    }

    /// Whether every condition holds for the listener; with `holders_unseen` (no holder of it
    /// could be seen, though it may have some), a condition only holders could settle is
    /// [`Match::Unknown`] rather than false.
    pub fn evaluate(&self, entry: &Entry, identity: &Identity, holders_unseen: bool) -> Match {
        if !self.matches_socket(entry, identity) {
            return Match::No;
        }
        self.matches_holders(entry, identity, holders_unseen)
    }

    /// The conditions the socket settles by itself.
    fn matches_socket(&self, entry: &Entry, identity: &Identity) -> bool {
        let socket = &entry.socket;
        let protocol_ok = self.protocol.is_none_or(|p| p == socket.protocol);
        let port_ok = match &self.ports {
            None => !self.ephemeral || identity.ephemeral,
            Some(ports) => {
                ports.contains(socket.local_port) || (self.ephemeral && identity.ephemeral)
            }
        };
        let address = exposure::unmapped(socket.local_addr);
        let address_ok =
            self.addresses.is_empty() || self.addresses.iter().any(|net| net.contains(&address));
        let exposure_ok = self.exposures.is_empty() || self.exposures.contains(&identity.exposure);
        protocol_ok
            && port_ok
            && address_ok
            && exposure_ok
            && self.matches_netns(socket)
            && self.matches_reach(entry)
    }

    /// The namespace's name (or `net:[INODE]`); a socket of unknown namespace matches no
    /// `netns` glob.
    fn matches_netns(&self, socket: &crate::model::Socket) -> bool {
        self.netns.is_empty()
            || socket.netns.as_ref().is_some_and(|ns| {
                let label = ns.label();
                self.netns.iter().any(|g| g.matches(&label))
            })
    }

    /// `reach`, read as [`Matcher::reach_in_every_family`] says; a socket whose reach was
    /// not evaluated matches no `reach` at all.
    fn matches_reach(&self, entry: &Entry) -> bool {
        if self.reach.is_empty() {
            return true;
        }
        let listed = |r: &crate::model::reach::Reach| self.reach.contains(&r.verdict);
        match self.reach_in_every_family {
            true => !entry.reach.is_empty() && entry.reach.iter().all(listed),
            false => entry.reach.iter().any(listed),
        }
    }

    /// User, program, executable, container and unit, with `--user`, `--program`,
    /// `--container` and `--unit`'s meaning. A user, container or unit is the socket's own or
    /// a holder's, so the socket may settle it; program and executable are only holders'.
    /// Each condition a seen holder does not meet is unknown when `holders_unseen`.
    fn matches_holders(&self, entry: &Entry, identity: &Identity, holders_unseen: bool) -> Match {
        if self.uids.as_ref().is_some_and(Vec::is_empty) {
            return Match::No;
        }
        let user = Filter {
            uids: self.uids.clone().unwrap_or_default(),
            ..Filter::default()
        };
        let program = Filter {
            programs: self.programs.clone(),
            ..Filter::default()
        };
        let labels = Filter {
            containers: self.containers.clone(),
            units: self.units.clone(),
            ..Filter::default()
        };
        let exe_ok = self.exes.is_empty()
            || identity.programs.iter().any(|p| {
                p.exe
                    .as_ref()
                    .is_some_and(|exe| self.exes.iter().any(|g| g.matches(exe.as_bytes())))
            });
        let conditions = [
            user.keeps_entry(entry),
            program.keeps_entry(entry),
            labels.keeps_entry(entry),
            exe_ok,
        ];
        match (conditions.iter().all(|ok| *ok), holders_unseen) {
            (true, _) => Match::Yes,
            (false, true) => Match::Unknown,
            (false, false) => Match::No,
        }
    }
}

#[cfg(test)]
mod tests;
