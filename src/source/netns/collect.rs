//! The collect stage across namespaces (`--netns`): the chosen namespaces' sockets, each
//! tagged with the namespace it belongs to, and one line per thing that could not be read.
//!
//! Every socket gets its namespace ([`Netns`]: inode and name), the current one's too, so the
//! JSON can always say where a socket lives. Devices are named inside each socket's own
//! namespace (by [`super::dump`] while it is entered), never after this one's interfaces:
//! interface index 2 is `eth0` here and `veth-w1` there.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DumpRequest, Namespace, NsDump, Reach, Survey, mountinfo};
use crate::config::NetnsChoice;
use crate::model::Netns;
use crate::model::coverage::FoundNetns;
use crate::source::{self, CollectRequest, Collected};
use crate::sys::procroot::ProcRoot;
use crate::text::counts::count;
use crate::text::sanitize::terminal_safe;

/// Collect `request`'s tables in the namespaces `choice` names, each socket tagged with its
/// namespace and its devices named there. What could not be read is in `notes`.
pub fn collect(choice: &NetnsChoice, request: &CollectRequest) -> Collected {
    match choice {
        NetnsChoice::Current => current(request),
        NetnsChoice::All => all(request),
        NetnsChoice::Named(name) => {
            let path = Path::new("/run/netns").join(name);
            one(request, Target::Mount(path), choice)
        }
        NetnsChoice::Path(path) => one(request, target_of_path(path), choice),
        NetnsChoice::Pid(pid) => one(request, Target::Process(*pid), choice),
    }
}

/// The namespace lsports runs in, read as ever; tagged when the proc root tells which it is
/// (a snapshot or a copied tree does not).
fn current(request: &CollectRequest) -> Collected {
    let mut collected = source::collect(request);
    source::name_devices(&mut collected.sockets);
    if request.snapshot.is_none() {
        let own = std::fs::metadata(request.proc_root.join("thread-self/ns/net"));
        if let Ok(meta) = own {
            let names = mount_names(&request.proc_root);
            tag(&mut collected.sockets, &netns(meta.ino(), &names));
            return collected;
        }
    }
    // A captured tree says which namespace its own tables are (`proc/netns/own`).
    if let Some(own) = super::recorded::own(&request.proc_root) {
        tag(&mut collected.sockets, &own);
    }
    collected
}

/// Every namespace found, each dumped from inside it; from a captured tree, every namespace
/// it recorded.
fn all(request: &CollectRequest) -> Collected {
    if super::current_inode(&request.proc_root).is_none() {
        // Not the live kernel: a snapshot or a copied tree, whose tables are proc/net's and
        // those of the namespaces it recorded (none for one captured before namespaces).
        let mut collected = current(request);
        let Some(own) = super::recorded::own(&request.proc_root) else {
            // Captured without namespaces: none but its own was looked at.
            collected.coverage.incomplete = true;
            return collected;
        };
        collected.coverage = super::recorded::coverage(&request.proc_root, own.inode);
        for (ns, mut other) in super::recorded::others(request, own.inode) {
            tag(&mut other.sockets, &ns);
            collected.sockets.append(&mut other.sockets);
            collected.warnings.append(&mut other.warnings);
        }
        return collected;
    }
    let dump = dump_request(request);
    let held = super::held_sockets_under(&request.proc_root);
    crate::sys::timing::mark("netns: held sockets listed");
    match super::survey(&request.proc_root, &dump, &held) {
        Ok(survey) => merge(survey),
        Err(e) => cannot_list(request, &e),
    }
}

/// `--netns all` in two steps, for a caller that walks `/proc/*/fd` anyway (to find the
/// sockets' holders): [`collect_known`] reads every namespace a process lives in or a mount
/// names; [`Pending::follow`] then takes the socket fds that walk saw, and reads the
/// namespaces that only some of them keep alive. [`collect`] does both, with a walk of its own.
#[derive(Debug)]
pub struct Pending {
    discovery: super::Discovery,
    /// Every socket the dumps listed, before any filter: held ones need no asking.
    listed: HashSet<u64>,
    /// Why each namespace not reached was not.
    unreached: Vec<String>,
    request: DumpRequest,
    proc: PathBuf,
    /// For [`collect_counting`]: every namespace's counts before the walk; the namespaces
    /// other than the caller's are not read yet.
    before: Option<super::walked::Before>,
    /// The counts after the walk, being read from the moment it ended
    /// ([`Pending::count_after_walk`]).
    after: Option<super::walked::AfterWalk>,
}

