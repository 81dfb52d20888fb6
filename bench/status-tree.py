#!/usr/bin/env python3
"""`lineage status` over a pipeline of many small files, beside the stat walk of those files.

Usage: bench/status-tree.py [--lineage PATH ...] [--files N] [--runs N] [--tracked]
                            [--moved | --copied] [--work DIR]

A git repository holds `raw/` (N files of 16-64 bytes in 100 directories) and three stages,
recorded with declared paths: prep (`-i raw -o out`: copies the files to out/train and
out/test), train (`-i out/train -o model.bin`) and eval (`-i model.bin -i out/test -o
metrics.txt`). `lineage status` then answers with nothing changed, `--runs` times per binary
(several --lineage binaries, say the code before and after a change, alternate in the same
sitting); the reference is the stat walk of every file the pipeline holds (`find raw out
-printf`, the least a stat-keyed check must do) and, with --tracked (raw/ committed to git),
`git status`, which a code check must also do. Page cache warm; medians printed. Nothing is
asserted: it reports.

--moved: once recorded, the project is moved (`mv repo repo-moved`, as a user renames or moves
a checkout) and `status` asked there. No recorded path is under it any more, so lineage looks
its files up by their bytes (at most 10,000): the time is the lookups, not the stat walk.

--copied: once recorded, the project is copied (`cp -a repo repo-copy`, the original kept) and
`status` asked in the copy, where the original's runs are read.
"""
import argparse, os, random, shutil, statistics, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", action="append")
p.add_argument("--files", type=int, default=40_000)
p.add_argument("--runs", type=int, default=11)
p.add_argument("--tracked", action="store_true", help="commit raw/ to git")
p.add_argument("--moved", action="store_true", help="ask status in a moved copy of the project")
p.add_argument("--copied", action="store_true", help="ask status in a copy of the project")
p.add_argument("--work", help="keep the repository here (default: a temporary directory)")
a = p.parse_args()
binaries = [os.path.abspath(b) for b in (a.lineage or
            [os.path.join(here, "..", "target", "release", "lineage")])]
for b in binaries:
    if not os.access(b, os.X_OK):
        sys.exit(f"{b} not found: run `cargo build --release` first")
work = a.work or tempfile.mkdtemp(prefix="lineage-status-tree-")
repo = os.path.join(work, "repo")
env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@e", GIT_COMMITTER_NAME="b",
           GIT_COMMITTER_EMAIL="b@e")
env.pop("LINEAGE_TIMINGS", None)


def sh(cmd, store=None, shell=False, ok=(0,)):
    e = dict(env, LINEAGE_STORE=store) if store else env
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=repo, env=e, shell=shell, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if r.returncode not in ok:
        sys.exit(f"failed ({r.returncode}): {cmd}\n{r.stderr.decode(errors='replace')}")
    return wall


if not os.path.isdir(repo):
    os.makedirs(repo)
    rng = random.Random(7)
    for i in range(a.files):
        d = os.path.join(repo, "raw", f"{i % 100:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{i}.txt"), "w") as f:
            f.write("record %d %s\n" % (i, "x" * rng.randint(8, 48)))
    with open(os.path.join(repo, "prep.sh"), "w") as f:
        f.write("rm -rf out; mkdir -p out/train out/test; cp -r raw/0* out/train/; "
                "cp -r raw/[1-9]* out/test/\n")
    with open(os.path.join(repo, "train.sh"), "w") as f:
        f.write("ls -R out/train | wc -l > model.bin\n")
    with open(os.path.join(repo, "eval.sh"), "w") as f:
        f.write("cat model.bin > metrics.txt; ls -R out/test | wc -l >> metrics.txt\n")
    ignored = ["out/", "model.bin", "metrics.txt"] + ([] if a.tracked else ["raw/"])
    with open(os.path.join(repo, ".gitignore"), "w") as f:
        f.write("\n".join(ignored) + "\n")
    sh(["git", "init", "-q"])
    sh(["git", "add", "-A"])
    sh(["git", "commit", "-qm", "pipeline"])
    time.sleep(1.2)  # past the racy second

stores = {}
for n, b in enumerate(binaries):
    store = os.path.join(work, f"store-{n}")
    shutil.rmtree(store, ignore_errors=True)
    for stage in (["-i", "raw", "-o", "out", "--", "sh", "prep.sh"],
                  ["-i", "out/train", "-o", "model.bin", "--", "sh", "train.sh"],
                  ["-i", "model.bin", "-i", "out/test", "-o", "metrics.txt", "--", "sh",
                   "eval.sh"]):
        sh([b, "run", "-q"] + stage, store)
    stores[b] = store
time.sleep(1.2)
for b in binaries:
    sh([b, "status"], stores[b])  # warm: the stat cache learns what was written last
# Moved: every stage is stale there (its code's repository is gone from where it was), so
# status exits 6.
ok = (0,)
if a.moved:
    moved = repo + "-moved"
    shutil.rmtree(moved, ignore_errors=True)
    os.rename(repo, moved)
    repo, ok = moved, (6,)
    for b in binaries:
        sh([b, "status"], stores[b], ok=ok)
if a.copied:
    copy = repo + "-copy"
    shutil.rmtree(copy, ignore_errors=True)
    subprocess.run(["cp", "-a", repo, copy], check=True)
    repo, ok = copy, (0, 6)
    for b in binaries:
        sh([b, "status"], stores[b], ok=ok)

walk, git, times = [], [], {b: [] for b in binaries}
for _ in range(a.runs):
    walk.append(sh("find raw out -printf '%i %s %T@ %C@\\n' > /dev/null", shell=True))
    git.append(sh(["git", "status", "--porcelain"]))
    for b in binaries:
        times[b].append(sh([b, "status"], stores[b], ok=ok))

med = statistics.median
ms = lambda s: f"{s * 1000:.0f} ms"
files = 2 * a.files
print(f"machine: {os.cpu_count()} cores, {os.uname().release}; page cache warm; "
      f"medians of {a.runs}")
print(f"pipeline: {a.files} files in raw/ ({'tracked' if a.tracked else 'ignored'} by git), "
      f"{files} files in all; 3 stages{'; the project moved after recording' if a.moved else ''}"
      f"{'; asked in a copy of the project' if a.copied else ''}")
print(f"references: stat walk of raw/ and out/ {ms(med(walk))}; git status {ms(med(git))}")
print("\n| lineage | status | over the stat walk | over stat walk + git status |\n"
      "| --- | --- | --- | --- |")
for b in binaries:
    t = med(times[b])
    print(f"| {b} | {ms(t)} | {t / med(walk):.1f}x | {t / (med(walk) + med(git)):.1f}x |")
if a.moved and a.work:
    os.rename(repo, repo[: -len("-moved")])  # back where --work keeps it
if a.copied and a.work:
    shutil.rmtree(repo)
if not a.work:
    shutil.rmtree(work)
