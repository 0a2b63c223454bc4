#!/usr/bin/env python3
# finish-window.py OLD NEW TARBALL PAIRS: wall time of the metadata phase (ImageBuilder.finish) of
# two rosepack builds, in alternating pairs. `perf record -F 2000 -g` samples each `convert`; the
# window runs from the first to the last sample with `finish` on its stack (a lane thread's samples
# lie inside it). Also prints each run's sampled span. Needs perf; images go to /dev/shm and are
# deleted.
import os, statistics, subprocess, sys

old, new, tar, pairs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.environ["SOURCE_DATE_EPOCH"] = "0"
data, img = "/dev/shm/finish-window.data", "/dev/shm/finish-window.img"
bins = {"old": old, "new": new}
res = {k: ([], []) for k in bins}
for i in range(pairs):
    for k in (["old", "new"] if i % 2 == 0 else ["new", "old"]):
        subprocess.run(["perf", "record", "-F", "2000", "-g", "-q", "-o", data, bins[k], "convert",
                        tar, "-o", img, "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        os.unlink(img)
        out = subprocess.run(["perf", "script", "-i", data, "-F", "time,ip,sym"],
                             capture_output=True, text=True).stdout
        times, inside = [], []
        for sample in out.split("\n\n"):
            lines = sample.strip().split("\n")
            if not lines or not lines[0].strip():
                continue
            t = float(lines[0].split()[0].rstrip(":"))
            times.append(t)
            if "ImageBuilderC6finish" in sample:
                inside.append(t)
        res[k][0].append(inside[-1] - inside[0])
        res[k][1].append(times[-1] - times[0])
os.unlink(data)
for k, (finish, span) in res.items():
    print(f"{k}: finish median {statistics.median(finish):.3f} s, run span median "
          f"{statistics.median(span):.3f} s ({pairs} runs)")
