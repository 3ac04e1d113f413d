//! Progress on stderr: counts and rates only, never a key (paths can be sensitive) or a value.
//!
//! On a terminal one line is redrawn in place a few times a second; otherwise (a log file, a
//! CI job) a plain line is printed every [`PLAIN_EVERY`], so the output stays readable.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the line is redrawn on a terminal.
const REDRAW_EVERY: Duration = Duration::from_millis(250);
/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Shared counters, updated by the listing and the copy workers, read by the reporter.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    listed: AtomicU64,
    copied: AtomicU64,
    bytes: AtomicU64,
    vanished: AtomicU64,
    /// Set once the listing is complete: the total is known from then on.
    total: AtomicU64,
    total_known: AtomicBool,
    /// When the copy began (after the listing), in nanoseconds after `started`: the rate is
    /// of the copy alone.
    copy_began: AtomicU64,
    /// Whether to print at all (tests use a silent one).
    enabled: bool,
    terminal: bool,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub listed: u64,
    pub copied: u64,
    pub bytes: u64,
    /// Listed, but gone from the source when the copy came to read them.
    pub vanished: u64,
    pub total: Option<u64>,
    /// Since the command started.
    pub elapsed: Duration,
    /// Since the copy (after the listing) started.
    pub copying: Duration,
}

impl Progress {
    /// Reports on stderr, redrawing in place when stderr is a terminal.
    pub fn stderr() -> Self {
        Self::new(true, std::io::IsTerminal::is_terminal(&std::io::stderr()))
    }

    /// Counts without printing anything.
    #[cfg(test)]
    pub fn silent() -> Self {
        Self::new(false, false)
    }

    fn new(enabled: bool, terminal: bool) -> Self {
        Self {
            started: Instant::now(),
            listed: AtomicU64::new(0),
            copied: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            vanished: AtomicU64::new(0),
            total: AtomicU64::new(0),
            total_known: AtomicBool::new(false),
            copy_began: AtomicU64::new(0),
            enabled,
            terminal,
        }
    }

    pub fn listed(&self, keys: u64) {
        self.listed.fetch_add(keys, Ordering::Relaxed);
    }

    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        let began = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.copy_began.store(began, Ordering::Relaxed);
        self.total_known.store(true, Ordering::Release);
    }

    pub fn copied(&self, keys: u64, bytes: u64, vanished: u64) {
        self.copied.fetch_add(keys, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.vanished.fetch_add(vanished, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            listed: self.listed.load(Ordering::Relaxed),
            copied: self.copied.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            vanished: self.vanished.load(Ordering::Relaxed),
            total: self
                .total_known
                .load(Ordering::Acquire)
                .then(|| self.total.load(Ordering::Relaxed)),
            elapsed: self.started.elapsed(),
            copying: self.started.elapsed().saturating_sub(Duration::from_nanos(
                self.copy_began.load(Ordering::Relaxed),
            )),
        }
    }

    /// Runs `work`, printing progress until it is done, then ends the in-place line (if any).
    pub async fn report_until<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        if !self.enabled {
            return work.await;
        }
        let every = if self.terminal {
            REDRAW_EVERY
        } else {
            PLAIN_EVERY
        };
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(work);
        let mut drawn = false;
        let output = loop {
            tokio::select! {
                output = &mut work => break output,
                _ = ticker.tick() => {
                    let line = describe(&self.snapshot());
                    let mut err = std::io::stderr().lock();
                    // A progress line that cannot be written is not worth failing the copy.
                    let _ = if self.terminal {
                        write!(err, "\r\x1b[K{line}")
                    } else {
                        writeln!(err, "{line}")
                    };
                    let _ = err.flush();
                    drawn = true;
                }
            }
        };
        if drawn && self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
        output
    }
}

/// The progress line for `s`.
pub fn describe(s: &Snapshot) -> String {
    let seconds = s.copying.as_secs_f64().max(0.001);
    match s.total {
        None => format!("listing the source: {} keys found", s.listed),
        Some(total) => {
            let done = s.copied + s.vanished;
            let percent = if total == 0 {
                100.0
            } else {
                done as f64 * 100.0 / total as f64
            };
            format!(
                "copied {} / {total} keys ({percent:.0}%), {:.0} keys/s",
                s.copied,
                s.copied as f64 / seconds
            )
        }
    }
}

/// The closing summary for `s`.
pub fn summary(s: &Snapshot) -> String {
    let mut line = format!(
        "copied {} keys ({} bytes) in {:.1} s",
        s.copied,
        s.bytes,
        s.elapsed.as_secs_f64()
    );
    if s.vanished > 0 {
        line.push_str(&format!(
            "; {} keys were deleted from the source while it was copied",
            s.vanished
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_hold_counts_and_rates_only() {
        let progress = Progress::silent();
        progress.listed(10);
        assert_eq!(
            describe(&progress.snapshot()),
            "listing the source: 10 keys found"
        );
        progress.set_total(10);
        progress.copied(4, 400, 1);
        let s = Snapshot {
            elapsed: Duration::from_secs(3),
            copying: Duration::from_secs(2),
            ..progress.snapshot()
        };
        assert_eq!(describe(&s), "copied 4 / 10 keys (50%), 2 keys/s");
        assert_eq!(
            summary(&s),
            "copied 4 keys (400 bytes) in 3.0 s; 1 keys were deleted from the source while it was copied"
        );
    }
}
