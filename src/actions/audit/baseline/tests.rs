//! Baselines: the file round-trips, bad lines are named, and matching ignores PIDs but not
//! programs or users.

use super::file::{format, parse};
use super::*;
use crate::actions::audit::tomlfile::Source;

fn identity(
    protocol: Protocol,
    address: &str,
    port: u16,
    user: &str,
    programs: &[(&str, Option<&str>)],
) -> Identity {
    let address: IpAddr = address.parse().unwrap();
    Identity {
        protocol,
        address,
        port,
        device: Device::Unbound,
        namespace: Namespace::Current,
        ephemeral: protocol == Protocol::Udp && port >= 32768,
        exposure: if address.is_loopback() {
            Exposure::Loopback
        } else {
            Exposure::All
        },
        user: user.into(),
        programs: programs
            .iter()
            .map(|(name, exe)| Program {
                name: (*name).into(),
                exe: exe.map(str::to_string),
            })
            .collect(),
        reach: None,
    }
}

fn sshd() -> Identity {
    identity(
        Protocol::Tcp,
        "0.0.0.0",
        22,
        "root",
        &[("sshd", Some("/usr/sbin/sshd"))],
    )
}

fn read(text: &str) -> Result<Baseline, String> {
    parse(&Source::from_text("b.toml", text)).map_err(|e| e.to_string())
}

#[test]
fn the_file_round_trips_sorted_with_one_listener_per_line() {
    let identities = [
        identity(
            Protocol::Udp,
            "0.0.0.0",
            45123,
            "root",
            &[("chronyd", Some("/usr/sbin/chronyd"))],
        ),
        sshd(),
        identity(
            Protocol::Tcp,
            "::",
            80,
            "root",
            &[("nginx", None), ("systemd", Some("/lib/systemd/systemd"))],
        ),
        identity(
            Protocol::Tcp,
            "127.0.0.1",
            5432,
            "postgres",
            &[("we\"ird\\", Some("/opt/a b"))],
        ),
        identity(Protocol::Tcp, "0.0.0.0", 2049, "root", &[]),
    ];
    let baseline = Baseline::record(
        &identities,
        Some("web1".into()),
        Some("2026-11-26T03:00:00Z".into()),
    );
    let text = format(&baseline);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("  {")).collect();
    assert_eq!(
        lines,
        [
            r#"  { proto = "tcp", address = "0.0.0.0", port = 22, user = "root", program = "sshd", exe = "/usr/sbin/sshd" },"#,
            r#"  { proto = "tcp", address = "::", port = 80, user = "root", program = "nginx" },"#,
            r#"  { proto = "tcp", address = "::", port = 80, user = "root", program = "systemd", exe = "/lib/systemd/systemd" },"#,
            r#"  { proto = "tcp", address = "0.0.0.0", port = 2049, user = "root" },"#,
            r#"  { proto = "tcp", address = "127.0.0.1", port = 5432, user = "postgres", program = 'we"ird\', exe = "/opt/a b" },"#,
            r#"  { proto = "udp", address = "0.0.0.0", port = "ephemeral", user = "root", program = "chronyd", exe = "/usr/sbin/chronyd" },"#,
        ]
    );
    let back = read(&text).unwrap();
    let strip = |b: &Baseline| -> Vec<Expected> {
        b.expected
            .iter()
            .cloned()
            .map(|e| Expected { line: None, ..e })
            .collect()
    };
    assert_eq!(strip(&back), strip(&baseline));
    assert_eq!(back.host.as_deref(), Some("web1"));
    // Lines are numbered as in the file.
    let first = text.lines().position(|l| l.contains("port = 22,")).unwrap() + 1;
    assert_eq!(back.expected[0].line, Some(first));
}

