//! Container names from the runtimes' own state files, read under an injectable root, each
//! at most once per run (a cache per container id, and per `containers.json`).
//!
//! | runtime | file (relative to the root) |
//! |---|---|
//! | Docker | `var/lib/docker/containers/<id>/config.v2.json`: `Name`, and Kubernetes' labels `io.kubernetes.{container.name,pod.name,pod.namespace}` under `Config.Labels` |
//! | Podman | `var/lib/containers/storage/overlay-containers/containers.json`: `[{"id", "names"}]` |
//! | containerd | `run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`: the OCI annotations `io.kubernetes.cri.{container-name,sandbox-name,sandbox-namespace}`, or `nerdctl/name` |
//! | CRI-O | `run/containers/storage/overlay-containers/<id>/userdata/config.json`: `io.kubernetes.{container.name,pod.name,pod.namespace}` |
//!
//! Rootless Docker and Podman keep the same files under the user's home
//! (`~/.local/share/docker`, `~/.local/share/containers/storage`); the home is read from
//! `etc/passwd`, and those files must belong to the user (see [`super::safefile`]). A
//! container in a user's cgroup subtree is looked up only there, never in the system's
//! state: the user named that cgroup and could otherwise borrow a root container's name.
//! (`$XDG_DATA_HOME` elsewhere than `~/.local/share` is not followed: it is the user's
//! environment, which lsports does not see.) Podman keeps pod names in its database, not in
//! `containers.json`, so a Podman container's pod is unknown.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::Runtime;
use super::safefile::{self, StateFile};

/// A per-container file (a config) is read only up to this size.
const CONFIG_CAP: u64 = 4 << 20;
/// Podman's one file for all its containers may be larger.
const PODMAN_LIST_CAP: u64 = 16 << 20;
/// `etc/passwd` is read only up to this size.
const PASSWD_CAP: u64 = 4 << 20;

/// What a runtime's state says about a container. Strings are as the file has them (raw).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    /// The container's name.
    pub name: Option<String>,
    /// The Kubernetes pod.
    pub pod: Option<String>,
    /// The Kubernetes namespace of the pod.
    pub pod_namespace: Option<String>,
}

/// Which container to name: the runtime, its id, containerd's namespace, and the user whose
/// rootless state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The runtime whose state to read.
    pub runtime: Runtime,
    /// The 64-hex container id.
    pub id: String,
    /// containerd's namespace (`k8s.io`, `default`).
    pub namespace: Option<&'static str>,
    /// The rootless runtime's user.
    pub user: Option<u32>,
}

/// Reads and caches state files under one root.
#[derive(Debug)]
pub struct StateReader {
    root_path: PathBuf,
    /// `None` until first needed; `Some(None)` if the root cannot be opened.
    root: Option<Option<OwnedFd>>,
    names: HashMap<Key, Option<(Runtime, Names)>>,
    podman_lists: HashMap<Option<u32>, Arc<HashMap<String, String>>>,
    homes: Option<HashMap<u32, String>>,
    /// uid → user name, from the same `etc/passwd`.
    user_names: Option<HashMap<u32, String>>,
    /// Each base directory opened so far (`None` if it cannot be): a host's containers'
    /// files share one (`var/lib/docker/containers`), opened once instead of once per file.
    bases: HashMap<String, Option<OwnedFd>>,
}

impl StateReader {
    /// A reader of the state files under `root` (`/` on a live system).
    pub fn new(root: &Path) -> StateReader {
        StateReader {
            root_path: root.to_path_buf(),
            root: None,
            names: HashMap::new(),
            podman_lists: HashMap::new(),
            homes: None,
            user_names: None,
            bases: HashMap::new(),
        }
    }

    /// The names of the container `key`, with the runtime that knew it (for [`Runtime::Cri`],
    /// the one whose state holds it). `None` if no state file names it.
    pub fn names(&mut self, key: &Key) -> Option<(Runtime, Names)> {
        if let Some(known) = self.names.get(key) {
            return known.clone();
        }
        let found = self.look_up(key);
        self.names.insert(key.clone(), found.clone());
        found
    }

