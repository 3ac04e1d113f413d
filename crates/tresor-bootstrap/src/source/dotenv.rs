//! The `dotenv` source: `.env` files read as docker compose and python-dotenv read them.
//!
//! Per line: blank lines and `#` comments are skipped; an optional `export ` prefix; `KEY=VALUE`
//! with blanks allowed around `=`. Values: unquoted (up to the end of the line, a ` #` starts a
//! comment, trailing blanks trimmed), single-quoted (literal, may span lines), double-quoted
//! (may span lines; `\n` `\r` `\t` `\\` `\"` `\'` are escapes, any other backslash is kept).
//! As in python-dotenv, blanks right after `=` are part of the separator: `KEY= #x` is `#x`.
//! After a closing quote only blanks and a comment may follow. `KEY=` is the empty value.
//! CRLF line ends are read as LF. A later line wins over an earlier one with the same key.
//! Not done: `${VAR}` interpolation (values are taken literally, `$` included), and a bare
//! `KEY` without `=` (compose would look it up in its own environment) is an error here.
//!
//! Errors name the file and line and what is wrong, never the value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tresor_sdk::secret::SecretString;
use zeroize::Zeroize;

use super::{Entry, Loaded, Source, SourceError};
use crate::name;

/// One `KEY=VALUE` of a file.
#[derive(Debug)]
pub struct EnvLine {
    pub key: String,
    pub value: SecretString,
    /// 1-based.
    pub line: usize,
}

/// Why a line is malformed (never its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    InvalidKey,
    MissingEquals,
    UnterminatedSingleQuote,
    UnterminatedDoubleQuote,
    TrailingCharacters,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Malformed::InvalidKey => {
                "the line does not start with a KEY (letters, digits, '_', '.', '-'; not a digit first)"
            }
            Malformed::MissingEquals => "no '=' after the key (a bare KEY has no value to import)",
            Malformed::UnterminatedSingleQuote => "a single-quoted value is never closed",
            Malformed::UnterminatedDoubleQuote => "a double-quoted value is never closed",
            Malformed::TrailingCharacters => {
                "characters after the closing quote (only a # comment may follow)"
            }
        })
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    /// 1-based line of `pos`.
    line: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn eat_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// At the end of a line: nothing left, `\n`, or a `\r` ending the line.
    fn at_eol(&self) -> bool {
        let rest = self.rest();
        rest.is_empty() || rest.starts_with('\n') || rest == "\r" || rest.starts_with("\r\n")
    }

    /// Consumes up to and including the next `\n`.
    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }
}

/// Parses one file's text.
pub fn parse(text: &str) -> Result<Vec<EnvLine>, (usize, Malformed)> {
    let mut cur = Cursor {
        text,
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        while matches!(cur.peek(), Some(' ' | '\t' | '\r')) {
            cur.bump();
        }
        match cur.peek() {
            None => break,
            Some('\n' | '#') => {
                cur.skip_line();
                continue;
            }
            Some(_) => {}
        }
        let line = cur.line;
        let rest = cur.rest();
        if rest.starts_with("export") && matches!(rest.get(6..7), Some(" " | "\t")) {
            cur.pos += 6;
            cur.eat_blanks();
        }
        let key_start = cur.pos;
        while !matches!(cur.peek(), None | Some('=' | ' ' | '\t' | '\n' | '\r')) {
            cur.bump();
        }
        let key = text.get(key_start..cur.pos).unwrap_or_default();
        if !name::valid_env_key(key) {
            return Err((line, Malformed::InvalidKey));
        }
        cur.eat_blanks();
        if cur.peek() != Some('=') {
            return Err((line, Malformed::MissingEquals));
        }
        cur.bump();
        cur.eat_blanks();
        let value = match cur.peek() {
            Some('\'') => {
                cur.bump();
                let value =
                    quoted(&mut cur, '\'').ok_or((line, Malformed::UnterminatedSingleQuote))?;
                after_quote(&mut cur)?;
                value
            }
            Some('"') => {
                cur.bump();
                let value =
                    quoted(&mut cur, '"').ok_or((line, Malformed::UnterminatedDoubleQuote))?;
                after_quote(&mut cur)?;
                value
            }
            _ => unquoted(&mut cur),
        };
        out.push(EnvLine {
            key: key.to_owned(),
            value,
            line,
        });
    }
    Ok(out)
}

