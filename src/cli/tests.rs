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
    Cli::clap_command().debug_assert();
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
    for word in crate::model::exposure::WORDS {
        let c = config(&["--exposure", word]);
        assert_eq!(
            c.filter.exposures,
            Some(crate::model::exposure::parse_word(word).unwrap()),
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
        &["--port", "90-80"][..],
        &["--port=-1"],
        &["--program", ""],
        &["--program", " "],
        &["--user", ""],
        &["--user", "root,"],
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
    use crate::filter::ephemeral::EphemeralPorts;
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
    use crate::config::DetailFields;
    let name_only = DetailFields {
        cmdline: false,
        uid: false,
    };
    assert_eq!(config(&["-ltnp"]).needs().details, name_only);
    assert_eq!(
        config(&["-ltnp", "--json"]).needs().details,
        DetailFields::ALL
    );
    let cmdline = config(&["-ltn", "-o", "local,cmdline"]).needs().details;
    assert_eq!(
        cmdline,
        DetailFields {
            cmdline: true,
            ..name_only
        }
    );
    let program = config(&["-ltnp", "--program", "nginx"]).needs().details;
    assert_eq!(
        program,
        DetailFields {
            cmdline: true,
            ..name_only
        }
    );
    let user = config(&["-ltnp", "--user", "0"]).needs().details;
    assert_eq!(
        user,
        DetailFields {
            uid: true,
            ..name_only
        }
    );
    let flags = config(&["-ltn", "-o", "local,flags"]).needs().details;
    assert_eq!(
        flags,
        DetailFields {
            uid: true,
            ..name_only
        }
    );
}

#[test]
fn holders_and_executables_are_read_only_when_the_output_or_a_filter_shows_them() {
    // (processes, executables) for each command line, as the output and filters use them.
    let cases: [(&[&str], (bool, bool)); 10] = [
        (&["-ltn", "-o", "local,state"], (false, false)),
        (&["-ltn"], (true, false)),
        (&["-ltnp"], (true, false)),
        (&["-ltn", "-o", "local", "--pid", "1"], (true, false)),
        (&["-ltn", "-o", "local,exe"], (true, true)),
        (&["-ltn", "-o", "local,flags"], (true, true)),
        (
            &["-ltn", "--format", "csv", "-o", "local,port"],
            (false, false),
        ),
        (&["-ltn", "--json"], (true, true)),
        (&["-ltn", "--format", "jsonl"], (true, true)),
        (&["-ltn", "--format", "prometheus"], (true, false)),
    ];
    for (args, want) in cases {
        let needs = config(args).needs();
        assert_eq!((needs.processes, needs.executables), want, "{args:?}");
    }
}

#[test]
fn holders_are_labelled_only_when_the_output_or_a_filter_shows_their_labels() {
    // (labels, holder_labels): the table's and CSV's columns and Prometheus show each
    // socket's labels only; JSON shows each holder's, and the filters match them.
    let cases: [(&[&str], (bool, bool)); 9] = [
        (&["-ltn"], (false, false)),
        (&["-ltn", "-o", "local,container"], (true, false)),
        (
            &["-ltn", "--format", "csv", "-o", "local,unit"],
            (true, false),
        ),
        (&["-ltn", "--netns", "all"], (true, false)),
        (&["-ltn", "--format", "prometheus"], (true, false)),
        (&["-ltn", "--published"], (true, false)),
        (&["-ltn", "--json"], (true, true)),
        (&["-ltn", "--container", "web"], (true, true)),
        (
            &["-ltn", "-o", "local", "--unit", "nginx.service"],
            (true, true),
        ),
    ];
    for (args, want) in cases {
        let needs = config(args).needs();
        assert_eq!((needs.labels, needs.holder_labels), want, "{args:?}");
    }
}

/// The error `args` give, rendered as the user sees it.
fn usage_text(args: &[&str]) -> String {
    usage_error(args).render().to_string()
}

#[test]
fn netstat_timers_flag_ends_a_cluster_without_taking_the_next_word() {
    for args in [
        &["-tlnpo"][..],
        &["-tlnp", "-o"],
        &["-tlnpo", "--port", "22"],
        &["--timers"],
    ] {
        let c = config(args);
        assert_eq!(c.columns, None, "{args:?}");
        assert_eq!(c.notes.len(), 1, "{args:?}");
        assert!(c.notes[0].contains("timers"), "{:?}", c.notes);
    }
    assert_eq!(config(&["-tlnpo"]).protocols, vec![Protocol::Tcp]);
    let c = config(&["-tlnpo", "watch"]);
    assert!(
        matches!(c.action, Action::Watch(_)),
        "watch is not a column list"
    );
    let c = config(&["-Ho", "proto,local"]);
    assert_eq!(c.columns, Some(vec![Column::Proto, Column::Local]));
    assert!(!c.header && c.notes.is_empty());
    assert_eq!(config(&["-o", "port"]).columns, Some(vec![Column::Port]));
    assert!(config(&["-tln"]).notes.is_empty());
    // A lone -o still takes its list, so a misspelt column is reported as one.
    assert!(usage_text(&["-o", "prot"]).contains("'proto'"));
    assert!(usage_text(&["-tlnpo", "22"]).contains("--port 22"));
}

#[test]
fn netstat_and_ss_habits_get_a_hint_naming_the_lsports_way() {
    let cases: &[(&[&str], &str)] = &[
        (&["22"], "--port 22"),
        (&["-tln", "22,80"], "--port 22,80"),
        (&["sport", "=", ":22"], "--port 22"),
        (&["-tln", "dport", "=", ":443"], "--port 443"),
        (&["watch", "22"], "--port 22"),
        (&["-s"], "nstat"),
        (&["-r"], "ip route"),
        (&["-i"], "ip -s link"),
        (&["-g"], "ip maddress"),
        (&["-M"], "conntrack"),
        (&["-tulpnx"], "ss -xlp"),
        (&["-w"], "ss -wlp"),
        (&["-Z"], "ss -Z"),
        (&["-m"], "ss -m"),
        (&["-K"], "ss -K"),
        (&["-U"], "ss -Ulp"),
        (&["-A", "inet"], "-t/-u and -4/-6"),
        (&["--sctp"], "ss -Slp"),
        (&["--statistics"], "nstat"),
    ];
    for (args, tip) in cases {
        let error = usage_error(args);
        assert_eq!(error.exit_code(), 2, "{args:?}");
        let text = error.render().to_string();
        assert!(text.contains(tip), "{args:?}: {text}");
        assert_eq!(text.matches("tip:").count(), 1, "one tip only: {text}");
    }
    assert!(
        !usage_text(&["--sctp"]).contains("--tcp"),
        "SCTP is not TCP"
    );
}

/// Every flag a subcommand's `-h` shows is one it accepts: given with the smallest command
/// line of that subcommand (for watch, alone or with -c), it resolves.
#[test]
fn subcommand_help_shows_only_flags_that_apply() {
    let bases: &[(&str, &[&[&str]])] = &[
        ("audit", &[&["audit", "--baseline", "b"]]),
        ("baseline", &[&["baseline", "save", "x"]]),
        ("watch", &[&["watch"], &["watch", "-c"]]),
        ("capture", &[&["capture", "x"]]),
    ];
    let mut command = Cli::clap_command();
    command.build();
    for (name, lines) in bases {
        let sub = command.find_subcommand_mut(name).unwrap();
        sub.build();
        let shown: Vec<clap::Arg> = sub
            .get_arguments()
            .filter(|a| a.is_global_set() && !a.is_hide_set())
            .cloned()
            .collect();
        for arg in shown {
            let flag = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => format!("-{}", arg.get_short().unwrap()),
            };
            let value = arg.get_action().takes_values().then(|| sample_value(&arg));
            let accepted = lines.iter().any(|line| {
                let mut args: Vec<&str> = line.to_vec();
                args.push(&flag);
                args.extend(value.as_deref());
                Cli::config_from(std::iter::once("lsports").chain(args)).is_ok()
            });
            assert!(accepted, "`{name} -h` shows {flag}, which {name} refuses");
        }
    }
}

