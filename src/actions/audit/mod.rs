//! `lsports audit`: compare the listeners of now with a baseline and/or a policy, report the
//! unexpected, missing and suspicious ones, and exit 0 (nothing unexpected), 1 (something is)
//! or 2 (the audit could not be done, or not all of it: a policy's deny rule could not be
//! evaluated for a listener whose holder could not be seen, or whose firewall rules could not
//! be read), so that cron and CI can act on it.
//!
//! ```text
//! baseline file ─┐                        ┌─ text report (people, cron mail)
//! policy file ───┼─ judge (verdict) ──────┤
//! listing ───────┘  identify, inspect     └─ JSON report (--format json)
//! ```
//!
//! The files are read and checked before any socket is: a broken baseline is reported at once
//! with its file and line, and exits 2.

pub mod baseline;
pub mod identity;
mod json;
pub mod policy;
pub mod scope;
mod text;
pub mod tomlfile;
pub mod verdict;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::ExitCode;
use crate::actions::audit::identity::Identifier;
use crate::actions::audit::tomlfile::{FileError, Source};
use crate::config::{AuditSpec, Config, FailSet, Needs, OutputFormat};
use crate::enrich::reach::apply::Hole;
use crate::filter::ephemeral::EphemeralPorts;
use crate::model::OwnerUnknownReason;
use crate::model::published::Published;
use crate::pipeline::{self, Listing, Plan};
use baseline::Baseline;
use policy::Policy;
use scope::Scope;
pub use verdict::{
    Audited, Missing, Reason, Unchecked, UncheckedWhy, Undecided, UndecidedWhy, Verdict,
};

/// What the report is about: the files checked and the audited listeners.
pub struct Audit {
    /// The baseline, with its file.
    pub baseline: Option<(PathBuf, Baseline)>,
    /// The policy.
    pub policy: Option<Policy>,
    /// Every listener, in display order.
    pub listeners: Vec<Audited>,
    /// The verdict.
    pub verdict: Verdict,
    /// What fails the audit.
    pub fail: FailSet,
    /// Ports a firewall rule accepts with nothing listening there (reported, not failing:
    /// a hole is not a listener, and may wait for a service that starts later).
    pub holes: Vec<Hole>,
    /// Published ports whose target's namespace listens on nothing there
    /// (`published-without-listener`; reported, not failing, like the holes).
    pub unlanded: Vec<Published>,
    /// Why the baseline lines in `verdict.unchecked` were not checked.
    pub unchecked_because: &'static str,
}

/// Run the audit `spec` over the listeners `config` selects. `host` is the audited machine's
/// name, to warn when a baseline was recorded elsewhere.
pub fn run(
    spec: &AuditSpec,
    config: &Config,
    host: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let (baseline, policy) = match load(spec) {
        Ok(files) => files,
        Err(error) => {
            writeln!(err, "lsports: {error}")?;
            return Ok(ExitCode::AuditError);
        }
    };
    warn_about_files(baseline.as_ref(), policy.as_ref(), host, err)?;
    let mut plan = Plan::new(config, Needs::EVERYTHING);
    // The rules are read for reach anyway, and shared; what finding the published ports
    // adds is a look at docker-proxy command lines. Only on the live host, whose rules they
    // are.
    plan.published = config.snapshot.is_none() && config.proc_root == Path::new("/proc");
    let Some(mut listing) = pipeline::gather(&plan, config.verbose, err)? else {
        writeln!(err, "lsports: cannot audit: no source could list sockets")?;
        return Ok(ExitCode::AuditError);
    };
    let listeners = audited(&listing, config);
    let scope = Scope::new(config, std::mem::take(&mut listing.coverage), &listeners);
    let files = (baseline, policy);
    let mut audit = Audit::judge_within(files, listeners, &spec.fail, Some(&scope));
    audit.holes = holes(&listing, config);
    audit.unlanded = (listing.published.as_ref())
        .map(|found| found.ports.iter().filter(|p| p.without_listener()))
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    match config.format {
        OutputFormat::Json => json::write(&audit, out)?,
        _ => text::write(&audit, out)?,
    }
    out.flush()?;
    listing.report_attribution(config, err)?;
    Ok(if audit.verdict.fails {
        ExitCode::Unexpected
    } else if audit.verdict.incomplete {
        ExitCode::AuditIncomplete
    } else {
        ExitCode::Success
    })
}

impl Audit {
    /// Judge `listeners` against the files, keeping everything the reports show.
    pub fn judge(
        baseline: Option<(PathBuf, Baseline)>,
        policy: Option<Policy>,
        listeners: Vec<Audited>,
        fail: &FailSet,
    ) -> Audit {
        Audit::judge_within((baseline, policy), listeners, fail, None)
    }

    /// [`Audit::judge`] within `scope`: baseline lines in namespaces it did not look into are
    /// not checked (none, without a scope).
    pub fn judge_within(
        (baseline, policy): Files,
        listeners: Vec<Audited>,
        fail: &FailSet,
        scope: Option<&Scope>,
    ) -> Audit {
        let verdict = verdict::judge_within(
            &listeners,
            baseline.as_ref().map(|(_, b)| b),
            policy.as_ref(),
            fail,
            &|line| scope.and_then(|s| s.unchecked(line)),
        );
        Audit {
            baseline,
            policy,
            listeners,
            verdict,
            fail: fail.clone(),
            holes: Vec::new(),
            unlanded: Vec::new(),
            unchecked_because: scope.map_or("", Scope::why_not),
        }
    }
}

