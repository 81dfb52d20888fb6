//! Issue 15's store faults and the job: signals reach the job once, hashing never follows
//! links into /proc, /sys or /dev nor out of an output directory, lineage stays responsive
//! while it hashes, a bad `secret.key` never stops a job, `doctor` tells permission problems
//! from damage and never panics, finished runs never depend on the WAL, paths are kept as
//! bytes, temporary files are user-only.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A job that counts the SIGTERMs delivered to it (in `count`), says it is ready, and ends
/// with 3 once `stop` appears. Python's wakeup fd gets a byte for every delivery, so two
/// deliveries count twice even when its handler would run once for both; only sends that
/// merge in the kernel while pending (as they would without lineage) count once.
const COUNTING_JOB: &str = r#"
import os, select, signal, time
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
signal.signal(signal.SIGTERM, lambda s, f: None)
open("ready", "w").close()
n, deadline = 0, time.time() + 60
while not os.path.exists("stop") and time.time() < deadline:
    if select.select([r], [], [], 0.05)[0]:
        n += len(os.read(r, 64))
        with open("count", "w") as f:
            f.write("TERM\n" * n)
raise SystemExit(3)
"#;

/// lineage running the counting job, as the leader of a process group of its own (so the
/// test can signal the group without signalling itself).
fn counting(env: &Env) -> Child {
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "--", "python3", "-c", COUNTING_JOB])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("lineage");
    wait_for(&env.path("ready"));
    child
}

/// Signal, give a second delivery time to arrive, stop the job: how many it handled.
fn terms_after(env: &Env, child: Child, target: &str) -> usize {
    let status = Command::new("kill")
        .args(["-TERM", "--", target])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for(&env.path("count"));
    std::thread::sleep(Duration::from_millis(500));
    env.write("stop", "");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    std::fs::read_to_string(env.path("count"))
        .expect("count")
        .lines()
        .count()
}

#[test]
fn a_signal_to_the_process_group_reaches_the_job_once() {
    // `timeout` and `kill -TERM -PGID` signal the whole group: the job, in lineage's group,
    // has it already, so lineage must not forward it again.
    let env = Env::new();
    let child = counting(&env);
    let group = format!("-{}", child.id());
    assert_eq!(terms_after(&env, child, &group), 1);
    assert_eq!(env.show(None)["status"], "interrupted");
}

#[test]
fn a_signal_to_lineage_alone_is_forwarded_to_the_job_once() {
    let env = Env::new();
    let child = counting(&env);
    let pid = child.id().to_string();
    assert_eq!(terms_after(&env, child, &pid), 1);
    assert_eq!(env.show(None)["status"], "interrupted");
}

#[test]
fn under_timeout_the_job_handles_one_sigterm_as_it_does_without_lineage() {
    // `timeout` sends SIGTERM to its child and then to its whole group, microseconds apart:
    // a job run bare has them merged while pending and handles one (measured); lineage must
    // neither forward the group's nor deliver its own a moment later.
    let env = Env::new();
    let mut cmd = Command::new("timeout");
    // Long enough for the job to have set its handler on a loaded machine (the whole suite
    // runs in parallel): a SIGTERM before that kills it, and nothing is counted.
    cmd.args(["4", env!("CARGO_BIN_EXE_lineage"), "run", "-q", "--"])
        .args(["python3", "-c", COUNTING_JOB])
        .current_dir(&env.work)
        .env("LINEAGE_STORE", &env.store)
        .env("HOME", &env.home)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("timeout");
    wait_for(&env.path("count"));
    std::thread::sleep(Duration::from_millis(500));
    env.write("stop", "");
    assert_eq!(child.wait().expect("wait").code(), Some(124));
    let count = std::fs::read_to_string(env.path("count")).expect("count");
    assert_eq!(
        count.lines().count(),
        1,
        "SIGTERM handled {} times",
        count.lines().count()
    );
}

