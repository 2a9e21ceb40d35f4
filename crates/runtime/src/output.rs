//! What a process writes: its stdout and stderr (one pipe for both, as Lambda's one log
//! stream) go, line by line, to the function's log file, and while an invocation runs also to
//! that invocation's tail (`InvokeResult::log_tail`). The pool writes Lambda's `START`, `END`
//! and `REPORT` lines through the same task, so each lands in order with the handler's own.
//!
//! One task per process owns the pipe and the file: file writes go through `tokio::fs` (the
//! blocking pool), never on an async worker. At the start and at the end of an invocation the
//! task first reads what the pipe holds at that moment (FIONREAD): what the process wrote
//! before it asked for the event lands before `START`, and every line the handler wrote before
//! it answered is in the tail and before `END`.

use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::fs::File;
use tokio::io::AsyncWriteExt as _;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};

use crate::limits::{
    LOG_LINE_BYTES_MAX, LOG_TAIL_BYTES_MAX, OUTPUT_DRAIN_MS_MAX, OUTPUT_SYNC_MS_MAX,
};

enum Command {
    /// An invocation starts: write its `START` line and begin its tail.
    Begin {
        lines: String,
        done: oneshot::Sender<()>,
    },
    /// An invocation ended: take in what the pipe holds, write `lines` (`END`, `REPORT`...)
    /// and hand back the invocation's tail.
    End {
        lines: String,
        done: oneshot::Sender<Bytes>,
    },
}

/// The handle of a process's output task (the pool and the process's Runtime API share it).
#[derive(Clone)]
pub(crate) struct Output {
    commands: mpsc::Sender<Command>,
}

impl Output {
    /// Starts the task reading `pipe` into `log_file` (appended, created with its directory).
    pub(crate) fn start(pipe: pipe::Receiver, log_file: PathBuf) -> Output {
        let (commands, rx) = mpsc::channel(4);
        tokio::spawn(run(pipe, log_file, rx));
        Output { commands }
    }

    /// Writes `lines` (ending in a newline) and starts the invocation's tail with them;
    /// returns once they are in order before anything the process writes from now on. Nothing
    /// if the invocation has begun already.
    pub(crate) async fn begin(&self, lines: String) {
        let (done, wait) = oneshot::channel();
        if self
            .commands
            .send(Command::Begin { lines, done })
            .await
            .is_ok()
        {
            let _ = wait.await;
        }
    }

    /// Ends the invocation: its remaining output, then `lines`; returns its tail.
    pub(crate) async fn end(&self, lines: String) -> Bytes {
        let (done, wait) = oneshot::channel();
        if self
            .commands
            .send(Command::End { lines, done })
            .await
            .is_err()
        {
            return Bytes::new();
        }
        wait.await.unwrap_or_default()
    }
}

/// The log file; output is dropped (with one warning) if it cannot be opened or written.
struct Sink {
    path: PathBuf,
    file: Option<File>,
}

impl Sink {
    async fn open(path: PathBuf) -> Sink {
        let file = match open_append(&path).await {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot open a function's log file; its output is dropped");
                None
            }
        };
        Sink { path, file }
    }

    async fn write(&mut self, data: &[u8]) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if let Err(error) = file.write_all(data).await {
            tracing::warn!(%error, path = %self.path.display(), "cannot write a function's log file; its output is dropped");
            self.file = None;
        }
    }

    async fn flush(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if let Err(error) = file.flush().await {
            tracing::warn!(%error, path = %self.path.display(), "cannot write a function's log file; its output is dropped");
            self.file = None;
        }
    }
}

async fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            tokio::fs::create_dir_all(dir).await?;
        }
    }
    tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
}

/// Cuts output into lines (a newline, or [`LOG_LINE_BYTES_MAX`] bytes) and keeps the tail of
/// the running invocation.
#[derive(Default)]
pub(crate) struct Lines {
    partial: Vec<u8>,
    tail: Vec<u8>,
    capturing: bool,
}

impl Lines {
    /// Takes in `data`; returns the complete lines in it (each ending in a newline).
    pub(crate) fn push(&mut self, mut data: &[u8]) -> Vec<u8> {
        let mut complete = Vec::new();
        while !data.is_empty() {
            let room = LOG_LINE_BYTES_MAX - self.partial.len();
            let window = &data[..data.len().min(room)];
            match window.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.partial.extend_from_slice(&window[..=at]);
                    data = &data[at + 1..];
                    complete.append(&mut self.partial);
                }
                None if window.len() == room => {
                    self.partial.extend_from_slice(window);
                    self.partial.push(b'\n');
                    data = &data[room..];
                    complete.append(&mut self.partial);
                }
                None => {
                    self.partial.extend_from_slice(window);
                    data = &[];
                }
            }
        }
        self.capture(&complete);
        complete
    }

    /// The unfinished line, ended (before a line of sluice's own).
    pub(crate) fn finish_partial(&mut self) -> Vec<u8> {
        if self.partial.is_empty() {
            return Vec::new();
        }
        let mut line = std::mem::take(&mut self.partial);
        line.push(b'\n');
        self.capture(&line);
        line
    }

    pub(crate) fn capturing(&self) -> bool {
        self.capturing
    }

    pub(crate) fn begin(&mut self, lines: &[u8]) {
        self.tail.clear();
        self.capturing = true;
        self.capture(lines);
    }

    pub(crate) fn end(&mut self, lines: &[u8]) -> Bytes {
        self.capture(lines);
        self.capturing = false;
        let start = self.tail.len().saturating_sub(LOG_TAIL_BYTES_MAX);
        let tail = Bytes::copy_from_slice(&self.tail[start..]);
        self.tail.clear();
        tail
    }

    fn capture(&mut self, data: &[u8]) {
        if !self.capturing {
            return;
        }
        self.tail.extend_from_slice(data);
        // Trim in steps, not on every line: the buffer stays under twice the tail.
        if self.tail.len() > 2 * LOG_TAIL_BYTES_MAX {
            let cut = self.tail.len() - LOG_TAIL_BYTES_MAX;
            self.tail.drain(..cut);
        }
    }
}

