//! The output contract, pinned by snapshots (insta) of the real binary's output on the shared
//! pipeline: `show --json`, `list --json`, `diff --json`, `rerun --json`, the ancestry graph
//! in every format, and the exports (PROV-JSON, in-toto, OpenLineage). JSON is an API
//! (docs/json.md): a change to any byte here is a change to the contract, to make on purpose
//! (`cargo insta review`, or INSTA_UPDATE=always), never by accident.
//!
//! The runs record a clean environment (a fixed PATH, nothing of the machine's) into a local
//! store, and commits carry a fixed date, so what differs between two machines or two runs
//! is only what `Normalizer` replaces: the temporary directory, run ids, times, durations
//! and the machine's own description (host, kernel, CPU, memory, container, resources).

use std::collections::BTreeMap;

use regex::Regex;

use crate::fixture::{self, Pipeline};
use crate::util::*;

/// Rewrites what legitimately differs between machines and runs into stable placeholders.
struct Normalizer {
    root: String,
    /// Full run id -> its placeholder number (oldest run first).
    ids: BTreeMap<String, usize>,
    host: String,
    user: String,
}

impl Normalizer {
    fn new(env: &Env) -> Normalizer {
        let out = env.cmd(["list", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
        let ids = runs
            .iter()
            .rev()
            .enumerate()
            .map(|(i, r)| (r["id"].as_str().expect("id").to_string(), i + 1))
            .collect();
        let latest = env.show(None);
        Normalizer {
            root: env.root().display().to_string(),
            ids,
            host: latest["system"]["hostname"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            user: latest["owner"]["user"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }

    fn apply(&self, text: &str) -> String {
        let mut s = text.replace(&self.root, "[root]");
        // Run ids, whole or as their short id (their last 8 to 12 hex digits), and run ids in
        // the other shapes the formats give them (dot and mermaid node names, mermaid without
        // dashes).
        let token = Regex::new(r"[0-9a-f]{9,}|[0-9a-f]{8}(?:[-_][0-9a-f]{1,12})*").expect("regex");
        s = token
            .replace_all(&s, |c: &regex::Captures| {
                let t = c[0].replace('_', "-");
                for (id, n) in &self.ids {
                    if *id == t || id.replace('-', "") == t {
                        return format!("[run-{n}]");
                    }
                    if id.ends_with(&t) && (8..=12).contains(&t.len()) {
                        return format!("[run-{n}:short]");
                    }
                }
                c[0].to_string()
            })
            .into_owned();
        let rules: &[(&str, &str)] = &[
            // RFC 3339 times, and times and ages as tables show them.
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "[time]",
            ),
            (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?", "[time]"),
            (r"\b\d+(\.\d+)?(ms|s|m\d+s) ago\b", "[ago]"),
            // The machine's own description and the job's measured resources, in the JSON
            // of `show` (snake_case) and of the exports (camelCase).
            (
                r#""(hostname|os|os_version|osVersion|kernel|arch|cpu_model|cpuModel|cpu_cores|cpuCores|cpu_physical_cores|memory_bytes|memoryBytes|gpu_note|user|uid|wall_seconds|wallSeconds|user_cpu_seconds|userCpuSeconds|system_cpu_seconds|systemCpuSeconds|max_rss_bytes|maxRssBytes|environment|calls)":(\s*)("(?:[^"\\]|\\.)*"|-?[0-9.eE+-]+|null|true|false)"#,
                r#""$1":$2"[machine]""#,
            ),
            (
                r#""(lineage:os|lineage:arch)":(\s*)"(?:[^"\\]|\\.)*""#,
                r#""$1":$2"[machine]""#,
            ),
            (
                r#""container":(\s*)(null|\{[^{}]*\})"#,
                r#""container":$1"[machine]""#,
            ),
            // `diff` lists only the resources that differ, and which do varies.
            (
                r#""resources":(\s*)\{(?:[^{}]|\{[^{}]*\})*\}"#,
                r#""resources":$1"[machine]""#,
            ),
            (r"\nresources\n(  ~ [^\n]*\n)*", "\nresources: [machine]\n"),
        ];
        for (pattern, with) in rules {
            s = Regex::new(pattern)
                .expect("regex")
                .replace_all(&s, *with)
                .into_owned();
        }
        // The host and the user as the exports name them (agents, owners, labels).
        let (h, u) = (&self.host, &self.user);
        for (from, to) in [
            (format!("{u}@{h}"), "[user]@[host]".to_string()),
            (format!("host:{h}\""), "host:[host]\"".to_string()),
            (
                format!("\"host\":\"{h}\""),
                "\"host\":\"[host]\"".to_string(),
            ),
            (
                format!("\"prov:label\": \"{h}\""),
                "\"prov:label\": \"[host]\"".to_string(),
            ),
            (format!("user:{u}\""), "user:[user]\"".to_string()),
            (
                format!("\"prov:label\": \"{u}\""),
                "\"prov:label\": \"[user]\"".to_string(),
            ),
        ] {
            if !h.is_empty() && !u.is_empty() {
                s = s.replace(&from, &to);
            }
        }
        s
    }
}

impl Normalizer {
    /// `apply`, then what a human table adds: padding and rule lengths (which follow the
    /// widest value), durations, and the rows that describe the machine.
    fn table(&self, text: &str) -> String {
        let s = self.apply(text);
        let rules: &[(&str, &str)] = &[
            (
                r"(?m)^ (host|gpus|container|resources|owner|observed) .*\n(^ {2,}\S.*\n)?",
                " $1 [machine]\n",
            ),
            (r"\b\d+(\.\d+)?(ms|s)\b", "[duration]"),
            (r"─+", "─"),
            (r"═+", "═"),
            (r" {2,}", "  "),
            (r"(?m) +$", ""),
        ];
        rules.iter().fold(s, |s, (pattern, with)| {
            Regex::new(pattern)
                .expect("regex")
                .replace_all(&s, *with)
                .into_owned()
        })
    }
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = env.cmd(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The shared pipeline, then what the contract also covers: a rerun of a deterministic
/// stage (its verdict returned), a second training run with other code, config, params and
/// secret (for `diff`), and a failed run whose declared output is missing.
fn recorded() -> (Pipeline, String, String, String) {
    let p = Pipeline::record(Env::deterministic());
    let env = &p.env;
    let verdict = ok(env, &["rerun", "-q", &p.evaluate, "--json"]);
    env.write("train.py", "echo training harder\n");
    env.write("cfg.yaml", "lr: 0.2\nepochs: 2\n");
    let train2 = fixture::train(env, "another-secret-value-000", "seed=4", &[]);
    let failed = {
        let out = env.cmd(["run", "-q", "-o", "never.txt", "--", "sh", "-c", "exit 3"]);
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        env.show(None)["id"].as_str().expect("id").to_string()
    };
    (p, verdict, train2, failed)
}

#[test]
fn the_json_contract_and_the_export_formats_are_pinned() {
    let (p, verdict, train2, failed) = recorded();
    let env = &p.env;
    let n = Normalizer::new(env);
    let snap = |name: &str, text: String| {
        insta::assert_snapshot!(name, n.apply(&text));
    };
    let table = |name: &str, text: String| {
        insta::assert_snapshot!(name, n.table(&text));
    };
    table("show_run_table", ok(env, &["show", &p.train]));
    table("list_table", ok(env, &["list"]));
    snap("rerun_json", verdict);
    snap("list_json", ok(env, &["list", "--json"]));
    snap("show_run_json", ok(env, &["show", &p.train, "--json"]));
    snap(
        "show_failed_run_json",
        ok(env, &["show", &failed, "--json"]),
    );
    snap("diff_json", ok(env, &["diff", &p.train, &train2, "--json"]));
    // Resources are shown only where they differ in show's units: whether two short runs'
    // times round alike is the machine's, so that section is left out of the pin.
    let diff_text = ok(env, &["diff", &p.train, &train2]);
    let diff_text = match diff_text.find("\nresources") {
        Some(at) => {
            let end = diff_text[at + 1..]
                .find("\n\n")
                .map_or(diff_text.len(), |e| at + 1 + e);
            format!("{}{}", &diff_text[..at], &diff_text[end..])
        }
        None => diff_text,
    };
    snap("diff_text", diff_text);
    snap(
        "show_ancestry_json",
        ok(env, &["show", "report.txt", "--json"]),
    );
    snap("show_ancestry_tree", ok(env, &["show", "report.txt"]));
    snap(
        "show_ancestry_dot",
        ok(env, &["show", "report.txt", "--format", "dot"]),
    );
    snap(
        "show_ancestry_mermaid",
        ok(env, &["show", "report.txt", "--format", "mermaid"]),
    );
    snap(
        "show_descendants_json",
        ok(env, &["show", "raw/data.csv", "--descendants", "--json"]),
    );
    snap(
        "show_descendants_tree",
        ok(env, &["show", "raw/data.csv", "--descendants"]),
    );
    snap(
        "export_prov_json",
        ok(env, &["export", "report.txt", "--format", "prov-json"]),
    );
    snap(
        "export_in_toto",
        ok(env, &["export", "report.txt", "--format", "in-toto"]),
    );
    snap(
        "export_openlineage",
        ok(env, &["export", "report.txt", "--format", "openlineage"]),
    );
    // The plan of a dry run, upstream steps first (metrics.json is missing: evaluate makes
    // it again; the code changed since: a blocker the plan names).
    std::fs::remove_file(env.path("metrics.json")).expect("rm");
    snap(
        "rerun_upstream_dry_run_json",
        ok(
            env,
            &["rerun", &p.report, "--upstream", "--dry-run", "--json"],
        ),
    );
}

/// The verdict for a directory output that differs names its files: added, removed, changed.
#[test]
fn a_directory_verdict_is_pinned() {
    let env = Env::deterministic();
    env.init_repo();
    // Read by the job, not declared, outside the repository: what makes the rerun differ
    // (recorded unobserved, so that the rerun does not refuse the changed input).
    let counter = env.root().join("counter");
    std::fs::write(&counter, "1\n").expect("counter");
    let script = format!(
        "rm -rf eval && mkdir eval && echo same > eval/same.txt && cp {c} eval/metrics.json \
         && if [ \"$(cat {c})\" = 1 ]; then echo x > eval/old.txt; else echo y > eval/new.txt; fi",
        c = counter.display()
    );
    let id = env.record(&["--no-observe", "-o", "eval", "--", "sh", "-c", &script]);
    std::fs::write(&counter, "2\n").expect("counter");
    let out = env.cmd(["rerun", "-q", &id, "--json"]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    let n = Normalizer::new(&env);
    insta::assert_snapshot!("rerun_directory_json", n.apply(&stdout(&out)));
}

/// Errors are part of the contract too: one line naming the thing, a hint where there is an
/// obvious fix, and the documented exit code (docs/exit-codes.md).
#[test]
fn errors_and_their_exit_codes_are_pinned() {
    let env = Env::deterministic();
    env.init_repo();
    env.write("in.txt", "x\n");
    env.record(&[
        "-i", "in.txt", "-o", "out.txt", "--", "cp", "in.txt", "out.txt",
    ]);
    env.write("loose.txt", "never recorded\n");
    // A store whose database file is not a database at all.
    let junk = env.root().join("junk-store");
    std::fs::create_dir(&junk).expect("mkdir");
    std::fs::write(junk.join("lineage.db"), "not a database ".repeat(500)).expect("write");
    let junk = junk.display().to_string();
    let cases: &[&[&str]] = &[
        &["show", "ffffffff"],
        &["show", "no/such/path"],
        &["show", "loose.txt"],
        &["show", "blake3:1234"],
        &["show", "--depth", "2"],
        &["diff", "ffffffff", "out.txt"],
        &["rerun", "ffffffff"],
        &["run", "-i", "missing.csv", "--", "true"],
        &["run", "-c", "missing.yaml", "--", "true"],
        &["run", "-p", "novalue", "--", "true"],
        &["run", "--", "no-such-program-here"],
        &["run", "--", "./in.txt"],
        &["run", "--sample-interval", "0", "--", "true"],
        &[
            "export",
            "--format",
            "in-toto",
            "--post",
            "http://127.0.0.1:9",
        ],
        &["bundle", "import", "no-such.bundle"],
        &["push"],
        &["--store", "postgres://ada@:notaport/x", "list"],
        &["--store", "postgres://ada@:notaport/x", "run", "--", "true"],
        &[
            "export",
            "--format",
            "openlineage",
            "--post",
            "http://127.0.0.1:9",
        ],
        &["man", "nosuchcommand"],
        &["--store", &junk, "list"],
        &["--store", &junk, "run", "--", "true"],
    ];
    let n = Normalizer::new(&env);
    let mut text = String::new();
    for args in cases {
        let out = env.cmd(*args);
        text += &format!(
            "$ lineage {}\nexit {}\n{}\n",
            args.join(" "),
            code(&out),
            stderr(&out)
        );
    }
    // Built without the team store, what needs it says so (a snapshot of its own).
    let name = if cfg!(feature = "team-store") {
        "errors"
    } else {
        "errors_without_team_store"
    };
    insta::assert_snapshot!(name, n.apply(&text));
}
