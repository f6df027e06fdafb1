//! Diagnostics on stderr: which source fed each table, what failed, and what the scan could
//! not see. Every line starts with `lsports:` and says what to do where something can be done.

use std::io::{self, Write};

use crate::config::Config;
use crate::model::SourceKind;
use crate::process::info::ProcVisibility;
use crate::source::{Collected, TableReport};
use crate::sys::privilege::Privilege;
use crate::text::counts::count;

/// Report sources (all of them under `verbose`; failures always) and parse warnings.
pub fn sources(collected: &Collected, verbose: bool, err: &mut dyn Write) -> io::Result<()> {
    for line in source_lines(collected, verbose) {
        writeln!(err, "lsports: {line}")?;
    }
    Ok(())
}

/// The lines [`sources`] prints, without the `lsports: ` prefix.
pub fn source_lines(collected: &Collected, verbose: bool) -> Vec<String> {
    let tables = collected
        .reports
        .iter()
        .filter(|report| verbose || report.source.is_none())
        .map(describe);
    let warnings = collected
        .warnings
        .iter()
        .map(|warning| format!("warning: {warning}"));
    let notes = collected.notes.iter().cloned();
    let verbose_notes = collected.verbose_notes.iter().filter(|_| verbose).cloned();
    tables
        .chain(warnings)
        .chain(notes)
        .chain(verbose_notes)
        .collect()
}

/// Diagnostics for a loop that polls again and again (`watch`, `-c`): a line is printed when
/// it first appears, not again while it repeats poll after poll, and again if it comes back
/// after a poll without it. Only the previous poll's lines are kept, so memory stays flat.
#[derive(Debug, Default)]
pub struct Repeats {
    previous: Vec<String>,
}

impl Repeats {
    /// Print those of `lines` the previous poll did not print.
    pub fn report(&mut self, lines: Vec<String>, err: &mut dyn Write) -> io::Result<()> {
        for line in lines.iter().filter(|l| !self.previous.contains(l)) {
            writeln!(err, "lsports: {line}")?;
        }
        self.previous = lines;
        Ok(())
    }
}

