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
    let mut pages = vec![(None, "docs/man/lineage.1".to_string())];
    for sub in [
        "run",
        "show",
        "diff",
        "rerun",
        "doctor",
        "list",
        "completions",
        "man",
    ] {
        pages.push((Some(sub), format!("docs/man/lineage-{sub}.1")));
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
    // Every subcommand has its page.
    let help = printed(&env, &["--help"]);
    for (sub, _) in pages.iter().skip(1) {
        assert!(help.contains(sub.expect("sub")), "{sub:?} not in --help");
    }
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/lineage.bash");
    // Bash calls the function with the command, the word being completed and the one before.
    let probe = format!(
        "source {}; COMP_WORDS=(lineage re); COMP_CWORD=1; _lineage lineage re lineage; \
         echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(lineage run --in); COMP_CWORD=2; _lineage lineage --in run; \
         echo \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("rerun"), "{text}");
    assert_eq!(lines.next(), Some("--input"), "{text}");
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
