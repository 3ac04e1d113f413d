//! Where a device's lines go. File writes are plain `write(2)` calls of one whole line,
//! without fsync (Vault does not fsync audit files either): the line is in the kernel before
//! the request goes on, which is what "fail closed" needs, at the cost of a syscall rather
//! than a disk flush. Socket devices write on their own thread (`socket`), so a slow or dead
//! peer costs a request at most its bounded wait, never a runtime worker.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::Mutex;

use super::options::Target;
use super::socket::SocketSink;

/// An open (or, after a failure, closed and to be reopened) destination.
#[derive(Debug)]
pub enum Sink {
    Discard,
    Stdout,
    File(FileSink),
    Socket(SocketSink),
}

#[derive(Debug)]
pub struct FileSink {
    path: std::path::PathBuf,
    mode: Option<u32>,
    file: Mutex<Option<File>>,
}

impl Sink {
    /// A sink that opens on first use (or now, with [`Sink::open`]). A socket device's writer
    /// thread starts here.
    pub fn new(target: Target) -> io::Result<Self> {
        Ok(match target {
            Target::Discard => Sink::Discard,
            Target::Stdout => Sink::Stdout,
            Target::File { path, mode } => Sink::File(FileSink {
                path,
                mode,
                file: Mutex::new(None),
            }),
            Target::Socket {
                address,
                network,
                write_timeout,
            } => Sink::Socket(SocketSink::spawn(address, network, write_timeout)?),
        })
    }

    /// Opens the destination now, replacing any open one, and reports whether that worked
    /// (the enable-time test). If it fails the old destination is closed too: writes keep
    /// trying to open the configured one, and fail (closed) until they can.
    pub async fn open(&self) -> io::Result<()> {
        match self {
            Sink::Discard | Sink::Stdout => Ok(()),
            Sink::File(f) => f.open(),
            Sink::Socket(s) => s.reconnect().await,
        }
    }

    /// `SIGHUP` and unseal: a file is reopened at its configured path now (a rotated file is
    /// left behind); a socket reconnects on its own thread, without making the caller wait.
    pub fn reopen(&self) -> io::Result<()> {
        match self {
            Sink::Discard | Sink::Stdout => Ok(()),
            Sink::File(f) => f.open(),
            Sink::Socket(s) => {
                s.reconnect_later();
                Ok(())
            }
        }
    }

    /// Writes one line (with its newline). A failed write closes the destination so the next
    /// one tries to open it again.
    pub async fn write(&self, line: Vec<u8>) -> io::Result<()> {
        match self {
            Sink::Discard => Ok(()),
            Sink::Stdout => io::stdout().lock().write_all(&line),
            Sink::File(f) => f.write(&line),
            Sink::Socket(s) => s.write(line).await,
        }
    }
}

impl FileSink {
    fn open(&self) -> io::Result<()> {
        let opened = self.connect();
        let mut file = self.file.lock().map_err(|_| poisoned())?;
        match opened {
            Ok(opened) => {
                *file = Some(opened);
                Ok(())
            }
            Err(err) => {
                *file = None;
                Err(err)
            }
        }
    }

    fn write(&self, line: &[u8]) -> io::Result<()> {
        let mut file = self.file.lock().map_err(|_| poisoned())?;
        let open = match &mut *file {
            Some(open) => open,
            None => file.insert(self.connect()?),
        };
        let outcome = open.write_all(line);
        if outcome.is_err() {
            *file = None;
        }
        outcome
    }

    fn connect(&self) -> io::Result<File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(self.mode.unwrap_or(0o600));
        }
        let file = options.open(&self.path)?;
        #[cfg(unix)]
        if let Some(mode) = self.mode {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        Ok(file)
    }
}

fn poisoned() -> io::Error {
    io::Error::other("audit sink lock poisoned")
}
