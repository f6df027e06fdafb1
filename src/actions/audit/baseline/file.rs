//! The baseline file: TOML, sorted, one expected listener per line, so that `diff` and code
//! review show exactly which listeners came and went, and a person can edit it.
//!
//! ```toml
//! version = 1
//! host = "web1"
//! saved = "2026-11-26T03:00:00Z"
//! listeners = [
//!   { proto = "tcp", address = "0.0.0.0", port = 22, user = "root", program = "sshd", exe = "/usr/sbin/sshd" },
//!   { proto = "udp", address = "0.0.0.0", port = 67, interface = "eth0", user = "root", program = "dnsmasq", exe = "/usr/sbin/dnsmasq" },
//!   { proto = "udp", address = "0.0.0.0", port = "ephemeral", user = "root", program = "chronyd", exe = "/usr/sbin/chronyd" },
//!   { proto = "tcp", address = "0.0.0.0", port = 80, container = "web", user = "root", program = "nginx", exe = "/usr/sbin/nginx" },
//! ]
//! ```
//!
//! A listener in another network namespace than lsports' (`--netns all`) says which by one
//! of `container = "NAME"`, `netns = "NAME"` (an `ip netns` name), `unit = "NAME"` or
//! `unnamed_netns = true`, as [`crate::actions::audit::identity::Namespace`] tells them apart;
//! a line with none of them is in lsports' own namespace.
//!
//! Reading checks every field and names the line of the first bad one. Names are kept in the
//! terminal-safe form lsports writes them in; a control character put in by hand is escaped
//! on reading, since every name is printed sooner or later.

use std::net::IpAddr;

use serde::Deserialize;
use toml::Spanned;

use super::{AddressPattern, Baseline, Expected, PortPattern};
use crate::actions::audit::identity::Namespace;
use crate::actions::audit::tomlfile::{FileError, Source};
use crate::model::Protocol;
use crate::model::exposure::Exposure;
use crate::model::reach::Verdict;
use crate::text::sanitize::terminal_safe_text;

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

