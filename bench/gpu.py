#!/usr/bin/env python3
"""On a machine with an NVIDIA GPU: what lineage records of it against nvidia-smi, and what
lineage adds to a job there, with one or more lineage binaries alternated in the same sitting.

Usage: bench/gpu.py [--lineage PATH ...] [--runs N] [--torch-runs N] [--work DIR]

1. `lineage run -- true`, then `show --json`: each GPU's index, name, UUID, memory and driver
   beside `nvidia-smi --query-gpu`.
2. With PyTorch as `python3`: a job (through `sh -c`, so a grandchild of lineage) holding
   3 GiB on GPU 0 for 1.5 s; the recorded peak beside what nvidia-smi says the job's process
   uses (`--query-compute-apps`), read from inside the job.
3. `lineage run -q -- true` and the bare `true`, alternated, `--runs` times: medians and
   minimums, and one run's phases (LINEAGE_TIMINGS=1) for each binary.
4. With PyTorch: `python3 -c "import torch"` bare and under each binary (and
   `--no-observe`), `--torch-runs` times alternated.

The store and HOME are fresh directories under --work; the environment is this shell's (a
CUDA image's, with its long NVIDIA_REQUIRE_CUDA). Nothing here is asserted: it reports.
The check that fails when something is wrong is `cargo test --release --test cli gpu --
--ignored` on the same machine.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", action="append")
p.add_argument("--runs", type=int, default=21)
p.add_argument("--torch-runs", type=int, default=7)
p.add_argument("--work", help="keep the store here (default: a temporary directory)")
a = p.parse_args()
bins = [os.path.abspath(b) for b in (a.lineage or [os.path.join(here, "..", "target", "release", "lineage")])]
for b in bins:
    if not os.access(b, os.X_OK):
        sys.exit(f"{b} not found: run `cargo build --release` first")
if not shutil.which("nvidia-smi"):
    sys.exit("nvidia-smi not found: this needs a machine with an NVIDIA GPU and its driver")
work = a.work or tempfile.mkdtemp(prefix="lineage-gpu-")
os.makedirs(work, exist_ok=True)
env = dict(os.environ, LINEAGE_STORE=os.path.join(work, "store"), HOME=work)
env.pop("LINEAGE_TIMINGS", None)
torch = subprocess.run(["python3", "-c", "import torch; assert torch.cuda.is_available()"],
                       capture_output=True).returncode == 0


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=work, env=kw.pop("env", env), capture_output=True, text=True, **kw)


def timed(cmd, extra=None):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=dict(env, **(extra or {})),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {cmd}")
    return time.perf_counter() - start


def show(b):
    return json.loads(run([b, "show", "--json"]).stdout)


smi = run(["nvidia-smi", "--query-gpu=index,name,uuid,memory.total,driver_version",
           "--format=csv,noheader,nounits"]).stdout
truth = [[f.strip() for f in line.split(",")] for line in smi.strip().splitlines()]
print(f"nvidia-smi: {truth}")
for b in bins:
    run([b, "run", "-q", "--", "true"], check=True)
    gpus = show(b)["system"]["gpus"]
    got = [[str(g["index"]), g["name"], g["uuid"], str(g["memory_bytes"] >> 20), g["driver_version"]]
           for g in gpus]
    print(f"{b}: {'matches nvidia-smi' if got == truth else f'DIFFERS: {got}'}")

if torch:
    job = ("import os, subprocess, time, torch; x = torch.empty(3 << 30, dtype=torch.uint8, "
           "device='cuda:0'); torch.cuda.synchronize(); print(subprocess.run(['nvidia-smi', "
           "'--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], "
           "capture_output=True, text=True).stdout, os.getpid()); time.sleep(1.5)")
    for b in bins:
        out = run([b, "run", "-q", "--sample-interval", "0.1", "--", "sh", "-c", f'python3 -c "{job}"'])
        rows = [l.split(",") for l in out.stdout.splitlines() if "," in l]
        pid = out.stdout.split()[-1] if out.stdout.split() else "?"
        mine = [int(r[1]) for r in rows if r[0].strip() == pid]
        peak = show(b)["resources"]["gpu_peak_memory_bytes"]
        print(f"{b}: a job holding 3 GiB: recorded peak {peak}, nvidia-smi {mine} MiB for pid {pid}"
              f" ({'equal' if mine and peak and peak.get('0', 0) >> 20 == mine[0] else 'NOT equal'})")
else:
    print("python3 has no PyTorch with CUDA: the memory check and the torch rows are skipped")


def phases(b, cmd):
    out = run([b, "run", "-q", "--"] + cmd, env=dict(env, LINEAGE_TIMINGS="1"))
    return "; ".join(l.replace("lineage: timing: ", "") for l in out.stderr.splitlines()
                     if "timing:" in l)


def alternate(label, cmd, runs, variants):
    times = {"bare": []}
    times.update({name: [] for name, _ in variants})
    for _ in range(runs):
        times["bare"].append(timed(cmd))
        for name, argv in variants:
            times[name].append(timed(argv + cmd))
    print(f"\n{label}, {runs} runs alternated (ms):")
    for name, t in times.items():
        print(f"  {name:40} median {statistics.median(t) * 1e3:8.1f}  min {min(t) * 1e3:8.1f}")


variants = [(f"lineage {i}" if len(bins) > 1 else "lineage", [b, "run", "-q", "--"])
            for i, b in enumerate(bins)]
for b in bins:
    run([b, "run", "-q", "--", "true"])
alternate("`true`", ["true"], a.runs, variants)
for b in bins:
    print(f"\nphases of `{b} run -- true`: {phases(b, ['true'])}")
if torch:
    both = variants + [(name + " --no-observe", argv[:-1] + ["--no-observe", "--"])
                       for name, argv in variants]
    alternate("`python3 -c 'import torch'`", ["python3", "-c", "import torch"], a.torch_runs, both)
if not a.work:
    shutil.rmtree(work, ignore_errors=True)
