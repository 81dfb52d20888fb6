#!/usr/bin/env python3
"""The team store against the local store, side by side on one machine.

    cargo build --release && cargo bench --bench ancestry
    scripts/with-postgres.sh python3 bench/team-store.py [--writers 4] [--runs 40] [--repeat 15]
                                                         [--after 40] [--faults 3] [--parts 1,2,3,4]
                                                         [--compare OLD]

1. Recording throughput: W writer processes at once, each recording R runs of a small job
   (`lineage run -q -i input.txt -o out_W_I.txt -- cp ...`), into one local SQLite store and
   then into PostgreSQL (each writer its own replica, as separate hosts would). Prints runs
   per second for both, and the ratio.
2. `lineage show` latency on a 100,000-run store: the store `cargo bench --bench ancestry`
   fills (kept in target/bench-stores/; filled here through that bench when missing), copied,
   delivered to PostgreSQL with `lineage push`; then three `lineage list -n 1` on an empty
   replica (what a reading command's own sync, bounded by LINEAGE_PG_TIMEOUT, brings), and
   `lineage pull` (the one-time cold sync). Then the median of `show DEEPEST --format json`
   (290 runs of ancestry) on the SQLite store and through the team store (which first asks
   the server for new runs).
3. Cost per run after the job: `lineage run -q -- true` in a small git repository, into a
   local store and into the team store (server up, a member of lineage_writer, the setup of
   docs/team-store.md), alternately, after a warm-up; medians, the difference and the ratio.
   The same for `lineage list` (the team store first asks the server for new runs).
   --compare OLD adds an older lineage binary's runs, local and into a team store of its own
   as the database's owner (all an older lineage could be), and the new one's as the owner.
4. A server that is down, slow or unresponsive, through a port of this script's in front of
   the real server: down (nothing listens: connection refused), slow (every chunk the server
   sends is held 1 s: each round trip costs 1 s), unresponsive (accepts the connection, reads
   nothing, answers nothing). For each, with LINEAGE_PG_TIMEOUT unset (5 s) and =1: the wall
   time of `lineage run -q -- true`, `lineage list` and `lineage rerun -q RUN` (which syncs
   before the job, as a reading command, and delivers after it), their exit codes, a job's
   exit code (`lineage run -- sh -c 'exit 7'` must exit 7), and the runs in the replica (every
   run kept). First, the slow server with LINEAGE_PG_TIMEOUT=60: how many replies each command
   waits for. Then the port forwards again and one `lineage list` delivers what was kept; the
   server must end with every run recorded.

--parts 3,4 runs only those (2 needs the 100,000-run store and takes minutes).
Needs LINEAGE_TEST_POSTGRES (a superuser URL; scripts/with-postgres.sh sets it).
"""

import argparse
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("LINEAGE_BIN") or os.path.join(ROOT, "target", "release", "lineage")
BENCH_STORE = os.path.join(ROOT, "target", "bench-stores", "ancestry-2000x50-v3")


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def new_database(admin):
    import uuid
    name = "bench_" + uuid.uuid4().hex[:12]
    sh("psql", admin, "-qc", f"CREATE DATABASE {name}")
    return admin.rsplit("/", 1)[0] + "/" + name, name


