//! Which files to read, and reading them within bounds: files and recursive directories
//! (`.yaml`, `.yml`, `.json`), `-` for stdin, `.tresorignore` and `--exclude` globs, Helm chart
//! sources skipped (their templates are not YAML until rendered).

use std::io::Read;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

pub const IGNORE_FILE: &str = ".tresorignore";

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: {size} bytes is larger than the {limit}-byte limit (--max-file-size); refusing to read it"
    )]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: not UTF-8 text")]
    NotUtf8 { path: String },
    #[error("invalid exclude glob {glob:?}: {message}")]
    Glob { glob: String, message: String },
}

/// Ignore patterns in `.gitignore`'s spirit: a pattern without `/` matches a name at any
/// depth; one with `/` is anchored at the root; a trailing `/` is dropped (directories and
/// everything under them match); `#` starts a comment. Negation (`!`) is not supported.
#[derive(Debug, Clone)]
pub struct Ignore {
    set: GlobSet,
}

impl Ignore {
    pub fn new(patterns: &[String]) -> Result<Ignore, InputError> {
        let mut b = GlobSetBuilder::new();
        for raw in patterns {
            let p = raw.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let p = p.trim_end_matches('/');
            let anchored = p.contains('/');
            let p = p.trim_start_matches("./").trim_start_matches('/');
            let bases = if anchored {
                vec![p.to_owned()]
            } else {
                vec![format!("**/{p}")]
            };
            for base in bases {
                for g in [base.clone(), format!("{base}/**")] {
                    let glob = globset::GlobBuilder::new(&g)
                        .literal_separator(true)
                        .build()
                        .or_else(|_| Glob::new(&g))
                        .map_err(|e| InputError::Glob {
                            glob: raw.clone(),
                            message: e.to_string(),
                        })?;
                    b.add(glob);
                }
            }
        }
        let set = b.build().map_err(|e| InputError::Glob {
            glob: patterns.join(" "),
            message: e.to_string(),
        })?;
        Ok(Ignore { set })
    }

    /// `rel` is relative to the root the patterns belong to.
    pub fn matches(&self, rel: &Path) -> bool {
        let s = rel.to_string_lossy();
        let s = s.trim_start_matches("./");
        self.set.is_match(s) || self.set.is_match(format!("./{s}"))
    }
}

pub fn read_ignore_file(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(IGNORE_FILE))
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    ) && path.file_name().and_then(|n| n.to_str()) != Some(crate::config::FILE_NAME)
}

/// Expands the given paths into files, in a stable (sorted) order. A path named on the command
/// line is read whatever its extension; directories are walked for manifests. `.tresorignore`
/// files in a walked directory (and the current directory's) and `excludes` apply.
pub fn collect(paths: &[PathBuf], excludes: &Ignore) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|source| InputError::Io {
            path: p.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            let ignore = Ignore::new(&read_ignore_file(p))?;
            walk(p, p, &ignore, excludes, &mut out, 0)?;
        } else if !excludes.matches(p) {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &Ignore,
    excludes: &Ignore,
    out: &mut Vec<PathBuf>,
    depth: usize,
) -> Result<(), InputError> {
    if depth > 64 {
        return Ok(());
    }
    let io = |source| InputError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    // A Helm chart's templates are Go templates, not YAML: lint the rendered output
    // (`helm template … | tresor lint -`); its values files are still read.
    let is_chart = dir.join("Chart.yaml").is_file();
    for e in entries {
        let path = e.path();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let name = e.file_name();
        let name = name.to_string_lossy();
        if ignore.matches(rel) || excludes.matches(rel) || excludes.matches(&path) {
            continue;
        }
        // Symlinked directories are not followed: no loops, and no escaping the root.
        let ft = e.file_type().map_err(io)?;
        if ft.is_dir() {
            if name.starts_with('.') || (is_chart && (name == "templates" || name == "charts")) {
                continue;
            }
            walk(root, &path, ignore, excludes, out, depth + 1)?;
        } else if is_manifest(&path) && !(is_chart && name == "Chart.yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a file (or stdin for `-`) up to `limit` bytes; a larger input is refused without
/// being read whole.
pub fn read(path: &Path, limit: u64) -> Result<String, InputError> {
    let shown = display(path);
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| InputError::Io {
                path: shown.clone(),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(InputError::TooLarge {
                path: shown,
                size: bytes.len() as u64,
                limit,
            });
        }
    } else {
        let file = std::fs::File::open(path).map_err(|source| InputError::Io {
            path: shown.clone(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > limit {
            return Err(InputError::TooLarge {
                path: shown,
                size,
                limit,
            });
        }
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| InputError::Io {
                path: shown.clone(),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(InputError::TooLarge {
                path: shown,
                size: bytes.len() as u64,
                limit,
            });
        }
    }
    String::from_utf8(bytes).map_err(|_| InputError::NotUtf8 { path: shown })
}

pub fn display(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns_follow_gitignore_conventions() {
        let i = Ignore::new(&[
            "vendor/".into(),
            "*.json".into(),
            "/tmp/x.yaml".into(),
            "# c".into(),
        ])
        .unwrap();
        assert!(i.matches(Path::new("vendor/a.yaml")));
        assert!(i.matches(Path::new("a/vendor/b/c.yaml")));
        assert!(i.matches(Path::new("x/y.json")));
        assert!(i.matches(Path::new("tmp/x.yaml")));
        assert!(!i.matches(Path::new("a/tmp/x.yaml")));
        assert!(!i.matches(Path::new("src/a.yaml")));
    }
}
