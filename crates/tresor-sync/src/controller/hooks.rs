//! What happens after a reconcile changed a Secret (created it, or replaced its content).
//!
//! The hook for rotation: rollout restarts of the resource's `rolloutRestartTargets` and the
//! drift bookkeeping of `tresor sync status` belong to the rotation work (`rollout.rs`, called
//! from `apply.rs` after a changed write, so `sync once` restarts consumers too). This function
//! is the controller's side of it: it runs once per changed Secret, after the write and before
//! the status and Event, with the resource it came from.

use crate::secret::DesiredSecret;

use super::cache::Entry;
use super::log;

/// Called once after `secret` was created (`created`) or its content replaced.
pub async fn secret_changed(
    _client: &kube::Client,
    entry: &Entry,
    secret: &DesiredSecret,
    created: bool,
) {
    log::info(&format!(
        "{}: Secret {}/{} {}",
        entry.key,
        secret.namespace,
        secret.name,
        if created { "created" } else { "updated" }
    ));
}
