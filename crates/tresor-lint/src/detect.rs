//! What looks like a credential: key names, literal values, connection URLs, Docker auth
//! files, known token prefixes and high-entropy strings. Pure functions over strings; the
//! rules decide where to apply them.

use base64::Engine as _;

/// Credential words, matched against a key with case and separators (`-`, `_`, `.`, space)
/// removed: `client_secret`, `clientSecret` and `CLIENT-SECRET` all become `clientsecret`.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "token",
    "secret",
    "privatekey",
    "apikey",
    "accesskey",
    "secretkey",
    "credential",
    "connectionstring",
    "connstr",
    "dsn",
    "auth",
    "sessionkey",
    "signingkey",
    "encryptionkey",
    "masterkey",
];

/// Endings that make a key name a *reference to* a credential (a Secret's name, a file path,
/// a key name, a switch), not the credential itself: `secretName`, `passwordFile`,
/// `tokenPath`, `existingSecret`, `authEnabled`.
const REFERENCE_SUFFIXES: &[&str] = &[
    "name",
    "names",
    "ref",
    "refs",
    "file",
    "files",
    "path",
    "paths",
    "dir",
    "mount",
    "mountpath",
    "template",
    "type",
    "enabled",
    "enable",
    "disabled",
    "policy",
    "role",
    "store",
    "length",
    "ttl",
    "version",
    "provider",
    "mode",
    "source",
    "keyref",
    "selector",
    "url",
    "uri",
    "endpoint",
    "header",
    "method",
    "count",
    "expiry",
    "expiration",
    "lifetime",
    "duration",
    "period",
    "interval",
    "timeout",
    "size",
    "strategy",
    "annotations",
    "reload",
    "id",
    "audience",
    "issuer",
    "scope",
    "scopes",
    "format",
    "key",
    "keys",
];

/// Prefixes of the same kind: `existingSecret…`, `secretName`, `useSecret…`.
const REFERENCE_PREFIXES: &[&str] = &["existing", "use", "create", "enable", "disable", "allow"];

/// Normalises a key for matching: lower case, separators removed.
pub fn normalise_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a key names a credential (`password`, `DB_PASSWORD`, `client-secret`, `tls.key`'s
/// cousin `privateKey`), with `extra` patterns (already normalised) from the config.
pub fn is_credential_key(key: &str, extra: &[String]) -> bool {
    let k = normalise_key(key);
    if k.is_empty() {
        return false;
    }
    if extra
        .iter()
        .any(|p| !p.is_empty() && k.contains(p.as_str()))
    {
        return true;
    }
    if !CREDENTIAL_WORDS.iter().any(|w| k.contains(w)) {
        return false;
    }
    // `secretKey`, `accessKey`, `apiKey` end in "key" yet are credentials: the word list
    // decides for those before the reference endings are consulted.
    const KEYISH: &[&str] = &[
        "privatekey",
        "apikey",
        "accesskey",
        "secretkey",
        "sessionkey",
        "signingkey",
        "encryptionkey",
        "masterkey",
        "secretaccesskey",
    ];
    if KEYISH.iter().any(|w| k.ends_with(w)) {
        return !REFERENCE_PREFIXES.iter().any(|p| k.starts_with(p));
    }
    if REFERENCE_SUFFIXES
        .iter()
        .any(|s| k.ends_with(s) && k.len() > s.len())
    {
        // "auth" + "…name": but "password" itself does not end in a reference suffix.
        return false;
    }
    if REFERENCE_PREFIXES
        .iter()
        .any(|p| k.starts_with(p) && k.len() > p.len())
    {
        return false;
    }
    // "auth" alone is too broad ("oauth", "authorization" headers are caught as values);
    // accept it only as a whole word-ish key.
    if k.contains("auth")
        && !CREDENTIAL_WORDS
            .iter()
            .filter(|w| **w != "auth")
            .any(|w| k.contains(w))
    {
        return matches!(k.as_str(), "auth" | "basicauth" | "authstring" | "httpauth");
    }
    true
}

/// Whether a value is a placeholder rather than a literal: empty, Helm/Go templating
/// (`{{ … }}`), or an environment placeholder (`${VAR}`, Kubernetes' `$(VAR)`).
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v.contains("{{") || v.contains("${") || v.contains("$(")
}

