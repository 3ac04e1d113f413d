//! The login JWT, read before anything vouches for it.
//!
//! Like OpenBao's plugin, the method reads the service account named in the JWT's claims to
//! check the role's bindings early and to word refusals, but trusts none of it until the API
//! server's TokenReview has confirmed the token and the reviewed identity equals the claimed
//! one. The signature is checked here only when `pem_keys` are configured.
//!
//! The checks and their order follow OpenBao (go-jose parsing, then hashicorp/cap's
//! `ValidateAllowMissingIatNbfExp`): compact form and algorithm, signature (with `pem_keys`),
//! ambiguous claim names, `alg`, `iss` (when configured), `aud` (when the role has one), then
//! `nbf`/`exp`/`iat` with 60 s of clock skew when any of them is present.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use tresor_sdk::engine::Denial;

use super::denials;
use super::keys::PublicKey;

/// The algorithms go-jose accepts for Kubernetes tokens (`AllowedJWTSignatureAlgorithmsK8s`).
const PARSE_ALGS: [&str; 10] = [
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
];
/// The algorithms the claims validator then insists on (what Kubernetes signs with).
const EXPECTED_ALGS: [&str; 6] = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"];
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];
/// cap's default leeways: clock skew on every time claim, and the implied validity window
/// when only some of `iat`/`nbf`/`exp` are present.
const CLOCK_SKEW_SECS: i64 = 60;
const IMPLIED_WINDOW_SECS: i64 = 150;

/// Go's `base64.RawURLEncoding`: no padding, trailing bits tolerated.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// A compact JWS whose claims have been decoded but not trusted.
#[derive(Debug)]
pub(super) struct Jwt {
    pub alg: String,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    pub claims: Map<String, Value>,
}

/// What the role and the TokenReview compare against (from the claims, untrusted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ServiceAccount {
    pub name: String,
    pub namespace: String,
    /// Empty when the claims carry none (the login then fails).
    pub uid: String,
    /// Only legacy (Secret-based) tokens name their Secret.
    pub secret_name: String,
    pub audiences: Vec<String>,
}

/// What the configuration and the role expect of the claims.
#[derive(Debug, Default)]
pub(super) struct Expected<'a> {
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
}

fn not_a_jwt(why: &str) -> Denial {
    denials::permission_denied(format!("the login JWT is not a valid signed JWT: {why}"))
}

pub(super) fn parse(token: &str) -> Result<Jwt, Denial> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_a_jwt(
            "it does not have the three dot-separated parts of a compact JWS",
        ));
    };
    let header: Map<String, Value> = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| not_a_jwt("its header is not base64url-encoded JSON"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !PARSE_ALGS.contains(&alg.as_str()) {
        return Err(not_a_jwt(&format!(
            "its alg {alg:?} is not one of {}",
            PARSE_ALGS.join(", ")
        )));
    }
    if header.contains_key("crit") || header.get("b64") == Some(&Value::Bool(false)) {
        return Err(not_a_jwt("its header has critical extensions"));
    }
    let claims: Map<String, Value> = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| not_a_jwt("its payload is not base64url-encoded JSON"))?;
    let signature = B64
        .decode(s)
        .map_err(|_| not_a_jwt("its signature is not base64url-encoded"))?;
    Ok(Jwt {
        alg,
        signing_input: token
            .get(..h.len() + 1 + p.len())
            .unwrap_or_default()
            .as_bytes()
            .to_vec(),
        signature,
        claims,
    })
}

/// A time claim as Go's `NumericDate` reads it (a JSON number, fractions truncated).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<i64, Denial> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .ok_or_else(|| claim_type(name, "a number")),
        Some(_) => Err(claim_type(name, "a number")),
    }
}

fn claim_type(name: &str, want: &str) -> Denial {
    denials::permission_denied(format!("the JWT's {name:?} claim is not {want}"))
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<String, Denial> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(claim_type(name, "a string")),
    }
}

/// `aud` as a string or a list of strings (RFC 7519 allows both).
fn audiences(claims: &Map<String, Value>) -> Result<Vec<String>, Denial> {
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| claim_type("aud", "a string or a list of strings"))
            })
            .collect(),
        Some(_) => Err(claim_type("aud", "a string or a list of strings")),
    }
}

/// Go's `strings.EqualFold` for the registered claim names: ASCII case, and the long s.
fn folds_to(key: &str, name: &str) -> bool {
    let fold = |c: char| match c {
        'ſ' => 's',
        c => c.to_ascii_lowercase(),
    };
    key.chars().count() == name.chars().count()
        && key
            .chars()
            .zip(name.chars())
            .all(|(a, b)| fold(a) == fold(b))
}

impl Jwt {
    /// Whether one of `keys` signed this token.
    pub fn signed_by_any(&self, keys: &[PublicKey]) -> bool {
        keys.iter()
            .any(|k| k.verifies(&self.alg, &self.signing_input, &self.signature))
    }

