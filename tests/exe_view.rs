//! An executable path is the path in the holder's own mount namespace, and any user can make
//! one (`unshare -Urm`) and bind-mount a file of theirs over a system path in it. Such a path
//! must not read as the system's file: not in the listing, not to a policy or baseline that
//! pins `exe`; and the listener is flagged `exe-masked`. A process of the same user in a
//! namespace of its own that runs the host's own file keeps its plain path.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use common::*;
use serde_json::Value;

/// The system path the unprivileged user mounts over, in their own namespace only.
const DISGUISE: &str = "/usr/bin/env";
/// The interpreter the listeners run (a file every user may read and run).
const PYTHON: &str = "/usr/bin/python3.11";
/// What each listener runs: listen on loopback, say the port, wait to be killed.
const LISTEN: &str = "import socket,sys,time\n\
    s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
    print(s.getsockname()[1]); sys.stdout.flush(); time.sleep(600)";

/// Start `shell` (given the copy of python as `$1` and the listener's code as `$2`) as user
/// nobody in a user and mount namespace of its own; the port it listens on.
fn start_as_nobody(shell: &str, copy: &Path, what: &str) -> (Spawned, u16) {
    let mut cmd = scrubbed("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["unshare", "--user", "--map-root-user", "--mount"])
        .args(["sh", "-c", shell, "sh"])
        .arg(copy)
        .arg(LISTEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = Spawned::start(cmd, what);
    let mut line = String::new();
    BufReader::new(child.child_mut().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what} did not start (said {line:?})"));
    (child, port)
}

fn lsports(args: &[&str]) -> std::process::Output {
    let mut cmd = scrubbed(lsports_bin());
    cmd.args(args);
    output_guarded(cmd, &format!("lsports {}", args.join(" ")))
}

#[test]
fn a_path_only_an_unprivileged_users_mounts_make_true_is_not_the_systems() {
    if !need_root("running listeners as another user in user namespaces")
        || !have("setpriv")
        || !have("unshare")
    {
        return;
    }
    if !Path::new(PYTHON).is_file() {
        skip_unless_ci(&format!("{PYTHON} is not installed"));
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("lsports-exe-view")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("evil");
    std::fs::copy(PYTHON, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();

    // The attacker: their own python, mounted over the system's path in their namespace.
    let masked_shell = format!("mount --bind \"$1\" {DISGUISE} && exec {DISGUISE} -c \"$2\"");
    let (_masked, masked) = start_as_nobody(&masked_shell, &copy, "the disguised listener");
    // The same user in a namespace of its own, running the host's own file: nothing to doubt.
    let plain_shell = format!("exec {PYTHON} -c \"$2\"");
    let (_plain, plain) = start_as_nobody(&plain_shell, &copy, "the plain listener");
    let ports = format!("{masked},{plain}");

    let args = [
        "-tln",
        "--port",
        &ports,
        "--format",
        "csv",
        "-H",
        "-o",
        "port,exe,flags",
    ];
    let out = lsports(&args);
    assert_success(&out, &args);
    let rows = parse_csv(&stdout(&out));
    let row = |port: u16| -> &Vec<String> {
        rows.iter()
            .find(|r| r[0] == port.to_string())
            .unwrap_or_else(|| panic!("no row for {port}: {rows:?}"))
    };
    let masked_row = row(masked);
    assert_eq!(
        masked_row[1],
        format!("(uid 65534's mounts){DISGUISE}"),
        "{rows:?}"
    );
    assert!(
        masked_row[2].split(',').any(|f| f == "exe-masked"),
        "{rows:?}"
    );
    let plain_row = row(plain);
    assert_eq!(plain_row[1], PYTHON, "{rows:?}");
    assert!(!plain_row[2].contains("exe-masked"), "{rows:?}");

    // A policy that pins the system's paths allows the plain listener only.
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "default = \"deny\"\n\
             [[rule]]\nname = \"pinned\"\naction = \"allow\"\nexe = [\"{DISGUISE}\", \"{PYTHON}\"]\n"
        ),
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let args = [
        "audit",
        "--policy",
        policy,
        "--port",
        &ports,
        "--fail-on",
        "none",
        "--format",
        "json",
    ];
    let out = lsports(&args);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report:#}\n{}", stderr(&out));
    let unexpected: Vec<u64> = report["unexpected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["listener"]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(unexpected, [u64::from(masked)], "{report:#}");

    // By default the flag fails the audit, as a planted executable does.
    let args = ["audit", "--policy", policy, "--port", &plain.to_string()];
    assert_eq!(lsports(&args).status.code(), Some(0));
    let args = ["audit", "--policy", policy, "--port", &masked.to_string()];
    let out = lsports(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "executable {DISGUISE} is that path only in mounts user 65534 made"
        )),
        "{}",
        stdout(&out)
    );

    // A baseline saved from it records the qualified path, and matches it again.
    let baseline = dir.path().join("baseline.toml");
    let baseline = baseline.to_str().unwrap();
    let saved = lsports(&["--port", &ports, "baseline", "save", baseline]);
    assert_success(&saved, &["baseline", "save"]);
    let text = std::fs::read_to_string(baseline).unwrap();
    assert!(
        text.contains(&format!("exe = \"(uid 65534's mounts){DISGUISE}\"")),
        "{text}"
    );
    let args = [
        "audit",
        "--baseline",
        baseline,
        "--port",
        &ports,
        "--fail-on",
        "none",
    ];
    let out = lsports(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
