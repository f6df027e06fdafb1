//! Who a process or socket belongs to, as plain data: the systemd unit and the container,
//! filled in by [`crate::enrich::labels`] and shown by every renderer. Strings are raw (whoever
//! starts a container or makes a cgroup picks its name): anything shown on a terminal goes
//! through the `display_*` accessors, which escape as process names are escaped.

use std::borrow::Cow;

use crate::text::sanitize::terminal_safe;

/// A container runtime, or the kind of container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Docker (moby).
    Docker,
    /// Podman.
    Podman,
    /// containerd, under Kubernetes' CRI or nerdctl.
    Containerd,
    /// CRI-O.
    CriO,
    /// A Kubernetes container whose runtime neither its cgroup nor any state file tells.
    Cri,
    /// An LXC (or LXD, Incus) container.
    Lxc,
    /// A machine registered with systemd-machined: a systemd-nspawn container or a VM.
    Machine,
}

impl Runtime {
    /// The name shown and written to JSON: `docker`, `podman`, `containerd`, `cri-o`, `cri`,
    /// `lxc`, `machine`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Cri => "cri",
            Runtime::Lxc => "lxc",
            Runtime::Machine => "machine",
        }
    }
}

/// A container, as far as it is known. Strings are raw (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Its runtime.
    pub runtime: Runtime,
    /// The runtime's id: 64 hex digits, or the name for LXC and machines.
    pub id: String,
    /// Its name, where a state file (or, for LXC and machines, the cgroup) gives one.
    pub name: Option<String>,
    /// Its Kubernetes pod.
    pub pod: Option<String>,
    /// Its pod's Kubernetes namespace.
    pub pod_namespace: Option<String>,
    /// A rootless container's user: the uid of the user manager (`user@UID.service`) whose
    /// cgroup subtree it runs in; `None` for the system's (root's) containers. That user
    /// made the cgroup and wrote the state file that names it, so its name and id are the
    /// user's claim: shown and matched qualified by the user ([`Container::owner_prefix`]).
    pub rootless_uid: Option<u32>,
    /// The rootless user's name (from `etc/passwd`); `None` for root's containers, or a uid
    /// with no name.
    pub rootless_user: Option<String>,
}

impl Container {
    /// `alice/` (else `1000/` when the uid has no name) for a rootless container, terminal
    /// safe; `None` for root's. Put before the name or id wherever a container is shown, so
    /// a user's `web` never reads as root's `web`.
    pub fn owner_prefix(&self) -> Option<String> {
        let uid = self.rootless_uid?;
        Some(match &self.rootless_user {
            Some(user) => format!("{}/", terminal_safe(user.as_bytes())),
            None => format!("{uid}/"),
        })
    }

    /// The name (else the whole id) after [`Container::owner_prefix`], terminal-safe:
    /// `web`, `alice/web`.
    pub fn display_label(&self) -> String {
        let name = self.display_name().unwrap_or_else(|| self.display_id());
        format!("{}{name}", self.owner_prefix().unwrap_or_default())
    }

    /// The name, safe for a terminal.
    pub fn display_name(&self) -> Option<Cow<'_, str>> {
        self.name.as_deref().map(|n| terminal_safe(n.as_bytes()))
    }

    /// The id, safe for a terminal (an LXC or machine id is a name anyone may pick).
    pub fn display_id(&self) -> Cow<'_, str> {
        terminal_safe(self.id.as_bytes())
    }

    /// The pod, safe for a terminal.
    pub fn display_pod(&self) -> Option<Cow<'_, str>> {
        self.pod.as_deref().map(|n| terminal_safe(n.as_bytes()))
    }

    /// The pod's namespace, safe for a terminal.
    pub fn display_pod_namespace(&self) -> Option<Cow<'_, str>> {
        self.pod_namespace
            .as_deref()
            .map(|n| terminal_safe(n.as_bytes()))
    }
}

/// Who a process or socket belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// The systemd unit (raw).
    pub unit: Option<String>,
    /// The container.
    pub container: Option<Container>,
}

impl Labels {
    /// The unit, safe for a terminal.
    pub fn display_unit(&self) -> Option<Cow<'_, str>> {
        self.unit.as_deref().map(|u| terminal_safe(u.as_bytes()))
    }
}
