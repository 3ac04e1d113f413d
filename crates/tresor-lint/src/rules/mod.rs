//! The rules: their registry (ids, default severities, explanations) and the checks.
//!
//! - `inline`: `no-sealed-secret`, `no-inline-secret`, `no-secret-in-annotation`.
//! - `refs`: `secret-ref-resolves`, `externalsecret-store-exists`.
//! - `tokens`: `known-token-prefix`, `high-entropy-string`.

pub mod inline;
pub mod refs;
pub mod tokens;

use std::collections::HashSet;

use crate::config::Config;
use crate::model::{File, Finding, Parsed, Severity};
use crate::yaml::{NodeId, Pos, Style};

/// A rule's identity and documentation.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    /// One line, for `--list-rules`, SARIF's `shortDescription` and the human output.
    pub summary: &'static str,
    /// What it checks, why, and how to fix it (`--explain`).
    pub explain: &'static str,
}

pub const INVALID_SUPPRESSION: &str = "invalid-suppression";

pub const RULES: &[RuleInfo] = &[
    RuleInfo {
        id: "no-sealed-secret",
        severity: Severity::Error,
        summary: "SealedSecret resources are forbidden",
        explain: "Any `kind: SealedSecret` is an error. Sealed secrets put ciphertext of a \
credential in the repository, bound to one controller key: rotation and revocation need a \
commit, and a leaked controller key opens the whole history. Reference the secrets store \
instead: an ExternalSecret (external-secrets.io), a VaultStaticSecret, or a Tresor sync \
resource that materialises the Secret in the cluster.",
    },
    RuleInfo {
        id: "no-inline-secret",
        severity: Severity::Error,
        summary: "credential-like key holds a literal value in a Secret, ConfigMap or env var",
        explain: "Flags a literal value under a credential-like key (password, passwd, token, \
secret, clientSecret, privateKey, apiKey, accessKey, connection strings, …; case- and \
separator-insensitive, plus `credential_keys` from .tresor-lint.yaml) in: a Secret's \
`data` (base64-decoded first) or `stringData`; `env[].value` of every pod spec (Pod, \
Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, …); a ConfigMap's `data`; a \
Kustomization `secretGenerator` literal. Also flags connection URLs with a password \
(`postgres://user:pw@host`), `.dockerconfigjson` with an `auth`/`password` field, and \
`key: value`/`key=value` lines with a credential key inside block-scalar config files. \
Templated values (`{{ … }}`), environment placeholders (`${VAR}`, `$(VAR)`) and empty values \
are allowed. Fix: move the value to the secrets store and reference it (`existingSecret`, \
an ExternalSecret, `secretKeyRef`).",
    },
    RuleInfo {
        id: "secret-ref-resolves",
        severity: Severity::Error,
        summary: "a referenced Secret (and key) is produced in the scanned set",
        explain: "Every `secretKeyRef`, `envFrom[].secretRef`, volume `secret.secretName`, \
projected volume `secret`, `imagePullSecrets[]` and Helm-style `existingSecret` value must \
name a Secret defined in the scanned files, in the same namespace: a `Secret`, the target of \
an `ExternalSecret` (`spec.target.name`, default its name) or `ClusterExternalSecret`, a \
`VaultStaticSecret`/`VaultDynamicSecret`/`VaultPKISecret` (`spec.destination.name`), a \
cert-manager `Certificate` (`spec.secretName`), a `SealedSecret`, or a Tresor sync resource. \
When the reference names a key, the producer must define it (`data`/`stringData` keys, \
ExternalSecret `data[].secretKey` and template keys). An ExternalSecret with `dataFrom` \
produces keys that cannot be known: a missing key is then a warning. References marked \
`optional: true` are warnings. A resource without a namespace matches any namespace (Helm \
output usually leaves it to the release). Secrets created outside the scanned set can be \
declared in .tresor-lint.yaml `known_secrets`.",
    },
    RuleInfo {
        id: "externalsecret-store-exists",
        severity: Severity::Error,
        summary: "an ExternalSecret's store exists and may serve its namespace",
        explain: "An ExternalSecret's `spec.secretStoreRef` (and per-entry \
`sourceRef.storeRef`) must name a `SecretStore` in the same namespace, or a \
`ClusterSecretStore` in the scanned set (kind defaults to SecretStore). A SecretStore found \
only in another namespace is a cross-namespace reference: an error, since a SecretStore \
serves its own namespace only. A ClusterSecretStore whose `spec.conditions[].namespaces` \
does not list the ExternalSecret's namespace is an error too. Stores defined elsewhere can \
be declared in .tresor-lint.yaml `known_secret_stores`.",
    },
    RuleInfo {
        id: "no-secret-in-annotation",
        severity: Severity::Error,
        summary: "credential-like literal in an annotation or label",
        explain: "Annotations and labels are readable by anyone who can list the object and are \
copied into events, logs and audit records. Flags annotations/labels (of resources and pod \
templates) whose key names a credential and whose value is a literal, and connection URLs \
with a password. Values that name a Secret (a DNS name under a `…secret` key) or a store \
path are references, not credentials.",
    },
    RuleInfo {
        id: "known-token-prefix",
        severity: Severity::Error,
        summary: "a token with a known issuer prefix or a PEM private key",
        explain: "Anywhere in a manifest (any key, any document, values files included, Secret \
`data` decoded): GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), GitLab \
(`glpat-`), Slack (`xoxb-`, `xoxp-`, `xoxa-`, `xoxs-`, `xapp-`), AWS access key ids (`AKIA`, \
`ASIA`), Google API keys (`AIza`), Stripe (`sk_live_`, `rk_live_`), npm (`npm_`), \
Vault/OpenBao tokens (`hvs.`, `hvb.`, `hvr.`), OpenAI-style keys (`sk-`), and \
`-----BEGIN … PRIVATE KEY-----` blocks. The location is the token itself, inside block \
scalars too. Documentation placeholders (`…EXAMPLE`, runs of x) are ignored.",
    },
    RuleInfo {
        id: "high-entropy-string",
        severity: Severity::Warning,
        summary: "a random-looking string (Shannon entropy) that may be a credential",
        explain: "Flags tokens of 20–512 characters from the base64/base64url alphabet that mix \
letters and digits and whose Shannon entropy is close to the maximum for their length. Hex \
strings (digests, checksums), image references, certificates, paths and dashed names are \
left alone, as are values already reported by another rule. A warning: fix or suppress with \
a reason.",
    },
    RuleInfo {
        id: INVALID_SUPPRESSION,
        severity: Severity::Warning,
        summary: "a tresor-lint allow comment without a reason or with an unknown rule",
        explain: "`# tresor-lint: allow RULE reason=\"…\"` needs a known rule id and a \
non-empty reason; a comment without them suppresses nothing and is reported.",
    },
];

