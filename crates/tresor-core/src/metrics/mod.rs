//! Telemetry: the counters and latency histograms behind `sys/metrics`.
//!
//! One process-wide [`Registry`] (as go-metrics' global sink is in OpenBao), so a hook deep in
//! the barrier or the audit broker is one atomic add with nothing to thread through. Gauges
//! that describe state (sealed, active, leases, tokens) are not kept here: they are read from
//! the core when a scrape asks ([`crate::core::Core::metric_families`]), so nothing has to keep
//! them current.
//!
//! Names are OpenBao's, dotted as its in-memory sink shows them (`vault.core.handle_request`);
//! the Prometheus exposition turns dots into underscores (`vault_core_handle_request`).
//!
//! - `histogram`: the lock-free latency histogram.
//! - `routes`: per mount and operation histograms, bounded in number.
//! - `exposition`: the scrape model, the Prometheus text format and OpenBao's JSON shape.

mod exposition;
mod gauges;
mod histogram;
mod routes;

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use exposition::{Family, Kind, Series, SeriesValue, inmem_json, prometheus_text};
pub use histogram::{BUCKETS_MS, Histogram, HistogramSnapshot};
pub use routes::{OPERATIONS, RouteFamily};

/// Storage calls through the barrier, timed as OpenBao's `vault.barrier.*` timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOp {
    Get,
    Put,
    Delete,
    List,
    Transaction,
}

impl StorageOp {
    const ALL: [StorageOp; 5] = [
        StorageOp::Get,
        StorageOp::Put,
        StorageOp::Delete,
        StorageOp::List,
        StorageOp::Transaction,
    ];

    fn name(self) -> &'static str {
        match self {
            StorageOp::Get => "vault.barrier.get",
            StorageOp::Put => "vault.barrier.put",
            StorageOp::Delete => "vault.barrier.delete",
            StorageOp::List => "vault.barrier.list",
            // OpenBao times transactions in the physical layer only; the name follows the
            // barrier family.
            StorageOp::Transaction => "vault.barrier.transaction",
        }
    }
}

/// Everything the process counts as it runs.
#[derive(Debug)]
pub struct Registry {
    started: Instant,
    /// Every request past the raw unauthenticated endpoints, from parsing to the answer.
    pub handle_request: Histogram,
    /// The same requests, per mount point and operation (OpenBao's `vault.route.<op>.<mount>`).
    pub routes: RouteFamily,
    barrier: [Histogram; 5],
    /// Requests whose request line no audit device could write (the request was refused).
    pub audit_request_failure: AtomicU64,
    /// Answers whose response line no audit device could write (replaced by a 500).
    pub audit_response_failure: AtomicU64,
    /// Single device writes that failed, whether or not another device recorded the line.
    pub audit_device_failure: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            handle_request: Histogram::default(),
            routes: RouteFamily::default(),
            barrier: std::array::from_fn(|_| Histogram::default()),
            audit_request_failure: AtomicU64::new(0),
            audit_response_failure: AtomicU64::new(0),
            audit_device_failure: AtomicU64::new(0),
        }
    }
}

static GLOBAL: LazyLock<Registry> = LazyLock::new(Registry::default);

/// The process-wide registry.
pub fn global() -> &'static Registry {
    &GLOBAL
}

/// Adds one to a counter of the registry.
pub fn incr(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Registry {
    pub fn barrier(&self, op: StorageOp) -> &Histogram {
        let index = StorageOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        // `index` comes from `ALL`, which has as many entries as `barrier`.
        match self.barrier.get(index) {
            Some(h) => h,
            None => &self.handle_request,
        }
    }

    /// Time since the registry was created (the JSON format's rates are per second of it).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The registry's own families (state gauges are added by the core).
    pub fn families(&self) -> Vec<Family> {
        let mut out = vec![
            Family::histogram(
                "vault.core.handle_request",
                "Time to handle a request, in milliseconds.",
                vec![Series::unlabelled(SeriesValue::Histogram(
                    self.handle_request.snapshot(),
                ))],
            ),
            Family::histogram(
                "vault.route",
                "Time to handle a request, per mount point and operation, in milliseconds.",
                self.routes.series(),
            ),
        ];
        for op in StorageOp::ALL {
            out.push(Family::histogram(
                op.name(),
                "Time of a storage operation through the barrier, in milliseconds.",
                vec![Series::unlabelled(SeriesValue::Histogram(
                    self.barrier(op).snapshot(),
                ))],
            ));
        }
        let counter = |c: &AtomicU64| {
            vec![Series::unlabelled(SeriesValue::Counter(
                c.load(Ordering::Relaxed),
            ))]
        };
        out.push(Family::counter(
            "vault.audit.log_request_failure",
            "Requests refused because no audit device could record them.",
            counter(&self.audit_request_failure),
        ));
        out.push(Family::counter(
            "vault.audit.log_response_failure",
            "Answers replaced by an error because no audit device could record them.",
            counter(&self.audit_response_failure),
        ));
        out.push(Family::counter(
            "vault.audit.device_write_failure",
            "Audit lines a single device failed to write.",
            counter(&self.audit_device_failure),
        ));
        out
    }
}

/// Times a block: records the elapsed time into `histogram` when dropped, so every return
/// path (`?` included) is measured.
#[derive(Debug)]
pub struct Timer<'a> {
    histogram: &'a Histogram,
    start: Instant,
}

impl<'a> Timer<'a> {
    pub fn start(histogram: &'a Histogram) -> Self {
        Self {
            histogram,
            start: Instant::now(),
        }
    }
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed());
    }
}

/// Starts a timer on one of the barrier's histograms.
pub fn time_barrier(op: StorageOp) -> Timer<'static> {
    Timer::start(global().barrier(op))
}
