//! The labeler end to end over fake state trees, and the refusals of hostile state files.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;

use super::safefile::{StateFile, open_below_fallback, open_root, read};
use super::*;

const ID: &str = "8e6c4d7b1b4e2f0c9a7d3e5f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";

fn put(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn docker_state(root: &Path, name_json: &str) {
    let rel = format!("var/lib/docker/containers/{ID}/config.v2.json");
    put(root, &rel, format!(r#"{{"Name":{name_json}}}"#).as_bytes());
}

fn file<'a>(base: &'a str, rel: &'a str) -> StateFile<'a> {
    StateFile {
        base,
        rel,
        cap: 1024,
        owner: None,
    }
}

#[test]
fn a_docker_process_gets_its_unit_and_container() {
    let root = tempfile::tempdir().unwrap();
    docker_state(root.path(), r#""/web""#);
    let mut labeler = Labeler::new(root.path());
    let cgroup = format!("0::/system.slice/docker-{ID}.scope\n");
    let labels = labeler.for_process_cgroup(cgroup.as_bytes());
    let want = Labels {
        unit: Some(format!("docker-{ID}.scope")),
        container: Some(Container {
            runtime: Runtime::Docker,
            id: ID.to_owned(),
            name: Some("web".to_owned()),
            pod: None,
            pod_namespace: None,
            rootless_uid: None,
            rootless_user: None,
        }),
    };
    assert_eq!(*labels, want);
    // Unknown state: the container is still known, by id.
    let mut bare = Labeler::new(Path::new("/nonexistent-lsports-root"));
    let labels = bare.for_process_cgroup(cgroup.as_bytes());
    let container = labels.container.as_ref().unwrap();
    assert_eq!(
        (container.runtime, container.id.as_str()),
        (Runtime::Docker, ID)
    );
    assert_eq!(container.name, None);
    assert_eq!(
        *bare.for_process_cgroup(b"0::/system.slice/sshd.service\n"),
        Labels {
            unit: Some("sshd.service".into()),
            container: None,
        }
    );
    assert_eq!(*bare.for_process_cgroup(b""), Labels::default());
}

#[test]
fn each_cgroup_path_is_derived_once() {
    let root = tempfile::tempdir().unwrap();
    docker_state(root.path(), r#""/web""#);
    let mut labeler = Labeler::new(root.path());
    let path = format!("/system.slice/docker-{ID}.scope");
    let first = labeler.for_cgroup_path(path.as_bytes());
    fs::remove_dir_all(root.path().join("var")).unwrap();
    let again = labeler.for_cgroup_path(path.as_bytes());
    assert!(Arc::ptr_eq(&first, &again));
}

#[test]
fn hostile_names_are_escaped_by_the_display_accessors() {
    let root = tempfile::tempdir().unwrap();
    // JSON escapes for ESC, a newline and a right-to-left override: all legal in a name.
    docker_state(root.path(), r#""/\u001b[2Jok\nfake row\u202e""#);
    let mut labeler = Labeler::new(root.path());
    let path = format!("/system.slice/docker-{ID}.scope");
    let labels = labeler.for_cgroup_path(path.as_bytes());
    let container = labels.container.as_ref().unwrap();
    assert_eq!(
        container.name.as_deref(),
        Some("\u{1b}[2Jok\nfake row\u{202e}"),
        "raw"
    );
    assert_eq!(
        container.display_name().as_deref(),
        Some(r"\e[2Jok\nfake row\u{202E}")
    );
    // LXC names come straight from the cgroup path, and the unit too.
    let labels = labeler.for_cgroup_path(b"/lxc.payload.a\x1bb/x\x07y.service");
    let container = labels.container.as_ref().unwrap();
    assert_eq!(container.display_id(), r"a\eb");
    assert_eq!(container.display_name().as_deref(), Some(r"a\eb"));
    assert_eq!(labels.unit, None, "a control character is in no unit name");
    let labels = labeler.for_cgroup_path(br"/machine.slice/machine-x\x1b\x0a.scope");
    let container = labels.container.as_ref().unwrap();
    assert_eq!(container.name.as_deref(), Some("x\u{1b}\n"));
    assert_eq!(container.display_name().as_deref(), Some(r"x\e\n"));
    assert_eq!(
        labels.display_unit().as_deref(),
        Some(r"machine-x\\x1b\\x0a.scope")
    );
}

#[test]
fn a_symlinked_state_file_is_refused() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "secret.json", br#"{"Name":"/leaked"}"#);
    let dir = root.path().join(format!("var/lib/docker/containers/{ID}"));
    fs::create_dir_all(&dir).unwrap();
    symlink(root.path().join("secret.json"), dir.join("config.v2.json")).unwrap();
    let mut labeler = Labeler::new(root.path());
    let labels = labeler.for_cgroup_path(format!("/docker/{ID}").as_bytes());
    assert_eq!(labels.container.as_ref().unwrap().name, None);

    let fd = open_root(root.path()).unwrap();
    let rel = format!("{ID}/config.v2.json");
    let error = read(fd.as_fd(), &file("var/lib/docker/containers", &rel)).unwrap_err();
    assert!(error.to_string().contains("symbolic link"), "{error}");
    // Without openat2: the same refusal, component by component (the file and a directory).
    let base = fd.as_fd();
    let via = format!("var/lib/docker/containers/{rel}");
    let error = open_below_fallback(base, &via).unwrap_err();
    assert!(error.to_string().contains("symbolic link"), "{error}");
    fs::rename(&dir, root.path().join("real")).unwrap();
    symlink(root.path().join("real"), &dir).unwrap();
    assert!(open_below_fallback(base, &via).is_err());
    assert!(open_below_fallback(base, "var/../secret.json").is_err());
    assert!(open_below_fallback(base, "secret.json").is_ok());
}

#[test]
fn a_fifo_state_file_is_refused_without_blocking() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(format!("var/lib/docker/containers/{ID}"));
    fs::create_dir_all(&dir).unwrap();
    nix::unistd::mkfifo(&dir.join("config.v2.json"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let fd = open_root(root.path()).unwrap();
    let rel = format!("{ID}/config.v2.json");
    let error = read(fd.as_fd(), &file("var/lib/docker/containers", &rel)).unwrap_err();
    assert!(error.to_string().contains("not a regular file"), "{error}");
    let mut labeler = Labeler::new(root.path());
    let labels = labeler.for_cgroup_path(format!("/docker/{ID}").as_bytes());
    assert_eq!(labels.container.as_ref().unwrap().name, None);
}

#[test]
fn a_huge_state_file_is_refused_unread() {
    let root = tempfile::tempdir().unwrap();
    // 5 MiB, sparse: over the 4 MiB cap of a config.
    let rel = format!("var/lib/docker/containers/{ID}/config.v2.json");
    put(root.path(), &rel, br#"{"Name":"/big"}"#);
    fs::OpenOptions::new()
        .write(true)
        .open(root.path().join(&rel))
        .unwrap()
        .set_len(5 << 20)
        .unwrap();
    let mut labeler = Labeler::new(root.path());
    let labels = labeler.for_cgroup_path(format!("/docker/{ID}").as_bytes());
    assert_eq!(labels.container.as_ref().unwrap().name, None);
    let fd = open_root(root.path()).unwrap();
    let error = read(fd.as_fd(), &file(".", &rel)).unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");
}

#[test]
fn the_base_stays_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "etc/passwd", b"x");
    // An absolute link in the base resolves inside the root; `..` cannot climb out.
    symlink("/etc", root.path().join("link")).unwrap();
    let fd = open_root(root.path()).unwrap();
    assert_eq!(read(fd.as_fd(), &file("link", "passwd")).unwrap(), b"x");
    let inner = root.path().join("etc");
    let fd = open_root(&inner).unwrap();
    assert_eq!(
        read(fd.as_fd(), &file("..", "passwd")).unwrap(),
        b"x",
        "`..` of the root is the root"
    );
    assert!(read(fd.as_fd(), &file(".", "../etc/passwd")).is_err());
}
