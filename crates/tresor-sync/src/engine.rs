//! One pass of the sync engine: every resource's sources fetched, its Secret rendered. A
//! resource with any failing source yields [`Failure`]s (one per failing key, with a safe
//! reason) and no Secret. Nothing here writes anywhere.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Map, Value as Json};
use tresor_sdk::secret::{SecretBytes, SecretString};
use zeroize::Zeroizing;

use crate::extract;
use crate::login_jwt::{self, JwtSource};
use crate::model::{Manifests, Resource, eso, tresor as ts, vso};
use crate::secret::{DesiredSecret, LeaseInfo, Origin, WritePolicy};
use crate::template::{self, Value as TValue};
use crate::vault::{Endpoint, FetchError, HttpPool, LoginPool, SecretJson, VaultClient};

/// One failing resource key: printed as `<resource>: <key>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `Kind namespace/name`.
    pub resource: String,
    /// The Secret key or source the failure is about, when there is one.
    pub key: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {}: {}", self.resource, key, self.reason),
            None => write!(f, "{}: {}", self.resource, self.reason),
        }
    }
}

/// What the engine may use beyond the resources.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Overrides every store's and connection's address (`--address`/`VAULT_ADDR`).
    pub address: Option<String>,
    /// Overrides every store's authentication (`--token`/`VAULT_TOKEN`).
    pub token: Option<SecretString>,
    /// The service account token for Kubernetes logins (the projected token file).
    pub jwt_file: PathBuf,
    /// The namespace of resources that name none.
    pub default_namespace: String,
    /// Extra CA certificates (PEM) for every connection (`--ca-cert`).
    pub ca_pem: Option<Vec<u8>>,
    /// The HTTP connections every pass with these options shares (a controller's reconciles).
    pub http: HttpPool,
    /// The Kubernetes logins every pass with these options shares (see [`LoginPool`]).
    pub logins: LoginPool,
}

/// What one pass produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub secrets: Vec<DesiredSecret>,
    pub failures: Vec<Failure>,
}

/// How to authenticate.
#[derive(Debug, Clone)]
enum AuthPlan {
    Token(SecretString),
    Kubernetes {
        mount: String,
        role: String,
        jwt: JwtSource,
    },
    TokenSecret {
        namespace: String,
        name: String,
        key: String,
    },
    Anonymous,
}

impl AuthPlan {
    fn cache_key(&self) -> String {
        match self {
            AuthPlan::Token(_) => "token".into(),
            AuthPlan::Kubernetes { mount, role, jwt } => {
                format!("k8s:{mount}:{role}:{}", jwt.cache_key())
            }
            AuthPlan::TokenSecret {
                namespace,
                name,
                key,
            } => format!("secret:{namespace}/{name}/{key}"),
            AuthPlan::Anonymous => "none".into(),
        }
    }
}

/// Reads Kubernetes objects the resources refer to (token Secrets, CA bundles). `None` in
/// file-only mode.
pub type Kube = Option<kube::Client>;

pub struct Engine<'a> {
    manifests: &'a Manifests,
    options: &'a Options,
    kube: Kube,
    /// Logged-in clients by address, namespace and authentication, shared by the resources
    /// fetched concurrently.
    clients: tokio::sync::Mutex<HashMap<String, Result<VaultClient, FetchError>>>,
    /// The keys of the logins this pass took from or gave to `options.logins`: forgotten there
    /// if the pass fails, in case their token is what failed.
    pooled: std::sync::Mutex<Vec<String>>,
}

/// Resources fetched at once: enough to hide round trips, few enough not to flood a server.
const FETCH_CONCURRENCY: usize = 16;

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

