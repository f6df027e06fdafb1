//! What a test needs from the machine (root, a tool on PATH) and the one rule for when it is
//! missing: a developer's laptop skips the test, saying why; CI (`CI=true`), which installs
//! every tool and runs as root, fails it instead, so a skip never hides there.

use std::path::Path;

use super::run::scrubbed_env;

/// Whether the tests run as root (namespaces, other users, cgroups, BPF).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether this is CI, where no test may skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}

/// Say why a test does not run here, so the caller can `return`; under `CI=true` fail
/// instead, since CI has every tool and privilege the tests need.
pub fn skip_unless_ci(reason: &str) {
    assert!(!in_ci(), "{reason} (CI=true: a test may not skip in CI)");
    eprintln!("SKIP: {reason}");
}

/// Whether the tests run as root; otherwise skip (see [`skip_unless_ci`]) saying that `what`
/// needs root.
pub fn need_root(what: &str) -> bool {
    if !is_root() {
        skip_unless_ci(&format!("{what} needs root"));
    }
    is_root()
}

/// Whether `program` is on the PATH the tests' commands run with; otherwise skip (see
/// [`skip_unless_ci`]).
pub fn have(program: &str) -> bool {
    let path = scrubbed_env()
        .into_iter()
        .find(|(k, _)| *k == "PATH")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let found = path
        .split(':')
        .any(|dir| Path::new(dir).join(program).is_file());
    if !found {
        skip_unless_ci(&format!("{program} is not installed (.ci/run installs it)"));
    }
    found
}
