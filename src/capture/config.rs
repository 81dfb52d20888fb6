//! Config files: kept byte for byte (as blobs) and parsed by extension, or by content when the
//! extension says nothing, into a flat parameter map (`optimizer.lr` = 0.01). YAML goes through
//! serde_norway, the maintained fork of the archived serde_yaml (docs/store.md says why).
//! A file that fails to parse is still kept; the caller warns with file and line.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// A config file's format, told by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.yaml`, `.yml`.
    Yaml,
    /// `.json`.
    Json,
    /// `.toml`.
    Toml,
}

impl Format {
    /// The format of a path, by its extension; None when it has none of them.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Toml => "TOML",
        }
    }
}

/// Whether `key` is one a stage declared it depends on: a selected key or under one.
pub fn selected(key: &str, keys: &[String]) -> bool {
    keys.iter().any(|k| {
        key == k
            || (key.len() > k.len()
                && key.starts_with(k.as_str())
                && key.as_bytes()[k.len()] == b'.')
    })
}

/// Parse config bytes into flat parameters. The error says which format failed and where.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, Value>, String> {
    parse_bounded(path, bytes, usize::MAX, &mut |_| {}).map(|(params, _)| params)
}

/// [`parse`], keeping only the first `most` parameters in key order: the others are handed
/// to `dropped` in batches as they are found, never all held at once (a config of 1,500,000
/// values, a vocabulary, held them three times over: 660 MB for 12 MB). Also how many there
/// were in all.
pub fn parse_bounded(
    path: &Path,
    bytes: &[u8],
    most: usize,
    dropped: &mut dyn FnMut(Vec<(String, Value)>),
) -> Result<(BTreeMap<String, Value>, usize), String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 text (byte {})", e.valid_up_to()))?;
    let value = match Format::from_path(path) {
        Some(format) => parse_as(format, text)?,
        // No telling extension: JSON, then TOML, then YAML (report the YAML error), then
        // Java properties and Spark's `spark-defaults.conf`, which YAML reads as one string
        // (or refuses, a `key: value` among `key=value` lines).
        None => match parse_as(Format::Json, text)
            .or_else(|_| parse_as(Format::Toml, text))
            .or_else(|_| parse_as(Format::Yaml, text))
        {
            Ok(Value::String(_)) | Err(_) if properties(text).is_some() => {
                let pairs = properties(text).unwrap_or_default();
                let n = pairs.len();
                return Ok((pairs, n));
            }
            other => other?,
        },
    };
    const BATCH: usize = 10_000;
    let (mut out, mut left, mut batch) = (BTreeMap::new(), 0usize, Vec::new());
    flatten("", value, &mut |key, value| {
        out.insert(key, value);
        if out.len() > most
            && let Some(last) = out.pop_last()
        {
            left += 1;
            batch.push(last);
            if batch.len() == BATCH {
                dropped(std::mem::take(&mut batch));
            }
        }
    });
    if !batch.is_empty() {
        dropped(batch);
    }
    let total = out.len() + left;
    Ok((out, total))
}

/// The pairs of a properties file (`key=value`, `key: value`, `key value`; `#` and `!`
/// comments), or None when a line is none of those.
fn properties(text: &str) -> Option<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', '!']) {
            continue;
        }
        let end = line.find(|c: char| c == '=' || c == ':' || c.is_whitespace())?;
        let key = &line[..end];
        if key.is_empty() || !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let rest = line[end..].trim_start();
        let value = match rest.strip_prefix(['=', ':']) {
            Some(value) => value.trim_start(),
            // `key value` only with a dotted key (`spark.master yarn`), not a sentence.
            None if key.contains('.') => rest,
            None => return None,
        };
        out.insert(key.to_string(), param_value(value));
    }
    (!out.is_empty()).then_some(out)
}

fn parse_as(format: Format, text: &str) -> Result<Value, String> {
    let fail = |line: Option<usize>, msg: String| match line {
        Some(line) => format!("invalid {} at line {line}: {msg}", format.name()),
        None => format!("invalid {}: {msg}", format.name()),
    };
    match format {
        Format::Json => serde_json::from_str::<Value>(text)
            .map_err(|e| fail(Some(e.line()), strip_position(&e.to_string()))),
        Format::Toml => match toml::from_str::<toml::Value>(text) {
            Ok(v) => Ok(toml_to_json(v)),
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
                Err(fail(line, e.message().to_string()))
            }
        },
        Format::Yaml => match serde_norway::from_str::<serde_norway::Value>(text) {
            Ok(v) => Ok(yaml_to_json(v)),
            Err(e) => Err(fail(
                e.location().map(|l| l.line()),
                strip_position(&e.to_string()),
            )),
        },
    }
}