fn describe(report: &TableReport) -> String {
    let table = format!("{}/{}", report.protocol.name(), report.family.name());
    let netlink_failure = report
        .netlink_error
        .as_ref()
        .map(|e| format!(" (netlink failed: {e})"))
        .unwrap_or_default();
    let iterator_failure = report
        .iterator_error
        .as_ref()
        .map(|e| format!("; the tcp/udp iterators could not run: {e}"))
        .unwrap_or_default();
    match report.source {
        Some(SourceKind::Netlink) => {
            let filtered = if report.port_filter {
                ", ports filtered by the kernel"
            } else {
                ""
            };
            format!(
                "{table}: {} sockets from netlink sock_diag{filtered}{iterator_failure}",
                report.count
            )
        }
        Some(SourceKind::Proc) => format!(
            "{table}: {} sockets from /proc/net{}",
            report.count, netlink_failure
        ),
        Some(SourceKind::Event) => format!("{table}: {} sockets from kernel events", report.count),
        Some(SourceKind::Bpf) => format!(
            "{table}: {} sockets from the kernel's tcp/udp iterators",
            report.count
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

/// Report that the proc mount hides other users' processes, with what would fix it.
pub fn hidden_processes(
    hidden: &ProcVisibility,
    config: &Config,
    err: &mut dyn Write,
) -> io::Result<()> {
    let group = hidden
        .gid
        .map(|gid| format!(", or as a member of group {gid}"))
        .unwrap_or_default();
    writeln!(
        err,
        "lsports: {} is mounted with hidepid={}, which hides other users' processes, so their \
         sockets show no owner; run as root{group}",
        config.proc_root.display(),
        hidden.hidepid.name()
    )
}

/// Report processes that could not be inspected, with what would fix it. `denied` counts only
/// when a shown socket lacks an owner because of them (the caller passes 0 otherwise): a line
/// about processes that change nothing on the screen is noise, and a cron job mails it.
pub fn attribution(
    denied: usize,
    scan_error: Option<&io::Error>,
    config: &Config,
    err: &mut dyn Write,
) -> io::Result<()> {
    if let Some(error) = scan_error {
        return writeln!(
            err,
            "lsports: cannot scan {} for socket owners: {error}; owners are shown blank",
            config.proc_root.display()
        );
    }
    if denied == 0 {
        return Ok(());
    }
    let (processes, their) = (
        count(denied, "process"),
        if denied == 1 { "its" } else { "their" },
    );
    if config.snapshot.is_some() {
        // Nothing run here can fix a snapshot: the capture itself lacked the privilege.
        writeln!(
            err,
            "lsports: {processes} could not be inspected when the snapshot was captured, so \
             {their} sockets show no owner; capture as root to record every owner"
        )
    } else {
        // Only this machine's own /proc refuses for the reasons its privilege tells.
        let privilege = match is_live_proc(config) {
            true => Privilege::current(),
            false => Privilege::Unprivileged,
        };
        refused(&processes, their, privilege, err)
    }
}

/// Say that `processes` could not be inspected by a reader with `privilege`, and what would let
/// it see them.
fn refused(
    processes: &str,
    their: &str,
    privilege: Privilege,
    err: &mut dyn Write,
) -> io::Result<()> {
    match privilege {
        // Root was refused: there is no privilege to suggest.
        Privilege::Root => writeln!(
            err,
            "lsports: {processes} could not be inspected even as root (refused by a security \
             module such as Yama, SELinux, AppArmor or a sandbox's), so {their} sockets show no \
             owner"
        ),
        Privilege::NamespacedRoot => writeln!(
            err,
            "lsports: {processes} could not be inspected, so {their} sockets show no owner: \
             lsports runs as root of a user namespace (unshare -U, a rootless container), which \
             may not look into processes outside it; run it in the host's user namespace to see \
             every owner"
        ),
        Privilege::Unprivileged => writeln!(
            err,
            "lsports: {processes} could not be inspected, so {their} sockets show no owner; \
             run as root, or grant CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE \
             (setcap cap_dac_read_search,cap_sys_ptrace+ep lsports)"
        ),
    }
}

/// Say that `left_out` sockets were left out by the process filters without being judged: no
/// holder of theirs could be seen, so they may be what the filters ask for.
pub fn undecided(left_out: usize, err: &mut dyn Write) -> io::Result<()> {
    if left_out == 0 {
        return Ok(());
    }
    let (sockets, their) = (
        count(left_out, "socket"),
        if left_out == 1 {
            "its holder"
        } else {
            "their holders"
        },
    );
    writeln!(
        err,
        "lsports: {sockets} left out by the process filters (--pid, --user, --program, \
         --container, --unit) may match them: {their} could not be inspected (run as root, or \
         grant CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE; in a container, lsports in the host's \
         PID namespace)"
    )
}

/// Report the `shown` sockets whose holders are presumably outside this PID namespace.
pub fn held_outside(shown: usize, err: &mut dyn Write) -> io::Result<()> {
    if shown == 0 {
        return Ok(());
    }
    let (sockets, have) = (
        count(shown, "socket"),
        if shown == 1 { "has" } else { "have" },
    );
    writeln!(
        err,
        "lsports: {sockets} {have} no owner in this PID namespace: held outside it, as a \
         container sharing the host's network sees the host's sockets but not its processes; \
         run lsports in the host's PID namespace, or point it at the host's /proc (--proc-root DIR \
         --source auto), to see every owner"
    )
}

/// How sure lsports is that the hidden processes hold the sockets it blames them for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// The kernel iterator named them as the holders.
    Kernel,
    /// The walk read their fds through a copy of the proc mount without the mount over them.
    PastTheMount,
    /// The walk could not read their fds: they may hold the sockets, or not.
    Maybe,
}

/// Say why `shown` sockets have no owner: `pids`, whose directories under `proc_root` have
/// something mounted over them, hide what they hold (`named`: how sure that is).
pub fn hidden_from_proc(
    shown: usize,
    pids: &[u32],
    named: Named,
    proc_root: &std::path::Path,
    err: &mut dyn Write,
) -> io::Result<()> {
    if shown == 0 || pids.is_empty() {
        return Ok(());
    }
    let (sockets, have) = (
        count(shown, "socket"),
        if shown == 1 { "has" } else { "have" },
    );
    let dirs: Vec<String> = (pids.iter().take(5))
        .map(|pid| format!("{}/{pid}", proc_root.display()))
        .collect();
    let more = match pids.len().saturating_sub(dirs.len()) {
        0 => String::new(),
        more => format!(" and {more} more"),
    };
    let (processes, they, are) = match pids.len() {
        1 => (format!("process {}", pids[0]), "it", "is"),
        _ => (
            format!("processes {}", crate::text::pids::pid_list(pids, true)),
            "they",
            "are",
        ),
    };
    let holder = match named {
        Named::Kernel => format!("the kernel names {processes} as holder, but {they} {are}"),
        Named::PastTheMount => format!(
            "{processes} {holds} {them} (read past the mount), but {they} {are}",
            holds = if pids.len() == 1 { "holds" } else { "hold" },
            them = if shown == 1 { "it" } else { "them" },
        ),
        Named::Maybe => format!(
            "{processes} may hold {them} (what {they} {hold} could not be read past the \
             mount: that needs CAP_SYS_ADMIN, outside a user namespace), and {are}",
            them = if shown == 1 { "it" } else { "them" },
            hold = if pids.len() == 1 { "holds" } else { "hold" },
        ),
    };
    writeln!(
        err,
        "lsports: {sockets} {have} no owner shown: {holder} hidden from /proc by a mount \
         over {}{more} (a way to hide a process, listed in /proc/self/mountinfo; `umount {}` \
         shows it again)",
        dirs.join(", "),
        dirs[0],
    )
}

/// Whether the proc root is this machine's own `/proc`, not a fixture tree or a snapshot.
fn is_live_proc(config: &Config) -> bool {
    config.snapshot.is_none() && config.proc_root == std::path::Path::new("/proc")
}

/// Say why the firewall rules could not be read, once per process: `watch` and `-c` read
/// them every poll, and the reason does not change between polls.
pub fn reach_once(note: &str, err: &mut dyn Write) -> io::Result<()> {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let note = crate::text::sanitize::terminal_safe(note.as_bytes());
    writeln!(err, "lsports: {note}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_is_one_process_with_its_sockets() {
        let args = ["lsports", "--proc-root", "/nonexistent/proc"];
        let config = crate::cli::Cli::config_from(args).unwrap();
        let mut out = Vec::new();
        attribution(1, None, &config, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("lsports: 1 process could not be inspected, so its sockets"),
            "{text}"
        );
        let mut out = Vec::new();
        attribution(0, None, &config, &mut out).unwrap();
        assert!(out.is_empty(), "nothing to say about nobody");
    }
}