/// The password of a URL-shaped credential (`scheme://user:password@host…`), if it holds a
/// literal one. Returns the byte range of the password in `value`.
pub fn url_password(value: &str) -> Option<std::ops::Range<usize>> {
    let scheme_end = value.find("://")?;
    let scheme = value.get(..scheme_end)?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let rest_start = scheme_end + 3;
    let rest = value.get(rest_start..)?;
    let authority_end = rest
        .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
        .unwrap_or(rest.len());
    let authority = rest.get(..authority_end)?;
    let at = authority.rfind('@')?;
    let userinfo = authority.get(..at)?;
    let colon = userinfo.find(':')?;
    let password = userinfo.get(colon + 1..)?;
    if password.is_empty() || is_placeholder(password) || password.chars().all(|c| c == '*') {
        return None;
    }
    let start = rest_start + colon + 1;
    Some(start..start + password.len())
}

/// Whether a Docker config JSON (`.dockerconfigjson`/`.dockercfg`) holds a literal credential:
/// an `auth`, `password` or `identitytoken` field that is not empty or a placeholder.
pub fn docker_config_has_auth(json: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    fn walk(v: &serde_json::Value, depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        match v {
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| {
                let secret_field = matches!(
                    k.to_ascii_lowercase().as_str(),
                    "auth" | "password" | "identitytoken" | "registrytoken"
                );
                match v {
                    serde_json::Value::String(s) if secret_field => !is_placeholder(s),
                    other => walk(other, depth + 1),
                }
            }),
            serde_json::Value::Array(items) => items.iter().any(|i| walk(i, depth + 1)),
            _ => false,
        }
    }
    walk(&value, 0)
}

/// Decodes a Secret's `data` value (standard base64, whitespace allowed). `None` when it is
/// not base64 — then the value is judged as written.
pub fn decode_base64(value: &str) -> Option<Vec<u8>> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
}

/// The redacted hint printed instead of a value: its first two characters (only when the
/// value is long enough that they give little away) and its length.
pub fn redact(value: &str) -> String {
    let len = value.chars().count();
    if len >= 8 {
        let head: String = value.chars().take(2).collect();
        format!("{head}… ({len} chars)")
    } else {
        format!("… ({len} chars)")
    }
}

/// A token with a recognisable issuer prefix, found in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownToken {
    /// What it is ("GitHub personal access token").
    pub what: &'static str,
    /// Byte range of the token in the value.
    pub range: std::ops::Range<usize>,
}

