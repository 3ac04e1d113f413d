//! The requests being served right now, for `sys/in-flight-req` and the
//! `vault.core.in_flight_requests` gauge.
//!
//! Every request registers on arrival and is removed when its future ends (answered, failed or
//! dropped by a timeout), through a guard. The map is split into shards by a registration
//! number so that concurrent requests rarely touch the same lock. Registering copies nothing
//! that can wait: the address, path and start time are kept as they are and formatted only
//! when someone asks (`sys/in-flight-req`), since every request pays for registering.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value, json};

const SHARDS: usize = 16;

/// Who sent a request, as `sys/in-flight-req` shows it.
#[derive(Debug, Clone)]
pub enum Client {
    /// The connection's address and port.
    Socket(SocketAddr),
    /// The first `X-Forwarded-For` value, as OpenBao shows it.
    Forwarded(String),
    Unknown,
}

impl Client {
    fn render(&self) -> String {
        match self {
            Client::Socket(addr) => addr.to_string(),
            Client::Forwarded(value) => value.clone(),
            Client::Unknown => String::new(),
        }
    }
}

/// What `sys/in-flight-req` shows of one request (OpenBao's `InFlightReqData`).
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    /// Unix nanoseconds.
    start_nanos: i64,
    client: Client,
    /// The request's URI (its path is shown; cloning a URI shares its bytes).
    uri: http::Uri,
    method: http::Method,
}

#[derive(Debug)]
pub struct InFlight {
    shards: [Mutex<HashMap<u64, Entry>>; SHARDS],
    next: AtomicU64,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            next: AtomicU64::new(0),
        }
    }
}

/// Removes its request from the registry when dropped.
#[derive(Debug)]
pub struct Registered<'a> {
    registry: &'a InFlight,
    key: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.registry
            .shard(self.key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl InFlight {
    fn shard(&self, key: u64) -> &Mutex<HashMap<u64, Entry>> {
        // Consecutive registrations go to consecutive shards.
        let index = usize::try_from(key % SHARDS as u64).unwrap_or(0);
        let [first, ..] = &self.shards;
        self.shards.get(index).unwrap_or(first)
    }

    /// Registers a request until the returned guard is dropped.
    pub fn register(
        &self,
        id: &str,
        client: Client,
        uri: &http::Uri,
        method: &http::Method,
    ) -> Registered<'_> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            id: id.to_owned(),
            start_nanos: tresor_sdk::timestamp::now_nanos(),
            client,
            uri: uri.clone(),
            method: method.clone(),
        };
        self.shard(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, entry);
        Registered {
            registry: self,
            key,
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
            for e in shard.values() {
                out.insert(
                    e.id.clone(),
                    json!({
                        "start_time": tresor_sdk::timestamp::rfc3339_nano(e.start_nanos),
                        "client_remote_address": e.client.render(),
                        "request_path": e.uri.path(),
                        "request_method": e.method.as_str(),
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
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_request_is_listed_until_its_guard_is_dropped() {
        let registry = InFlight::default();
        let a = registry.register(
            "id-a",
            Client::Socket("127.0.0.1:1000".parse().unwrap()),
            &"/v1/secret/x?version=2".parse().unwrap(),
            &http::Method::GET,
        );
        let b = registry.register(
            "id-b",
            Client::Forwarded("203.0.113.9".to_owned()),
            &"/v1/sys/health".parse().unwrap(),
            &http::Method::HEAD,
        );
        assert_eq!(registry.len(), 2);
        let snap = registry.snapshot();
        assert_eq!(snap["id-a"]["request_path"], "/v1/secret/x");
        assert_eq!(snap["id-a"]["request_method"], "GET");
        assert_eq!(snap["id-a"]["client_remote_address"], "127.0.0.1:1000");
        assert_eq!(snap["id-a"]["client_id"], "");
        assert_eq!(snap["id-b"]["client_remote_address"], "203.0.113.9");
        assert_eq!(snap["id-b"]["request_method"], "HEAD");
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
