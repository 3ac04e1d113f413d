//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection`
//! does it: the holder renews `spec.renewTime` every retry period; another replica takes the
//! Lease over only when it has seen the same record unchanged for `leaseDurationSeconds` (by
//! its own clock: no trust in other nodes' clocks); every write is a replace carrying the
//! `resourceVersion` read, so two replicas racing for an expired Lease cannot both win (the
//! loser gets 409 Conflict). A leader that cannot renew within the renew deadline stops
//! leading. On shutdown the leader releases the Lease (empty holder), so a replica takes over
//! at once instead of after the lease duration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::{Mutex, watch};

use super::log;

/// Timing of the election (client-go's defaults: 15 s, 10 s, 2 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// What the Lease says, as far as the election is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub holder: String,
    pub lease_duration_seconds: i32,
    pub renew_time: Option<String>,
    pub acquire_time: Option<String>,
    pub transitions: i32,
}

impl Record {
    pub fn from_lease(lease: &Lease) -> Record {
        let spec = lease.spec.clone().unwrap_or_default();
        Record {
            holder: spec.holder_identity.unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
            renew_time: spec.renew_time.map(|t| t.0.to_string()),
            acquire_time: spec.acquire_time.map(|t| t.0.to_string()),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// The next step of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No Lease yet: create it, holding it.
    Create,
    /// Ours: renew it (same acquire time and transitions).
    Renew,
    /// Free (released, or expired by our clock): take it, one more transition.
    Acquire { transitions: i32 },
    /// Another replica holds it and it has not expired.
    Wait { holder: String },
}

/// When this replica first saw the current record: the Lease expires `leaseDurationSeconds`
/// after that moment unless the record changes (a renewal).
#[derive(Debug, Default, Clone)]
pub struct Observer {
    seen: Option<(Record, Instant)>,
}

impl Observer {
    /// Notes the record read at `now`; returns whether it has expired by our clock.
    pub fn observe(&mut self, record: &Record, now: Instant) -> bool {
        let since = match &self.seen {
            Some((r, at)) if r == record => *at,
            _ => {
                self.seen = Some((record.clone(), now));
                now
            }
        };
        let duration =
            Duration::from_secs(u64::try_from(record.lease_duration_seconds).unwrap_or(0));
        now.duration_since(since) >= duration
    }
}

/// The decision for `me`, given the Lease's record (`None`: no Lease) and whether it expired.
pub fn decide(record: Option<&Record>, me: &str, expired: bool) -> Action {
    match record {
        None => Action::Create,
        Some(r) if r.holder == me => Action::Renew,
        Some(r) if r.holder.is_empty() || expired => Action::Acquire {
            transitions: r.transitions.saturating_add(1),
        },
        Some(r) => Action::Wait {
            holder: r.holder.clone(),
        },
    }
}

/// One replica's elector.
#[derive(Debug)]
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    observer: Mutex<Observer>,
}

fn micro_now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

impl Elector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Elector {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            observer: Mutex::new(Observer::default()),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One attempt: `Ok(true)` when this replica holds the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, String> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| crate::apply::kube_reason(&e))?;
        let record = current.as_ref().map(Record::from_lease);
        let expired = match &record {
            Some(r) => self.observer.lock().await.observe(r, Instant::now()),
            None => false,
        };
        let action = decide(record.as_ref(), &self.identity, expired);
        let renewing = action == Action::Renew;
        let now = micro_now();
        let spec = |acquire: Option<MicroTime>, transitions: i32| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(seconds(self.timing.lease_duration)),
            acquire_time: acquire,
            renew_time: Some(now.clone()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let result = match (action, current) {
            (Action::Wait { .. }, _) => return Ok(false),
            (Action::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(Some(now.clone()), 0)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Action::Renew, Some(mut lease)) => {
                let old = lease.spec.clone().unwrap_or_default();
                lease.spec = Some(spec(
                    old.acquire_time.or_else(|| Some(now.clone())),
                    old.lease_transitions.unwrap_or(0),
                ));
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
            (Action::Acquire { transitions }, Some(mut lease)) => {
                lease.spec = Some(spec(Some(now.clone()), transitions));
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
            (Action::Renew | Action::Acquire { .. }, None) => return Ok(false),
        };
        match result {
            Ok(lease) => {
                // Our own write is the record we now observe.
                self.observer
                    .lock()
                    .await
                    .observe(&Record::from_lease(&lease), Instant::now());
                Ok(true)
            }
            // A renewal that lost a race is retried until the renew deadline (as client-go
            // does): the next read shows whether the Lease is still ours.
            Err(kube::Error::Api(s)) if s.code == 409 && renewing => {
                Err("the Lease changed while being renewed (409 Conflict)".into())
            }
            // Another replica wrote first (create race or a stale resourceVersion).
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(crate::apply::kube_reason(&e)),
        }
    }

    /// Gives the Lease up if this replica holds it: empty holder, 1 s duration (client-go's
    /// release), so the next replica takes it at its next retry.
    pub async fn release(&self) -> Result<(), String> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| crate::apply::kube_reason(&e))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(micro_now());
        lease.spec = Some(spec);
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
            .map_err(|e| crate::apply::kube_reason(&e))
    }

