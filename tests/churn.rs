//! Churn: processes holding listeners fork and exit as fast as they can while lsports runs
//! again and again. lsports must never crash or fail, must always list the listeners that
//! stay, and must never name as a holder a process that did not hold the socket.
//!
//! The churner (Python, in a private network namespace) logs every (pid, socket inode) pair it
//! creates, before or after the fact; every lsports run is checked against the complete log
//! once the churn has stopped, and every holder's name and uid against the churner's (a pid
//! reused by another process must not lend them). Loop counts are fixed; nothing is timed.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

/// lsports runs against the churn (spread over three argument sets).
const RUNS: usize = 24;
/// lsports runs against the churn forcing each BPF program in turn (each loads the program).
const BPF_RUNS: usize = 12;
/// Library captures against the churn.
const CAPTURES: usize = 4;

const CHURNER: &str = r#"
import os, random, socket, sys, time
log_path, ready_path, stop_path = sys.argv[1:4]
log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

def record(pid, socks):
    inodes = " ".join(str(os.fstat(s.fileno()).st_ino) for s in socks)
    os.write(log, ("%d %s\n" % (pid, inodes)).encode())

def listener(family, kind=socket.SOCK_STREAM):
    s = socket.socket(family, kind)
    s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    return s

keep = [listener(socket.AF_INET), listener(socket.AF_INET6), listener(socket.AF_INET),
        listener(socket.AF_INET, socket.SOCK_DGRAM), listener(socket.AF_INET6, socket.SOCK_DGRAM)]
record(os.getpid(), keep)
with open(ready_path + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(ready_path + ".tmp", ready_path)

def child():
    own = []
    if random.random() < 0.5:
        own.append(listener(random.choice([socket.AF_INET, socket.AF_INET6])))
        record(os.getpid(), own)
    if random.random() < 0.2:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        record(pid, keep + own)
    time.sleep(random.random() * 0.003)

live = set()
while not os.path.exists(stop_path):
    while len(live) >= 16:
        pid, _ = os.wait()
        live.discard(pid)
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    record(pid, keep)
    live.add(pid)
    while live:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        live.discard(pid)
for pid in live:
    os.waitpid(pid, 0)
with open(stop_path + ".done", "w") as f:
    f.write("done\n")
"#;

/// The churner, started in an empty world's network namespace.
struct Churn {
    world: World,
    churner: Spawned,
    listener_pid: u32,
}

impl Churn {
    fn start() -> Churn {
        let world = World::start(&json!([]));
        let script = world.dir().join("churn.py");
        fs::write(&script, CHURNER).unwrap();
        // Named apart from world.py's own files (its `ready` is there already).
        let file = |name: &str| world.dir().join(name).to_str().unwrap().to_string();
        let ready = file("churn.ready");
        let mut churner = world.spawn(
            "the churner",
            "python3",
            &[
                &file("churn.py"),
                &file("churn.log"),
                &ready,
                &file("churn.stop"),
            ],
        );
        churner.wait_for_file(Path::new(&ready));
        let listener_pid = fs::read_to_string(&ready).unwrap().trim().parse().unwrap();
        Churn {
            world,
            churner,
            listener_pid,
        }
    }

    /// Stop forking, wait until every child is reaped, and return the (pid, inode) log.
    fn stop(mut self) -> HashSet<(u32, u64)> {
        fs::write(self.world.dir().join("churn.stop"), b"").unwrap();
        let done = self.world.dir().join("churn.stop.done");
        self.churner.wait_for_file(&done);
        let log = fs::read_to_string(self.world.dir().join("churn.log")).unwrap();
        let mut held = HashSet::new();
        for line in log.lines() {
            let mut words = line.split_whitespace();
            let pid: u32 = words.next().unwrap().parse().unwrap();
            held.extend(words.map(|inode| (pid, inode.parse::<u64>().unwrap())));
        }
        held
    }
}

/// Not a test of its own: the library capture, run inside the namespace by `World::capture`.
#[test]
fn capture_helper() {
    capture_helper_body();
}

/// Every (pid, inode) lsports attributed.
fn attributions(v: &Value) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for s in v.as_array().unwrap() {
        let inode = s["inode"].as_u64().unwrap();
        for pid in json_pids(s) {
            out.push((pid, inode));
        }
    }
    out
}

fn inodes(v: &Value) -> BTreeSet<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["inode"].as_u64().unwrap())
        .collect()
}

