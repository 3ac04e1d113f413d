//! `-format=yaml` as bao prints it: `sigs.k8s.io/yaml` (go-yaml v2 over the JSON form).
//!
//! serde-saphyr writes the document (block style, sorted keys, two-space indentation,
//! sequences flush with their key); a few passes then apply what Go's emitter does
//! differently: `|2` on blocks that start with a break or space, single quotes (or none)
//! where quoting is only needed for syntax, and long plain strings folded at column 80.

use serde_json::{Map, Value};

/// YAML as `sigs.k8s.io/yaml` writes it (keys sorted, block style, two-space indentation,
/// sequences not indented under their key), without the trailing newline, as bao prints it.
pub fn yaml_text(value: &Value) -> Result<String, String> {
    let sorted = sort_keys(value);
    let mut options = serde_saphyr::SerializerOptions::default();
    // Go keeps a long one-line string a plain scalar (folding it only at spaces past column
    // 80); serde-saphyr would turn it into a `>` block. Lease ids and tokens are such strings.
    options.folded_wrap_chars = usize::MAX;
    serde_saphyr::to_string_with_options(&sorted, options)
        .map(|text| fold_long_plain(&single_quote_syntax_only(&block_indent_hints(text.trim()))))
        .map_err(|e| e.to_string())
}

