//! A baseline or policy is an allowlist: whoever can change it decides what the audit accepts.
//! So root refuses one another user could change, and `baseline save` never writes one others
//! may write, whatever the umask. And the files a user names are opened with that user's own
//! rights, even by a binary given capabilities (`setcap`, as lsports itself recommends for
//! unprivileged users): those are for `/proc`, not for reading root's files.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use serde_json::json;

/// A world with one TCP listener held by root.
fn one_listener() -> World {
    World::start(&json!([group_with(
        "tcp",
        "0.0.0.0",
        "sshd",
        json!({"port": 18123})
    )]))
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

#[test]
fn root_refuses_an_allowlist_another_user_could_change() {
    if !need_root("files owned by other users") {
        return;
    }
    let world = one_listener();
    let baseline = world.dir().join("baseline.toml");
    let shown = baseline.to_str().unwrap();

    // Saved under umask 000, it is still writable by root alone.
    let mut cmd = world.enter();
    cmd.args(["sh", "-c", "umask 000; exec \"$0\" baseline save \"$1\""])
        .arg(lsports_bin())
        .arg(&baseline);
    let saved = output_guarded(cmd, "baseline save under umask 000");
    assert_success(&saved, &["baseline", "save"]);
    assert_eq!(std::fs::metadata(&baseline).unwrap().mode() & 0o777, 0o644);
    let audit = |file: &str, kind: &str| world.run(&["audit", kind, file]);
    let out = audit(shown, "--baseline");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let refused = |why: &str, kind: &str, file: &Path| {
        let out = audit(file.to_str().unwrap(), kind);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{why}: {}{err}", stdout(&out));
        assert!(
            err.contains(&format!("refusing the {}", &kind[2..])) && err.contains(why),
            "{err}"
        );
    };
    chmod(&baseline, 0o666);
    refused(
        "it is writable by every user (mode 0666)",
        "--baseline",
        &baseline,
    );
    chmod(&baseline, 0o664);
    refused(
        "it is writable by its group (mode 0664)",
        "--baseline",
        &baseline,
    );
    chmod(&baseline, 0o644);
    chown(&baseline, 1000);
    refused("it is owned by uid 1000", "--baseline", &baseline);
    chown(&baseline, 0);
    // Its directory: whoever may write there may put another file in its place.
    let sub = world.dir().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let moved = sub.join("baseline.toml");
    std::fs::copy(&baseline, &moved).unwrap();
    chmod(&sub, 0o777);
    refused(
        "is writable by every user (mode 0777)",
        "--baseline",
        &moved,
    );
    chmod(&sub, 0o755);
    chown(&sub, 1000);
    refused("is owned by uid 1000", "--baseline", &moved);
    chown(&sub, 0);
    let out = audit(moved.to_str().unwrap(), "--baseline");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A policy alike.
    let policy = world.dir().join("policy.toml");
    std::fs::write(&policy, "default = \"allow\"\n").unwrap();
    chmod(&policy, 0o644);
    let out = audit(policy.to_str().unwrap(), "--policy");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    chmod(&policy, 0o646);
    refused(
        "it is writable by every user (mode 0646)",
        "--policy",
        &policy,
    );
}

#[test]
fn a_setcap_binary_opens_what_its_user_names_with_that_users_rights() {
    if !need_root("setcap and other users") || !have("setcap") || !have("setpriv") {
        return;
    }
    let world = one_listener();
    // The binary as lsports' own advice has it installed for unprivileged users.
    let bin_dir = tempfile::Builder::new()
        .prefix("lsports-setcap")
        .tempdir_in("/tmp")
        .unwrap();
    chmod(bin_dir.path(), 0o755);
    let capped = bin_dir.path().join("lsports");
    std::fs::copy(lsports_bin(), &capped).unwrap();
    chmod(&capped, 0o755);
    let mut setcap = scrubbed("setcap");
    setcap
        .arg("cap_dac_read_search,cap_sys_ptrace+ep")
        .arg(&capped);
    assert_success(&output_guarded(setcap, "setcap"), &["setcap"]);

    // Root's secrets, in a directory only root may enter.
    let secret_dir = world.dir().join("secret");
    std::fs::create_dir(&secret_dir).unwrap();
    chmod(&secret_dir, 0o700);
    let secret = secret_dir.join("b.toml");
    std::fs::write(
        &secret,
        "version = 1\nlisteners = [\n { proto = \"tcp\", address = \"10.1.2.3\", port = 31337, \
         program = \"secret-backdoor-name\" },\n]\n",
    )
    .unwrap();
    chmod(&secret, 0o600);
    // The world's directory is root's (0700): let nobody reach the secret's directory entry.
    chmod(world.dir(), 0o711);

    let as_nobody = |args: &[&str]| {
        let mut cmd = world.enter();
        cmd.args(AS_NOBODY).arg(&capped).args(args);
        output_guarded(cmd, &format!("(nobody, setcap) lsports {}", args.join(" ")))
    };
    // The capabilities still do what they are for: root's listener has its process.
    let out = as_nobody(&["-tln", "--port", "18123", "-H", "-o", "port,process"]);
    assert_success(&out, &["-tln"]);
    assert!(stdout(&out).contains("/sshd"), "{}", stdout(&out));

    let secret = secret.to_str().unwrap();
    let secret_dir = secret_dir.to_str().unwrap();
    for (args, code) in [
        (vec!["audit", "--baseline", secret], 2),
        (vec!["audit", "--policy", secret], 2),
        (vec!["--snapshot", secret, "-tln"], 1),
        (vec!["--proc-root", secret_dir, "-tln"], 1),
    ] {
        let out = as_nobody(&args);
        let (text, err) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(code), "{args:?}: {text}{err}");
        assert!(err.contains("Permission denied"), "{args:?}: {err}");
        assert!(
            !text.contains("secret") && !err.contains("secret-backdoor") && !err.contains("31337"),
            "{args:?} read root's file: {text}{err}"
        );
    }
}
