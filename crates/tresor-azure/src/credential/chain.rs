//! The credential chain, in `DefaultAzureCredential`'s order: workload identity, client
//! secret (environment), managed identity, Azure CLI. The first credential that gives a token
//! wins and is remembered; an unavailable one is skipped; a configured one that fails stops the
//! chain. When none works, the error lists every credential with its reason (and those not
//! tried because an earlier one failed).

use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    AccessToken, AzureCliCredential, ClientSecretCredential, CredentialError, CredentialOptions,
    ManagedIdentityCredential, TokenCredential, WorkloadIdentityCredential,
};
use crate::Env;

/// The chain's credential names, in order.
pub const ORDER: [&str; 4] = [
    "WorkloadIdentityCredential",
    "ClientSecretCredential",
    "ManagedIdentityCredential",
    "AzureCliCredential",
];

/// What happened to one credential of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It gave a token.
    Token,
    /// Not configured here, and why.
    Unavailable(String),
    /// Configured, and it failed: why.
    Failed(String),
    /// Not tried: an earlier credential failed.
    NotTried,
}

/// One credential's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub credential: &'static str,
    pub outcome: Outcome,
}

/// No credential of the chain gave a token: every credential's reason, in order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ChainError {
    pub attempts: Vec<Attempt>,
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no Azure credential gave a token:")?;
        for a in &self.attempts {
            match &a.outcome {
                Outcome::Token => write!(f, "\n  - {}: gave a token", a.credential)?,
                Outcome::Unavailable(r) => write!(f, "\n  - {}: unavailable: {r}", a.credential)?,
                Outcome::Failed(r) => write!(f, "\n  - {}: failed: {r}", a.credential)?,
                Outcome::NotTried => write!(
                    f,
                    "\n  - {}: not tried (the chain stops at a configured credential that fails)",
                    a.credential
                )?,
            }
        }
        Ok(())
    }
}

enum Slot {
    Ready(Box<dyn TokenCredential>),
    /// Could not even be built (a variable missing): the reason.
    Unavailable(CredentialError),
}

/// `DefaultAzureCredential`'s chain. `Debug` shows the credentials' names and which one won.
pub struct DefaultCredential {
    slots: Vec<(&'static str, Slot)>,
    chosen: Mutex<Option<usize>>,
}

impl std::fmt::Debug for DefaultCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chosen = self
            .chosen
            .lock()
            .ok()
            .and_then(|c| *c)
            .and_then(|i| self.slots.get(i))
            .map(|(n, _)| *n);
        f.debug_struct("DefaultCredential")
            .field(
                "credentials",
                &self.slots.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("chosen", &chosen)
            .finish()
    }
}

impl DefaultCredential {
    /// The four credentials, configured from `env`.
    pub fn from_env(env: &Env, options: &CredentialOptions) -> Self {
        let slot = |r: Result<Box<dyn TokenCredential>, CredentialError>| match r {
            Ok(c) => Slot::Ready(c),
            Err(e) => Slot::Unavailable(e),
        };
        let slots = vec![
            (
                ORDER[0],
                slot(
                    WorkloadIdentityCredential::from_env(env, options)
                        .map(|c| Box::new(c) as Box<dyn TokenCredential>),
                ),
            ),
            (
                ORDER[1],
                slot(
                    ClientSecretCredential::from_env(env, options)
                        .map(|c| Box::new(c) as Box<dyn TokenCredential>),
                ),
            ),
            (
                ORDER[2],
                slot(
                    ManagedIdentityCredential::from_env(env, options)
                        .map(|c| Box::new(c) as Box<dyn TokenCredential>),
                ),
            ),
            (
                ORDER[3],
                Slot::Ready(Box::new(AzureCliCredential::from_env(env, options))),
            ),
        ];
        Self {
            slots,
            chosen: Mutex::new(None),
        }
    }

    /// Every credential tried on its own (none stops the others): what `doctor` reports.
    pub async fn try_each(&self, scope: &str, tenant: Option<&str>) -> Vec<Attempt> {
        let mut out = Vec::new();
        for (name, slot) in &self.slots {
            let outcome = match slot {
                Slot::Unavailable(e) => Outcome::Unavailable(e.reason().to_owned()),
                Slot::Ready(c) => match c.get_token(scope, tenant).await {
                    Ok(_) => Outcome::Token,
                    Err(e) if e.is_unavailable() => Outcome::Unavailable(e.reason().to_owned()),
                    Err(e) => Outcome::Failed(e.reason().to_owned()),
                },
            };
            out.push(Attempt {
                credential: name,
                outcome,
            });
        }
        out
    }

    /// A token from the first credential that gives one (the one that worked before is
    /// asked first), or every credential's reason.
    pub async fn get_token_chained(
        &self,
        scope: &str,
        tenant: Option<&str>,
    ) -> Result<(&'static str, AccessToken), ChainError> {
        let chosen = self.chosen.lock().ok().and_then(|c| *c);
        if let Some(i) = chosen
            && let Some((name, Slot::Ready(c))) = self.slots.get(i)
            && let Ok(token) = c.get_token(scope, tenant).await
        {
            return Ok((*name, token));
        }
        let mut attempts = Vec::new();
        let mut stopped = false;
        for (i, (name, slot)) in self.slots.iter().enumerate() {
            if stopped {
                attempts.push(Attempt {
                    credential: name,
                    outcome: Outcome::NotTried,
                });
                continue;
            }
            let result = match slot {
                Slot::Unavailable(e) => Err(e.clone()),
                Slot::Ready(c) => c.get_token(scope, tenant).await,
            };
            match result {
                Ok(token) => {
                    if let Ok(mut c) = self.chosen.lock() {
                        *c = Some(i);
                    }
                    return Ok((*name, token));
                }
                Err(e) if e.is_unavailable() => attempts.push(Attempt {
                    credential: name,
                    outcome: Outcome::Unavailable(e.reason().to_owned()),
                }),
                Err(e) => {
                    attempts.push(Attempt {
                        credential: name,
                        outcome: Outcome::Failed(e.reason().to_owned()),
                    });
                    stopped = true;
                }
            }
        }
        Err(ChainError { attempts })
    }
}

#[async_trait]
impl TokenCredential for DefaultCredential {
    fn name(&self) -> &'static str {
        "DefaultCredential"
    }

    async fn get_token(
        &self,
        scope: &str,
        tenant: Option<&str>,
    ) -> Result<AccessToken, CredentialError> {
        self.get_token_chained(scope, tenant)
            .await
            .map(|(_, t)| t)
            .map_err(|e| CredentialError::Failed {
                credential: "DefaultCredential",
                reason: e.to_string(),
            })
    }
}