/// Explains the file to whoever opens it.
const HEADER: &str = "\
# lsports baseline: the listeners expected on this host, one per line.
# Written by `lsports baseline save`, read by `lsports audit --baseline FILE`.
# A line matches a listener with the same proto, address and port (bound to the device
# `interface`, when given), owned by `user` and held by `program` (process name) running `exe`.
# A line may be widened by hand: leave out interface, user, program or exe to match any; write address = \"any\" or an exposure class (\"loopback\",
# \"link-local\", \"interface\", \"specific\", \"all\"); port = \"ephemeral\" is any UDP port of
# the ephemeral range (client sockets, never reported missing). `reach` is what the firewall let
# through when it was saved (open, filtered, ipv4:open ipv6:filtered, ...): audit reports a
# listener whose reach is no longer that; leave it out to compare nothing.
";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    version: Spanned<u32>,
    host: Option<String>,
    saved: Option<String>,
    #[serde(default)]
    listeners: Vec<Spanned<RawExpected>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpected {
    proto: Spanned<String>,
    address: Spanned<String>,
    port: Spanned<RawPort>,
    interface: Option<Spanned<String>>,
    container: Option<String>,
    netns: Option<String>,
    unit: Option<String>,
    unnamed_netns: Option<bool>,
    reach: Option<Spanned<String>>,
    user: Option<String>,
    program: Option<String>,
    exe: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPort {
    Number(i64),
    Word(String),
}

/// Read a baseline from its text.
pub fn parse(source: &Source) -> Result<Baseline, FileError> {
    let raw: RawBaseline = source.parse()?;
    if *raw.version.get_ref() != VERSION {
        return Err(source.error_at(
            Some(raw.version.span()),
            format!(
                "baseline format version {} is not the version {VERSION} this lsports reads{}",
                raw.version.get_ref(),
                if *raw.version.get_ref() > VERSION {
                    ": upgrade lsports"
                } else {
                    ""
                }
            ),
        ));
    }
    let mut expected = raw
        .listeners
        .into_iter()
        .map(|line| expected(source, line))
        .collect::<Result<Vec<_>, _>>()?;
    expected.sort();
    Ok(Baseline {
        host: raw.host.map(terminal_safe_text),
        saved: raw.saved,
        expected,
    })
}

fn expected(source: &Source, line: Spanned<RawExpected>) -> Result<Expected, FileError> {
    let at = source.line(line.span().start);
    let line_span = line.span();
    let raw = line.into_inner();
    let protocol = match raw.proto.get_ref().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => {
            return Err(source.error_at(
                Some(raw.proto.span()),
                format!("proto {other:?} is not \"tcp\" or \"udp\""),
            ));
        }
    };
    let address = address(raw.address.get_ref())
        .ok_or_else(|| source.error_at(Some(raw.address.span()), address_help(&raw.address)))?;
    let port = port(raw.port.get_ref()).ok_or_else(|| {
        source.error_at(
            Some(raw.port.span()),
            "port must be a number from 0 to 65535, or \"ephemeral\"",
        )
    })?;
    let namespace = namespace(&raw).ok_or_else(|| {
        source.error_at(
            Some(line_span.clone()),
            "a listener is in one network namespace: give at most one of container, netns, \
             unit and unnamed_netns = true",
        )
    })?;
    let interface = raw
        .interface
        .map(interface)
        .transpose()
        .map_err(|(span, why)| source.error_at(Some(span), why))?;
    // An executable is where the kernel says it was loaded from: a path from the root (or one
    // only a user's mounts make true, as lsports writes it: `(uid N's mounts)/path`). Any
    // other text ("", "*", "sshd") would match no holder, or be taken for a pattern it is not.
    if let Some(exe) = (raw.exe.as_ref()).filter(|exe| !crate::enrich::exe::is_exe_text(exe)) {
        return Err(source.error_at(
            Some(line_span.clone()),
            format!(
                "exe \"{}\" is not an absolute path (as /usr/sbin/sshd): leave it out to accept any",
                terminal_safe_text(exe.clone())
            ),
        ));
    }
    Ok(Expected {
        protocol,
        port,
        address,
        interface,
        namespace,
        user: raw.user.map(terminal_safe_text),
        program: raw.program.map(terminal_safe_text),
        exe: raw.exe.map(terminal_safe_text),
        line: Some(at),
        reach: raw
            .reach
            .map(reach)
            .transpose()
            .map_err(|(span, why)| source.error_at(Some(span), why))?,
    })
}

/// The namespace a line names; `None` when it names more than one.
fn namespace(raw: &RawExpected) -> Option<Namespace> {
    let safe = |text: &String| terminal_safe_text(text.clone());
    let mut named = [
        raw.container
            .as_ref()
            .map(|n| Namespace::Container(safe(n))),
        raw.netns.as_ref().map(|n| Namespace::Netns(safe(n))),
        raw.unit.as_ref().map(|n| Namespace::Unit(safe(n))),
        (raw.unnamed_netns == Some(true)).then_some(Namespace::Unnamed),
    ]
    .into_iter()
    .flatten();
    match (named.next(), named.next()) {
        (None, _) => Some(Namespace::Current),
        (Some(one), None) => Some(one),
        (Some(_), Some(_)) => None,
    }
}

fn address(text: &str) -> Option<AddressPattern> {
    if text == "any" {
        return Some(AddressPattern::Any);
    }
    if let Some(exposure) = Exposure::EVERY.into_iter().find(|e| e.name() == text) {
        return Some(AddressPattern::Exposure(exposure));
    }
    text.parse::<IpAddr>().ok().map(AddressPattern::Exact)
}

fn address_help(text: &Spanned<String>) -> String {
    format!(
        "address {:?} is not an IP address, \"any\", or an exposure class (loopback, \
         link-local, interface, specific, all)",
        text.get_ref()
    )
}

