#!/usr/bin/env bash
# Benchmark: lsports against ss and netstat, side by side, in throwaway worlds of processes and
# sockets built by the workplace's world builder (fresh user, network, pid and mount
# namespaces, so the host is neither touched nor seen). Prints median wall time, the ratio to
# ss, the range and peak RSS of each command, then checks that lsports' JSON listing equals the
# world's ground truth exactly (speed must never trade accuracy).
#
#   bash bench/compare.sh                 # large, small and namespaces world
#   RUNS=9 bash bench/compare.sh large    # one world, more runs
#   bash bench/compare.sh namespaces      # --netns all over 201 namespaces
#   bash bench/compare.sh reach           # --reach with a 1,000-rule ruleset
#
# WORLD points at world.py (default: ../shared/bench/world.py beside this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
WORLD=${WORLD:-../shared/bench/world.py}
RUNS=${RUNS:-5}
[ -f "$WORLD" ] || { echo "world builder not found at $WORLD (set WORLD=…)" >&2; exit 1; }
cargo build --release --quiet
BIN=target/release/lsports
truth=$(mktemp -d)
trap 'rm -rf "$truth"' EXIT

# Compare `lsports --json` with world.py's --expect file: (proto, address, port) -> pids, and
# with a third argument `netns`, each socket's network namespace inode too.
check_exact() {
  python3 - "$1" "$2" "${3:-}" <<'PY'
import json, sys
from collections import Counter
expect = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))
by_ns = sys.argv[3] == "netns"
def norm(addr): return addr.strip("[]")
def ns(inode): return inode if by_ns else None
# A multiset: SO_REUSEPORT siblings are separate sockets with the same address and port.
want = Counter((e["proto"], norm(e["addr"]), e["port"], tuple(sorted(e["pids"])), ns(e.get("netns")))
               for e in expect)
have = Counter((s["proto"], s["local_addr"], s["local_port"], tuple(sorted(p["pid"] for p in s["processes"])),
                ns((s.get("netns") or {}).get("inode"))) for s in got)
missing, extra = want - have, have - want
print(f"exactness: {sum(want.values())} expected, {sum(have.values())} listed, "
      f"{sum(missing.values())} missing, {sum(extra.values())} extra")
for row in sorted(missing)[:5]: print("  missing", row)
for row in sorted(extra)[:5]: print("  extra  ", row)
sys.exit(1 if missing or extra else 0)
PY
}

# Every timed command sends its output to /dev/null itself, as a user's shell would.
# Both attribution paths when the binary has them (the BPF iterator needs root and BTF).
paths=(--time "$BIN -ltnup >/dev/null")
if "$BIN" --help 2>/dev/null | grep -q -- '--attribution'; then
  paths=(--time "$BIN -ltnup --attribution walk >/dev/null"
         --time "$BIN -ltnup --attribution auto >/dev/null")
fi

world() {
  local name=$1; shift
  echo "== $name world: $*"
  python3 "$WORLD" "$@" --runs "$RUNS" \
    --time 'ss -ltnup >/dev/null' --time 'netstat -tulpn >/dev/null' "${paths[@]}"
  # Every attribution path this binary has, each against the same ground truth.
  local modes=(default)
  if "$BIN" --help 2>/dev/null | grep -q -- '--attribution'; then modes=(walk auto); fi
  local runs=""
  for mode in "${modes[@]}"; do
    local flag=""
    [ "$mode" = default ] || flag="--attribution $mode"
    runs+="$BIN -ltnu --json $flag > $truth/$name.$mode.json; "
  done
  python3 "$WORLD" "$@" --expect "$truth/$name.json" -- sh -c "$runs"
  for mode in "${modes[@]}"; do
    printf '%s: ' "$mode"
    check_exact "$truth/$name.json" "$truth/$name.$mode.json"
  done
}

# Every namespace at once: the plain processes spread over 200 more namespaces. The target
# (issue #13): `--netns all` lists exactly the truth, namespace inodes included, in <= 0.15x
# the time ss takes for the world's own namespace alone, and <= 1.5x lsports' own time in the
# large world above (the same sockets in one namespace, world.py --netns 0).
namespaces() {
  local args=(${NS_WORLD:---procs 1000 --tcp 20000 --udp 5000 --conns 5000 --fds 100000 --netns 200})
  echo "== namespaces world: ${args[*]}"
  python3 "$WORLD" "${args[@]}" --runs "$RUNS" \
    --time 'ss -ltnup >/dev/null' --time "$BIN --netns all -tlnup >/dev/null"
  python3 "$WORLD" "${args[@]}" --expect "$truth/ns.json" -- \
    sh -c "$BIN --netns all -ltnu --json > $truth/ns.all.json"
  printf 'netns all: '
  check_exact "$truth/ns.json" "$truth/ns.all.json" netns
}

# Reach (issue #14): the large world with a 1,000-rule nftables ruleset loaded in its network
# namespace; the target is that asking for reach (--reach, which reads the rules with nft and
# evaluates every listener) adds at most 50 ms to the plain listing. The first timed command
# (re)loads the rules (flush included, so it is idempotent); compare the last two medians.
reach() {
  local args=(${REACH_WORLD:---procs 1000 --tcp 20000 --udp 5000 --conns 5000 --fds 100000})
  local rules=$truth/reach.nft
  python3 - "$rules" <<'PY'
import sys
# Shapes real rulesets have: per-port accepts, source-restricted ports, port sets, and
# per-service chains reached by jumps; 1,000 rules in all.
out = ["flush ruleset", "table inet bench {"]
services = [f"    chain svc{i} {{\n        ip saddr 10.{i}.0.0/16 accept\n        ip6 saddr 2001:db8:{i:x}::/48 accept\n        counter drop\n    }}" for i in range(100)]
out += services
rules = ["ct state established,related accept", "iif lo accept"]
for i in range(100):
    rules.append(f"tcp dport {20000 + i * 7} jump svc{i}")
for i in range(400):
    rules.append(f"tcp dport {1000 + i * 37} accept")
for i in range(150):
    rules.append(f"ip saddr 192.0.{i % 256}.0/24 udp dport {30000 + i * 11} accept")
for i in range(48):
    ports = ", ".join(str(40000 + i * 50 + k) for k in range(10))
    rules.append(f"udp dport {{ {ports} }} accept")
out.append("    chain input {\n        type filter hook input priority filter; policy drop;")
out += [f"        {r}" for r in rules]
out += ["    }", "}"]
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
  echo "== reach world (1,000 rules): ${args[*]}"
  python3 "$WORLD" "${args[@]}" --runs "$RUNS" \
    --time "nft -f $rules" --time "$BIN -ltnu >/dev/null" --time "$BIN -ltnu --reach >/dev/null"
}

case "${1:-all}" in
  large|all) world large --procs 1000 --tcp 20000 --udp 5000 --conns 5000 --fds 100000 ;;&
  small|all) world small --procs 5 --tcp 10 --udp 5 --prefork 1 --reuseport 1 ;;&
  namespaces|all) namespaces ;;&
  reach|all) reach ;;
esac
