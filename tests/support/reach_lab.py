#!/usr/bin/env python3
"""The two ends of the reach lab (python3 stdlib only), each run in its own network namespace.

    reach_lab.py listen PORT...   TCP listeners and UDP echo servers on every PORT, dual-stack
                                  ([::] with IPV6_V6ONLY off); prints "ready" once bound.
    reach_lab.py probe            prints "ready", then reads one JSON list of probes per line from stdin, runs them
                                  at once, prints one JSON object {id: outcome} per line.

A probe is {"id", "proto": "tcp"|"udp", "src", "sport", "dst", "port", "timeout"}. The
caller never repeats a source port: a connection tracked from an earlier probe would make a
new one look "established" to the rules. Its outcome:
"pass" (TCP connection established and accepted; UDP echo received), "refused" (TCP reset or an ICMP
error), "timeout" (nothing came back), or "error: ERRNO" when the probe itself failed.
"""

import errno
import json
import select
import socket
import sys
import threading


def listen(ports):
    udp = []
    keep = []
    for port in ports:
        for proto in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET6, proto)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", port))
            if proto == socket.SOCK_STREAM:
                s.listen(512)
                keep.append(s)
            else:
                udp.append(s)
    print("ready", flush=True)
    tcp = list(keep)
    while True:
        readable, _, _ = select.select(udp + tcp, [], [])
        for s in readable:
            if s in udp:
                data, peer = s.recvfrom(2048)
                s.sendto(data, peer)
            else:
                conn, _ = s.accept()
                conn.close()


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def probe_one(p, out):
    fam = family(p["dst"])
    kind = socket.SOCK_STREAM if p["proto"] == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    s.settimeout(p["timeout"])
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((p["src"], p["sport"]))
        s.connect((p["dst"], p["port"]))
        if kind == socket.SOCK_DGRAM:
            s.send(b"lsports-reach")
            s.recv(64)
        else:
            # The listener accepts and closes: an end of file says the handshake completed
            # on its side too, not just on ours.
            if s.recv(1) != b"":
                raise OSError(errno.EPROTO, "data from a listener that sends none")
        out[p["id"]] = "pass"
    except socket.timeout:
        out[p["id"]] = "timeout"
    except (ConnectionRefusedError, ConnectionResetError, PermissionError):
        out[p["id"]] = "refused"
    except OSError as e:
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPROTO):
            out[p["id"]] = "refused"
        else:
            out[p["id"]] = "error: " + (errno.errorcode.get(e.errno) or str(e))
    finally:
        s.close()


def probe():
    print("ready", flush=True)
    for line in sys.stdin:
        probes = json.loads(line)
        out = {}
        threads = [threading.Thread(target=probe_one, args=(p, out)) for p in probes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen([int(p) for p in sys.argv[2:]])
    else:
        probe()
