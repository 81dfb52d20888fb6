//! The test builder: a temporary work directory, a temporary store and a private HOME with
//! its own git identity, so tests never touch the developer's store or git config.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Env {
    _root: tempfile::TempDir,
    pub work: PathBuf,
    pub store: PathBuf,
    pub home: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("work");
        let home = root.path().join("home");
        std::fs::create_dir_all(&work).expect("mkdir work");
        std::fs::create_dir_all(&home).expect("mkdir home");
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n",
        )
        .expect("gitconfig");
        Env {
            store: root.path().join("store"),
            _root: root,
            work,
            home,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, contents).expect("write");
        p
    }

    fn isolate(&self, cmd: &mut Command) {
        cmd.current_dir(&self.work)
            .env("HOME", &self.home)
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env("LINEAGE_STORE", &self.store)
            .env_remove("LINEAGE_OWNER")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .env_remove("SLURM_JOB_ID")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("KUBERNETES_SERVICE_HOST");
    }

    /// Run git in the work directory; panics when it fails.
    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.args(args);
        self.isolate(&mut cmd);
        let out = cmd.output().expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A repository with one commit holding `train.py`.
    pub fn init_repo(&self) {
        self.git(&["init", "-q"]);
        self.write("train.py", "echo training\n");
        self.git(&["add", "train.py"]);
        self.git(&["commit", "-q", "-m", "first"]);
    }

    /// `lineage` with the isolated environment, not yet run.
    pub fn lineage(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lineage"));
        self.isolate(&mut cmd);
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn cmd<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.lineage();
        cmd.args(args);
        output_within(cmd, Duration::from_secs(60))
    }

    /// `lineage run -q ARGS...`, which must succeed; returns the new run's id.
    pub fn record(&self, args: &[&str]) -> String {
        let mut full = vec!["run", "-q"];
        full.extend_from_slice(args);
        let out = self.cmd(&full);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        self.show(None)["id"].as_str().expect("id").to_string()
    }

    /// `lineage show [RUN] --json`, parsed; panics unless it succeeds.
    pub fn show(&self, run: Option<&str>) -> Value {
        let mut args = vec!["show", "--json"];
        args.extend(run);
        let out = self.cmd(&args);
        assert!(out.status.success(), "show failed: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("show --json is JSON")
    }

    /// Every file under the store directory, with its raw bytes.
    pub fn store_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        walkdir::WalkDir::new(&self.store)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                (
                    e.path().to_path_buf(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.store.join("lineage.db")).expect("open db")
    }
}

/// Run a command, killing it (and failing the test) if it outlives `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            true
        })
    };
    let out = child.wait_with_output().expect("wait");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !watchdog.join().expect("watchdog"),
        "command hung and was killed after {limit:?}"
    );
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

pub fn blake3_hex(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The single input (or output) of a run's JSON at `role` ("inputs"/"outputs").
pub fn artifact<'a>(run: &'a Value, role: &str, path: &str) -> &'a Value {
    run[role]
        .as_array()
        .expect("array")
        .iter()
        .find(|a| a["path"] == path)
        .unwrap_or_else(|| panic!("no {role} {path} in {run}"))
}

pub fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
