#!/usr/bin/env bash
# The stream once through `rosepack mount` (FUSE), to check that the engine under a real mount writes
# what the engine driven directly (`rose-heat rosefs`) writes. The FUSE server's pwrite64 calls to the
# image file are recorded with strace and counted per 4 KiB block.
#
#   Benchmarks/heat/run-mount.sh OPS.jsonl OUTDIR [SEED]     (needs /dev/fuse, fusermount3, strace)
set -euo pipefail
ops=$1 out=$2 seed=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
heat=${ROSE_HEAT:-$here/../../.build/debug/rose-heat}
rosepack=${ROSEPACK:-$here/../../.build/debug/rosepack}
"$rosepack" mount --help >/dev/null 2>&1 || { echo "run-mount.sh: this rosepack has no mount" >&2; exit 2; }
mkdir -p "$out"
mnt=$(mktemp -d) empty=$(mktemp -d)
"$rosepack" convert "$empty" -o "$out/mount.img" --size 64M >/dev/null
rmdir "$empty"
strace -f -qq -s 0 -e trace=pwrite64 -e signal=none -o "$out/mount.strace" \
  "$rosepack" mount -f "$out/mount.img" "$mnt" > "$out/mount.log" 2>&1 &
server=$!
for _ in $(seq 1 60); do mountpoint -q "$mnt" && break; sleep 0.5; done
mountpoint -q "$mnt" || { echo "run-mount.sh: the mount did not come up" >&2; kill $server; exit 1; }
"$heat" apply "$ops" --root "$mnt" --seed "$seed" -o "$out/mount.outcome.json"
fusermount3 -u "$mnt"
wait $server
rmdir "$mnt"
"$rosepack" fsck "$out/mount.img" > "$out/mount.fsck"
head -1 "$out/mount.fsck"
"$heat" ingest-pwrites --strace "$out/mount.strace" --blocks $((64 << 8)) --operations "$(wc -l < "$ops")" \
  --outcome "$out/mount.outcome.json" -o "$out/mount.heat.json"
