//! The requests being served right now, for `sys/in-flight-req` and the
//! `vault.core.in_flight_requests` gauge.
//!
//! Every request registers on arrival and is removed when its future ends (answered, failed or
//! dropped by a timeout), through a guard. The map is split into shards by request id so that
//! concurrent requests rarely touch the same lock.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value, json};

const SHARDS: usize = 16;

/// What `sys/in-flight-req` shows of one request (OpenBao's `InFlightReqData`).
#[derive(Debug, Clone)]
struct Entry {
    /// Unix nanoseconds; formatted only when someone asks (`sys/in-flight-req`), not per request.
    start_nanos: i64,
    client_remote_address: String,
    request_path: String,
    request_method: String,
}

#[derive(Debug)]
pub struct InFlight {
    shards: [Mutex<HashMap<String, Entry>>; SHARDS],
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

/// Removes its request from the registry when dropped.
#[derive(Debug)]
pub struct Registered<'a> {
    registry: &'a InFlight,
    id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry
            .shard(&self.id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl InFlight {
    fn shard(&self, id: &str) -> &Mutex<HashMap<String, Entry>> {
        // Request ids are random UUIDs: their last hex digit spreads them evenly.
        let digit = id.as_bytes().last().map_or(0, |b| usize::from(*b) % SHARDS);
        let [first, ..] = &self.shards;
        self.shards.get(digit).unwrap_or(first)
    }

    /// Registers a request until the returned guard is dropped. `remote` is the client's
    /// address and port (or the first `X-Forwarded-For` value, as OpenBao shows it), `path` the
    /// URL path as sent (`/v1/…`).
    pub fn register(&self, id: &str, remote: String, path: &str, method: &str) -> Registered<'_> {
        let entry = Entry {
            start_nanos: tresor_sdk::timestamp::now_nanos(),
            client_remote_address: remote,
            request_path: path.to_owned(),
            request_method: method.to_owned(),
        };
        self.shard(id)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), entry);
        Registered {
            registry: self,
            id: id.to_owned(),
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// OpenBao's `sys/in-flight-req` body: request id → its data. `client_id` is always empty
    /// (Tresor has no client count).
    pub fn snapshot(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for (id, e) in shard.iter() {
                out.insert(
                    id.clone(),
                    json!({
                        "start_time": tresor_sdk::timestamp::rfc3339_nano(e.start_nanos),
                        "client_remote_address": e.client_remote_address,
                        "request_path": e.request_path,
                        "request_method": e.request_method,
                        "client_id": "",
                    }),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_listed_until_its_guard_is_dropped() {
        let registry = InFlight::default();
        let a = registry.register("id-a", "127.0.0.1:1000".into(), "/v1/secret/x", "GET");
        let b = registry.register("id-b", "127.0.0.1:1001".into(), "/v1/sys/health", "HEAD");
        assert_eq!(registry.len(), 2);
        let snap = registry.snapshot();
        assert_eq!(snap["id-a"]["request_path"], "/v1/secret/x");
        assert_eq!(snap["id-a"]["request_method"], "GET");
        assert_eq!(snap["id-a"]["client_remote_address"], "127.0.0.1:1000");
        assert_eq!(snap["id-a"]["client_id"], "");
        assert!(
            snap["id-a"]["start_time"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        drop(a);
        assert_eq!(registry.len(), 1);
        assert!(!registry.snapshot().contains_key("id-a"));
        drop(b);
        assert!(registry.is_empty());
    }
}
