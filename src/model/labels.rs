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
}

impl Container {
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
