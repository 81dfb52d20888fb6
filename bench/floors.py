#!/usr/bin/env python3
"""What the record alone costs: the floors under rows 3 and 5 of bench/targets.py, in one sitting.

A run's record is durable (two short SQLite transactions, a WAL emptied into the database on
close: docs/store.md, "Writes"). A reference tool (`b3sum`, `true`) keeps nothing. These
floors measure what SQLite itself spends on lineage's own schema for the same record, in
process (Python's sqlite3 module, no process start), so that each target can be read as
"how far above the floor" and not only "how far above the reference":

  3. `lineage run -i tree -- true`, 20,000 files, a fresh store: the floor is parallel b3sum
     over the tree plus SQLite writing the tree's manifest (one row per file in
     `dir_manifest` and its index by file hash, one `dir_subdirs` row per directory, one
     stat-cache row per file) and emptying the WAL. With the stat walk lineage takes before
     launch (`find -printf`, row 4's reference) beside it; and the same record with the
     manifest's hashes as hex text, as schema 17 kept them.
  5. `lineage run -- true`: the floor is starting the 20 MB binary (`lineage --version`
     over `true`) plus SQLite opening the store, a first transaction, a second, and
     emptying the WAL (what any durable recorder around the job must do), plus starting the
     job and waiting for it (posix_spawn of `true` from a running process): the reference
     is `true` started by the benchmark, so a wrapper starts one more process than it does.
     `env true` over `true` is printed beside it: what a wrapper that keeps nothing costs.

Usage: bench/floors.py [--lineage PATH] [--b3sum PATH] [--runs N] [--files N] [--work DIR]
The tree is bench/tree.py's, as bench/targets.py makes it (the same --work reuses it). Python's SQLite
is the system's, not the one bundled in lineage (the version is printed). Nothing is
asserted: it reports.
"""
import argparse, os, random, shutil, sqlite3, statistics, subprocess, sys, tempfile, time

from tree import small_files

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
p.add_argument("--b3sum")
p.add_argument("--runs", type=int, default=11)
p.add_argument("--files", type=int, default=20000)
p.add_argument("--work", help="keep the generated data here (default: a temporary directory)")
a = p.parse_args()
lineage = os.path.abspath(a.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")
b3sum = a.b3sum or shutil.which("b3sum") or os.path.expanduser("~/.cargo/bin/b3sum")
if not os.access(b3sum, os.X_OK):
    sys.exit("b3sum not found: `cargo install --locked b3sum`, or pass --b3sum PATH")
ncpu = os.cpu_count() or 1
work = a.work or tempfile.mkdtemp(prefix="lineage-floors-")
os.makedirs(work, exist_ok=True)
env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=os.path.join(work, "home"),
           XDG_CONFIG_HOME=os.path.join(work, "home", "config"))
env.pop("LINEAGE_STORE", None)

tree = os.path.join(work, "tree")
if not os.path.isdir(tree):
    small_files(tree, a.files)
    time.sleep(1.2)
subprocess.run(f"find {tree} -type f -exec cat {{}} + > /dev/null", shell=True, check=True)
files = []
for root, dirs, names in os.walk(tree):
    dirs.sort()
    for n in sorted(names):
        path = os.path.join(root, n)
        st = os.stat(path)
        files.append((os.path.relpath(path, tree), st))
subdirs = sorted({os.path.dirname(rel) for rel, _ in files} - {""})


def timed(cmd, cwd=work, shell=False, e=env):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, shell=shell, env=e, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def new_store(name):
    """A store made by lineage itself (its schema, one run), so the floor writes its tables
    (a lineage from before schema 18 has no `dir_manifest`: build the current one)."""
    path = os.path.join(work, "floor-stores", name)
    shutil.rmtree(path, ignore_errors=True)
    timed([lineage, "run", "-q", "--no-observe", "--", "true"], e=dict(env, LINEAGE_STORE=path))
    return path


