//! The audit report as data (`lsports audit --format json`): the same verdict as the text,
//! with every listener described in full. Wire types are separate from the model, so the
//! report's shape is stated here once.
//!
//! ```json
//! {"result": "fail", "exit_status": 1, "baseline": "b.toml", "policy": null, "listeners": 3,
//!  "unexpected": [{"listener": {…}, "reasons": [{"check": "baseline", "reason": "new", …}]}],
//!  "missing": [{"check": "baseline", "line": 9, "proto": "tcp", …}],
//!  "suspicious": [{"listener": {…}, "flags": [{"flag": "exe-deleted", "fails": true, …}]}]}
//! ```

use std::io::{self, Write};

use serde::Serialize;

use super::text::{missing_text, reason};
use super::{Audit, Audited, Missing, Reason};
use crate::actions::audit::baseline::PortPattern;
use crate::actions::audit::identity::Program;
use crate::enrich::names::UserNames;
use crate::text::safe_json;
use crate::text::sanitize;

#[derive(Serialize)]
struct Report {
    result: &'static str,
    exit_status: u8,
    baseline: Option<String>,
    policy: Option<String>,
    listeners: usize,
    unexpected: Vec<Unexpected>,
    missing: Vec<MissingJson>,
    suspicious: Vec<Suspicious>,
}

#[derive(Serialize)]
struct Listener {
    proto: &'static str,
    family: &'static str,
    address: String,
    port: u16,
    exposure: &'static str,
    ephemeral: bool,
    uid: u32,
    user: String,
    inode: u64,
    programs: Vec<ProgramJson>,
    processes: Vec<ProcessJson>,
}

#[derive(Serialize)]
struct ProgramJson {
    name: String,
    exe: Option<String>,
}

#[derive(Serialize)]
struct ProcessJson {
    pid: u32,
    name: Option<String>,
    uid: Option<u32>,
    user: Option<String>,
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
    port: Option<serde_json::Value>,
    user: Option<String>,
    program: Option<String>,
    exe: Option<String>,
    rule: Option<RuleJson>,
    fails: bool,
    explanation: String,
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
    let mut users = UserNames::default();
    let report = Report {
        result: if audit.verdict.fails { "fail" } else { "ok" },
        exit_status: u8::from(audit.verdict.fails),
        baseline: audit
            .baseline
            .as_ref()
            .map(|(p, _)| p.display().to_string()),
        policy: audit.policy.as_ref().map(|p| p.path.display().to_string()),
        listeners: audit.listeners.len(),
        unexpected: unexpected(audit, &mut users),
        missing: audit
            .verdict
            .missing
            .iter()
            .map(|m| missing_json(audit, m))
            .collect(),
        suspicious: suspicious(audit, &mut users),
    };
    safe_json::to_writer(&mut *out, &report, true).map_err(io::Error::from)?;
    writeln!(out)
}

fn unexpected(audit: &Audit, users: &mut UserNames) -> Vec<Unexpected> {
    let verdict = &audit.verdict;
    verdict
        .unexpected
        .iter()
        .map(|(index, reasons)| Unexpected {
            listener: listener(&audit.listeners[*index], users),
            reasons: reasons.iter().map(|r| reason_json(audit, r)).collect(),
        })
        .collect()
}

fn suspicious(audit: &Audit, users: &mut UserNames) -> Vec<Suspicious> {
    let flagged = audit.listeners.iter().filter(|l| !l.findings.is_empty());
    flagged
        .map(|l| Suspicious {
            listener: listener(l, users),
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

fn listener(listener: &Audited, users: &mut UserNames) -> Listener {
    let socket = &listener.entry.socket;
    let identity = &listener.identity;
    Listener {
        proto: socket.protocol.name(),
        family: socket.family.name(),
        address: socket.local_addr.to_string(),
        port: socket.local_port,
        exposure: identity.exposure.name(),
        ephemeral: identity.ephemeral,
        uid: socket.uid,
        user: identity.user.clone(),
        inode: socket.inode,
        programs: identity.programs.iter().map(program_json).collect(),
        processes: listener
            .entry
            .processes
            .iter()
            .map(|p| ProcessJson {
                pid: p.pid,
                name: p.name.as_deref().map(|n| sanitize::lossy(n).into_owned()),
                uid: p.uid,
                user: p.uid.and_then(|uid| users.name(uid).map(str::to_string)),
            })
            .collect(),
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
    };
    ReasonJson {
        check,
        reason: name,
        rule,
        explanation: reason(audit, why),
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
            port: Some(match expected.port {
                PortPattern::Number(port) => port.into(),
                PortPattern::Ephemeral => "ephemeral".into(),
            }),
            user: expected.user.clone(),
            program: expected.program.clone(),
            exe: expected.exe.clone(),
            rule: None,
            fails: audit.fail.missing,
            explanation,
        },
        Missing::Rule(index) => MissingJson {
            check: "policy",
            line: rule_json(audit, *index).map(|r| r.line),
            proto: None,
            address: None,
            port: None,
            user: None,
            program: None,
            exe: None,
            rule: rule_json(audit, *index),
            fails: true,
            explanation,
        },
    }
}
