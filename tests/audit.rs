//! `lsports baseline save` and `lsports audit` in private network namespaces: a baseline is
//! saved, listeners come, go and restart, and the audit's exit status and report say exactly
//! what changed. Policies allow and deny as written; a listener whose binary was deleted, or
//! lives where anyone can write, is flagged.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

/// The world every test starts from: an "sshd" on TCP and a "dnsmasq" on UDP, fixed ports.
fn base_world() -> World {
    World::start(&json!([
        group_with("tcp", "0.0.0.0", "sshd", json!({"port": 18022})),
        group_with("udp", "0.0.0.0", "dnsmasq", json!({"port": 18053})),
    ]))
}

/// A file in the world's directory, as a string for scripts and arguments.
fn world_file(world: &World, name: &str) -> String {
    world.dir().join(name).to_str().unwrap().to_string()
}

/// Shell lines that run lsports with `args` and print `=== name`, its stdout, and `rc=N`.
fn run_section(name: &str, args: &str) -> String {
    format!("echo '=== {name}'; $LSPORTS {args} 2>>\"$WORLD_DIR/{name}.err\"; echo \"rc=$?\"\n")
}

/// The exit status a section printed last.
fn rc(section: &str) -> i32 {
    let line = section
        .lines()
        .rev()
        .find(|l| l.starts_with("rc="))
        .expect("rc= line");
    line[3..].parse().unwrap()
}

#[test]
fn a_new_listener_fails_the_audit_and_is_named() {
    let world = base_world();
    let baseline = world_file(&world, "baseline.toml");
    let saved = world.run(&["baseline", "save", &baseline]);
    assert_success(&saved, &["baseline", "save"]);
    assert!(
        stderr(&saved).contains("saved 2 listeners"),
        "{}",
        stderr(&saved)
    );
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        text.contains(
            r#"{ proto = "tcp", address = "0.0.0.0", port = 18022, user = "root", program = "sshd""#
        ),
        "{text}"
    );
    let intruder = Listener::new("intruder", json!([{"addr": "0.0.0.0", "port": 18099}]));
    let script = format!(
        "{before}{start}{after}{json}{stop}",
        before = run_section("before", &format!("audit --baseline {baseline}")),
        start = intruder.start(None),
        after = run_section("after", &format!("audit --baseline {baseline}")),
        json = run_section(
            "json",
            &format!("audit --baseline {baseline} --format json")
        ),
        stop = intruder.stop(),
    );
    let (sections, err) = world.script_sections(&script);
    assert_eq!(rc(&sections["before"]), 0, "{sections:?}\n{err}");
    assert!(
        sections["before"].starts_with("lsports audit: OK: 0 unexpected, 0 missing"),
        "{sections:?}"
    );
    let after = &sections["after"];
    assert_eq!(rc(after), 1, "{after}");
    assert!(
        after.starts_with("lsports audit: FAIL: 1 unexpected"),
        "{after}"
    );
    let row = after
        .lines()
        .find(|l| l.contains("0.0.0.0:18099"))
        .expect("the intruder's row");
    assert!(
        row.contains("/intruder") && row.ends_with("not in the baseline"),
        "{row}"
    );
    let json = &sections["json"];
    assert_eq!(rc(json), 1);
    let report: Value = serde_json::from_str(json.rsplit_once("rc=").unwrap().0).unwrap();
    assert_eq!(report["result"], "fail");
    let unexpected = report["unexpected"].as_array().unwrap();
    assert_eq!(unexpected.len(), 1, "{report}");
    assert_eq!(unexpected[0]["listener"]["port"], 18099);
    assert_eq!(
        unexpected[0]["listener"]["processes"][0]["name"],
        "intruder"
    );
    assert_eq!(unexpected[0]["reasons"][0]["reason"], "new");
}

#[test]
fn a_removed_listener_is_reported_missing() {
    let world = base_world();
    let baseline = world_file(&world, "baseline.toml");
    let temp = Listener::new("temporary", json!([{"addr": "127.0.0.1", "port": 18098}]));
    let script = format!(
        "{start}{save}{stop}{audit}{strict}",
        start = temp.start(None),
        save = run_section("save", &format!("baseline save {baseline}")),
        stop = temp.stop(),
        audit = run_section("audit", &format!("audit --baseline {baseline}")),
        strict = run_section(
            "strict",
            &format!("audit --baseline {baseline} --fail-on missing")
        ),
    );
    let (sections, _) = world.script_sections(&script);
    assert_eq!(rc(&sections["save"]), 0);
    let audit = &sections["audit"];
    // Reported, but by default only unexpected listeners fail the audit.
    assert_eq!(rc(audit), 0, "{audit}");
    assert!(
        audit.starts_with("lsports audit: OK: 0 unexpected, 1 missing"),
        "{audit}"
    );
    let row = audit
        .lines()
        .find(|l| l.contains("127.0.0.1:18098"))
        .expect("missing row");
    assert!(
        row.contains("temporary") && row.ends_with("nothing listens there now"),
        "{row}"
    );
    assert!(
        row.contains("baseline.toml:"),
        "names the baseline line: {row}"
    );
    assert_eq!(rc(&sections["strict"]), 1, "{}", sections["strict"]);
}

#[test]
fn the_same_program_restarted_with_a_new_pid_is_expected() {
    let world = base_world();
    let baseline = world_file(&world, "baseline.toml");
    let daemon = Listener::new(
        "daemon",
        json!([{"addr": "::", "port": 18097, "v6only": false}]),
    );
    let script = format!(
        "{start}echo \"=== first\"; echo ${var}\n{save}{stop}{again}echo \"=== second\"; echo ${var}\n{audit}{stop}",
        start = daemon.start(None),
        var = daemon.var,
        save = run_section("save", &format!("baseline save {baseline}")),
        stop = daemon.stop(),
        again = daemon.start(None),
        audit = run_section(
            "audit",
            &format!("audit --baseline {baseline} --format json")
        ),
    );
    let (sections, _) = world.script_sections(&script);
    assert_ne!(
        sections["first"].trim(),
        sections["second"].trim(),
        "a new pid"
    );
    let audit = &sections["audit"];
    assert_eq!(rc(audit), 0, "{audit}");
    let report: Value = serde_json::from_str(audit.rsplit_once("rc=").unwrap().0).unwrap();
    assert_eq!(report["unexpected"], json!([]));
    assert_eq!(report["missing"], json!([]));
    assert_eq!(report["listeners"], 3);
}

#[test]
fn another_program_on_an_expected_port_is_unexpected() {
    let world = World::start(&json!([]));
    let baseline = world_file(&world, "baseline.toml");
    let real = Listener::new("sshd", json!([{"addr": "0.0.0.0", "port": 18096}]));
    let fake = Listener::new("imposter", json!([{"addr": "0.0.0.0", "port": 18096}]));
    let script = format!(
        "{start}{save}{stop}{fake}{audit}{fake_stop}",
        start = real.start(None),
        save = run_section("save", &format!("baseline save {baseline}")),
        stop = real.stop(),
        fake = fake.start(None),
        audit = run_section("audit", &format!("audit --baseline {baseline}")),
        fake_stop = fake.stop(),
    );
    let (sections, _) = world.script_sections(&script);
    let audit = &sections["audit"];
    assert_eq!(rc(audit), 1, "{audit}");
    // A change, not a new listener plus a missing one.
    assert!(
        audit.starts_with("lsports audit: FAIL: 1 unexpected, 0 missing"),
        "{audit}"
    );
    let row = audit.lines().find(|l| l.contains(":18096")).unwrap();
    assert!(
        row.contains("/imposter") && row.contains("the baseline expects sshd ("),
        "{row}"
    );
}

