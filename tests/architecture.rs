//! The layers ARCHITECTURE.md describes, enforced: which of the crate's top-level modules each
//! module may use (`crate::...`), and that SQL and the database crates stay in `store/`.
//! A new dependency between modules is a decision: make it here and in ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module -> the modules it may use. Lower layers first; a module uses only modules above
/// it in this list (the list is in layer order, which the test checks too).
const ALLOWED: &[(&str, &[&str])] = &[
    // The vocabulary and the leaves: no other module of ours.
    ("model", &[]),
    ("error", &[]),
    ("host", &[]),
    ("timing", &[]),
    ("observe", &[]),
    ("child", &["observe"]),
    ("watch", &["host", "observe"]),
    ("redact", &["error", "model"]),
    ("sign", &[]),
    ("api", &[]),
    // Engines: they compute and store; they never print and know no command-line type.
    ("hash", &["model", "watch"]),
    ("compare", &["model", "redact"]),
    ("export", &["model"]),
    ("output", &["model", "compare"]),
    ("capture", &["model", "hash", "host"]),
    (
        "store",
        &["model", "error", "hash", "host", "redact", "sign", "timing"],
    ),
    ("progress", &["hash"]),
    // Where things are, and what the settings files say.
    ("location", &["store", "error"]),
    ("settings", &["location", "sign"]),
    // The one way out.
    ("ui", &["error", "model", "store"]),
    // The command line and the commands.
    ("complete", &["location", "output", "settings", "store"]),
    ("cli", &["complete", "location", "ui"]),
    (
        "commands",
        &[
            "api", "capture", "child", "cli", "compare", "error", "export", "hash", "location",
            "model", "observe", "output", "progress", "redact", "settings", "sign", "store",
            "timing", "ui", "watch",
        ],
    ),
];

/// The crate's top-level module a source file belongs to.
fn module_of(rel: &Path) -> String {
    let first = rel.components().next().expect("a path");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// The file's text without its unit tests (which may use anything).
fn code(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

fn sources() -> Vec<(String, String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&src).expect("under src").to_path_buf();
                let text = std::fs::read_to_string(&path).expect("read");
                out.push((
                    module_of(&rel),
                    rel.display().to_string(),
                    code(&text).to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    // The list is in layer order: every module allowed comes earlier.
    for (i, (m, deps)) in ALLOWED.iter().enumerate() {
        for d in *deps {
            let at = ALLOWED.iter().position(|(n, _)| n == d);
            assert!(
                at.is_some_and(|at| at < i),
                "{m} may use {d}, which is not listed before it"
            );
        }
    }
    let uses = regex::Regex::new(r"crate::(\w+)").expect("regex");
    let mut problems = Vec::new();
    for (module, file, text) in sources() {
        if module == "lib" || module == "main" {
            continue; // the root: it dispatches to everything
        }
        let Some(ok) = allowed.get(module.as_str()) else {
            problems.push(format!("{file}: module {module} is not in ALLOWED"));
            continue;
        };
        for m in uses.captures_iter(&text) {
            let used = &m[1];
            if used != module && !ok.contains(used) {
                problems.push(format!("{file}: {module} uses crate::{used}"));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "layers crossed:\n{}",
        problems.join("\n")
    );
}

#[test]
fn sql_and_the_database_crates_stay_in_the_store() {
    let sql = regex::Regex::new(r#""\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|ATTACH)\b"#)
        .expect("regex");
    let mut problems = Vec::new();
    for (module, file, text) in sources() {
        if module == "store" {
            continue;
        }
        if sql.is_match(&text) {
            problems.push(format!("{file}: SQL outside store/"));
        }
        // error.rs reads SQLite's result codes to tell a damaged store.
        if (text.contains("rusqlite::") && module != "error") || text.contains("postgres::") {
            problems.push(format!("{file}: a database crate outside store/"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn only_ui_and_the_timings_write_to_the_terminal() {
    let print = regex::Regex::new(r"\b(e?print(ln)?!|std::io::stdout\(\)|std::io::stderr\(\))")
        .expect("regex");
    let mut problems = Vec::new();
    for (module, file, text) in sources() {
        // `ui` is the way out; `timing` is a diagnostic (LINEAGE_TIMINGS); `output` asks
        // whether stdout is a terminal for nothing but colour decisions made in `ui`.
        if matches!(module.as_str(), "ui" | "timing") {
            continue;
        }
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            if print.is_match(code) && !code.contains("is_terminal") {
                problems.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "printing outside ui:\n{}",
        problems.join("\n")
    );
}
