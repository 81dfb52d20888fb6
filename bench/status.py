#!/usr/bin/env python3
"""Time `lineage status` against `dvc status` on the same four-stage pipeline.

Usage: bench/status.py [--lineage PATH] [--dvc PATH] [--store DIR] [--runs N] [--rows N]

A git repository with params.json (a section per stage) and four Python stages (prepare ->
featurize -> train -> evaluate, each reading the one before it, `--rows` rows of data) is made
in a temporary directory. DVC runs it from a dvc.yaml whose stages name their deps, their
params (`params.json: [train]`) and their outs (`dvc repro`); lineage records the same commands
with `lineage run -c params.json:STAGE` (no other declaration: it observes the rest). Both then
answer "what is out of date?" N times (default 15, after one warm-up), first with everything up
to date, then after `train.n_est` changed (both name the train and evaluate stages); the median
wall time of each, and the ratio, are printed.

--store DIR records into a copy of that store (for example target/bench-stores/find-100k, the
100,000-run store bench/find.py makes) instead of a new one, to time `status` in a big store.
DVC comes from PyPI: `python3 -m venv /tmp/dvc && /tmp/dvc/bin/pip install dvc`, then
`--dvc /tmp/dvc/bin/dvc`.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
parser.add_argument("--dvc", default=shutil.which("dvc") or "dvc")
parser.add_argument("--store")
parser.add_argument("--runs", type=int, default=15)
parser.add_argument("--rows", type=int, default=20000)
args = parser.parse_args()
lineage = os.path.abspath(args.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")
if shutil.which(args.dvc) is None and not os.access(args.dvc, os.X_OK):
    sys.exit(f"{args.dvc} not found: pass --dvc (see the usage)")

STAGES = {
    "prepare": ("data/raw.csv", "prepared.csv"),
    "featurize": ("prepared.csv", "features.csv"),
    "train": ("features.csv", "model.json"),
    "evaluate": ("model.json", "scores.json"),
}
SCRIPT = """import json, sys
p = json.load(open("params.json"))["{stage}"]
src = open("{src}").read()
out = json.dumps({{"stage": "{stage}", "p": p, "n": len(src), "h": sum(map(ord, src[:100000]))}})
open("{dst}", "w").write(out * (10 if "{stage}" == "prepare" else 1))
"""

work = tempfile.mkdtemp(prefix="lineage-bench-status-")
repo = os.path.join(work, "repo")
os.makedirs(os.path.join(repo, "data"))
store = os.path.join(work, "store")
if args.store:
    print(f"copying {args.store} ...", flush=True)
    shutil.copytree(args.store, store)
env = dict(os.environ, LINEAGE_STORE=store, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@e",
           GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@e", DVC_NO_ANALYTICS="1")


def sh(*cmd, quiet=True):
    subprocess.run(cmd, cwd=repo, env=env, check=True,
                   stdout=subprocess.DEVNULL if quiet else None,
                   stderr=subprocess.DEVNULL if quiet else None)


def write(path, text):
    with open(os.path.join(repo, path), "w") as f:
        f.write(text)


params = {"prepare": {"split": 0.2}, "featurize": {"n": 3},
          "train": {"n_est": 100, "seed": 1}, "evaluate": {"threshold": 0.5}}
write("params.json", json.dumps(params, indent=1))
write("data/raw.csv", "\n".join(f"{i},{i * 7 % 13}" for i in range(args.rows)))
for stage, (src, dst) in STAGES.items():
    write(f"{stage}.py", SCRIPT.format(stage=stage, src=src, dst=dst))
dvc_yaml = {"stages": {s: {"cmd": f"python3 {s}.py", "deps": [f"{s}.py", src],
                           "params": [{"params.json": [s]}], "outs": [dst]}
                       for s, (src, dst) in STAGES.items()}}
write("dvc.yaml", json.dumps(dvc_yaml, indent=1))  # YAML is a superset of JSON
write(".gitignore", "\n".join(dst for _, dst in STAGES.values()) + "\n")
sh("git", "init", "-q")
sh(args.dvc, "init", "-q")
sh("git", "add", ".")
sh("git", "commit", "-qm", "pipeline")
sh(args.dvc, "repro", "-q")
sh("git", "add", "dvc.lock")
sh("git", "commit", "-qm", "lock")
for stage in STAGES:
    sh(lineage, "run", "-q", "-c", f"params.json:{stage}", "--", "python3", f"{stage}.py")


def median_ms(cmd, expect):
    def once():
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=repo, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        took = time.perf_counter() - t
        if r.returncode not in expect:
            sys.exit(f"{cmd}: exit {r.returncode}: {r.stdout.decode()[-400:]}")
        return took, r.stdout.decode()
    _, out = once()
    times = [once()[0] for _ in range(args.runs)]
    return statistics.median(times) * 1000, out


rows = []
for state in ["up to date", "train.n_est changed"]:
    if state == "train.n_est changed":
        params["train"]["n_est"] = 300
        write("params.json", json.dumps(params, indent=1))
    lin, lin_out = median_ms([lineage, "status"], {0, 6})
    dvc, dvc_out = median_ms([args.dvc, "status"], {0})
    rows.append((state, lin, dvc))
    print(f"--- {state}\nlineage status:\n{lin_out}dvc status:\n{dvc_out}", flush=True)

print(f"\n{len(STAGES)} stages, {args.rows} rows; median of {args.runs} runs"
      + (f"; store: a copy of {args.store}" if args.store else "; a new store"))
print(f"{'state':<22} {'lineage status':>15} {'dvc status':>11} {'ratio':>7}")
for state, lin, dvc in rows:
    print(f"{state:<22} {lin:>12.1f} ms {dvc:>8.1f} ms {lin / dvc:>7.2f}")
shutil.rmtree(work, ignore_errors=True)
