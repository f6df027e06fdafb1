//! Restricted `/proc`: when lsports cannot see who holds a socket it still lists the socket,
//! leaves the owner blank, exits 0 and says why.
//!
//! - `hidepid=2`: in a private mount namespace `/proc` is mounted again with `hidepid=2`, and
//!   lsports runs as nobody: other users' processes are not hidden behind a permission error
//!   but missing from `/proc` altogether, so lsports has to notice the mount option.
//! - Non-dumpable processes (`prctl(PR_SET_DUMPABLE, 0)`, as setuid programs and many daemons
//!   are): their fd directory belongs to root even when the process is the reader's own user.
//!
//! Both need root (to mount proc, to become nobody); without it they say so and pass.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::*;
use serde_json::{Value, json};

/// (proto, family, addr, port) of every socket, holders aside.
fn endpoints_of_json(v: &Value) -> BTreeSet<(String, String, String, u16)> {
    rows_from_json(v)
        .into_iter()
        .map(|r| (r.proto, r.family, r.addr, r.port))
        .collect()
}

fn endpoints_of_truth(world: &World) -> BTreeSet<(String, String, String, u16)> {
    rows_from_truth(world.listening())
        .into_iter()
        .map(|r| (r.proto, r.family, r.addr, r.port))
        .collect()
}

fn hidepid_spec() -> Value {
    json!([
        group("tcp", "0.0.0.0", "sshd"),
        group_with("tcp", "::", "nginx", json!({"v6only": false, "prefork": 2})),
        group("udp", "127.0.0.1", "dnsmasq"),
    ])
}

/// lsports `args` inside the world's network namespace, in a private mount namespace whose
/// `/proc` is mounted with `options`, as `user` (`root` or `nobody`).
fn run_under_proc_mount(world: &World, options: &str, user: &str, args: &[&str]) -> Output {
    let become_user = match user {
        "nobody" => AS_NOBODY.join(" "),
        _ => String::new(),
    };
    let script =
        format!("mount -t proc -o {options} proc /proc && exec {become_user} \"$LSPORTS\" \"$@\"");
    let mut cmd = world.enter();
    cmd.args(["unshare", "--mount", "--propagation", "private", "--"])
        .args(["sh", "-c", &script, "sh"])
        .args(args)
        .env("LSPORTS", lsports_bin());
    output_guarded(
        cmd,
        &format!("lsports {args:?} under /proc {options} as {user}"),
    )
}

