//! Key Vault's authentication challenge: a request without a (valid) bearer token is answered
//! `401` with `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
//! resource="https://vault.azure.net"` (older vaults say `authorization_uri`; newer ones may
//! give `scope` instead of `resource`). The client asks its credential for a token for
//! `<resource>/.default` in `<tenant>`.

/// What a challenge asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The authorization server's URL, e.g. `https://login.microsoftonline.com/<tenant>`.
    pub authorization: String,
    /// The tenant: the first path segment of `authorization`.
    pub tenant: String,
    /// The scope to ask a token for: `scope`, else `<resource>/.default`.
    pub scope: String,
    /// The resource (`https://vault.azure.net`), from `resource` or derived from `scope`.
    pub resource: String,
}

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the 401 answer has no WWW-Authenticate header")]
    Missing,
    #[error("the WWW-Authenticate challenge is not a Bearer challenge: {0}")]
    NotBearer(String),
    #[error("the Bearer challenge has no {0} parameter: {1}")]
    MissingParameter(&'static str, String),
    #[error("the challenge's authorization URL names no tenant: {0}")]
    NoTenant(String),
}

/// Parses a `WWW-Authenticate` value holding a Bearer challenge.
pub fn parse(header: &str) -> Result<Challenge, ChallengeError> {
    let trimmed = header.trim();
    let (scheme, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ChallengeError::NotBearer(short(header)));
    }
    let params = parameters(rest);
    let find = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let authorization = find("authorization")
        .or_else(|| find("authorization_uri"))
        .ok_or_else(|| ChallengeError::MissingParameter("authorization", short(header)))?;
    let (scope, resource) = match (find("scope"), find("resource")) {
        (Some(scope), resource) => {
            let derived = scope.trim_end_matches("/.default").to_owned();
            (scope, resource.unwrap_or(derived))
        }
        (None, Some(resource)) => (
            format!("{}/.default", resource.trim_end_matches('/')),
            resource,
        ),
        (None, None) => {
            return Err(ChallengeError::MissingParameter(
                "resource or scope",
                short(header),
            ));
        }
    };
    let tenant = url::Url::parse(&authorization)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_owned))
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ChallengeError::NoTenant(authorization.clone()))?;
    Ok(Challenge {
        authorization,
        tenant,
        scope,
        resource,
    })
}

/// `k="v", k2=v2` pairs (quoted strings may hold commas).
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (
                    quoted.get(..end).unwrap_or_default(),
                    quoted.get(end + 1..).unwrap_or_default(),
                ),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (
                    after.get(..end).unwrap_or_default(),
                    after.get(end..).unwrap_or_default(),
                ),
                None => (after, ""),
            }
        };
        out.push((key, value.trim().to_owned()));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_vault_challenges() {
        let c = parse(r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1", resource="https://vault.azure.net""#).unwrap();
        assert_eq!(c.tenant, "72f988bf-86f1");
        assert_eq!(c.scope, "https://vault.azure.net/.default");
        assert_eq!(c.resource, "https://vault.azure.net");
        let old = parse(r#"Bearer authorization_uri="https://login.windows.net/t1/", resource="https://vault.azure.net/""#).unwrap();
        assert_eq!(old.tenant, "t1");
        assert_eq!(old.scope, "https://vault.azure.net/.default");
        let scoped = parse(r#"Bearer authorization="https://login.microsoftonline.com/t2", scope="https://vault.azure.net/.default""#).unwrap();
        assert_eq!(scoped.resource, "https://vault.azure.net");
        assert!(matches!(
            parse(r#"Basic realm="x""#),
            Err(ChallengeError::NotBearer(_))
        ));
        assert!(matches!(
            parse(r#"Bearer resource="https://vault.azure.net""#),
            Err(ChallengeError::MissingParameter("authorization", _))
        ));
        assert!(matches!(
            parse(r#"Bearer authorization="https://login.microsoftonline.com/", resource="r""#),
            Err(ChallengeError::NoTenant(_))
        ));
    }
}
