//! Vault's built-in token helper: the CLI's token kept in `~/.vault-token`.
//!
//! `tresor login` and `tresor server -dev` store the token there (mode 0600, written to a
//! temporary file and renamed, as Vault does), and every client command uses it when no token
//! variable is set. The file holds the token alone, without a newline; readers trim it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

/// `$HOME/.vault-token`; `None` when `HOME` is unset or empty (then nothing is read or written).
pub fn path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".vault-token"))
}

/// The stored token; `None` when there is no file (or it is empty).
pub fn get() -> Result<Option<String>> {
    let Some(path) = path() else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim();
            Ok((!token.is_empty()).then(|| token.to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Replaces the stored token. The write-then-rename keeps a working file intact if writing
/// fails part-way, and recreating the file makes sure it has mode 0600 whoever made the old one.
pub fn store(token: &str) -> Result<()> {
    let Some(path) = path() else {
        anyhow::bail!("HOME is not set: cannot store the token in ~/.vault-token");
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| -> Result<()> {
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(token.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
