//! Password policies: named rules for generated passwords (`sys/policies/password/:name`),
//! stored under the barrier at `sys/password_policy/<name>` (OpenBao's key in its system
//! view), and the [`PasswordPolicies`] handle engines use to generate from them.
//!
//! - [`parse`]: the policy language (HCL or JSON; `length`, `rule "charset"`), OpenBao's
//!   validation and messages.
//! - [`generate`]: drawing passwords (system CSPRNG, no modulo bias, every rule satisfied).
//!
//! Generated passwords exist only in [`SecretString`]s and are never logged.

pub mod generate;
pub mod parse;

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tresor_sdk::password::{NO_SUCH_POLICY, PasswordPolicies, PasswordPolicyError};
use tresor_sdk::secret::SecretString;

use crate::barrier::Barrier;
use crate::error::{CoreError, CoreResult};
pub use parse::{CharsetRule, ParseError, PasswordPolicy};

const PREFIX: &str = "sys/password_policy/";

/// OpenBao's bounds on a policy's `length`.
pub const MIN_LENGTH: i64 = 4;
pub const MAX_LENGTH: i64 = 100;

/// The stored record: the policy text as written (after base64 decoding), as OpenBao keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    policy: String,
}

/// What a `generate` found.
#[derive(Debug)]
pub enum Generated {
    Password(SecretString),
    /// No policy of that name.
    Missing,
}

/// The stored password policies. Stateless over the barrier: cheap to clone and to hand to
/// engines.
#[derive(Debug, Clone)]
pub struct PasswordPolicyStore {
    barrier: Arc<Barrier>,
}

/// OpenBao decodes a `policy` that is valid standard base64 (padding required, line breaks
/// ignored) before parsing it.
fn decode_text(text: &str) -> String {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let compact: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    match engine.decode(compact.as_bytes()) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned()),
        Err(_) => text.to_owned(),
    }
}

/// A name is a storage key below the prefix: no empty, `.` or `..` segments.
fn key(name: &str) -> CoreResult<String> {
    if name.is_empty() {
        return Err(CoreError::InvalidRequest("missing policy name".to_owned()));
    }
    if name
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(CoreError::InvalidRequest(format!(
            "invalid password policy name {name:?}"
        )));
    }
    Ok(format!("{PREFIX}{name}"))
}

impl PasswordPolicyStore {
    pub fn new(barrier: Arc<Barrier>) -> Self {
        Self { barrier }
    }

    /// Validates and stores a policy (`policy` may be base64 of the text), with OpenBao's
    /// checks in its order: parse, length bounds, test construction.
    pub async fn write(&self, name: &str, text: &str) -> CoreResult<()> {
        let key = key(name)?;
        if text.is_empty() {
            return Err(CoreError::InvalidRequest("missing policy".to_owned()));
        }
        let text = decode_text(text);
        let policy = PasswordPolicy::parse(&text)
            .map_err(|e| CoreError::InvalidRequest(format!("invalid password policy: {e}")))?;
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&policy.length) {
            return Err(CoreError::InvalidRequest(format!(
                "passwords must be between {MIN_LENGTH} and {MAX_LENGTH} characters"
            )));
        }
        if !policy.constructible() {
            return Err(CoreError::InvalidRequest(
                "unable to construct test password from provided policy: are the rules impossible?"
                    .to_owned(),
            ));
        }
        let record = serde_json::to_vec(&Stored { policy: text })?;
        self.barrier.put(&key, &record).await?;
        Ok(())
    }

    /// The stored text, if any.
    pub async fn read(&self, name: &str) -> CoreResult<Option<String>> {
        let key = key(name)?;
        match self.barrier.get(&key).await? {
            Some(raw) => Ok(Some(serde_json::from_slice::<Stored>(raw.expose())?.policy)),
            None => Ok(None),
        }
    }

    /// Deletes a policy; deleting a missing one is not an error (as in OpenBao).
    pub async fn delete(&self, name: &str) -> CoreResult<()> {
        let key = key(name)?;
        self.barrier.delete(&key).await?;
        Ok(())
    }

    /// Every policy name (names may contain `/`), in OpenBao's order: breadth first, each
    /// level sorted (`["b", "z", "a/x"]`).
    pub async fn list(&self) -> CoreResult<Vec<String>> {
        let mut names = Vec::new();
        let mut folders = std::collections::VecDeque::from([String::new()]);
        while let Some(folder) = folders.pop_front() {
            let mut children = self.barrier.list(&format!("{PREFIX}{folder}")).await?;
            children.sort();
            for child in children {
                let full = format!("{folder}{child}");
                if child.ends_with('/') {
                    folders.push_back(full);
                } else {
                    names.push(full);
                }
            }
        }
        Ok(names)
    }

    /// A password from the policy `name`. A stored policy that no longer parses, or a
    /// generation that gives up, is an error with OpenBao's `sys/…/generate` wording.
    pub async fn generate(&self, name: &str) -> CoreResult<Generated> {
        let Some(text) = self.read(name).await? else {
            return Ok(Generated::Missing);
        };
        let policy = PasswordPolicy::parse(&text).map_err(|_| {
            CoreError::EngineFailed("stored password policy configuration failed to parse".into())
        })?;
        let password = draw(policy).await.map_err(|e| {
            CoreError::EngineFailed(format!("failed to generate password from policy: {e}"))
        })?;
        Ok(Generated::Password(password))
    }
}

/// Generation may take many candidates: it runs off the async workers.
async fn draw(policy: PasswordPolicy) -> Result<SecretString, String> {
    tokio::task::spawn_blocking(move || policy.generate())
        .await
        .map_err(|_| "the generator stopped".to_owned())?
}

#[async_trait]
impl PasswordPolicies for PasswordPolicyStore {
    /// OpenBao's `GeneratePasswordFromPolicy` messages.
    async fn generate(&self, name: &str) -> Result<SecretString, PasswordPolicyError> {
        if name.is_empty() {
            return Err(PasswordPolicyError(
                "missing password policy name".to_owned(),
            ));
        }
        let text = self
            .read(name)
            .await
            .map_err(|e| PasswordPolicyError(format!("failed to retrieve password policy: {e}")))?
            .ok_or_else(|| PasswordPolicyError(NO_SUCH_POLICY.to_owned()))?;
        let policy = PasswordPolicy::parse(&text)
            .map_err(|e| PasswordPolicyError(format!("stored password policy is invalid: {e}")))?;
        draw(policy).await.map_err(PasswordPolicyError)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn base64_text_is_decoded_as_openbao_does() {
        let text = "length = 8\nrule \"charset\" {\n charset = \"ab\"\n}\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(decode_text(&b64), text);
        assert_eq!(decode_text(text), text);
        // Not base64 of UTF-8: kept as written.
        assert_eq!(decode_text("//8="), "//8=");
    }

    #[test]
    fn names_must_be_storage_keys() {
        assert!(key("a/b").is_ok());
        for bad in ["", "a//b", "../x", "a/./b", "a/"] {
            assert!(key(bad).is_err(), "{bad:?}");
        }
    }
}
