#!/usr/bin/env bash
# Build the BPF program lsports embeds, or check that the committed object is what its source
# compiles to.
#
#   bpf/build.sh          rebuild src/process/bpf/task_sockets.bpf.o from task_sockets.bpf.c
#   bpf/build.sh --check  rebuild into a temporary file and compare the programs (instructions
#                         and relocations, as llvm-objdump prints them) with the committed one
#
# Needs clang and llvm (Debian: apt-get install clang llvm). The object is committed so that
# building lsports needs neither; it was built with Debian 12's clang 14, which CI installs. A
# different clang may compile the same source to different instructions: then rebuild, check
# that the tests pass as root, and commit the new object. DWARF is stripped: it carries the build directory and is not
# needed, while .BTF and .BTF.ext (types and CO-RE relocations) are kept.
set -euo pipefail
cd "$(dirname "$0")/../src/process/bpf"

source=task_sockets.bpf.c
object=task_sockets.bpf.o

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

case "${1:-}" in
  "")
    build "$object"
    echo "built src/process/bpf/$object"
    ;;
  --check)
    fresh=$(mktemp --suffix=.bpf.o)
    trap 'rm -f "$fresh"' EXIT
    build "$fresh"
    if ! diff -u <(program "$object") <(program "$fresh"); then
      echo "src/process/bpf/$object is not what $source compiles to: run bpf/build.sh and commit" >&2
      exit 1
    fi
    if ! cmp -s "$object" "$fresh"; then
      echo "note: $object differs from a fresh build in bytes, but not in its program" >&2
    fi
    echo "src/process/bpf/$object matches $source"
    ;;
  *)
    echo "usage: bpf/build.sh [--check]" >&2
    exit 2
    ;;
esac
