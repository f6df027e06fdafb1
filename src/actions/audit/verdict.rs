//! The verdict of an audit: which listeners are unexpected and why, which expected ones are
//! missing, which are suspicious, what could not be checked, and whether all that fails the
//! audit (or keeps it from passing). Pure: the inputs are listeners already identified and
//! inspected, so every rule here is tested without sockets.
//!
//! A listener whose holders could not be seen (an unprivileged audit of other users'
//! processes) is judged by what its socket settles; a baseline line or policy rule that hangs
//! on its program is not checked, with the reason. Likewise a policy rule that hangs on the
//! reach of a listener whose firewall rules could not be read, and a baseline line's recorded
//! reach for such a listener ([`UncheckedWhy::ReachUnread`]). Only a deny rule that could not be
//! evaluated, where it could have denied what is otherwise allowed, keeps the audit from
//! passing ([`Verdict::incomplete`]): the rest is the expected program unconfirmed.

use crate::actions::audit::baseline::{Baseline, Expected};
use crate::actions::audit::identity::Identity;
use crate::actions::audit::policy::{Action, Decision, Match, Outcome, Policy, Unseen};
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
    /// Whether its firewall rules could not be read (unprivileged, `nft` missing, a
    /// snapshot), so that its reach is `unknown` whatever the rules say: a policy's `reach`
    /// other than `unknown` cannot be evaluated for it.
    pub reach_unread: bool,
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
    /// The listeners (indices) that may be the one it expects, whose holders could not be
    /// seen (two for a socket on both families); none for a namespace not read.
    pub listeners: Vec<usize>,
}

/// Why a baseline line was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UncheckedWhy {
    /// Its network namespace was not read (the audit's scope says why).
    Namespace,
    /// The socket table it would be in (its protocol, and its family when the line names an
    /// address) could not be read there: the listener is unknown, not gone.
    Table,
    /// A socket listens where it expects one, as its user, but no holder of it could be seen
    /// (`Permission`: processes this user may not inspect; `OutsidePidNamespace`: holders
    /// outside this PID namespace), so the program it expects can be neither confirmed nor
    /// denied. An unprivileged audit of a root-owned service lands here, not in "changed".
    HolderUnseen(OwnerUnknownReason),
    /// The line records a reach through the firewall, and the listener it accepts has its
    /// reach `unknown` because its namespace's rules could not be read (unprivileged, `nft`
    /// missing, a snapshot): the reach it expects can be neither confirmed nor denied. As a
    /// policy's allow rule on a reach is, this is reported, never failing (the listener is
    /// where the line expects it, as its user and program).
    ReachUnread,
}

/// What kept a policy check from being done: what the rules it hangs on look at and could
/// not be known of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UndecidedWhy {
    /// A rule looks at holders, and none could be seen, for this reason.
    pub holders: Option<OwnerUnknownReason>,
    /// A rule asks for a reach, and the firewall rules could not be read.
    pub reach: bool,
}

impl UndecidedWhy {
    /// A rule looks at holders, none of which could be seen for `why`.
    pub fn holders(why: OwnerUnknownReason) -> UndecidedWhy {
        UndecidedWhy {
            holders: Some(why),
            reach: false,
        }
    }

    /// What of `unseen` (what rules look at and could not be known), for a listener whose
    /// holders could not be seen for `holders` (`Permission` when not said).
    fn of(unseen: Unseen, holders: Option<OwnerUnknownReason>) -> UndecidedWhy {
        UndecidedWhy {
            holders: (unseen.holders).then(|| holders.unwrap_or(OwnerUnknownReason::Permission)),
            reach: unseen.reach,
        }
    }

    /// Both reasons, `self`'s holder reason first.
    fn or(self, other: UndecidedWhy) -> UndecidedWhy {
        UndecidedWhy {
            holders: self.holders.or(other.holders),
            reach: self.reach || other.reach,
        }
    }
}

