//! A reader that stops early (`lineage list | head -1`, `lineage doctor | true`) closes the
//! pipe lineage writes to: every command that prints then ends quietly, with the exit code
//! it would have had (0 for every command here; tests/cli/records.rs checks others) and no
//! panic, as docs/exit-codes.md promises.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::fixture::Pipeline;
use crate::util::*;

/// Run `lineage ARGS` with its stdout a pipe nobody reads (closed before lineage writes);
/// (exit code, stderr).
fn into_closed_pipe(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = env.lineage();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    drop(child.stdout.take());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read;
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status.code(), err);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "lineage {args:?} hung writing to a closed pipe"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_command_that_prints_ends_quietly_when_its_reader_goes_away() {
    let p = Pipeline::record(Env::local());
    let env = &p.env;
    let (train, report) = (p.train.as_str(), p.report.as_str());
    let commands: &[&[&str]] = &[
        &["show"],
        &["show", train, "--json"],
        &["show", "report.txt"],
        &["show", "report.txt", "--json"],
        &["show", "report.txt", "--format", "dot"],
        &["show", "report.txt", "--format", "mermaid"],
        &["show", "report.txt", "--format", "html"],
        &["show", "raw/data.csv", "--descendants"],
        &["list"],
        &["list", "--json"],
        &["log"],
        &["diff", train, report],
        &["diff", train, report, "--json"],
        &["export", "report.txt", "--format", "prov-json"],
        &["export", "report.txt", "--format", "in-toto"],
        &["export", "report.txt", "--format", "openlineage"],
        &["bundle", "export"],
        &["rerun", "--dry-run", &p.evaluate],
        &["rerun", "-q", "--json", &p.evaluate],
        &["doctor"],
        &["doctor", "--secrets", "--", "train", "--password", "x"],
        &["completions", "bash"],
        &["man"],
        &["man", "run"],
        &["--help"],
        &["--version"],
    ];
    for args in commands {
        let (code, err) = into_closed_pipe(env, args);
        assert!(
            !err.contains("panicked"),
            "lineage {args:?} panicked: {err}"
        );
        assert_eq!(code, Some(0), "lineage {args:?}: {err}");
    }
}
