//! systemd socket activation, played out with real processes, a real socket and real cgroup
//! v2 directories, in a private network namespace: a stand-in for pid 1 makes a listening
//! socket inside the cgroup `system.slice/sshd.socket` (as systemd's
//! `socket_address_listen_in_cgroup` does), goes back to its own `init.scope`, and forks a
//! "service" into `system.slice/sshd.service` with the socket at fd 3 and `LISTEN_PID`,
//! `LISTEN_FDS=1`, `LISTEN_FDNAMES=sshd.socket` in its environment (as systemd's
//! `build_environment()` sets them). Each evidence source alone must name
//! `sshd.socket → sshd.service`; the unit files are a tree the test wrote, and the manager is
//! the stand-in, so the host's own systemd decides nothing.
//!
//! The cgroups live under `<cgroup2 mount>/lsports-activation-<pid>`, removed at the end even
//! when the test fails. Needs root; under `CI=true` a missing tool or an unwritable cgroup2
//! mount is a failure.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use lsports::enrich::labels::Labeler;
use lsports::enrich::labels::activation::{Activation, Activations, Evidence, Query};
use lsports::model::{DeviceBinding, Family, Holder, Protocol, Socket, SocketState, SourceKind};
use lsports::sys::procroot::ProcRoot;

use common::{cgroup2_mount_as_root, have, scrubbed, skip_unless_ci, socket_cgroup_id};

/// The stand-in for pid 1: argv is the three cgroup directories (socket unit, service,
/// init.scope). Prints the socket's fd, inode and family, and the service's pid; then waits
/// for its stdin to close.
const MANAGER: &str = r#"
import os, socket, sys, time
sock_cg, service_cg, init_cg = sys.argv[1:4]
def move(cg):
    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
# A socket belongs to the cgroup of the task that made it.
move(sock_cg)
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", 22))
except OSError:  # no IPv6 here: systemd falls back to IPv4 for a bare port too
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", 22))
s.listen()
move(init_cg)
child = os.fork()
if child == 0:
    move(service_cg)
    if s.fileno() != 3:
        os.dup2(s.fileno(), 3)
    os.set_inheritable(3, True)
    env = {"PATH": os.environ["PATH"], "LISTEN_PID": str(os.getpid()),
           "LISTEN_FDS": "1", "LISTEN_FDNAMES": "sshd.socket"}
    os.execve(sys.executable, [sys.executable, "-c", "import sys; sys.stdin.read()"], env)
# Ready once the service runs its own program (its environ is then the one systemd set).
while b"LISTEN_FDS=" not in open(f"/proc/{child}/environ", "rb").read():
    time.sleep(0.01)
print(s.fileno(), os.fstat(s.fileno()).st_ino, int(s.family == socket.AF_INET6), child,
      flush=True)
sys.stdin.read()
"#;

/// The cgroups of one activation, the stand-in and its service. On drop both processes are
/// killed and the cgroups removed.
struct Played {
    parent: PathBuf,
    /// `unshare`, which runs the stand-in (and, with a PID namespace, kills it when killed).
    manager: Child,
    /// With a private PID namespace: the stand-in's pid outside it (inside it is pid 1, and
    /// `service` is its pid inside).
    pid1: Option<u32>,
    manager_fd: u32,
    service: u32,
    inode: u64,
    ipv6: bool,
}

impl Played {
    /// Start the stand-in in `<mount>/lsports-activation-<pid>`; `Err` if the cgroups cannot
    /// be made there.
    fn start(mount: &Path) -> Result<Played, String> {
        Played::start_in(mount, "activation", false)
    }

