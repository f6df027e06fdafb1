//! From a cgroup path to the systemd unit and the container it names: pure parsing of bytes,
//! no I/O, and no allocation (everything returned borrows from the path).
//!
//! Cgroup names are partly chosen by users: in a delegated subtree (`user@UID.service`, a
//! container's own cgroup namespace) anyone may create a directory called
//! `docker-<id>.scope`. So a container id is accepted only in the exact form the runtimes
//! write (64 lowercase hex digits), which also keeps it safe to use in a state file's path,
//! and the owner of a delegated subtree is reported ([`Derived::user`]) so that its
//! containers are looked up in that user's state only.
//!
//! The names come from the runtimes' cgroup drivers (see `super`'s module docs for the list
//! and where each form is written).

use super::Runtime;

/// What one cgroup path says about its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Derived<'a> {
    /// The systemd unit, if a component is one.
    pub unit: Option<UnitRef<'a>>,
    /// The container, if a component is named as a runtime names its cgroups.
    pub container: Option<ContainerRef<'a>>,
    /// The uid of the user manager (`user@UID.service`) whose subtree the path lies in.
    pub user: Option<u32>,
}

/// A systemd unit: the system unit and, under a user manager, the user's unit in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitRef<'a> {
    /// The first unit below the slices (`nginx.service`, `user@1000.service`).
    pub system: &'a [u8],
    /// Under `user@UID.service`: the first unit below the user's slices.
    pub user: Option<&'a [u8]>,
}

impl UnitRef<'_> {
    /// The unit as lsports shows it: `nginx.service`, or `user@1000.service/app.service` for
    /// a user's unit (the manager, then the unit `systemctl --user` knows).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.system.to_vec();
        if let Some(user) = self.user {
            out.push(b'/');
            out.extend_from_slice(user);
        }
        out
    }
}

/// A container as its cgroup names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerRef<'a> {
    /// Which runtime's naming matched ([`Runtime::Cri`] when only Kubernetes' is known).
    pub runtime: Runtime,
    /// The container id (64 hex digits), or the name for LXC and systemd machines, which
    /// name their cgroups by name (still escaped as systemd escapes unit names, for machines).
    pub id: &'a [u8],
    /// For containerd: the containerd namespace its state lives in.
    pub namespace: Option<&'static str>,
}

/// The cgroup path of a process from its `/proc/PID/cgroup`: the cgroup v2 line (`0::PATH`),
/// or, where that is missing or the root (a hybrid host whose runtimes only join the v1
/// hierarchies), the `name=systemd` v1 line. `None` if neither is there.
pub fn process_cgroup_path(content: &[u8]) -> Option<&[u8]> {
    let mut unified = None;
    let mut systemd = None;
    for line in content.split(|&b| b == b'\n') {
        if let Some(path) = line.strip_prefix(b"0::") {
            unified = Some(path);
        } else if let Some(path) = v1_systemd_path(line) {
            systemd = Some(path);
        }
    }
    match (unified, systemd) {
        (Some(path), Some(other)) if path == b"/" => Some(other),
        (Some(path), _) => Some(path),
        (None, other) => other,
    }
}

/// The path on the `name=systemd` v1 line of a `/proc/PID/cgroup`, if it has one (a hybrid or
/// v1 host).
pub fn systemd_v1_path(content: &[u8]) -> Option<&[u8]> {
    content.split(|&b| b == b'\n').find_map(v1_systemd_path)
}

/// The path of a v1 line `ID:name=systemd:PATH` (the controller list may hold other names).
fn v1_systemd_path(line: &[u8]) -> Option<&[u8]> {
    let mut fields = line.splitn(3, |&b| b == b':');
    let _id = fields.next()?;
    let controllers = fields.next()?;
    let path = fields.next()?;
    controllers
        .split(|&b| b == b',')
        .any(|c| c == b"name=systemd")
        .then_some(path)
}

/// Everything `path` (a cgroup path, `/`-separated) says about its owner.
pub fn derive(path: &[u8]) -> Derived<'_> {
    let mut derived = Derived::default();
    let mut parents: [&[u8]; 2] = [b"", b""];
    let mut under_kubepods = false;
    for component in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if derived.container.is_none() {
            derived.container = container_of(component, parents, under_kubepods);
        }
        note_unit(&mut derived, component);
        under_kubepods |= component == b"kubepods" || component == b"kubepods.slice";
        parents = [parents[1], component];
    }
    derived
}

/// Record `component` as the system unit, the user manager's uid, or the user's unit.
fn note_unit<'a>(derived: &mut Derived<'a>, component: &'a [u8]) {
    if !is_unit(component) {
        return;
    }
    match &mut derived.unit {
        None => {
            derived.unit = Some(UnitRef {
                system: component,
                user: None,
            });
            derived.user = user_manager_uid(component);
        }
        Some(unit) if unit.user.is_none() && derived.user.is_some() => unit.user = Some(component),
        Some(_) => {}
    }
}

