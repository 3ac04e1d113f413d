//! Kubernetes Events about a resource (core/v1, as client-go's legacy recorder writes them:
//! `involvedObject` the resource, `source.component` `tresor-sync`): `Synced` (Normal) when a
//! Secret was written or the resource became Ready, `SyncFailed` (Warning) when a sync failed
//! with a reason not reported just before. Only transitions are recorded, so a steady state
//! writes no Events. A failed Event write is logged and otherwise ignored.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::cache::Entry;
use super::log;

pub const COMPONENT: &str = "tresor-sync";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Normal,
    Warning,
}

/// `<name>.<hex nanoseconds>`, as client-go names Events (within the 253-character limit).
fn event_name(object: &str) -> String {
    let mut base = object.to_owned();
    base.truncate(200);
    let base = base.trim_end_matches(['-', '.']);
    format!("{base}.{:x}", tresor_sdk::timestamp::now_nanos())
}

pub async fn record(
    client: &kube::Client,
    entry: &Entry,
    type_: Type,
    reason: &str,
    message: &str,
    instance: &str,
) {
    let namespace = if entry.key.namespace.is_empty() {
        "default".to_owned()
    } else {
        entry.key.namespace.clone()
    };
    let now = Time(Timestamp::now());
    let event = Event {
        metadata: ObjectMeta {
            name: Some(event_name(&entry.key.name)),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(entry.api_version.clone()),
            kind: Some(entry.key.kind.name().to_owned()),
            name: Some(entry.key.name.clone()),
            namespace: (!entry.key.namespace.is_empty()).then(|| entry.key.namespace.clone()),
            uid: entry.uid.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(super::status::bounded(message.to_owned())),
        type_: Some(
            match type_ {
                Type::Normal => "Normal",
                Type::Warning => "Warning",
            }
            .to_owned(),
        ),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource {
            component: Some(COMPONENT.to_owned()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        action: Some("Sync".to_owned()),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        log::warn(&format!(
            "{}: recording Event {reason}: {}",
            entry.key,
            crate::apply::kube_reason(&e)
        ));
    }
}