/// Prefix, description, minimum length of the part after the prefix, and the characters it
/// may hold.
struct Prefix {
    prefix: &'static str,
    what: &'static str,
    min_rest: usize,
    charset: fn(char) -> bool,
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
fn alnum_dash(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}
fn alnum_under(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}
fn upper_alnum(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn b64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}

const PREFIXES: &[Prefix] = &[
    Prefix {
        prefix: "ghp_",
        what: "GitHub personal access token",
        min_rest: 36,
        charset: alnum,
    },
    Prefix {
        prefix: "gho_",
        what: "GitHub OAuth token",
        min_rest: 36,
        charset: alnum,
    },
    Prefix {
        prefix: "ghu_",
        what: "GitHub user-to-server token",
        min_rest: 36,
        charset: alnum,
    },
    Prefix {
        prefix: "ghs_",
        what: "GitHub server-to-server token",
        min_rest: 36,
        charset: alnum,
    },
    Prefix {
        prefix: "ghr_",
        what: "GitHub refresh token",
        min_rest: 36,
        charset: alnum,
    },
    Prefix {
        prefix: "github_pat_",
        what: "GitHub fine-grained token",
        min_rest: 40,
        charset: alnum_under,
    },
    Prefix {
        prefix: "glpat-",
        what: "GitLab personal access token",
        min_rest: 20,
        charset: b64url,
    },
    Prefix {
        prefix: "xoxb-",
        what: "Slack bot token",
        min_rest: 20,
        charset: alnum_dash,
    },
    Prefix {
        prefix: "xoxp-",
        what: "Slack user token",
        min_rest: 20,
        charset: alnum_dash,
    },
    Prefix {
        prefix: "xoxa-",
        what: "Slack app token",
        min_rest: 20,
        charset: alnum_dash,
    },
    Prefix {
        prefix: "xoxs-",
        what: "Slack session token",
        min_rest: 20,
        charset: alnum_dash,
    },
    Prefix {
        prefix: "xapp-",
        what: "Slack app-level token",
        min_rest: 20,
        charset: alnum_dash,
    },
    Prefix {
        prefix: "AKIA",
        what: "AWS access key id",
        min_rest: 16,
        charset: upper_alnum,
    },
    Prefix {
        prefix: "ASIA",
        what: "AWS temporary access key id",
        min_rest: 16,
        charset: upper_alnum,
    },
    Prefix {
        prefix: "AIza",
        what: "Google API key",
        min_rest: 35,
        charset: b64url,
    },
    Prefix {
        prefix: "sk_live_",
        what: "Stripe secret key",
        min_rest: 20,
        charset: alnum,
    },
    Prefix {
        prefix: "rk_live_",
        what: "Stripe restricted key",
        min_rest: 20,
        charset: alnum,
    },
    Prefix {
        prefix: "npm_",
        what: "npm access token",
        min_rest: 36,
        charset: alnum,
    },
    Prefix {
        prefix: "hvs.",
        what: "Vault/OpenBao service token",
        min_rest: 24,
        charset: b64url,
    },
    Prefix {
        prefix: "hvb.",
        what: "Vault/OpenBao batch token",
        min_rest: 24,
        charset: b64url,
    },
    Prefix {
        prefix: "hvr.",
        what: "Vault/OpenBao recovery token",
        min_rest: 24,
        charset: b64url,
    },
    Prefix {
        prefix: "sk-",
        what: "OpenAI-style API key",
        min_rest: 40,
        charset: b64url,
    },
];

/// Finds the first known credential in `value`: a token with a known prefix, or a PEM private
/// key block. Documentation placeholders (`EXAMPLE`, runs of `x`) are not reported.
pub fn find_known_token(value: &str) -> Option<KnownToken> {
    if let Some(start) = value.find("-----BEGIN ")
        && let Some(rest) = value.get(start + 11..)
        && let Some(dashes) = rest.find("-----")
        && rest
            .get(..dashes)
            .is_some_and(|label| label.ends_with("PRIVATE KEY"))
    {
        // A header alone (documentation) is not a key: require a body after it.
        let body_start = start + 11 + dashes + 5;
        let body = value.get(body_start..).unwrap_or("");
        let body_len = body
            .chars()
            .take_while(|c| *c != '-')
            .filter(|c| !c.is_whitespace())
            .count();
        if body_len >= 32 {
            return Some(KnownToken {
                what: "PEM private key",
                range: start..body_start,
            });
        }
    }
    for p in PREFIXES {
        let mut from = 0;
        while let Some(found) = value.get(from..).and_then(|s| s.find(p.prefix)) {
            let start = from + found;
            from = start + p.prefix.len();
            // The token must start at a word boundary.
            let boundary = value
                .get(..start)
                .and_then(|s| s.chars().next_back())
                .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_' && c != '-');
            if !boundary {
                continue;
            }
            let rest = value.get(from..).unwrap_or("");
            let len: usize = rest
                .chars()
                .take_while(|c| (p.charset)(*c))
                .map(char::len_utf8)
                .sum();
            if len < p.min_rest {
                continue;
            }
            let token = value.get(start..from + len).unwrap_or("");
            if looks_like_placeholder_token(token) {
                continue;
            }
            return Some(KnownToken {
                what: p.what,
                range: start..from + len,
            });
        }
    }
    None
}

fn looks_like_placeholder_token(token: &str) -> bool {
    let upper = token.to_ascii_uppercase();
    upper.contains("EXAMPLE") || upper.contains("XXXXXXXX") || upper.contains("00000000")
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 128];
    let mut other = std::collections::HashMap::new();
    let mut n = 0u32;
    for c in s.chars() {
        n += 1;
        match counts.get_mut(c as usize) {
            Some(slot) => *slot += 1,
            None => *other.entry(c).or_insert(0u32) += 1,
        }
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .copied()
        .chain(other.values().copied())
        .filter(|&c| c > 0)
        .map(|c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether `value` (one token, no spaces) looks like a random secret: long enough, made of
/// token characters, mixing letters and digits, and close to the maximum entropy its length
/// allows. Hex digests, UUIDs, image references, paths and URLs are left alone.
pub fn is_high_entropy(value: &str) -> bool {
    let len = value.chars().count();
    if !(20..=512).contains(&len) {
        return false;
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-'))
    {
        return false;
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let uppers = value.chars().filter(char::is_ascii_uppercase).count();
    let lowers = value.chars().filter(char::is_ascii_lowercase).count();
    if digits == 0 || uppers + lowers == 0 {
        return false;
    }
    // Hex (digests, git SHAs, UUIDs without dashes) is not judged by entropy: too common in
    // manifests as checksums.
    if value.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return false;
    }
    // Paths and dashed words (`kube-system/my-app-config-7d9f`) are not tokens.
    let words = value.split(['/', '-', '_']).count();
    if words > 1 && value.split(['/', '-', '_']).all(|w| w.len() < 12) {
        return false;
    }
    // Real random tokens mix cases; an all-lower or all-upper value of a limited alphabet
    // must be longer to count.
    let mixed_case = uppers > 0 && lowers > 0;
    let h = shannon_entropy(value);
    let max = (len.min(64) as f64).log2();
    if mixed_case {
        h >= 4.0 && h >= 0.82 * max
    } else {
        len >= 32 && h >= 4.2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_keys_ignore_case_and_separators() {
        for k in [
            "password",
            "PASSWORD",
            "db_password",
            "DB-PASSWORD",
            "passwd",
            "token",
            "api_key",
            "apiKey",
            "clientSecret",
            "client_secret",
            "privateKey",
            "private-key",
            "accessKey",
            "AWS_SECRET_ACCESS_KEY",
            "secretKey",
            "connectionString",
            "auth",
        ] {
            assert!(is_credential_key(k, &[]), "{k}");
        }
    }

    #[test]
    fn reference_keys_are_not_credentials() {
        for k in [
            "secretName",
            "existingSecret",
            "passwordFile",
            "tokenPath",
            "secretRef",
            "authEnabled",
            "username",
            "host",
            "oauth2ProxyImage",
            "secretKeyRef",
            "keycloakPasswordKey",
            "tokenTTL",
            "author",
        ] {
            assert!(!is_credential_key(k, &[]), "{k}");
        }
    }

    #[test]
    fn extra_patterns_extend_the_list() {
        assert!(is_credential_key("OTP_SEED", &["otpseed".to_owned()]));
        assert!(!is_credential_key("OTP_SEED", &[]));
    }

    #[test]
    fn placeholders_are_not_literals() {
        for v in [
            "",
            "  ",
            "{{ .Values.pw }}",
            "${DB_PASSWORD}",
            "$(PASSWORD)",
        ] {
            assert!(is_placeholder(v), "{v:?}");
        }
        assert!(!is_placeholder("hunter2"));
    }

    #[test]
    fn url_passwords_are_found_unless_placeholders() {
        let v = "postgres://app:s3cr3t@db:5432/app";
        let r = url_password(v).unwrap();
        assert_eq!(&v[r], "s3cr3t");
        assert!(url_password("postgres://app:${PW}@db/app").is_none());
        assert!(url_password("https://example.com/a:b@c").is_none());
        assert!(url_password("postgres://app@db/app").is_none());
        assert!(url_password("redis://:****@redis:6379").is_none());
    }

    #[test]
    fn docker_configs_with_auth_are_credentials() {
        assert!(docker_config_has_auth(
            r#"{"auths":{"r.io":{"auth":"dXNlcjpwYXNz"}}}"#
        ));
        assert!(!docker_config_has_auth(r#"{"auths":{"r.io":{"auth":""}}}"#));
        assert!(!docker_config_has_auth(r#"{"auths":{}}"#));
    }

    #[test]
    fn known_tokens_are_found_with_their_range() {
        let v = "token=ghp_abcdefghijklmnopqrstuvwxyz0123456789 rest";
        let t = find_known_token(v).unwrap();
        assert_eq!(&v[t.range], "ghp_abcdefghijklmnopqrstuvwxyz0123456789");
        assert!(find_known_token("AKIAIOSFODNN7EXAMPLE").is_none());
        assert!(find_known_token("AKIAZ3QRSTUVWX2Y4ABC").is_some());
        assert!(find_known_token("ghp_short").is_none());
        assert!(find_known_token("xoxb-1234567890-abcdefghijklmnop").is_some());
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(find_known_token(pem).unwrap().what, "PEM private key");
        assert!(find_known_token("-----BEGIN CERTIFICATE-----\nMIIB\n").is_none());
        assert!(find_known_token("-----BEGIN PRIVATE KEY-----").is_none());
    }

    #[test]
    fn entropy_separates_tokens_from_words() {
        assert!(is_high_entropy("q8X2vLp9RtZ3mN7bK4wY1cH6"));
        assert!(is_high_entropy("wJalrXUtnFEMI/K7MDENG/bPxRfiCYz83kLmQpQ2"));
        assert!(!is_high_entropy("my-application-service-name"));
        assert!(!is_high_entropy(
            "3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed"
        ));
        assert!(!is_high_entropy("registry.k8s.io/ingress-nginx/controller"));
        assert!(!is_high_entropy("abcdefghijklmnopqrstuvwxyz"));
        assert!(!is_high_entropy("kube-system/my-app-config-7d9f"));
    }

    #[test]
    fn redaction_keeps_two_characters_and_the_length() {
        assert_eq!(redact("supersecretvalue"), "su… (16 chars)");
        assert_eq!(redact("short"), "… (5 chars)");
    }
}
