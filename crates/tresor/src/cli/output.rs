//! Table, JSON and YAML output, formatted like the `vault`/`bao` CLI's.
//!
//! The table layout is Vault's: rows of `key ♨ value` laid out in columns (widths from the
//! longest cell, four spaces of glue, empty cells shown as `n/a`), a `Key / Value` header with
//! dashes under it, values printed as Go's `%v` prints decoded JSON (`map[a:1]`, `[x y]`,
//! `<nil>`), and fields that look like durations (`ttl`, `*_ttl`, `period`, …) shown as
//! Go durations (`768h`, `1h30m`).

use std::process::ExitCode;

use serde_json::Value;

pub use super::yaml::yaml_text;

/// The column delimiter Vault's table code uses, chosen because no secret contains it.
const DELIM: char = '♨';

/// `-format`: what Vault accepts (`yml` is `yaml`), anything else is kept so that the error
/// comes where Vault reports it, at output time, after the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yaml,
    Invalid(String),
}

impl Format {
    pub fn parse(text: &str) -> Format {
        match text.to_ascii_lowercase().as_str() {
            "" | "table" => Format::Table,
            "json" => Format::Json,
            "yaml" | "yml" => Format::Yaml,
            _ => Format::Invalid(text.to_owned()),
        }
    }

    pub fn is_table(&self) -> bool {
        *self == Format::Table
    }
}

/// Prints `rows` as Vault's two-column `Key / Value` table.
pub fn print_table(rows: &[(&str, String)]) {
    let mut lines = vec![format!("Key{DELIM}Value")];
    lines.extend(rows.iter().map(|(k, v)| format!("{k}{DELIM}{v}")));
    println!("{}", table(&lines, DELIM));
}

pub fn print_json(value: &Value) {
    println!("{}", json_text(value));
}

/// Go's `json.MarshalIndent(v, "", "  ")`; serde_json escapes the same characters except that
/// Go also escapes `<`, `>` and `&` for HTML safety.
pub fn json_text(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Prints `value` in a structured format (JSON or YAML), as Vault's `OutputData` does for
/// anything that is not a table. Exit code 1 and Vault's message for an unknown format.
pub fn print_structured(format: &Format, value: &Value) -> ExitCode {
    match format {
        Format::Json | Format::Table => {
            print_json(value);
            ExitCode::SUCCESS
        }
        Format::Yaml => match yaml_text(value) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("Could not parse output: {e}");
                ExitCode::from(1)
            }
        },
        Format::Invalid(name) => invalid_format(name),
    }
}

pub fn invalid_format(name: &str) -> ExitCode {
    eprintln!("Invalid output format: {name}");
    ExitCode::from(1)
}

/// Vault's `columnize` layout: every line split at `delim`, cells trimmed, empty cells `n/a`,
/// each column but the last padded to its widest cell, four spaces between columns. The first
/// line is the header; a line of dashes as long as each header cell goes under it.
pub fn table(lines: &[String], delim: char) -> String {
    let mut rows: Vec<Vec<String>> = lines.iter().map(|l| cells(l, delim)).collect();
    if let Some(header) = rows.first() {
        let underline = header.iter().map(|h| "-".repeat(h.len())).collect();
        rows.insert(1, underline);
    }
    columns(&rows)
}

/// The same layout without the underline (Vault's `columnOutput`).
pub fn columns(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
                line.push_str("    ");
            }
        }
        out.push(line);
    }
    out.join("\n")
}

fn cells(line: &str, delim: char) -> Vec<String> {
    line.split(delim)
        .map(|c| {
            let c = c.trim();
            if c.is_empty() {
                "n/a".to_owned()
            } else {
                c.to_owned()
            }
        })
        .collect()
}

/// A JSON scalar as the older table code shows it (`true`, `5`, text without quotes; `n/a`
/// when absent or empty).
pub fn scalar(value: Option<&Value>) -> String {
    match value {
        None => "n/a".to_owned(),
        Some(other) => go_value(other),
    }
}

/// Go's `fmt.Sprintf("%v", v)` of a value decoded from JSON with `UseNumber`.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", map.get(*k).map(go_value).unwrap_or_default()))
                .collect();
            format!("map[{}]", inner.join(" "))
        }
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`; a missing list is `[]`.
pub fn go_quoted_list(value: Option<&Value>) -> String {
    let items: Vec<String> = value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    serde_json::to_string(&s).unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    format!("[{}]", items.join(" "))
}

/// Vault's `looksLikeDuration`: such fields are shown as durations in tables.
pub fn looks_like_duration(key: &str) -> bool {
    key == "period"
        || key.ends_with("_period")
        || key == "ttl"
        || key.ends_with("_ttl")
        || key == "duration"
        || key.ends_with("_duration")
        || key == "lease_max"
        || key == "ttl_max"
}

/// Vault's `humanDurationInt`: whole seconds as a Go duration with zero minutes and seconds
/// dropped (`768h`, `1h30m`, `0s`); anything that is not an integer is shown as it is.
pub fn human_duration_value(value: &Value) -> String {
    match value.as_i64() {
        Some(secs) => human_duration(secs),
        None => go_value(value),
    }
}

pub fn human_duration(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    format!(
        "{sign}{}",
        tresor_sdk::duration::format_human(secs.unsigned_abs())
    )
}

/// Prints a single value as Vault's `PrintRaw`: no trailing newline when stdout is not a
/// terminal, so `$(tresor … -field=x)` gets exactly the value.
pub fn print_raw(text: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        println!("{text}");
    } else {
        print!("{text}");
    }
}

/// Vault's `printWarnings`, before a table.
pub fn print_warnings(warnings: Option<&Value>) {
    let Some(list) = warnings.and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        return;
    };
    eprintln!("WARNING! The following warnings were returned from Tresor:\n");
    for w in list {
        eprintln!("{}", wrap_with_padding(&format!("* {}", go_value(w)), 2));
        eprintln!();
    }
}

/// Vault's `wrapAtLengthWithPadding`: words wrapped at 80 columns, continuation lines indented.
pub fn wrap_with_padding(text: &str, pad: usize) -> String {
    let width = 80usize.saturating_sub(pad);
    let mut out = String::new();
    let mut line_len = 0usize;
    for word in text.split(' ') {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            out.push_str(&" ".repeat(pad));
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

/// Vault's `wrapAtLength`.
pub fn wrap(text: &str) -> String {
    wrap_with_padding(text, 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(2_764_800), "768h");
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(3601), "1h1s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(120), "2m");
        assert_eq!(human_duration(-60), "-1m");
    }

    #[test]
    fn values_read_as_go_percent_v() {
        let v = json!({"b": [1, "x"], "a": null, "c": {}});
        assert_eq!(go_value(&v), "map[a:<nil> b:[1 x] c:map[]]");
        assert_eq!(
            go_quoted_list(Some(&json!(["default", "a"]))),
            r#"["default" "a"]"#
        );
        assert_eq!(go_quoted_list(None), "[]");
    }

    #[test]
    fn tables_align_like_columnize() {
        let lines = vec![
            format!("Key{DELIM}Value"),
            format!("token{DELIM}abc"),
            format!("entity_id{DELIM}"),
        ];
        assert_eq!(
            table(&lines, DELIM),
            "Key          Value\n---          -----\ntoken        abc\nentity_id    n/a"
        );
    }
}
