//! Table and JSON output, formatted like the `vault` CLI's.

use serde_json::Value;

/// Prints `rows` as Vault's two-column `Key / Value` table.
pub fn print_table(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(3).max(3);
    println!("{:<width$}    Value", "Key");
    println!("{:<width$}    -----", "---");
    for (k, v) in rows {
        println!("{k:<width$}    {v}");
    }
}

pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A JSON scalar as the table shows it (`true`, `5`, text without quotes; `n/a` when absent).
pub fn scalar(value: Option<&Value>) -> String {
    match value {
        None => "n/a".to_owned(),
        Some(Value::Null) => "<nil>".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "n/a".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
