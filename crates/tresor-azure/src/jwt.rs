//! A JWT's claims, decoded without verifying the signature: for diagnostics only (what issuer,
//! subject and audience a federated token carries), never for trusting anything.

use base64::Engine as _;
use serde_json::Value;

/// The `iss`, `sub`, `aud` and `exp` of a compact JWT, or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: Option<i64>,
}

pub(crate) fn decode_unverified(token: &str) -> Result<Claims, String> {
    let mut parts = token.trim().split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("it is not a JWT (three dot-separated parts)".to_owned());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "its payload is not base64url".to_owned())?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| "its payload is not JSON".to_owned())?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    let aud = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Claims {
        iss: text("iss"),
        sub: text("sub"),
        aud,
        exp: claims.get("exp").and_then(Value::as_i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_claims_and_refuses_non_jwts() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"iss":"https://oidc","sub":"system:serviceaccount:a:b","aud":["api://AzureADTokenExchange"],"exp":5}"#);
        let c = decode_unverified(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(c.sub.as_deref(), Some("system:serviceaccount:a:b"));
        assert_eq!(c.aud, vec!["api://AzureADTokenExchange".to_owned()]);
        assert_eq!(c.exp, Some(5));
        assert!(decode_unverified("not-a-jwt").is_err());
        assert!(decode_unverified("a.!!!.c").is_err());
    }
}
