//! A JWT as this method checks it: the compact JWS parsed, its algorithm judged before any
//! key is touched (`none` and every `HS*` are refused outright), its signature checked by a
//! key of the matching family, then the registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`,
//! `iat`) against the role with OpenBao's leeway rules (hashicorp/cap `jwt.Validator`).
//!
//! Every refusal is a [`Refusal`]: OpenBao's message (without its `error validating token: `
//! prefix, which the login adds) and a detail that names the claim or binding and the
//! offending value, never the token.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use super::claims::shown;
use super::keys::{Alg, Mismatch, PublicKey};

/// Go's `base64.RawURLEncoding`: no padding, and (unlike the base64 crate's default) lenient
/// about the unused bits of the last symbol, so the same tokens parse on both servers.
const RAW_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// A refusal: OpenBao's wording and the binding that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) summary: String,
    pub(crate) detail: String,
}

impl Refusal {
    pub(crate) fn new(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            detail: detail.into(),
        }
    }
}

impl From<super::claims::ClaimError> for Refusal {
    fn from(e: super::claims::ClaimError) -> Self {
        Refusal::new(e.summary, e.detail)
    }
}

/// A parsed compact JWS. Its claims are untrusted until [`Jws::verify_with`] succeeded.
#[derive(Clone)]
pub(crate) struct Jws {
    pub(crate) alg_name: String,
    pub(crate) kid: Option<String>,
    signing_input: String,
    signature: Vec<u8>,
    pub(crate) claims: Map<String, Value>,
}

/// The token is a credential: Debug shows its header only.
impl std::fmt::Debug for Jws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jws")
            .field("alg", &self.alg_name)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Parses `header.payload.signature`. `prefix` is the key source's wording before a parse
/// error (go-jose's messages follow it, as OpenBao reports them).
pub(crate) fn parse(token: &str, prefix: &str) -> Result<Jws, Refusal> {
    let token = token.trim();
    let refuse = |what: &str, detail: &str| Refusal::new(format!("{prefix}{what}"), detail);
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(
            "go-jose/go-jose: compact JWS format must have three parts",
            "the token is not a compact JWS (three base64url parts separated by '.')",
        ));
    };
    let decode = |part: &str, what: &str| {
        RAW_URL.decode(part).map_err(|e| {
            // Go's base64 names the offset of the first bad byte (or of a lone last one).
            let at = match e {
                base64::DecodeError::InvalidByte(i, _)
                | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                _ => part.len().saturating_sub(1),
            };
            refuse(
                &format!("illegal base64 data at input byte {at}"),
                &format!("the token's {what} is not base64url"),
            )
        })
    };
    let header_bytes = decode(h, "header")?;
    let payload_bytes = decode(p, "payload")?;
    let signature = decode(s, "signature")?;
    let header: Map<String, Value> = serde_json::from_slice(&header_bytes).map_err(|_| {
        refuse(
            "go-jose/go-jose: invalid protected header",
            "the token's header is not a JSON object",
        )
    })?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload_bytes).map_err(|_| {
        refuse(
            "go-jose/go-jose: invalid payload",
            "the token's payload is not a JSON object",
        )
    })?;
    let Some(Value::String(alg_name)) = header.get("alg") else {
        return Err(refuse(
            "go-jose/go-jose: missing alg",
            "the token's header has no \"alg\"",
        ));
    };
    if header.contains_key("crit") {
        return Err(refuse(
            "go-jose/go-jose: unsupported crit header",
            "the token's header has \"crit\" extensions, which are not supported",
        ));
    }
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => {
            return Err(refuse(
                "go-jose/go-jose: invalid kid",
                "the token's \"kid\" is not a string",
            ));
        }
    };
    Ok(Jws {
        alg_name: alg_name.clone(),
        kid,
        signing_input: format!("{h}.{p}"),
        signature,
        claims,
    })
}