fn ns_of(meta: &crate::model::Meta, default: &str) -> String {
    meta.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn utf8(key: &str, v: &SecretBytes) -> Result<String, String> {
    std::str::from_utf8(v.expose())
        .map(str::to_owned)
        .map_err(|_| format!("the value of {key:?} is not UTF-8 text, which templates need"))
}

impl<'a> Engine<'a> {
    pub fn new(manifests: &'a Manifests, options: &'a Options, kube: Kube) -> Self {
        Engine {
            manifests,
            options,
            kube,
            clients: tokio::sync::Mutex::new(HashMap::new()),
            pooled: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Fetches and renders every resource that produces a Secret.
    pub async fn run(&mut self) -> Outcome {
        let mut out = Outcome::default();
        let engine = &*self;
        // Up to FETCH_CONCURRENCY resources at a time, results in input order (so output and
        // failures come in the same order as a sequential pass).
        let passes = engine
            .manifests
            .resources
            .iter()
            .map(|resource| async move {
                Some(match resource {
                    Resource::ExternalSecret(es) => engine.external_secret(es).await,
                    Resource::VaultStaticSecret(s) => engine.vault_static(s).await,
                    Resource::VaultDynamicSecret(s) => engine.vault_dynamic(s).await,
                    Resource::TresorSecret(s) => engine.tresor_secret(s).await,
                    _ => return None,
                })
            });
        for result in crate::bounded::ordered(passes, FETCH_CONCURRENCY)
            .await
            .into_iter()
            .flatten()
        {
            match result {
                Ok(Some(mut secret)) => {
                    secret.seal();
                    out.secrets.push(secret);
                }
                Ok(None) => {}
                Err(mut failures) => out.failures.append(&mut failures),
            }
        }
        if !out.failures.is_empty()
            && let Ok(keys) = self.pooled.lock()
        {
            for key in keys.iter() {
                self.options.logins.forget(key);
            }
        }
        // Two resources must not write one Secret.
        let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
        for s in &out.secrets {
            if let Some(first) =
                seen.insert((s.namespace.clone(), s.name.clone()), s.origin.to_string())
            {
                out.failures.push(Failure {
                    resource: s.origin.to_string(),
                    key: None,
                    reason: format!(
                        "Secret {}/{} is also the target of {first}",
                        s.namespace, s.name
                    ),
                });
            }
        }
        out
    }

    // ---- connections and logins ---------------------------------------------------------

    async fn client(&self, endpoint: Endpoint, auth: AuthPlan) -> Result<VaultClient, FetchError> {
        let auth = match &self.options.token {
            Some(t) => AuthPlan::Token(t.clone()),
            None => auth,
        };
        let key = format!(
            "{}|{}|{}",
            endpoint.address,
            endpoint.namespace.as_deref().unwrap_or(""),
            auth.cache_key()
        );
        // Held across the login: resources sharing a store wait for its one login instead of
        // each logging in.
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&key) {
            return c.clone();
        }
        // Only Kubernetes logins are kept across passes: a token is as cheap to set again, and
        // a token Secret is read at each pass so that its rotation is seen.
        let kept = matches!(auth, AuthPlan::Kubernetes { .. });
        if kept && let Some(client) = self.options.logins.get(&key) {
            self.remember_pooled(&key);
            clients.insert(key, Ok(client.clone()));
            return Ok(client);
        }
        let result = self.login(endpoint, auth).await;
        if kept && let Ok((client, ttl)) = &result {
            self.options.logins.put(&key, client, *ttl);
            self.remember_pooled(&key);
        }
        let result = result.map(|(client, _)| client);
        clients.insert(key, result.clone());
        result
    }

    fn remember_pooled(&self, key: &str) {
        if let Ok(mut keys) = self.pooled.lock() {
            keys.push(key.to_owned());
        }
    }

    /// A client with its authentication, and the TTL of a login's token (0 otherwise).
    async fn login(
        &self,
        endpoint: Endpoint,
        auth: AuthPlan,
    ) -> Result<(VaultClient, u64), FetchError> {
        let mut client = VaultClient::pooled(endpoint, &self.options.http)?;
        let mut ttl = 0;
        match auth {
            AuthPlan::Token(t) => client.set_token(t),
            AuthPlan::Anonymous => {}
            AuthPlan::Kubernetes { mount, role, jwt } => {
                let jwt = self.login_jwt(&jwt).await?;
                ttl = client.login_kubernetes(&mount, &role, &jwt).await?;
            }
            AuthPlan::TokenSecret {
                namespace,
                name,
                key,
            } => {
                let token = self.secret_value(&namespace, &name, &key).await?;
                let text = std::str::from_utf8(token.expose()).map_err(|_| {
                    FetchError::Config(format!("Secret {namespace}/{name} key {key:?} is not text"))
                })?;
                client.set_token(SecretString::new(text.trim().to_owned()));
            }
        }
        Ok((client, ttl))
    }

    /// The JWT a Kubernetes login presents (see [`JwtSource`]).
    async fn login_jwt(&self, source: &JwtSource) -> Result<SecretString, FetchError> {
        match source {
            JwtSource::OwnToken => {
                let path = &self.options.jwt_file;
                let jwt = std::fs::read_to_string(path).map_err(|e| {
                    FetchError::Config(format!(
                        "Kubernetes login needs the service account token at {} ({}); pass --token or --jwt-file",
                        path.display(),
                        e.kind()
                    ))
                })?;
                Ok(SecretString::new(jwt.trim().to_owned()))
            }
            JwtSource::ServiceAccount {
                namespace,
                name,
                audiences,
                expiration_seconds,
            } => {
                let Some(kube) = self.kube.clone() else {
                    return Err(FetchError::Config(format!(
                        "a login as service account {namespace}/{name} needs a TokenRequest, so cluster access; pass --token with --output"
                    )));
                };
                login_jwt::token_request(kube, namespace, name, audiences, *expiration_seconds)
                    .await
            }
            JwtSource::Secret {
                namespace,
                name,
                key,
            } => {
                let token = self.secret_value(namespace, name, key).await?;
                let text = std::str::from_utf8(token.expose()).map_err(|_| {
                    FetchError::Config(format!("Secret {namespace}/{name} key {key:?} is not text"))
                })?;
                Ok(SecretString::new(text.trim().to_owned()))
            }
        }
    }

    /// A namespaced object of the cluster (`kind` names it in errors; `flags` are what to pass
    /// instead when there is no cluster access, with `--output`).
    async fn cluster_object<K>(
        &self,
        kind: &str,
        flags: &str,
        namespace: &str,
        name: &str,
    ) -> Result<K, FetchError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let Some(kube) = self.kube.clone() else {
            return Err(FetchError::Config(format!(
                "{kind} {namespace}/{name} is only readable with cluster access; pass {flags} with --output"
            )));
        };
        let api: kube::Api<K> = kube::Api::namespaced(kube, namespace);
        api.get_opt(name)
            .await
            .map_err(|e| {
                FetchError::Config(format!(
                    "reading {kind} {namespace}/{name}: {}",
                    crate::apply::kube_reason(&e)
                ))
            })?
            .ok_or_else(|| FetchError::Config(format!("{kind} {namespace}/{name} not found")))
    }

    /// A key of a Secret in the cluster (token and CA references).
    async fn secret_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<SecretBytes, FetchError> {
        let secret: k8s_openapi::api::core::v1::Secret = self
            .cluster_object("Secret", "--token (and --ca-cert)", namespace, name)
            .await?;
        secret
            .data
            .and_then(|mut d| d.remove(key))
            .map(|b| SecretBytes::new(b.0))
            .ok_or_else(|| {
                FetchError::Config(format!("Secret {namespace}/{name} has no key {key:?}"))
            })
    }

    async fn config_map_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let cm: k8s_openapi::api::core::v1::ConfigMap = self
            .cluster_object("ConfigMap", "--ca-cert", namespace, name)
            .await?;
        cm.data
            .and_then(|mut d| d.remove(key))
            .map(String::into_bytes)
            .ok_or_else(|| {
                FetchError::Config(format!("ConfigMap {namespace}/{name} has no key {key:?}"))
            })
    }

    fn address(&self, declared: &str) -> Result<String, FetchError> {
        match self.options.address.as_deref().filter(|a| !a.is_empty()) {
            Some(a) => Ok(a.to_owned()),
            None if !declared.is_empty() => Ok(declared.to_owned()),
            None => Err(FetchError::Config(
                "no server address: the resource names none; pass --address or set VAULT_ADDR"
                    .into(),
            )),
        }
    }

    // ---- ESO -----------------------------------------------------------------------------

    async fn eso_store(
        &self,
        es_ns: &str,
        store_ref: &eso::StoreRef,
    ) -> Result<(VaultClient, eso::VaultProvider), String> {
        let cluster = store_ref.kind.as_deref() == Some("ClusterSecretStore");
        let kind = if cluster {
            "ClusterSecretStore"
        } else {
            "SecretStore"
        };
        let found = self.manifests.resources.iter().find_map(|r| match r {
            Resource::SecretStore(s)
                if !cluster
                    && s.metadata.name == store_ref.name
                    && ns_of(&s.metadata, &self.options.default_namespace) == es_ns =>
            {
                Some(s)
            }
            Resource::ClusterSecretStore(s) if cluster && s.metadata.name == store_ref.name => {
                Some(s)
            }
            _ => None,
        });
        let Some(store) = found else {
            return Err(if cluster {
                format!("{kind} {} not found in the inputs", store_ref.name)
            } else {
                format!("{kind} {es_ns}/{} not found in the inputs", store_ref.name)
            });
        };
        let Some(vault) = store.spec.provider.vault.clone() else {
            let names: Vec<&str> = store
                .spec
                .provider
                .other
                .keys()
                .map(String::as_str)
                .collect();
            return Err(format!(
                "{kind} {}: provider {} is not supported (only vault)",
                store_ref.name,
                if names.is_empty() {
                    "(none)".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        };
        let store_ns = ns_of(&store.metadata, &self.options.default_namespace);
        let address = self.address(&vault.server).map_err(|e| e.to_string())?;
        let mut ca_pem = self.options.ca_pem.clone();
        if let Some(b64) = vault.ca_bundle.as_deref().filter(|s| !s.is_empty()) {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| format!("{kind} {}: caBundle is not base64", store_ref.name))?;
            ca_pem.get_or_insert_with(Vec::new).extend(pem);
        } else if let Some(p) = &vault.ca_provider
            && self.options.ca_pem.is_none()
        {
            let ns = p.namespace.clone().unwrap_or_else(|| {
                if cluster {
                    self.options.default_namespace.clone()
                } else {
                    store_ns.clone()
                }
            });
            let pem = if p.type_ == "ConfigMap" {
                self.config_map_value(&ns, &p.name, &p.key).await
            } else {
                self.secret_value(&ns, &p.name, &p.key)
                    .await
                    .map(|b| b.expose().to_vec())
            }
            .map_err(|e| format!("{kind} {}: caProvider: {e}", store_ref.name))?;
            ca_pem = Some(pem);
        }
        // ESO resolves what a store refers to in the store's namespace; a ClusterSecretStore's
        // references in their own `namespace`, else in the ExternalSecret's.
        let ref_ns = |declared: Option<&String>| match declared.filter(|n| !n.is_empty()) {
            Some(n) if cluster => n.clone(),
            _ if cluster => es_ns.to_owned(),
            _ => store_ns.clone(),
        };
        let auth = if let Some(k) = &vault.auth.kubernetes {
            let jwt = if let Some(sa) = &k.service_account_ref {
                JwtSource::ServiceAccount {
                    namespace: ref_ns(sa.namespace.as_ref()),
                    name: sa.name.clone(),
                    audiences: sa.audiences.clone(),
                    expiration_seconds: login_jwt::DEFAULT_EXPIRATION_SECONDS,
                }
            } else if let Some(secret) = &k.secret_ref {
                JwtSource::Secret {
                    namespace: ref_ns(secret.namespace.as_ref()),
                    name: secret.name.clone(),
                    key: secret.key.clone().unwrap_or_else(|| "token".into()),
                }
            } else {
                JwtSource::OwnToken
            };
            AuthPlan::Kubernetes {
                mount: k
                    .mount_path
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "kubernetes".into()),
                role: k.role.clone(),
                jwt,
            }
        } else if let Some(t) = &vault.auth.token_secret_ref {
            AuthPlan::TokenSecret {
                namespace: ref_ns(t.namespace.as_ref()),
                name: t.name.clone(),
                key: t.key.clone().unwrap_or_else(|| "token".into()),
            }
        } else if self.options.token.is_some() {
            AuthPlan::Anonymous
        } else {
            let names: Vec<&str> = vault.auth.other.keys().map(String::as_str).collect();
            return Err(format!(
                "{kind} {}: auth method {} is not supported (kubernetes, tokenSecretRef, or --token)",
                store_ref.name,
                if names.is_empty() {
                    "(none)".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        };
        let endpoint = Endpoint {
            address,
            ca_pem,
            skip_verify: false,
            namespace: vault.namespace.clone(),
        };
        let client = self
            .client(endpoint, auth)
            .await
            .map_err(|e| e.to_string())?;
        Ok((client, vault))
    }

    async fn external_secret(
        &self,
        es: &eso::ExternalSecret,
    ) -> Result<Option<DesiredSecret>, Vec<Failure>> {
        let ns = ns_of(&es.metadata, &self.options.default_namespace);
        let resource = format!("ExternalSecret {ns}/{}", es.metadata.name);
        let fail = |key: Option<String>, reason: String| Failure {
            resource: resource.clone(),
            key,
            reason,
        };
        let spec = &es.spec;
        // Unsupported fields first: they would change what the Secret holds.
        let mut unsupported = Vec::new();
        for (i, d) in spec.data.iter().enumerate() {
            if d.source_ref.is_some() {
                unsupported.push(fail(
                    Some(d.secret_key.clone()),
                    format!("data[{i}].sourceRef is not supported yet"),
                ));
            }
            if let Some(s) = d
                .remote_ref
                .decoding_strategy
                .as_deref()
                .filter(|s| *s != "None")
            {
                unsupported.push(fail(
                    Some(d.secret_key.clone()),
                    format!("decodingStrategy {s} is not supported yet"),
                ));
            }
        }
        for (i, d) in spec.data_from.iter().enumerate() {
            if d.find.is_some()
                || d.source_ref.is_some()
                || !d.rewrite.is_empty()
                || d.extract.is_none()
            {
                unsupported.push(fail(
                    Some(format!("dataFrom[{i}]")),
                    "only dataFrom[].extract is supported yet (not find, rewrite or sourceRef)"
                        .into(),
                ));
            }
        }
        if let Some(t) = &spec.target.template {
            if t.engine_version.as_deref().is_some_and(|v| v != "v2") {
                unsupported.push(fail(
                    None,
                    "template engineVersion v1 is not supported (v2 is)".into(),
                ));
            }
            if !t.template_from.is_empty() {
                unsupported.push(fail(
                    None,
                    "target.template.templateFrom is not supported yet".into(),
                ));
            }
        }
        if !unsupported.is_empty() {
            return Err(unsupported);
        }
        let policy = match spec.target.creation_policy.as_deref().unwrap_or("Owner") {
            "Owner" => WritePolicy::Owner,
            "Orphan" => WritePolicy::Orphan,
            "Merge" => WritePolicy::Merge,
            "None" => WritePolicy::None,
            other => {
                return Err(vec![fail(
                    None,
                    format!("creationPolicy {other:?} is not one of Owner, Orphan, Merge, None"),
                )]);
            }
        };
        let Some(store_ref) = spec.secret_store_ref.clone() else {
            return Err(vec![fail(None, "spec.secretStoreRef is missing".into())]);
        };
        let (client, vault) = self
            .eso_store(&ns, &store_ref)
            .await
            .map_err(|r| vec![fail(None, r)])?;
        let v2 = vault.version.as_deref() != Some("v1");
        let mut failures = Vec::new();
        let mut data: BTreeMap<String, SecretBytes> = BTreeMap::new();
        // One read per (key, version) for the whole resource.
        let mut reads: HashMap<(String, Option<String>), Result<SecretJson, FetchError>> =
            HashMap::new();
        for item in &spec.data {
            let r = &item.remote_ref;
            let path = eso_path(vault.path.as_deref(), v2, &r.key);
            let cache_key = (path.clone(), r.version.clone());
            if !reads.contains_key(&cache_key) {
                let read = client.kv(&path, v2, r.version.as_deref()).await;
                reads.insert(cache_key.clone(), read);
            }
            match reads.get(&cache_key) {
                Some(Ok(json)) => match extract::property(&json.0, r.property.as_deref()) {
                    Ok(v) => {
                        data.insert(item.secret_key.clone(), v);
                    }
                    Err(e) => {
                        failures.push(fail(Some(item.secret_key.clone()), format!("{path}: {e}")))
                    }
                },
                Some(Err(e)) => failures.push(fail(Some(item.secret_key.clone()), e.to_string())),
                None => {}
            }
        }
        for (i, from) in spec.data_from.iter().enumerate() {
            let Some(r) = &from.extract else { continue };
            let path = eso_path(vault.path.as_deref(), v2, &r.key);
            let label = format!("dataFrom[{i}].extract {}", r.key);
            match client.kv(&path, v2, r.version.as_deref()).await {
                Ok(json) => match extract::flatten(&json.0, r.property.as_deref()) {
                    Ok(map) => data.extend(map),
                    Err(e) => failures.push(fail(Some(label), format!("{path}: {e}"))),
                },
                Err(e) => failures.push(fail(Some(label), e.to_string())),
            }
        }
        if !failures.is_empty() {
            return Err(failures);
        }
        if policy == WritePolicy::None {
            return Ok(None);
        }
        let mut labels = BTreeMap::new();
        let mut annotations = BTreeMap::new();
        let mut type_ = "Opaque".to_owned();
        let mut out = data;
        if let Some(t) = &spec.target.template {
            if let Some(ty) = t.type_.as_deref().filter(|t| !t.is_empty()) {
                type_ = ty.to_owned();
            }
            let mut context = BTreeMap::new();
            for (k, v) in &out {
                match utf8(k, v) {
                    Ok(s) => {
                        context.insert(k.clone(), TValue::Str(Zeroizing::new(s)));
                    }
                    Err(reason) => failures.push(fail(Some(k.clone()), reason)),
                }
            }
            let dot = TValue::Map(context);
            let render = |name: &str, text: &str| template::render(name, text, &dot);
            let mut rendered = BTreeMap::new();
            for (k, text) in &t.data {
                match render(k, text) {
                    Ok(s) => {
                        rendered.insert(k.clone(), SecretBytes::new(s.as_bytes().to_vec()));
                    }
                    Err(e) => failures.push(fail(Some(k.clone()), e.to_string())),
                }
            }
            for (target, source) in [
                (&mut labels, &t.metadata.labels),
                (&mut annotations, &t.metadata.annotations),
            ] {
                for (k, text) in source {
                    match render(k, text) {
                        Ok(s) => {
                            target.insert(k.clone(), s.to_string());
                        }
                        Err(e) => failures.push(fail(Some(format!("metadata {k}")), e.to_string())),
                    }
                }
            }
            if !failures.is_empty() {
                return Err(failures);
            }
            if !t.data.is_empty() {
                // mergePolicy Replace (the default): the template's keys only; Merge keeps
                // the fetched keys too.
                if t.merge_policy.as_deref() == Some("Merge") {
                    out.extend(rendered);
                } else {
                    out = rendered;
                }
            }
        }
        Ok(Some(DesiredSecret {
            origin: Origin {
                api_version: "external-secrets.io/v1".into(),
                kind: "ExternalSecret".into(),
                namespace: ns.clone(),
                name: es.metadata.name.clone(),
                uid: es.metadata.uid.clone(),
            },
            namespace: ns,
            name: spec
                .target
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| es.metadata.name.clone()),
            type_,
            labels,
            annotations,
            data: out,
            policy,
            rollout_restart_targets: Vec::new(),
            leases: Vec::new(),
        }))
    }

    // ---- VSO -----------------------------------------------------------------------------

    /// The client for a VSO resource: its VaultAuth (`[ns/]name`, default `default`) and that
    /// auth's VaultConnection; with `--token` and `--address`, neither need exist.
    async fn vso_client(
        &self,
        ns: &str,
        auth_ref: Option<&str>,
        vault_namespace: Option<&str>,
    ) -> Result<VaultClient, String> {
        let (auth_ns, auth_name) = split_ref(auth_ref.unwrap_or(""), ns);
        let auth = self.manifests.resources.iter().find_map(|r| match r {
            Resource::VaultAuth(a)
                if a.metadata.name == auth_name
                    && ns_of(&a.metadata, &self.options.default_namespace) == auth_ns =>
            {
                Some(a.clone())
            }
            _ => None,
        });
        let (address, skip_verify, auth_plan, namespace) = match &auth {
            None if self.options.token.is_some() && self.options.address.is_some() => (
                self.address("").map_err(|e| e.to_string())?,
                false,
                AuthPlan::Anonymous,
                None,
            ),
            None => {
                return Err(format!(
                    "VaultAuth {auth_ns}/{auth_name} not found in the inputs (or pass --token and --address)"
                ));
            }
            Some(a) => {
                let plan = if self.options.token.is_some() {
                    AuthPlan::Anonymous
                } else if a.spec.method == "kubernetes" {
                    let k = a.spec.kubernetes.clone().unwrap_or_default();
                    // VSO asks for a token of the service account in the namespace of the
                    // resource being synced, whichever namespace the VaultAuth is in.
                    let jwt = JwtSource::named_or_own(
                        ns,
                        k.service_account.as_deref(),
                        &k.audiences,
                        k.token_expiration_seconds,
                    );
                    AuthPlan::Kubernetes {
                        mount: if a.spec.mount.is_empty() {
                            "kubernetes".into()
                        } else {
                            a.spec.mount.clone()
                        },
                        role: k.role,
                        jwt,
                    }
                } else {
                    return Err(format!(
                        "VaultAuth {auth_ns}/{auth_name}: method {:?} is not supported (kubernetes, or --token)",
                        a.spec.method
                    ));
                };
                let (conn_ns, conn_name) = split_ref(
                    a.spec.vault_connection_ref.as_deref().unwrap_or(""),
                    &auth_ns,
                );
                let conn = self.manifests.resources.iter().find_map(|r| match r {
                    Resource::VaultConnection(c)
                        if c.metadata.name == conn_name
                            && ns_of(&c.metadata, &self.options.default_namespace) == conn_ns =>
                    {
                        Some(c.clone())
                    }
                    _ => None,
                });
                let (declared, skip) = match &conn {
                    Some(c) => (c.spec.address.clone(), c.spec.skip_tls_verify),
                    None if self.options.address.is_some() => (String::new(), false),
                    None => {
                        return Err(format!(
                            "VaultConnection {conn_ns}/{conn_name} not found in the inputs (or pass --address)"
                        ));
                    }
                };
                (
                    self.address(&declared).map_err(|e| e.to_string())?,
                    skip,
                    plan,
                    a.spec.namespace.clone(),
                )
            }
        };
        let mut ca_pem = self.options.ca_pem.clone();
        if ca_pem.is_none()
            && let Some(a) = &auth
        {
            let (conn_ns, conn_name) = split_ref(
                a.spec.vault_connection_ref.as_deref().unwrap_or(""),
                &auth_ns,
            );
            let ca_ref = self.manifests.resources.iter().find_map(|r| match r {
                Resource::VaultConnection(c)
                    if c.metadata.name == conn_name
                        && ns_of(&c.metadata, &self.options.default_namespace) == conn_ns =>
                {
                    c.spec.ca_cert_secret_ref.clone()
                }
                _ => None,
            });
            if let Some(secret) = ca_ref {
                let pem = self
                    .secret_value(&conn_ns, &secret, "ca.crt")
                    .await
                    .map_err(|e| {
                        format!("VaultConnection {conn_ns}/{conn_name} caCertSecretRef: {e}")
                    })?;
                ca_pem = Some(pem.expose().to_vec());
            }
        }
        let endpoint = Endpoint {
            address,
            ca_pem,
            skip_verify,
            namespace: vault_namespace.map(str::to_owned).or(namespace),
        };
        self.client(endpoint, auth_plan)
            .await
            .map_err(|e| e.to_string())
    }

    async fn vault_static(
        &self,
        s: &vso::VaultStaticSecret,
    ) -> Result<Option<DesiredSecret>, Vec<Failure>> {
        let ns = ns_of(&s.metadata, &self.options.default_namespace);
        let resource = format!("VaultStaticSecret {ns}/{}", s.metadata.name);
        let fail = |key: Option<String>, reason: String| {
            vec![Failure {
                resource: resource.clone(),
                key,
                reason,
            }]
        };
        let spec = &s.spec;
        let v2 = match spec.type_.as_str() {
            "kv-v2" => true,
            "kv-v1" => false,
            other => return Err(fail(None, format!("type {other:?} is not kv-v1 or kv-v2"))),
        };
        if spec.destination.name.is_empty() {
            return Err(fail(None, "destination.name is missing".into()));
        }
        if let Some(t) = &spec.destination.transformation
            && !t.transformation_refs.is_empty()
        {
            return Err(fail(
                None,
                "destination.transformation.transformationRefs is not supported yet".into(),
            ));
        }
        let client = self
            .vso_client(
                &ns,
                spec.vault_auth_ref.as_deref(),
                spec.namespace.as_deref(),
            )
            .await
            .map_err(|r| fail(None, r))?;
        let mount = spec.mount.trim_matches('/');
        let path = spec.path.trim_matches('/');
        let (full, version) = if v2 {
            (format!("{mount}/data/{path}"), spec.version.as_deref())
        } else {
            (format!("{mount}/{path}"), None)
        };
        let full_with_version = match version.filter(|v| !v.is_empty() && *v != "0") {
            Some(v) => format!("{full}?version={v}"),
            None => full.clone(),
        };
        let read = client
            .read(&full_with_version)
            .await
            .map_err(|e| fail(Some(format!("{mount}/{path}")), e.to_string()))?;
        // VSO: `_raw` is the response's whole `data`; the keys are the secret's own.
        let raw = read.data;
        let secret = if v2 {
            match raw.0.get("data") {
                Some(Json::Object(m)) => m.clone(),
                _ => {
                    return Err(fail(
                        Some(format!("{mount}/{path}")),
                        FetchError::NotFound { path: full }.to_string(),
                    ));
                }
            }
        } else {
            raw.0.clone()
        };
        let secret = SecretJson(secret);
        let metadata = raw.0.get("metadata").cloned().unwrap_or(Json::Null);
        let data =
            vso_data(&secret, &raw, metadata, &spec.destination).map_err(|(k, r)| fail(k, r))?;
        Ok(Some(vso_secret(
            &s.metadata,
            "VaultStaticSecret",
            ns,
            &spec.destination,
            data,
            spec.rollout_restart_targets.clone(),
            Vec::new(),
        )))
    }

    async fn vault_dynamic(
        &self,
        s: &vso::VaultDynamicSecret,
    ) -> Result<Option<DesiredSecret>, Vec<Failure>> {
        let ns = ns_of(&s.metadata, &self.options.default_namespace);
        let resource = format!("VaultDynamicSecret {ns}/{}", s.metadata.name);
        let fail = |key: Option<String>, reason: String| {
            vec![Failure {
                resource: resource.clone(),
                key,
                reason,
            }]
        };
        let spec = &s.spec;
        if spec.destination.name.is_empty() {
            return Err(fail(None, "destination.name is missing".into()));
        }
        if spec.allow_static_creds {
            return Err(fail(
                None,
                "allowStaticCreds is not supported (a TresorSecret's database.staticRole reads static credentials)".into(),
            ));
        }
        let client = self
            .vso_client(
                &ns,
                spec.vault_auth_ref.as_deref(),
                spec.namespace.as_deref(),
            )
            .await
            .map_err(|r| fail(None, r))?;
        let path = format!(
            "{}/{}",
            spec.mount.trim_matches('/'),
            spec.path.trim_matches('/')
        );
        let method = spec
            .request_http_method
            .as_deref()
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| {
                if spec.params.is_empty() {
                    "GET".into()
                } else {
                    "PUT".into()
                }
            });
        let read = match method.as_str() {
            "GET" => client.read(&path).await,
            "POST" | "PUT" => {
                let params: Map<String, Json> = spec.params.clone().into_iter().collect();
                client.write(&path, &params).await
            }
            other => {
                return Err(fail(
                    None,
                    format!("requestHTTPMethod {other} is not supported"),
                ));
            }
        }
        .map_err(|e| fail(Some(path.clone()), e.to_string()))?;
        let lease = LeaseInfo {
            lease_id: read.lease_id.clone(),
            duration_secs: read.lease_duration,
            renewable: read.renewable,
        };
        let raw = read.data;
        let data =
            vso_data(&raw, &raw, Json::Null, &spec.destination).map_err(|(k, r)| fail(k, r))?;
        let leases = if lease.lease_id.is_empty() {
            Vec::new()
        } else {
            vec![lease]
        };
        Ok(Some(vso_secret(
            &s.metadata,
            "VaultDynamicSecret",
            ns,
            &spec.destination,
            data,
            spec.rollout_restart_targets.clone(),
            leases,
        )))
    }

    // ---- TresorSecret --------------------------------------------------------------------

    /// The client of a `TresorSecret`: its connection and authentication (or `--token`).
    async fn tresor_client(&self, s: &ts::TresorSecret, ns: &str) -> Result<VaultClient, String> {
        let spec = &s.spec;
        let conn = spec.connection.clone().unwrap_or_default();
        let address = self.address(&conn.address).map_err(|e| e.to_string())?;
        let mut ca_pem = self.options.ca_pem.clone();
        if let Some(b64) = conn.ca_bundle.as_deref().filter(|s| !s.is_empty()) {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| "connection.caBundle is not base64".to_owned())?;
            ca_pem.get_or_insert_with(Vec::new).extend(pem);
        }
        let auth = match &spec.auth {
            _ if self.options.token.is_some() => AuthPlan::Anonymous,
            Some(ts::Auth { kubernetes: Some(k), .. }) => AuthPlan::Kubernetes {
                mount: k.mount.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| "kubernetes".into()),
                role: k.role.clone(),
                jwt: JwtSource::named_or_own(ns, k.service_account.as_deref(), &k.audiences, k.token_expiration_seconds),
            },
            Some(ts::Auth { token_secret_ref: Some(t), .. }) => AuthPlan::TokenSecret {
                namespace: t.namespace.clone().unwrap_or_else(|| ns.to_owned()),
                name: t.name.clone(),
                key: t.key.clone().unwrap_or_else(|| "token".into()),
            },
            _ => return Err("spec.auth names no method (kubernetes or tokenSecretRef), and no --token was given".into()),
        };
        let endpoint = Endpoint {
            address,
            ca_pem,
            skip_verify: false,
            namespace: conn.namespace.clone(),
        };
        self.client(endpoint, auth).await.map_err(|e| e.to_string())
    }

    /// The client a dynamic resource's credentials are issued with: its own login (VSO:
    /// its VaultAuth and VaultConnection; `TresorSecret`: its connection and auth), or
    /// `--token`. The controller renews, looks up and revokes the resource's leases with it
    /// and passes its token on to the passes that issue them, so one identity holds them.
    pub async fn lease_client(&self, resource: &Resource) -> Result<VaultClient, String> {
        match resource {
            Resource::VaultDynamicSecret(s) => {
                let ns = ns_of(&s.metadata, &self.options.default_namespace);
                self.vso_client(
                    &ns,
                    s.spec.vault_auth_ref.as_deref(),
                    s.spec.namespace.as_deref(),
                )
                .await
            }
            Resource::TresorSecret(s) => {
                let ns = ns_of(&s.metadata, &self.options.default_namespace);
                self.tresor_client(s, &ns).await
            }
            other => Err(format!(
                "{} {} issues no lease",
                other.kind(),
                other.meta().name
            )),
        }
    }

    async fn tresor_secret(
        &self,
        s: &ts::TresorSecret,
    ) -> Result<Option<DesiredSecret>, Vec<Failure>> {
        let ns = ns_of(&s.metadata, &self.options.default_namespace);
        let resource = format!("TresorSecret {ns}/{}", s.metadata.name);
        let fail = |key: Option<String>, reason: String| Failure {
            resource: resource.clone(),
            key,
            reason,
        };
        let spec = &s.spec;
        if spec.sources.is_empty() {
            return Err(vec![fail(None, "spec.sources is empty".into())]);
        }
        let client = self
            .tresor_client(s, &ns)
            .await
            .map_err(|e| vec![fail(None, e)])?;
        let mut failures = Vec::new();
        let mut data: BTreeMap<String, SecretBytes> = BTreeMap::new();
        let mut leases = Vec::new();
        for (i, source) in spec.sources.iter().enumerate() {
            let (label, result): (String, Result<BTreeMap<String, SecretBytes>, String>) =
                match (&source.kv, &source.database) {
                    (Some(kv), None) => {
                        let v2 = kv.kv_version.unwrap_or(2) != 1;
                        let mount = kv.mount.trim_matches('/');
                        let path = kv.path.trim_matches('/');
                        let full = if v2 {
                            format!("{mount}/data/{path}")
                        } else {
                            format!("{mount}/{path}")
                        };
                        let label = format!("sources[{i}] kv {mount}/{path}");
                        let result = match client.kv(&full, v2, kv.version.as_deref()).await {
                            Err(e) => Err(e.to_string()),
                            Ok(json) if kv.keys.is_empty() => {
                                extract::flatten(&json.0, None).map_err(|e| e.to_string())
                            }
                            Ok(json) => {
                                let mut picked = BTreeMap::new();
                                let mut missing = Vec::new();
                                for key in &kv.keys {
                                    match extract::property(&json.0, Some(key)) {
                                        Ok(v) => {
                                            picked.insert(key.clone(), v);
                                        }
                                        Err(e) => missing.push(e.to_string()),
                                    }
                                }
                                if missing.is_empty() {
                                    Ok(picked)
                                } else {
                                    Err(format!("{full}: {}", missing.join(", ")))
                                }
                            }
                        };
                        (label, result)
                    }
                    (None, Some(db)) => {
                        let mount = db.mount.trim_matches('/');
                        let (path, label) = match (&db.role, &db.static_role) {
                            (Some(role), None) => (
                                format!("{mount}/creds/{role}"),
                                format!("sources[{i}] database {mount}/creds/{role}"),
                            ),
                            (None, Some(role)) => (
                                format!("{mount}/static-creds/{role}"),
                                format!("sources[{i}] database {mount}/static-creds/{role}"),
                            ),
                            _ => {
                                failures.push(fail(
                                    Some(format!("sources[{i}]")),
                                    "database needs exactly one of role or staticRole".into(),
                                ));
                                continue;
                            }
                        };
                        let result = match client.read(&path).await {
                            Err(e) => Err(e.to_string()),
                            Ok(read) => {
                                if !read.lease_id.is_empty() {
                                    leases.push(LeaseInfo {
                                        lease_id: read.lease_id.clone(),
                                        duration_secs: read.lease_duration,
                                        renewable: read.renewable,
                                    });
                                }
                                extract::flatten(&read.data.0, None).map_err(|e| e.to_string())
                            }
                        };
                        (label, result)
                    }
                    _ => {
                        failures.push(fail(
                            Some(format!("sources[{i}]")),
                            "a source needs exactly one of kv or database".into(),
                        ));
                        continue;
                    }
                };
            match result {
                Ok(map) => {
                    for (k, v) in map {
                        let key = format!("{}{k}", source.prefix);
                        if data.contains_key(&key) {
                            failures.push(fail(
                                Some(key.clone()),
                                format!("{label}: key {key:?} is also given by an earlier source"),
                            ));
                        }
                        data.insert(key, v);
                    }
                }
                Err(reason) => failures.push(fail(Some(label), reason)),
            }
        }
        if !failures.is_empty() {
            return Err(failures);
        }
        if let Some(t) = spec.template.as_ref().filter(|t| !t.data.is_empty()) {
            let mut context = BTreeMap::new();
            for (k, v) in &data {
                match utf8(k, v) {
                    Ok(s) => {
                        context.insert(k.clone(), TValue::Str(Zeroizing::new(s)));
                    }
                    Err(reason) => failures.push(fail(Some(k.clone()), reason)),
                }
            }
            let dot = TValue::Map(context);
            let mut rendered = BTreeMap::new();
            for (k, text) in &t.data {
                match template::render(k, text, &dot) {
                    Ok(s) => {
                        rendered.insert(k.clone(), SecretBytes::new(s.as_bytes().to_vec()));
                    }
                    Err(e) => failures.push(fail(Some(k.clone()), e.to_string())),
                }
            }
            if !failures.is_empty() {
                return Err(failures);
            }
            data = rendered;
        }
        Ok(Some(DesiredSecret {
            origin: Origin {
                api_version: ts::API_VERSION.into(),
                kind: "TresorSecret".into(),
                namespace: ns.clone(),
                name: s.metadata.name.clone(),
                uid: s.metadata.uid.clone(),
            },
            namespace: ns,
            name: spec
                .target
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| s.metadata.name.clone()),
            type_: spec
                .target
                .type_
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "Opaque".into()),
            labels: spec.target.labels.clone(),
            annotations: spec.target.annotations.clone(),
            data,
            policy: WritePolicy::Owner,
            rollout_restart_targets: spec.rollout_restart_targets.clone(),
            leases,
        }))
    }
}

