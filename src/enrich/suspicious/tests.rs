//! Flags on hand-made entries and on a fake proc tree whose `PID/root` is a directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::model::{
    DeviceBinding, Family, OwnerProcess, Protocol, Socket, SocketState, SourceKind,
};

fn entry(addr: &str, holders: &[(u32, u32)], unknown: Option<OwnerUnknownReason>) -> Entry {
    let local_addr = addr.parse().unwrap();
    Entry {
        socket: Socket {
            protocol: Protocol::Tcp,
            family: Family::Ipv4,
            local_addr,
            local_port: 22,
            remote_addr: "0.0.0.0".parse().unwrap(),
            remote_port: 0,
            state: SocketState::LISTEN,
            recv_q: 0,
            send_q: Some(128),
            uid: 0,
            inode: 7,
            v6only: None,
            device: DeviceBinding::Unbound,
            source: SourceKind::Netlink,
            cgroup_id: None,
            netns: None,
        },
        processes: holders
            .iter()
            .map(|&(pid, uid)| OwnerProcess {
                pid,
                fd: 3,
                name: Some(b"sshd"[..].into()),
                cmdline: None,
                uid: Some(uid),
                labels: None,
            })
            .collect(),
        owner_unknown: unknown,
        findings: Default::default(),
        labels: None,
        reach: Default::default(),
    }
}

fn flags(findings: &[Finding]) -> Vec<Flag> {
    findings.iter().map(|f| f.flag).collect()
}

#[test]
fn a_deleted_executable_is_flagged_and_named() {
    let found = exe_findings(
        b"/usr/sbin/sshd (deleted)",
        &[812],
        Path::new("/nonexistent"),
    );
    assert_eq!(flags(&found), [Flag::ExeDeleted]);
    assert_eq!(
        found[0].explanation,
        "pid 812: executable /usr/sbin/sshd was deleted or replaced after it started (an \
         upgrade awaiting a restart, or a program hiding its binary)"
    );
    assert!(exe_findings(b"/usr/sbin/sshd", &[812], Path::new("/nonexistent")).is_empty());
}

#[test]
fn temporary_directories_are_recognised_by_path_alone() {
    for exe in [&b"/tmp/x/evil"[..], b"/dev/shm/.a", b"/var/tmp/b (deleted)"] {
        let found = exe_findings(exe, &[9, 10], Path::new("/nonexistent"));
        assert!(flags(&found).contains(&Flag::ExeWritableDir), "{found:?}");
        let text = &found.last().unwrap().explanation;
        assert!(text.starts_with("pids 9,10: executable /"), "{text}");
        assert!(text.contains("a temporary directory"), "{text}");
    }
    // A name that merely starts like one is not in it.
    assert!(exe_findings(b"/tmpfoo/bin", &[9], Path::new("/nonexistent")).is_empty());
}

#[test]
fn world_writable_directories_are_found_through_the_process_root() {
    let proc = tempfile::tempdir().unwrap();
    let root = proc.path().join("42/root");
    fs::create_dir_all(root.join("srv/drop/bin")).unwrap();
    fs::create_dir_all(root.join("opt/app")).unwrap();
    fs::write(root.join("srv/drop/bin/app"), b"").unwrap();
    fs::write(root.join("opt/app/run"), b"").unwrap();
    fs::set_permissions(root.join("srv/drop"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(root.join("opt/app/run"), fs::Permissions::from_mode(0o757)).unwrap();
    let found = exe_findings(b"/srv/drop/bin/app", &[42], proc.path());
    assert_eq!(flags(&found), [Flag::ExeWritableDir]);
    assert!(
        found[0]
            .explanation
            .contains("is under /srv/drop, a directory every user can write to"),
        "{found:?}"
    );
    let found = exe_findings(b"/opt/app/run", &[42], proc.path());
    assert!(
        found[0].explanation.contains("is writable by every user"),
        "{found:?}"
    );
    // Another process's root does not have the layout: nothing is claimed.
    assert!(exe_findings(b"/srv/drop/bin/app", &[43], proc.path()).is_empty());
}

#[test]
fn root_holding_an_exposed_listener_is_flagged_but_not_on_loopback() {
    let exposed = entry("0.0.0.0", &[(812, 0), (900, 33)], None);
    let found = inspect(&exposed, &Executables::default(), Path::new("/nonexistent"));
    assert_eq!(flags(&found), [Flag::RootExposed]);
    assert!(
        found[0]
            .explanation
            .starts_with("pid 812: reachable from outside (exposure all)")
    );
    let loopback = entry("127.0.0.1", &[(812, 0)], None);
    assert!(inspect(&loopback, &Executables::default(), Path::new("/x")).is_empty());
    let unprivileged = entry("0.0.0.0", &[(900, 33)], None);
    assert!(inspect(&unprivileged, &Executables::default(), Path::new("/x")).is_empty());
}

#[test]
fn no_owner_only_when_every_process_could_be_inspected() {
    for reason in [OwnerUnknownReason::Kernel, OwnerUnknownReason::NotFound] {
        let orphan = entry("127.0.0.1", &[], Some(reason));
        let found = inspect(&orphan, &Executables::default(), Path::new("/x"));
        assert_eq!(flags(&found), [Flag::NoOwner], "{reason:?}");
    }
    let hidden = entry("127.0.0.1", &[], Some(OwnerUnknownReason::Permission));
    assert!(inspect(&hidden, &Executables::default(), Path::new("/x")).is_empty());
    // Not attributed at all: nothing is known, nothing is claimed.
    let unscanned = entry("127.0.0.1", &[], None);
    assert!(inspect(&unscanned, &Executables::default(), Path::new("/x")).is_empty());
}

#[test]
fn flag_names_are_distinct() {
    let names: std::collections::HashSet<_> = Flag::EVERY.iter().map(|f| f.name()).collect();
    assert_eq!(names.len(), Flag::EVERY.len());
}
