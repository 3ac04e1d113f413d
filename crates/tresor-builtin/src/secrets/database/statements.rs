//! SQL statements as roles configure them: splitting, `{{…}}` substitution and quoting.
//!
//! A role's statements are a list of strings, each of which may hold several statements
//! separated by `;` (Vault splits them the same way). Splitting here understands what
//! PostgreSQL does: a `;` inside a quoted literal, a quoted identifier, a dollar-quoted body
//! (`DO $$ … ; … $$`) or a comment does not end a statement, so a `CREATE FUNCTION` body
//! survives. The statements of one operation are then sent as a single simple-query message,
//! which PostgreSQL runs as one implicit transaction: all of them take effect or none.

/// Splits `input` at the `;` that end statements, dropping empty ones and surrounding
/// whitespace. Quotes that are never closed swallow the rest (PostgreSQL would then report
/// the syntax error, not us).
pub(crate) fn split(input: &str) -> Vec<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i).copied() {
            Some(b'\'') => i = skip_quoted(bytes, i, b'\''),
            Some(b'"') => i = skip_quoted(bytes, i, b'"'),
            Some(b'-') if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes
                    .iter()
                    .skip(i)
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| i + p + 1);
            }
            Some(b'/') if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            Some(b'$') => i = skip_dollar_quoted(input, i),
            Some(b';') => {
                push_trimmed(&mut out, input.get(start..i).unwrap_or(""));
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push_trimmed(&mut out, input.get(start..).unwrap_or(""));
    out
}

fn push_trimmed(out: &mut Vec<String>, statement: &str) {
    let statement = statement.trim();
    if !statement.is_empty() {
        out.push(statement.to_owned());
    }
}

/// The index just past a literal or identifier opened at `open` by `quote`; a doubled quote
/// is an escaped one.
fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while let Some(&b) = bytes.get(i) {
        if b == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Block comments nest in PostgreSQL.
fn skip_block_comment(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'/') && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes.get(i) == Some(&b'*') && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// `$tag$ … $tag$` (the tag may be empty). A `$` that does not open a tag (`$1`) is skipped
/// alone.
fn skip_dollar_quoted(input: &str, open: usize) -> usize {
    let rest = input.get(open + 1..).unwrap_or("");
    let tag_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let tag_is_valid = rest.as_bytes().get(tag_len) == Some(&b'$')
        && !rest.as_bytes().first().is_some_and(u8::is_ascii_digit);
    if !tag_is_valid {
        return open + 1;
    }
    let delimiter = input.get(open..open + tag_len + 2).unwrap_or("$$");
    let body_start = open + tag_len + 2;
    match input.get(body_start..).and_then(|b| b.find(delimiter)) {
        Some(end) => body_start + end + delimiter.len(),
        None => input.len(),
    }
}

/// Replaces every `{{key}}` of `template` with its value, as Vault's `QueryHelper` does
/// (exact spelling, no spaces inside the braces).
pub(crate) fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

/// Every statement of `templates` (each possibly holding several), rendered and split.
pub(crate) fn render_all(templates: &[String], values: &[(&str, &str)]) -> Vec<String> {
    templates
        .iter()
        .flat_map(|t| split(&render(t, values)))
        .collect()
}

/// One simple-query message holding every statement: a single round trip, one transaction.
pub(crate) fn batch(statements: &[String]) -> String {
    let mut sql = String::new();
    for s in statements {
        sql.push_str(s);
        sql.push_str(";\n");
    }
    sql
}

/// A quoted SQL identifier: `"` doubled.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted SQL string literal: `'` doubled. Values that reach it never hold a backslash
/// (usernames are checked by [`check_name`], passwords come from a fixed alphabet or are
/// SCRAM verifiers), so the result is the same whatever `standard_conforming_strings` says.
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Whether a username may be substituted into statements: role statements put `{{name}}`
/// inside quotes they wrote themselves, so a quote, backslash, NUL or control character in
/// it could break out. PostgreSQL also limits names to 63 bytes.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("username is empty".to_owned());
    }
    if name.len() > 63 {
        return Err("username is longer than 63 bytes".to_owned());
    }
    if name
        .chars()
        .any(|c| c == '"' || c == '\'' || c == '\\' || c.is_control())
    {
        return Err("username contains a quote, a backslash or a control character".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_semicolons_outside_quotes_comments_and_dollar_bodies() {
        assert_eq!(
            split("CREATE ROLE \"a;b\" PASSWORD 'x;y'; GRANT r TO \"a;b\";"),
            vec!["CREATE ROLE \"a;b\" PASSWORD 'x;y'", "GRANT r TO \"a;b\""]
        );
        assert_eq!(
            split("DO $$BEGIN PERFORM 1; PERFORM 2; END$$; SELECT 1"),
            vec!["DO $$BEGIN PERFORM 1; PERFORM 2; END$$", "SELECT 1"]
        );
        assert_eq!(
            split("DO $fn$ SELECT '$$;'; $fn$;SELECT $1"),
            vec!["DO $fn$ SELECT '$$;'; $fn$", "SELECT $1"]
        );
        assert_eq!(
            split("SELECT 1; -- a; comment\nSELECT 2; /* x; /* nested; */ y; */ SELECT 3"),
            vec![
                "SELECT 1",
                "-- a; comment\nSELECT 2",
                "/* x; /* nested; */ y; */ SELECT 3"
            ]
        );
        assert_eq!(split("SELECT 'it''s; fine'"), vec!["SELECT 'it''s; fine'"]);
        assert_eq!(split(" ; ;\n"), Vec::<String>::new());
        assert_eq!(
            split("SELECT 'open; never closed"),
            vec!["SELECT 'open; never closed"]
        );
    }

    #[test]
    fn renders_exact_placeholders_only() {
        let values = [("name", "v-x"), ("password", "p'w"), ("expiration", "2030")];
        assert_eq!(
            render(
                "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' {{ name }}",
                &values
            ),
            "CREATE ROLE \"v-x\" PASSWORD 'p'w' VALID UNTIL '2030' {{ name }}"
        );
        assert_eq!(
            render_all(
                &["A {{name}}; B {{name}}".to_owned(), "C".to_owned()],
                &values
            ),
            vec!["A v-x", "B v-x", "C"]
        );
    }

    #[test]
    fn quoting_doubles_quotes_and_names_are_checked() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("a'b"), "'a''b'");
        assert!(check_name("v-token-app-AbC123-1700000000").is_ok());
        for bad in ["", "a\"b", "a'b", "a\\b", "a\nb", "a\0b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
