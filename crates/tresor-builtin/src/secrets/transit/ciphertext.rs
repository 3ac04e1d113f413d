//! Vault's versioned output format: `vault:v<N>:<base64>` for ciphertexts, signatures and
//! HMACs.

use tresor_sdk::engine::{EngineError, EngineResult};

const PREFIX: &str = "vault:v";

pub(crate) fn format(version: u32, body_b64: &str) -> String {
    format!("{PREFIX}{version}:{body_b64}")
}

/// Splits `vault:v<N>:<body>` into the version and the (still encoded) body, with
/// OpenBao's error messages. Version 0 means 1 (Vault's first keys started at zero).
pub(crate) fn parse(value: &str) -> EngineResult<(u32, &str)> {
    let rest = value
        .strip_prefix(PREFIX)
        .ok_or_else(|| bad("invalid ciphertext: no prefix"))?;
    let (version, body) = rest
        .split_once(':')
        .ok_or_else(|| bad("invalid ciphertext: wrong number of fields"))?;
    let version: u32 = version
        .parse()
        .map_err(|_| bad("invalid ciphertext: version number could not be decoded"))?;
    Ok((version.max(1), body))
}

fn bad(message: &str) -> EngineError {
    EngineError::InvalidRequest(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(format(3, "QUJD"), "vault:v3:QUJD");
        assert_eq!(parse("vault:v3:QUJD").ok(), Some((3, "QUJD")));
        assert_eq!(parse("vault:v0:QUJD").ok(), Some((1, "QUJD")));
        assert!(parse("vault:3:QUJD").is_err());
        assert!(parse("vault:v3").is_err());
        assert!(parse("vault:vx:QUJD").is_err());
        assert!(parse("vault:v99999999999:QUJD").is_err());
    }
}
