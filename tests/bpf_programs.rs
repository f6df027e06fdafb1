//! The two BPF programs lsports can load (the `task` iterator walking each fd table, and the
//! `task_file` iterator it falls back to) and the `/proc/*/fd` walk must give identical
//! listings, and what only the kernel's records carry (each socket's network namespace) must be
//! true.
//!
//! `LSPORTS_BPF_ITERATOR=task|task_file` forces one program (a switch for tests and
//! measurements), and `LSPORTS_BPF_READERS=N` how many iterators read the fd-table walk at once
//! (sharing the processes out between them, or one reading them all). These tests need root and a kernel with BTF: elsewhere they skip, saying
//! so, and under `CI=true` they fail instead.

mod common;

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;
use std::sync::{RwLock, RwLockReadGuard};

use common::*;
use lsports::process::bpf;
use serde_json::{Value, json};

/// What these tests need root for, said when they skip.
const LOADING: &str = "loading the BPF iterator";

/// The tests here see every process of the host (a world has its own network namespace, not
/// its own pids): the one holding more sockets than a read of the fd-table walk carries takes
/// this for writing, so that no test forcing the fd-table walk runs beside it.
static HOST_PROCESSES: RwLock<()> = RwLock::new(());

/// A test that forces the fd-table walk: not beside the one with too many sockets.
fn beside_others() -> RwLockReadGuard<'static, ()> {
    HOST_PROCESSES
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One way of attributing sockets: what `--attribution` gets, `LSPORTS_BPF_ITERATOR`,
/// `LSPORTS_BPF_READERS`, what `-v` must say.
type AttributionPath = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

/// The ways of attributing sockets. The fd-table walk shared out between two readers is the
/// default on two cores; one reader alone is the reference it must match.
const PATHS: [AttributionPath; 4] = [
    (
        "bpf",
        Some("task"),
        Some("2"),
        "process owners from the kernel (BPF task iterator walking each fd table on 2 threads)",
    ),
    (
        "bpf",
        Some("task"),
        Some("1"),
        "process owners from the kernel (BPF task iterator walking each fd table on 1 thread)",
    ),
    (
        "bpf",
        Some("task_file"),
        None,
        "process owners from the kernel (BPF task_file iterator, as asked)",
    ),
    (
        "walk",
        None,
        None,
        "process owners from the /proc/*/fd walk",
    ),
];

/// lsports `args` in `world`'s namespace with `LSPORTS_BPF_ITERATOR` set to `program` and
/// `LSPORTS_BPF_READERS` to `readers`.
fn run_with(world: &World, program: Option<&str>, readers: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = world.enter();
    cmd.arg(lsports_bin()).args(args);
    if let Some(program) = program {
        cmd.env(bpf::iterator::FORCE_VARIABLE, program);
    }
    if let Some(readers) = readers {
        cmd.env(bpf::iterator::READERS_VARIABLE, readers);
    }
    let what = format!(
        "lsports {} ({program:?}, {readers:?} readers)",
        args.join(" ")
    );
    output_guarded(cmd, &what)
}

/// The JSON listing of `args` by every path, after checking each said which path it took.
fn listings(world: &World, args: &[&str]) -> Vec<(String, Value)> {
    PATHS
        .iter()
        .map(|&(choice, program, readers, said)| {
            let mut a = vec!["--attribution", choice, "-v", "--json"];
            a.extend_from_slice(args);
            let out = run_with(world, program, readers, &a);
            assert_success(&out, &a);
            let stderr = stderr(&out);
            assert!(
                stderr.contains(said),
                "{a:?} {program:?}: -v must say {said:?}:\n{stderr}"
            );
            let name = format!("{choice} {program:?} {readers:?}");
            (name, parse_json(&out.stdout))
        })
        .collect()
}

/// Every path's listing of `args` is the same.
fn assert_identical(world: &World, args: &[&str]) -> Value {
    let mut all = listings(world, args).into_iter();
    let (first_name, first) = all.next().unwrap();
    for (name, listing) in all {
        if listing != first {
            panic!(
                "{args:?}: {name} and {first_name} differ:\n{name}:\n{}\n{first_name}:\n{}",
                serde_json::to_string_pretty(&listing).unwrap(),
                serde_json::to_string_pretty(&first).unwrap()
            );
        }
    }
    first
}

