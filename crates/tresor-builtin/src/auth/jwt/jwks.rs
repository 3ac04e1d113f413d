//! Where verification keys come from: the static `jwt_validation_pubkeys`, or a JWKS fetched
//! from `jwks_url` or from the `jwks_uri` of the OIDC discovery document.
//!
//! A fetched key set is cached. A token whose `kid` is not in the cache triggers one refetch
//! (key rotation at the provider needs no restart here); refetches are deduplicated (callers
//! waiting on the same stale cache share one fetch) and rate-limited by a token bucket, so a
//! stream of tokens with invented `kid`s cannot turn this server into a load generator
//! against the provider.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde_json::Value;

use super::fetch;
use super::keys::{Alg, Mismatch, PublicKey, parse_jwks};
use super::token::{Jws, Refusal};

/// Refetches allowed in a burst, and the time one more takes to accrue.
const REFETCH_BURST: f64 = 5.0;
const REFETCH_EVERY_SECS: f64 = 12.0;

/// The parts of an OIDC discovery document this method uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Discovery {
    pub(crate) issuer: String,
    pub(crate) jwks_uri: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: String,
}

/// Fetches `<base>/.well-known/openid-configuration` and checks that it names `base` as its
/// issuer, as go-oidc does (an attacker's document cannot claim another provider's name).
pub(crate) async fn discover(client: &reqwest::Client, base: &str) -> Result<Discovery, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        base.trim_end_matches('/')
    );
    let doc = fetch::get_json(client, &url).await?;
    let field = |name: &str| {
        doc.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let issuer = field("issuer");
    if issuer != base {
        return Err(format!(
            "oidc: issuer did not match the issuer returned by provider, expected {base:?} got {issuer:?}"
        ));
    }
    let jwks_uri = field("jwks_uri");
    if jwks_uri.is_empty() {
        return Err(format!("{url}: the discovery document has no jwks_uri"));
    }
    Ok(Discovery {
        issuer,
        jwks_uri,
        authorization_endpoint: field("authorization_endpoint"),
        token_endpoint: field("token_endpoint"),
    })
}

/// Where a remote key set is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwksLocation {
    Url(String),
    /// The discovery base URL; the JWKS is its `jwks_uri`.
    Discovery(String),
}

#[derive(Debug, Default)]
struct Cached {
    keys: Vec<PublicKey>,
    /// Bumped on every successful fetch; 0 means never fetched.
    generation: u64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    discovery: Option<Discovery>,
}

/// A JWKS fetched over HTTP and cached.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    location: JwksLocation,
    client: reqwest::Client,
    cache: RwLock<Arc<Cached>>,
    /// Serialises fetches and holds the refetch budget.
    fetching: tokio::sync::Mutex<Bucket>,
}

enum Refetch {
    Done,
    RateLimited,
}

impl RemoteKeys {
    pub(crate) fn new(location: JwksLocation, client: reqwest::Client) -> Self {
        Self {
            location,
            client,
            cache: RwLock::new(Arc::new(Cached::default())),
            fetching: tokio::sync::Mutex::new(Bucket {
                tokens: REFETCH_BURST,
                refilled: Instant::now(),
                discovery: None,
            }),
        }
    }

