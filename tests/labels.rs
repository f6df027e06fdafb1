//! Labels of real processes in real cgroup v2 directories named as Docker, Podman,
//! containerd and CRI-O under Kubernetes, and systemd name them, with a fake runtime state
//! tree: each process's `/proc/PID/cgroup`, and the cgroup id the kernel reports over
//! sock_diag (`INET_DIAG_CGROUP_ID`) for a socket the process made, must name the container
//! and unit the test built.
//!
//! The directories live under a test-owned parent, `<cgroup2 mount>/lsports-test-<pid>-<n>`,
//! removed at the end even when the test fails. Needs root; under `CI=true` a cgroup2 mount
//! that cannot be written is a failure.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use lsports::enrich::labels::{Container, Labeler, Labels, Runtime};

use common::{cgroup2_mount_as_root, put, scrubbed, skip_unless_ci};

const DOCKER: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const PODMAN: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const CONTAINERD: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const CRIO: &str = "4444444444444444444444444444444444444444444444444444444444444444";

/// Cgroups made under the cgroup2 mount and the processes put in them; on drop the
/// processes are killed and the directories removed, deepest first.
struct CgroupTree {
    parent: PathBuf,
    dirs: Vec<PathBuf>,
    children: Vec<Child>,
}

impl CgroupTree {
    fn create(mount: &Path) -> Result<CgroupTree, String> {
        // Tests of this binary run in parallel in one process: a counter keeps their parents
        // apart.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let parent = mount.join(format!("lsports-test-{}-{n}", std::process::id()));
        fs::create_dir(&parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        Ok(CgroupTree {
            parent,
            dirs: Vec::new(),
            children: Vec::new(),
        })
    }

    /// Make the cgroup `rel` (and its parents) under the test's parent.
    fn make(&mut self, rel: &str) -> PathBuf {
        let mut dir = self.parent.clone();
        for part in rel.split('/') {
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
                self.dirs.push(dir.clone());
            }
        }
        dir
    }

    /// Start a process in `cgroup`, in a network namespace of its own, that listens on TCP;
    /// returns its pid and its socket's inode once it listens.
    fn listener_in(&mut self, cgroup: &Path) -> (u32, u64) {
        let script = "import os,socket,sys\n\
            s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
            print(os.fstat(s.fileno()).st_ino, flush=True)\n\
            sys.stdin.read()\n";
        let mut cmd = scrubbed("sh");
        cmd.args([
            "-c",
            "echo $$ > \"$1/cgroup.procs\" && exec unshare --net python3 -c \"$2\"",
        ])
        .args(["sh"])
        .arg(cgroup)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        let inode = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the process in {} did not listen: {line:?}",
                cgroup.display()
            )
        });
        (pid, inode)
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in self.dirs.iter().rev().chain([&self.parent]) {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// The cgroup2 mount, made writable for this test: `None` (after saying why) where the test
/// cannot run.
fn cgroup_tree() -> Option<(PathBuf, CgroupTree)> {
    let mount = cgroup2_mount_as_root("making cgroups")?;
    match CgroupTree::create(&mount) {
        Ok(tree) => Some((mount, tree)),
        Err(why) => {
            skip_unless_ci(&format!("the cgroup2 mount is not writable: {why}"));
            None
        }
    }
}

/// The runtimes' state for the containers of [`cases`], in their formats.
fn state_tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    put(
        r,
        &format!("var/lib/docker/containers/{DOCKER}/config.v2.json"),
        r#"{"Name":"/web"}"#,
    );
    put(
        r,
        "var/lib/containers/storage/overlay-containers/containers.json",
        &format!(r#"[{{"id":"{PODMAN}","names":["db"]}}]"#),
    );
    put(
        r,
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{CONTAINERD}/config.json"),
        r#"{"annotations":{"io.kubernetes.cri.container-name":"nginx",
            "io.kubernetes.cri.sandbox-name":"web-5d9f","io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
    );
    put(
        r,
        &format!("run/containers/storage/overlay-containers/{CRIO}/userdata/config.json"),
        r#"{"annotations":{"io.kubernetes.container.name":"api",
            "io.kubernetes.pod.name":"api-7c","io.kubernetes.pod.namespace":"prod"}}"#,
    );
    root
}

fn container(
    runtime: Runtime,
    id: &str,
    name: &str,
    pod: Option<(&str, &str)>,
) -> Option<Container> {
    Some(Container {
        runtime,
        id: id.to_owned(),
        name: Some(name.to_owned()),
        pod: pod.map(|p| p.0.to_owned()),
        pod_namespace: pod.map(|p| p.1.to_owned()),
        rootless_uid: None,
        rootless_user: None,
    })
}

