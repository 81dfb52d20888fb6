#!/usr/bin/env python3
"""What lineage costs on big inputs, side by side with the reference tools, in one run.

  - one large file (default 1 GiB):   `lineage run -i FILE -- true` vs `b3sum FILE`
  - many small files (20,000 of 4-16 KiB): `lineage run -i DIR -- true` vs
    `xargs -P$(nproc) b3sum` over the same files
  - the same inputs again, unchanged (the stat cache): second run vs first
  - a toy job reading the tree and the large file and writing a 10 MiB output: the time
    lineage adds over the bare job, first run (empty cache) and second, and lineage's peak RSS;
    with --peers, the same job under in-toto-run, datalad run and dvc repro
  - a git repository of 50,000 tracked files: lineage's git snapshot vs `git status --porcelain`

Usage: bench/inputs.py [--lineage PATH] [--b3sum PATH | --install-b3sum] [--peers VENV]
                       [--runs N] [--big-mib N] [--files N] [--repo-files N] [--work DIR]
Build first: `cargo build --release`. b3sum is looked up on PATH and in ~/.cargo/bin;
--install-b3sum installs it with `cargo install --locked b3sum` into the work directory.
--peers VENV: a Python venv holding in-toto, dvc and datalad (`python3 -m venv VENV &&
VENV/bin/pip install in-toto dvc datalad`; datalad also needs git-annex). Commands are run
alternately, page cache warm, and medians printed. Nothing here is asserted: it reports.
"""
import argparse, os, random, resource, shutil, statistics, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--lineage", default=os.path.join(here, "..", "target", "release", "lineage"))
p.add_argument("--b3sum")
p.add_argument("--install-b3sum", action="store_true")
p.add_argument("--peers", metavar="VENV")
p.add_argument("--runs", type=int, default=5)
p.add_argument("--big-mib", type=int, default=1024)
p.add_argument("--files", type=int, default=20000)
p.add_argument("--repo-files", type=int, default=50000)
p.add_argument("--work", help="keep the generated data here (default: a temporary directory)")
a = p.parse_args()
lineage = os.path.abspath(a.lineage)
if not os.access(lineage, os.X_OK):
    sys.exit(f"{lineage} not found: run `cargo build --release` first")
ncpu = os.cpu_count() or 1


