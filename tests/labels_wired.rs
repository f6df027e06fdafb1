//! Container and unit labels end to end, through the binary as a user runs it: real
//! processes in real cgroup v2 directories named as Docker, Podman, containerd under
//! Kubernetes and systemd name them, each listening in one private network namespace, with a
//! fake runtime state tree (`--state-root`). lsports' JSON must name, for every socket and
//! its holder, the container and unit the test built; `--container` and `--unit` must keep
//! exactly the sockets the test expects; a hostile container name must reach no terminal raw.
//!
//! The cgroups live under `<cgroup2 mount>/lsports-wired-<pid>-<n>` (one per world), removed even when the test
//! fails. Needs root; under `CI=true` a cgroup2 mount that cannot be written is a failure.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use serde_json::{Value, json};

use common::{
    assert_success, assert_terminal_safe, by_inode, cgroup2_mount_as_root, output_guarded,
    parse_csv, parse_json, put, scrubbed, skip_unless_ci,
};

const DOCKER: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const PODMAN: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const CONTAINERD: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const HOSTILE: &str = "5555555555555555555555555555555555555555555555555555555555555555";
const ROOTLESS: &str = "6666666666666666666666666666666666666666666666666666666666666666";
/// The name whoever starts the container chose: an escape sequence and a newline.
const HOSTILE_NAME: &str = "ev\u{1b}[31mil\nx";

/// A network namespace held by a sleeping process, cgroups under the test's parent, and the
/// listeners in them; on drop every process is killed and the directories removed.
struct World {
    holder: Child,
    parent: PathBuf,
    dirs: Vec<PathBuf>,
    children: Vec<Child>,
}