const POLICY: &str = r#"
default = "deny"

[[rule]]
name = "ssh"
action = "allow"
proto = "tcp"
port = 18022
program = "sshd"
required = true

[[rule]]
name = "dns"
action = "allow"
proto = "udp"
port = 18053
program = "dnsmasq"

[[rule]]
name = "loopback by root"
action = "allow"
exposure = "loopback"
user = "root"

[[rule]]
name = "nothing else exposed"
action = "deny"
exposure = "external"
"#;

#[test]
fn a_policy_allows_and_denies_as_written() {
    let world = base_world();
    let policy = world_file(&world, "policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let local = Listener::new("local", json!([{"addr": "127.0.0.1", "port": 18095}]));
    let exposed = Listener::new("exposed", json!([{"addr": "0.0.0.0", "port": 18094}]));
    let imposter = Listener::new(
        "sshd",
        json!([{"proto": "udp", "addr": "0.0.0.0", "port": 18022}]),
    );
    let script = format!(
        "{a}{local}{b}{exposed}{imposter}{c}",
        a = run_section("base", &format!("audit --policy {policy}")),
        local = local.start(None),
        b = run_section("local", &format!("audit --policy {policy}")),
        exposed = exposed.start(None),
        imposter = imposter.start(None),
        c = run_section("exposed", &format!("audit --policy {policy}")),
    );
    let (sections, err) = world.script_sections(&script);
    assert_eq!(rc(&sections["base"]), 0, "{sections:?}\n{err}");
    assert_eq!(
        rc(&sections["local"]),
        0,
        "rule 3 allows loopback by root: {sections:?}"
    );
    let exposed = &sections["exposed"];
    assert_eq!(rc(exposed), 1, "{exposed}");
    assert!(
        exposed.starts_with("lsports audit: FAIL: 2 unexpected"),
        "{exposed}"
    );
    let denied = |port: &str| {
        let row = exposed
            .lines()
            .find(|l| l.contains(port))
            .unwrap_or_else(|| panic!("{port}: {exposed}"));
        assert!(
            row.ends_with(&format!(
                "denied by rule 4 \"nothing else exposed\" ({policy}:25)"
            )),
            "{row}"
        );
    };
    denied("0.0.0.0:18094");
    // The right name on the wrong protocol is not the allowed sshd.
    denied("0.0.0.0:18022  ");
    assert!(!exposed.contains("18095"), "{exposed}");
}

#[test]
fn a_required_rule_without_listener_fails() {
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "web",
        json!({"port": 18080})
    )]));
    let policy = world_file(&world, "policy.toml");
    std::fs::write(
        &policy,
        POLICY.replace("default = \"deny\"", "default = \"allow\""),
    )
    .unwrap();
    let out = world.run(&["audit", "--policy", &policy]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("lsports audit: FAIL: 0 unexpected, 1 missing"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "rule 1 \"ssh\" ({policy}:4) is required, and no listener matches it"
        )),
        "{text}"
    );
}