def run(cmd, cwd=None, env=None, check=True, shell=False):
    """Wall seconds and peak RSS (KiB) of one command (RSS: the largest of it and its waited
    descendants, as the kernel reports it)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, shell=shell,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if check and proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {cmd}\n{err}")
    return wall, usage.ru_maxrss, err


def timings(stderr):
    """LINEAGE_TIMINGS=1 phase marks: {phase: ms}."""
    out = {}
    for line in stderr.splitlines():
        if line.startswith("lineage: timing: ") and " at " in line:
            phase, at = line[len("lineage: timing: "):].rsplit(" at ", 1)
            out[phase] = float(at.split()[0])
    return out


def med(xs):
    return statistics.median(xs)


def ms(x):
    return f"{x * 1000:8.1f} ms"


work = a.work or tempfile.mkdtemp(prefix="lineage-bench-")
os.makedirs(work, exist_ok=True)
try:
    # --- references -------------------------------------------------------------------
    b3sum = a.b3sum or shutil.which("b3sum") or os.path.expanduser("~/.cargo/bin/b3sum")
    if not os.access(b3sum, os.X_OK):
        if not a.install_b3sum:
            sys.exit("b3sum not found: pass --b3sum PATH or --install-b3sum")
        subprocess.run(["cargo", "install", "--locked", "--quiet", "b3sum", "--root",
                        os.path.join(work, "b3")], check=True)
        b3sum = os.path.join(work, "b3", "bin", "b3sum")

    # --- data -------------------------------------------------------------------------
    tree, big = os.path.join(work, "tree"), os.path.join(work, "big.bin")
    if not os.path.isdir(tree):
        rng = random.Random(1)
        for i in range(a.files):
            d = os.path.join(tree, f"d{i // 500:03}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i:05}.bin"), "wb") as f:
                f.write(rng.randbytes(rng.randint(4096, 16384)))
    if not os.path.exists(big) or os.path.getsize(big) != a.big_mib << 20:
        with open(big, "wb") as f:
            for _ in range(a.big_mib // 16):
                f.write(os.urandom(16 << 20))
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(tree) for f in fs)
    with open(os.path.join(work, "files.txt"), "w") as f:
        f.write("\n".join(files) + "\n")
    tree_mib = sum(os.path.getsize(f) for f in files) / 2**20
    time.sleep(1.2)  # past the racy window, as data on disk would be
    run(f"cat {big} > /dev/null && find {tree} -type f -exec cat {{}} + > /dev/null", shell=True)

    stores = [0]

    def fresh_store():
        """A new store, created (untimed) so that its creation is not counted."""
        stores[0] += 1
        path = os.path.join(work, "stores", str(stores[0]))
        shutil.rmtree(path, ignore_errors=True)  # left by an earlier run with --work
        env = dict(os.environ, LINEAGE_STORE=path)
        run([lineage, "run", "-q", "--", "true"], cwd=work, env=env)
        return env

    prelaunch = [0.0]  # the last lineage_inputs call's part before launch

    def lineage_inputs(paths, env, before=False):
        """Wall, RSS and the hashing phase: the walk before launch plus, unless every input
        is hashed before launch (`before`), the hashing after the (here instant) job starts."""
        flags = ["--hash-before-launch"] if before else []
        cmd = ([lineage, "run", "-q"] + flags + [x for p_ in paths for x in ("-i", p_)]
               + ["--", "true"])
        wall, rss, err = run(cmd, cwd=work, env=dict(env, LINEAGE_TIMINGS="1"))
        t = timings(err)
        prelaunch[0] = (t["inputs walked"] - t["planned"]) / 1000
        phase = (t["inputs walked"] - t["planned"]) + (t["inputs hashed"] - t["spawned"])
        return wall, rss, phase / 1000

    results = {}
    print(f"machine: {ncpu} cores; page cache warm; medians of {a.runs}; work dir {work}")
    print(f"b3sum: {subprocess.run([b3sum, '--version'], capture_output=True, text=True).stdout.strip()}")

    # --- one large file -----------------------------------------------------------------
    rows = {"b3sum": [], "lineage": [], "hash": [], "rss": [], "b3rss": [],
            "before": [], "hashb": []}
    for _ in range(a.runs):
        w, r, _ = run([b3sum, big])
        rows["b3sum"].append(w); rows["b3rss"].append(r)
        w, r, h = lineage_inputs([big], fresh_store(), before=True)
        rows["before"].append(w); rows["hashb"].append(h); rows["rss"].append(r)
        w, r, h = lineage_inputs([big], fresh_store())
        rows["lineage"].append(w); rows["hash"].append(h); rows["rss"].append(r)
    size = a.big_mib / 1024
    b, l, h = med(rows["b3sum"]), med(rows["lineage"]), med(rows["hash"])
    lb, hb = med(rows["before"]), med(rows["hashb"])
    print(f"\n1. one {a.big_mib} MiB file")
    print(f"   b3sum FILE                          {ms(b)}  {size / b:5.2f} GiB/s  peak RSS {max(rows['b3rss']) / 1024:6.0f} MiB")
    print(f"   lineage run --hash-before-launch    {ms(lb)}  {size / lb:5.2f} GiB/s  (mapped, before launch)")
    print(f"     of which hashing the input        {ms(hb)}  {size / hb:5.2f} GiB/s")
    print(f"   lineage run -i FILE -- true         {ms(l)}  {size / l:5.2f} GiB/s  peak RSS {max(rows['rss']) / 1024:6.0f} MiB")
    print(f"     of which hashing the input        {ms(h)}  {size / h:5.2f} GiB/s  (read, once the job started)")
    print(f"   throughput vs b3sum: hashing phase {b / hb:.2f}x before launch, {b / h:.2f}x while the job runs")

    # --- many small files ---------------------------------------------------------------
    per = max(1, len(files) // (4 * ncpu))
    xargs = f"xargs -P{ncpu} -n {per} {b3sum} < {os.path.join(work, 'files.txt')} > /dev/null"
    rows = {"b3sum": [], "first": [], "hash1": [], "second": [], "hash2": [], "rss": [],
            "later": [], "hashl": [], "pre2": []}
    for _ in range(a.runs):
        rows["b3sum"].append(run(xargs, shell=True)[0])
        env = fresh_store()
        w, r, h = lineage_inputs([tree], env, before=True)
        rows["first"].append(w); rows["hash1"].append(h); rows["rss"].append(r)
        w, r, h = lineage_inputs([tree], env)
        rows["second"].append(w); rows["hash2"].append(h); rows["pre2"].append(prelaunch[0])
        w, r, h = lineage_inputs([tree], fresh_store())
        rows["later"].append(w); rows["hashl"].append(h); rows["rss"].append(r)
    b, f1, h1 = med(rows["b3sum"]), med(rows["first"]), med(rows["hash1"])
    f2, h2 = med(rows["second"]), med(rows["hash2"])
    fl, hl = med(rows["later"]), med(rows["hashl"])
    print(f"\n2. {len(files)} files of 4-16 KiB ({tree_mib:.0f} MiB)")
    print(f"   xargs -P{ncpu} -n {per} b3sum             {ms(b)}  {tree_mib / b:6.0f} MiB/s")
    print(f"   lineage run --hash-before-launch    {ms(f1)}  {tree_mib / f1:6.0f} MiB/s  peak RSS {max(rows['rss']) / 1024:4.0f} MiB")
    print(f"     of which walking and hashing      {ms(h1)}  {tree_mib / h1:6.0f} MiB/s  (hashed while walked)")
    print(f"   lineage run -i DIR -- true          {ms(fl)}  {tree_mib / fl:6.0f} MiB/s")
    print(f"     of which walking and hashing      {ms(hl)}  {tree_mib / hl:6.0f} MiB/s  (walked, then hashed once the job started)")
    print(f"   throughput vs b3sum: whole run {b / f1:.2f}x, hashing phase {b / h1:.2f}x before launch, "
          f"{b / hl:.2f}x walked first")
    print(f"\n3. the same {len(files)} files again, unchanged (stat cache)")
    print(f"   second lineage run                  {ms(f2)}   (first/second: {f1 / f2:.1f}x)")
    print(f"     of which the walk and lookups     {ms(h2)}   (first/second: {h1 / h2:.1f}x)")
    p2 = med(rows["pre2"])
    print(f"     of which before launch            {ms(p2)}   (first hashing phase/this: {h1 / p2:.1f}x)")
    fw = [run(["find", tree, "-type", "f", "-printf", "%s %T@ %C@ %i\n"])[0] for _ in range(a.runs)]
    print(f"   reference: find -printf of the same stats {ms(med(fw))}")

    # --- toy job --------------------------------------------------------------------------
    job = (f"find -L tree -type f -exec cat {{}} + > /dev/null && cat big.bin > /dev/null && "
           f"head -c 10485760 big.bin > out.bin")
    wrapped = [lineage, "run", "-q", "-i", "tree", "-i", "big.bin", "-o", "out.bin", "--",
               "sh", "-c", job]
    rows = {"bare": [], "first": [], "second": [], "rss1": [], "rss2": [], "before": []}
    for _ in range(a.runs):
        rows["bare"].append(run(["sh", "-c", job], cwd=work)[0])
        env = fresh_store()
        w, r, _ = run(wrapped, cwd=work, env=env)
        rows["first"].append(w); rows["rss1"].append(r)
        w, r, _ = run(wrapped, cwd=work, env=env)
        rows["second"].append(w); rows["rss2"].append(r)
        w, r, _ = run(wrapped[:3] + ["--hash-before-launch"] + wrapped[3:], cwd=work,
                      env=fresh_store())
        rows["before"].append(w); rows["rss1"].append(r)
    bare = med(rows["bare"])
    print(f"\n4. toy job: reads the {len(files)}-file tree and the {a.big_mib} MiB file, writes 10 MiB")
    print(f"   bare job                            {ms(bare)}")
    for k, label in (("before", "first, --hash-before-launch"),
                     ("first", "lineage run, first (cache empty)"),
                     ("second", "lineage run, second (cached)")):
        t = med(rows[k])
        print(f"   {label:35} {ms(t)}  adds {ms(t - bare).strip():>10}")
    print(f"   peak RSS of lineage (and its job): first {max(rows['rss1']) / 1024:.0f} MiB, "
          f"second {max(rows['rss2']) / 1024:.0f} MiB")

    if a.peers:
        bin_ = os.path.join(os.path.abspath(a.peers), "bin")
        penv = dict(os.environ, PATH=bin_ + os.pathsep + os.environ["PATH"],
                    GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.path.join(work, "gitconfig"))
        with open(penv["GIT_CONFIG_GLOBAL"], "w") as f:
            f.write("[user]\n\tname = Bench\n\temail = bench@example.com\n")
        key = os.path.join(work, "intoto.pem")
        if not os.path.exists(key):
            subprocess.run([os.path.join(bin_, "python"), "-c",
                            "import sys\nfrom cryptography.hazmat.primitives.asymmetric import ed25519\n"
                            "from cryptography.hazmat.primitives import serialization as s\n"
                            "k = ed25519.Ed25519PrivateKey.generate()\n"
                            "open(sys.argv[1], 'wb').write(k.private_bytes(s.Encoding.PEM, "
                            "s.PrivateFormat.PKCS8, s.NoEncryption()))", key], check=True)
        peers = {}
        if os.access(os.path.join(bin_, "in-toto-run"), os.X_OK):
            def intoto():
                return run(["in-toto-run", "-n", "toy", "--signing-key", key, "-m", "tree",
                            "big.bin", "-p", "out.bin", "--", "sh", "-c", job],
                           cwd=work, env=penv)[0]
            peers["in-toto-run"] = intoto
        if os.access(os.path.join(bin_, "dvc"), os.X_OK):
            def dvc():
                # A first `dvc repro`: no lock file, no cache, as on a fresh checkout.
                d = os.path.join(work, "dvc")
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                os.symlink(tree, os.path.join(d, "tree"))
                os.symlink(big, os.path.join(d, "big.bin"))
                run(["dvc", "init", "--no-scm", "-q"], cwd=d, env=penv)
                run(["dvc", "stage", "add", "-q", "-n", "toy", "-d", "tree", "-d", "big.bin",
                     "-o", "out.bin", job], cwd=d, env=penv)
                return run(["dvc", "repro", "-q"], cwd=d, env=penv)[0]
            peers["dvc repro (first)"] = dvc
        if os.access(os.path.join(bin_, "datalad"), os.X_OK) and shutil.which("git-annex"):
            def datalad():
                d = os.path.join(work, "datalad")
                shutil.rmtree(d, ignore_errors=True)
                run(["datalad", "create", "-f", d], env=penv)
                shutil.copytree(tree, os.path.join(d, "tree"))
                os.link(big, os.path.join(d, "big.bin"))
                run(["datalad", "save", "-d", d, "-m", "data"], env=penv)
                # datalad formats the command with str.format: braces doubled.
                cmd = job.replace("{", "{{").replace("}", "}}")
                return run(["datalad", "run", "-d", d, "-m", "toy", "-i", "tree", "-i",
                            "big.bin", "-o", "out.bin", cmd], cwd=d, env=penv)[0]
            peers["datalad run"] = datalad
        for name, fn in peers.items():
            ts = [fn() for _ in range(max(1, a.runs // 2))]
            t = med(ts)
            print(f"   {name:35} {ms(t)}  adds {ms(t - bare).strip():>10}")

    # --- a large git repository -----------------------------------------------------------
    repo = os.path.join(work, f"repo{a.repo_files}")
    genv = dict(os.environ, GIT_CONFIG_NOSYSTEM="1",
                GIT_CONFIG_GLOBAL=os.path.join(work, "gitconfig"))
    with open(genv["GIT_CONFIG_GLOBAL"], "w") as f:
        f.write("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    if not os.path.isdir(os.path.join(repo, ".git")):
        os.makedirs(repo, exist_ok=True)
        for i in range(a.repo_files):
            d = os.path.join(repo, f"src{i // 1000:03}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"m{i:05}.py"), "w") as f:
                f.write(f"X = {i}\n")
        subprocess.run(["git", "init", "-q"], cwd=repo, env=genv, check=True)
        subprocess.run(["git", "add", "."], cwd=repo, env=genv, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=repo, env=genv, check=True)
        time.sleep(1.2)
    run(["git", "status", "--porcelain"], cwd=repo, env=genv)  # refresh the index stat data
    rows = {"git": [], "snap": [], "run": []}
    env = fresh_store()
    for _ in range(a.runs * 2):
        rows["git"].append(run(["git", "status", "--porcelain"], cwd=repo, env=genv)[0])
        w, _, err = run([lineage, "run", "-q", "--", "true"], cwd=repo,
                        env=dict(env, **genv, LINEAGE_TIMINGS="1"))
        t = timings(err)
        rows["snap"].append((t["git captured"] - t["planned"]) / 1000)
        rows["run"].append(w)
    g, s_ = med(rows["git"]), med(rows["snap"])
    print(f"\n5. git repository of {a.repo_files} tracked files, clean")
    print(f"   git status --porcelain              {ms(g)}")
    print(f"   lineage's git snapshot              {ms(s_)}   ({s_ / g:.2f}x git status)")
    print(f"   lineage run -- true there           {ms(med(rows['run']))}")
finally:
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)
