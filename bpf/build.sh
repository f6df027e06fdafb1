#!/usr/bin/env bash
# Build the BPF programs lsports embeds, or check that each committed object is what its source
# compiles to.
#
#   bpf/build.sh          rebuild every OBJECT below from its .bpf.c
#   bpf/build.sh --check  rebuild each into a temporary file and compare the programs
#                         (instructions and relocations, as llvm-objdump prints them) with the
#                         committed one
#
# Needs clang and llvm (Debian: apt-get install clang llvm). The object is committed so that
# building lsports needs neither; it was built with Debian 12's clang 14, which CI installs. A
# different clang may compile the same source to different instructions: then rebuild, check
# that the tests pass as root, and commit the new object. DWARF is stripped: it carries the build directory and is not
# needed, while .BTF and .BTF.ext (types and CO-RE relocations) are kept.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"

# Every object, relative to the repository: the task socket iterator, the listener events, and
# the tcp/udp socket iterators (which include src/source/bpf/socket_record.h).
OBJECTS=(src/process/bpf/task_sockets.bpf.o src/source/events/listen_events.bpf.o
  src/source/bpf/sockets.bpf.o)

build() {
  # Relative paths only, so the object does not depend on where the repository is.
  clang -target bpf -O2 -g -Wall -Wextra -Werror -fdebug-prefix-map="$PWD"=. \
    -c "$source" -o "$1"
  llvm-strip --strip-debug "$1"
}

program() {
  # The program as the kernel would get it: sections, instructions, relocations.
  llvm-objdump --section-headers --disassemble --reloc "$1" | sed 1,2d
}

# Build or check one object, from inside its directory ($1: the object's path).
one() {
  local dir object source fresh
  dir=$(dirname "$1")
  object=$(basename "$1")
  source=${object%.o}.c
  cd "$top/$dir"
  case "$mode" in
    "")
      build "$object"
      echo "built $dir/$object"
      ;;
    --check)
      fresh=$(mktemp --suffix=.bpf.o)
      trap 'rm -f "$fresh"' RETURN
      build "$fresh"
      if ! diff -u <(program "$object") <(program "$fresh"); then
        echo "$dir/$object is not what $source compiles to: run bpf/build.sh and commit" >&2
        return 1
      fi
      if ! cmp -s "$object" "$fresh"; then
        echo "note: $object differs from a fresh build in bytes, but not in its program" >&2
      fi
      echo "$dir/$object matches $source"
      ;;
  esac
}

mode=${1:-}
case "$mode" in
  "" | --check)
    for path in "${OBJECTS[@]}"; do
      one "$path"
    done
    ;;
  *)
    echo "usage: bpf/build.sh [--check]" >&2
    exit 2
    ;;
esac
