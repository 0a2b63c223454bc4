#!/usr/bin/env bash
# One kernel filesystem under the write-heat workload: mkfs (defaults) on a 64 MiB loop device, mount,
# run the stream with a trace marker per operation while tracefs records every completed block request
# of that loop device, unmount, then turn the trace into a heat log checked against the device's stats.
#
#   Benchmarks/heat/run-kernel.sh FS OPS.jsonl OUTDIR [SEED]      (FS: ext4 or btrfs; needs root)
set -euo pipefail
fs=$1 ops=$2 out=$3 seed=${4:-1}
here=$(cd "$(dirname "$0")" && pwd)
heat=${ROSE_HEAT:-$here/../../.build/debug/rose-heat}
size=$((64 << 20))
mkdir -p "$out"
[ "$(id -u)" -eq 0 ] || { echo "run-kernel.sh: needs root (loop devices, mount, tracefs)" >&2; exit 1; }
grep -qw "$fs" /proc/filesystems || modprobe "$fs" 2>/dev/null || true
grep -qw "$fs" /proc/filesystems || { echo "run-kernel.sh: this kernel has no $fs" >&2; exit 2; }

# The backing file lives in /dev/shm so that fsync on the loop device costs memory copies, not disk
# flushes; the counts are the same either way (they are taken above the backing file).
img=/dev/shm/rose-heat-$fs.img
mnt=/mnt/rose-heat-$fs
rm -f "$img" && truncate -s $size "$img"
case $fs in
  ext4) mkfs.ext4 -q -F "$img" ;;
  # btrfs-progs 6.2 refuses 64 MiB with its defaults ("minimum size for each btrfs device is
  # 114294784"); mixed block groups, which btrfs recommends below 1 GiB, is the one option added.
  btrfs) mkfs.btrfs -q -f --mixed "$img" >/dev/null ;;
  *) echo "run-kernel.sh: unknown filesystem $fs (ext4, btrfs)" >&2; exit 2 ;;
esac
dev=$(losetup --show -f "$img")
name=$(basename "$dev")
T=/sys/kernel/tracing
[ -e $T/trace_marker ] || mount -t tracefs nodev $T
cleanup() {
  echo 0 > $T/tracing_on || true
  echo 0 > $T/events/block/block_rq_complete/enable || true
  echo 0 > $T/events/block/block_rq_complete/filter || true
  [ -n "${reader:-}" ] && kill "$reader" 2>/dev/null || true
  mountpoint -q "$mnt" && umount "$mnt" || true
  losetup -d "$dev" 2>/dev/null || true
  rm -f "$img"
}
trap cleanup EXIT

maj=$((16#$(stat -c %t "$dev"))); min=$((16#$(stat -c %T "$dev")))
echo 0 > $T/tracing_on
echo "dev == $(( (maj << 20) | min ))" > $T/events/block/block_rq_complete/filter
echo 65536 > $T/buffer_size_kb
echo > $T/trace
echo 1 > $T/events/block/block_rq_complete/enable
cat /sys/block/"$name"/stat > "$out/$fs.stat-before"
cat $T/trace_pipe > "$out/$fs.trace" &
reader=$!
echo 1 > $T/tracing_on

# mkfs wrote through the backing file, not the loop device, so it is not counted; the mount is (op 0).
mkdir -p "$mnt"
mount "$dev" "$mnt"
"$heat" apply "$ops" --root "$mnt" --marker $T/trace_marker --seed "$seed" -o "$out/$fs.outcome.json"
df -B1 "$mnt" | tail -1 > "$out/$fs.df"
umount "$mnt"
sync
sleep 1
echo 0 > $T/tracing_on
cat /sys/block/"$name"/stat > "$out/$fs.stat-after"
sleep 1
kill "$reader"; wait "$reader" 2>/dev/null || true
reader=
echo 0 > $T/events/block/block_rq_complete/enable

extra=()
case $fs in
  ext4)
    dumpe2fs "$dev" > "$out/ext4.dumpe2fs" 2>/dev/null
    debugfs -R 'blocks <8>' "$dev" > "$out/ext4.journal" 2>/dev/null
    extra=(--dumpe2fs "$out/ext4.dumpe2fs" --journal "$out/ext4.journal")
    ;;
  btrfs)
    btrfs inspect-internal dump-tree -t chunk "$dev" > "$out/btrfs.chunks" 2>/dev/null
    extra=(--btrfs-chunks "$out/btrfs.chunks")
    ;;
esac
nops=$(wc -l < "$ops")
"$heat" ingest-trace --fs "$fs" --trace "$out/$fs.trace" --blocks $((size / 4096)) --operations "$nops" \
  --stat-before "$out/$fs.stat-before" --stat-after "$out/$fs.stat-after" \
  --outcome "$out/$fs.outcome.json" "${extra[@]}" \
  --note "mkfs.$fs defaults$([ $fs = btrfs ] && echo " + --mixed") ($(mkfs.$fs -V 2>&1 | head -1)), kernel $(uname -r)" -o "$out/$fs.heat.json"
