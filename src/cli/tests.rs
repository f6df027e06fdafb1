//! Parsing and resolving the command line: netstat compatibility, formats, filters, waits.

use super::*;

fn config(args: &[&str]) -> Config {
    Cli::config_from(std::iter::once("lsports").chain(args.iter().copied())).unwrap()
}

fn usage_error(args: &[&str]) -> clap::Error {
    Cli::config_from(std::iter::once("lsports").chain(args.iter().copied())).unwrap_err()
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn combined_short_flags_work_like_netstat() {
    let c = config(&["-tulpn"]);
    assert_eq!(c.protocols, vec![Protocol::Tcp, Protocol::Udp]);
    assert_eq!(c.states, StateSelection::Listening);
    assert!(c.numeric.hosts && c.numeric.ports && c.numeric.users);
    assert!(c.filter.programs.is_empty());
    let c = config(&["-tlnp"]);
    assert_eq!(c.protocols, vec![Protocol::Tcp]);
}

#[test]
fn repeated_flags_are_accepted() {
    let c = config(&["-t", "-t", "--tcp", "-nn"]);
    assert_eq!(c.protocols, vec![Protocol::Tcp]);
}

#[test]
fn long_netstat_spelling_works() {
    let c = config(&["--tcp", "--listening", "--numeric", "--program"]);
    assert_eq!(c.protocols, vec![Protocol::Tcp]);
    assert_eq!(c.families, vec![Family::Ipv4, Family::Ipv6]);
    assert!(c.numeric.ports);
    assert!(
        c.filter.programs.is_empty(),
        "bare --program is netstat's -p"
    );
}

#[test]
fn families_and_all() {
    assert_eq!(config(&["-4"]).families, vec![Family::Ipv4]);
    assert_eq!(config(&["-6"]).families, vec![Family::Ipv6]);
    assert_eq!(config(&["-46"]).families.len(), 2);
    assert_eq!(config(&["-a"]).states, StateSelection::All);
}

#[test]
fn numeric_parts_are_separate() {
    let c = config(&["--numeric-ports"]);
    assert!(c.numeric.ports && !c.numeric.hosts && !c.numeric.users);
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let err = Cli::try_parse_from(["lsports", "--bogus"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn json_is_short_for_format_json() {
    assert_eq!(config(&[]).format, OutputFormat::Table);
    assert_eq!(config(&["--json"]).format, OutputFormat::Json);
    assert_eq!(config(&["--format", "jsonl"]).format, OutputFormat::Jsonl);
    assert_eq!(config(&["--format=csv"]).format, OutputFormat::Csv);
    assert_eq!(usage_error(&["--json", "--format", "csv"]).exit_code(), 2);
}

#[test]
fn columns_parse_in_order_with_either_spelling() {
    let c = config(&["-o", "port,Recv-Q,send_q", "--columns", "PROGRAM", "-H"]);
    assert_eq!(
        c.columns,
        Some(vec![
            Column::Port,
            Column::RecvQ,
            Column::SendQ,
            Column::Program
        ])
    );
    assert!(!c.header);
    assert_eq!(usage_error(&["-o", "bogus"]).exit_code(), 2);
}

#[test]
fn columns_and_header_only_with_column_formats() {
    assert_eq!(
        config(&["--format", "csv", "-o", "port"])
            .columns
            .unwrap()
            .len(),
        1
    );
    assert_eq!(usage_error(&["--json", "-o", "port"]).exit_code(), 2);
    assert_eq!(
        usage_error(&["--format", "prometheus", "-H"]).exit_code(),
        2
    );
    assert_eq!(
        usage_error(&["--format", "prometheus", "-a"]).exit_code(),
        2
    );
}

#[test]
fn filters_accumulate_and_combine() {
    let c = config(&[
        "--port",
        "22,8000-8100",
        "--port",
        "443",
        "--address",
        "127.0.0.1,10.0.0.0/8",
        "--pid",
        "1,2",
        "--pid",
        "3",
        "--user",
        "root,33",
        "--program",
        "nginx",
        "--program",
        "py*",
    ]);
    let f = &c.filter;
    assert_eq!(
        f.ports.as_ref().unwrap().ranges(),
        [(22, 22), (443, 443), (8000, 8100)]
    );
    assert_eq!(f.addresses.len(), 2);
    assert_eq!(f.pids, [1, 2, 3]);
    assert_eq!(f.uids, [0, 33]);
    assert_eq!(f.programs.len(), 2);
    assert!(f.exposures.is_none());
}

#[test]
fn exposed_is_everything_but_loopback() {
    let c = config(&["--exposed"]);
    let kept = c.filter.exposures.unwrap();
    assert_eq!(kept.len(), 4);
    assert!(!kept.contains(&Exposure::Loopback));
    let c = config(&["--exposure", "all,link-local"]);
    assert_eq!(
        c.filter.exposures.unwrap(),
        [Exposure::All, Exposure::LinkLocal]
    );
    assert_eq!(
        usage_error(&["--exposed", "--exposure", "all"]).exit_code(),
        2
    );
}

#[test]
fn exposure_filter_accepts_every_word_a_policy_does() {
    for word in crate::exposure::WORDS {
        let c = config(&["--exposure", word]);
        assert_eq!(
            c.filter.exposures,
            Some(crate::exposure::parse_word(word).unwrap()),
            "{word}"
        );
    }
    assert_eq!(
        config(&["--exposure", "external"]).filter.exposures,
        config(&["--exposed"]).filter.exposures
    );
}

#[test]
fn bad_filter_values_are_usage_errors() {
    for args in [
        &["--port", "ssh"][..],
        &["--port", "90-80"],
        &["--address", "localhost"],
        &["--pid", "x"],
        &["--user", "no-such-user-lsports"],
        &["--exposure", "public"],
    ] {
        assert_eq!(usage_error(args).exit_code(), 2, "{args:?}");
    }
}

#[test]
fn wait_resolves_ports_and_timeout() {
    let c = config(&[
        "--wait",
        "8080,9090",
        "--wait",
        "7000",
        "--timeout",
        "1m30s",
    ]);
    let Action::Wait(spec) = c.action else {
        panic!("not a wait: {:?}", c.action)
    };
    assert_eq!(spec.ports.ports().collect::<Vec<_>>(), [7000, 8080, 9090]);
    assert_eq!(spec.until, Until::Listening);
    assert_eq!(spec.timeout, Some(Duration::from_secs(90)));
    let c = config(&["--wait-free", "80", "-t"]);
    let Action::Wait(spec) = c.action else {
        panic!("not a wait")
    };
    assert_eq!((spec.until, spec.timeout), (Until::Free, None));
}

#[test]
fn wait_rejects_what_cannot_apply() {
    for args in [
        &["--timeout", "5s"][..],
        &["--wait", "80", "--wait-free", "81"],
        &["--wait", "80", "--json"],
        &["--wait", "80", "-a"],
        &["--wait", "80", "--port", "81"],
        &["--wait", "0"],
        &["--wait", "80", "--timeout", "soon"],
        &["--wait", "80", "--generate", "bash"],
    ] {
        assert_eq!(usage_error(args).exit_code(), 2, "{args:?}");
    }
}

#[test]
fn generate_is_an_action() {
    assert_eq!(
        config(&["--generate", "zsh"]).action,
        Action::Generate(Generated::Zsh)
    );
    assert_eq!(config(&[]).action, Action::List);
}

#[test]
fn subcommands_resolve_to_actions() {
    let c = config(&[
        "audit",
        "--baseline",
        "b.toml",
        "-t",
        "--fail-on",
        "missing",
    ]);
    let Action::Audit(spec) = c.action else {
        panic!("not an audit: {:?}", c.action)
    };
    assert_eq!(spec.baseline, Some(PathBuf::from("b.toml")));
    assert!(spec.fail.missing && spec.fail.flags.is_empty());
    assert_eq!(
        c.protocols,
        vec![Protocol::Tcp],
        "listing flags work after a subcommand"
    );
    assert_eq!(
        config(&["-u", "baseline", "save", "--force", "x.toml"]).action,
        Action::SaveBaseline {
            file: "x.toml".into(),
            force: true
        }
    );
    assert_eq!(
        config(&["capture", "--force", "out.tar"]).action,
        Action::Capture {
            out: "out.tar".into(),
            force: true
        }
    );
    let Action::Watch(spec) = config(&["watch", "--interval", "250ms", "--changes-only"]).action
    else {
        panic!("not a watch")
    };
    assert_eq!(spec.interval, Duration::from_millis(250));
    assert!(spec.changes_only);
}

#[test]
fn ignore_ephemeral_is_a_listing_filter_everywhere() {
    use crate::ephemeral::EphemeralPorts;
    assert_eq!(config(&[]).filter.ephemeral, None);
    for args in [
        &["--ignore-ephemeral"][..],
        &["--ignore-ephemeral", "--format", "prometheus"],
        &["watch", "--ignore-ephemeral"],
        &["watch", "-c", "--ignore-ephemeral"],
        &["-c", "--ignore-ephemeral", "--format", "csv"],
        &["audit", "--policy", "p.toml", "--ignore-ephemeral"],
    ] {
        assert!(config(args).filter.ephemeral.is_some(), "{args:?}");
    }
    // A snapshot does not record its range: the kernel's default, not this host's.
    let snapshot = config(&["--snapshot", "s.tar", "--ignore-ephemeral"]);
    assert_eq!(snapshot.filter.ephemeral, Some(EphemeralPorts::default()));
    assert_eq!(
        usage_error(&["capture", "out.tar", "--ignore-ephemeral"]).exit_code(),
        2
    );
}

#[test]
fn continuous_prometheus_is_refused_naming_the_textfile_collector() {
    for args in [
        &["-c", "--format", "prometheus"][..],
        &["watch", "-c", "--format", "prometheus"],
    ] {
        let error = usage_error(args);
        assert_eq!(error.exit_code(), 2, "{args:?}");
        let text = error.to_string();
        assert!(text.contains("textfile collector"), "{text}");
        assert!(text.contains("lsports --format prometheus >"), "{text}");
    }
}

#[test]
fn continuous_is_netstats_c_also_under_watch() {
    assert_eq!(
        config(&["-tlnc"]).action,
        Action::Continuous(Duration::from_secs(1))
    );
    assert_eq!(
        config(&["watch", "-c", "--interval", "2s", "--json"]).action,
        Action::Continuous(Duration::from_secs(2))
    );
}

#[test]
fn proc_root_and_snapshot_imply_the_proc_source() {
    let c = config(&["--proc-root", "/tmp/p"]);
    assert_eq!(
        (c.source, c.proc_root),
        (SourceChoice::Proc, PathBuf::from("/tmp/p"))
    );
    let c = config(&["--snapshot", "s.tar", "-tln"]);
    assert_eq!(c.source, SourceChoice::Proc);
    assert_eq!(c.snapshot, Some(PathBuf::from("s.tar")));
    assert_eq!(config(&[]).source, SourceChoice::Auto);
    assert_eq!(
        config(&["--source", "netlink"]).source,
        SourceChoice::Netlink
    );
}

#[test]
fn what_cannot_combine_is_a_usage_error() {
    for args in [
        &["--proc-root", "/p", "--source", "netlink"][..],
        &["--snapshot", "s.tar", "--source", "netlink"],
        &["--snapshot", "s.tar", "--source", "auto"],
        &["--snapshot", "s.tar", "--proc-root", "/p"],
        &["--snapshot", "s.tar", "watch"],
        &["--snapshot", "s.tar", "-c"],
        &["--snapshot", "s.tar", "--wait", "80"],
        &["--snapshot", "s.tar", "capture", "x"],
        &["audit"],
        &["audit", "--baseline", "b", "-a"],
        &["audit", "--baseline", "b", "--format", "csv"],
        &["audit", "--baseline", "b", "-o", "port"],
        &["audit", "--baseline", "b", "-c"],
        &["audit", "--baseline", "b", "--fail-on", "sometimes"],
        &["baseline", "save", "x", "--json"],
        &["baseline", "save", "x", "-a"],
        &["baseline", "save"],
        &["watch", "--json"],
        &["watch", "-a"],
        &["watch", "--format", "csv"],
        &["watch", "--interval", "0"],
        &["watch", "-c", "--changes-only"],
        &["--interval", "1s"],
        &["-c", "--wait", "80"],
        &["-c", "--generate", "man"],
        &["capture"],
        &["capture", "-t", "x"],
        &["capture", "x", "--port", "22"],
        &["--generate", "bash", "audit", "--baseline", "b"],
        &["--wait", "80", "watch"],
    ] {
        assert_eq!(usage_error(args).exit_code(), 2, "{args:?}");
    }
}

#[test]
fn a_policy_alone_is_enough_for_an_audit() {
    let Action::Audit(spec) = config(&["audit", "--policy", "p.toml", "--format", "json"]).action
    else {
        panic!("not an audit")
    };
    assert_eq!(
        (spec.baseline, spec.policy),
        (None, Some(PathBuf::from("p.toml")))
    );
}

#[test]
fn process_details_read_are_what_the_output_and_filters_use() {
    use crate::process::DetailFields;
    let name_only = DetailFields {
        cmdline: false,
        uid: false,
    };
    assert_eq!(config(&["-ltnp"]).needs_details(), name_only);
    assert_eq!(
        config(&["-ltnp", "--json"]).needs_details(),
        DetailFields::ALL
    );
    let cmdline = config(&["-ltn", "-o", "local,cmdline"]).needs_details();
    assert_eq!(
        cmdline,
        DetailFields {
            cmdline: true,
            ..name_only
        }
    );
    let program = config(&["-ltnp", "--program", "nginx"]).needs_details();
    assert_eq!(
        program,
        DetailFields {
            cmdline: true,
            ..name_only
        }
    );
    let user = config(&["-ltnp", "--user", "0"]).needs_details();
    assert_eq!(
        user,
        DetailFields {
            uid: true,
            ..name_only
        }
    );
    let flags = config(&["-ltn", "-o", "local,flags"]).needs_details();
    assert_eq!(
        flags,
        DetailFields {
            uid: true,
            ..name_only
        }
    );
}
