//! Fake state trees in the runtimes' formats. Provenance of each sample: the field names
//! of moby's `container.Container` (config.v2.json), containers/storage's `Container`
//! (containers.json), the annotations containerd's CRI plugin
//! (`pkg/cri/annotations`) and CRI-O (`pkg/annotations`) put in the OCI spec.

use std::fs;
use std::os::unix::fs::symlink;

use super::*;

pub const ID: &str = "8e6c4d7b1b4e2f0c9a7d3e5f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";

fn put(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn key(runtime: Runtime, namespace: Option<&'static str>, user: Option<u32>) -> Key {
    Key {
        runtime,
        id: ID.to_owned(),
        namespace,
        user,
    }
}

fn named(name: Option<&str>, pod: Option<&str>, ns: Option<&str>) -> Names {
    Names {
        name: name.map(str::to_owned),
        pod: pod.map(str::to_owned),
        pod_namespace: ns.map(str::to_owned),
    }
}

#[test]
fn docker_names_from_config_v2() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        &format!("var/lib/docker/containers/{ID}/config.v2.json"),
        &format!(
            r#"{{"ID":"{ID}","Name":"/web","State":{{"Running":true}},"Config":{{"Image":"nginx","Labels":{{"com.example":"x"}}}}}}"#
        ),
    );
    let mut reader = StateReader::new(root.path());
    let got = reader.names(&key(Runtime::Docker, None, None));
    assert_eq!(got, Some((Runtime::Docker, named(Some("web"), None, None))));
}

#[test]
fn docker_under_kubernetes_uses_its_labels() {
    let data = r#"{"Name":"/k8s_app_web-0_shop_uid_0","Config":{"Labels":{
        "io.kubernetes.container.name":"app","io.kubernetes.pod.name":"web-0",
        "io.kubernetes.pod.namespace":"shop"}}}"#;
    assert_eq!(
        parse_docker(data.as_bytes()),
        Some(named(Some("app"), Some("web-0"), Some("shop")))
    );
    assert_eq!(
        parse_docker(br#"{"Config":{"Labels":null}}"#),
        Some(Names::default())
    );
}

#[test]
fn podman_names_from_containers_json_read_once() {
    let root = tempfile::tempdir().unwrap();
    let list = "var/lib/containers/storage/overlay-containers/containers.json";
    put(
        root.path(),
        list,
        &format!(
            r#"[{{"id":"{ID}","names":["db"],"image":"x","layer":"y","metadata":"{{}}","created":"2024-01-01T00:00:00Z"}},{{"id":"other","names":[]}}]"#
        ),
    );
    let mut reader = StateReader::new(root.path());
    let want = Some((Runtime::Podman, named(Some("db"), None, None)));
    assert_eq!(reader.names(&key(Runtime::Podman, None, None)), want);
    // Cached: a changed file is not read again in the same run.
    fs::remove_file(root.path().join(list)).unwrap();
    assert_eq!(reader.names(&key(Runtime::Podman, None, None)), want);
    let mut other = key(Runtime::Podman, None, None);
    other.id = "f".repeat(64);
    assert_eq!(
        reader.names(&other),
        None,
        "the list was read once, and it has no such id"
    );
}

#[test]
fn containerd_and_crio_names_from_oci_annotations() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
        r#"{"ociVersion":"1.1.0","process":{"args":["nginx"]},"annotations":{
            "io.kubernetes.cri.container-type":"container",
            "io.kubernetes.cri.container-name":"nginx",
            "io.kubernetes.cri.sandbox-name":"web-5d9f",
            "io.kubernetes.cri.sandbox-namespace":"default"}}"#,
    );
    let mut reader = StateReader::new(root.path());
    let want = named(Some("nginx"), Some("web-5d9f"), Some("default"));
    let got = reader.names(&key(Runtime::Containerd, Some("k8s.io"), None));
    assert_eq!(got, Some((Runtime::Containerd, want.clone())));
    // cgroupfs Kubernetes: the runtime is found from where the state is.
    let got = reader.names(&key(Runtime::Cri, None, None));
    assert_eq!(got, Some((Runtime::Containerd, want)));

    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        &format!("run/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        r#"{"annotations":{"io.kubernetes.container.name":"api",
            "io.kubernetes.pod.name":"api-7c","io.kubernetes.pod.namespace":"prod",
            "io.kubernetes.cri-o.ContainerType":"container"}}"#,
    );
    let mut reader = StateReader::new(root.path());
    let want = named(Some("api"), Some("api-7c"), Some("prod"));
    assert_eq!(
        reader.names(&key(Runtime::CriO, None, None)),
        Some((Runtime::CriO, want.clone()))
    );
    assert_eq!(
        reader.names(&key(Runtime::Cri, None, None)),
        Some((Runtime::CriO, want))
    );
}

#[test]
fn a_pods_sandbox_has_the_pod_but_no_name() {
    let data = r#"{"annotations":{"io.kubernetes.cri.container-type":"sandbox",
        "io.kubernetes.cri.container-name":"ignored","io.kubernetes.cri.sandbox-name":"web",
        "io.kubernetes.cri.sandbox-namespace":"shop"}}"#;
    assert_eq!(
        parse_oci_annotations(data.as_bytes()),
        Some(named(None, Some("web"), Some("shop")))
    );
    let nerdctl = r#"{"annotations":{"nerdctl/name":"redis"}}"#;
    assert_eq!(
        parse_oci_annotations(nerdctl.as_bytes()),
        Some(named(Some("redis"), None, None))
    );
}