/// The manifest of a run's directory artifact: (path, file hash) in path order.
fn manifest(env: &Env, role: &str, path: &str) -> Vec<(String, String)> {
    let run = env.show(None);
    let hash = artifact(&run, role, path)["hash"]
        .as_str()
        .expect("hashed")
        .to_string();
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT path, file_hash FROM dir_entries WHERE dir_hash = ?1 ORDER BY path")
        .expect("prepare");
    let hex = hash.trim_start_matches("blake3:").to_string();
    let rows: Vec<(String, String)> = stmt
        .query_map([&hex], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    if rows.is_empty() {
        // Hashes may be stored with their prefix.
        return stmt
            .query_map([&hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
    }
    rows
}

fn link_hash(target: &str) -> String {
    blake3::hash(target.as_bytes()).to_hex().to_string()
}

#[test]
fn links_into_proc_sys_and_dev_are_recorded_as_links_never_followed() {
    // Followed, /proc/self/... is endless and /dev/zero never ends.
    let env = Env::new();
    env.write("data/x.csv", "1\n");
    // /proc/self/root is `/` and /proc/self/cwd the work directory: where the way ends
    // cannot tell, the way itself does; `h` gets there through a link outside.
    std::os::unix::fs::symlink("/proc/self/root", env.root().join("hop")).expect("symlink");
    for (name, target) in [
        ("p", "/proc/self"),
        ("s", "/sys"),
        ("z", "/dev/zero"),
        ("r", "/proc/self/root"),
        ("c", "/proc/self/cwd"),
        ("h", "../../hop"),
    ] {
        std::os::unix::fs::symlink(target, env.path("data").join(name)).expect("symlink");
    }
    std::fs::create_dir_all(env.path("out")).expect("mkdir");
    std::os::unix::fs::symlink("/proc", env.path("out/proc")).expect("symlink");
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "-i", "data", "-o", "out", "--", "true"]);
    let out = output_within(cmd, Duration::from_secs(120));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(artifact(&run, "inputs", "data")["file_count"], 7, "{run}");
    let entries = manifest(&env, "inputs", "data");
    let z = entries.iter().find(|(p, _)| p == "z").expect("z recorded");
    assert!(z.1.ends_with(&link_hash("/dev/zero")), "{entries:?}");
    assert_eq!(artifact(&run, "outputs", "out")["file_count"], 1, "{run}");
}

#[test]
fn links_that_leave_an_output_directory_are_recorded_as_links_not_followed() {
    // A link to /etc in a model directory recorded every file of /etc (304,928 host files
    // with /root); git records a link as its target's text, and so does lineage now. Links
    // that stay inside the directory are followed as before.
    let env = Env::new();
    env.write("outside.txt", "not the model\n");
    env.write("model/weights.bin", "w");
    std::os::unix::fs::symlink("/etc", env.path("model/etc")).expect("symlink");
    std::os::unix::fs::symlink("../outside.txt", env.path("model/up")).expect("symlink");
    std::os::unix::fs::symlink("weights.bin", env.path("model/same")).expect("symlink");
    // --sha256 reads the directory again: links by their text there too.
    // The job touches one file: the directory is its product (produced means written).
    let out = env.cmd([
        "run",
        "-q",
        "--sha256",
        "-o",
        "model",
        "--",
        "touch",
        "model/weights.bin",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("sha256"), "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(artifact(&run, "outputs", "model")["file_count"], 4, "{run}");
    let entries = manifest(&env, "outputs", "model");
    let find = |p: &str| &entries.iter().find(|(n, _)| n == p).expect(p).1;
    assert!(find("etc").ends_with(&link_hash("/etc")), "{entries:?}");
    assert!(
        find("up").ends_with(&link_hash("../outside.txt")),
        "{entries:?}"
    );
    assert!(
        find("same").ends_with(&link_hash("w")),
        "followed inside: {entries:?}"
    );
    // `show model` finds the run that wrote it (hashed as an output, links as links).
    let out = env.cmd(["show", "model", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = run["id"].as_str().expect("id");
    assert!(stdout(&out).contains(id), "{}", stdout(&out));
}

/// lineage hashing a huge sparse output after its job ended with 5, sent `signal` (again
/// every second, in case the first came while the job was still exiting): it must stop
/// hashing, record what it has and exit with the job's code, long before the hash could be.
fn stopped_while_hashing(signal: &str) {
    let env = Env::new();
    let job = "trap '' TERM INT; mkdir -p out && truncate -s 4T out/big && echo x > out/small && touch done; exit 5";
    let mut cmd = env.lineage();
    cmd.args(["run", "-o", "out", "--", "sh", "-c", job])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("lineage");
    wait_for(&env.path("done"));
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        // A hang guard only: 4 TiB of zeros take hours to hash.
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("lineage kept hashing after SIG{signal}");
        }
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        std::thread::sleep(Duration::from_millis(1000));
    };
    let mut err = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert_eq!(status.code(), Some(5), "the job's code: {err}");
    let run = env.show(None);
    assert_eq!(run["exit_code"], 5, "{run}");
    assert!(artifact(&run, "outputs", "out")["hash"].is_null(), "{run}");
    let notes = run["notes"].to_string();
    assert!(notes.contains("asked to stop"), "{run}");
}

#[test]
fn a_stop_asked_while_the_job_ran_stops_the_hashing_after_it() {
    // One SIGTERM (a scheduler's, say, before its SIGKILL): the job saves a huge output and
    // exits 0; lineage must not then spend hours hashing it.
    let env = Env::new();
    let job = "trap 'truncate -s 4T out/big; exit 0' TERM; mkdir -p out; touch ready; \
               while :; do sleep 0.05; done";
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "-o", "out", "--", "sh", "-c", job])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("lineage");
    wait_for(&env.path("ready"));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("lineage kept hashing after the job it was asked to stop had ended");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "the job's code");
    let run = env.show(None);
    assert_eq!(run["status"], "interrupted", "{run}");
    assert!(artifact(&run, "outputs", "out")["hash"].is_null(), "{run}");
    assert!(run["notes"].to_string().contains("asked to stop"), "{run}");
}