#[test]
fn broken_files_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("b.toml");
    std::fs::write(
        &baseline,
        "version = 1\nlisteners = [\n  { proto = \"tcp\", address = \"0.0.0.0\", port = 22 },\n  { proto = \"tcp\", address = \"0.0.0.0\", port = \"ssh\" },\n]\n",
    )
    .unwrap();
    let b = baseline.to_str().unwrap();
    let out = run_host(&["audit", "--baseline", b]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out).trim_end(),
        format!("lsports: {b}:4: port must be a number from 0 to 65535, or \"ephemeral\"")
    );
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[[rule]]\naction = \"allow\"\n\n[[rule]]\naction = \"allow\"\nprogram = \"x\"\nprot = \"tcp\"\n").unwrap();
    let p = policy.to_str().unwrap();
    let out = run_host(&["audit", "--policy", p]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with(&format!("lsports: {p}:7: unknown field `prot`")),
        "{}",
        stderr(&out)
    );
    let out = run_host(&["audit", "--baseline", "/nonexistent/b.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("lsports: cannot read baseline /nonexistent/b.toml: "));
}

#[test]
fn baseline_save_is_atomic_and_refuses_to_overwrite() {
    let world = base_world();
    let dir = world.dir().join("out");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("b.toml");
    let f = file.to_str().unwrap();
    std::fs::write(&file, "precious").unwrap();
    let out = world.run(&["baseline", "save", f]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already exists; pass --force to replace it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
    let out = world.run(&["baseline", "save", "--force", f]);
    assert_success(&out, &["baseline", "save", "--force"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("port = 18053"), "{text}");
    // Nothing but the baseline is left in the directory: no temporary file.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["b.toml"]);
    // `-` writes to standard output, the same text but for the time.
    let out = world.run(&["baseline", "save", "-"]);
    assert_success(&out, &["baseline", "save", "-"]);
    let listeners = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("  {"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(listeners(&stdout(&out)), listeners(&text));
}

/// Not a test of its own: with `LSPORTS_TEST_LISTEN=PORT` and `LSPORTS_TEST_READY=FILE` set
/// (by a copy of this binary, started from a test's script) it listens on PORT, creates FILE,
/// and sleeps until its parent shell exits.
#[test]
fn listener_helper() {
    let (Some(port), Some(ready)) = (
        std::env::var_os("LSPORTS_TEST_LISTEN"),
        std::env::var_os("LSPORTS_TEST_READY"),
    ) else {
        return;
    };
    // SAFETY: prctl(PR_SET_PDEATHSIG) with a signal number; no memory is passed.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let port: u16 = port.to_str().unwrap().parse().unwrap();
    let _listener = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    std::fs::write(&ready, b"").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(120));
}

/// Copy this test binary to `dir/name`, to run as a listener whose executable we control.
fn copy_of_this_binary(dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Shell lines that start `binary` as a listener on `port` and wait until it listens.
fn start_helper(binary: &Path, port: u16, world: &World) -> String {
    let ready = world.dir().join(format!("helper-{port}.ready"));
    let ready = ready.to_str().unwrap();
    format!(
        "LSPORTS_TEST_LISTEN={port} LSPORTS_TEST_READY={ready} {bin} --exact listener_helper --nocapture --test-threads=1 >/dev/null 2>&1 &\n\
         for _ in $(seq 1200); do [ -e {ready} ] && break; sleep 0.05; done\n\
         [ -e {ready} ] || {{ echo 'helper on {port} not ready' >&2; exit 96; }}\n",
        bin = binary.display(),
    )
}

/// Where the test's binaries go: the target's scratch directory, unless the checkout itself
/// is under a temporary directory (CI may clone anywhere), which would raise
/// `exe-writable-dir` for every copy; then, as root, a directory under `/var/lib`.
fn scratch_parent() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let temporary = ["/tmp", "/var/tmp", "/dev/shm"]
        .iter()
        .any(|t| target.starts_with(t));
    if temporary && is_root() {
        let dir = PathBuf::from("/var/lib/lsports-tests");
        std::fs::create_dir_all(&dir).unwrap();
        return dir;
    }
    target
}

#[test]
fn a_deleted_or_planted_executable_is_flagged() {
    let world = World::start(&json!([]));
    // One copy in a private directory, deleted once it runs; one in a directory anyone may
    // write to. Neither is under /tmp, so each flag has one cause.
    let scratch = tempfile::Builder::new()
        .prefix("lsports-audit-")
        .tempdir_in(scratch_parent())
        .unwrap();
    let private = scratch.path().join("private");
    let open = scratch.path().join("open");
    std::fs::create_dir(&private).unwrap();
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let doomed = copy_of_this_binary(&private, "vanishing");
    let planted = copy_of_this_binary(&open, "planted");
    let policy = world_file(&world, "allow-all.toml");
    std::fs::write(&policy, "default = \"allow\"\n").unwrap();
    let script = format!(
        "{a}{b}rm {doomed}\n{audit}{report}",
        a = start_helper(&doomed, 18091, &world),
        b = start_helper(&planted, 18092, &world),
        doomed = doomed.display(),
        audit = run_section("audit", &format!("audit --policy {policy}")),
        report = run_section(
            "none",
            &format!("audit --policy {policy} --fail-on none --format json")
        ),
    ) + &run_section("column", "-tln --port 18091,18092 -H -o port,flags");
    let (sections, err) = world.script_sections(&script);
    let audit = &sections["audit"];
    // Allowed by the policy, but the flags fail the audit by default.
    expect_summary(
        audit,
        1,
        "lsports audit: FAIL: 0 unexpected, 0 missing, 2 suspicious",
        &err,
    );
    let flag = |port: &str, name: &str| -> String {
        audit
            .lines()
            .find(|l| l.contains(port) && l.contains(name))
            .unwrap_or_else(|| panic!("no {name} row for {port}:\n{audit}"))
            .to_string()
    };
    let deleted = flag("0.0.0.0:18091", "exe-deleted");
    assert!(
        deleted.contains(&format!(
            "executable {} was deleted or replaced after it started",
            doomed.display()
        )),
        "{deleted}"
    );
    let planted_row = flag("0.0.0.0:18092", "exe-writable-dir");
    assert!(
        planted_row.contains(&format!(
            "is under {}, a directory every user can write to",
            open.display()
        )),
        "{planted_row}"
    );
    // The same flags as a listing column (root-exposed too: root holds both, on 0.0.0.0).
    let column = &sections["column"];
    assert_eq!(rc(column), 0, "{column}");
    let rows: Vec<&str> = column.lines().filter(|l| !l.starts_with("rc=")).collect();
    assert_eq!(
        rows,
        [
            "18091  exe-deleted,root-exposed",
            "18092  exe-writable-dir,root-exposed"
        ],
        "{column}"
    );
    // --fail-on none still reports them, without failing.
    let none = &sections["none"];
    assert_eq!(rc(none), 0, "{none}");
    let report: Value = serde_json::from_str(none.rsplit_once("rc=").unwrap().0).unwrap();
    let mut flags: Vec<(u64, String, bool)> = report["suspicious"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let port = s["listener"]["port"].as_u64().unwrap();
            s["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |f| {
                    (
                        port,
                        f["flag"].as_str().unwrap().to_string(),
                        f["fails"].as_bool().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .filter(|(_, flag, _)| flag != "root-exposed")
        .collect();
    flags.sort();
    assert_eq!(
        flags,
        [
            (18091, "exe-deleted".to_string(), false),
            (18092, "exe-writable-dir".to_string(), false)
        ]
    );
}

#[test]
fn ephemeral_udp_client_sockets_do_not_flap() {
    let world = base_world();
    let baseline = world_file(&world, "baseline.toml");
    // A resolver-like UDP socket on a port of the ephemeral range, here then elsewhere.
    let first = Listener::new(
        "resolver",
        json!([{"proto": "udp", "addr": "0.0.0.0", "port": 45001}]),
    );
    let second = Listener::new(
        "resolver",
        json!([{"proto": "udp", "addr": "0.0.0.0", "port": 45002}]),
    );
    let script = format!(
        "echo '=== range'; cat /proc/sys/net/ipv4/ip_local_port_range\n{a}{save}{a_stop}{b}{moved}{b_stop}{gone}",
        a = first.start(None),
        save = run_section("save", &format!("baseline save {baseline}")),
        a_stop = first.stop(),
        b = second.start(None),
        moved = run_section(
            "moved",
            &format!("audit --baseline {baseline} --fail-on missing")
        ),
        b_stop = second.stop(),
        gone = run_section(
            "gone",
            &format!("audit --baseline {baseline} --fail-on missing")
        ),
    );
    let (sections, _) = world.script_sections(&script);
    let range: Vec<u32> = sections["range"]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        range[0] <= 45001 && 45002 <= range[1],
        "test ports outside the range {range:?}"
    );
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        text.contains(r#"port = "ephemeral", user = "root", program = "resolver""#),
        "{text}"
    );
    assert_eq!(rc(&sections["moved"]), 0, "{}", sections["moved"]);
    assert_eq!(
        rc(&sections["gone"]),
        0,
        "never missing: {}",
        sections["gone"]
    );
}

#[test]
fn audit_reads_a_snapshot_as_the_live_system() {
    let world = base_world();
    let baseline = world_file(&world, "baseline.toml");
    let snapshot = world_file(&world, "snap.tar");
    assert_success(
        &world.run(&["baseline", "save", &baseline]),
        &["baseline", "save"],
    );
    assert_success(&world.run(&["capture", &snapshot]), &["capture"]);
    // On the host, outside the namespace: the snapshot is what is audited.
    let out = run_host(&["--snapshot", &snapshot, "audit", "--baseline", &baseline]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).starts_with("lsports audit: OK: 0 unexpected, 0 missing"),
        "{}",
        stdout(&out)
    );
}

/// The dnsmasq case: a DHCP socket bound to one device (`SO_BINDTODEVICE`, here a veth) is
/// not the listener that takes the same port on every device. The baseline records the
/// binding, the audit tells the two apart, and the Missing row keeps the `%device`.
#[test]
fn a_listener_bound_to_a_device_is_not_the_one_on_every_device() {
    let world = base_world();
    let baseline = world_file(&world, "baseline.toml");
    let on_veth = json!([{"proto": "udp", "addr": "0.0.0.0", "port": 18067, "device": "lspv0"}]);
    let everywhere = json!([{"proto": "udp", "addr": "0.0.0.0", "port": 18067}]);
    let (bound, unbound) = (
        Listener::new("dhcpd", on_veth),
        Listener::new("dhcpd", everywhere),
    );
    let script = format!(
        "ip link add lspv0 type veth peer name lspv1\nip link set lspv0 up\nip link set lspv1 up\n\
         {start}{save}echo '=== file'; cat {baseline}\n{same}{stop}{again}{moved}{moved_json}{stop_again}",
        start = bound.start(None),
        save = run_section("save", &format!("baseline save {baseline}")),
        same = run_section("same", &format!("audit --baseline {baseline}")),
        stop = bound.stop(),
        again = unbound.start(None),
        moved = run_section("moved", &format!("audit --baseline {baseline}")),
        moved_json = run_section(
            "moved_json",
            &format!("audit --baseline {baseline} --format json")
        ),
        stop_again = unbound.stop(),
    );
    let (sections, _) = world.script_sections(&script);
    assert_eq!(rc(&sections["save"]), 0, "{}", sections["save"]);
    let line = sections["file"]
        .lines()
        .find(|l| l.contains("port = 18067"))
        .expect("the bound listener's line");
    assert!(
        line.contains(r#"address = "0.0.0.0", port = 18067, interface = "lspv0""#),
        "the binding is recorded: {line}"
    );
    assert_eq!(rc(&sections["same"]), 0, "{}", sections["same"]);
    let moved = &sections["moved"];
    assert_eq!(rc(moved), 1, "{moved}");
    assert!(
        moved.starts_with("lsports audit: FAIL: 1 unexpected, 1 missing"),
        "{moved}"
    );
    let row = |section: &str| -> String {
        let (_, rest) = moved.split_once(&format!("\n{section}")).unwrap();
        let row = rest.lines().find(|l| l.contains(":18067")).unwrap();
        row.to_string()
    };
    let unexpected = row("Unexpected");
    assert!(
        unexpected.contains(" 0.0.0.0:18067 ") && unexpected.ends_with("not in the baseline"),
        "{unexpected}"
    );
    let missing = row("Missing");
    assert!(missing.contains(" 0.0.0.0%lspv0:18067 "), "{missing}");
    let json_text = sections["moved_json"].rsplit_once("rc=").unwrap().0;
    let report: Value = serde_json::from_str(json_text).unwrap();
    assert_valid_as(&report, "audit_report", "audit --format json");
    let listener = &report["unexpected"][0]["listener"];
    assert_eq!(
        (&listener["local_port"], &listener["interface"]),
        (&json!(18067), &Value::Null)
    );
    let gone = &report["missing"][0];
    assert_eq!(
        (&gone["address"], &gone["port"], &gone["interface"]),
        (&json!("0.0.0.0"), &json!(18067), &json!("lspv0")),
        "{gone}"
    );
}

/// Shell lines that run lsports `args` as nobody (no groups, no capabilities) and print
/// `=== name`, its stdout, and `rc=N`.
fn run_section_as_nobody(name: &str, args: &str) -> String {
    format!(
        "echo '=== {name}'; setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
         $LSPORTS {args} 2>>\"$WORLD_DIR/{name}.err\"; echo \"rc=$?\"\n"
    )
}

/// The row of `section` that holds `place` (`0.0.0.0:18022`).
/// The exit status a section's `rc=` line gives, and how its audit summary starts (`err`: the
/// script's stderr, shown when the status is not the one wanted).
fn expect_summary(section: &str, status: i32, summary: &str, err: &str) {
    assert_eq!(rc(section), status, "{section}\n{err}");
    assert!(section.starts_with(summary), "{section}");
}

fn row_of<'a>(section: &'a str, place: &str) -> &'a str {
    let at = format!(" {place} ");
    (section.lines().find(|l| l.contains(&at))).unwrap_or_else(|| panic!("{place}: {section}"))
}

#[test]
fn an_unprivileged_audit_decides_what_the_socket_settles_and_says_what_it_could_not() {
    if !need_root("auditing root's listeners as nobody") {
        return;
    }
    // Root's sshd (tcp 18022) and dnsmasq (udp 18053), and nobody's own web server.
    let world = base_world();
    let files = tempfile::tempdir().unwrap();
    std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let policy = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path.to_str().unwrap().to_string()
    };
    // A safety net on a permissive policy: a deny rule that looks at the holder.
    let net = policy(
        "net.toml",
        "default = \"allow\"\n\n[[rule]]\nname = \"no sshd here\"\naction = \"deny\"\n\
         program = \"sshd\"\n",
    );
    // An allowlist naming programs, then the socket's own keys.
    let allowlist = policy(
        "allowlist.toml",
        "default = \"deny\"\n\n[[rule]]\nname = \"ssh\"\naction = \"allow\"\nport = 18022\n\
         program = \"sshd\"\nrequired = true\n\n[[rule]]\nname = \"no dns\"\naction = \"deny\"\n\
         proto = \"udp\"\nport = 18053\n\n[[rule]]\nname = \"nobody's\"\naction = \"allow\"\n\
         user = \"nobody\"\n",
    );
    let web = Listener::new("web", json!([{"addr": "0.0.0.0", "port": 18090}]));
    let script = format!(
        "{start}{a}{b}{c}{d}{e}",
        start = web.start(Some(65534)),
        a = run_section("net root", &format!("audit --policy {net}")),
        b = run_section_as_nobody("net nobody", &format!("audit --policy {net}")),
        c = run_section_as_nobody("net json", &format!("audit --policy {net} --json")),
        d = run_section("allowlist root", &format!("audit --policy {allowlist}")),
        e = run_section_as_nobody("allowlist nobody", &format!("audit --policy {allowlist}")),
    );
    let (sections, err) = world.script_sections(&script);

    // As root the deny rule fires on sshd.
    let root = &sections["net root"];
    assert_eq!(rc(root), 1, "{root}\n{err}");
    assert!(
        row_of(root, "0.0.0.0:18022")
            .ends_with(&format!("denied by rule 1 \"no sshd here\" ({net}:3)")),
        "{root}"
    );
    // As nobody it cannot: root's two listeners are not checked, and the audit, though
    // nothing is unexpected, does not pass (exit 2). nobody's own listener is judged.
    let nobody = &sections["net nobody"];
    expect_summary(
        nobody,
        2,
        "lsports audit: INCOMPLETE: 0 unexpected, 0 missing, 0 suspicious, 2 not checked \
             (3 listeners;",
        &err,
    );
    assert!(
        nobody.contains(
            "\nNot checked, so the audit cannot pass (exit 2): a deny rule looks at the holder, \
             which could not be inspected (run as root, or grant CAP_DAC_READ_SEARCH and \
             CAP_SYS_PTRACE)\n"
        ),
        "{nobody}"
    );
    for place in ["0.0.0.0:18022", "0.0.0.0:18053"] {
        let row = row_of(nobody, place);
        assert!(
            row.contains(" -  root ")
                && row.ends_with(&format!(
                    "rule 1 \"no sshd here\" ({net}:3) would deny it if its holder is what the \
                     rule names; otherwise allowed by the policy's default"
                )),
            "{row}"
        );
    }
    assert!(!nobody.contains("18090"), "{nobody}");
    let report: Value = serde_json::from_str(sections["net json"].rsplit_once("rc=").unwrap().0)
        .unwrap_or_else(|e| panic!("{e}: {sections:?}"));
    assert_valid_as(&report, "audit_report", "(nobody) audit --json");
    assert_eq!(
        (&report["result"], &report["exit_status"]),
        (&json!("incomplete"), &json!(2)),
        "{report:#}"
    );
    let not_checked = report["not_checked"].as_array().unwrap();
    let mut ports: Vec<(u64, &Value, &Value)> = not_checked
        .iter()
        .map(|n| {
            (
                n["port"].as_u64().unwrap(),
                &n["blocks_pass"],
                &n["rule"]["number"],
            )
        })
        .collect();
    ports.sort_by_key(|p| p.0);
    assert_eq!(
        ports,
        [
            (18022, &json!(true), &json!(1)),
            (18053, &json!(true), &json!(1))
        ],
        "{report:#}"
    );
    assert_eq!(
        not_checked[0]["listener"]["processes"],
        json!([]),
        "{report:#}"
    );

    // An allowlist: as root, sshd is allowed and dnsmasq denied by a rule on the socket.
    let root = &sections["allowlist root"];
    assert_eq!(rc(root), 1, "{root}");
    assert!(
        row_of(root, "0.0.0.0:18053")
            .ends_with(&format!("denied by rule 2 \"no dns\" ({allowlist}:10)")),
        "{root}"
    );
    // As nobody the same deny is decided (it looks at no holder); whether sshd is the program
    // on 18022 cannot be told (nor whether nobody holds root's socket), which is reported,
    // not held against it, and the required rule is not missing; nobody's own listener is
    // allowed by its user.
    let nobody = &sections["allowlist nobody"];
    assert_eq!(rc(nobody), 1, "{nobody}");
    assert!(
        nobody.starts_with(
            "lsports audit: FAIL: 1 unexpected, 0 missing, 0 suspicious, 2 not checked"
        ),
        "{nobody}"
    );
    assert!(
        row_of(nobody, "0.0.0.0:18053")
            .ends_with(&format!("denied by rule 2 \"no dns\" ({allowlist}:10)")),
        "{nobody}"
    );
    assert!(
        row_of(nobody, "0.0.0.0:18022").ends_with(&format!(
            "rule 1 \"ssh\" ({allowlist}:3) would allow it, rule 3 \"nobody's\" \
             ({allowlist}:16) would allow it if its holder is what they name; otherwise denied \
             by the policy's default"
        )),
        "{nobody}"
    );
    assert!(
        nobody.contains(&format!(
            "rule 1 \"ssh\" ({allowlist}:3) is required: no listener surely matches it, but one \
             whose holder could not be seen might"
        )),
        "{nobody}"
    );
    assert!(
        nobody.contains("\nNot checked, reported only: something listens there, but the process holding it could not be inspected"),
        "{nobody}"
    );
    assert!(!nobody.contains("18090"), "{nobody}");
}

/// A proc root (`--proc-root`) whose one process, pid 100, holds a TCP listener on
/// 127.0.0.1:8080 (inode 1001) under the name `comm` (raw bytes) running `exe` (raw bytes).
fn proc_root_with(dir: &Path, comm: &[u8], exe: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let root = dir.join("proc");
    let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when \
                  retrnsmt   uid  timeout inode\n";
    let row = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     \
               0        0 1001 1 0000000000000000 100 0 0 10 0\n";
    std::fs::create_dir_all(root.join("net")).unwrap();
    std::fs::write(root.join("net/tcp"), format!("{header}{row}")).unwrap();
    std::fs::write(root.join("net/udp"), header).unwrap();
    std::fs::create_dir_all(root.join("100/fd")).unwrap();
    std::os::unix::fs::symlink("socket:[1001]", root.join("100/fd/3")).unwrap();
    std::fs::write(root.join("100/comm"), [comm, b"\n"].concat()).unwrap();
    std::fs::write(
        root.join("100/cmdline"),
        [exe, b"\0--port\08080\0"].concat(),
    )
    .unwrap();
    std::fs::write(root.join("100/status"), "Uid:\t0\t0\t0\t0\n").unwrap();
    let target = std::ffi::OsStr::from_bytes(exe);
    std::os::unix::fs::symlink(target, root.join("100/exe")).unwrap();
    root
}

#[test]
fn a_hostile_name_is_written_safely_everywhere_and_a_baseline_of_it_matches_again() {
    let dir = tempfile::tempdir().unwrap();
    // Quote, backslash, an escape sequence, a byte that is not UTF-8, a tab, a bidi override.
    let comm = b"x\"y\\z\x1b[2J\xff\t";
    let exe = "/opt/ev\"il \\ \x1b[31m\u{202e}"
        .as_bytes()
        .iter()
        .chain(b"\xfe")
        .copied();
    let exe: Vec<u8> = exe.collect();
    let root = proc_root_with(dir.path(), comm, &exe);
    let run = |args: &[&str]| {
        let mut cmd = scrubbed(lsports_bin());
        cmd.arg("--proc-root")
            .arg(&root)
            .args(["--source", "proc"])
            .args(args);
        let out = output_guarded(cmd, &format!("lsports {args:?}"));
        assert_terminal_safe(&format!("{args:?} stdout"), &out.stdout);
        assert_terminal_safe(&format!("{args:?} stderr"), &out.stderr);
        out
    };

    // The listing's JSON: the name as the process has it, lossy where it is not UTF-8.
    let listing = parse_json(&run(&["-lt", "--json"]).stdout);
    let process = &listing[0]["processes"][0];
    assert_eq!(
        process["name"],
        json!(String::from_utf8_lossy(comm)),
        "{listing:#}"
    );
    assert_eq!(
        process["exe"],
        json!(String::from_utf8_lossy(&exe)),
        "{listing:#}"
    );

    // The baseline: safe to cat, and read back as it was written.
    let baseline = dir.path().join("baseline.toml");
    let saved = run(&["baseline", "save", "-t", baseline.to_str().unwrap()]);
    assert_success(&saved, &["baseline save"]);
    let text = std::fs::read(&baseline).unwrap();
    assert_terminal_safe("the baseline file", &text);
    let recorded = lsports::actions::audit::load_baseline(&baseline).unwrap();
    let line = &recorded.expected[0];
    let (program, exe_text) = (line.program.clone().unwrap(), line.exe.clone().unwrap());
    assert_eq!(program, r#"x"y\\z\e[2J\xFF\t"#);
    assert_eq!(exe_text, r#"/opt/ev"il \\ \e[31m\u{202E}\xFE"#);

    // The next audit matches it: nothing new, nothing missing; live and from a snapshot.
    let audit = ["audit", "-t", "--fail-on", "missing", "--baseline"];
    let audit = [&audit[..], &[baseline.to_str().unwrap()]].concat();
    let out = run(&audit);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("lsports audit: OK: 0 unexpected, 0 missing"),
        "{}",
        stdout(&out)
    );
    let snapshot = dir.path().join("s.tar.gz");
    assert_success(&run(&["capture", snapshot.to_str().unwrap()]), &["capture"]);
    let mut cmd = scrubbed(lsports_bin());
    cmd.arg("--snapshot").arg(&snapshot).args(&audit);
    let out = output_guarded(cmd, "lsports --snapshot … audit");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // The audit's JSON: the listener as the listing has it, its programs as the baseline
    // records them, and a missing line's program likewise.
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "version = 1\nlisteners = []\n").unwrap();
    let out = run(&[
        "audit",
        "-t",
        "--json",
        "--baseline",
        empty.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listener = &report["unexpected"][0]["listener"];
    assert_eq!(listener["processes"][0], *process, "{report:#}");
    assert_eq!(
        listener["programs"],
        json!([{"name": program, "exe": exe_text}]),
        "{report:#}"
    );
    let elsewhere = String::from_utf8(text)
        .unwrap()
        .replace("port = 8080", "port = 8081");
    std::fs::write(&baseline, elsewhere).unwrap();
    let out = run(&[
        "audit",
        "-t",
        "--json",
        "--baseline",
        baseline.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing = &report["missing"][0];
    assert_eq!(
        (&missing["program"], &missing["exe"]),
        (&json!(program), &json!(exe_text))
    );
}

#[test]
fn a_baseline_saved_unprivileged_matches_root_listeners_by_address_alone() {
    if !need_root("saving and auditing root's listeners as nobody") {
        return;
    }
    // Root's sshd (tcp 18022) and dnsmasq (udp 18053); nobody cannot see who holds them.
    let world = base_world();
    let files = tempfile::tempdir().unwrap();
    std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let nb = files.path().join("nb.toml");
    let nb = nb.to_str().unwrap();
    let ports = "--port 18022,18053,18023";
    // Saved by root, the lines name programs; a safety net looks at holders too.
    let rb = files.path().join("root.toml");
    let rb = rb.to_str().unwrap();
    let net = files.path().join("net.toml");
    std::fs::write(
        &net,
        "default = \"allow\"\n\n[[rule]]\naction = \"deny\"\nprogram = \"nc\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&net, std::fs::Permissions::from_mode(0o644)).unwrap();
    let net = net.to_str().unwrap();
    let extra = Listener::new("extra", json!([{"addr": "0.0.0.0", "port": 18023}]));
    let script = format!(
        "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
         $LSPORTS {ports} baseline save - >{nb} 2>/dev/null && chmod 644 {nb}\n\
         $LSPORTS --port 18022 baseline save - >{rb} 2>/dev/null && chmod 644 {rb}\n\
         {a}{b}{both}{start}{c}",
        a = run_section_as_nobody("nobody", &format!("{ports} audit --baseline {nb}")),
        b = run_section("root", &format!("{ports} audit --baseline {nb}")),
        both = run_section_as_nobody(
            "both",
            &format!("--port 18022 audit --baseline {rb} --policy {net}")
        ),
        start = extra.start(None),
        c = run_section_as_nobody("extra", &format!("{ports} audit --baseline {nb}")),
    );
    let (sections, err) = world.script_sections(&script);
    // The truth: the lines name where and whose, no program.
    let saved = std::fs::read_to_string(nb).unwrap();
    let lines: Vec<&str> = saved.lines().filter(|l| l.contains("proto =")).collect();
    assert_eq!(lines.len(), 2, "{saved}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("user = \"root\"") && !l.contains("program")),
        "{saved}"
    );
    // Matched by address (and user) alone, unprivileged or not: nothing left unchecked.
    for who in ["nobody", "root"] {
        let section = &sections[who];
        assert_eq!(rc(section), 0, "{who}: {section}\n{err}");
        // (root sees its holders, running as root: suspicious, which fails nothing.)
        let summary = section.lines().next().unwrap();
        assert!(
            summary.starts_with("lsports audit: OK: 0 unexpected, 0 missing, ")
                && summary.ends_with(&format!(" suspicious (2 listeners; baseline {nb})")),
            "{who}: {section}"
        );
        assert!(!section.contains("Not checked"), "{who}: {section}");
    }
    // Root's baseline expects sshd, the policy denies nc: neither can be told of the one
    // listener, which is counted once, and each check says its own.
    assert!(
        std::fs::read_to_string(rb)
            .unwrap()
            .contains("program = \"sshd\"")
    );
    let section = &sections["both"];
    assert_eq!(rc(section), 2, "{section}\n{err}");
    assert!(
        section.starts_with(&format!(
            "lsports audit: INCOMPLETE: 0 unexpected, 0 missing, 0 suspicious, 1 not checked \
             (1 listener; baseline {rb}: 1 not checked, policy {net}: 1 not checked)\n"
        )),
        "{section}"
    );
    // A root listener where the baseline expects none is still new, though unseen.
    let section = &sections["extra"];
    assert_eq!(rc(section), 1, "{section}\n{err}");
    assert!(
        row_of(section, "0.0.0.0:18023").ends_with("not in the baseline"),
        "{section}"
    );
    assert!(!section.contains("Not checked"), "{section}");
}

#[test]
fn a_reach_rule_the_unread_firewall_cannot_settle_is_not_checked_and_unknown_still_matches() {
    if !need_root("auditing reach as nobody, who cannot read the firewall") {
        return;
    }
    if !have("nft") {
        skip_unless_ci("auditing reach needs nft");
        return;
    }
    // Root's sshd (tcp 18022, dropped: filtered), dnsmasq (udp 18053, open) and a UDP
    // listener a rule lsports cannot evaluate decides (18054: unknown, as root).
    let world = base_world();
    let files = tempfile::tempdir().unwrap();
    std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let policy = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path.to_str().unwrap().to_string()
    };
    let net = policy(
        "net.toml",
        "default = \"allow\"\n\n[[rule]]\nname = \"nothing open\"\naction = \"deny\"\n\
         reach = \"open\"\n",
    );
    let fw = policy(
        "fw.toml",
        "default = \"deny\"\n\n[[rule]]\nname = \"firewalled\"\naction = \"allow\"\n\
         reach = \"filtered\"\n\n[[rule]]\nname = \"dns\"\naction = \"allow\"\nproto = \"udp\"\n",
    );
    let unknown = policy(
        "unknown.toml",
        "default = \"allow\"\n\n[[rule]]\nname = \"undecidable\"\naction = \"deny\"\n\
         reach = \"unknown\"\n",
    );
    let lottery = Listener::new(
        "lottery",
        json!([{"proto": "udp", "addr": "0.0.0.0", "port": 18054}]),
    );
    let ports = "--port 18022,18053,18054";
    let mut script = format!(
        "nft -f - <<'EOF'\ntable inet f {{\n chain input {{\n  type filter hook input \
         priority 0; policy accept;\n  tcp dport 18022 drop\n  udp dport 18054 numgen random \
         mod 2 0 drop\n }}\n}}\nEOF\n{}{}",
        lottery.start(None),
        run_section("listing", &format!("{ports} -o port,reach")),
    );
    for (name, file) in [("net", &net), ("fw", &fw), ("unknown", &unknown)] {
        let args = format!("{ports} audit --policy {file}");
        script.push_str(&run_section(&format!("{name} root"), &args));
        script.push_str(&run_section_as_nobody(&format!("{name} nobody"), &args));
    }
    let (sections, err) = world.script_sections(&script);
    // The truth, as root: what the firewall does with each.
    let listing = &sections["listing"];
    for (port, reach) in [(18022, "filtered"), (18053, "open"), (18054, "unknown")] {
        assert!(
            listing
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [&port.to_string(), reach]),
            "{port} {reach}: {listing}\n{err}"
        );
    }

    // A deny on "open": root denies dnsmasq. nobody cannot read the rules, so cannot tell
    // which is open: not a silent pass, but not checked, and the audit cannot pass.
    let root = &sections["net root"];
    expect_summary(
        root,
        1,
        "lsports audit: FAIL: 1 unexpected, 0 missing, ",
        &err,
    );
    assert!(
        row_of(root, "0.0.0.0:18053")
            .ends_with(&format!("denied by rule 1 \"nothing open\" ({net}:3)")),
        "{root}"
    );
    let nobody = &sections["net nobody"];
    expect_summary(
        nobody,
        2,
        "lsports audit: INCOMPLETE: 0 unexpected, 0 missing, 0 suspicious, 3 not checked \
             (3 listeners;",
        &err,
    );
    assert!(
        nobody.contains(
            "\nNot checked, so the audit cannot pass (exit 2): a deny rule looks at the reach \
             through the firewall, whose rules could not be read ("
        ),
        "{nobody}"
    );
    for place in ["0.0.0.0:18022", "0.0.0.0:18053", "0.0.0.0:18054"] {
        assert!(
            row_of(nobody, place).ends_with(&format!(
                "rule 1 \"nothing open\" ({net}:3) would deny it if its reach is what the rule \
                 names; otherwise allowed by the policy's default"
            )),
            "{nobody}"
        );
    }

    // An allow on "filtered": root allows sshd. nobody cannot confirm it, which is reported,
    // not failed; dnsmasq is allowed whatever its reach.
    let root = &sections["fw root"];
    expect_summary(
        root,
        0,
        "lsports audit: OK: 0 unexpected, 0 missing, ",
        &err,
    );
    let nobody = &sections["fw nobody"];
    expect_summary(
        nobody,
        0,
        "lsports audit: OK: 0 unexpected, 0 missing, 0 suspicious, 1 not checked \
             (3 listeners;",
        &err,
    );
    assert!(
        nobody.contains(
            "\nNot checked, reported only: a rule looks at the reach through the firewall, \
             whose rules could not be read ("
        ),
        "{nobody}"
    );
    assert!(
        row_of(nobody, "0.0.0.0:18022").ends_with(&format!(
            "rule 1 \"firewalled\" ({fw}:3) would allow it if its reach is what the rule \
             names; otherwise denied by the policy's default"
        )),
        "{nobody}"
    );

    // A deny on "unknown" matches what lsports says: as root, the listener a rule it cannot
    // evaluate decides; as nobody, every one (their reach is unknown to it).
    let root = &sections["unknown root"];
    expect_summary(
        root,
        1,
        "lsports audit: FAIL: 1 unexpected, 0 missing, ",
        &err,
    );
    assert!(
        row_of(root, "0.0.0.0:18054")
            .ends_with(&format!("denied by rule 1 \"undecidable\" ({unknown}:3)")),
        "{root}"
    );
    let nobody = &sections["unknown nobody"];
    expect_summary(
        nobody,
        1,
        "lsports audit: FAIL: 3 unexpected, 0 missing, 0 suspicious (3",
        &err,
    );
}

/// A baseline records each listener's reach through the firewall. Audited where the rules
/// cannot be read (as nobody), a recorded reach can be neither confirmed nor denied: not a
/// silent pass, but "not checked", reported only (as a policy's allow rule on a reach is),
/// once per listener even when its holder is not seen either. As root, a reach the rules now
/// leave `unknown` (a rule lsports cannot evaluate) is a change from the one recorded.
#[test]
fn a_recorded_reach_the_unread_firewall_cannot_tell_is_not_checked() {
    if !need_root("auditing a baseline's reach as nobody, who cannot read the firewall") {
        return;
    }
    if !have("nft") {
        skip_unless_ci("auditing reach needs nft");
        return;
    }
    // Root's sshd (tcp 18022, dropped: filtered), dnsmasq (udp 18053, open), a root UDP
    // listener on 18054 (open until the lottery rule comes), and nobody's own TCP listener
    // on 18055 (open), whose holder nobody sees.
    let world = base_world();
    let files = tempfile::tempdir().unwrap();
    std::fs::set_permissions(files.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let baseline = files.path().join("b.toml").to_str().unwrap().to_string();
    let lottery = Listener::new(
        "lottery",
        json!([{"proto": "udp", "addr": "0.0.0.0", "port": 18054}]),
    );
    let own = Listener::new(
        "own",
        json!([{"proto": "tcp", "addr": "0.0.0.0", "port": 18055}]),
    );
    let ports = "--port 18022,18053,18054,18055";
    let audit = format!("{ports} audit --baseline {baseline}");
    let script = format!(
        "nft -f - <<'EOF'\ntable inet f {{\n chain input {{\n  type filter hook input \
         priority 0; policy accept;\n  tcp dport 18022 drop\n }}\n}}\nEOF\n{}{}\
         $LSPORTS {ports} baseline save {baseline} 2>/dev/null\nchmod 644 {baseline}\n{}{}\
         nft add rule inet f input udp dport 18054 numgen random mod 2 0 drop\n{}",
        lottery.start(None),
        own.start(Some(65534)),
        run_section("root", &audit),
        run_section_as_nobody("nobody", &audit),
        run_section("root unknown", &audit),
    );
    let (sections, err) = world.script_sections(&script);
    let recorded = std::fs::read_to_string(&baseline).unwrap();
    for (port, reach) in [
        (18022, "filtered"),
        (18053, "open"),
        (18054, "open"),
        (18055, "open"),
    ] {
        assert!(
            recorded
                .lines()
                .any(|l| l.contains(&format!("port = {port},"))
                    && l.contains(&format!("reach = \"{reach}\""))),
            "{port} {reach}: {recorded}"
        );
    }

    let root = &sections["root"];
    expect_summary(
        root,
        0,
        "lsports audit: OK: 0 unexpected, 0 missing, 3 suspicious (4",
        &err,
    );

    // nobody: root's three listeners are not checked for their holders (once each, though
    // their reach is not known either), its own for its reach; the audit passes, saying so.
    let nobody = &sections["nobody"];
    expect_summary(
        nobody,
        0,
        "lsports audit: OK: 0 unexpected, 0 missing, 0 suspicious, 4 not checked (4 listeners;",
        &err,
    );
    let title = "\nNot checked, reported only: the listener is there as expected, but the reach \
                 through the firewall its line records could not be told: the rules could not be \
                 read (";
    assert!(nobody.contains(title), "{nobody}");
    let section = &nobody[nobody.find(title).unwrap() + 1..];
    let section = section.split("\n\n").next().unwrap();
    let rows: Vec<&str> = (section.lines().skip(1))
        .filter(|l| l.starts_with("  "))
        .collect();
    assert!(
        matches!(&rows[..], [row] if row.contains(" 0.0.0.0:18055 ") && row.contains("nobody")),
        "{nobody}"
    );
    for place in ["0.0.0.0:18022", "0.0.0.0:18053", "0.0.0.0:18054"] {
        assert_eq!(
            nobody.matches(&format!(" {place} ")).count(),
            1,
            "{place}: {nobody}"
        );
    }

    // root, once the rules leave 18054 undecidable: a change from the reach recorded.
    let root = &sections["root unknown"];
    expect_summary(
        root,
        1,
        "lsports audit: FAIL: 1 unexpected, 0 missing, ",
        &err,
    );
    let row = row_of(root, "0.0.0.0:18054");
    assert!(
        row.contains("reach through the firewall was open in the baseline (line ")
            && row.ends_with(", now unknown"),
        "{root}"
    );
}

/// A baseline or policy that is no such file (a device, a huge log) is refused once it passes
/// the limit, with the file and the limit named, instead of filling the memory: exit 2, as for
/// any file the audit cannot use, whether named or piped on standard input.
#[test]
fn an_endless_baseline_or_policy_is_refused_at_the_limit() {
    for args in [
        &["audit", "--policy", "/dev/zero"][..],
        &["audit", "--baseline", "/dev/zero"],
        &["serve", "--policy", "/dev/zero", "--listen", "127.0.0.1:0"],
    ] {
        let out = run_host(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = stderr(&out);
        assert!(err.contains("/dev/zero: the "), "{args:?}: {err}");
        assert!(err.contains("is larger than 64 MiB"), "{args:?}: {err}");
    }
    let mut cmd = scrubbed("bash");
    cmd.args([
        "-c",
        "head -c 70000000 /dev/zero | \"$0\" audit --baseline -; echo rc=$?",
    ])
    .arg(lsports_bin());
    let out = output_guarded(cmd, "a baseline piped on stdin");
    assert!(stdout(&out).contains("rc=2"), "{out:?}");
    assert!(
        stderr(&out).contains("-: the baseline is larger than 64 MiB"),
        "{out:?}"
    );
}

#[test]
fn a_proc_root_whose_tables_cannot_be_read_is_no_source_and_its_lines_are_not_checked() {
    // A proc tree with a TCP listener (127.0.0.1:8080) and a UDP one (127.0.0.1:5353), both
    // held by pid 100, and no IPv6 tables (a host booted with ipv6.disable=1).
    let dir = tempfile::tempdir().unwrap();
    let root = proc_root_with(dir.path(), b"svc", b"/usr/sbin/svc");
    let udp_row = "   1: 0100007F:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     \
                   0        0 1002 2 0000000000000000 0\n";
    let udp = std::fs::read_to_string(root.join("net/udp")).unwrap();
    std::fs::write(root.join("net/udp"), format!("{udp}{udp_row}")).unwrap();
    std::os::unix::fs::symlink("socket:[1002]", root.join("100/fd/4")).unwrap();
    let missing_root = dir.path().join("nonexistent");
    let run = |root: &Path, args: &[&str]| {
        let mut cmd = scrubbed(lsports_bin());
        cmd.arg("--proc-root").arg(root).args(args);
        output_guarded(
            cmd,
            &format!("lsports --proc-root {} {args:?}", root.display()),
        )
    };
    let baseline = dir.path().join("b.toml");
    let saved = run(&root, &["baseline", "save", baseline.to_str().unwrap()]);
    assert_success(&saved, &["baseline", "save"]);
    assert!(
        stderr(&saved).contains("saved 2 listeners"),
        "{}",
        stderr(&saved)
    );
    let baseline = baseline.to_str().unwrap();

    // A root that does not exist: no source could read a table, whatever the action.
    let listed = run(&missing_root, &["--json"]);
    assert_eq!(listed.status.code(), Some(1), "{}", stdout(&listed));
    assert_eq!(stdout(&listed), "", "no listing of nothing read");
    assert!(stderr(&listed).contains("net/tcp6"), "{}", stderr(&listed));
    let never = dir.path().join("never.toml");
    let refused = run(
        &missing_root,
        &["baseline", "save", never.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        !never.exists(),
        "an empty baseline was written from nothing"
    );
    for files in [["--baseline", baseline], ["--policy", "/dev/null"]] {
        let audit = run(&missing_root, &[&["audit"], &files[..]].concat());
        assert_eq!(audit.status.code(), Some(2), "{}", stdout(&audit));
        assert!(
            stderr(&audit).contains("cannot audit"),
            "{}",
            stderr(&audit)
        );
    }

    // The tcp table unreadable (a directory where the file should be), the udp one fine.
    std::fs::remove_file(root.join("net/tcp")).unwrap();
    std::fs::create_dir(root.join("net/tcp")).unwrap();
    let listed = run(&root, &["-t"]);
    assert_eq!(listed.status.code(), Some(1), "{}", stdout(&listed));
    let refused = run(&root, &["baseline", "save", never.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("tcp/ipv4, tcp/ipv6 tables could not be read"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !never.exists(),
        "a baseline without its tcp listeners was written"
    );
    let audit = run(
        &root,
        &["audit", "--fail-on", "missing", "--baseline", baseline],
    );
    let report = stdout(&audit);
    assert_eq!(audit.status.code(), Some(0), "{report}{}", stderr(&audit));
    assert!(
        report
            .starts_with("lsports audit: OK: 0 unexpected, 0 missing, 0 suspicious, 1 not checked"),
        "{report}"
    );
    let section = report
        .split("Not checked, reported only: the kernel's table of their sockets could not be read")
        .nth(1)
        .unwrap_or_else(|| panic!("no not-checked section: {report}"));
    assert!(section.contains("127.0.0.1:8080"), "{report}");
    assert!(!report.contains("nothing listens there now"), "{report}");
    // The udp table was read: its listener gone is missing, as ever.
    std::fs::write(root.join("net/udp"), udp).unwrap();
    let audit = run(
        &root,
        &["audit", "--fail-on", "missing", "--baseline", baseline],
    );
    let report = stdout(&audit);
    assert_eq!(audit.status.code(), Some(1), "{report}{}", stderr(&audit));
    let missing = (report.split("\n\n").find(|s| s.starts_with("Missing"))).unwrap_or_default();
    assert!(missing.contains("127.0.0.1:5353"), "{report}");
    assert!(!missing.contains("8080"), "{report}");
}

#[test]
fn a_baseline_line_naming_only_an_executable_accepts_only_that_executable() {
    // The world's "sshd" on TCP 18022, run by python3: a fleet's line names its executable
    // and no program (names differ across hosts).
    let world = base_world();
    let listing = world.json(&["-tln", "--port", "18022"]);
    let exe = listing[0]["processes"][0]["exe"]
        .as_str()
        .unwrap()
        .to_string();
    let line = |exe: &str| {
        format!(
            "version = 1\nlisteners = [\n  {{ proto = \"tcp\", address = \"0.0.0.0\", port = 18022, \
             user = \"root\", exe = \"{exe}\" }},\n]\n"
        )
    };
    let audit = |name: &str, text: &str| {
        let path = world_file(&world, name);
        std::fs::write(&path, text).unwrap();
        world.run(&["audit", "-t", "--port", "18022", "--baseline", &path])
    };
    let right = audit("right.toml", &line(&exe));
    assert_eq!(right.status.code(), Some(0), "{}", stdout(&right));
    let other = audit("other.toml", &line("/usr/bin/other"));
    let report = stdout(&other);
    assert_eq!(other.status.code(), Some(1), "{report}");
    assert!(
        report.starts_with("lsports audit: FAIL: 1 unexpected, 0 missing"),
        "{report}"
    );
    assert!(
        report.contains("the baseline expects any program running /usr/bin/other"),
        "{report}"
    );
    // An executable is an absolute path: anything else is a mistake, named with its line.
    for bad in ["", "*", "python3"] {
        let out = audit("bad.toml", &line(bad));
        assert_eq!(out.status.code(), Some(2), "exe {bad:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("bad.toml:3: exe \"")
                && stderr(&out).contains("not an absolute path"),
            "{}",
            stderr(&out)
        );
    }
}

/// Loads the Python running it into a `memfd_create` file and runs that instead, as fileless
/// malware does, named `kworker`; the copy listens on TCP 0.0.0.0:PORT and writes READY.
const FILELESS_PY: &str = r#"
import os, sys
port, ready = sys.argv[1], sys.argv[2]
fd = os.memfd_create("kworker", 0)
os.write(fd, open(os.path.realpath(sys.executable), "rb").read())
code = ("import socket,time,sys\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen()\n"
        "open(sys.argv[2], 'w').close(); time.sleep(120)\n")
os.execv("/proc/self/fd/%d" % fd, ["kworker", "-c", code, port, ready])
"#;

#[test]
fn a_listener_run_from_memory_is_flagged_as_never_on_disk() {
    let world = World::start(&json!([]));
    let ready = world.dir().join("fileless.up");
    let args = ["-c", FILELESS_PY, "18094", ready.to_str().unwrap()];
    let mut fileless = world.spawn("fileless", "python3", &args);
    fileless.wait_for_file(&ready);
    let policy = world_file(&world, "allow-all.toml");
    std::fs::write(&policy, "default = \"allow\"\n").unwrap();
    let out = world.run(&["audit", "--policy", &policy, "--port", "18094"]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "fails by default: {report}");
    let row = (report.lines())
        .find(|l| l.contains("exe-deleted"))
        .unwrap_or_else(|| panic!("no exe-deleted row: {report}"));
    assert!(
        row.contains("runs from an in-memory file (memfd:kworker), never on disk"),
        "{row}"
    );
    assert!(!row.contains("upgrade"), "{row}");
}
