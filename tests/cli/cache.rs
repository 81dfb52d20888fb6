//! The stat cache: unchanged files are not read again, and a stale hash is never returned.
//! Files are made, then aged past the one-second racy window before the first run, as a
//! user's dataset would be.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn input_hash(env: &Env, path: &str) -> String {
    let out = env.cmd(["run", "-q", "-i", path, "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    artifact(&env.show(None), "inputs", path)["hash"]
        .as_str()
        .expect("hash")
        .to_string()
}

fn cached_rows(env: &Env, path: &str) -> i64 {
    let meta = std::fs::metadata(env.path(path)).expect("stat");
    env.db()
        .query_row(
            "SELECT count(*) FROM stat_cache WHERE dev = ?1 AND ino = ?2",
            [meta.dev() as i64, meta.ino() as i64],
            |r| r.get(0),
        )
        .expect("count")
}

/// Poison the cached hash of `path`: a run that returns it proves the cache was used.
fn poison(env: &Env, path: &str) -> String {
    let bogus = "0".repeat(64);
    let meta = std::fs::metadata(env.path(path)).expect("stat");
    let n = env
        .db()
        .execute(
            "UPDATE stat_cache SET hash = ?3 WHERE dev = ?1 AND ino = ?2",
            rusqlite::params![meta.dev() as i64, meta.ino() as i64, bogus],
        )
        .expect("update");
    assert_eq!(n, 1, "{path} was cached");
    format!("blake3:{bogus}")
}

fn age() {
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn an_unchanged_file_is_not_read_again() {
    let env = Env::new();
    env.write("data.bin", "some bytes\n");
    age();
    assert_eq!(input_hash(&env, "data.bin"), blake3_hex(b"some bytes\n"));
    let bogus = poison(&env, "data.bin");
    assert_eq!(
        input_hash(&env, "data.bin"),
        bogus,
        "the cached hash was used"
    );
}

#[test]
fn rewritten_bytes_with_the_mtime_put_back_are_hashed_again() {
    let env = Env::new();
    env.write("data.bin", "AAAA\n");
    age();
    input_hash(&env, "data.bin");
    let before = std::fs::metadata(env.path("data.bin")).expect("stat");
    poison(&env, "data.bin");
    // Same size, new bytes, mtime put back as tar, rsync or `touch -d` would: ctime moved.
    env.write("data.bin", "BBBB\n");
    let mtime = format!("@{}.{:09}", before.mtime(), before.mtime_nsec());
    let status = std::process::Command::new("touch")
        .args(["-d", &mtime, env.path("data.bin").to_str().expect("utf-8")])
        .status()
        .expect("touch");
    assert!(status.success());
    let after = std::fs::metadata(env.path("data.bin")).expect("stat");
    assert_eq!(
        (after.mtime(), after.mtime_nsec(), after.len()),
        (before.mtime(), before.mtime_nsec(), before.len())
    );
    assert_eq!(input_hash(&env, "data.bin"), blake3_hex(b"BBBB\n"));
}

#[test]
fn a_file_modified_in_the_same_second_it_is_hashed_is_not_trusted() {
    let env = Env::new();
    env.write("fresh.txt", "v1\n");
    // Hashed right away: within the racy window, so not cached.
    assert_eq!(input_hash(&env, "fresh.txt"), blake3_hex(b"v1\n"));
    assert_eq!(cached_rows(&env, "fresh.txt"), 0);
    // Modified within the same second (same size): still hashed for real.
    env.write("fresh.txt", "v2\n");
    assert_eq!(input_hash(&env, "fresh.txt"), blake3_hex(b"v2\n"));
}

#[test]
fn a_file_replaced_by_rename_is_hashed_again() {
    let env = Env::new();
    env.write("model.bin", "old\n");
    env.write("staging.bin", "new\n");
    age();
    input_hash(&env, "model.bin");
    poison(&env, "model.bin");
    std::fs::rename(env.path("staging.bin"), env.path("model.bin")).expect("mv");
    assert_eq!(input_hash(&env, "model.bin"), blake3_hex(b"new\n"));
}

#[test]
fn hard_links_share_a_cached_hash_and_a_directory_gaining_a_file_changes() {
    let env = Env::new();
    env.write("data/a.csv", "1,2\n");
    age();
    let first = input_hash(&env, "data");
    std::fs::hard_link(env.path("data/a.csv"), env.path("data/b.csv")).expect("ln");
    age();
    let second = input_hash(&env, "data");
    assert_ne!(first, second, "a directory gaining a file changes its hash");
    // Both names are the same inode: one cache row, the right hash for both.
    let run = env.show(None);
    let dir = artifact(&run, "inputs", "data")["hash"]
        .as_str()
        .expect("hash")
        .trim_start_matches("blake3:")
        .to_string();
    let hashes: Vec<String> = {
        let db = env.db();
        let mut stmt = db
            .prepare("SELECT file_hash FROM dir_entries WHERE dir_hash = ?1 ORDER BY path")
            .expect("prepare");
        stmt.query_map([&dir], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let want = blake3::hash(b"1,2\n").to_hex().to_string();
    assert_eq!(hashes, [want.clone(), want]);
    assert_eq!(cached_rows(&env, "data/a.csv"), 1);
    let _: Value = run;
}

fn dir_cache_rows(env: &Env) -> Vec<String> {
    let db = env.db();
    let mut stmt = db
        .prepare("SELECT dir_hash FROM dir_cache ORDER BY dir_hash")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn touch_back(env: &Env, rel: &str, before: &std::fs::Metadata) {
    let mtime = format!("@{}.{:09}", before.mtime(), before.mtime_nsec());
    let status = std::process::Command::new("touch")
        .args(["-d", &mtime, env.path(rel).to_str().expect("utf-8")])
        .status()
        .expect("touch");
    assert!(status.success());
}

#[test]
fn an_unchanged_directory_is_known_by_its_walk_alone() {
    let env = Env::new();
    env.write("data/a.csv", "1,2\n");
    env.write("data/sub/b.csv", "3,4\n");
    age();
    let first = input_hash(&env, "data");
    assert_eq!(
        dir_cache_rows(&env),
        [first.trim_start_matches("blake3:")],
        "the walk's digest is remembered"
    );
    // With every file's own cache entry poisoned, only the directory cache can give the
    // right hash: it stands for the whole walk, without a lookup per file.
    poison(&env, "data/a.csv");
    poison(&env, "data/sub/b.csv");
    assert_eq!(input_hash(&env, "data"), first);
}

#[test]
fn a_directory_whose_file_was_rewritten_with_its_mtime_put_back_is_hashed_again() {
    let env = Env::new();
    env.write("data/a.csv", "AAAA\n");
    env.write("data/b.csv", "keep\n");
    age();
    let first = input_hash(&env, "data");
    let before = std::fs::metadata(env.path("data/a.csv")).expect("stat");
    env.write("data/a.csv", "BBBB\n");
    touch_back(&env, "data/a.csv", &before);
    let second = input_hash(&env, "data");
    assert_ne!(first, second, "same size and mtime, new bytes: a new hash");
    // And the other way round: the bytes coming back give the first hash again.
    env.write("data/a.csv", "AAAA\n");
    touch_back(&env, "data/a.csv", &before);
    assert_eq!(input_hash(&env, "data"), first);
}

#[test]
fn a_directory_with_a_file_replaced_by_rename_is_hashed_again() {
    let env = Env::new();
    env.write("data/model.bin", "old\n");
    env.write("staging.bin", "new\n");
    age();
    let first = input_hash(&env, "data");
    std::fs::rename(env.path("staging.bin"), env.path("data/model.bin")).expect("mv");
    let second = input_hash(&env, "data");
    assert_ne!(first, second);
    let run = env.show(None);
    assert_eq!(artifact(&run, "inputs", "data")["file_count"], 1);
}

#[test]
fn a_directory_with_a_file_changed_in_the_racy_window_is_not_remembered() {
    let env = Env::new();
    env.write("data/old.csv", "settled\n");
    age();
    env.write("data/fresh.csv", "v1\n");
    let first = input_hash(&env, "data");
    assert!(dir_cache_rows(&env).is_empty(), "a racy walk is not cached");
    // Changed again within the same second, same size: hashed for real.
    env.write("data/fresh.csv", "v2\n");
    let second = input_hash(&env, "data");
    assert_ne!(first, second);
}

fn manifest_rows(env: &Env, dir_hash: &str) -> i64 {
    env.db()
        .query_row(
            "SELECT count(*) FROM dir_entries WHERE dir_hash = ?1",
            [dir_hash.trim_start_matches("blake3:")],
            |r| r.get(0),
        )
        .expect("count")
}

#[test]
fn a_new_directory_manifest_is_written_while_the_job_runs() {
    let env = Env::new();
    for i in 0..300 {
        env.write(&format!("data/{i:03}.csv"), format!("{i}\n"));
    }
    // The job waits until the test has seen the manifest in the store.
    let mut cmd = env.lineage();
    cmd.args([
        "run",
        "-q",
        "-i",
        "data",
        "--",
        "sh",
        "-c",
        "touch started; while [ ! -e go ]; do sleep 0.02; done",
    ]);
    let child = cmd.spawn().expect("spawn");
    wait_for(&env.path("started"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (rows, pending) = loop {
        let db = env.db();
        let rows: i64 = db
            .query_row("SELECT count(*) FROM dir_entries", [], |r| r.get(0))
            .expect("count");
        let pending: i64 = db
            .query_row("SELECT count(*) FROM pending_manifests", [], |r| r.get(0))
            .expect("count");
        if rows == 300 || std::time::Instant::now() > deadline {
            break (rows, pending);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    env.write("go", "");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    assert_eq!(
        (rows, pending),
        (300, 0),
        "the manifest landed during the job"
    );
}

#[test]
fn a_manifest_lost_with_its_lineage_process_is_written_by_the_next_run() {
    let env = Env::new();
    for i in 0..50 {
        env.write(&format!("data/{i:02}.csv"), format!("{i}\n"));
    }
    age();
    let dir = input_hash(&env, "data");
    assert_eq!(manifest_rows(&env, &dir), 50);
    // What a lineage killed between its first transaction and the manifest leaves behind.
    {
        let db = env.db();
        let bare = dir.trim_start_matches("blake3:");
        db.execute("DELETE FROM dir_entries WHERE dir_hash = ?1", [bare])
            .expect("delete");
        db.execute(
            "INSERT INTO pending_manifests (dir_hash, run_id) SELECT ?1, id FROM runs",
            [bare],
        )
        .expect("pending");
    }
    // The directory cache does not vouch for an incomplete manifest: the next run walks,
    // stages and writes it.
    assert_eq!(input_hash(&env, "data"), dir);
    assert_eq!(manifest_rows(&env, &dir), 50);
    let pending: i64 = env
        .db()
        .query_row("SELECT count(*) FROM pending_manifests", [], |r| r.get(0))
        .expect("count");
    assert_eq!(pending, 0);
}