async fn run(mut pipe: pipe::Receiver, log_file: PathBuf, mut commands: mpsc::Receiver<Command>) {
    let mut sink = Sink::open(log_file).await;
    let mut lines = Lines::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut eof = false;
    let mut commands_open = true;
    // Once the process is gone (its handle dropped), the pipe is read only a little longer.
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        if eof && !commands_open {
            break;
        }
        let drain_deadline = drain_until;
        tokio::select! {
            biased;
            command = commands.recv(), if commands_open => match command {
                Some(Command::Begin { lines: text, done }) => {
                    if !lines.capturing() {
                        // What the process wrote before it asked for this event (its init
                        // output, say) goes before START.
                        if !eof {
                            eof = sync(&mut pipe, &mut buf, &mut lines, &mut sink).await;
                        }
                        let partial = lines.finish_partial();
                        sink.write(&partial).await;
                        lines.begin(text.as_bytes());
                        sink.write(text.as_bytes()).await;
                    }
                    let _ = done.send(());
                }
                Some(Command::End { lines: text, done }) => {
                    if !eof {
                        eof = sync(&mut pipe, &mut buf, &mut lines, &mut sink).await;
                    }
                    let partial = lines.finish_partial();
                    sink.write(&partial).await;
                    sink.write(text.as_bytes()).await;
                    sink.flush().await;
                    let _ = done.send(lines.end(text.as_bytes()));
                }
                None => {
                    commands_open = false;
                    drain_until = Some(
                        tokio::time::Instant::now() + Duration::from_millis(OUTPUT_DRAIN_MS_MAX),
                    );
                }
            },
            ready = pipe.readable(), if !eof => {
                if ready.is_err() {
                    eof = true;
                    continue;
                }
                match pipe.try_read(&mut buf) {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        let complete = lines.push(&buf[..n]);
                        sink.write(&complete).await;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => eof = true,
                }
            },
            () = sleep_until(drain_deadline), if drain_deadline.is_some() => break,
        }
    }
    let partial = lines.finish_partial();
    sink.write(&partial).await;
    sink.flush().await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Reads the bytes the pipe holds right now (everything the process wrote before it
/// answered). Returns whether the pipe reached its end.
async fn sync(
    pipe: &mut pipe::Receiver,
    buf: &mut [u8],
    lines: &mut Lines,
    sink: &mut Sink,
) -> bool {
    let Ok(mut pending) = rustix::io::ioctl_fionread(pipe.as_fd()) else {
        return false;
    };
    let give_up = tokio::time::Instant::now() + Duration::from_millis(OUTPUT_SYNC_MS_MAX);
    while pending > 0 {
        let ready = tokio::time::timeout_at(give_up, pipe.readable()).await;
        match ready {
            Err(_) => return false,
            Ok(Err(_)) => return true,
            Ok(Ok(())) => {}
        }
        let want = buf
            .len()
            .min(usize::try_from(pending).unwrap_or(usize::MAX));
        match pipe.try_read(&mut buf[..want]) {
            Ok(0) => return true,
            Ok(n) => {
                pending = pending.saturating_sub(n as u64);
                let complete = lines.push(&buf[..n]);
                sink.write(&complete).await;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_newlines_and_at_the_line_limit() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"ab"), b"");
        assert_eq!(lines.push(b"c\nd\ne"), b"abc\nd\n");
        assert_eq!(lines.finish_partial(), b"e\n");
        assert_eq!(lines.finish_partial(), b"");

        let long = vec![b'x'; LOG_LINE_BYTES_MAX + 1];
        let out = lines.push(&long);
        assert_eq!(out.len(), LOG_LINE_BYTES_MAX + 1);
        assert_eq!(out[LOG_LINE_BYTES_MAX], b'\n');
        assert_eq!(lines.finish_partial(), b"x\n");

        // A line of exactly the limit, newline included, is one line.
        let mut exact = vec![b'y'; LOG_LINE_BYTES_MAX - 1];
        exact.push(b'\n');
        assert_eq!(lines.push(&exact), exact);
    }

    #[test]
    fn the_tail_holds_the_last_bytes_of_the_invocation_only() {
        let mut lines = Lines::default();
        lines.push(b"before\n");
        lines.begin(b"START\n");
        lines.push(b"one\n");
        assert_eq!(
            lines.end(b"END\n"),
            Bytes::from_static(b"START\none\nEND\n")
        );
        lines.push(b"between\n");

        lines.begin(b"START\n");
        for _ in 0..3 * LOG_TAIL_BYTES_MAX / 10 {
            lines.push(b"012345678\n");
        }
        let tail = lines.end(b"END\n");
        assert_eq!(tail.len(), LOG_TAIL_BYTES_MAX);
        assert!(tail.ends_with(b"012345678\nEND\n"));
    }
}
