//! The audit report for people (and cron mail): a summary line first, then a section per kind
//! of finding, each row aligned and ending with why.
//!
//! ```text
//! lsports audit: FAIL: 1 unexpected, 1 missing, 1 suspicious (3 listeners; baseline b.toml)
//!
//! Unexpected
//!   tcp   0.0.0.0:4444    9123/nc    nobody  not in the baseline
//!   tcp   0.0.0.0:80 in container web  7001/nginx  root  not in the baseline
//! Missing
//!   tcp   127.0.0.1:5432  postgres   postgres  b.toml:9: nothing listens there now
//! Not checked, reported only: their network namespace could not be read (…)
//!   tcp   0.0.0.0:8080 in container web  nginx  root  b.toml:12
//! ```
//!
//! The first word is `FAIL`, `OK`, or `INCOMPLETE` (nothing fails, but a deny rule could not
//! be evaluated). Names are quoted where they could be read as more than one word.

use std::io::{self, Write};

use super::{Audit, Audited, Missing, Reason, Undecided};
use crate::actions::audit::baseline::Expected;
use crate::actions::audit::policy::Action;
use crate::enrich::reach::apply::Hole;
use crate::model::published::{Published, WITHOUT_LISTENER};
use crate::render::Labels;
use crate::render::labels::program_cell_quoted;
use crate::text::{counts, sanitize};

/// Write the report.
pub fn write(audit: &Audit, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "lsports audit: {}", summary(audit))?;
    let labels = Labels::numeric();
    let unexpected: Vec<Vec<String>> = audit
        .verdict
        .unexpected
        .iter()
        .map(|(index, reasons)| {
            let listener = &audit.listeners[*index];
            let why: Vec<String> = reasons.iter().map(|r| reason(audit, r)).collect();
            listener_row(listener, &labels, why.join("; "))
        })
        .collect();
    section(out, "Unexpected", &unexpected)?;
    let missing: Vec<Vec<String>> = audit
        .verdict
        .missing
        .iter()
        .map(|m| missing_row(audit, m))
        .collect();
    section(out, &missing_title(audit), &missing)?;
    for (title, rows) in unchecked_sections(audit, &labels) {
        section(out, &title, &rows)?;
    }
    let (failing, reported) = suspicious_rows(audit, &labels);
    section(out, "Suspicious (fails the audit, see --fail-on)", &failing)?;
    section(out, "Suspicious (reported only)", &reported)?;
    let holes: Vec<Vec<String>> = (audit.holes.iter())
        .map(|h| hole_row(h, hole_place(audit, h)))
        .collect();
    section(
        out,
        "Firewall holes: accepted, nothing listens (reported only)",
        &holes,
    )?;
    let unlanded: Vec<Vec<String>> = (audit.unlanded.iter())
        .map(|p| unlanded_row(p, place_of(audit, p.netns.as_ref().map(|ns| ns.inode))))
        .collect();
    section(
        out,
        "Published ports: forwarded, nothing listens there (reported only)",
        &unlanded,
    )
}

/// `tcp  0.0.0.0:8081 → 10.0.0.2:81 in netns w1  published-without-listener  iptables-nft …
/// -j DNAT …` (no namespace for the current one).
fn unlanded_row(p: &Published, place: Option<String>) -> Vec<String> {
    let target = match p.target_addr {
        Some(addr) => endpoint(addr, p.target_port),
        None => format!("this host:{}", p.target_port),
    };
    let by: Vec<&str> = p.by.iter().map(|b| b.text.as_str()).collect();
    let mut path = format!("{} → {target}", endpoint(p.host_addr, p.host_port));
    if let Some(place) = place {
        path = sanitize::terminal_safe_text(format!("{path} in {place}"));
    }
    vec![
        p.protocol.name().into(),
        path,
        WITHOUT_LISTENER.into(),
        sanitize::terminal_safe_text(by.join("; ")),
    ]
}

/// `addr:port`, an IPv6 address in brackets.
fn endpoint(addr: std::net::IpAddr, port: u16) -> String {
    match addr {
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
    }
}

