//! What `/metrics` serves beyond `--format prometheus`'s series:
//!
//! ```text
//! lsports_up                                      1 when the listing could read a socket table
//! lsports_scrape_duration_seconds                 how long that listing took
//! lsports_listings_total                          listings made since start (one per interval)
//! lsports_listener_event_source_info{source}      which source counts the events: poll, kernel
//! lsports_listener_events_total{event,program}    listeners opened and closed since start
//! lsports_listener_events_lost_total              events the kernel dropped uncounted (ring full)
//! lsports_audit_unexpected{proto,address,port,interface,namespace,exposure,user,program,exe,
//!                          reason}
//!                                                 one series per unexpected listener identity
//! lsports_audit_unexpected_listeners              how many listeners are unexpected
//! lsports_audit_missing_listeners                 how many expected ones are missing
//! ```
//!
//! Label values are terminal-safe already (identities and program names are), and escaped
//! for the format here.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::cache::Listed;
use super::events::EventCounts;
use crate::actions::audit::identity::{Device, Identity};
use crate::actions::audit::{Audited, Reason, Verdict};
use crate::render::prometheus::escape_label_value;

/// One sample: its labels, in the order written, and its value.
pub type Sample = (Vec<(&'static str, String)>, String);

/// Write one metric family: its help, its type, its samples.
pub fn write_family(
    out: &mut dyn Write,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[Sample],
) -> io::Result<()> {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")?;
    for (labels, value) in samples {
        let pairs: Vec<String> = labels
            .iter()
            .map(|(label, value)| format!("{label}=\"{}\"", escape_label_value(value)))
            .collect();
        match pairs.is_empty() {
            true => writeln!(out, "{name} {value}")?,
            false => writeln!(out, "{name}{{{}}} {value}", pairs.join(","))?,
        }
    }
    Ok(())
}

/// A sample without labels.
fn plain(value: impl ToString) -> Vec<Sample> {
    vec![(Vec::new(), value.to_string())]
}

/// The whole answer to a scrape: the listing's series, then the serve's own.
pub fn write_scrape(
    listed: &Listed,
    listings: u64,
    events: &EventCounts,
    out: &mut dyn Write,
) -> io::Result<()> {
    out.write_all(&listed.series)?;
    write_family(
        out,
        "lsports_up",
        "gauge",
        "1 when the listing served could read the socket tables, 0 when it could not.",
        &plain(u8::from(listed.up)),
    )?;
    write_family(
        out,
        "lsports_scrape_duration_seconds",
        "gauge",
        "How long the listing served took to make (it is made at most once per --interval).",
        &plain(listed.duration.as_secs_f64()),
    )?;
    write_family(
        out,
        "lsports_listings_total",
        "counter",
        "Listings made since lsports serve started: at most one per --interval, however many scrapes.",
        &plain(listings),
    )?;
    write_events(events, out)
}

fn write_events(events: &EventCounts, out: &mut dyn Write) -> io::Result<()> {
    write_family(
        out,
        "lsports_listener_event_source_info",
        "gauge",
        "Where listener open and close events come from: poll (a socket dump every second) or kernel.",
        &[(vec![("source", events.source().to_string())], "1".into())],
    )?;
    let samples: Vec<Sample> = (events.snapshot().into_iter())
        .map(|(change, program, n)| {
            let labels = vec![("event", change.name().to_string()), ("program", program)];
            (labels, n.to_string())
        })
        .collect();
    write_family(
        out,
        "lsports_listener_events_total",
        "counter",
        "Listeners opened and closed since lsports serve started, by program (the holders' names, ;-separated).",
        &samples,
    )?;
    write_family(
        out,
        "lsports_listener_events_lost_total",
        "counter",
        "Listener events the kernel dropped before they could be counted (its ring buffer was full); always 0 when polling.",
        &plain(events.lost()),
    )
}

/// The audit's series: one per unexpected listener identity (SO_REUSEPORT siblings and
/// prefork workers add up), and the counts.
pub fn write_audit(
    listeners: &[Audited],
    verdict: &Verdict,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut series: BTreeMap<Vec<(&'static str, String)>, u64> = BTreeMap::new();
    for (index, reasons) in &verdict.unexpected {
        *series
            .entry(unexpected_labels(&listeners[*index].identity, reasons))
            .or_default() += 1;
    }
    let samples: Vec<Sample> = (series.into_iter())
        .map(|(labels, n)| (labels, n.to_string()))
        .collect();
    write_family(
        out,
        "lsports_audit_unexpected",
        "gauge",
        "Listeners the baseline or policy does not expect, by identity and reason (new, changed, denied, not-allowed).",
        &samples,
    )?;
    write_family(
        out,
        "lsports_audit_unexpected_listeners",
        "gauge",
        "How many listeners the baseline or policy does not expect.",
        &plain(verdict.unexpected.len()),
    )?;
    write_family(
        out,
        "lsports_audit_missing_listeners",
        "gauge",
        "How many listeners the baseline or the policy's required rules expect and are not there.",
        &plain(verdict.missing.len()),
    )?;
    write_family(
        out,
        "lsports_audit_not_checked",
        "gauge",
        "How many baseline lines and policy checks could not be done (a holder that could not be seen, a namespace not read).",
        &plain(verdict.unchecked.len() + verdict.undecided.len()),
    )?;
    write_family(
        out,
        "lsports_audit_incomplete",
        "gauge",
        "1 when nothing is unexpected but a policy's deny rule could not be evaluated for a listener whose holder could not be seen, so the audit cannot pass.",
        &plain(u8::from(verdict.incomplete)),
    )
}

fn unexpected_labels(identity: &Identity, reasons: &[Reason]) -> Vec<(&'static str, String)> {
    let interface = match &identity.device {
        Device::Bound(name) => name.clone(),
        Device::Unbound | Device::Unknown => String::new(),
    };
    let names: Vec<&str> = identity.programs.iter().map(|p| p.name.as_str()).collect();
    let exes: Vec<&str> = (identity.programs.iter())
        .filter_map(|p| p.exe.as_deref())
        .collect();
    let reasons: Vec<&str> = reasons.iter().map(reason_name).collect();
    vec![
        ("proto", identity.protocol.name().into()),
        ("address", identity.address.to_string()),
        ("port", identity.port.to_string()),
        ("interface", interface),
        // `container web`, `netns w1`, `unit db.service`; empty for serve's own namespace.
        (
            "namespace",
            identity.namespace.describe().unwrap_or_default(),
        ),
        ("exposure", identity.exposure.name().into()),
        ("user", identity.user.clone()),
        ("program", names.join(";")),
        ("exe", exes.join(";")),
        ("reason", reasons.join(",")),
    ]
}

/// The `reason` label of one reason.
fn reason_name(reason: &Reason) -> &'static str {
    match reason {
        Reason::New => "new",
        Reason::Changed { .. } => "changed",
        Reason::Denied(_) => "denied",
        Reason::NotAllowed => "not-allowed",
        Reason::ReachChanged { .. } => "reach-changed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::audit::identity::{Namespace, Program};
    use crate::model::Protocol;
    use crate::model::exposure::Exposure;

    #[test]
    fn a_family_without_labels_has_bare_samples_and_values_are_escaped() {
        let mut out = Vec::new();
        write_family(&mut out, "x", "gauge", "An x.", &plain(1)).unwrap();
        let labelled = vec![(vec![("program", "a\"b\\c\nd".to_string())], "2".to_string())];
        write_family(&mut out, "y_total", "counter", "A y.", &labelled).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP x An x.\n# TYPE x gauge\nx 1\n\
             # HELP y_total A y.\n# TYPE y_total counter\ny_total{program=\"a\\\"b\\\\c\\nd\"} 2\n"
        );
    }

    #[test]
    fn unexpected_labels_name_the_identity_and_every_reason() {
        let identity = Identity {
            protocol: Protocol::Tcp,
            address: "0.0.0.0".parse().unwrap(),
            port: 4444,
            device: Device::Bound("eth0".into()),
            namespace: Namespace::Container("web".into()),
            ephemeral: false,
            exposure: Exposure::Interface,
            reach: None,
            user: "nobody".into(),
            programs: vec![
                Program {
                    name: "nc".into(),
                    exe: Some("/usr/bin/nc".into()),
                },
                Program {
                    name: "sh".into(),
                    exe: None,
                },
            ],
        };
        let labels = unexpected_labels(&identity, &[Reason::New, Reason::NotAllowed]);
        let get = |name: &str| {
            let found = labels.iter().find(|(n, _)| *n == name);
            found.map(|(_, v)| v.as_str()).unwrap()
        };
        assert_eq!(
            (get("port"), get("interface"), get("program"), get("exe")),
            ("4444", "eth0", "nc;sh", "/usr/bin/nc")
        );
        assert_eq!((get("user"), get("reason")), ("nobody", "new,not-allowed"));
        assert_eq!(get("namespace"), "container web");
    }
}
