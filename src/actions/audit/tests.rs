//! Verdicts on hand-made listeners: what is unexpected, what is missing, what fails.

use std::path::PathBuf;

use super::verdict::judge;
use super::*;
use crate::actions::audit::baseline::{Expected, PortPattern, file};
use crate::actions::audit::identity::{Device, Identity, Namespace, Program};
use crate::actions::audit::tomlfile::Source;
use crate::config::FailOn;
use crate::model::exposure;
use crate::model::finding::{Finding, Flag};
use crate::model::{Entry, OwnerProcess, OwnerUnknownReason, Protocol, Socket};

fn listener(proto: Protocol, addr: &str, port: u16, name: &str, pid: u32) -> Audited {
    let socket = Socket {
        inode: u64::from(pid),
        ..Socket::listening(proto, addr, port)
    };
    let local_addr = socket.local_addr;
    Audited {
        identity: Identity {
            protocol: proto,
            address: local_addr,
            port,
            device: Device::Unbound,
            namespace: Namespace::Current,
            ephemeral: proto == Protocol::Udp && port >= 32768,
            exposure: exposure::classify(&socket),
            user: "root".into(),
            programs: vec![Program {
                name: name.into(),
                exe: Some(format!("/usr/sbin/{name}")),
            }],
            reach: None,
        },
        entry: Entry {
            socket,
            processes: crate::model::Owners::one(OwnerProcess {
                pid,
                fd: 3,
                name: Some(name.as_bytes().into()),
                cmdline: None,
                uid: Some(0),
                labels: None,
            }),
            owner_unknown: None,
            findings: Default::default(),
            labels: None,
            reach: Default::default(),
        },
        findings: Default::default(),
        exes: Vec::new(),
        reach_unread: false,
    }
}

fn baseline_of(listeners: &[Audited]) -> Baseline {
    let identities: Vec<Identity> = listeners.iter().map(|l| l.identity.clone()).collect();
    let text = file::format(&Baseline::record(&identities, None, None));
    file::parse(&Source::from_text("b.toml", &text)).unwrap()
}

fn ports(verdict: &Verdict, listeners: &[Audited]) -> Vec<u16> {
    verdict
        .unexpected
        .iter()
        .map(|(i, _)| listeners[*i].identity.port)
        .collect()
}

#[test]
fn nothing_changed_nothing_unexpected() {
    let now = vec![
        listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812),
        listener(Protocol::Udp, "0.0.0.0", 41000, "chronyd", 640),
    ];
    let baseline = baseline_of(&now);
    // The same programs after a restart: new pids, and the client socket on another port.
    let restarted = vec![
        listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 9001),
        listener(Protocol::Udp, "0.0.0.0", 52000, "chronyd", 9002),
    ];
    let verdict = judge(&restarted, Some(&baseline), None, &FailSet::default());
    assert!(verdict.unexpected.is_empty() && verdict.missing.is_empty());
    assert!(!verdict.fails);
    // And with the client socket gone: ephemeral sockets are never missing.
    let verdict = judge(&restarted[..1], Some(&baseline), None, &FailSet::default());
    assert!(verdict.missing.is_empty() && !verdict.fails);
}

#[test]
fn new_and_changed_listeners_are_unexpected_and_fail() {
    let before = vec![listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812)];
    let baseline = baseline_of(&before);
    let now = vec![
        listener(Protocol::Tcp, "0.0.0.0", 22, "evil", 812),
        listener(Protocol::Tcp, "0.0.0.0", 4444, "nc", 900),
    ];
    let verdict = judge(&now, Some(&baseline), None, &FailSet::default());
    assert_eq!(ports(&verdict, &now), [22, 4444]);
    assert!(matches!(
        verdict.unexpected[0].1[..],
        [Reason::Changed { .. }]
    ));
    assert_eq!(verdict.unexpected[1].1, [Reason::New]);
    // The changed port is reported as changed, not also as missing.
    assert!(verdict.missing.is_empty());
    assert!(verdict.fails);
}