/// `[namespace/]name`, default name `default`.
pub fn split_ref(r: &str, ns: &str) -> (String, String) {
    match r.split_once('/') {
        Some((n, name)) => (n.to_owned(), name.to_owned()),
        None if r.is_empty() => (ns.to_owned(), "default".to_owned()),
        None => (ns.to_owned(), r.to_owned()),
    }
}

/// ESO's path for a key: with the store's `path` (the mount), `<mount>[/data]/<key>` (a key
/// that already starts with the mount, and `data/` after it for v2, is not doubled); without,
/// the key's first segment is the mount and v2 inserts `data` after it unless the key holds
/// `/data/` already.
pub fn eso_path(mount: Option<&str>, v2: bool, key: &str) -> String {
    let key = key.trim_start_matches('/');
    match mount.map(|m| m.trim_matches('/')).filter(|m| !m.is_empty()) {
        Some(mount) => {
            let mut rest = key;
            if let Some(after) = key.strip_prefix(&format!("{mount}/")) {
                rest = after;
                if v2 && let Some(after) = rest.strip_prefix("data/") {
                    rest = after;
                }
            }
            if v2 {
                format!("{mount}/data/{rest}")
            } else {
                format!("{mount}/{rest}")
            }
        }
        None => {
            if !v2 || key.contains("/data/") {
                return key.to_owned();
            }
            match key.split_once('/') {
                Some((first, rest)) => format!("{first}/data/{rest}"),
                None => format!("{key}/data"),
            }
        }
    }
}