/// A policy check the audit could not do: a rule that looks at holders, for a listener whose
/// holders could not be seen, or at reach, for a listener whose firewall rules could not be
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecided {
    /// Rules that look at what could not be known would allow the listener, others deny it,
    /// and which one matches could not be told.
    Listener {
        /// Index into the listeners.
        index: usize,
        /// The rules it hangs on (indices into the rules, in order).
        rules: Vec<usize>,
        /// What decides when none of them matches: a rule (index) or the default (`None`).
        otherwise: Option<usize>,
        /// What could not be known.
        why: UndecidedWhy,
        /// A deny rule among `rules` could deny what would otherwise be allowed: the audit
        /// cannot pass (see [`Verdict::incomplete`]).
        deny_unevaluated: bool,
    },
    /// A `required` rule no listener surely matches, that one whose holders could not be seen
    /// (or whose firewall rules could not be read) might.
    Required {
        /// Index into the rules.
        rule: usize,
        /// What could not be known (of the first such listener, for holders).
        why: UndecidedWhy,
    },
}

impl Undecided {
    /// Whether it keeps the audit from passing.
    pub fn blocks_pass(&self) -> bool {
        matches!(
            self,
            Undecided::Listener {
                deny_unevaluated: true,
                ..
            }
        )
    }

    /// What could not be known.
    pub fn why(&self) -> UndecidedWhy {
        match self {
            Undecided::Listener { why, .. } | Undecided::Required { why, .. } => *why,
        }
    }
}

/// Everything an audit found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Unexpected listeners: index into the listeners, and every reason.
    pub unexpected: Vec<(usize, Vec<Reason>)>,
    /// Expected listeners not found.
    pub missing: Vec<Missing>,
    /// Baseline lines (the first of each socket's) not checked, and why: their network
    /// namespace was not read, or something listens there whose holder could not be seen, or
    /// whose reach (which the line records) could not be told.
    /// Reported, never failing: they may be there, as expected.
    pub unchecked: Vec<Unchecked>,
    /// Policy checks that could not be done, for listeners whose holders could not be seen or
    /// whose firewall rules could not be read.
    pub undecided: Vec<Undecided>,
    /// Whether the audit fails (exit status 1).
    pub fails: bool,
    /// Whether, failing nothing, it may not pass either (exit status 2): a deny rule could
    /// not be evaluated for a listener it could deny (see [`Undecided::blocks_pass`]).
    pub incomplete: bool,
}

/// How much an audit could not check: in all, and per check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotChecked {
    /// Each listener once, whichever checks (and how many) left it unchecked; and each
    /// baseline line or `required` rule not checked that no listener stands for (a namespace
    /// not read, a rule no listener surely matches).
    pub total: usize,
    /// Baseline lines not checked.
    pub baseline: usize,
    /// Policy checks not done: one per listener, and per `required` rule.
    pub policy: usize,
}

impl Verdict {
    /// How much was not checked (see [`NotChecked`]).
    pub fn not_checked(&self) -> NotChecked {
        let mut listeners: Vec<usize> = (self.unchecked.iter())
            .flat_map(|u| u.listeners.iter().copied())
            .chain(self.undecided.iter().filter_map(|u| match u {
                Undecided::Listener { index, .. } => Some(*index),
                Undecided::Required { .. } => None,
            }))
            .collect();
        listeners.sort_unstable();
        listeners.dedup();
        let lines_alone = (self.unchecked.iter())
            .filter(|u| u.listeners.is_empty())
            .count();
        let rules_alone = (self.undecided.iter())
            .filter(|u| matches!(u, Undecided::Required { .. }))
            .count();
        NotChecked {
            total: listeners.len() + lines_alone + rules_alone,
            baseline: self.unchecked.len(),
            policy: self.undecided.len(),
        }
    }
}

/// Judge `listeners` against a baseline and/or a policy; both must accept a listener for it
/// to be expected.
pub fn judge(
    listeners: &[Audited],
    baseline: Option<&Baseline>,
    policy: Option<&Policy>,
    fail: &FailSet,
) -> Verdict {
    judge_within(listeners, baseline, policy, fail, &|_| None)
}

