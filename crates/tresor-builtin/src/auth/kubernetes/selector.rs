//! `bound_service_account_namespace_selector`: a Kubernetes label selector (JSON or YAML) that
//! admits a service account's namespace by the namespace's labels, ORed with
//! `bound_service_account_namespaces`. Only `matchLabels` is supported (OpenBao refuses
//! `matchExpressions`). Label keys and values are validated only at login, as Kubernetes'
//! `LabelSelectorAsSelector` does there.
//!
//! JSON is read as Go's decoder reads it (the first value; trailing text ignored). YAML is the
//! block-mapping subset selectors are written in (`matchLabels:` with indented `key: value`
//! lines, or a flow mapping `{a: b}`); anything richer is refused as invalid.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A parsed selector: every label must be present on the namespace with this value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Selector {
    pub match_labels: BTreeMap<String, String>,
}

impl Selector {
    /// `Err(())` is OpenBao's `invalid "bound_service_account_namespace_selector" configured`.
    pub fn parse(text: &str) -> Result<Self, ()> {
        let trimmed = text.trim_start();
        let object = if trimmed.starts_with('{') {
            let mut values = serde_json::Deserializer::from_str(trimmed).into_iter::<Value>();
            match values.next() {
                Some(Ok(Value::Object(m))) => m,
                _ => return Err(()),
            }
        } else {
            yaml_mapping(text)?
        };
        if object.get("matchExpressions").is_some_and(|v| !v.is_null()) {
            return Err(());
        }
        let mut match_labels = BTreeMap::new();
        match object.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => String::new(),
                        _ => return Err(()),
                    };
                    match_labels.insert(k.clone(), v);
                }
            }
            Some(_) => return Err(()),
        }
        Ok(Self { match_labels })
    }

    /// Kubernetes' validation of the selector's keys and values (the error is its wording).
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in &self.match_labels {
            validate_key(key)?;
            if value.len() > 63 || !label_chars_ok(value, true) {
                return Err(format!(
                    "values[0][{key}]: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                ));
            }
        }
        Ok(())
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }

    /// `{a=b, c=d}` for denial details.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, or empty when `allow_empty`.
fn label_chars_ok(s: &str, allow_empty: bool) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    if s.is_empty() {
        return allow_empty;
    }
    s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let dns_ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !dns_ok {
            return Err(format!(
                "key: Invalid value: {key:?}: prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ));
        }
    }
    if name.is_empty() {
        return Err(format!(
            "key: Invalid value: {key:?}: name part must be non-empty"
        ));
    }
    if name.len() > 63 {
        return Err(format!(
            "key: Invalid value: {key:?}: name part must be no more than 63 characters"
        ));
    }
    if !label_chars_ok(name, false) {
        return Err(format!(
            "key: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ));
    }
    Ok(())
}

/// The YAML subset: a block mapping whose values are scalars, flow mappings/sequences, or one
/// level of indented block mapping (or a block sequence, kept as a non-null marker).
fn yaml_mapping(text: &str) -> Result<Map<String, Value>, ()> {
    let mut top = Map::new();
    let mut open: Option<(String, Map<String, Value>, bool)> = None; // key, children, is_seq
    let close = |top: &mut Map<String, Value>, open: Option<(String, Map<String, Value>, bool)>| {
        if let Some((key, children, is_seq)) = open {
            let value = if is_seq {
                Value::Array(vec![Value::Object(children)])
            } else if children.is_empty() {
                Value::Null
            } else {
                Value::Object(children)
            };
            top.insert(key, value);
        }
    };
    for raw in text.lines() {
        let line = strip_comment(raw);
        if line.trim().is_empty() || line.trim() == "---" {
            continue;
        }
        if line.contains('\t') {
            return Err(());
        }
        let indented = line.starts_with(' ');
        let content = line.trim();
        if indented {
            let Some((_, children, is_seq)) = open.as_mut() else {
                return Err(());
            };
            let item = match content.strip_prefix("- ") {
                Some(rest) => {
                    *is_seq = true;
                    rest
                }
                None if content == "-" => {
                    *is_seq = true;
                    continue;
                }
                None => content,
            };
            let (k, v) = split_pair(item)?;
            if v.is_empty() {
                return Err(());
            }
            children.insert(k, scalar_or_flow(v)?);
            continue;
        }
        close(&mut top, open.take());
        let (k, v) = split_pair(content)?;
        if v.is_empty() {
            open = Some((k, Map::new(), false));
        } else {
            top.insert(k, scalar_or_flow(v)?);
        }
    }
    close(&mut top, open.take());
    if top.is_empty() {
        return Err(());
    }
    Ok(top)
}

fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev_space => return line.get(..i).unwrap_or(line),
            None => {}
        }
        prev_space = c == ' ';
    }
    line
}

