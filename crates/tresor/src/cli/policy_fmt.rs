//! `tresor policy fmt FILE`: check a policy (with the server's own parser) and rewrite the
//! file in the layout Vault's HCL printer gives it: two-space indentation, `key = value`,
//! arrays on one line with `", "`, objects and blocks spread over lines, a blank line between
//! top-level blocks and around multi-line attributes, comments before an item kept.

use std::fmt::Write as _;
use std::process::ExitCode;

use hcl_edit::Decorate;
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::{Body, Structure};

use super::flags::{check_count, usage};
use super::policy::io_reason;

pub fn run(args: &[String]) -> ExitCode {
    if let Err(code) = check_count(args, 1, 1) {
        return code;
    }
    let path = expand_home(args.concat().trim());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return usage(format!(
                "Error reading source file: open {path}: {}",
                io_reason(&e)
            ));
        }
    };
    if let Err(e) = tresor_core::policy::Policy::parse("fmt", &text) {
        return usage(format!("failed to parse policy: {e}"));
    }
    let formatted = match format_policy(&text) {
        Ok(f) => f,
        Err(e) => return usage(format!("Error printing result: {e}")),
    };
    if let Err(e) = std::fs::write(&path, formatted) {
        return usage(format!("Error writing result: {e}"));
    }
    println!("Success! Formatted policy: {path}");
    ExitCode::SUCCESS
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if !home.is_empty() => format!("{home}/{rest}"),
        _ => path.to_owned(),
    }
}

/// The canonical layout of an HCL document (ends with one newline).
pub fn format_policy(text: &str) -> Result<String, String> {
    let body = hcl_edit::parser::parse_body(text).map_err(|e| e.to_string())?;
    let mut out = String::new();
    write_body(&mut out, &body, 0, true);
    let trimmed = out.trim_end();
    Ok(format!("{trimmed}\n"))
}

/// Comment lines from an item's leading decoration, re-indented.
fn comments(structure: &Structure) -> Vec<String> {
    let prefix = match structure {
        Structure::Attribute(a) => a.decor().prefix().map(|p| p.to_string()),
        Structure::Block(b) => b.decor().prefix().map(|p| p.to_string()),
    };
    prefix
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('#') || l.starts_with("//") || l.starts_with("/*"))
        .map(str::to_owned)
        .collect()
}

fn write_body(out: &mut String, body: &Body, depth: usize, top: bool) {
    let indent = "  ".repeat(depth);
    let mut previous_multiline: Option<bool> = None;
    for structure in body.iter() {
        let mut item = String::new();
        match structure {
            Structure::Attribute(attr) => {
                let _ = write!(
                    item,
                    "{indent}{} = {}",
                    attr.key.value().as_str(),
                    expr(&attr.value, depth)
                );
            }
            Structure::Block(block) => {
                let mut head = block.ident.value().as_str().to_owned();
                for label in &block.labels {
                    head.push(' ');
                    head.push_str(&label_text(label));
                }
                let _ = writeln!(item, "{indent}{head} {{");
                write_body(&mut item, &block.body, depth + 1, false);
                let _ = write!(item, "{indent}}}");
            }
        }
        let multiline = item.contains('\n');
        // Blocks at the top are always apart; inside, a multi-line item is set off from its
        // neighbours by a blank line.
        if let Some(prev) = previous_multiline
            && (top || multiline || prev)
        {
            out.push('\n');
        }
        for c in comments(structure) {
            let _ = writeln!(out, "{indent}{c}");
        }
        out.push_str(&item);
        out.push('\n');
        previous_multiline = Some(multiline);
    }
}

fn label_text(label: &hcl_edit::structure::BlockLabel) -> String {
    match label {
        hcl_edit::structure::BlockLabel::String(s) => quote(s.value()),
        hcl_edit::structure::BlockLabel::Ident(i) => i.value().as_str().to_owned(),
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn expr(e: &Expression, depth: usize) -> String {
    match e {
        Expression::String(s) => quote(s.value()),
        Expression::Array(a) => {
            let items: Vec<String> = a.iter().map(|i| expr(i, depth)).collect();
            format!("[{}]", items.join(", "))
        }
        Expression::Object(o) => {
            if o.is_empty() {
                return "{}".to_owned();
            }
            let inner = "  ".repeat(depth + 1);
            let mut text = String::from("{\n");
            for (key, value) in o.iter() {
                let k = match key {
                    ObjectKey::Ident(i) => i.value().as_str().to_owned(),
                    ObjectKey::Expression(x) => expr(x, depth + 1),
                };
                let _ = writeln!(text, "{inner}{k} = {}", expr(value.expr(), depth + 1));
            }
            let _ = write!(text, "{}}}", "  ".repeat(depth));
            text
        }
        other => {
            let mut plain = other.clone();
            plain.decor_mut().clear();
            plain.to_string().trim().to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn policies_come_out_in_vaults_layout() {
        let input = "# comment\npath \"secret/*\"   {\ncapabilities=[\"read\",\"list\"]\n    allowed_parameters = {\n\"a\" = []\n}\n}\n\npath \"sys/x\" { capabilities = [\"deny\"] }\n";
        assert_eq!(
            format_policy(input).unwrap(),
            "# comment\npath \"secret/*\" {\n  capabilities = [\"read\", \"list\"]\n\n  allowed_parameters = {\n    \"a\" = []\n  }\n}\n\npath \"sys/x\" {\n  capabilities = [\"deny\"]\n}\n"
        );
    }
}