/// The namespace of a hole's rules as listener rows say theirs (`netns w1`, `container
/// web`), from a listener audited there; `None` for the current one. A namespace with no
/// listener audited is named by its inode.
pub fn hole_place(audit: &Audit, hole: &Hole) -> Option<String> {
    place_of(audit, hole.netns)
}

/// Namespace `inode` as listener rows say theirs (see [`hole_place`]); `None` for no inode or
/// the current namespace.
fn place_of(audit: &Audit, inode: Option<u64>) -> Option<String> {
    let inode = inode?;
    let there = (audit.listeners.iter()).find(|l| {
        l.entry
            .socket
            .netns
            .as_ref()
            .is_some_and(|ns| ns.inode == inode)
    });
    match there {
        Some(listener) => listener.identity.namespace.describe(),
        None => Some(format!("netns net:[{inode}]")),
    }
}

/// `tcp  8443 in netns w1  ipv4,ipv6  open  table inet filter chain input handle 9: tcp dport
/// 8443 accept` (no namespace for the current one).
fn hole_row(hole: &Hole, place: Option<String>) -> Vec<String> {
    let (lo, hi) = hole.ports;
    let mut ports = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    };
    if let Some(place) = place {
        ports = sanitize::terminal_safe_text(format!("{ports} in {place}"));
    }
    let families: Vec<&str> = hole.families.iter().map(|f| f.name()).collect();
    let mut verdict = hole.verdict.name().to_string();
    if !hole.conditions.is_empty() {
        verdict = format!("{verdict} ({})", hole.conditions.join(" or "));
    }
    vec![
        hole.proto.name().into(),
        ports,
        families.join(","),
        sanitize::terminal_safe_text(verdict),
        sanitize::terminal_safe_text(hole.by.clone()),
    ]
}

/// `FAIL: 1 unexpected, 0 missing, 2 suspicious (14 listeners; baseline b.toml, policy p.toml)`;
/// with listeners (or lines, or required rules) not checked, `…, 2 suspicious, 1 not checked
/// (…)`, and with both files, how many of each check's were not: `(14 listeners; baseline
/// b.toml: 1 not checked, policy p.toml: 1 not checked)`.
fn summary(audit: &Audit) -> String {
    let suspicious = audit
        .listeners
        .iter()
        .filter(|l| !l.findings.is_empty())
        .count();
    let not_checked = audit.verdict.not_checked();
    let per_check = |count: usize| match (count, audit.baseline.is_some() && audit.policy.is_some())
    {
        (1.., true) => format!(": {count} not checked"),
        _ => String::new(),
    };
    let mut checked = Vec::new();
    if let Some((path, _)) = &audit.baseline {
        let count = per_check(not_checked.baseline);
        checked.push(format!("baseline {}{count}", path.display()));
    }
    if let Some(policy) = &audit.policy {
        let count = per_check(not_checked.policy);
        checked.push(format!("policy {}{count}", policy.path.display()));
    }
    let unchecked = match not_checked.total {
        0 => String::new(),
        n => format!(", {n} not checked"),
    };
    format!(
        "{}: {} unexpected, {} missing, {} suspicious{unchecked} ({}; {})",
        result(audit),
        audit.verdict.unexpected.len(),
        audit.verdict.missing.len(),
        suspicious,
        counts::count(audit.listeners.len(), "listener"),
        checked.join(", ")
    )
}

/// `FAIL`, `INCOMPLETE` (nothing fails, but a deny rule could not be evaluated) or `OK`.
fn result(audit: &Audit) -> &'static str {
    match (audit.verdict.fails, audit.verdict.incomplete) {
        (true, _) => "FAIL",
        (false, true) => "INCOMPLETE",
        (false, false) => "OK",
    }
}

fn missing_title(audit: &Audit) -> String {
    let reported_only = !audit.fail.missing
        && audit
            .verdict
            .missing
            .iter()
            .all(|m| matches!(m, Missing::Baseline(_)));
    if reported_only {
        "Missing (reported only; --fail-on missing fails the audit)".into()
    } else {
        "Missing".into()
    }
}

