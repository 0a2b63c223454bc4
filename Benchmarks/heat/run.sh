#!/usr/bin/env bash
# The whole write-heat benchmark (Benchmarks/heat/README.md): one workload, every filesystem, one report.
#
#   sudo Benchmarks/heat/run.sh [OUTDIR] [SEED] [OPS]      (defaults: /tmp/rose-heat 1 30000)
#
# OUTDIR gets the stream, the traces and heat logs; OUTDIR/report the table (table.md, report.json)
# and the heatmaps (heat-*.svg, heat-all.html). RoseFS runs through the engine when it is built in.
set -euo pipefail
out=${1:-/tmp/rose-heat} seed=${2:-1} nops=${3:-30000}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
# ROSE_HEAT and ROSEPACK name prebuilt binaries (e.g. release builds); otherwise debug builds here.
if [ -z "${ROSE_HEAT:-}" ] || [ -z "${ROSEPACK:-}" ]; then
  swift build --product rose-heat >/dev/null
  swift build --product rosepack >/dev/null
  bin=$(swift build --show-bin-path)
  ROSE_HEAT=$bin/rose-heat ROSEPACK=$bin/rosepack
fi
export ROSE_HEAT
mkdir -p "$out"
# FILL="0.80 0.85" runs the stress variant (the band close to full).
read -r low high <<< "${FILL:-0.60 0.85}"
"$ROSE_HEAT" generate --seed "$seed" --ops "$nops" --volume 64M --low-fill "$low" --high-fill "$high" \
  -o "$out/ops.jsonl" --summary "$out/workload.json"

logs=()
notes=()
for fs in ext4 btrfs; do
  "$here/run-kernel.sh" $fs "$out/ops.jsonl" "$out" "$seed"
  logs+=("$out/$fs.heat.json")
done
if grep -qw f2fs /proc/filesystems || modprobe f2fs 2>/dev/null; then
  notes+=(--note "f2fs is available on this kernel but not run by this script yet.")
else
  notes+=(--note "f2fs: this kernel ($(uname -r)) has no f2fs module (not in /proc/filesystems, modprobe f2fs fails), so it is not measured here; the anchor stays the seed experiment's 4.3 million host writes for 30,000 operations.")
fi

# RoseFS: a fresh 64 MiB image (rosepack convert of an empty directory), the stream through the engine.
empty=$(mktemp -d)
"$ROSEPACK" convert "$empty" -o "$out/rosefs.img" --size 64M >/dev/null
rmdir "$empty"
if "$ROSE_HEAT" rosefs "$out/ops.jsonl" --image "$out/rosefs.img" --seed "$seed" -o "$out/rosefs.heat.json"; then
  logs=("$out/rosefs.heat.json" "${logs[@]}")
  "$ROSEPACK" map "$out/rosefs.img" -o "$out/rosefs-map.svg" || true
else
  notes+=(--note "RoseFS: not run (the read-write engine is not in this build).")
fi
"$ROSE_HEAT" report --workload "$out/workload.json" --stream "$out/ops.jsonl" "${logs[@]}" "${notes[@]}" -o "$out/report"
