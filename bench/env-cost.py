#!/usr/bin/env python3
"""What an environment costs `lineage run -- true`: the phases (LINEAGE_TIMINGS=1) of runs made
with the variables of a file written by `env > FILE` on another machine (a CUDA image's, say),
one or more binaries alternated in the same sitting.

Usage: bench/env-cost.py --env FILE [--lineage PATH ...] [--runs N] [--work DIR]

Prints, for each binary, the medians of: when the environment's redaction ended, when the
capture was done, sealing it (`capture sealed` - `captured`), when the job started, and the
whole run (`done`). PATH and HOME are replaced (this machine's programs, a fresh HOME); the
store is fresh under --work. Nothing is asserted: it reports.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--env", required=True, help="a file of NAME=VALUE lines (`env > FILE`)")
p.add_argument("--lineage", action="append")
p.add_argument("--runs", type=int, default=15)
p.add_argument("--work")
a = p.parse_args()
bins = [os.path.abspath(b) for b in (a.lineage or [os.path.join(here, "..", "target", "release", "lineage")])]
work = a.work or tempfile.mkdtemp(prefix="lineage-env-")
env = {}
for line in open(a.env, encoding="utf-8", errors="replace"):
    line = line.rstrip("\n")
    if "=" in line and not line.startswith(" "):
        k, v = line.split("=", 1)
        env[k] = v
env.update(PATH="/usr/local/bin:/usr/bin:/bin", HOME=work,
           LINEAGE_STORE=os.path.join(work, "store"), LINEAGE_TIMINGS="1")
print(f"{len(env)} variables, the longest {max(len(v) for v in env.values())} characters")
keys = ["environment redacted", "captured", "sealing", "job started", "done"]
res = {b: {k: [] for k in keys} for b in bins}
for b in bins:
    subprocess.run([b, "run", "-q", "--", "true"], cwd=work, env=env, capture_output=True)
for _ in range(a.runs):
    for b in bins:
        proc = subprocess.run([b, "run", "-q", "--", "true"], cwd=work, env=env,
                              capture_output=True, text=True)
        at = {}
        for l in proc.stderr.splitlines():
            if l.startswith("lineage: timing: ") and " at " in l and l.endswith(" ms"):
                k, v = l[len("lineage: timing: "):].rsplit(" at ", 1)
                at[k] = float(v[:-3])
        at["sealing"] = at["capture sealed"] - at["captured"]
        for k in keys:
            res[b][k].append(at[k])
for b in bins:
    print(b)
    print("  " + ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in res[b].items()))
if not a.work:
    shutil.rmtree(work, ignore_errors=True)
