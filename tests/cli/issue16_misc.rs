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