/// The rest of the line, without a ` #` comment and trailing blanks; consumes the line end.
fn unquoted(cur: &mut Cursor<'_>) -> SecretString {
    let start = cur.pos;
    while !matches!(cur.peek(), None | Some('\n')) {
        cur.bump();
    }
    let text = cur.text;
    let raw = text.get(start..cur.pos).unwrap_or_default();
    cur.bump();
    let mut end = raw.len();
    let mut prev_blank = false;
    for (i, c) in raw.char_indices() {
        if c == '#' && prev_blank {
            end = i;
            break;
        }
        prev_blank = matches!(c, ' ' | '\t');
    }
    let kept = raw.get(..end).unwrap_or_default();
    SecretString::new(kept.trim_end_matches([' ', '\t', '\r']).to_owned())
}

/// A quoted value after its opening quote, through its closing one; `None` when never closed.
/// Single quotes are literal; double quotes take the escapes in the module docs. A CRLF inside
/// is read as LF.
fn quoted(cur: &mut Cursor<'_>, quote: char) -> Option<SecretString> {
    let mut value = String::new();
    loop {
        let c = cur.bump()?;
        match c {
            c if c == quote => return Some(SecretString::new(value)),
            '\r' if cur.peek() == Some('\n') => {}
            '\\' if quote == '"' => match cur.peek() {
                Some(e @ ('n' | 'r' | 't' | '\\' | '"' | '\'')) => {
                    cur.bump();
                    value.push(match e {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        other => other,
                    });
                }
                _ => value.push('\\'),
            },
            c => value.push(c),
        }
    }
}

/// After a closing quote: blanks, then a comment or the line end.
fn after_quote(cur: &mut Cursor<'_>) -> Result<(), (usize, Malformed)> {
    cur.eat_blanks();
    if cur.peek() == Some('#') || cur.at_eol() {
        cur.skip_line();
        Ok(())
    } else {
        Err((cur.line, Malformed::TrailingCharacters))
    }
}

/// `dotenv: {files: […]}`: the files in order, a later one winning on the same key.
#[derive(Debug)]
pub struct DotenvSource {
    /// As written in the config (for messages), and resolved against the config's directory.
    files: Vec<(PathBuf, PathBuf)>,
}

impl DotenvSource {
    pub fn new(files: &[PathBuf], base: &Path) -> Self {
        DotenvSource {
            files: files.iter().map(|f| (f.clone(), base.join(f))).collect(),
        }
    }
}

/// Where a key was read: `file:line (KEY)`.
fn origin(file: &Path, line: usize, key: &str) -> String {
    format!("{}:{line} ({key})", file.display())
}

#[async_trait]
impl Source for DotenvSource {
    fn describe(&self) -> String {
        let names: Vec<String> = self
            .files
            .iter()
            .map(|(f, _)| f.display().to_string())
            .collect();
        format!("dotenv {}", names.join(", "))
    }

    async fn load(&self) -> Result<Loaded, SourceError> {
        // name → (original key, entry)
        let mut by_name: BTreeMap<String, (String, Entry)> = BTreeMap::new();
        for (shown, path) in &self.files {
            let mut text =
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|source| SourceError::Read {
                        path: shown.clone(),
                        source,
                    })?;
            let parsed = parse(&text);
            text.zeroize();
            let lines = parsed.map_err(|(line, reason)| SourceError::Malformed {
                file: shown.clone(),
                line,
                reason,
            })?;
            for l in lines {
                let name = name::sanitise(&l.key);
                let here = origin(shown, l.line, &l.key);
                if let Some((key, earlier)) = by_name.get(&name)
                    && *key != l.key
                {
                    return Err(SourceError::Collision {
                        name,
                        first: earlier.origin.clone(),
                        second: here,
                    });
                }
                by_name.insert(
                    name.clone(),
                    (
                        l.key,
                        Entry {
                            name,
                            value: l.value,
                            origin: here,
                        },
                    ),
                );
            }
        }
        Ok(Loaded {
            entries: by_name.into_values().map(|(_, e)| e).collect(),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|l| (l.key, l.value.expose().to_owned(), l.line))
            .collect()
    }

    fn one(text: &str) -> String {
        let p = pairs(text);
        assert_eq!(p.len(), 1, "{text:?}");
        p[0].1.clone()
    }

    #[test]
    fn comments_blank_lines_and_export_are_skipped() {
        let p = pairs("# a comment\n\n   # indented comment\nexport A=1\nexport\tB=2\nC=3\n");
        assert_eq!(
            p,
            [
                ("A".into(), "1".into(), 4),
                ("B".into(), "2".into(), 5),
                ("C".into(), "3".into(), 6)
            ]
        );
    }

    #[test]
    fn a_key_named_export_is_still_a_key() {
        assert_eq!(pairs("export=1\n")[0].0, "export");
    }

    #[test]
    fn unquoted_values_lose_inline_comments_and_trailing_blanks() {
        assert_eq!(one("A=value # comment\n"), "value");
        assert_eq!(one("A = value   \n"), "value");
        assert_eq!(one("A=val#ue\n"), "val#ue");
        assert_eq!(one("A=#notacomment\n"), "#notacomment");
        assert_eq!(one("A=a b c\n"), "a b c");
        assert_eq!(one("A=$HOME\n"), "$HOME");
    }

