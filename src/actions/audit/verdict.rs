//! The verdict of an audit: which listeners are unexpected and why, which expected ones are
//! missing, which are suspicious, and whether all that fails the audit. Pure: the inputs are
//! listeners already identified and inspected, so every rule here is tested without sockets.

use crate::actions::audit::baseline::{Baseline, Expected};
use crate::actions::audit::identity::{Identity, Namespace};
use crate::actions::audit::policy::{Action, Decision, Policy};
use crate::config::FailSet;
use crate::model::finding::Finding;
use crate::model::{Entry, OwnerUnknownReason};

/// One listener, with everything an audit needs to know about it.
#[derive(Debug, Clone)]
pub struct Audited {
    /// The socket and its holders.
    pub entry: Entry,
    /// What it is.
    pub identity: Identity,
    /// What looks suspicious about it.
    pub findings: Vec<Finding>,
    /// The holders' executable links, in the order of `entry.processes` (for JSON).
    pub exes: Vec<Option<Vec<u8>>>,
}

/// Why a listener is unexpected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The baseline expects nothing at its protocol, address and port.
    New,
    /// The baseline expects a listener there, but of another program or user.
    Changed {
        /// The baseline lines for that place.
        expected: Vec<Expected>,
    },
    /// A deny rule of the policy matched it (index into the rules).
    Denied(usize),
    /// No rule matched, and the policy's default is deny.
    NotAllowed,
    /// The baseline expects it, with another reach through the firewall.
    ReachChanged {
        /// The baseline line, with the reach it recorded.
        expected: Expected,
        /// Its reach now.
        now: String,
    },
}

/// An expected listener that is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A baseline line (the first of its socket's lines).
    Baseline(Expected),
    /// A `required` policy rule no listener matches (index into the rules).
    Rule(usize),
}

/// A baseline line the audit could not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    /// The line (the first of its socket's lines).
    pub line: Expected,
    /// Why it was not checked.
    pub why: UncheckedWhy,
}

/// Why a baseline line was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UncheckedWhy {
    /// Its network namespace was not read (the audit's scope says why).
    Namespace,
    /// A socket listens where it expects one, as its user, but no holder of it could be seen
    /// (`Permission`: processes this user may not inspect; `OutsidePidNamespace`: holders
    /// outside this PID namespace), so the program it expects can be neither confirmed nor
    /// denied. An unprivileged audit of a root-owned service lands here, not in "changed".
    HolderUnseen(OwnerUnknownReason),
}

/// Everything an audit found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Unexpected listeners: index into the listeners, and every reason.
    pub unexpected: Vec<(usize, Vec<Reason>)>,
    /// Expected listeners not found.
    pub missing: Vec<Missing>,
    /// Baseline lines (the first of each socket's) not checked, and why: their network
    /// namespace was not read, or something listens there whose holder could not be seen.
    /// Reported, never failing: they may be there, as expected.
    pub unchecked: Vec<Unchecked>,
    /// Whether the audit fails (exit status 1).
    pub fails: bool,
}

/// Judge `listeners` against a baseline and/or a policy; both must accept a listener for it
/// to be expected.
pub fn judge(
    listeners: &[Audited],
    baseline: Option<&Baseline>,
    policy: Option<&Policy>,
    fail: &FailSet,
) -> Verdict {
    judge_within(listeners, baseline, policy, fail, &|_| true)
}

/// [`judge`], where `checked` says whether the listeners of a network namespace were looked
/// for: a baseline line not found in one that was not is `unchecked`, not missing.
pub fn judge_within(
    listeners: &[Audited],
    baseline: Option<&Baseline>,
    policy: Option<&Policy>,
    fail: &FailSet,
    checked: &dyn Fn(&Namespace) -> bool,
) -> Verdict {
    let mut verdict = Verdict::default();
    for (index, listener) in listeners.iter().enumerate() {
        let unseen = holder_unseen(listener);
        let mut reasons = Vec::new();
        match (baseline, unseen) {
            (Some(b), Some(why)) => match line_for_unseen_holder(b, &listener.identity) {
                Some(line) => {
                    // A socket on both families (two listeners) is one line, said once.
                    if !verdict.unchecked.iter().any(|u| u.line.same_socket(line)) {
                        verdict.unchecked.push(Unchecked {
                            line: line.clone(),
                            why: UncheckedWhy::HolderUnseen(why),
                        });
                    }
                }
                None => reasons.extend(baseline_reason(b, &listener.identity)),
            },
            (Some(b), None) => reasons.extend(baseline_reason(b, &listener.identity)),
            (None, _) => {}
        }
        reasons.extend(baseline.and_then(|b| reach_changed(b, &listener.identity, unseen)));
        reasons.extend(policy.and_then(|p| policy_reason(p, listener)));
        if !reasons.is_empty() {
            verdict.unexpected.push((index, reasons));
        }
    }
    let identities: Vec<&Identity> = listeners.iter().map(|l| &l.identity).collect();
    let (baseline_missing, unchecked): (Vec<Expected>, Vec<Expected>) = baseline
        .map(|b| missing_lines(b, &identities))
        .unwrap_or_default()
        .into_iter()
        .partition(|line| checked(&line.namespace));
    (verdict.unchecked).extend(unchecked.into_iter().map(|line| Unchecked {
        line,
        why: UncheckedWhy::Namespace,
    }));
    let rules_missing = policy
        .map(|p| missing_rules(p, listeners))
        .unwrap_or_default();
    let flag_fails = listeners
        .iter()
        .flat_map(|l| &l.findings)
        .any(|f| fail.flags.contains(&f.flag));
    verdict.fails = !verdict.unexpected.is_empty()
        || (fail.missing && !baseline_missing.is_empty())
        || !rules_missing.is_empty()
        || flag_fails;
    verdict.missing = baseline_missing
        .into_iter()
        .map(Missing::Baseline)
        .collect();
    verdict
        .missing
        .extend(rules_missing.into_iter().map(Missing::Rule));
    verdict
}

