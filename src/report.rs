//! Diagnostics on stderr: which source fed each table, what failed, and what the scan could
//! not see. Every line starts with `lsports:` and says what to do where something can be done.

use std::io::{self, Write};

use crate::config::Config;
use crate::model::SourceKind;
use crate::source::{Collected, TableReport};

/// Report sources (all of them under `verbose`; failures always) and parse warnings.
pub fn sources(collected: &Collected, verbose: bool, err: &mut dyn Write) -> io::Result<()> {
    for report in &collected.reports {
        if verbose || report.source.is_none() {
            writeln!(err, "lsports: {}", describe(report))?;
        }
    }
    for warning in &collected.warnings {
        writeln!(err, "lsports: warning: {warning}")?;
    }
    Ok(())
}

fn describe(report: &TableReport) -> String {
    let table = format!("{}/{}", report.protocol.name(), report.family.name());
    let netlink_failure = report
        .netlink_error
        .as_ref()
        .map(|e| format!(" (netlink failed: {e})"))
        .unwrap_or_default();
    match report.source {
        Some(SourceKind::Netlink) => {
            format!("{table}: {} sockets from netlink sock_diag", report.count)
        }
        Some(SourceKind::Proc) => format!(
            "{table}: {} sockets from /proc/net{}",
            report.count, netlink_failure
        ),
        None => {
            let proc_failure = report
                .proc_error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            format!("{table}: cannot list sockets{netlink_failure}{proc_failure}")
        }
    }
}

/// Report processes that could not be inspected, with what would fix it.
pub fn attribution(
    denied: &usize,
    scan_error: Option<&io::Error>,
    config: &Config,
    err: &mut dyn Write,
) -> io::Result<()> {
    if let Some(error) = scan_error {
        writeln!(
            err,
            "lsports: cannot scan {} for socket owners: {error}; owners are shown blank",
            config.proc_root.display()
        )?;
    } else if *denied > 0 {
        writeln!(
            err,
            "lsports: {denied} processes could not be inspected, so their sockets show no owner; \
             run as root, or grant CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE \
             (setcap cap_dac_read_search,cap_sys_ptrace+ep lsports)"
        )?;
    }
    Ok(())
}