    fn snapshot(&self) -> Arc<Cached> {
        match self.cache.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The discovery document (fetched once, then cached), for the OIDC flow.
    pub(crate) async fn discovery(&self) -> Result<Discovery, String> {
        let JwksLocation::Discovery(base) = &self.location else {
            return Err("OIDC login is not configured for this mount".to_owned());
        };
        let mut bucket = self.fetching.lock().await;
        if let Some(d) = &bucket.discovery {
            return Ok(d.clone());
        }
        let d = discover(&self.client, base).await?;
        bucket.discovery = Some(d.clone());
        Ok(d)
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Fetches the key set unless another caller already replaced the generation `seen`.
    /// A `limited` fetch spends one token of the refetch budget.
    async fn refetch(&self, seen: u64, limited: bool) -> Result<Refetch, String> {
        let mut bucket = self.fetching.lock().await;
        if self.snapshot().generation != seen {
            return Ok(Refetch::Done);
        }
        if limited {
            let elapsed = bucket.refilled.elapsed().as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed / REFETCH_EVERY_SECS).min(REFETCH_BURST);
            bucket.refilled = Instant::now();
            if bucket.tokens < 1.0 {
                return Ok(Refetch::RateLimited);
            }
            bucket.tokens -= 1.0;
        }
        let url = match &self.location {
            JwksLocation::Url(u) => u.clone(),
            JwksLocation::Discovery(base) => {
                if bucket.discovery.is_none() {
                    bucket.discovery = Some(discover(&self.client, base).await?);
                }
                bucket
                    .discovery
                    .as_ref()
                    .map(|d| d.jwks_uri.clone())
                    .unwrap_or_default()
            }
        };
        let doc = fetch::get_json(&self.client, &url).await?;
        let keys = parse_jwks(&doc).map_err(|e| format!("{url}: {e}"))?;
        let fresh = Arc::new(Cached {
            keys,
            generation: seen.saturating_add(1),
        });
        match self.cache.write() {
            Ok(mut c) => *c = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(Refetch::Done)
    }

    /// Fetches the keys now (a config write checks the URL this way).
    pub(crate) async fn load(&self) -> Result<usize, String> {
        let seen = self.snapshot().generation;
        self.refetch(seen, false).await?;
        Ok(self.snapshot().keys.len())
    }

    async fn verify(&self, jws: &Jws, alg: Alg) -> Result<(), Refusal> {
        let unverified = REMOTE_UNVERIFIED;
        let fetch_failed = |e: String| {
            Refusal::new(
                "error verifying token signature: fetching keys oidc: get keys failed",
                format!("the JWKS could not be fetched: {e}"),
            )
        };
        let mut cache = self.snapshot();
        if cache.generation == 0 {
            self.refetch(0, false).await.map_err(fetch_failed)?;
            cache = self.snapshot();
        }
        let mut refetched = false;
        loop {
            let candidates: Vec<&PublicKey> = cache
                .keys
                .iter()
                .filter(|k| jws.kid.is_none() || k.kid == jws.kid)
                .collect();
            let outcome = try_keys(jws, alg, &candidates);
            let retry = match &outcome {
                Ok(()) => return Ok(()),
                // An unknown kid, or (without a kid) no key verifying: the provider may have
                // rotated its keys since the cache was filled.
                Err(_) if refetched => false,
                Err(_) if candidates.is_empty() => true,
                Err(_) => jws.kid.is_none(),
            };
            if retry {
                refetched = true;
                match self.refetch(cache.generation, true).await {
                    Ok(Refetch::Done) => {
                        cache = self.snapshot();
                        continue;
                    }
                    Ok(Refetch::RateLimited) => {
                        return Err(match &jws.kid {
                            Some(kid) if candidates.is_empty() => Refusal::new(
                                unverified,
                                format!(
                                    "no key with kid '{}' in the cached JWKS, and refetching is rate-limited (one per {REFETCH_EVERY_SECS}s after a burst of {REFETCH_BURST}); retry shortly",
                                    super::claims::shown(kid)
                                ),
                            ),
                            _ => outcome_refusal(jws, alg, &candidates, unverified, "the JWKS"),
                        });
                    }
                    Err(e) => return Err(fetch_failed(e)),
                }
            }
            return Err(match &jws.kid {
                Some(kid) if candidates.is_empty() => Refusal::new(
                    unverified,
                    format!(
                        "no key with kid '{}' in the JWKS even after a refetch",
                        super::claims::shown(kid)
                    ),
                ),
                _ => outcome_refusal(jws, alg, &candidates, unverified, "the JWKS"),
            });
        }
    }
}

const REMOTE_UNVERIFIED: &str =
    "error verifying token signature: failed to verify id token signature";
const REMOTE_MALFORMED: &str = "error verifying token signature: oidc: malformed jwt: ";
const STATIC_UNVERIFIED: &str =
    "error verifying token signature: no known key successfully validated the token signature";
const STATIC_MALFORMED: &str = "error verifying token signature: ";

fn try_keys(jws: &Jws, alg: Alg, keys: &[&PublicKey]) -> Result<(), Vec<Mismatch>> {
    let mut misses = Vec::with_capacity(keys.len());
    for key in keys {
        match jws.verify_with(alg, key) {
            Ok(()) => return Ok(()),
            Err(m) => misses.push(m),
        }
    }
    Err(misses)
}

/// The refusal for a signature no candidate key verified, saying why.
fn outcome_refusal(
    jws: &Jws,
    alg: Alg,
    keys: &[&PublicKey],
    summary: &str,
    source: &str,
) -> Refusal {
    let misses = match try_keys(jws, alg, keys) {
        Ok(()) => Vec::new(),
        Err(m) => m,
    };
    let detail = if keys.is_empty() {
        format!("{source} holds no key that can verify signatures")
    } else if misses.contains(&Mismatch::BadSignature) {
        match (&jws.kid, keys.len()) {
            (Some(kid), _) => format!(
                "the signature does not verify with key '{}' of {source} (a tampered token, or one signed by another key)",
                super::claims::shown(kid)
            ),
            (None, n) => format!(
                "the signature does not verify with any of the {n} keys of {source} (a tampered token, or one signed by a foreign key)"
            ),
        }
    } else if misses.contains(&Mismatch::Unsupported) {
        format!(
            "{} signatures (P-521) cannot be verified by this server",
            alg.name()
        )
    } else {
        format!(
            "no key of {source} is of the type alg '{}' needs",
            alg.name()
        )
    };
    Refusal::new(summary, detail)
}

/// The keys a mount verifies tokens with.
#[derive(Debug)]
pub(crate) enum KeySource {
    Static(Vec<PublicKey>),
    Remote(RemoteKeys),
}

impl KeySource {
    /// OpenBao's wording before a token parse error, which depends on the key source.
    pub(crate) fn malformed(&self) -> &'static str {
        match self {
            KeySource::Static(_) => STATIC_MALFORMED,
            KeySource::Remote(_) => REMOTE_MALFORMED,
        }
    }

    /// OpenBao's wording for a signature that did not verify.
    pub(crate) fn unverified(&self) -> &'static str {
        match self {
            KeySource::Static(_) => STATIC_UNVERIFIED,
            KeySource::Remote(_) => REMOTE_UNVERIFIED,
        }
    }

