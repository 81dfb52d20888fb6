#!/usr/bin/env python3
"""A new directory of many files (default 200,000 of 1-8 KiB in 400 directories): how long the
job waits before it starts, the whole run, and lineage's peak memory, first run into a fresh
store and second run (unchanged), beside the references: the stat walk (`find -printf`) and
parallel `b3sum` of the same files.

Usage: bench/large-tree.py [--lineage PATH ...] [--b3sum PATH] [--runs N] [--files N]
                           [--work DIR]
Several --lineage binaries (say, the code before and after a change) are run alternately in
the same sitting. Page cache warm; medians printed. Nothing is asserted: it reports.
"""
import argparse, os, random, shutil, statistics, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", action="append")
p.add_argument("--b3sum", default=shutil.which("b3sum"))
p.add_argument("--runs", type=int, default=5)
p.add_argument("--files", type=int, default=200_000)
p.add_argument("--work", help="keep the generated tree here (default: a temporary directory)")
a = p.parse_args()
binaries = [os.path.abspath(b) for b in (a.lineage or
            [os.path.join(here, "..", "target", "release", "lineage")])]
for b in binaries:
    if not os.access(b, os.X_OK):
        sys.exit(f"{b} not found: run `cargo build --release` first")
ncpu = os.cpu_count() or 1
work = a.work or tempfile.mkdtemp(prefix="lineage-large-tree-")
os.makedirs(work, exist_ok=True)
tree = os.path.join(work, "tree")


def run(cmd, env=None, shell=False):
    """Wall seconds, peak RSS (KiB: the process's and its waited descendants') and stderr."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, env=env, shell=shell,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {cmd}\n{err}")
    return wall, usage.ru_maxrss, err


def mark(err, name):
    for line in err.splitlines():
        if line.startswith(f"lineage: timing: {name} at "):
            return float(line.rsplit(" at ", 1)[1].split()[0]) / 1000
    return float("nan")


if not os.path.isdir(tree):
    rng = random.Random(7)
    per = max(1, a.files // 400)
    for i in range(a.files):
        d = os.path.join(tree, f"c{i // per:03d}")
        if i % per == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{i:07d}.bin"), "wb") as f:
            f.write(rng.randbytes(rng.randint(1024, 8192)))
    time.sleep(1.2)  # past the racy second
run(f"find {tree} -type f -print0 | xargs -0 cat > /dev/null", shell=True)  # warm

rows = {b: {"start1": [], "wall1": [], "rss1": [], "start2": [], "wall2": []} for b in binaries}
refs = {"walk": [], "b3sum": []}
for r in range(a.runs):
    refs["walk"].append(run(["find", tree, "-type", "f", "-printf", "%i %s %T@ %C@\n"])[0])
    if a.b3sum:
        refs["b3sum"].append(run(f"find {tree} -type f -print0 | xargs -0 -P{ncpu} -n 5000 "
                                 f"{a.b3sum} > /dev/null", shell=True)[0])
    for b in binaries:
        store = os.path.join(work, "store")
        shutil.rmtree(store, ignore_errors=True)
        env = dict(os.environ, LINEAGE_STORE=store, LINEAGE_TIMINGS="1")
        cmd = [b, "run", "-q", "-i", "tree", "--", "true"]
        wall, rss, err = run(cmd, env)
        rows[b]["start1"].append(mark(err, "job started"))
        rows[b]["wall1"].append(wall)
        rows[b]["rss1"].append(rss)
        wall, _, err = run(cmd, env)
        rows[b]["start2"].append(mark(err, "job started"))
        rows[b]["wall2"].append(wall)

med = statistics.median
ms = lambda s: f"{s * 1000:8.0f} ms"
print(f"machine: {ncpu} cores, {os.uname().release}; page cache warm; medians of {a.runs}")
print(f"tree: {a.files} files in {tree}")
print(f"reference: stat walk (find -printf) {ms(med(refs['walk']))}", end="")
if refs["b3sum"]:
    print(f"; xargs -P{ncpu} b3sum {ms(med(refs['b3sum']))}")
else:
    print()
print("\n| lineage | first run: job starts after | whole run | peak RSS | second run: job "
      "starts after | whole run |\n| --- | --- | --- | --- | --- | --- |")
for b in binaries:
    x = rows[b]
    print(f"| {b} | {ms(med(x['start1']))} | {ms(med(x['wall1']))} | "
          f"{med(x['rss1']) / 1024:.0f} MiB | {ms(med(x['start2']))} | {ms(med(x['wall2']))} |")
if not a.work:
    shutil.rmtree(work)
