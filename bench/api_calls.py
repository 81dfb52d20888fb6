#!/usr/bin/env python3
"""The in-job API's cost to the job (docs/python.md, docs/performance.md "The in-job API").

Times N calls of `lineage_ml.metric(name, value, step=i)` in one Python process:

  1. under `lineage run` (the calls reach the run; lineage takes them on its own thread)
  2. outside `lineage run` (every call does nothing)
  3. the reference: the same point appended as a JSON line to a buffered file, the way a job
     logs metrics without a tracker (`f.write(json.dumps({...}) + "\\n")`)

and, for row 1, what reached the run: the points kept, the messages dropped (lineage not
caught up), and lineage's own max RSS. Also times `lineage run -- true` with the API's socket
(what the channel adds to every run: LINEAGE_TIMINGS=1 marks).

Usage: bench/api_calls.py [--lineage PATH] [--calls N] [--runs R]
Build first: `cargo build --release`. Nothing here is asserted: it reports.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
p.add_argument("--calls", type=int, default=200_000)
p.add_argument("--runs", type=int, default=5)
a = p.parse_args()
lineage = os.path.abspath(a.lineage)
work = tempfile.mkdtemp(prefix="lineage-api-bench-")
env = dict(os.environ, PYTHONPATH=os.path.join(here, "..", "python"), LINEAGE_STORE=os.path.join(work, "store"))
env.pop("LINEAGE_API", None)
env.pop("LINEAGE_RUN_ID", None)

job = os.path.join(work, "job.py")
with open(job, "w") as f:
    f.write(
        "import json, sys, time\n"
        "import lineage_ml as lineage\n"
        "n, mode = int(sys.argv[1]), sys.argv[2]\n"
        "t = time.perf_counter()\n"
        "if mode == 'file':\n"
        "    with open('metrics.jsonl', 'w') as out:\n"
        "        for i in range(n):\n"
        "            out.write(json.dumps({'name': 'loss', 'value': i * 0.5, 'step': i}) + '\\n')\n"
        "else:\n"
        "    for i in range(n):\n"
        "        lineage.metric('loss', i * 0.5, step=i)\n"
        "print(time.perf_counter() - t)\n"
    )


def timed(cmd):
    out = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1]), out.stderr


rows = {"lineage run": [], "outside lineage run": [], "JSON lines to a file": []}
kept, dropped, rss = [], [], []
for _ in range(a.runs):
    t, _ = timed([sys.executable, "-W", "ignore", job, str(a.calls), "api"])
    rows["outside lineage run"].append(t)
    t, _ = timed([sys.executable, job, str(a.calls), "file"])
    rows["JSON lines to a file"].append(t)
    t, err = timed(["/usr/bin/time", "-f", "maxrss %M", lineage, "run", "-q", "--", sys.executable, job, str(a.calls), "api"])
    rows["lineage run"].append(t)
    m = re.search(r"maxrss (\d+)", err)
    rss.append(int(m.group(1)) if m else 0)
    shown = json.loads(subprocess.run([lineage, "show", "--json"], cwd=work, env=env, capture_output=True, text=True, check=True).stdout)
    kept.append(len(shown.get("metric_series", {}).get("loss", [])))
    d = [int(n.split()[3]) for n in shown["notes"] if n.startswith("the job dropped ")]
    dropped.append(sum(d))

ref = statistics.median(rows["JSON lines to a file"])
print(f"{a.calls} calls of metric(name, value, step), median of {a.runs} runs:")
for name, ts in rows.items():
    med = statistics.median(ts)
    print(f"  {name:22s} {med:7.3f} s  {med / a.calls * 1e6:6.2f} us/call  {med / ref:5.2f}x the file")
print(f"  under lineage run: points kept {statistics.median(kept):.0f} (cap 100000 a metric), "
      f"messages dropped {statistics.median(dropped):.0f}, lineage max RSS {statistics.median(rss) / 1024:.1f} MiB")

# What the channel adds to every run: open (made while the capture runs) and close.
opens, closes = [], []
for _ in range(20):
    err = subprocess.run([lineage, "run", "-q", "--", "true"], cwd=work, env=dict(env, LINEAGE_TIMINGS="1"),
                         capture_output=True, text=True).stderr
    marks = dict((m.group(1), float(m.group(2))) for m in re.finditer(r"timing: (.+?) at ([\d.]+) ms", err))
    if "in-job API listening" in marks and "run begun" in marks:
        opens.append(marks["in-job API listening"] - marks["run begun"])
    if "in-job API closed" in marks and "job ended" in marks:
        closes.append(marks["in-job API closed"] - marks["job ended"])
print(f"lineage run -- true: the socket ready {statistics.median(opens):.2f} ms after the run is begun "
      f"(made while the capture runs), closed {statistics.median(closes):.2f} ms after the job ended (median of 20)")