/// A device name as the kernel allows one (1 to 15 bytes, no `/`, no white space) is kept
/// terminal-safe, as lsports writes it; anything else is named with its place in the file.
fn interface(name: Spanned<String>) -> Result<String, (std::ops::Range<usize>, String)> {
    let text = name.get_ref();
    let valid =
        (1..16).contains(&text.len()) && !text.contains(|c: char| c == '/' || c.is_whitespace());
    if valid {
        Ok(terminal_safe_text(name.into_inner()))
    } else {
        Err((
            name.span(),
            format!("interface {text:?} is not a device name (1 to 15 bytes, no '/' or spaces)"),
        ))
    }
}

/// A recorded reach: `open`, or one `family:verdict` per family (`ipv4:open ipv6:filtered`).
fn reach(text: Spanned<String>) -> Result<String, (std::ops::Range<usize>, String)> {
    let verdict_ok = |v: &str| Verdict::from_name(v).is_some_and(|v| v != Verdict::Unknown);
    let word_ok = |w: &str| match w.split_once(':') {
        Some((family, verdict)) => matches!(family, "ipv4" | "ipv6") && verdict_ok(verdict),
        None => verdict_ok(w),
    };
    let words: Vec<&str> = text.get_ref().split_whitespace().collect();
    if words.is_empty() || !words.iter().all(|w| word_ok(w)) {
        let why = format!(
            "reach {:?} is not a verdict (open, restricted, filtered, rejected, local) or \
             ipv4:VERDICT ipv6:VERDICT",
            terminal_safe_text(text.get_ref().clone())
        );
        return Err((text.span(), why));
    }
    Ok(words.join(" "))
}

fn port(raw: &RawPort) -> Option<PortPattern> {
    match raw {
        RawPort::Number(n) => u16::try_from(*n).ok().map(PortPattern::Number),
        RawPort::Word(word) if word == "ephemeral" => Some(PortPattern::Ephemeral),
        RawPort::Word(_) => None,
    }
}

/// The file's text for `baseline`.
pub fn format(baseline: &Baseline) -> String {
    let mut text = String::from(HEADER);
    text.push_str(&format!("version = {VERSION}\n"));
    if let Some(host) = &baseline.host {
        text.push_str(&format!("host = {}\n", quote(host)));
    }
    if let Some(saved) = &baseline.saved {
        text.push_str(&format!("saved = {}\n", quote(saved)));
    }
    text.push_str("listeners = [\n");
    for expected in &baseline.expected {
        text.push_str(&format!("  {},\n", line(expected)));
    }
    text.push_str("]\n");
    text
}

/// One expected listener as an inline table.
fn line(expected: &Expected) -> String {
    let port = match expected.port {
        PortPattern::Number(port) => port.to_string(),
        PortPattern::Ephemeral => quote("ephemeral"),
    };
    let mut fields = vec![
        format!("proto = {}", quote(expected.protocol.name())),
        format!("address = {}", quote(&expected.address.to_string())),
        format!("port = {port}"),
    ];
    if let Some((key, value)) = namespace_field(&expected.namespace) {
        fields.push(format!("{key} = {value}"));
    }
    let optional = [
        ("interface", &expected.interface),
        ("user", &expected.user),
        ("program", &expected.program),
        ("exe", &expected.exe),
        ("reach", &expected.reach),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            fields.push(format!("{key} = {}", quote(value)));
        }
    }
    format!("{{ {} }}", fields.join(", "))
}

/// The key and TOML value naming a namespace other than lsports' own.
fn namespace_field(namespace: &Namespace) -> Option<(&'static str, String)> {
    match namespace {
        Namespace::Current => None,
        Namespace::Container(name) => Some(("container", quote(name))),
        Namespace::Netns(name) => Some(("netns", quote(name))),
        Namespace::Unit(name) => Some(("unit", quote(name))),
        Namespace::Unnamed => Some(("unnamed_netns", "true".into())),
    }
}

/// A TOML basic string: toml's own quoting, so anything a name holds reads back unchanged.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
