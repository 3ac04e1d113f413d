//! A one-line progress display on stderr, drawn only when stderr is a terminal (a CronJob's
//! log or a pipe gets nothing) and at most ten times a second. Hand-rolled rather than
//! indicatif: one line with a counter is all a run needs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    last: Option<Instant>,
    drawn: bool,
}

const INTERVAL: Duration = Duration::from_millis(100);

impl Progress {
    /// Draws when stderr is a terminal.
    pub fn for_stderr() -> Progress {
        Progress::new(std::io::stderr().is_terminal())
    }

    pub fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            last: None,
            drawn: false,
        }
    }

    fn draw(&mut self, line: &str, force: bool) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if !force && self.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            return;
        }
        self.last = Some(now);
        self.drawn = true;
        let mut err = std::io::stderr().lock();
        // \r and "erase to end of line": the line is redrawn in place.
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// A phase without a count ("reading dotenv .env").
    pub fn message(&mut self, text: &str) {
        self.draw(&format!("bootstrap: {text}"), true);
    }

    /// `done` of `total` names in a phase, with a bar.
    pub fn step(&mut self, phase: &str, done: usize, total: usize) {
        const WIDTH: usize = 30;
        let filled = (done * WIDTH)
            .checked_div(total)
            .unwrap_or(WIDTH)
            .min(WIDTH);
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled));
        // A phase's first step is always drawn; the rest at most ten times a second.
        self.draw(
            &format!("bootstrap: {phase} [{bar}] {done}/{total}"),
            done == 0,
        );
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