#[test]
fn sigterm_while_outputs_are_hashed_stops_lineage_with_the_jobs_code() {
    stopped_while_hashing("TERM");
}

#[test]
fn sigint_while_outputs_are_hashed_stops_lineage_with_the_jobs_code() {
    stopped_while_hashing("INT");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn an_unusable_secret_key_never_stops_the_job_and_doctor_reports_it() {
    // Damaged, open to others, a symlink, and (as root) another user's: each is set aside
    // with a warning, a new key made, and the job runs.
    let env = Env::new();
    env.record(&["--", "true"]);
    let key = env.store.join("secret.key");
    let other = env.root().join("planted.key");
    std::fs::write(&other, [7u8; 32]).expect("write");
    set_mode(&other, 0o600);
    let is_root = nix::unistd::geteuid().is_root();
    type Plant<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Plant)> = vec![
        (
            "damaged",
            Box::new(|| std::fs::write(&key, b"short").expect("write")),
        ),
        (
            "group-writable",
            Box::new(|| {
                std::fs::write(&key, [1u8; 32]).expect("write");
                set_mode(&key, 0o620);
            }),
        ),
        (
            "a symlink",
            Box::new(|| std::os::unix::fs::symlink(&other, &key).expect("symlink")),
        ),
        (
            "another user's",
            Box::new(|| {
                std::fs::write(&key, [2u8; 32]).expect("write");
                set_mode(&key, 0o600);
                std::os::unix::fs::chown(&key, Some(65534), Some(65534)).expect("chown");
            }),
        ),
    ];
    for (what, plant) in cases {
        if what == "another user's" && !is_root {
            continue;
        }
        let _ = std::fs::remove_file(&key);
        plant();
        let out = env.cmd(["doctor"]);
        assert_eq!(code(&out), 1, "{what}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("secret.key"),
            "{what}: {}",
            stdout(&out)
        );
        let out = env.cmd(["run", "-q", "--", "sh", "-c", "exit 7"]);
        assert_eq!(code(&out), 7, "{what}: the job ran: {}", stderr(&out));
        assert!(
            stderr(&out).contains("set aside"),
            "{what}: {}",
            stderr(&out)
        );
        let meta = std::fs::symlink_metadata(&key).expect("new key");
        assert!(meta.is_file(), "{what}");
        assert_eq!(meta.len(), 32, "{what}");
        assert_eq!(mode_of(&key), 0o600, "{what}");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.uid(), nix::unistd::getuid().as_raw(), "{what}");
        assert_ne!(
            std::fs::read(&key).expect("key"),
            [7u8; 32],
            "{what}: the planted key"
        );
        assert_eq!(code(&env.cmd(["doctor"])), 0, "{what}");
    }
    // The planted file is never touched.
    assert_eq!(std::fs::read(&other).expect("planted"), [7u8; 32]);
}

