//! `lineage compare`: runs side by side, a column a param or metric that differs; sorted,
//! as a table, CSV, Markdown or JSON.

use serde_json::Value;

use crate::list::record_with_metric;
use crate::util::*;

fn ok(env: &Env, args: &[&str]) -> String {
    let out = env.cmd(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Three runs: lr and acc differ, seed does not.
fn three(env: &Env) -> [String; 3] {
    let mut ids = Vec::new();
    for (lr, acc) in [("0.1", 0.8), ("0.2", 0.95), ("0.3", 0.9)] {
        let lr = format!("lr={lr}");
        let id = record_with_metric(env, &["-p", &lr, "-p", "seed=7"], "acc", acc);
        ids.push(id);
    }
    [ids[0].clone(), ids[1].clone(), ids[2].clone()]
}

#[test]
fn compare_shows_a_row_a_run_and_a_column_a_value_that_differs() {
    let env = Env::local();
    let [a, b, c] = three(&env);
    let short = |id: &str| {
        env.show(Some(id))["short_id"]
            .as_str()
            .expect("short")
            .to_string()
    };
    // Runs by short id and by prefix, in the order given.
    let table = ok(&env, &["compare", &short(&c), &a[..13]]);
    let lines: Vec<&str> = table.lines().collect();
    let header = lines[1];
    assert!(
        header.contains("params.lr") && header.contains("metrics.acc"),
        "{table}"
    );
    assert!(
        !header.contains("params.seed"),
        "the same in every run: {table}"
    );
    assert!(
        lines[3].contains(&short(&c)) && lines[3].contains("0.3"),
        "{table}"
    );
    assert!(
        lines[5].contains(&short(&a)) && lines[5].contains("0.8"),
        "{table}"
    );
    assert!(!table.contains(&short(&b)), "{table}");
    let all = ok(&env, &["compare", &a, &b, "--all"]);
    assert!(all.contains("params.seed"), "{all}");
    // --columns: those, whether they differ or not.
    let cols = ok(&env, &["compare", &a, &b, "--columns", "params.seed"]);
    assert!(
        cols.contains("params.seed") && !cols.contains("params.lr"),
        "{cols}"
    );
    let out = env.cmd(["compare", "ffffffffffff"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

#[test]
fn compare_where_sorts_by_a_metric_and_prints_json() {
    let env = Env::local();
    let [a, b, c] = three(&env);
    let json: Value = serde_json::from_str(&ok(
        &env,
        &[
            "compare",
            "--where",
            "metrics.acc>=0.85",
            "--sort",
            "metrics.acc",
            "--desc",
            "--json",
        ],
    ))
    .expect("json");
    let ids: Vec<&str> = json["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [b.as_str(), c.as_str()]);
    assert_eq!(
        json["columns"],
        serde_json::json!(["params.lr", "metrics.acc"])
    );
    assert_eq!(json["runs"][0]["params"]["lr"], 0.2);
    assert_eq!(json["runs"][0]["metrics"]["acc"], 0.95);
    // Ascending; every run without a filter.
    let csv = ok(&env, &["compare", "--sort", "lr", "--format", "csv"]);
    let firsts: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).expect("lr"))
        .collect();
    assert_eq!(firsts, ["0.1", "0.2", "0.3"], "{csv}");
    let _ = a;
}

#[test]
fn csv_and_markdown_are_safe_for_spreadsheets_and_tables_and_the_table_for_terminals() {
    let env = Env::local();
    let a = env.record(&[
        "-p",
        "note==HYPERLINK(\"http://x\")",
        "-p",
        "tag=a|b",
        "--",
        "true",
    ]);
    let b = env.record(&[
        "-p",
        "note=plain, with a comma",
        "-p",
        "tag=\u{1b}[31mred",
        "--",
        "true",
    ]);
    let csv = ok(&env, &["compare", &a, &b, "--format", "csv"]);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert!(
        lines[1].contains(",\"'=HYPERLINK(\"\"http://x\"\")\",")
            || lines[1].contains(",'=HYPERLINK"),
        "{csv}"
    );
    assert!(lines[2].contains("\"plain, with a comma\""), "{csv}");
    let md = ok(&env, &["compare", &a, &b, "--format", "markdown"]);
    assert!(md.contains("a\\|b"), "{md}");
    assert!(!md.contains('\u{1b}'), "{md}");
    let table = ok(&env, &["compare", &a, &b]);
    assert!(
        !table.contains('\u{1b}'),
        "escaped for the terminal: {table:?}"
    );
    assert!(table.contains("[31mred"), "{table}");
}

#[test]
fn sorted_n_keeps_the_best_n_and_shows_the_sort_key() {
    let env = Env::local();
    let [_, best, _] = three(&env);
    let out = ok(
        &env,
        &[
            "compare",
            "--where",
            "seed=7",
            "--sort",
            "metrics.acc",
            "--desc",
            "-n",
            "1",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["runs"][0]["id"], best.as_str(), "{v}");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(1));
    assert!(
        v["columns"].to_string().contains("metrics.acc"),
        "the sort key is shown even when one run leaves nothing to differ: {v}"
    );
}

#[test]
fn a_sort_key_no_run_has_is_said() {
    let env = Env::local();
    three(&env);
    let out = env.cmd(["compare", "--where", "seed=7", "--sort", "metrics.nosuch"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no run here has metrics.nosuch"),
        "{}",
        stderr(&out)
    );
}
