//! Policies: the examples of the documentation decide as written, and every kind of mistake
//! in a file is named with its line and rule.

use super::parse::parse;
use super::*;
use crate::actions::audit::identity::{Device, Namespace, Program};
use crate::actions::audit::tomlfile::Source;
use crate::model::reach;
use crate::model::{OwnerProcess, Socket};

/// A listener: (entry, identity), held by `name` running `exe` as `uid`.
fn listener(
    proto: Protocol,
    addr: &str,
    port: u16,
    uid: u32,
    name: &str,
    exe: &str,
) -> (Entry, Identity) {
    let socket = Socket {
        uid,
        v6only: Some(false),
        ..Socket::listening(proto, addr, port)
    };
    let local_addr = socket.local_addr;
    let identity = Identity {
        protocol: proto,
        address: local_addr,
        port,
        device: Device::Unbound,
        namespace: Namespace::Current,
        ephemeral: proto == Protocol::Udp && port >= 32768,
        exposure: exposure::classify(&socket),
        user: uid.to_string(),
        programs: vec![Program {
            name: name.into(),
            exe: Some(exe.into()),
        }],
        reach: None,
    };
    let entry = Entry {
        socket,
        processes: crate::model::Owners::one(OwnerProcess {
            pid: 100,
            fd: 3,
            name: Some(name.as_bytes().into()),
            cmdline: Some(exe.as_bytes().into()),
            uid: Some(uid),
            labels: None,
        }),
        owner_unknown: None,
        findings: Default::default(),
        labels: None,
        reach: Default::default(),
    };
    (entry, identity)
}

const EXAMPLE: &str = r#"
default = "deny"

[[rule]]
name = "ssh"
action = "allow"
proto = "tcp"
port = 22
address = "any"
program = "sshd"
required = true

[[rule]]
name = "postgres on loopback"
action = "allow"
exposure = "loopback"
user = "root"

[[rule]]
action = "allow"
proto = "udp"
port = 5353
program = "avahi-*"

[[rule]]
name = "nothing else exposed"
action = "deny"
exposure = "external"

[[rule]]
action = "allow"
port = ["8000-8100", "ephemeral"]
exe = "/usr/bin/*"
"#;

fn example() -> Policy {
    parse(&Source::from_text("p.toml", EXAMPLE)).unwrap()
}

/// The deciding rule's number, or 0 for the default; and the action.
fn decide(policy: &Policy, l: &(Entry, Identity)) -> (usize, Action) {
    match policy.decide(&l.0, &l.1) {
        Decision::Rule(rule) => (rule.number, rule.action),
        Decision::Default(action) => (0, action),
    }
}

#[test]
fn the_first_matching_rule_decides() {
    let policy = example();
    assert_eq!(policy.rules.len(), 5);
    assert_eq!(policy.rules[0].line, 4);
    let ssh = listener(Protocol::Tcp, "::", 22, 0, "sshd", "/usr/sbin/sshd");
    assert_eq!(decide(&policy, &ssh), (1, Action::Allow));
    let fake_ssh = listener(Protocol::Udp, "0.0.0.0", 22, 0, "sshd", "/tmp/sshd");
    assert_eq!(decide(&policy, &fake_ssh), (4, Action::Deny));
    let loopback = listener(
        Protocol::Tcp,
        "127.0.0.1",
        5432,
        0,
        "postgres",
        "/usr/lib/pg",
    );
    assert_eq!(decide(&policy, &loopback), (2, Action::Allow));
    let loopback_other_user = listener(Protocol::Tcp, "127.0.0.1", 5432, 1000, "pg", "/x");
    assert_eq!(decide(&policy, &loopback_other_user), (0, Action::Deny));
    let avahi = listener(
        Protocol::Udp,
        "0.0.0.0",
        5353,
        105,
        "avahi-daemon",
        "/usr/sbin/avahi-daemon",
    );
    assert_eq!(decide(&policy, &avahi), (3, Action::Allow));
    let exposed = listener(Protocol::Tcp, "0.0.0.0", 4444, 1000, "nc", "/usr/bin/nc");
    assert_eq!(decide(&policy, &exposed), (4, Action::Deny));
}

#[test]
fn ports_ranges_ephemeral_and_exe_globs_match() {
    let policy = example();
    let mut dev = listener(
        Protocol::Tcp,
        "127.0.0.1",
        8080,
        1000,
        "python3",
        "/usr/bin/python3",
    );
    // Not on loopback's rule 2 (uid 1000), rule 5 allows by port range and exe.
    assert_eq!(decide(&policy, &dev), (5, Action::Allow));
    dev.1.programs[0].exe = Some("/home/u/python3".into());
    assert_eq!(decide(&policy, &dev), (0, Action::Deny));
    let client = listener(
        Protocol::Udp,
        "127.0.0.1",
        50123,
        1000,
        "firefox",
        "/usr/bin/firefox",
    );
    assert_eq!(decide(&policy, &client), (5, Action::Allow));
}

