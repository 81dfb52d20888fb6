#!/usr/bin/env python3
"""What observing a job's files costs: `lineage run` against `lineage run --no-observe`,
`strace -f -e trace=%file` and, when given, `reprozip trace`, on the same jobs, alternately.

Usage: bench/observe.py [--lineage PATH] [--runs N] [--files N] [--reprozip VENV] [--peer-runs N]
Builds nothing: pass a release binary (default target/release/lineage; `cargo build
--release`). Jobs, in a fresh git repository in a temporary directory with a fresh store:

  imports   python3 importing heavy standard-library modules (thousands of file calls)
  files     python3 opening and reading N small files (default 100,000) under data/

Each job runs as: bare; `lineage run --no-observe`; `lineage run` (observed); `strace -f -o
/dev/null -e trace=%file`; and with --reprozip VENV (a venv holding reprozip from PyPI)
`reprozip trace --dont-identify-packages`. Prints medians (wall seconds) and the ratios that
docs/performance.md quotes: observed / unobserved lineage, and each peer / bare.
HOME is a scratch directory; the store's stat cache is warm after the first round (the
observed run hashes what the job read: data/ once, then from the cache).
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
parser.add_argument("--runs", type=int, default=15)
parser.add_argument("--files", type=int, default=100_000)
parser.add_argument("--reprozip", metavar="VENV")
parser.add_argument("--peer-runs", type=int, default=3,
                    help="rounds in which strace and reprozip run too (they are slow)")
args = parser.parse_args()
lineage = os.path.abspath(args.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")

IMPORTS = (
    "import asyncio, argparse, concurrent.futures, csv, dataclasses, decimal, email.mime.multipart, "
    "http.client, http.server, json, logging.handlers, multiprocessing, pdb, pydoc, sqlite3, "
    "tarfile, unittest, urllib.request, xml.dom.minidom, xml.etree.ElementTree, zipfile, "
    "difflib, doctest, ftplib, imaplib, smtplib, statistics, tkinter.constants, turtle, "
    "wsgiref.simple_server, xmlrpc.server, ast, inspect, pickletools, tomllib, venv, "
    "zoneinfo, ensurepip, idlelib.pyshell"
)
FILES = (
    "import os\n"
    "n = 0\n"
    "for d, _, fs in os.walk('data'):\n"
    "    for f in fs:\n"
    "        with open(os.path.join(d, f), 'rb') as h:\n"
    "            n += len(h.read())\n"
    "open('total.txt', 'w').write(str(n))\n"
)

with tempfile.TemporaryDirectory() as tmp:
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    env = dict(os.environ, LINEAGE_STORE=os.path.join(tmp, "store"),
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(tmp, "gitconfig"),
               HOME=os.path.join(tmp, "home"), XDG_CONFIG_HOME=os.path.join(tmp, "home", "config"),
               PYTHONDONTWRITEBYTECODE="1")
    with open(env["GIT_CONFIG_GLOBAL"], "w") as f:
        f.write("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, env=env, check=True,
                                    stdout=subprocess.DEVNULL)
    git("init", "-q")
    with open(os.path.join(repo, "files.py"), "w") as f:
        f.write(FILES)
    with open(os.path.join(repo, ".gitignore"), "w") as f:
        f.write("data/\ntotal.txt\n")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    print(f"making {args.files} files ...", file=sys.stderr)
    per_dir = 1000
    for i in range(args.files):
        d = os.path.join(repo, "data", f"d{i // per_dir:04d}")
        if i % per_dir == 0:
            os.makedirs(d)
        with open(os.path.join(d, f"f{i}.txt"), "w") as f:
            f.write(f"row {i}\n")

    jobs = {
        "imports": ["python3", "-c", IMPORTS],
        "files": ["python3", "files.py"],
    }
    wrappers = {
        "bare": [],
        "lineage --no-observe": [lineage, "run", "-q", "--no-observe", "--"],
        "lineage (observed)": [lineage, "run", "-q", "--"],
        "strace -f %file": ["strace", "-f", "-o", "/dev/null", "-e", "trace=%file"],
    }
    if args.reprozip:
        rz = os.path.join(args.reprozip, "bin", "reprozip")
        wrappers["reprozip trace"] = None  # built per round: a fresh directory each time

    def once(wrapper, job, round_):
        if wrapper == "reprozip trace":
            cmd = [rz, "trace", "-d", os.path.join(tmp, f"rz-{round_}-{job}"),
                   "--dont-identify-packages", "--overwrite", *jobs[job]]
        else:
            cmd = wrappers[wrapper] + jobs[job]
        t = time.perf_counter()
        subprocess.run(cmd, cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    # Warm-up: caches, the store, the stat cache of data/.
    for job in jobs:
        for w in wrappers:
            if w not in ("strace -f %file", "reprozip trace") or job == "imports":
                once(w, job, -1)
    times = {(w, j): [] for w in wrappers for j in jobs}
    peers = {"strace -f %file", "reprozip trace"}
    for r in range(args.runs):
        for job in jobs:
            for w in wrappers:
                if w in peers and r >= args.peer_runs:
                    continue
                times[(w, job)].append(once(w, job, r))
        print(f"round {r + 1}/{args.runs}", file=sys.stderr)

    calls = {}
    for job in jobs:
        subprocess.run([lineage, "run", "-q", "--", *jobs[job]], cwd=repo, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        out = subprocess.run([lineage, "show", "--json"], cwd=repo, env=env, check=True,
                             capture_output=True, text=True)
        calls[job] = (json.loads(out.stdout).get("observed") or {}).get("calls")

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{args.runs} rounds, medians in seconds (wall, including lineage's own work)")
    for job in jobs:
        print(f"\n{job}: {calls[job]} file calls held by the supervisor")
        for w in wrappers:
            print(f"  {w:24} {med[(w, job)]:8.3f}")
        base = med[("lineage --no-observe", job)]
        obs = med[("lineage (observed)", job)]
        print(f"  observed / unobserved lineage: {obs / base:.3f}x (+{(obs - base) * 1000:.1f} ms)")
        bare = med[("bare", job)]
        for w in wrappers:
            if w != "bare":
                print(f"  {w} / bare: {med[(w, job)] / bare:.3f}x")
