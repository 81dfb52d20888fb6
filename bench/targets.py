#!/usr/bin/env python3
"""The whole-process targets of docs/performance.md, each beside its reference, in one sitting.

Each row times a whole `lineage run` process (observed, as by default) (what the user waits for) and the reference
command on the same data, alternately, page cache warm, and prints medians, the ratio, and
lineage's own phases (LINEAGE_TIMINGS=1) beside them:

  1. `lineage run -i big.bin -- true`, a fresh store     vs `b3sum big.bin`
  2. the same with --hash-before-launch                   vs `b3sum big.bin`
  3. `lineage run -i tree -- true`, 20,000 files of 4-16 KiB, a fresh store
                                vs `find tree -type f -print0 | xargs -0 -P2 -n 2500 b3sum`
  4. the same tree, second run, nothing changed           vs `find tree -printf '%i %s %T@ %C@\\n'`
  5. `lineage run -- true` in a git repository of 20 files, a store of earlier runs  vs `true`
     (and `--no-observe` beside it: what observing the job's files adds)
  6. (only with --rows 6) `lineage run -- true` in a git repository holding 46,000 untracked,
     not ignored files (data missing from .gitignore), a store of earlier runs
                                vs `git status --porcelain --untracked-files=all`

"A fresh store" is a directory that does not exist yet: its creation is part of the run, as it
is for a new user. The commands run in a git repository of 20 committed files; the data lies
beside it, outside the repository.

Usage: bench/targets.py [--lineage PATH] [--b3sum PATH] [--runs N] [--big-mib N] [--files N]
                        [--rows 1,2,3,4,5] [--untracked N] [--work DIR]
Build first: `cargo build --release`; b3sum: `cargo install --locked b3sum`.
Nothing here is asserted: it reports.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

from tree import small_files

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
p.add_argument("--b3sum")
p.add_argument("--runs", type=int, default=11)
p.add_argument("--big-mib", type=int, default=1024)
p.add_argument("--files", type=int, default=20000)
p.add_argument("--rows", default="1,2,3,4,5")
p.add_argument("--untracked", type=int, default=46000)
p.add_argument("--work", help="keep the generated data here (default: a temporary directory)")
a = p.parse_args()
rows = {int(r) for r in a.rows.split(",")}
lineage = os.path.abspath(a.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")
b3sum = a.b3sum or shutil.which("b3sum") or os.path.expanduser("~/.cargo/bin/b3sum")
if not os.access(b3sum, os.X_OK):
    sys.exit("b3sum not found: `cargo install --locked b3sum`, or pass --b3sum PATH")
ncpu = os.cpu_count() or 1


def timed(cmd, cwd, env=None, shell=False):
    """Wall seconds and stderr of one command, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, shell=shell, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {cmd}\n{proc.stderr.decode(errors='replace')}")
    return wall, proc.stderr.decode(errors="replace")


def phases(stderr):
    """LINEAGE_TIMINGS=1 marks: {phase: ms}, the last of each."""
    out = {}
    for line in stderr.splitlines():
        if line.startswith("lineage: timing: ") and " at " in line:
            phase, at = line[len("lineage: timing: "):].rsplit(" at ", 1)
            out[phase] = float(at.split()[0])
    return out


def ms(x):
    return f"{x * 1000:7.1f} ms"


work = a.work or tempfile.mkdtemp(prefix="lineage-targets-")
os.makedirs(work, exist_ok=True)
env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1",
           GIT_CONFIG_GLOBAL=os.path.join(work, "gitconfig"),
           HOME=os.path.join(work, "home"), XDG_CONFIG_HOME=os.path.join(work, "home", "config"))
env.pop("LINEAGE_STORE", None)
with open(env["GIT_CONFIG_GLOBAL"], "w") as f:
    f.write("[user]\n\tname = Bench\n\temail = bench@example.com\n")
repo = os.path.join(work, "repo")
if not os.path.isdir(os.path.join(repo, ".git")):
    os.makedirs(repo, exist_ok=True)
    for i in range(20):
        with open(os.path.join(repo, f"file{i}.py"), "w") as f:
            f.write(f"x = {i}\n" * 50)
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)

big = os.path.join(work, "big.bin")
if not os.path.exists(big) or os.path.getsize(big) != a.big_mib << 20:
    with open(big, "wb") as f:
        for _ in range(a.big_mib):
            f.write(os.urandom(1 << 20))
tree = os.path.join(work, "tree")
small_files(tree, a.files)
messy = os.path.join(work, "messy")
if 6 in rows and not os.path.isdir(os.path.join(messy, ".git")):
    os.makedirs(messy, exist_ok=True)
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=messy, env=env, check=True)
    for i in range(a.untracked):
        d = os.path.join(messy, "junk", f"d{i // 1000:03}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05}.txt"), "w") as f:
            f.write(f"{i}\n" * 3)
time.sleep(1.2)  # past the racy window, as data on disk would be
subprocess.run(f"cat {big} > /dev/null && find {tree} -type f -exec cat {{}} + > /dev/null",
               shell=True, check=True)

stores = [0]


def new_store():
    """The path of a store that does not exist yet."""
    stores[0] += 1
    path = os.path.join(work, "stores", str(stores[0]))
    shutil.rmtree(path, ignore_errors=True)
    return dict(env, LINEAGE_STORE=path, LINEAGE_TIMINGS="1")