#[test]
fn listings_under_fork_and_exit_churn_stay_true() {
    let churn = Churn::start();
    let arg_sets: [&[&str]; 3] = [
        &["--json"],
        &["--json", "-a"],
        &["--json", "--source", "proc"],
    ];
    let mut listings = Vec::new();
    for run in 0..RUNS {
        let args = arg_sets[run % arg_sets.len()];
        let out = churn.world.run(args);
        assert_success(&out, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        listings.push(parse_json(&out.stdout));
    }
    let listener_pid = churn.listener_pid;
    let held = churn.stop();
    assert_listings_true(&listings, &held, listener_pid);
}

/// Every listing attributes only (pid, inode) pairs the churner logged, names every holder as
/// the churner (a reused pid lends no name or uid), and lists the five permanent listeners with
/// their holder.
fn assert_listings_true(listings: &[Value], held: &HashSet<(u32, u64)>, listener_pid: u32) {
    let permanent: BTreeSet<u64> = held
        .iter()
        .filter(|(pid, _)| *pid == listener_pid)
        .map(|&(_, inode)| inode)
        .collect();
    assert_eq!(permanent.len(), 5);
    for (run, listing) in listings.iter().enumerate() {
        for pair in attributions(listing) {
            assert!(
                held.contains(&pair),
                "run {run}: pid {} never held inode {}",
                pair.0,
                pair.1
            );
        }
        // A pid reused between the scan and the reading of its details must not lend its name
        // or uid: every holder here is the churner (python3, root in its namespace).
        for socket in listing.as_array().unwrap() {
            for process in socket["processes"].as_array().unwrap() {
                assert_eq!(process["name"], "python3", "run {run}: {socket}");
                assert_eq!(process["uid"], 0, "run {run}: {socket}");
            }
        }
        let listed = inodes(listing);
        let missing: Vec<_> = permanent.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "run {run}: listeners {missing:?} not listed"
        );
        for inode in &permanent {
            let socket = by_inode(listing, *inode);
            assert!(
                json_pids(socket).contains(&listener_pid),
                "run {run}: {socket}"
            );
        }
    }
}

#[test]
fn bpf_listings_under_churn_stay_true_with_either_program() {
    // Each BPF program, forced (`auto` may walk /proc on a quiet host): holders confirmed by
    // their process's start (from the second socket of a process on) must stay as true as
    // those confirmed by their fd links. Every churner child holds the five listeners.
    if !need_root("loading the BPF iterator") {
        return;
    }
    let churn = Churn::start();
    let programs = ["task", "task_file"];
    let mut listings = Vec::new();
    for run in 0..BPF_RUNS {
        let program = programs[run % programs.len()];
        let args: &[&str] = if run % 4 < 2 {
            &["--attribution", "bpf", "-v", "--json"]
        } else {
            &["--attribution", "bpf", "-v", "--json", "-a"]
        };
        let mut cmd = churn.world.enter();
        cmd.arg(lsports_bin())
            .args(args)
            .env(lsports::process::bpf::iterator::FORCE_VARIABLE, program);
        let out = output_guarded(cmd, &format!("lsports {args:?} ({program})"));
        assert_success(&out, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        let said = format!("(BPF {program} iterator");
        assert!(stderr.contains(&said), "{program}: {stderr}");
        listings.push(parse_json(&out.stdout));
    }
    let listener_pid = churn.listener_pid;
    let held = churn.stop();
    assert_listings_true(&listings, &held, listener_pid);
}

#[test]
fn snapshots_captured_under_churn_stay_true() {
    let churn = Churn::start();
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for i in 0..CAPTURES {
        let file = dir.path().join(format!("churn-{i}.tar"));
        churn.world.capture(&file);
        files.push(file);
    }
    let listener_pid = churn.listener_pid;
    let held = churn.stop();
    for file in &files {
        let opened = lsports::snapshot::open(file).unwrap();
        let listing = json_of_root(opened.proc_root(), &["-a"]);
        for pair in attributions(&listing) {
            assert!(
                held.contains(&pair),
                "{}: pid {} never held inode {}",
                file.display(),
                pair.0,
                pair.1
            );
        }
        let attributed: BTreeSet<u32> = attributions(&listing).iter().map(|p| p.0).collect();
        assert!(attributed.contains(&listener_pid), "{}", file.display());
    }
}
