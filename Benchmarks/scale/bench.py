#!/usr/bin/env python3
"""Scale benchmark: rosepack against the floor (bsdtar -xOf) and the peers, in one run.

    swift build -c release --product rosepack
    Benchmarks/scale/bench.py                      # full run, writes Benchmarks/scale/results/
    Benchmarks/scale/bench.py --quick              # small sets, 3 runs: a few minutes
    Benchmarks/scale/bench.py --smoke --out DIR    # tiny sets, 1 run (the test suite runs this)

Datasets (generated deterministically under the work directory, removed at the end):
  minbase    ../shared/datasets/minbase.tar.zst (skipped if absent), tarball and extracted tree
  small200k  200,000 files of 1-1024 bytes in directories of 1,000 (tarball and tree)
  large      a few files of 0.5-2 GB of random bytes (--large-sizes; smaller with --quick)
  scale-N    N entries (files of 0-64 bytes, directories of 1,000) for N in --entries
  disk-S     a 64 MiB ESP with two files + a root holding one small file, as a disk of size S
             (1 GiB, 64 GiB, 1 TiB): rosepack build, genimage, systemd-repart

Tools are named by keys for --only / --skip (comma-separated): floor, rosepack, erofs, squashfs,
ext4, btrfs, f2fs, genimage, repart. A command that runs past its timeout (--timeout, or
--scale-timeout on the scale-N sets) is killed and reported as "timeout"; a peer that timed out on
a scale set is not run on the larger ones (reported "skipped"), so a run with 1,000,000 entries
completes whatever the slowest peer does. Generate on a fast file system (--work /dev/shm).

Every command is timed with wait4(): wall seconds, CPU seconds (user + system, children
included) and peak RSS (the largest of the process tree). "image" is the output's apparent size,
"alloc" the bytes it occupies on the host (sparse files). Rows are medians of --runs runs; the
headline convert-vs-floor pairs (minbase, small200k) alternate the two commands --pairs times and
report the median of the per-pair ratios. Output: results.md, results.json and SVG figures of the
scaling curves in --out.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOOL_KEYS = ["floor", "rosepack", "erofs", "squashfs", "ext4", "btrfs", "f2fs", "genimage",
             "repart"]
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EPOCH = "1700000000"


def run_measured(cmd, timeout, env=None, cwd=None):
    """Runs cmd (a list, or a string for sh -c) under GNU time; returns wall, cpu, rss (MiB), ok.

    GNU time is the direct child so that the peak RSS is the command's own (a child forked from
    this Python process would inherit Python's high-water mark across exec). CPU and RSS include
    the command's children (sh -c pipelines)."""
    if isinstance(cmd, str):
        cmd = ["sh", "-c", cmd]
    full_env = dict(os.environ)
    full_env["SOURCE_DATE_EPOCH"] = EPOCH
    if env:
        full_env.update(env)
    fd, timefile = tempfile.mkstemp(prefix="bench-time-")
    os.close(fd)
    start = time.monotonic()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%e %U %S %M", "-o", timefile] + cmd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env,
                            cwd=cwd, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        os.unlink(timefile)
        return {"wall": None, "cpu": None, "rss": None, "ok": False, "error": "timeout"}
    wall = time.monotonic() - start
    with open(timefile) as f:
        fields = f.read().split()
    os.unlink(timefile)
    ok = proc.returncode == 0
    try:
        _, user, system, rss = fields[-4:]
        cpu, rss = float(user) + float(system), int(rss) / 1024
    except ValueError:
        cpu, rss, ok = None, None, False
    return {"wall": wall, "cpu": cpu, "rss": rss, "ok": ok,
            "error": None if ok else err.decode(errors="replace").strip()[-300:]}


