//! What the job's observed file calls mean for its record (docs/recording.md, "Observed
//! I/O"): each path the supervisor saw is classified (data, code, environment, ignored),
//! matched against the declared paths, many files of one directory rolled up into that
//! directory, and the new inputs and outputs hashed into edges marked `observed`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::plan::{Declared, Plan};
use super::told::Told;
use crate::model::{Capture, Edge, ObservedIo, Role, Seen, Written};
use crate::observe::{Access, Observed};
use crate::ui;

/// A directory of which the job read at least this many files is recorded as one input.
pub(super) const ROLL_UP: usize = 8;

/// What observation adds to the record.
#[derive(Default)]
pub(super) struct Found {
    /// New edges: observed inputs, then observed outputs.
    pub(super) edges: Vec<Edge>,
    /// What it says of each declared input and config, by position.
    pub(super) seen: Vec<(usize, Seen)>,
    /// What it says of each declared output, by index.
    pub(super) outputs_seen: Vec<Seen>,
    /// The paths nobody declared (for `--strict`).
    pub(super) undeclared: Vec<String>,
    /// What the job did that observation could not see through (for `--strict`).
    pub(super) blind: Vec<String>,
}

/// Where a path belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ignored,
    Environment,
    Code,
    Data,
}

/// The places the rules need, found once.
pub(super) struct Places {
    cwd: PathBuf,
    /// The git work tree, when the job started in one.
    root: Option<PathBuf>,
    tracked: crate::capture::git::Tracked,
    /// The script the command runs (`python train.py`): code, kept with the capture.
    script: Option<PathBuf>,
    home: Option<PathBuf>,
    /// The user's home as the system knows it (the job's HOME may differ).
    real_home: Option<PathBuf>,
    store: PathBuf,
    config: Option<PathBuf>,
    tmp: Vec<PathBuf>,
    /// The directories on the job's PATH and PYTHONPATH and the Python interpreter's prefix.
    tools: Vec<PathBuf>,
    /// Directory -> whether it is (inside) a virtualenv or conda environment.
    envs: HashMap<PathBuf, bool>,
    /// Directory -> what the files in it are, as far as the directory tells.
    dirs: HashMap<PathBuf, Kind>,
    /// The devices of /proc, /sys, /dev and /run where they are filesystems of their own: a
    /// file on one is ignored whatever name led to it.
    special: Vec<u64>,
}