#[test]
fn bad_lines_are_named_with_file_and_line() {
    let cases = [
        (
            "version = 1\nlisteners = [\n  { proto = \"sctp\", address = \"::\", port = 1 },\n]\n",
            "b.toml:3: proto \"sctp\" is not \"tcp\" or \"udp\"",
        ),
        (
            "version = 1\nlisteners = [\n  { proto = \"tcp\", address = \"::\", port = 1 },\n  { proto = \"tcp\", address = \"localhost\", port = 1 },\n]\n",
            "b.toml:4: address \"localhost\" is not an IP address",
        ),
        (
            "version = 1\nlisteners = [\n\n  { proto = \"tcp\", address = \"::\", port = 70000 },\n]\n",
            "b.toml:4: port must be a number from 0 to 65535",
        ),
        (
            "version = 1\nlisteners = [\n  { proto = \"tcp\", address = \"::\", port = 1, prgram = \"x\" },\n]\n",
            "b.toml:3: unknown field `prgram`",
        ),
        (
            "version = 2\nlisteners = []\n",
            "b.toml:1: baseline format version 2 is not the version 1 this lsports reads: upgrade lsports",
        ),
        ("listeners = []\n", "b.toml:1: missing field `version`"),
        (
            "version = 1\nlisteners = [\n  { proto = \"tcp\", address = \"::\" port = 1 },\n]\n",
            "b.toml:3: ",
        ),
    ];
    for (text, expected) in cases {
        let error = read(text).unwrap_err();
        assert!(
            error.starts_with(expected),
            "{error:?}\nexpected to start with {expected:?}"
        );
    }
}

#[test]
fn a_restart_with_a_new_pid_is_the_same_listener() {
    let baseline = Baseline::record(&[sshd()], None, None);
    // Identities carry no PID or inode at all: a restart yields the same identity.
    assert!(baseline.expected.iter().any(|e| e.accepts(&sshd())));
}

#[test]
fn another_program_or_user_on_an_expected_port_is_not_accepted() {
    let baseline = Baseline::record(&[sshd()], None, None);
    let line = &baseline.expected[0];
    let evil = identity(
        Protocol::Tcp,
        "0.0.0.0",
        22,
        "root",
        &[("sshd", Some("/tmp/sshd"))],
    );
    let nobody = identity(
        Protocol::Tcp,
        "0.0.0.0",
        22,
        "nobody",
        &[("sshd", Some("/usr/sbin/sshd"))],
    );
    for other in [evil, nobody] {
        assert!(line.covers(&other) && !line.accepts(&other), "{other:?}");
    }
    let elsewhere = identity(
        Protocol::Tcp,
        "127.0.0.1",
        22,
        "root",
        &[("sshd", Some("/usr/sbin/sshd"))],
    );
    assert!(!line.covers(&elsewhere));
    // An executable that could not be read is not held against the listener.
    let unread = identity(Protocol::Tcp, "0.0.0.0", 22, "root", &[("sshd", None)]);
    assert!(line.accepts(&unread));
}

#[test]
fn one_of_several_programs_accounts_for_a_shared_socket() {
    let activated = identity(
        Protocol::Tcp,
        "::",
        80,
        "root",
        &[("nginx", None), ("systemd", None)],
    );
    let baseline = Baseline::record(&[activated], None, None);
    let systemd_only = identity(Protocol::Tcp, "::", 80, "root", &[("systemd", None)]);
    assert!(baseline.expected.iter().any(|e| e.accepts(&systemd_only)));
    assert!(baseline.expected[0].same_socket(&baseline.expected[1]));
}

