//! Text rendering of `lineage diff`: only what differs, section by section (resources in the
//! units `show` uses); and of `diff --ancestry`: the levels compared, then what explains the
//! difference.

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value;

use crate::compare::{
    AncestryDiff, ArtifactDiff, Change, CodeDiff, CommandDiff, Finding, Level, MapDiff, RunDiff,
    TokenChange,
};
use crate::model::text::{escape, terminal_command_line};

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

/// `~ eval.acc: 0.91 -> 0.93 (+0.02, +2.2%)`: each changed metric with its sign and
/// relative change.
fn metrics(out: &mut String, d: &crate::compare::MetricsDiff, color: bool) {
    if d.is_empty() {
        return;
    }
    section(out, "metrics", color);
    for (k, v) in &d.removed {
        let _ = writeln!(out, "  - {} = {}", escape(k), super::table::metric_text(*v));
    }
    for (k, v) in &d.added {
        let _ = writeln!(out, "  + {} = {}", escape(k), super::table::metric_text(*v));
    }
    for (k, c) in &d.changed {
        let _ = writeln!(
            out,
            "  ~ {}: {} -> {} ({})",
            escape(k),
            super::table::metric_text(c.a),
            super::table::metric_text(c.b),
            metric_change(c)
        );
    }
}

/// `+0.02, +2.2%`; the relative change left out when the first value is 0.
pub fn metric_change(c: &crate::compare::MetricChange) -> String {
    // Rounded for reading (the JSON keeps the exact values): 6 significant digits.
    let delta = format!("{:+}", round6(c.delta));
    match c.relative {
        Some(r) => format!("{delta}, {:+.1}%", r * 100.0),
        None => delta,
    }
}

fn round6(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 6 - 1 - x.abs().log10().floor() as i32;
    if !(0..=300).contains(&digits) {
        return x;
    }
    let m = 10f64.powi(digits);
    (x * m).round() / m
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

/// One argument as a shell would read it back: quoted where needed, inert.
fn arg(a: &crate::compare::Arg) -> String {
    terminal_command_line(std::slice::from_ref(&a.0))
}

/// Where a token is: after the token before it, or the program itself.
fn after(argv: &[crate::compare::Arg], index: usize) -> String {
    match index.checked_sub(1).and_then(|i| argv.get(i)) {
        Some(prev) => format!("after {}", arg(prev)),
        None => "the program".into(),
    }
}

/// The token changes of a command line, one line each: `~ 0.01 -> 0.02  (after --lr)`.
fn token_lines(c: &CommandDiff) -> Vec<String> {
    c.tokens
        .iter()
        .map(|t| match t {
            TokenChange::Changed { b_index, a, b, .. } => {
                format!("~ {} -> {}  ({})", arg(a), arg(b), after(&c.b, *b_index))
            }
            TokenChange::Added { b_index, b } => {
                format!("+ {}  ({})", arg(b), after(&c.b, *b_index))
            }
            TokenChange::Removed { a_index, a } => {
                format!("- {}  ({})", arg(a), after(&c.a, *a_index))
            }
        })
        .collect()
}

fn command(out: &mut String, c: &CommandDiff, indent: &str) {
    let whole = |argv: &[crate::compare::Arg]| {
        terminal_command_line(&argv.iter().map(|a| a.0.clone()).collect::<Vec<_>>())
    };
    let _ = writeln!(out, "{indent}a: {}", whole(&c.a));
    let _ = writeln!(out, "{indent}b: {}", whole(&c.b));
    for line in token_lines(c) {
        let _ = writeln!(out, "{indent}{line}");
    }
}

fn code(out: &mut String, c: &CodeDiff, indent: &str) {
    for line in code_lines(c) {
        let _ = writeln!(out, "{indent}{line}");
    }
}

fn commit(c: &Option<String>) -> String {
    c.as_deref().map_or("(none)".to_string(), |c| {
        escape(crate::model::prefix(c, 12)).into_owned()
    })
}

/// Paths, escaped, separated by commas.
fn list(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| escape(p))
        .collect::<Vec<_>>()
        .join(", ")
}