def connect(store):
    c = sqlite3.connect(os.path.join(store, "lineage.db"), isolation_level=None)
    c.execute("PRAGMA busy_timeout = 5000")
    c.execute("PRAGMA synchronous = NORMAL")
    c.execute("PRAGMA foreign_keys = ON")
    return c


def record_tree(store, text=False):
    """The tree's manifest and cache rows, as a fresh run of row 3 writes them: seconds.
    The manifest goes into `dir_manifest`, its hashes 32-byte blobs (schema 18); with `text`,
    into a table shaped as `dir_entries` was before, its hashes 64 hex digits (schema 17)."""
    rnd = random.Random(3)
    h = lambda: rnd.randbytes(32)
    entries = [(rel, h(), st.st_size, 0) for rel, st in files]
    cache = [(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, h())
             for _, st in files]
    root = h()
    subs = [(d, h().hex()) for d in subdirs]
    c = connect(store)
    table, key = "dir_manifest", root
    if text:
        table, key = "dir_entries_text", root.hex()
        entries = [(p, f.hex(), n, x) for p, f, n, x in entries]
        c.execute("CREATE TABLE dir_entries_text (dir_hash TEXT NOT NULL REFERENCES artifacts "
                  "(hash), path TEXT NOT NULL, file_hash TEXT NOT NULL, size INTEGER NOT NULL, "
                  "executable INTEGER NOT NULL, PRIMARY KEY (dir_hash, path)) WITHOUT ROWID")
        c.execute("CREATE INDEX dir_entries_text_by_file ON dir_entries_text (file_hash)")
    # Staged in memory first (not timed), so that what is timed is SQLite's own work on the
    # store, not the Python interpreter's per row.
    c.execute("PRAGMA temp_store = MEMORY")
    c.execute("CREATE TEMP TABLE e (path TEXT, file_hash, size INTEGER, executable INTEGER)")
    c.execute("CREATE TEMP TABLE s (path TEXT, sub_hash TEXT)")
    c.execute("CREATE TEMP TABLE k (dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER, "
              "ctime_ns INTEGER, hash BLOB)")
    c.executemany("INSERT INTO e VALUES (?, ?, ?, ?)", entries)
    c.executemany("INSERT INTO s VALUES (?, ?)", subs)
    c.executemany("INSERT INTO k VALUES (?, ?, ?, ?, ?, ?)", cache)
    start = time.perf_counter()
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO artifacts (hash, kind, size, file_count) VALUES (?, 'dir', ?, ?)",
              (root.hex(), sum(st.st_size for _, st in files), len(files)))
    c.execute(f"INSERT OR IGNORE INTO {table} (dir_hash, path, file_hash, size, executable) "
              "SELECT ?, path, file_hash, size, executable FROM temp.e", (key,))
    c.execute("INSERT OR IGNORE INTO dir_subdirs (dir_hash, path, sub_hash) "
              "SELECT ?, path, sub_hash FROM temp.s", (root.hex(),))
    c.execute("COMMIT")
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT OR REPLACE INTO stat_cache (dev, ino, size, mtime_ns, ctime_ns, hash) "
              "SELECT * FROM temp.k")
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    c.close()
    return time.perf_counter() - start


def record_wrapper(store):
    """Open, a first transaction, the job (`true`, posix_spawn), a second transaction, the WAL
    emptied, closed: seconds, and the job's share of them."""
    start = time.perf_counter()
    c = connect(store)
    c.execute("SELECT count(*) FROM runs").fetchone()
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO floor_runs (body) VALUES (?)", (os.urandom(1500).hex(),))
    c.execute("COMMIT")
    job = time.perf_counter()
    pid = os.posix_spawn("/usr/bin/true", ["true"], os.environ)
    os.waitpid(pid, 0)
    job = time.perf_counter() - job
    c.execute("BEGIN IMMEDIATE")
    c.execute("UPDATE floor_runs SET body = ? WHERE id = (SELECT max(id) FROM floor_runs)",
              (os.urandom(1500).hex(),))
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    c.close()
    return time.perf_counter() - start, job


