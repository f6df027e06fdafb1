//! Who a socket or a process belongs to, in the words a person would use: the systemd unit
//! and the container (with its Kubernetes pod), read from the kernel's cgroup paths and the
//! runtimes' state files, never from a daemon.
//!
//! ```text
//! /proc/PID/cgroup ──▶ cgroup path ──┐
//! INET_DIAG_CGROUP_ID ─▶ CgroupIndex ┴▶ cgroup::derive ─▶ unit, runtime + id ─▶ StateReader ─▶ Labels
//! ```
//!
//! The cgroup names each runtime writes (from the runtimes' cgroup drivers: moby's
//! `daemon/oci_linux.go` and runc's systemd driver, Podman's `libpod` and conmon, the
//! kubelet's `cgroup_manager_linux.go`, containerd's CRI plugin and nerdctl, CRI-O's
//! `internal/config/cgmgr`, LXC's `lxc.payload.` naming, systemd-machined):
//!
//! | runtime | systemd driver | cgroupfs driver |
//! |---|---|---|
//! | Docker | `system.slice/docker-<id>.scope` | `/docker/<id>` |
//! | Podman | `machine.slice/libpod-<id>.scope` (conmon: `libpod-conmon-<id>.scope`); rootless under `user@UID.service` | `libpod_parent/libpod-<id>` |
//! | containerd (Kubernetes) | `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice/cri-containerd-<id>.scope` | `/kubepods/<qos>/pod<uid>/<id>` (runtime read from state) |
//! | CRI-O | `…-pod<uid>.slice/crio-<id>.scope` (conmon: `crio-conmon-<id>.scope`) | as containerd |
//! | containerd (nerdctl) | `system.slice/nerdctl-<id>.scope` | `/default/<id>`, `/k8s.io/<id>` |
//! | LXC | `lxc.payload.<name>`, `lxc.monitor.<name>`; before LXC 4 `/lxc/<name>` | |
//! | systemd-nspawn, libvirt | `machine.slice/machine-<name>.scope` (runtime `machine`: machined cannot tell them apart) | |
//!
//! The first match from the root of the path wins: the host's runtime, not one nested inside
//! a container. The unit follows systemd's own rule (`cg_path_get_unit`): the first unit
//! below the slices (`nginx.service`, `sshd.socket` for a socket systemd made in the socket
//! unit's cgroup, `docker-<id>.scope`); under a user manager, the manager and the user's unit,
//! `user@1000.service/app.service`, which says both whose manager and what to give
//! `systemctl --user`. Paths are as the reader's cgroup namespace shows them.
//!
//! A container in a user's subtree (`user@UID.service/…`, rootless Docker or Podman) carries
//! that uid and its name ([`Container::rootless_uid`]): the user made its cgroup and wrote
//! the state file naming it, so it is shown as `alice/web` and matched only by a pattern
//! naming the user, never taken for root's `web`.
//!
//! A socket that systemd's socket activation made and passed on gets its `.socket` unit and
//! service from [`activation`] (`sshd.socket → sshd.service`).
//!
//! All strings are raw: whoever starts a container or makes a cgroup picks its name, so
//! anything shown on a terminal goes through the `display_*` accessors, which escape as
//! process names are escaped ([`crate::text::sanitize::terminal_safe`]).

pub mod activation;
pub mod apply;
pub mod cgroup;
pub mod hybrid;
pub mod safefile;
pub mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::model::labels::{Container, Labels, Runtime};
use crate::sys::cgroupfs::{self, CgroupIndex};
use state::{Key, StateReader};

/// Labels cgroups, reading each state file once and deriving each cgroup path once per run.
/// One per run: state changes between runs are seen, not within one.
#[derive(Debug)]
pub struct Labeler {
    state: StateReader,
    by_path: HashMap<Vec<u8>, Arc<Labels>>,
    /// Socket cgroup ids already resolved (thousands of sockets share a few cgroups).
    by_id: HashMap<u64, Option<Arc<Labels>>>,
    /// The last id asked for and its labels: sockets come by namespace, each namespace's
    /// mostly made in one cgroup, so most asks repeat the one before (no hash needed).
    last_id: Option<(u64, Option<Arc<Labels>>)>,
    cgroup_mount: Option<PathBuf>,
    /// Built on the first cgroup id asked for; `Some(None)` if the walk failed.
    index: Option<Option<CgroupIndex>>,
}

impl Labeler {
    /// A labeler reading runtime state files under `root` (`/` on a live system) and socket
    /// cgroup ids from the cgroup2 mount in `/proc/self/mountinfo` (or `/sys/fs/cgroup`).
    pub fn new(root: &Path) -> Labeler {
        Labeler {
            state: StateReader::new(root),
            by_path: HashMap::new(),
            by_id: HashMap::new(),
            last_id: None,
            cgroup_mount: None,
            index: None,
        }
    }

    /// Resolve cgroup ids under the cgroup2 file system mounted at `mount` instead.
    pub fn with_cgroup_mount(mut self, mount: PathBuf) -> Labeler {
        self.cgroup_mount = Some(mount);
        self
    }

    /// The labels of a process, from the content of its `/proc/PID/cgroup`.
    pub fn for_process_cgroup(&mut self, content: &[u8]) -> Arc<Labels> {
        match cgroup::process_cgroup_path(content) {
            Some(path) => self.for_cgroup_path(path),
            None => Arc::default(),
        }
    }

    /// The labels of the cgroup at `path` (as `/proc/PID/cgroup` writes it).
    pub fn for_cgroup_path(&mut self, path: &[u8]) -> Arc<Labels> {
        if let Some(known) = self.by_path.get(path) {
            return Arc::clone(known);
        }
        let labels = Arc::new(self.derive(path));
        self.by_path.insert(path.to_vec(), Arc::clone(&labels));
        labels
    }