    /// cap's claim checks, in its order; `now_ns` is the current Unix time in nanoseconds.
    pub fn check(&self, expected: &Expected<'_>, now_ns: i64) -> Result<(), Denial> {
        for key in self.claims.keys() {
            if let Some(name) = REGISTERED.iter().find(|n| *n != key && folds_to(key, n)) {
                return Err(Denial::forbidden(
                    format!(
                        "ambiguous claim: key {key:?} collides with registered claim {name:?} under case folding"
                    ),
                    "the JWT has two spellings of one registered claim",
                ));
            }
        }
        if self.signature.is_empty() {
            return Err(Denial::forbidden(
                "invalid algorithm (alg) header parameter: token must be signed",
                "the login JWT has an empty signature",
            ));
        }
        if !EXPECTED_ALGS.contains(&self.alg.as_str()) {
            return Err(Denial::forbidden(
                "invalid algorithm (alg) header parameter: token signed with unexpected algorithm",
                format!(
                    "the login JWT is signed with {}; Kubernetes service account tokens use {}",
                    self.alg,
                    EXPECTED_ALGS.join(", ")
                ),
            ));
        }
        let iss = string_claim(&self.claims, "iss")?;
        string_claim(&self.claims, "sub")?;
        string_claim(&self.claims, "jti")?;
        let auds = audiences(&self.claims)?;
        let iat = numeric_date(&self.claims, "iat")?;
        let mut nbf = numeric_date(&self.claims, "nbf")?;
        let mut exp = numeric_date(&self.claims, "exp")?;
        if let Some(issuer) = expected.issuer
            && issuer != iss
        {
            return Err(denials::issuer(&iss, issuer));
        }
        if let Some(audience) = expected.audience
            && !auds.iter().any(|a| a == audience)
        {
            return Err(denials::audience(audience, &auds));
        }
        if iat == 0 && nbf == 0 && exp == 0 {
            return Ok(());
        }
        if exp == 0 {
            exp = iat.max(nbf).saturating_add(IMPLIED_WINDOW_SECS);
        }
        if nbf == 0 {
            nbf = if iat != 0 {
                iat
            } else {
                exp.saturating_sub(IMPLIED_WINDOW_SECS)
            };
        }
        let skew_ns = CLOCK_SKEW_SECS * 1_000_000_000;
        let at = |secs: i64| secs.saturating_mul(1_000_000_000);
        if now_ns.saturating_add(skew_ns) < at(nbf) {
            return Err(denials::not_yet_valid(nbf, now_ns));
        }
        if now_ns.saturating_sub(skew_ns) > at(exp) {
            return Err(denials::expired(exp, now_ns));
        }
        if now_ns.saturating_add(skew_ns) < at(iat) {
            return Err(denials::issued_in_future(iat, now_ns));
        }
        Ok(())
    }