/// The sockets of every namespace a process lives in or a mount names, and what is needed to
/// follow held sockets to the rest ([`Pending::follow`], which gives the `--netns all` note
/// too); `None` when the namespaces could not be listed (the note says why), or the proc root
/// is not the live kernel's (a snapshot: [`collect`] reads what it recorded, all of it).
pub fn collect_known(request: &CollectRequest) -> (Collected, Option<Pending>) {
    if super::current_inode(&request.proc_root).is_none() {
        return (all(request), None);
    }
    let dump = dump_request(request);
    let survey = match super::survey_known(&request.proc_root, &dump) {
        Ok(survey) => survey,
        Err(e) => return (cannot_list(request, &e), None),
    };
    let listed = survey
        .dumps
        .iter()
        .flat_map(|d| d.collected.sockets.iter().map(|s| s.inode))
        .collect();
    let (collected, unreached) = merge_dumps(survey.dumps, &survey.discovery.namespaces);
    let pending = Pending {
        discovery: survey.discovery,
        listed,
        unreached,
        request: dump,
        proc: request.proc_root.clone(),
        before: None,
        after: None,
    };
    (collected, Some(pending))
}

/// `--netns all` for a caller whose BPF fd walk reads the sockets it visits too: the first
/// step reads every namespace's socket counts but the caller's, then lets the walk begin
/// (`go`), then dumps the caller's own namespace while the walk runs (the walk looks again
/// for a socket it did not see, as for any collection); [`Pending::complete`] then takes what
/// the walk read. `None` as for [`collect_known`]; `go` is called on every path.
pub fn collect_counting(
    request: &CollectRequest,
    go: impl FnOnce(),
) -> (Collected, Option<Pending>) {
    if super::current_inode(&request.proc_root).is_none() {
        go();
        return (all(request), None);
    }
    let proc = &request.proc_root;
    // Each namespace's counts are read the moment a process is found in it.
    let early = super::walked::EarlyCounts::start(proc);
    let discovered = ProcRoot::open(proc)
        .and_then(|root| super::discover::discover_telling(&root, |ns, pid| early.tell(ns, pid)));
    let discovery = match discovered {
        Ok(discovery) => discovery,
        Err(e) => {
            go();
            return (cannot_list(request, &e), None);
        }
    };
    crate::sys::timing::mark("netns: discovered");
    let before = early.finish(&discovery.namespaces, discovery.current, proc);
    crate::sys::timing::mark("netns: socket counts read");
    go();
    let dump = dump_request(request);
    // The caller's own namespace, read in place (a dump enters nothing for it).
    let own: Vec<Namespace> = discovery.current.into_iter().map(Namespace::new).collect();
    let (collected, unreached) = match super::dump_all(&own, discovery.current, proc, &dump) {
        Ok(dumps) => merge_dumps(dumps, &discovery.namespaces),
        Err(e) => return (cannot_list(request, &e), None),
    };
    let pending = Pending {
        discovery,
        listed: collected.sockets.iter().map(|s| s.inode).collect(),
        unreached,
        request: dump,
        proc: proc.clone(),
        before: Some(before),
        after: None,
    };
    (collected, Some(pending))
}

/// The namespaces dumped after the walk, each with the sockets no process holds that its
/// counts explain ([`super::walked::surplus`]), where they do.
pub type Dumped = HashMap<u64, Option<super::sockstat::Counts>>;

impl Pending {
    /// The sockets of the namespaces that only sockets of `held` keep alive (no table
    /// reports: the first step gave those), and the one `--netns all` note about what could
    /// not be read, the first step's namespaces included.
    pub fn follow(mut self, held: &[super::HeldSocket]) -> Collected {
        let followed = super::follow(
            &mut self.discovery,
            &mut self.listed,
            held,
            &self.proc,
            &self.request,
        );
        self.followed(followed)
    }

    /// [`Pending::follow`] from the namespace of every socket held, as the kernel iterator
    /// names them ([`super::SocketInNetns`]): no socket is asked, only each namespace not read
    /// yet, through one socket fd in it.
    pub fn follow_namespaces(mut self, seen: &[super::SocketInNetns]) -> Collected {
        let followed =
            super::follow_namespaces(&mut self.discovery, seen, &self.proc, &self.request);
        self.followed(followed)
    }

