#!/usr/bin/env bash
# R3: how much of a fresh 64 MiB volume holds file data. Finds, by bisection with `rosepack convert
# --size 64M`, the largest single file and the largest number of 1 KiB files that fit, and the cost of
# subvolume B (snapshot) on the minbase tarball. Usage: Benchmarks/capacity.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROSEPACK=${ROSEPACK:-.build/release/rosepack}
[ -x "$ROSEPACK" ] || { echo "build first: swift build -c release --product rosepack" >&2; exit 1; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
VOL=$((64 << 20))
fits() { "$ROSEPACK" convert "$1" -o "$W/x.img" --size 64M -q >/dev/null 2>&1; }

# One large file: bisection on its size in 4 KiB steps.
lo=0; hi=$((VOL / 4096))
while ((hi - lo > 1)); do
  mid=$(((lo + hi) / 2)); rm -rf "$W/big"; mkdir "$W/big"; truncate -s $((mid * 4096)) "$W/big/f"
  # A real file, not a hole: write non-zero data so every block is stored.
  python3 -c "import sys; f=open(sys.argv[1],'r+b'); b=b'\x5a'*(1<<20); n=int(sys.argv[2]);
while n>0: k=min(n,len(b)); f.write(b[:k]); n-=k" "$W/big/f" $((mid * 4096))
  if fits "$W/big"; then lo=$mid; else hi=$mid; fi
done
big=$((lo * 4096))
printf 'one file:        %d bytes of %d = %.2f%% of the volume\n' "$big" "$VOL" "$(echo "$big*100/$VOL" | bc -l)"

# Many 1 KiB files, 1000 per directory.
mk() { rm -rf "$W/many"; python3 - "$W/many" "$1" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
data = b'\x33' * 1024
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0: os.makedirs(d)
    with open(os.path.join(d, f"f{i:06d}"), "wb") as f: f.write(data)
PY
}
lo=0; hi=65536
while ((hi - lo > 64)); do
  mid=$(((lo + hi) / 2)); mk "$mid"
  if fits "$W/many"; then lo=$mid; else hi=$mid; fi
done
printf '1 KiB files:     %d files, %d bytes = %.2f%% of the volume\n' "$lo" "$((lo * 1024))" "$(echo "$lo*1024*100/$VOL" | bc -l)"

# Cost of B: used bytes with subvolumes a vs a,b.
TAR=../shared/datasets/minbase.tar.zst
if [ -f "$TAR" ]; then
  used() { "$ROSEPACK" convert "$TAR" -o "$W/m.img" --subvolumes "$1" -q >/dev/null && "$ROSEPACK" inspect "$W/m.img" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["usedBytes"])'; }
  a=$(used a); ab=$(used a,b)
  echo "subvolume B as a snapshot of A (minbase): $a -> $ab bytes used, B costs $((ab - a)) bytes"
fi