#[test]
fn missing_listeners_are_reported_and_fail_only_when_asked() {
    let before = vec![
        listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812),
        listener(Protocol::Tcp, "127.0.0.1", 5432, "postgres", 700),
    ];
    let baseline = baseline_of(&before);
    let verdict = judge(&before[..1], Some(&baseline), None, &FailSet::default());
    assert_eq!(verdict.missing.len(), 1);
    let Missing::Baseline(line) = &verdict.missing[0] else {
        panic!("{:?}", verdict.missing)
    };
    assert_eq!(
        (line.program.as_deref(), line.line),
        (Some("postgres"), Some(13))
    );
    assert!(!verdict.fails);
    let strict = FailSet::from_choices(&[FailOn::Missing]);
    assert!(judge(&before[..1], Some(&baseline), None, &strict).fails);
}

#[test]
fn failing_flags_fail_and_others_are_only_reported() {
    let mut flagged = listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812);
    flagged.findings.push(Finding {
        flag: Flag::RootExposed,
        explanation: "x".into(),
    });
    let baseline = baseline_of(std::slice::from_ref(&flagged));
    let now = [flagged.clone()];
    assert!(!judge(&now, Some(&baseline), None, &FailSet::default()).fails);
    let fail = FailSet::from_choices(&[FailOn::RootExposed]);
    assert!(judge(&now, Some(&baseline), None, &fail).fails);
    flagged.findings[0].flag = Flag::ExeDeleted;
    assert!(judge(&[flagged], Some(&baseline), None, &FailSet::default()).fails);
}

#[test]
fn baseline_and_policy_must_both_accept() {
    let policy_text = "default = \"allow\"\n[[rule]]\nname = \"no-telnet\"\naction = \"deny\"\nport = 23\n\
        [[rule]]\naction = \"allow\"\nport = 22\nrequired = true\n";
    let policy = policy::parse::parse(&Source::from_text("p.toml", policy_text)).unwrap();
    let telnet = listener(Protocol::Tcp, "0.0.0.0", 23, "telnetd", 23);
    let baseline = baseline_of(std::slice::from_ref(&telnet));
    let verdict = judge(
        std::slice::from_ref(&telnet),
        Some(&baseline),
        Some(&policy),
        &FailSet::default(),
    );
    assert_eq!(verdict.unexpected, [(0, vec![Reason::Denied(0)])]);
    // Rule 2 is required and nothing matches it.
    assert_eq!(verdict.missing, [Missing::Rule(1)]);
    assert!(verdict.fails);
}

#[test]
fn fail_on_choices_combine_in_order() {
    assert_eq!(FailSet::from_choices(&[]), FailSet::default());
    let none = FailSet::from_choices(&[FailOn::None]);
    assert!(!none.missing && none.flags.is_empty());
    let all = FailSet::from_choices(&[FailOn::All]);
    assert!(all.missing && all.flags == Flag::EVERY);
    let some =
        FailSet::from_choices(&[FailOn::All, FailOn::None, FailOn::NoOwner, FailOn::NoOwner]);
    assert!(!some.missing && some.flags == [Flag::NoOwner]);
}

#[test]
fn the_text_report_names_what_and_why() {
    let before = vec![
        listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812),
        listener(Protocol::Tcp, "127.0.0.1", 5432, "postgres", 700),
    ];
    let baseline = baseline_of(&before);
    let now = vec![
        listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812),
        listener(Protocol::Tcp, "0.0.0.0", 4444, "nc", 900),
    ];
    let audit = Audit::judge(
        Some((PathBuf::from("b.toml"), baseline)),
        None,
        now,
        &FailSet::default(),
    );
    let mut out = Vec::new();
    text::write(&audit, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "lsports audit: FAIL: 1 unexpected, 1 missing, 0 suspicious (2 listeners; baseline b.toml)\n\
         \n\
         Unexpected\n\
         \x20 tcp  0.0.0.0:4444  900/nc  root  not in the baseline\n\
         \n\
         Missing (reported only; --fail-on missing fails the audit)\n\
         \x20 tcp  127.0.0.1:5432  postgres (/usr/sbin/postgres)  root  b.toml:13: nothing listens there now\n"
    );
}