#[test]
fn a_rule_needs_every_condition() {
    let policy = parse(&Source::from_text(
        "p.toml",
        "[[rule]]\naction = \"allow\"\nproto = \"tcp\"\nport = 22\nprogram = \"sshd\"\n",
    ))
    .unwrap();
    let by_other = listener(
        Protocol::Tcp,
        "0.0.0.0",
        22,
        0,
        "dropbear",
        "/usr/sbin/dropbear",
    );
    let other_port = listener(Protocol::Tcp, "0.0.0.0", 2222, 0, "sshd", "/usr/sbin/sshd");
    assert_eq!(decide(&policy, &by_other), (0, Action::Deny));
    assert_eq!(decide(&policy, &other_port), (0, Action::Deny));
}

#[test]
fn the_default_can_allow() {
    let policy = parse(&Source::from_text(
        "p.toml",
        "default = \"allow\"\n[[rule]]\naction = \"deny\"\nport = 23\n",
    ))
    .unwrap();
    let telnet = listener(Protocol::Tcp, "0.0.0.0", 23, 0, "telnetd", "/x");
    let web = listener(Protocol::Tcp, "0.0.0.0", 80, 0, "nginx", "/x");
    assert_eq!(decide(&policy, &telnet), (1, Action::Deny));
    assert_eq!(decide(&policy, &web), (0, Action::Allow));
}

#[test]
fn mistakes_point_at_the_line_and_rule() {
    let cases = [
        (
            "[[rule]]\naction = \"permit\"\n",
            "p.toml:2: rule 1: action must be \"allow\" or \"deny\"",
        ),
        (
            "[[rule]]\naction = \"allow\"\n\n[[rule]]\naction = \"deny\"\nprot = \"tcp\"\n",
            "p.toml:6: unknown field `prot`",
        ),
        (
            "[[rule]]\naction = \"allow\"\n[[rule]]\naction = \"allow\"\nport = \"ssh\"\n",
            "p.toml:5: rule 2: port: \"ssh\" is not a port number",
        ),
        (
            "[[rule]]\naction = \"allow\"\nport = -1\n",
            "p.toml:3: rule 1: port: \"-1\" is not a port number (0-65535)",
        ),
        (
            "[[rule]]\naction = \"allow\"\nport = [22, 65536]\n",
            "p.toml:3: rule 1: port: \"65536\" is not a port number (0-65535)",
        ),
        (
            "[[rule]]\naction = \"allow\"\nprogram = \"\"\n",
            "p.toml:3: rule 1: program: an empty value matches nothing",
        ),
        (
            "[[rule]]\naction = \"allow\"\nuser = [\"root\", \"\"]\n",
            "p.toml:3: rule 1: user: an empty value matches nothing",
        ),
        (
            "[[rule]]\naction = \"allow\"\nproto = \"icmp\"\n",
            "p.toml:3: rule 1: proto \"icmp\" is not \"tcp\" or \"udp\"",
        ),
        (
            "[[rule]]\naction = \"allow\"\naddress = \"localhost\"\n",
            "p.toml:3: rule 1: address: \"localhost\" is not an address",
        ),
        (
            "[[rule]]\naction = \"allow\"\nexposure = \"public\"\n",
            "p.toml:3: rule 1: exposure \"public\" is not loopback",
        ),
        (
            "[[rule]]\naction = \"deny\"\nrequired = true\n",
            "p.toml:3: rule 1: required applies to allow rules",
        ),
        (
            "[[rule]]\naction = \"allow\"\nprogram = []\n",
            "p.toml:3: rule 1: program must be a string",
        ),
        (
            "[[rule]]\naction = \"allow\"\nport = 1.5\n",
            "p.toml:3: rule 1: port must be a string",
        ),
        (
            "default = \"maybe\"\n",
            "p.toml:1: default must be \"allow\" or \"deny\"",
        ),
        (
            "[[rule]]\nname = \"x\"\n",
            "p.toml:1: missing field `action`",
        ),
        ("[rule\n", "p.toml:1: "),
    ];
    for (text, expected) in cases {
        let error = parse(&Source::from_text("p.toml", text))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(expected),
            "{error:?}\nexpected to start with {expected:?}"
        );
    }
}

