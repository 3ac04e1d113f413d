//! What one connection is doing, and the single deadline that follows from it.
//!
//! A connection is either waiting for a request (idle), reading one (its headers have started
//! to arrive), or serving requests (at least one in flight). Each phase has its own limit
//! ([`ListenerLimits`]); the connection's task sleeps until the one deadline of its current
//! phase and is woken early only when the phase changes. Nothing ticks per connection.
//!
//! - [`Watched`] wraps the socket: the first byte after an idle period starts the header
//!   clock, a write that cannot proceed starts the write-stall clock.
//! - [`RequestGuard`] is held by each request until its response body is finished (or
//!   dropped): while any is alive, the header and idle clocks are off.
//! - [`ConnState::expired`] waits for the deadline of whatever phase the connection is in.
//!
//! A phase change wakes the watchdog only when it brings the deadline forward. One that moves
//! it later (a request starting or ending, the next request's first byte) is left for the
//! watchdog to find when its earlier deadline comes: it re-reads the phase then and sleeps
//! again. The watchdog runs in the connection's own task, so waking it on every change cost
//! each request two or three extra polls of the whole connection.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;
use tresor_config::ListenerLimits;

/// Why a connection was closed by its watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// A request's headers did not arrive in `http_read_header_timeout`.
    Headers,
    /// No request came in `http_idle_timeout`.
    Idle,
    /// A response write made no progress in `http_write_timeout` (or the idle timeout).
    WriteStalled,
}

impl Expired {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Headers => "request headers not received within http_read_header_timeout",
            Self::Idle => "no request within http_idle_timeout",
            Self::WriteStalled => "response write stalled",
        }
    }
}

#[derive(Debug)]
struct Phase {
    /// Requests whose response has not been fully handed to the connection yet.
    in_flight: usize,
    /// Set by the first HTTP/2 request: h2 has no header phase of its own (its frames,
    /// pings included, flow while idle), so only the idle clock applies between requests.
    http2: bool,
    /// When the connection last became idle (accepted, or its last response finished).
    idle_since: Instant,
    /// When the first byte of the next request's headers arrived. A new connection starts
    /// with it set, so a client that connects and says nothing gets the header timeout, as
    /// Go's server (and so Vault) does.
    head_started: Option<Instant>,
    /// When a write last returned `Pending` without any progress since.
    write_blocked_since: Option<Instant>,
    /// The deadline the watchdog sleeps until (`None`: it waits for a change, or has not
    /// looked yet). A change that leaves the deadline no earlier than this needs no wake-up.
    armed: Option<Instant>,
}

/// Shared by the socket wrapper, the request guards and the connection's watchdog.
#[derive(Debug)]
pub struct ConnState {
    phase: Mutex<Phase>,
    changed: Notify,
    limits: ListenerLimits,
}

