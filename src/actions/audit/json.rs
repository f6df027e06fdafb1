//! The audit report as data (`lsports audit --format json`): the same verdict as the text,
//! with every listener described in full, as the listing's socket object
//! ([`crate::render::wire::Socket`]) with the audit's `ephemeral`, `programs` and `namespace`
//! (how its identity names a network namespace other than lsports' own) beside it.
//! `address` and `port` repeat `local_addr` and `local_port` for the scripts written before,
//! and go away in the next release.
//!
//! ```json
//! {"result": "fail", "exit_status": 1, "baseline": "b.toml", "policy": null, "listeners": 3,
//!  "unexpected": [{"listener": {…}, "reasons": [{"check": "baseline", "reason": "new", …}]}],
//!  "missing": [{"check": "baseline", "line": 9, "proto": "tcp", …}],
//!  "not_checked": [{"check": "baseline", "line": 12, …, "fails": false}],
//!  "suspicious": [{"listener": {…}, "flags": [{"flag": "exe-deleted", "fails": true, …}]}]}
//! ```

use std::io::{self, Write};

use serde::Serialize;

use super::text::{missing_text, reason, undecided_text};
use super::{Audit, Audited, Missing, Reason, Unchecked, Undecided};
use crate::actions::audit::baseline::PortPattern;
use crate::actions::audit::identity::{Namespace, Program};
use crate::render::Labels;
use crate::render::wire::Socket;
use crate::text::safe_json;

#[derive(Serialize)]
struct Report {
    /// `ok`, `fail`, or `incomplete` (nothing fails, but a deny rule could not be evaluated).
    result: &'static str,
    exit_status: u8,
    baseline: Option<String>,
    policy: Option<String>,
    listeners: usize,
    unexpected: Vec<Unexpected>,
    missing: Vec<MissingJson>,
    /// Baseline lines in namespaces the audit could not read, or where a listener's holders
    /// could not be seen: neither found nor missing; and policy checks not done for such
    /// listeners.
    not_checked: Vec<MissingJson>,
    suspicious: Vec<Suspicious>,
    holes: Vec<HoleJson>,
    published_without_listener: Vec<UnlandedJson>,
}

/// A published port whose target's namespace listens on nothing there.
#[derive(Serialize)]
struct UnlandedJson {
    /// The namespace whose rules publish it; null when the sockets do not say.
    netns: Option<crate::render::wire::Netns>,
    proto: &'static str,
    host_addr: String,
    host_port: u16,
    /// `None`: this host (a redirect).
    target_addr: Option<String>,
    target_port: u16,
    /// The rules and proxies that publish it (raw; the JSON writer escapes).
    by: Vec<String>,
    flags: Vec<&'static str>,
}

/// A port a firewall rule accepts with nothing listening there.
#[derive(Serialize)]
struct HoleJson {
    /// The namespace whose rules these are; null when the sockets do not say.
    netns: Option<crate::render::wire::Netns>,
    proto: &'static str,
    port: u16,
    port_last: u16,
    families: Vec<&'static str>,
    verdict: &'static str,
    by: String,
    conditions: Vec<String>,
}

/// A listener: the listing's socket object, with what the audit knows beside it.
#[derive(Serialize)]
struct Listener {
    #[serde(flatten)]
    socket: Socket,
    /// Deprecated alias of `local_addr`, kept for one release for scripts written before
    /// the socket object was shared.
    address: String,
    /// Deprecated alias of `local_port`, likewise.
    port: u16,
    ephemeral: bool,
    programs: Vec<ProgramJson>,
    /// The namespace as its identity names it; `None` for lsports' own.
    namespace: Option<NamespaceJson>,
}

/// A namespace other than lsports' own, as identities name it:
/// `{"kind": "container" | "netns" | "unit" | "unnamed", "name": "web" | null}`.
#[derive(Serialize)]
struct NamespaceJson {
    kind: &'static str,
    name: Option<String>,
}

impl NamespaceJson {
    fn of(namespace: &Namespace) -> Option<NamespaceJson> {
        let (kind, name) = match namespace {
            Namespace::Current => return None,
            Namespace::Container(name) => ("container", Some(name.clone())),
            Namespace::Netns(name) => ("netns", Some(name.clone())),
            Namespace::Unit(name) => ("unit", Some(name.clone())),
            Namespace::Unnamed => ("unnamed", None),
        };
        Some(NamespaceJson { kind, name })
    }
}

#[derive(Serialize)]
struct ProgramJson {
    name: String,
    exe: Option<String>,
}

#[derive(Serialize)]
struct Unexpected {
    listener: Listener,
    reasons: Vec<ReasonJson>,
}

#[derive(Serialize)]
struct ReasonJson {
    check: &'static str,
    reason: &'static str,
    rule: Option<RuleJson>,
    explanation: String,
}

#[derive(Serialize)]
struct RuleJson {
    number: usize,
    name: Option<String>,
    line: usize,
}