/// A value `arg` accepts, for the test above.
fn sample_value(arg: &clap::Arg) -> String {
    if let Some(first) = arg.get_possible_values().first() {
        return first.get_name().to_string();
    }
    let name = arg.get_value_names().unwrap()[0].as_str();
    match name {
        "PORTS" => "22",
        "ADDRESS" => "127.0.0.1",
        "PIDS" => "1",
        "USERS" => "0",
        "NAME" => "sshd",
        "DURATION" => "1s",
        "DIR" => "/p",
        "FILE" => "s.tar",
        "NS" => "current",
        other => panic!("no sample value for {other}"),
    }
    .to_string()
}

#[test]
fn capture_help_shows_none_of_the_listing_flags() {
    let mut command = Cli::clap_command();
    let help = command
        .find_subcommand_mut("capture")
        .unwrap()
        .render_help()
        .to_string();
    for flag in [
        "--tcp",
        "--format",
        "--columns",
        "--all",
        "--port",
        "--interval",
    ] {
        assert!(!help.contains(flag), "capture -h shows {flag}:\n{help}");
    }
    assert!(
        help.contains("--proc-root") && help.contains("--force"),
        "{help}"
    );
}

#[test]
fn audit_without_a_baseline_or_policy_says_it_needs_one() {
    let error = usage_error(&["audit"]);
    assert_eq!(error.exit_code(), 2);
    let text = error.render().to_string();
    assert!(
        text.contains("--baseline") && text.contains("--policy"),
        "{text}"
    );
    assert!(
        !text.contains("required arguments were not provided"),
        "{text}"
    );
}