    /// The service account the claims name: the projected `kubernetes.io` claims when present,
    /// else the legacy flat `kubernetes.io/serviceaccount/...` ones.
    pub fn service_account(&self) -> Result<ServiceAccount, Denial> {
        let c = &self.claims;
        let mut sa = ServiceAccount {
            name: string_claim(c, "kubernetes.io/serviceaccount/service-account.name")?,
            namespace: string_claim(c, "kubernetes.io/serviceaccount/namespace")?,
            uid: string_claim(c, "kubernetes.io/serviceaccount/service-account.uid")?,
            secret_name: string_claim(c, "kubernetes.io/serviceaccount/secret.name")?,
            audiences: audiences(c)?,
        };
        match c.get("kubernetes.io") {
            None | Some(Value::Null) => {}
            Some(Value::Object(projected)) => {
                sa.namespace = string_claim(projected, "namespace")?;
                match projected.get("serviceaccount") {
                    None | Some(Value::Null) => {}
                    Some(Value::Object(account)) => {
                        sa.name = string_claim(account, "name")?;
                        sa.uid = string_claim(account, "uid")?;
                    }
                    Some(_) => return Err(claim_type("kubernetes.io.serviceaccount", "an object")),
                }
            }
            Some(_) => return Err(claim_type("kubernetes.io", "an object")),
        }
        Ok(sa)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn token(header: Value, claims: Value, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string()),
            B64.encode(sig)
        )
    }

    const NOW: i64 = 1_800_000_000;
    const NOW_NS: i64 = NOW * 1_000_000_000;

    fn summary(r: Result<(), Denial>) -> String {
        r.unwrap_err().summary
    }

    #[test]
    fn projected_claims_win_over_legacy_ones() {
        let jwt = parse(&token(
            json!({"alg": "RS256"}),
            json!({
                "aud": ["vault"],
                "kubernetes.io": {"namespace": "team-a", "serviceaccount": {"name": "app", "uid": "u-1"}},
                "kubernetes.io/serviceaccount/namespace": "ignored",
            }),
            b"s",
        ))
        .unwrap();
        let sa = jwt.service_account().unwrap();
        assert_eq!(
            (sa.namespace.as_str(), sa.name.as_str(), sa.uid.as_str()),
            ("team-a", "app", "u-1")
        );
        assert_eq!(sa.audiences, ["vault"]);
        let legacy = parse(&token(
            json!({"alg": "RS256"}),
            json!({
                "kubernetes.io/serviceaccount/namespace": "ns",
                "kubernetes.io/serviceaccount/service-account.name": "sa",
                "kubernetes.io/serviceaccount/service-account.uid": "u",
                "kubernetes.io/serviceaccount/secret.name": "sa-token-x",
                "aud": "one",
            }),
            b"s",
        ))
        .unwrap()
        .service_account()
        .unwrap();
        assert_eq!(legacy.secret_name, "sa-token-x");
        assert_eq!(legacy.audiences, ["one"]);
    }

    #[test]
    fn malformed_tokens_are_refused_as_openbao_refuses_them() {
        for bad in [
            "not-a-jwt".to_owned(),
            "a.b.c.d".to_owned(),
            token(json!({"alg": "none"}), json!({}), b""),
            token(json!({"alg": "HS256"}), json!({}), b"s"),
            token(json!({"alg": "RS256", "crit": ["x"]}), json!({}), b"s"),
            format!(
                "{}.{}.sig",
                B64.encode("{\"alg\":\"RS256\"}"),
                B64.encode("[1]")
            ),
            format!(
                "{}=.{}.c2ln",
                B64.encode("{\"alg\":\"RS256\"}"),
                B64.encode("{}")
            ),
        ] {
            let denial = parse(&bad).unwrap_err();
            assert_eq!(denial.summary, "permission denied", "{bad}");
            assert_eq!(denial.status, 403);
        }
    }

    #[test]
    fn algorithm_and_signature_presence_are_checked_after_parsing() {
        let ps = parse(&token(json!({"alg": "PS256"}), json!({}), b"s")).unwrap();
        assert_eq!(
            summary(ps.check(&Expected::default(), NOW_NS)),
            "invalid algorithm (alg) header parameter: token signed with unexpected algorithm"
        );
        let unsigned = parse(&token(json!({"alg": "RS256"}), json!({}), b"")).unwrap();
        assert_eq!(
            summary(unsigned.check(&Expected::default(), NOW_NS)),
            "invalid algorithm (alg) header parameter: token must be signed"
        );
    }

    #[test]
    fn time_claims_follow_caps_defaults_and_skew() {
        let check = |claims: Value| {
            parse(&token(json!({"alg": "RS256"}), claims, b"s"))
                .unwrap()
                .check(&Expected::default(), NOW_NS)
        };
        assert!(check(json!({})).is_ok(), "no time claims: not checked");
        assert!(check(json!({"exp": NOW - 59})).is_ok(), "within the skew");
        assert_eq!(
            summary(check(json!({"exp": NOW - 61}))),
            "invalid expiration time (exp) claim: token is expired"
        );
        assert_eq!(
            summary(check(json!({"nbf": NOW + 61}))),
            "invalid not before (nbf) claim: token not yet valid"
        );
        assert_eq!(
            summary(check(json!({"iat": NOW + 61, "exp": NOW + 999}))),
            "invalid not before (nbf) claim: token not yet valid",
            "nbf defaults to iat"
        );
        assert_eq!(
            summary(check(json!({"iat": NOW - 211}))),
            "invalid expiration time (exp) claim: token is expired",
            "exp defaults to iat + 150 s"
        );
        assert!(check(json!({"iat": NOW - 200})).is_ok());
        assert_eq!(
            summary(check(json!({"exp": "soon"}))),
            "permission denied",
            "a non-numeric time claim"
        );
    }

    #[test]
    fn issuer_and_audience_are_checked_only_when_expected() {
        let jwt = parse(&token(
            json!({"alg": "ES256"}),
            json!({"iss": "https://k8s", "aud": ["a", "b"]}),
            b"s",
        ))
        .unwrap();
        assert!(jwt.check(&Expected::default(), NOW_NS).is_ok());
        assert!(
            jwt.check(
                &Expected {
                    issuer: Some("https://k8s"),
                    audience: Some("b")
                },
                NOW_NS
            )
            .is_ok()
        );
        assert_eq!(
            summary(jwt.check(
                &Expected {
                    issuer: Some("other"),
                    audience: None
                },
                NOW_NS
            )),
            "invalid issuer (iss) claim"
        );
        let denial = jwt
            .check(
                &Expected {
                    issuer: None,
                    audience: Some("vault"),
                },
                NOW_NS,
            )
            .unwrap_err();
        assert_eq!(
            denial.summary,
            "invalid audience (aud) claim: audience claim does not match any expected audience"
        );
        assert!(denial.detail.contains("'vault'"), "{}", denial.detail);
    }

    #[test]
    fn case_folded_duplicates_of_registered_claims_are_refused() {
        let jwt = parse(&token(
            json!({"alg": "RS256"}),
            json!({"sub": "a", "ſub": "b"}),
            b"s",
        ))
        .unwrap();
        assert!(summary(jwt.check(&Expected::default(), NOW_NS)).starts_with("ambiguous claim"));
        assert!(folds_to("EXP", "exp"));
        assert!(!folds_to("expx", "exp"));
    }
}
