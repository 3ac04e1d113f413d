//! A socket device's writer: one OS thread per device owns the connection and does every
//! blocking step (name resolution, connect, write) with `write_timeout` bounds, so a slow or
//! dead peer never blocks a runtime worker. Requests hand it their line over a bounded queue
//! and wait, asynchronously and for a bounded time, for the outcome: the line is recorded
//! (in the kernel's socket buffer) before the request goes on, which is what failing closed
//! needs.
//!
//! As OpenBao's socket device: a failed write closes the connection, reconnects and tries
//! once more. In addition, a peer that closed its end (FIN received) is noticed before the
//! next write, so the line goes to a fresh connection instead of into a dead socket whose
//! first write would still "succeed".

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// Lines waiting for the writer. A full queue makes requests wait (within their bound).
const QUEUE: usize = 256;

/// How many chunks of unexpected data from the peer are drained before a write.
const DRAIN_LIMIT: usize = 16;

type Reply = oneshot::Sender<io::Result<()>>;

enum Msg {
    Line(Vec<u8>, Reply),
    /// Close and reconnect now; with a reply, report the outcome (the enable-time test),
    /// without one, log a failure (`SIGHUP`, unseal).
    Reconnect(Option<Reply>),
}

/// The request side of a socket device.
#[derive(Debug)]
pub struct SocketSink {
    tx: mpsc::Sender<Msg>,
    /// The longest a request waits for its line: a write, a reconnect and a second write,
    /// each bounded by `write_timeout`, as in OpenBao.
    wait: Duration,
}

impl SocketSink {
    /// Starts the writer thread; it ends when the sink is dropped (the device disabled).
    pub(super) fn spawn(
        address: String,
        network: String,
        write_timeout: Duration,
    ) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            address,
            network,
            timeout: write_timeout,
            conn: None,
        };
        std::thread::Builder::new()
            .name("tresor-audit-socket".to_owned())
            .spawn(move || writer.run(rx))?;
        Ok(Self {
            tx,
            // At least a little: a zero timeout still gets its (failing) answer back.
            wait: write_timeout
                .max(Duration::from_millis(100))
                .saturating_mul(3),
        })
    }

    /// Writes one line; `Err` when the writer could not deliver it within the bound.
    pub(super) async fn write(&self, line: Vec<u8>) -> io::Result<()> {
        let (reply, outcome) = oneshot::channel();
        self.ask(Msg::Line(line, reply), outcome).await
    }

    /// Reconnects now and reports whether it worked.
    pub(super) async fn reconnect(&self) -> io::Result<()> {
        let (reply, outcome) = oneshot::channel();
        self.ask(Msg::Reconnect(Some(reply)), outcome).await
    }

    /// Asks for a reconnect without waiting (`SIGHUP`, unseal); the writer logs a failure.
    pub(super) fn reconnect_later(&self) {
        // A full queue means lines are flowing: the writer reconnects by itself if needed.
        let _ = self.tx.try_send(Msg::Reconnect(None));
    }

    async fn ask(&self, msg: Msg, outcome: oneshot::Receiver<io::Result<()>>) -> io::Result<()> {
        let work = async {
            self.tx.send(msg).await.map_err(|_| stopped())?;
            outcome.await.map_err(|_| stopped())?
        };
        tokio::time::timeout(self.wait, work).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("socket write not done within {:?}", self.wait),
            )
        })?
    }
}

enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

