//! Text rendering of `lineage diff`: only what differs, section by section.

use std::fmt::Write;

use serde_json::Value;

use crate::compare::{ArtifactDiff, MapDiff, RunDiff};
use crate::model::text::escape;

fn value(v: &Value) -> String {
    match v {
        Value::String(s) => escape(s).into_owned(),
        Value::Null => "(none)".into(),
        v => escape(&v.to_string()).into_owned(),
    }
}

fn section(out: &mut String, title: &str, color: bool) {
    if color {
        let _ = writeln!(out, "\n\x1b[1m{title}\x1b[0m");
    } else {
        let _ = writeln!(out, "\n{title}");
    }
}

fn map(out: &mut String, title: &str, d: &MapDiff, color: bool) {
    if d.is_empty() {
        return;
    }
    section(out, title, color);
    for (k, v) in &d.removed {
        let _ = writeln!(out, "  - {} = {}", escape(k), value(v));
    }
    for (k, v) in &d.added {
        let _ = writeln!(out, "  + {} = {}", escape(k), value(v));
    }
    for (k, c) in &d.changed {
        let _ = writeln!(out, "  ~ {}: {} -> {}", escape(k), value(&c.a), value(&c.b));
    }
}

fn artifacts(out: &mut String, title: &str, list: &[ArtifactDiff], color: bool) {
    if list.is_empty() {
        return;
    }
    section(out, title, color);
    let short = |h: &Option<crate::model::Hash>| {
        h.as_ref()
            .map_or("(none)".to_string(), crate::output::short_hash)
    };
    for a in list {
        let _ = writeln!(
            out,
            "  ~ {}: {} -> {}",
            escape(&a.path),
            short(&a.a),
            short(&a.b)
        );
        if let Some(f) = &a.files {
            for p in &f.removed {
                let _ = writeln!(out, "      - {}", escape(p));
            }
            for p in &f.added {
                let _ = writeln!(out, "      + {}", escape(p));
            }
            for p in &f.changed {
                let _ = writeln!(out, "      ~ {}", escape(p));
            }
        }
    }
}

pub fn text(d: &RunDiff, a: &str, b: &str, color: bool) -> String {
    let mut out = format!(
        "comparing run {} (a) with run {} (b)\n",
        escape(a),
        escape(b)
    );
    if let Some(s) = &d.status {
        section(&mut out, "status", color);
        let _ = writeln!(out, "  {} -> {}", escape(&s.a), escape(&s.b));
    }
    if let Some(c) = &d.code {
        section(&mut out, "code", color);
        if let Some(commit) = &c.commit {
            let show = |c: &Option<String>| {
                c.as_deref().map_or("(none)".to_string(), |c| {
                    escape(crate::model::prefix(c, 12)).into_owned()
                })
            };
            let _ = writeln!(out, "  commit {} -> {}", show(&commit.a), show(&commit.b));
        }
        if c.patch_differs {
            let _ = writeln!(
                out,
                "  uncommitted changes differ in: {}",
                c.patched_files
                    .iter()
                    .map(|f| escape(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for p in c.untracked.removed.keys() {
            let _ = writeln!(out, "  - untracked {}", escape(p));
        }
        for p in c.untracked.added.keys() {
            let _ = writeln!(out, "  + untracked {}", escape(p));
        }
        for p in c.untracked.changed.keys() {
            let _ = writeln!(out, "  ~ untracked {}", escape(p));
        }
    }
    map(&mut out, "params", &d.params, color);
    artifacts(&mut out, "configs", &d.configs, color);
    artifacts(&mut out, "inputs", &d.inputs, color);
    map(&mut out, "env", &d.env, color);
    if !d.system.is_empty() {
        section(&mut out, "system", color);
        for (k, c) in &d.system {
            let _ = writeln!(out, "  ~ {}: {} -> {}", escape(k), value(&c.a), value(&c.b));
        }
    }
    map(&mut out, "python packages", &d.packages, color);
    artifacts(&mut out, "outputs", &d.outputs, color);
    if !d.resources.is_empty() {
        section(&mut out, "resources", color);
        for (k, c) in &d.resources {
            let _ = writeln!(out, "  ~ {}: {} -> {}", escape(k), value(&c.a), value(&c.b));
        }
    }
    if d.is_same_recipe() {
        let _ = writeln!(
            out,
            "\nsame code, params, configs, inputs, env, system and packages"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{Change, FileChanges};
    use crate::model::Hash;

    #[test]
    fn only_what_differs_is_printed_section_by_section() {
        let mut d = RunDiff::default();
        d.params.changed.insert(
            "lr".into(),
            Change {
                a: serde_json::json!(0.1),
                b: serde_json::json!(0.2),
            },
        );
        d.inputs.push(ArtifactDiff {
            path: "data".into(),
            a: Some(Hash::of(b"1")),
            b: None,
            files: Some(FileChanges {
                added: vec!["c.csv".into()],
                removed: vec![],
                changed: vec!["b.csv".into()],
            }),
        });
        let t = text(&d, "run-a", "run-b", false);
        assert!(
            t.starts_with("comparing run run-a (a) with run run-b (b)\n"),
            "{t}"
        );
        assert!(t.contains("\nparams\n  ~ lr: 0.1 -> 0.2\n"), "{t}");
        assert!(
            t.contains("  ~ data: ") && t.contains(" -> (none)\n"),
            "{t}"
        );
        assert!(t.contains("      + c.csv\n      ~ b.csv\n"), "{t}");
        for absent in ["\ncode\n", "\nenv\n", "\noutputs\n", "same code"] {
            assert!(!t.contains(absent), "{absent:?} in {t}");
        }
        let same = text(&RunDiff::default(), "a", "b", true);
        assert!(same.contains("same code, params, configs, inputs, env, system and packages"));
    }

    proptest::proptest! {
        #![proptest_config(crate::output::hostile::config(200))]

        /// A diff of arbitrary keys, values, paths and ids is inert.
        #[test]
        fn a_diff_of_arbitrary_text_is_inert(
            t in proptest::collection::vec(crate::output::hostile::text(), 8..9),
        ) {
            let mut d = RunDiff::default();
            d.params.added.insert(t[0].clone(), serde_json::json!(t[1]));
            d.env.changed.insert(
                t[2].clone(),
                Change { a: serde_json::json!(t[3]), b: serde_json::json!(null) },
            );
            d.inputs.push(ArtifactDiff {
                path: t[4].clone(),
                a: None,
                b: Some(Hash::of(b"b")),
                files: Some(FileChanges {
                    added: vec![t[5].clone()],
                    removed: vec![],
                    changed: vec![],
                }),
            });
            let mut untracked = MapDiff::default();
            untracked.removed.insert(t[7].clone(), serde_json::json!(null));
            d.code = Some(crate::compare::CodeDiff {
                commit: None,
                patch_differs: true,
                patched_files: vec![t[6].clone()],
                untracked,
            });
            let out = text(&d, &t[0], &t[7], false);
            crate::output::hostile::is_inert(&out)
                .map_err(proptest::test_runner::TestCaseError::fail)?;
        }
    }
}
