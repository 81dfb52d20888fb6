#!/usr/bin/env python3
"""Measure what `lineage run -- true` adds over `true`, in a small git repository.

Usage: bench/wrapper-overhead.py [--lineage PATH] [--runs N] [--peers VENV] [--compare OLD]
Builds nothing: pass a release binary (default target/release/lineage; build it with
`cargo build --release`). Runs both commands alternately N times each, after a warm-up, with a
fresh store in a temporary directory, and prints medians, the difference and the ratio.
--peers VENV (a venv with in-toto, dvc and datalad; see bench/inputs.py) adds
`in-toto-run -- true`, `datalad run true` and `dvc repro` of a stage running `true`, in the
same repository, alternately with the others (N / 10 runs each: they are slow).
--compare OLD adds another lineage binary (an older build) and `lineage run` without a
signing key, alternately with the others, to attribute a change in overhead.
HOME is a scratch directory: the signing key made on first use is the benchmark's own.
"""
import argparse
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
parser.add_argument("--runs", type=int, default=200)
parser.add_argument("--peers", metavar="VENV")
parser.add_argument("--compare", metavar="OLD")
args = parser.parse_args()
lineage = os.path.abspath(args.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")

with tempfile.TemporaryDirectory() as tmp:
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    env = dict(os.environ, LINEAGE_STORE=os.path.join(tmp, "store"),
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(tmp, "gitconfig"),
               HOME=os.path.join(tmp, "home"), XDG_CONFIG_HOME=os.path.join(tmp, "home", "config"))
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
    extra_env = {}
    if args.compare:
        old = os.path.abspath(args.compare)
        commands["old: lineage run -- true"] = [old, "run", "-q", "--", "true"]
        # A store of its own: an older lineage cannot open a store a newer one migrated.
        extra_env["old: lineage run -- true"] = {"LINEAGE_STORE": os.path.join(tmp, "store-old")}
        commands["unsigned: lineage run"] = [lineage, "run", "-q", "--", "true"]
        extra_env["unsigned: lineage run"] = {"LINEAGE_SIGNING_KEY": os.path.join(tmp, "no-key")}
    peers = {}
    if args.peers:
        bin_ = os.path.join(os.path.abspath(args.peers), "bin")
        env["PATH"] = bin_ + os.pathsep + env["PATH"]
        key = os.path.join(tmp, "intoto.pem")
        subprocess.run([os.path.join(bin_, "python"), "-c",
                        "import sys\nfrom cryptography.hazmat.primitives.asymmetric import ed25519\n"
                        "from cryptography.hazmat.primitives import serialization as s\n"
                        "k = ed25519.Ed25519PrivateKey.generate()\n"
                        "open(sys.argv[1], 'wb').write(k.private_bytes(s.Encoding.PEM, "
                        "s.PrivateFormat.PKCS8, s.NoEncryption()))", key], check=True)
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.access(os.path.join(bin_, "in-toto-run"), os.X_OK):
            peers["in-toto-run -- true"] = ["in-toto-run", "-n", "t", "--signing-key", key,
                                            "--", "true"]
        if os.access(os.path.join(bin_, "dvc"), os.X_OK):
            subprocess.run(["dvc", "init", "-q"], cwd=repo, env=env, check=True, **quiet)
            subprocess.run(["dvc", "stage", "add", "-q", "-n", "t", "true"], cwd=repo, env=env,
                           check=True, **quiet)
            peers["dvc repro (stage: true)"] = ["dvc", "repro", "-q"]
        if os.access(os.path.join(bin_, "datalad"), os.X_OK) and shutil.which("git-annex"):
            ds = os.path.join(tmp, "ds")
            subprocess.run(["datalad", "create", ds], env=env, check=True, **quiet)
            peers["datalad run true"] = ["datalad", "-c", "datalad.ui.progressbar=none", "run",
                                         "-d", ds, "true"]
    times = {name: [] for name in {**commands, **peers}}

    def once(cmd, name=None):
        run_env = dict(env, **extra_env.get(name, {}))
        start = time.perf_counter()
        subprocess.run(cmd, cwd=repo, env=run_env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - start

    for name, cmd in commands.items():  # warm-up: page cache, store creation
        for _ in range(5):
            once(cmd, name)
    for i in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(once(cmd, name))
        if i % 10 == 0:
            for name, cmd in peers.items():
                times[name].append(once(cmd))

    base = statistics.median(times["true"])
    wrapped = statistics.median(times["lineage run -- true"])
    print(f"machine: {os.cpu_count()} cores; runs: {args.runs} each, alternating")
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=20) if len(ts) > 1 else ts * 19
        print(f"{name:22} median {statistics.median(ts) * 1000:7.2f} ms   "
              f"p5 {q[0] * 1000:7.2f} ms   p95 {q[-1] * 1000:7.2f} ms")
    print(f"overhead (median difference): {(wrapped - base) * 1000:.2f} ms; "
          f"ratio lineage/true: {wrapped / base:.1f}x")
    for name in commands:
        if name.startswith(("old", "unsigned")):
            other = statistics.median(times[name])
            print(f"{name}: overhead {(other - base) * 1000:.2f} ms "
                  f"(this build {(wrapped - other) * 1000:+.2f} ms)")
    for name in peers:
        over = statistics.median(times[name]) - base
        print(f"{name}: adds {over * 1000:.0f} ms, {over / (wrapped - base):.0f}x lineage's overhead")