struct Writer {
    address: String,
    network: String,
    timeout: Duration,
    conn: Option<Conn>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Line(line, reply) => {
                    // The request gave up waiting (and counted this device as failed): later
                    // lines must not queue behind a write nobody waits for.
                    if reply.is_closed() {
                        continue;
                    }
                    let outcome = self.write(&line);
                    let _ = reply.send(outcome);
                }
                Msg::Reconnect(reply) => {
                    let outcome = self.connect();
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(outcome);
                        }
                        None => {
                            if let Err(err) = outcome {
                                tracing::error!(error = %err, "audit socket device cannot connect");
                            }
                        }
                    }
                }
            }
        }
    }

    /// OpenBao's `LogRequest`: write (connecting if needed); on failure reconnect and write
    /// once more. A failed reconnect reports both errors, as Go's multierror does.
    fn write(&mut self, line: &[u8]) -> io::Result<()> {
        if self.conn.as_ref().is_some_and(Conn::peer_closed) {
            self.conn = None;
        }
        let first = if self.conn.is_some() {
            self.send(line)
        } else {
            match self.connect() {
                Ok(()) => self.send(line),
                Err(err) => Err(err),
            }
        };
        let Err(first) = first else {
            return Ok(());
        };
        if let Err(dial) = self.connect() {
            return Err(io::Error::new(
                dial.kind(),
                format!("2 errors occurred:\n\t* {first}\n\t* {dial}\n\n"),
            ));
        }
        self.send(line)
    }

    /// Writes on the open connection; a failure closes it.
    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let outcome = match &mut self.conn {
            // A write that times out part-way leaves a partial line; the connection is
            // dropped, so the next line starts on a fresh one.
            Some(Conn::Tcp(stream)) => stream.write_all(line),
            #[cfg(unix)]
            Some(Conn::Unix(stream)) => stream.write_all(line),
            Some(Conn::Udp(socket)) => socket.send(line).and_then(|n| {
                if n == line.len() {
                    Ok(())
                } else {
                    Err(io::Error::other(
                        "audit line truncated by the datagram size",
                    ))
                }
            }),
            None => Err(stopped()),
        };
        if outcome.is_err() {
            self.conn = None;
        }
        outcome
    }

    /// Closes any connection and dials again. Errors are worded as Go's dialer words them
    /// (OpenBao shows them when the test line fails).
    fn connect(&mut self) -> io::Result<()> {
        self.conn = None;
        let net = self.network.as_str();
        #[cfg(unix)]
        if net == "unix" {
            return self.connect_unix();
        }
        let (udp, family) = match net {
            "tcp" => (false, None),
            "tcp4" => (false, Some(true)),
            "tcp6" => (false, Some(false)),
            "udp" => (true, None),
            "udp4" => (true, Some(true)),
            "udp6" => (true, Some(false)),
            _ => {
                let sep = if net.is_empty() { "" } else { " " };
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("dial{sep}{net}: unknown network {net}"),
                ));
            }
        };
        let early = |reason: String| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("dial {net}: {reason}"))
        };
        if self.address.is_empty() {
            return Err(early("missing address".to_owned()));
        }
        let addrs: Vec<SocketAddr> = resolve(&self.address).map_err(early)?;
        let addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| family.is_none_or(|v4| a.is_ipv4() == v4))
            .collect();
        let mut last = early(format!("no suitable address found for {}", self.address));
        for addr in addrs {
            let attempt = if self.timeout.is_zero() {
                // Go's dialer with a deadline already passed.
                Err(io::Error::new(io::ErrorKind::TimedOut, "i/o timeout"))
            } else {
                self.connect_to(addr, udp)
            };
            match attempt {
                Ok(conn) => {
                    self.conn = Some(conn);
                    return Ok(());
                }
                Err(err) => {
                    last = io::Error::new(
                        err.kind(),
                        format!("dial {net} {addr}: {}", go_reason(&err)),
                    );
                }
            }
        }
        Err(last)
    }

    /// `socket_type = "unix"`: `address` is a socket path.
    #[cfg(unix)]
    fn connect_unix(&mut self) -> io::Result<()> {
        let dial = |err: io::Error| {
            io::Error::new(
                err.kind(),
                format!("dial unix {}: {}", self.address, go_reason(&err)),
            )
        };
        if self.timeout.is_zero() {
            return Err(dial(io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")));
        }
        let stream = std::os::unix::net::UnixStream::connect(&self.address).map_err(dial)?;
        stream.set_write_timeout(Some(self.timeout))?;
        self.conn = Some(Conn::Unix(stream));
        Ok(())
    }

    fn connect_to(&self, addr: SocketAddr, udp: bool) -> io::Result<Conn> {
        if udp {
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(bind)?;
            socket.connect(addr)?;
            socket.set_write_timeout(Some(self.timeout))?;
            Ok(Conn::Udp(socket))
        } else {
            let stream = TcpStream::connect_timeout(&addr, self.timeout)?;
            stream.set_write_timeout(Some(self.timeout))?;
            stream.set_nodelay(true)?;
            Ok(Conn::Tcp(stream))
        }
    }
}

/// `host:port` to addresses, with Go's wording for the usual mistakes.
fn resolve(address: &str) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = match address.rsplit_once(':') {
        None => return Err(format!("address {address}: missing port in address")),
        Some((host, port)) => (host, port),
    };
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if !bracketed && host.contains(':') {
        return Err(format!("address {address}: too many colons in address"));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .map_err(|_| format!("lookup {port}: unknown port"))?;
    let host = if host.is_empty() { "localhost" } else { host };
    (host, port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|_| format!("lookup {host}: no such host"))
}

/// The tail of a Go dial error for an OS error (`connect: connection refused`).
fn go_reason(err: &io::Error) -> String {
    use io::ErrorKind as K;
    let text = match err.kind() {
        K::TimedOut | K::WouldBlock => return "i/o timeout".to_owned(),
        K::ConnectionRefused => "connection refused",
        K::PermissionDenied => "permission denied",
        K::NetworkUnreachable => "network is unreachable",
        K::HostUnreachable => "no route to host",
        K::AddrNotAvailable => "cannot assign requested address",
        K::NotFound => "no such file or directory",
        _ => return err.to_string(),
    };
    format!("connect: {text}")
}

impl Conn {
    /// Whether a stream peer closed its end; a UDP "connection" cannot tell.
    fn peer_closed(&self) -> bool {
        match self {
            Conn::Tcp(stream) => stream_closed(stream, |s, on| s.set_nonblocking(on)),
            #[cfg(unix)]
            Conn::Unix(stream) => stream_closed(stream, |s, on| s.set_nonblocking(on)),
            Conn::Udp(_) => false,
        }
    }
}

/// Whether a stream's peer closed its end (or the connection broke), read without blocking.
/// Data the peer sent is drained and ignored: audit peers only listen.
fn stream_closed<S>(stream: &S, nonblocking: impl Fn(&S, bool) -> io::Result<()>) -> bool
where
    for<'a> &'a S: Read,
{
    if nonblocking(stream, true).is_err() {
        return true;
    }
    let mut buf = [0u8; 512];
    let mut closed = false;
    for _ in 0..DRAIN_LIMIT {
        match (&*stream).read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    closed || nonblocking(stream, false).is_err()
}

fn stopped() -> io::Error {
    io::Error::other("audit socket writer stopped")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A peer that accepts (in the kernel's backlog) but never reads: the socket buffers fill
    /// and writes stall. Each line still costs its request a bounded wait, and the runtime
    /// thread the request runs on keeps serving other tasks meanwhile.
    #[tokio::test(flavor = "current_thread")]
    async fn a_peer_that_never_reads_costs_a_bounded_wait_and_blocks_no_runtime_thread() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let timeout = Duration::from_millis(200);
        let sink = SocketSink::spawn(addr, "tcp".to_owned(), timeout).unwrap();
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let line = vec![b'x'; 256 * 1024];
        let mut slowest = Duration::ZERO;
        let mut failed = 0;
        for _ in 0..64 {
            let started = tokio::time::Instant::now();
            if sink.write(line.clone()).await.is_err() {
                failed += 1;
            }
            slowest = slowest.max(started.elapsed());
        }
        ticker.abort();
        // 16 MB went nowhere: some writes stalled for their timeout (and then reconnected or
        // failed), none waited longer than the bound.
        assert!(
            slowest >= timeout,
            "no write ever stalled ({slowest:?}, {failed} failed)"
        );
        assert!(
            slowest <= timeout * 3 + Duration::from_millis(300),
            "{slowest:?}"
        );
        assert!(
            ticks.load(Ordering::Relaxed) >= 20,
            "the runtime thread was blocked: {} ticks",
            ticks.load(Ordering::Relaxed)
        );
        drop(listener);
    }

    #[tokio::test]
    async fn dial_errors_are_worded_as_go_words_them() {
        let refused =
            SocketSink::spawn("127.0.0.1:1".into(), "tcp".into(), Duration::from_secs(1)).unwrap();
        let err = refused
            .write(b"x\n".to_vec())
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "2 errors occurred:\n\t* dial tcp 127.0.0.1:1: connect: connection refused\n\t* dial tcp 127.0.0.1:1: connect: connection refused\n\n"
        );
        for (address, network, want) in [
            (
                "127.0.0.1",
                "tcp",
                "dial tcp: address 127.0.0.1: missing port in address",
            ),
            ("", "tcp", "dial tcp: missing address"),
            ("127.0.0.1:9", "foo", "dial foo: unknown network foo"),
            ("127.0.0.1:9", "", "dial: unknown network "),
        ] {
            let sink =
                SocketSink::spawn(address.into(), network.into(), Duration::from_secs(1)).unwrap();
            let err = sink.reconnect().await.unwrap_err().to_string();
            assert_eq!(err, want);
        }
        let zero = SocketSink::spawn("127.0.0.1:9".into(), "udp".into(), Duration::ZERO).unwrap();
        assert_eq!(
            zero.reconnect().await.unwrap_err().to_string(),
            "dial udp 127.0.0.1:9: i/o timeout"
        );
    }
}