impl Places {
    pub(super) fn new(plan: &Plan, capture: &Capture) -> Places {
        let root = capture.git.as_ref().map(|g| PathBuf::from(&g.root));
        let tracked = crate::capture::git::Tracked::at(root.clone());
        let var = |name: &str| -> Option<OsString> {
            match &plan.env {
                Some(env) => env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
                None => std::env::var_os(name),
            }
        };
        let mut tmp = vec![PathBuf::from("/tmp"), PathBuf::from("/var/tmp")];
        tmp.extend(var("TMPDIR").map(PathBuf::from).filter(|p| p.is_absolute()));
        let mut tools: Vec<PathBuf> = var("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .filter(|d| d.is_absolute())
                    .collect()
            })
            .unwrap_or_default();
        // Where Python imports from besides its installation (`PYTHONPATH=~/lib/python`, a
        // checkout of lineage's own `python/`): modules, not data. A path there inside the
        // working directory or the work tree stays the job's own (left out below).
        tools.extend(
            var("PYTHONPATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .filter(|d| d.is_absolute())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
        if let Some(py) = &capture.software.python {
            // `<prefix>/bin/python3`: the interpreter's installation.
            let exe = PathBuf::from(&py.executable);
            tools.extend(exe.parent().and_then(Path::parent).map(Path::to_path_buf));
            if let Ok(real) = std::fs::canonicalize(&exe) {
                tools.extend(real.parent().and_then(Path::parent).map(Path::to_path_buf));
            }
        }
        // Never the places the job's data is in.
        tools.retain(|t| {
            t.parent().is_some() && !plan.cwd.starts_with(t) && !t.starts_with(&plan.cwd)
        });
        Places {
            cwd: plan.cwd.clone(),
            root,
            tracked,
            script: capture
                .script
                .as_ref()
                .filter(|_| runs_a_script(&plan.argv))
                .map(|s| crate::observe::resolve_dots(&plan.cwd.join(&s.path))),
            home: var("HOME").map(PathBuf::from).filter(|p| p.is_absolute()),
            real_home: nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
                .filter(|d| d.is_absolute() && d.parent().is_some()),
            store: plan.store.dir().to_path_buf(),
            config: crate::settings::user_file().and_then(|f| f.parent().map(Path::to_path_buf)),
            tmp,
            tools,
            envs: HashMap::new(),
            dirs: HashMap::new(),
            special: {
                let root = std::fs::metadata("/").map(|m| m.dev()).ok();
                ["/proc", "/sys", "/dev", "/run"]
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.dev()))
                    .filter(|d| Some(*d) != root)
                    .collect()
            },
        }
    }

    fn kind(&mut self, path: &Path) -> Kind {
        let parent = path.parent().unwrap_or(path);
        let dir = match self.dirs.get(parent) {
            Some(k) => *k,
            None => {
                let k = self.dir_kind(parent);
                self.dirs.insert(parent.to_path_buf(), k);
                k
            }
        };
        let name = path.file_name().unwrap_or_default();
        match dir {
            Kind::Ignored => return Kind::Ignored,
            Kind::Environment => return Kind::Environment,
            _ if name == ".git" => return Kind::Ignored,
            _ => {}
        }
        if path.extension().is_some_and(|e| e == "pyc")
            || (name.as_bytes().starts_with(b".") && self.hidden_outside(path))
        {
            return Kind::Environment;
        }
        if self.tracked.contains(path) || self.script.as_deref() == Some(path) {
            return Kind::Code;
        }
        Kind::Data
    }

    /// What every file directly in `dir` is, as far as the directory tells: ignored,
    /// environment, or `Data` (then the file decides).
    fn dir_kind(&mut self, dir: &Path) -> Kind {
        const IGNORED: &[&str] = &["/proc", "/sys", "/dev", "/run", "/var/run"];
        if IGNORED.iter().any(|p| dir.starts_with(p))
            || dir.starts_with(&self.store)
            || self.config.as_ref().is_some_and(|c| dir.starts_with(c))
            || dir.components().any(|c| c.as_os_str() == ".git")
        {
            return Kind::Ignored;
        }
        const SYSTEM: &[&str] = &[
            "/usr",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/bin",
            "/sbin",
            "/etc",
            "/opt",
            "/nix",
            "/gnu",
            "/snap",
            "/var/lib",
            "/var/cache",
        ];
        const PACKAGES: &[&str] = &[
            "site-packages",
            "dist-packages",
            "__pycache__",
            "node_modules",
        ];
        if SYSTEM.iter().any(|p| dir.starts_with(p))
            || dir
                .components()
                .any(|c| PACKAGES.iter().any(|p| c.as_os_str() == *p))
            || self.hidden_outside(dir)
            || self.tools.iter().any(|t| dir.starts_with(t))
            || self.in_environment(Some(dir))
        {
            return Kind::Environment;
        }
        Kind::Data
    }

    /// A hidden file or directory of the home directory, outside the working directory and
    /// the work tree (`~/.gitconfig`, `~/.bashrc`, `~/.cache`, `~/.local`, `~/.pyenv`): the
    /// user's tools and settings, not data.
    fn hidden_outside(&self, path: &Path) -> bool {
        if path.starts_with(&self.cwd) || self.root.as_deref().is_some_and(|r| path.starts_with(r))
        {
            return false;
        }
        [&self.home, &self.real_home]
            .into_iter()
            .flatten()
            .any(|home| {
                path.strip_prefix(home).ok().is_some_and(|rest| {
                    rest.components()
                        .any(|c| c.as_os_str().as_bytes().starts_with(b"."))
                })
            })
    }

    /// Whether `dir` is inside a virtualenv (`pyvenv.cfg`) or a conda environment
    /// (`conda-meta`), remembered per directory.
    fn in_environment(&mut self, dir: Option<&Path>) -> bool {
        let Some(dir) = dir else { return false };
        if let Some(known) = self.envs.get(dir) {
            return *known;
        }
        let here = dir.join("pyvenv.cfg").is_file() || dir.join("conda-meta").is_dir();
        let answer = here || self.in_environment(dir.parent());
        self.envs.insert(dir.to_path_buf(), answer);
        answer
    }

    /// Under the temporary directory, and not where the job works.
    fn scratch(&self, path: &Path) -> bool {
        self.tmp.iter().any(|t| path.starts_with(t))
            && !path.starts_with(&self.cwd)
            && !self.root.as_deref().is_some_and(|r| path.starts_with(r))
    }

    /// Never rolled up into: the places a job's files are all under.
    fn too_wide(&self, dir: &Path) -> bool {
        let wide = |p: &Path| p.starts_with(dir);
        dir.parent().is_none()
            || wide(&self.cwd)
            || self.root.as_deref().is_some_and(wide)
            || self.home.as_deref().is_some_and(wide)
            || self.tmp.iter().any(|t| wide(t))
            || wide(&self.store)
    }

    /// As the user would write it: relative to the working directory when under it.
    fn given(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.cwd) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
            _ => path.to_path_buf(),
        }
    }
}

