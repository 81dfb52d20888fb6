#!/usr/bin/env python3
"""Measure what `lineage run -- true` adds over `true`, in a small git repository.

Usage: bench/wrapper-overhead.py [--lineage PATH] [--runs N]
Builds nothing: pass a release binary (default target/release/lineage; build it with
`cargo build --release`). Runs both commands alternately N times each, after a warm-up, with a
fresh store in a temporary directory, and prints medians, the difference and the ratio.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
parser.add_argument("--runs", type=int, default=200)
args = parser.parse_args()
lineage = os.path.abspath(args.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")

with tempfile.TemporaryDirectory() as tmp:
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    env = dict(os.environ, LINEAGE_STORE=os.path.join(tmp, "store"),
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(tmp, "gitconfig"))
    with open(env["GIT_CONFIG_GLOBAL"], "w") as f:
        f.write("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, env=env, check=True,
                                    stdout=subprocess.DEVNULL)
    git("init", "-q")
    for i in range(20):
        with open(os.path.join(repo, f"file{i}.py"), "w") as f:
            f.write(f"x = {i}\n" * 50)
    git("add", ".")
    git("commit", "-q", "-m", "init")

    commands = {"true": ["true"], "lineage run -- true": [lineage, "run", "-q", "--", "true"]}
    times = {name: [] for name in commands}

    def once(cmd):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=repo, env=env, check=True)
        return time.perf_counter() - start

    for cmd in commands.values():  # warm-up: page cache, store creation
        for _ in range(5):
            once(cmd)
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(once(cmd))

    base = statistics.median(times["true"])
    wrapped = statistics.median(times["lineage run -- true"])
    print(f"machine: {os.cpu_count()} cores; runs: {args.runs} each, alternating")
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=20)
        print(f"{name:22} median {statistics.median(ts) * 1000:7.2f} ms   "
              f"p5 {q[0] * 1000:7.2f} ms   p95 {q[-1] * 1000:7.2f} ms")
    print(f"overhead (median difference): {(wrapped - base) * 1000:.2f} ms; "
          f"ratio lineage/true: {wrapped / base:.1f}x")
