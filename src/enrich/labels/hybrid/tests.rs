//! The `name=systemd` hierarchy read from a fake proc root and a fake hierarchy tree (plain
//! directories with `tasks` files): where each process is, and every condition under which
//! the files must be read instead. The real hierarchy is tested end to end in
//! `tests/labels_wired.rs`.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

const SERVICE: &str = "/a.slice/b.service";

/// A proc root whose `self` says it is in `own` of the `name=systemd` hierarchy mounted (as
/// mountinfo says, `root` being the mount's root field) at `mount`, in cgroup namespace
/// `namespace`.
fn proc_root(dir: &Path, own: &str, mount: &Path, root: &str, namespace: &str) -> ProcRoot {
    let own_self = dir.join("self");
    fs::create_dir_all(own_self.join("ns")).unwrap();
    fs::write(
        own_self.join("cgroup"),
        format!("3:cpu:/\n2:name=systemd:{own}\n0::/\n"),
    )
    .unwrap();
    symlink(namespace, own_self.join("ns/cgroup")).unwrap();
    let mountinfo = format!(
        "22 1 0:21 / /proc rw - proc proc rw\n\
         35 25 0:30 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
         36 25 0:31 {root} {} rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd\n",
        mount.display()
    );
    fs::write(own_self.join("mountinfo"), mountinfo).unwrap();
    ProcRoot::open(dir).unwrap()
}

/// A hierarchy with `a.slice/b.service` (this process, 42, and 4200: a thread of a process
/// whose main thread is elsewhere) and `a.slice/c.service` (empty); the root lists 7.
fn hierarchy(dir: &Path) {
    let me = std::process::id();
    fs::create_dir_all(dir.join("a.slice/b.service")).unwrap();
    fs::create_dir_all(dir.join("a.slice/c.service")).unwrap();
    fs::write(dir.join("tasks"), "7\n").unwrap();
    fs::write(dir.join("a.slice/tasks"), "").unwrap();
    fs::write(dir.join("a.slice/c.service/tasks"), "").unwrap();
    let tasks = format!("{me}\n42\n4200\n");
    fs::write(dir.join("a.slice/b.service/tasks"), tasks).unwrap();
}

#[test]
fn each_process_is_where_its_main_thread_is_and_the_rest_in_the_root() {
    let (proc, tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    hierarchy(tree.path());
    let root = proc_root(
        proc.path(),
        SERVICE,
        tree.path(),
        "/",
        "cgroup:[4026531835]",
    );
    let read = SystemdHierarchy::read(&root, 64).expect("read from the tree");
    let me = std::process::id();
    assert_eq!(read.path_of(me), SERVICE.as_bytes());
    assert_eq!(read.path_of(42), SERVICE.as_bytes());
    assert_eq!(read.path_of(7), b"/", "the root's own list is not needed");
    assert_eq!(
        read.path_of(4300),
        b"/",
        "only a main thread places a process"
    );
}

#[test]
fn a_host_without_the_hierarchy_has_everyone_in_the_root() {
    let proc = tempfile::tempdir().unwrap();
    fs::create_dir_all(proc.path().join("self")).unwrap();
    fs::write(proc.path().join("self/cgroup"), "0::/\n").unwrap();
    let root = ProcRoot::open(proc.path()).unwrap();
    let read = SystemdHierarchy::read(&root, 64).expect("nothing to read");
    assert!(matches!(read, SystemdHierarchy::Absent));
    assert_eq!(read.path_of(42), b"/");
}

#[test]
fn the_files_are_read_instead_where_the_tree_cannot_say() {
    let me_elsewhere = "/a.slice/c.service";
    let cases = [
        // (own path, mount root, cgroup namespace, budget, why)
        (
            SERVICE,
            "/",
            "cgroup:[4026532100]",
            64,
            "another cgroup namespace",
        ),
        (
            SERVICE,
            "/docker/abc",
            "cgroup:[4026531835]",
            64,
            "a mount of a subtree",
        ),
        (
            me_elsewhere,
            "/",
            "cgroup:[4026531835]",
            64,
            "not where self says",
        ),
        (
            SERVICE,
            "/",
            "cgroup:[4026531835]",
            3,
            "more cgroups than the budget",
        ),
    ];
    for (own, mount_root, namespace, budget, why) in cases {
        let (proc, tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        hierarchy(tree.path());
        let root = proc_root(proc.path(), own, tree.path(), mount_root, namespace);
        assert!(
            SystemdHierarchy::read(&root, budget).is_none(),
            "{why}: the files must be read"
        );
    }
    // Exactly the budget (the root and three more) is enough.
    let (proc, tree) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    hierarchy(tree.path());
    let root = proc_root(
        proc.path(),
        SERVICE,
        tree.path(),
        "/",
        "cgroup:[4026531835]",
    );
    assert!(SystemdHierarchy::read(&root, 4).is_some());
}

#[test]
fn no_mount_of_the_hierarchy_means_the_files() {
    let proc = tempfile::tempdir().unwrap();
    let root = proc_root(
        proc.path(),
        "/",
        Path::new("/nonexistent-lsports"),
        "/",
        "cgroup:[4026531835]",
    );
    fs::write(
        proc.path().join("self/mountinfo"),
        "22 1 0:21 / /proc rw - proc proc rw\n",
    )
    .unwrap();
    assert!(SystemdHierarchy::read(&root, 64).is_none(), "no mount line");
    fs::write(
        proc.path().join("self/mountinfo"),
        "36 25 0:31 / /nonexistent-lsports rw - cgroup cgroup rw,name=systemd\n",
    )
    .unwrap();
    assert!(SystemdHierarchy::read(&root, 64).is_none(), "a mount gone");
}
