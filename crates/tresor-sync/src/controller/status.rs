//! The status a reconcile leaves on its resource. A `Ready` condition (`True`/`False`, a
//! reason, the safe message — the engine's failure reasons, which never hold a value) in the
//! shape each kind's CRD declares:
//!
//! - `ExternalSecret` (ESO): `conditions`, `refreshTime`, `binding.name`; ESO's reasons
//!   `SecretSynced` / `SecretSyncedError`;
//! - `VaultStaticSecret` (VSO): `lastGeneration`, `conditions`;
//! - `VaultDynamicSecret` (VSO): `lastGeneration`, `lastRenewalTime`, `secretLease` after a
//!   success (its status has no conditions: failures show as Events);
//! - `TresorSecret`: `observedGeneration`, `contentHash`, `lastSyncTime`, `conditions`.
//!
//! A status is written only when it would say something new (another condition, message,
//! generation, content hash or lease): an idle refresh writes nothing, so an idle cluster sees
//! no API writes. `refreshTime`/`lastSyncTime` are therefore the time of the last sync that
//! changed something.

use serde_json::{Value as Json, json};

use super::kinds::Kind;
use crate::secret::LeaseInfo;

/// The longest condition or Event message (the Events API's limit is 1 KiB).
pub const MAX_MESSAGE: usize = 1024;

/// What a reconcile concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Verdict {
    pub fn success(kind: Kind, message: String) -> Verdict {
        Verdict {
            ready: true,
            reason: if kind.is_eso() {
                "SecretSynced"
            } else {
                "Synced"
            },
            message: bounded(message),
        }
    }

    pub fn failure(kind: Kind, message: String) -> Verdict {
        Verdict {
            ready: false,
            reason: if kind.is_eso() {
                "SecretSyncedError"
            } else {
                "SyncFailed"
            },
            message: bounded(message),
        }
    }
}

/// `message` cut to [`MAX_MESSAGE`] bytes on a character boundary.
pub fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

/// What else the status records after a success.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub generation: Option<i64>,
    pub secret_name: Option<String>,
    pub content_hash: Option<String>,
    pub lease: Option<LeaseInfo>,
}

/// The `Ready` condition of a status: (ready, reason, message).
pub fn ready_condition(status: &Json) -> Option<(bool, String, String)> {
    let c = status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Json::as_str) == Some("Ready"))?;
    let text = |k: &str| c.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
    Some((text("status") == "True", text("reason"), text("message")))
}

