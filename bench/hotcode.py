#!/usr/bin/env python3
"""Write link/hotcode.ld: the functions a listing runs, to be linked together.

Why: the kernel maps a program's code 64 KiB around each page it faults in, so the binary's
resident code is every 64 KiB window that holds some function a run calls. The compiler lays
functions out in its own order, and a listing's 1.1 MB of functions were spread over 54 of
the 62 windows of the 4 MB text: 3.1-3.5 MiB resident. Linked together (link/hotcode.ld,
passed to the linker by build.rs), about 2 MiB of the text is resident.

How: as root, a uprobe on the entry of every function of the release binary (tracefs), then
the listings the benchmark times run once each in a world.py world, then every function whose
probe fired is written out as an input-section pattern, in the order of the binary, with the
parts of its symbol that change from one build to the next (legacy mangling's hash, v0
mangling's crate disambiguators and back-references) replaced by `*`, so the file stays true
while the code changes; a function added since is only linked where the compiler puts it.

    sudo python3 bench/hotcode.py [--world PATH] [--bin target/release/lsports]
    sudo python3 bench/hotcode.py --check   # how much of what runs lies outside .text.hot

Rerun it when the code a listing runs has changed much (`--check` says how much runs where it
should not); the probes are removed at the end, and tracefs unmounted if this mounted it.
"""
import argparse
import os
import re
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "link", "hotcode.ld")
TRACEFS = "/sys/kernel/tracing"
GROUP = "lsports_hot"
# The quarter world of bench/compare.sh, and the listings a user runs most: the default (the
# BPF iterator as root), the /proc walk, no owners, JSON, the user column, and every namespace
# (the world's processes spread over a few more, as the namespaces bench world has them).
WORLD_ARGS = ["--procs", "250", "--tcp", "5000", "--udp", "1250", "--conns", "1250", "--fds", "25000",
              "--netns", "8"]
RUNS = ["-ltnup", "-ltnup --attribution walk", "-ltnu -o proto,local,state", "-ltnu --json",
        "-tule", "--netns all -tlnup", "--version"]


def segments(path):
    """(vaddr, offset, size) of each executable PT_LOAD segment of an ELF64 file."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            sys.exit(f"{path}: not a 64-bit ELF file")
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    out = []
    for i in range(phnum):
        ptype, flags, offset, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
        if ptype == 1 and flags & 1:  # PT_LOAD, PF_X
            out.append((vaddr, offset, filesz))
    return out


def functions(path):
    """(address, size, name) of each function in the binary's symbol table, by address."""
    out = subprocess.run(["nm", "--defined-only", "-S", "-n", path], capture_output=True,
                         text=True, check=True).stdout
    funcs = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in ("t", "T"):
            funcs.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return funcs


def hashless(name):
    """A legacy-mangled name without its hash (which changes with the build: dependencies,
    compiler, profile), or the name itself."""
    return re.sub(r"17h[0-9a-f]{16}E$", "17h*E", name)


def pattern(name):
    """The input sections of the function `name`, by a glob that still matches when the build
    changes: `*` for legacy mangling's hash, v0 mangling's crate disambiguators and
    back-references (byte offsets, which move when a disambiguator's length does). The
    instances of a generic function differ only in the hash, so all of them come along with
    the one that ran (about 0.3 MB more): naming that one by its hash was tried, and lost it
    at the next change of the build's metadata (a build script added, a dependency bumped).
    LLVM puts a function it finds cold (`#[cold]`, or every path ends in one) in
    `.text.unlikely.`."""
    if name.startswith("_ZN"):
        name = hashless(name)
    elif name.startswith("_R"):
        name = re.sub(r"Cs[0-9A-Za-z]*_", "Cs*_", name)
        name = re.sub(r"B[0-9A-Za-z]*_", "B*_", name)
        name = re.sub(r"\*+", "*", name)
    return f"*(.text.{name} .text.unlikely.{name})"


