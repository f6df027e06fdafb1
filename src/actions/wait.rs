//! `--wait PORTS` and `--wait-free PORTS`: the scripted replacement for sleep loops and
//! `wait-for-it`. Poll until something listens on every port (or nothing listens on any), and
//! say clearly what is still missing when the time is up.
//!
//! A poll is a kernel-filtered netlink dump of listeners ([`probe`]); processes are scanned
//! only when a filter asks about them (`--pid`, `--user`, `--program`), and once more at a
//! `--wait-free` timeout, to name who still holds the port.

pub mod bytecode;
pub mod probe;

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::ExitCode;
use crate::config::{Config, Until, WaitSpec};
use crate::filter;
use crate::model::{Entry, Socket};
use crate::process;
use crate::render::labels::{Labels, program_cell};
use crate::text::duration;
use probe::Prober;

/// Time between polls: quick enough to feel immediate, and a poll is a few small messages.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How many ports a message lists before it says "and N more".
const PORTS_NAMED: usize = 10;

impl WaitSpec {
    /// The flag the user typed, for messages.
    fn flag(&self) -> &'static str {
        match self.until {
            Until::Listening => "--wait",
            Until::Free => "--wait-free",
        }
    }

    /// The ports not yet as wanted, given the matching listeners.
    fn pending(&self, listeners: &[Socket]) -> Vec<u16> {
        let busy = |port: u16| listeners.iter().any(|s| s.local_port == port);
        match self.until {
            Until::Listening => self.ports.ports().filter(|&p| !busy(p)).collect(),
            Until::Free => self.ports.ports().filter(|&p| busy(p)).collect(),
        }
    }
}

/// Wait as `spec` says. Exit status: success when the ports are as wanted, `WaitTimedOut`
/// when the timeout passed first, `NoSource` when sockets cannot be listed at all.
pub fn run(spec: &WaitSpec, config: &Config, err: &mut dyn Write) -> io::Result<ExitCode> {
    let started = Instant::now();
    let mut prober = Prober::new(config);
    if config.verbose {
        for line in prober.describe(&spec.ports) {
            writeln!(err, "lsports: {line}")?;
        }
    }
    loop {
        let polled = prober.poll(&spec.ports);
        if config.verbose {
            for note in prober.take_notes() {
                writeln!(err, "lsports: {note}")?;
            }
        }
        let listeners = match polled {
            Ok(sockets) => matching(sockets, config),
            Err(error) => {
                writeln!(err, "lsports: {error}")?;
                return Ok(ExitCode::NoSource);
            }
        };
        let pending = spec.pending(&listeners);
        if pending.is_empty() {
            report_done(spec, started.elapsed(), config.verbose, err)?;
            return Ok(ExitCode::Success);
        }
        let left = spec
            .timeout
            .map(|timeout| timeout.saturating_sub(started.elapsed()));
        if left.is_some_and(|left| left.is_zero()) {
            report_timeout(spec, &pending, listeners, config, err)?;
            return Ok(ExitCode::WaitTimedOut);
        }
        thread::sleep(left.map_or(POLL_INTERVAL, |left| left.min(POLL_INTERVAL)));
    }
}

/// The listeners the filters keep; processes are scanned only if a filter needs them.
fn matching(sockets: Vec<Socket>, config: &Config) -> Vec<Socket> {
    let sockets = filter::keep_sockets(sockets, &config.filter);
    if !config.filter.needs_processes() {
        return sockets;
    }
    let attributed = process::attribute(sockets, &config.proc_root);
    filter::keep_entries(attributed.entries, &config.filter)
        .into_iter()
        .map(|e| e.socket)
        .collect()
}

fn report_done(
    spec: &WaitSpec,
    waited: Duration,
    verbose: bool,
    err: &mut dyn Write,
) -> io::Result<()> {
    if !verbose {
        return Ok(());
    }
    let ports: Vec<u16> = spec.ports.ports().collect();
    let state = match spec.until {
        Until::Listening => "listening",
        Until::Free => "free",
    };
    writeln!(
        err,
        "lsports: {}: {state} after {}",
        port_list(&ports),
        duration::display(waited)
    )
}

fn report_timeout(
    spec: &WaitSpec,
    pending: &[u16],
    listeners: Vec<Socket>,
    config: &Config,
    err: &mut dyn Write,
) -> io::Result<()> {
    let timeout = duration::display(spec.timeout.unwrap_or_default());
    let flag = spec.flag();
    match spec.until {
        Until::Listening => {
            let what = if filtered(config) {
                "nothing the filters keep"
            } else {
                "nothing"
            };
            writeln!(
                err,
                "lsports: {flag} timed out after {timeout}: {what} listens on {}",
                port_list(pending)
            )
        }
        Until::Free => {
            writeln!(
                err,
                "lsports: {flag} timed out after {timeout}: {} still in use",
                port_list(pending)
            )?;
            // The one process scan of a plain wait: who is in the way.
            let holders = process::attribute(listeners, &config.proc_root);
            for entry in filter::select(holders.entries) {
                writeln!(err, "lsports:   {}", describe_holder(&entry))?;
            }
            Ok(())
        }
    }
}

/// Whether filters beyond the ports narrow what counts as listening.
fn filtered(config: &Config) -> bool {
    let filter = &config.filter;
    filter.needs_processes() || !filter.addresses.is_empty() || filter.exposures.is_some()
}

/// `tcp 127.0.0.1:8080 held by 4242/python3`.
fn describe_holder(entry: &Entry) -> String {
    let socket = &entry.socket;
    let local = Labels::numeric().local(socket);
    let owner = if entry.processes.is_empty() {
        "no process lsports can see".to_string()
    } else {
        program_cell(&entry.processes, false)
    };
    format!("{} {local} held by {owner}", socket.protocol.name())
}

/// `port 8080`, `ports 8080, 9090`, `ports 1, 2, …, 10 and 5 more`.
fn port_list(ports: &[u16]) -> String {
    let shown: Vec<String> = ports.iter().take(PORTS_NAMED).map(u16::to_string).collect();
    let more = ports.len().saturating_sub(PORTS_NAMED);
    let noun = if ports.len() == 1 { "port" } else { "ports" };
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("{noun} {}{tail}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    fn listener(port: u16) -> Socket {
        Socket {
            send_q: Some(1),
            ..Socket::listening(Protocol::Tcp, "127.0.0.1", port)
        }
    }

    fn spec(ports: &str, until: Until) -> WaitSpec {
        WaitSpec {
            ports: ports.parse().unwrap(),
            until,
            timeout: None,
        }
    }

    #[test]
    fn listening_waits_for_every_port() {
        let wait = spec("80,443", Until::Listening);
        assert_eq!(wait.pending(&[]), [80, 443]);
        assert_eq!(wait.pending(&[listener(80)]), [443]);
        assert!(wait.pending(&[listener(443), listener(80)]).is_empty());
    }

    #[test]
    fn free_waits_until_no_port_is_used() {
        let wait = spec("8000-8002", Until::Free);
        assert!(wait.pending(&[]).is_empty());
        assert_eq!(wait.pending(&[listener(8001)]), [8001]);
    }

    #[test]
    fn port_lists_read_naturally() {
        assert_eq!(port_list(&[8080]), "port 8080");
        assert_eq!(port_list(&[80, 443]), "ports 80, 443");
        let many: Vec<u16> = (1..=15).collect();
        assert_eq!(
            port_list(&many),
            "ports 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 5 more"
        );
    }
}