#[test]
fn doctor_fixes_a_permission_only_problem_with_chmod_and_no_rebuild() {
    let env = Env::new();
    env.record(&["--", "true"]);
    let db = env.store.join("lineage.db");
    set_mode(&env.store, 0o755);
    set_mode(&db, 0o644);
    let out = env.cmd(["doctor"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("chmod 700"), "{}", stdout(&out));
    let out = env.cmd(["doctor", "--repair"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("fixed: chmod 600"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("backup"), "{}", stdout(&out));
    assert_eq!(mode_of(&env.store), 0o700);
    assert_eq!(mode_of(&db), 0o600);
    let rebuilt = std::fs::read_dir(&env.store)
        .expect("ls")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("broken"));
    assert!(!rebuilt, "no rebuild for a permission problem");
    assert_eq!(env.cmd(["list", "--json"]).status.code(), Some(0));
}

/// A store directory made beforehand with mkdir's 0755 is made the user's alone on first
/// use, and said once; a directory holding anything else given as the store is left as it
/// is, and said every time.
#[test]
fn a_store_directory_open_to_others_is_made_the_users_alone() {
    let env = Env::new();
    std::fs::create_dir_all(&env.store).expect("store");
    set_mode(&env.store, 0o755);
    let out = env.cmd(["run", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("was mode 755, open to other users: made 700"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mode_of(&env.store), 0o700);
    let again = env.cmd(["list"]);
    assert!(
        !stderr(&again).contains("open to other users"),
        "{}",
        stderr(&again)
    );
    // A project directory given as the store: not changed, said.
    env.write("notes.txt", "mine");
    set_mode(&env.work, 0o775);
    let mut cmd = env.lineage();
    cmd.args(["list"]).env("LINEAGE_STORE", &env.work);
    let out = cmd.output().expect("lineage");
    assert!(
        stderr(&out).contains("is mode 775, open to other users: chmod 700"),
        "{}",
        stderr(&out)
    );
    assert_eq!(mode_of(&env.work), 0o775);
    // Not the store's alone: a name that merely starts like a store file, a setgid
    // directory (meant to be shared).
    let notes = env.path("notes-store");
    std::fs::create_dir(&notes).expect("mkdir");
    std::fs::write(notes.join("lineage.db.my-notes"), "mine").expect("notes");
    set_mode(&notes, 0o755);
    let shared = env.path("shared-store");
    std::fs::create_dir(&shared).expect("mkdir");
    set_mode(&shared, 0o2775);
    for (dir, mode) in [(&notes, 0o755), (&shared, 0o2775)] {
        let mut cmd = env.lineage();
        cmd.args(["list"]).env("LINEAGE_STORE", dir);
        let out = cmd.output().expect("lineage");
        assert!(
            stderr(&out).contains(&format!("is mode {mode:o}, open to other users: chmod 700")),
            "{}",
            stderr(&out)
        );
        assert_eq!(mode_of(dir), mode & 0o777);
        let full = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir).expect("stat").permissions(),
        );
        assert_eq!(full & 0o7777, mode, "the setgid bit kept");
    }
    // A database planted as a link in a directory others could write: refused, the
    // directory left as it is.
    let planted = env.path("planted");
    std::fs::create_dir(&planted).expect("mkdir");
    std::os::unix::fs::symlink(env.store.join("lineage.db"), planted.join("lineage.db"))
        .expect("link");
    set_mode(&planted, 0o777);
    let mut cmd = env.lineage();
    cmd.args(["list"]).env("LINEAGE_STORE", &planted);
    let out = cmd.output().expect("lineage");
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "lineage.db in it is a symbolic link, not the store's own file: move it away"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(mode_of(&planted), 0o777);
}

#[test]
fn doctor_says_permission_denied_for_a_store_it_may_not_read() {
    // As root the mode still says so; as a user, the database cannot even be seen.
    let env = Env::new();
    env.record(&["--", "true"]);
    set_mode(&env.store, 0o000);
    let out = env.cmd(["doctor"]);
    set_mode(&env.store, 0o700);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("permission denied"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("does not exist"), "{}", stdout(&out));
    set_mode(&env.store, 0o000);
    let out = env.cmd(["doctor", "--repair"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert_eq!(mode_of(&env.store), 0o700);
}

#[test]
fn doctor_repair_never_loses_a_run_being_recorded() {
    let env = Env::new();
    let first = env.record(&["--", "true"]);
    let mut cmd = env.lineage();
    cmd.args([
        "run",
        "-q",
        "--",
        "sh",
        "-c",
        "touch ready; while [ ! -e stop ]; do sleep 0.05; done",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let live = cmd.spawn().expect("lineage");
    wait_for(&env.path("ready"));
    // Something a rebuild is for: a record this lineage cannot read.
    env.db()
        .execute(
            "UPDATE runs SET capture = 'not json' WHERE id = ?1",
            [&first],
        )
        .expect("damage");
    let out = env.cmd(["doctor", "--repair"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("still being recorded"),
        "{}",
        stdout(&out)
    );
    env.write("stop", "");
    let out = live.wait_with_output().expect("wait");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.cmd(["doctor", "--repair"]);
    assert!(
        stdout(&out).contains("backup"),
        "now it rebuilds: {}",
        stdout(&out)
    );
    let runs: serde_json::Value =
        serde_json::from_slice(&env.cmd(["list", "--json"]).stdout).expect("json");
    let statuses: Vec<&str> = runs
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert!(statuses.contains(&"succeeded"), "{runs}");
    assert!(!statuses.contains(&"running"), "{runs}");
}

#[test]
fn finished_runs_never_depend_on_the_wal() {
    // One flipped bit in lineage.db-wal dropped the runs after it (19 of 20 trials): each
    // finished run is now copied into the database and the WAL emptied.
    let env = Env::new();
    for i in 0..20 {
        env.record(&["--", "true"]);
        let wal = env.store.join("lineage.db-wal");
        let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert_eq!(len, 0, "after run {i} the WAL holds {len} bytes");
    }
    // Whatever the WAL holds now (here: garbage), the runs are in the database.
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(env.store.join("lineage.db-wal"), garbage).expect("write");
    let out = env.cmd(["list", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(runs.as_array().expect("runs").len(), 20, "{}", stderr(&out));
}

/// `n` commits left in the store's WAL by a writer that never checkpoints (another SQLite
/// client, or lineage killed at the wrong moment); returns the page size.
fn commits_left_in_the_wal(env: &Env, n: usize) -> usize {
    let conn = rusqlite::Connection::open(env.store.join("lineage.db")).expect("open");
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .expect("pragma");
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .expect("no checkpoint on close");
    for i in 0..n {
        conn.execute("UPDATE runs SET cwd = ?1", [format!("/w{i}")])
            .expect("commit");
    }
    conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .expect("page size") as usize
}

#[test]
fn doctor_finds_a_damaged_wal_frame_followed_by_valid_ones() {
    // SQLite stops reading a WAL at its first bad frame and says nothing: the commits after
    // it are silently gone. Such a WAL is left by a writer that did not checkpoint (another
    // SQLite client, or lineage killed at the wrong moment).
    let env = Env::new();
    env.record(&["--", "true"]);
    let page = commits_left_in_the_wal(&env, 10);
    assert_eq!(code(&env.cmd(["doctor"])), 0, "an intact WAL is healthy");
    let wal = env.store.join("lineage.db-wal");
    let mut bytes = std::fs::read(&wal).expect("wal");
    // A bit in the page of the second frame.
    let at = 32 + (24 + page) + 24 + 100;
    assert!(
        bytes.len() > at + 4 * (24 + page),
        "several frames after it"
    );
    bytes[at] ^= 0x10;
    std::fs::write(&wal, bytes).expect("write");
    let out = env.cmd(["doctor"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("frame 2 is damaged"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("valid frames after it"),
        "{}",
        stdout(&out)
    );
    // The next ordinary command keeps the evidence before its own writes replace the WAL,
    // and says so.
    let out = env.cmd(["list"]);
    assert!(
        stderr(&out).contains("a copy is kept as"),
        "{}",
        stderr(&out)
    );
    let kept = std::fs::read_dir(&env.store)
        .expect("store")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("lineage.db-wal.damaged-")
        })
        .count();
    assert_eq!(kept, 1);
}

/// A WAL whose header is damaged (a flipped bit in its magic number or page size) is
/// ignored whole by SQLite: doctor says so.
#[test]
fn doctor_finds_a_wal_whose_header_is_damaged() {
    for at in [3usize, 9] {
        let env = Env::new();
        env.record(&["--", "true"]);
        commits_left_in_the_wal(&env, 1);
        let wal = env.store.join("lineage.db-wal");
        let mut bytes = std::fs::read(&wal).expect("wal");
        bytes[at] ^= 0x10;
        std::fs::write(&wal, bytes).expect("write");
        let out = env.cmd(["doctor"]);
        assert_eq!(code(&out), 1, "byte {at}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("the WAL header is damaged"),
            "byte {at}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn a_path_that_is_not_utf8_is_stored_losslessly_and_rerun_finds_it() {
    // `in\xff.csv` was stored as `in\u{fffd}.csv`, and rerun then called it missing.
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.init_repo();
    let input = OsStr::from_bytes(b"in\xff.csv");
    let output = OsStr::from_bytes(b"out\xfe");
    std::fs::write(env.work.join(input), "1,2\n").expect("write");
    env.write("keep/a\u{10ff41}b.txt", "literal private-use name\n");
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "-i"])
        .arg(input)
        .args(["-i", "keep", "-o"])
        .arg(output)
        .args([
            "--",
            "sh",
            "-c",
            "o=$(printf 'out\\376'); mkdir -p \"$o\" && cat in*.csv > \"$o/copy\"",
        ]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = env.show(None)["id"].as_str().expect("id").to_string();
    let stored: Vec<String> = env
        .db()
        .prepare("SELECT path FROM edges WHERE run_id = ?1 ORDER BY role, position")
        .expect("prepare")
        .query_map([&id], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("paths");
    assert!(
        stored.contains(&"in\u{10ffff}.csv".to_string()),
        "{stored:?}"
    );
    assert!(
        !stored.iter().any(|p| p.contains('\u{fffd}')),
        "lossy: {stored:?}"
    );
    // A name that really holds one of the escape code points comes back as it was.
    let names: Vec<String> = env
        .db()
        .prepare("SELECT path FROM dir_entries")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    assert!(
        names
            .iter()
            .any(|n| lineage::model::path_bytes(n) == "a\u{10ff41}b.txt".as_bytes()),
        "{names:?}"
    );
    let out = env.cmd(["rerun", &id]);
    let err = stderr(&out);
    assert!(!err.contains("missing"), "{err}");
    assert_eq!(code(&out), 0, "{err}");

    // An untracked file of the code with such a name is kept and restored byte for byte.
    let helper = OsStr::from_bytes(b"helper\xfd.sh");
    std::fs::write(env.work.join(helper), "echo hi\n").expect("write");
    let id = env.record(&["--", "true"]);
    let mut cmd = env.lineage();
    cmd.args(["rerun", &id, "--worktree", "--keep-worktree", "--json"]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kept = std::path::PathBuf::from(verdict["worktree"].as_str().expect("kept"));
    assert_eq!(
        std::fs::read_to_string(kept.join(helper)).expect("restored"),
        "echo hi\n"
    );
    let _ = std::fs::remove_dir_all(kept.parent().expect("private dir"));
}

/// Every entry directly under `dir`, with its mode.
fn modes_in(dir: &std::path::Path) -> Vec<(String, u32)> {
    std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                mode_of(&e.path()),
            )
        })
        .collect()
}

#[test]
fn temporary_files_are_user_only() {
    // `bundle import -` copies stdin to a temporary file (0644 before): caught while it is
    // still copying, with a private TMPDIR to look in.
    let env = Env::new();
    env.record(&["--", "true"]);
    let bundle = env.cmd(["bundle", "export"]).stdout;
    let tmp = env.root().join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    let mut cmd = env.lineage();
    cmd.args(["bundle", "import", "-"])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("lineage");
    let mut stdin = child.stdin.take().expect("stdin");
    use std::io::Write as _;
    stdin.write_all(&bundle[..4096]).expect("write");
    stdin.flush().expect("flush");
    let start = Instant::now();
    while modes_in(&tmp).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no temporary file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for (name, mode) in modes_in(&tmp) {
        assert_eq!(mode & 0o077, 0, "{name} is mode {mode:o}");
    }
    stdin.write_all(&bundle[4096..]).expect("write");
    drop(stdin);
    assert!(child.wait().expect("wait").success());

    // A rerun's worktree (restored configs included) lives in a user-only directory.
    env.init_repo();
    env.write("cfg.yaml", "lr: 0.1\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-qm", "cfg"]);
    let id = env.record(&["-c", "cfg.yaml", "--", "true"]);
    let mut cmd = env.lineage();
    cmd.args(["rerun", &id, "--worktree", "--keep-worktree", "--json"])
        .env("TMPDIR", &tmp);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dirs: Vec<_> = modes_in(&tmp)
        .into_iter()
        .filter(|(n, _)| n.starts_with("lineage-rerun-"))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(dirs[0].1, 0o700, "{dirs:?}");
}

#[test]
fn a_command_with_the_store_open_during_a_rebuild_writes_to_the_rebuilt_store() {
    // The rebuilt database is copied into the store's own file (SQLite's backup API), not
    // renamed over it: what a process that had the store open writes next is not lost in a
    // file swapped away.
    let env = Env::new();
    let first = env.record(&["--", "true"]);
    let second = env.record(&["--", "true"]);
    env.db()
        .execute(
            "UPDATE runs SET capture = 'not json' WHERE id = ?1",
            [&first],
        )
        .expect("damage");
    let open = env.db();
    open.busy_timeout(Duration::from_secs(30)).expect("busy");
    // It has read the store: its files are open.
    let n: i64 = open
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .expect("read");
    assert_eq!(n, 2);
    let out = env.cmd(["doctor", "--repair"]);
    assert!(
        stdout(&out).contains("backup of the damaged file"),
        "{}",
        stdout(&out)
    );
    open.execute("UPDATE runs SET exit_code = 42 WHERE id = ?1", [&second])
        .expect("write after the rebuild");
    drop(open);
    let code_now: i64 = env
        .db()
        .query_row("SELECT exit_code FROM runs WHERE id = ?1", [&second], |r| {
            r.get(0)
        })
        .expect("read");
    assert_eq!(code_now, 42, "the write went to the rebuilt store");
}

#[test]
#[ignore = "needs root (to run lineage as nobody); .ci/run runs it"]
fn doctor_as_an_ordinary_user_says_permission_denied_not_missing() {
    // Root reads everything: as `nobody` (setpriv, util-linux), `chmod 000` on the store
    // really hides the database, which doctor called "does not exist".
    require_root("to switch to another user");
    let env = Env::new();
    let base = env.root().join("nobody");
    std::fs::create_dir(&base).expect("mkdir");
    set_mode(env.root(), 0o755);
    std::os::unix::fs::chown(&base, Some(65534), Some(65534)).expect("chown");
    let store = base.join("store");
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_lineage"),
        ])
        .args(args)
        .current_dir(&base)
        .env("LINEAGE_STORE", &store)
        .env("HOME", &base);
        output_within(cmd, Duration::from_secs(30))
    };
    let out = as_nobody(&["run", "-q", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    set_mode(&store, 0o000);
    let out = as_nobody(&["doctor"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("permission denied"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("does not exist"), "{}", stdout(&out));
    let out = as_nobody(&["doctor", "--repair"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(mode_of(&store), 0o700);
    assert_eq!(code(&as_nobody(&["list"])), 0);
}

/// Signals whose default would kill lineage but that a job may handle (a scheduler's
/// SIGXCPU, SIGALRM, ...) reach the job once, and lineage keeps the job's exit code.
#[test]
fn a_scheduler_signal_the_job_handles_never_kills_lineage() {
    let env = Env::new();
    let job = COUNTING_JOB.replace(
        "signal.signal(signal.SIGTERM, lambda s, f: None)",
        "signal.signal(signal.SIGXCPU, lambda s, f: None)\nsignal.signal(signal.SIGALRM, lambda s, f: None)",
    );
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "--", "python3", "-c", &job])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("lineage");
    wait_for(&env.path("ready"));
    for (sig, target) in [
        ("-XCPU", format!("-{}", child.id())),
        ("-ALRM", child.id().to_string()),
    ] {
        let status = Command::new("kill")
            .args([sig, "--", &target])
            .status()
            .expect("kill");
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(300));
    env.write("stop", "");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 3, "the job's own code: {}", stderr(&out));
    let count = std::fs::read_to_string(env.path("count")).expect("count");
    assert_eq!(count.lines().count(), 2, "each handled once");
    assert_eq!(env.show(None)["status"], "failed");
}

#[test]
fn running_out_of_file_descriptors_never_records_a_wrong_hash() {
    // Under every descriptor limit from too few to enough, an input directory gets its true
    // hash or none: a subdirectory or file it could not open for want of a descriptor is
    // the machine's failure, not a property of the tree, so it is never left out of a hash.
    let env = Env::new();
    for d in 0..30 {
        for f in 0..3 {
            env.write(&format!("data/d{d:02}/f{f}"), format!("{d}-{f}"));
        }
    }
    assert_eq!(code(&env.cmd(["run", "-q", "-i", "data", "--", "true"])), 0);
    let truth = artifact(&env.show(None), "inputs", "data")["hash"].clone();
    assert!(truth.is_string(), "{truth}");
    let mut lost = 0;
    for limit in 8..=40 {
        for mode in ["--hash-before-launch", "--no-observe"] {
            let mut cmd = env.lineage();
            cmd.args(["run", "-q", mode, "-i", "data", "--", "true"]);
            // SAFETY: setrlimit is async-signal-safe.
            #[allow(unsafe_code)]
            unsafe {
                cmd.pre_exec(move || {
                    let l = nix::libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    match nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &l) {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                });
            }
            let out = cmd.output().expect("lineage");
            let said = stderr(&out);
            // Too few to open the store: no run at all.
            let Some(run) = env
                .cmd(["show", "--json"])
                .status
                .success()
                .then(|| env.show(None))
            else {
                continue;
            };
            let hash = &artifact(&run, "inputs", "data")["hash"];
            assert!(
                hash.is_null() || *hash == truth,
                "limit {limit} {mode}: {hash} instead of {truth}\n{said}"
            );
            if hash.is_null() && said.contains("could not be hashed") {
                lost += 1;
            }
        }
    }
    assert!(lost > 0, "no limit left the walk short of descriptors");
}

/// `cmd` started by a parent that ignores `signals` (as `nohup` ignores SIGHUP, a script's
/// background job SIGINT and SIGQUIT).
fn ignoring(cmd: &mut Command, signals: &'static [nix::sys::signal::Signal]) {
    use nix::sys::signal::{SigHandler, signal};
    // SAFETY: signal(2) with SIG_IGN is async-signal-safe and runs no handler code.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            for s in signals {
                signal(*s, SigHandler::SigIgn)?;
            }
            Ok(())
        });
    }
}

#[test]
fn signals_its_parent_ignored_stay_ignored_in_the_job_and_spare_it() {
    use nix::sys::signal::Signal::*;
    const IGNORED: &[nix::sys::signal::Signal] = &[SIGHUP, SIGINT, SIGQUIT, SIGCHLD, SIGXFSZ];
    let env = Env::new();
    // The job's ignored signals are those it has without lineage.
    let mut bare = Command::new("grep");
    bare.args(["SigIgn", "/proc/self/status"]);
    ignoring(&mut bare, IGNORED);
    let bare = bare.output().expect("grep");
    let mut wrapped = env.lineage();
    wrapped.args(["run", "-q", "--", "grep", "SigIgn", "/proc/self/status"]);
    ignoring(&mut wrapped, IGNORED);
    let out = wrapped.output().expect("lineage");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), String::from_utf8_lossy(&bare.stdout));
    // SIGHUP sent to lineage under nohup (its terminal closed) stops neither lineage nor the
    // job, which ends as it would have.
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "--", "sh", "-c"])
        .arg("touch ready; sleep 0.5; echo done > done.txt")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ignoring(&mut cmd, &[SIGHUP]);
    let mut lineage = cmd.spawn().expect("lineage");
    wait_for(&env.path("ready"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(lineage.id() as i32), SIGHUP)
        .expect("SIGHUP");
    let status = lineage.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(env.path("done.txt").exists());
    assert_eq!(env.show(None)["status"], "succeeded");
}

#[test]
fn a_parent_that_ignores_sigchld_still_gets_the_jobs_exit_code_and_outputs() {
    // Its children would be reaped by the kernel, lineage's wait for the job failing (it
    // answered 125, "the job did not run", after the job had run).
    let env = Env::new();
    let mut cmd = env.lineage();
    cmd.args([
        "run",
        "-q",
        "-o",
        "o.txt",
        "--",
        "sh",
        "-c",
        "echo x > o.txt; exit 7",
    ]);
    ignoring(&mut cmd, &[nix::sys::signal::Signal::SIGCHLD]);
    let out = cmd.output().expect("lineage");
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["exit_code"], 7);
    assert_eq!(
        artifact(&run, "outputs", "o.txt")["hash"],
        blake3_hex(b"x\n")
    );
}

