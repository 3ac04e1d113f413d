//! ACL policies: parsing Vault/OpenBao policy documents and deciding requests against them.
//!
//! Every request Tresor serves is authorised here, so two things matter: the answers must be
//! OpenBao's (clients and operators rely on Vault's documented matching rules, quirks
//! included), and a check must stay cheap however many rules a token's policies hold.
//!
//! - [`Policy::parse`] reads HCL or JSON into [`PathRule`]s, refusing mistakes with the line
//!   they are on ([`PolicyError`]).
//! - [`Acl::new`] merges the rules of a token's policies per pattern and indexes them: exact
//!   patterns in a hash map; glob (`*`) and segment-wildcard (`+`) patterns in a byte trie
//!   keyed by their literal lead, each ranked once by Vault's five priority rules. A check
//!   walks the trie along the path and examines only rules whose lead prefixes it (and, for
//!   `+` rules, whose first literal after the `+` equals the path's segment there).
//! - [`Acl::check`] answers one request ([`Decision`]); [`Acl::capabilities`] answers
//!   `sys/capabilities`.
//! - [`AclCache`] keeps compiled ACLs per policy set until a policy changes.
//!
//! Deliberate differences from OpenBao are documented where they are made: HCL2 syntax rather
//! than HCL1, so a repeated key or HCL1-only layout is a syntax error (`parse::hcl`); strict
//! JSON (`parse::json`); keys whose restrictions Tresor lacks refused rather than ignored
//! (`parse::rule`); Vault's `subscribe` capability accepted; numbers in parameter constraints
//! compared by value (`params`); a `root` policy alongside others yielding a root ACL rather
//! than an error (`acl`).

mod acl;
mod cache;
mod error;
mod index;
mod model;
mod params;
mod parse;
mod priority;
mod trie;

pub use acl::{Acl, AclRequest, Decision, DenyReason};
pub use cache::{AclCache, PolicySetKey};
pub use error::{PolicyError, PolicyErrorKind};
pub use model::{Capabilities, Capability, ParameterMap, PathRule, Permissions, Policy};
pub(crate) use parse::literal_json;