    #[test]
    fn single_quotes_are_literal_and_may_span_lines() {
        assert_eq!(one("A='a \\n b # c'\n"), "a \\n b # c");
        assert_eq!(one("A='line1\nline2'\n"), "line1\nline2");
    }

    #[test]
    fn double_quotes_take_escapes_and_may_span_lines() {
        assert_eq!(one(r#"A="a\nb\t\"q\"\\ \x""#), "a\nb\t\"q\"\\ \\x");
        assert_eq!(one("A=\"one\ntwo\" # c\n"), "one\ntwo");
        assert_eq!(one("A=\"it's\"\n"), "it's");
    }

    #[test]
    fn empty_values_are_values() {
        assert_eq!(pairs("A=\nB=''\nC=\"\"\nD=  \n").len(), 4);
        assert_eq!(one("A=\n"), "");
        assert_eq!(one("A=   \n"), "");
        assert_eq!(one("A=''  # a comment\n"), "");
        // As python-dotenv: the blanks after `=` belong to the separator, so a `#` right after
        // them starts the value, not a comment.
        assert_eq!(one("A= #x\n"), "#x");
    }

    #[test]
    fn crlf_line_ends_are_read_as_lf() {
        let p = pairs("A=1\r\nB='x'\r\nC=\"m\r\nn\"\r\n# c\r\nD=4");
        assert_eq!(
            p.iter()
                .map(|(k, v, l)| (k.as_str(), v.as_str(), *l))
                .collect::<Vec<_>>(),
            [
                ("A", "1", 1),
                ("B", "x", 2),
                ("C", "m\nn", 3),
                ("D", "4", 6)
            ]
        );
    }

    #[test]
    fn a_later_duplicate_key_is_returned_after_the_earlier_one() {
        let p = pairs("A=1\nA=2\n");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].1, "2");
    }

    #[test]
    fn malformed_lines_name_their_line_and_reason() {
        let cases = [
            ("A=1\nnot a pair\n", 2, Malformed::MissingEquals),
            ("A=1\nBARE\n", 2, Malformed::MissingEquals),
            ("A=1\n\n1A=2\n", 3, Malformed::InvalidKey),
            ("=x\n", 1, Malformed::InvalidKey),
            ("A='open\nB=2\n", 1, Malformed::UnterminatedSingleQuote),
            ("A=\"open\n", 1, Malformed::UnterminatedDoubleQuote),
            ("A=1\nB=\"x\" y\n", 2, Malformed::TrailingCharacters),
        ];
        for (text, line, reason) in cases {
            assert_eq!(parse(text).unwrap_err(), (line, reason), "{text:?}");
        }
    }

    #[test]
    fn the_reason_text_never_holds_the_value() {
        let err = parse("A=\"secret-marker-42\n").unwrap_err();
        assert!(!err.1.to_string().contains("secret-marker-42"));
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        std::fs::write(dir.join(name), text).unwrap();
        PathBuf::from(name)
    }

    #[tokio::test]
    async fn later_files_win_and_names_are_sanitised_with_their_origin() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            ".env",
            "GHCR_TOKEN=old\nAPP.DB_URL=x\nGHCR_TOKEN=older-still-wins-over-nothing\n",
        );
        let b = write(dir.path(), ".env.local", "GHCR_TOKEN=new\n");
        let loaded = DotenvSource::new(&[a, b], dir.path()).load().await.unwrap();
        let got: Vec<(&str, &str, &str)> = loaded
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.expose(), e.origin.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("app-db-url", "x", ".env:2 (APP.DB_URL)"),
                ("ghcr-token", "new", ".env.local:1 (GHCR_TOKEN)")
            ]
        );
    }

    #[tokio::test]
    async fn keys_that_collide_after_sanitising_are_an_error_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), ".env", "GHCR_TOKEN=a\n");
        let b = write(dir.path(), ".env.local", "ghcr.token=b\n");
        let err = DotenvSource::new(&[a, b], dir.path())
            .load()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(".env:1 (GHCR_TOKEN)"), "{err}");
        assert!(err.contains(".env.local:1 (ghcr.token)"), "{err}");
        assert!(err.contains("ghcr-token"), "{err}");
    }

    #[tokio::test]
    async fn a_malformed_file_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), ".env", "A=1\nB=\"unterminated-marker\n");
        let err = DotenvSource::new(&[a], dir.path())
            .load()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(".env:2: "), "{err}");
        assert!(!err.contains("unterminated-marker"), "{err}");
    }
}
