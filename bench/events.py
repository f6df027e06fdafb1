#!/usr/bin/env python3
"""Benchmark of `lsports watch --events kernel` against polling (issue 15). Root only.

    python3 bench/events.py [--bin target/release/lsports] [--idle 60] [--world PATH]

1. Flash: 1,000 listeners, each living 1 ms, from processes (one fork each) in three fresh
   network namespaces, half TCP and half UDP. `watch --events kernel --netns all` and
   `watch --events poll --interval 1s --netns all` run side by side; each is scored on how many
   listeners it reported opened AND closed with the right pid, port and namespace.
2. Idle: a large world (world.py --procs 500 --tcp 20000 --udp 2000) sits still; the CPU time
   each watch (kernel, and polling at 1 s) spends over --idle seconds, as % of one core.
3. Latency: 50 listeners opened one at a time in a namespace; the time from listen() returning
   to the watch's line arriving on its pipe, median and max.

Numbers from a busy shared machine are noisy: rerun on a quiet one before quoting them.
"""
import argparse, json, os, select, socket, statistics, subprocess, sys, tempfile, time

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def netns_inode(path):
    return os.stat(path).st_ino


def start_watch(bin, args, out):
    return subprocess.Popen([bin, "watch", "--format", "jsonl", "--changes-only", "-v", *args],
                            stdout=out, stderr=subprocess.PIPE, text=True)


def wait_ready(proc, what="watching"):
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            sys.exit(f"watch exited: {proc.wait()}")
        if what in line:
            return line.strip()
    sys.exit("watch never became ready")


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


# A child per listener: bind (and listen), 1 ms, close, exit. Run inside its namespace.
FLASHER = r"""
import json, os, socket, sys, time
base, count, offset = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
done = []
for i in range(count):
    port = base + offset + 3 * i
    proto = "tcp" if (offset + 3 * i) % 2 == 0 else "udp"
    pid = os.fork()
    if pid == 0:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        if proto == "tcp":
            s.listen(8)
        time.sleep(0.001)
        s.close()
        os._exit(0)
    os.waitpid(pid, 0)
    done.append({"proto": proto, "port": port, "pid": pid})
print(json.dumps(done))
"""


def flash(bin, total, base):
    names = [f"lsports-bench-ev{i}" for i in range(3)]
    for n in names:
        subprocess.run(["ip", "netns", "add", n], check=True)
    try:
        inodes = {n: netns_inode(f"/run/netns/{n}") for n in names}
        outs = {k: tempfile.NamedTemporaryFile("w+", prefix=f"lsports-ev-{k}-") for k in ("kernel", "poll")}
        port_range = f"{base}-{base + total - 1}"
        kernel = start_watch(bin, ["--events", "kernel", "--netns", "all", "--port", port_range], outs["kernel"])
        poll = start_watch(bin, ["--events", "poll", "--interval", "1s", "--netns", "all", "--port", port_range], outs["poll"])
        wait_ready(kernel), wait_ready(poll)
        truth = []
        procs = []
        per_ns = [len(range(k, total, 3)) for k in range(3)]
        for k, n in enumerate(names):
            procs.append((n, subprocess.Popen(["ip", "netns", "exec", n, sys.executable, "-c", FLASHER,
                                               str(base), str(per_ns[k]), str(k)], stdout=subprocess.PIPE, text=True)))
        for n, p in procs:
            for item in json.loads(p.communicate()[0]):
                item["netns"] = inodes[n]
                truth.append(item)
        time.sleep(3)  # a few polls, and the ring drained
        stop(kernel), stop(poll)
        for kind, f in outs.items():
            f.seek(0)
            events = [json.loads(l) for l in f if l.strip()]
            got = {(e["event"], e["proto"], e["port"], e["pid"], e["netns"]["inode"]) for e in events}
            both = sum(1 for t in truth
                       if all((ev, t["proto"], t["port"], t["pid"], t["netns"]) in got for ev in ("opened", "closed")))
            lost = sum(e.get("lost", 0) for e in events if e["event"] == "lost")
            print(f"flash {kind:6}: {both}/{len(truth)} listeners reported opened and closed with the right "
                  f"pid, port and namespace ({len(events)} events, {lost} lost)")
        return truth
    finally:
        for n in names:
            subprocess.run(["ip", "netns", "del", n], check=False)


def idle(bin, world, seconds):
    cmd = [sys.executable, world, "--procs", "500", "--tcp", "20000", "--udp", "2000", "--",
           "sh", "-c", f"readlink /proc/self/ns/net; sleep {seconds + 120}"]
    # The world has a mount namespace of its own: it tells its network namespace on stdout.
    log = tempfile.TemporaryFile("w+")  # world.py's progress, for a failure
    w = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    try:
        line = ""
        while not line.startswith("net:["):
            line = w.stdout.readline()
            if not line:
                log.seek(0)
                sys.exit(f"the world did not come up: {log.read()[-2000:]}")
        inode = int(line.strip()[5:-1])
        holder = next(p for p in os.listdir("/proc") if p.isdigit() and _ns(p) == inode)
        path = f"/proc/{holder}/ns/net"
        results = {}
        watches = {k: start_watch(bin, ["--netns", path, "--events", k, "--interval", "1s"], subprocess.DEVNULL)
                   for k in ("kernel", "poll")}
        for p in watches.values():
            wait_ready(p)
        before = {k: cpu_seconds(p.pid) for k, p in watches.items()}
        time.sleep(seconds)
        for k, p in watches.items():
            results[k] = (cpu_seconds(p.pid) - before[k]) / seconds * 100
            stop(p)
        print(f"idle over {seconds} s in the large world (20,000 TCP + 2,000 UDP listeners, 500 processes): "
              f"kernel events {results['kernel']:.2f} % of a core, polling at 1 s {results['poll']:.2f} %")
    finally:
        if w.poll() is None:
            os.killpg(w.pid, 15)
        w.wait()


def _ns(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def latency(bin, count, port):
    name = "lsports-bench-lat"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        w = subprocess.Popen([bin, "watch", "--events", "kernel", "--netns", name, "--changes-only", "-v",
                              "--port", f"{port}-{port + count}"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, bufsize=1)
        wait_ready(w)
        # Into the namespace, this process only (the watch is already running); Python 3.12
        # has os.setns, older ones reach libc.
        import ctypes
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
            sys.exit(f"setns: errno {ctypes.get_errno()}")
        delays = []
        for i in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", port + i))
            s.listen(8)
            t0 = time.monotonic()
            while True:
                ready, _, _ = select.select([w.stdout], [], [], 5)
                if not ready:
                    sys.exit("no line within 5 s")
                line = w.stdout.readline()
                if " opened " in line and f":{port + i} " in line:
                    break
            delays.append((time.monotonic() - t0) * 1000)
            s.close()
            w.stdout.readline()  # its close
        stop(w)
        print(f"latency listen() -> printed line over {count} listeners: median {statistics.median(delays):.1f} ms, "
              f"max {max(delays):.1f} ms")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(here, "..", "target", "release", "lsports"))
    ap.add_argument("--world", default=os.path.join(here, "..", "..", "shared", "bench", "world.py"))
    ap.add_argument("--idle", type=int, default=60)
    ap.add_argument("--skip", action="append", default=[], choices=["flash", "idle", "latency"])
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("events.py needs root (it loads BPF programs and makes network namespaces)")
    if "flash" not in args.skip:
        flash(args.bin, 1000, 21000)
    if "latency" not in args.skip:
        latency(args.bin, 50, 23000)
    if "idle" not in args.skip:
        idle(args.bin, args.world, args.idle)


if __name__ == "__main__":
    main()