    /// The labels of the cgroup v2 `id` (a socket's `INET_DIAG_CGROUP_ID`); `None` if no
    /// cgroup has that id (it was removed, or the cgroup2 file system is not mounted). The
    /// cgroups are walked once, at the first id asked for: ask after the sockets are dumped,
    /// and a cgroup made later in the run stays unknown.
    pub fn for_cgroup_id(&mut self, id: u64) -> Option<Arc<Labels>> {
        if let Some((last, labels)) = &self.last_id
            && *last == id
        {
            return labels.clone();
        }
        let labels = match self.by_id.get(&id) {
            Some(known) => known.clone(),
            None => {
                let path = self.cgroup_path(id).map(<[u8]>::to_vec);
                let labels = path.map(|path| self.for_cgroup_path(&path));
                self.by_id.insert(id, labels.clone());
                labels
            }
        };
        self.last_id = Some((id, labels.clone()));
        labels
    }

    /// The path of the cgroup v2 `id`, walking the cgroup2 mount the first time.
    pub fn cgroup_path(&mut self, id: u64) -> Option<&[u8]> {
        self.index()?.path(id)
    }

    /// The id of the cgroup2 mount's root cgroup (walking it the first time); `None` if it
    /// cannot be walked.
    pub fn root_id(&mut self) -> Option<u64> {
        self.index().map(CgroupIndex::root_id)
    }

    /// How many cgroups the cgroup2 mount holds (walking it the first time); 0 if it cannot
    /// be walked.
    pub fn cgroup_count(&mut self) -> usize {
        self.index().map_or(0, CgroupIndex::len)
    }

    /// Each process in a cgroup, by pid (as this process's PID namespace numbers them), with
    /// its cgroup id: every cgroup's `cgroup.procs` read once ([`CgroupIndex::members`]).
    /// Empty if the cgroup2 mount cannot be read.
    pub fn cgroup_members(&mut self) -> HashMap<u32, u64> {
        let mount = self.mount();
        (self.index())
            .and_then(|index| index.members(&mount).ok())
            .unwrap_or_default()
    }

    /// The labels of the process in cgroup `id` by [`Labeler::cgroup_members`]; `None` where
    /// its `/proc/PID/cgroup` must be read instead: the id is unknown, or it is the root,
    /// where that file's `name=systemd` line may say more (a hybrid host's runtimes may join
    /// only the v1 hierarchies).
    pub fn for_member_of(&mut self, id: u64) -> Option<Arc<Labels>> {
        if self.cgroup_path(id)? == b"/" {
            return None;
        }
        self.for_cgroup_id(id)
    }

    /// The cgroup index, walked the first time.
    fn index(&mut self) -> Option<&CgroupIndex> {
        if self.index.is_none() {
            let mount = self.mount();
            self.index = Some(CgroupIndex::build(&mount).ok());
        }
        self.index.as_ref()?.as_ref()
    }

    /// The cgroup2 mount: the one given, else the live one (found once).
    fn mount(&mut self) -> PathBuf {
        (self.cgroup_mount)
            .get_or_insert_with(live_cgroup2_mount)
            .clone()
    }

    fn derive(&mut self, path: &[u8]) -> Labels {
        let derived = cgroup::derive(path);
        let unit = derived
            .unit
            .map(|u| String::from_utf8_lossy(&u.to_bytes()).into_owned());
        let container = derived
            .container
            .map(|found| self.container(found, derived.user));
        Labels { unit, container }
    }

    fn container(&mut self, found: cgroup::ContainerRef<'_>, user: Option<u32>) -> Container {
        // Whoever owns the subtree named the cgroup (and, rootless, the state file): the
        // container is that user's, whatever it is called.
        let rootless_user = user.and_then(|uid| self.state.user_name(uid));
        if matches!(found.runtime, Runtime::Lxc | Runtime::Machine) {
            let name = cgroup::unescape_unit_name(found.id);
            let name = String::from_utf8_lossy(&name).into_owned();
            return Container {
                runtime: found.runtime,
                id: name.clone(),
                name: Some(name),
                pod: None,
                pod_namespace: None,
                rootless_uid: user,
                rootless_user,
            };
        }
        let key = Key {
            runtime: found.runtime,
            // Checked to be 64 hex digits by `cgroup::derive`.
            id: String::from_utf8_lossy(found.id).into_owned(),
            namespace: found.namespace,
            user,
        };
        let (runtime, names) = self
            .state
            .names(&key)
            .unwrap_or((found.runtime, state::Names::default()));
        Container {
            runtime,
            id: key.id,
            name: names.name,
            pod: names.pod,
            pod_namespace: names.pod_namespace,
            rootless_uid: user,
            rootless_user,
        }
    }
}

/// The live cgroup2 mount: where systemd mounts it (`/sys/fs/cgroup`, or on a hybrid host
/// `/sys/fs/cgroup/unified`), else the first in `/proc/self/mountinfo`, else `/sys/fs/cgroup`.
/// A `statfs` each comes first: the mount table lists every bind-mounted network namespace
/// too (0.7 ms of a `--netns all` run over 201 namespaces, measured with perf).
fn live_cgroup2_mount() -> PathBuf {
    let usual = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].map(PathBuf::from);
    if let Some(found) = usual.into_iter().find(|p| cgroupfs::is_cgroup2(p)) {
        return found;
    }
    std::fs::read("/proc/self/mountinfo")
        .ok()
        .and_then(|info| cgroupfs::cgroup2_mount(&info))
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
}

#[cfg(test)]
mod tests;
