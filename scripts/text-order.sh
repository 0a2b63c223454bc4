#!/usr/bin/env bash
# Writes scripts/rosepack-text-order.txt: the functions a release rosepack executes in `--help`,
# `convert` of a one-file tarball and `convert` of minbase, which Package.swift hands to lld
# (`--symbol-ordering-file`) so that they sit together at the start of the executable's text.
# Resident text is every 64 KiB fault-around window a run touches; in plain link order the
# executed functions (about 0.8 MiB) were spread over 8.8 MiB of windows (docs/MEMORY.md,
# "Release flags and text order"). Re-run after large changes to what convert calls, then relink
# (SwiftPM does not see the list as an input, so remove the executable to make it link again):
#   swift build -c release --product rosepack && scripts/text-order.sh [BINARY]
#   rm .build/release/rosepack && swift build -c release --product rosepack
# Needs valgrind (callgrind lists every function executed, by its mangled name). Names defined more
# than once in the binary (local value-witness and outlined helpers that every object file has
# its own copy of) are left out: lld would place every object section holding such a name.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-.build/release/rosepack}
minbase=${MINBASE:-$here/../../shared/datasets/minbase.tar.zst}
out=$here/rosepack-text-order.txt
command -v valgrind >/dev/null || { echo "text-order.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d /dev/shm/text-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=0
# valgrind's DWARF reader gives up on this toolchain's debug info; the symbol table is enough.
objcopy --strip-debug "$bin" "$work/rosepack"
mkdir -p "$work/tiny/d" && echo hi >"$work/tiny/d/f" && tar -C "$work/tiny" -cf "$work/tiny.tar" d

run() {
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$1" "${@:2}" \
    >/dev/null 2>"$work/vg.$1" || { cat "$work/vg.$1" >&2; exit 1; }
}
run help "$work/rosepack" --help
run tiny "$work/rosepack" convert "$work/tiny.tar" -o "$work/tiny.img" --quiet
if [ -r "$minbase" ]; then
  run minbase "$work/rosepack" convert "$minbase" -o "$work/minbase.img" --quiet
  rm -f "$work/minbase.img"
else
  echo "text-order.sh: $minbase not found (set MINBASE); ordering from --help and one file only" >&2
fi

nm --defined-only "$work/rosepack" >"$work/nm"
python3 - "$work" "$out" <<'EOF'
import collections, glob, re, sys
work, out = sys.argv[1], sys.argv[2]
defined = collections.Counter(line.split()[2] for line in open(f"{work}/nm") if len(line.split()) == 3)
names = set()
for profile in glob.glob(f"{work}/cg.*"):
    for line in open(profile, errors="replace"):
        m = re.match(r"^c?fn=\(\d+\) (.+)$", line)
        if m:
            names.add(m.group(1).strip())
keep = sorted(n for n in names if defined[n] == 1)
with open(out, "w") as f:
    f.writelines(n + "\n" for n in keep)
print(f"{out}: {len(keep)} functions ({len(names)} executed, the rest are in shared libraries "
      "or defined more than once)")
EOF