/// A VSO destination's data: the secret's keys (typed as ESO does), `_raw`, then the
/// transformation (includes/excludes over the secret's keys, `excludeRaw`, templates over
/// `.Secrets` and `.Metadata`).
fn vso_data(
    secret: &SecretJson,
    raw: &SecretJson,
    metadata: Json,
    dest: &vso::Destination,
) -> Result<BTreeMap<String, SecretBytes>, (Option<String>, String)> {
    let mut data: BTreeMap<String, SecretBytes> = secret
        .0
        .iter()
        .map(|(k, v)| (k.clone(), extract::typed(v)))
        .collect();
    let t = dest.transformation.clone().unwrap_or_default();
    let compile =
        |list: &[String], what: &str| -> Result<Vec<regex::Regex>, (Option<String>, String)> {
            list.iter()
                .map(|p| {
                    regex::RegexBuilder::new(p)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|_| {
                            (
                                None,
                                format!(
                                    "transformation.{what}: {p:?} is not a valid regular expression"
                                ),
                            )
                        })
                })
                .collect()
        };
    let includes = compile(&t.includes, "includes")?;
    let excludes = compile(&t.excludes, "excludes")?;
    data.retain(|k, _| {
        (includes.is_empty() || includes.iter().any(|r| r.is_match(k)))
            && !excludes.iter().any(|r| r.is_match(k))
    });
    if !t.templates.is_empty() {
        let secrets = TValue::Map(
            secret
                .0
                .iter()
                .map(|(k, v)| (k.clone(), template::from_json(v.clone())))
                .collect(),
        );
        let dot = TValue::Map(
            [
                ("Secrets".to_owned(), secrets),
                ("Metadata".to_owned(), template::from_json(metadata)),
            ]
            .into(),
        );
        for (key, tpl) in &t.templates {
            let rendered = template::render(key, &tpl.text, &dot)
                .map_err(|e| (Some(key.clone()), e.to_string()))?;
            data.insert(key.clone(), SecretBytes::new(rendered.as_bytes().to_vec()));
        }
    }
    if !t.exclude_raw {
        let mut out = String::new();
        extract::go_json(&Json::Object(raw.0.clone()), &mut out);
        let out = Zeroizing::new(out);
        data.insert("_raw".into(), SecretBytes::copy_from(out.as_bytes()));
    }
    Ok(data)
}

