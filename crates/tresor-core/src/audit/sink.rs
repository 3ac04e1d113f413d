//! Where a device's lines go. File writes are plain `write(2)` calls of whole lines, without
//! fsync (Vault does not fsync audit files either): a line is in the kernel before its request
//! goes on, which is what "fail closed" needs, at the cost of a syscall rather than a disk
//! flush; lines of concurrent requests share one call, on the device's own thread
//! ([`FileSink`]). Socket devices write on their own thread (`socket`), so a slow or dead
//! peer costs a request at most its bounded wait, never a runtime worker.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use tokio::sync::Notify;

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

/// A file device. One OS thread per device appends the lines with plain `write(2)` calls:
/// lines that arrive while it writes are queued and go out together in its next call, so under
/// load a request costs a share of one syscall instead of one of its own (the cost that
/// dominated an audited read), and a runtime worker never blocks on the file. A request goes on
/// only once the batch holding its line is in the kernel, and refuses itself when that batch
/// failed: batching changes the cost, not the guarantee.
#[derive(Debug)]
pub struct FileSink {
    shared: Arc<FileShared>,
}

#[derive(Debug)]
struct FileShared {
    path: std::path::PathBuf,
    mode: Option<u32>,
    state: Mutex<FileState>,
    /// Wakes the writer thread when the queue stops being empty, or the sink closes.
    work: Condvar,
}

#[derive(Debug, Default)]
struct FileState {
    file: Option<Arc<File>>,
    /// Bumped by every (re)open, so a write that fails on a file replaced meanwhile does not
    /// close the new one.
    generation: u64,
    /// Lines waiting for the next write, and the batch whose outcome they will share.
    queue: Vec<u8>,
    batch: Arc<Batch>,
    /// The sink was dropped (the device disabled): the writer settles what is queued and ends.
    closed: bool,
}

/// The outcome of one write, shared by every line in it.
#[derive(Debug, Default)]
struct Batch {
    outcome: OnceLock<Result<(), (io::ErrorKind, String)>>,
    settled: Notify,
}

impl Sink {
    /// A sink that opens on first use (or now, with [`Sink::open`]). A socket device's writer
    /// thread starts here.
    pub fn new(target: Target) -> io::Result<Self> {
        Ok(match target {
            Target::Discard => Sink::Discard,
            Target::Stdout => Sink::Stdout,
            Target::File { path, mode } => Sink::File(FileSink::spawn(path, mode)?),
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
            Sink::File(f) => f.write(&line).await,
            Sink::Socket(s) => s.write(line).await,
        }
    }
}

impl FileSink {
    /// Starts the device's writer thread; it ends when the sink is dropped.
    fn spawn(path: std::path::PathBuf, mode: Option<u32>) -> io::Result<Self> {
        let shared = Arc::new(FileShared {
            path,
            mode,
            state: Mutex::new(FileState::default()),
            work: Condvar::new(),
        });
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tresor-audit-file".to_owned())
            .spawn(move || writer.run())?;
        Ok(Self { shared })
    }

    fn open(&self) -> io::Result<()> {
        let shared = &self.shared;
        let opened = shared.connect();
        let mut state = shared.state.lock().map_err(|_| poisoned())?;
        state.generation += 1;
        match opened {
            Ok(opened) => {
                state.file = Some(Arc::new(opened));
                Ok(())
            }
            Err(err) => {
                state.file = None;
                Err(err)
            }
        }
    }

    async fn write(&self, line: &[u8]) -> io::Result<()> {
        let batch = {
            let mut state = self.shared.state.lock().map_err(|_| poisoned())?;
            let idle = state.queue.is_empty();
            state.queue.extend_from_slice(line);
            if idle {
                // Only an empty queue can have a sleeping writer behind it.
                self.shared.work.notify_one();
            }
            Arc::clone(&state.batch)
        };
        let settled = batch.settled.notified();
        tokio::pin!(settled);
        // Registered before the check, so an outcome set in between still wakes us.
        settled.as_mut().enable();
        if batch.outcome.get().is_none() {
            settled.await;
        }
        match batch.outcome.get() {
            Some(Ok(())) => Ok(()),
            Some(Err((kind, msg))) => Err(io::Error::new(*kind, msg.clone())),
            None => Err(io::Error::other("audit file writer stopped")),
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.closed = true;
        }
        self.shared.work.notify_one();
    }
}

impl FileShared {
    /// The writer thread: takes whatever is queued, writes it in one call, settles its batch.
    fn run(&self) {
        loop {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            while state.queue.is_empty() && !state.closed {
                state = match self.work.wait(state) {
                    Ok(state) => state,
                    Err(_) => return,
                };
            }
            if state.queue.is_empty() {
                return;
            }
            let file = match &state.file {
                Some(file) => Ok(Arc::clone(file)),
                None => self.connect().map(Arc::new),
            };
            if let Ok(file) = &file {
                state.file = Some(Arc::clone(file));
            }
            let bytes = std::mem::take(&mut state.queue);
            let batch = std::mem::take(&mut state.batch);
            let generation = state.generation;
            drop(state);

            let outcome = file.and_then(|file| (&*file).write_all(&bytes));
            if outcome.is_err()
                && let Ok(mut state) = self.state.lock()
                && state.generation == generation
            {
                // The next batch tries to open the file again.
                state.file = None;
            }
            let _ = batch
                .outcome
                .set(outcome.map_err(|e| (e.kind(), e.to_string())));
            batch.settled.notify_waiters();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file_sink(path: std::path::PathBuf) -> Arc<Sink> {
        Arc::new(Sink::new(Target::File { path, mode: None }).unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_lines_are_each_written_whole_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let sink = file_sink(path.clone());
        let mut tasks = Vec::new();
        for t in 0..16 {
            let sink = Arc::clone(&sink);
            tasks.push(tokio::spawn(async move {
                for i in 0..200 {
                    let line = format!("{{\"t\":{t},\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i));
                    sink.write(line.into_bytes()).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(seen.insert((v["t"].as_u64().unwrap(), v["i"].as_u64().unwrap())));
        }
        assert_eq!(seen.len(), 16 * 200);
    }

    #[tokio::test]
    async fn a_failed_write_fails_its_line_and_the_next_one_opens_the_file_again() {
        let dir = tempfile::tempdir().unwrap();
        // The parent is a regular file: the device cannot be opened.
        let blocker = dir.path().join("logs");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let path = blocker.join("audit.log");
        let sink = file_sink(path.clone());
        assert!(sink.write(b"first\n".to_vec()).await.is_err());
        std::fs::remove_file(&blocker).unwrap();
        sink.write(b"second\n".to_vec()).await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
    }

    #[tokio::test]
    async fn reopen_follows_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let sink = file_sink(path.clone());
        sink.write(b"one\n".to_vec()).await.unwrap();
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        sink.write(b"two\n".to_vec()).await.unwrap();
        sink.reopen().unwrap();
        sink.write(b"three\n".to_vec()).await.unwrap();
        let rotated = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap();
        assert_eq!(rotated, "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
    }
}