/// Go's emitter double-quotes a string only when, unquoted, it would read as another type
/// (`"true"`, `"5"`, `""`, a timestamp) or needs escapes; a string quoted for YAML syntax
/// alone (`'a: b'`, `'#x'`, `' lead'`) gets single quotes. serde-saphyr double-quotes both;
/// this turns the second kind into Go's single quotes, on keys and values alike.
fn single_quote_syntax_only(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            let mut at = indent;
            while line.get(at..).is_some_and(|r| r.starts_with("- ")) {
                at += 2;
            }
            let (head, rest) = line.split_at(at.min(line.len()));
            let mut out = head.to_owned();
            let mut rest = rest;
            // A quoted key, then the value after `: `.
            if rest.starts_with('"')
                && let Some(end) = quoted_end(rest)
                && rest[end..].starts_with(':')
            {
                out.push_str(&requote(&rest[..end]));
                rest = &rest[end..];
            }
            match rest
                .find(": \"")
                .or_else(|| rest.starts_with('"').then_some(0))
            {
                Some(pos) => {
                    let start = if pos == 0 && rest.starts_with('"') {
                        0
                    } else {
                        pos + 2
                    };
                    let value = &rest[start..];
                    match quoted_end(value) {
                        Some(end) if end == value.len() => {
                            out.push_str(&rest[..start]);
                            out.push_str(&requote(value));
                        }
                        _ => out.push_str(rest),
                    }
                }
                None => out.push_str(rest),
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a double-quoted scalar at the start of `s` ends (one past its closing quote).
fn quoted_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// `"text"` as Go writes it: kept double-quoted when it needs escapes or would read as
/// another type, plain when YAML syntax allows, single-quoted otherwise.
fn requote(quoted: &str) -> String {
    let raw = &quoted[1..quoted.len() - 1];
    // `\"` is the only escape Go's single quotes do without.
    let inner = raw.replace("\\\"", "\"");
    if inner.contains('\\') || resolves_to_non_string(&inner) {
        return quoted.to_owned();
    }
    if plain_allowed(&inner) {
        return inner;
    }
    format!("'{}'", inner.replace('\'', "''"))
}

/// libyaml's test for a plain scalar in block context: printable, no leading or trailing
/// space, no indicator first (`-`, `?`, `:` only when followed by a non-space), no `: ` or
/// ` #` inside, no trailing `:`.
fn plain_allowed(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let second = s.chars().nth(1);
    let first_ok = match first {
        '-' | '?' | ':' => second.is_some_and(|c| c != ' '),
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' | ' ' => false,
        _ => true,
    };
    first_ok
        && !s.ends_with(' ')
        && !s.ends_with(':')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(|c| c.is_control() || c == '\u{feff}')
}

/// Go's emitter folds a plain or single-quoted scalar at a space once the line is past column
/// 80 (never at the scalar's first or last character, nor next to another space), continuing
/// two spaces deeper than the line's key; serde-saphyr keeps it on one line.
fn fold_long_plain(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let indent = line.len() - line.trim_start().len();
        let mut at = indent;
        while line.get(at..).is_some_and(|r| r.starts_with("- ")) {
            at += 2;
        }
        let value_at = match line[at..].find(": ") {
            Some(p) if !line[at..].starts_with(['"', '\'']) => at + p + 2,
            _ => at,
        };
        let value = &line[value_at..];
        let quoted = value.len() > 1 && value.starts_with('\'') && value.ends_with('\'');
        let plain = !value.starts_with(['"', '\'', '|', '>', '[', '{']);
        if line.chars().count() <= 80 || !(plain || quoted) || !value.contains(' ') {
            out.push(line.to_owned());
            continue;
        }
        let chars: Vec<char> = value.chars().collect();
        // Positions that may not break: the quotes and the first and last character inside.
        let (first, last) = if quoted {
            (1, chars.len().saturating_sub(2))
        } else {
            (0, chars.len().saturating_sub(1))
        };
        let continuation = " ".repeat(indent + 2);
        let mut current = line[..value_at].to_owned();
        let mut column = current.chars().count();
        for (i, c) in chars.iter().enumerate() {
            let breakable = *c == ' '
                && i > first
                && i < last
                && chars.get(i + 1) != Some(&' ')
                && chars.get(i - 1) != Some(&' ');
            if breakable && column > 80 {
                out.push(std::mem::take(&mut current));
                current.push_str(&continuation);
                column = continuation.len();
                continue;
            }
            current.push(*c);
            column += 1;
        }
        out.push(current);
    }
    out.join("\n")
}

/// Whether go-yaml (v2, YAML 1.1 rules) reads the plain scalar `s` as something other than a
/// string: null, a boolean (`y`, `on`, …), a number (incl. hex, octal, binary, `.inf`,
/// sexagesimal), a timestamp or the merge key.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits =
        |t: &str, radix: u32| !t.is_empty() && t.chars().all(|c| c == '_' || c.is_digit(radix));
    let number = digits(unsigned, 10)
        || unsigned.strip_prefix("0x").is_some_and(|t| digits(t, 16))
        || unsigned.strip_prefix("0o").is_some_and(|t| digits(t, 8))
        || unsigned.strip_prefix("0b").is_some_and(|t| digits(t, 2))
        || is_float(unsigned)
        || is_sexagesimal(unsigned);
    number || is_timestamp(s)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => all_digits(frac),
        Some((int, frac)) => all_digits(int) && (frac.is_empty() || all_digits(frac)),
        None => all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| all_digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// `[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?`
fn is_sexagesimal(s: &str) -> bool {
    let main = s.split_once('.').map_or(s, |(m, _)| m);
    let mut parts = main.split(':');
    let first_ok = parts.next().is_some_and(|p| {
        p.starts_with(|c: char| c.is_ascii_digit())
            && p.chars().all(|c| c == '_' || c.is_ascii_digit())
    });
    let rest: Vec<&str> = parts.collect();
    first_ok
        && !rest.is_empty()
        && rest.iter().all(|p| {
            (1..=2).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u8>().is_ok_and(|n| n < 60)
        })
}

/// A timestamp in one of go-yaml's layouts: `2006-1-2`, `2006-1-2 15:4:5.999999999` (no
/// zone), or `2006-1-2T15:4:5.999999999Z07:00` (`T` or `t`, zone `Z` or `±hh:mm` required).
fn is_timestamp(s: &str) -> bool {
    let numeric = |p: &str, lens: std::ops::RangeInclusive<usize>| {
        lens.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    };
    let date_end = s.find(['T', 't', ' ']).unwrap_or(s.len());
    let date: Vec<&str> = s[..date_end].split('-').collect();
    let date_ok = matches!(date.as_slice(), [y, m, d]
        if numeric(y, 4..=4) && numeric(m, 1..=2) && numeric(d, 1..=2));
    if !date_ok {
        return false;
    }
    let Some(sep) = s[date_end..].chars().next() else {
        return true;
    };
    let rest = &s[date_end + sep.len_utf8()..];
    let clock_ok = |c: &str| {
        let (hms, frac) = c.split_once('.').unwrap_or((c, "0"));
        let parts: Vec<&str> = hms.split(':').collect();
        parts.len() == 3 && parts.iter().all(|p| numeric(p, 1..=2)) && numeric(frac, 1..=9)
    };
    if sep == ' ' {
        return clock_ok(rest);
    }
    let (clock, zone) = match rest.find(['Z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => return false,
    };
    let zone_ok = zone == "Z"
        || zone
            .strip_prefix(['+', '-'])
            .and_then(|z| z.split_once(':'))
            .is_some_and(|(h, m)| numeric(h, 2..=2) && numeric(m, 2..=2));
    clock_ok(clock) && zone_ok
}

/// libyaml (Go's emitter) writes an explicit indentation indicator (`|2`, `|2-`) on a literal
/// block whose text starts with a line break or a space; serde-saphyr leaves it to the reader
/// to detect. Both parse alike; this adds the indicator so the text is byte for byte bao's.
/// Blocks are indented two spaces past their header line, so a first line that is empty or
/// indented further shows such a start.
fn block_indent_hints(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end();
        let header = ["|", "|-", "|+"].iter().find(|h| {
            trimmed.ends_with(&format!(": {h}")) || trimmed.trim_start() == format!("- {h}")
        });
        let Some(header) = header else {
            out.push((*line).to_owned());
            continue;
        };
        let indent = line.len() - line.trim_start().len();
        let next = lines.get(i + 1).copied().unwrap_or("");
        let next_indent = next.len() - next.trim_start().len();
        let leading_break_or_space = next.trim().is_empty() || next_indent > indent + 2;
        if leading_break_or_space {
            let head = &trimmed[..trimmed.len() - header.len()];
            out.push(format!("{head}|2{}", &header[1..]));
        } else {
            out.push((*line).to_owned());
        }
    }
    out.join("\n")
}

/// serde_json's map keeps keys sorted already, unless `preserve_order` is on somewhere in the
/// dependency graph; sorting here keeps the YAML output stable either way.
fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(v) = map.get(k) {
                    out.insert(k.clone(), sort_keys(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_blocks_starting_with_a_break_get_an_indentation_indicator() {
        let v = json!({"policy": "\n# a\npath \"x\" {\n  capabilities = []\n}\n", "p2": "a\nb"});
        assert_eq!(
            yaml_text(&v).unwrap(),
            "p2: |-\n  a\n  b\npolicy: |2\n\n  # a\n  path \"x\" {\n    capabilities = []\n  }"
        );
    }

    #[test]
    fn yaml_single_quotes_what_only_syntax_forces_to_quote() {
        let v = json!({"colon": "a: b", "hash": "#x", "space": " lead", "star": "*x",
                       "t": "true", "n": "123", "y": "y", "tab": "a\tb", "q": "it's: x",
                       "ts": "2026-12-06T12:06:18.683791807Z", "d": "2026-12-06", "f": "1.5e3",
                       "hex": "0x1F", "sexa": "1:20", "#k": ["- x", "null", ""]});
        assert_eq!(
            yaml_text(&v).unwrap(),
            "'#k':\n- '- x'\n- \"null\"\n- \"\"\ncolon: 'a: b'\nd: \"2026-12-06\"\nf: \"1.5e3\"\nhash: '#x'\nhex: \"0x1F\"\n\"n\": \"123\"\nq: 'it''s: x'\nsexa: \"1:20\"\nspace: ' lead'\nstar: '*x'\nt: \"true\"\ntab: \"a\\tb\"\nts: \"2026-12-06T12:06:18.683791807Z\"\n\"y\": \"y\""
        );
        assert!(!resolves_to_non_string("secret/data/*"));
        assert!(!resolves_to_non_string("1.2.3"));
        assert!(resolves_to_non_string("-1"));
        assert!(resolves_to_non_string("2026-12-06T12:06:18.5+01:00"));
        assert!(resolves_to_non_string("2001-12-14 21:59:43.10"));
        assert!(!resolves_to_non_string("2001-12-14 21:59:43.10 -5"));
        assert!(!resolves_to_non_string("2026-12-06T12:06:18"));
    }

    #[test]
    fn yaml_quotes_what_go_yaml_quotes() {
        let long = format!("auth/token/create/h{}", "0123456789".repeat(9));
        let v = json!({"lease_id": "", "policies": ["default"], "t": "2026-12-06T12:06:18Z",
                       "n": 5, "x": null, "m": {}, "id": long});
        assert_eq!(
            yaml_text(&v).unwrap(),
            format!(
                "id: {long}\nlease_id: \"\"\nm: {{}}\n\"n\": 5\npolicies:\n- default\nt: \"2026-12-06T12:06:18Z\"\nx: null"
            )
        );
    }
}