def file_sizes(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, None
    return st.st_size, st.st_blocks * 512


def median_of(results):
    good = [r for r in results if r["ok"]]
    if not good:
        return results[-1]
    return {"wall": statistics.median(r["wall"] for r in good),
            "cpu": statistics.median(r["cpu"] for r in good),
            "rss": max(r["rss"] for r in good), "ok": True, "error": None, "runs": len(good)}


class Bench:
    def __init__(self, args):
        self.args = args
        os.makedirs(args.work, exist_ok=True)  # --work may name a directory not made yet
        self.work = tempfile.mkdtemp(prefix="rosepack-scale-", dir=args.work)
        self.rosepack = os.path.abspath(args.rosepack)
        self.results = {"machine": machine(), "rosepack": self.rosepack, "datasets": [],
                        "headline": []}
        # tool -> the scale set it timed out on (larger sets skip it).
        self.timed_out = {}

    def save(self):
        """Writes what was measured so far (a long run that is stopped keeps its results)."""
        save(self.results, self.args)

    def wanted(self, key):
        """--only / --skip: whether the tool with this key runs."""
        a = self.args
        return (not a.only or key in a.only) and key not in a.skip

    def tool(self, name):
        return shutil.which(name) or next(
            (d + "/" + name for d in ("/usr/sbin", "/sbin") if os.access(d + "/" + name, os.X_OK)),
            None)

    def log(self, msg):
        print(msg, file=sys.stderr, flush=True)

    # ---- datasets -------------------------------------------------------------------------

    def make_tree(self, name, count, size_lo, size_hi, seed):
        root = os.path.join(self.work, name)
        rng = random.Random(seed)
        os.makedirs(root)
        data = 0
        for i in range(count):
            d = os.path.join(root, "d%04d" % (i // 1000))
            if i % 1000 == 0:
                os.mkdir(d)
            n = rng.randint(size_lo, size_hi)
            with open(os.path.join(d, "f%06d" % i), "wb") as f:
                f.write(rng.randbytes(n))
            data += n
        return root, data

    def tar_of(self, root):
        tar = root + ".tar"
        subprocess.run(["bsdtar", "-cf", tar, "--numeric-owner", "-C", root, "."], check=True)
        return tar

    def make_large(self, sizes):
        root = os.path.join(self.work, "large")
        os.makedirs(root)
        data = 0
        for i, size in enumerate(sizes):
            with open(os.path.join(root, "big%d.bin" % i), "wb") as f:
                left = size
                while left > 0:
                    n = min(left, 16 << 20)
                    f.write(os.urandom(n))
                    left -= n
            data += size
        return root, data

    # ---- runners --------------------------------------------------------------------------

    def measure(self, cmd, out, runs, env=None, cwd=None, setup=None, timeout=None):
        results = []
        for _ in range(runs):
            cleanup(out)
            if setup:
                setup()
            results.append(run_measured(cmd, timeout or self.args.timeout, env=env, cwd=cwd))
            if not results[-1]["ok"]:
                break
        row = median_of(results)
        row["image"], row["alloc"] = file_sizes(out) if out and os.path.isfile(out) else (None, None)
        return row

    def fs_peers(self, tree, data):
        """(name, command, output) for the filesystem peers on a directory tree."""
        out = os.path.join(self.work, "peer.img")
        # Fixed-size formats get room for the data, the inodes and the metadata.
        entries = sum(len(f) + len(d) for _, d, f in os.walk(tree))
        size_mib = max(256, (data * 2 + entries * 4096) // (1 << 20) + 128)
        peers = []
        if self.tool("mkfs.erofs") and self.wanted("erofs"):
            peers.append(("mkfs.erofs", [self.tool("mkfs.erofs"), "-T" + EPOCH, out, tree], out))
        if self.tool("mksquashfs") and self.wanted("squashfs"):
            peers.append(("mksquashfs", [self.tool("mksquashfs"), tree, out, "-noappend",
                                         "-no-progress", "-quiet"], out))
        if self.tool("mke2fs") and self.wanted("ext4"):
            peers.append(("mke2fs -d", [self.tool("mke2fs"), "-q", "-F", "-t", "ext4", "-d", tree,
                                        # -N: one inode per entry plus slack; mke2fs's default
                                        # ratio (one per 16 KiB) runs out on trees of tiny files.
                                        "-N", str(entries + entries // 8 + 1024),
                                        "-E", "root_owner=0:0", out, "%dM" % size_mib], out))
        if self.tool("mkfs.btrfs") and self.wanted("btrfs"):
            peers.append(("mkfs.btrfs --rootdir", "truncate -s %dM %s && %s -q -f --rootdir %s --shrink %s"
                          % (size_mib, out, self.tool("mkfs.btrfs"), tree, out), out))
        if self.tool("mkfs.f2fs") and self.tool("sload.f2fs") and self.wanted("f2fs"):
            peers.append(("mkfs.f2fs + sload.f2fs", "truncate -s %dM %s && %s -q -f %s && %s -f %s %s"
                          % (max(size_mib, 512), out, self.tool("mkfs.f2fs"), out,
                             self.tool("sload.f2fs"), tree, out), out))
        return peers

    def convert_row(self, input_path, runs, timeout=None):
        out = os.path.join(self.work, "rose.img")
        return self.measure([self.rosepack, "convert", input_path, "-o", out, "-q"], out, runs,
                            timeout=timeout)

    def headline(self, name, tar, pairs):
        """Paired runs: floor then convert, `pairs` times; median of the per-pair ratios."""
        if not (self.wanted("floor") and self.wanted("rosepack")):
            return
        out = os.path.join(self.work, "rose.img")
        floors, converts, ratios = [], [], []
        for _ in range(pairs):
            f = run_measured(["bsdtar", "-xOf", tar], self.args.timeout)
            cleanup(out)
            c = run_measured([self.rosepack, "convert", tar, "-o", out, "-q"], self.args.timeout)
            if not (f["ok"] and c["ok"]):
                break
            floors.append(f["wall"])
            converts.append(c["wall"])
            ratios.append(c["wall"] / f["wall"])
        if not ratios:
            return
        self.results["headline"].append({
            "dataset": name, "pairs": len(ratios), "floorWall": statistics.median(floors),
            "convertWall": statistics.median(converts), "ratio": statistics.median(ratios),
            "ratioMin": min(ratios), "ratioMax": max(ratios)})

    def tree_dataset(self, name, tree, data, tar, runs, entries=None, timeout=None):
        """timeout: per command (default --timeout). A tool in self.timed_out (it timed out on a
        smaller scale set) is not run again: its row says so."""
        self.log("dataset %s" % name)
        rows = []

        def row(tool, measure):
            if tool in self.timed_out:
                rows.append((tool, {"wall": None, "cpu": None, "rss": None, "ok": False,
                                    "error": "skipped: timeout on %s" % self.timed_out[tool]}))
                return
            self.log("  %s" % tool)
            r = measure()
            if r.get("error") == "timeout":
                r["error"] = "timeout (%d s)" % (timeout or self.args.timeout)
                if timeout:
                    self.timed_out[tool] = name
            rows.append((tool, r))
        if tar and self.wanted("floor"):
            row("floor: bsdtar -xOf", lambda: self.measure(["bsdtar", "-xOf", tar], None, runs,
                                                           timeout=timeout))
        if self.wanted("rosepack"):
            if tar:
                row("rosepack convert (tarball)", lambda: self.convert_row(tar, runs, timeout))
            row("rosepack convert (directory)", lambda: self.convert_row(tree, runs, timeout))
        for peer, cmd, out in self.fs_peers(tree, data):
            row(peer, lambda: self.measure(cmd, out, runs, timeout=timeout))
        cleanup(os.path.join(self.work, "peer.img"))
        cleanup(os.path.join(self.work, "rose.img"))
        self.results["datasets"].append({
            "name": name, "kind": "tree", "entries": entries, "dataBytes": data,
            "rows": [dict(tool=t, **r) for t, r in rows]})

    # ---- disks ----------------------------------------------------------------------------

    def disk_dataset(self, size_name, size_bytes, runs):
        self.log("dataset disk-%s" % size_name)
        d = os.path.join(self.work, "disk-" + size_name)
        os.makedirs(d + "/esp/EFI/BOOT")
        os.makedirs(d + "/rootfs/etc")
        with open(d + "/esp/EFI/BOOT/BOOTX64.EFI", "wb") as f:
            f.write(random.Random(7).randbytes(200_000))
        with open(d + "/esp/loader.conf", "w") as f:
            f.write("timeout 3\n")
        with open(d + "/rootfs/etc/hostname", "w") as f:
            f.write("bench\n")
        rows = []
        # rosepack
        with open(d + "/disk.conf", "w") as f:
            f.write("""[Image]
Name=disk
SectorSize=512
Alignment=1M
DiskSize=%s
SourceDateEpoch=%s

[Partition]
Type=esp
Label=esp
Format=vfat
SizeMinBytes=64M
SizeMaxBytes=64M
CopyFiles=esp:/

[Partition]
Type=root
Label=root
Format=rosefs
Grow=yes
Directory=rootfs:/

[Output]
Formats=raw zst bmap manifest
""" % (size_bytes, EPOCH))
        out = d + "/out"
        if self.wanted("rosepack"):
            r = self.measure([self.rosepack, "build", d + "/disk.conf", "-o", out, "--json"],
                             None, runs, setup=lambda: shutil.rmtree(out, True))
            if r["ok"]:
                names = os.listdir(out)
                img = next((n for n in names if n.endswith(".img")), None)
                zst = next((n for n in names if n.endswith(".img.zst")), None)
                r["image"], r["alloc"] = file_sizes(os.path.join(out, img)) if img else (None, None)
                r["zst"] = file_sizes(os.path.join(out, zst))[0] if zst else None
            rows.append(("rosepack build (raw zst bmap manifest)", r))
            shutil.rmtree(out, True)
        # genimage: vfat 64 MiB + ext4 root over the rest (genimage 16 needs the sizes spelled out)
        if self.tool("genimage") and self.tool("mkfs.vfat") and self.tool("mcopy") \
                and self.wanted("genimage"):
            root_size = size_bytes - (64 << 20) - (2 << 20)
            with open(d + "/genimage.cfg", "w") as f:
                f.write("""image esp.vfat { vfat { files = { "%s/esp/EFI", "%s/esp/loader.conf" } } size = 64M }
image root.ext4 { ext4 { label = "root" use-mke2fs = true } size = %d mountpoint = "/" }
image disk.img { hdimage { partition-table-type = "gpt" }
  partition esp { image = "esp.vfat" partition-type-uuid = "U" offset = 1M }
  partition root { image = "root.ext4" partition-type-uuid = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709" } }
""" % (d, d, root_size // (1 << 20) * (1 << 20)))
            gout = d + "/gen-out"

            def gsetup():
                for p in (gout, d + "/gen-tmp"):
                    shutil.rmtree(p, True)
                os.makedirs(gout)
            r = self.measure([self.tool("genimage"), "--config", d + "/genimage.cfg", "--rootpath",
                              d + "/rootfs", "--tmppath", d + "/gen-tmp", "--inputpath", gout,
                              "--outputpath", gout], gout + "/disk.img", runs, setup=gsetup)
            if r["ok"]:
                r["image"], r["alloc"] = file_sizes(gout + "/disk.img")
            rows.append(("genimage (vfat + ext4)", r))
            shutil.rmtree(gout, True)
            shutil.rmtree(d + "/gen-tmp", True)
        if self.tool("systemd-repart") and self.wanted("repart"):
            defs = d + "/repart.d"
            os.makedirs(defs)
            with open(defs + "/10-esp.conf", "w") as f:
                # systemd 252 fills a vfat partition by mounting it, which needs the vfat kernel
                # module (absent in containers): its ESP is formatted but left empty.
                f.write("[Partition]\nType=esp\nFormat=vfat\nSizeMinBytes=64M\nSizeMaxBytes=64M\n")
            with open(defs + "/20-root.conf", "w") as f:
                f.write("[Partition]\nType=root\nFormat=ext4\nCopyFiles=%s/rootfs:/\n" % d)
            img = d + "/repart.img"
            r = self.measure([self.tool("systemd-repart"), "--definitions", defs, "--empty=create",
                              "--size=%d" % size_bytes, "--dry-run=no", "--seed",
                              "0d1a7a3b-7f3e-4a39-9a0e-6d1f0b8e2c11", img], img, runs)
            rows.append(("systemd-repart (empty vfat + ext4)", r))
            cleanup(img)
        self.results["datasets"].append({
            "name": "disk-" + size_name, "kind": "disk", "diskBytes": size_bytes,
            "rows": [dict(tool=t, **r) for t, r in rows]})
        shutil.rmtree(d, True)

    # ---- the run --------------------------------------------------------------------------

    def run(self):
        a = self.args
        try:
            if not a.skip_minbase and os.path.exists(a.minbase):
                tree = os.path.join(self.work, "minbase")
                os.makedirs(tree)
                subprocess.run(["bsdtar", "-xpf", a.minbase, "-C", tree, "--numeric-owner"],
                               check=True)
                data = tree_bytes(tree)
                entries = sum(len(d) + len(f) for _, d, f in os.walk(tree)) + 1
                self.headline("minbase", a.minbase, a.pairs)
                self.tree_dataset("minbase", tree, data, a.minbase, a.runs, entries=entries)
                shutil.rmtree(tree, True)
            elif not a.skip_minbase:
                self.log("minbase skipped: %s is absent" % a.minbase)
            if a.small_count:
                tree, data = self.make_tree("small", a.small_count, 1, 1024, 1)
                tar = self.tar_of(tree)
                self.headline("small%dk" % (a.small_count // 1000) if a.small_count >= 1000
                              else "small%d" % a.small_count, tar, a.pairs)
                self.tree_dataset("small-%d" % a.small_count, tree, data, tar, a.runs,
                                  entries=a.small_count)
                shutil.rmtree(tree, True)
                cleanup(tar)
            if a.large_sizes:
                tree, data = self.make_large(a.large_sizes)
                self.tree_dataset("large", tree, data, None, a.large_runs, entries=len(a.large_sizes))
                shutil.rmtree(tree, True)
            self.save()
            for s in a.disks:
                self.disk_dataset(s, parse_size(s), a.runs)
                self.save()
            for n in sorted(a.entries):
                tree, data = self.make_tree("scale-%d" % n, n, 0, 64, n)
                tar = self.tar_of(tree)
                self.tree_dataset("scale-%d" % n, tree, data, tar, a.scale_runs, entries=n,
                                  timeout=a.scale_timeout)
                shutil.rmtree(tree, True)
                cleanup(tar)
                self.save()
        finally:
            shutil.rmtree(self.work, True)
        return self.results


def tree_bytes(tree):
    total, seen = 0, set()
    for d, _, files in os.walk(tree):
        for f in files:
            st = os.lstat(os.path.join(d, f))
            if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f)) \
                    and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def cleanup(path):
    if path and os.path.lexists(path):
        os.unlink(path)


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    s = s.upper().rstrip("B").rstrip("I")
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)


def machine():
    info = {"cores": os.cpu_count()}
    try:
        info["kernel"] = os.uname().release
        info["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    except OSError:
        pass
    return info


# ---- reporting -----------------------------------------------------------------------------

def fmt(v, digits=2):
    return "-" if v is None else ("%.*f" % (digits, v))


def mib(v):
    return "-" if v is None else "%.1f" % (v / (1 << 20))


def markdown(results):
    lines = ["# Scale benchmark results", "",
             "Machine: %(cores)s cores, kernel %(kernel)s, %(date)s." % results["machine"], ""]
    if results["headline"]:
        lines += ["## Headline: `rosepack convert` against the floor (`bsdtar -xOf`), paired runs", "",
                  "| dataset | pairs | floor s | convert s | ratio (median) | min | max |",
                  "|---|---|---|---|---|---|---|"]
        for h in results["headline"]:
            lines.append("| %s | %d | %.3f | %.3f | **%.2fx** | %.2fx | %.2fx |" % (
                h["dataset"], h["pairs"], h["floorWall"], h["convertWall"], h["ratio"],
                h["ratioMin"], h["ratioMax"]))
        lines.append("")
    for ds in results["datasets"]:
        head = "## %s" % ds["name"]
        if ds["kind"] == "tree":
            head += " (%s entries, %s MiB of file data)" % (ds.get("entries") or "?",
                                                          mib(ds["dataBytes"]))
        else:
            head += " (disk of %s bytes)" % ds["diskBytes"]
        lines += [head, ""]
        floor = next((r for r in ds["rows"] if r["tool"].startswith("floor") and r["ok"]), None)
        rose = next((r for r in ds["rows"] if r["tool"].startswith("rosepack") and r["ok"]), None)
        lines += ["| tool | wall s | CPU s | peak RSS MiB | image MiB | alloc MiB | wall / floor "
                  "| rosepack wall / this | rosepack RSS / this |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in ds["rows"]:
            if not r["ok"]:
                error = (r.get("error") or "").replace("\n", " ").replace("|", "/")[:120]
                if not error.startswith(("timeout", "skipped")):
                    error = "failed: " + error
                lines.append("| %s | %s | | | | | | | |" % (r["tool"], error))
                continue
            ratio_floor = fmt(r["wall"] / floor["wall"]) + "x" if floor else "-"
            vs_wall = fmt(rose["wall"] / r["wall"]) + "x" if rose and r is not rose else "-"
            vs_rss = fmt(rose["rss"] / r["rss"]) + "x" if rose and r is not rose and r["rss"] else "-"
            lines.append("| %s | %s | %s | %.1f | %s | %s | %s | %s | %s |" % (
                r["tool"], fmt(r["wall"], 3), fmt(r["cpu"], 3), r["rss"], mib(r.get("image")),
                mib(r.get("alloc")), ratio_floor, vs_wall, vs_rss))
        lines.append("")
    return "\n".join(lines)


COLORS = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#2c3e50"]


def svg_chart(title, xlabel, ylabel, series, logx=True):
    """series: {name: [(x, y), ...]} -> SVG text (log-scale x, linear y from 0)."""
    import math
    w, h, left, right, top, bottom = 720, 420, 70, 220, 40, 50
    pts = [p for s in series.values() for p in s if p[1] is not None]
    if not pts:
        return None
    xs = [p[0] for p in pts]
    x0, x1 = min(xs), max(xs)
    ymax = max(p[1] for p in pts) * 1.1 or 1
    fx = (lambda x: math.log10(x)) if logx else (lambda x: x)
    span = (fx(x1) - fx(x0)) or 1

    def px(x):
        return left + (fx(x) - fx(x0)) / span * (w - left - right)

    def py(y):
        return h - bottom - y / ymax * (h - top - bottom)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="12">' % (w, h), '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>' % (left, title),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, h - bottom, w - right,
                                                                        h - bottom),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top, left, h - bottom)]
    for i in range(5):
        y = ymax * i / 4
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.3g</text>' % (left - 6, py(y) + 4, y))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (
            left, py(y), w - right, py(y)))
    for x in sorted(set(xs)):
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (
            px(x), h - bottom + 16, human(x)))
    out.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % (
        (left + w - right) // 2, h - 10, xlabel))
    out.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>' % (
        (top + h - bottom) // 2, (top + h - bottom) // 2, ylabel))
    for i, (name, s) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        s = [p for p in s if p[1] is not None]
        if not s:
            continue
        path = " ".join("%s%.1f,%.1f" % ("M" if j == 0 else "L", px(x), py(y))
                        for j, (x, y) in enumerate(s))
        out.append('<path d="%s" fill="none" stroke="%s" stroke-width="2"/>' % (path, c))
        for x, y in s:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x), py(y), c))
        ly = top + 10 + i * 18
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (w - right + 12, ly - 10, c))
        out.append('<text x="%d" y="%d">%s</text>' % (w - right + 30, ly, name))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def human(x):
    for unit, div in (("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20)):
        if x >= div and x % div == 0:
            return "%d%s" % (x // div, unit)
    for unit, div in (("M", 1_000_000), ("k", 1000)):
        if x >= div:
            return "%g%s" % (x / div, unit)
    return str(x)


def figures(results, out):
    written = []
    scale = [d for d in results["datasets"] if d["name"].startswith("scale-")]
    disks = [d for d in results["datasets"] if d["kind"] == "disk"]
    for sets, key, stem, xlabel in ((scale, "entries", "entries", "entries"),
                                    (disks, "diskBytes", "disk", "disk size")):
        if not sets:
            continue
        for metric, ylabel in (("wall", "wall seconds"), ("rss", "peak RSS MiB")):
            series = {}
            for ds in sets:
                for r in ds["rows"]:
                    if r["tool"].startswith("floor"):
                        continue
                    series.setdefault(r["tool"], []).append(
                        (ds[key], r[metric] if r["ok"] else None))
            svg = svg_chart("%s against %s" % (ylabel, xlabel), xlabel, ylabel, series)
            if svg:
                name = "%s-%s.svg" % (stem, "time" if metric == "wall" else "memory")
                with open(os.path.join(out, name), "w") as f:
                    f.write(svg)
                written.append(name)
    return written


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rosepack", default=os.path.join(REPO, ".build/release/rosepack"))
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--work", default=None, help="where datasets are generated (default: TMPDIR)")
    p.add_argument("--minbase", default=os.path.join(REPO, "../shared/datasets/minbase.tar.zst"))
    p.add_argument("--skip-minbase", action="store_true")
    p.add_argument("--small-count", type=int, default=200_000)
    p.add_argument("--large-sizes", default="512M,1G,2G",
                   help="comma-separated file sizes of the large set ('' skips it)")
    p.add_argument("--entries", default="10000,100000,1000000")
    p.add_argument("--disks", default="1G,64G,1T")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--scale-runs", type=int, default=1)
    p.add_argument("--large-runs", type=int, default=1)
    p.add_argument("--pairs", type=int, default=7)
    p.add_argument("--timeout", type=float, default=900, help="seconds per command")
    p.add_argument("--scale-timeout", type=float, default=600,
                   help="seconds per command on the scale-N sets; a tool that runs past it is "
                   "reported as timeout and skipped on the larger sets")
    p.add_argument("--only", default="", help="run only these tools (keys: %s)" % ",".join(TOOL_KEYS))
    p.add_argument("--skip", default="", help="do not run these tools (same keys)")
    p.add_argument("--json", action="store_true", help="also print the JSON results on stdout")
    p.add_argument("--quick", action="store_true",
                   help="small sets: 20,000 small files, 64+128 MiB large files, 10k/100k entries")
    p.add_argument("--smoke", action="store_true", help="tiny sets, one run (the test suite)")
    a = p.parse_args()
    if a.quick:
        a.small_count, a.large_sizes, a.entries, a.pairs = 20_000, "64M,128M", "10000,100000", 7
    if a.smoke:
        a.small_count, a.large_sizes, a.entries, a.disks = 300, "1M", "100,1000", "1G,4G"
        a.runs, a.pairs, a.skip_minbase = 1, 1, True
    a.large_sizes = [parse_size(s) for s in a.large_sizes.split(",") if s]
    a.entries = [int(n) for n in a.entries.split(",") if n]
    a.disks = [s for s in a.disks.split(",") if s]
    a.only = [k for k in a.only.split(",") if k]
    a.skip = [k for k in a.skip.split(",") if k]
    unknown = [k for k in a.only + a.skip if k not in TOOL_KEYS]
    if unknown:
        sys.exit("unknown tool key(s) %s; the keys are %s" % (",".join(unknown), ",".join(TOOL_KEYS)))
    if not os.access(a.rosepack, os.X_OK):
        sys.exit("%s: not found; build first: swift build -c release --product rosepack" % a.rosepack)
    os.makedirs(a.out, exist_ok=True)
    results = Bench(a).run()
    md = save(results, a)
    print(json.dumps(results, indent=1, sort_keys=True) if a.json else md)


def save(results, a):
    results["options"] = {k: v for k, v in vars(a).items() if k not in ("work",)}
    results["figures"] = figures(results, a.out)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    md = markdown(results)
    md += "\n" + "".join("![%s](%s)\n" % (n, n) for n in results["figures"])
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    return md


if __name__ == "__main__":
    main()