#[test]
fn a_baseline_line_where_the_audit_did_not_look_is_not_checked_and_never_fails() {
    let mut web = listener(Protocol::Tcp, "0.0.0.0", 8080, "nginx", 700);
    web.identity.namespace = Namespace::Container("web".into());
    let mut gone = listener(Protocol::Tcp, "0.0.0.0", 9090, "app", 701);
    gone.identity.namespace = Namespace::Netns("n2".into());
    let sshd = listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812);
    let baseline = baseline_of(&[web, gone, sshd]);
    let fail = FailSet::from_choices(&[FailOn::Missing]);
    let not_web = |line: &Expected| {
        (line.namespace == Namespace::Container("web".into())).then_some(UncheckedWhy::Namespace)
    };
    let verdict = verdict::judge_within(&[], Some(&baseline), None, &fail, &not_web);
    let unchecked: Vec<&PortPattern> = verdict.unchecked.iter().map(|u| &u.line.port).collect();
    assert_eq!(unchecked, [&PortPattern::Number(8080)]);
    let missing: Vec<&Missing> = verdict.missing.iter().collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(verdict.fails, "the rest is missing, and fails");
    let everything_there = [listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 9)];
    let mut checked_host_only = baseline.clone();
    checked_host_only
        .expected
        .retain(|e| e.namespace != Namespace::Netns("n2".into()));
    let verdict = verdict::judge_within(
        &everything_there,
        Some(&checked_host_only),
        None,
        &fail,
        &not_web,
    );
    assert!(verdict.missing.is_empty() && !verdict.fails, "{verdict:?}");
    assert_eq!(verdict.unchecked.len(), 1);
}

/// `listener` as an unprivileged audit sees it: no holder, for `why`.
fn holder_unseen(mut listener: Audited, why: OwnerUnknownReason) -> Audited {
    listener.entry.processes.clear();
    listener.entry.owner_unknown = Some(why);
    listener.identity.programs.clear();
    listener
}

#[test]
fn a_listener_whose_holder_could_not_be_seen_is_not_checked_unless_its_user_changed() {
    let sshd = listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812);
    let baseline = baseline_of(std::slice::from_ref(&sshd));
    let fail = FailSet::from_choices(&[FailOn::Missing]);
    for why in [
        OwnerUnknownReason::Permission,
        OwnerUnknownReason::OutsidePidNamespace,
    ] {
        let seen = [holder_unseen(sshd.clone(), why)];
        let verdict = judge(&seen, Some(&baseline), None, &fail);
        assert!(
            verdict.unexpected.is_empty() && !verdict.fails,
            "{verdict:?}"
        );
        assert!(verdict.missing.is_empty(), "{verdict:?}");
        let unchecked: Vec<(&PortPattern, UncheckedWhy)> = (verdict.unchecked.iter())
            .map(|u| (&u.line.port, u.why))
            .collect();
        assert_eq!(
            unchecked,
            [(&PortPattern::Number(22), UncheckedWhy::HolderUnseen(why))]
        );
    }
    // Every process inspected and none holds it: a kernel socket where sshd was expected.
    let kernel = [holder_unseen(sshd.clone(), OwnerUnknownReason::Kernel)];
    let verdict = judge(&kernel, Some(&baseline), None, &fail);
    assert!(
        matches!(verdict.unexpected[..], [(0, ref r)] if matches!(r[..], [Reason::Changed { .. }]))
    );
    // Another user where root was expected is a change, seen or not.
    let mut other_user = holder_unseen(sshd, OwnerUnknownReason::Permission);
    other_user.identity.user = "nobody".into();
    let verdict = judge(&[other_user], Some(&baseline), None, &fail);
    assert_eq!(verdict.unexpected.len(), 1, "{verdict:?}");
    assert!(verdict.unchecked.is_empty(), "{verdict:?}");
}

#[test]
fn a_baseline_line_naming_no_program_matches_an_unseen_holder_by_place_and_user() {
    // Saved unprivileged: the line names no program, only where and whose.
    let unseen = holder_unseen(
        listener(Protocol::Tcp, "127.0.0.1", 7001, "sshd", 812),
        OwnerUnknownReason::Permission,
    );
    let baseline = baseline_of(std::slice::from_ref(&unseen));
    assert_eq!(baseline.expected[0].program, None);
    let fail = FailSet::from_choices(&[FailOn::Missing]);
    let verdict = judge(std::slice::from_ref(&unseen), Some(&baseline), None, &fail);
    assert!(
        verdict.unexpected.is_empty() && verdict.unchecked.is_empty() && !verdict.fails,
        "{verdict:?}"
    );
    // Seen as root later, whatever holds it, the line still matches it.
    let seen = listener(Protocol::Tcp, "127.0.0.1", 7001, "sshd", 812);
    let verdict = judge(&[seen], Some(&baseline), None, &fail);
    assert!(verdict.unexpected.is_empty() && verdict.unchecked.is_empty());
    // Another user there is still a change.
    let mut other_user = unseen.clone();
    other_user.identity.user = "nobody".into();
    let verdict = judge(&[other_user], Some(&baseline), None, &fail);
    assert_eq!(verdict.unexpected.len(), 1, "{verdict:?}");
    assert!(verdict.unchecked.is_empty(), "{verdict:?}");
}