/// prefork and SO_REUSEPORT groups, a master with workers, IPv4 and IPv6 (v6only and dual
/// stack), a device-bound socket, TCP and UDP, connected sockets.
fn world_a() -> World {
    World::start(&json!([
        group_with("tcp", "0.0.0.0", "forky", json!({"prefork": 4})),
        group_with(
            "tcp",
            "127.0.0.1",
            "master",
            json!({"prefork": 2, "worker_name": "worker"})
        ),
        group_with("tcp", "0.0.0.0", "rport", json!({"reuseport": 3})),
        group_with("udp", "::1", "rportu", json!({"reuseport": 2})),
        group_with("tcp", "::", "dual", json!({"v6only": false})),
        group_with("tcp", "::", "v6only", json!({"v6only": true, "prefork": 1})),
        group_with("udp", "0.0.0.0", "bound", json!({"device": "lsp0"})),
        group_with("tcp", "127.0.0.1", "conn", json!({"connect": true})),
        group_with("udp", "127.0.0.1", "udpc", json!({"udp_connect": true})),
    ]))
}

/// Another namespace: many sockets in one process, UDP prefork, a connected pair, and (made
/// by [`add_time_wait`]) a TIME_WAIT socket, which no process holds. The four processes of
/// "wide" hold 1,600 socket fds, more than one read of the kernel's output holds (1,023
/// records): a process whose records do not fit is shown again at the next read, and must
/// still be walked by the reader that claimed it.
fn world_b() -> World {
    World::start(&json!([
        group_with("tcp", "::1", "multi", json!({"count": 40})),
        group_with(
            "tcp",
            "127.0.0.1",
            "wide",
            json!({"count": 400, "prefork": 3})
        ),
        group_with(
            "udp",
            "::",
            "forkyu",
            json!({"prefork": 3, "v6only": false})
        ),
        group_with("tcp", "::1", "conn6", json!({"connect": true})),
    ]))
}

/// Close a connection from the client side first in `world`, which leaves the client's end in
/// TIME_WAIT for a minute.
fn add_time_wait(world: &World) {
    let script = r#"python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname())
a, _ = s.accept()
c.close(); a.recv(1); a.close(); s.close()'"#;
    world.script_ok(script);
}

#[test]
fn both_bpf_programs_and_the_walk_give_identical_json_in_two_namespaces() {
    if !can_load_bpf(LOADING) {
        return;
    }
    let _alone = beside_others();
    let a = world_a();
    let b = world_b();
    add_time_wait(&b);
    for world in [&a, &b] {
        let listening = assert_identical(world, &["-n"]);
        assert_same_rows(
            "every path, -l",
            &rows_from_json(&listening),
            &rows_from_truth(world.listening()),
        );
        assert_identical(world, &["-n", "-a"]);
    }
    // What the comparison covered: the shared sockets have all their holders, and -a listed
    // the TIME_WAIT socket with none.
    let forky = a.one(0, "listen");
    assert_eq!(forky.pids.len(), 5, "a prefork group of five: {forky:?}");
    let all_b = assert_identical(&b, &["-n", "-a"]);
    let time_wait: Vec<&Value> = all_b
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "TIME-WAIT" || s["state"] == "TIME_WAIT")
        .collect();
    assert_eq!(time_wait.len(), 1, "{all_b}");
    assert_eq!(time_wait[0]["processes"], json!([]));
}

#[test]
fn names_read_from_stat_are_the_names_comm_gives_whatever_bytes_they_hold() {
    // The kernel iterator's holders are confirmed by their `stat`, which also gives their name
    // (the walk reads `comm`): the name sits in parentheses there, so names holding
    // parentheses, blanks, newlines, escapes and bytes that are not UTF-8 must come out the
    // same, and as the processes set them. Two sockets each: the second holder is confirmed
    // with the first.
    if !can_load_bpf(LOADING) {
        return;
    }
    let _alone = beside_others();
    let names: [&[u8]; 4] = [b"a) b (c", b"x)\n) S 1 2", b"\xff\x1b[2J(", b")"];
    let groups: Vec<Value> = (names.iter())
        .map(|name| {
            let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
            json!({"proto": "tcp", "addr": "127.0.0.1", "name_hex": hex, "count": 2, "prefork": 1})
        })
        .collect();
    let world = World::start(&Value::Array(groups));
    let listing = assert_identical(&world, &["-n"]);
    assert_same_rows(
        "every path",
        &rows_from_json(&listing),
        &rows_from_truth(world.listening()),
    );
    let mut named = 0;
    for truth in world.listening() {
        let socket = (listing.as_array().unwrap().iter())
            .find(|s| s["inode"].as_u64() == Some(truth.inode))
            .unwrap_or_else(|| panic!("{truth:?} not listed"));
        for process in socket["processes"].as_array().unwrap() {
            let pid = process["pid"].as_u64().unwrap() as u32;
            let holder = truth.procs.iter().find(|p| p.pid == pid).unwrap();
            assert_eq!(process["name"], holder.name.as_str(), "{socket}");
            named += 1;
        }
    }
    assert_eq!(
        named,
        names.len() * 2 * 2,
        "two sockets of two processes a name"
    );
}