/// Protocol, address, holders and owner of a listener, then `why`.
fn listener_row(listener: &Audited, labels: &Labels, why: String) -> Vec<String> {
    let socket = &listener.entry.socket;
    let proto = match socket.family {
        crate::model::Family::Ipv4 => socket.protocol.name().to_string(),
        crate::model::Family::Ipv6 => format!("{}6", socket.protocol.name()),
    };
    let place = match listener.identity.namespace.describe() {
        Some(namespace) => format!("{} in {namespace}", labels.local(socket)),
        None => labels.local(socket),
    };
    vec![
        proto,
        place,
        program_cell_quoted(&listener.entry.processes, false),
        listener.identity.user.clone(),
        why,
    ]
}

/// Why a listener is unexpected, in words.
pub fn reason(audit: &Audit, reason: &Reason) -> String {
    match reason {
        Reason::New => "not in the baseline".into(),
        Reason::Changed { expected } => {
            let holders: Vec<String> = expected.iter().map(Expected::describe_holder).collect();
            format!("the baseline expects {} here", holders.join(" or "))
        }
        Reason::Denied(index) => match &audit.policy {
            Some(policy) => format!("denied by {}", policy.rules[*index].describe(&policy.path)),
            None => "denied by the policy".into(),
        },
        Reason::NotAllowed => match &audit.policy {
            Some(policy) => policy.describe_default(),
            None => "not allowed by the policy".into(),
        },
        Reason::ReachChanged { expected, now } => {
            let line = expected
                .line
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default();
            let was = expected.reach.as_deref().unwrap_or("-");
            format!("reach through the firewall was {was} in the baseline{line}, now {now}")
        }
    }
}

fn missing_row(audit: &Audit, missing: &Missing) -> Vec<String> {
    let (what, why) = missing_text(audit, missing);
    match missing {
        Missing::Baseline(expected) => vec![
            expected.protocol.name().into(),
            expected.place(),
            what,
            expected.user.clone().unwrap_or_else(|| "-".into()),
            why,
        ],
        Missing::Rule(_) => vec!["-".into(), "-".into(), what, "-".into(), why],
    }
}

/// The "Not checked" sections, titled by why, in the order first met: baseline lines, then
/// policy checks, those that keep the audit from passing apart.
fn unchecked_sections(audit: &Audit, labels: &Labels) -> Vec<(String, Vec<Vec<String>>)> {
    let reported = |why: &str| format!("Not checked, reported only: {why}");
    let lines = (audit.verdict.unchecked.iter()).map(|u| {
        let title = reported(super::unchecked_because(audit, u.why));
        (title, unchecked_row(audit, &u.line))
    });
    let checks = audit.verdict.undecided.iter().map(|u| {
        let because = super::undecided_because(u);
        let title = match u.blocks_pass() {
            true => format!("Not checked, so the audit cannot pass (exit 2): {because}"),
            false => reported(&because),
        };
        (title, undecided_row(audit, labels, u))
    });
    let mut sections: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for (title, row) in lines.chain(checks) {
        match sections.iter_mut().find(|(t, _)| *t == title) {
            Some((_, rows)) => rows.push(row),
            None => sections.push((title, vec![row])),
        }
    }
    sections
}

/// A policy check not done: the listener (or `-` for a required rule), and what it hangs on.
fn undecided_row(audit: &Audit, labels: &Labels, undecided: &Undecided) -> Vec<String> {
    let why = undecided_text(audit, undecided);
    match undecided {
        Undecided::Listener { index, .. } => listener_row(&audit.listeners[*index], labels, why),
        Undecided::Required { .. } => vec!["-".into(), "-".into(), "-".into(), "-".into(), why],
    }
}

