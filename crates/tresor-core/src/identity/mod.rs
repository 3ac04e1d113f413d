//! Identity: entities, their aliases (one per auth mount that knows them) and groups, as
//! Vault's identity store keeps them; the entity a login acts for; policy templating.
//!
//! # Layout
//! - `model`: [`Entity`], [`Alias`], [`Group`] and their wire forms.
//! - `store`: [`IdentityStore`]: records under the barrier, an in-memory index loaded at
//!   unseal, login-time entity creation, cached per-entity [`IdentityContext`]s.
//! - `template`: [`render`], the `{{identity.…}}` policy path templates.
//! - `endpoints`: `identity/entity*`, `identity/entity-alias*`, `identity/group*`,
//!   `identity/group-alias*`.

pub(crate) mod endpoints;
pub mod model;
pub mod store;
pub mod template;

pub use model::{Alias, Entity, Group};
pub use store::{IdentityContext, IdentityStore};
pub use template::render;