/// Each cgroup (relative to the test's parent) and the labels it must get.
fn cases() -> Vec<(String, Labels)> {
    let pod = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0d3c1e2f_4a5b_6c7d_8e9f_0a1b2c3d4e5f.slice";
    vec![
        (
            format!("system.slice/docker-{DOCKER}.scope"),
            Labels {
                unit: Some(format!("docker-{DOCKER}.scope")),
                container: container(Runtime::Docker, DOCKER, "web", None),
            },
        ),
        (
            format!("machine.slice/libpod-{PODMAN}.scope"),
            Labels {
                unit: Some(format!("libpod-{PODMAN}.scope")),
                container: container(Runtime::Podman, PODMAN, "db", None),
            },
        ),
        (
            format!("{pod}/cri-containerd-{CONTAINERD}.scope"),
            Labels {
                unit: Some(format!("cri-containerd-{CONTAINERD}.scope")),
                container: container(
                    Runtime::Containerd,
                    CONTAINERD,
                    "nginx",
                    Some(("web-5d9f", "shop")),
                ),
            },
        ),
        (
            format!("kubepods/burstable/pod0d3c1e2f-4a5b-6c7d-8e9f-0a1b2c3d4e5f/{CRIO}"),
            Labels {
                unit: None,
                container: container(Runtime::CriO, CRIO, "api", Some(("api-7c", "prod"))),
            },
        ),
        (
            "system.slice/nginx.service".to_owned(),
            Labels {
                unit: Some("nginx.service".to_owned()),
                container: None,
            },
        ),
        (
            "user.slice/user-1000.slice/user@1000.service/app.slice/app.service".to_owned(),
            Labels {
                unit: Some("user@1000.service/app.service".to_owned()),
                container: None,
            },
        ),
    ]
}

#[test]
fn real_cgroups_name_their_processes_and_sockets() {
    let Some((mount, mut tree)) = cgroup_tree() else {
        return;
    };
    let state = state_tree();
    let mut labeler = Labeler::new(state.path()).with_cgroup_mount(mount);
    // Every process and socket first, as on a host being listed: the cgroup index is built
    // once, at the first id asked for.
    let started: Vec<_> = cases()
        .into_iter()
        .map(|(rel, want)| {
            let cgroup = tree.make(&rel);
            let (pid, inode) = tree.listener_in(&cgroup);
            (rel, want, cgroup, pid, inode)
        })
        .collect();
    for (rel, want, cgroup, pid, inode) in started {
        let content = fs::read(format!("/proc/{pid}/cgroup")).unwrap();
        let got = labeler.for_process_cgroup(&content);
        let seen = String::from_utf8_lossy(&content);
        assert_eq!(
            *got, want,
            "process in {rel}: /proc/{pid}/cgroup says {seen:?}"
        );
        let id = common::sockdiag::socket_cgroup_id(pid, inode, libc::AF_INET, libc::IPPROTO_TCP)
            .expect("the kernel sends INET_DIAG_CGROUP_ID");
        assert_eq!(
            id,
            fs::metadata(&cgroup).unwrap().ino(),
            "a cgroup's id is its inode"
        );
        let got = labeler.for_cgroup_id(id);
        assert_eq!(got.as_deref(), Some(&want), "socket made in {rel}");
    }
    assert_eq!(labeler.for_cgroup_id(u64::MAX), None);
}

/// The cgroup index over the real cgroup2 file system, where a cgroup with no subdirectory is
/// known from its link count alone (not opened and listed): every cgroup made, leaf or not,
/// at any depth, has its path under its id (its inode), and files are not cgroups.
#[test]
fn the_cgroup_index_of_a_real_tree_names_every_cgroup_leaf_or_not() {
    let Some((mount, mut tree)) = cgroup_tree() else {
        return;
    };
    let made: Vec<PathBuf> = [
        "leaf",
        "system.slice/a.service",
        "system.slice/b.service",
        "system.slice/nested.slice/c.scope",
        "empty.slice/deep/deeper/deepest",
    ]
    .iter()
    .map(|rel| tree.make(rel))
    .collect();
    let index = lsports::sys::cgroupfs::CgroupIndex::build(&mount).unwrap();
    let dirs = tree.dirs.clone();
    assert!(dirs.len() > made.len(), "parents and leaves: {dirs:?}");
    for dir in dirs.iter().chain([&tree.parent]) {
        let rel = dir.strip_prefix(&mount).unwrap();
        let want = format!("/{}", rel.display());
        let id = fs::metadata(dir).unwrap().ino();
        assert_eq!(
            index.path(id).map(String::from_utf8_lossy).as_deref(),
            Some(want.as_str()),
            "{}",
            dir.display()
        );
    }
    let file = fs::metadata(made[0].join("cgroup.procs")).unwrap().ino();
    assert_eq!(index.path(file), None, "a cgroup's file is no cgroup");
}
