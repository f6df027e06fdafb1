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
