use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};

use super::*;

#[test]
fn every_directory_is_indexed_by_inode_and_links_are_not_followed() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    fs::create_dir_all(root.join("system.slice/nginx.service")).unwrap();
    fs::create_dir_all(root.join("a b")).unwrap();
    fs::write(root.join("cgroup.procs"), "").unwrap();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), root.join("link")).unwrap();
    let index = CgroupIndex::build(root).unwrap();
    let ino = |rel: &str| fs::metadata(root.join(rel)).unwrap().ino();
    assert_eq!(index.path(ino(".")), Some(&b"/"[..]));
    assert_eq!(index.path(ino("system.slice")), Some(&b"/system.slice"[..]));
    let nginx = ino("system.slice/nginx.service");
    assert_eq!(index.path(nginx), Some(&b"/system.slice/nginx.service"[..]));
    assert_eq!(index.path(ino("a b")), Some(&b"/a b"[..]));
    let outside_ino = fs::metadata(outside.path()).unwrap().ino();
    assert_eq!(index.path(outside_ino), None, "a link is not followed");
    assert_eq!(index.len(), 4);
}

#[test]
fn the_walk_is_bounded_in_depth() {
    let tree = tempfile::tempdir().unwrap();
    let mut deep = tree.path().to_path_buf();
    for _ in 0..MAX_DEPTH + 3 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    let index = CgroupIndex::build(tree.path()).unwrap();
    assert_eq!(index.len(), MAX_DEPTH + 1);
    assert!(CgroupIndex::build(Path::new("/nonexistent-lsports")).is_err());
}

#[test]
fn the_cgroup2_mount_from_mountinfo() {
    // Lines from /proc/self/mountinfo on a hybrid host (Ubuntu 20.04) and a v2-only one.
    let hybrid = b"35 25 0:30 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,name=systemd\n\
        34 25 0:29 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
    assert_eq!(
        cgroup2_mount(hybrid),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    let v2 = b"30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n";
    assert_eq!(cgroup2_mount(v2), Some(PathBuf::from("/sys/fs/cgroup")));
    let escaped = b"30 23 0:26 / /mnt/my\\040cg\\777 rw - cgroup2 cgroup2 rw\n";
    assert_eq!(
        cgroup2_mount(escaped),
        Some(PathBuf::from("/mnt/my cg\\777"))
    );
    assert_eq!(
        cgroup2_mount(b"1 2 0:1 / /x rw - ext4 /dev/sda rw\n- cgroup2\n"),
        None
    );
}

#[test]
fn members_are_read_from_each_cgroups_procs_and_keep_the_top_most() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    fs::create_dir_all(root.join("a/threads")).unwrap();
    fs::create_dir_all(root.join("gone")).unwrap();
    fs::write(root.join("cgroup.procs"), "1\n").unwrap();
    // 0: a process outside the reader's PID namespace; 11 has threads in a/threads too.
    fs::write(root.join("a/cgroup.procs"), "10\n11\n0\nnot-a-pid\n").unwrap();
    fs::write(root.join("a/threads/cgroup.procs"), "11\n12\n").unwrap();
    let index = CgroupIndex::build(root).unwrap();
    let ino = |rel: &str| fs::metadata(root.join(rel)).unwrap().ino();
    let members = index.members(root).unwrap();
    let want: HashMap<u32, u64> = [
        (1, ino(".")),
        (10, ino("a")),
        (11, ino("a")),
        (12, ino("a/threads")),
    ]
    .into();
    assert_eq!(members, want, "a cgroup without cgroup.procs adds nobody");
}

#[test]
fn members_of_many_cgroups_are_the_same_read_on_two_threads() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    let cgroups = 2 * PARALLEL_FROM + 5;
    for n in 0..cgroups {
        let dir = root.join(format!("c{n}"));
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join("cgroup.procs"),
            format!("{}\n{}\n", 100 + n, 1000 + n),
        )
        .unwrap();
    }
    let index = CgroupIndex::build(root).unwrap();
    let members = index.members(root).unwrap();
    assert_eq!(members.len(), 2 * cgroups);
    for n in 0..cgroups {
        let id = fs::metadata(root.join(format!("c{n}"))).unwrap().ino();
        let pids = [100 + n, 1000 + n].map(|p| p as u32);
        assert_eq!(
            pids.map(|p| members.get(&p).copied()),
            [Some(id); 2],
            "c{n}"
        );
    }
}

#[test]
fn a_walk_cut_short_says_so() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    for dir in ["a/b", "c"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    let whole = CgroupIndex::build(root).unwrap();
    assert!(whole.is_complete());
    assert_eq!(whole.root_id(), fs::metadata(root).unwrap().ino());
    assert!(CgroupIndex::build_at_most(root, 4).unwrap().is_complete());
    let cut = CgroupIndex::build_at_most(root, 3).unwrap();
    assert_eq!((cut.len(), cut.is_complete()), (3, false));
    let mut deep = root.to_path_buf();
    for _ in 0..MAX_DEPTH + 1 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    let too_deep = CgroupIndex::build(root).unwrap();
    assert!(!too_deep.is_complete(), "a directory below the depth limit");
    deep.pop();
    fs::remove_dir(deep.join("d")).unwrap();
    assert!(
        CgroupIndex::build(root).unwrap().is_complete(),
        "the deepest directory recorded has no subdirectory"
    );
}

#[test]
fn threads_below_the_root_are_read_from_each_cgroups_tasks() {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    fs::create_dir_all(root.join("a.slice/b.service")).unwrap();
    fs::write(root.join("tasks"), "1\n2\n").unwrap();
    fs::write(root.join("cgroup.procs"), "1\n2\n").unwrap();
    fs::write(root.join("a.slice/tasks"), "").unwrap();
    fs::write(root.join("a.slice/b.service/tasks"), "10\n11\n0\n").unwrap();
    fs::write(root.join("a.slice/b.service/cgroup.procs"), "10\n").unwrap();
    let index = CgroupIndex::build(root).unwrap();
    let service = fs::metadata(root.join("a.slice/b.service")).unwrap().ino();
    let threads = index.threads_below_root(root).unwrap();
    let want: HashMap<u32, u64> = [(10, service), (11, service)].into();
    assert_eq!(threads, want, "the root's own tasks are not read");
}

#[test]
fn a_named_v1_hierarchy_mounted_from_its_root() {
    let line = |s: &str| named_v1_mount(s.as_bytes(), b"systemd");
    // Hybrid (Ubuntu 20.04), legacy with other options, and the others.
    assert_eq!(
        line(
            "35 25 0:30 / /sys/fs/cgroup/systemd rw,nosuid shared:10 - cgroup cgroup rw,xattr,name=systemd"
        ),
        Some(PathBuf::from("/sys/fs/cgroup/systemd"))
    );
    assert_eq!(
        line("35 25 0:30 / /mnt/sd\\040x rw - cgroup cgroup rw,name=systemd,release_agent=/x"),
        Some(PathBuf::from("/mnt/sd x"))
    );
    let not = [
        // A container's view of its own cgroup: paths below another root.
        "35 25 0:30 /docker/abc /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd",
        "35 25 0:30 / /sys/fs/cgroup/other rw - cgroup cgroup rw,name=other",
        "35 25 0:30 / /sys/fs/cgroup/x rw - cgroup cgroup rw,name=systemdx",
        "35 25 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu",
        "34 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,name=systemd",
        "35 25 0:30 / /sys/fs/cgroup/systemd rw - cgroup",
        "",
    ];
    for text in not {
        assert_eq!(line(text), None, "{text}");
    }
}
