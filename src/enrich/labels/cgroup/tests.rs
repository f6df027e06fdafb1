//! Paths as the runtimes write them. Provenance: the naming code named in `labels`' module
//! docs; the ids are made up in the runtimes' form.

use super::*;

const ID: &str = "8e6c4d7b1b4e2f0c9a7d3e5f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";

fn container(path: &str) -> Option<(Runtime, String, Option<&'static str>)> {
    let found = derive(path.as_bytes()).container?;
    let id = String::from_utf8(found.id.to_vec()).unwrap();
    Some((found.runtime, id, found.namespace))
}

fn unit(path: &str) -> Option<String> {
    let unit = derive(path.as_bytes()).unit?;
    Some(String::from_utf8(unit.to_bytes()).unwrap())
}

#[test]
fn every_runtime_naming_is_recognised() {
    use Runtime::*;
    let cases: &[(String, Runtime, Option<&str>)] = &[
        // Docker, systemd and cgroupfs drivers.
        (format!("/system.slice/docker-{ID}.scope"), Docker, None),
        (format!("/docker/{ID}"), Docker, None),
        // Podman: container, conmon, in a pod, cgroupfs driver, systemd inside (`/container`).
        (format!("/machine.slice/libpod-{ID}.scope"), Podman, None),
        (
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            Podman,
            None,
        ),
        (
            format!(
                "/machine.slice/machine-libpod_pod_{}.slice/libpod-{ID}.scope",
                &ID[..12]
            ),
            Podman,
            None,
        ),
        (format!("/libpod_parent/libpod-{ID}"), Podman, None),
        (
            format!("/machine.slice/libpod-{ID}.scope/container"),
            Podman,
            None,
        ),
        // Kubernetes with containerd and CRI-O, systemd driver.
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/\
                 kubepods-burstable-pod0d3c1e2f_4a5b_6c7d_8e9f_0a1b2c3d4e5f.slice/cri-containerd-{ID}.scope"
            ),
            Containerd,
            Some("k8s.io"),
        ),
        (
            format!("/kubepods.slice/kubepods-pod0d3c1e2f_4a5b.slice/crio-{ID}.scope"),
            CriO,
            None,
        ),
        (
            format!("/kubepods.slice/kubepods-pod1.slice/crio-conmon-{ID}.scope"),
            CriO,
            None,
        ),
        // Kubernetes, cgroupfs driver: the runtime is not in the path.
        (
            format!("/kubepods/burstable/pod0d3c1e2f-4a5b-6c7d/{ID}"),
            Cri,
            None,
        ),
        (format!("/kubepods/pod0d3c1e2f-4a5b-6c7d/{ID}"), Cri, None),
        // nerdctl and plain containerd.
        (
            format!("/system.slice/nerdctl-{ID}.scope"),
            Containerd,
            Some("default"),
        ),
        (format!("/default/{ID}"), Containerd, Some("default")),
        // Rootless Podman and Docker under a user manager.
        (
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            Podman,
            None,
        ),
        (
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{ID}.scope"),
            Docker,
            None,
        ),
    ];
    for (path, runtime, namespace) in cases {
        assert_eq!(
            container(path),
            Some((*runtime, ID.to_owned(), *namespace)),
            "{path}"
        );
    }
}

#[test]
fn lxc_and_machines_are_named_by_their_cgroup() {
    assert_eq!(
        container("/lxc.payload.web1"),
        Some((Runtime::Lxc, "web1".into(), None))
    );
    assert_eq!(
        container("/lxc.monitor.web1"),
        Some((Runtime::Lxc, "web1".into(), None))
    );
    assert_eq!(
        container("/lxc/old-style/init.scope"),
        Some((Runtime::Lxc, "old-style".into(), None))
    );
    // systemd-machined escapes `-` in the machine name as `\x2d`.
    let found = derive(br"/machine.slice/machine-qemu\x2d1\x2dvm.scope")
        .container
        .unwrap();
    assert_eq!(found.runtime, Runtime::Machine);
    assert_eq!(unescape_unit_name(found.id), b"qemu-1-vm");
}

#[test]
fn ids_not_in_the_runtimes_form_are_no_container() {
    for path in [
        "/system.slice/docker-abc.scope".to_owned(),
        format!("/system.slice/docker-{}.scope", ID.to_uppercase()),
        format!("/system.slice/docker-{}x.scope", &ID[..63]),
        format!("/system.slice/docker-../../{ID}.scope"),
        format!("/somewhere/{ID}"),
        format!("/pod1/{ID}"), // pod… only counts under kubepods
        "/system.slice/machine.slice".to_owned(),
    ] {
        assert_eq!(container(&path), None, "{path}");
    }
}