#[test]
fn generate_refuses_every_other_flag() {
    for args in [
        &["--generate", "man", "-t"][..],
        &["--generate", "bash", "-n"],
        &["--generate", "man", "--source", "proc"],
        &["-v", "--generate", "zsh"],
    ] {
        let text = usage_text(args);
        assert!(text.contains("cannot be used with it"), "{args:?}: {text}");
    }
    assert!(usage_text(&["--generate", "man", "-t"]).contains("-t/--tcp"));
}

#[test]
fn columns_long_help_names_every_column() {
    use clap::ValueEnum;
    let help = Cli::clap_command().render_long_help().to_string();
    for column in Column::value_variants() {
        let name = column.to_possible_value().unwrap().get_name().to_string();
        assert!(help.contains(&format!("- {name}:")), "--help omits {name}");
    }
    // The prose gives an example, not a second list that can drift from the table.
    let command = Cli::command();
    let columns = command.get_arguments().find(|a| a.get_id() == "columns");
    let prose = columns.unwrap().get_long_help().unwrap().to_string();
    let named = Column::value_variants()
        .iter()
        .map(|c| c.to_possible_value().unwrap().get_name().to_string())
        .filter(|name| {
            prose
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|w| w == name)
        })
        .count();
    assert!(
        named <= 2,
        "the -o long help lists {named} columns by hand: {prose}"
    );
}

/// `args` resolved with the services file holding `services`.
fn config_with_services(args: &[&str], services: &str) -> Result<Config, clap::Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("services");
    std::fs::write(&path, services).unwrap();
    let cli = Cli::parse_args(std::iter::once("lsports").chain(args.iter().copied()))?;
    cli.resolve_with(&mut ServiceNames::new(path))
}

