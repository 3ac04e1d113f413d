//! The periodic ticker: about once a minute while unsealed, every mounted secrets engine's
//! `SecretEngine::periodic` (and every auth method's `AuthMethod::periodic`) runs with its own
//! storage view (transit rotates keys whose `auto_rotate_period` has elapsed).
//!
//! The ticker holds only a weak reference to the active state: sealing drops that state
//! (and with it every engine and key), and the ticker ends at its next wake-up without
//! needing its own stop signal. Engines run one after another, so a slow one delays the
//! others rather than piling up concurrent runs.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::MountKind;
use crate::core::Active;

/// How often engines get their periodic call.
pub const PERIODIC_INTERVAL: Duration = Duration::from_secs(60);

/// Starts the ticker for a freshly unsealed `active` state and hands the state back, so the
/// unseal path needs a single call.
pub(crate) fn started(active: Arc<Active>) -> Arc<Active> {
    spawn(Arc::downgrade(&active), PERIODIC_INTERVAL);
    active
}

fn spawn(active: Weak<Active>, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(active) = active.upgrade() else {
                break;
            };
            run_once(&active).await;
        }
    });
}

/// One round: every mounted secrets engine, then every auth method (AppRole tidies expired
/// secret ids), in turn. Errors are logged, never fatal.
pub(crate) async fn run_once(active: &Active) {
    let table = active.mounts.table(MountKind::Secret);
    for mounted in table.all() {
        let Some(engine) = &mounted.engine else {
            continue;
        };
        if let Err(err) = engine.periodic(mounted.view.as_ref()).await {
            tracing::warn!(mount = %mounted.entry.path, error = %err, "periodic engine task failed");
        }
    }
    let table = active.mounts.table(MountKind::Auth);
    for mounted in table.all() {
        let Some(method) = &mounted.method else {
            continue;
        };
        if let Err(err) = method.periodic(mounted.view.as_ref()).await {
            tracing::warn!(mount = %mounted.entry.path, error = %err, "periodic auth method task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use tresor_sdk::engine::{
        EngineFactory, EngineResult, MountInfo, Request, Response, SecretEngine,
    };
    use tresor_sdk::storage::Storage;
    use tresor_storage::MemoryBackend;

    use super::*;
    use crate::core::{Core, CoreOptions};
    use crate::mount::EnableRequest;

    #[derive(Debug, Default)]
    struct Counting(Arc<AtomicUsize>);

    #[async_trait]
    impl SecretEngine for Counting {
        async fn handle(&self, _: &Request, _: &dyn Storage) -> EngineResult<Option<Response>> {
            Ok(None)
        }
        async fn periodic(&self, storage: &dyn Storage) -> EngineResult<()> {
            // Proves the engine gets its own, working view.
            storage.put("tick", b"1").await?;
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Keeps the weak storage handle `start_background` hands over.
    #[derive(Debug, Default)]
    struct Background(Arc<std::sync::Mutex<Vec<Weak<dyn Storage>>>>);

    #[async_trait]
    impl SecretEngine for Background {
        async fn handle(&self, _: &Request, _: &dyn Storage) -> EngineResult<Option<Response>> {
            Ok(None)
        }
        fn start_background(&self, storage: Weak<dyn Storage>) {
            self.0.lock().unwrap().push(storage);
        }
    }

    #[derive(Debug, Default)]
    struct BackgroundFactory(Arc<std::sync::Mutex<Vec<Weak<dyn Storage>>>>);

    impl EngineFactory for BackgroundFactory {
        fn types(&self) -> &[&'static str] {
            &["background"]
        }
        fn build(&self, _: &MountInfo) -> EngineResult<Arc<dyn SecretEngine>> {
            Ok(Arc::new(Background(self.0.clone())))
        }
    }

    #[tokio::test]
    async fn background_work_gets_a_storage_handle_that_dies_with_the_mount() {
        let handles = Arc::new(std::sync::Mutex::new(Vec::new()));
        let options = CoreOptions {
            cluster_name: None,
            engines: vec![Arc::new(BackgroundFactory(handles.clone()))],
            ..CoreOptions::default()
        };
        let core = Core::new(Arc::new(MemoryBackend::new()), options)
            .await
            .unwrap();
        core.dev_bootstrap(None).await.unwrap();
        let active = core.active().unwrap();
        for path in ["a/", "b/"] {
            let request = EnableRequest {
                engine_type: "background".into(),
                ..EnableRequest::default()
            };
            active
                .mounts
                .enable(MountKind::Secret, path, request)
                .await
                .unwrap();
        }
        let (a, b) = {
            let h = handles.lock().unwrap();
            (h[0].clone(), h[1].clone())
        };
        a.upgrade().unwrap().put("x", b"1").await.unwrap();
        active
            .mounts
            .disable(MountKind::Secret, "a/")
            .await
            .unwrap();
        assert!(a.upgrade().is_none(), "a disabled mount's view is gone");
        assert!(b.upgrade().is_some());
        drop(active);
        core.seal_now().await;
        assert!(b.upgrade().is_none(), "sealing drops every view");
    }

    #[derive(Debug, Default)]
    struct CountingFactory(Arc<AtomicUsize>);

    impl EngineFactory for CountingFactory {
        fn types(&self) -> &[&'static str] {
            &["counting"]
        }
        fn build(&self, _: &MountInfo) -> EngineResult<Arc<dyn SecretEngine>> {
            Ok(Arc::new(Counting(self.0.clone())))
        }
    }

    #[tokio::test]
    async fn every_mounted_engine_gets_its_periodic_call_and_sealing_stops_the_ticker() {
        let calls = Arc::new(AtomicUsize::new(0));
        let options = CoreOptions {
            cluster_name: None,
            engines: vec![Arc::new(CountingFactory(calls.clone()))],
            ..CoreOptions::default()
        };
        let core = Core::new(Arc::new(MemoryBackend::new()), options)
            .await
            .unwrap();
        core.dev_bootstrap(None).await.unwrap();
        let active = core.active().unwrap();
        for path in ["a/", "b/"] {
            let request = EnableRequest {
                engine_type: "counting".into(),
                ..EnableRequest::default()
            };
            active
                .mounts
                .enable(MountKind::Secret, path, request)
                .await
                .unwrap();
        }
        run_once(&active).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // The ticker only holds a weak reference: after sealing nothing keeps the state.
        let weak = Arc::downgrade(&active);
        drop(active);
        core.seal_now().await;
        assert!(weak.upgrade().is_none(), "sealed state must be dropped");
    }
}