    /// For a [`collect_counting`]: read the counts after the walk on a thread of their own
    /// that first waits for `walked` to return, once the walk has visited every process, so
    /// that they are read while its records are still being gathered rather than after
    /// ([`Pending::complete`] reads them then where this was not called, or no thread could be
    /// made).
    pub fn count_after_walk(&mut self, walked: impl FnOnce() + Send + 'static) {
        if let Some(before) = &self.before {
            let namespaces = &self.discovery.namespaces;
            self.after = super::walked::count_after_when(namespaces, before, &self.proc, walked);
        }
    }

    /// Whether this is a [`collect_counting`] not completed yet: the namespaces other than the
    /// caller's are still to be read.
    pub fn counting(&self) -> bool {
        self.before.is_some()
    }

    /// The rest of a [`collect_counting`], from what the walk read: `records`, the socket
    /// record of every socket it read outside the caller's namespace, each once (consumed as
    /// they are decoded); `seen`, a holder of a socket in each namespace it met. Namespaces
    /// only sockets keep alive are opened through those holders; every namespace the gate
    /// passes is listed from the records, every other one dumped. The counts after the walk
    /// are read on a thread of their own while the records are decoded. The sockets, with the
    /// note on what could not be read and the `-v` line on what was answered how, and the
    /// namespaces dumped, with what their counts explain.
    pub fn complete(
        mut self,
        records: Vec<[u8; 80]>,
        seen: &[super::SocketInNetns],
    ) -> (Collected, Dumped) {
        let before = self.before.take().unwrap_or_default();
        // Being read since the walk ended, or else read while the records are decoded.
        let after = self.after.take().unwrap_or_else(|| {
            super::walked::count_after(&self.discovery.namespaces, &before, &self.proc)
        });
        let known: HashSet<u64> = self
            .discovery
            .namespaces
            .iter()
            .map(|ns| ns.inode)
            .collect();
        let (mut found, unprobed) = super::pinned::unknown_namespaces(seen, &known);
        self.discovery.namespaces.append(&mut found);
        let listening = self.request.states == crate::config::StateSelection::Listening;
        let mut names: HashMap<u64, Arc<Netns>> = HashMap::new();
        let netns = |inode: u64| {
            let found = || self.discovery.get(inode).map(found_netns);
            let ns = found().map_or(Netns { inode, name: None }, |f| f.netns);
            Arc::clone(names.entry(inode).or_insert_with(|| Arc::new(ns)))
        };
        let mut walked = super::walked::decode(records, &self.request.tables, listening, netns);
        let current = self.discovery.current;
        let judged = super::walked::judge(
            &self.discovery.namespaces,
            current,
            before,
            after.join(),
            &walked,
        );
        crate::sys::timing::mark("netns: walked sockets judged");
        let summary = super::walked::summary(&judged, current.is_some());
        let dumping: HashSet<u64> = judged.dump.iter().map(|(inode, _)| *inode).collect();
        let mut collected = self.dump_these(&dumping);
        crate::sys::timing::mark("netns: the rest dumped");
        let dumped: Dumped = (judged.dump.iter())
            .map(|(inode, why)| {
                let ns = self.discovery.get(*inode);
                (
                    *inode,
                    ns.and_then(|ns| super::walked::surplus_now(ns, why, &self.proc)),
                )
            })
            .collect();
        let answered = |s: &crate::model::Socket| {
            (s.netns.as_ref()).is_some_and(|ns| judged.answered.contains(&ns.inode))
        };
        walked.sockets.retain(answered);
        for ns in self.discovery.namespaces.iter() {
            if judged.answered.contains(&ns.inode) {
                collected.coverage.read.push(found_netns(ns));
            }
        }
        // The walk's sockets are most of them: the few dumped join them, not the other way.
        walked.sockets.append(&mut collected.sockets);
        collected.sockets = walked.sockets;
        collected.notes = all_notes(&self.discovery, &self.unreached, unprobed);
        collected.coverage.incomplete = incomplete(&self.discovery, unprobed);
        collected.verbose_notes.push(summary);
        (collected, dumped)
    }

    /// Dump the namespaces of `inodes` (moving them out of the discovery and back), each
    /// socket tagged; why each one not reached was not joins `unreached`.
    fn dump_these(&mut self, inodes: &HashSet<u64>) -> Collected {
        let all = std::mem::take(&mut self.discovery.namespaces);
        let (dumping, mut rest): (Vec<Namespace>, Vec<Namespace>) =
            all.into_iter().partition(|ns| inodes.contains(&ns.inode));
        let dumps = super::dump_all(&dumping, self.discovery.current, &self.proc, &self.request);
        let (mut collected, unreached) = match dumps {
            Ok(dumps) => merge_dumps(dumps, &dumping),
            Err(e) => (failed(format!("--netns all: {e}")), Vec::new()),
        };
        collected.reports.clear();
        self.unreached.extend(unreached);
        rest.extend(dumping);
        rest.sort_by_key(|ns| ns.inode);
        self.discovery.namespaces = rest;
        collected
    }

