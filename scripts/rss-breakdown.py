#!/usr/bin/env python3
"""Peak-RSS breakdown of one command: where the resident pages are at the moment of its peak.

Runs the command, samples /proc/PID/smaps every few milliseconds, keeps the sample with the most
resident memory, and prints it grouped by mapping: each shared object's text (r-x), read-only and
relocated data (r--, the RELRO part: .data.rel.ro and the GOT once relocated), writable data (rw-),
and the anonymous kinds ([heap], [stack], other anonymous mappings: thread stacks, malloc's thread
arenas and large buffers). Private_Dirty is what the process alone pays; Rss includes clean shared
file pages that another process may share.

    scripts/rss-breakdown.py [--interval-ms N] [--json] [--anon] -- rosepack convert in.tar.zst -o out.img --quiet

--anon also lists each anonymous mapping of the peak sample (size and resident KiB, largest first),
to tell the zstd window, buffers, thread stacks (each follows a 4 KiB guard page) and malloc's
thread arenas apart.

The sampler sees the peak only to within its interval; `/usr/bin/time -f %M` gives the exact peak.
"""
import json
import os
import subprocess
import sys
import time


def read_smaps(pid):
    maps = []
    current = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                fields = line.split()
                if not fields:
                    continue
                if "-" in fields[0] and not fields[0].endswith(":"):
                    addr = fields[0].split("-")
                    current = {
                        "start": int(addr[0], 16), "end": int(addr[1], 16),
                        "perms": fields[1], "path": fields[5] if len(fields) > 5 else "",
                        "Rss": 0, "Private_Dirty": 0, "Anonymous": 0,
                    }
                    maps.append(current)
                elif current is not None and fields[0][:-1] in ("Rss", "Private_Dirty", "Anonymous"):
                    current[fields[0][:-1]] = int(fields[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return maps


def classify(m):
    path = m["path"]
    if path.startswith("[") or not path:
        if path == "[heap]":
            return "anon", "[heap] (brk: main arena)"
        if path == "[stack]":
            return "anon", "[stack] (main thread)"
        if path in ("[vvar]", "[vdso]", "[vsyscall]"):
            return "anon", "vdso/vvar"
        size_kib = (m["end"] - m["start"]) // 1024
        if size_kib in (8192 + 4, 8192, 512 + 4):
            return "anon", "anonymous: thread stack-sized"
        if size_kib == 65536 or (size_kib < 65536 and size_kib >= 61440):
            return "anon", "anonymous: malloc thread arena (64 MiB reservation)"
        return "anon", "anonymous: other (mmap'd buffers, runtime)"
    name = os.path.basename(path)
    kind = {"r-xp": "text", "r--p": "rodata+relro", "rw-p": "data/bss", "---p": "guard"}.get(
        m["perms"], m["perms"])
    return name, kind


def summarize(maps):
    groups = {}
    for m in maps:
        name, kind = classify(m)
        g = groups.setdefault((name, kind), {"Rss": 0, "Private_Dirty": 0, "count": 0})
        g["Rss"] += m["Rss"]
        g["Private_Dirty"] += m["Private_Dirty"]
        g["count"] += 1
    return groups


def main():
    args = sys.argv[1:]
    interval = 0.002
    as_json = False
    list_anon = False
    while args and args[0] != "--":
        if args[0] == "--interval-ms":
            interval = float(args[1]) / 1000
            args = args[2:]
        elif args[0] == "--anon":
            list_anon = True
            args = args[1:]
        elif args[0] == "--json":
            as_json = True
            args = args[1:]
        else:
            sys.exit(f"unknown option {args[0]}")
    args = args[1:]
    if not args:
        sys.exit(__doc__)
    # With --json, the command's own output goes to stderr so that stdout is one JSON document.
    proc = subprocess.Popen(args, stdout=sys.stderr if as_json else None)
    best, best_rss = None, -1
    while proc.poll() is None:
        maps = read_smaps(proc.pid)
        if maps:
            total = sum(m["Rss"] for m in maps)
            if total > best_rss:
                best, best_rss = maps, total
        time.sleep(interval)
    if best is None:
        sys.exit("no sample taken (the command ended too fast)")
    groups = summarize(best)
    if as_json:
        print(json.dumps({f"{k[0]} {k[1]}": v for k, v in groups.items()}, indent=1, sort_keys=True))
        return
    print(f"sampled peak: {best_rss} KiB Rss, "
          f"{sum(m['Private_Dirty'] for m in best)} KiB Private_Dirty (exit status {proc.returncode})")
    print(f"{'mapping':60} {'Rss KiB':>8} {'Dirty KiB':>9}")
    for (name, kind), g in sorted(groups.items(), key=lambda kv: -kv[1]["Rss"]):
        if g["Rss"] == 0:
            continue
        print(f"{name + ' ' + kind:60} {g['Rss']:8} {g['Private_Dirty']:9}")
    if list_anon:
        print(f"\nanonymous mappings at the peak: {'size KiB':>10} {'Rss KiB':>8}  (previous mapping)")
        anon = [(i, m) for i, m in enumerate(best) if not m["path"] and m["Rss"] > 0]
        for i, m in sorted(anon, key=lambda im: -im[1]["Rss"]):
            before = best[i - 1] if i > 0 else None
            guard = "after a guard page" if before and before["perms"] == "---p" and \
                before["end"] == m["start"] else ""
            size = (m["end"] - m["start"]) // 1024
            print(f"  {m['start']:x} {m['perms']} {size:10} {m['Rss']:8}  {guard}")


if __name__ == "__main__":
    main()
