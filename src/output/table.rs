//! Human-readable tables (comfy-table) for `show` and `list`.

use std::collections::BTreeMap;

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
    row("command", Cell::new(shown_command(&r.argv)));
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
        if r.params.len() > PARAMS_SHOWN {
            out += &format!(
                "\nand {} more params (--json lists them)",
                r.params.len() - PARAMS_SHOWN
            );
        }
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
            g.untracked.len() as u64 + g.untracked_rest.map_or(0, |r| r.files)
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

/// At most this many params are shown in a table (the rest counted): a command line of
/// 20,000 `k=v` arguments made 10,000 params, 20,000 lines.
const PARAMS_SHOWN: usize = 500;

/// At most this many characters of the command are shown (the rest counted): a 240 KB
/// command padded every row of the table to its width.
const COMMAND_SHOWN: usize = 500;

/// The command as a terminal shows it, cut at [`COMMAND_SHOWN`] characters.
fn shown_command(argv: &[Vec<u8>]) -> String {
    let line = terminal_command_line(argv);
    let n = line.chars().count();
    if n <= COMMAND_SHOWN {
        return line;
    }
    let mut cut: String = line.chars().take(COMMAND_SHOWN).collect();
    cut += &format!(
        "… ({} more characters; --json has the whole command)",
        n - COMMAND_SHOWN
    );
    cut
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
    for p in r.params.iter().take(PARAMS_SHOWN) {
        let mut from = escape(&p.source).into_owned();
        let replaced = r.capture.param_overrides.iter().filter(|o| o.key == p.key);
        for o in replaced.rev() {
            from += &format!("; {} had {}", escape(&o.source), shown(&o.value));
        }
        t.add_row(vec![escape(&p.key).into_owned(), shown(&p.value), from]);
    }
    t
}

/// The metrics table: key, value (a series': its last), where it came from (a metrics file,
/// or `api` with how many points the job sent and the last one's step).
fn metrics(r: &RunRecord, color: bool) -> Table {
    let mut t = table(color, UTF8_HORIZONTAL_ONLY);
    t.set_header(vec!["metric", "value", "from"]);
    let series = r.capture.api.as_ref().map(|a| a.series.as_slice());
    for m in &r.metrics {
        let mut from = escape(&m.source).into_owned();
        if let Some(s) = series
            .unwrap_or_default()
            .iter()
            .find(|s| s.key == m.key && m.source == "api")
        {
            from += &match s.last_step {
                Some(step) => format!(" ({}, last at step {step})", points(s.points)),
                None => format!(" ({})", points(s.points)),
            };
        }
        t.add_row(vec![
            escape(&m.key).into_owned(),
            metric_text(m.value),
            from,
        ]);
    }
    t
}

/// `1 point`, `3 points`.
fn points(n: u64) -> String {
    if n == 1 {
        "1 point".into()
    } else {
        format!("{n} points")
    }
}