/// What a policy check not done hangs on, in words (shared with the JSON report):
/// `rule 2 "no netcat" (p.toml:9) would deny it if its holder is what the rule names;
/// otherwise allowed by the policy's default`.
pub fn undecided_text(audit: &Audit, undecided: &Undecided) -> String {
    let Some(policy) = &audit.policy else {
        return "the policy could not be evaluated".into();
    };
    let rule = |index: usize| policy.rules[index].describe(&policy.path);
    let verb = |action: Action| match action {
        Action::Allow => "allow",
        Action::Deny => "deny",
    };
    let why = undecided.why();
    match undecided {
        Undecided::Listener {
            rules, otherwise, ..
        } => {
            let would: Vec<String> = (rules.iter())
                .map(|&i| format!("{} would {} it", rule(i), verb(policy.rules[i].action)))
                .collect();
            let names = match rules.len() {
                1 => "the rule names",
                _ => "they name",
            };
            let (action, by) = match otherwise {
                Some(i) => (policy.rules[*i].action, rule(*i)),
                None => (policy.default, "the policy's default".into()),
            };
            let decided = match action {
                Action::Allow => "allowed",
                Action::Deny => "denied",
            };
            let what = match (why.holders.is_some(), why.reach) {
                (true, true) if rules.len() > 1 => "its holder or reach is",
                (true, true) => "its holder and reach are",
                (false, true) => "its reach is",
                _ => "its holder is",
            };
            format!(
                "{} if {what} what {names}; otherwise {decided} by {by}",
                would.join(", ")
            )
        }
        Undecided::Required { rule: index, .. } => {
            let one = match (why.holders.is_some(), why.reach) {
                (true, true) => {
                    "one whose holder could not be seen or whose reach could not be told"
                }
                (false, true) => "one whose reach could not be told",
                _ => "one whose holder could not be seen",
            };
            format!(
                "{} is required: no listener surely matches it, but {one} might",
                rule(*index)
            )
        }
    }
}

/// A baseline line not checked: where, who, and the line.
fn unchecked_row(audit: &Audit, expected: &Expected) -> Vec<String> {
    let (program, at) = baseline_line(audit, expected);
    vec![
        expected.protocol.name().into(),
        expected.place(),
        program,
        expected.user.clone().unwrap_or_else(|| "-".into()),
        at.trim_end_matches(": ").into(),
    ]
}

/// The program a baseline line expects, and `FILE:LINE: ` (empty when not known).
fn baseline_line(audit: &Audit, expected: &Expected) -> (String, String) {
    let program = match (&expected.program, &expected.exe) {
        (Some(name), Some(exe)) => format!("{name} ({exe})"),
        (Some(name), None) => name.clone(),
        (None, _) => "-".into(),
    };
    let at = match (&audit.baseline, expected.line) {
        (Some((path, _)), Some(line)) => format!("{}:{line}: ", path.display()),
        _ => String::new(),
    };
    (program, at)
}

/// What is missing and why it counts, in words (shared with the JSON report).
pub fn missing_text(audit: &Audit, missing: &Missing) -> (String, String) {
    match missing {
        Missing::Baseline(expected) => {
            let (program, at) = baseline_line(audit, expected);
            (program, format!("{at}nothing listens there now"))
        }
        Missing::Rule(index) => {
            let Some(policy) = &audit.policy else {
                return ("-".into(), "a required rule matches no listener".into());
            };
            let rule = &policy.rules[*index];
            (
                "-".into(),
                format!(
                    "{} is required, and no listener matches it",
                    rule.describe(&policy.path)
                ),
            )
        }
    }
}

/// One row per finding: those that fail the audit, and those only reported.
fn suspicious_rows(audit: &Audit, labels: &Labels) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (mut failing, mut reported) = (Vec::new(), Vec::new());
    for listener in &audit.listeners {
        for finding in &listener.findings {
            let mut row = listener_row(listener, labels, finding.explanation.clone());
            row[3] = finding.flag.name().into();
            if audit.fail.flags.contains(&finding.flag) {
                failing.push(row);
            } else {
                reported.push(row);
            }
        }
    }
    (failing, reported)
}

/// A titled section of aligned rows; nothing at all when there are no rows.
fn section(out: &mut dyn Write, title: &str, rows: &[Vec<String>]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n{title}")?;
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if c + 1 < columns {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 1));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