class Probes:
    """A uprobe on every function's entry, removed again on exit."""

    def __init__(self):
        self.mounted = False
        if not os.path.exists(os.path.join(TRACEFS, "uprobe_events")):
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
            self.mounted = True
        self.names = []
        self.refused = 0

    def _write(self, line):
        # One probe per write, appended (tracefs refuses the seek of Python's "a" mode).
        fd = os.open(os.path.join(TRACEFS, "uprobe_events"), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def add(self, path, funcs):
        """A probe on each function's entry; `names[i]` is function i's, or None where there
        is none (outside the code, or refused by the kernel)."""
        segs = segments(path)
        for addr, _, _ in funcs:
            seg = next((s for s in segs if s[0] <= addr < s[0] + s[2]), None)
            name = f"f{len(self.names)}"
            self.names.append(None)
            if seg is None:
                continue
            try:
                self._write(f"p:{GROUP}/{name} {path}:0x{addr - seg[0] + seg[1]:x}\n")
                self.names[-1] = name
            except OSError:
                self.refused += 1

    def enable(self, on):
        with open(os.path.join(TRACEFS, "events", GROUP, "enable"), "w") as f:
            f.write("1" if on else "0")

    def hits(self):
        """Probe name -> times it fired."""
        counts = {}
        with open(os.path.join(TRACEFS, "uprobe_profile")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    counts[parts[1]] = int(parts[2])
        return counts

    def remove(self):
        try:
            self.enable(False)
        except OSError:
            pass
        for name in filter(None, self.names):
            self._write(f"-:{GROUP}/{name}\n")
        if self.mounted:
            subprocess.run(["umount", TRACEFS], check=False)


def text_hot(path):
    """(start, end) of the binary's .text.hot output section, or None."""
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.search(r"\]\s+\.text\.hot\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            start = int(m[1], 16)
            return start, start + int(m[2], 16)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", default=os.environ.get("WORLD", os.path.join(ROOT, "..", "shared", "bench", "world.py")))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "lsports"))
    ap.add_argument("--check", action="store_true", help="only say what runs outside .text.hot")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("hotcode.py needs root (uprobes)")
    if not os.path.exists(args.world):
        sys.exit(f"world builder not found at {args.world} (--world PATH or WORLD=…)")
    if args.bin == os.path.join(ROOT, "target", "release", "lsports"):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    binary = os.path.realpath(args.bin)
    funcs = functions(binary)
    probes = Probes()
    try:
        probes.add(binary, funcs)
        probes.enable(True)
        script = "; ".join(f"{binary} {run} >/dev/null 2>&1" for run in RUNS)
        subprocess.run([sys.executable, args.world, *WORLD_ARGS, "--", "sh", "-c", script], check=True)
        probes.enable(False)
        hits = probes.hits()
    finally:
        probes.remove()
    ran = [f for f, name in zip(funcs, probes.names) if name and hits.get(name, 0) > 0]
    size = sum(f[1] for f in ran)
    print(f"{len(ran)} of {len(funcs)} functions ran, {size / 1024:.0f} KiB of code "
          f"({probes.refused} the kernel would not probe)")
    if args.check:
        hot = text_hot(binary)
        outside = [f for f in ran if not hot or not hot[0] <= f[0] < hot[1]]
        print(f"outside .text.hot: {len(outside)} functions, "
              f"{sum(f[1] for f in outside) / 1024:.0f} KiB (rerun without --check to relink them)")
        for addr, fsize, name in sorted(outside, key=lambda f: -f[1])[:10]:
            print(f"  {fsize:7d}  {name}")
        return
    seen, patterns = set(), []
    for _, _, name in ran:
        # Code from the C runtime's objects (_start, frame_dummy, …) is not in its own section.
        if not (name.startswith("_ZN") or name.startswith("_R") or name == "main"):
            continue
        pat = pattern(name)
        if pat not in seen:
            seen.add(pat)
            patterns.append(pat)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("/* Written by bench/hotcode.py: the functions a listing runs, linked together at the\n"
                "   start of the code (build.rs passes this file to the linker; README, Performance).\n"
                "   INSERT keeps the linker's own layout for everything else. */\n")
        f.write("SECTIONS\n{\n  .text.hot :\n  {\n")
        for pat in patterns:
            f.write(f"    {pat}\n")
        f.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"wrote {len(patterns)} patterns to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
