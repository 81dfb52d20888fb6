//! What `lineage run` captures: content hashes, git state, configs, software, context.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::*;

fn run_ok(env: &Env, args: &[&str]) -> Value {
    let out = env.cmd(args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.show(None)
}

#[test]
fn file_hashes_equal_the_blake3_reference() {
    let env = Env::new();
    let small = b"hello lineage\n".to_vec();
    // Larger than the mmap threshold, to cover the multi-threaded path.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    env.write("small.txt", &small);
    env.write("big.bin", &big);
    env.write("empty", b"");
    let run = run_ok(
        &env,
        &[
            "run",
            "-i",
            "small.txt",
            "-i",
            "big.bin",
            "-i",
            "empty",
            "--",
            "true",
        ],
    );
    assert_eq!(
        artifact(&run, "inputs", "small.txt")["hash"],
        blake3_hex(&small)
    );
    assert_eq!(
        artifact(&run, "inputs", "big.bin")["hash"],
        blake3_hex(&big)
    );
    assert_eq!(artifact(&run, "inputs", "big.bin")["size"], big.len());
    // The published BLAKE3 digest of the empty input.
    assert_eq!(
        artifact(&run, "inputs", "empty")["hash"],
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    // And b3sum, where installed, prints the same.
    if let Ok(out) = std::process::Command::new("b3sum")
        .arg(env.path("big.bin"))
        .output()
    {
        let hex = String::from_utf8_lossy(&out.stdout);
        let hex = hex.split_whitespace().next().unwrap_or("");
        assert_eq!(
            artifact(&run, "inputs", "big.bin")["hash"],
            format!("blake3:{hex}")
        );
    }
}

#[test]
fn output_hashes_are_taken_after_the_run() {
    let env = Env::new();
    let run = run_ok(
        &env,
        &[
            "run",
            "-o",
            "out/model.bin",
            "-o",
            "never.txt",
            "--",
            "sh",
            "-c",
            "mkdir -p out && printf weights > out/model.bin",
        ],
    );
    let model = artifact(&run, "outputs", "out/model.bin");
    assert_eq!(model["hash"], blake3_hex(b"weights"));
    assert_eq!(model["missing"], false);
    assert_eq!(model["kind"], "file");
    let never = artifact(&run, "outputs", "never.txt");
    assert_eq!(never["missing"], true);
    assert_eq!(never["hash"], Value::Null);
}

#[test]
fn a_missing_output_is_a_warning_not_a_failure() {
    let env = Env::new();
    let out = env.cmd(["run", "-o", "never.txt", "--", "true"]);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("warning: output never.txt does not exist"),
        "{}",
        stderr(&out)
    );
}

fn dir_hash(env: &Env) -> String {
    let run = run_ok(env, &["run", "-q", "-i", "data", "--", "true"]);
    artifact(&run, "inputs", "data")["hash"]
        .as_str()
        .expect("hash")
        .to_string()
}

#[test]
fn a_directory_hash_changes_when_a_file_is_added_removed_renamed_or_modified() {
    let env = Env::new();
    env.write("data/a.csv", "1,2\n");
    env.write("data/sub/b.csv", "3,4\n");
    let base = dir_hash(&env);
    assert_eq!(dir_hash(&env), base, "stable when nothing changes");

    env.write("data/c.csv", "5\n");
    let added = dir_hash(&env);
    std::fs::remove_file(env.path("data/c.csv")).expect("rm");
    assert_eq!(
        dir_hash(&env),
        base,
        "back to the same bytes, back to the same hash"
    );

    std::fs::rename(env.path("data/a.csv"), env.path("data/z.csv")).expect("mv");
    let renamed = dir_hash(&env);
    std::fs::rename(env.path("data/z.csv"), env.path("data/a.csv")).expect("mv");

    std::fs::remove_file(env.path("data/sub/b.csv")).expect("rm");
    let removed = dir_hash(&env);
    env.write("data/sub/b.csv", "3,4\n");

    env.write("data/a.csv", "1,3\n");
    let modified = dir_hash(&env);

    let all = [&base, &added, &renamed, &removed, &modified];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn every_file_inside_an_input_directory_is_recorded_with_its_hash() {
    let env = Env::new();
    env.write("data/a.csv", "1,2\n");
    env.write("data/sub/b.csv", "3,4\n");
    let run = run_ok(&env, &["run", "-i", "data", "--", "true"]);
    let data = artifact(&run, "inputs", "data");
    assert_eq!(data["kind"], "dir");
    assert_eq!(data["file_count"], 2);
    assert_eq!(data["size"], 8);
    let dir = data["hash"]
        .as_str()
        .expect("hash")
        .trim_start_matches("blake3:")
        .to_string();
    let rows: Vec<(String, String, i64)> = {
        let db = env.db();
        let mut stmt = db
            .prepare(
                "SELECT path, file_hash, size FROM dir_entries WHERE dir_hash = ?1 ORDER BY path",
            )
            .expect("prepare");
        stmt.query_map([&dir], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(
        rows,
        [
            (
                "a.csv".to_string(),
                blake3::hash(b"1,2\n").to_hex().to_string(),
                4
            ),
            (
                "sub/b.csv".to_string(),
                blake3::hash(b"3,4\n").to_hex().to_string(),
                4
            ),
        ]
    );
}

#[test]
fn a_fifo_inside_an_input_directory_is_skipped_without_hanging() {
    let env = Env::new();
    env.write("data/a.csv", "1\n");
    nix::unistd::mkfifo(&env.path("data/pipe"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let _socket = std::os::unix::net::UnixListener::bind(env.path("data/sock")).expect("socket");
    let mut cmd = env.lineage();
    cmd.args(["run", "-i", "data", "--", "true"]);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("pipe"),
        "warning names the FIFO: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("sock"),
        "warning names the socket: {}",
        stderr(&out)
    );
    let run = env.show(None);
    assert_eq!(artifact(&run, "inputs", "data")["file_count"], 1);
}

#[test]
fn a_fifo_given_as_input_is_refused_before_launch() {
    let env = Env::new();
    nix::unistd::mkfifo(&env.path("pipe"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let mut cmd = env.lineage();
    cmd.args(["run", "-i", "pipe", "--", "true"]);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("pipe"), "{}", stderr(&out));
}

#[test]
fn symlinks_are_followed_and_loops_do_not_hang() {
    let env = Env::new();
    env.write("real/x.txt", "x");
    env.write("data/a.txt", "a");
    std::os::unix::fs::symlink(env.path("real"), env.path("data/link")).expect("symlink");
    std::os::unix::fs::symlink(env.path("data"), env.path("data/loop")).expect("symlink");
    std::os::unix::fs::symlink(env.path("nowhere"), env.path("data/dangling")).expect("symlink");
    let mut cmd = env.lineage();
    cmd.args(["run", "-i", "data", "--", "true"]);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("symlink loop"), "{err}");
    assert!(err.contains("dangling symlink"), "{err}");
    let run = env.show(None);
    assert_eq!(artifact(&run, "inputs", "data")["file_count"], 2);
}

#[test]
fn an_input_modified_during_the_run_is_flagged() {
    let env = Env::new();
    env.write("data.csv", "1\n");
    let out = env.cmd([
        "run",
        "-i",
        "data.csv",
        "--",
        "sh",
        "-c",
        "sleep 0.05; echo 2 >> data.csv",
    ]);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("data.csv changed while the job ran"),
        "{}",
        stderr(&out)
    );
    let run = env.show(None);
    let input = artifact(&run, "inputs", "data.csv");
    assert_eq!(input["changed_during_run"], true);
    assert_eq!(
        input["hash"],
        blake3_hex(b"1\n"),
        "the hash is the one taken before launch"
    );
}

#[test]
fn outside_git_the_code_is_absent_with_a_reason() {
    let env = Env::new();
    let run = run_ok(&env, &["run", "--", "true"]);
    assert_eq!(run["git"], Value::Null);
    assert_eq!(run["git_absent"], "not in a git repository");
    // The owner still has the global git identity.
    assert_eq!(run["owner"]["git_name"], "Test User");
}

#[test]
fn a_clean_repository_is_recorded_with_commit_branch_and_remote() {
    let env = Env::new();
    env.init_repo();
    env.git(&[
        "remote",
        "add",
        "origin",
        "https://oauth2:glpat-abcdefghijklmnopqrstu@gitlab.example.com/team/model.git",
    ]);
    let head = env.git(&["rev-parse", "HEAD"]);
    let run = run_ok(&env, &["run", "--", "sh", "train.py"]);
    let git = &run["git"];
    assert_eq!(git["commit"], head);
    assert_eq!(git["branch"], "main");
    assert_eq!(git["dirty"], false);
    assert_eq!(git["patch"], Value::Null);
    assert_eq!(git["remote"], "https://gitlab.example.com/team/model.git");
    assert_eq!(run["owner"]["git_email"], "test@example.com");
    // The script being run is identified by its bytes.
    assert_eq!(run["script"]["path"], "train.py");
    assert_eq!(run["script"]["hash"], blake3_hex(b"echo training\n"));
    for (path, bytes) in env.store_files() {
        assert!(
            !contains(&bytes, b"glpat-abcdefghijklmnopqrstu"),
            "token in {}",
            path.display()
        );
    }
}

#[test]
fn a_dirty_repository_keeps_its_patch_and_untracked_files() {
    let env = Env::new();
    env.init_repo();
    env.write(".gitignore", "ignored/\n");
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-q", "-m", "ignore"]);
    env.write("train.py", "print('training harder')\n");
    env.write("notes/new.py", "x = 1\n");
    env.write("ignored/cache.bin", "not recorded");
    let run = run_ok(&env, &["run", "--", "true"]);
    let git = &run["git"];
    assert_eq!(git["dirty"], true);
    assert_eq!(git["changed_files"], json!(["train.py"]));
    let untracked = git["untracked"].as_array().expect("untracked");
    assert_eq!(
        untracked.len(),
        1,
        "ignored files are not listed: {untracked:?}"
    );
    assert_eq!(untracked[0]["path"], "notes/new.py");
    assert_eq!(untracked[0]["hash"], blake3_hex(b"x = 1\n"));
    assert_eq!(untracked[0]["stored"], true);
    // The patch is a blob holding `git diff HEAD`.
    let patch = git["patch"]
        .as_str()
        .expect("patch")
        .trim_start_matches("blake3:")
        .to_string();
    let bytes: Vec<u8> = env
        .db()
        .query_row("SELECT data FROM blobs WHERE hash = ?1", [&patch], |r| {
            r.get(0)
        })
        .expect("patch blob");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("-echo training"), "{text}");
    assert!(text.contains("+print('training harder')"), "{text}");
    // The patch applies to the recorded commit.
    env.write("patch.diff", &bytes);
    env.git(&["stash", "-q"]);
    env.git(&["apply", "--check", "patch.diff"]);

    // Same code, same code hash; different code, different hash.
    let again = run_ok(&env, &["run", "--", "true"]);
    assert_ne!(
        again["code_hash"], run["code_hash"],
        "the stash changed the code"
    );
}

#[test]
fn equal_dirty_code_gives_equal_code_hashes() {
    let env = Env::new();
    env.init_repo();
    env.write("train.py", "changed\n");
    let a = run_ok(&env, &["run", "--", "true"]);
    let b = run_ok(&env, &["run", "--", "true"]);
    assert_eq!(a["code_hash"], b["code_hash"]);
    env.write("train.py", "changed again\n");
    let c = run_ok(&env, &["run", "--", "true"]);
    assert_ne!(a["code_hash"], c["code_hash"]);
}

#[test]
fn an_untracked_file_over_the_cap_is_hashed_not_stored() {
    let env = Env::new();
    env.init_repo();
    let big = vec![b'z'; (1 << 20) + 1];
    env.write("big.dat", &big);
    let out = env.cmd(["run", "--", "true"]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("big.dat"), "{}", stderr(&out));
    let run = env.show(None);
    let u = &run["git"]["untracked"][0];
    assert_eq!(u["stored"], false);
    assert_eq!(u["hash"], blake3_hex(&big));
}

#[test]
fn a_detached_head_has_no_branch() {
    let env = Env::new();
    env.init_repo();
    let head = env.git(&["rev-parse", "HEAD"]);
    env.git(&["checkout", "-q", "--detach"]);
    let run = run_ok(&env, &["run", "--", "true"]);
    assert_eq!(run["git"]["branch"], Value::Null);
    assert_eq!(run["git"]["detached"], true);
    assert_eq!(run["git"]["commit"], head);
}

#[test]
fn an_unborn_head_is_recorded_as_absent() {
    let env = Env::new();
    env.git(&["init", "-q"]);
    let run = run_ok(&env, &["run", "--", "true"]);
    assert_eq!(run["git"], Value::Null);
    assert!(
        run["git_absent"]
            .as_str()
            .expect("reason")
            .contains("unborn")
    );
}

#[test]
fn configs_are_kept_and_parsed_into_params() {
    let env = Env::new();
    let yaml = "optimizer:\n  lr: 0.01\n  name: adam\nlayers: [64, 32]\n";
    env.write("configs/base.yaml", yaml);
    env.write(
        "configs/extra.json",
        r#"{"epochs": 3, "optimizer": {"lr": 0.02}}"#,
    );
    let run = run_ok(
        &env,
        &[
            "run",
            "-c",
            "configs/base.yaml",
            "-c",
            "configs/extra.json",
            "-p",
            "seed=42",
            "-p",
            "optimizer.name=sgd",
            "--",
            "true",
        ],
    );
    assert_eq!(
        run["params"],
        json!({"optimizer.lr": 0.02, "optimizer.name": "sgd", "layers.0": 64, "layers.1": 32,
               "epochs": 3, "seed": 42})
    );
    assert_eq!(run["param_sources"]["optimizer.lr"], "configs/extra.json");
    assert_eq!(run["param_sources"]["seed"], "cli");
    assert_eq!(run["configs"][0]["path"], "configs/base.yaml");
    assert_eq!(run["configs"][0]["hash"], blake3_hex(yaml.as_bytes()));
}

/// A config of more than 10,000 values (a vocabulary, a file list) gives its first 10,000
/// as params, says so, and is kept whole; a secret beyond the cut, found by its sibling
/// before it, is in no file of the store; `-p` params are never cut.
#[test]
fn a_config_of_more_than_ten_thousand_values_keeps_ten_thousand_params() {
    let env = Env::new();
    let mut vocab = serde_json::Map::new();
    for i in 0..10_050 {
        vocab.insert(format!("tok{i:05}"), json!(i));
    }
    let secret = "sk-proj-a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6";
    let config = json!({
        "vocab": vocab,
        "zz": {"env": [{"name": "OPENAI_API_KEY", "value": secret}]},
    })
    .to_string();
    env.write("vocab.json", &config);
    let out = env.cmd(["run", "-c", "vocab.json", "-p", "seed=7", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let note = "config vocab.json holds 10052 values: the first 10000 (in key order) are recorded as params; the whole file is kept";
    assert!(stderr(&out).contains(note), "{}", stderr(&out));
    let run = env.show(None);
    let params = run["params"].as_object().expect("params");
    assert_eq!(params.len(), 10_001, "10,000 from the config and the -p");
    assert_eq!(params["vocab.tok00000"], 0);
    assert!(params.get("vocab.tok10049").is_none());
    assert_eq!(params["seed"], 7);
    assert!(
        run["notes"].to_string().contains("holds 10052 values"),
        "{}",
        run["notes"]
    );
    assert_eq!(run["configs"][0]["hash"], blake3_hex(config.as_bytes()));
    for (path, bytes) in env.store_files() {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "the secret is in {}",
            path.display()
        );
    }
}

/// A config of a million values (a vocabulary) is never held whole: its first 10,000 in key
/// order are params, as for any config past the cut, in bounded memory (1,500,000 values
/// took 660 MB); a secret far past the cut is still redacted from the kept copy.
#[test]
fn a_config_of_a_million_values_is_read_in_bounded_memory() {
    let env = Env::new();
    let secret = "sk-proj-z9Y8x7W6v5U4t3S2r1Q0p9O8n7M6l5K4";
    let ids: Vec<String> = (0..1_000_000).map(|i| i.to_string()).collect();
    let config = format!(
        "{{\"ids\": [{}], \"zz\": {{\"env\": [{{\"name\": \"OPENAI_API_KEY\", \"value\": \"{secret}\"}}]}}}}",
        ids.join(",")
    );
    env.write("ids.json", &config);
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_TIMINGS", "1")
        .args(["run", "-c", "ids.json", "--", "true"]);
    let out = output_within(cmd, std::time::Duration::from_secs(300));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let note = "config ids.json holds 1000002 values: the first 10000 (in key order) are recorded as params";
    assert!(stderr(&out).contains(note), "{}", stderr(&out));
    let peak_kib = peak_kib(&out);
    assert!(peak_kib < 250 * 1024, "{peak_kib} KiB");
    let run = env.show(None);
    let params = run["params"].as_object().expect("params");
    assert_eq!(params.len(), 10_000);
    assert_eq!(params["ids.0"], 0);
    assert_eq!(
        params["ids.10008"], 10008,
        "key order: ids.10008 sorts before ids.1001"
    );
    for (path, bytes) in env.store_files() {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "the secret is in {}",
            path.display()
        );
    }
}

#[test]
fn a_config_value_longer_than_four_kib_is_kept_in_the_file_not_as_a_param() {
    // A prompt given as a config parses as one YAML string: kept as its file, not as a
    // param (which the store would keep twice more, the value and its index).
    let env = Env::new();
    let prompt = "You are a careful assistant. Answer briefly.\n".repeat(200);
    env.write("prompt.txt", &prompt);
    let long = "x".repeat(5000);
    env.write("cfg.yaml", format!("lr: 0.01\nsystem: {long}\n"));
    let out = env.cmd([
        "run",
        "-c",
        "prompt.txt",
        "-c",
        "cfg.yaml",
        "-p",
        "note=short",
        "--",
        "sh",
        "-c",
        "cat prompt.txt cfg.yaml > /dev/null",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for config in ["prompt.txt", "cfg.yaml"] {
        let said = format!(
            "note: config {config} holds 1 value longer than 4 KiB, not recorded as params"
        );
        assert!(stderr(&out).contains(&said), "{}", stderr(&out));
        assert!(
            !stderr(&out).contains("warning: config"),
            "{}",
            stderr(&out)
        );
    }
    let run = env.show(None);
    assert_eq!(run["params"], json!({"lr": 0.01, "note": "short"}));
    assert!(
        run["notes"]
            .to_string()
            .contains("prompt.txt holds 1 value longer than 4 KiB"),
        "{}",
        run["notes"]
    );
    assert_eq!(run["configs"][0]["hash"], blake3_hex(prompt.as_bytes()));
    let largest: i64 = env
        .db()
        .query_row(
            "SELECT coalesce(max(length(value)), 0) FROM params",
            [],
            |r| r.get(0),
        )
        .expect("params");
    assert!(largest < 100, "no long value in params: {largest}");
    // A config whose name sounds secret: the note is kept as said, not read as a secret.
    env.write("password.yaml", format!("v: {long}\n"));
    let out = env.cmd([
        "run",
        "-q",
        "-c",
        "password.yaml",
        "--",
        "cat",
        "password.yaml",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let notes = env.show(None)["notes"].to_string();
    assert!(
        notes.contains("config password.yaml holds 1 value longer than 4 KiB"),
        "{notes}"
    );
    // Quiet: the note stays in the record, and nothing is said.
    let out = env.cmd(["run", "-q", "-c", "prompt.txt", "--", "cat", "prompt.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("longer than"), "{}", stderr(&out));
    assert!(
        env.show(None)["notes"]
            .to_string()
            .contains("longer than 4 KiB"),
        "the record keeps it"
    );
}

#[test]
fn a_config_that_fails_to_parse_is_still_kept() {
    let env = Env::new();
    let bad = "a: 1\nb: [1, 2\nc: 3\n";
    env.write("bad.yaml", bad);
    let out = env.cmd(["run", "-c", "bad.yaml", "--", "true"]);
    assert_eq!(code(&out), 0, "the job is not blocked");
    let err = stderr(&out);
    assert!(
        err.contains("warning: config bad.yaml: invalid YAML at line"),
        "{err}"
    );
    let run = env.show(None);
    assert_eq!(run["params"], json!({}));
    let hash = run["configs"][0]["hash"]
        .as_str()
        .expect("hash")
        .to_string();
    assert_eq!(hash, blake3_hex(bad.as_bytes()));
    let bytes: Vec<u8> = env
        .db()
        .query_row(
            "SELECT data FROM blobs WHERE hash = ?1",
            [hash.trim_start_matches("blake3:")],
            |r| r.get(0),
        )
        .expect("blob");
    assert_eq!(bytes, bad.as_bytes());
}

#[test]
fn a_bad_param_is_refused_before_launch() {
    let env = Env::new();
    let out = env.cmd(["run", "-p", "nokeyvalue", "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("--param \"nokeyvalue\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_an_nvidia_driver_the_gpu_list_is_empty() {
    // On a GPU machine, `gpu::gpus_match_nvidia_smi` (ignored) checks what is found instead.
    let driver = ["/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg"];
    if driver.iter().any(|p| std::path::Path::new(p).exists()) {
        eprintln!("an NVIDIA driver shows here: nothing to check");
        return;
    }
    let env = Env::new();
    let run = run_ok(&env, &["run", "--", "true"]);
    assert_eq!(run["system"]["gpus"], json!([]));
    assert!(
        run["system"]["gpu_note"]
            .as_str()
            .expect("note")
            .contains("NVIDIA")
    );
    let sys = &run["system"];
    assert!(sys["cpu_cores"].as_u64().expect("cores") >= 1);
    assert!(sys["memory_bytes"].as_u64().expect("memory") > 0);
    assert!(sys["hostname"].is_string());
    assert!(sys["kernel"].is_string());
}

/// The GPUs are read while the job runs (NVML takes 10-20 ms to start, which the job no
/// longer waits for): a running run says so, and the finished run, or one whose command
/// could not be started, holds what was found.
#[test]
fn the_gpus_are_read_while_the_job_runs_and_recorded_when_it_ends() {
    let env = Env::new();
    let show = format!(
        "{} show --json > running.json",
        env!("CARGO_BIN_EXE_lineage")
    );
    let run = run_ok(&env, &["run", "--", "sh", "-c", &show]);
    let running: Value =
        serde_json::from_slice(&std::fs::read(env.path("running.json")).expect("running.json"))
            .expect("json");
    assert_eq!(running["id"], run["id"]);
    assert_eq!(running["status"], "running");
    assert_eq!(
        running["system"]["gpu_note"],
        "read while the job runs, recorded when it ends"
    );
    // Without a driver (here, CI) a note names it; with one (a GPU machine), the GPUs.
    let read = |r: &Value| {
        r["system"]["gpu_note"]
            .as_str()
            .is_some_and(|n| n.contains("NVIDIA"))
            || r["system"]["gpus"]
                .as_array()
                .is_some_and(|g| !g.is_empty())
    };
    assert!(read(&run), "{run}");
    let out = env.cmd(["run", "--", "no-such-command-here"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    let failed = env.show(None);
    assert!(read(&failed), "{failed}");
}

#[test]
fn a_python_job_records_its_interpreter_and_packages() {
    let env = Env::new();
    // A virtual environment whose `python3` is a shell, so no real Python is needed.
    env.write("venv/pyvenv.cfg", "home = /usr/bin\nversion = 3.12.7\n");
    std::fs::create_dir_all(env.path("venv/lib/python3.12/site-packages/torch-2.5.1.dist-info"))
        .expect("mkdir");
    std::fs::create_dir_all(env.path("venv/lib/python3.12/site-packages/numpy-2.1.0.dist-info"))
        .expect("mkdir");
    std::fs::create_dir_all(env.path("venv/bin")).expect("mkdir");
    std::os::unix::fs::symlink("/bin/sh", env.path("venv/bin/python3")).expect("symlink");
    env.write("requirements.txt", "torch==2.5.1\n");
    let run = run_ok(&env, &["run", "--", "venv/bin/python3", "-c", "exit 0"]);
    let py = &run["software"]["python"];
    assert_eq!(py["version"], "3.12.7");
    assert_eq!(py["package_count"], 2);
    let blob = py["packages"]
        .as_str()
        .expect("blob")
        .trim_start_matches("blake3:")
        .to_string();
    let bytes: Vec<u8> = env
        .db()
        .query_row("SELECT data FROM blobs WHERE hash = ?1", [&blob], |r| {
            r.get(0)
        })
        .expect("blob");
    assert_eq!(bytes, b"numpy==2.1.0\ntorch==2.5.1\n");
    assert_eq!(
        run["software"]["lockfiles"],
        json!([{"path": "requirements.txt", "hash": blake3_hex(b"torch==2.5.1\n")}])
    );
}

#[test]
fn slurm_identifiers_and_lineage_owner_are_recorded() {
    let env = Env::new();
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "true"])
        .env("SLURM_JOB_ID", "4242")
        .env("SLURM_ARRAY_TASK_ID", "3")
        .env("SLURM_JOB_PARTITION", "gpu")
        .env("LINEAGE_OWNER", "vision-team");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0);
    let run = env.show(None);
    assert_eq!(run["scheduler"]["kind"], "slurm");
    assert_eq!(run["scheduler"]["ids"]["SLURM_JOB_ID"], "4242");
    assert_eq!(run["scheduler"]["ids"]["SLURM_ARRAY_TASK_ID"], "3");
    assert_eq!(run["owner"]["lineage_owner"], "vision-team");
    assert!(run["owner"]["user"].is_string());
}

#[test]
#[ignore = "needs root; .ci/run runs as root with --include-ignored"]
fn a_repository_owned_by_another_user_is_recorded_as_absent() {
    // libgit2 refuses repositories owned by someone else (git's safe.directory rule); making
    // that so needs root, which CI has.
    require_root("to chown the repository");
    let env = Env::new();
    env.init_repo();
    let nobody = nix::unistd::Uid::from_raw(65534);
    for entry in walkdir::WalkDir::new(&env.work)
        .into_iter()
        .filter_map(Result::ok)
    {
        nix::unistd::chown(entry.path(), Some(nobody), None).expect("chown");
    }
    let run = run_ok(&env, &["run", "--", "true"]);
    assert_eq!(run["git"], Value::Null);
    let reason = run["git_absent"].as_str().expect("reason");
    assert!(reason.contains("owned by another user"), "{reason}");
}

#[test]
fn inside_a_bare_repository_the_code_is_absent() {
    let env = Env::new();
    env.git(&["init", "-q", "--bare", "repo.git"]);
    let mut cmd = env.lineage();
    cmd.current_dir(env.path("repo.git"))
        .args(["run", "--", "true"]);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(run["git"], Value::Null);
    assert!(
        run["git_absent"].as_str().expect("reason").contains("bare"),
        "{}",
        run["git_absent"]
    );
}

#[test]
fn ci_identifiers_are_recorded() {
    let env = Env::new();
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "true"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_RUN_ID", "987654")
        .env("GITHUB_REPOSITORY", "ada/model");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0);
    let run = env.show(None);
    assert_eq!(run["scheduler"]["kind"], "github-actions");
    assert_eq!(run["scheduler"]["ids"]["GITHUB_RUN_ID"], "987654");
    assert_eq!(run["scheduler"]["ids"]["GITHUB_REPOSITORY"], "ada/model");
}

#[test]
fn odd_inputs_are_recorded_or_refused_clearly() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    // Non-UTF-8 file names inside an input directory: hashed by their raw bytes.
    std::fs::create_dir_all(env.path("data")).expect("mkdir");
    let odd = env
        .path("data")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.csv"));
    std::fs::write(&odd, "1\n").expect("write");
    // A binary config: kept as bytes, with a warning.
    let binary: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    env.write("weights.cfg", &binary);
    // A large environment value (Linux caps one string at 128 KiB).
    let big = "v".repeat(120 * 1024);
    let mut cmd = env.lineage();
    cmd.args(["run", "-i", "data", "-c", "weights.cfg", "--", "true"])
        .env("BIG_VALUE", &big);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("config weights.cfg: not UTF-8"),
        "{}",
        stderr(&out)
    );
    let run = env.show(None);
    assert_eq!(artifact(&run, "inputs", "data")["file_count"], 1);
    assert_eq!(run["configs"][0]["hash"], blake3_hex(&binary));
    assert_eq!(
        run["env"]["BIG_VALUE"].as_str().map(str::len),
        Some(big.len())
    );

    // An empty command is a usage error; without `--` the command is taken as is.
    assert_eq!(code(&env.cmd(["run", "--"])), 2);
    assert_eq!(code(&env.cmd(["run", "-q", "true"])), 0);
    // An empty program name is not found.
    assert_eq!(code(&env.cmd(["run", "--", ""])), 127);
}

#[test]
#[ignore = "needs root; .ci/run runs as root with --include-ignored"]
fn unreadable_inputs_are_refused_or_skipped_when_run_as_an_ordinary_user() {
    // Root reads everything: run lineage as `nobody` (setpriv, util-linux) to make
    // permissions bite.
    require_root("to switch to another user");
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let set_mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    env.write("data/a.txt", "ok\n");
    env.write("data/b.txt", "hidden\n");
    env.write("data/locked/c.txt", "hidden\n");
    env.write("top.txt", "hidden\n");
    set_mode(&env.path("data/b.txt"), 0o000);
    set_mode(&env.path("data/locked"), 0o000);
    set_mode(&env.path("top.txt"), 0o000);
    for dir in [
        env.work.parent().expect("root"),
        &env.work,
        &env.path("data"),
    ] {
        set_mode(dir, 0o755);
    }
    let store = env.work.parent().expect("root").join("nobody-store");
    std::fs::create_dir(&store).expect("mkdir");
    nix::unistd::chown(
        &store,
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .expect("chown");
    let as_nobody = |args: &[&str]| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_lineage"),
        ])
        .args(args)
        .current_dir(&env.work)
        .env("LINEAGE_STORE", &store)
        .env("HOME", &store);
        output_within(cmd, Duration::from_secs(30))
    };
    // A declared input that cannot be read: refused before launch, by name.
    let out = as_nobody(&["run", "-i", "top.txt", "--", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read input \"top.txt\": Permission denied"),
        "{}",
        stderr(&out)
    );
    // Unreadable entries inside an input directory: skipped with a warning each, and not
    // mistaken for changes during the run.
    let out = as_nobody(&["run", "-i", "data", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("skipped") && err.contains("b.txt") && err.contains("locked"),
        "{err}"
    );
    assert!(!err.contains("changed while the job ran"), "{err}");
    let out = as_nobody(&["show", "--json"]);
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(artifact(&run, "inputs", "data")["file_count"], 1);
}

#[test]
fn a_file_deep_in_an_input_directory_changed_during_the_run_is_flagged_even_with_its_mtime_put_back()
 {
    let env = Env::new();
    env.write("data/a/b/deep.csv", "1111\n");
    env.write("data/top.csv", "x\n");
    // Large enough (once recorded) to be watched with inotify rather than walked again.
    for i in 0..5_000 {
        env.write(&format!("data/bulk/{:02}/{i:04}.txt", i / 250), "b\n");
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = env.cmd(["run", "-i", "data", "--", "cat", "data/top.csv"]);
    assert!(!stderr(&out).contains("changed while"), "{}", stderr(&out));
    let sizes: i64 = env
        .db()
        .query_row("SELECT file_count FROM input_sizes", [], |r| r.get(0))
        .expect("the input's size is remembered");
    assert_eq!(sizes, 5_002);
    // Read-only job, watched: nothing flagged.
    let out = env.cmd(["run", "-i", "data", "--", "cat", "data/a/b/deep.csv"]);
    assert!(!stderr(&out).contains("changed"), "{}", stderr(&out));
    let unchanged = artifact(&env.show(None), "inputs", "data")["hash"].clone();
    assert!(unchanged.is_string());
    // Same size, mtime restored: only the ctime (and inotify) can tell.
    let job = "m=$(stat -c %y data/a/b/deep.csv); printf '2222\\n' > data/a/b/deep.csv; touch -d \"$m\" data/a/b/deep.csv";
    let out = env.cmd(["run", "-i", "data", "--", "sh", "-c", job]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Walked after launch (large and recorded before): the change is seen either before
    // the walk (no hash) or after it (the hash from launch).
    let err = stderr(&out);
    assert!(
        err.contains("input data changed while the job ran")
            || err.contains("input data changed after the job started, before lineage had read it"),
        "{err}"
    );
    let run = env.show(None);
    let input = artifact(&run, "inputs", "data");
    assert_eq!(input["changed_during_run"], true);
    if input["hash"].is_string() {
        assert_eq!(input["hash"], unchanged);
    }
}

/// A directory never recorded before is watched from before its walk (its size is not known
/// yet), so the check after the job reads the watch instead of walking it a third time: a
/// change that keeps every size and mtime must still be flagged.
#[test]
fn a_directory_recorded_for_the_first_time_and_changed_during_the_run_is_flagged() {
    let env = Env::new();
    env.write("data/a/b/deep.csv", "1111\n");
    env.write("data/top.csv", "x\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let job = "m=$(stat -c %y data/a/b/deep.csv); sleep 0.3; printf '2222\\n' > data/a/b/deep.csv; touch -d \"$m\" data/a/b/deep.csv";
    let out = env.cmd(["run", "-i", "data", "--", "sh", "-c", job]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    let input = artifact(&run, "inputs", "data");
    assert_eq!(input["changed_during_run"], true, "{}", stderr(&out));
    // Read before the change (the job waits 0.3 s first), or not hashed at all.
    assert!(input["hash"].is_null() || stderr(&out).contains("changed while the job ran"));
    // Recorded now as small: the next run walks it again after the job instead.
    let size: i64 = env
        .db()
        .query_row("SELECT file_count FROM input_sizes", [], |r| r.get(0))
        .expect("the input's size is remembered");
    assert_eq!(size, 2);
}

#[test]
fn a_job_writing_beside_its_inputs_does_not_flag_them() {
    let env = Env::new();
    env.write("data/a.csv", "1\n");
    env.write("one.csv", "1\n");
    let out = env.cmd([
        "run",
        "-i",
        "data",
        "-i",
        "one.csv",
        "-o",
        "out",
        "--",
        "sh",
        "-c",
        "mkdir -p out && cat data/a.csv one.csv > out/all.csv && touch two.csv",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("changed while"), "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(
        artifact(&run, "inputs", "data")["changed_during_run"],
        false
    );
    assert_eq!(
        artifact(&run, "inputs", "one.csv")["changed_during_run"],
        false
    );
}

#[test]
fn a_large_repository_gives_the_same_snapshot_through_the_git_cli() {
    // With an index over 1 MiB, `git status` answers instead of libgit2: same record.
    let env = Env::new();
    env.init_repo();
    for i in 0..12_000 {
        env.write(
            &format!("src/m{:02}/a_module_with_a_long_name_{i:05}.py", i / 500),
            format!("X = {i}\n"),
        );
    }
    env.write(".gitignore", "ignored/\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "many"]);
    let index = std::fs::metadata(env.path(".git/index"))
        .expect("index")
        .len();
    assert!(index > 1 << 20, "the index ({index} bytes) is large enough");
    let clean = run_ok(&env, &["run", "--", "true"]);
    assert_eq!(clean["git"]["dirty"], false);
    assert_eq!(clean["git"]["untracked"], json!([]));
    env.git(&[
        "mv",
        "src/m00/a_module_with_a_long_name_00000.py",
        "src/m00/renamed.py",
    ]);
    env.write("train.py", "print('training harder')\n");
    env.write("notes/new.py", "x = 1\n");
    env.write("ignored/cache.bin", "not recorded");
    let run = run_ok(&env, &["run", "--", "true"]);
    let git = &run["git"];
    assert_eq!(git["dirty"], true);
    let untracked = git["untracked"].as_array().expect("untracked");
    assert_eq!(untracked.len(), 1, "{untracked:?}");
    assert_eq!(untracked[0]["path"], "notes/new.py");
    let changed = git["changed_files"].as_array().expect("changed");
    assert!(changed.contains(&json!("train.py")), "{changed:?}");
    assert!(
        changed.contains(&json!("src/m00/renamed.py")),
        "{changed:?}"
    );
}

/// A store kept inside the repository (`LINEAGE_STORE=.lineage`, not in .gitignore) is
/// lineage's, not the job's code: its files (the database, its WAL, the signing key) are not
/// recorded as untracked files, so the code hash of an unchanged tree stays the same from one
/// run to the next.
#[test]
fn a_store_inside_the_repository_is_not_code() {
    let env = Env::local();
    env.init_repo();
    env.write("helper.sh", "echo helper\n");
    let record = || {
        let mut cmd = env.lineage();
        cmd.args(["run", "-q", "--", "true"])
            .env("LINEAGE_STORE", ".lineage");
        let out = output_within(cmd, Duration::from_secs(60));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mut cmd = env.lineage();
        cmd.args(["show", "--json"])
            .env("LINEAGE_STORE", ".lineage");
        let out = output_within(cmd, Duration::from_secs(60));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).expect("json")
    };
    let (first, second) = (record(), record());
    assert!(env.path(".lineage/lineage.db").exists());
    for rec in [&first, &second] {
        assert_eq!(untracked_paths(rec), ["helper.sh"], "{rec}");
    }
    assert_eq!(first["code_hash"], second["code_hash"]);
}

/// A store left in the repository from a time it was LINEAGE_STORE is records, not code,
/// when another store is in use; and a link to a directory (`data -> /mnt/datasets`) is how
/// data is reached, not code, in stages that do not declare anything under it.
#[test]
fn an_idle_store_and_a_link_to_a_data_directory_are_not_code() {
    let env = Env::local();
    env.init_repo();
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "--", "true"])
        .env("LINEAGE_STORE", ".lineage");
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path(".lineage/lineage.db").exists());
    let datasets = env.root().join("datasets");
    std::fs::create_dir_all(&datasets).expect("datasets");
    std::os::unix::fs::symlink(&datasets, env.path("data")).expect("data link");
    env.write("helper.sh", "echo helper\n");
    // The store in use is the test's own, outside the repository.
    let id = env.record(&["--", "true"]);
    let rec = env.show(Some(&id));
    assert_eq!(untracked_paths(&rec), ["helper.sh"], "{rec}");
}

/// The paths of a record's untracked files (`show --json`).
fn untracked_paths(rec: &Value) -> Vec<&str> {
    rec["git"]["untracked"]
        .as_array()
        .expect("untracked")
        .iter()
        .filter_map(|u| u["path"].as_str())
        .collect()
}

/// A large file is hashed in bounded memory, mapped or read: where it is mapped (hosts where
/// BLAKE3 runs on AVX-512), each window's pages are let go once hashed, or a 256 MiB input
/// or output made lineage's own resident memory 256 MiB more (a batch system's accounting
/// charges it to the job's step).
#[test]
fn a_large_file_is_hashed_in_bounded_memory() {
    let env = Env::new();
    let big: Vec<u8> = (0..256u32 << 20).map(|i| (i % 251) as u8).collect();
    env.write("big.bin", &big);
    drop(big);
    for args in [
        &["run", "-i", "big.bin", "--", "true"][..],
        &["run", "--hash-before-launch", "-i", "big.bin", "--", "true"],
        &["run", "-o", "out.bin", "--", "cp", "big.bin", "out.bin"],
    ] {
        let mut cmd = env.lineage();
        cmd.env("LINEAGE_TIMINGS", "1").args(args);
        let out = output_within(cmd, std::time::Duration::from_secs(120));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let peak_kib = peak_kib(&out);
        assert!(peak_kib < 128 * 1024, "{args:?}: {peak_kib} KiB");
    }
}