fn code_lines(c: &CodeDiff) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(x) = &c.commit {
        lines.push(format!("commit {} -> {}", commit(&x.a), commit(&x.b)));
        match c.files.as_deref() {
            Some([]) => lines.push("no tracked file differs".into()),
            Some(files) => lines.push(format!("tracked files that differ: {}", list(files))),
            None => {}
        }
    }
    if c.patch_differs && c.patched_files.is_empty() {
        lines.push("uncommitted changes differ".into());
    } else if c.patch_differs {
        lines.push(format!(
            "uncommitted changes differ in: {}",
            list(&c.patched_files)
        ));
    }
    for p in c.untracked.removed.keys() {
        lines.push(format!("- untracked {}", escape(p)));
    }
    for p in c.untracked.added.keys() {
        lines.push(format!("+ untracked {}", escape(p)));
    }
    for p in c.untracked.changed.keys() {
        lines.push(format!("~ untracked {}", escape(p)));
    }
    if let Some(rest) = &c.untracked_rest {
        let side = |r: &Option<crate::model::UntrackedRest>| {
            r.map_or_else(
                || "none".to_string(),
                |r| {
                    let hash = r.hash.to_string();
                    format!("{} files, {} bytes, {}", r.files, r.bytes, &hash[..19])
                },
            )
        };
        lines.push(format!(
            "~ untracked files past those listed, as one hash: {} -> {}",
            side(&rest.a),
            side(&rest.b)
        ));
    }
    lines
}

/// What `show` calls a resource, for the known ones.
fn resource_name(key: &str) -> String {
    match key {
        "wall_seconds" => "wall".into(),
        "user_cpu_seconds" => "cpu user".into(),
        "system_cpu_seconds" => "cpu sys".into(),
        "max_rss_bytes" => "max rss".into(),
        "gpu_peak_memory_bytes" => "gpu peak".into(),
        "memory_bytes" => "memory".into(),
        k => escape(k).into_owned(),
    }
}

/// A measured value in `show`'s units: seconds as `14.8s`, bytes as `1.5 GiB`, a map of GPU
/// index -> bytes as `0: 1.5 GiB, 1: 2.0 GiB`; anything else as it is.
fn human(key: &str, v: &Value) -> String {
    match v {
        Value::Number(n) if key.ends_with("_seconds") => {
            n.as_f64().map_or_else(|| value(v), crate::output::seconds)
        }
        Value::Number(n) if key.ends_with("_bytes") => {
            n.as_u64().map_or_else(|| value(v), crate::output::bytes)
        }
        Value::Object(m) if key.ends_with("_bytes") => m
            .iter()
            .map(|(k, v)| format!("{}: {}", escape(k), human(key, v)))
            .collect::<Vec<_>>()
            .join(", "),
        v => value(v),
    }
}

