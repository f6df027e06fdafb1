//! Which network namespaces an audit looked into: a baseline listener that is not found is
//! *missing* only where lsports looked for it. A namespace that was read, or that no longer
//! exists (a deleted container's listeners are gone), counts; a namespace found but not read
//! (unprivileged, refused, vanished while being read), one that may exist without having been
//! found (another user's processes hide theirs), or one the audit did not list at all (no
//! `--netns all`) does not: its baseline listeners are *not checked*, said once, and never
//! fail the audit.
//!
//! Baselines name namespaces by container, `ip netns` name or unit, never by inode
//! ([`Namespace`]); a namespace found is given every name it may go by (its mount's, and its
//! processes' container and unit), so an unread one covers each of them.

use std::cell::OnceCell;
use std::collections::HashSet;
use std::path::PathBuf;

use std::net::IpAddr;

use super::baseline::{AddressPattern, Expected};
use super::identity::Namespace;
use super::{Audited, UncheckedWhy};
use crate::config::{Config, NetnsChoice};
use crate::enrich::labels::apply::{Sources, process_labels_of};
use crate::model::Family;
use crate::model::coverage::{Coverage, FoundNetns};
use crate::text::sanitize::terminal_safe;

/// What an audit looked into.
#[derive(Debug)]
pub struct Scope {
    /// Whether lsports' own namespace was listed.
    lists_current: bool,
    /// Whether every namespace was looked for, and found (`--netns all`, nothing hidden).
    everywhere: bool,
    /// `--netns all` was asked for (else the reason not to check is not having asked).
    all: bool,
    coverage: Coverage,
    /// The namespaces of the listeners found.
    present: HashSet<Namespace>,
    proc_root: PathBuf,
    state_root: PathBuf,
    /// The names of the namespaces read and not read, worked out at the first question.
    names: OnceCell<(HashSet<Namespace>, HashSet<Namespace>)>,
}

impl Scope {
    /// The scope of an audit of `listeners` under `config`, whose collection read `coverage`.
    pub fn new(config: &Config, coverage: Coverage, listeners: &[Audited]) -> Scope {
        let present = (listeners.iter())
            .map(|l| l.identity.namespace.clone())
            .collect();
        let roots = (config.proc_root.clone(), config.state_root.clone());
        Scope::of(&config.netns, coverage, present, roots)
    }

    /// The scope of an audit of the namespaces `choice` names, whose collection read
    /// `coverage` and found listeners in the namespaces `present`; a found namespace's
    /// processes are labelled from `(proc_root, state_root)`.
    pub fn of(
        choice: &NetnsChoice,
        coverage: Coverage,
        present: HashSet<Namespace>,
        (proc_root, state_root): (PathBuf, PathBuf),
    ) -> Scope {
        let all = *choice == NetnsChoice::All;
        Scope {
            lists_current: all || *choice == NetnsChoice::Current,
            everywhere: all && !coverage.incomplete,
            all,
            coverage,
            present,
            proc_root,
            state_root,
            names: OnceCell::new(),
        }
    }

    /// Whether the listeners of `namespace` were looked for.
    pub fn checks(&self, namespace: &Namespace) -> bool {
        if *namespace == Namespace::Current {
            return self.lists_current;
        }
        let (read, unread) = self.names.get_or_init(|| self.names());
        if unread.contains(namespace) {
            return false;
        }
        read.contains(namespace) || self.present.contains(namespace) || self.everywhere
    }

    /// Why the baseline line `line`, not found, was not looked for (`None`: it was, and is
    /// missing): its namespace was not, or the socket table it would be in could not be read
    /// there (`--proc-root` a tree without `net/tcp`, a kernel refusing one table).
    pub fn unchecked(&self, line: &Expected) -> Option<UncheckedWhy> {
        if !self.checks(&line.namespace) {
            return Some(UncheckedWhy::Namespace);
        }
        // The tables reported are those of the namespace listed first: lsports' own when it
        // is listed, else the one `--netns` names, the only other one checked.
        let in_reported = self.lists_current == (line.namespace == Namespace::Current);
        let family = match line.address {
            AddressPattern::Exact(IpAddr::V4(_)) => Some(Family::Ipv4),
            AddressPattern::Exact(IpAddr::V6(_)) => Some(Family::Ipv6),
            AddressPattern::Exposure(_) | AddressPattern::Any => None,
        };
        let unread = (self.coverage.unread_tables.iter())
            .any(|&(p, f)| p == line.protocol && family.is_none_or(|family| family == f));
        (in_reported && unread).then_some(UncheckedWhy::Table)
    }

    /// Why the listeners not checked were not, for the report.
    pub fn why_not(&self) -> &'static str {
        if self.all {
            "their network namespace could not be read (the note on stderr says why; as root \
             they are checked)"
        } else {
            "this audit did not list their network namespace (audit with --netns all to check \
             them)"
        }
    }

    /// Every name the namespaces read go by, and every name the ones not read may.
    fn names(&self) -> (HashSet<Namespace>, HashSet<Namespace>) {
        let sources = Sources {
            proc_root: &self.proc_root,
            state_root: &self.state_root,
        };
        let names_of = |found: &[FoundNetns]| -> HashSet<Namespace> {
            found.iter().flat_map(|ns| names(ns, sources)).collect()
        };
        (
            names_of(&self.coverage.read),
            names_of(&self.coverage.unread),
        )
    }
}