fn baseline_reason(baseline: &Baseline, identity: &Identity) -> Option<Reason> {
    if baseline.expected.iter().any(|e| e.accepts(identity)) {
        return None;
    }
    let here: Vec<Expected> = baseline
        .expected
        .iter()
        .filter(|e| e.covers(identity))
        .cloned()
        .collect();
    Some(if here.is_empty() {
        Reason::New
    } else {
        Reason::Changed { expected: here }
    })
}

/// Why no holder of `listener` could be seen, when that may hide the one it has: some
/// processes could not be inspected, or its holders live outside this PID namespace.
fn holder_unseen(listener: &Audited) -> Option<OwnerUnknownReason> {
    if !listener.entry.processes.is_empty() {
        return None;
    }
    (listener.entry.owner_unknown).filter(|r| {
        matches!(
            r,
            OwnerUnknownReason::Permission | OwnerUnknownReason::OutsidePidNamespace
        )
    })
}

/// The first baseline line that expects a listener where `identity` is, as its user, whatever
/// program it names: for a listener whose holders could not be seen.
fn line_for_unseen_holder<'a>(baseline: &'a Baseline, identity: &Identity) -> Option<&'a Expected> {
    (baseline.expected.iter()).find(|e| e.accepts_unseen_holder(identity))
}

/// A listener the baseline accepts, whose every accepting line with a recorded reach says
/// another one than it has now (when its reach now is known). For a listener whose holders
/// could not be seen (`unseen`), the lines that would accept it whatever its program.
fn reach_changed(
    baseline: &Baseline,
    identity: &Identity,
    unseen: Option<OwnerUnknownReason>,
) -> Option<Reason> {
    let now = identity.reach.as_ref()?;
    let accepts = |e: &Expected| match unseen {
        Some(_) => e.accepts_unseen_holder(identity),
        None => e.accepts(identity),
    };
    let recorded: Vec<&Expected> = (baseline.expected.iter())
        .filter(|e| e.reach.is_some() && accepts(e))
        .collect();
    if recorded.is_empty() || recorded.iter().any(|e| e.reach.as_ref() == Some(now)) {
        return None;
    }
    Some(Reason::ReachChanged {
        expected: recorded[0].clone(),
        now: now.clone(),
    })
}

fn policy_reason(policy: &Policy, listener: &Audited) -> Option<Reason> {
    match policy.decide(&listener.entry, &listener.identity) {
        Decision::Rule(rule) if rule.action == Action::Deny => {
            Some(Reason::Denied(rule.number - 1))
        }
        Decision::Default(Action::Deny) => Some(Reason::NotAllowed),
        _ => None,
    }
}

/// Baseline lines with nothing where they expect a listener. The lines of one socket (one per
/// holding program) go together: any one present accounts for all. A place now held by
/// another program is reported as a change, not also as missing; ephemeral client sockets
/// come and go, and are never missing.
fn missing_lines(baseline: &Baseline, identities: &[&Identity]) -> Vec<Expected> {
    let mut missing: Vec<Expected> = Vec::new();
    for line in &baseline.expected {
        if line.port == crate::actions::audit::baseline::PortPattern::Ephemeral
            || missing.iter().any(|m| m.same_socket(line))
        {
            continue;
        }
        let group = baseline.expected.iter().filter(|e| e.same_socket(line));
        let present = group
            .clone()
            .any(|e| identities.iter().any(|identity| e.covers(identity)));
        if !present {
            missing.push(line.clone());
        }
    }
    missing
}

fn missing_rules(policy: &Policy, listeners: &[Audited]) -> Vec<usize> {
    policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.required)
        .filter(|(_, rule)| {
            !listeners
                .iter()
                .any(|l| rule.matcher.matches(&l.entry, &l.identity))
        })
        .map(|(index, _)| index)
        .collect()
}
