//! The two attribution paths: the kernel BPF iterator and the `/proc/*/fd` walk must give the
//! same holders and the same listing, the iterator must be chosen or refused for the right
//! reasons, and an unprivileged `auto` run must still list every socket.
//!
//! BPF tests need root (as CI runs them) and a kernel with BTF; elsewhere they print why they
//! are skipped. The library tests call `process::bpf` and `process::fdscan` directly; the CLI
//! tests run `lsports --attribution bpf|walk|auto` inside namespace worlds.

mod common;

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::path::Path;

use common::*;
use lsports::process::bpf::{self, BpfUnavailable};
use lsports::process::fdscan;
use serde_json::{Value, json};

/// Set in the environment of this test binary re-run inside a new pid namespace.
const INNER: &str = "LSPORTS_ATTRIBUTION_INNER";

/// Why BPF tests cannot run here, if they cannot.
fn bpf_skip_reason() -> Option<String> {
    if !is_root() {
        return Some("the BPF iterator needs root".into());
    }
    if !Path::new(bpf::BTF_PATH).exists() {
        return Some(format!("no kernel BTF at {}", bpf::BTF_PATH));
    }
    None
}

macro_rules! require_bpf {
    () => {
        if let Some(reason) = bpf_skip_reason() {
            eprintln!("SKIP: {reason}");
            return;
        }
    };
}

/// The inode of socket `fd` of the calling thread (`thread-self`: a thread may have its own
/// fd table).
fn socket_inode(fd: i32) -> u64 {
    let link = std::fs::read_link(format!("/proc/thread-self/fd/{fd}")).unwrap();
    fdscan::parse_socket_link(link.as_os_str().as_encoded_bytes()).unwrap()
}

/// Both paths over our own live `/proc`, which must agree on holders and details.
///
/// Other tests of this binary start processes: a child between fork and exec holds a copy of
/// every fd, our sockets included, for a moment. A scan that caught one is taken again.
fn scan_both(wanted: &HashSet<u64>) -> lsports::process::Scan {
    for _ in 0..10 {
        let walked = fdscan::scan(Path::new("/proc"), wanted).unwrap();
        let kernel = bpf::scan(Path::new("/proc"), wanted).unwrap();
        if kernel.holders == walked.holders && kernel.details == walked.details {
            assert_same_refusals(wanted, &kernel, &walked);
            return kernel;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let walked = fdscan::scan(Path::new("/proc"), wanted).unwrap();
    let kernel = bpf::scan(Path::new("/proc"), wanted).unwrap();
    assert_eq!(kernel.holders, walked.holders, "holders differ");
    assert_eq!(kernel.details, walked.details, "details differ");
    assert_same_refusals(wanted, &kernel, &walked);
    kernel
}

/// Where a wanted socket has no holder, both paths count the same processes as refused (the
/// iterator counts them only then: otherwise they explain nothing).
fn assert_same_refusals(
    wanted: &HashSet<u64>,
    kernel: &lsports::process::Scan,
    walked: &lsports::process::Scan,
) {
    if wanted.iter().any(|&inode| !kernel.holders.contains(inode)) {
        assert_eq!(kernel.denied, walked.denied, "both count the same refusals");
    }
}

// ---------------------------------------------------------------------------
// Library: the kernel iterator against the walk

#[test]
fn bpf_and_walk_find_the_same_holders_of_our_own_sockets() {
    require_bpf!();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // A second fd on the same socket: both must be found, lowest first.
    let dup = tcp.try_clone().unwrap();
    let wanted: HashSet<u64> = [tcp.as_raw_fd(), udp.as_raw_fd()]
        .into_iter()
        .map(socket_inode)
        .collect();
    let scan = scan_both(&wanted);
    let me = std::process::id();
    let tcp_holders = scan.holders.of(socket_inode(tcp.as_raw_fd()));
    let fds: Vec<u32> = tcp_holders.iter().map(|h| h.fd).collect();
    assert_eq!(fds, vec![tcp.as_raw_fd() as u32, dup.as_raw_fd() as u32]);
    assert!(tcp_holders.iter().all(|h| h.pid == me));
    assert_eq!(scan.details.len(), 1, "details only for holder pids");
}

#[test]
fn a_thread_with_its_own_fd_table_is_not_the_process() {
    require_bpf!();
    // /proc/PID/fd shows the fd table of the thread-group leader; a thread that unshared its
    // table holds sockets the walk cannot see, and the iterator must not report them either.
    let (inode_tx, inode_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_FILES only gives this thread a private fd table.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_FILES) }, 0);
        let own = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        inode_tx.send(socket_inode(own.as_raw_fd())).unwrap();
        done_rx.recv().unwrap();
    });
    let hidden = inode_rx.recv().unwrap();
    let shared = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let visible = socket_inode(shared.as_raw_fd());
    let scan = scan_both(&HashSet::from([hidden, visible]));
    done_tx.send(()).unwrap();
    thread.join().unwrap();
    assert!(!scan.holders.contains(hidden));
    assert_eq!(scan.holders.of(visible).len(), 1);
}