#[test]
fn checkpoints_a_job_saves_when_asked_to_stop_are_recorded() {
    // SIGTERM (a scheduler's, `timeout`'s) to lineage: the job saves its checkpoint and exits;
    // what it saved is hashed within the grace lineage gives itself, not left "not recorded".
    let env = Env::new();
    let job = "trap 'head -c 16000000 /dev/zero > ckpt/last.pt; exit 0' TERM; mkdir -p ckpt; \
               touch ready; while :; do sleep 0.05; done";
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "-o", "ckpt", "--", "sh", "-c", job])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("lineage");
    wait_for(&env.path("ready"));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 0, "the job's code");
    let run = env.show(None);
    assert_eq!(run["status"], "interrupted", "{run}");
    let ckpt = artifact(&run, "outputs", "ckpt");
    assert_eq!(ckpt["file_count"], 1, "{run}");
    assert!(ckpt["hash"].is_string(), "{run}");
}

/// `show NAME` of a name that is not UTF-8 prints it escaped as `status` does
/// (`out\xfe.txt`), not with U+FFFD, in its first line and in its JSON as the store keeps it.
#[test]
fn show_prints_a_name_that_is_not_utf8_escaped() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.init_repo();
    let name = OsStr::from_bytes(b"out\xfe.txt");
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "-o"]).arg(name).args([
        "--",
        "sh",
        "-c",
        "printf made > \"$(printf 'out\\376.txt')\"",
    ]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut cmd = env.lineage();
    cmd.arg("show").arg(name);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = stdout(&out).lines().next().unwrap_or_default().to_string();
    assert!(first.starts_with("out\\xfe.txt "), "{first}");
    assert!(!stdout(&out).contains('\u{fffd}'), "{}", stdout(&out));
    let mut cmd = env.lineage();
    cmd.args(["show", "--json"]).arg(name);
    let out = output_within(cmd, Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        lineage::model::path_bytes(v["target"]["path"].as_str().expect("path")),
        b"out\xfe.txt"
    );
    // A name that is not there: the error names it escaped too.
    let mut cmd = env.lineage();
    cmd.arg("show").arg(OsStr::from_bytes(b"nope\xfe"));
    let out = output_within(cmd, Duration::from_secs(60));
    assert!(
        stderr(&out).contains("error: \"nope\\xfe\" is neither"),
        "{}",
        stderr(&out)
    );
}