impl Jws {
    /// The token's algorithm, or why no key may ever check it: `none` (unsigned), `HS*`
    /// (symmetric: a public key used as an HMAC secret is the classic key confusion), or a
    /// name nobody knows. `unverified` is the key source's wording for a failed signature.
    pub(crate) fn algorithm(&self, unverified: &str) -> Result<Alg, Refusal> {
        let name = self.alg_name.as_str();
        if name.eq_ignore_ascii_case("none") {
            return Err(Refusal::new(
                unverified,
                "alg 'none' (an unsigned token) is never accepted",
            ));
        }
        if name.starts_with("HS") {
            return Err(Refusal::new(
                unverified,
                format!(
                    "alg '{}' is symmetric (HMAC): it is never accepted, since a public key is no shared secret",
                    shown(name)
                ),
            ));
        }
        Alg::parse(name).ok_or_else(|| {
            Refusal::new(
                unverified,
                format!(
                    "alg '{}' is not a JWS signature algorithm this server knows",
                    shown(name)
                ),
            )
        })
    }

    /// Checks the signature with one key.
    pub(crate) fn verify_with(&self, alg: Alg, key: &PublicKey) -> Result<(), Mismatch> {
        key.verify(alg, self.signing_input.as_bytes(), &self.signature)
    }
}

/// What the role and config expect of a token's registered claims. Leeways are OpenBao's
/// signed seconds: 0 means the default, a negative value means none.
#[derive(Debug, Clone)]
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) audiences: &'a [String],
    pub(crate) algs: &'a [Alg],
    pub(crate) not_before_leeway: i64,
    pub(crate) expiration_leeway: i64,
    pub(crate) clock_skew_leeway: i64,
    /// Unix nanoseconds.
    pub(crate) now: i64,
}

const DEFAULT_LEEWAY: i64 = 150;
const DEFAULT_CLOCK_SKEW: i64 = 60;

fn leeway(configured: i64, default: i64) -> i64 {
    match configured {
        l if l < 0 => 0,
        0 => default,
        l => l,
    }
}

/// The JWT registered claim names a token may not spell with other letter cases (cap rejects
/// `ſub` or `SUB` next to `sub`: a struct decoder would read one, a map the other).
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Unicode simple case folding, as far as it can reach the ASCII registered names.
fn fold(c: char) -> char {
    match c {
        '\u{017F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    }
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<i64, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => Ok(n.as_i64().unwrap_or_else(|| {
            #[allow(clippy::cast_possible_truncation, reason = "NumericDate truncates")]
            let t = n.as_f64().unwrap_or(0.0).trunc() as i64;
            t
        })),
        Some(other) => Err(Refusal::new(
            format!("go-jose/go-jose/jwt: expected number for NumericDate ({name})"),
            format!(
                "claim '{name}' is a {}, not a number",
                crate::common::fields::kind(other)
            ),
        )),
    }
}

fn rfc3339(secs: i64) -> String {
    crate::clock::rfc3339_nano(secs.saturating_mul(1_000_000_000))
}