    /// For a [`collect_counting`] whose walk read no sockets after all (the kernel iterator
    /// fell back to the `/proc` walk): dump every namespace not dumped yet, as
    /// [`collect_known`] does, so that a follow can go on from there.
    pub fn dump_rest(&mut self) -> Collected {
        if self.before.take().is_none() {
            return Collected::default();
        }
        let current = self.discovery.current;
        let rest: HashSet<u64> = (self.discovery.namespaces.iter())
            .map(|ns| ns.inode)
            .filter(|&inode| Some(inode) != current)
            .collect();
        let mut collected = self.dump_these(&rest);
        self.listed
            .extend(collected.sockets.iter().map(|s| s.inode));
        collected.verbose_notes.push(
            "--netns all: every namespace dumped over sock_diag: the BPF walk read no sockets \
             (owners came from the /proc walk)"
                .into(),
        );
        collected
    }

    /// The namespaces a follow dumped, with the one note on what could not be read.
    fn followed(mut self, followed: std::io::Result<(Vec<NsDump>, usize)>) -> Collected {
        let (dumps, unprobed) = match followed {
            Ok(found) => found,
            Err(e) => {
                let note = format!("--netns all: cannot follow held sockets: {e}");
                return failed(note);
            }
        };
        let (mut collected, unreached) = merge_dumps(dumps, &self.discovery.namespaces);
        collected.reports.clear();
        self.unreached.extend(unreached);
        collected.notes = all_notes(&self.discovery, &self.unreached, unprobed);
        collected.coverage.incomplete = incomplete(&self.discovery, unprobed);
        collected
    }
}

fn cannot_list(request: &CollectRequest, e: &std::io::Error) -> Collected {
    failed(format!(
        "--netns all: cannot list the network namespaces under {}: {e}",
        request.proc_root.display()
    ))
}

/// How a single namespace is reached.
enum Target {
    Mount(PathBuf),
    Process(u32),
}

/// `/proc/PID/ns/net` is a link into a process, not a mount: reach it through the process.
fn target_of_path(path: &Path) -> Target {
    let parts: Vec<&[u8]> = path.as_os_str().as_bytes().split(|&b| b == b'/').collect();
    if let [b"", b"proc", pid, b"ns", b"net"] = parts.as_slice()
        && let Some(pid) = crate::sys::procroot::canonical_u32(pid)
    {
        return Target::Process(pid);
    }
    Target::Mount(path.to_path_buf())
}

/// One namespace, named by a mount or a process.
fn one(request: &CollectRequest, target: Target, choice: &NetnsChoice) -> Collected {
    let what = describe_choice(choice);
    let namespace = match target_namespace(&request.proc_root, target) {
        Ok(namespace) => namespace,
        Err(why) => return failed(format!("--netns {what}: {why}")),
    };
    let inode = namespace.inode;
    let dumps = super::dump_all(
        std::slice::from_ref(&namespace),
        super::current_inode(&request.proc_root),
        &request.proc_root,
        &dump_request(request),
    );
    match dumps {
        Ok(dumps) => {
            let (mut collected, unreached) = merge_dumps(dumps, &[namespace]);
            collected.notes = unreached
                .iter()
                .map(|why| format!("--netns {what}: cannot read network namespace {inode}: {why}"))
                .collect();
            collected
        }
        Err(e) => failed(format!("--netns {what}: {e}")),
    }
}

/// The one namespace a `--netns NAME`, `PATH` or `pid:PID` names (`None` for `all` and
/// `current`), with its name, or why it cannot be opened.
pub fn chosen_namespace(
    proc_root: &Path,
    choice: &NetnsChoice,
) -> Option<Result<Namespace, String>> {
    let target = match choice {
        NetnsChoice::Current | NetnsChoice::All => return None,
        NetnsChoice::Named(name) => Target::Mount(Path::new("/run/netns").join(name)),
        NetnsChoice::Path(path) => target_of_path(path),
        NetnsChoice::Pid(pid) => Target::Process(*pid),
    };
    Some(target_namespace(proc_root, target))
}

