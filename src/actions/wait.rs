//! `--wait PORTS` and `--wait-free PORTS`: the scripted replacement for sleep loops and
//! `wait-for-it`. Poll until something listens on every port (or nothing listens on any), and
//! say clearly what is still missing when the time is up.
//!
//! A poll is the pipeline's collection narrowed to the listeners on the waited-for ports, so
//! the kernel sends only those and a poll costs a few small messages however many sockets the
//! host has; `--source` and `--proc-root` choose where they come from, as for any action.
//! Processes are scanned (the way `--attribution` says) only when a filter asks about them
//! (`--pid`, `--user`, `--program`), and once at the end to name who holds the ports: at a
//! `--wait-free` timeout, and under `-v`.

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::ExitCode;
use crate::config::{Config, DetailFields, Needs, Until, WaitSpec};
use crate::model::{Entry, Socket};
use crate::pipeline::report::Repeats;
use crate::pipeline::{self, Listing, Plan};
use crate::render::labels::{Labels, program_cell};
use crate::text::duration;

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

    /// The ports not yet as wanted, given the matching listeners and those the filters could
    /// not judge (`undecided`, whose holders could not be seen): a port is listening when a
    /// matching listener is there, and free only when no listener there may match, since
    /// `--wait-free 80 --program nginx && start-server` must not start into EADDRINUSE.
    fn pending(&self, listeners: &[Entry], undecided: &[Entry]) -> Vec<u16> {
        let on = |entries: &[Entry], port: u16| entries.iter().any(|e| e.socket.local_port == port);
        match self.until {
            Until::Listening => self.ports.ports().filter(|&p| !on(listeners, p)).collect(),
            Until::Free => (self.ports.ports())
                .filter(|&p| on(listeners, p) || on(undecided, p))
                .collect(),
        }
    }
}

/// Wait as `spec` says. Exit status: success when the ports are as wanted, `WaitTimedOut`
/// when the timeout passed first, `NoSource` when a table cannot be read at all.
pub fn run(spec: &WaitSpec, config: &Config, err: &mut dyn Write) -> io::Result<ExitCode> {
    let started = Instant::now();
    let plan = Plan::new(config, config.filter_needs())
        .polling()
        .listeners_on(&spec.ports);
    let mut repeats = Repeats::default();
    let mut first = true;
    loop {
        let Some(listeners) = pipeline::poll(
            &plan,
            pipeline::MustRead::EveryTable,
            first && config.verbose,
            &mut repeats,
            err,
        )?
        else {
            return Ok(ExitCode::NoSource);
        };
        if first {
            listeners.report_attribution(config, err)?;
        }
        first = false;
        let pending = spec.pending(&listeners.entries, &listeners.undecided);
        if pending.is_empty() {
            report_done(spec, started.elapsed(), config.verbose, err)?;
            if config.verbose {
                name_holders(listeners, &plan, config, err)?;
            }
            return Ok(ExitCode::Success);
        }
        let left = spec
            .timeout
            .map(|timeout| timeout.saturating_sub(started.elapsed()));
        if left.is_some_and(|left| left.is_zero()) {
            report_timeout(spec, &pending, listeners, &plan, config, err)?;
            return Ok(ExitCode::WaitTimedOut);
        }
        thread::sleep(left.map_or(POLL_INTERVAL, |left| left.min(POLL_INTERVAL)));
    }
}

/// Say who holds the ports of `listeners`, scanning processes (the way `--attribution` says)
/// unless the polls already did; then what the scan could not see, and under `-v` how it ran.
fn name_holders(
    listeners: Listing,
    plan: &Plan,
    config: &Config,
    err: &mut dyn Write,
) -> io::Result<()> {
    if listeners.entries.is_empty() && listeners.undecided.is_empty() {
        return Ok(());
    }
    if listeners.attributed {
        return describe_holders(&listeners, err);
    }
    let names = Plan {
        needs: Needs {
            processes: true,
            details: DetailFields::NONE,
            ..Needs::NOTHING
        },
        ..plan.clone()
    };
    let sockets: Vec<Socket> = listeners.entries.into_iter().map(|e| e.socket).collect();
    let holders = pipeline::attribute(sockets, pipeline::begin(&names), &names);
    let holders = pipeline::refine(holders.unwrap_or_default(), &names);
    describe_holders(&holders, err)?;
    holders.report_attribution(config, err)
}

/// One line per listener: `lsports:   tcp 127.0.0.1:8080 held by 4242/python3`; those the
/// filters could not judge too (held by no process lsports can see).
fn describe_holders(holders: &Listing, err: &mut dyn Write) -> io::Result<()> {
    for entry in holders.entries.iter().chain(&holders.undecided) {
        writeln!(err, "lsports:   {}", describe_holder(entry))?;
    }
    Ok(())
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
    listeners: Listing,
    plan: &Plan,
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
            )?;
            let unjudged: Vec<u16> = (pending.iter().copied())
                .filter(|&p| (listeners.undecided.iter()).any(|e| e.socket.local_port == p))
                .collect();
            unjudged_ports(&unjudged, err)
        }
        Until::Free => {
            writeln!(
                err,
                "lsports: {flag} timed out after {timeout}: {} still in use",
                port_list(pending)
            )?;
            // The one process scan of a plain wait: who is in the way.
            name_holders(listeners, plan, config, err)
        }
    }
}

/// Say which of the ports have a listener the filters could not judge, its holder unseen.
fn unjudged_ports(ports: &[u16], err: &mut dyn Write) -> io::Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    writeln!(
        err,
        "lsports: something listens on {}, but its holder could not be inspected, so the \
         filters cannot tell whether it is the one waited for (run as root, or grant \
         CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE)",
        port_list(ports)
    )
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

    fn listener(port: u16) -> Entry {
        Entry {
            socket: Socket {
                send_q: Some(1),
                ..Socket::listening(Protocol::Tcp, "127.0.0.1", port)
            },
            processes: Default::default(),
            owner_unknown: None,
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
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
        assert_eq!(wait.pending(&[], &[]), [80, 443]);
        assert_eq!(wait.pending(&[listener(80)], &[]), [443]);
        assert!(wait.pending(&[listener(443), listener(80)], &[]).is_empty());
        // A listener the filters could not judge is not the one waited for, yet.
        assert_eq!(wait.pending(&[listener(80)], &[listener(443)]), [443]);
    }

    #[test]
    fn free_waits_until_no_port_is_used() {
        let wait = spec("8000-8002", Until::Free);
        assert!(wait.pending(&[], &[]).is_empty());
        assert_eq!(wait.pending(&[listener(8001)], &[]), [8001]);
        // One the filters could not judge may be in the way.
        assert_eq!(wait.pending(&[], &[listener(8002)]), [8002]);
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
