#!/usr/bin/env bash
# Side-by-side benchmark: rosepack against mkfs.erofs, mke2fs -d, mksquashfs, mkfs.btrfs --rootdir and
# mkfs.f2fs + sload.f2fs on the same rootfs, in one run. Reports wall time (median of N), peak RSS,
# image bytes and ratios. Usage: Benchmarks/compare.sh [TARBALL] [RUNS]
# Default tarball: ../shared/datasets/minbase.tar.zst. Needs a release build:
#   swift build -c release --product rosepack
set -euo pipefail
cd "$(dirname "$0")/.."
TAR=${1:-../shared/datasets/minbase.tar.zst}
RUNS=${2:-3}
ROSEPACK=${ROSEPACK:-.build/release/rosepack}
[ -x "$ROSEPACK" ] || { echo "build first: swift build -c release --product rosepack" >&2; exit 1; }
apt_need=(erofs-utils squashfs-tools btrfs-progs f2fs-tools e2fsprogs libarchive-tools time)
scripts/install-deps.sh
missing=()
for p in "${apt_need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
((${#missing[@]})) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir "$W/root"
bsdtar -xpf "$TAR" -C "$W/root" --numeric-owner
export SOURCE_DATE_EPOCH=1700000000

# median wall seconds and max RSS (KiB) of a command run $RUNS times; prints "secs rss"
measure() {
  local t=() r=()
  for _ in $(seq "$RUNS"); do
    rm -f "$W/out.img"
    /usr/bin/time -f "%e %M" -o "$W/time" "$@" >/dev/null 2>&1
    read -r s m < "$W/time"; t+=("$s"); r+=("$m")
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END{printf "%s ", a[int((NR+1)/2)]}'
  printf '%s\n' "${r[@]}" | sort -n | tail -1
}

files=$(python3 - "$W/root" <<'PY'
import os, sys
seen=set(); total=0
for d, dirs, fs in os.walk(sys.argv[1]):
    for f in fs:
        st=os.lstat(os.path.join(d, f))
        if os.path.isfile(os.path.join(d,f)) and not os.path.islink(os.path.join(d,f)) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino)); total+=st.st_size
print(total)
PY
)
echo "input: $TAR, file data counted once per inode: $files bytes, runs: $RUNS (median wall time)"
printf '%-34s %9s %9s %14s %9s\n' tool "wall s" "RSS MiB" "image bytes" "/ data"
row() { printf '%-34s %9s %9.1f %14s %9.3f\n' "$1" "$2" "$(echo "$3/1024" | bc -l)" "$4" "$(echo "$4/$files" | bc -l)"; }

read -r s m < <(measure bsdtar -xOf "$TAR"); printf '%-34s %9s %9.1f %14s %9s\n' "bsdtar -xOf (read only)" "$s" "$(echo "$m/1024" | bc -l)" - -
base=$s
read -r s m < <(measure "$ROSEPACK" convert "$TAR" -o "$W/out.img" -q)
used=$("$ROSEPACK" inspect "$W/out.img" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["usedBytes"])')
row "rosepack convert (tarball)" "$s" "$m" "$used"; rose=$s
echo "  rosepack / bsdtar time: $(echo "$rose/$base" | bc -l | cut -c1-5)"
read -r s m < <(measure "$ROSEPACK" convert "$W/root" -o "$W/out.img" -q)
used=$("$ROSEPACK" inspect "$W/out.img" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["usedBytes"])')
row "rosepack convert (directory)" "$s" "$m" "$used"
read -r s m < <(measure mkfs.erofs -T "$SOURCE_DATE_EPOCH" "$W/out.img" "$W/root")
mkfs.erofs -T "$SOURCE_DATE_EPOCH" "$W/out.img" "$W/root" >/dev/null 2>&1; row "mkfs.erofs (uncompressed)" "$s" "$m" "$(stat -c %s "$W/out.img")"
read -r s m < <(measure mksquashfs "$W/root" "$W/out.img" -noI -noD -noF -noX -no-progress -quiet)
mksquashfs "$W/root" "$W/out.img" -noI -noD -noF -noX -no-progress -quiet >/dev/null 2>&1; row "mksquashfs -noI -noD -noF -noX" "$s" "$m" "$(stat -c %s "$W/out.img")"
# mke2fs needs a size: the smallest that works, found by bisection once, then timed.
lo=$((files / 1024)); hi=$((files * 2 / 1024))
while ((hi - lo > 1024)); do mid=$(((lo + hi) / 2)); rm -f "$W/e.img"
  if mke2fs -q -t ext4 -d "$W/root" "$W/e.img" "${mid}k" >/dev/null 2>&1; then hi=$mid; else lo=$mid; fi; done
read -r s m < <(measure mke2fs -q -t ext4 -d "$W/root" "$W/out.img" "${hi}k"); row "mke2fs -t ext4 -d (smallest)" "$s" "$m" "$((hi * 1024))"
lo=$((files / 1024)); hi=$((files * 3 / 1024))
while ((hi - lo > 4096)); do mid=$(((lo + hi) / 2)); rm -f "$W/f.img"; truncate -s "${mid}k" "$W/f.img"
  if mkfs.f2fs -q "$W/f.img" >/dev/null 2>&1 && sload.f2fs -f "$W/root" "$W/f.img" >/dev/null 2>&1; then hi=$mid; else lo=$mid; fi; done
f2() { rm -f "$W/out.img"; truncate -s "${hi}k" "$W/out.img"; mkfs.f2fs -q "$W/out.img" && sload.f2fs -f "$W/root" "$W/out.img"; }
export -f f2; export W hi
read -r s m < <(measure bash -c f2); row "mkfs.f2fs + sload.f2fs (smallest)" "$s" "$m" "$((hi * 1024))"
read -r s m < <(measure mkfs.btrfs -q --rootdir "$W/root" --shrink "$W/out.img")
truncate -s 0 "$W/out.img"; mkfs.btrfs -q --rootdir "$W/root" --shrink "$W/out.img" >/dev/null 2>&1 || true
row "mkfs.btrfs --rootdir --shrink" "$s" "$m" "$(stat -c %s "$W/out.img")"
