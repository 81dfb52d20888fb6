#!/usr/bin/env python3
"""Where the milliseconds of `lineage run -- CMD` go: the median of each phase mark
(LINEAGE_TIMINGS=1) over many runs, and the time since the mark before it.

Usage: bench/phases.py [--lineage PATH] [--runs N] [--work DIR] [-- CMD...]   (CMD: `true`)

The runs are made in a git repository of 20 committed files (as bench/targets.py's row 5),
into a store of earlier runs, page cache warm. Marks that several threads print (the capture's
threads, the run written while the job starts) are listed in the order of their medians;
the time since the mark before is the difference of medians, not a sum of parts. Nothing is
asserted: it reports.
"""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
p.add_argument("--runs", type=int, default=31)
p.add_argument("--work", help="where the repository and the store go (default: a temporary directory)")
p.add_argument("cmd", nargs="*", default=["true"])
a = p.parse_args()
lineage = os.path.abspath(a.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")
work = a.work or tempfile.mkdtemp(prefix="lineage-phases-")
repo, store = os.path.join(work, "repo"), os.path.join(work, "store")
shutil.rmtree(repo, ignore_errors=True)
shutil.rmtree(store, ignore_errors=True)
os.makedirs(repo)
env = dict(os.environ, LINEAGE_STORE=store, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b",
           GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
git = lambda *args: subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                                   stdout=subprocess.DEVNULL)
git("init", "-q")
for i in range(20):
    with open(os.path.join(repo, f"f{i:02}.py"), "w") as f:
        f.write(f"print({i})\n")
git("add", ".")
git("commit", "-q", "-m", "bench")
mark = re.compile(r"lineage: timing: (.+) at ([0-9.]+) ms$")
times = {}
for i in range(a.runs + 3):
    out = subprocess.run([lineage, "run", "-q", "--", *a.cmd], cwd=repo,
                         env=dict(env, LINEAGE_TIMINGS="1"), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"lineage run failed ({out.returncode}):\n{out.stderr}")
    if i < 3:
        continue  # warm-up: the store created, the page cache filled
    for line in out.stderr.splitlines():
        m = mark.match(line)
        if m:
            times.setdefault(m.group(1), []).append(float(m.group(2)))
rows = sorted(((statistics.median(v), k) for k, v in times.items() if len(v) == a.runs))
print(f"lineage: {lineage}; `lineage run -q -- {' '.join(a.cmd)}`; medians of {a.runs}; "
      f"{os.cpu_count()} cores")
print()
print("| mark | at (median) | since the mark before |")
print("| --- | --- | --- |")
prev = 0.0
for at, name in rows:
    print(f"| {name} | {at:6.2f} ms | {at - prev:+6.2f} ms |")
    prev = at