/// The configs, inputs and outputs table.
fn edges(edges: &[EdgeRecord], color: bool) -> Table {
    let mut t = table(color, UTF8_HORIZONTAL_ONLY);
    t.set_header(vec!["role", "path", "kind", "size", "blake3"]);
    for e in edges {
        let mut role = e.role.as_str().to_string();
        if e.changed {
            // An input the job was declared to write (`-i ckpt.pt -o ckpt.pt`, or inside an
            // output directory): changed as it should be.
            let rewritten = e.role != crate::model::Role::Output
                && edges.iter().any(|o| {
                    o.role == crate::model::Role::Output
                        && crate::model::nested(
                            std::path::Path::new(&o.abs_path),
                            std::path::Path::new(&e.abs_path),
                        )
                });
            role += if rewritten {
                " (rewritten by the job: also its output)"
            } else {
                " (changed during run)"
            };
        }
        match e.observed {
            Some(crate::model::Seen::Undeclared) => role += " (observed)",
            Some(crate::model::Seen::Job) => role += " (declared by the job)",
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

/// One run of `lineage list`: its summary, its short id, the short id of the run it reran,
/// and the params and metrics asked for as extra columns.
pub struct ListEntry<'a> {
    pub run: &'a RunSummary,
    pub short: &'a str,
    pub rerun_of: Option<&'a str>,
    pub params: &'a BTreeMap<String, serde_json::Value>,
    pub metrics: &'a BTreeMap<String, f64>,
}

/// The extra columns of `lineage list` (`--columns`): param keys, then metric keys.
#[derive(Clone, Debug, Default)]
pub struct ListColumns {
    pub params: Vec<String>,
    pub metrics: Vec<String>,
}

/// A param's value as a cell: a string's characters, anything else as JSON writes it.
pub fn param_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A metric's value as a cell: the shortest text that reads back as the same number.
pub fn metric_text(v: f64) -> String {
    // Very large and very small numbers in exponent form (1e308 is not 309 digits).
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e16).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

const LIST_HEADER: [&str; 6] = ["run", "when", "status", "took", "command", "outputs"];

fn list_header(cols: &ListColumns) -> Vec<String> {
    LIST_HEADER
        .iter()
        .map(|h| h.to_string())
        .chain(
            cols.params
                .iter()
                .map(|k| escape(&format!("params.{k}")).into_owned()),
        )
        .chain(
            cols.metrics
                .iter()
                .map(|k| escape(&format!("metrics.{k}")).into_owned()),
        )
        .collect()
}

/// A row of `lineage list` as text cells, escaped; the status is cell 2.
fn list_cells(e: &ListEntry, cols: &ListColumns, now: jiff::Timestamp) -> Vec<String> {
    let r = e.run;
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
            escape(e.short),
            escape(e.rerun_of.unwrap_or(of))
        ),
        None => escape(e.short).into_owned(),
    };
    // One row for the ranks of a launch: how many, and which failed.
    let (short, status) = match &r.group {
        Some(g) => {
            let detail = super::group::status_detail(g);
            (
                format!("{short}\n{}", super::group::ranks(g)),
                if detail.is_empty() {
                    r.status.as_str().to_string()
                } else {
                    format!("{} ({detail})", r.status.as_str())
                },
            )
        }
        None => (short, r.status.as_str().to_string()),
    };
    let mut cells = vec![
        short,
        escape(&ago(&r.started_at, now)).into_owned(),
        status,
        took,
        command,
        r.outputs
            .iter()
            .map(|o| escape(o))
            .collect::<Vec<_>>()
            .join(", "),
    ];
    cells.extend(cols.params.iter().map(|k| {
        e.params
            .get(k)
            .map_or_else(String::new, |v| escape(&param_text(v)).into_owned())
    }));
    cells.extend(cols.metrics.iter().map(|k| {
        e.metrics
            .get(k)
            .map_or_else(String::new, |v| metric_text(*v))
    }));
    cells
}