#[test]
fn hidepid_2_lists_every_socket_and_says_why_owners_are_blank() {
    if !need_root("mounting proc and becoming nobody") {
        return;
    }
    let world = World::start(&hidepid_spec());
    let out = run_under_proc_mount(&world, "hidepid=2", "nobody", &["--json"]);
    assert_success(&out, &["--json (nobody, hidepid=2)"]);
    let v = parse_json(&out.stdout);
    assert_json_schema(&v);
    assert_eq!(endpoints_of_json(&v), endpoints_of_truth(&world));
    for socket in v.as_array().unwrap() {
        assert_eq!(socket["processes"], json!([]), "{socket}");
        assert_eq!(socket["owner_unknown_reason"], "permission", "{socket}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hidepid"),
        "no hint about hidepid:\n{stderr}"
    );

    // The table says the same: every socket, a blank owner, and the hint.
    let out = run_under_proc_mount(&world, "hidepid=2", "nobody", &["-n"]);
    assert_success(&out, &["-n (nobody, hidepid=2)"]);
    let table = Table::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(table.rows.len(), world.listening().count());
    for row in &table.rows {
        assert_eq!(table.cell(row, "PID/Program name"), "-", "{row:?}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("hidepid"));
}

#[test]
fn hidepid_2_does_not_hide_anything_from_root() {
    if !need_root("mounting proc") {
        return;
    }
    let world = World::start(&hidepid_spec());
    let out = run_under_proc_mount(&world, "hidepid=2", "root", &["--json"]);
    assert_success(&out, &["--json (root, hidepid=2)"]);
    let v = parse_json(&out.stdout);
    assert_same_rows(
        "root under hidepid=2",
        &rows_from_json(&v),
        &rows_from_truth(world.listening()),
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hidepid"));
}

// ---------------------------------------------------------------------------------------------
// Non-dumpable processes of the reader's own user

/// Two listeners held by nobody, one of them non-dumpable. Runs as pid 1 (nobody) of a private
/// pid namespace, so that every process lsports can see there is nobody's.
const NOBODY_WORLD: &str = r#"
import ctypes, json, os, socket, sys, time
out, ready = sys.argv[1], sys.argv[2]
r, w = os.pipe()
for dumpable in (True, False):
    if os.fork() == 0:
        os.close(r)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        if not dumpable and ctypes.CDLL(None).prctl(4, 0, 0, 0, 0) != 0:
            os._exit(1)
        report = {"pid": os.getpid(), "port": s.getsockname()[1], "dumpable": dumpable,
                  "inode": os.fstat(s.fileno()).st_ino}
        os.write(w, (json.dumps(report) + "\n").encode())
        while True:
            time.sleep(3600)
os.close(w)
with os.fdopen(r) as f:
    reports = [json.loads(f.readline()) for _ in range(2)]
with open(out, "w") as f:
    json.dump(reports, f)
with open(ready, "w") as f:
    f.write("ready\n")
while True:
    time.sleep(3600)
"#;

/// The world of `NOBODY_WORLD` in private net, pid and mount namespaces, with the reports of
/// its two listeners.
struct NobodyWorld {
    world: Isolated,
    reports: Vec<Value>,
    _dir: tempfile::TempDir,
}

impl NobodyWorld {
    fn start() -> NobodyWorld {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let script = dir.path().join("world.py");
        fs::write(&script, NOBODY_WORLD).unwrap();
        let (out, ready) = (dir.path().join("out.json"), dir.path().join("ready"));
        let world = Isolated::start(
            "exec setpriv --reuid=65534 --regid=65534 --clear-groups -- python3 \"$@\"",
            &[&script, &out, &ready],
            &ready,
        );
        let reports = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
        NobodyWorld {
            world,
            reports,
            _dir: dir,
        }
    }

    /// lsports as nobody inside the world's namespaces.
    fn run(&self, args: &[&str]) -> Output {
        self.world.run_as_nobody(args)
    }

    fn report(&self, dumpable: bool) -> &Value {
        self.reports
            .iter()
            .find(|r| r["dumpable"] == dumpable)
            .unwrap()
    }
}

#[test]
fn non_dumpable_process_of_the_same_user_is_listed_without_owner_and_explained() {
    if !need_root("becoming nobody") {
        return;
    }
    let world = NobodyWorld::start();
    let out = world.run(&["--json"]);
    assert_success(&out, &["--json (nobody)"]);
    let v = parse_json(&out.stdout);
    assert_json_schema(&v);
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");

    let dumpable = world.report(true);
    let open = by_inode(&v, dumpable["inode"].as_u64().unwrap());
    assert_eq!(json_pids(open), [dumpable["pid"].as_u64().unwrap() as u32]);
    assert_eq!(open["processes"][0]["name"], "python3");

    let hidden = world.report(false);
    let closed = by_inode(&v, hidden["inode"].as_u64().unwrap());
    assert_eq!(closed["local_port"], hidden["port"]);
    assert_eq!(closed["processes"], json!([]));
    assert_eq!(closed["owner_unknown_reason"], "permission");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 process could not be inspected, so its sockets show no owner"),
        "exactly the non-dumpable process is uninspectable:\n{stderr}"
    );
}

#[test]
fn uninspectable_processes_are_not_mentioned_when_no_shown_socket_lacks_its_owner() {
    if !need_root("becoming nobody") {
        return;
    }
    let world = NobodyWorld::start();
    let open = world.report(true);
    let port = open["port"].to_string();
    // The dumpable listener alone: shown with its owner, so the closed process changes nothing.
    // A port nobody uses: nothing shown at all. Neither says a word on stderr.
    let unused = (1..u16::MAX)
        .find(|p| world.reports.iter().all(|r| r["port"] != *p))
        .unwrap()
        .to_string();
    for wanted in [&port, &unused] {
        for format in [&["--json"][..], &[][..]] {
            let mut args = vec!["-n", "--port", wanted.as_str()];
            args.extend_from_slice(format);
            let out = world.run(&args);
            assert_success(&out, &args);
            // JSON carries reach, whose rules nobody cannot read: that one line is said.
            let said: Vec<String> = (stderr_lines(&out).into_iter())
                .filter(|l| !l.contains("reach is unknown"))
                .collect();
            assert_eq!(said.join("\n"), "", "lsports {args:?} must be silent");
        }
    }
    let out = world.run(&["-n", "--port", &port, "--json"]);
    let shown = parse_json(&out.stdout);
    assert_eq!(json_pids(&shown[0]), [open["pid"].as_u64().unwrap() as u32]);
    let out = world.run(&["-n", "--port", &unused, "--json"]);
    assert_eq!(parse_json(&out.stdout), json!([]));
}