#[derive(Serialize)]
struct MissingJson {
    check: &'static str,
    line: Option<usize>,
    proto: Option<&'static str>,
    address: Option<String>,
    interface: Option<String>,
    port: Option<serde_json::Value>,
    user: Option<String>,
    program: Option<String>,
    exe: Option<String>,
    namespace: Option<NamespaceJson>,
    rule: Option<RuleJson>,
    fails: bool,
    explanation: String,
    /// Not checked only: whether it keeps the audit from passing (exit status 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    blocks_pass: Option<bool>,
    /// A policy check not done for a listener: the listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    listener: Option<Listener>,
    /// A policy check not done: every rule it hangs on (`rule` is the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<Vec<RuleJson>>,
}

#[derive(Serialize)]
struct Suspicious {
    listener: Listener,
    flags: Vec<FlagJson>,
}

#[derive(Serialize)]
struct FlagJson {
    flag: &'static str,
    fails: bool,
    explanation: String,
}

/// Write the report as one indented JSON object.
pub fn write(audit: &Audit, out: &mut dyn Write) -> io::Result<()> {
    let mut labels = Labels::numeric();
    let report = Report {
        result: match (audit.verdict.fails, audit.verdict.incomplete) {
            (true, _) => "fail",
            (false, true) => "incomplete",
            (false, false) => "ok",
        },
        exit_status: match (audit.verdict.fails, audit.verdict.incomplete) {
            (true, _) => 1,
            (false, true) => 2,
            (false, false) => 0,
        },
        baseline: audit
            .baseline
            .as_ref()
            .map(|(p, _)| p.display().to_string()),
        policy: audit.policy.as_ref().map(|p| p.path.display().to_string()),
        listeners: audit.listeners.len(),
        unexpected: unexpected(audit, &mut labels),
        holes: (audit.holes.iter())
            .map(|h| HoleJson {
                netns: h.netns.map(|inode| hole_netns(audit, inode)),
                proto: h.proto.name(),
                port: h.ports.0,
                port_last: h.ports.1,
                families: h.families.iter().map(|f| f.name()).collect(),
                verdict: h.verdict.name(),
                by: h.by.clone(),
                conditions: h.conditions.clone(),
            })
            .collect(),
        published_without_listener: (audit.unlanded.iter())
            .map(|p| UnlandedJson {
                netns: p.netns.as_deref().map(crate::render::wire::Netns::of),
                proto: p.protocol.name(),
                host_addr: p.host_addr.to_string(),
                host_port: p.host_port,
                target_addr: p.target_addr.map(|a| a.to_string()),
                target_port: p.target_port,
                by: p.by.iter().map(|b| b.text.clone()).collect(),
                flags: vec![crate::model::published::WITHOUT_LISTENER],
            })
            .collect(),
        missing: audit
            .verdict
            .missing
            .iter()
            .map(|m| missing_json(audit, m))
            .collect(),
        not_checked: (audit.verdict.unchecked.iter())
            .map(|u| unchecked_json(audit, u))
            .chain((audit.verdict.undecided.iter()).map(|u| undecided_json(audit, u, &mut labels)))
            .collect(),
        suspicious: suspicious(audit, &mut labels),
    };
    safe_json::to_writer(&mut *out, &report, true).map_err(io::Error::from)?;
    writeln!(out)
}

/// A hole's namespace as socket objects give theirs, named from a listener audited there.
fn hole_netns(audit: &Audit, inode: u64) -> crate::render::wire::Netns {
    let name = (audit.listeners.iter())
        .filter_map(|l| l.entry.socket.netns.as_ref())
        .find(|ns| ns.inode == inode)
        .and_then(|ns| ns.name.as_deref())
        .map(|name| crate::text::sanitize::lossy(name).into_owned());
    crate::render::wire::Netns { inode, name }
}

fn unexpected(audit: &Audit, labels: &mut Labels) -> Vec<Unexpected> {
    let verdict = &audit.verdict;
    verdict
        .unexpected
        .iter()
        .map(|(index, reasons)| Unexpected {
            listener: listener(&audit.listeners[*index], labels),
            reasons: reasons.iter().map(|r| reason_json(audit, r)).collect(),
        })
        .collect()
}

fn suspicious(audit: &Audit, labels: &mut Labels) -> Vec<Suspicious> {
    let flagged = audit.listeners.iter().filter(|l| !l.findings.is_empty());
    flagged
        .map(|l| Suspicious {
            listener: listener(l, labels),
            flags: l
                .findings
                .iter()
                .map(|f| FlagJson {
                    flag: f.flag.name(),
                    fails: audit.fail.flags.contains(&f.flag),
                    explanation: f.explanation.clone(),
                })
                .collect(),
        })
        .collect()
}