    /// Verifies the token's signature with a key of this source.
    pub(crate) async fn verify(&self, jws: &Jws, alg: Alg) -> Result<(), Refusal> {
        match self {
            KeySource::Static(keys) => {
                let all: Vec<&PublicKey> = keys.iter().collect();
                match try_keys(jws, alg, &all) {
                    Ok(()) => Ok(()),
                    Err(_) => Err(outcome_refusal(
                        jws,
                        alg,
                        &all,
                        STATIC_UNVERIFIED,
                        "jwt_validation_pubkeys",
                    )),
                }
            }
            KeySource::Remote(remote) => remote.verify(jws, alg).await,
        }
    }

    pub(crate) fn remote(&self) -> Option<&RemoteKeys> {
        match self {
            KeySource::Remote(r) => Some(r),
            KeySource::Static(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::keys::test_keys::TestKey;
    use super::super::token::parse;
    use super::*;

    /// A one-route HTTP server answering every request with the current JWKS document and
    /// counting requests.
    async fn jwks_server(doc: Arc<RwLock<Value>>, hits: Arc<AtomicUsize>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let doc = doc.read().unwrap().to_string();
                hits.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                        doc.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/jwks")
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_the_jwks_once_and_finds_the_rotated_key() {
        let (k1, k2) = (TestKey::es256(), TestKey::es256());
        let doc = Arc::new(RwLock::new(json!({"keys": [k1.jwk("k1")]})));
        let hits = Arc::new(AtomicUsize::new(0));
        let url = jwks_server(Arc::clone(&doc), Arc::clone(&hits)).await;
        let keys = KeySource::Remote(RemoteKeys::new(
            JwksLocation::Url(url),
            fetch::client("").unwrap(),
        ));
        let claims = json!({"sub": "x"});
        let jws = |k: &TestKey, kid: &str| parse(&k.token(Some(kid), &claims), "m").unwrap();
        keys.verify(&jws(&k1, "k1"), Alg::Es256).await.unwrap();
        keys.verify(&jws(&k1, "k1"), Alg::Es256).await.unwrap();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "cached after the first fetch"
        );

        // k2 is not published yet: one refetch, then a refusal naming the kid.
        let err = keys.verify(&jws(&k2, "k2"), Alg::Es256).await.unwrap_err();
        assert_eq!(
            err.detail,
            "no key with kid 'k2' in the JWKS even after a refetch"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 2);

        // The provider rotates to k2: the next token with kid k2 is accepted without restart.
        *doc.write().unwrap() = json!({"keys": [k2.jwk("k2")]});
        keys.verify(&jws(&k2, "k2"), Alg::Es256).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 3);

        // A token signed by a foreign key under a known kid is refused without a refetch.
        let err = keys.verify(&jws(&k1, "k2"), Alg::Es256).await.unwrap_err();
        assert!(
            err.detail.contains("does not verify with key 'k2'"),
            "{err:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3);

        // Invented kids exhaust the refetch budget, then stop reaching the provider.
        for i in 0..20 {
            let kid = format!("x{i}");
            let _ = keys.verify(&jws(&k1, &kid), Alg::Es256).await;
        }
        let fetched = hits.load(Ordering::SeqCst);
        assert!(fetched <= 3 + 5, "rate-limited: {fetched} fetches");
        let err = keys.verify(&jws(&k1, "y"), Alg::Es256).await.unwrap_err();
        assert!(err.detail.contains("rate-limited"), "{err:?}");
    }

    #[tokio::test]
    async fn static_keys_refuse_foreign_and_tampered_tokens() {
        let (mine, foreign) = (TestKey::rsa(), TestKey::rsa());
        let keys = KeySource::Static(vec![PublicKey::from_pem(&mine.public_pem()).unwrap()]);
        let claims = json!({"sub": "x"});
        let good = mine.token(None, &claims);
        keys.verify(&parse(&good, "m").unwrap(), Alg::Rs256)
            .await
            .unwrap();
        let err = keys
            .verify(
                &parse(&foreign.token(None, &claims), "m").unwrap(),
                Alg::Rs256,
            )
            .await
            .unwrap_err();
        assert_eq!(err.summary, STATIC_UNVERIFIED);
        assert!(err.detail.contains("foreign key"), "{err:?}");
        // Swap the payload for another one: the signature no longer covers it.
        let mut parts: Vec<&str> = good.split('.').collect();
        let other = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"sub": "admin"}).to_string(),
        );
        parts[1] = &other;
        let tampered = parts.join(".");
        assert!(
            keys.verify(&parse(&tampered, "m").unwrap(), Alg::Rs256)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn an_unreachable_jwks_is_a_clear_refusal() {
        let keys = KeySource::Remote(RemoteKeys::new(
            JwksLocation::Url("http://127.0.0.1:9/jwks".to_owned()),
            fetch::client("").unwrap(),
        ));
        let k = TestKey::es256();
        let err = keys
            .verify(
                &parse(&k.token(Some("a"), &json!({})), "m").unwrap(),
                Alg::Es256,
            )
            .await
            .unwrap_err();
        assert!(
            err.detail.starts_with("the JWKS could not be fetched"),
            "{err:?}"
        );
    }
}