fn policy_of(text: &str) -> policy::Policy {
    policy::parse::parse(&Source::from_text("p.toml", text)).unwrap()
}

#[test]
fn an_unseen_holder_a_deny_rule_cannot_judge_keeps_the_audit_from_passing() {
    let policy = policy_of(
        "default = \"allow\"\n[[rule]]\nname = \"no netcat\"\naction = \"deny\"\nprogram = \"nc\"\n",
    );
    let nc = listener(Protocol::Tcp, "0.0.0.0", 4444, "nc", 900);
    let fail = FailSet::default();
    // Seen, it is denied, and fails.
    let verdict = judge(std::slice::from_ref(&nc), None, Some(&policy), &fail);
    assert!(verdict.fails && verdict.undecided.is_empty(), "{verdict:?}");
    // Unseen: neither denied nor allowed, and not a pass either.
    let unseen = holder_unseen(nc.clone(), OwnerUnknownReason::Permission);
    let verdict = judge(std::slice::from_ref(&unseen), None, Some(&policy), &fail);
    assert!(
        verdict.unexpected.is_empty() && !verdict.fails,
        "{verdict:?}"
    );
    assert!(verdict.incomplete, "{verdict:?}");
    assert_eq!(
        verdict.undecided,
        [Undecided::Listener {
            index: 0,
            rules: vec![0],
            otherwise: None,
            why: UndecidedWhy::holders(OwnerUnknownReason::Permission),
            deny_unevaluated: true,
        }]
    );
    // Something surely unexpected besides: the audit fails (exit 1), which says more.
    let exposed_by_root = listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812);
    let strict = policy_of(
        "default = \"allow\"\n[[rule]]\naction = \"deny\"\nprogram = \"nc\"\n\
         [[rule]]\naction = \"deny\"\nport = 22\n",
    );
    let both = [unseen.clone(), exposed_by_root];
    let verdict = judge(&both, None, Some(&strict), &fail);
    assert!(verdict.fails && !verdict.incomplete, "{verdict:?}");
    assert_eq!(ports(&verdict, &both), [22]);
    assert_eq!(verdict.undecided.len(), 1, "{verdict:?}");
    // Denied whatever holds it: a deny rule it may match, then a denying default; the
    // explanation claims no more than that.
    let deny_all = policy_of("[[rule]]\naction = \"deny\"\nprogram = \"nc\"\n");
    let audit = Audit::judge(None, Some(deny_all), vec![unseen], &fail);
    assert!(audit.verdict.fails && audit.verdict.undecided.is_empty());
    let [(0, ref reasons)] = audit.verdict.unexpected[..] else {
        panic!("{:?}", audit.verdict);
    };
    assert_eq!(
        text::reason(&audit, &reasons[0]),
        "no rule of p.toml allows it, and its default is deny"
    );
    // A kernel socket (every process seen, none holds it) is no nc: allowed.
    let kernel = holder_unseen(nc, OwnerUnknownReason::Kernel);
    let verdict = judge(&[kernel], None, Some(&policy), &fail);
    assert!(!verdict.fails && !verdict.incomplete && verdict.undecided.is_empty());
}