#[test]
fn the_outermost_container_wins() {
    let inner = ID.replace('8', "9");
    let path = format!("/system.slice/docker-{ID}.scope/docker/{inner}");
    assert_eq!(container(&path).unwrap().1, ID);
}

#[test]
fn units_follow_systemds_rule() {
    let cases = [
        ("/system.slice/nginx.service", Some("nginx.service")),
        ("/system.slice/sshd.socket", Some("sshd.socket")),
        (
            "/system.slice/nginx.service/workers/a",
            Some("nginx.service"),
        ),
        ("/init.scope", Some("init.scope")),
        (
            "/system.slice/system-getty.slice/getty@tty1.service",
            Some("getty@tty1.service"),
        ),
        (
            "/user.slice/user-1000.slice/session-3.scope",
            Some("session-3.scope"),
        ),
        (
            "/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.service",
            Some("user@1000.service/app-firefox.service"),
        ),
        (
            "/user.slice/user-1000.slice/user@1000.service/init.scope",
            Some("user@1000.service/init.scope"),
        ),
        (
            "/user.slice/user-1000.slice/user@1000.service",
            Some("user@1000.service"),
        ),
        // Prefixes a cgroup namespace or a test parent adds do not hide the unit.
        (
            "/lsports-test-1/system.slice/nginx.service",
            Some("nginx.service"),
        ),
        // The host's unit, not one a container's own systemd made.
        (
            "/system.slice/docker-x.scope/system.slice/nginx.service",
            Some("docker-x.scope"),
        ),
        ("/", None),
        ("/system.slice", None),
        ("/user.slice/user-1000.slice", None),
        ("/system.slice/.service", None),
        ("/system.slice/evil\u{1b}[2J.service", None),
        ("/system.slice/has space.service", None),
    ];
    for (path, want) in cases {
        assert_eq!(unit(path).as_deref(), want, "{path}");
    }
}

#[test]
fn the_user_manager_names_the_user() {
    let path =
        format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope");
    assert_eq!(derive(path.as_bytes()).user, Some(1000));
    assert_eq!(derive(b"/system.slice/nginx.service").user, None);
    assert_eq!(derive(b"/user.slice/user@x.service").user, None);
    assert_eq!(derive(b"/user.slice/user@99999999999.service").user, None);
}

#[test]
fn process_cgroup_files_in_every_layout() {
    // cgroup v2 only (`cat /proc/self/cgroup` on Fedora, Debian 11+, Ubuntu 21.10+).
    let v2 = b"0::/system.slice/nginx.service\n";
    assert_eq!(
        process_cgroup_path(v2),
        Some(&b"/system.slice/nginx.service"[..])
    );
    // Hybrid: v1 controllers, name=systemd, and the unified tree (Ubuntu 20.04).
    let hybrid = b"12:pids:/system.slice/nginx.service\n\
        1:name=systemd:/system.slice/nginx.service\n0::/system.slice/nginx.service\n";
    assert_eq!(
        process_cgroup_path(hybrid),
        Some(&b"/system.slice/nginx.service"[..])
    );
    // Hybrid where the runtime only joined the v1 hierarchies: the unified path is the root.
    let v1_only = b"4:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n";
    assert_eq!(process_cgroup_path(v1_only), Some(&b"/docker/abc"[..]));
    // Legacy v1 without the unified tree (CentOS 7).
    let legacy = b"2:cpu,cpuacct:/x\n1:name=systemd:/system.slice/sshd.service\n";
    assert_eq!(
        process_cgroup_path(legacy),
        Some(&b"/system.slice/sshd.service"[..])
    );
    assert_eq!(process_cgroup_path(b"0::/\n"), Some(&b"/"[..]));
    assert_eq!(process_cgroup_path(b""), None);
    assert_eq!(process_cgroup_path(b"garbage\n1:cpu\n"), None);
}

#[test]
fn unescaping_keeps_what_is_no_escape() {
    assert_eq!(unescape_unit_name(br"a\x2db"), b"a-b");
    assert_eq!(unescape_unit_name(br"a\x2"), br"a\x2");
    assert_eq!(unescape_unit_name(br"a\x+fb"), br"a\x+fb");
    assert_eq!(unescape_unit_name(br"\x1b"), b"\x1b");
    assert_eq!(unescape_unit_name(b"\\"), b"\\");
}
