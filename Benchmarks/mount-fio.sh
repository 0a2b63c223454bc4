#!/usr/bin/env bash
# Throughput through `rosepack mount` (FUSE, RoseFS engine) next to the same fio jobs on a tmpfs and on
# ext4 on a loop device, in one run, as ratios; then `rosepack update` of minbase to a changed minbase
# (bytes written, seconds) next to a full `rosepack convert` of the changed tree.
# Usage: Benchmarks/mount-fio.sh [TARBALL]   (default ../shared/datasets/minbase.tar.zst; needs root,
# /dev/fuse and a loop device). Build first: swift build -c release --product rosepack
set -euo pipefail
cd "$(dirname "$0")/.."
TAR=${1:-../shared/datasets/minbase.tar.zst}
ROSEPACK=$(realpath "${ROSEPACK:-.build/release/rosepack}")
SIZE=${FIO_SIZE:-64M}
RUNTIME=${FIO_RUNTIME:-10}
[ -x "$ROSEPACK" ] || { echo "build first: swift build -c release --product rosepack" >&2; exit 1; }
command -v fio >/dev/null && command -v fusermount3 >/dev/null || scripts/install-deps.sh
W=$(mktemp -d)
LOOP=""
cleanup() {
  mountpoint -q "$W/rose" && fusermount3 -u "$W/rose" && flock "$W/rose.img" true
  mountpoint -q "$W/ext4" && umount "$W/ext4"
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  mountpoint -q "$W/tmpfs" && umount "$W/tmpfs"
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/rose" "$W/ext4" "$W/tmpfs" "$W/empty"

# The three filesystems, each 512 MiB.
mount -t tmpfs -o size=512M tmpfs "$W/tmpfs"
truncate -s 512M "$W/ext4.img"
mkfs.ext4 -q -F "$W/ext4.img"
LOOP=$(losetup -f --show "$W/ext4.img")
mount "$LOOP" "$W/ext4"
"$ROSEPACK" convert "$W/empty" -o "$W/rose.img" --size 512M -q >/dev/null
"$ROSEPACK" mount "$W/rose.img" "$W/rose"

# MiB/s of one fio job: sequential 1 MiB and random 4 KiB, read and write, psync, no O_DIRECT (FUSE
# without direct_io serves through the page cache, as tmpfs and ext4 do).
fio_bw() { # dir rw bs
  local out
  out=$(fio --name=bench --directory="$1" --size="$SIZE" --rw="$2" --bs="$3" --ioengine=psync \
    --runtime="$RUNTIME" --time_based=0 --end_fsync=1 --invalidate=1 --output-format=json)
  python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; k="write" if sys.argv[1] in ("write","randwrite") else "read"; print("%.1f" % (j[k]["bw"]/1024))' "$2" <<<"$out"
}
echo "fio: $SIZE file, psync, one job (MiB/s; ratio = RoseFS/FUSE over the other)"
printf '%-16s %10s %10s %10s %12s %12s\n' job rosefs tmpfs ext4 rose/tmpfs rose/ext4
for job in "write 1M" "read 1M" "randwrite 4k" "randread 4k"; do
  set -- $job
  r=$(fio_bw "$W/rose" "$1" "$2"); t=$(fio_bw "$W/tmpfs" "$1" "$2"); e=$(fio_bw "$W/ext4" "$1" "$2")
  rm -f "$W"/rose/bench.* "$W"/tmpfs/bench.* "$W"/ext4/bench.*
  printf '%-16s %10s %10s %10s %12s %12s\n' "$1 $2" "$r" "$t" "$e" \
    "$(python3 -c "print('%.3f' % ($r/$t))")" "$(python3 -c "print('%.3f' % ($r/$e))")"
done
fusermount3 -u "$W/rose"
flock "$W/rose.img" true
"$ROSEPACK" fsck "$W/rose.img" | sed -n 1p  # sed reads on: no SIGPIPE under pipefail

# rosepack update: minbase in slots a and b, then b := minbase with a few packages' worth changed.
[ -f "$TAR" ] || { echo "skipped the update measurement: $TAR is absent"; exit 0; }
export SOURCE_DATE_EPOCH=1700000000
mkdir "$W/v1"
tar --zstd -xpf "$TAR" -C "$W/v1" --numeric-owner
cp -a "$W/v1" "$W/v2"
# "A few packages": rewrite every file of four packages' worth of /usr/bin and /usr/lib entries
# (a byte flipped per 64 KiB, as a rebuilt binary differs), drop one directory, add one.
changed=$(cd "$W/v2" && find usr/bin usr/sbin -type f -size +20k | sort | head -n 40)
for f in $changed; do
  python3 - "$W/v2/$f" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
for i in range(0, len(b), 65536):
    b[i] ^= 0xFF
open(p, 'wb').write(bytes(b))
PY
done
rm -rf "$W/v2/usr/share/doc"
mkdir -p "$W/v2/opt/new" && head -c 2000000 /dev/urandom >"$W/v2/opt/new/blob"
changed_bytes=$(cd "$W/v2" && du -cb $changed opt/new/blob | tail -1 | cut -f1)
"$ROSEPACK" convert "$W/v1" -o "$W/ab.img" --subvolumes a,b --size 1G -q >/dev/null
cp --sparse=always "$W/ab.img" "$W/ab0.img"
start=$(date +%s.%N)
"$ROSEPACK" convert "$W/v2" -o "$W/full.img" --size 1G -q >/dev/null
convert_s=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $start))")
full_bytes=$("$ROSEPACK" inspect "$W/full.img" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["usedBytes"])')
"$ROSEPACK" update "$W/ab.img" --slot b "$W/v2" --json -q >"$W/update.json"
"$ROSEPACK" fsck "$W/ab.img" | sed -n 1p
"$ROSEPACK" export "$W/ab0.img" --subvolume a -o "$W/a0.tar"
"$ROSEPACK" export "$W/ab.img" --subvolume a -o "$W/a1.tar"
cmp -s "$W/a0.tar" "$W/a1.tar" && echo "slot a export unchanged"
python3 - "$W/update.json" "$convert_s" "$full_bytes" "$changed_bytes" <<'PY'
import json, sys
u = json.load(open(sys.argv[1]))
conv_s, full, changed = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("update of minbase -> changed minbase (%d files, %.1f MiB of content; %.1f MiB in changed or new files)"
      % (u["files"], u["contentBytes"] / 2**20, changed / 2**20))
print("%-34s %12s %10s" % ("", "MiB written", "seconds"))
print("%-34s %12.2f %10.2f" % ("rosepack update --slot b (file data)", u["dataBytesWritten"] / 2**20, u["seconds"]))
print("%-34s %12.2f %10s" % ("rosepack update --slot b (all blocks)", u["deviceBytesWritten"] / 2**20, ""))
print("%-34s %12.2f %10.2f" % ("rosepack convert (whole image used)", full / 2**20, conv_s))
PY
