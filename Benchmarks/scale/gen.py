# gen.py OUT COUNT LO HI SEED: bench.py's make_tree written directly as a tarball.
import sys, tarfile, random, io
out, count, lo, hi, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
    for i in range(count):
        d = "d%04d" % (i // 1000)
        if i % 1000 == 0:
            ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1700000000
            t.addfile(ti)
        n = rng.randint(lo, hi)
        ti = tarfile.TarInfo("%s/f%06d" % (d, i)); ti.size = n; ti.mode = 0o644; ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(rng.randbytes(n)))
