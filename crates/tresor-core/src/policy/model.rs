//! What a parsed policy is: named, with its original text, and a list of path rules.
//!
//! Rules here are exactly as written (one per `path` block, duplicates kept); merging rules of
//! the same pattern and choosing between patterns happens when an [`Acl`](super::Acl) is built.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use super::error::PolicyError;
use super::parse;

/// One capability a path rule can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Overrides every other capability on the same pattern.
    Deny,
    Create,
    Read,
    Update,
    Patch,
    Delete,
    List,
    /// Needed in addition to the operation's own capability on root-protected paths.
    Sudo,
    /// OpenBao's recursive listing.
    Scan,
    /// Vault's event subscription capability; accepted so such policies load.
    Subscribe,
}

impl Capability {
    pub const ALL: [Capability; 10] = [
        Capability::Deny,
        Capability::Create,
        Capability::Read,
        Capability::Update,
        Capability::Patch,
        Capability::Delete,
        Capability::List,
        Capability::Sudo,
        Capability::Scan,
        Capability::Subscribe,
    ];

    /// The name used in policies and in `sys/capabilities` answers.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Deny => "deny",
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Patch => "patch",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Sudo => "sudo",
            Capability::Scan => "scan",
            Capability::Subscribe => "subscribe",
        }
    }

    /// Case-sensitive, as Vault is: `"READ"` is not a capability.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities, as a bitmap (Vault's representation too): merging policies is an OR
/// and checking an operation is an AND.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u16);

impl Capabilities {
    pub const NONE: Capabilities = Capabilities(0);
    pub const DENY: Capabilities = Capabilities(Capability::Deny.bit());

    pub fn contains(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    pub fn insert(&mut self, capability: Capability) {
        self.0 |= capability.bit();
    }

    #[must_use]
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `deny` is present (and then, after parsing or merging, alone).
    pub fn is_deny(self) -> bool {
        self.contains(Capability::Deny)
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = Capabilities::NONE;
        for capability in iter {
            set.insert(capability);
        }
        set
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Capability::name))
            .finish()
    }
}

/// Parameter name (lowercased, as Vault stores them) → permitted or forbidden values. An empty
/// list means "any value".
pub type ParameterMap = HashMap<String, Vec<Value>>;

/// What a rule grants on its pattern; also the merged result for one pattern in an ACL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    pub capabilities: Capabilities,
    /// As written; compared lowercased against request keys at check time (Vault's quirk).
    pub required_parameters: Vec<String>,
    pub allowed_parameters: ParameterMap,
    pub denied_parameters: ParameterMap,
    /// `None` when unset, zero or negative (Vault ignores those).
    pub min_wrapping_ttl: Option<Duration>,
    pub max_wrapping_ttl: Option<Duration>,
}

/// One `path "…" { … }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    /// The pattern as matched: a leading `/` removed, a trailing `*` kept.
    pub pattern: String,
    /// Line of the `path` block (HCL only).
    pub line: Option<usize>,
    pub permissions: Permissions,
    /// The pattern contains `{{…}}` identity templating: rendered per entity
    /// ([`crate::identity::render`]); for a token without an entity the rule never applies,
    /// as in OpenBao.
    pub templated: bool,
    /// OpenBao's per-path `expiration`: the rule stops applying at this instant.
    pub expiration: Option<OffsetDateTime>,
}

/// A parsed ACL policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    name: String,
    raw: String,
    rules: Vec<PathRule>,
}

impl Policy {
    /// Parses an HCL or JSON (first non-blank character `{`) policy document. An empty
    /// document is a valid policy that grants nothing. The name is taken as given (the caller
    /// lowercases and validates it); a policy named `root` makes any ACL built from it a root
    /// ACL.
    pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
        let rules = parse::parse_document(text)?;
        Ok(Policy {
            name: name.to_owned(),
            raw: text.to_owned(),
            rules,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text exactly as submitted, for `sys/policy/:name` reads.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn rules(&self) -> &[PathRule] {
        &self.rules
    }

    pub fn is_root(&self) -> bool {
        self.name == "root"
    }
}