    fn look_up(&mut self, key: &Key) -> Option<(Runtime, Names)> {
        // System runtimes' state is never consulted for a user's cgroup (see module docs).
        let rootless = matches!(key.runtime, Runtime::Docker | Runtime::Podman);
        if key.user.is_some() && !rootless {
            return None;
        }
        let id = key.id.as_str();
        match key.runtime {
            Runtime::Docker => self.docker(id, key.user).map(|n| (Runtime::Docker, n)),
            Runtime::Podman => self.podman(id, key.user).map(|n| (Runtime::Podman, n)),
            Runtime::Containerd => self
                .containerd(id, key.namespace.unwrap_or("k8s.io"))
                .map(|n| (Runtime::Containerd, n)),
            Runtime::CriO => self.crio(id).map(|n| (Runtime::CriO, n)),
            // Kubernetes' cgroupfs driver does not say which runtime: ask each.
            Runtime::Cri => self
                .containerd(id, "k8s.io")
                .map(|n| (Runtime::Containerd, n))
                .or_else(|| self.crio(id).map(|n| (Runtime::CriO, n)))
                .or_else(|| self.docker(id, None).map(|n| (Runtime::Docker, n))),
            Runtime::Lxc | Runtime::Machine => None,
        }
    }

    fn docker(&mut self, id: &str, user: Option<u32>) -> Option<Names> {
        // The home is the administrator's; what lies below it is the user's.
        let (base, rel) = match user {
            Some(uid) => (
                self.home(uid)?,
                format!(".local/share/docker/containers/{id}/config.v2.json"),
            ),
            None => (
                "var/lib/docker/containers".to_owned(),
                format!("{id}/config.v2.json"),
            ),
        };
        parse_docker(&self.read(&base, &rel, CONFIG_CAP, user)?)
    }

    fn podman(&mut self, id: &str, user: Option<u32>) -> Option<Names> {
        let list = match self.podman_lists.get(&user) {
            Some(list) => Arc::clone(list),
            None => {
                let list = Arc::new(self.read_podman_list(user).unwrap_or_default());
                self.podman_lists.insert(user, Arc::clone(&list));
                list
            }
        };
        Some(Names {
            name: Some(list.get(id)?.clone()),
            ..Names::default()
        })
    }

    fn read_podman_list(&mut self, user: Option<u32>) -> Option<HashMap<String, String>> {
        let list = "overlay-containers/containers.json";
        let (base, rel) = match user {
            Some(uid) => (
                self.home(uid)?,
                format!(".local/share/containers/storage/{list}"),
            ),
            None => ("var/lib/containers/storage".to_owned(), list.to_owned()),
        };
        parse_podman_list(&self.read(&base, &rel, PODMAN_LIST_CAP, user)?)
    }

    fn containerd(&mut self, id: &str, namespace: &str) -> Option<Names> {
        let base = "run/containerd/io.containerd.runtime.v2.task";
        let rel = format!("{namespace}/{id}/config.json");
        parse_oci_annotations(&self.read(base, &rel, CONFIG_CAP, None)?)
    }

    fn crio(&mut self, id: &str) -> Option<Names> {
        let base = "run/containers/storage/overlay-containers";
        let rel = format!("{id}/userdata/config.json");
        parse_oci_annotations(&self.read(base, &rel, CONFIG_CAP, None)?)
    }

    /// The name of `uid` from `etc/passwd` (the first line for it), to qualify a rootless
    /// container by its user. `None` if no line names it.
    pub fn user_name(&mut self, uid: u32) -> Option<String> {
        if self.user_names.is_none() {
            let passwd = self.read("etc", "passwd", PASSWD_CAP, None);
            self.user_names = Some(passwd.map(|p| parse_passwd_names(&p)).unwrap_or_default());
        }
        self.user_names.as_ref()?.get(&uid).cloned()
    }

    /// The home of `uid` from `etc/passwd`, relative to the root. `None` for a home that is
    /// not an absolute path, or `/` itself.
    fn home(&mut self, uid: u32) -> Option<String> {
        if self.homes.is_none() {
            let passwd = self.read("etc", "passwd", PASSWD_CAP, None);
            self.homes = Some(passwd.map(|p| parse_passwd(&p)).unwrap_or_default());
        }
        self.homes.as_ref()?.get(&uid).cloned()
    }