/// [`judge`], where `unchecked` says why a baseline line was not looked for, if it was not
/// (its namespace, or its socket table, was not read): a line not found where lsports did
/// not look is `unchecked`, not missing.
pub fn judge_within(
    listeners: &[Audited],
    baseline: Option<&Baseline>,
    policy: Option<&Policy>,
    fail: &FailSet,
    unchecked: &dyn Fn(&Expected) -> Option<UncheckedWhy>,
) -> Verdict {
    let mut verdict = Verdict::default();
    for (index, listener) in listeners.iter().enumerate() {
        let unseen = holder_unseen(listener);
        let mut reasons = Vec::new();
        match (baseline, unseen) {
            // A line that names no program is matched by place and user alone, seen or not.
            (Some(b), Some(_)) if b.expected.iter().any(|e| e.accepts(&listener.identity)) => {}
            (Some(b), Some(why)) => match line_for_unseen_holder(b, &listener.identity) {
                Some(line) => {
                    // A socket on both families (two listeners) is one line, said once.
                    let said = verdict
                        .unchecked
                        .iter_mut()
                        .find(|u| u.line.same_socket(line));
                    match said {
                        Some(unchecked) => unchecked.listeners.push(index),
                        None => verdict.unchecked.push(Unchecked {
                            line: line.clone(),
                            why: UncheckedWhy::HolderUnseen(why),
                            listeners: vec![index],
                        }),
                    }
                }
                None => reasons.extend(baseline_reason(b, &listener.identity)),
            },
            (Some(b), None) => reasons.extend(baseline_reason(b, &listener.identity)),
            (None, _) => {}
        }
        match baseline.and_then(|b| reach_changed(b, listener, unseen)) {
            Some(Ok(reason)) => reasons.push(reason),
            Some(Err(line)) => unchecked_reach(&mut verdict.unchecked, line, index),
            None => {}
        }
        if let Some(p) = policy {
            match policy_reason(p, listener, (index, unseen)) {
                Ok(reason) => reasons.extend(reason),
                Err(undecided) => verdict.undecided.push(undecided),
            }
        }
        if !reasons.is_empty() {
            verdict.unexpected.push((index, reasons));
        }
    }
    let identities: Vec<&Identity> = listeners.iter().map(|l| &l.identity).collect();
    let mut baseline_missing = Vec::new();
    for line in baseline.map_or_else(Vec::new, |b| missing_lines(b, &identities)) {
        match unchecked(&line) {
            None => baseline_missing.push(line),
            Some(why) => verdict.unchecked.push(Unchecked {
                line,
                why,
                listeners: Vec::new(),
            }),
        }
    }
    let (rules_missing, rules_undecided) = policy
        .map(|p| missing_rules(p, listeners))
        .unwrap_or_default();
    verdict.undecided.extend(rules_undecided);
    let flag_fails = listeners
        .iter()
        .flat_map(|l| &l.findings)
        .any(|f| fail.flags.contains(&f.flag));
    verdict.fails = !verdict.unexpected.is_empty()
        || (fail.missing && !baseline_missing.is_empty())
        || !rules_missing.is_empty()
        || flag_fails;
    verdict.incomplete = !verdict.fails && verdict.undecided.iter().any(Undecided::blocks_pass);
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
///
/// A listener with a holder seen is judged by the holders seen, though another, hidden one
/// may share the socket (inherited across a fork into another user): nothing an unprivileged
/// reader can ask says how many processes hold a socket. `sk_refcnt` (`/proc/net/tcp`) counts
/// references to the socket, not to its file, and stays 1 however many processes share it
/// (checked with fork and dup); sock_diag reports no file count.
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
/// program it names: for a listener whose holders could not be seen, and that no line
/// accepts as it is (one naming no program would).
fn line_for_unseen_holder<'a>(baseline: &'a Baseline, identity: &Identity) -> Option<&'a Expected> {
    (baseline.expected.iter()).find(|e| e.accepts_unseen_holder(identity))
}

/// A listener the baseline accepts, whose every accepting line with a recorded reach says
/// another one than it has now (`Ok`); or, when its reach could not be told because its
/// firewall rules could not be read, the first such line, not checked (`Err`). For a listener
/// whose holders could not be seen (`unseen`), the lines that would accept it whatever its
/// program.
///
/// A reach `unknown` from rules that were read (a rule lsports cannot evaluate decides) is
/// what lsports says of the listener, as a policy's `reach = "unknown"` takes it: a line that
/// recorded another reach reports it changed, to `unknown`. A line records no `unknown`
/// (nothing to compare), so such a change is a change of the rules.
fn reach_changed<'a>(
    baseline: &'a Baseline,
    listener: &Audited,
    unseen: Option<OwnerUnknownReason>,
) -> Option<Result<Reason, &'a Expected>> {
    let identity = &listener.identity;
    let accepts = |e: &Expected| match unseen {
        Some(_) => e.accepts_unseen_holder(identity),
        None => e.accepts(identity),
    };
    let recorded: Vec<&Expected> = (baseline.expected.iter())
        .filter(|e| e.reach.is_some() && accepts(e))
        .collect();
    let first = *recorded.first()?;
    let now = match &identity.reach {
        Some(now) => now.clone(),
        None if listener.reach_unread => return Some(Err(first)),
        None => crate::actions::audit::identity::reach_words(&listener.entry.reach)?,
    };
    if recorded.iter().any(|e| e.reach.as_ref() == Some(&now)) {
        return None;
    }
    Some(Ok(Reason::ReachChanged {
        expected: first.clone(),
        now,
    }))
}