#[test]
fn an_unknown_user_warns_and_matches_nobody() {
    let policy = parse(&Source::from_text(
        "p.toml",
        "[[rule]]\naction = \"allow\"\nuser = \"no-such-user-lsports\"\n",
    ))
    .unwrap();
    assert_eq!(policy.warnings.len(), 1);
    assert!(
        policy.warnings[0].starts_with("p.toml:3: rule 1: no such user"),
        "{:?}",
        policy.warnings
    );
    let any = listener(Protocol::Tcp, "0.0.0.0", 80, 0, "nginx", "/x");
    assert_eq!(decide(&policy, &any), (0, Action::Deny));
}

#[test]
fn rules_describe_themselves_with_file_and_line() {
    let policy = example();
    let path = std::path::Path::new("p.toml");
    assert_eq!(policy.rules[0].describe(path), "rule 1 \"ssh\" (p.toml:4)");
    assert_eq!(policy.rules[2].describe(path), "rule 3 (p.toml:19)");
}

#[test]
fn container_unit_and_netns_rules_match_the_labels_and_the_namespace() {
    let policy = parse(&Source::from_text(
        "p.toml",
        "[[rule]]\naction = \"allow\"\ncontainer = \"web*\"\n\
         [[rule]]\naction = \"allow\"\nunit = \"sshd.socket\"\n\
         [[rule]]\naction = \"allow\"\nnetns = [\"w1\", \"net:*\"]\n",
    ))
    .unwrap();
    let labelled = |container: Option<&str>, unit: Option<&str>, netns: Option<(u64, &str)>| {
        let (mut entry, identity) =
            listener(Protocol::Tcp, "0.0.0.0", 80, 0, "nginx", "/usr/sbin/nginx");
        entry.labels = Some(std::sync::Arc::new(crate::model::labels::Labels {
            unit: unit.map(str::to_string),
            container: container.map(|name| crate::model::labels::Container {
                runtime: crate::model::labels::Runtime::Docker,
                id: "0".repeat(64),
                name: Some(name.into()),
                pod: None,
                pod_namespace: None,
                rootless_uid: None,
                rootless_user: None,
            }),
        }));
        entry.socket.netns = netns.map(|(inode, name)| {
            std::sync::Arc::new(crate::model::Netns {
                inode,
                name: (!name.is_empty()).then(|| name.as_bytes().to_vec()),
            })
        });
        (entry, identity)
    };
    let rule = |l: &(Entry, Identity)| match policy.decide(&l.0, &l.1) {
        Decision::Rule(rule) => Some(rule.number),
        Decision::Default(_) => None,
    };
    assert_eq!(rule(&labelled(Some("web-1"), None, None)), Some(1));
    assert_eq!(rule(&labelled(Some("db"), None, None)), None);
    assert_eq!(
        rule(&labelled(None, Some("sshd.socket → sshd.service"), None)),
        Some(2)
    );
    assert_eq!(rule(&labelled(None, None, Some((1, "w1")))), Some(3));
    assert_eq!(rule(&labelled(None, None, Some((4026532999, "")))), Some(3));
    assert_eq!(rule(&labelled(None, None, Some((1, "w2")))), None);
    assert_eq!(rule(&labelled(None, None, None)), None);
}

/// The listener of `listener`, dual-stack, with these verdicts for IPv4 and IPv6.
fn reaching(v4: reach::Verdict, v6: reach::Verdict) -> (Entry, Identity) {
    let (mut entry, identity) = listener(Protocol::Tcp, "::", 5432, 0, "postgres", "/x");
    entry.reach = thin_vec::thin_vec![
        reach::Reach::new(v4, crate::model::Family::Ipv4, "r"),
        reach::Reach::new(v6, crate::model::Family::Ipv6, "r"),
    ];
    (entry, identity)
}

#[test]
fn reach_allows_only_when_every_family_is_listed_and_denies_when_any_is() {
    let read = |text: &str| parse(&Source::from_text("p.toml", text)).map_err(|e| e.to_string());
    use reach::Verdict::{Filtered, Open};
    let policy = read(
        "default = \"allow\"\n[[rule]]\naction = \"allow\"\nport = 5432\nreach = \"filtered\"\n\
         [[rule]]\naction = \"deny\"\nreach = [\"open\", \"restricted\"]\n",
    )
    .unwrap();
    assert_eq!(
        decide(&policy, &reaching(Filtered, Filtered)),
        (1, Action::Allow)
    );
    // Open over IPv6: not "filtered", and denied by the second rule.
    assert_eq!(
        decide(&policy, &reaching(Filtered, Open)),
        (2, Action::Deny)
    );
    // Not evaluated: no reach rule matches, the default decides.
    let plain = listener(Protocol::Tcp, "::", 5432, 0, "postgres", "/x");
    assert_eq!(decide(&policy, &plain), (0, Action::Allow));
    let bad = read("[[rule]]\naction = \"allow\"\nreach = \"wide open\"\n").unwrap_err();
    assert!(
        bad.contains("reach \"wide open\" is not one of open, restricted"),
        "{bad}"
    );
}

