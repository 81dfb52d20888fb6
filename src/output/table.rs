//! Human-readable tables (comfy-table) for `show` and `list`.

use comfy_table::presets::{NOTHING, UTF8_HORIZONTAL_ONLY};
use comfy_table::{Cell, Color, ContentArrangement, Table, TableStyle};

use super::{ago, bytes, duration, seconds, short_hash};
use crate::model::text::{escape, escape_bytes, terminal_command_line};
use crate::model::{
    Capture, EdgeRecord, Owner, Resources, Role, RunRecord, RunSummary, Status, SystemInfo,
};

fn table(color: bool, preset: TableStyle) -> Table {
    let mut t = Table::new();
    t.load_style(preset)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if color {
        // `--color always` colours a pipe too.
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t
}

fn status_cell(status: Status, color: bool, detail: &str) -> Cell {
    let cell = if detail.is_empty() {
        Cell::new(status.as_str())
    } else {
        Cell::new(format!("{} ({detail})", status.as_str()))
    };
    if !color {
        return cell;
    }
    cell.fg(match status {
        Status::Succeeded => Color::Green,
        Status::Failed => Color::Red,
        Status::Interrupted => Color::Yellow,
        Status::Running => Color::Cyan,
    })
}

fn outcome(r: &RunRecord) -> String {
    match (r.exit_code, r.signal) {
        (_, Some(sig)) => format!("signal {sig}"),
        (Some(code), None) => format!("exit {code}"),
        (None, None) => "still running, or lineage was killed".to_string(),
    }
}

/// `lineage show RUN`: a summary, then params, configs, inputs and outputs, then notes.
/// `rerun_of`: the short id of the run it reproduced, when it is one.
pub fn run(
    r: &RunRecord,
    short_id: &str,
    rerun_of: Option<&str>,
    record: &str,
    submitted_by: Option<&str>,
    color: bool,
) -> String {
    let c = &r.capture;
    let mut kv = table(color, NOTHING);
    let mut row = |k: &str, v: Cell| {
        kv.add_row(vec![Cell::new(k), v]);
    };
    row(
        "run",
        Cell::new(format!("{}  ({})", escape(short_id), escape(&r.id))),
    );
    row("status", status_cell(r.status, color, &outcome(r)));
    row("record", Cell::new(escape(record)));
    row("command", Cell::new(terminal_command_line(&r.argv)));
    row("cwd", Cell::new(escape_bytes(&r.cwd)));
    let took = duration(&r.started_at, r.ended_at.as_deref())
        .map(|s| format!(" (took {})", seconds(s)))
        .unwrap_or_default();
    row(
        "started",
        Cell::new(format!("{}{took}", escape(&r.started_at))),
    );
    if let Some(of) = rerun_of.or(r.rerun_of.as_deref()) {
        row("rerun of", Cell::new(escape(of)));
    }
    row("owner", Cell::new(owner(&c.owner)));
    if let Some(role) = submitted_by {
        row(
            "team store",
            Cell::new(format!("submitted by {}", escape(role))),
        );
    }
    row("git", Cell::new(git(c)));
    if let Some(s) = &c.script {
        row(
            "script",
            Cell::new(format!("{} {}", escape(&s.path), short_hash(&s.hash))),
        );
    }
    row("host", Cell::new(host(&c.system)));
    row("gpus", Cell::new(gpus(&c.system)));
    if let Some(ct) = &c.container {
        let image = ct.image.as_deref().map(|i| format!(" {}", escape(i)));
        row(
            "container",
            Cell::new(format!(
                "{}{}",
                escape(&ct.runtime),
                image.unwrap_or_default()
            )),
        );
    }
    if let Some(s) = &c.scheduler {
        let ids: Vec<String> = s
            .ids
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect();
        row(
            "scheduler",
            Cell::new(format!("{} {}", escape(&s.kind), ids.join(" "))),
        );
    }
    if let Some(py) = &c.software.python {
        row(
            "python",
            Cell::new(format!(
                "{} {} · {} packages",
                escape(&py.executable),
                escape(py.version.as_deref().unwrap_or("")),
                py.package_count
            )),
        );
    }
    row(
        "env",
        Cell::new(format!(
            "{} variables, {} redacted (--json lists them)",
            c.env.len(),
            c.env_redacted.len()
        )),
    );
    if let Some(res) = &r.resources {
        row("resources", Cell::new(resources(res)));
    }
    if let Some(o) = &c.observed {
        row("observed", Cell::new(observed(o)));
    }
    let mut out = kv.to_string();
    if !r.params.is_empty() {
        out += &format!("\n\n{}", params(r, color));
    }
    if !r.metrics.is_empty() {
        out += &format!("\n\n{}", metrics(r, color));
    }
    if !r.edges.is_empty() {
        out += &format!("\n\n{}", edges(&r.edges, color));
    }
    if let Some(o) = &c.observed {
        for (what, paths) in [("code read", &o.code_read), ("deleted", &o.deleted)] {
            if !paths.is_empty() {
                const SHOWN: usize = 10;
                let mut list: Vec<String> = paths
                    .iter()
                    .take(SHOWN)
                    .map(|p| escape(p).into_owned())
                    .collect();
                if paths.len() > SHOWN {
                    list.push(format!(
                        "and {} more (--json lists them)",
                        paths.len() - SHOWN
                    ));
                }
                out += &format!("\n{what}: {}", list.join(", "));
            }
        }
    }
    for note in &c.notes {
        out += &format!("\nnote: {}", escape(note));
    }
    out
}

/// `1520 file calls: 12 code files read, 840 of the environment, 1 deleted`, or why the
/// job ran unobserved.
fn observed(o: &crate::model::ObservedIo) -> String {
    if let Some(why) = &o.off {
        return format!("off ({})", escape(why));
    }
    format!(
        "{} file calls: {} code file{} read, {} of the environment, {} deleted",
        o.calls,
        o.code_read.len(),
        if o.code_read.len() == 1 { "" } else { "s" },
        o.environment,
        o.deleted.len()
    )
}

/// `ada, git Ada Lovelace <ada@example.com>, owner vision-team`.
fn owner(o: &Owner) -> String {
    let mut who = o
        .user
        .as_deref()
        .map_or_else(|| format!("uid {}", o.uid), |u| escape(u).into_owned());
    if let Some(name) = &o.git_name {
        who += &format!(", git {}", escape(name));
        if let Some(email) = &o.git_email {
            who += &format!(" <{}>", escape(email));
        }
    }
    if let Some(team) = &o.lineage_owner {
        who += &format!(", owner {}", escape(team));
    }
    who
}

/// Branch, commit, dirtiness, remote and code hash; or why there is no git state.
fn git(c: &Capture) -> String {
    let Some(g) = &c.git else {
        let reason = c.git_absent.as_deref().unwrap_or("unknown");
        return format!("none ({})", escape(reason));
    };
    let mut s = format!(
        "{} @ {}",
        escape(g.branch.as_deref().unwrap_or("(detached)")),
        escape(
            g.commit
                .as_deref()
                .map_or("?", |c| crate::model::prefix(c, 12))
        )
    );
    if g.dirty {
        s += &format!(
            ", dirty ({} changed, {} untracked)",
            g.changed_files.len(),
            g.untracked.len()
        );
    }
    if let Some(remote) = &g.remote {
        s += &format!("\n{}", escape(remote));
    }
    s + &format!("\ncode {}", short_hash(&g.code))
}

fn host(sys: &SystemInfo) -> String {
    format!(
        "{} · {} {} · kernel {}\n{} · {} cores · {}",
        escape(sys.hostname.as_deref().unwrap_or("?")),
        escape(sys.os.as_deref().unwrap_or("?")),
        escape(sys.os_version.as_deref().unwrap_or("")),
        escape(sys.kernel.as_deref().unwrap_or("?")),
        escape(sys.cpu_model.as_deref().unwrap_or("unknown CPU")),
        sys.cpu_cores,
        bytes(sys.memory_bytes)
    )
}

/// One line a GPU; or why there is none.
fn gpus(sys: &SystemInfo) -> String {
    if sys.gpus.is_empty() {
        let why = sys.gpu_note.as_deref().unwrap_or("no GPU found");
        return format!("none ({})", escape(why));
    }
    sys.gpus
        .iter()
        .map(|g| {
            let hidden = if g.visible {
                ""
            } else {
                " (hidden by CUDA_VISIBLE_DEVICES)"
            };
            format!(
                "{}: {} · {} · driver {}{hidden}",
                g.index,
                escape(&g.name),
                bytes(g.memory_bytes),
                escape(&g.driver_version),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn resources(res: &Resources) -> String {
    let mut s = format!(
        "wall {} · cpu {} user + {} sys · max rss {}",
        seconds(res.wall_seconds),
        seconds(res.user_cpu_seconds),
        seconds(res.system_cpu_seconds),
        bytes(res.max_rss_bytes)
    );
    // Several processes held more together than the largest alone.
    if let Some(total) = res.peak_total_rss_bytes
        && bytes(total) != bytes(res.max_rss_bytes)
    {
        s += &format!(" (largest process) · {} all processes", bytes(total));
    }
    for (i, b) in res.gpu_peak_memory_bytes.iter().flatten() {
        s += &format!(" · gpu {i} peak {}", bytes(*b));
    }
    s
}

/// The params table: key, value, where it came from, and which values it won over (`argv;
/// params.yaml had 0.001`: the job's command line replaced the config's value).
fn params(r: &RunRecord, color: bool) -> Table {
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => escape(s).into_owned(),
        v => escape(&v.to_string()).into_owned(),
    };
    let mut t = table(color, UTF8_HORIZONTAL_ONLY);
    t.set_header(vec!["param", "value", "from"]);
    for p in &r.params {
        let mut from = escape(&p.source).into_owned();
        let replaced = r.capture.param_overrides.iter().filter(|o| o.key == p.key);
        for o in replaced.rev() {
            from += &format!("; {} had {}", escape(&o.source), shown(&o.value));
        }
        t.add_row(vec![escape(&p.key).into_owned(), shown(&p.value), from]);
    }
    t
}

/// The metrics table: key, value, the file it was read from.
fn metrics(r: &RunRecord, color: bool) -> Table {
    let mut t = table(color, UTF8_HORIZONTAL_ONLY);
    t.set_header(vec!["metric", "value", "from"]);
    for m in &r.metrics {
        t.add_row(vec![
            escape(&m.key).into_owned(),
            m.value.to_string(),
            escape(&m.source).into_owned(),
        ]);
    }
    t
}

/// The configs, inputs and outputs table.
fn edges(edges: &[EdgeRecord], color: bool) -> Table {
    let mut t = table(color, UTF8_HORIZONTAL_ONLY);
    t.set_header(vec!["role", "path", "kind", "size", "blake3"]);
    for e in edges {
        let mut role = e.role.as_str().to_string();
        if e.changed {
            role += " (changed during run)";
        }
        match e.observed {
            Some(crate::model::Seen::Undeclared) => role += " (observed)",
            Some(crate::model::Seen::Untouched) => role += " (declared, never opened)",
            _ => {}
        }
        match &e.written {
            Some(crate::model::Written::Nothing) if e.artifact.is_some() => {
                role += " (declared, not written)";
            }
            Some(crate::model::Written::Partly(kept)) => {
                role += &format!(" ({} files left as they were)", kept.len());
            }
            _ => {}
        }
        let row = match &e.artifact {
            Some(a) => {
                let kind = if a.file_count > 1 || a.kind.as_str() == "dir" {
                    let s = if a.file_count == 1 { "" } else { "s" };
                    format!("{} ({} file{s})", a.kind.as_str(), a.file_count)
                } else {
                    a.kind.as_str().to_string()
                };
                vec![
                    role,
                    escape(&e.path).into_owned(),
                    kind,
                    bytes(a.size),
                    short_hash(&a.hash),
                ]
            }
            None => {
                let what = if e.role == Role::Output {
                    "missing"
                } else {
                    "?"
                };
                vec![
                    role,
                    escape(&e.path).into_owned(),
                    what.into(),
                    "".into(),
                    "".into(),
                ]
            }
        };
        t.add_row(row);
    }
    t
}

/// `lineage list`: one row a run; `shorts` gives the short ids of the runs they reran (the
/// whole id where it is missing).
pub fn list(
    runs: &[(RunSummary, String)],
    shorts: &std::collections::HashMap<String, String>,
    color: bool,
) -> String {
    let now = jiff::Timestamp::now();
    let mut t = table(color, UTF8_HORIZONTAL_ONLY);
    t.set_header(vec!["run", "when", "status", "took", "command", "outputs"]);
    for (r, short) in runs {
        let took = duration(&r.started_at, r.ended_at.as_deref())
            .map(seconds)
            .unwrap_or_default();
        let mut command = terminal_command_line(&r.argv);
        if command.chars().count() > 60 {
            command = command.chars().take(59).collect::<String>() + "…";
        }
        let short = match &r.rerun_of {
            Some(of) => format!(
                "{}\nrerun of {}",
                escape(short),
                escape(shorts.get(of).map_or(of.as_str(), String::as_str))
            ),
            None => escape(short).into_owned(),
        };
        // One row for the ranks of a launch.
        let (short, detail) = match &r.group {
            Some(g) => (
                format!("{short}\n{}", super::group::ranks(g)),
                super::group::status_detail(g),
            ),
            None => (short, String::new()),
        };
        t.add_row(vec![
            Cell::new(short),
            Cell::new(escape(&ago(&r.started_at, now))),
            status_cell(r.status, color, &detail),
            Cell::new(took),
            Cell::new(command),
            Cell::new(
                r.outputs
                    .iter()
                    .map(|o| escape(o))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ]);
    }
    t.to_string()
}

/// The tags and notes of a run, under `show RUN`'s table: `tags: best, v1`, then each note
/// with who wrote it and when (escaped: a note is anyone's text).
pub fn annotations(a: &crate::model::RunAnnotations) -> String {
    let mut out = String::new();
    if !a.tags.is_empty() {
        let tags: Vec<String> = a.tags.iter().map(|t| escape(t).into_owned()).collect();
        out += &format!("\ntags: {}", tags.join(", "));
    }
    for n in &a.notes {
        out += &format!(
            "\nnote by {} at {}: {}",
            escape(&n.author),
            escape(&n.created_at),
            escape(&n.text)
        );
    }
    out
}

/// `lineage tag`: every tag, the run it names, when and by whom, and the run's command.
pub fn tags(rows: &[(crate::model::TagRow, String, String)], color: bool) -> String {
    let mut t = table(color, UTF8_HORIZONTAL_ONLY);
    t.set_header(vec!["tag", "run", "tagged", "by", "command"]);
    let now = jiff::Timestamp::now();
    for (tag, short, command) in rows {
        let mut command = command.clone();
        if command.chars().count() > 60 {
            command = command.chars().take(59).collect::<String>() + "…";
        }
        t.add_row(vec![
            Cell::new(escape(&tag.name)),
            Cell::new(escape(short)),
            Cell::new(escape(&ago(&tag.created_at, now))),
            Cell::new(escape(&tag.author)),
            Cell::new(command),
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArtifactKind, ArtifactRef, Hash, Param};

    fn record() -> RunRecord {
        let file = |name: &str| ArtifactRef {
            hash: Hash::of(name.as_bytes()),
            kind: ArtifactKind::File,
            size: 2048,
            file_count: 1,
        };
        let edge = |role, path: &str, artifact, changed| EdgeRecord {
            role,
            path: path.into(),
            abs_path: format!("/w/{path}"),
            artifact,
            changed,
            written: None,
            observed: None,
        };
        let mut r = RunRecord::example(
            "01a20000-0000-7000-8000-000000000001",
            "python train.py --lr",
        );
        r.argv[2] = b"--lr 0.1".to_vec();
        r.status = Status::Failed;
        r.exit_code = Some(3);
        r.ended_at = Some("2026-11-01T00:01:15Z".into());
        r.capture.notes = vec!["output model.bin does not exist after the run".into()];
        r.edges = vec![
            edge(Role::Input, "data.csv", Some(file("data.csv")), true),
            edge(Role::Output, "model.bin", None, false),
        ];
        r.params = vec![Param {
            key: "optimizer.lr".into(),
            value: serde_json::json!(0.1),
            source: "cfg.yaml".into(),
        }];
        r
    }

    #[test]
    fn a_run_shows_its_outcome_command_params_edges_and_notes() {
        let t = run(&record(), "01a20000", None, "signed by you", None, false);
        for want in [
            "01a20000  (01a20000-0000-7000-8000-000000000001)",
            "failed (exit 3)",
            "python train.py '--lr 0.1'",
            "(took 1m15s)",
            "none (unknown)",
            "optimizer.lr",
            "input (changed during run)",
            "2.0 KiB",
            "missing",
            "note: output model.bin does not exist after the run",
        ] {
            assert!(t.contains(want), "{want:?} in\n{t}");
        }
        assert!(!t.contains('\u{1b}'), "no colour when asked for none");
    }

    #[test]
    fn a_list_has_a_row_a_run_newest_first_as_given() {
        let r = record();
        let summary = |id: &str, status| {
            (
                RunSummary {
                    id: id.into(),
                    status,
                    argv: r.argv.clone(),
                    started_at: r.started_at.clone(),
                    ended_at: r.ended_at.clone(),
                    exit_code: Some(0),
                    outputs: vec!["model.bin".into()],
                    rerun_of: None,
                    group: None,
                },
                id[..8].to_string(),
            )
        };
        let t = list(
            &[
                summary("22222222-x", Status::Running),
                summary("11111111-x", Status::Succeeded),
            ],
            &Default::default(),
            false,
        );
        let (new, old) = (
            t.find("22222222").expect("new"),
            t.find("11111111").expect("old"),
        );
        assert!(new < old, "{t}");
        assert!(t.contains("running") && t.contains("model.bin"), "{t}");
    }

    type Hostile = (Vec<Vec<u8>>, Vec<u8>, Vec<String>, Vec<(String, String)>);

    fn hostile() -> impl proptest::strategy::Strategy<Value = Hostile> {
        use crate::output::hostile::{bytes, text};
        use proptest::prelude::*;
        (
            prop::collection::vec(bytes(), 1..4),
            bytes(),
            prop::collection::vec(text(), 8..9),
            prop::collection::vec((text(), text()), 0..3),
        )
    }

    /// A run whose argv, cwd, ids, paths, params, notes and captured strings are arbitrary.
    fn hostile_record((argv, cwd, t, params): Hostile) -> RunRecord {
        let mut r = record();
        r.argv = argv;
        r.cwd = cwd;
        r.id = t[0].clone();
        r.rerun_of = Some(t[1].clone());
        r.edges[0].path = t[2].clone();
        r.edges[1].path = t[3].clone();
        r.capture.notes = vec![t[4].clone()];
        r.capture.owner.user = Some(t[5].clone());
        r.capture.system.hostname = Some(t[6].clone());
        r.capture.git_absent = Some(t[7].clone());
        r.params = params
            .into_iter()
            .map(|(key, v)| Param {
                key,
                value: serde_json::Value::String(v.clone()),
                source: v,
            })
            .collect();
        r
    }

    proptest::proptest! {
        #![proptest_config(crate::output::hostile::config(300))]

        /// `show` and `list` of arbitrary text: inert, and as many lines as plain text gives.
        #[test]
        fn show_and_list_of_arbitrary_text_are_inert_and_forge_no_line(h in hostile()) {
            let plain: Hostile = (
                vec![b"x".to_vec(); h.0.len()],
                b"x".to_vec(),
                vec!["x".to_string(); h.2.len()],
                vec![("x".to_string(), "x".to_string()); h.3.len()],
            );
            let short = h.2[0].clone();
            let r = hostile_record(h);
            let shown = run(&r, &short, None, "unsigned", None, false);
            crate::output::hostile::is_inert(&shown)
                .map_err(proptest::test_runner::TestCaseError::fail)?;
            let lines = run(&hostile_record(plain), "x", None, "unsigned", None, false).lines().count();
            proptest::prop_assert_eq!(shown.lines().count(), lines, "{}", shown);
            let summary = RunSummary {
                id: r.id.clone(),
                status: r.status,
                argv: r.argv.clone(),
                started_at: r.capture.notes[0].clone(),
                ended_at: None,
                exit_code: None,
                outputs: r.edges.iter().map(|e| e.path.clone()).collect(),
                rerun_of: r.rerun_of.clone(),
                group: None,
            };
            let listed = list(&[(summary, short)], &Default::default(), false);
            crate::output::hostile::is_inert(&listed)
                .map_err(proptest::test_runner::TestCaseError::fail)?;
            // Rules, the header, and the row's two lines (id, "rerun of").
            proptest::prop_assert_eq!(listed.lines().count(), 6, "{}", listed);
        }
    }
}