    /// Runs the election until `stop` turns true; publishes leadership on `leading`. A leader
    /// that fails to renew for the renew deadline publishes `false` (the controller then
    /// exits, as client-go's callers do: its view of the world may be stale). On stop, a
    /// leader releases the Lease.
    pub async fn run(
        self: Arc<Self>,
        leading: watch::Sender<bool>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut last_renew: Option<Instant> = None;
        let mut last_error = String::new();
        loop {
            if *stop.borrow() {
                break;
            }
            let attempt =
                tokio::time::timeout(self.timing.renew_deadline, self.try_acquire_or_renew()).await;
            let is_leader = *leading.borrow();
            match attempt {
                Ok(Ok(true)) => {
                    last_renew = Some(Instant::now());
                    last_error.clear();
                    if !is_leader {
                        log::info(&format!(
                            "became the leader (Lease {}, identity {})",
                            self.name, self.identity
                        ));
                        let _ = leading.send(true);
                    }
                }
                Ok(Ok(false)) => {
                    if is_leader {
                        log::warn(&format!("lost the Lease {} to another replica", self.name));
                        let _ = leading.send(false);
                        last_renew = None;
                    }
                }
                Ok(Err(_)) | Err(_) => {
                    let reason = match attempt {
                        Ok(Err(reason)) => reason,
                        _ => "timed out".to_owned(),
                    };
                    if reason != last_error {
                        log::warn(&format!("Lease {}: {reason}", self.name));
                        last_error = reason;
                    }
                    if is_leader
                        && last_renew.is_none_or(|t| t.elapsed() >= self.timing.renew_deadline)
                    {
                        log::warn(&format!(
                            "could not renew the Lease {} within the renew deadline",
                            self.name
                        ));
                        let _ = leading.send(false);
                        last_renew = None;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.timing.retry_period) => {}
                _ = stop.changed() => {}
            }
        }
        if *leading.borrow() {
            match self.release().await {
                Ok(()) => log::info(&format!("released the Lease {}", self.name)),
                Err(reason) => log::warn(&format!("releasing the Lease {}: {reason}", self.name)),
            }
            let _ = leading.send(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str, secs: i32, renew: &str, transitions: i32) -> Record {
        Record {
            holder: holder.into(),
            lease_duration_seconds: secs,
            renew_time: Some(renew.into()),
            acquire_time: None,
            transitions,
        }
    }

    #[test]
    fn no_lease_is_created_and_ours_is_renewed() {
        assert_eq!(decide(None, "a", false), Action::Create);
        let r = record("a", 15, "t1", 3);
        assert_eq!(decide(Some(&r), "a", false), Action::Renew);
        // Even an "expired" record of ours is renewed, not re-acquired.
        assert_eq!(decide(Some(&r), "a", true), Action::Renew);
    }

    #[test]
    fn a_live_lease_of_another_is_waited_for_an_expired_or_released_one_taken() {
        let r = record("b", 15, "t1", 3);
        assert_eq!(
            decide(Some(&r), "a", false),
            Action::Wait { holder: "b".into() }
        );
        assert_eq!(
            decide(Some(&r), "a", true),
            Action::Acquire { transitions: 4 }
        );
        let released = record("", 1, "t2", 4);
        assert_eq!(
            decide(Some(&released), "a", false),
            Action::Acquire { transitions: 5 }
        );
    }

    #[test]
    fn expiry_is_measured_from_when_this_replica_saw_the_record() {
        let start = Instant::now();
        let mut obs = Observer::default();
        let r1 = record("b", 2, "t1", 0);
        assert!(!obs.observe(&r1, start));
        assert!(!obs.observe(&r1, start + Duration::from_millis(1900)));
        // A renewal (new renewTime) restarts the clock.
        let r2 = record("b", 2, "t2", 0);
        assert!(!obs.observe(&r2, start + Duration::from_millis(1950)));
        assert!(!obs.observe(&r2, start + Duration::from_millis(3900)));
        assert!(obs.observe(&r2, start + Duration::from_millis(3950)));
        // A lease with no duration is expired as soon as seen.
        let mut fresh = Observer::default();
        assert!(fresh.observe(&record("c", 0, "t", 0), start));
    }
}