/// Why the baseline lines of `why` were not checked, for the report.
pub fn unchecked_because(audit: &Audit, why: UncheckedWhy) -> &'static str {
    match why {
        UncheckedWhy::Namespace => audit.unchecked_because,
        UncheckedWhy::Table => {
            "the kernel's table of their sockets could not be read (stderr says \
             which, and why), so they may be listening"
        }
        UncheckedWhy::HolderUnseen(why) => unchecked_because_unseen(why),
        UncheckedWhy::ReachUnread => {
            "the listener is there as expected, but the reach through the firewall its line \
             records could not be told: the rules could not be read (run as root, or grant \
             CAP_NET_ADMIN, with nft installed; a snapshot records no rules)"
        }
    }
}

/// Why the policy checks of `undecided` could not be done, for the report.
pub fn undecided_because(undecided: &Undecided) -> String {
    let why = undecided.why();
    let holder = match why.holders {
        Some(OwnerUnknownReason::OutsidePidNamespace) => Some(
            "the holder, which runs outside this PID namespace (run lsports in the host's PID \
             namespace, or give --proc-root the host's /proc)",
        ),
        Some(_) => Some(
            "the holder, which could not be inspected (run as root, or grant \
             CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE)",
        ),
        None => None,
    };
    let reach = why.reach.then_some(
        "the reach through the firewall, whose rules could not be read (run as root, or grant \
         CAP_NET_ADMIN, with nft installed; a snapshot records no rules)",
    );
    let looked_at: Vec<&str> = holder.into_iter().chain(reach).collect();
    match (undecided.blocks_pass(), why.holders) {
        (true, _) => format!("a deny rule looks at {}", looked_at.join(", and at ")),
        (false, Some(holders)) if !why.reach => unchecked_because_unseen(holders).to_string(),
        (false, _) => format!("a rule looks at {}", looked_at.join(", and at ")),
    }
}

/// Why a holder could not be seen, when that left something unchecked.
fn unchecked_because_unseen(why: OwnerUnknownReason) -> &'static str {
    match why {
        OwnerUnknownReason::OutsidePidNamespace => {
            "something listens there, but its holders run outside this PID namespace (run \
             lsports in the host's PID namespace, or give --proc-root the host's /proc)"
        }
        _ => {
            "something listens there, but the process holding it could not be inspected (run \
             as root, or grant CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE)"
        }
    }
}

/// The baseline (with its file) and the policy an audit compares with.
pub type Files = (Option<(PathBuf, Baseline)>, Option<Policy>);

/// Read and check the baseline and the policy.
pub fn load(spec: &AuditSpec) -> Result<Files, FileError> {
    let baseline = match &spec.baseline {
        Some(path) => Some((path.clone(), load_baseline(path)?)),
        None => None,
    };
    let policy = match &spec.policy {
        Some(path) => Some(policy::parse::parse(&Source::read(path, "policy")?)?),
        None => None,
    };
    Ok((baseline, policy))
}

/// Read and check a baseline file.
pub fn load_baseline(path: &Path) -> Result<Baseline, FileError> {
    baseline::file::parse(&Source::read(path, "baseline")?)
}

/// Warn on `err` about what the files say of themselves: a policy's warnings, a baseline
/// recorded on another host than `host`.
pub fn warn_about_files(
    baseline: Option<&(PathBuf, Baseline)>,
    policy: Option<&Policy>,
    host: Option<&str>,
    err: &mut dyn Write,
) -> io::Result<()> {
    for warning in policy.iter().flat_map(|p| &p.warnings) {
        writeln!(err, "lsports: warning: {warning}")?;
    }
    let Some(((path, baseline), host)) = baseline.zip(host) else {
        return Ok(());
    };
    match baseline.host.as_deref() {
        Some(recorded) if recorded != host => writeln!(
            err,
            "lsports: warning: {} was recorded on {recorded}, and this is {host}",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// The firewall holes among the ports the audit looks at (`--port`, when given).
fn holes(listing: &Listing, config: &Config) -> Vec<Hole> {
    let Some(firewalls) = &listing.firewalls else {
        return Vec::new();
    };
    let ports = config.filter.ports.as_ref();
    firewalls.holes(&listing.entries, |p| ports.is_none_or(|s| s.contains(p)))
}

/// Identify every listener of `listing`, with the findings the enrich stage made.
pub fn audited(listing: &Listing, config: &Config) -> Vec<Audited> {
    let mut identifier = Identifier::new(EphemeralPorts::read(&config.proc_root))
        .in_netns(crate::source::netns::own_inode(&config.proc_root));
    listing
        .entries
        .iter()
        .map(|entry| Audited {
            identity: identifier.identify(entry, &listing.exes),
            findings: entry.findings.to_vec(),
            exes: (entry.processes.iter())
                .map(|p| listing.exes.get(p.pid).map(<[u8]>::to_vec))
                .collect(),
            entry: entry.clone(),
            reach_unread: (listing.firewalls.as_ref()).is_some_and(|f| f.unread_for(entry)),
        })
        .collect()
}

#[cfg(test)]
mod tests;
