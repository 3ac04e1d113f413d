//! Automatic rotation: keys whose `auto_rotate_period` has elapsed since their latest
//! version get a new one. The core calls [`rotate_due`] about once a minute (see
//! `SecretEngine::periodic`); tests call it directly with a clock they move.

use tresor_sdk::engine::EngineResult;
use tresor_sdk::storage::Storage;

use super::Transit;
use super::keys::rotate_stored;

pub(crate) async fn rotate_due(transit: &Transit, storage: &dyn Storage) -> EngineResult<()> {
    let names = transit.keys.list(storage).await?;
    let now = transit.clock.now();
    for name in names {
        let Some(ring) = transit.keys.get(storage, &name).await? else {
            continue;
        };
        if !is_due(ring.meta.auto_rotate_period, ring.meta.last_rotated, now) {
            continue;
        }
        let _guard = transit.keys.lock(&name).await;
        // Re-check under the lock: a manual rotation may just have happened.
        let Some(mut stored) = transit.keys.read_stored(storage, &name).await? else {
            continue;
        };
        if !is_due(
            stored.meta.auto_rotate_period,
            stored.meta.last_rotated,
            now,
        ) {
            continue;
        }
        if let Err(err) = rotate_stored(transit, storage, &mut stored).await {
            // One failing key must not stop the others; the next tick tries again.
            tracing::warn!(key = %name, error = %err, "automatic rotation of a transit key failed");
        }
    }
    Ok(())
}

fn is_due(period_secs: i64, last_rotated: i64, now: i64) -> bool {
    period_secs > 0 && now.saturating_sub(last_rotated) >= period_secs.saturating_mul(1_000_000_000)
}