#[test]
fn malformed_state_is_unknown_never_a_panic() {
    for bad in [
        &b""[..],
        b"{",
        b"null",
        b"[1,2]",
        br#"{"Name":5}"#,
        br#"{"Config":{"Labels":{"a":1}}}"#,
        b"\xff\xfe",
    ] {
        assert_eq!(parse_docker(bad), None, "{bad:?}");
        assert!(
            parse_podman_list(bad).is_none_or(|l| l.is_empty()),
            "{bad:?}"
        );
    }
    assert_eq!(parse_oci_annotations(br#"{"annotations":[]}"#), None);
}

/// A rootless user's tree: `home/alice` owned by uid 1000.
fn rootless_tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbad:x:zz:0::/x:/x\n",
    );
    put(
        root.path(),
        "home/alice/.local/share/containers/storage/overlay-containers/containers.json",
        &format!(r#"[{{"id":"{ID}","names":["alices-db"]}}]"#),
    );
    put(
        root.path(),
        &format!("home/alice/.local/share/docker/containers/{ID}/config.v2.json"),
        r#"{"Name":"/alices-web"}"#,
    );
    // The system's state knows the same id under another name.
    put(
        root.path(),
        &format!("var/lib/docker/containers/{ID}/config.v2.json"),
        r#"{"Name":"/prod-web"}"#,
    );
    let home = root.path().join("home/alice");
    chown_tree(&home, 1000);
    root
}

fn chown_tree(path: &Path, uid: u32) {
    if nix::unistd::geteuid().is_root() {
        std::process::Command::new("chown")
            .args(["-R", &uid.to_string()])
            .arg(path)
            .status()
            .unwrap();
    }
}

#[test]
fn rootless_containers_are_named_from_the_users_own_state() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: giving files to uid 1000 needs root");
        return;
    }
    let root = rootless_tree();
    let mut reader = StateReader::new(root.path());
    assert_eq!(
        reader.names(&key(Runtime::Podman, None, Some(1000))),
        Some((Runtime::Podman, named(Some("alices-db"), None, None)))
    );
    assert_eq!(
        reader.names(&key(Runtime::Docker, None, Some(1000))),
        Some((Runtime::Docker, named(Some("alices-web"), None, None)))
    );
    assert_eq!(
        reader.names(&key(Runtime::Docker, None, None)),
        Some((Runtime::Docker, named(Some("prod-web"), None, None)))
    );
    // No home, no state; and the system's runtimes are never asked for a user's cgroup.
    assert_eq!(reader.names(&key(Runtime::Docker, None, Some(1001))), None);
    assert_eq!(
        reader.names(&key(Runtime::Containerd, Some("k8s.io"), Some(1000))),
        None
    );
}

#[test]
fn a_users_file_must_be_the_users() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: giving files to uid 1000 needs root");
        return;
    }
    let root = rootless_tree();
    // A file of root's in the user's tree (think: a hard link to one) is refused.
    let file = root.path().join(format!(
        "home/alice/.local/share/docker/containers/{ID}/config.v2.json"
    ));
    chown_tree(&file, 0);
    let mut reader = StateReader::new(root.path());
    assert_eq!(reader.names(&key(Runtime::Docker, None, Some(1000))), None);
}

#[test]
fn a_user_cannot_link_to_the_systems_state() {
    let root = rootless_tree();
    let share = root.path().join("home/alice/.local/share");
    fs::remove_dir_all(share.join("docker")).unwrap();
    symlink("/var/lib/docker", share.join("docker")).unwrap();
    let mut reader = StateReader::new(root.path());
    assert_eq!(reader.names(&key(Runtime::Docker, None, Some(1000))), None);
}

#[test]
fn an_administrators_link_to_the_state_is_followed_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        &format!("srv/docker/containers/{ID}/config.v2.json"),
        r#"{"Name":"/moved"}"#,
    );
    fs::create_dir_all(root.path().join("var/lib")).unwrap();
    // Absolute, as an administrator writes it: resolved inside the root, not the host's /srv.
    symlink("/srv/docker", root.path().join("var/lib/docker")).unwrap();
    let mut reader = StateReader::new(root.path());
    assert_eq!(
        reader.names(&key(Runtime::Docker, None, None)),
        Some((Runtime::Docker, named(Some("moved"), None, None)))
    );
}

#[test]
fn passwd_homes() {
    let homes = parse_passwd(b"root:x:0:0::/root:/bin/sh\nn:x:5:5::/:/x\nr:x:6:6::rel:/x\n\xff:x:7:7::/home/\xff/:/x\nshort:x\n");
    assert_eq!(homes.get(&0).map(String::as_str), Some("root"));
    assert_eq!(homes.get(&5), None, "a home of / is no user's own");
    assert_eq!(homes.get(&6), None, "a relative home");
    assert_eq!(homes.get(&7).map(String::as_str), Some("home/\u{fffd}"));
}

#[test]
fn user_names_come_from_passwd_first_line_wins() {
    let names = super::parse_passwd_names(
        b"root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n\
          alias:x:1000:1000::/x:/x\n:x:1001:0::/x:/x\nbad:x:zz:0::/x:/x\nshort\n",
    );
    assert_eq!(names.get(&0).map(String::as_str), Some("root"));
    assert_eq!(names.get(&1000).map(String::as_str), Some("alice"));
    assert_eq!(names.len(), 2, "{names:?}");
}