#[test]
fn a_snapshot_or_fixture_tree_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = bpf::scan(dir.path(), &HashSet::new()).unwrap_err();
    assert!(matches!(err, BpfUnavailable::NotLiveProc { .. }), "{err}");
    assert!(err.to_string().contains("not this process's live /proc"));
}

#[test]
fn bpf_numbers_pids_as_a_nested_pid_namespace_does() {
    require_bpf!();
    // Re-run one test of this binary as pid 1 of a new pid namespace with its own /proc: the
    // kernel's numbers differ from the namespace's, which /proc shows.
    let mut cmd = scrubbed("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "inner_bpf_matches_walk_in_this_pid_namespace",
            "--include-ignored",
            "--nocapture",
        ])
        .env(INNER, "1");
    let out = output_guarded(cmd, "unshare --pid (inner test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "inner test failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs only inside `bpf_numbers_pids_as_a_nested_pid_namespace_does`.
#[test]
#[ignore = "run by bpf_numbers_pids_as_a_nested_pid_namespace_does in a new pid namespace"]
fn inner_bpf_matches_walk_in_this_pid_namespace() {
    if std::env::var_os(INNER).is_none() {
        eprintln!("SKIP: only meaningful inside a new pid namespace");
        return;
    }
    // `unshare --fork` made this test binary pid 1 of the namespace; the kernel's global
    // number for it is not 1 (that is the host's init).
    assert_eq!(std::process::id(), 1, "not pid 1 of a new pid namespace");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let inode = socket_inode(listener.as_raw_fd());
    let scan = scan_both(&HashSet::from([inode]));
    assert_eq!(scan.holders.of(inode)[0].pid, 1);
}

// ---------------------------------------------------------------------------
// CLI: namespace worlds

/// prefork and SO_REUSEPORT groups, IPv4 and IPv6, TCP and UDP, and connections.
fn busy_world() -> World {
    World::start(&json!([
        group_with("tcp", "0.0.0.0", "forky", json!({"prefork": 4})),
        group_with(
            "udp",
            "::",
            "forkyu",
            json!({"prefork": 3, "v6only": false})
        ),
        group_with(
            "tcp",
            "127.0.0.1",
            "master",
            json!({"prefork": 2, "worker_name": "worker"})
        ),
        group_with("tcp", "0.0.0.0", "rport", json!({"reuseport": 3})),
        group_with("udp", "::1", "rportu", json!({"reuseport": 3})),
        group_with("tcp", "::1", "multi", json!({"count": 5})),
        group_with("tcp", "127.0.0.1", "conn", json!({"connect": true})),
        group_with("udp", "127.0.0.1", "udpc", json!({"udp_connect": true})),
    ]))
}

/// `--json` output of `--attribution CHOICE args...`, asserting success and the `-v` line.
fn json_by(world: &World, choice: &str, args: &[&str], said: &str) -> Value {
    let mut a = vec!["--attribution", choice, "-v", "--json"];
    a.extend_from_slice(args);
    let out = world.run(&a);
    assert_success(&out, &a);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(said),
        "lsports {}: expected {said:?} on stderr:\n{stderr}",
        a.join(" ")
    );
    parse_json(&out.stdout)
}