def spawn_true():
    start = time.perf_counter()
    os.waitpid(os.posix_spawn("/usr/bin/true", ["true"], os.environ), 0)
    return time.perf_counter() - start


wrapper_store = new_store("wrapper")
c = connect(wrapper_store)
c.execute("CREATE TABLE IF NOT EXISTS floor_runs (id INTEGER PRIMARY KEY, body TEXT)")
c.close()
per = max(1, -(-a.files // (ncpu * 4)))
t = {k: [] for k in ("xb", "find", "rec", "rect", "l3", "w", "wjob", "true", "ver", "l5", "t5",
                     "env")}
for i in range(a.runs):
    t["xb"].append(timed(f"find {tree} -type f -print0 | xargs -0 -P{ncpu} -n {per} {b3sum}",
                         shell=True))
    t["find"].append(timed(["find", tree, "-printf", "%i %s %T@ %C@\\n"]))
    t["rec"].append(record_tree(new_store(f"tree{i}")))
    t["rect"].append(record_tree(new_store(f"tree{i}"), text=True))
    fresh = os.path.join(work, "floor-stores", f"lineage{i}")
    shutil.rmtree(fresh, ignore_errors=True)
    t["l3"].append(timed([lineage, "run", "-q", "-i", tree, "--", "true"],
                         e=dict(env, LINEAGE_STORE=fresh)))
    for _ in range(20):
        w, job = record_wrapper(wrapper_store)
        t["w"].append(w)
        t["wjob"].append(job)
        t["true"].append(spawn_true())
        t["t5"].append(timed(["true"]))
        t["ver"].append(timed([lineage, "--version"]))
        t["env"].append(timed(["env", "true"]))
        t["l5"].append(timed([lineage, "run", "-q", "--", "true"],
                             e=dict(env, LINEAGE_STORE=wrapper_store)))
m = {k: statistics.median(v) for k, v in t.items()}
ms = lambda x: f"{x * 1000:.1f} ms"
print(f"machine: {ncpu} cores, {os.uname().release}; medians of {a.runs} (row 5: of "
      f"{a.runs * 20}); Python's SQLite {sqlite3.sqlite_version}; work dir {work}")
print()
print("| row | lineage | reference | floor: the record alone | reference + floor | "
      "lineage / (reference + floor) |")
print("| --- | --- | --- | --- | --- | --- |")
floor3 = m["xb"] + m["rec"]
print(f"| 3: `run -i tree -- true`, {len(files)} files, fresh store | {ms(m['l3'])} | "
      f"xargs -P{ncpu} b3sum {ms(m['xb'])} | manifest and cache rows, WAL emptied: "
      f"{ms(m['rec'])} | {ms(floor3)} ({m['xb'] / floor3:.2f}x b3sum's throughput at best; "
      f"with the stat walk, {ms(m['find'])}: {m['xb'] / (floor3 + m['find']):.2f}x) | "
      f"{m['l3'] / floor3:.2f}x |")
print(f"| 3, the manifest's hashes as hex text (schema 17) | | | {ms(m['rect'])} | "
      f"{ms(m['xb'] + m['rect'])} ({m['xb'] / (m['xb'] + m['rect']):.2f}x b3sum's throughput "
      f"at best) | |")
rec5 = m["w"] - m["wjob"]
start5 = m["ver"] - m["t5"]
floor5 = rec5 + start5 + m["true"]
print(f"| 5: `run -- true` | +{ms(m['l5'] - m['t5'])} | true {ms(m['t5'])} | two transactions "
      f"and the WAL emptied {ms(rec5)}, the binary's start (`--version` over `true`) "
      f"{ms(start5)}, the job started and waited for {ms(m['true'])} (`env true` over `true`: "
      f"+{ms(m['env'] - m['t5'])}) | +{ms(floor5)} | {(m['l5'] - m['t5']) / floor5:.1f}x |")
if not a.work:
    shutil.rmtree(work, ignore_errors=True)