/// Whether the command is a script (`./train.sh`) or an interpreter given one
/// (`python3 train.py`, `bash run.sh`): then the script is code. Another program's first
/// file argument (`cp data.csv copy.csv`) is data.
fn runs_a_script(argv: &[OsString]) -> bool {
    const INTERPRETERS: &[&str] = &[
        "python", "sh", "bash", "zsh", "dash", "ksh", "fish", "Rscript", "julia", "node", "perl",
        "ruby", "lua", "deno", "bun", "uv", "pixi",
    ];
    let Some(program) = argv.first() else {
        return false;
    };
    if program.as_bytes().contains(&b'/') {
        return true;
    }
    let name = program.to_string_lossy();
    INTERPRETERS.iter().any(|i| {
        name.strip_prefix(i)
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// The source of a cached Python module: `d/__pycache__/m.cpython-311.pyc` (or
/// `.opt-1.pyc`) -> `d/m.py`.
fn pyc_source(path: &Path) -> Option<PathBuf> {
    let cache = path.parent()?;
    if cache.file_name()? != "__pycache__" || path.extension()? != "pyc" {
        return None;
    }
    let name = path.file_name()?.to_str()?;
    let module = name.split('.').next()?;
    Some(cache.parent()?.join(format!("{module}.py")))
}

/// Whether the inode changed since `start` (its data or its name: ctime covers a rename).
fn changed_since(meta: &std::fs::Metadata, start: SystemTime) -> bool {
    let at = |secs: i64, nsecs: i64| {
        u64::try_from(secs).ok().map(|s| {
            SystemTime::UNIX_EPOCH + std::time::Duration::new(s, nsecs.clamp(0, 999_999_999) as u32)
        })
    };
    [
        at(meta.mtime(), meta.mtime_nsec()),
        at(meta.ctime(), meta.ctime_nsec()),
    ]
    .into_iter()
    .flatten()
    .any(|t| t >= start)
}

/// A regular file's stats, as far as classifying it needs them.
struct Stated {
    dev: u64,
    /// Modified (mtime or ctime) since the job started.
    changed: bool,
}

/// Classify what the supervisor saw, match it against the declarations, hash what is new.
pub(super) fn found(
    plan: &Plan,
    observed: Observed,
    start: SystemTime,
    declared_inputs: &[Edge],
    from_job: &[PathBuf],
    succeeded: bool,
    capture: &mut Capture,
) -> Found {
    let mut places = Places::new(plan, capture);
    crate::timing::mark("observed places found");
    let mut io = ObservedIo {
        calls: observed.calls,
        ..Default::default()
    };
    let (observed_blind, unreadable) = (observed.blind.clone(), observed.unreadable);
    let mut reads: BTreeMap<PathBuf, bool> = BTreeMap::new(); // path -> changed while it ran
    let mut writes: BTreeSet<PathBuf> = BTreeSet::new();
    let mut code: BTreeSet<String> = BTreeSet::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut scratch_writes = 0usize;
    // A module Python loaded from its cached bytecode was read through the cache: the
    // source is what the job used (`__pycache__/m.cpython-311.pyc` -> `m.py`).
    let mut paths = observed.paths;
    let sources: Vec<OsString> = paths
        .iter()
        .filter(|(_, a)| a.read)
        .filter_map(|(p, _)| pyc_source(Path::new(p)))
        .map(PathBuf::into_os_string)
        .collect();
    for source in sources {
        paths
            .entry(source)
            .or_default()
            .apply(crate::observe::Op::Read);
    }
    // The stats first, in parallel when there are many: a job that read 100,000 files named
    // as many. A few are taken here: starting rayon's pool (its threads then spin a while
    // on the other core) cost more than the stats of a short job's dozen paths.
    // Only what classifying needs of each file's stats (a whole `Metadata` is 144 bytes: 29 MB
    // for a job that read 200,000 files).
    let stated: Vec<(PathBuf, Access, Option<Stated>)> = {
        use rayon::prelude::*;
        const PARALLEL_STATS: usize = 256;
        let stat = |(p, a): (OsString, Access)| {
            let p = PathBuf::from(p);
            let meta = std::fs::metadata(&p).ok().filter(|m| m.is_file());
            let meta = meta.map(|m| Stated {
                dev: m.dev(),
                changed: changed_since(&m, start),
            });
            (p, a, meta)
        };
        let paths: Vec<(OsString, Access)> = paths.into_iter().collect();
        if paths.len() < PARALLEL_STATS {
            paths.into_iter().map(stat).collect()
        } else {
            paths.into_par_iter().map(stat).collect()
        }
    };
    // Which of the files it named under the work tree git tracks, asked at once.
    places.tracked.ask(
        stated
            .iter()
            .filter(|s| s.2.is_some())
            .map(|s| s.0.as_path()),
    );
    // Declared paths: touched when the job opened them or anything in them, whatever
    // class the file is (a tracked config is code read, and was opened all the same).
    // Their `..` taken as the observer takes the job's (`observe::resolve_dots`: `-i ../data`
    // is the `data` beside the working directory, and so is the job's `open("../data/f")`);
    // one that could not be (`nd/../x`, `nd` not there) matches no file the job opened.
    let declared: Vec<PathBuf> = declared_inputs
        .iter()
        .map(|e| crate::model::path_of(&e.abs_path))
        .collect();
    let mut touched = vec![false; declared.len()];
    let outputs: Vec<PathBuf> = plan.outputs.iter().map(|d| d.abs.clone()).collect();
    let mut touched_out = vec![false; outputs.len()];
    for (path, access, _) in &stated {
        for (i, d) in declared.iter().enumerate() {
            touched[i] |= access.read && path.starts_with(d);
        }
        for (i, o) in outputs.iter().enumerate() {
            touched_out[i] |= (access.written || access.read) && path.starts_with(o);
        }
    }
    for (path, access, meta) in stated {
        let Access {
            read,
            written,
            deleted: gone,
            ..
        } = access;
        let kind = places.kind(&path);
        if kind == Kind::Ignored
            || meta
                .as_ref()
                .is_some_and(|m| places.special.contains(&m.dev))
        {
            continue; // a link into /proc, /sys or /dev is ignored as they are
        }
        let Some(meta) = meta else {
            // Gone: deleted by the job (unless it made it), or never there (a failed open).
            if gone && !written && kind != Kind::Environment && !places.scratch(&path) {
                deleted.insert(places.given(&path).to_string_lossy().into_owned());
            }
            continue;
        };
        if kind == Kind::Environment {
            io.environment += u64::from(read);
            continue;
        }
        let changed = meta.changed;
        if written && changed {
            if !places.scratch(&path) || under_any(&path, outputs.iter()) {
                writes.insert(path);
            } else {
                scratch_writes += 1;
            }
            continue;
        }
        if !read {
            continue;
        }
        if kind == Kind::Code && declared.iter().any(|d| path.starts_with(d)) {
            continue; // declared: an edge already, not listed again as code read
        }
        if kind == Kind::Code {
            let rel = places
                .root
                .as_deref()
                .and_then(|r| path.strip_prefix(r).ok())
                .unwrap_or_else(|| path.strip_prefix(&places.cwd).unwrap_or(&path));
            code.insert(rel.to_string_lossy().into_owned());
            continue;
        }
        reads.insert(path, changed);
    }
    crate::timing::mark("observed paths classified");
    io.code_read = code.into_iter().collect();
    io.deleted = deleted.into_iter().collect();

    let mut out = Found::default();
    reads.retain(|p, _| {
        let mut hit = false;
        for (i, d) in declared.iter().enumerate() {
            if p.starts_with(d) {
                touched[i] = true;
                hit = true;
            }
        }
        // Reading back a declared output (resuming from a checkpoint) is not an input; a
        // path the job declared itself is its edge.
        !hit && !outputs.iter().any(|o| p.starts_with(o))
            && !from_job.iter().any(|j| p.starts_with(j))
    });
    writes.retain(|p| {
        // Writing into a declared input (`-i ckpt -o ckpt`, appending to it) opened it.
        for (i, d) in declared.iter().enumerate() {
            if p.starts_with(d) {
                touched[i] = true;
            }
        }
        let mut hit = false;
        for (i, o) in outputs.iter().enumerate() {
            if p.starts_with(o) {
                touched_out[i] = true;
                hit = true;
            }
        }
        !hit && !from_job.iter().any(|j| p.starts_with(j))
    });
    // A file both read and then written is the job's product.
    reads.retain(|p, _| !writes.contains(p));
    for (i, d) in declared_inputs.iter().enumerate() {
        let seen = if touched[i] {
            Seen::Touched
        } else {
            let msg = format!(
                "declared {} {} was never opened by the job",
                if d.role == Role::Config {
                    "config"
                } else {
                    "input"
                },
                ui::escape(&d.path)
            );
            // A job that failed early (at an import) opened nothing: no news.
            if succeeded {
                ui::warn(&msg);
                capture.notes.push(msg);
            }
            Seen::Untouched
        };
        out.seen.push((i, seen));
    }
    out.outputs_seen = touched_out
        .into_iter()
        .map(|t| if t { Seen::Touched } else { Seen::Untouched })
        .collect();

    let inputs = roll_up_inputs(&places, reads);
    let written = roll_up_outputs(&places, writes);
    crate::timing::mark("observed paths rolled up");
    let mut told = Told::new("the files the job named");
    for (n, (path, changed)) in inputs.into_iter().enumerate() {
        let d = Declared {
            given: places.given(&path),
            abs: path,
        };
        let mut edge = if changed {
            let msg = format!(
                "observed input {} changed while the job ran: recorded without a hash",
                d.given.display()
            );
            told.note(capture, msg);
            let mut e = d.edge(Role::Input, None, None);
            e.changed = true;
            e
        } else {
            hash_edge(
                plan,
                &d,
                Role::Input,
                &format!("observed-in-{n}"),
                capture,
                &mut told,
            )
        };
        edge.observed = Some(Seen::Undeclared);
        out.undeclared.push(edge.path.clone());
        out.edges.push(edge);
    }
    for (n, path) in written.into_iter().enumerate() {
        let d = Declared {
            given: places.given(&path),
            abs: path,
        };
        let mut edge = hash_edge(
            plan,
            &d,
            Role::Output,
            &format!("observed-out-{n}"),
            capture,
            &mut told,
        );
        edge.written = Some(if edge.artifact.is_some() {
            Written::All
        } else {
            Written::Nothing
        });
        edge.observed = Some(Seen::Undeclared);
        out.undeclared.push(edge.path.clone());
        out.edges.push(edge);
    }
    redact_paths(plan, &mut out.edges, "an observed path", capture, &mut told);
    told.finish(capture);
    for what in &observed_blind {
        let msg = format!(
            "the job used {what}: observation cannot see the files it named that way (docs/recording.md, \"What observation cannot see\")"
        );
        ui::warn(&msg);
        capture.notes.push(msg);
        out.blind.push((*what).to_string());
    }
    if scratch_writes > 0 {
        let msg = format!(
            "{scratch_writes} file(s) the job wrote under the temporary directory were not recorded as outputs (declare one with -o to keep it)"
        );
        if !plan.quiet {
            ui::info(&msg);
        }
        capture.notes.push(msg);
    }
    if unreadable > 0 {
        capture.notes.push(format!(
            "{unreadable} file call(s) named a path lineage could not read (a process gone, a bad pointer): not recorded"
        ));
    }
    capture.observed = Some(io);
    crate::timing::mark("observed I/O recorded");
    out
}

fn under_any<'a>(path: &Path, mut dirs: impl Iterator<Item = &'a PathBuf>) -> bool {
    dirs.any(|d| path.starts_with(d))
}

/// A path is a string from the job: a secret in a file's name is redacted like one in its
/// arguments (the bytes still identify the file), with a note naming `what` it was.
pub(super) fn redact_paths(
    plan: &Plan,
    edges: &mut [Edge],
    what: &str,
    capture: &mut Capture,
    told: &mut Told,
) {
    for e in edges {
        let (path, abs) = (
            plan.policy.redact_text(&e.path),
            plan.policy.redact_text(&e.abs_path),
        );
        if path != e.path || abs != e.abs_path {
            let msg = format!(
                "{what} held a secret, so it is recorded as {}",
                ui::escape(&path)
            );
            told.secret(capture, msg);
            (e.path, e.abs_path) = (path, abs);
        }
    }
}

/// Hash an observed path into an edge (None and a note when it cannot be read).
pub(super) fn hash_edge(
    plan: &Plan,
    d: &Declared,
    role: Role,
    token: &str,
    capture: &mut Capture,
    told: &mut Told,
) -> Edge {
    let sink = &mut |e: &[crate::model::DirEntry]| plan.store.stage(token, e);
    let hashed = match role {
        Role::Output => plan.hashing.hash_output(&d.abs, sink, Some(&plan.store)),
        _ => plan
            .hashing
            .hash_path(&d.abs, sink, Some(&plan.store), None),
    };
    match hashed {
        Ok(h) => d.edge(role, Some(h.artifact), Some(token.to_string())),
        Err(e) => {
            let msg = format!("observed {} could not be hashed: {e}", d.given.display());
            told.note(capture, msg);
            d.edge(role, None, None)
        }
    }
}

/// The rule (docs/recording.md): a directory of which the job read at least [`ROLL_UP`]
/// files, and at least half of its files, becomes one input in their place; then a directory every entry of which is such a
/// directory or a file the job read takes their place, and so on up. Never the working
/// directory, the work tree, the home or temporary directory, or anything above them.
fn roll_up_inputs(places: &Places, reads: BTreeMap<PathBuf, bool>) -> Vec<(PathBuf, bool)> {
    let mut by_dir: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for p in reads.keys() {
        if let Some(parent) = p.parent() {
            *by_dir.entry(parent.to_path_buf()).or_default() += 1;
        }
    }
    // At least ROLL_UP files, and at least half of the files in it: a job that read 10 of
    // 300 files records those 10, not bytes it never read.
    let files_in = |d: &Path| {
        std::fs::read_dir(d).map_or(usize::MAX, |entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .count()
        })
    };
    let mut rolled: BTreeSet<PathBuf> = by_dir
        .into_iter()
        .filter(|(d, n)| *n >= ROLL_UP && 2 * *n >= files_in(d) && !places.too_wide(d))
        .map(|(d, _)| d)
        .collect();
    // Up: a parent all of whose entries are rolled-up directories or files read.
    loop {
        let parents: BTreeSet<PathBuf> = rolled
            .iter()
            .filter_map(|d| d.parent().map(Path::to_path_buf))
            .filter(|p| !rolled.contains(p) && !places.too_wide(p))
            .collect();
        let mut grew = false;
        for p in parents {
            let Ok(entries) = std::fs::read_dir(&p) else {
                continue;
            };
            let all = entries.flatten().all(|e| {
                let path = e.path();
                rolled.contains(&path) || reads.contains_key(&path)
            });
            if all {
                rolled.insert(p);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    // Keep only the topmost directories; the files not under one stay files.
    let top: Vec<PathBuf> = rolled
        .iter()
        .filter(|d| !d.ancestors().skip(1).any(|a| rolled.contains(a)))
        .cloned()
        .collect();
    let mut out: Vec<(PathBuf, bool)> = top
        .iter()
        .map(|d| {
            let changed = reads
                .iter()
                .any(|(p, changed)| *changed && p.starts_with(d));
            (d.clone(), changed)
        })
        .collect();
    out.extend(
        reads
            .into_iter()
            .filter(|(p, _)| !top.iter().any(|d| p.starts_with(d))),
    );
    out.sort();
    out
}

/// Outputs: the files the job wrote directly in a directory are recorded as that directory
/// when there are at least [`ROLL_UP`] of them and it holds nothing else (only the job's
/// product); the rest as files.
fn roll_up_outputs(places: &Places, writes: BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let mut groups: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    let mut loose = Vec::new();
    for p in writes {
        match p.parent() {
            Some(d) if !places.too_wide(d) => groups.entry(d.to_path_buf()).or_default().push(p),
            _ => loose.push(p),
        }
    }
    // Only the job's files: a directory holding anything else stays a list of files.
    groups.retain(|dir, files| {
        let count = std::fs::read_dir(dir).map_or(usize::MAX, |entries| entries.count());
        if count == files.len() {
            true
        } else {
            loose.append(files);
            false
        }
    });
    for (dir, files) in groups {
        if files.len() >= ROLL_UP && dir.is_dir() {
            loose.push(dir);
        } else {
            loose.extend(files);
        }
    }
    loose.sort();
    loose
}