fn target_namespace(proc_root: &Path, target: Target) -> Result<Namespace, String> {
    let stat_path = match &target {
        Target::Mount(path) => path.clone(),
        Target::Process(pid) => proc_root.join(format!("{pid}/ns/net")),
    };
    let inode = std::fs::metadata(&stat_path)
        .map(|m| m.ino())
        .map_err(|e| {
            format!(
                "cannot open {}: {e}",
                terminal_safe(stat_path.as_os_str().as_bytes())
            )
        })?;
    if !is_nsfs(&stat_path) {
        return Err(format!(
            "{} is not a network namespace (name an `ip netns` namespace, a bind mount of one, \
             or /proc/PID/ns/net)",
            terminal_safe(stat_path.as_os_str().as_bytes())
        ));
    }
    let mut namespace = Namespace::new(inode);
    match target {
        Target::Mount(path) => namespace.mounts.push(path),
        Target::Process(pid) => namespace.pids.push(pid),
    }
    namespace.name = mount_names(proc_root).get(&inode).cloned();
    Ok(namespace)
}

/// Whether `path` (followed) is a file of the namespace filesystem: an ordinary file's inode
/// would otherwise be taken for a namespace that "no longer exists".
fn is_nsfs(path: &Path) -> bool {
    /// `NSFS_MAGIC` (linux/magic.h).
    const NSFS_MAGIC: u64 = 0x6e73_6673;
    rustix::fs::statfs(path).is_ok_and(|fs| fs.f_type as u64 == NSFS_MAGIC)
}

fn describe_choice(choice: &NetnsChoice) -> String {
    match choice {
        NetnsChoice::Current => "current".into(),
        NetnsChoice::All => "all".into(),
        NetnsChoice::Named(name) => terminal_safe(name.as_bytes()).into_owned(),
        NetnsChoice::Path(path) => terminal_safe(path.as_os_str().as_bytes()).into_owned(),
        NetnsChoice::Pid(pid) => format!("pid:{pid}"),
    }
}

fn dump_request(request: &CollectRequest) -> DumpRequest {
    DumpRequest {
        tables: request.tables.clone(),
        states: request.states,
        workers: None,
    }
}

/// A survey as one collection: every reached namespace's sockets, the current namespace's
/// table reports (or the first reached one's), and one line for what could not be read.
fn merge(survey: Survey) -> Collected {
    let Survey {
        discovery,
        dumps,
        unprobed,
    } = survey;
    let (mut collected, unreached) = merge_dumps(dumps, &discovery.namespaces);
    collected.notes = all_notes(&discovery, &unreached, unprobed);
    collected.coverage.incomplete = incomplete(&discovery, unprobed);
    collected
}

/// Whether namespaces may exist that `discovery` (and the held sockets followed, `unprobed`
/// of them not asked) did not find.
fn incomplete(discovery: &super::Discovery, unprobed: usize) -> bool {
    !discovery.unreadable.is_empty() || unprobed > 0 || discovery.mounts_error.is_some()
}

/// The line `--netns all` prints about what it could not see, if anything: namespaces found
/// but not read (by reason), processes whose namespace could not be read, held sockets that
/// could not be asked for theirs.
fn all_notes(discovery: &super::Discovery, unreached: &[String], unprobed: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut reasons: Vec<(&String, usize)> = Vec::new();
    for why in unreached {
        match reasons.iter_mut().find(|(r, _)| *r == why) {
            Some((_, n)) => *n += 1,
            None => reasons.push((why, 1)),
        }
    }
    for (why, n) in reasons {
        parts.push(format!(
            "{n} of {} network namespaces not read: {why}",
            discovery.namespaces.len()
        ));
    }
    if !discovery.unreadable.is_empty() {
        parts.push(format!(
            "the namespaces of {} are unreadable (another user's need root or \
             CAP_SYS_PTRACE; a security module can refuse even root), so namespaces only they \
             live in may be missing",
            count(discovery.unreadable.len(), "process")
        ));
    }
    if unprobed > 0 {
        parts.push(format!(
            "{} could not be asked for their namespace (needs root), so a namespace only a \
             socket keeps alive may be missing",
            count(unprobed, "held socket")
        ));
    }
    if let Some(e) = &discovery.mounts_error {
        parts.push(format!(
            "the mount table could not be read ({e}), so named namespaces no process lives in \
             are missing"
        ));
    }
    if parts.is_empty() {
        return Vec::new();
    }
    vec![format!("--netns all: {}", parts.join("; "))]
}

