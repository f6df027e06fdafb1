//! A private "host" for tests that look at every network namespace (`--netns all`): the test
//! binary re-runs one of its own `#[ignore]`d tests as pid 1 of private network, mount and PID
//! namespaces (`/proc` shows only its processes), with the host's nsfs mounts unmounted and a
//! fresh tmpfs on `/run`, so `ip netns add` and Docker-like `/run/docker/netns` mounts land
//! there. When the inner test ends, every process it started dies with its PID namespace and
//! every mount goes with its mount namespace, even on failure.

use std::path::Path;
use std::process::Command;

use super::{output_guarded, scrubbed};

/// Re-run this binary's `test` as pid 1 of private namespaces, with `env`=1 set; require it to
/// pass.
pub fn run_in_private_host(test: &str, env: &str) {
    let mut cmd = scrubbed("unshare");
    cmd.args(["--net", "--mount", "--propagation", "private"])
        .args(["--pid", "--fork", "--mount-proc", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, "1");
    let out = output_guarded(cmd, test);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in private namespaces failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

/// Whether this is the inner run: pid 1 of its own PID namespace, with `env` set.
pub fn in_private_host(env: &str) -> bool {
    std::env::var_os(env).is_some() && std::process::id() == 1
}

/// Run `script` with `sh -c`; it must succeed.
pub fn sh_ok(script: &str) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In the private mount namespace: unmount every inherited nsfs mount of a network namespace
/// (the host's `ip netns` and container namespaces), put a fresh tmpfs on `/run`, and bring
/// up loopback.
pub fn isolate_host() {
    let text = std::fs::read("/proc/self/mountinfo").unwrap();
    for mount in lsports::source::netns::mountinfo::net_mounts(&text) {
        let out = Command::new("umount")
            .arg("-l")
            .arg(&mount.path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umount {}: {out:?}",
            mount.path.display()
        );
    }
    let left = lsports::source::netns::mountinfo::net_mounts(
        &std::fs::read("/proc/self/mountinfo").unwrap(),
    );
    assert!(left.is_empty(), "host namespaces still mounted: {left:?}");
    sh_ok("mount -t tmpfs -o mode=755 lsports-test /run && ip link set lo up");
}

/// The nsfs inode of the namespace file `path` (`/proc/PID/ns/net`, an `ip netns` mount).
pub fn netns_inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(
        &std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}
