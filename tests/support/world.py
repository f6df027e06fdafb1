#!/usr/bin/env python3
"""World builder for lsports integration tests (python3 stdlib only).

Run INSIDE a private network namespace:

    world.py SPEC.json TRUTH.json [READY_MARKER]

SPEC.json is a JSON list of groups.  Each group creates sockets held by forked,
named child processes (never by this parent process):

    {"proto": "tcp"|"udp", "addr": "0.0.0.0", "port": 0, "v6only": null,
     "device": null, "name": "svc", "prefork": 0, "reuseport": 0,
     "connect": false, "udp_connect": false}

Optional extra keys:
    "count":       number of separate sockets the group's process holds
                   (default 1; port p>0 gives ports p, p+1, ...).
    "backlog":     listen() backlog for TCP (default 128).
    "name_hex":    the process name as hex bytes (instead of "name"), for names
                   that are not UTF-8.
    "client_name": process name of the client of "connect" (default "client").
    "worker_name": process name of prefork workers (default: the group's name).

Once every child has reported ready, TRUTH.json is written (atomically) and the
ready marker (default TRUTH.json + ".ready") is created.  Then this process
sleeps until SIGTERM/SIGINT, which kills all children.  Every child dies with
its parent (PR_SET_PDEATHSIG).

TRUTH.json is a list with one object per socket:
    {"proto", "family" ("ipv4"|"ipv6"), "addr", "port", "remote_addr",
     "remote_port", "pids" (sorted), "procs" (sorted by pid: {"pid", "role",
     "name", "name_hex", "cmdline", "fd"}), "inode", "kind" ("listen"|"unconn"|
     "established"|"udp_connected"), "name" (comm of the creating process, decoded
     as UTF-8 with replacement), "name_hex" (its exact comm bytes), "v6only" (bool for
     IPv6, null for IPv4), "device" (or null), "backlog" (TCP listeners, else
     null), "group" (index in the spec)}
"""

import ctypes
import ipaddress
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PIPE_BUF = 4096
READY_TIMEOUT = 60.0

_libc = ctypes.CDLL(None, use_errno=True)


class WorldError(Exception):
    pass


def prctl(option, arg):
    if _libc.prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "prctl(%d): %s" % (option, os.strerror(err)))


def set_name(name_bytes):
    buf = ctypes.create_string_buffer(name_bytes, 16)
    if _libc.prctl(PR_SET_NAME, buf, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "prctl(PR_SET_NAME): %s" % os.strerror(err))