/// What an unprivileged audit cannot know of a root-owned listener: its holders.
const HOLDERS_UNSEEN: Unseen = Unseen {
    holders: true,
    reach: false,
};

/// `l` as an unprivileged audit sees it: a socket whose holders could not be seen.
fn unseen(mut l: (Entry, Identity)) -> (Entry, Identity) {
    l.0.processes.clear();
    l.1.programs.clear();
    l
}

/// What `judge` says of a listener whose holders could not be seen: `Ok((rule, action))` when
/// decided (rule 0: the default), else `Err((rules it hangs on, whether a deny is among what
/// could not be evaluated))`.
#[allow(clippy::type_complexity)]
fn judge_unseen(
    policy: &Policy,
    l: &(Entry, Identity),
) -> Result<(usize, Action), (Vec<usize>, bool)> {
    match policy.judge(&l.0, &l.1, HOLDERS_UNSEEN) {
        Outcome::Decided(Decision::Rule(rule)) => Ok((rule.number, rule.action)),
        Outcome::Decided(Decision::Default(action)) => Ok((0, action)),
        Outcome::Undecided {
            rules,
            deny_unevaluated,
            ..
        } => Err((rules.iter().map(|r| r.number).collect(), deny_unevaluated)),
    }
}

#[test]
fn rules_on_holders_are_unknown_for_an_unseen_holder_and_the_rest_still_decide() {
    let policy = example();
    // Rule 1 (allow sshd) cannot be told; rule 4 (deny external) surely matches: what hangs
    // on rule 1 is whether the expected program is there, not whether a deny fires.
    let ssh = unseen(listener(
        Protocol::Tcp,
        "0.0.0.0",
        22,
        0,
        "sshd",
        "/usr/sbin/sshd",
    ));
    assert_eq!(judge_unseen(&policy, &ssh), Err((vec![1], false)));
    // Seen, the same listener is decided as ever, and `judge` agrees with `decide`.
    let seen = listener(Protocol::Tcp, "0.0.0.0", 22, 0, "sshd", "/usr/sbin/sshd");
    assert!(matches!(
        policy.judge(&seen.0, &seen.1, Unseen::NOTHING),
        Outcome::Decided(Decision::Rule(r)) if r.number == 1
    ));
    // Rule 2's user is the socket's owner: settled by the socket, seen or not.
    let loopback = unseen(listener(
        Protocol::Tcp,
        "127.0.0.1",
        5432,
        0,
        "postgres",
        "/x",
    ));
    assert_eq!(judge_unseen(&policy, &loopback), Ok((2, Action::Allow)));
    // Owned by another user, a holder running as root could still match it; no other rule
    // could, and the default denies.
    let other = unseen(listener(
        Protocol::Tcp,
        "127.0.0.1",
        5432,
        70,
        "postgres",
        "/x",
    ));
    assert_eq!(judge_unseen(&policy, &other), Err((vec![2], false)));
    // Exposed on another port: only rule 4 (no holder key) can match, and it denies.
    let exposed = unseen(listener(
        Protocol::Tcp,
        "0.0.0.0",
        4444,
        0,
        "nc",
        "/usr/bin/nc",
    ));
    assert_eq!(judge_unseen(&policy, &exposed), Ok((4, Action::Deny)));
}