/// The uid in `user@UID.service`.
fn user_manager_uid(unit: &[u8]) -> Option<u32> {
    let digits = unit.strip_prefix(b"user@")?.strip_suffix(b".service")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Whether `name` is a unit that has processes of its own (not a slice), spelt as systemd
/// spells unit names (so a name with a control character or a space is none).
fn is_unit(name: &[u8]) -> bool {
    const KINDS: [&[u8]; 5] = [b".service", b".scope", b".socket", b".mount", b".swap"];
    let Some(stem) = KINDS.iter().find_map(|kind| name.strip_suffix(*kind)) else {
        return false;
    };
    !stem.is_empty()
        && name.len() <= 255
        && stem
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// The container `component` names, given its two parents (grandparent first) and whether a
/// `kubepods` component came before.
fn container_of<'a>(
    component: &'a [u8],
    parents: [&[u8]; 2],
    under_kubepods: bool,
) -> Option<ContainerRef<'a>> {
    if let Some(found) = scope_container(component) {
        return Some(found);
    }
    if let Some(found) = lxc_container(component, parents[1]) {
        return Some(found);
    }
    if !is_container_id(component) {
        return None;
    }
    // cgroupfs drivers: `/docker/<id>`, `/kubepods/<qos>/pod<uid>/<id>`, containerd's
    // `/<namespace>/<id>`.
    let (runtime, namespace) = match parents[1] {
        b"docker" => (Runtime::Docker, None),
        b"default" => (Runtime::Containerd, Some("default")),
        b"k8s.io" => (Runtime::Containerd, Some("k8s.io")),
        pod if under_kubepods && pod.starts_with(b"pod") => (Runtime::Cri, None),
        _ => return None,
    };
    Some(ContainerRef {
        runtime,
        id: component,
        namespace,
    })
}

/// A container named by a systemd cgroup driver, `<prefix>-<id>.scope` (Podman's cgroupfs
/// driver writes `libpod-<id>` without the suffix), or a systemd machine.
fn scope_container(component: &[u8]) -> Option<ContainerRef<'_>> {
    const PREFIXES: [(&[u8], Runtime, Option<&str>); 7] = [
        (b"docker-", Runtime::Docker, None),
        (b"libpod-conmon-", Runtime::Podman, None),
        (b"libpod-", Runtime::Podman, None),
        (b"cri-containerd-", Runtime::Containerd, Some("k8s.io")),
        (b"crio-conmon-", Runtime::CriO, None),
        (b"crio-", Runtime::CriO, None),
        (b"nerdctl-", Runtime::Containerd, Some("default")),
    ];
    let stem = component.strip_suffix(b".scope");
    if let Some(name) = stem.and_then(|s| s.strip_prefix(b"machine-")) {
        return (!name.is_empty()).then_some(ContainerRef {
            runtime: Runtime::Machine,
            id: name,
            namespace: None,
        });
    }
    let stem = stem.unwrap_or(component);
    PREFIXES.iter().find_map(|&(prefix, runtime, namespace)| {
        let id = stem.strip_prefix(prefix)?;
        is_container_id(id).then_some(ContainerRef {
            runtime,
            id,
            namespace,
        })
    })
}

/// An LXC container: `lxc.payload.<name>` and `lxc.monitor.<name>` (LXC 4 and later), or
/// `<name>` under `lxc` (earlier).
fn lxc_container<'a>(component: &'a [u8], parent: &[u8]) -> Option<ContainerRef<'a>> {
    let name = component
        .strip_prefix(b"lxc.payload.")
        .or_else(|| component.strip_prefix(b"lxc.monitor."))
        .or((parent == b"lxc").then_some(component))?;
    (!name.is_empty()).then_some(ContainerRef {
        runtime: Runtime::Lxc,
        id: name,
        namespace: None,
    })
}

/// Whether `id` is a container id as Docker, Podman, containerd and CRI-O make them.
pub fn is_container_id(id: &[u8]) -> bool {
    id.len() == 64 && id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Undo systemd's unit-name escaping (`\x2d` for `-` in `machine-qemu\x2d1\x2dvm.scope`);
/// anything that is not such an escape is kept as it is.
pub fn unescape_unit_name(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut rest = name;
    while let Some((&first, tail)) = rest.split_first() {
        let hex = tail
            .strip_prefix(b"x")
            .and_then(|t| t.get(..2))
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) if first == b'\\' => {
                out.push(byte);
                rest = &tail[3..];
            }
            _ => {
                out.push(first);
                rest = tail;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