#[test]
fn bpf_and_walk_give_identical_json_in_a_busy_world() {
    require_bpf!();
    let world = busy_world();
    for args in [&["-n"][..], &["-n", "-a"][..]] {
        let kernel = json_by(&world, "bpf", args, "process owners from the kernel (BPF");
        let walked = json_by(&world, "walk", args, "/proc/*/fd walk");
        if kernel != walked {
            panic!(
                "--attribution bpf and walk differ for {args:?}:\nbpf:\n{}\nwalk:\n{}",
                serde_json::to_string_pretty(&kernel).unwrap(),
                serde_json::to_string_pretty(&walked).unwrap()
            );
        }
    }
    let kernel = json_by(
        &world,
        "bpf",
        &["-n"],
        "process owners from the kernel (BPF",
    );
    assert_same_rows(
        "bpf",
        &rows_from_json(&kernel),
        &rows_from_truth(world.listening()),
    );
}

/// Processes holding open files enough for `auto` to find the host big (fs.file-nr counts
/// file handles, so each is its own open, not a dup), killed when dropped. Several, since one
/// process may not hold that many fds.
struct BigHost {
    _holders: Vec<Spawned>,
}

impl BigHost {
    fn start() -> BigHost {
        let per_process = 12_000;
        let want = lsports::process::strategy::BPF_PAYS_FROM_OPEN_FILES + 1_000;
        let script = format!(
            "import sys, time\nfs = [open('/dev/null') for _ in range({per_process})]\n\
             open(sys.argv[1], 'w').close()\ntime.sleep(120)"
        );
        let dir = tempfile::tempdir().unwrap();
        let holders = (0..want.div_ceil(per_process))
            .map(|i| {
                let ready = dir.path().join(format!("ready-{i}"));
                let mut cmd = scrubbed("python3");
                cmd.args(["-c", &script]).arg(&ready);
                let mut holder = Spawned::start(cmd, "a holder of open files");
                holder.wait_for_file(&ready);
                holder
            })
            .collect();
        BigHost { _holders: holders }
    }
}