/// `key: value` (the value may be empty). Keys may be quoted.
fn split_pair(s: &str) -> Result<(String, &str), ()> {
    let (k, v) = if let Some(rest) = s.strip_prefix('"').or_else(|| s.strip_prefix('\'')) {
        let q = s.chars().next().ok_or(())?;
        let end = rest.find(q).ok_or(())?;
        let key = rest.get(..end).ok_or(())?;
        let after = rest.get(end + 1..).ok_or(())?.trim_start();
        let v = after.strip_prefix(':').ok_or(())?;
        (key.to_owned(), v)
    } else {
        let i = s
            .find(": ")
            .or_else(|| s.ends_with(':').then(|| s.len() - 1));
        let i = i.ok_or(())?;
        (
            s.get(..i).ok_or(())?.trim().to_owned(),
            s.get(i + 1..).ok_or(())?,
        )
    };
    if k.is_empty() {
        return Err(());
    }
    Ok((k, v.trim()))
}

fn scalar_or_flow(v: &str) -> Result<Value, ()> {
    if let Some(inner) = v.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        let mut m = Map::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, val) = split_pair(part)?;
            m.insert(k, scalar(val)?);
        }
        return Ok(Value::Object(m));
    }
    if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(scalar)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Value::Array(items));
    }
    if v.starts_with(['{', '[', '|', '>', '&', '*', '!']) {
        return Err(());
    }
    scalar(v)
}

fn scalar(v: &str) -> Result<Value, ()> {
    if let Some(inner) = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
    {
        return Ok(Value::String(inner.to_owned()));
    }
    if v.starts_with(['"', '\'', '[', '{']) {
        return Err(());
    }
    Ok(match v {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        other => Value::String(other.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn json_and_yaml_selectors_read_alike() {
        let want = Selector {
            match_labels: labels(&[("stage", "prod"), ("team", "a")]),
        };
        for text in [
            r#"{"matchLabels":{"stage":"prod","team":"a"}}"#,
            r#"  {"matchLabels":{"stage":"prod","team":"a"}} trailing text"#,
            "matchLabels:\n  stage: prod\n  team: a\n",
            "# comment\nmatchLabels:\n  stage: \"prod\"   # inline\n  'team': a\n",
            "matchLabels: {stage: prod, team: a}",
            "---\nmatchLabels:\n    stage: prod\n    team: a",
        ] {
            assert_eq!(Selector::parse(text), Ok(want.clone()), "{text}");
        }
    }

    #[test]
    fn selectors_openbao_refuses_are_refused() {
        for text in [
            "matchExpressions: []",
            "matchExpressions:\n- key: a\n  operator: In",
            r#"{"matchExpressions":[]}"#,
            "[1,2]",
            "hello",
            "a: [unclosed",
            r#"{"matchLabels": "x"}"#,
            "{matchLabels: {a: b}}",
        ] {
            assert_eq!(Selector::parse(text), Err(()), "{text}");
        }
        // Accepted as OpenBao accepts them: unknown keys, numbers, an empty selector.
        assert!(Selector::parse(r#"{"other":1}"#).is_ok());
        assert_eq!(
            Selector::parse(r#"{"matchLabels":{"a":1}}"#)
                .unwrap()
                .match_labels["a"],
            "1"
        );
        assert!(Selector::parse("{}").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn matching_needs_every_label() {
        let s = Selector::parse("matchLabels:\n  stage: prod\n  team: a").unwrap();
        assert!(s.matches(&labels(&[("stage", "prod"), ("team", "a"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("stage", "prod")])));
        assert!(!s.matches(&labels(&[("stage", "dev"), ("team", "a")])));
        assert_eq!(s.describe(), "{stage=prod, team=a}");
    }

    #[test]
    fn label_keys_are_validated_with_kubernetes_words() {
        let s = Selector::parse(r#"{"matchLabels":{"bad key!":"x"}}"#).unwrap();
        assert_eq!(
            s.validate().unwrap_err(),
            "key: Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(
            Selector::parse(r#"{"matchLabels":{"example.com/team":"a-b_c.d"}}"#)
                .unwrap()
                .validate()
                .is_ok()
        );
        assert!(
            Selector::parse(r#"{"matchLabels":{"Example.com/team":"a"}}"#)
                .unwrap()
                .validate()
                .is_err()
        );
        assert!(
            Selector::parse(r#"{"matchLabels":{"team":"-a"}}"#)
                .unwrap()
                .validate()
                .is_err()
        );
    }
}