/// `lineage list` on a terminal: one row a run, as given (newest first), wrapped to the
/// terminal's width.
pub fn list(entries: &[ListEntry], cols: &ListColumns, color: bool) -> String {
    let now = jiff::Timestamp::now();
    let mut t = table(color, UTF8_HORIZONTAL_ONLY);
    t.set_header(list_header(cols));
    for e in entries {
        let mut cells: Vec<Cell> = list_cells(e, cols, now)
            .into_iter()
            .map(Cell::new)
            .collect();
        let detail = e
            .run
            .group
            .as_ref()
            .map(super::group::status_detail)
            .unwrap_or_default();
        cells[2] = status_cell(e.run.status, color, &detail);
        t.add_row(cells);
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

/// `lineage list` streamed, into a pipe or a file: the same table as [`list`] draws there,
/// drawn a row at a time in constant memory, from column widths measured beforehand in a
/// first pass over the same runs ([`ListStream::measure`]).
pub struct ListStream {
    fixed: Vec<usize>,
    params: BTreeMap<String, usize>,
    metrics: BTreeMap<String, usize>,
    cols: ListColumns,
    widths: Vec<usize>,
    color: bool,
    now: jiff::Timestamp,
    rows: usize,
}

/// The display width of a cell's widest line.
fn text_width(s: &str) -> usize {
    use unicode_width::UnicodeWidthStr;
    s.split('\n').map(UnicodeWidthStr::width).max().unwrap_or(0)
}

impl ListStream {
    /// `named`: the extra columns asked for by name, shown whether a run has them or not;
    /// others join as the runs measured have them.
    pub fn new(named: &ListColumns, color: bool) -> ListStream {
        let header = |table: &str, keys: &[String]| -> BTreeMap<String, usize> {
            keys.iter()
                .map(|k| (k.clone(), text_width(&escape(&format!("{table}.{k}")))))
                .collect()
        };
        ListStream {
            fixed: LIST_HEADER.iter().map(|h| text_width(h)).collect(),
            params: header("params", &named.params),
            metrics: header("metrics", &named.metrics),
            cols: ListColumns::default(),
            widths: Vec::new(),
            color,
            now: jiff::Timestamp::now(),
            rows: 0,
        }
    }

    /// First pass: widen the columns to hold this run's row.
    pub fn measure(&mut self, e: &ListEntry) {
        let none = ListColumns::default();
        for (w, cell) in self.fixed.iter_mut().zip(list_cells(e, &none, self.now)) {
            *w = (*w).max(text_width(&cell));
        }
        for (k, v) in e.params {
            let w = text_width(&escape(&param_text(v)));
            let header = text_width(&escape(&format!("params.{k}")));
            let at = self.params.entry(k.clone()).or_insert(header);
            *at = (*at).max(w);
        }
        for (k, v) in e.metrics {
            let w = text_width(&metric_text(*v));
            let header = text_width(&escape(&format!("metrics.{k}")));
            let at = self.metrics.entry(k.clone()).or_insert(header);
            *at = (*at).max(w);
        }
    }

    /// The extra columns, once every run is measured.
    pub fn columns(&self) -> ListColumns {
        ListColumns {
            params: self.params.keys().cloned().collect(),
            metrics: self.metrics.keys().cloned().collect(),
        }
    }

    fn rule(&self, fill: char) -> String {
        let width: usize = self.widths.iter().map(|w| w + 2).sum::<usize>() + self.widths.len() - 1;
        let mut line: String = std::iter::repeat_n(fill, width).collect();
        line.push('\n');
        line
    }

    /// The cells of a row as lines, each padded to its column (`status`: colour cell 2).
    fn lines(&self, cells: &[String], status: Option<Status>) -> String {
        let split: Vec<Vec<&str>> = cells.iter().map(|c| c.split('\n').collect()).collect();
        let height = split.iter().map(Vec::len).max().unwrap_or(1);
        let mut out = String::new();
        for i in 0..height {
            let mut parts = Vec::with_capacity(cells.len());
            for (col, lines) in split.iter().enumerate() {
                let text = lines.get(i).copied().unwrap_or("");
                let pad = self.widths[col].saturating_sub(text_width(text));
                let padded = format!(" {text}{} ", " ".repeat(pad));
                parts.push(match status {
                    Some(s) if col == 2 && self.color && i < lines.len() => colored(s, &padded),
                    _ => padded,
                });
            }
            out += &parts.join(" ");
            out.push('\n');
        }
        out
    }

    /// The top border, the header and its rule; every run has been measured.
    pub fn header(&mut self) -> String {
        self.cols = self.columns();
        self.widths = self.fixed.clone();
        self.widths.extend(self.params.values());
        self.widths.extend(self.metrics.values());
        let mut out = self.rule('─');
        out += &self.lines(&list_header(&self.cols), None);
        out += &self.rule('═');
        out
    }

    /// One run's row, with the rule between it and the row before.
    pub fn row(&mut self, e: &ListEntry) -> String {
        let mut out = if self.rows > 0 {
            self.rule('─')
        } else {
            String::new()
        };
        self.rows += 1;
        out += &self.lines(&list_cells(e, &self.cols, self.now), Some(e.run.status));
        out
    }

    /// The bottom border.
    pub fn end(&self) -> String {
        self.rule('─')
    }
}

/// A status as comfy-table colours it (crossterm's ANSI colours, foreground only).
fn colored(status: Status, text: &str) -> String {
    let code = match status {
        Status::Succeeded => 10,
        Status::Failed => 9,
        Status::Interrupted => 11,
        Status::Running => 14,
    };
    format!("\x1b[38;5;{code}m{text}\x1b[39m")
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
        let rows = [
            summary("22222222-x", Status::Running),
            summary("11111111-x", Status::Succeeded),
        ];
        let t = list(&entries(&rows), &Default::default(), false);
        let (new, old) = (
            t.find("22222222").expect("new"),
            t.find("11111111").expect("old"),
        );
        assert!(new < old, "{t}");
        assert!(t.contains("running") && t.contains("model.bin"), "{t}");
    }

    const NO_PARAMS: &BTreeMap<String, serde_json::Value> = &BTreeMap::new();
    const NO_METRICS: &BTreeMap<String, f64> = &BTreeMap::new();

    fn entries(rows: &[(RunSummary, String)]) -> Vec<ListEntry<'_>> {
        rows.iter()
            .map(|(run, short)| ListEntry {
                run,
                short,
                rerun_of: None,
                params: NO_PARAMS,
                metrics: NO_METRICS,
            })
            .collect()
    }

    /// What `ListStream` draws for these entries: a pass to measure, a pass to draw.
    fn streamed(entries: &[ListEntry], named: &ListColumns, color: bool) -> String {
        let mut s = ListStream::new(named, color);
        for e in entries {
            s.measure(e);
        }
        let mut out = s.header();
        for e in entries {
            out += &s.row(e);
        }
        out + &s.end()
    }

    #[test]
    fn the_streamed_list_is_the_table_comfy_draws_into_a_pipe() {
        let r = record();
        let mut wide = r.argv.clone();
        wide.push("é中文 x".as_bytes().to_vec());
        let summary = |id: &str, status, argv: &Vec<Vec<u8>>, rerun_of: Option<&str>| RunSummary {
            id: id.into(),
            status,
            argv: argv.clone(),
            // Unparseable: printed as it is, so that both renderings agree on the age.
            started_at: "then".into(),
            ended_at: None,
            exit_code: Some(0),
            outputs: vec!["model.bin".into(), "b".into()],
            rerun_of: rerun_of.map(String::from),
            group: None,
        };
        let runs = [
            summary("33333333-x", Status::Failed, &wide, Some("11111111-x")),
            summary("22222222-x", Status::Running, &r.argv, None),
            summary(
                "11111111-x",
                Status::Succeeded,
                &vec![b"a".to_vec(); 40],
                None,
            ),
        ];
        let params = [
            BTreeMap::from([("lr".to_string(), serde_json::json!(0.001))]),
            BTreeMap::from([("opt".to_string(), serde_json::json!("adam-long-name"))]),
            BTreeMap::new(),
        ];
        let metrics = [
            BTreeMap::from([("acc".to_string(), 0.5)]),
            BTreeMap::new(),
            BTreeMap::new(),
        ];
        let entries: Vec<ListEntry> = runs
            .iter()
            .zip(&params)
            .zip(&metrics)
            .map(|((run, params), metrics)| ListEntry {
                run,
                short: &run.id[..8],
                rerun_of: run.rerun_of.as_deref().map(|o| &o[..8]),
                params,
                metrics,
            })
            .collect();
        let named = ListColumns {
            params: vec!["seed".into()],
            metrics: vec![],
        };
        let cols = ListColumns {
            params: vec!["lr".into(), "opt".into(), "seed".into()],
            metrics: vec!["acc".into()],
        };
        for color in [false, true] {
            assert_eq!(
                streamed(&entries, &named, color),
                list(&entries, &cols, color) + "\n",
                "color: {color}"
            );
        }
        let opt = ListColumns {
            params: vec!["opt".into()],
            metrics: vec![],
        };
        assert_eq!(
            streamed(&entries[1..2], &ListColumns::default(), false),
            list(&entries[1..2], &opt, false) + "\n"
        );
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
            let rows = [(summary, short)];
            let listed = list(&entries(&rows), &Default::default(), false);
            crate::output::hostile::is_inert(&listed)
                .map_err(proptest::test_runner::TestCaseError::fail)?;
            let piped = streamed(&entries(&rows), &Default::default(), false);
            crate::output::hostile::is_inert(&piped)
                .map_err(proptest::test_runner::TestCaseError::fail)?;
            proptest::prop_assert_eq!(piped.lines().count(), 6, "{}", piped);
            // Rules, the header, and the row's two lines (id, "rerun of").
            proptest::prop_assert_eq!(listed.lines().count(), 6, "{}", listed);
        }
    }
}
