//! Issue 16, items 15, 17 and 18: what `run` says before launch (an untracked file over the
//! size cap once per content, a `-p` that a config also sets), and `show RUN` as a picture.

use crate::util::*;

/// `lineage run ARGS...` (not quiet unless ARGS say so), which must succeed: its stderr.
fn run_saying(env: &Env, args: &[&str]) -> String {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    let out = env.cmd(&full);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stderr(&out)
}

/// Item 15: an untracked file over the size cap is said once per content, with how to stop
/// it, never under `-q`; the record keeps the note every time.
#[test]
fn an_untracked_file_over_the_cap_is_said_once_per_content_and_never_under_quiet() {
    let env = Env::new();
    env.init_repo();
    let big = |fill: u8| env.write("big.bin", vec![fill; 2 << 20]);
    let over = "untracked file big.bin (2097152 bytes) is over the size cap";
    big(b'a');
    let first = run_saying(&env, &["--", "true"]);
    assert_eq!(first.matches(over).count(), 1, "{first}");
    assert!(first.contains("add big.bin to .gitignore"), "{first}");
    let again = run_saying(&env, &["--", "true"]);
    assert!(!again.contains(over), "said on every run: {again}");
    let notes = env.show(None)["notes"].to_string();
    assert!(notes.contains(over), "the record keeps it: {notes}");

    // Other bytes: said again, unless -q.
    big(b'b');
    let quiet = run_saying(&env, &["-q", "--", "true"]);
    assert!(!quiet.contains(over), "said under -q: {quiet}");
    assert!(env.show(None)["notes"].to_string().contains(over));
    big(b'c');
    let other = run_saying(&env, &["--", "true"]);
    assert_eq!(other.matches(over).count(), 1, "{other}");
}

