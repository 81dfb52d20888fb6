//! The committed completions and man pages are what the binary prints: regenerate them with
//! `scripts/regenerate-completions-and-man.sh` when the command line changes.

use std::path::Path;
use std::process::Command;

use crate::util::*;

fn committed(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn printed(env: &Env, args: &[&str]) -> String {
    let out = env.cmd(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn committed_completions_and_man_pages_match_the_command_line() {
    let env = Env::new();
    let mut stale = Vec::new();
    for (shell, file) in [
        ("bash", "completions/lineage.bash"),
        ("zsh", "completions/_lineage"),
        ("fish", "completions/lineage.fish"),
        ("elvish", "completions/lineage.elv"),
        ("powershell", "completions/_lineage.ps1"),
    ] {
        if printed(&env, &["completions", shell]) != committed(file) {
            stale.push(file.to_string());
        }
    }
    // Every subcommand `lineage --help` lists has its page.
    let help = printed(&env, &["--help"]);
    let subs: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A wrapped description continues on a line indented deeper.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(str::to_string)
        .collect();
    assert!(
        subs.len() >= 9 && subs.iter().any(|s| s == "export"),
        "{subs:?}"
    );
    let mut pages = vec![(None, "docs/man/lineage.1".to_string())];
    for sub in &subs {
        pages.push((Some(sub.as_str()), format!("docs/man/lineage-{sub}.1")));
    }
    for (sub, file) in &pages {
        let mut args = vec!["man"];
        args.extend(sub);
        if printed(&env, &args) != committed(file) {
            stale.push(file.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date with the command line: {stale:?}; run scripts/regenerate-completions-and-man.sh"
    );
}

#[test]
fn bash_completes_subcommands_flags_and_run_ids_from_the_store() {
    let env = Env::new();
    env.init_repo();
    let old = env.record(&["--", "true"]);
    let new = env.record(&["--", "sh", "-c", "echo hi"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/lineage.bash");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_lineage"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    // Bash calls the function with the command, the word being completed and the one before;
    // the function calls `lineage` back (found on PATH) to answer.
    let complete_with = |team: bool, words: &[&str]| {
        let cword = words.len() - 1;
        let probe = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={cword}; _clap_complete_lineage lineage '{}' '{}'; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words[cword],
            words[cword - 1],
        );
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut bash = Command::new("bash");
        bash.args(["-c", &probe])
            .current_dir(&env.work)
            .env("PATH", path)
            .env("LINEAGE_STORE", &env.store)
            .env("HOME", &env.home)
            .env("XDG_CONFIG_HOME", env.home.join(".config"));
        if team {
            // A team store nobody listens for: completion reads this machine's replica (the
            // team store it is already bound to, when the tests record into PostgreSQL).
            let url = std::fs::read_to_string(env.store.join("team-store"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "postgres://ada@127.0.0.1:1/lineage".into());
            bash.env("LINEAGE_STORE", url)
                .env("LINEAGE_REPLICA", &env.store);
        }
        let out = bash.output().expect("bash");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let complete = |words: &[&str]| complete_with(false, words);
    assert_eq!(complete(&["lineage", "re"]), ["rerun"]);
    assert!(complete(&["lineage", "run", "--in"]).contains(&"--input".to_string()));
    // Run ids, newest first, from the store.
    let ids: Vec<String> = complete(&["lineage", "rerun", ""])
        .into_iter()
        .filter(|c| !c.starts_with('-'))
        .collect();
    assert_eq!(ids, [new.clone(), old.clone()]);
    assert_eq!(
        complete(&["lineage", "rerun", &old[..13]]).as_slice(),
        std::slice::from_ref(&old)
    );
    // show takes a path or a run id.
    let show = complete(&["lineage", "show", ""]);
    assert!(
        show.contains(&"train.py".to_string()) && show.contains(&new),
        "{show:?}"
    );
    // With a team store, from this machine's replica of it.
    if cfg!(feature = "team-store") {
        let ids: Vec<String> = complete_with(true, &["lineage", "rerun", ""])
            .into_iter()
            .filter(|c| !c.starts_with('-'))
            .collect();
        assert_eq!(ids, [new.clone(), old.clone()]);
    }
}

#[test]
fn a_man_page_for_an_unknown_subcommand_is_a_one_line_error() {
    let env = Env::new();
    let out = env.cmd(["man", "nope"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out).trim(),
        "lineage: error: no subcommand \"nope\": see `lineage --help`"
    );
}