#[test]
fn hand_widened_lines_match_more() {
    let text = "version = 1\nlisteners = [\n\
        { proto = \"tcp\", address = \"loopback\", port = 5432, program = \"postgres\" },\n\
        { proto = \"tcp\", address = \"any\", port = 8080 },\n\
        { proto = \"udp\", address = \"0.0.0.0\", port = \"ephemeral\", user = \"root\" },\n]\n";
    let baseline = read(text).unwrap();
    let pg = identity(
        Protocol::Tcp,
        "127.0.0.2",
        5432,
        "postgres",
        &[("postgres", Some("/usr/bin/postgres"))],
    );
    let web = identity(
        Protocol::Tcp,
        "10.1.2.3",
        8080,
        "www",
        &[("anything", None)],
    );
    let client = identity(
        Protocol::Udp,
        "0.0.0.0",
        51234,
        "root",
        &[("resolver", None)],
    );
    let server = identity(Protocol::Udp, "0.0.0.0", 514, "root", &[("rsyslogd", None)]);
    let accepted = |id: &Identity| baseline.expected.iter().any(|e| e.accepts(id));
    assert!(accepted(&pg) && accepted(&web) && accepted(&client));
    assert!(!accepted(&server));
}

#[test]
fn replacing_a_private_baseline_keeps_it_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.toml");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    save::write_atomically(&path, b"new", true).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
    assert_eq!(mode(&path), 0o600, "--force must not widen the file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    save::write_atomically(&path, b"newer", true).unwrap();
    assert_eq!(mode(&path), 0o640);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    save::write_atomically(&path, b"newest", true).unwrap();
    assert_eq!(
        mode(&path),
        0o644,
        "nobody but its owner may write an allowlist"
    );
    // A new file: 0644 less the umask, as the shell would create it but never writable by
    // others (the test runner's umask is read the way lsports reads it, from the kernel).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    let umask = u32::from_str_radix(umask.trim(), 8).unwrap();
    let fresh = dir.path().join("fresh.toml");
    save::write_atomically(&fresh, b"x", false).unwrap();
    assert_eq!(mode(&fresh), 0o644 & !umask);
}

fn bound_to(device: Device, identity: Identity) -> Identity {
    Identity { device, ..identity }
}

fn dnsmasq() -> Identity {
    identity(Protocol::Udp, "0.0.0.0", 67, "root", &[("dnsmasq", None)])
}

#[test]
fn a_device_binding_is_recorded_and_part_of_the_identity() {
    let on_eth0 = bound_to(Device::Bound("eth0".into()), dnsmasq());
    let baseline = Baseline::record(std::slice::from_ref(&on_eth0), None, None);
    let text = format(&baseline);
    assert!(
        text.contains(
            r#"{ proto = "udp", address = "0.0.0.0", port = 67, interface = "eth0", user = "root", program = "dnsmasq" }"#
        ),
        "{text}"
    );
    let back = read(&text).unwrap();
    let line = &back.expected[0];
    assert_eq!(line.interface.as_deref(), Some("eth0"));
    assert_eq!(line.place(), "0.0.0.0%eth0:67");
    assert!(line.accepts(&on_eth0));
    // The same port on every device, or on another one, is another listener.
    assert!(!line.covers(&dnsmasq()));
    assert!(!line.covers(&bound_to(Device::Bound("eth1".into()), dnsmasq())));
    // /proc/net cannot tell a binding: that is not held against the listener.
    assert!(line.covers(&bound_to(Device::Unknown, dnsmasq())));
    // An unbound listener is recorded without the key, as before.
    let unbound = format(&Baseline::record(&[dnsmasq()], None, None));
    assert!(!unbound.contains("interface ="), "{unbound}");
}

#[test]
fn a_line_without_an_interface_matches_what_it_matched_before() {
    let old = "version = 1\nlisteners = [\n\
        { proto = \"udp\", address = \"0.0.0.0\", port = 67, user = \"root\", program = \"dnsmasq\" },\n]\n";
    let line = &read(old).unwrap().expected[0];
    assert_eq!(line.interface, None);
    assert_eq!(line.place(), "0.0.0.0:67");
    for device in [
        Device::Unbound,
        Device::Bound("eth0".into()),
        Device::Unknown,
    ] {
        assert!(
            line.accepts(&bound_to(device.clone(), dnsmasq())),
            "{device:?}"
        );
    }
}