/// Open files on this host, as `auto` counts them (`fs.file-nr`).
fn open_files() -> u64 {
    let text = std::fs::read_to_string("/proc/sys/fs/file-nr").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn auto_uses_the_iterator_on_a_big_host() {
    require_bpf!();
    let world = World::start(&json!([group_with(
        "tcp",
        "127.0.0.1",
        "forky",
        json!({"prefork": 2})
    )]));
    let big = BigHost::start();
    let v = json_by(
        &world,
        "auto",
        &["-n"],
        "process owners from the kernel (BPF",
    );
    drop(big);
    let t = world.one(0, "listen");
    assert_eq!(json_pids(by_inode(&v, t.inode)), t.pids);
}

#[test]
fn auto_as_root_says_which_path_ran_and_why() {
    require_bpf!();
    let world = World::start(&json!([group("udp", "::1", "svc")]));
    let args = ["--attribution", "auto", "-v", "-n", "--json"];
    let before = open_files();
    let out = world.run(&args);
    let after = open_files();
    assert_success(&out, &args);
    // Which one depends on how busy the host is (other tests open files too); the choice must
    // agree with the count lsports gives and with the host as measured around the run.
    let stderr = stderr(&out);
    let threshold = lsports::process::strategy::BPF_PAYS_FROM_OPEN_FILES;
    let walked = stderr
        .split_once("BPF iterator not used: ")
        .map(|(_, why)| {
            let (count, _) = why
                .split_once(" open files on this host, where the walk is faster")
                .unwrap_or_else(|| panic!("-v must say why not the iterator:\n{stderr}"));
            count.parse::<u64>().expect("the open-file count")
        });
    match walked {
        Some(count) => {
            assert!(
                count < threshold,
                "walked with {count} open files:\n{stderr}"
            );
            assert!(
                before.min(after) < threshold,
                "walked on a host with {before}..{after} open files:\n{stderr}"
            );
        }
        None => {
            assert!(
                stderr.contains("process owners from the kernel (BPF "),
                "-v must say which path ran:\n{stderr}"
            );
            assert!(
                before.max(after) >= threshold,
                "the iterator on a host with {before}..{after} open files:\n{stderr}"
            );
        }
    }
    let t = world.one(0, "unconn");
    assert_eq!(
        json_pids(by_inode(&parse_json(&out.stdout), t.inode)),
        t.pids
    );
}

#[test]
fn bpf_pids_match_proc_inside_a_pid_namespace() {
    require_bpf!();
    let world = World::start(&json!([]));
    // A listener started inside a new pid namespace: its pid there is small, and that is the
    // pid the namespace's /proc shows and lsports must print.
    let script = r#"
        unshare --pid --fork --mount-proc bash -c '
            python3 -c "import socket,time
s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); time.sleep(60)" &
            for _ in $(seq 100); do
                [ -n "$(ls -l /proc/$!/fd 2>/dev/null | grep socket)" ] && break
                sleep 0.05
            done
            "$LSPORTS" --attribution bpf -n --json > "$WORLD_DIR/bpf.json"
            "$LSPORTS" --attribution walk -n --json > "$WORLD_DIR/walk.json"
            echo "$!" > "$WORLD_DIR/pid"
            kill $!'
    "#;
    world.script_ok(script);
    let read = |name: &str| parse_json(&std::fs::read(world.dir().join(name)).unwrap());
    let (kernel, walked) = (read("bpf.json"), read("walk.json"));
    assert_eq!(kernel, walked);
    let pid: u32 = std::fs::read_to_string(world.dir().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let listed: Vec<u32> = kernel
        .as_array()
        .unwrap()
        .iter()
        .flat_map(json_pids)
        .collect();
    assert_eq!(listed, vec![pid], "the namespace's pid, not the kernel's");
}

#[test]
fn unprivileged_auto_falls_back_and_lists_every_socket() {
    let world = busy_world();
    let args = ["--attribution", "auto", "-v", "-n", "--json"];
    let Some(out) = world.run_as_nobody(&args) else {
        return;
    };
    assert_success(&out, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/proc/*/fd walk; BPF iterator not used:") && stderr.contains("CAP_BPF"),
        "-v must say the walk ran and why:\n{stderr}"
    );
    let listed = parse_json(&out.stdout);
    // The world's processes are root's, so their fds are closed to nobody: sockets without
    // owners, but every one of them.
    let sockets = |rows: Vec<Row>| -> Vec<Row> {
        let mut rows: Vec<Row> = rows
            .into_iter()
            .map(|r| Row {
                pids: Vec::new(),
                ..r
            })
            .collect();
        rows.sort();
        rows
    };
    assert_same_rows(
        "nobody, auto",
        &sockets(rows_from_json(&listed)),
        &sockets(rows_from_truth(world.listening())),
    );
}

#[test]
fn unprivileged_bpf_is_an_error_naming_the_capability() {
    let world = World::start(&json!([group("tcp", "127.0.0.1", "svc")]));
    let Some(out) = world.run_as_nobody(&["--attribution", "bpf", "-n"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1), "exit status: {}", out.status);
    assert!(out.stdout.is_empty(), "nothing listed on a refusal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--attribution bpf")
            && stderr.contains("CAP_BPF")
            && stderr.contains("CAP_PERFMON"),
        "the refusal must name what is missing:\n{stderr}"
    );
}

#[test]
fn walk_is_used_when_asked_even_as_root() {
    let world = World::start(&json!([group("udp", "127.0.0.1", "svc")]));
    let v = json_by(
        &world,
        "walk",
        &["-n"],
        "process owners from the /proc/*/fd walk",
    );
    let t = world.one(0, "unconn");
    assert_eq!(json_pids(by_inode(&v, t.inode)), t.pids);
}

// ---------------------------------------------------------------------------
// No thread to be had

/// A pids cgroup whose `pids.max` is 1: a process moved into it can make no thread. Removed
/// when dropped.
struct OneTaskCgroup(std::path::PathBuf);

impl OneTaskCgroup {
    /// Under the pids controller (cgroup v2's unified tree, or v1's `pids` hierarchy); `None`
    /// (after saying why) where there is none or it cannot be written, which fails under CI.
    fn create() -> Option<OneTaskCgroup> {
        let why = match Self::try_create() {
            Ok(cgroup) => return Some(cgroup),
            Err(why) => why,
        };
        skip_unless_ci(&format!("cannot make a pids cgroup: {why}"));
        None
    }

    fn try_create() -> Result<OneTaskCgroup, String> {
        if !is_root() {
            return Err("making a cgroup needs root".into());
        }
        let unified = Path::new("/sys/fs/cgroup");
        let base = if unified.join("cgroup.controllers").exists() {
            // The root cgroup holds no process rules: its children may get the controller.
            let _ = std::fs::write(unified.join("cgroup.subtree_control"), "+pids");
            unified.to_path_buf()
        } else {
            unified.join("pids")
        };
        let dir = base.join(format!("lsports-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cgroup = OneTaskCgroup(dir);
        std::fs::write(cgroup.0.join("pids.max"), "1")
            .map_err(|e| format!("{}/pids.max: {e}", cgroup.0.display()))?;
        Ok(cgroup)
    }

    /// lsports `args` in `world`'s network namespace, moved into the cgroup first.
    fn run(&self, world: &World, args: &[&str]) -> std::process::Output {
        let mut cmd = world.enter();
        cmd.args([
            "sh",
            "-c",
            "echo $$ > \"$CG/cgroup.procs\" && exec \"$@\"",
            "sh",
        ])
        .arg(lsports_bin())
        .args(args)
        .env("CG", &self.0);
        output_guarded(cmd, &format!("lsports {args:?} in a one-task cgroup"))
    }
}

impl Drop for OneTaskCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn no_thread_to_be_had_still_gives_a_true_listing() {
    let Some(cgroup) = OneTaskCgroup::create() else {
        return;
    };
    let world = busy_world();
    let mut choices = vec!["walk"];
    if bpf_skip_reason().is_none() {
        choices.push("bpf");
    }
    for choice in choices {
        let args = ["--attribution", choice, "-n", "--json"];
        let out = cgroup.run(&world, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{choice}: {stderr}");
        assert_success(&out, &args);
        let listed = parse_json(&out.stdout);
        assert_same_rows(
            &format!("{choice}, no thread"),
            &rows_from_json(&listed),
            &rows_from_truth(world.listening()),
        );
    }
}

// ---------------------------------------------------------------------------
// A PID namespace sharing the network namespace (a host-network container)

#[test]
fn sockets_held_outside_a_child_pid_namespace_are_not_called_kernel() {
    let world = World::start(&json!([
        group("tcp", "0.0.0.0", "sshd"),
        group_with("tcp", "::", "nginx", json!({"prefork": 2})),
    ]));
    let mut choices = vec!["walk"];
    if bpf_skip_reason().is_none() {
        choices.push("bpf");
    }
    let mut listings = Vec::new();
    for choice in choices {
        // The world's processes hold the sockets from outside the new PID namespace.
        let script = format!(
            "exec unshare --pid --fork --mount-proc \"$LSPORTS\" --attribution {choice} -n --json"
        );
        let out = world.run_shell(&script);
        assert_success(&out, &[choice, "in a child PID namespace"]);
        let listed = parse_json(&out.stdout);
        assert_json_schema(&listed);
        let mut sockets = rows_from_json(&listed);
        sockets.iter_mut().for_each(|r| r.pids.clear());
        let mut truth = rows_from_truth(world.listening());
        truth.iter_mut().for_each(|r| r.pids.clear());
        assert_same_rows(choice, &sockets, &truth);
        for socket in listed.as_array().unwrap() {
            assert_eq!(socket["processes"], json!([]), "{choice}: {socket}");
            assert_eq!(
                socket["owner_unknown_reason"], "outside_pid_namespace",
                "{choice}: {socket}"
            );
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("2 sockets have no owner in this PID namespace: held outside it"),
            "{choice}: the hint must say why:\n{stderr}"
        );
        // The flags column must not call them ownerless as if every process had been seen.
        let out = world.run_shell(&format!(
            "exec unshare --pid --fork --mount-proc \"$LSPORTS\" --attribution {choice} -n \
             -o local,flags"
        ));
        assert_success(&out, &[choice, "-o local,flags in a child PID namespace"]);
        let table = Table::parse(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(table.rows.len(), 2, "{}", table.raw);
        for row in &table.rows {
            assert_eq!(table.cell(row, "Flags"), "-", "{choice}: {}", table.raw);
        }
        listings.push(listed);
    }
    if let [kernel, walked] = &listings[..] {
        assert_eq!(kernel, walked, "bpf and walk must agree");
    }
}

// ---------------------------------------------------------------------------
// A process whose fd links are refused

#[test]
fn bpf_and_walk_agree_on_a_process_whose_fd_links_are_refused() {
    require_bpf!();
    let world = World::start(&json!([group("tcp", "127.0.0.1", "svc")]));
    // A non-dumpable listener, and lsports as root without CAP_SYS_PTRACE: its fd links are
    // refused, as a security module refuses a sandbox's init. The kernel iterator still sees
    // it; both paths must say the same, and say it once.
    let script = r#"
        python3 -c "import ctypes,socket,time
s=socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen()
assert ctypes.CDLL(None).prctl(4, 0, 0, 0, 0) == 0
open('$WORLD_DIR/port', 'w').write(str(s.getsockname()[1]))
time.sleep(60)" &
        for _ in $(seq 100); do [ -s "$WORLD_DIR/port" ] && break; sleep 0.05; done
        for choice in bpf walk; do
            setpriv --inh-caps=-sys_ptrace --bounding-set=-sys_ptrace -- \
                "$LSPORTS" --attribution $choice -n --json \
                > "$WORLD_DIR/$choice.json" 2> "$WORLD_DIR/$choice.err"
        done
        kill $!"#;
    world.script_ok(script);
    let read = |name: &str| std::fs::read(world.dir().join(name)).unwrap();
    let (kernel, walked) = (
        parse_json(&read("bpf.json")),
        parse_json(&read("walk.json")),
    );
    assert_eq!(kernel, walked, "bpf and walk must agree");
    let port: u64 = String::from_utf8(read("port")).unwrap().parse().unwrap();
    let refused: Vec<&Value> = kernel
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["local_port"] == port)
        .collect();
    assert_eq!(refused.len(), 1, "{kernel}");
    assert_eq!(refused[0]["processes"], json!([]));
    assert_eq!(refused[0]["owner_unknown_reason"], "permission");
    // Without CAP_SYS_PTRACE, root's processes with more capabilities are refused as well
    // (the world's own listener among them): every socket alike.
    let svc = world.one(0, "listen");
    assert_eq!(
        by_inode(&kernel, svc.inode)["owner_unknown_reason"],
        "permission"
    );
    for choice in ["bpf", "walk"] {
        let stderr = String::from_utf8(read(&format!("{choice}.err"))).unwrap();
        assert!(
            stderr.contains("could not be inspected even as root"),
            "{choice}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------
// A process hidden from /proc by a mount over its directory

/// `mount --bind EMPTY /proc/PID` hides a process from every /proc reader. Its socket must
/// not pass for one held outside the PID namespace, nor for a permission problem: the reason
/// is `hidden_from_proc`, stderr names the directory, and an audit flags it `no-owner`. Once
/// the mount is gone, the same listing names the process the test started: the truth the
/// hidden listing is checked against.
///
/// Only the hidden process's socket is blamed on it: the world's bystander, held outside the
/// PID namespace lsports runs in, is still `outside_pid_namespace`, from the kernel iterator
/// (which names holders) and from the walk (which reads the hidden fds past the mount). A walk
/// without `CAP_SYS_ADMIN` cannot, and says the hidden process *may* hold what it found no
/// holder of.
#[test]
fn a_holder_hidden_by_a_mount_over_its_proc_directory_is_called_hidden() {
    let world = World::start(&json!([group("tcp", "127.0.0.1", "bystander")]));
    let bystander = world.one(0, "listen").inode;
    // The world's own listeners take ephemeral ports, far above this one.
    let port: u16 = 4719;
    let mut choices = vec!["walk"];
    if bpf_skip_reason().is_none() {
        choices.push("bpf");
    }
    for choice in choices {
        let script = format!(
            "mkdir -p \"$WORLD_DIR/empty\"\n\
             exec unshare --fork --pid --mount --propagation private --mount-proc bash -e -c '\n\
             python3 -c \"import socket, time\n\
             s = socket.socket(); s.bind((\\\"127.0.0.1\\\", {port})); s.listen(); time.sleep(60)\" &\n\
             holder=$!\n\
             \"$LSPORTS\" --wait {port} --timeout 10s\n\
             mount --bind \"$WORLD_DIR/empty\" /proc/$holder\n\
             \"$LSPORTS\" --attribution {choice} --port {port} -n --json >\"$WORLD_DIR/hidden.json\" \
               2>\"$WORLD_DIR/hidden.err\"\n\
             \"$LSPORTS\" audit --policy /dev/null --attribution {choice} --port {port} -n \
               --format json --fail-on no-owner >\"$WORLD_DIR/audit.json\" 2>/dev/null || true\n\
             \"$LSPORTS\" --attribution {choice} -n --json >\"$WORLD_DIR/all.json\" \
               2>\"$WORLD_DIR/all.err\"\n\
             setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin \"$LSPORTS\" \
               --attribution walk -n --json >\"$WORLD_DIR/maybe.json\" 2>\"$WORLD_DIR/maybe.err\"\n\
             umount /proc/$holder\n\
             \"$LSPORTS\" --attribution {choice} --port {port} -n --json >\"$WORLD_DIR/shown.json\"\n\
             echo holder=$holder\n\
             kill $holder'"
        );
        let (text, _) = world.script_ok(&script);
        let holder: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("holder="))
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("{choice}: {text}"));
        let read = |name: &str| std::fs::read_to_string(world.dir().join(name)).unwrap();
        let json = |name: &str| parse_json(read(name).as_bytes());

        let shown = json("shown.json");
        assert_eq!(
            json_pids(by_port(&shown, port)),
            [holder as u32],
            "{choice}: {shown}"
        );

        let hidden = json("hidden.json");
        assert_json_schema(&hidden);
        let socket = by_port(&hidden, port);
        assert_eq!(socket["processes"], json!([]), "{choice}: {socket}");
        assert_eq!(
            socket["owner_unknown_reason"], "hidden_from_proc",
            "{choice}: {socket}"
        );
        let said = read("hidden.err");
        assert!(
            said.contains(&format!("by a mount over /proc/{holder}")),
            "{choice}: {said}"
        );
        assert!(
            !said.contains("outside") && !said.contains("security module"),
            "{choice}: {said}"
        );

        let audit = read("audit.json");
        assert!(audit.contains("no-owner"), "{choice}: {audit}");
        assert!(audit.contains("hidden from /proc"), "{choice}: {audit}");

        // Every socket: the hidden holder is blamed for its own socket only.
        let all = json("all.json");
        let reason = |listing: &Value, inode: u64| {
            let socket = (listing.as_array().unwrap().iter())
                .find(|s| s["inode"] == inode)
                .unwrap_or_else(|| panic!("{choice}: no socket {inode} in {listing}"));
            socket["owner_unknown_reason"].clone()
        };
        assert_eq!(
            reason(&all, bystander),
            "outside_pid_namespace",
            "{choice}: {all}"
        );
        assert_eq!(
            by_port(&all, port)["owner_unknown_reason"],
            "hidden_from_proc",
            "{choice}: {all}"
        );
        let said = read("all.err");
        let named = match choice {
            "bpf" => format!("the kernel names process {holder} as holder, but it is hidden"),
            _ => format!("process {holder} holds it (read past the mount), but it is hidden"),
        };
        assert!(said.contains(&named), "{choice}: {said}");

        // The walk that cannot read past the mount: it may hold either.
        let maybe = json("maybe.json");
        for inode in [bystander, by_port(&maybe, port)["inode"].as_u64().unwrap()] {
            assert_eq!(reason(&maybe, inode), "hidden_from_proc", "{maybe}");
        }
        let said = read("maybe.err");
        assert!(
            said.contains(&format!(
                "2 sockets have no owner shown: process {holder} may hold them"
            )),
            "{said}"
        );
    }
}

/// A TIME_WAIT socket and a request socket (SYN_RECV, held back by `TCP_DEFER_ACCEPT`) have
/// no owner: the kernel reports uid 0 for them as a placeholder. `-a` must not show them as
/// root's, nor say "kernel" (a kernel socket: nfsd, WireGuard), nor flag them `no-owner`
/// (F14); `--user root` keeps neither. Built in a private network namespace.
#[test]
fn time_wait_and_request_sockets_have_no_owner() {
    if !is_root() {
        skip_unless_ci("a private network namespace needs root");
        return;
    }
    let script = r#"
import socket as S, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
t = S.socket(); t.bind(("127.0.0.1", 41951)); t.listen()
c = S.create_connection(("127.0.0.1", 41951)); a, _ = t.accept()
c.close(); a.recv(1); a.close()   # the client closed first: its end is in TIME_WAIT
d = S.socket(); d.setsockopt(S.IPPROTO_TCP, S.TCP_DEFER_ACCEPT, 30)
d.bind(("127.0.0.1", 41952)); d.listen()
w = S.create_connection(("127.0.0.1", 41952))   # no data: a request socket on d
for args in (["-tan", "--json"], ["-tan", "-e", "--format", "csv", "-o", "local,foreign,state,uid,user,flags"],
             ["-tan", "--json", "--user", "root"]):
    out = subprocess.run([sys.argv[1]] + args, capture_output=True, check=True)
    sys.stdout.buffer.write(out.stdout + b"\n=====\n")
"#;
    let mut cmd = scrubbed("unshare");
    cmd.args(["--net", "python3", "-c", script])
        .arg(common::lsports_bin());
    let out = output_guarded(cmd, "unshare --net python3 …");
    assert_success(&out, &["unshare --net python3"]);
    let text = stdout(&out);
    let parts: Vec<&str> = text.split("\n=====\n").collect();
    let all = parse_json(parts[0].as_bytes());
    let sockets = all.as_array().unwrap();
    let minisocks: Vec<&Value> = (sockets.iter())
        .filter(|s| s["state"] == "TIME_WAIT" || s["state"] == "SYN_RECV")
        .collect();
    let states: HashSet<&str> = minisocks
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states, HashSet::from(["TIME_WAIT", "SYN_RECV"]), "{all:#}");
    for s in &minisocks {
        assert_eq!(s["inode"], 0, "{s}");
        assert_eq!(s["uid"], Value::Null, "no owner, not root: {s}");
        assert_eq!(s["user"], Value::Null, "{s}");
        assert_eq!(s["owner_unknown_reason"], "minisock", "{s}");
    }
    common::assert_valid(&all, "a listing with minisockets");
    let rows = parse_csv(parts[1]);
    let minirows: Vec<_> = (rows.iter())
        .filter(|r| r[2] == "TIME_WAIT" || r[2] == "SYN_RECV")
        .collect();
    assert_eq!(minirows.len(), minisocks.len(), "{rows:?}");
    for row in minirows {
        assert_eq!(row[3..], ["", "", ""], "no uid, no user, no flag: {rows:?}");
    }
    // Root's listeners and connections are kept, but no minisocket.
    let roots = parse_json(parts[2].as_bytes());
    let kept: Vec<&str> = (roots.as_array().unwrap().iter())
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert!(kept.contains(&"LISTEN"), "{roots:#}");
    assert!(
        !kept.contains(&"TIME_WAIT") && !kept.contains(&"SYN_RECV"),
        "{roots:#}"
    );
}
