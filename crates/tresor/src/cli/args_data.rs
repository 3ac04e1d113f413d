//! The `key=value` arguments of `tresor write`, read as Vault's CLI reads them: `key=@file`
//! takes a file's text, `key=-` stdin's, `key=\@x` the literal `@x`; a bare `@file.json` or `-`
//! merges a JSON object; a repeated key becomes a list.

use std::io::Read;

use serde_json::{Map, Value};

/// The request body the arguments describe, or Vault's message for the first bad argument.
pub fn parse(args: &[String], stdin: &mut dyn Read) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut stdin_used = false;
    for arg in args {
        add(&mut out, arg, stdin, &mut stdin_used)
            .map_err(|e| format!("invalid key/value pair \"{arg}\": {e}"))?;
    }
    Ok(out)
}

fn add(
    out: &mut Map<String, Value>,
    raw: &str,
    stdin: &mut dyn Read,
    stdin_used: &mut bool,
) -> Result<(), String> {
    if raw.is_empty() {
        return Ok(());
    }
    let Some((key, value)) = raw.split_once('=') else {
        if raw == "-" {
            let text = read_stdin_once(stdin, stdin_used)?;
            return merge_json(out, &text);
        }
        if let Some(file) = raw.strip_prefix('@') {
            let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
            return merge_json(out, &text);
        }
        return Err("format must be key=value".to_owned());
    };
    let value = if let Some(file) = value.strip_prefix('@') {
        std::fs::read_to_string(file).map_err(|e| format!("error reading file: {e}"))?
    } else if let Some(literal) = value.strip_prefix("\\@") {
        format!("@{literal}")
    } else if value == "-" {
        read_stdin_once(stdin, stdin_used)?
    } else {
        value.to_owned()
    };
    match out.get_mut(key) {
        Some(Value::Array(items)) => items.push(Value::String(value)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(value)]);
        }
        None => {
            out.insert(key.to_owned(), Value::String(value));
        }
    }
    Ok(())
}

fn read_stdin_once(stdin: &mut dyn Read, used: &mut bool) -> Result<String, String> {
    if *used {
        return Err("stdin already consumed".to_owned());
    }
    *used = true;
    let mut text = String::new();
    stdin.read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

fn merge_json(out: &mut Map<String, Value>, text: &str) -> Result<(), String> {
    match serde_json::from_str::<Value>(text).map_err(|e| e.to_string())? {
        Value::Object(map) => {
            out.extend(map);
            Ok(())
        }
        _ => Err("the JSON must be an object".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn pairs_files_stdin_and_repeated_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v.txt");
        std::fs::write(&file, "from file").unwrap();
        let json_file = dir.path().join("d.json");
        std::fs::write(&json_file, r#"{"batch_input": [{"plaintext": "aGk="}]}"#).unwrap();
        let mut stdin: &[u8] = b"from stdin";
        let got = parse(
            &args(&[
                "a=1",
                &format!("f=@{}", file.display()),
                "s=-",
                "lit=\\@x",
                "r=1",
                "r=2",
                &format!("@{}", json_file.display()),
            ]),
            &mut stdin,
        )
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"a": "1", "f": "from file", "s": "from stdin", "lit": "@x",
                   "r": ["1", "2"], "batch_input": [{"plaintext": "aGk="}]})
        );
    }

    #[test]
    fn bad_arguments_name_themselves() {
        let mut stdin: &[u8] = b"";
        assert_eq!(
            parse(&args(&["novalue"]), &mut stdin).unwrap_err(),
            "invalid key/value pair \"novalue\": format must be key=value"
        );
        let mut stdin: &[u8] = b"x";
        assert!(
            parse(&args(&["a=-", "b=-"]), &mut stdin)
                .unwrap_err()
                .contains("stdin already consumed")
        );
    }
}
