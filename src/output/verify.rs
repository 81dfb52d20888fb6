//! `lineage verify`: each run of an ancestry with where its record stands.

use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{Cell, Color, ContentArrangement, Table};
use serde::Serialize;

use crate::model::text::{escape, terminal_command_line};
use crate::model::{Seal, Standing};

/// One run, checked.
pub struct Checked {
    /// Its full id.
    pub id: String,
    /// Its shortest unique prefix.
    pub short: String,
    pub argv: Vec<Vec<u8>>,
    pub seal: Seal,
    pub standing: Standing,
    /// Who the key is, when it is trusted: `you`, or the settings file that lists it.
    pub trusted_as: Option<String>,
}

impl Checked {
    fn detail(&self) -> String {
        match (&self.seal, &self.trusted_as) {
            (Seal::Signed { key }, Some(who)) => format!("signed by {who} ({})", short_key(key)),
            (Seal::Signed { key }, None) => format!("signed by {key}, not a trusted key"),
            (Seal::Unsigned, _) => "no signature".into(),
            (Seal::Tampered { reason }, _) => reason.clone(),
        }
    }
}

fn short_key(key: &str) -> String {
    crate::model::prefix(key, "ed25519:".len() + 16).to_string() + "…"
}

/// The table: run, standing, detail, command.
pub fn table(rows: &[Checked], color: bool) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(vec!["run", "record", "detail", "command"]);
    for r in rows {
        let mut command = terminal_command_line(&r.argv);
        if command.chars().count() > 50 {
            command = command.chars().take(49).collect::<String>() + "…";
        }
        let mut standing = Cell::new(r.standing.as_str());
        if color {
            standing = standing.fg(match r.standing {
                Standing::Verified => Color::Green,
                Standing::UnknownKey | Standing::Unsigned => Color::Yellow,
                Standing::Tampered => Color::Red,
            });
        }
        t.add_row(vec![
            Cell::new(&r.short),
            standing,
            Cell::new(escape(&r.detail())),
            Cell::new(command),
        ]);
    }
    t.to_string()
}

/// One line: how many runs stand where.
pub fn summary(rows: &[Checked]) -> String {
    let count = |s: Standing| rows.iter().filter(|r| r.standing == s).count();
    format!(
        "{} run{}: {} verified, {} signed by an unknown key, {} unsigned, {} tampered",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        count(Standing::Verified),
        count(Standing::UnknownKey),
        count(Standing::Unsigned),
        count(Standing::Tampered)
    )
}

#[derive(Serialize)]
struct JsonRow<'a> {
    run: &'a str,
    record: Standing,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_as: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// `verify --json`: one object per run.
pub fn json(rows: &[Checked]) -> serde_json::Result<String> {
    let rows: Vec<JsonRow> = rows
        .iter()
        .map(|r| JsonRow {
            run: &r.id,
            record: r.standing,
            key: match &r.seal {
                Seal::Signed { key } => Some(key),
                _ => None,
            },
            trusted_as: r.trusted_as.as_deref(),
            reason: match &r.seal {
                Seal::Tampered { reason } => Some(reason),
                _ => None,
            },
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({ "runs": rows }))
}
