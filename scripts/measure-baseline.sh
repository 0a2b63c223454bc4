#!/usr/bin/env bash
# The fixed memory baseline of a rosepack binary (docs/MEMORY.md, "The fixed baseline"): peak RSS of
# `--help`, of `convert` of a one-file tarball, and of `convert` of minbase, with convert's wall and
# CPU time; the median of RUNS runs each (default 5).
#   scripts/measure-baseline.sh [BINARY] [RUNS]       (BINARY default .build/release/rosepack)
set -euo pipefail
bin=${1:-.build/release/rosepack}
runs=${2:-5}
minbase=${MINBASE:-../shared/datasets/minbase.tar.zst}
work=$(mktemp -d /dev/shm/rss-baseline.XXXXXX)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=0
# Resident text depends on how the binary's pages sit in the page cache: a binary just written by
# `cp` kept 1.2 MiB more resident than the same bytes read back from disk. Evict it, so that every
# binary is measured as the kernel reads it in.
python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$bin"
"$bin" --help >/dev/null
mkdir -p "$work/tiny/d" && echo hi >"$work/tiny/d/f" && tar -C "$work/tiny" -cf "$work/tiny.tar" d

# Prints "median-rss-KiB median-wall-s median-cpu-s" of RUNS runs of the command.
measure() {
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%M %e %U %S" -o "$work/t" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    cat "$work/t"
    done | python3 -c '
import statistics, sys
rows = [line.split() for line in sys.stdin]
rss = statistics.median_low(int(r[0]) for r in rows)
wall = statistics.median(float(r[1]) for r in rows)
cpu = statistics.median(float(r[2]) + float(r[3]) for r in rows)
print(rss, f"{wall:.2f}", f"{cpu:.2f}")'
}

read -r help_rss _ _ < <(measure "$bin" --help)
read -r tiny_rss _ _ < <(measure "$bin" convert "$work/tiny.tar" -o "$work/tiny.img" --quiet)
echo "--help: ${help_rss} KiB ($(awk "BEGIN { printf \"%.1f\", $help_rss / 1024 }") MiB)"
echo "convert one-file tarball: ${tiny_rss} KiB ($(awk "BEGIN { printf \"%.1f\", $tiny_rss / 1024 }") MiB)"
if [ -r "$minbase" ]; then
  read -r mb_rss mb_wall mb_cpu < <(measure "$bin" convert "$minbase" -o "$work/minbase.img" --quiet)
  echo "convert minbase: ${mb_rss} KiB ($(awk "BEGIN { printf \"%.1f\", $mb_rss / 1024 }") MiB), ${mb_wall} s wall, ${mb_cpu} s CPU (medians of $runs)"
else
  echo "convert minbase: skipped ($minbase not found; set MINBASE)"
fi