#[test]
fn an_unseen_holder_an_allow_rule_cannot_confirm_is_reported_only() {
    let policy = policy_of(
        "[[rule]]\nname = \"ssh\"\naction = \"allow\"\nport = 22\nprogram = \"sshd\"\n\
         required = true\n",
    );
    let sshd = holder_unseen(
        listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812),
        OwnerUnknownReason::Permission,
    );
    let verdict = judge(&[sshd], None, Some(&policy), &FailSet::default());
    // Not denied by the default, not missing, not failing: reported, as a baseline line
    // whose program cannot be confirmed is.
    assert!(
        verdict.unexpected.is_empty() && verdict.missing.is_empty(),
        "{verdict:?}"
    );
    assert!(!verdict.fails && !verdict.incomplete, "{verdict:?}");
    assert_eq!(
        verdict.undecided,
        [
            Undecided::Listener {
                index: 0,
                rules: vec![0],
                otherwise: None,
                why: UndecidedWhy::holders(OwnerUnknownReason::Permission),
                deny_unevaluated: false,
            },
            Undecided::Required {
                rule: 0,
                why: UndecidedWhy::holders(OwnerUnknownReason::Permission),
            },
        ]
    );
    // Nothing on 22 at all: the required rule is missing, unseen holders elsewhere or not.
    let other = holder_unseen(
        listener(Protocol::Tcp, "0.0.0.0", 2222, "sshd", 812),
        OwnerUnknownReason::Permission,
    );
    let verdict = judge(&[other], None, Some(&policy), &FailSet::default());
    assert_eq!(verdict.missing, [Missing::Rule(0)]);
    assert!(verdict.fails, "{verdict:?}");
}

#[test]
fn a_listener_left_unchecked_by_both_checks_is_counted_once_and_each_check_says_its_own() {
    let policy = policy_of("default = \"allow\"\n[[rule]]\naction = \"deny\"\nprogram = \"nc\"\n");
    let sshd = listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812);
    let baseline = baseline_of(std::slice::from_ref(&sshd));
    let fail = FailSet::default();
    let unseen = holder_unseen(sshd, OwnerUnknownReason::Permission);
    // One listener: its baseline line and its policy check are one listener not checked.
    let verdict = judge(
        std::slice::from_ref(&unseen),
        Some(&baseline),
        Some(&policy),
        &fail,
    );
    assert_eq!(
        verdict.not_checked(),
        verdict::NotChecked {
            total: 1,
            baseline: 1,
            policy: 1
        },
        "{verdict:?}"
    );
    let audit = Audit::judge(
        Some((PathBuf::from("b.toml"), baseline.clone())),
        Some(policy.clone()),
        vec![unseen.clone()],
        &fail,
    );
    let mut report = Vec::new();
    text::write(&audit, &mut report).unwrap();
    let report = String::from_utf8(report).unwrap();
    assert!(
        report.starts_with(
            "lsports audit: INCOMPLETE: 0 unexpected, 0 missing, 0 suspicious, 1 not checked \
             (1 listener; baseline b.toml: 1 not checked, policy p.toml: 1 not checked)\n"
        ),
        "{report}"
    );
    // A socket on both families is two listeners, one baseline line, two policy checks.
    let mut v6 = unseen.clone();
    v6.entry.socket.family = crate::model::Family::Ipv6;
    let both = [unseen.clone(), v6];
    let verdict = judge(&both, Some(&baseline), Some(&policy), &fail);
    assert_eq!(
        verdict.not_checked(),
        verdict::NotChecked {
            total: 2,
            baseline: 1,
            policy: 2
        },
        "{verdict:?}"
    );
    // A required rule no listener surely matches stands alone, beside the listener.
    let required = policy_of(
        "default = \"allow\"\n[[rule]]\naction = \"deny\"\nprogram = \"nc\"\n[[rule]]\n\
         action = \"allow\"\nport = 22\nprogram = \"sshd\"\nrequired = true\n",
    );
    let verdict = judge(
        std::slice::from_ref(&unseen),
        Some(&baseline),
        Some(&required),
        &fail,
    );
    assert_eq!(
        verdict.not_checked(),
        verdict::NotChecked {
            total: 2,
            baseline: 1,
            policy: 2
        },
        "{verdict:?}"
    );
}

/// `listener` with its reach through the firewall: `verdict` for IPv4, as the enrich stage
/// gives it, and as identity records it (`unknown` records nothing); `unread`: its rules
/// could not be read.
fn with_reach(
    mut listener: Audited,
    verdict: crate::model::reach::Verdict,
    unread: bool,
) -> Audited {
    let reach = crate::model::reach::Reach::new(verdict, crate::model::Family::Ipv4, "test");
    listener.entry.reach = vec![reach].into();
    listener.identity.reach = identity::reach_text(&listener.entry.reach);
    listener.reach_unread = unread;
    listener
}