/// Dumps as one collection, with why each namespace not reached was not.
fn merge_dumps(dumps: Vec<NsDump>, namespaces: &[Namespace]) -> (Collected, Vec<String>) {
    let mut merged = Collected::default();
    let mut unreached = Vec::new();
    let mut reports_from_current = false;
    for dump in dumps {
        let found = namespaces.iter().find(|ns| ns.inode == dump.inode);
        let name = found.and_then(|ns| ns.name.clone());
        let mut collected = dump.collected;
        if let Some(found) = found.filter(|_| !matches!(dump.reach, Reach::Current)) {
            let coverage = &mut merged.coverage;
            match dump.reach {
                Reach::NotReached(_) => coverage.unread.push(found_netns(found)),
                _ => coverage.read.push(found_netns(found)),
            }
        }
        match &dump.reach {
            Reach::NotReached(why) => {
                unreached.push(why.to_string());
                continue;
            }
            Reach::Current if !reports_from_current => {
                merged.reports = std::mem::take(&mut collected.reports);
                reports_from_current = true;
            }
            _ if merged.reports.is_empty() => {
                merged.reports = std::mem::take(&mut collected.reports);
            }
            _ => {}
        }
        let ns = Arc::new(Netns {
            inode: dump.inode,
            name: name.map(OsString::into_vec),
        });
        tag(&mut collected.sockets, &ns);
        merged.sockets.append(&mut collected.sockets);
        merged.warnings.append(&mut collected.warnings);
    }
    (merged, unreached)
}

/// `ns` as the coverage of a collection names it.
fn found_netns(ns: &Namespace) -> FoundNetns {
    FoundNetns {
        netns: Netns {
            inode: ns.inode,
            name: ns.name.clone().map(OsString::into_vec),
        },
        pids: ns.pids.clone(),
    }
}

/// A collection with nothing read, and the line that says why.
fn failed(note: String) -> Collected {
    Collected {
        notes: vec![note],
        ..Collected::default()
    }
}

fn tag(sockets: &mut [crate::model::Socket], ns: &Arc<Netns>) {
    for socket in sockets {
        socket.netns = Some(Arc::clone(ns));
    }
}

fn netns(inode: u64, names: &HashMap<u64, OsString>) -> Arc<Netns> {
    Arc::new(Netns {
        inode,
        name: names.get(&inode).map(|n| n.as_bytes().to_vec()),
    })
}

/// The name each bind-mounted namespace's most telling mount gives it.
pub fn mount_names(proc_root: &Path) -> HashMap<u64, OsString> {
    let Ok(text) = std::fs::read(proc_root.join("self/mountinfo")) else {
        return HashMap::new();
    };
    let mut mounts = mountinfo::net_mounts(&text);
    mounts.sort_by_key(|m| mountinfo::name_rank(&m.path));
    let mut names = HashMap::new();
    for mount in mounts {
        if let Some(name) = mountinfo::name_of(&mount.path) {
            names.entry(mount.inode).or_insert(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proc_ns_link_is_reached_through_its_process_and_anything_else_as_a_mount() {
        assert!(matches!(
            target_of_path(Path::new("/proc/42/ns/net")),
            Target::Process(42)
        ));
        for path in [
            "/run/netns/w1",
            "/proc/42/ns/mnt",
            "/proc/x/ns/net",
            "/tmp/proc/1/ns/net",
        ] {
            assert!(
                matches!(target_of_path(Path::new(path)), Target::Mount(p) if p == Path::new(path)),
                "{path}"
            );
        }
    }

    #[test]
    fn what_all_could_not_read_is_one_line_with_every_reason() {
        let mut discovery = crate::source::netns::Discovery {
            namespaces: (1..=4).map(Namespace::new).collect(),
            unreadable: vec![7, 8],
            ..Default::default()
        };
        let why = crate::source::netns::NotReached::NeedsCapSysAdmin.to_string();
        let notes = all_notes(&discovery, &[why.clone(), why], 3);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let line = &notes[0];
        assert!(
            line.starts_with("--netns all: 2 of 4 network namespaces not read: "),
            "{line}"
        );
        assert!(line.contains("CAP_SYS_ADMIN"), "{line}");
        assert!(line.contains("2 processes are unreadable"), "{line}");
        assert!(line.contains("3 held sockets could not be asked"), "{line}");
        discovery.unreadable.clear();
        assert!(
            all_notes(&discovery, &[], 0).is_empty(),
            "nothing missed, nothing said"
        );
    }
}