/// Item 17: `show RUN --format dot|mermaid|html` draws the run: its inputs, configs and
/// outputs, and the run that made each input, one level up (no further, nothing beside).
#[test]
fn show_run_draws_the_run_with_its_files_and_the_runs_that_made_its_inputs() {
    let env = Env::new();
    env.init_repo();
    env.write("raw.txt", "raw\n");
    env.write("cfg.yaml", "lr: 0.1\n");
    let fetch = env.record(&["-o", "raw2.txt", "--", "sh", "-c", "echo far > raw2.txt"]);
    let prepare = env.record(&[
        "-i",
        "raw2.txt",
        "-o",
        "mid.txt",
        "--",
        "sh",
        "-c",
        "cat raw2.txt raw2.txt > mid.txt",
    ]);
    let train = env.record(&[
        "-i",
        "mid.txt",
        "-c",
        "cfg.yaml",
        "-o",
        "model.bin",
        "-o",
        "log.txt",
        "--",
        "sh",
        "-c",
        "cat mid.txt cfg.yaml > model.bin; echo ok > log.txt",
    ]);
    let unrelated = env.record(&["-i", "raw.txt", "--", "true"]);
    let short = |id: &str| {
        env.show(Some(id))["short_id"]
            .as_str()
            .expect("short")
            .to_string()
    };
    let drawn = |format: &str| {
        let out = env.cmd(["show", &train, "--format", format]);
        assert_eq!(code(&out), 0, "{format}: {}", stderr(&out));
        stdout(&out)
    };
    for format in ["dot", "mermaid"] {
        let text = drawn(format);
        for name in ["mid.txt", "cfg.yaml", "model.bin", "log.txt", "raw2.txt"] {
            assert!(text.contains(name), "{format}: no {name} in\n{text}");
        }
        assert!(text.contains(&format!("run {}", short(&train))), "{text}");
        assert!(text.contains(&format!("run {}", short(&prepare))), "{text}");
        // Two runs only: not the one that made raw2.txt, nor one beside that read raw.txt.
        assert_eq!(
            text.matches("\"run ").count(),
            2,
            "{format}: one level only\n{text}"
        );
        assert!(
            !text.contains("echo far") && !text.contains("raw.txt"),
            "{text}"
        );
    }
    let page = drawn("html");
    assert!(page.starts_with("<!DOCTYPE html>"));
    for id in [&train, &prepare] {
        assert!(page.contains(id.as_str()), "{id} not in the page");
    }
    assert!(!page.contains(fetch.as_str()) && !page.contains(unrelated.as_str()));

    // A run that recorded no file: nothing to draw, and what works instead, in one line.
    let bare = env.record(&["--", "true"]);
    let out = env.cmd(["show", &bare, "--format", "dot"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("recorded no file to draw")
            && err.contains(&format!("lineage show {}", short(&bare))),
        "{err}"
    );
}

/// Item 18: a `-p` that a declared config also sets changes the record, not the job: said
/// once before launch; the record keeps the `-p` value (source `cli`), as before.
#[test]
fn a_param_overriding_a_config_value_warns_that_the_job_still_reads_the_file() {
    let env = Env::new();
    env.init_repo();
    let secret = "sk-live-abcdefghijklmnopqrstuvwxyz0123";
    env.write(
        "configs/params.yaml",
        format!("train:\n  n_est: 50\n  api_key: {secret}\n"),
    );
    let warning = "-p train.n_est=999 overrides configs/params.yaml's 50 in the record only; \
                   the job reads the config file (pass it to the job too, or edit the file)";
    let err = run_saying(
        &env,
        &[
            "-q",
            "-c",
            "configs/params.yaml",
            "-p",
            "train.n_est=999",
            "-p",
            "train.api_key=sk-live-other-value-0123456789abcdef",
            "-p",
            "seed=3",
            "--",
            "true",
        ],
    );
    assert_eq!(err.matches(warning).count(), 1, "{err}");
    assert!(
        err.contains("-p train.api_key=[REDACTED] overrides"),
        "{err}"
    );
    assert!(
        !err.contains(secret) && !err.contains("other-value"),
        "{err}"
    );
    assert!(!err.contains("seed"), "no config sets seed: {err}");
    let run = env.show(None);
    assert_eq!(run["params"]["train.n_est"], 999, "{run}");
    assert_eq!(run["param_sources"]["train.n_est"], "cli", "{run}");

    // The same value, or a command that passes it to the job too: nothing to say.
    for command in [
        &["-p", "train.n_est=50", "--", "true"][..],
        &["-p", "train.n_est=999", "--", "echo", "train.n_est=999"][..],
    ] {
        let mut args = vec!["-c", "configs/params.yaml"];
        args.extend_from_slice(command);
        let err = run_saying(&env, &args);
        assert!(!err.contains("overrides"), "{command:?}: {err}");
    }
}

/// An untracked file over the size cap is hashed once: later runs take its hash from the
/// stat cache while its stats are unchanged (a poisoned cache row proves it was not read
/// again), and hash it anew once it changes.
#[test]
fn an_untracked_file_over_the_cap_is_not_read_again_while_unchanged() {
    let env = Env::local();
    env.init_repo();
    env.write("big.bin", vec![b'a'; 2 << 20]);
    // Past the racy window, so that its hash is cached.
    crate::cache::age();
    let untracked = |env: &Env| -> String {
        let shown = env.show(None);
        let list = shown["git"]["untracked"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let big = list
            .iter()
            .find(|u| u["path"] == "big.bin")
            .unwrap_or_else(|| panic!("big.bin not among the untracked files: {shown}"));
        big["hash"].as_str().expect("hash").to_string()
    };
    run_saying(&env, &["-q", "--", "true"]);
    let real = untracked(&env);
    assert_eq!(
        real,
        format!("blake3:{}", blake3::hash(&vec![b'a'; 2 << 20]).to_hex())
    );
    let bogus = crate::cache::poison(&env, "big.bin");
    run_saying(&env, &["-q", "--", "true"]);
    assert_eq!(untracked(&env), bogus, "read again");
    env.write("big.bin", vec![b'b'; (2 << 20) + 1]);
    run_saying(&env, &["-q", "--", "true"]);
    assert_eq!(
        untracked(&env),
        format!(
            "blake3:{}",
            blake3::hash(&vec![b'b'; (2 << 20) + 1]).to_hex()
        )
    );
}

/// Past 1,000 untracked files, the rest are recorded as one hash (how many, their bytes,
/// a hash over their paths and content hashes), neither listed nor kept, and said in one
/// note naming one of them, once for those files; past the first 20 files over the size cap, those are counted
/// in one warning too. A repository with tens of thousands of files missing from .gitignore
/// had each read, redacted, kept and listed in every run's record. The rest is still code:
/// in the code hash (a bundle carrying it is accepted, its hash checked), a change to it is
/// said by a rerun, and a worktree rerun says it cannot restore it.
#[test]
fn past_a_thousand_untracked_files_the_rest_are_recorded_as_one_hash() {
    let env = Env::new();
    env.init_repo();
    // Sorted first: 22 files over the size cap, then 1,005 small ones; 1,000 are listed.
    for i in 0..22u8 {
        env.write(&format!("big/b{i:02}"), vec![b'a' + i; (1 << 20) + 1]);
    }
    for i in 0..1005 {
        env.write(&format!("junk/f{i:04}"), format!("{i}\n"));
    }
    let job = ["-o", "out.txt", "--", "sh", "-c", "echo ok > out.txt"];
    let first = run_saying(&env, &job);
    let over = "warning: 2 more untracked files over the size cap, such as big/b20, are recorded \
                by their hashes, not their contents";
    assert_eq!(first.matches(over).count(), 1, "{first}");
    assert_eq!(first.matches("is over the size cap").count(), 20, "{first}");
    let rest = "note: 27 untracked files past the first 1000, such as junk/f0978, are \
                recorded as one hash, neither listed nor kept";
    assert_eq!(first.matches(rest).count(), 1, "{first}");
    assert!(first.contains("said once for these files"), "{first}");
    let shown = env.show(None);
    let id = shown["id"].as_str().expect("id").to_string();
    let list = shown["git"]["untracked"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(list.len(), 1000, "the first 1,000 are listed");
    assert_eq!(list.iter().filter(|u| u["stored"] == true).count(), 978);
    assert_eq!(list.last().expect("listed")["path"], "junk/f0977");
    // The rest's hash, computed here from the files' bytes.
    let mut h = blake3::Hasher::new_derive_key("lineage 2026-12 untracked files v1");
    let mut bytes = 0;
    for i in 978..1005 {
        let path = format!("junk/f{i:04}");
        let content = format!("{i}\n");
        bytes += content.len();
        h.update(&(path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(blake3::hash(content.as_bytes()).as_bytes());
    }
    let rest_json = &shown["git"]["untracked_rest"];
    assert_eq!(rest_json["files"], 27, "{rest_json}");
    assert_eq!(rest_json["bytes"], bytes, "{rest_json}");
    assert_eq!(
        rest_json["hash"].as_str().expect("hash"),
        format!("blake3:{}", h.finalize().to_hex())
    );
    // The same files, the same code; said once.
    let again = run_saying(&env, &["--", "true"]);
    assert!(!again.contains("untracked files past the first"), "{again}");
    assert_eq!(env.show(None)["code_hash"], shown["code_hash"]);
    let notes = env.show(None)["notes"].to_string();
    assert!(
        notes.contains("27 untracked files past the first 1000"),
        "the record keeps it: {notes}"
    );

    // A bundle carrying it is accepted: its code hash is checked against the rest.
    let bundle = env.work.parent().expect("root").join("runs.lineage");
    let out = env.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut import = env.lineage();
    import
        .arg("--store")
        .arg(env.work.parent().expect("root").join("other-store"))
        .args(["bundle", "import", &bundle.display().to_string()]);
    let out = import.output().expect("import");
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A worktree rerun: the first ten over the size cap named, the others and the rest
    // counted.
    let out = env.cmd(["rerun", &id, "--worktree"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let said = stderr(&out);
    let named = "was over the size cap when recorded: not restored";
    assert_eq!(said.matches(named).count(), 10, "{said}");
    assert!(
        said.contains("12 more untracked files were over the size cap when recorded: not restored"),
        "{said}"
    );
    assert!(said.contains("27 untracked files past the first 1000 were recorded as one hash, not kept: not restored"), "{said}");

    // A file of the rest changes: said by the rerun, which goes on.
    env.write("junk/f1004", "changed\n");
    let out = env.cmd(["rerun", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "code: except the 27 untracked files past the first 1000, recorded as one hash, which differs now"
        ),
        "{}",
        stderr(&out)
    );
    // And by diff, between the first run and one after the change.
    run_saying(&env, &["-q", "--", "true"]);
    let last = env.show(None)["id"].as_str().expect("id").to_string();
    let out = env.cmd(["diff", &id, &last]);
    let said = stdout(&out);
    let line = said
        .lines()
        .find(|l| {
            l.contains(
                "~ untracked files past those listed, as one hash: 27 files, 113 bytes, blake3:",
            )
        })
        .unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains(" -> 27 files, 116 bytes, blake3:"), "{line}");
}
