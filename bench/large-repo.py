#!/usr/bin/env python3
"""`lineage run` in a git repository of many tracked files (default 50,000): the whole run of
a job that reads nothing of the repository (`true`) and of one that reads a tracked file,
beside the reference `git status --porcelain` (what the git snapshot before launch is held
to) and the bare job.

Usage: bench/large-repo.py [--lineage PATH ...] [--runs N] [--files N] [--work DIR]
Several --lineage binaries (the code before and after a change) run alternately in the same
sitting, each with a store of its own. Page cache warm; medians printed. Nothing is
asserted: it reports.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", action="append")
p.add_argument("--runs", type=int, default=9)
p.add_argument("--files", type=int, default=50_000)
p.add_argument("--work", help="keep the generated repository here (default: a temporary directory)")
a = p.parse_args()
binaries = [os.path.abspath(b) for b in (a.lineage or
            [os.path.join(here, "..", "target", "release", "lineage")])]
for b in binaries:
    if not os.access(b, os.X_OK):
        sys.exit(f"{b} not found: run `cargo build --release` first")
work = a.work or tempfile.mkdtemp(prefix="lineage-large-repo-")
repo = os.path.join(work, f"repo-{a.files}")
env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(work, "gitconfig"),
           GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
           GIT_COMMITTER_EMAIL="b@b")
if not os.path.isdir(os.path.join(repo, ".git")):
    per = 500
    for i in range(a.files):
        d = os.path.join(repo, "src", f"d{i // per}")
        if i % per == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"m{i % per}.py"), "w") as f:
            f.write(f"x = {i}\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "many"], cwd=repo, env=env, check=True)
read_one = ["sh", "-c", "cat src/d3/m7.py > /dev/null"]


def timed(cmd, e=env):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=repo, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - start


times = {}
stores = {b: dict(env, LINEAGE_STORE=os.path.join(work, f"store-{i}")) for i, b in enumerate(binaries)}
for b in binaries:  # warm-up: the store made, the page cache filled
    timed([b, "run", "-q", "--", "true"], stores[b])
for _ in range(a.runs):
    times.setdefault("git status --porcelain", []).append(timed(["git", "status", "--porcelain"]))
    times.setdefault("true", []).append(timed(["true"]))
    times.setdefault("cat src/d3/m7.py", []).append(timed(read_one))
    for i, b in enumerate(binaries):
        times.setdefault(f"[{i}] run -- true", []).append(timed([b, "run", "-q", "--", "true"], stores[b]))
        times.setdefault(f"[{i}] run -- cat src/d3/m7.py", []).append(
            timed([b, "run", "-q", "--", *read_one], stores[b]))
print(f"{a.files} tracked files; medians of {a.runs}; {os.cpu_count()} cores")
for i, b in enumerate(binaries):
    print(f"[{i}] {b}")
for k, v in times.items():
    print(f"  {k:40} {statistics.median(v) * 1000:8.1f} ms")