/// The names a baseline may know namespace `found` by: its processes' containers, its
/// mount's name, its processes' units, and "unnamed" when neither a container nor a mount
/// names it (as [`Namespace::of`] names a listener's, with every candidate kept).
fn names(found: &FoundNetns, sources: Sources<'_>) -> Vec<Namespace> {
    let labels = match found.pids.is_empty() {
        true => Vec::new(),
        false => process_labels_of(&found.pids, sources),
    };
    let safe = |text: &str| terminal_safe(text.as_bytes()).into_owned();
    let mut names: Vec<Namespace> = (labels.iter())
        .filter_map(|l| l.container.as_ref())
        .map(|c| Namespace::Container(c.display_label()))
        .collect();
    if let Some(name) = &found.netns.name {
        names.push(Namespace::Netns(terminal_safe(name).into_owned()));
    }
    if names.is_empty() {
        names.push(Namespace::Unnamed);
    }
    names.extend(
        (labels.iter())
            .filter_map(|l| l.unit.as_deref())
            .map(|unit| Namespace::Unit(safe(unit))),
    );
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::audit::baseline::PortPattern;
    use crate::model::{Netns, Protocol};

    fn found(name: Option<&str>) -> FoundNetns {
        FoundNetns {
            netns: Netns {
                inode: 4026532000,
                name: name.map(|n| n.as_bytes().to_vec()),
            },
            pids: Vec::new(),
        }
    }

    fn scope(choice: NetnsChoice, coverage: Coverage, present: &[Namespace]) -> Scope {
        let roots = (PathBuf::from("/nonexistent"), PathBuf::from("/nonexistent"));
        Scope::of(&choice, coverage, present.iter().cloned().collect(), roots)
    }

    fn netns(name: &str) -> Namespace {
        Namespace::Netns(name.into())
    }

    #[test]
    fn a_namespace_found_but_not_read_is_not_checked_and_one_gone_is() {
        let coverage = Coverage {
            read: vec![found(Some("n3"))],
            unread: vec![found(Some("n1")), found(None)],
            incomplete: false,
            ..Coverage::default()
        };
        let scope = scope(NetnsChoice::All, coverage, &[]);
        assert!(!scope.checks(&netns("n1")), "found, not read");
        assert!(
            !scope.checks(&Namespace::Unnamed),
            "an unnamed one was not read"
        );
        assert!(scope.checks(&netns("n3")), "read, with nothing left in it");
        assert!(
            scope.checks(&netns("deleted")),
            "looked for everywhere: gone"
        );
        assert!(scope.checks(&Namespace::Current));
        assert!(scope.why_not().contains("could not be read"));
    }

    #[test]
    fn where_namespaces_may_hide_only_those_read_are_checked() {
        let coverage = Coverage {
            read: vec![found(Some("n3"))],
            unread: Vec::new(),
            incomplete: true,
            ..Coverage::default()
        };
        let web = Namespace::Container("web".into());
        let scope = scope(NetnsChoice::All, coverage, std::slice::from_ref(&web));
        assert!(scope.checks(&netns("n3")), "read");
        assert!(scope.checks(&web), "a listener of it was found");
        assert!(!scope.checks(&netns("n1")), "may exist unfound");
        assert!(!scope.checks(&Namespace::Unnamed));
        assert!(scope.checks(&Namespace::Current));
    }

    #[test]
    fn an_audit_of_one_namespace_checks_only_that_one() {
        let current = scope(NetnsChoice::Current, Coverage::default(), &[]);
        assert!(current.checks(&Namespace::Current));
        assert!(!current.checks(&netns("n1")));
        assert!(current.why_not().contains("--netns all"));
        let coverage = Coverage {
            read: vec![found(Some("w1"))],
            ..Coverage::default()
        };
        let named = scope(NetnsChoice::Named("w1".into()), coverage, &[]);
        assert!(named.checks(&netns("w1")));
        assert!(
            !named.checks(&Namespace::Current),
            "lsports' own was not listed"
        );
        assert!(!named.checks(&netns("n1")));
    }

    #[test]
    fn a_line_of_a_table_not_read_is_not_checked_in_the_namespace_it_was_not_read_in() {
        let coverage = Coverage {
            read: vec![found(Some("w1"))],
            unread_tables: vec![(Protocol::Tcp, Family::Ipv4)],
            ..Coverage::default()
        };
        let line = |protocol, address: AddressPattern, namespace| Expected {
            protocol,
            port: PortPattern::Number(22),
            address,
            interface: None,
            namespace,
            user: None,
            program: None,
            exe: None,
            line: None,
            reach: None,
        };
        let v4 = AddressPattern::Exact("0.0.0.0".parse().unwrap());
        let v6 = AddressPattern::Exact("::".parse().unwrap());
        let all = scope(NetnsChoice::All, coverage.clone(), &[]);
        let here = Namespace::Current;
        let table = Some(UncheckedWhy::Table);
        assert_eq!(
            all.unchecked(&line(Protocol::Tcp, v4.clone(), here.clone())),
            table
        );
        assert_eq!(
            all.unchecked(&line(Protocol::Tcp, AddressPattern::Any, here.clone())),
            table
        );
        assert_eq!(
            all.unchecked(&line(Protocol::Tcp, v6, here.clone())),
            None,
            "tcp6 was read"
        );
        assert_eq!(
            all.unchecked(&line(Protocol::Udp, v4.clone(), here.clone())),
            None
        );
        assert_eq!(
            all.unchecked(&line(Protocol::Tcp, v4.clone(), netns("w1"))),
            None,
            "the tables reported are lsports' own namespace's"
        );
        let named = scope(NetnsChoice::Named("w1".into()), coverage, &[]);
        assert_eq!(
            named.unchecked(&line(Protocol::Tcp, v4.clone(), netns("w1"))),
            table
        );
        assert_eq!(
            named.unchecked(&line(Protocol::Tcp, v4, here)),
            Some(UncheckedWhy::Namespace)
        );
    }
}
