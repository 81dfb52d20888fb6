#!/usr/bin/env python3
"""The team store against the local store, side by side on one machine.

    cargo build --release && cargo bench --bench ancestry --no-run
    scripts/with-postgres.sh python3 bench/team-store.py [--writers 4] [--runs 40] [--repeat 15]

1. Recording throughput: W writer processes at once, each recording R runs of a small job
   (`lineage run -q -i input.txt -o out_W_I.txt -- cp ...`), into one local SQLite store and
   then into PostgreSQL (each writer its own replica, as separate hosts would). Prints runs
   per second for both, and the ratio.
2. `lineage show` latency on a 100,000-run store: the store `cargo bench --bench ancestry`
   fills (kept in target/bench-stores/; filled here through that bench when missing), copied,
   delivered to PostgreSQL with `lineage push`, then fetched into a fresh replica (the one-time
   cold sync). Then the median of `show DEEPEST --format json` (290 runs of ancestry) on the
   SQLite store and through the team store (which first asks the server for new runs).

Needs LINEAGE_TEST_POSTGRES (a superuser URL; scripts/with-postgres.sh sets it).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("LINEAGE_BIN") or os.path.join(ROOT, "target", "release", "lineage")
BENCH_STORE = os.path.join(ROOT, "target", "bench-stores", "ancestry-2000x50-v1")


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def new_database(admin):
    import uuid
    name = "bench_" + uuid.uuid4().hex[:12]
    sh("psql", admin, "-qc", f"CREATE DATABASE {name}")
    return admin.rsplit("/", 1)[0] + "/" + name, name


def writers(store_env, work, n_writers, n_runs):
    """Seconds for n_writers processes recording n_runs each, at once."""
    def one(w):
        env = dict(os.environ, **store_env(w))
        for i in range(n_runs):
            out = f"out_{w}_{i}.txt"
            subprocess.run([BIN, "run", "-q", "-i", "input.txt", "-o", out, "--", "cp", "input.txt", out],
                           cwd=work, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(n_writers) as pool:
        list(pool.map(one, range(n_writers)))
    return time.perf_counter() - start


def median_ms(args, env, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        p = subprocess.run([BIN] + args, env=env, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
        if p.returncode != 0:
            sys.exit(f"{args}: {p.stderr.decode()}")
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=15)
    a = ap.parse_args()
    admin = os.environ.get("LINEAGE_TEST_POSTGRES")
    if not admin:
        sys.exit("run me through scripts/with-postgres.sh (LINEAGE_TEST_POSTGRES is not set)")
    if not os.access(BIN, os.X_OK):
        sys.exit("build first: cargo build --release")
    version = sh("psql", admin, "-Atc", "SHOW server_version").stdout.strip()
    print(f"machine: {os.cpu_count()} cores; PostgreSQL {version} on 127.0.0.1 (fsync off); {BIN}")
    tmp = tempfile.mkdtemp(prefix="lineage-team-bench-")
    try:
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        with open(os.path.join(work, "input.txt"), "w") as f:
            f.write("the same input for every job\n")
        total = a.writers * a.runs

        local = os.path.join(tmp, "local-store")
        t_sqlite = writers(lambda w: {"LINEAGE_STORE": local}, work, a.writers, a.runs)
        url, _ = new_database(admin)
        t_pg = writers(lambda w: {"LINEAGE_STORE": url, "LINEAGE_REPLICA": os.path.join(tmp, f"replica-{w}")},
                       work, a.writers, a.runs)
        arrived = sh("psql", url, "-Atc", "SELECT COUNT(*) FROM runs").stdout.strip()
        print(f"\n1. recording: {a.writers} writers x {a.runs} runs at once ({total} runs)")
        print(f"   SQLite store (shared file):         {total / t_sqlite:7.1f} runs/s  ({t_sqlite:.1f} s)")
        print(f"   PostgreSQL (replica per writer):    {total / t_pg:7.1f} runs/s  ({t_pg:.1f} s; {arrived} runs on the server)")
        print(f"   ratio PostgreSQL / SQLite:          {t_sqlite / t_pg:7.2f}")

        if not os.path.exists(os.path.join(BENCH_STORE, "lineage.db")):
            print("\nfilling the 100,000-run store (cargo bench --bench ancestry)...", flush=True)
            subprocess.run(["cargo", "bench", "--bench", "ancestry"], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
        big = os.path.join(tmp, "big-store")
        shutil.copytree(BENCH_STORE, big)
        url, _ = new_database(admin)
        start = time.perf_counter()
        sh(BIN, "--store", big, "push", url)
        t_push = time.perf_counter() - start
        replica = os.path.join(tmp, "big-replica")
        team = dict(os.environ, LINEAGE_STORE=url, LINEAGE_REPLICA=replica)
        start = time.perf_counter()
        sh(BIN, "list", "-n", "1", env=team)
        t_pull = time.perf_counter() - start
        # The probe: a file holding the bytes benches/ancestry.rs hashed as the end of chain
        # 1000, found by content like any file.
        probe = os.path.join(tmp, "deepest.bin")
        with open(probe, "wb") as f:
            f.write(b"out/1000/50.bin")
        args = ["show", probe, "--format", "json"]
        sqlite_env = dict(os.environ, LINEAGE_STORE=big)
        ms_sqlite = median_ms(args, sqlite_env, a.repeat)
        ms_team = median_ms(args, team, a.repeat)
        ms_version = median_ms(["--version"], sqlite_env, a.repeat)
        print(f"\n2. lineage show on a 100,000-run store (median of {a.repeat}; 290 runs in the ancestry)")
        print(f"   delivering the store to PostgreSQL (lineage push):   {t_push:7.1f} s, once")
        print(f"   first sync of an empty replica (cold):               {t_pull:7.1f} s, once per machine")
        print(f"   lineage --version (process start, reference):        {ms_version:7.1f} ms")
        print(f"   show DEEPEST --format json, SQLite store:            {ms_sqlite:7.1f} ms")
        print(f"   show DEEPEST --format json, team store (warm):       {ms_team:7.1f} ms")
        print(f"   ratio team / SQLite:                                 {ms_team / ms_sqlite:7.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