#[test]
fn a_recorded_reach_the_unread_rules_cannot_tell_is_not_checked_and_reported_only() {
    use crate::model::reach::Verdict as Reach;
    let sshd = with_reach(
        listener(Protocol::Tcp, "0.0.0.0", 22, "sshd", 812),
        Reach::Filtered,
        false,
    );
    let baseline = baseline_of(std::slice::from_ref(&sshd));
    assert_eq!(baseline.expected[0].reach.as_deref(), Some("filtered"));
    let fail = FailSet::from_choices(&[FailOn::All]);
    let file = || Some((PathBuf::from("b.toml"), baseline.clone()));

    // The rules unread (unprivileged): not a silent pass, but not checked, reported only, as
    // a policy's allow rule on a reach is.
    let unread = with_reach(sshd.clone(), Reach::Unknown, true);
    let audit = Audit::judge(file(), None, vec![unread.clone()], &fail);
    let verdict = &audit.verdict;
    assert!(
        verdict.unexpected.is_empty() && verdict.missing.is_empty(),
        "{verdict:?}"
    );
    assert!(!verdict.fails && !verdict.incomplete, "{verdict:?}");
    let unchecked: Vec<(UncheckedWhy, &[usize])> = (verdict.unchecked.iter())
        .map(|u| (u.why, &u.listeners[..]))
        .collect();
    assert_eq!(unchecked, [(UncheckedWhy::ReachUnread, &[0][..])]);
    assert_eq!(verdict.not_checked().total, 1);
    let mut out = Vec::new();
    text::write(&audit, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(
            "lsports audit: OK: 0 unexpected, 0 missing, 0 suspicious, 1 not checked (1 listener; \
             baseline b.toml)\n\nNot checked, reported only: the listener is there as expected, \
             but the reach through the firewall its line records could not be told: the rules \
             could not be read ("
        ),
        "{text}"
    );
    assert!(
        text.contains("\n  tcp  0.0.0.0:22  sshd (/usr/sbin/sshd)  root  b.toml:"),
        "{text}"
    );
    let mut out = Vec::new();
    json::write(&audit, &mut out).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["result"], "ok", "{report}");
    let not_checked = &report["not_checked"][0];
    assert_eq!(not_checked["check"], "baseline", "{report}");
    assert_eq!(not_checked["fails"], false, "{report}");
    assert!(
        (not_checked["explanation"].as_str().unwrap()).contains("reach through the firewall"),
        "{report}"
    );

    // Read, and unknown (a rule lsports cannot evaluate decides, as root): what lsports says,
    // which is not the reach recorded.
    let undecidable = with_reach(sshd.clone(), Reach::Unknown, false);
    let verdict = judge(&[undecidable], Some(&baseline), None, &fail);
    assert!(verdict.fails && verdict.unchecked.is_empty(), "{verdict:?}");
    assert!(
        matches!(&verdict.unexpected[..], [(0, r)] if matches!(&r[..],
            [Reason::ReachChanged { now, .. }] if now == "unknown")),
        "{verdict:?}"
    );
    // Read and the same: nothing to say.
    let verdict = judge(std::slice::from_ref(&sshd), Some(&baseline), None, &fail);
    assert!(verdict.unexpected.is_empty() && verdict.unchecked.is_empty() && !verdict.fails);
    // Read and another: changed, as ever.
    let open = with_reach(sshd.clone(), Reach::Open, false);
    let verdict = judge(&[open], Some(&baseline), None, &fail);
    assert!(
        verdict.fails && verdict.unexpected.len() == 1,
        "{verdict:?}"
    );

    // Its holder unseen too: the line is not checked once, for the holder (nothing of it was).
    let neither = holder_unseen(unread, OwnerUnknownReason::Permission);
    let verdict = judge(&[neither], Some(&baseline), None, &fail);
    let unchecked: Vec<UncheckedWhy> = verdict.unchecked.iter().map(|u| u.why).collect();
    assert_eq!(
        unchecked,
        [UncheckedWhy::HolderUnseen(OwnerUnknownReason::Permission)]
    );
    assert_eq!(verdict.not_checked().total, 1);
    assert!(!verdict.fails && !verdict.incomplete, "{verdict:?}");
}