impl World {
    fn create(mount: &Path) -> Result<World, String> {
        // One parent per world: the tests of this file run in parallel in one process.
        static WORLDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = WORLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let parent = mount.join(format!("lsports-wired-{}-{n}", std::process::id()));
        fs::create_dir(&parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let holder = scrubbed("unshare")
            .args(["--net", "sleep", "infinity"])
            .spawn()
            .map_err(|e| format!("unshare: {e}"));
        let holder = match holder {
            Ok(holder) => holder,
            Err(why) => {
                let _ = fs::remove_dir(&parent);
                return Err(why);
            }
        };
        // Until unshare has made its namespace, /proc/PID/ns/net is still ours: a listener
        // entering it then would land in the host's namespace, beside whatever runs there.
        if let Err(why) = wait_for_own_namespace(holder.id()) {
            let mut holder = holder;
            let _ = holder.kill();
            let _ = holder.wait();
            let _ = fs::remove_dir(&parent);
            return Err(why);
        }
        Ok(World {
            holder,
            parent,
            dirs: Vec::new(),
            children: Vec::new(),
        })
    }

    fn netns(&self) -> String {
        format!("--net=/proc/{}/ns/net", self.holder.id())
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

    /// Start a TCP listener in `cgroup` and the world's namespace; its socket's inode.
    fn listener_in(&mut self, cgroup: &Path) -> u64 {
        let script = "import os,socket,sys\n\
            s=socket.socket(); s.bind(('0.0.0.0',0)); s.listen()\n\
            print(os.fstat(s.fileno()).st_ino, flush=True)\n\
            sys.stdin.read()\n";
        let mut cmd = scrubbed("sh");
        cmd.args([
            "-c",
            "echo $$ > \"$1/cgroup.procs\" && exec nsenter \"$2\" python3 -c \"$3\"",
        ])
        .args(["sh"])
        .arg(cgroup)
        .arg(self.netns())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.children.push(child);
        line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the process in {} did not listen: {line:?}",
                cgroup.display()
            )
        })
    }

    /// Start a TCP listener in `cgroup` and the world's namespace that forks `children`
    /// processes holding its socket too; the socket's inode and the children's pids.
    fn listener_with_children_in(&mut self, cgroup: &Path, children: usize) -> (u64, Vec<u32>) {
        // Every child waits on the shared stdin, whose end the test holds: all exit with it.
        let script = "import os,socket,sys\n\
            s=socket.socket(); s.bind(('0.0.0.0',0)); s.listen()\n\
            kids=[]\n\
            for _ in range(int(sys.argv[1])):\n\
            \x20   pid=os.fork()\n\
            \x20   if pid==0:\n\
            \x20       sys.stdin.read(); os._exit(0)\n\
            \x20   kids.append(pid)\n\
            print(os.fstat(s.fileno()).st_ino, *kids, flush=True)\n\
            sys.stdin.read()\n";
        let mut cmd = scrubbed("sh");
        cmd.args([
            "-c",
            "echo $$ > \"$1/cgroup.procs\" && exec nsenter \"$2\" python3 -c \"$3\" \"$4\"",
        ])
        .args(["sh"])
        .arg(cgroup)
        .arg(self.netns())
        .arg(script)
        .arg(children.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start sh");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.children.push(child);
        let numbers: Vec<u64> = (line.split_whitespace())
            .map(|n| {
                n.parse()
                    .unwrap_or_else(|_| panic!("not a number: {line:?}"))
            })
            .collect();
        assert_eq!(numbers.len(), children + 1, "{line:?}");
        let pids = numbers[1..].iter().map(|&p| p as u32).collect();
        (numbers[0], pids)
    }

    /// lsports in the world's namespace, reading runtime state under `state`.
    fn lsports(&self, state: &Path, args: &[&str]) -> Output {
        let mut cmd = scrubbed("nsenter");
        cmd.arg(self.netns())
            .arg(common::lsports_bin())
            .arg("--state-root")
            .arg(state)
            .args(args);
        let out = output_guarded(cmd, &format!("lsports {}", args.join(" ")));
        assert_success(&out, args);
        out
    }

    /// lsports as [`World::lsports`] runs it, under `strace`: its output, and the path of
    /// every file it opened.
    fn lsports_traced(&self, state: &Path, args: &[&str]) -> (Output, Vec<String>) {
        self.lsports_traced_with(state, &[], args)
    }

    /// [`World::lsports_traced`] with `env` set for lsports (`LSPORTS_BPF_ITERATOR`).
    fn lsports_traced_with(
        &self,
        state: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> (Output, Vec<String>) {
        let trace = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = scrubbed("nsenter");
        cmd.envs(env.iter().copied());
        cmd.arg(self.netns())
            .args([
                "strace",
                "-f",
                "-qq",
                "-e",
                "trace=open,openat,openat2",
                "-o",
            ])
            .arg(trace.path())
            .arg(common::lsports_bin())
            .arg("--state-root")
            .arg(state)
            .args(args);
        let out = output_guarded(cmd, &format!("strace lsports {}", args.join(" ")));
        assert_success(&out, args);
        let trace = fs::read_to_string(trace.path()).unwrap();
        (out, opened_paths(&trace))
    }
}

/// The path of each successful `open`, `openat` or `openat2` in an strace log
/// (`1234 openat(5, "987/cgroup", O_RDONLY|O_CLOEXEC) = 7`).
fn opened_paths(trace: &str) -> Vec<String> {
    (trace.lines())
        .filter(|line| line.contains("open") && !line.contains("= -1"))
        .filter_map(|line| Some(line.split('"').nth(1)?.to_owned()))
        .collect()
}

/// Whether `path` is some process's cgroup file: `PID/cgroup`, under a proc root or not.
fn is_process_cgroup_file(path: &str) -> bool {
    let Some(rest) = path.strip_suffix("/cgroup") else {
        return false;
    };
    let pid = rest.rsplit('/').next().unwrap_or_default();
    !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
}

impl Drop for World {
    fn drop(&mut self) {
        for child in self.children.iter_mut().chain([&mut self.holder]) {
            // Closing stdin ends the children a listener forked (they wait on it), which
            // killing the listener does not; their cgroups empty once they have exited.
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in self.dirs.iter().rev().chain([&self.parent]) {
            for _ in 0..250 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

fn world() -> Option<World> {
    let mount = cgroup2_mount_as_root("making cgroups")?;
    match World::create(&mount) {
        Ok(world) => Some(world),
        Err(why) => {
            skip_unless_ci(&format!("cannot build the world: {why}"));
            None
        }
    }
}

/// The runtimes' state files for the containers of [`cases`], in their formats.
fn state_tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let docker = |id: &str, name: &str| {
        let config = json!({ "Name": format!("/{name}") }).to_string();
        put(
            r,
            &format!("var/lib/docker/containers/{id}/config.v2.json"),
            &config,
        );
    };
    docker(DOCKER, "web");
    docker(HOSTILE, HOSTILE_NAME);
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
    root
}

/// Each cgroup (under the test's parent), and the `container` and `unit` JSON it must get.
fn cases() -> Vec<(String, Value, Value)> {
    let pod = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0d3c1e2f_4a5b_6c7d_8e9f_0a1b2c3d4e5f.slice";
    let container = |runtime: &str, id: &str, name: &str, pod: Value, ns: Value| json!({"runtime": runtime, "id": id, "name": name, "pod": pod, "pod_namespace": ns});
    vec![
        (
            format!("system.slice/docker-{DOCKER}.scope"),
            container("docker", DOCKER, "web", Value::Null, Value::Null),
            json!(format!("docker-{DOCKER}.scope")),
        ),
        (
            format!("machine.slice/libpod-{PODMAN}.scope"),
            container("podman", PODMAN, "db", Value::Null, Value::Null),
            json!(format!("libpod-{PODMAN}.scope")),
        ),
        (
            format!("{pod}/cri-containerd-{CONTAINERD}.scope"),
            container(
                "containerd",
                CONTAINERD,
                "nginx",
                json!("web-5d9f"),
                json!("shop"),
            ),
            json!(format!("cri-containerd-{CONTAINERD}.scope")),
        ),
        (
            format!("system.slice/docker-{HOSTILE}.scope"),
            container("docker", HOSTILE, HOSTILE_NAME, Value::Null, Value::Null),
            json!(format!("docker-{HOSTILE}.scope")),
        ),
        (
            "system.slice/nginx.service".to_owned(),
            Value::Null,
            json!("nginx.service"),
        ),
    ]
}

/// The world of [`cases`]: each listener's inode with the labels it must get.
fn build(world: &mut World) -> Vec<(String, u64, Value, Value)> {
    cases()
        .into_iter()
        .map(|(rel, container, unit)| {
            let cgroup = world.make(&rel);
            let inode = world.listener_in(&cgroup);
            (rel, inode, container, unit)
        })
        .collect()
}

#[test]
fn json_names_the_container_and_unit_of_every_socket_and_holder() {
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let built = build(&mut world);
    let out = world.lsports(state.path(), &["-tln", "--json"]);
    let listing = parse_json(&out.stdout);
    common::assert_valid(&listing, "the labelled listing");
    assert_eq!(
        listing.as_array().unwrap().len(),
        built.len(),
        "one socket per listener: {listing:#}"
    );
    for (rel, inode, container, unit) in &built {
        let socket = by_inode(&listing, *inode);
        assert_eq!(socket["container"], *container, "socket made in {rel}");
        assert_eq!(socket["unit"], *unit, "socket made in {rel}");
        let holders = socket["processes"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "socket made in {rel}: {socket:#}");
        assert_eq!(holders[0]["container"], *container, "holder in {rel}");
        assert_eq!(holders[0]["unit"], *unit, "holder in {rel}");
    }
}

#[test]
fn container_and_unit_filters_keep_exactly_the_matching_sockets() {
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let built = build(&mut world);
    let inode_of = |rel_part: &str| -> u64 {
        let found = built.iter().find(|b| b.0.contains(rel_part)).unwrap();
        found.1
    };
    let kept = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["-tln", "--json"];
        all.extend_from_slice(args);
        let listing = parse_json(&world.lsports(state.path(), &all).stdout);
        let mut inodes: Vec<u64> = (listing.as_array().unwrap().iter())
            .map(|s| s["inode"].as_u64().unwrap())
            .collect();
        inodes.sort_unstable();
        inodes
    };
    assert_eq!(kept(&["--container", "web"]), vec![inode_of(DOCKER)]);
    assert_eq!(kept(&["--container", "2222*"]), vec![inode_of(PODMAN)]);
    // An id is taken by a start of it, as docker takes it: the short id the table shows.
    assert_eq!(
        kept(&["--container", &PODMAN[..12]]),
        vec![inode_of(PODMAN)]
    );
    assert_eq!(kept(&["--container", "2222?2"]), vec![inode_of(PODMAN)]);
    assert_eq!(kept(&["--container", "22222x"]), Vec::<u64>::new());
    assert_eq!(
        kept(&["--container", "web-5d9f"]),
        vec![inode_of(CONTAINERD)]
    );
    assert_eq!(kept(&["--unit", "nginx.service"]), vec![inode_of("nginx")]);
    let mut libpod_or_nginx = vec![inode_of(PODMAN), inode_of("nginx")];
    libpod_or_nginx.sort_unstable();
    assert_eq!(
        kept(&["--unit", "libpod-*", "--unit", "nginx.*"]),
        libpod_or_nginx
    );
    assert_eq!(
        kept(&["--container", "nothing-like-this"]),
        Vec::<u64>::new()
    );
}

#[test]
fn a_hostile_container_name_reaches_no_terminal_raw() {
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let built = build(&mut world);
    let hostile = built.iter().find(|b| b.0.contains(HOSTILE)).unwrap().1;
    let filter = ["--container", "ev*"];
    let columns = "inode,container,unit";
    let table = world.lsports(state.path(), &["-tln", "-o", columns, filter[0], filter[1]]);
    assert_terminal_safe("table", &table.stdout);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains(&hostile.to_string()) && text.contains("ev\\e[31mil\\nx"),
        "the table shows the name escaped:\n{text}"
    );
    let csv = world.lsports(
        state.path(),
        &[
            "-tln", "--format", "csv", "-o", columns, filter[0], filter[1],
        ],
    );
    assert_terminal_safe("csv", &csv.stdout);
    let rows = parse_csv(&String::from_utf8(csv.stdout).unwrap());
    assert_eq!(
        rows[1],
        [
            hostile.to_string(),
            "ev\\e[31mil\\nx".into(),
            format!("docker-{HOSTILE}.scope")
        ]
    );
    let prometheus = world.lsports(state.path(), &["-tln", "--format", "prometheus"]);
    assert_terminal_safe("prometheus", &prometheus.stdout);
    let text = String::from_utf8(prometheus.stdout).unwrap();
    assert!(
        text.contains(r#"container="ev\\e[31mil\\nx""#),
        "the label is escaped, then quoted as the format says:\n{text}"
    );
    let jsonl = world.lsports(
        state.path(),
        &["-tln", "--format", "jsonl", filter[0], filter[1]],
    );
    assert_terminal_safe("jsonl", &jsonl.stdout);
    let line: Value = serde_json::from_slice(&jsonl.stdout).unwrap();
    assert_eq!(
        line["container"]["name"], HOSTILE_NAME,
        "JSON keeps the name, escaped"
    );
}

/// A socket is labelled by the cgroup it was made in (`INET_DIAG_CGROUP_ID`), not by where
/// its holder lives now: the holder moved to another unit after listening keeps its own
/// labels, and the socket keeps the container's.
#[test]
fn a_socket_keeps_the_labels_of_the_cgroup_it_was_made_in() {
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let made_in = world.make(&format!("system.slice/docker-{DOCKER}.scope"));
    let moved_to = world.make("system.slice/backup.service");
    let inode = world.listener_in(&made_in);
    let pid = fs::read_to_string(made_in.join("cgroup.procs")).unwrap();
    let pid = pid.trim();
    fs::write(moved_to.join("cgroup.procs"), pid).unwrap();
    let listing = parse_json(&world.lsports(state.path(), &["-tln", "--json"]).stdout);
    let socket = by_inode(&listing, inode);
    assert_eq!(socket["container"]["name"], "web", "{socket:#}");
    assert_eq!(socket["unit"], format!("docker-{DOCKER}.scope"));
    let holder = &socket["processes"][0];
    assert_eq!(holder["pid"].to_string(), pid);
    assert_eq!(holder["container"], Value::Null, "{holder:#}");
    assert_eq!(holder["unit"], "backup.service");
}

/// The table (and CSV) shows only sockets' labels, so where every socket carries its cgroup id
/// (`INET_DIAG_CGROUP_ID`) no process's `/proc/PID/cgroup` is read: the holder of the Docker
/// container's socket has moved to `backup.service` since it listened, and the table still
/// names the container, with no cgroup file of any process opened (strace says which files
/// lsports opened; the container's state file among them shows the trace sees the labeler's
/// reads). JSON, which shows each holder's labels, reads the holder's file and names
/// `backup.service` for the process. A socket whose own cgroup names nothing takes its
/// holder's labels, read for it alone. (The /proc walk's reads: the kernel iterator reads
/// none, see [`a_holder_that_moved_is_labelled_alike_by_the_kernel_iterator_and_the_walk`].)
#[test]
fn a_table_of_sockets_with_cgroup_ids_reads_no_process_cgroup() {
    if !common::have("strace") {
        return;
    }
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let made_in = world.make(&format!("system.slice/docker-{DOCKER}.scope"));
    let moved_to = world.make("system.slice/backup.service");
    let inode = world.listener_in(&made_in);
    let pid = fs::read_to_string(made_in.join("cgroup.procs")).unwrap();
    let pid = pid.trim().to_owned();
    fs::write(moved_to.join("cgroup.procs"), &pid).unwrap();

    let args = ["-tln", "-o", "inode,container,unit"];
    let (out, opened) = world.lsports_traced(state.path(), &args);
    let table = common::Table::parse(&String::from_utf8(out.stdout).unwrap());
    let row = (table.rows.iter())
        .find(|r| table.cell(r, "Inode") == inode.to_string())
        .unwrap_or_else(|| panic!("no row for inode {inode}:\n{}", table.raw));
    assert_eq!(table.cell(row, "Container"), "web", "{}", table.raw);
    let unit = format!("docker-{DOCKER}.scope");
    assert_eq!(table.cell(row, "Unit"), unit, "{}", table.raw);
    let state_file = format!("{DOCKER}/config.v2.json");
    assert!(
        opened.iter().any(|p| p.ends_with(&state_file)),
        "the trace shows the labeler's reads: {opened:#?}"
    );
    let cgroup_files: Vec<&String> = opened
        .iter()
        .filter(|p| is_process_cgroup_file(p))
        .collect();
    assert_eq!(
        cgroup_files,
        Vec::<&String>::new(),
        "no process's cgroup is read"
    );

    let json = ["-tln", "--json", "--attribution", "walk"];
    let (out, opened) = world.lsports_traced(state.path(), &json);
    let socket = by_inode(&parse_json(&out.stdout), inode).clone();
    assert_eq!(socket["container"]["name"], "web", "{socket:#}");
    assert_eq!(
        socket["processes"][0]["unit"], "backup.service",
        "{socket:#}"
    );
    assert!(
        opened.iter().any(|p| p.ends_with(&format!("{pid}/cgroup"))),
        "JSON reads the holder's cgroup: {opened:#?}"
    );

    // Made where no unit or container is named, then moved into a container: the socket's own
    // cgroup says nothing, so its holder's is read, and names it.
    let plain = world.make("plain");
    let podman = world.make(&format!("machine.slice/libpod-{PODMAN}.scope"));
    let unnamed = world.listener_in(&plain);
    let pid = fs::read_to_string(plain.join("cgroup.procs")).unwrap();
    fs::write(podman.join("cgroup.procs"), pid.trim()).unwrap();
    let walk = [
        "-tln",
        "-o",
        "inode,container,unit",
        "--attribution",
        "walk",
    ];
    let (out, opened) = world.lsports_traced(state.path(), &walk);
    let table = common::Table::parse(&String::from_utf8(out.stdout).unwrap());
    let row = (table.rows.iter())
        .find(|r| table.cell(r, "Inode") == unnamed.to_string())
        .unwrap_or_else(|| panic!("no row for inode {unnamed}:\n{}", table.raw));
    assert_eq!(table.cell(row, "Container"), "db", "{}", table.raw);
    assert_eq!(table.cell(row, "Unit"), format!("libpod-{PODMAN}.scope"));
    let cgroup_files: Vec<&String> = opened
        .iter()
        .filter(|p| is_process_cgroup_file(p))
        .collect();
    assert_eq!(
        cgroup_files.len(),
        1,
        "only the unnamed socket's holder is read: {cgroup_files:?}"
    );
    assert!(cgroup_files[0].ends_with(&format!("{}/cgroup", pid.trim())));
}

/// Many holders, few cgroups: the /proc walk takes their labels from each cgroup's
/// `cgroup.procs`, read once, not from each process's `/proc/PID/cgroup`, and they are the
/// same: a listener in the Docker container's cgroup forks more children than the host has
/// cgroups, some of which then move to `backup.service`; JSON names each holder's own
/// container and unit, and strace shows no child's cgroup file opened. The kernel iterator
/// (each program) gives the same JSON with no cgroup file read at all: it read each
/// holder's cgroup id as it visited the process.
#[test]
fn many_holders_are_labelled_from_their_cgroups_members() {
    if !common::have("strace") {
        return;
    }
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let docker = world.make(&format!("system.slice/docker-{DOCKER}.scope"));
    let backup = world.make("system.slice/backup.service");
    // More holders than cgroups, whatever else runs on the host.
    let mount = cgroup2_mount_as_root("making cgroups").unwrap();
    let cgroups = lsports::sys::cgroupfs::CgroupIndex::build(&mount)
        .unwrap()
        .len();
    if cgroups > 2000 {
        return skip_unless_ci(&format!("{cgroups} cgroups: too many holders to start"));
    }
    let (inode, children) = world.listener_with_children_in(&docker, (cgroups + 16).max(64));
    let moved: Vec<u32> = children.iter().copied().step_by(5).collect();
    for pid in &moved {
        fs::write(backup.join("cgroup.procs"), pid.to_string()).unwrap();
    }
    let walk = ["-tln", "--json", "--attribution", "walk"];
    let (out, opened) = world.lsports_traced(state.path(), &walk);
    let listing = parse_json(&out.stdout);
    let socket = by_inode(&listing, inode).clone();
    let holders = socket["processes"].as_array().unwrap();
    assert_eq!(holders.len(), children.len() + 1, "{socket:#}");
    for holder in holders {
        let pid = holder["pid"].as_u64().unwrap() as u32;
        if moved.contains(&pid) {
            assert_eq!(holder["unit"], "backup.service", "{holder:#}");
            assert_eq!(holder["container"], Value::Null, "{holder:#}");
        } else {
            assert_eq!(
                holder["unit"],
                format!("docker-{DOCKER}.scope"),
                "{holder:#}"
            );
            assert_eq!(holder["container"]["name"], "web", "{holder:#}");
        }
    }
    let read: Vec<&String> = (opened.iter())
        .filter(|p| {
            children
                .iter()
                .any(|c| p.ends_with(&format!("/{c}/cgroup")) || **p == format!("{c}/cgroup"))
        })
        .collect();
    assert_eq!(
        read,
        Vec::<&String>::new(),
        "no holder's own cgroup file is read"
    );
    assert!(
        opened.iter().any(|p| p.ends_with("cgroup.procs")),
        "the cgroups' members are read: {opened:#?}"
    );
    if !common::can_load_bpf("reading holders' cgroups in the kernel") {
        return;
    }
    assert_kernel_iterator_reads_no_cgroup_file(&world, state.path(), &listing);
}

/// A cgroup v1 `name=systemd` directory pair made by a test (`<slice>/<service>`, named by
/// pid and a counter: the tests of this file run in parallel), removed on drop once its
/// processes are gone: declare it before the [`World`] whose processes it holds.
struct SystemdV1Unit {
    slice: PathBuf,
    service: PathBuf,
}

impl SystemdV1Unit {
    /// The unit `lsports-v1-<pid>-<n>.service` in `lsports-v1-<pid>-<n>.slice` of the
    /// hierarchy mounted at `mount`.
    fn create(mount: &Path) -> SystemdV1Unit {
        static UNITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = UNITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("lsports-v1-{}-{n}", std::process::id());
        let slice = mount.join(format!("{name}.slice"));
        let service = slice.join(format!("{name}.service"));
        fs::create_dir_all(&service).unwrap_or_else(|e| panic!("{}: {e}", service.display()));
        SystemdV1Unit { slice, service }
    }

    /// The unit's name, as lsports shows it.
    fn name(&self) -> String {
        self.service
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for SystemdV1Unit {
    fn drop(&mut self) {
        for dir in [&self.service, &self.slice] {
            for _ in 0..250 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// The parent of process `pid`, from its `/proc/PID/status`.
fn parent_of(pid: u32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    (status.lines())
        .find_map(|line| line.strip_prefix("PPid:"))
        .and_then(|ppid| ppid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no parent in /proc/{pid}/status"))
}

/// The mount of the cgroup v1 `name=systemd` hierarchy's root (a hybrid host's), if any.
fn systemd_v1_mount() -> Option<PathBuf> {
    let info = fs::read("/proc/self/mountinfo").unwrap();
    (info.split(|&b| b == b'\n'))
        .find_map(|line| lsports::sys::cgroupfs::named_v1_mount(line, b"systemd"))
}

/// On a hybrid host, a process in the cgroup2 root may be in a unit of the v1 `name=systemd`
/// hierarchy, which its `/proc/PID/cgroup` says, and so must lsports when it takes the
/// hierarchy's membership from its tree instead of that file. A listener and its children,
/// all put in the cgroup2 root; the listener and every third child then put in a v1
/// `…slice/….service` the test made, the others in the v1 root. JSON must name that unit for
/// exactly the moved holders (and for the socket, made in the cgroup2 root), on the /proc
/// walk and on each kernel iterator program alike, and strace must show no holder's cgroup
/// file opened: the unit's `tasks` is read instead.
#[test]
fn a_process_in_the_cgroup2_root_keeps_its_name_systemd_unit() {
    if !common::have("strace") || cgroup2_mount_as_root("making cgroups").is_none() {
        return;
    }
    let Some(v1) = systemd_v1_mount() else {
        return skip_unless_ci("no cgroup v1 name=systemd hierarchy (not a hybrid host)");
    };
    let unit = SystemdV1Unit::create(&v1);
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let v2 = cgroup2_mount_as_root("making cgroups").unwrap();
    // More holders in the cgroup2 root than either tree has cgroups, whatever else runs on
    // the host: then its members and the hierarchy's are read, not each process's file.
    let count = |mount: &Path| {
        let index = lsports::sys::cgroupfs::CgroupIndex::build(mount).unwrap();
        index.len()
    };
    let cgroups = count(&v2).max(count(&v1));
    if cgroups > 2000 {
        return skip_unless_ci(&format!("{cgroups} cgroups: too many holders to start"));
    }
    let (inode, children) = world.listener_with_children_in(&v2, (cgroups + 16).max(80));
    let parent = parent_of(children[0]);
    let moved: Vec<u32> = (children.iter().copied().step_by(3))
        .chain([parent])
        .collect();
    for pid in children.iter().chain([&parent]) {
        let to = if moved.contains(pid) {
            &unit.service
        } else {
            &v1
        };
        fs::write(to.join("cgroup.procs"), pid.to_string()).unwrap();
    }
    let walk = ["-tln", "--json", "--attribution", "walk"];
    let (out, opened) = world.lsports_traced(state.path(), &walk);
    let listing = parse_json(&out.stdout);
    let socket = by_inode(&listing, inode);
    assert_eq!(socket["unit"], unit.name(), "{socket:#}");
    assert_eq!(socket["container"], Value::Null, "{socket:#}");
    let holders = socket["processes"].as_array().unwrap();
    assert_eq!(holders.len(), children.len() + 1, "{socket:#}");
    for holder in holders {
        let pid = holder["pid"].as_u64().unwrap() as u32;
        let want = match moved.contains(&pid) {
            true => Value::from(unit.name()),
            false => Value::Null,
        };
        assert_eq!(holder["unit"], want, "{holder:#}");
        assert_eq!(holder["container"], Value::Null, "{holder:#}");
    }
    let read: Vec<&String> = (opened.iter())
        .filter(|p| is_process_cgroup_file(p))
        .collect();
    assert_eq!(
        read,
        Vec::<&String>::new(),
        "no holder's cgroup file is read"
    );
    let tasks = format!("{}/tasks", unit.name());
    assert!(
        opened.iter().any(|p| p.ends_with(&tasks)),
        "the unit's tasks are read: {opened:#?}"
    );
    if !common::can_load_bpf("reading holders' cgroups in the kernel") {
        return;
    }
    assert_kernel_iterator_reads_no_cgroup_file(&world, state.path(), &listing);
}

/// The JSON listing `-tln` of each kernel iterator program, in `world`: the same as `walked`
/// (the /proc walk's), and no process's cgroup file nor any `cgroup.procs` opened for it.
fn assert_kernel_iterator_reads_no_cgroup_file(world: &World, state: &Path, walked: &Value) {
    for program in ["task", "task_file"] {
        let env = [(lsports::process::bpf::iterator::FORCE_VARIABLE, program)];
        let args = ["-tln", "--json", "--attribution", "bpf", "-v"];
        let (out, opened) = world.lsports_traced_with(state, &env, &args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("from the kernel (BPF"), "{program}: {said}");
        let listing = parse_json(&out.stdout);
        assert_eq!(
            listing, *walked,
            "the {program} iterator and the walk must give the same JSON"
        );
        let cgroup_files: Vec<&String> = (opened.iter())
            .filter(|p| is_process_cgroup_file(p) || p.ends_with("cgroup.procs"))
            .collect();
        assert_eq!(
            cgroup_files,
            Vec::<&String>::new(),
            "the {program} iterator read each holder's cgroup: no file is read for it"
        );
    }
}

/// A holder is labelled by the cgroup it is in now, whichever way it was found: the kernel
/// iterator reads each process's cgroup v2 id as it visits it (`task->cgroups->dfl_cgrp`),
/// the /proc walk reads `/proc/PID/cgroup`. Two listeners made in the Docker container's
/// cgroup, one of them then moved to Podman's, and one made in `nginx.service`: JSON names
/// the moved holder's Podman container (and the socket Docker's, where it was made), the same
/// by both iterator programs and by the walk, and the iterator reads no cgroup file.
#[test]
fn a_holder_that_moved_is_labelled_alike_by_the_kernel_iterator_and_the_walk() {
    if !common::have("strace") || !common::can_load_bpf("reading holders' cgroups in the kernel") {
        return;
    }
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let docker = world.make(&format!("system.slice/docker-{DOCKER}.scope"));
    let podman = world.make(&format!("machine.slice/libpod-{PODMAN}.scope"));
    let nginx = world.make("system.slice/nginx.service");
    let moved = world.listener_in(&docker);
    let moved_pid = fs::read_to_string(docker.join("cgroup.procs")).unwrap();
    let moved_pid = moved_pid.trim().to_owned();
    fs::write(podman.join("cgroup.procs"), &moved_pid).unwrap();
    let stays = world.listener_in(&docker);
    let service = world.listener_in(&nginx);
    let (out, opened) =
        world.lsports_traced(state.path(), &["-tln", "--json", "--attribution", "walk"]);
    assert!(
        opened
            .iter()
            .any(|p| p.ends_with(&format!("{moved_pid}/cgroup"))),
        "the walk reads the holder's cgroup file: {opened:#?}"
    );
    let listing = parse_json(&out.stdout);
    let expected = [
        (moved, "web", "db", format!("libpod-{PODMAN}.scope")),
        (stays, "web", "web", format!("docker-{DOCKER}.scope")),
    ];
    for (inode, made_in, holder_in, holder_unit) in &expected {
        let socket = by_inode(&listing, *inode);
        assert_eq!(socket["container"]["name"], *made_in, "{socket:#}");
        let holder = &socket["processes"][0];
        assert_eq!(holder["container"]["name"], *holder_in, "{holder:#}");
        assert_eq!(holder["unit"], *holder_unit, "{holder:#}");
    }
    assert_eq!(
        by_inode(&listing, moved)["processes"][0]["pid"].to_string(),
        moved_pid
    );
    let socket = by_inode(&listing, service);
    assert_eq!(
        socket["processes"][0]["unit"], "nginx.service",
        "{socket:#}"
    );
    assert_eq!(socket["processes"][0]["container"], Value::Null);
    assert_kernel_iterator_reads_no_cgroup_file(&world, state.path(), &listing);
}

/// Wait until process `pid` is in a network namespace other than this test's.
fn wait_for_own_namespace(pid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let ours = fs::metadata("/proc/self/ns/net")
        .map_err(|e| e.to_string())?
        .ino();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let theirs = fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
        match theirs {
            Ok(inode) if inode != ours => return Ok(()),
            _ if std::time::Instant::now() > deadline => {
                return Err(format!(
                    "unshare --net (pid {pid}) made no namespace in 10 s"
                ));
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
}

/// A snapshot labels its sockets as the live listing does: the capture records each holder's
/// cgroup, so the container and unit columns, `--container`, and a policy rule on
/// `container` judge the snapshot as they judge the live system (a central audit of a
/// fleet's snapshots must not pass what the live audit fails).
#[test]
fn a_snapshot_names_containers_and_units_as_the_live_listing_does() {
    let Some(mut world) = world() else { return };
    let state = state_tree();
    let built = build(&mut world);
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("s.tar.gz");
    world.lsports(state.path(), &["capture", snapshot.to_str().unwrap()]);
    let snap = ["--snapshot", snapshot.to_str().unwrap()];
    let listing = parse_json(
        &world
            .lsports(state.path(), &[&snap[..], &["-tln", "--json"]].concat())
            .stdout,
    );
    for (rel, inode, container, unit) in &built {
        let socket = by_inode(&listing, *inode);
        assert_eq!(socket["container"], *container, "socket made in {rel}");
        assert_eq!(socket["unit"], *unit, "socket made in {rel}");
    }
    let kept = parse_json(
        &world
            .lsports(
                state.path(),
                &[&snap[..], &["-tln", "--json", "--container", "web"]].concat(),
            )
            .stdout,
    );
    let docker = built.iter().find(|b| b.0.contains(DOCKER)).unwrap().1;
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept:#}");
    assert_eq!(kept[0]["inode"], docker, "{kept:#}");
    let policy = dir.path().join("p.toml");
    fs::write(
        &policy,
        "default = \"allow\"\n[[rule]]\naction = \"deny\"\nname = \"no web\"\ncontainer = \"web\"\n",
    )
    .unwrap();
    let mut cmd = scrubbed(common::lsports_bin());
    cmd.arg("--state-root").arg(state.path()).args(snap);
    cmd.args(["audit", "--fail-on", "none", "--policy"])
        .arg(&policy);
    let audit = output_guarded(cmd, "lsports --snapshot … audit");
    let report = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.status.code(), Some(1), "{report}");
    assert!(
        report.contains("denied by") && report.contains("no web"),
        "{report}"
    );
}

/// A rootless container (F21): uid 1000 names a cgroup in its own `user@1000.service`
/// subtree as Docker would and writes `web` in its own home's state. It must not pass for
/// root's `web`: shown as `alice/web`, JSON says whose, and `--container web` or a policy
/// `container = "web"` keep root's only; `alice/web`, `1000/web`, `*/web` the user's.
#[test]
fn a_users_rootless_container_is_not_taken_for_roots() {
    // Needs root, as every world does (and to give the user's files to uid 1000).
    let Some(mut world) = world() else { return };
    let state = state_tree();
    put(
        state.path(),
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    );
    put(
        state.path(),
        &format!("home/alice/.local/share/docker/containers/{ROOTLESS}/config.v2.json"),
        r#"{"Name":"/web"}"#,
    );
    let home = state.path().join("home/alice");
    let chown = scrubbed("chown").arg("-R").arg("1000").arg(&home).status();
    assert!(chown.unwrap().success(), "chown {}", home.display());
    let roots = world.make(&format!("system.slice/docker-{DOCKER}.scope"));
    let roots = world.listener_in(&roots);
    let users = world.make(&format!(
        "user.slice/user-1000.slice/user@1000.service/app.slice/docker-{ROOTLESS}.scope"
    ));
    let users = world.listener_in(&users);

    let listing = parse_json(&world.lsports(state.path(), &["-tln", "--json"]).stdout);
    common::assert_valid(&listing, "a listing with a rootless container");
    let root_container = &by_inode(&listing, roots)["container"];
    assert_eq!(root_container["name"], "web");
    assert_eq!(root_container.get("rootless_uid"), None, "{root_container}");
    let user_container = &by_inode(&listing, users)["container"];
    assert_eq!(user_container["name"], "web");
    assert_eq!(user_container["rootless_uid"], 1000, "{user_container}");
    assert_eq!(user_container["rootless_user"], "alice", "{user_container}");

    let args = ["-tln", "--format", "csv", "-o", "inode,container"];
    let csv = world.lsports(state.path(), &args);
    let mut rows = parse_csv(&String::from_utf8(csv.stdout).unwrap());
    rows.sort();
    let mut want = [
        vec![roots.to_string(), "web".to_owned()],
        vec![users.to_string(), "alice/web".to_owned()],
    ];
    want.sort();
    assert_eq!(rows[..2], want[..], "{rows:?}");

    let kept = |pattern: &str| -> Vec<u64> {
        let args = ["-tln", "--json", "--container", pattern];
        let listing = parse_json(&world.lsports(state.path(), &args).stdout);
        (listing.as_array().unwrap().iter())
            .map(|s| s["inode"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(kept("web"), vec![roots], "a plain name is root's");
    assert_eq!(kept("*"), vec![roots], "a plain glob is root's");
    assert_eq!(kept(&ROOTLESS[..12]), Vec::<u64>::new(), "so is a plain id");
    assert_eq!(kept("alice/web"), vec![users]);
    assert_eq!(kept("1000/web"), vec![users]);
    assert_eq!(kept("*/web"), vec![users]);
    assert_eq!(kept(&format!("alice/{}", &ROOTLESS[..12])), vec![users]);
    assert_eq!(kept("bob/web"), Vec::<u64>::new());

    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    fs::write(
        &policy,
        "default = \"deny\"\n[[rule]]\naction = \"allow\"\ncontainer = \"web\"\n",
    )
    .unwrap();
    let mut cmd = scrubbed("nsenter");
    cmd.arg(world.netns())
        .arg(common::lsports_bin())
        .arg("--state-root")
        .arg(state.path())
        .args(["audit", "--format", "json", "--policy"])
        .arg(&policy);
    let audit = output_guarded(cmd, "lsports audit --policy");
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let unexpected: Vec<u64> = (report["unexpected"].as_array().unwrap().iter())
        .map(|u| u["listener"]["inode"].as_u64().unwrap())
        .collect();
    assert_eq!(
        unexpected,
        vec![users],
        "only root's web is allowed: {report:#}"
    );
}
