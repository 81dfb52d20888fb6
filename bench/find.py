#!/usr/bin/env python3
"""Time `lineage list` and `lineage compare` on the 100,000-run store, with params and metrics.

Usage: bench/find.py [--lineage PATH] [--store DIR] [--runs N] [--compare OLD]

The store is a copy of the one `cargo bench --bench ancestry` fills (target/bench-stores/
ancestry-2000x50-v3; run that once first), kept as target/bench-stores/find-100k, in which
every run is given three params (train.n_est: 50, 100, 150 or 200; train.lr: 0.001 to 0.010;
model: "rf" or "gb") and two metrics (acc: 0.000 to 0.999; loss), written with SQL straight
into the tables `lineage run -c`/`-m` fill. Each command runs N times (default 15) after a
warm-up; the median wall time and the largest maximum resident set (GNU time's %M) are
printed. --compare OLD times an older binary on the same commands where it has them
(a command it does not know is left out).
"""
import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "target", "bench-stores")
parser = argparse.ArgumentParser()
parser.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
parser.add_argument("--store", default=os.path.join(root, "find-100k"))
parser.add_argument("--source", default=os.path.join(root, "ancestry-2000x50-v3"))
parser.add_argument("--runs", type=int, default=15)
parser.add_argument("--compare", metavar="OLD")
args = parser.parse_args()
lineage = os.path.abspath(args.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")

store = os.path.abspath(args.store)
db = os.path.join(store, "lineage.db")
if not os.path.exists(db):
    src = os.path.join(args.source, "lineage.db")
    if not os.path.exists(src):
        sys.exit(f"{src} not found: run `cargo bench --bench ancestry` first")
    partial = store + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial, mode=0o700)
    print(f"copying {src} ...", flush=True)
    shutil.copyfile(src, os.path.join(partial, "lineage.db"))
    os.chmod(os.path.join(partial, "lineage.db"), 0o600)
    # Let lineage migrate the copy to its schema (metrics, the indexes on params and metrics).
    subprocess.run([lineage, "list", "-n", "1"], env=dict(os.environ, LINEAGE_STORE=partial),
                   check=True, stdout=subprocess.DEVNULL)
    c = sqlite3.connect(os.path.join(partial, "lineage.db"))
    c.executescript("""
        DELETE FROM params;
        INSERT INTO params (run_id, key, value, source)
          SELECT id, 'train.n_est', CAST(50 * (rowid % 4 + 1) AS TEXT), 'params.yaml' FROM runs;
        INSERT INTO params (run_id, key, value, source)
          SELECT id, 'train.lr', printf('%.3f', 0.001 * (rowid % 10 + 1)), 'params.yaml' FROM runs;
        INSERT INTO params (run_id, key, value, source)
          SELECT id, 'model', CASE rowid % 2 WHEN 0 THEN '"rf"' ELSE '"gb"' END, 'params.yaml'
          FROM runs;
        INSERT INTO metrics (run_id, key, value, source)
          SELECT id, 'acc', (rowid * 7919 % 1000) / 1000.0, 'metrics.json' FROM runs;
        INSERT INTO metrics (run_id, key, value, source)
          SELECT id, 'loss', 1.0 - (rowid * 7919 % 1000) / 1000.0, 'metrics.json' FROM runs;
    """)
    c.commit()
    c.close()
    os.rename(partial, store)

n = sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone()[0]
print(f"store: {store} ({n} runs, lineage.db {os.path.getsize(db) / 2**20:.0f} MiB)")

# (label, shell pipeline after `lineage`, needs the new commands)
cases = [
    ("list | tail -1 (every run, table)", "list | tail -1", False),
    ("list --json | tail -1 (every run)", "list --json | tail -1", False),
    ("list -n 20", "list -n 20", False),
    ("list --where train.n_est=100 --where 'metrics.acc>=0.99' | tail -1",
     "list --where train.n_est=100 --where 'metrics.acc>=0.99' | tail -1", True),
    ("list --where model=rf --columns 'metrics.*' -n 20",
     "list --where model=rf --columns 'metrics.*' -n 20", True),
    ("compare --where 'metrics.acc>=0.995' --sort metrics.acc --desc",
     "compare --where 'metrics.acc>=0.995' --sort metrics.acc --desc", True),
]


def measure(binary, pipeline):
    """Median wall ms and the largest max RSS (KiB) of `binary PIPELINE`."""
    env = dict(os.environ, LINEAGE_STORE=store)
    with tempfile.NamedTemporaryFile(prefix="lineage-rss-") as out:
        cmd = f"/usr/bin/time -f %M -o {out.name} {binary} {pipeline} > /dev/null"
        times, rss = [], 0
        for i in range(args.runs + 1):
            start = time.perf_counter()
            subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=env, check=True,
                           stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = (time.perf_counter() - start) * 1000
            with open(out.name) as f:
                kib = int(f.read().strip().splitlines()[-1])
            if i > 0:  # the first is a warm-up
                times.append(elapsed)
                rss = max(rss, kib)
    return statistics.median(times), rss


binaries = [("this", lineage)]
if args.compare:
    binaries.append(("OLD", os.path.abspath(args.compare)))
print(f"{'command (median of ' + str(args.runs) + ')':<72} {'binary':>6} {'ms':>8} {'max RSS':>10}")
for label, pipeline, new in cases:
    for name, binary in binaries:
        if new and name == "OLD":
            continue
        try:
            ms, kib = measure(binary, pipeline)
        except subprocess.CalledProcessError:
            print(f"{label:<72} {name:>6} {'(fails)':>8}", flush=True)
            continue
        print(f"{label:<72} {name:>6} {ms:>8.1f} {kib / 1024:>7.1f} MiB", flush=True)