impl ConnState {
    pub fn new(limits: ListenerLimits) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            phase: Mutex::new(Phase {
                in_flight: 0,
                http2: false,
                idle_since: now,
                head_started: Some(now),
                write_blocked_since: None,
                armed: None,
            }),
            changed: Notify::new(),
            limits,
        })
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        // A panic while holding this lock cannot leave the phase inconsistent (every update
        // is a single field assignment), so a poisoned lock is still usable.
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request's headers are in: the header and idle clocks stop until it is answered.
    pub fn begin_request(self: &Arc<Self>, http2: bool) -> RequestGuard {
        let mut phase = self.phase();
        phase.in_flight = phase.in_flight.saturating_add(1);
        phase.http2 |= http2;
        phase.head_started = None;
        self.wake_if_sooner(phase);
        RequestGuard {
            state: Arc::clone(self),
        }
    }

    fn end_request(&self) {
        let mut phase = self.phase();
        phase.in_flight = phase.in_flight.saturating_sub(1);
        if phase.in_flight == 0 {
            phase.idle_since = Instant::now();
            phase.head_started = None;
        }
        self.wake_if_sooner(phase);
    }

    /// Wakes the watchdog if the phase's deadline (just changed) comes before the one it
    /// sleeps until.
    fn wake_if_sooner(&self, phase: MutexGuard<'_, Phase>) {
        let sooner = match (deadline_of(&phase, &self.limits), phase.armed) {
            (Some((at, _)), Some(armed)) => at < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        drop(phase);
        if sooner {
            self.changed.notify_one();
        }
    }

    fn bytes_read(&self) {
        let mut phase = self.phase();
        if phase.in_flight == 0 && phase.head_started.is_none() && !phase.http2 {
            phase.head_started = Some(Instant::now());
            self.wake_if_sooner(phase);
        }
    }

    fn write_blocked(&self, blocked: bool) {
        let mut phase = self.phase();
        match (blocked, phase.write_blocked_since.is_some()) {
            (true, false) => {
                phase.write_blocked_since = Some(Instant::now());
                self.wake_if_sooner(phase);
            }
            // Unblocking needs no wake-up: the watchdog re-reads the phase at its deadline.
            (false, true) => phase.write_blocked_since = None,
            _ => {}
        }
    }

    /// The earliest deadline of the current phase, and what it stands for; recorded as the
    /// one the watchdog sleeps until.
    fn arm(&self) -> Option<(Instant, Expired)> {
        let mut phase = self.phase();
        let deadline = deadline_of(&phase, &self.limits);
        phase.armed = deadline.map(|(at, _)| at);
        deadline
    }

    /// Resolves when the connection has overrun the limit of the phase it is in.
    pub async fn expired(&self) -> Expired {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the deadline is read, so a change in between still wakes us.
            notified.as_mut().enable();
            match self.arm() {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// The earliest deadline of `phase`, and what it stands for.
fn deadline_of(phase: &Phase, limits: &ListenerLimits) -> Option<(Instant, Expired)> {
    let write = phase.write_blocked_since.map(|since| {
        let limit = limits.write_timeout.unwrap_or(limits.idle_timeout);
        (since + limit, Expired::WriteStalled)
    });
    let waiting = (phase.in_flight == 0).then(|| match phase.head_started {
        Some(started) if !phase.http2 => (started + limits.read_header_timeout, Expired::Headers),
        _ => (phase.idle_since + limits.idle_timeout, Expired::Idle),
    });
    match (write, waiting) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Marks one request in flight until dropped (with its response body, or with the
/// connection).
#[derive(Debug)]
pub struct RequestGuard {
    state: Arc<ConnState>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.state.end_request();
    }
}

/// The connection's byte stream, reporting reads and stalled writes to its [`ConnState`].
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, state: Arc<ConnState>) -> Self {
        Self { inner, state }
    }

    fn track_write<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        self.state.write_blocked(poll.is_pending());
        poll
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.bytes_read();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        self.track_write(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track_write(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.track_write(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::Duration;

    use super::*;

    /// Whether a wake-up for the watchdog is stored (`notify_one` with nobody waiting).
    async fn woken(state: &ConnState) -> bool {
        tokio::time::timeout(Duration::ZERO, state.changed.notified())
            .await
            .is_ok()
    }

    /// A request starting and ending moves the deadline later (no deadline while serving, the
    /// idle timeout after), so the watchdog sleeping until the header deadline is not woken;
    /// a stalled write brings the deadline forward and wakes it; and each time it looks it
    /// sleeps until the earliest deadline of the phase the connection is in.
    #[tokio::test]
    async fn only_a_sooner_deadline_wakes_the_watchdog() {
        let limits = ListenerLimits {
            read_header_timeout: Duration::from_secs(10),
            write_timeout: Some(Duration::from_secs(2)),
            idle_timeout: Duration::from_secs(300),
            ..ListenerLimits::default()
        };
        let state = ConnState::new(limits);
        let (at, why) = state.arm().unwrap();
        assert_eq!(why, Expired::Headers);

        let guard = state.begin_request(false);
        drop(guard);
        state.bytes_read();
        assert!(!woken(&state).await, "later deadlines wake no one");

        state.write_blocked(true);
        assert!(woken(&state).await, "a stalled write's deadline is sooner");
        let (sooner, why) = state.arm().unwrap();
        assert_eq!(why, Expired::WriteStalled);
        assert!(sooner < at);

        // The next request's headers started arriving (`bytes_read` above): once the write
        // unblocks, the watchdog's next look finds their deadline, later than the first one.
        state.write_blocked(false);
        let (later, why) = state.arm().unwrap();
        assert_eq!(why, Expired::Headers);
        assert!(later >= at);
    }
}