def writers(store_env, work, n_writers, n_runs):
    """Seconds for n_writers processes recording n_runs each, at once."""
    def one(w):
        env = dict(os.environ, **store_env(w))
        for i in range(n_runs):
            out = f"out_{w}_{i}.txt"
            subprocess.run([BIN, "run", "-q", "-i", "input.txt", "-o", out, "--", "cp", "input.txt", out],
                           cwd=work, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(n_writers) as pool:
        list(pool.map(one, range(n_writers)))
    return time.perf_counter() - start


def median_ms(args, env, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        p = subprocess.run([BIN] + args, env=env, capture_output=True)
        times.append((time.perf_counter() - start) * 1000)
        if p.returncode != 0:
            sys.exit(f"{args}: {p.stderr.decode()}")
    return statistics.median(times)


class FaultyPort:
    """127.0.0.1:port in front of the real server, in one mode at a time: "up" (forwards),
    "slow" (forwards, holding every chunk from the server `delay` seconds), "hang" (accepts,
    never reads nor answers), "down" (nothing listens: connection refused)."""

    def __init__(self, upstream, delay=1.0):
        self.upstream, self.delay = upstream, delay
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener, self.socks, self.stop = None, [], threading.Event()
        self.replies = 0  # chunks the server sent (each held `delay` when slow)

    def set(self, mode):
        self.close()
        self.stop = threading.Event()
        if mode == "down":
            return
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.acceptor = threading.Thread(target=self._accept, args=(self.listener, mode, self.stop),
                                         daemon=True)
        self.acceptor.start()

    def close(self):
        self.stop.set()
        if self.listener:
            # The accepting thread's poll holds the socket (listening) until it returns.
            self.acceptor.join()
            self.listener.close()
            self.listener = None
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.socks = []

    def _accept(self, listener, mode, stop):
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.socks.append(client)
            if mode == "hang":
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.socks.append(server)
            delay = self.delay if mode == "slow" else 0
            threading.Thread(target=self._pump, args=(client, server, 0, False, stop), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, delay, True, stop), daemon=True).start()

    def _pump(self, src, dst, delay, replies, stop):
        try:
            while not stop.is_set():
                chunk = src.recv(65536)
                if not chunk:
                    break
                self.replies += replies
                if delay:
                    time.sleep(delay)
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def timed(args, env, cwd):
    """(seconds, exit code, stderr) of one command."""
    start = time.perf_counter()
    p = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, p.returncode, p.stderr


def runs_in(store):
    with sqlite3.connect(f"file:{os.path.join(store, 'lineage.db')}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def small_repo(tmp):
    """A git repository of 20 small files, a git configuration and a HOME of the bench's own
    (the signing key made on first use is the bench's), as bench/wrapper-overhead.py."""
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(tmp, "gitconfig"),
               HOME=os.path.join(tmp, "home"), XDG_CONFIG_HOME=os.path.join(tmp, "home", "config"))
    for k in ("LINEAGE_STORE", "LINEAGE_REPLICA", "LINEAGE_PG_TIMEOUT", "LINEAGE_TIMINGS", "PGPASSWORD"):
        env.pop(k, None)
    with open(env["GIT_CONFIG_GLOBAL"], "w") as f:
        f.write("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    for i in range(20):
        with open(os.path.join(repo, f"file{i}.py"), "w") as f:
            f.write(f"x = {i}\n" * 50)
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git"] + cmd, cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
    return repo, env


def team_writer(admin, tmp, env):
    """A new database set up as docs/team-store.md does (the schema by `lineage team migrate`
    as its owner) and a login role in lineage_writer: (URL without password, password)."""
    url, name = new_database(admin)
    sh("psql", admin, "-qc", "DO $$ BEGIN CREATE ROLE lineage_writer NOLOGIN; "
       "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    role, password = "bench_" + secrets.token_hex(4), secrets.token_hex(16)
    sh("psql", admin, "-qc", f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE lineage_writer")
    sh(BIN, "team", "migrate", url, env=dict(env, LINEAGE_STORE=os.path.join(tmp, "admin-store")))
    host_port = admin.rsplit("@", 1)[1].rsplit("/", 1)[0]
    return f"postgres://{role}@{host_port}/{name}", password, url


def after_job(admin, tmp, n, old=None):
    """Part 3: `lineage run -q -- true` and `lineage list`, local store against team store;
    with `old` (an older lineage), its runs too, as the database's owner (an older lineage
    has no writer role)."""
    repo, env = small_repo(os.path.join(tmp, "after"))
    url, password, _ = team_writer(admin, tmp, env)
    local = dict(env, LINEAGE_STORE=os.path.join(tmp, "after-local"))
    team = dict(env, LINEAGE_STORE=url, PGPASSWORD=password, LINEAGE_REPLICA=os.path.join(tmp, "after-replica"))
    cases = {
        "run, local": ([BIN, "run", "-q", "--", "true"], local),
        "run, team": ([BIN, "run", "-q", "--", "true"], team),
        "list, local": ([BIN, "list"], local),
        "list, team": ([BIN, "list"], team),
        "--version": ([BIN, "--version"], local),
    }
    if old:
        def owner(tag):
            u, _ = new_database(admin)
            user_pw, host_db = u.split("://", 1)[1].rsplit("@", 1)
            return dict(env, LINEAGE_STORE=f"postgres://{user_pw.split(':')[0]}@{host_db}",
                        PGPASSWORD=user_pw.split(":", 1)[1],
                        LINEAGE_REPLICA=os.path.join(tmp, f"after-replica-{tag}"))
        cases["run, team as owner"] = ([BIN, "run", "-q", "--", "true"], owner("owner"))
        cases["run, old local"] = ([old, "run", "-q", "--", "true"],
                                   dict(local, LINEAGE_STORE=os.path.join(tmp, "after-local-old")))
        cases["run, old team as owner"] = ([old, "run", "-q", "--", "true"], owner("old"))
    times = {k: [] for k in cases}
    for i in range(n + 3):  # three warm-up rounds, alternately
        for k, (args, e) in cases.items():
            t, rc, err = timed(args, e, repo)
            if rc != 0 or (err.strip() and "team" in k):
                sys.exit(f"{k}: exit {rc}: {err}")
            if i >= 3:
                times[k].append(t * 1000)
    _, _, timings = timed([BIN, "run", "-q", "--", "true"], dict(team, LINEAGE_TIMINGS="1"), repo)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n3. after the job: medians of {n}, alternately, in a git repository of 20 files")
    print(f"   lineage --version (process start):  {med['--version']:7.1f} ms")
    for what in ("run", "list"):
        lo, te = med[f"{what}, local"], med[f"{what}, team"]
        label = "run -q -- true" if what == "run" else "list"
        print(f"   lineage {label:<14} local store:  {lo:7.1f} ms")
        print(f"   lineage {label:<14} team store:   {te:7.1f} ms   (+{te - lo:.1f} ms, ratio {te / lo:.2f})")
    if old:
        lo = med["run, local"]
        te = med["run, team as owner"]
        print(f"   lineage run -q -- true team store as the database's owner: {te:7.1f} ms   (+{te - lo:.1f} ms)")
        lo, te = med["run, old local"], med["run, old team as owner"]
        print(f"   old lineage ({old}):")
        print(f"   lineage run -q -- true local store:  {lo:7.1f} ms")
        print(f"   lineage run -q -- true team store as the database's owner: {te:7.1f} ms   "
              f"(+{te - lo:.1f} ms, ratio {te / lo:.2f})")
    print("   one team run with LINEAGE_TIMINGS=1:")
    for line in timings.splitlines():
        if "timing:" in line:
            print("     " + line.split("timing: ", 1)[1])


def faults(admin, tmp, reps):
    """Part 4: the server down, slow, unresponsive."""
    repo, env = small_repo(os.path.join(tmp, "faults"))
    url, password, admin_db = team_writer(admin, tmp, env)
    upstream = int(url.rsplit(":", 1)[1].split("/")[0])
    port = FaultyPort(upstream)
    url = url.replace(f":{upstream}/", f":{port.port}/")
    replica = os.path.join(tmp, "faults-replica")
    team = dict(env, LINEAGE_STORE=url, PGPASSWORD=password, LINEAGE_REPLICA=replica)
    local = dict(env, LINEAGE_STORE=os.path.join(tmp, "faults-local"))
    base = statistics.median(timed([BIN, "run", "-q", "--", "true"], local, repo)[0] for _ in range(5))
    port.set("up")
    for args in ([BIN, "run", "-q", "--", "true"], [BIN, "list"]):
        _, rc, err = timed(args, team, repo)
        if rc != 0:
            sys.exit(f"{args} through the port: exit {rc}: {err}")
    first = sh(BIN, "list", "--json", env=team, cwd=repo).stdout
    first = __import__("json").loads(first)[0]["id"]
    commands = {
        "run": [BIN, "run", "-q", "--", "true"],
        "list": [BIN, "list"],
        "rerun": [BIN, "rerun", "-q", first],
    }
    recorded = 1
    print(f"\n4. the server down, slow (each reply held 1 s), unresponsive: {reps} of each command;")
    print(f"   wall seconds, median (max); `lineage run -q -- true` with a local store: {base * 1000:.0f} ms")
    print(f"   {'server':<8}{'LINEAGE_PG_TIMEOUT':<20}" + "".join(f"{c:<15}" for c in commands)
          + f"{'exit codes':<14}{'job exit 7':<12}runs kept")
    said = {}
    cases = [("slow", "60", 1)] + [(m, t, reps) for m in ("down", "slow", "hang") for t in (None, "1")]
    try:
        for mode, timeout, n in cases:
            port.set(mode)
            e = dict(team)
            if timeout:
                e["LINEAGE_PG_TIMEOUT"] = timeout
            before = runs_in(replica)
            times, codes, replies = {}, set(), {}
            for what, args in commands.items():
                times[what] = []
                replies[what] = port.replies
                for _ in range(n):
                    t, rc, err = timed(args, e, repo)
                    times[what].append(t)
                    codes.add(rc)
                    said.setdefault((mode, timeout, what), err)
                replies[what] = (port.replies - replies[what]) / n
            _, job, _ = timed([BIN, "run", "-q", "--", "sh", "-c", "exit 7"], e, repo)
            recorded += 2 * n + 1
            kept = runs_in(replica) - before
            cell = lambda ts: f"{statistics.median(ts):5.2f} ({max(ts):5.2f})"
            bound = float(timeout or 5)
            # After the job: one bound; rerun also syncs before it (a reading command).
            late = [t for w, ts in times.items() for t in ts
                    if t > (2 if w == "rerun" else 1) * bound + base + 0.5]
            print(f"   {mode:<8}{timeout or 'unset (5)':<20}" + "".join(f"{cell(ts):<15}" for ts in times.values())
                  + f"{','.join(map(str, sorted(codes))):<14}{job:<12}{kept} of {2 * n + 1}"
                  + (f"   OVER THE BOUND: {max(late):.2f} s" if late else ""), flush=True)
            if timeout == "60":
                print(f"   {'':<28}" + "".join(f"{f'{r:.0f} replies':<15}" for r in replies.values())
                      + "(chunks from the server, each held 1 s)")
        port.set("up")
        t, rc, err = timed([BIN, "list"], team, repo)
        on_server = sh("psql", admin_db, "-Atc", "SELECT COUNT(*) FROM runs").stdout.strip()
        print(f"   server back: `lineage list` {t:.2f} s, exit {rc}; runs on the server "
              f"{on_server} of {recorded} recorded, {runs_in(replica)} in the replica")
        if err.strip():
            print("     " + err.strip().replace("\n", "\n     "))
    finally:
        port.close()
    print("   what lineage says (the first command of each kind):")
    for (mode, timeout, what), err in said.items():
        if timeout != "60":
            for line in err.strip().splitlines():
                print(f"     {mode}, {timeout or 5} s, {what}: {line}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--after", type=int, default=40, help="part 3: runs of each command")
    ap.add_argument("--faults", type=int, default=3, help="part 4: runs of each command per case")
    ap.add_argument("--parts", default="1,2,3,4", help="which parts, e.g. 3,4")
    ap.add_argument("--compare", metavar="OLD", help="part 3: an older lineage binary too")
    a = ap.parse_args()
    parts = {int(x) for x in a.parts.split(",")}
    admin = os.environ.get("LINEAGE_TEST_POSTGRES")
    if not admin:
        sys.exit("run me through scripts/with-postgres.sh (LINEAGE_TEST_POSTGRES is not set)")
    if not os.access(BIN, os.X_OK):
        sys.exit("build first: cargo build --release")
    version = sh("psql", admin, "-Atc", "SHOW server_version").stdout.strip()
    print(f"machine: {os.cpu_count()} cores; PostgreSQL {version} on 127.0.0.1 (fsync off); {BIN}")
    tmp = tempfile.mkdtemp(prefix="lineage-team-bench-")
    try:
        if parts & {1, 2}:
            throughput_and_show(a, admin, tmp, parts)
        if 3 in parts:
            after_job(admin, tmp, a.after, a.compare)
        if 4 in parts:
            faults(admin, tmp, a.faults)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def throughput_and_show(a, admin, tmp, parts):
    if 1 in parts:
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        with open(os.path.join(work, "input.txt"), "w") as f:
            f.write("the same input for every job\n")
        total = a.writers * a.runs

        local = os.path.join(tmp, "local-store")
        t_sqlite = writers(lambda w: {"LINEAGE_STORE": local}, work, a.writers, a.runs)
        url, _ = new_database(admin)
        t_pg = writers(lambda w: {"LINEAGE_STORE": url, "LINEAGE_REPLICA": os.path.join(tmp, f"replica-{w}")},
                       work, a.writers, a.runs)
        arrived = sh("psql", url, "-Atc", "SELECT COUNT(*) FROM runs").stdout.strip()
        print(f"\n1. recording: {a.writers} writers x {a.runs} runs at once ({total} runs)")
        print(f"   SQLite store (shared file):         {total / t_sqlite:7.1f} runs/s  ({t_sqlite:.1f} s)")
        print(f"   PostgreSQL (replica per writer):    {total / t_pg:7.1f} runs/s  ({t_pg:.1f} s; {arrived} runs on the server)")
        print(f"   ratio PostgreSQL / SQLite:          {t_sqlite / t_pg:7.2f}")
    if 2 not in parts:
        return
    if not os.path.exists(os.path.join(BENCH_STORE, "lineage.db")):
        print("\nfilling the 100,000-run store (cargo bench --bench ancestry)...", flush=True)
        subprocess.run(["cargo", "bench", "--bench", "ancestry"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    big = os.path.join(tmp, "big-store")
    shutil.copytree(BENCH_STORE, big)
    url, _ = new_database(admin)
    start = time.perf_counter()
    sh(BIN, "--store", big, "push", url)
    t_push = time.perf_counter() - start
    # An empty replica: first what a reading command's own sync (bounded as a whole by
    # LINEAGE_PG_TIMEOUT) brings, then `lineage pull` (each step bounded, not the whole).
    replica = os.path.join(tmp, "big-replica")
    team = dict(os.environ, LINEAGE_STORE=url, LINEAGE_REPLICA=replica)
    auto = []
    for _ in range(3):
        t, rc, err = timed([BIN, "list", "-n", "1"], team, None)
        auto.append((t, rc, runs_in(replica) if os.path.exists(os.path.join(replica, "lineage.db")) else 0,
                     err.strip().splitlines()[0] if err.strip() else ""))
    start = time.perf_counter()
    sh(BIN, "pull", env=team)
    t_pull = time.perf_counter() - start
    # The probe: a file holding the bytes benches/ancestry.rs hashed as the end of chain
    # 1000, found by content like any file.
    probe = os.path.join(tmp, "deepest.bin")
    with open(probe, "wb") as f:
        f.write(b"out/1000/50.bin")
    args = ["show", probe, "--format", "json"]
    sqlite_env = dict(os.environ, LINEAGE_STORE=big)
    ms_sqlite = median_ms(args, sqlite_env, a.repeat)
    ms_team = median_ms(args, team, a.repeat)
    ms_version = median_ms(["--version"], sqlite_env, a.repeat)
    print(f"\n2. lineage show on a 100,000-run store (median of {a.repeat}; 290 runs in the ancestry)")
    print(f"   delivering the store to PostgreSQL (lineage push):   {t_push:7.1f} s, once")
    for i, (t, rc, n, said) in enumerate(auto):
        print(f"   `lineage list -n 1` on that empty replica, {i + 1}:          {t:7.1f} s, exit {rc}, "
              f"{n} runs in the replica{': ' + said if said else ''}")
    print(f"   then `lineage pull` (the cold sync):                 {t_pull:7.1f} s, once per machine")
    print(f"   lineage --version (process start, reference):        {ms_version:7.1f} ms")
    print(f"   show DEEPEST --format json, SQLite store:            {ms_sqlite:7.1f} ms")
    print(f"   show DEEPEST --format json, team store (warm):       {ms_team:7.1f} ms")
    print(f"   ratio team / SQLite:                                 {ms_team / ms_sqlite:7.2f}")


if __name__ == "__main__":
    main()