pub fn rule(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}

/// Where the rules are documented, relative to the root of the Tresor source tree. Each rule
/// has a section whose anchor is its id.
pub const DOC_PATH: &str = "docs/lint.md";

/// The rule's documentation: `docs_url#id` when the config sets `docs_url` (an absolute URL
/// of docs/lint.md where the team publishes or browses it), else `docs/lint.md#id`, the
/// section in the source tree (stable: the anchors are the rule ids).
pub fn doc_link(id: &str, docs_url: Option<&str>) -> String {
    format!("{}#{id}", docs_url.unwrap_or(DOC_PATH))
}

/// An absolute URI of the rule's documentation, for SARIF's `helpUri`, which must be
/// absolute: only when the config sets `docs_url`.
pub fn help_uri(id: &str, docs_url: Option<&str>) -> Option<String> {
    docs_url.map(|base| format!("{base}#{id}"))
}

/// What a file's checks get: the file (what the report keeps of it), its text and tree
/// (dropped once its checks have run), the config, and where findings go.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The file's index in the report.
    pub fi: usize,
    pub file: &'a File,
    pub src: &'a Parsed,
    pub config: &'a Config,
    pub findings: Vec<Finding>,
    /// Nodes already reported, so the token and entropy rules do not repeat a finding.
    pub flagged: HashSet<NodeId>,
    /// (node, rule, position) reported: an aliased node reached through two keys is one
    /// finding, while each offending line of one block scalar is a finding of its own.
    reported: HashSet<(NodeId, &'static str, Pos)>,
}

impl<'a> Ctx<'a> {
    pub fn new(fi: usize, file: &'a File, src: &'a Parsed, config: &'a Config) -> Self {
        Ctx {
            fi,
            file,
            src,
            config,
            findings: Vec::new(),
            flagged: HashSet::new(),
            reported: HashSet::new(),
        }
    }

    /// Where a value starts, for a finding: a block scalar's first written character (on its
    /// first content line, not at its `|` indicator).
    pub fn value_pos(&self, node: NodeId) -> Pos {
        let y = &self.src.yaml;
        let Some(n) = y.node(node) else {
            return Pos::default();
        };
        if matches!(n.style, Style::Literal | Style::Folded)
            && let Some(value) = y.str(node)
            && let Some(first) = value.find(|c: char| !c.is_whitespace())
        {
            let text = value
                .get(first..)
                .and_then(|v| v.lines().next())
                .unwrap_or("");
            if let Some(&p) = self.src.locate(node, &[(first, text.trim_end())]).first() {
                return p;
            }
        }
        n.pos
    }

    /// The line where a value starts in the source: a block scalar's `key: |` header (the
    /// parser's position for it is its first content line), else the value's own line.
    fn value_line(&self, node: NodeId) -> Option<u32> {
        let n = self.src.yaml.node(node)?;
        if matches!(n.style, Style::Literal | Style::Folded) {
            self.src.lines().header_line(n.pos.line)
        } else {
            Some(n.pos.line)
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn emit(
        &mut self,
        rule: &'static str,
        resource: Option<usize>,
        node: Option<NodeId>,
        pos: Pos,
        message: String,
        hint: Option<String>,
        downgrade: bool,
    ) {
        if let Some(n) = node {
            self.flagged.insert(n);
            if !self.reported.insert((n, rule, pos)) {
                return;
            }
        }
        let value_line = node
            .and_then(|n| self.value_line(n))
            .filter(|&line| line != pos.line);
        self.findings.extend(
            finding(
                self.config,
                rule,
                self.fi,
                resource,
                pos,
                message,
                hint,
                downgrade,
            )
            .map(|f| Finding { value_line, ..f }),
        );
    }
}

/// A finding at the rule's configured severity (`None`: the rule is off). `downgrade` caps it
/// at warning (optional references, unverifiable keys).
#[allow(clippy::too_many_arguments)]
pub fn finding(
    config: &Config,
    rule: &'static str,
    file: usize,
    resource: Option<usize>,
    pos: Pos,
    message: String,
    hint: Option<String>,
    downgrade: bool,
) -> Option<Finding> {
    let mut severity = rule_severity(rule, config)?;
    if downgrade && severity > Severity::Warning {
        severity = Severity::Warning;
    }
    Some(Finding {
        rule,
        severity,
        message,
        file,
        resource,
        pos,
        value_line: None,
        hint,
    })
}

/// The configured severity of a rule (`None`: turned off).
pub fn rule_severity(rule: &str, config: &Config) -> Option<Severity> {
    match config.severities.get(rule) {
        Some(configured) => *configured,
        None => self::rule(rule).map(|r| r.severity),
    }
}