fn vso_secret(
    meta: &crate::model::Meta,
    kind: &str,
    ns: String,
    dest: &vso::Destination,
    data: BTreeMap<String, SecretBytes>,
    rollout_restart_targets: Vec<vso::RolloutRestartTarget>,
    leases: Vec<LeaseInfo>,
) -> DesiredSecret {
    DesiredSecret {
        origin: Origin {
            api_version: "secrets.hashicorp.com/v1beta1".into(),
            kind: kind.into(),
            namespace: ns.clone(),
            name: meta.name.clone(),
            uid: meta.uid.clone(),
        },
        namespace: ns,
        name: dest.name.clone(),
        type_: dest
            .type_
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Opaque".into()),
        labels: dest.labels.clone(),
        annotations: dest.annotations.clone(),
        data,
        // VSO: `create: false` updates an existing Secret only.
        policy: if dest.create {
            WritePolicy::Owner
        } else {
            WritePolicy::Merge
        },
        rollout_restart_targets,
        leases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eso_paths() {
        assert_eq!(
            eso_path(Some("secret"), true, "ghcr-token"),
            "secret/data/ghcr-token"
        );
        assert_eq!(
            eso_path(Some("secret"), true, "secret/ghcr-token"),
            "secret/data/ghcr-token"
        );
        assert_eq!(
            eso_path(Some("secret"), true, "secret/data/ghcr-token"),
            "secret/data/ghcr-token"
        );
        assert_eq!(
            eso_path(Some("secret/"), false, "team/app"),
            "secret/team/app"
        );
        assert_eq!(eso_path(Some("kv/team"), true, "app"), "kv/team/data/app");
        assert_eq!(
            eso_path(None, true, "secret/foo/bar"),
            "secret/data/foo/bar"
        );
        assert_eq!(eso_path(None, true, "secret/data/foo"), "secret/data/foo");
        assert_eq!(eso_path(None, false, "kv/foo"), "kv/foo");
    }

    #[test]
    fn vso_refs() {
        assert_eq!(split_ref("", "app"), ("app".into(), "default".into()));
        assert_eq!(split_ref("auth1", "app"), ("app".into(), "auth1".into()));
        assert_eq!(
            split_ref("ops/auth1", "app"),
            ("ops".into(), "auth1".into())
        );
    }
}
