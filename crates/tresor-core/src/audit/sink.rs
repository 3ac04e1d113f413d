//! Where a device's lines go. Writes are plain `write(2)` calls of one whole line, without
//! fsync (Vault does not fsync audit files either): the line is in the kernel before the
//! request goes on, which is what "fail closed" needs, at the cost of a syscall rather than
//! a disk flush.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;

use super::options::{Target, resolve};

/// An open (or, after a failure, closed and to be reopened) destination.
#[derive(Debug)]
pub struct Sink {
    target: Target,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Closed,
    File(File),
    Tcp(TcpStream),
    Udp(UdpSocket),
}

impl Sink {
    /// A sink that opens on first use (or now, with [`Sink::open`]).
    pub fn new(target: Target) -> Self {
        Self {
            target,
            state: Mutex::new(State::Closed),
        }
    }

    /// Opens the destination now, replacing any open one (`SIGHUP`: a rotated file is
    /// reopened at its configured path).
    /// If that fails the old destination is closed too: writes keep trying to open the
    /// configured one, and fail (closed) until they can.
    pub fn open(&self) -> io::Result<()> {
        let opened = self.connect();
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        match opened {
            Ok(opened) => {
                *state = opened;
                Ok(())
            }
            Err(err) => {
                *state = State::Closed;
                Err(err)
            }
        }
    }

    /// Writes one line (with its newline). A failed write closes the destination so the next
    /// one tries to open it again.
    pub fn write(&self, line: &[u8]) -> io::Result<()> {
        match &self.target {
            Target::Discard => return Ok(()),
            Target::Stdout => return io::stdout().lock().write_all(line),
            Target::File { .. } | Target::Socket { .. } => {}
        }
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        if matches!(*state, State::Closed) {
            *state = self.connect()?;
        }
        let outcome = match &mut *state {
            State::File(f) => f.write_all(line),
            State::Tcp(s) => s.write_all(line),
            State::Udp(s) => s.send(line).map(|_| ()),
            State::Closed => Ok(()),
        };
        if outcome.is_err() {
            *state = State::Closed;
        }
        outcome
    }

    fn connect(&self) -> io::Result<State> {
        match &self.target {
            Target::Discard | Target::Stdout => Ok(State::Closed),
            Target::File { path, mode } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let mut options = OpenOptions::new();
                options.append(true).create(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(mode.unwrap_or(0o600));
                }
                let file = options.open(path)?;
                #[cfg(unix)]
                if let Some(mode) = mode {
                    use std::os::unix::fs::PermissionsExt;
                    file.set_permissions(std::fs::Permissions::from_mode(*mode))?;
                }
                Ok(State::File(file))
            }
            Target::Socket {
                address,
                udp,
                write_timeout,
            } => {
                let addrs = resolve(address)?;
                let first = addrs
                    .first()
                    .ok_or_else(|| io::Error::other(format!("no address for {address}")))?;
                if *udp {
                    let bind = if first.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    let socket = UdpSocket::bind(bind)?;
                    socket.connect(first)?;
                    socket.set_write_timeout(Some(nonzero(*write_timeout)))?;
                    Ok(State::Udp(socket))
                } else {
                    let stream = TcpStream::connect_timeout(first, nonzero(*write_timeout))?;
                    stream.set_write_timeout(Some(nonzero(*write_timeout)))?;
                    stream.set_nodelay(true)?;
                    Ok(State::Tcp(stream))
                }
            }
        }
    }
}

/// std refuses a zero timeout; Vault treats `0s` as "no timeout", which a second approximates
/// without letting a dead peer hold a request for ever.
fn nonzero(d: Duration) -> Duration {
    if d.is_zero() {
        Duration::from_secs(1)
    } else {
        d
    }
}

fn poisoned() -> io::Error {
    io::Error::other("audit sink lock poisoned")
}