def run_lineage(args, e):
    wall, err = timed([lineage, "run", "-q", *args, "--", "true"], repo, e)
    return wall, phases(err)


print(f"machine: {ncpu} cores, {os.uname().release}; page cache warm; medians of {a.runs}; "
      f"work dir {work}")
print(f"lineage: {lineage}; {subprocess.run([b3sum, '--version'], capture_output=True, text=True).stdout.strip()}")
per = max(1, -(-a.files // (ncpu * 4)))  # the issue's -n 2500 for 20,000 files on 2 cores
results = []
t = {k: [] for k in ("b3", "l1", "l1h", "lb", "lbh", "xb", "t1", "t1h", "find", "t2", "t2h",
                     "true", "w", "wn", "gs", "u")}
if 6 in rows:  # the store of earlier runs: the first run's hashes cached
    e6 = dict(env, LINEAGE_STORE=os.path.join(work, "stores", "messy"))
    timed([lineage, "run", "-q", "--", "true"], messy, e6)
for _ in range(a.runs):
    if rows & {1, 2}:
        t["b3"].append(timed([b3sum, big], work)[0])
    if 1 in rows:
        wall, ph = run_lineage(["-i", big], new_store())
        t["l1"].append(wall)
        t["l1h"].append((ph["inputs hashed"] - ph["spawned"]) / 1000)
    if 2 in rows:
        wall, ph = run_lineage(["--hash-before-launch", "-i", big], new_store())
        t["lb"].append(wall)
        t["lbh"].append((ph["inputs walked"] - ph["planned"]) / 1000)
    if rows & {3, 4}:
        t["xb"].append(timed(f"find {tree} -type f -print0 | xargs -0 -P{ncpu} -n {per} {b3sum}",
                             work, shell=True)[0])
        e = new_store()
        wall, ph = run_lineage(["-i", tree], e)
        t["t1"].append(wall)
        t["t1h"].append((ph["inputs walked"] - ph["planned"] + ph["inputs hashed"]
                         - ph["spawned"]) / 1000)
    if 4 in rows:
        t["find"].append(timed(["find", tree, "-printf", "%i %s %T@ %C@\\n"], work)[0])
        wall, ph = run_lineage(["-i", tree], e)
        t["t2"].append(wall)
        t["t2h"].append((ph["inputs walked"] - ph["planned"] + ph["inputs hashed"]
                         - ph["spawned"]) / 1000)
    if 5 in rows:
        e5 = dict(env, LINEAGE_STORE=os.path.join(work, "stores", "wrapper"))
        for _ in range(20):
            t["true"].append(timed(["true"], repo, e5)[0])
            t["w"].append(timed([lineage, "run", "-q", "--", "true"], repo, e5)[0])
            t["wn"].append(timed([lineage, "run", "-q", "--no-observe", "--", "true"], repo, e5)[0])

    if 6 in rows:
        t["gs"].append(timed(["git", "status", "--porcelain", "--untracked-files=all"], messy,
                             env)[0])
        t["u"].append(timed([lineage, "run", "-q", "--", "true"], messy, e6)[0])

m = {k: statistics.median(v) for k, v in t.items() if v}
print()
print("| work | lineage | reference | ratio | target | lineage's phase |")
print("| --- | --- | --- | --- | --- | --- |")
if 1 in rows:
    print(f"| `run -i big.bin -- true` ({a.big_mib} MiB), fresh store | {ms(m['l1'])} | b3sum "
          f"{ms(m['b3'])} | {m['b3'] / m['l1']:.2f}x throughput | >= 0.95x | hashing after "
          f"launch {ms(m['l1h'])} ({m['b3'] / m['l1h']:.2f}x) |")
if 2 in rows:
    print(f"| same, `--hash-before-launch` | {ms(m['lb'])} | | {m['b3'] / m['lb']:.2f}x | >= 0.95x "
          f"| hashing before launch {ms(m['lbh'])} ({m['b3'] / m['lbh']:.2f}x) |")
if rows & {3, 4}:
    print(f"| `run -i tree -- true`, {a.files} files, fresh store | {ms(m['t1'])} | xargs -P{ncpu} "
          f"b3sum {ms(m['xb'])} | {m['xb'] / m['t1']:.2f}x | >= 0.9x | walk and hash "
          f"{ms(m['t1h'])} ({m['xb'] / m['t1h']:.2f}x) |")
if 4 in rows:
    print(f"| same tree, second run | {ms(m['t2'])} | find -printf {ms(m['find'])} | "
          f"{m['t2'] / m['find']:.2f}x the stat walk | <= 1.2x | walk and lookups "
          f"{ms(m['t2h'])} ({m['t2h'] / m['find']:.2f}x) |")
if 5 in rows:
    print(f"| `run -- true` | {ms(m['w'])} | true {ms(m['true'])} | "
          f"+{(m['w'] - m['true']) * 1000:.1f} ms | <= +4 ms | `--no-observe`: "
          f"+{(m['wn'] - m['true']) * 1000:.1f} ms |")
if 6 in rows:
    print(f"| `run -- true`, {a.untracked} untracked files | {ms(m['u'])} | git status "
          f"{ms(m['gs'])} | {m['u'] / m['gs']:.1f}x | | |")
if not a.work:
    shutil.rmtree(work, ignore_errors=True)