fn listener(listener: &Audited, labels: &mut Labels) -> Listener {
    let exe = |i: usize, _: &_| listener.exes.get(i).and_then(Option::as_deref);
    let socket = Socket::of(&listener.entry, labels, exe);
    Listener {
        address: socket.local_addr.clone(),
        port: socket.local_port,
        socket,
        ephemeral: listener.identity.ephemeral,
        programs: listener
            .identity
            .programs
            .iter()
            .map(program_json)
            .collect(),
        namespace: NamespaceJson::of(&listener.identity.namespace),
    }
}

fn program_json(program: &Program) -> ProgramJson {
    ProgramJson {
        name: program.name.clone(),
        exe: program.exe.clone(),
    }
}

fn rule_json(audit: &Audit, index: usize) -> Option<RuleJson> {
    let rule = audit.policy.as_ref()?.rules.get(index)?;
    Some(RuleJson {
        number: rule.number,
        name: rule.name.clone(),
        line: rule.line,
    })
}

fn reason_json(audit: &Audit, why: &Reason) -> ReasonJson {
    let (check, name, rule) = match why {
        Reason::New => ("baseline", "new", None),
        Reason::Changed { .. } => ("baseline", "changed", None),
        Reason::Denied(index) => ("policy", "denied", rule_json(audit, *index)),
        Reason::NotAllowed => ("policy", "not_allowed", None),
        Reason::ReachChanged { .. } => ("baseline", "reach_changed", None),
    };
    ReasonJson {
        check,
        reason: name,
        rule,
        explanation: reason(audit, why),
    }
}

/// A baseline line not checked, as a missing one is written, failing nothing.
fn unchecked_json(audit: &Audit, unchecked: &Unchecked) -> MissingJson {
    let line = Missing::Baseline(unchecked.line.clone());
    MissingJson {
        fails: false,
        explanation: format!(
            "not checked: {}",
            super::unchecked_because(audit, unchecked.why)
        ),
        blocks_pass: Some(false),
        ..missing_json(audit, &line)
    }
}

/// A policy check not done: the listener's place, the rules it hangs on.
fn undecided_json(audit: &Audit, undecided: &Undecided, labels: &mut Labels) -> MissingJson {
    let explanation = format!(
        "not checked: {}: {}",
        super::undecided_because(undecided),
        undecided_text(audit, undecided)
    );
    let (rules, listener) = match undecided {
        Undecided::Listener { index, rules, .. } => (rules.clone(), Some(&audit.listeners[*index])),
        Undecided::Required { rule, .. } => (vec![*rule], None),
    };
    let rules: Vec<RuleJson> = rules.iter().filter_map(|&i| rule_json(audit, i)).collect();
    let identity = listener.map(|l| &l.identity);
    MissingJson {
        check: "policy",
        line: rules.first().map(|r| r.line),
        proto: identity.map(|i| i.protocol.name()),
        address: identity.map(|i| i.address.to_string()),
        interface: None,
        port: identity.map(|i| i.port.into()),
        user: identity.map(|i| i.user.clone()),
        program: None,
        exe: None,
        namespace: identity.and_then(|i| NamespaceJson::of(&i.namespace)),
        rule: undecided_first_rule(audit, undecided),
        fails: false,
        explanation,
        blocks_pass: Some(undecided.blocks_pass()),
        listener: listener.map(|l| self::listener(l, labels)),
        rules: Some(rules),
    }
}

/// The first rule a policy check not done hangs on.
fn undecided_first_rule(audit: &Audit, undecided: &Undecided) -> Option<RuleJson> {
    match undecided {
        Undecided::Listener { rules, .. } => rule_json(audit, *rules.first()?),
        Undecided::Required { rule, .. } => rule_json(audit, *rule),
    }
}

fn missing_json(audit: &Audit, missing: &Missing) -> MissingJson {
    let (_, explanation) = missing_text(audit, missing);
    match missing {
        Missing::Baseline(expected) => MissingJson {
            check: "baseline",
            line: expected.line,
            proto: Some(expected.protocol.name()),
            address: Some(expected.address.to_string()),
            interface: expected.interface.clone(),
            port: Some(match expected.port {
                PortPattern::Number(port) => port.into(),
                PortPattern::Ephemeral => "ephemeral".into(),
            }),
            user: expected.user.clone(),
            program: expected.program.clone(),
            exe: expected.exe.clone(),
            namespace: NamespaceJson::of(&expected.namespace),
            rule: None,
            fails: audit.fail.missing,
            explanation,
            blocks_pass: None,
            listener: None,
            rules: None,
        },
        Missing::Rule(index) => MissingJson {
            check: "policy",
            line: rule_json(audit, *index).map(|r| r.line),
            proto: None,
            address: None,
            interface: None,
            port: None,
            user: None,
            program: None,
            exe: None,
            namespace: None,
            rule: rule_json(audit, *index),
            fails: true,
            explanation,
            blocks_pass: None,
            listener: None,
            rules: None,
        },
    }
}