#[test]
fn lines_on_different_devices_are_different_sockets() {
    let eth0 = bound_to(Device::Bound("eth0".into()), dnsmasq());
    let eth1 = bound_to(Device::Bound("eth1".into()), dnsmasq());
    let baseline = Baseline::record(&[eth0, eth1], None, None);
    assert_eq!(baseline.expected.len(), 2);
    assert!(!baseline.expected[0].same_socket(&baseline.expected[1]));
}

#[test]
fn a_bad_interface_is_named_with_its_line() {
    for bad in ["", "a/b", "eth 0", "sixteen-bytes-xx"] {
        let text = format!(
            "version = 1\nlisteners = [\n\
             {{ proto = \"udp\", address = \"0.0.0.0\", port = 67, interface = {bad:?} }},\n]\n"
        );
        let error = read(&text).unwrap_err();
        assert!(
            error.contains("b.toml:3") && error.contains("is not a device name"),
            "{bad:?}: {error}"
        );
    }
}

fn in_namespace(namespace: Namespace) -> Identity {
    Identity {
        namespace,
        ..identity(Protocol::Tcp, "0.0.0.0", 80, "root", &[("nginx", None)])
    }
}

#[test]
fn namespaces_round_trip_and_a_line_without_one_is_the_hosts() {
    let every = [
        Namespace::Current,
        Namespace::Container("we\"b".into()),
        Namespace::Netns("w1".into()),
        Namespace::Unit("db.service".into()),
        Namespace::Unnamed,
    ];
    let identities: Vec<Identity> = every.iter().cloned().map(in_namespace).collect();
    let baseline = Baseline::record(&identities, None, None);
    let text = format(&baseline);
    for key in [
        "container = ",
        r#"netns = "w1""#,
        r#"unit = "db.service""#,
        ", unnamed_netns = true",
    ] {
        assert_eq!(text.matches(key).count(), 1, "{key} in\n{text}");
    }
    let back = read(&text).unwrap();
    assert_eq!(back.expected.len(), every.len());
    // Each line is its own namespace's socket, and accepts only its own namespace.
    for (line, namespace) in back.expected.iter().zip(&every) {
        assert_eq!(&line.namespace, namespace);
        for identity in &identities {
            assert_eq!(
                line.accepts(identity),
                identity.namespace == *namespace,
                "{line:?} and {identity:?}"
            );
        }
    }
    assert!(!back.expected[0].same_socket(&back.expected[1]));
    assert_eq!(back.expected[1].place(), "0.0.0.0:80 in container we\"b");
}

#[test]
fn a_line_in_two_namespaces_is_named_with_its_line() {
    let text = "version = 1\nlisteners = [\n\
        { proto = \"tcp\", address = \"0.0.0.0\", port = 80, container = \"web\", netns = \"w1\" },\n]\n";
    let error = read(text).unwrap_err();
    assert!(
        error.contains("b.toml:3") && error.contains("at most one of container, netns"),
        "{error}"
    );
}

#[test]
fn a_recorded_reach_round_trips_and_a_bad_one_is_named() {
    let with_reach = |reach: &str| {
        format!(
            "version = 1\nlisteners = [\n  {{ proto = \"tcp\", address = \"::\", port = 22, reach = \"{reach}\" }},\n]\n"
        )
    };
    let baseline = read(&with_reach("ipv4:open ipv6:filtered")).unwrap();
    assert_eq!(
        baseline.expected[0].reach.as_deref(),
        Some("ipv4:open ipv6:filtered")
    );
    assert!(format(&baseline).contains("reach = \"ipv4:open ipv6:filtered\" }"));
    let bad = read(&with_reach("unknown")).unwrap_err();
    assert!(
        bad.contains("b.toml:3: reach \"unknown\" is not a verdict"),
        "{bad}"
    );
    // Written before reach was recorded: no reach, nothing compared.
    let old = read(
        "version = 1\nlisteners = [\n  { proto = \"tcp\", address = \"::\", port = 22 },\n]\n",
    );
    assert_eq!(old.unwrap().expected[0].reach, None);
}
