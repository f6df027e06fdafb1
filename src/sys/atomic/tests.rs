//! Every guarantee of the atomic writer, in one place: private from creation, registered
//! for removal on a signal, nothing left behind, no surprise replacement, modes kept.

use std::fs::{self, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::sys::signals;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The names in `dir`, sorted: what a failed or finished write left there.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn process_umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(umask.trim(), 8).unwrap()
}

#[test]
fn the_temporary_file_is_private_from_creation_and_registered_for_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    let mut file = AtomicFile::create(&target, Access::LikeShell, false).unwrap();
    let temp = file.temp_path().to_owned();
    assert_eq!(temp.parent(), Some(dir.path()), "in the target's directory");
    assert_eq!(mode(&temp), 0o600, "private before anything is written");
    assert!(
        signals::is_registered(&temp),
        "removed if a signal ends the run"
    );
    file.file().write_all(b"data").unwrap();
    file.commit().unwrap();
    assert!(!signals::is_registered(&temp), "unregistered once in place");
    assert_eq!(names(dir.path()), ["out"], "only the target is left");
    assert_eq!(fs::read(&target).unwrap(), b"data");
}

#[test]
fn an_abandoned_write_leaves_nothing_and_is_unregistered() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    let mut file = AtomicFile::create(&target, Access::Private, false).unwrap();
    let temp = file.temp_path().to_owned();
    file.file().write_all(b"half").unwrap();
    drop(file);
    assert!(names(dir.path()).is_empty(), "no temporary file, no target");
    assert!(!signals::is_registered(&temp));
}

#[test]
fn without_force_an_existing_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    fs::write(&target, "old").unwrap();
    let refused = write(&target, b"new", Access::LikeShell, false);
    assert!(
        matches!(refused, Err(WriteError::Exists { .. })),
        "{refused:?}"
    );
    // A dangling link is a file the user may not want replaced either.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
    let refused = write(&link, b"new", Access::LikeShell, false);
    assert!(
        matches!(refused, Err(WriteError::Exists { .. })),
        "{refused:?}"
    );
    assert_eq!(fs::read(&target).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["link", "out"]);
}

#[test]
fn a_file_that_appears_while_writing_is_not_clobbered() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    let mut file = AtomicFile::create(&target, Access::LikeShell, false).unwrap();
    file.file().write_all(b"ours").unwrap();
    fs::write(&target, "theirs").unwrap();
    let refused = file.commit();
    assert!(
        matches!(refused, Err(WriteError::Exists { .. })),
        "{refused:?}"
    );
    assert_eq!(fs::read(&target).unwrap(), b"theirs");
    assert_eq!(names(dir.path()), ["out"], "the temporary file is gone");
}

#[test]
fn force_replaces_and_keeps_the_replaced_files_mode() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("baseline.toml");
    fs::write(&target, "old").unwrap();
    for kept in [0o600, 0o640, 0o644] {
        fs::set_permissions(&target, Permissions::from_mode(kept)).unwrap();
        write(&target, b"new", Access::LikeShell, true).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(mode(&target), kept, "--force must not change the mode");
    }
}

#[test]
fn a_new_file_is_made_as_the_shell_would_make_it() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.toml");
    write(&fresh, b"x", Access::LikeShell, false).unwrap();
    assert_eq!(mode(&fresh), 0o666 & !process_umask());
}

#[test]
fn a_private_file_stays_private_even_when_replacing_a_wider_one() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("snap.tar");
    write(&target, b"one", Access::Private, false).unwrap();
    assert_eq!(mode(&target), 0o600);
    fs::set_permissions(&target, Permissions::from_mode(0o644)).unwrap();
    write(&target, b"two", Access::Private, true).unwrap();
    assert_eq!(mode(&target), 0o600, "never readable by others");
    fs::set_permissions(&target, Permissions::from_mode(0o400)).unwrap();
    write(&target, b"three", Access::Private, true).unwrap();
    assert_eq!(mode(&target), 0o400, "a narrower mode is kept");
    assert_eq!(fs::read(&target).unwrap(), b"three");
}

#[test]
fn a_missing_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("no/such/dir/out");
    let error = write(&target, b"x", Access::Private, false).unwrap_err();
    let WriteError::Io { path, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(path, &dir.path().join("no/such/dir"));
}