/// Record that `line`'s reach could not be checked for listener `index`, unless the line is
/// already not checked for it (its holder unseen: nothing of the line was checked), once per
/// line (a socket on both families is two listeners and one line).
fn unchecked_reach(unchecked: &mut Vec<Unchecked>, line: &Expected, index: usize) {
    if unchecked.iter().any(|u| u.listeners.contains(&index)) {
        return;
    }
    let said = (unchecked.iter_mut())
        .find(|u| u.why == UncheckedWhy::ReachUnread && u.line.same_socket(line));
    match said {
        Some(u) => u.listeners.push(index),
        None => unchecked.push(Unchecked {
            line: line.clone(),
            why: UncheckedWhy::ReachUnread,
            listeners: vec![index],
        }),
    }
}

/// What of `listener` could not be known, for a policy: its holders (when `holders`, why
/// none could be seen, is said), its reach.
fn unseen_of(listener: &Audited, holders: Option<OwnerUnknownReason>) -> Unseen {
    Unseen {
        holders: holders.is_some(),
        reach: listener.reach_unread,
    }
}

/// Why the policy does not expect `listener`, if it does not (`Ok`); or, for a listener
/// whose holders could not be seen (`unseen`) or whose firewall rules could not be read,
/// what could not be decided (`Err`). `index` is its place among the listeners.
fn policy_reason(
    policy: &Policy,
    listener: &Audited,
    (index, unseen): (usize, Option<OwnerUnknownReason>),
) -> Result<Option<Reason>, Undecided> {
    let known = unseen_of(listener, unseen);
    let decision = match policy.judge(&listener.entry, &listener.identity, known) {
        Outcome::Decided(decision) => decision,
        Outcome::Undecided {
            rules,
            otherwise,
            deny_unevaluated,
            unseen: looked_at,
        } => {
            let why = UndecidedWhy::of(looked_at, unseen);
            return Err(Undecided::Listener {
                index,
                rules: rules.iter().map(|r| r.number - 1).collect(),
                otherwise: match otherwise {
                    Decision::Rule(rule) => Some(rule.number - 1),
                    Decision::Default(_) => None,
                },
                why,
                deny_unevaluated,
            });
        }
    };
    Ok(match decision {
        Decision::Rule(rule) if rule.action == Action::Deny => {
            Some(Reason::Denied(rule.number - 1))
        }
        Decision::Default(Action::Deny) => Some(Reason::NotAllowed),
        _ => None,
    })
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

/// The `required` rules no listener matches (indices), and those no listener surely matches
/// but one whose holders could not be seen (it may be the program required), or whose
/// firewall rules could not be read (it may have the reach required), might.
fn missing_rules(policy: &Policy, listeners: &[Audited]) -> (Vec<usize>, Vec<Undecided>) {
    let (mut missing, mut undecided) = (Vec::new(), Vec::new());
    for (index, rule) in policy.rules.iter().enumerate() {
        if !rule.required {
            continue;
        }
        let mut maybe: Option<UndecidedWhy> = None;
        let mut surely = false;
        for l in listeners {
            let unseen = holder_unseen(l);
            match (rule.matcher).evaluate(&l.entry, &l.identity, unseen_of(l, unseen)) {
                Match::Yes => surely = true,
                Match::Unknown(at) => {
                    let why = UndecidedWhy::of(at, unseen);
                    maybe = Some(maybe.map_or(why, |m| m.or(why)));
                }
                Match::No => {}
            }
        }
        match (surely, maybe) {
            (true, _) => {}
            (false, Some(why)) => undecided.push(Undecided::Required { rule: index, why }),
            (false, None) => missing.push(index),
        }
    }
    (missing, undecided)
}