#[test]
fn an_unevaluated_deny_rule_is_said_only_when_it_could_deny_what_is_otherwise_allowed() {
    let text = |default: &str, rules: &str| {
        parse(&Source::from_text(
            "p.toml",
            &format!("default = \"{default}\"\n{rules}"),
        ))
        .unwrap()
    };
    let deny_nc = "[[rule]]\naction = \"deny\"\nprogram = \"nc\"\n";
    let allow_web = "[[rule]]\naction = \"allow\"\nport = 8080\nexe = \"/usr/sbin/*\"\n";
    let l = unseen(listener(
        Protocol::Tcp,
        "0.0.0.0",
        8080,
        33,
        "nginx",
        "/usr/sbin/nginx",
    ));
    // A safety net on a permissive policy: whether nc holds it cannot be told.
    assert_eq!(
        judge_unseen(&text("allow", deny_nc), &l),
        Err((vec![1], true))
    );
    // The deny before an allow that could not be told either: the deny matters.
    let both = format!("{deny_nc}{allow_web}");
    assert_eq!(
        judge_unseen(&text("deny", &both), &l),
        Err((vec![1, 2], true))
    );
    // After the allow, it decides nothing the default would not: denied either way.
    let after = format!("{allow_web}{deny_nc}");
    assert_eq!(
        judge_unseen(&text("deny", &after), &l),
        Err((vec![1, 2], false))
    );
    // Every rule it could hang on denies, as the default does: denied, whatever holds it.
    assert_eq!(
        judge_unseen(&text("deny", deny_nc), &l),
        Ok((0, Action::Deny))
    );
    // Likewise allowed: an allow rule before the allowing default.
    assert_eq!(
        judge_unseen(&text("allow", allow_web), &l),
        Ok((0, Action::Allow))
    );
    // Holders seen and none is nc: decided, never unknown.
    let seen = listener(
        Protocol::Tcp,
        "0.0.0.0",
        8080,
        33,
        "nginx",
        "/usr/sbin/nginx",
    );
    assert!(matches!(
        text("allow", deny_nc).judge(&seen.0, &seen.1, Unseen::NOTHING),
        Outcome::Decided(Decision::Default(Action::Allow))
    ));
}

#[test]
fn a_reach_the_unread_rules_cannot_tell_is_unknown_but_unknown_is_what_lsports_says() {
    use reach::Verdict::{Filtered, Local, Open, Unknown};
    let read = |text: &str| parse(&Source::from_text("p.toml", text)).unwrap();
    let unread = Unseen {
        holders: false,
        reach: true,
    };
    let reach_unknown = Match::Unknown(unread);
    let rule = |policy: &Policy| policy.rules[0].matcher.clone();
    let deny_open = rule(&read("[[rule]]\naction = \"deny\"\nreach = \"open\"\n"));
    let allow_filtered = rule(&read(
        "[[rule]]\naction = \"allow\"\nreach = \"filtered\"\n",
    ));
    let deny_unknown = rule(&read("[[rule]]\naction = \"deny\"\nreach = \"unknown\"\n"));
    // The rules could not be read (unprivileged, nft missing): every verdict is unknown, and
    // the real one could be any.
    let (e, i) = reaching(Unknown, Unknown);
    assert_eq!(deny_open.evaluate(&e, &i, unread), reach_unknown);
    assert_eq!(allow_filtered.evaluate(&e, &i, unread), reach_unknown);
    // What lsports says of it is still "unknown".
    assert_eq!(deny_unknown.evaluate(&e, &i, unread), Match::Yes);
    // Read, but a rule lsports cannot evaluate (as root): the verdict "unknown" is all there
    // is, and a rule asking "open" or "filtered" does not match it.
    assert_eq!(deny_open.evaluate(&e, &i, Unseen::NOTHING), Match::No);
    assert_eq!(allow_filtered.evaluate(&e, &i, Unseen::NOTHING), Match::No);
    assert_eq!(deny_unknown.evaluate(&e, &i, Unseen::NOTHING), Match::Yes);
    // A family the rules do not decide (loopback, `local`) settles what it can: open over
    // no family is no match for the deny, and not every family is filtered for the allow.
    let (e, i) = reaching(Local, Unknown);
    assert_eq!(deny_open.evaluate(&e, &i, unread), reach_unknown);
    assert_eq!(allow_filtered.evaluate(&e, &i, unread), Match::No);
    let (e, i) = reaching(Open, Unknown);
    assert_eq!(deny_open.evaluate(&e, &i, unread), Match::Yes);
    let (e, i) = reaching(Filtered, Unknown);
    assert_eq!(allow_filtered.evaluate(&e, &i, unread), reach_unknown);
    // A rule that settles nothing else decides as ever: another port is no match.
    let other_port = rule(&read(
        "[[rule]]\naction = \"deny\"\nport = 22\nreach = \"open\"\n",
    ));
    let (e, i) = reaching(Unknown, Unknown);
    assert_eq!(other_port.evaluate(&e, &i, unread), Match::No);
    // A deny on reach with an allowing default: judged, it hangs on that rule and may deny.
    let net = read("default = \"allow\"\n[[rule]]\naction = \"deny\"\nreach = \"open\"\n");
    let Outcome::Undecided {
        rules,
        deny_unevaluated,
        unseen,
        ..
    } = net.judge(&e, &i, unread)
    else {
        panic!("decided");
    };
    assert_eq!(rules.iter().map(|r| r.number).collect::<Vec<_>>(), [1]);
    assert!(deny_unevaluated);
    assert_eq!(unseen, unread);
}