/// Measured values that differ, in human units; a change too small to show in them (14.81s
/// and 14.84s) is left out (`--json` has the raw numbers).
fn measured(
    out: &mut String,
    title: &str,
    changes: &std::collections::BTreeMap<String, crate::compare::Change<Value>>,
    color: bool,
) {
    // In `show`'s order: wall, cpu, memory; others after, by name.
    const ORDER: [&str; 5] = [
        "wall_seconds",
        "user_cpu_seconds",
        "system_cpu_seconds",
        "max_rss_bytes",
        "gpu_peak_memory_bytes",
    ];
    let mut changes: Vec<_> = changes.iter().collect();
    changes.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let lines: Vec<String> = changes
        .into_iter()
        .map(|(k, c)| (resource_name(k), human(k, &c.a), human(k, &c.b)))
        .filter(|(_, a, b)| a != b)
        .map(|(k, a, b)| format!("  ~ {k}: {a} -> {b}"))
        .collect();
    if lines.is_empty() {
        return;
    }
    section(out, title, color);
    for line in lines {
        let _ = writeln!(out, "{line}");
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
    if let Some(c) = &d.command {
        section(&mut out, "command", color);
        command(&mut out, c, "  ");
    }
    if let Some(c) = &d.code {
        section(&mut out, "code", color);
        code(&mut out, c, "  ");
    }
    map(&mut out, "params", &d.params, color);
    artifacts(&mut out, "configs", &d.configs, color);
    artifacts(&mut out, "inputs", &d.inputs, color);
    map(&mut out, "env", &d.env, color);
    measured(&mut out, "system", &d.system, color);
    map(&mut out, "python packages", &d.packages, color);
    artifacts(&mut out, "outputs", &d.outputs, color);
    metrics(&mut out, &d.metrics, color);
    measured(&mut out, "resources", &d.resources, color);
    if d.is_same_recipe() {
        let _ = writeln!(
            out,
            "\nsame command, code, params, configs, inputs, env, system and packages"
        );
    }
    out
}

/// "which made a and b", "one level up", ...
fn how_far(depth: usize) -> String {
    const WORDS: [&str; 9] = [
        "", "one", "two", "three", "four", "five", "six", "seven", "eight",
    ];
    match depth {
        0 => "which made a and b".into(),
        1 => "one level up".into(),
        n if n < WORDS.len() => format!("{} levels up", WORDS[n]),
        n => format!("{n} levels up"),
    }
}

/// A command line's changes in a few words, hunk by hunk (a hunk: the tokens changed between
/// two that are kept): `+ --resume ckpt/epoch_020.json`, `- --fast`, `--lr 0.01 -> 0.02`
/// (a changed value named by the flag before it), `python -> python3 (the program)`.
fn command_summary(c: &CommandDiff) -> String {
    // Hunks: runs of changes with no kept token between them.
    let mut hunks: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    let (mut next_a, mut next_b) = (usize::MAX, usize::MAX);
    for t in &c.tokens {
        let (ia, ib) = match t {
            TokenChange::Changed {
                a_index, b_index, ..
            } => (Some(*a_index), Some(*b_index)),
            TokenChange::Added { b_index, .. } => (None, Some(*b_index)),
            TokenChange::Removed { a_index, .. } => (Some(*a_index), None),
        };
        let continues = ia.is_none_or(|i| i == next_a) && ib.is_none_or(|j| j == next_b);
        if !continues || hunks.is_empty() {
            hunks.push((Vec::new(), Vec::new()));
            // A new hunk begins where this token is.
            next_a = ia.unwrap_or(next_a);
            next_b = ib.unwrap_or(next_b);
        }
        let Some(h) = hunks.last_mut() else { continue };
        if let Some(i) = ia {
            h.0.push(i);
            next_a = i + 1;
        }
        if let Some(j) = ib {
            h.1.push(j);
            next_b = j + 1;
        }
    }
    let words = |argv: &[crate::compare::Arg], at: &[usize]| {
        at.iter()
            .filter_map(|&i| argv.get(i))
            .map(arg)
            .collect::<Vec<_>>()
            .join(" ")
    };
    hunks
        .iter()
        .map(|(ia, ib)| {
            let (ta, tb) = (words(&c.a, ia), words(&c.b, ib));
            match (ia.first(), ib.first()) {
                (None, _) => format!("+ {tb}"),
                (_, None) => format!("- {ta}"),
                (Some(&i), _) => {
                    let before = i.checked_sub(1).and_then(|k| c.a.get(k));
                    match before {
                        None => format!("{ta} -> {tb} (the program)"),
                        Some(flag) if flag.0.starts_with(b"-") => {
                            format!("{} {ta} -> {tb}", arg(flag))
                        }
                        Some(prev) => format!("{ta} -> {tb} (after {})", arg(prev)),
                    }
                }
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn short_run<'a>(id: &'a str, shorts: &'a HashMap<String, String>) -> String {
    escape(shorts.get(id).map_or(id, String::as_str)).into_owned()
}

fn run_pair(l: &Level, shorts: &HashMap<String, String>) -> String {
    let run = |id: &Option<String>| match id {
        Some(id) => format!("run {}", short_run(id, shorts)),
        None => "no recorded run".into(),
    };
    match l.finding {
        Finding::SameRun => format!("{} (a and b)", run(&l.a)),
        Finding::Unpaired if l.artifact.a.is_none() => format!("{} (b)", run(&l.b)),
        Finding::Unpaired => format!("{} (a)", run(&l.a)),
        _ => format!("{} (a) vs {} (b)", run(&l.a), run(&l.b)),
    }
}

/// Which side's run alone read an input: `a` or `b`; None for a pair.
fn only(l: &Level) -> Option<&'static str> {
    match &l.through {
        Some(Change { a: None, .. }) => Some("b"),
        Some(Change { b: None, .. }) => Some("a"),
        _ => None,
    }
}

/// The input's path, or its two paths: `data.csv`, `old.csv (a) / new.csv (b)`.
fn input_name(t: &Change<Option<String>>) -> String {
    match (&t.a, &t.b) {
        (Some(x), Some(y)) if x != y => format!("{} (a) / {} (b)", escape(x), escape(y)),
        (Some(x), _) | (None, Some(x)) => escape(x).into_owned(),
        (None, None) => String::new(),
    }
}

fn through(l: &Level) -> String {
    match (&l.through, only(l)) {
        (None, _) => String::new(),
        (Some(t), Some(side)) => format!(
            ", through input {} (read only by {side}'s run)",
            input_name(t)
        ),
        (Some(t), None) => format!(", through input {}", input_name(t)),
    }
}

fn hash(h: &Option<crate::model::Hash>) -> String {
    h.as_ref()
        .map_or("(none)".to_string(), crate::output::short_hash)
}

/// What the environment, system and packages of a level's two runs differ in: `env (2)`.
fn outside(d: &RunDiff) -> Vec<String> {
    let mut outside = Vec::new();
    for (what, n) in [
        (
            "env",
            d.env.added.len() + d.env.removed.len() + d.env.changed.len(),
        ),
        ("system", d.system.len()),
        (
            "packages",
            d.packages.added.len() + d.packages.removed.len() + d.packages.changed.len(),
        ),
    ] {
        if n > 0 {
            outside.push(format!("{what} ({n})"));
        }
    }
    outside
}

/// Why the same recipe made different bytes.
fn not_deterministic(d: &RunDiff) -> String {
    let outside = outside(d);
    if outside.is_empty() {
        "the job is not deterministic".to_string()
    } else {
        format!(
            "the job is not deterministic, or {} differ",
            outside.join(", ")
        )
    }
}

/// The words for a level that has no two runs to show, or whose recipe is the same.
fn explanation(l: &Level) -> String {
    match (l.finding, &l.diff) {
        (Finding::NotAbove, Some(d)) => format!(
            "the same recipe on the same input bytes made different bytes: {}",
            not_deterministic(d)
        ),
        (Finding::SameRun, _) => "both are outputs of one run".into(),
        (Finding::Unpaired, _) => {
            let (side, other, h) = match only(l) {
                Some("a") => ("a", "b", &l.artifact.a),
                _ => ("b", "a", &l.artifact.b),
            };
            format!(
                "only {side}'s run read this input ({}): nothing on {other}'s side to compare it with",
                hash(h)
            )
        }
        _ => {
            let side = match (&l.a, &l.b) {
                (None, None) => "either side",
                (None, _) => "a",
                _ => "b",
            };
            format!(
                "the bytes differ at a source: no recorded run produced {side} ({} -> {})",
                hash(&l.artifact.a),
                hash(&l.artifact.b)
            )
        }
    }
}

/// The kinds of cause, in the order "explained by" lists them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    Params,
    Command,
    Code,
    Data,
    Other,
}

/// The lines of "explained by" a level gives, one per cause: what changed, then where.
fn causes(l: &Level, d: &AncestryDiff, shorts: &HashMap<String, String>) -> Vec<(Cause, String)> {
    let far = how_far(l.depth);
    let runs = match (&l.a, &l.b) {
        (Some(a), Some(b)) => format!(
            " in runs {} -> {}, {far}",
            short_run(a, shorts),
            short_run(b, shorts)
        ),
        _ => format!(", {far}"),
    };
    let mut out = Vec::new();
    match (l.finding, &l.diff) {
        (Finding::Recipe, Some(diff)) => {
            let p = &diff.params;
            for (k, c) in &p.changed {
                let line = format!("{}: {} -> {}", escape(k), value(&c.a), value(&c.b));
                out.push((Cause::Params, line));
            }
            for (k, v) in &p.removed {
                out.push((
                    Cause::Params,
                    format!("{}: {} -> (none)", escape(k), value(v)),
                ));
            }
            for (k, v) in &p.added {
                out.push((
                    Cause::Params,
                    format!("{}: (none) -> {}", escape(k), value(v)),
                ));
            }
            for c in diff
                .configs
                .iter()
                .filter(|c| l.configs_beyond_params.contains(&c.path))
            {
                let line = format!(
                    "config {}: {} -> {}",
                    escape(&c.path),
                    hash(&c.a),
                    hash(&c.b)
                );
                out.push((Cause::Params, line));
            }
            if let Some(c) = &diff.command {
                out.push((Cause::Command, format!("command: {}", command_summary(c))));
            }
            if l.recipe.contains(&"code") {
                let line = match (
                    &l.code_files[..],
                    diff.code.as_ref().and_then(|c| c.commit.as_ref()),
                ) {
                    ([], Some(x)) => format!(
                        "code: commit {} -> {} (its files could not be compared)",
                        commit(&x.a),
                        commit(&x.b)
                    ),
                    ([one], _) => format!("code: {} differs", escape(one)),
                    (files, _) => format!("code: {} differ", list(files)),
                };
                out.push((Cause::Code, line));
            }
        }
        (Finding::Source, _) => {
            let what = match &l.through {
                Some(t) => format!("input {}", input_name(t)),
                None => format!("{} / {}", escape(&d.a.target), escape(&d.b.target)),
            };
            let side = match (&l.a, &l.b) {
                (None, None) => "",
                (None, _) => " on a's side",
                _ => " on b's side",
            };
            let place = if l.depth == 0 {
                String::new()
            } else {
                format!(", {far}")
            };
            out.push((
                Cause::Data,
                format!(
                    "{what}: {} -> {} at its source{side} (no recorded run made it){place}",
                    hash(&l.artifact.a),
                    hash(&l.artifact.b)
                ),
            ));
        }
        (Finding::Unpaired, _) => {
            let side = only(l).unwrap_or("b");
            let maker = match (&l.a, &l.b) {
                (Some(r), _) | (None, Some(r)) => format!("run {}", short_run(r, shorts)),
                (None, None) => "no recorded run".into(),
            };
            let what = l.through.as_ref().map(input_name).unwrap_or_default();
            out.push((
                Cause::Data,
                format!(
                    "input {what}: {} -> {} (read only by {side}), made by {maker}, {far}",
                    hash(&l.artifact.a),
                    hash(&l.artifact.b)
                ),
            ));
        }
        (Finding::NotAbove, Some(diff)) => out.push((
            Cause::Other,
            format!(
                "the same recipe on the same input bytes made different bytes{runs}: {}",
                not_deterministic(diff)
            ),
        )),
        (Finding::SameRun, _) => {
            let run =
                l.a.as_deref()
                    .map_or_else(String::new, |r| short_run(r, shorts));
            out.push((Cause::Other, format!("both outputs of run {run}, {far}")));
        }
        _ => {}
    }
    // Where: the runs and how far up, on the lines that do not say it.
    for (cause, line) in &mut out {
        if matches!(cause, Cause::Params | Cause::Command | Cause::Code) {
            line.push_str(&runs);
        }
    }
    out
}

/// `diff --ancestry` for people: each level compared, then what explains the difference, one
/// line per cause: params and configs first, then commands, code, source data and the rest.
pub fn ancestry_text(d: &AncestryDiff, shorts: &HashMap<String, String>, color: bool) -> String {
    let made = |s: &crate::compare::Side| match &s.run {
        Some(id) => format!("made by run {}", short_run(id, shorts)),
        None => "made by no recorded run".into(),
    };
    let mut out = format!(
        "comparing the ancestry of {} (a, {}) with {} (b, {})\n",
        escape(&d.a.target),
        made(&d.a),
        escape(&d.b.target),
        made(&d.b)
    );
    if d.levels.is_empty() {
        let _ = writeln!(out, "\nthe same bytes ({}): nothing differs", d.a.hash);
        return out;
    }
    for l in &d.levels {
        section(
            &mut out,
            &format!("level {}{}: {}", l.depth, through(l), run_pair(l, shorts)),
            color,
        );
        match &l.diff {
            Some(diff) => {
                if let Some(c) = &diff.command {
                    let _ = writeln!(out, "  command");
                    command(&mut out, c, "    ");
                }
                if let Some(c) = diff.code.as_ref().filter(|_| l.recipe.contains(&"code")) {
                    let _ = writeln!(out, "  code");
                    if let Some(x) = &c.commit {
                        let _ = writeln!(out, "    commit {} -> {}", commit(&x.a), commit(&x.b));
                    }
                    for f in &l.code_files {
                        let _ = writeln!(out, "    {}", code_file(c, f));
                    }
                }
                if !diff.params.is_empty() {
                    let mut params = String::new();
                    map(&mut params, "params", &diff.params, false);
                    for line in params.lines().filter(|l| !l.is_empty()) {
                        let _ = writeln!(out, "  {line}");
                    }
                }
                for (title, list) in [("configs", &diff.configs), ("inputs", &diff.inputs)] {
                    let mut s = String::new();
                    artifacts(&mut s, title, list, false);
                    for line in s.lines().filter(|l| !l.is_empty()) {
                        let _ = writeln!(out, "  {line}");
                    }
                }
                if l.finding == Finding::Recipe && !l.inputs_differ {
                    let _ = writeln!(
                        out,
                        "  the same input bytes: nothing above this level differs"
                    );
                }
            }
            None => {
                let _ = writeln!(out, "  {}", explanation(l));
            }
        }
        if l.finding == Finding::NotAbove {
            let _ = writeln!(out, "  {}", explanation(l));
        }
    }
    section(&mut out, "explained by", color);
    let mut lines: Vec<(Cause, String)> = d
        .explanations()
        .flat_map(|l| causes(l, d, shorts))
        .collect();
    // Stable: by cause, then as the levels come (shallowest first).
    lines.sort_by_key(|(cause, _)| *cause);
    lines.dedup();
    for (_, line) in lines {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// One file of the code that differs: `~ train.py`, `+ helper.py (untracked)`.
fn code_file(c: &CodeDiff, path: &str) -> String {
    use crate::compare::Content;
    let sign = match c.contents.get(path) {
        Some(Change {
            a: Content::Absent, ..
        }) => "+",
        Some(Change {
            b: Content::Absent, ..
        }) => "-",
        Some(_) => "~",
        None if c.untracked.added.contains_key(path) => "+ untracked",
        None if c.untracked.removed.contains_key(path) => "- untracked",
        None if c.untracked.changed.contains_key(path) => "~ untracked",
        None => "~",
    };
    format!("{sign} {}", escape(path))
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
        assert!(
            same.contains("same command, code, params, configs, inputs, env, system and packages")
        );
    }

    #[test]
    fn resources_and_memory_print_in_the_units_show_uses() {
        let mut d = RunDiff::default();
        let change = |a, b| Change { a, b };
        d.resources.insert(
            "wall_seconds".into(),
            change(
                serde_json::json!(14.810565143),
                serde_json::json!(9.417656632),
            ),
        );
        d.resources.insert(
            "max_rss_bytes".into(),
            change(serde_json::json!(1_572_864), serde_json::json!(2_097_152)),
        );
        d.resources.insert(
            "gpu_peak_memory_bytes".into(),
            change(
                serde_json::json!({"0": 1_073_741_824u64}),
                serde_json::json!({"0": 2_147_483_648u64}),
            ),
        );
        // Too small a change to show in those units.
        d.resources.insert(
            "user_cpu_seconds".into(),
            change(serde_json::json!(3.81), serde_json::json!(3.84)),
        );
        d.system.insert(
            "memory_bytes".into(),
            change(
                serde_json::json!(17_179_869_184u64),
                serde_json::json!(34_359_738_368u64),
            ),
        );
        let t = text(&d, "a", "b", false);
        assert!(
            t.contains(
                "\nresources\n  ~ wall: 14.8s -> 9.4s\n  ~ max rss: 1.5 MiB -> 2.0 MiB\n  ~ gpu peak: 0: 1.0 GiB -> 0: 2.0 GiB\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("\nsystem\n  ~ memory: 16.0 GiB -> 32.0 GiB\n"),
            "{t}"
        );
        assert!(!t.contains("14.81") && !t.contains("cpu user"), "{t}");
    }

    #[test]
    fn a_command_line_is_shown_whole_then_token_by_token() {
        let arg = |s: &str| crate::compare::Arg(s.as_bytes().to_vec());
        let d = RunDiff {
            command: Some(CommandDiff {
                a: ["python", "train.py", "--lr", "0.01"].map(arg).to_vec(),
                b: ["python", "train.py", "--lr", "0.02", "it's"]
                    .map(arg)
                    .to_vec(),
                tokens: vec![
                    TokenChange::Changed {
                        a_index: 3,
                        b_index: 3,
                        a: arg("0.01"),
                        b: arg("0.02"),
                    },
                    TokenChange::Added {
                        b_index: 4,
                        b: arg("it's"),
                    },
                ],
            }),
            ..RunDiff::default()
        };
        let t = text(&d, "a", "b", false);
        assert!(
            t.contains(
                "\ncommand\n  a: python train.py --lr 0.01\n  b: python train.py --lr 0.02 'it'\\''s'\n  ~ 0.01 -> 0.02  (after --lr)\n  + 'it'\\''s'  (after 0.02)\n"
            ),
            "{t}"
        );
        assert!(!t.contains("same command"), "{t}");
    }

    #[test]
    fn a_command_line_is_summed_up_hunk_by_hunk() {
        let summary = |a: &str, b: &str| {
            let (a, b) = (
                crate::model::RunRecord::example("a", a),
                crate::model::RunRecord::example("b", b),
            );
            command_summary(&crate::compare::command(&a, &b).expect("differs"))
        };
        assert_eq!(
            summary("python train.py", "python train.py --resume ckpt/e20.json"),
            "+ --resume ckpt/e20.json"
        );
        assert_eq!(
            summary(
                "python train.py --fast --lr 0.01 --seed 1",
                "python train.py --lr 0.02 --seed 1"
            ),
            "- --fast, --lr 0.01 -> 0.02"
        );
        assert_eq!(
            summary("python train.py a.csv", "python3 train.py b.csv"),
            "python -> python3 (the program), a.csv -> b.csv (after train.py)"
        );
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
                commit: Some(Change { a: Some(t[0].clone()), b: None }),
                files: Some(vec![t[5].clone()]),
                patch_differs: true,
                patched_files: vec![t[6].clone()],
                untracked,
                untracked_rest: None,
                contents: Default::default(),
            });
            d.configs.push(ArtifactDiff {
                path: t[3].clone(),
                a: None,
                b: Some(Hash::of(b"c")),
                files: None,
            });
            let arg = |s: &String| crate::compare::Arg(s.as_bytes().to_vec());
            d.command = Some(CommandDiff {
                a: vec![arg(&t[1]), arg(&t[2])],
                b: vec![arg(&t[3])],
                tokens: vec![
                    TokenChange::Changed { a_index: 0, b_index: 0, a: arg(&t[1]), b: arg(&t[3]) },
                    TokenChange::Removed { a_index: 1, a: arg(&t[2]) },
                ],
            });
            d.resources.insert(
                t[5].clone(),
                Change { a: serde_json::json!({ t[6].clone(): 1 }), b: serde_json::json!(t[4]) },
            );
            let out = text(&d, &t[0], &t[7], false);
            crate::output::hostile::is_inert(&out)
                .map_err(proptest::test_runner::TestCaseError::fail)?;
            // The same names through an ancestry: targets, paths, params, runs.
            let level = Level {
                depth: 1,
                through: Some(Change { a: Some(t[4].clone()), b: Some(t[5].clone()) }),
                artifact: Change { a: Some(Hash::of(b"a")), b: Some(Hash::of(b"b")) },
                a: Some(t[6].clone()),
                b: Some(t[7].clone()),
                finding: Finding::Recipe,
                inputs_differ: false,
                recipe: vec!["command", "code", "params", "configs"],
                code_files: vec![t[5].clone(), t[7].clone()],
                configs_beyond_params: vec![t[3].clone()],
                diff: Some(d),
            };
            let side = |target: &String| crate::compare::Side {
                target: target.clone(),
                hash: Hash::of(b"x"),
                run: Some(target.clone()),
            };
            let source = Level {
                depth: 2,
                through: Some(Change { a: Some(t[2].clone()), b: Some(t[3].clone()) }),
                artifact: Change { a: Some(Hash::of(b"a")), b: Some(Hash::of(b"b")) },
                a: None,
                b: Some(t[0].clone()),
                finding: Finding::Source,
                inputs_differ: false,
                recipe: Vec::new(),
                code_files: Vec::new(),
                configs_beyond_params: Vec::new(),
                diff: None,
            };
            let unpaired = Level {
                depth: 2,
                through: Some(Change { a: None, b: Some(t[1].clone()) }),
                artifact: Change { a: None, b: Some(Hash::of(b"b")) },
                a: None,
                b: Some(t[2].clone()),
                finding: Finding::Unpaired,
                inputs_differ: false,
                recipe: Vec::new(),
                code_files: Vec::new(),
                configs_beyond_params: Vec::new(),
                diff: None,
            };
            let a = AncestryDiff {
                a: side(&t[0]),
                b: side(&t[1]),
                levels: vec![level, source, unpaired],
            };
            let out = ancestry_text(&a, &HashMap::new(), false);
            crate::output::hostile::is_inert(&out)
                .map_err(proptest::test_runner::TestCaseError::fail)?;
        }
    }
}