def read_comm():
    with open("/proc/self/comm", "rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    return data


def read_cmdline():
    """/proc/self/cmdline with arguments joined by spaces."""
    with open("/proc/self/cmdline", "rb") as f:
        data = f.read()
    args = data.split(b"\0")
    if args and args[-1] == b"":
        args.pop()
    return b" ".join(args).decode("utf-8", errors="replace")


def close_all_except(keep):
    keep = set(keep)
    for entry in os.listdir("/proc/self/fd"):
        fd = int(entry)
        if fd in keep:
            continue
        try:
            os.close(fd)
        except OSError:
            pass  # the fd of the listdir itself, already closed


def family_name(fam):
    return "ipv6" if fam == socket.AF_INET6 else "ipv4"


def loopback_for(fam):
    return "::1" if fam == socket.AF_INET6 else "127.0.0.1"


def norm_addr(a):
    return str(ipaddress.ip_address(a.split("%")[0]))


# --------------------------------------------------------------------------
# child side


class Child:
    """State of one forked process: its report pipe and the sockets it holds."""

    def __init__(self, wfd, group, role):
        self.wfd = wfd
        self.group = group
        self.role = role
        self.socks = []  # (socket object, kind, extra dict)

    def describe(self):
        out = []
        for s, kind, extra in self.socks:
            st = os.fstat(s.fileno())
            local = s.getsockname()
            d = {
                "inode": st.st_ino,
                "fd": s.fileno(),
                "kind": kind,
                "proto": "tcp" if s.type == socket.SOCK_STREAM else "udp",
                "family": family_name(s.family),
                "addr": norm_addr(local[0]),
                "port": local[1],
                "remote_addr": None,
                "remote_port": None,
            }
            if kind in ("established", "udp_connected"):
                peer = s.getpeername()
                d["remote_addr"] = norm_addr(peer[0])
                d["remote_port"] = peer[1]
            if s.family == socket.AF_INET6:
                d["v6only"] = bool(
                    s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                )
            else:
                d["v6only"] = None
            d.update(extra)
            out.append(d)
        return out

    def report(self):
        """Report this process and its sockets, in chunks that each fit one
        atomic pipe write; the last chunk has "last": true."""
        socks = self.describe()
        base = {
            "ok": True,
            "pid": os.getpid(),
            "group": self.group,
            "role": self.role,
            "comm_hex": read_comm().hex(),
            "cmdline": read_cmdline(),
        }
        chunk = 8
        for i in range(0, max(len(socks), 1), chunk):
            msg = dict(base)
            msg["socks"] = socks[i : i + chunk]
            msg["last"] = i + chunk >= len(socks)
            write_msg(self.wfd, msg)


def write_msg(wfd, msg):
    data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
    if len(data) > PIPE_BUF:
        raise WorldError("report too large for an atomic pipe write: %d" % len(data))
    os.write(wfd, data)


def child_prologue(expected_parent):
    """First thing in every forked child."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != expected_parent:  # parent died before prctl
        os._exit(1)


def sleep_forever():
    while True:
        signal.pause()


def fork_child(body, wfd, group, role):
    """Fork a child running body(child); errors are reported on the pipe."""
    parent = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    try:
        child_prologue(parent)
        c = Child(wfd, group, role)
        body(c)
        sleep_forever()
    except BaseException as e:  # noqa: BLE001 - report anything
        try:
            write_msg(
                wfd,
                {"ok": False, "pid": os.getpid(), "group": group, "role": role,
                 "error": "%s: %s" % (type(e).__name__, e)},
            )
        except BaseException:
            pass
        os._exit(1)
    os._exit(0)


def make_socket(g, port, reuseport=False):
    proto = g["proto"]
    addr = g["addr"]
    fam = socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET
    typ = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, typ)
    s.set_inheritable(True)
    if fam == socket.AF_INET6 and g.get("v6only") is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if g["v6only"] else 0)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if g.get("device"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, g["device"].encode())
    s.bind((addr, port))
    extra = {"device": g.get("device"), "backlog": None}
    if proto == "tcp":
        backlog = int(g.get("backlog", 128))
        s.listen(backlog)
        extra["backlog"] = backlog
        kind = "listen"
    else:
        kind = "unconn"
    return s, kind, extra


def group_name_bytes(g):
    if g.get("name_hex") is not None:
        return bytes.fromhex(g["name_hex"])
    return g.get("name", "world").encode("utf-8")


def own_fds(c):
    return {0, 1, 2, c.wfd} | {s.fileno() for s, _, _ in c.socks}


def group_body(g, gi, wfd, port_for_reuse=None):
    """Body of a group's main process (plain / prefork master / reuseport member)."""

    def body(c):
        set_name(group_name_bytes(g))
        close_all_except({0, 1, 2, wfd})
        count = int(g.get("count", 1))
        reuse = int(g.get("reuseport", 0)) > 0
        base = int(g.get("port", 0)) if port_for_reuse is None else port_for_reuse
        for i in range(count):
            port = base + i if base else 0
            c.socks.append(make_socket(g, port, reuseport=reuse))
        listeners = list(c.socks)
        # prefork workers inherit the listeners (and nothing else: no other
        # sockets exist yet in this process).
        for _ in range(int(g.get("prefork", 0))):
            fork_child(worker_body(g, listeners), wfd, gi, "worker")
        if g.get("connect"):
            lst = listeners[0][0]
            target = loopback_for(lst.family)
            if not ipaddress.ip_address(g["addr"]).is_unspecified:
                target = norm_addr(g["addr"])
            tport = lst.getsockname()[1]
            fork_child(client_body(g, lst.family, target, tport), wfd, gi, "client")
            lst.settimeout(30)
            conn, _ = lst.accept()
            conn.settimeout(None)
            lst.settimeout(None)
            c.socks.append((conn, "established", {"device": None, "backlog": None}))
        if g.get("udp_connect"):
            fam = listeners[0][0].family
            u = socket.socket(fam, socket.SOCK_DGRAM)
            if g["proto"] == "udp":
                tport = listeners[0][0].getsockname()[1]
            else:
                tport = 9  # discard; UDP connect() needs no peer
            u.connect((loopback_for(fam), tport))
            c.socks.append((u, "udp_connected", {"device": None, "backlog": None}))
        c.report()
        os.close(wfd)

    return body


def worker_body(g, listeners):
    """A prefork worker: inherits the master's name and its listeners only.

    It is forked before any accepted or connected socket exists in the master.
    """

    def body(c):
        if g.get("worker_name") is not None:
            set_name(g["worker_name"].encode("utf-8"))
        c.socks = list(listeners)
        close_all_except(own_fds(c))
        c.report()
        os.close(c.wfd)

    return body


def client_body(g, fam, target, tport):
    def body(c):
        close_all_except({0, 1, 2, c.wfd})
        set_name(g.get("client_name", "client").encode("utf-8"))
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect((target, tport))
        s.settimeout(None)
        c.socks.append((s, "established", {"device": None, "backlog": None}))
        c.report()
        os.close(c.wfd)

    return body


# --------------------------------------------------------------------------
# parent side


class Parent:
    def __init__(self):
        self.rfd, self.wfd = os.pipe()
        self.buf = b""
        self.children = []  # direct children
        self.all_pids = set()
        self.reports = []
        self.pending = {}  # pid -> partial report

    def read_reports(self, n, what):
        """Wait until n more processes have fully reported; return them."""
        got = []
        deadline = time.monotonic() + READY_TIMEOUT
        while len(got) < n:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                msg = json.loads(line)
                if not msg.get("ok"):
                    raise WorldError(
                        "%s: child %s (%s) failed: %s"
                        % (what, msg.get("pid"), msg.get("role"), msg.get("error"))
                    )
                pid = msg["pid"]
                self.all_pids.add(pid)
                prev = self.pending.pop(pid, None)
                if prev is not None:
                    prev["socks"].extend(msg["socks"])
                    msg["socks"] = prev["socks"]
                if msg["last"]:
                    got.append(msg)
                else:
                    self.pending[pid] = msg
            if len(got) >= n:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorldError("%s: timed out waiting for children" % what)
            r, _, _ = select.select([self.rfd], [], [], min(left, 1.0))
            if r:
                data = os.read(self.rfd, 65536)
                if not data:
                    raise WorldError("report pipe closed")
                self.buf += data
            else:
                # a direct child that died without reporting?
                for pid in list(self.children):
                    try:
                        wpid, status = os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        continue
                    if wpid:
                        self.children.remove(pid)
                        raise WorldError(
                            "%s: child %d exited (status %d) before reporting"
                            % (what, pid, status)
                        )
        if len(got) != n:
            raise WorldError("%s: %d reports, expected %d" % (what, len(got), n))
        self.reports.extend(got)
        return got

    def build(self, spec):
        for gi, g in enumerate(spec):
            validate(g, gi)
            prefork = int(g.get("prefork", 0))
            reuse = int(g.get("reuseport", 0))
            what = "group %d (%s)" % (gi, g.get("name", g.get("name_hex")))
            if reuse > 0:
                pid = fork_child(group_body(g, gi, self.wfd), self.wfd, gi, "reuseport")
                self.children.append(pid)
                first = self.read_reports(1, what)[0]
                port = first["socks"][0]["port"]
                for _ in range(reuse - 1):
                    pid = fork_child(
                        group_body(g, gi, self.wfd, port_for_reuse=port),
                        self.wfd, gi, "reuseport",
                    )
                    self.children.append(pid)
                self.read_reports(reuse - 1, what)
            else:
                pid = fork_child(group_body(g, gi, self.wfd), self.wfd, gi, "main")
                self.children.append(pid)
                n = 1 + prefork + (1 if g.get("connect") else 0)
                self.read_reports(n, what)

    def truth(self):
        by_inode = {}
        for r in self.reports:
            comm = bytes.fromhex(r["comm_hex"])
            for sk in r["socks"]:
                t = by_inode.get(sk["inode"])
                if t is None:
                    t = dict(sk)
                    del t["fd"]
                    t["procs"] = []
                    t["group"] = r["group"]
                    t.setdefault("device", None)
                    t.setdefault("backlog", None)
                    by_inode[sk["inode"]] = t
                t["procs"].append(
                    {
                        "pid": r["pid"],
                        "role": r["role"],
                        "name": comm.decode("utf-8", errors="replace"),
                        "name_hex": comm.hex(),
                        "cmdline": r["cmdline"],
                        "fd": sk["fd"],
                    }
                )
        out = []
        for t in by_inode.values():
            t["procs"].sort(key=lambda p: p["pid"])
            t["pids"] = [p["pid"] for p in t["procs"]]
            # "name": the creator's name (a prefork master, not its workers)
            creator = [p for p in t["procs"] if p["role"] != "worker"] or t["procs"]
            t["name"] = creator[0]["name"]
            t["name_hex"] = creator[0]["name_hex"]
            out.append(t)
        out.sort(key=lambda t: (t["proto"], t["family"], t["addr"], t["port"], t["inode"]))
        return out

    def kill_all(self):
        for pid in self.all_pids | set(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in self.children:
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


def validate(g, gi):
    if g.get("proto") not in ("tcp", "udp"):
        raise WorldError("group %d: proto must be tcp or udp" % gi)
    ipaddress.ip_address(g["addr"])
    if int(g.get("reuseport", 0)) > 0 and (
        int(g.get("prefork", 0)) or g.get("connect") or int(g.get("count", 1)) != 1
    ):
        raise WorldError("group %d: reuseport excludes prefork, connect and count" % gi)
    if g.get("connect") and g["proto"] != "tcp":
        raise WorldError("group %d: connect is for tcp (use udp_connect)" % gi)
    name = group_name_bytes(g)
    if b"\0" in name:
        raise WorldError("group %d: a process name cannot contain NUL" % gi)


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("usage: world.py SPEC.json TRUTH.json [READY_MARKER]\n")
        return 2
    spec_path, truth_path = sys.argv[1], sys.argv[2]
    ready_path = sys.argv[3] if len(sys.argv) > 3 else truth_path + ".ready"
    with open(spec_path) as f:
        spec = json.load(f)
    if isinstance(spec, dict):
        spec = spec["groups"]

    # The harness normally does this already; harmless when repeated.
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)

    parent = Parent()

    def on_term(signum, frame):
        parent.kill_all()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_term)

    try:
        parent.build(spec)
        truth = parent.truth()
    except Exception as e:  # noqa: BLE001
        sys.stderr.write("world.py: %s\n" % e)
        parent.kill_all()
        return 1

    tmp = truth_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
    os.rename(tmp, truth_path)
    with open(ready_path + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready_path + ".tmp", ready_path)

    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