/// The registered-claims checks of cap's `Validator.Validate`, in its order, after the
/// signature was verified: name collisions, algorithm, `iss`, `sub`, `aud`, then the times.
pub(crate) fn check_claims(jws: &Jws, alg: Alg, expected: &Expected<'_>) -> Result<(), Refusal> {
    let claims = &jws.claims;
    for key in claims.keys() {
        for name in REGISTERED {
            if key != name && key.chars().map(fold).eq(name.chars()) {
                return Err(Refusal::new(
                    format!(
                        "ambiguous claim: key {} collides with registered claim {} under case folding",
                        super::claims::go_quote(key),
                        super::claims::go_quote(name)
                    ),
                    format!(
                        "claim '{}' differs from the registered claim '{name}' only by letter case",
                        shown(key)
                    ),
                ));
            }
        }
    }
    if !expected.algs.contains(&alg) {
        let allowed: Vec<&str> = expected.algs.iter().map(|a| a.name()).collect();
        return Err(Refusal::new(
            "invalid algorithm (alg) header parameter: token signed with unexpected algorithm",
            format!(
                "alg '{}' is not in jwt_supported_algs [{}]",
                alg.name(),
                allowed.join(", ")
            ),
        ));
    }
    let string_claim = |name: &str| -> Result<String, Refusal> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(Refusal::new(
                format!(
                    "json: cannot unmarshal {} into Go struct field Claims.{name} of type string",
                    crate::common::fields::kind(other)
                ),
                format!(
                    "claim '{name}' is a {}, not a string",
                    crate::common::fields::kind(other)
                ),
            )),
        }
    };
    let iss = string_claim("iss")?;
    let sub = string_claim("sub")?;
    let aud: Vec<String> = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Refusal::new(
                    "go-jose/go-jose/jwt: expected string or array value to unmarshal to Audience",
                    "claim 'aud' holds something other than strings",
                )
            })?,
        Some(other) => {
            return Err(Refusal::new(
                "go-jose/go-jose/jwt: expected string or array value to unmarshal to Audience",
                format!(
                    "claim 'aud' is a {}, not a string or list",
                    crate::common::fields::kind(other)
                ),
            ));
        }
    };
    if !expected.issuer.is_empty() && expected.issuer != iss {
        return Err(Refusal::new(
            "invalid issuer (iss) claim",
            format!(
                "issuer '{}' does not match bound_issuer '{}'",
                shown(&iss),
                shown(expected.issuer)
            ),
        ));
    }
    if !expected.subject.is_empty() && expected.subject != sub {
        return Err(Refusal::new(
            "invalid subject (sub) claim",
            format!(
                "subject '{}' does not match bound_subject '{}'",
                shown(&sub),
                shown(expected.subject)
            ),
        ));
    }
    if !expected.audiences.is_empty() && !expected.audiences.iter().any(|a| aud.contains(a)) {
        let token_aud: Vec<String> = aud.iter().map(|a| shown(a)).collect();
        return Err(Refusal::new(
            "invalid audience (aud) claim: audience claim does not match any expected audience",
            format!(
                "audience mismatch: token has [{}], role bound_audiences [{}]",
                token_aud.join(", "),
                expected.audiences.join(", ")
            ),
        ));
    }
    let iat = numeric_date(claims, "iat")?;
    let mut exp = numeric_date(claims, "exp")?;
    let mut nbf = numeric_date(claims, "nbf")?;
    if iat == 0 && exp == 0 && nbf == 0 {
        return Err(Refusal::new(
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token",
            "the token has none of exp, nbf and iat, so its lifetime is unknown",
        ));
    }
    let exp_leeway = leeway(expected.expiration_leeway, DEFAULT_LEEWAY);
    let exp_given = exp != 0;
    if exp == 0 {
        exp = iat.max(nbf).saturating_add(exp_leeway);
    }
    let nbf_given = nbf != 0;
    if nbf == 0 {
        nbf = if iat != 0 {
            iat
        } else {
            exp.saturating_sub(leeway(expected.not_before_leeway, DEFAULT_LEEWAY))
        };
    }
    let skew = leeway(expected.clock_skew_leeway, DEFAULT_CLOCK_SKEW);
    let skew_ns = skew.saturating_mul(1_000_000_000);
    let at = |secs: i64| secs.saturating_mul(1_000_000_000);
    let now = expected.now;
    if now.saturating_add(skew_ns) < at(nbf) {
        let what = if nbf_given { "nbf" } else { "iat (no nbf)" };
        return Err(Refusal::new(
            "invalid not before (nbf) claim: token not yet valid",
            format!(
                "token not valid before {} ({what}; leeway {skew}s)",
                rfc3339(nbf)
            ),
        ));
    }
    if now.saturating_sub(skew_ns) > at(exp) {
        let detail = if exp_given {
            format!("token expired at {} (leeway {skew}s)", rfc3339(exp))
        } else {
            format!(
                "token has no exp: it counts as expired at {} (iat/nbf + expiration_leeway {exp_leeway}s; leeway {skew}s)",
                rfc3339(exp)
            )
        };
        return Err(Refusal::new(
            "invalid expiration time (exp) claim: token is expired",
            detail,
        ));
    }
    if now.saturating_add(skew_ns) < at(iat) {
        return Err(Refusal::new(
            "invalid issued at (iat) claim: token issued in the future",
            format!(
                "token issued at {}, in the future (leeway {skew}s)",
                rfc3339(iat)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::keys::test_keys::{TestKey, sign_with};
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn expected<'a>(aud: &'a [String], algs: &'a [Alg]) -> Expected<'a> {
        Expected {
            issuer: "https://issuer",
            subject: "",
            audiences: aud,
            algs,
            not_before_leeway: 0,
            expiration_leeway: 0,
            clock_skew_leeway: 0,
            now: NOW * 1_000_000_000,
        }
    }

    fn check(claims: Value, exp: &Expected<'_>) -> Result<(), Refusal> {
        let key = TestKey::es256();
        let jws = parse(&key.token(None, &claims), "malformed").unwrap();
        let alg = jws.algorithm("bad sig").unwrap();
        check_claims(&jws, alg, exp)
    }

    #[test]
    fn none_and_hmac_algorithms_are_refused_before_any_key() {
        let claims = json!({"sub": "x"});
        let none = sign_with(&json!({"alg": "none"}), &claims, |_| Vec::new());
        let jws = parse(&none, "m").unwrap();
        let r = jws.algorithm("sig").unwrap_err();
        assert!(r.detail.contains("'none'"), "{r:?}");
        let none = sign_with(&json!({"alg": "NONE"}), &claims, |_| Vec::new());
        assert!(parse(&none, "m").unwrap().algorithm("sig").is_err());
        let hs = sign_with(&json!({"alg": "HS256"}), &claims, |_| vec![1; 32]);
        let r = parse(&hs, "m").unwrap().algorithm("sig").unwrap_err();
        assert!(r.detail.contains("symmetric"), "{r:?}");
    }

    #[test]
    fn malformed_tokens_are_refused_with_the_reason() {
        for (t, needle) in [
            ("a.b", "compact JWS"),
            ("a.b.c.d", "compact JWS"),
            ("!!.e30.AA", "header is not base64url"),
            ("e30.a.AA", "payload is not base64url"),
            ("e30.e30.AA", "no \"alg\""),
            (
                "eyJhbGciOiJSUzI1NiJ9.W10.AA",
                "payload is not a JSON object",
            ),
        ] {
            let r = parse(t, "p: ").unwrap_err();
            assert!(r.summary.starts_with("p: "), "{r:?}");
            assert!(r.detail.contains(needle), "{t}: {r:?}");
        }
    }

    #[test]
    fn issuer_audience_and_subject_are_checked_with_openbaos_wording() {
        let aud = vec!["vault".to_owned()];
        let algs = [Alg::Es256];
        let e = expected(&aud, &algs);
        let ok = json!({"iss": "https://issuer", "aud": ["x", "vault"], "exp": NOW + 10});
        assert_eq!(check(ok, &e), Ok(()));
        let r = check(
            json!({"iss": "https://evil", "aud": "vault", "exp": NOW + 10}),
            &e,
        )
        .unwrap_err();
        assert_eq!(r.summary, "invalid issuer (iss) claim");
        assert_eq!(
            r.detail,
            "issuer 'https://evil' does not match bound_issuer 'https://issuer'"
        );
        let r = check(
            json!({"iss": "https://issuer", "aud": "other", "exp": NOW + 10}),
            &e,
        )
        .unwrap_err();
        assert_eq!(
            r.detail,
            "audience mismatch: token has [other], role bound_audiences [vault]"
        );
        let mut e2 = e.clone();
        e2.subject = "alice";
        let r = check(
            json!({"iss": "https://issuer", "aud": "vault", "sub": "bob", "exp": NOW + 10}),
            &e2,
        )
        .unwrap_err();
        assert_eq!(r.summary, "invalid subject (sub) claim");
        let r = check(
            json!({"iss": "https://issuer", "aud": "vault", "ſub": "x", "exp": NOW + 10}),
            &e,
        )
        .unwrap_err();
        assert!(r.summary.starts_with("ambiguous claim"), "{r:?}");
    }

    #[test]
    fn times_follow_caps_leeway_rules() {
        let aud = Vec::new();
        let algs = [Alg::Es256];
        let e = expected(&aud, &algs);
        let base = |extra: Value| {
            let mut c = json!({"iss": "https://issuer"});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            c
        };
        // exp within the 60 s default clock skew still passes; beyond it fails.
        assert!(check(base(json!({"exp": NOW - 59})), &e).is_ok());
        let r = check(base(json!({"exp": NOW - 61})), &e).unwrap_err();
        assert_eq!(
            r.summary,
            "invalid expiration time (exp) claim: token is expired"
        );
        assert_eq!(
            r.detail,
            "token expired at 2027-01-15T07:58:59Z (leeway 60s)"
        );
        // A negative clock skew leeway disables it.
        let mut strict = e.clone();
        strict.clock_skew_leeway = -1;
        assert!(check(base(json!({"exp": NOW - 1})), &strict).is_err());
        let mut wide = e.clone();
        wide.clock_skew_leeway = 3600;
        assert!(check(base(json!({"exp": NOW - 1800})), &wide).is_ok());
        // nbf in the future beyond the skew.
        let r = check(base(json!({"nbf": NOW + 120, "exp": NOW + 600})), &e).unwrap_err();
        assert_eq!(
            r.summary,
            "invalid not before (nbf) claim: token not yet valid"
        );
        assert!(r.detail.contains("leeway 60s"), "{r:?}");
        assert!(check(base(json!({"nbf": NOW + 30, "exp": NOW + 600})), &e).is_ok());
        // iat in the future.
        let r = check(
            base(json!({"iat": NOW + 120, "exp": NOW + 600, "nbf": NOW})),
            &e,
        )
        .unwrap_err();
        assert_eq!(
            r.summary,
            "invalid issued at (iat) claim: token issued in the future"
        );
        // Without exp, expiration_leeway (default 150 s) after iat bounds the lifetime.
        assert!(
            check(base(json!({"iat": NOW - 200})), &e).is_ok(),
            "iat+150+60 skew"
        );
        let r = check(base(json!({"iat": NOW - 300})), &e).unwrap_err();
        assert!(r.detail.contains("expiration_leeway 150s"), "{r:?}");
        let mut short = e.clone();
        short.expiration_leeway = 10;
        assert!(check(base(json!({"iat": NOW - 100})), &short).is_err());
        // Without nbf and iat, not_before_leeway before exp bounds the start.
        let mut nb = e.clone();
        nb.not_before_leeway = -1;
        nb.clock_skew_leeway = -1;
        assert!(
            check(base(json!({"exp": NOW + 10})), &nb).is_err(),
            "nbf = exp"
        );
        let r = check(base(json!({"sub": "x"})), &e).unwrap_err();
        assert!(r.summary.starts_with("no issued at (iat)"), "{r:?}");
        let r = check(base(json!({"exp": "soon"})), &e).unwrap_err();
        assert!(r.detail.contains("'exp' is a string"), "{r:?}");
    }

    #[test]
    fn algorithms_outside_the_supported_list_are_refused() {
        let aud = Vec::new();
        let algs = [Alg::Rs256];
        let r = check(json!({"exp": NOW + 10}), &expected(&aud, &algs)).unwrap_err();
        assert_eq!(
            r.summary,
            "invalid algorithm (alg) header parameter: token signed with unexpected algorithm"
        );
        assert_eq!(r.detail, "alg 'ES256' is not in jwt_supported_algs [RS256]");
    }
}