/// A socket made in a new network namespace by a thread of this process (unsharing the
/// network namespace is per thread), and that namespace's inode.
fn socket_in_new_netns() -> (OwnedFd, u64) {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        let netns = std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")
            .map(OwnedFd::from)
            .unwrap_or_else(|_| {
                // lo is down in a new namespace: an unbound socket still belongs to it.
                OwnedFd::from(std::net::UdpSocket::bind("0.0.0.0:0").unwrap())
            });
        (socket, netns)
    })
    .join()
    .unwrap()
}

#[test]
fn the_kernel_names_each_sockets_network_namespace_with_a_holder() {
    if !can_load_bpf(LOADING) {
        return;
    }
    let _alone = beside_others();
    let (socket, netns) = socket_in_new_netns();
    let here = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    assert_ne!(netns, here);
    // And one socket in our own namespace.
    let _ours = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).unwrap();
    let inode =
        lsports::process::fdscan::parse_socket_link(link.as_os_str().as_encoded_bytes()).unwrap();
    for program in [bpf::Variant::FdWalk, bpf::Variant::TaskFile] {
        let wanted = HashSet::from([inode]);
        let (scan, ran) = bpf::scan_ran(Path::new("/proc"), &wanted, Some(program)).unwrap();
        assert_eq!(ran.variant, program);
        let program = program.iter_type();
        // No process is in that namespace: only the socket keeps it, and the kernel's records
        // name it, with a descriptor that holds a socket of it (ours, the only one).
        let holder = scan.socket_netns.get(&netns).unwrap_or_else(|| {
            panic!(
                "{program}: namespace {netns} not found in {:?}",
                scan.socket_netns
            )
        });
        assert_eq!(holder.pid, std::process::id(), "{program}");
        assert_eq!(holder.fd, socket.as_raw_fd() as u32, "{program}");
        assert!(
            scan.socket_netns.contains_key(&here),
            "{program}: our own namespace too"
        );
        // Other tests of this binary spawn programs meanwhile: a child between its fork and
        // its exec holds a copy of every descriptor, this socket's too, so only this process's
        // holders are ours to count.
        let ours: Vec<_> = (scan.holders.of(inode).iter())
            .filter(|h| h.pid == std::process::id())
            .collect();
        assert_eq!(ours, [holder], "{program}");
    }
}

#[test]
fn a_socket_opened_after_the_first_pass_is_found_by_a_second() {
    if !can_load_bpf(LOADING) {
        return;
    }
    let _alone = beside_others();
    for program in ["task", "task_file"] {
        // The pass starts before the sockets are known, as lsports starts it before collecting
        // them; this socket is opened once the kernel has visited every process.
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "late_socket_helper",
            "--include-ignored",
            "--nocapture",
        ])
        .env(bpf::iterator::FORCE_VARIABLE, program)
        .env(LATE_HELPER, "1");
        let out = output_guarded(cmd, &format!("the late-socket helper ({program})"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{program}: helper failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("late socket found by {program}")),
            "{stdout}"
        );
    }
}

/// Set in the environment of this test binary when it runs `late_socket_helper`.
const LATE_HELPER: &str = "LSPORTS_LATE_SOCKET_HELPER";

/// Run by `a_socket_opened_after_the_first_pass_is_found_by_a_second` in its own process, so
/// that `LSPORTS_BPF_ITERATOR` is set from the start (no environment changes in a threaded test
/// binary).
#[test]
#[ignore = "run by a_socket_opened_after_the_first_pass_is_found_by_a_second"]
fn late_socket_helper() {
    if std::env::var_os(LATE_HELPER).is_none() {
        eprintln!("SKIP: only meaningful when run by its test");
        return;
    }
    let proc_root = Path::new("/proc");
    let checked = bpf::preflight::check(proc_root).unwrap();
    let mut pass = bpf::Pass::start(checked, proc_root);
    pass.wait_for_first_pass();
    let late = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", late.as_raw_fd())).unwrap();
    let inode =
        lsports::process::fdscan::parse_socket_link(link.as_os_str().as_encoded_bytes()).unwrap();
    let wanted = HashSet::from([inode]);
    let fields = lsports::config::DetailFields::ALL;
    let (scan, ran) = pass.gather(proc_root, &wanted, fields).unwrap();
    let holders = scan.holders.of(inode);
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(holders[0].pid, std::process::id());
    assert_eq!(holders[0].fd, late.as_raw_fd() as u32);
    println!("late socket found by {}", ran.variant.iter_type());
}