fn conditions(current: &Json, verdict: &Verdict, generation: Option<i64>, now: &str) -> Json {
    let previous = current.get("conditions").and_then(Json::as_array);
    let old_ready = previous.and_then(|cs| {
        cs.iter()
            .find(|c| c.get("type").and_then(Json::as_str) == Some("Ready"))
    });
    let status = if verdict.ready { "True" } else { "False" };
    // The transition time moves only when the status does.
    let transition = match old_ready {
        Some(c) if c.get("status").and_then(Json::as_str) == Some(status) => c
            .get("lastTransitionTime")
            .and_then(Json::as_str)
            .unwrap_or(now)
            .to_owned(),
        _ => now.to_owned(),
    };
    let mut ready = json!({
        "type": "Ready",
        "status": status,
        "reason": verdict.reason,
        "message": verdict.message,
        "lastTransitionTime": transition,
    });
    if let (Some(g), Some(o)) = (generation, ready.as_object_mut()) {
        o.insert("observedGeneration".into(), json!(g));
    }
    let mut out: Vec<Json> = previous
        .map(|cs| {
            cs.iter()
                .filter(|c| c.get("type").and_then(Json::as_str) != Some("Ready"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    out.push(ready);
    Json::Array(out)
}

fn same_condition(current: &Json, verdict: &Verdict) -> bool {
    ready_condition(current).is_some_and(|(ready, reason, message)| {
        ready == verdict.ready && reason == verdict.reason && message == verdict.message
    })
}

/// The status to merge-patch onto the resource (`{"status": …}`), or `None` when it already
/// says all this. `now` is RFC 3339 (seconds).
pub fn next_status(
    kind: Kind,
    current: &Json,
    verdict: &Verdict,
    extra: &Extra,
    now: &str,
    now_unix: i64,
) -> Option<Json> {
    let field = |k: &str| current.get(k).cloned().unwrap_or(Json::Null);
    let generation = extra.generation.map_or(Json::Null, |g| json!(g));
    let status = match kind {
        Kind::ExternalSecret => {
            let binding = extra
                .secret_name
                .as_ref()
                .map(|n| json!({"name": n}))
                .unwrap_or_else(|| field("binding"));
            if same_condition(current, verdict) && field("binding") == binding {
                return None;
            }
            let mut s = json!({
                "refreshTime": now,
                "conditions": conditions(current, verdict, extra.generation, now),
            });
            if let (false, Some(o)) = (binding.is_null(), s.as_object_mut()) {
                o.insert("binding".into(), binding);
            }
            s
        }
        Kind::VaultStaticSecret => {
            if same_condition(current, verdict) && field("lastGeneration") == generation {
                return None;
            }
            json!({
                "lastGeneration": extra.generation.unwrap_or(0),
                "conditions": conditions(current, verdict, extra.generation, now),
            })
        }
        Kind::VaultDynamicSecret => {
            let lease = extra.lease.as_ref().filter(|_| verdict.ready)?;
            if field("lastGeneration") == generation
                && current.pointer("/secretLease/id").and_then(Json::as_str)
                    == Some(lease.lease_id.as_str())
            {
                return None;
            }
            json!({
                "lastGeneration": extra.generation.unwrap_or(0),
                "lastRenewalTime": now_unix,
                "secretLease": {
                    "id": lease.lease_id,
                    "duration": lease.duration_secs,
                    "renewable": lease.renewable,
                    "requestID": "",
                },
            })
        }
        Kind::TresorSecret => {
            let hash = extra
                .content_hash
                .as_ref()
                .map(|h| json!(h))
                .unwrap_or_else(|| field("contentHash"));
            if same_condition(current, verdict)
                && field("observedGeneration") == generation
                && field("contentHash") == hash
            {
                return None;
            }
            let mut s = json!({
                "observedGeneration": extra.generation.unwrap_or(0),
                "lastSyncTime": now,
                "conditions": conditions(current, verdict, extra.generation, now),
            });
            if let (false, Some(o)) = (hash.is_null(), s.as_object_mut()) {
                o.insert("contentHash".into(), hash);
            }
            s
        }
        _ => return None,
    };
    Some(json!({ "status": status }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[test]
    fn eso_status_written_once_then_only_on_change() {
        let ok = Verdict::success(Kind::ExternalSecret, "Secret synced".into());
        let extra = Extra {
            generation: Some(2),
            secret_name: Some("target".into()),
            ..Extra::default()
        };
        let first = next_status(Kind::ExternalSecret, &Json::Null, &ok, &extra, "T1", 1).unwrap();
        let s = &first["status"];
        assert_eq!(s["refreshTime"], "T1");
        assert_eq!(s["binding"]["name"], "target");
        assert_eq!(s["conditions"][0]["type"], "Ready");
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][0]["reason"], "SecretSynced");
        assert_eq!(s["conditions"][0]["observedGeneration"], 2);
        // The same verdict again: nothing to write.
        assert!(next_status(Kind::ExternalSecret, s, &ok, &extra, "T2", 2).is_none());
        // A failure: False, the message, a new transition time; other conditions kept.
        let mut with_other = s.clone();
        with_other["conditions"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({"type": "Other", "status": "True"}));
        let bad = Verdict::failure(Kind::ExternalSecret, "no secret at secret/data/x".into());
        let failed = next_status(Kind::ExternalSecret, &with_other, &bad, &extra, "T3", 3).unwrap();
        let cs = failed["status"]["conditions"].as_array().unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["type"], "Other");
        assert_eq!(cs[1]["status"], "False");
        assert_eq!(cs[1]["reason"], "SecretSyncedError");
        assert_eq!(cs[1]["message"], "no secret at secret/data/x");
        assert_eq!(cs[1]["lastTransitionTime"], "T3");
        // Another failure message keeps the transition time.
        let worse = Verdict::failure(Kind::ExternalSecret, "Tresor is sealed".into());
        let again = next_status(
            Kind::ExternalSecret,
            &failed["status"],
            &worse,
            &extra,
            "T4",
            4,
        )
        .unwrap();
        assert_eq!(again["status"]["conditions"][1]["lastTransitionTime"], "T3");
        assert_eq!(
            ready_condition(&again["status"]).unwrap(),
            (false, "SecretSyncedError".into(), "Tresor is sealed".into())
        );
    }

    #[test]
    fn tresor_and_vso_shapes() {
        let ok = Verdict::success(Kind::TresorSecret, "synced".into());
        let extra = Extra {
            generation: Some(1),
            content_hash: Some("sha256:ab".into()),
            ..Extra::default()
        };
        let s = next_status(Kind::TresorSecret, &Json::Null, &ok, &extra, "T", 1).unwrap();
        assert_eq!(s["status"]["contentHash"], "sha256:ab");
        assert_eq!(s["status"]["observedGeneration"], 1);
        assert_eq!(s["status"]["conditions"][0]["reason"], "Synced");
        assert!(next_status(Kind::TresorSecret, &s["status"], &ok, &extra, "T", 1).is_none());
        let changed = Extra {
            content_hash: Some("sha256:cd".into()),
            ..extra.clone()
        };
        assert!(next_status(Kind::TresorSecret, &s["status"], &ok, &changed, "T", 1).is_some());
        let v = next_status(Kind::VaultStaticSecret, &Json::Null, &ok, &extra, "T", 1).unwrap();
        assert_eq!(v["status"]["lastGeneration"], 1);
        // A dynamic secret's failure writes no status (its CRD has no conditions).
        let bad = Verdict::failure(Kind::VaultDynamicSecret, "x".into());
        assert!(next_status(Kind::VaultDynamicSecret, &Json::Null, &bad, &extra, "T", 1).is_none());
    }

    #[test]
    fn long_messages_are_bounded() {
        let m = bounded("é".repeat(1000));
        assert!(m.len() <= MAX_MESSAGE);
        assert!(m.ends_with("..."));
    }
}
