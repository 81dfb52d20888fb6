#!/usr/bin/env python3
"""Hash a 20,000-file tree (4-16 KiB files) with `lineage run -i`, first cold in the stat cache,
then again with every file unchanged, and report the ratio (issue 5's "at least 20x").

Usage: bench/stat-cache.py [--lineage PATH] [--files N] [--runs N]
The page cache is warm in both cases (the tree was just written), so the first run measures
hashing at memory speed and the second the walk, the stats and the cache lookups.
"""
import argparse, os, random, statistics, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
p.add_argument("--files", type=int, default=20000)
p.add_argument("--runs", type=int, default=5)
a = p.parse_args()
lineage = os.path.abspath(a.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")

with tempfile.TemporaryDirectory() as tmp:
    tree = os.path.join(tmp, "tree")
    rng = random.Random(1)
    for i in range(a.files):
        d = os.path.join(tree, f"d{i // 500:03}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05}.bin"), "wb") as f:
            f.write(rng.randbytes(rng.randint(4096, 16384)))
    time.sleep(1.2)  # past the racy window, as a dataset on disk would be
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(tree) for f in fs)

    def run(store):
        env = dict(os.environ, LINEAGE_STORE=store)
        t = time.perf_counter()
        subprocess.run([lineage, "run", "-q", "-i", tree, "--", "true"], env=env, check=True)
        return time.perf_counter() - t

    firsts, seconds = [], []
    for r in range(a.runs):
        store = os.path.join(tmp, f"store{r}")
        firsts.append(run(store))        # empty cache
        seconds.append(run(store))       # every file cached
    f, s = statistics.median(firsts), statistics.median(seconds)
    print(f"tree: {a.files} files, {total / 2**20:.0f} MiB; {os.cpu_count()} cores; medians of {a.runs}")
    print(f"first run (cold cache):   {f * 1000:8.1f} ms  ({total / 2**20 / f:.0f} MiB/s)")
    print(f"second run (all cached):  {s * 1000:8.1f} ms")
    print(f"ratio first/second: {f / s:.1f}x")