/// Sockets a process holds in the listing `v`, as (port, fd) pairs sorted.
fn sockets_of(v: &Value, pid: u32) -> Vec<(u64, u64)> {
    let mut held: Vec<(u64, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let port = s["local_port"].as_u64().unwrap();
            s["processes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(move |p| p["pid"] == pid)
                .map(move |p| (port, p["fd"].as_u64().unwrap()))
        })
        .collect();
    held.sort_unstable();
    held
}

#[test]
fn a_process_with_more_sockets_than_one_read_carries_is_listed_by_task_file() {
    if !can_load_bpf(LOADING) {
        return;
    }
    let _alone = HOST_PROCESSES
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The kernel hands over one process's records whole, at most 1,023 of them a read: this
    // process's 1,100 sockets make the fd-table walk's read fail, and task_file (which hands
    // over each file apart) must take over and list every one of them.
    let script = r#"
import resource, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
for _ in range(1100):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    held.append(s)
print("ready", flush=True)
sys.stdin.read()
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = child.id();
    let listing = |choice: &str| {
        let args = ["-lun", "-v", "--json", "--attribution", choice];
        let mut cmd = std::process::Command::new(lsports_bin());
        cmd.args(args).env_remove(bpf::iterator::FORCE_VARIABLE);
        let out = output_guarded(cmd, &format!("lsports {}", args.join(" ")));
        assert_success(&out, &args);
        (stderr(&out), sockets_of(&parse_json(&out.stdout), pid))
    };
    let (said, by_kernel) = listing("bpf");
    let (_, by_walk) = listing("walk");
    // The library's own scan (no thread of its own, as when none can be made) falls back too.
    let wanted: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.ok()?.path()).ok()?;
            lsports::process::fdscan::parse_socket_link(link.as_os_str().as_encoded_bytes())
        })
        .collect();
    assert_eq!(wanted.len(), 1100);
    let (scan, ran) = bpf::scan_ran(Path::new("/proc"), &wanted, None).unwrap();
    assert_eq!(ran.variant, bpf::Variant::TaskFile);
    assert!(matches!(
        ran.not_walked,
        Some(bpf::BpfUnavailable::TooManySockets)
    ));
    let held: HashSet<u64> = (wanted.iter())
        .filter(|&&inode| matches!(scan.holders.of(inode), [one] if one.pid == pid))
        .copied()
        .collect();
    assert_eq!(held, wanted, "every socket, held once, by its process");
    drop(child.stdin.take());
    let _ = child.wait();
    assert!(
        said.contains(
            "process owners from the kernel (BPF task_file iterator; the fd-table walk could not \
             run: a process holds more sockets than one read of the fd-table walk carries"
        ),
        "{said}"
    );
    assert_eq!(by_kernel.len(), 1100);
    assert_eq!(by_kernel, by_walk);
}

/// lsports' own loader (the default) and aya's (`LSPORTS_BPF_LOADER=aya`, its fallback) load
/// the same programs: each program lists exactly the same, and `-v` says which loaded it.
#[test]
fn the_own_loader_and_aya_s_give_identical_json() {
    if !can_load_bpf(LOADING) {
        return;
    }
    let _alone = beside_others();
    let world = world_a();
    let through_aya = "; loaded through aya: LSPORTS_BPF_LOADER=aya asks for it)";
    for program in ["task", "task_file"] {
        for listing in [["-l", "-n"], ["-a", "-n"]] {
            let mut args = vec!["--attribution", "bpf", "-v", "--json"];
            args.extend_from_slice(&listing);
            let run = |loader: Option<&str>| {
                let mut cmd = world.enter();
                cmd.arg(lsports_bin()).args(&args);
                cmd.env(bpf::iterator::FORCE_VARIABLE, program);
                if let Some(loader) = loader {
                    cmd.env(bpf::loader::FORCE_VARIABLE, loader);
                }
                let out = output_guarded(cmd, &format!("lsports {args:?} ({loader:?} loader)"));
                assert_success(&out, &args);
                (stderr(&out), parse_json(&out.stdout))
            };
            let (own_said, own) = run(None);
            let (aya_said, aya) = run(Some("aya"));
            assert!(
                own_said.contains("process owners from the kernel (BPF "),
                "{own_said}"
            );
            assert!(!own_said.contains("loaded through aya"), "{own_said}");
            assert!(aya_said.contains(through_aya), "{aya_said}");
            assert!(own.as_array().is_some_and(|rows| rows.len() > 10), "{own}");
            assert_eq!(own, aya, "{program} {listing:?}");
        }
    }
}