    /// [`Played::start`] in `<mount>/lsports-NAME-<pid>`; with `pid_namespace`, the stand-in
    /// is pid 1 of a private PID namespace with its own `/proc`, as systemd is.
    fn start_in(mount: &Path, name: &str, pid_namespace: bool) -> Result<Played, String> {
        let parent = mount.join(format!("lsports-{name}-{}", std::process::id()));
        for rel in [
            "",
            "init.scope",
            "system.slice/sshd.socket",
            "system.slice/sshd.service",
        ] {
            let dir = parent.join(rel);
            fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut cmd = scrubbed("sh");
        cmd.args([
            "-c",
            "echo $$ > \"$1/init.scope/cgroup.procs\" && exec unshare --net $3 python3 -c \"$2\" \
             \"$1/system.slice/sshd.socket\" \"$1/system.slice/sshd.service\" \"$1/init.scope\"",
            "sh",
        ])
        .arg(&parent)
        .arg(MANAGER)
        .arg(if pid_namespace {
            "--pid --fork --mount-proc --kill-child"
        } else {
            ""
        })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
        let mut manager = cmd.spawn().expect("start sh");
        let mut line = String::new();
        BufReader::new(manager.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let fields: Vec<u64> = line
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let pid1 = pid_namespace.then(|| {
            let unshare = manager.id();
            let children = format!("/proc/{unshare}/task/{unshare}/children");
            let text = fs::read_to_string(&children).unwrap_or_default();
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{children}: {text:?}"))
        });
        let mut played = Played {
            parent,
            manager,
            pid1,
            manager_fd: 0,
            service: 0,
            inode: 0,
            ipv6: false,
        };
        let [fd, inode, ipv6, service] = fields[..] else {
            panic!("the stand-in for pid 1 did not start: {line:?}");
        };
        (played.manager_fd, played.inode) = (fd as u32, inode);
        (played.ipv6, played.service) = (ipv6 == 1, service as u32);
        Ok(played)
    }

    fn manager_pid(&self) -> u32 {
        self.manager.id()
    }

    /// The socket as sock_diag would describe it.
    fn socket(&self) -> Socket {
        let (family, addr) = if self.ipv6 {
            (Family::Ipv6, "::".parse().unwrap())
        } else {
            (Family::Ipv4, "0.0.0.0".parse().unwrap())
        };
        Socket {
            protocol: Protocol::Tcp,
            family,
            local_addr: addr,
            local_port: 22,
            remote_addr: addr,
            remote_port: 0,
            state: SocketState::LISTEN,
            recv_q: 0,
            send_q: Some(128),
            uid: 0,
            inode: self.inode,
            v6only: self.ipv6.then_some(false),
            device: DeviceBinding::Unbound,
            source: SourceKind::Netlink,
            cgroup_id: None,
            netns: None,
        }
    }

    /// The manager's and the service's hold on the socket, checked against their fd links.
    fn holders(&self) -> (Holder, Holder) {
        let manager = Holder {
            pid: self.manager_pid(),
            fd: self.manager_fd,
        };
        let service = Holder {
            pid: self.service,
            fd: 3,
        };
        for holder in [manager, service] {
            let link = fs::read_link(format!("/proc/{}/fd/{}", holder.pid, holder.fd)).unwrap();
            let want = format!("socket:[{}]", self.inode);
            assert_eq!(link.to_str(), Some(want.as_str()), "{holder:?}");
        }
        (manager, service)
    }
}

impl Drop for Played {
    fn drop(&mut self) {
        // In a PID namespace the service's pid is its pid there: killing pid 1 ends it.
        if let Some(pid1) = self.pid1 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid1 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        } else if self.service != 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.service as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.manager.kill();
        let _ = self.manager.wait();
        // The service, orphaned, is reaped by init: its cgroup stays busy until then.
        let deadline = Instant::now() + Duration::from_secs(5);
        for rel in [
            "system.slice/sshd.service",
            "system.slice/sshd.socket",
            "system.slice",
            "init.scope",
            "",
        ] {
            let dir = self.parent.join(rel);
            while fs::remove_dir(&dir).is_err() && dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The cgroup2 mount, or `None` (after saying why) where the test cannot run.
fn cgroup2_mount() -> Option<PathBuf> {
    let mount = cgroup2_mount_as_root("making cgroups and network namespaces")?;
    (have("python3") && have("unshare")).then_some(mount)
}

fn activation(service: Option<&str>, evidence: Evidence) -> Option<Activation> {
    Some(Activation {
        socket_unit: "sshd.socket".into(),
        service: service.map(str::to_owned),
        evidence,
    })
}

#[test]
fn each_evidence_names_the_socket_unit_and_its_service() {
    let Some(mount) = cgroup2_mount() else {
        return;
    };
    let played = match Played::start(&mount) {
        Ok(played) => played,
        Err(why) => return skip_unless_ci(&format!("the cgroup2 mount is not writable: {why}")),
    };
    let socket = played.socket();
    let (manager, service) = played.holders();
    let both = [manager, service];
    let proc = ProcRoot::open(Path::new("/proc")).unwrap();
    let no_units = tempfile::tempdir().unwrap();
    let units = tempfile::tempdir().unwrap();
    let dir = units.path().join("etc/systemd/system");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("sshd.socket"), "[Socket]\nListenStream=22\n").unwrap();
    let activations = |root: &Path| Activations::new(&proc, root).with_managers(vec![manager.pid]);

    // 1. The socket's cgroup, as the kernel reports it over sock_diag.
    let (family, tcp) = match played.ipv6 {
        true => (libc::AF_INET6, libc::IPPROTO_TCP),
        false => (libc::AF_INET, libc::IPPROTO_TCP),
    };
    let id = socket_cgroup_id(manager.pid, played.inode, family, tcp)
        .expect("the kernel sends INET_DIAG_CGROUP_ID");
    let mut labeler = Labeler::new(no_units.path()).with_cgroup_mount(mount.clone());
    let path = labeler
        .cgroup_path(id)
        .expect("the socket's cgroup id resolves")
        .to_vec();
    let want_path = format!(
        "/lsports-activation-{}/system.slice/sshd.socket",
        std::process::id()
    );
    assert_eq!(String::from_utf8_lossy(&path), want_path);
    let query = Query {
        socket: &socket,
        cgroup: Some(&path),
        holders: &both,
    };
    let got = activations(no_units.path()).resolve(&query);
    assert_eq!(got, activation(Some("sshd.service"), Evidence::Cgroup));
    assert_eq!(got.unwrap().display(), "sshd.socket → sshd.service");

    // 2. The service's LISTEN_FDNAMES, with no cgroup and no unit file.
    let query = Query {
        socket: &socket,
        cgroup: None,
        holders: &both,
    };
    let got = activations(no_units.path()).resolve(&query);
    assert_eq!(got, activation(Some("sshd.service"), Evidence::FdName));

    // 3. The unit files, with no cgroup and before a service holds the socket.
    let query = Query {
        socket: &socket,
        cgroup: None,
        holders: &[manager],
    };
    let got = activations(units.path()).resolve(&query);
    assert_eq!(got, activation(None, Evidence::UnitFile));
    let query = Query {
        socket: &socket,
        cgroup: None,
        holders: &both,
    };
    let got = activations(units.path()).resolve(&query).unwrap();
    assert_eq!(got.display(), "sshd.socket → sshd.service");

    // Not held by the manager: no activation, whatever the service's environment says.
    let query = Query {
        socket: &socket,
        cgroup: Some(&path),
        holders: &[service],
    };
    assert_eq!(activations(units.path()).resolve(&query), None);
    // pid 1 of this host holds no such socket: the stand-in is the manager, not the host's.
    let host = Activations::new(&proc, units.path()).resolve(&Query {
        socket: &socket,
        cgroup: None,
        holders: &both,
    });
    assert_eq!(host, None);
}

/// End to end, as a user runs it inside a systemd container: the stand-in is pid 1 of a private
/// PID namespace (with its own `/proc`), holding the socket it made in `sshd.socket`'s cgroup
/// and passed to the service with `LISTEN_FDS`/`LISTEN_FDNAMES`. lsports run there must show the
/// socket as `sshd.socket → sshd.service`, held by pid 1 and the service, in JSON and in the
/// table's unit column.
#[test]
fn the_binary_in_the_managers_pid_namespace_shows_the_activation() {
    let Some(mount) = cgroup2_mount() else {
        return;
    };
    if !have("nsenter") {
        return skip_unless_ci("nsenter is missing");
    }
    let played = match Played::start_in(&mount, "activation-pidns", true) {
        Ok(played) => played,
        Err(why) => return skip_unless_ci(&format!("the cgroup2 mount is not writable: {why}")),
    };
    let pid1 = played.pid1.unwrap();
    let mut cmd = scrubbed("nsenter");
    cmd.args(["--pid", "--mount", "--net", "-t"])
        .arg(pid1.to_string())
        .arg("--")
        .arg(common::lsports_bin())
        .args(["-tlnp", "--json"]);
    let out = common::output_guarded(cmd, "lsports in the manager's PID namespace");
    common::assert_success(&out, &["-tlnp", "--json"]);
    let listing = common::parse_json(&out.stdout);
    let socket = common::by_inode(&listing, played.inode);
    assert_eq!(socket["unit"], "sshd.socket → sshd.service", "{socket:#}");
    let mut pids = common::json_pids(socket);
    pids.sort_unstable();
    assert_eq!(
        pids,
        [1, played.service],
        "pid 1 and the service hold it: {socket:#}"
    );
    assert_eq!(socket["owner_unknown_reason"], serde_json::Value::Null);

    // The table shows only the socket's labels (no holder's own): both units all the same.
    let args = ["-tlnp", "-o", "inode,unit"];
    let mut cmd = scrubbed("nsenter");
    cmd.args(["--pid", "--mount", "--net", "-t"])
        .arg(pid1.to_string())
        .arg("--")
        .arg(common::lsports_bin())
        .args(args);
    let out = common::output_guarded(cmd, "lsports' table in the manager's PID namespace");
    common::assert_success(&out, &args);
    let table = common::Table::parse(&common::stdout(&out));
    let row = (table.rows.iter())
        .find(|r| table.cell(r, "Inode") == played.inode.to_string())
        .unwrap_or_else(|| panic!("no row for the socket:\n{}", table.raw));
    assert_eq!(
        table.cell(row, "Unit"),
        "sshd.socket → sshd.service",
        "{}",
        table.raw
    );
}