    fn read(&mut self, base: &str, rel: &str, cap: u64, owner: Option<u32>) -> Option<Vec<u8>> {
        let root_path = &self.root_path;
        let root = self
            .root
            .get_or_insert_with(|| safefile::open_root(root_path).ok())
            .as_ref()?;
        let base_fd = match self.bases.get(base) {
            Some(opened) => opened.as_ref()?,
            None => {
                let opened = safefile::open_base(root.as_fd(), base).ok();
                self.bases
                    .entry(base.to_owned())
                    .or_insert(opened)
                    .as_ref()?
            }
        };
        let file = StateFile {
            base,
            rel,
            cap,
            owner,
        };
        safefile::read_below(base_fd.as_fd(), &file).ok()
    }
}

/// Docker's `config.v2.json`, only the fields lsports uses.
#[derive(Deserialize)]
struct DockerState {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Config")]
    config: Option<DockerConfig>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(rename = "Labels")]
    labels: Option<HashMap<String, String>>,
}

/// The names in Docker's `config.v2.json`: `Name` without its leading `/`, unless Kubernetes
/// (dockershim, cri-dockerd) ran it, whose labels name the container and the pod.
pub fn parse_docker(data: &[u8]) -> Option<Names> {
    let state: DockerState = serde_json::from_slice(data).ok()?;
    let labels = state.config.and_then(|c| c.labels).unwrap_or_default();
    let label = |key: &str| labels.get(key).cloned();
    let own = state
        .name
        .map(|n| n.strip_prefix('/').map(str::to_owned).unwrap_or(n));
    Some(Names {
        name: label("io.kubernetes.container.name").or(own),
        pod: label("io.kubernetes.pod.name"),
        pod_namespace: label("io.kubernetes.pod.namespace"),
    })
}

/// One entry of Podman's `containers.json` (containers/storage's list).
#[derive(Deserialize)]
struct PodmanEntry {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

/// Podman's `containers.json`: id → the first name.
pub fn parse_podman_list(data: &[u8]) -> Option<HashMap<String, String>> {
    let entries: Vec<PodmanEntry> = serde_json::from_slice(data).ok()?;
    let named = entries.into_iter().filter_map(|entry| {
        let name = entry.names.into_iter().next()?;
        Some((entry.id, name))
    });
    Some(named.collect())
}

/// An OCI runtime `config.json`, only its annotations.
#[derive(Deserialize)]
struct OciConfig {
    annotations: Option<HashMap<String, String>>,
}

/// The names in an OCI `config.json`'s annotations, as containerd's CRI plugin, CRI-O and
/// nerdctl write them. A pod's sandbox (its pause container) gets the pod but no name.
pub fn parse_oci_annotations(data: &[u8]) -> Option<Names> {
    let config: OciConfig = serde_json::from_slice(data).ok()?;
    let notes = config.annotations.unwrap_or_default();
    let first = |keys: &[&str]| keys.iter().find_map(|k| notes.get(*k).cloned());
    let sandbox = notes
        .get("io.kubernetes.cri.container-type")
        .map(String::as_str)
        == Some("sandbox");
    let name = first(&[
        "io.kubernetes.cri.container-name",
        "io.kubernetes.container.name",
        "nerdctl/name",
    ]);
    Some(Names {
        name: name.filter(|_| !sandbox),
        pod: first(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
        pod_namespace: first(&[
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ]),
    })
}

/// uid → home (relative to the root, without the leading `/`) from `etc/passwd`.
pub fn parse_passwd(data: &[u8]) -> HashMap<u32, String> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let uid = fields.get(2)?.parse().ok()?;
            let home = fields.get(5)?.strip_prefix('/')?.trim_end_matches('/');
            (!home.is_empty()).then(|| (uid, home.to_owned()))
        })
        .collect()
}

/// uid → user name from `etc/passwd`; the first line of a uid wins, as `getpwuid` finds it.
pub fn parse_passwd_names(data: &[u8]) -> HashMap<u32, String> {
    let text = String::from_utf8_lossy(data);
    let mut names = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(uid)) = (fields.next(), fields.nth(1)) else {
            continue;
        };
        if let (false, Ok(uid)) = (name.is_empty(), uid.parse::<u32>()) {
            names.entry(uid).or_insert_with(|| name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests;
