//! Untrusted text is inert in every output (issue 15): file names, argv, params, cwd and
//! notes holding escape sequences, newlines and bidi overrides reach `show`, `list`, the
//! tree, `diff`, the rerun plan, dot, Mermaid and the HTML page of real runs, and change
//! nothing on a terminal; a run id edited in the store cannot add a dot attribute.

use std::path::PathBuf;
use std::time::Duration;

use crate::util::*;

const OUT: &str = "out\x1b[2J\x1b]0;owned\x07\nforged line\u{202e}.txt";
const IN: &str = "in\r\x1b[31mred\u{9b}2J.csv";
const MISSING: &str = "never\nforged missing\x7f.bin";

/// Whether text bound for a terminal is inert: no control character but the layout's
/// newlines, no DEL, no C1, no bidi override, and no line a name made.
fn assert_inert(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    for c in text.chars() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!bad, "{what}: {c:?} in {text}");
    }
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("forged")),
        "{what}: a line forged by a name in {text}"
    );
}

/// Graphviz, where installed, reads `dot` as one graph and draws no link: the README's
/// recipe (`| dot -Tsvg`) is safe.
fn graphviz_draws_one_graph_without_links(dot: &str) {
    use std::io::Write as _;
    let Ok(mut child) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        return; // no Graphviz here: the statements were checked by their grammar
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dot.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("dot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8_lossy(&out.stdout);
    assert_eq!(svg.matches("<svg").count(), 1, "{svg}");
    for link in ["<a ", "href", "javascript:"] {
        assert!(!svg.contains(link), "{link} in {svg}");
    }
}

/// A run in a directory whose name holds escapes, reading and writing hostile names, with a
/// hostile param, argument and a missing output (which becomes a note naming it).
fn record_hostile(env: &Env) -> (String, PathBuf) {
    let dir = env.path("d\x1b]0;cwd\x07\nforged cwd");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(IN), "a,b\n").expect("input");
    let mut cmd = env.lineage();
    cmd.current_dir(&dir).args([
        "run",
        "-q",
        "-i",
        IN,
        "-o",
        OUT,
        "-o",
        MISSING,
        "-p",
        "key\x1b[5m=value\nforged param",
        "--",
        "sh",
        "-c",
        "cat \"$1\" > \"$2\"",
        "sh\x1b]0;argv\x07",
        IN,
        OUT,
    ]);
    let out = output_within(cmd, Duration::from_secs(30));
    assert!(code(&out) == 0 || code(&out) == 1, "{}", stderr(&out));
    let id = env.show(None)["id"].as_str().expect("id").to_string();
    (id, dir)
}

#[test]
fn hostile_names_are_inert_in_show_list_tree_diff_and_the_plan() {
    let env = Env::new();
    env.init_repo();
    let (a, dir) = record_hostile(&env);
    // A second run to diff against, with the same names.
    let (b, _) = record_hostile(&env);
    let out_path = dir.join(OUT).display().to_string();
    let in_cwd = |args: &[&str]| {
        let mut cmd = env.lineage();
        cmd.current_dir(&dir).args(args);
        output_within(cmd, Duration::from_secs(30))
    };
    let shown = in_cwd(&["show", &a]);
    assert_eq!(code(&shown), 0, "{}", stderr(&shown));
    assert!(stdout(&shown).contains(r"\x1b[2J\x1b]0;owned\x07\nforged line\u{202e}.txt"));
    for (what, args) in [
        ("show", vec!["show", &a]),
        ("list", vec!["list"]),
        ("tree", vec!["show", &out_path]),
        ("descendants", vec!["show", "--descendants", IN]),
        ("diff", vec!["diff", &a, &b]),
        ("plan", vec!["rerun", &a, "--dry-run"]),
    ] {
        let out = in_cwd(&args);
        assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
        assert_inert(what, &out.stdout);
        assert_inert(what, &out.stderr);
    }
    for format in ["dot", "mermaid"] {
        let out = in_cwd(&["show", &out_path, "--format", format]);
        assert_eq!(code(&out), 0, "{format}: {}", stderr(&out));
        assert_inert(format, &out.stdout);
        if format == "dot" {
            graphviz_draws_one_graph_without_links(&stdout(&out));
        }
    }
    let page = in_cwd(&["show", &out_path, "--format", "html"]);
    assert_eq!(code(&page), 0, "{}", stderr(&page));
    let page = stdout(&page);
    let start = page
        .find(r#"<script type="application/json" id="lineage-data">"#)
        .expect("the data block");
    let data = &page[start..];
    let data = &data[data.find('>').expect("tag") + 1..data.find("</script>").expect("end")];
    assert!(!data.contains(['<', '>', '&']), "{data}");
    serde_json::from_str::<serde_json::Value>(data).expect("the block is JSON");
    let outside = page.replace(data, "");
    assert!(
        !outside.contains("forged") && !outside.contains("owned"),
        "{outside}"
    );
}

#[test]
fn a_run_id_edited_in_the_store_adds_no_attribute_to_dot() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "x\n");
    let id = env.record(&["-i", "in.txt", "-o", "o.txt", "--", "cp", "in.txt", "o.txt"]);
    let evil = "0\" URL=\"javascript:alert(1)\" x=\"\n}\ndigraph owned {";
    {
        let db = env.db();
        db.execute_batch("PRAGMA foreign_keys = OFF")
            .expect("fk off");
        for sql in [
            "UPDATE runs SET id = ?1 WHERE id = ?2",
            "UPDATE edges SET run_id = ?1 WHERE run_id = ?2",
            "UPDATE params SET run_id = ?1 WHERE run_id = ?2",
        ] {
            db.execute(sql, rusqlite::params![evil, id]).expect("edit");
        }
    }
    let out = env.cmd(["show", "o.txt", "--format", "dot"]);
    if code(&out) != 0 {
        // Refusing such a store is inert too.
        return;
    }
    let dot = stdout(&out);
    let statement = regex::Regex::new(
        r#"^  "(?:a_[0-9a-f]{64}(?:_r[0-9]+)?|r[0-9]+)"(?: -> "(?:a_[0-9a-f]{64}(?:_r[0-9]+)?|r[0-9]+)")? \[(?:[a-z]+=(?:"(?:[^"\\]|\\.)*"|[a-z0-9]+)(?:, )?)+\];$"#,
    )
    .expect("regex");
    let lines: Vec<&str> = dot.lines().collect();
    assert_eq!(lines[0], "digraph lineage {");
    assert_eq!(lines.iter().filter(|l| l.contains("digraph")).count(), 1);
    assert_eq!(lines[lines.len() - 1], "}");
    for l in &lines[3..lines.len() - 1] {
        assert!(statement.is_match(l), "{l:?} in {dot}");
    }
    graphviz_draws_one_graph_without_links(&dot);
    let out = env.cmd(["show", "o.txt", "--format", "mermaid"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("javascript:alert(1)\""),
        "{}",
        stdout(&out)
    );
}