#[test]
fn ports_and_waits_take_service_names() {
    let services = "ssh 22/tcp\nhttp-alt 8080/tcp webcache\nhttp-alt 8080/udp\n";
    let c = config_with_services(&["--port", "ssh,http-alt", "--port", "9000"], services).unwrap();
    assert_eq!(
        c.filter.ports.unwrap().ranges(),
        [(22, 22), (8080, 8080), (9000, 9000)]
    );
    let Action::Wait(spec) = config_with_services(&["--wait", "webcache"], services)
        .unwrap()
        .action
    else {
        panic!("not a wait")
    };
    assert_eq!(spec.ports.ports().collect::<Vec<_>>(), [8080]);
    let error = config_with_services(&["--wait-free", "sshh"], services).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    let text = error.render().to_string();
    assert!(text.contains("\"sshh\" is not a port number (0-65535) or a service name"));
    assert!(text.contains("--wait-free"), "{text}");
}

#[test]
fn numbers_need_no_services_file() {
    let missing = ServiceNames::new("/nonexistent/lsports/services");
    let cli = Cli::parse_args(["lsports", "--port", "22,80-81"]).unwrap();
    let c = cli.resolve_with(&mut { missing }).unwrap();
    assert_eq!(c.filter.ports.unwrap().ranges(), [(22, 22), (80, 81)]);
    let cli = Cli::parse_args(["lsports", "--port", "ssh"]).unwrap();
    let text = cli
        .resolve_with(&mut ServiceNames::new("/nonexistent/lsports/services"))
        .unwrap_err()
        .render()
        .to_string();
    assert!(
        text.contains("service names cannot be read: /nonexistent/lsports/services"),
        "{text}"
    );
}

#[test]
fn netns_values_are_read_as_ss_reads_them() {
    use crate::config::NetnsChoice;
    let netns = |args: &[&str]| {
        Cli::config_from(std::iter::once("lsports").chain(args.iter().copied())).map(|c| c.netns)
    };
    assert_eq!(netns(&[]).unwrap(), NetnsChoice::Current);
    assert_eq!(netns(&["--netns", "all"]).unwrap(), NetnsChoice::All);
    assert_eq!(
        netns(&["-N", "w1"]).unwrap(),
        NetnsChoice::Named("w1".into())
    );
    assert_eq!(
        netns(&["--netns", "/run/docker/netns/abc"]).unwrap(),
        NetnsChoice::Path("/run/docker/netns/abc".into())
    );
    assert_eq!(netns(&["--netns", "pid:42"]).unwrap(), NetnsChoice::Pid(42));
    for bad in ["pid:", "pid:x", "pid:0", "pid:+1", ""] {
        assert!(netns(&["--netns", bad]).is_err(), "{bad:?} accepted");
    }
    // Audit and baseline identify listeners by namespace.
    assert!(netns(&["--netns", "all", "audit", "--policy", "p.toml"]).is_ok());
    assert!(netns(&["--netns", "all", "baseline", "save", "b.toml"]).is_ok());
    assert!(netns(&["--netns", "all", "watch"]).is_ok());
    assert!(netns(&["--netns", "all", "capture", "x.tar"]).is_ok());
    // A snapshot lists the namespaces it recorded, and names none of the live system.
    assert!(netns(&["--netns", "all", "--snapshot", "s.tar"]).is_ok());
    for one in ["w1", "pid:1", "/run/netns/w1"] {
        let err = netns(&["--netns", one, "--snapshot", "s.tar"]).unwrap_err();
        assert!(
            err.to_string().contains("namespaces a capture recorded"),
            "{err}"
        );
    }
}

#[test]
fn published_is_for_one_listing_of_the_live_host() {
    assert!(config(&["--published", "--netns", "all", "--json"]).published);
    assert!(!config(&["--json"]).published);
    for args in [
        &["--published", "--snapshot", "x.tar"][..],
        &["--published", "--proc-root", "/tmp"],
        &["--published", "-c"],
        &["--published", "--wait", "80"],
        &["--published", "--format", "prometheus"],
        &["--published", "watch"],
        &["--published", "audit"],
    ] {
        let error = usage_error(args).to_string();
        assert!(
            error.contains("--published adds published ports"),
            "{args:?}: {error}"
        );
    }
}