/// serde messages end with " at line L column C"; the line is reported separately.
fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

fn yaml_to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(n.to_string()), Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (yaml_key(k), yaml_to_json(v)))
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

fn yaml_key(k: serde_norway::Value) -> String {
    match k {
        serde_norway::Value::String(s) => s,
        other => match yaml_to_json(other) {
            Value::String(s) => s,
            v => v.to_string(),
        },
    }
}

/// Nested maps join keys with `.`, lists with their index; empty containers stay as values.
fn flatten(prefix: &str, value: Value, out: &mut dyn FnMut(String, Value)) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&key(&k), v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.into_iter().enumerate() {
                flatten(&key(&i.to_string()), v, out);
            }
        }
        other => {
            let k = if prefix.is_empty() {
                "value".to_string()
            } else {
                prefix.to_string()
            };
            out(k, other);
        }
    }
}

/// A `--param KEY=VALUE` value: a JSON scalar when it reads as one (0.01, true), else a string.
pub fn param_value(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => v,
        _ => Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_flatten_alike() {
        let yaml = "optimizer:\n  lr: 0.01\n  name: adam\nlayers: [64, 32]\nseed: 3\n";
        let json = r#"{"optimizer": {"lr": 0.01, "name": "adam"}, "layers": [64, 32], "seed": 3}"#;
        let toml = "layers = [64, 32]\nseed = 3\n[optimizer]\nlr = 0.01\nname = \"adam\"\n";
        let want: BTreeMap<String, Value> = [
            ("layers.0", json!(64)),
            ("layers.1", json!(32)),
            ("optimizer.lr", json!(0.01)),
            ("optimizer.name", json!("adam")),
            ("seed", json!(3)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(
            parse(Path::new("c.yaml"), yaml.as_bytes()).expect("yaml"),
            want
        );
        assert_eq!(
            parse(Path::new("c.json"), json.as_bytes()).expect("json"),
            want
        );
        assert_eq!(
            parse(Path::new("c.toml"), toml.as_bytes()).expect("toml"),
            want
        );
        assert_eq!(
            parse(Path::new("c.cfg"), toml.as_bytes()).expect("sniffed"),
            want
        );
    }

    /// Spark's `spark-defaults.conf` and Java properties: one param per line, not the whole
    /// file as one string.
    #[test]
    fn properties_files_give_one_param_per_line() {
        let text = "# spark\nspark.master                     yarn\nspark.executor.cores\t4\n\
                    db.url=jdbc:pg://h/db\nname: demo\n";
        let params = parse(Path::new("spark-defaults.conf"), text.as_bytes()).expect("parse");
        assert_eq!(params["spark.master"], "yarn");
        assert_eq!(params["spark.executor.cores"], 4);
        assert_eq!(params["db.url"], "jdbc:pg://h/db");
        assert_eq!(params["name"], "demo");
        assert_eq!(params.len(), 4, "{params:?}");
        // A plain sentence is no properties file: kept whole, as before.
        let params = parse(Path::new("notes"), b"just a sentence here").expect("parse");
        assert_eq!(params["value"], "just a sentence here");
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse(Path::new("c.yaml"), b"a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.starts_with("invalid YAML at line"), "{err}");
        let err = parse(Path::new("c.json"), b"{\n\"a\": 1,\n}").unwrap_err();
        assert!(err.starts_with("invalid JSON at line 3"), "{err}");
        let err = parse(Path::new("c.toml"), b"a = 1\nb = \n").unwrap_err();
        assert!(err.starts_with("invalid TOML at line 2"), "{err}");
        let err = parse(Path::new("c.yaml"), &[0xff, 0xfe, 0]).unwrap_err();
        assert!(err.starts_with("not UTF-8"), "{err}");
    }

    #[test]
    fn param_values() {
        assert_eq!(param_value("0.01"), json!(0.01));
        assert_eq!(param_value("true"), json!(true));
        assert_eq!(param_value("adam"), json!("adam"));
        assert_eq!(param_value("[1]"), json!("[1]"));
        // Exactly the number written, to the last bit (serde_json's default parser is off
        // by one unit in the last place for some: `--where` then missed them).
        for (text, want) in [
            ("0.9090909090909091", 0.909_090_909_090_909_1_f64),
            ("123456789.12345679", 123_456_789.123_456_79_f64),
        ] {
            assert_eq!(
                param_value(text).as_f64().map(f64::to_bits),
                Some(want.to_bits()),
                "{text}"
            );
        }
    }
}
